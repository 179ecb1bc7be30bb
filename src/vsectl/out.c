/*
 * out.c - what every vsectl command shares on the way in and out: strict
 * checks of arguments (so that bad input never reaches the store), error
 * reports in the "vsectl: msg / detail / hint" form, and the JSON and
 * table forms of resources and events.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsectl.h"

void warnx_(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("vsectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int report(int rc, const struct vse_error *err)
{
    const char *msg = vse_strerror(rc);

    if (err != NULL && err->msg[0] != '\0')
        msg = err->msg;
    warnx_("%s", msg);
    if (err != NULL && err->detail[0] != '\0')
        fprintf(stderr, "  detail: %s\n", err->detail);
    if (err != NULL && err->hint[0] != '\0')
        fprintf(stderr, "  hint: %s\n", err->hint);
    return vse_err_exit_status(rc);
}

int out_failed(void)
{
    return ferror(stdout) != 0;
}

/* stdout is a pipe whose reader has gone: on Linux the write end then
 * polls POLLERR. */
static int reader_gone(void)
{
    struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

int out_finish(int status)
{
    int failed, e;

    errno = 0;
    failed = fflush(stdout) != 0 || ferror(stdout);
    e = errno;
    if (!failed)
        return status;
    /* A reader that went away (EPIPE) is not worth a message: the
     * pipeline's other end already has what it wanted.  errno alone
     * cannot tell: the write that failed may be long past (stdio keeps
     * the error flag) and closing the store has set errno since. */
    if (e != EPIPE && !reader_gone())
        fprintf(stderr, "vsectl: cannot write output: %s\n",
                e != 0 ? strerror(e) : "a write failed");
    return status != 0 ? status : EXIT_ERROR;
}

/* ---- argument checks ------------------------------------------------- */

int check_id(const struct ctx *ctx, const char *what, const char *s)
{
    struct vse_error err;

    vse_error_clear(&err);
    if (vse_check_id(what, s, &err) != 0)
        return usage_error(ctx, "%s", err.msg);
    return 0;
}

/* Machine, state and op names: the same rules as ids, shorter. */
int check_name(const struct ctx *ctx, const char *what, const char *s)
{
    int st = check_id(ctx, what, s);

    if (st != 0)
        return st;
    if (strlen(s) > VSE_NAME_MAX)
        return usage_error(ctx, "%s is %zu bytes long, the limit is %d", what,
                           strlen(s), VSE_NAME_MAX);
    return 0;
}

/* op_ids are what the library makes: UUIDs, 8-4-4-4-12 hex digits. */
int check_op_id(const struct ctx *ctx, char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n && n == VSE_OPID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            goto bad;
    }
    if (n != VSE_OPID_LEN)
        goto bad;
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
    return 0;
bad:
    return usage_error(ctx,
                       "op_id '%.40s%s' is not an op_id (expected "
                       "8-4-4-4-12 hex digits)",
                       s, n > 40 ? "..." : "");
}

/* 1 if s is valid UTF-8 (no overlongs, no surrogates). */
static int utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    while (*s != '\0') {
        int n;
        uint32_t cp;

        if (s[0] < 0x80) {
            s++;
            continue;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
            n = 1, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
            n = 2, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
            n = 3, cp = s[0] & 0x07;
        else
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

int check_reason(const struct ctx *ctx, const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return usage_error(ctx, "reason is empty");
    if (n > VSE_REASON_MAX)
        return usage_error(ctx, "reason is %zu bytes long, the limit is %d",
                           n, VSE_REASON_MAX);
    if (!utf8_ok(s))
        return usage_error(ctx, "reason is not valid UTF-8");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        /* A newline would break the one-row-per-line outputs. */
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return usage_error(ctx,
                               "reason holds a control character "
                               "(0x%02x) at byte %zu",
                               ch, i + 1);
    }
    return 0;
}

int parse_int(const struct ctx *ctx, const char *what, const char *s,
              int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    /* strtoll would skip blanks and take "+5"; neither is a number the
     * user meant to type. */
    if (!isdigit((unsigned char)s[0]) &&
        !(s[0] == '-' && isdigit((unsigned char)s[1])))
        return usage_error(ctx, "%s '%s' is not a number", what, s);
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return usage_error(ctx, "%s '%s' is not a number", what, s);
    if (errno == ERANGE || v < min || v > max)
        return usage_error(ctx,
                           "%s '%s' is out of range (%" PRId64 " to %" PRId64
                           ")",
                           what, s, min, max);
    *out = v;
    return 0;
}

/* Upper bound of any duration: ~31 years, far from int64 us overflow. */
#define DURATION_MAX_MS INT64_C(1000000000000)

int parse_duration(const struct ctx *ctx, const char *what, const char *s,
                   int64_t unit_ms, int64_t *out_ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {NULL, 0}};
    char *end;
    unsigned long long v;
    int64_t mult = unit_ms;

    if (!isdigit((unsigned char)s[0]))
        goto bad;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        goto range;
    if (*end != '\0') {
        int i;

        for (i = 0; units[i].name != NULL; i++)
            if (strcmp(end, units[i].name) == 0)
                break;
        if (units[i].name == NULL)
            goto bad;
        mult = units[i].ms;
    }
    if (v == 0)
        return usage_error(ctx, "%s '%s' must be more than zero", what, s);
    if (v > (unsigned long long)(DURATION_MAX_MS / mult))
        goto range;
    *out_ms = (int64_t)v * mult;
    return 0;
bad:
    return usage_error(ctx,
                       "%s '%s' is not a duration (a number with an "
                       "optional unit ms, s, m, h or d)",
                       what, s);
range:
    return usage_error(ctx, "%s '%s' is too long", what, s);
}

/* ---- JSON -------------------------------------------------------------- */

json_t *jstr(const char *s)
{
    return vse__jstr(s);
}

json_t *jtime(int64_t us)
{
    return vse__jtime(us);
}

const char *resource_status(vse_db *db, const struct vse_resource *r)
{
    const vse_machine *m = db != NULL ? vse_find_machine(db, r->machine)
                                      : NULL;
    const char *st = m != NULL ? vse_machine_status(m, r->state) : NULL;

    return st != NULL ? st : "";
}

/* The shapes are src/common/json.c's: vsed serves the same. */
json_t *resource_json(const char *status, const struct vse_resource *r)
{
    return vse__json_resource(r, status);
}

json_t *event_json(const struct vse_event *e)
{
    return vse__json_event(e);
}

void print_json(json_t *j)
{
    if (j == NULL) {
        warnx_("out of memory");
        return;
    }
    json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(j);
}

/* ---- tables ------------------------------------------------------------ */

/* Display columns of s: one per UTF-8 sequence (no wide characters in
 * ids we accept would be worth a wcwidth table here). */
static int columns(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/*
 * Table rows are built in a buffer so that the padding of empty trailing
 * columns can be cut: exact outputs are easier to test and to diff.
 */
static char row[4096];
static size_t row_len;

void print_col(const char *s, int width)
{
    int n;

    if (s == NULL || s[0] == '\0')
        s = "-";
    n = snprintf(row + row_len, sizeof(row) - row_len, "%s", s);
    if (n > 0)
        row_len += (size_t)n;
    /* At least one space, even after a value wider than its column. */
    n = width - columns(s);
    for (n = n > 0 ? n + 1 : 1; n > 0 && row_len < sizeof(row) - 1; n--)
        row[row_len++] = ' ';
    if (row_len >= sizeof(row))
        row_len = sizeof(row) - 1;
    row[row_len] = '\0';
}

/* Print the row with `last` as its unpadded last column, then a newline. */
static void end_row(const char *last)
{
    print_col(last, 0);
    while (row_len > 0 && row[row_len - 1] == ' ')
        row_len--;
    row[row_len] = '\0';
    puts(row);
    row_len = 0;
}

static const char *fmt_time(int64_t us, char *buf, size_t size)
{
    if (us == 0)
        return "-";
    return vse_time_format(us, buf, size);
}

void print_resource(const char *status, const struct vse_resource *r)
{
    char since[40], lease[40], created[40], updated[40], version[24];
    const char *rows[][2] = {
        {"id", r->id},
        {"machine", r->machine},
        {"state", r->state},
        {"status", status},
        {"op", r->op},
        {"op_id", r->op_id},
        {"owner", r->owner},
        {"origin", r->origin},
        {"since", fmt_time(r->since, since, sizeof(since))},
        {"lease_expires", fmt_time(r->lease_expires, lease, sizeof(lease))},
        {"version", version},
        {"created", fmt_time(r->created, created, sizeof(created))},
        {"updated", fmt_time(r->updated, updated, sizeof(updated))},
        {"attrs", r->attrs[0] ? r->attrs : "{}"},
    };

    snprintf(version, sizeof(version), "%" PRId64, r->version);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char key[24];

        snprintf(key, sizeof(key), "%s:", rows[i][0]);
        printf("%-14s %s\n", key, rows[i][1][0] ? rows[i][1] : "-");
    }
}

void print_holds(const struct vse_resource *r, const struct vse_hold *v,
                 size_t n)
{
    const char *key = "held_by:";

    for (size_t i = 0; i < n; i++) {
        char since[40];

        if (strcmp(v[i].held, r->id) != 0)
            continue;
        printf("%-14s %s by %s '%s' (%s, owner %s, since %s)\n", key,
               vse_hold_mode_name(v[i].mode), v[i].machine, v[i].holder,
               v[i].op, v[i].owner[0] ? v[i].owner : "-",
               fmt_time(v[i].since, since, sizeof(since)));
        key = "";
    }
    for (size_t i = 0; i < n; i++) {
        char since[40];

        if (strcmp(v[i].holder, r->id) != 0)
            continue;
        printf("%-14s '%s' %s, since %s\n", "holding:", v[i].held,
               vse_hold_mode_name(v[i].mode),
               fmt_time(v[i].since, since, sizeof(since)));
        break;
    }
}

void print_history_header(void)
{
    print_col("   SEQ  VER", 0);
    print_col("AT", 27);
    print_col("KIND", 7);
    print_col("OP", 12);
    print_col("FROM → TO", 30);
    print_col("OWNER", 20);
    end_row("REASON");
}

void print_history_row(const struct vse_event *e)
{
    char at[40], move[2 * VSE_NAME_MAX + 8], num[48];
    const char *kind = vse_kind_name(e->kind);

    snprintf(move, sizeof(move), "%s → %s", e->from, e->to);
    snprintf(num, sizeof(num), "%6" PRId64 " %4" PRId64, e->seq, e->version);
    print_col(num, 0);
    print_col(fmt_time(e->at, at, sizeof(at)), 27);
    print_col(kind, 7);
    print_col(e->op, 12);
    print_col(move, 30);
    print_col(e->owner, 20);
    end_row(e->reason[0] ? e->reason : " ");
}

void print_list_header(int expiries)
{
    print_col("ID", 24);
    print_col("MACHINE", 10);
    print_col("STATE", 14);
    print_col("STATUS", 12);
    print_col("OP", 12);
    print_col("OWNER", 20);
    print_col("LEASE_EXPIRES", 27);
    if (expiries < 0) {
        print_col("VER", 4);
        end_row("HOLDS");
        return;
    }
    print_col("VER", 5);
    end_row("EXPIRIES");
}

/* "held by s1 (shared)", "held by 3 (shared)", "holds d1 (exclusive)". */
static void holds_cell(const struct vse_resource *r, const struct vse_hold *v,
                       size_t n, char *buf, size_t size)
{
    size_t held = 0, len = 0;
    const struct vse_hold *first = NULL;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].held, r->id) == 0) {
            if (first == NULL)
                first = &v[i];
            held++;
        }
    if (held == 1)
        len = (size_t)snprintf(buf, size, "held by %s (%s)", first->holder,
                               vse_hold_mode_name(first->mode));
    else if (held > 1)
        len = (size_t)snprintf(buf, size, "held by %zu (%s)", held,
                               vse_hold_mode_name(first->mode));
    for (size_t i = 0; i < n && len < size; i++)
        if (strcmp(v[i].holder, r->id) == 0) {
            snprintf(buf + len, size - len, "%sholds %s (%s)",
                     len ? "; " : "", v[i].held,
                     vse_hold_mode_name(v[i].mode));
            break;
        }
}

void print_list_row(const char *status, const struct vse_resource *r,
                    const struct vse_hold *v, size_t n, int64_t expiries)
{
    char lease[40], ver[24], holds[2 * VSE_ID_MAX + 64];

    print_col(r->id, 24);
    print_col(r->machine, 10);
    print_col(r->state, 14);
    print_col(status, 12);
    print_col(r->op, 12);
    print_col(r->owner, 20);
    print_col(fmt_time(r->lease_expires, lease, sizeof(lease)), 27);
    snprintf(ver, sizeof(ver), "%" PRId64, r->version);
    if (expiries < 0) {
        print_col(ver, 4);
        holds_cell(r, v, n, holds, sizeof(holds));
        end_row(holds);
        return;
    }
    print_col(ver, 5);
    snprintf(holds, sizeof(holds), "%" PRId64, expiries);
    end_row(holds);
}
