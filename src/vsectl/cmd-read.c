/*
 * cmd-read.c - the commands that only read: get, history, list and
 * watch.  Each prints either for people (aligned text) or, with --json,
 * for programs (one compact JSON object per line, as `watch` does).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>

#include "util.h"
#include "vsectl.h"

enum {
    OPT_JSON = OPT_FIRST_LOCAL,
    OPT_SINCE,
    OPT_LIMIT,
    OPT_MACHINE,
    OPT_STATE,
    OPT_NOT_STATE,
    OPT_BUSY,
    OPT_STUCK,
    OPT_AFTER,
    OPT_COUNT,
    OPT_TIMEOUT
};

/* Limits of what a count or a sequence number may be on the command
 * line: large enough for anything real, small enough for size_t. */
#define SEQ_MAX INT64_MAX
#define LIMIT_MAX INT64_C(1000000000)

typedef VSE_ARRAY(struct vse_hold) hold_list;

static int hold_push(void *arg, const struct vse_hold *h)
{
    return vse__array_push((hold_list *)arg, *h) < 0;
}

int cmd_get(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {NULL, 0, NULL, 0}};
    struct vse_resource r;
    struct vse_error err;
    char status[VSE_STATUS_MAX + 1];
    hold_list holds = {0};
    int json = 0, st, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == OPT_JSON)
            json = 1;
    }
    st = want_args(ctx, argc - optind, 1, 1);
    if (st == 0)
        st = check_id(ctx, "resource id", argv[optind]);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    vse_error_clear(&err);
    rc = ctx->ops->get(ctx, argv[optind], &r, status, &err);
    /* The holds on it and the one it has. */
    if (rc >= 0)
        rc = ctx->ops->holds(ctx, r.id, NULL, hold_push, &holds, &err);
    if (rc >= 0)
        rc = ctx->ops->holds(ctx, NULL, r.id, hold_push, &holds, &err);
    if (rc < 0) {
        vse__array_release(&holds);
        return report(rc, &err);
    }
    if (json) {
        json_t *j = resource_json(status, &r);

        if (j != NULL)
            vse__json_attach_holds(j, r.id, holds.v, holds.n);
        print_json(j);
    } else {
        print_resource(status, &r);
        print_holds(&r, holds.v, holds.n);
    }
    vse__array_release(&holds);
    return EXIT_DONE;
}

struct rows {
    struct ctx *ctx;
    int json;
    int64_t n;
    const struct vse_hold *holds; /* every hold, read before the list */
    size_t nholds;
};

static int history_row(void *arg, const struct vse_event *e)
{
    struct rows *w = arg;

    /* The header waits for the first row: a missing resource gets only
     * the error. */
    if (!w->json && w->n == 0)
        print_history_header();
    if (w->json)
        print_json(event_json(e));
    else
        print_history_row(e);
    w->n++;
    return out_failed();
}

int cmd_history(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"json", no_argument, NULL, OPT_JSON},
        {"since", required_argument, NULL, OPT_SINCE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {NULL, 0, NULL, 0}};
    struct rows w = {ctx, 0, 0, NULL, 0};
    struct vse_error err;
    int64_t since = 0, limit = 0;
    int st = 0, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == OPT_JSON)
            w.json = 1;
        else if (c == OPT_SINCE)
            st = parse_int(ctx, "--since", optarg, 0, SEQ_MAX, &since);
        else if (c == OPT_LIMIT)
            st = parse_int(ctx, "--limit", optarg, 1, LIMIT_MAX, &limit);
        if (st != 0)
            return st;
    }
    st = want_args(ctx, argc - optind, 1, 1);
    if (st == 0)
        st = check_id(ctx, "resource id", argv[optind]);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    vse_error_clear(&err);
    rc = ctx->ops->history(ctx, argv[optind], since, (size_t)limit,
                           history_row, &w, &err);
    if (rc < 0)
        return report(rc, &err);
    if (!w.json && w.n == 0)
        print_history_header();
    return EXIT_DONE;
}

static int list_row(void *arg, const struct vse_resource *r,
                    const char *status)
{
    struct rows *w = arg;

    if (w->json) {
        json_t *j = resource_json(status, r);

        if (j != NULL)
            vse__json_attach_holds(j, r->id, w->holds, w->nholds);
        print_json(j);
    } else {
        /* The header waits for the first row, as in history: a list
         * the store refuses prints only its error. */
        if (w->n == 0)
            print_list_header(-1);
        print_list_row(status, r, w->holds, w->nholds, -1);
    }
    w->n++;
    return out_failed();
}

/* ---- list --stuck ---- */

struct stuck_row {
    struct vse_resource r;
    char status[VSE_NAME_MAX + 1];
};

struct stuck {
    VSE_ARRAY(struct stuck_row) rows;
    int nomem;
};

static int stuck_collect(void *arg, const struct vse_resource *r,
                         const char *status)
{
    struct stuck *s = arg;
    struct stuck_row row;

    row.r = *r;
    snprintf(row.status, sizeof(row.status), "%s", status ? status : "");
    if (vse__array_push(&s->rows, row) < 0) {
        s->nomem = 1;
        return 1;
    }
    return 0;
}

/* The lease expiries since the row that began the op (the reaper counts
 * the same to spend the retry budget). */
static int count_expiries(void *arg, const struct vse_event *e)
{
    int64_t *n = arg;

    if (e->kind == VSE_KIND_BEGIN || e->kind == VSE_KIND_CREATE)
        *n = 0;
    else if (e->kind == VSE_KIND_EXPIRE)
        (*n)++;
    return 0;
}

/*
 * What waits, with how much of its retry budget it has used: the rows
 * are read first and the history of each after, so that no read runs
 * inside another's callback.  Stuck rows are few; each costs one history
 * read.
 */
static int list_stuck(struct ctx *ctx, const struct vse_filter *f, int json)
{
    struct stuck s;
    struct vse_error err;
    int rc;

    memset(&s, 0, sizeof(s));
    vse_error_clear(&err);
    rc = ctx->ops->list(ctx, f, stuck_collect, &s, &err);
    if (rc == 0 && s.nomem)
        rc = vse__err(&err, VSE_ENOMEM, "out of memory");
    if (!json && rc == 0)
        print_list_header(1);
    for (size_t i = 0; rc == 0 && i < s.rows.n; i++) {
        struct stuck_row *row = &s.rows.v[i];
        int64_t n = 0;

        rc = ctx->ops->history(ctx, row->r.id, 0, 0, count_expiries, &n,
                               &err);
        if (rc == VSE_ENOTFOUND) { /* purged since the list: skip it */
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        if (json) {
            json_t *j = resource_json(row->status, &row->r);

            json_object_set_new(j, "expiries", json_integer(n));
            print_json(j);
        } else {
            print_list_row(row->status, &row->r, NULL, 0, n);
        }
        if (out_failed())
            break;
    }
    vse__array_release(&s.rows);
    if (rc < 0)
        return report(rc, &err);
    return EXIT_DONE;
}

int cmd_list(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"json", no_argument, NULL, OPT_JSON},
        {"machine", required_argument, NULL, OPT_MACHINE},
        {"state", required_argument, NULL, OPT_STATE},
        {"not-state", required_argument, NULL, OPT_NOT_STATE},
        {"busy", no_argument, NULL, OPT_BUSY},
        {"stuck", no_argument, NULL, OPT_STUCK},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"after", required_argument, NULL, OPT_AFTER},
        {NULL, 0, NULL, 0}};
    struct rows w = {ctx, 0, 0, NULL, 0};
    hold_list holds = {0};
    struct vse_filter f;
    struct vse_error err;
    int64_t limit = 0;
    int st = 0, rc;

    memset(&f, 0, sizeof(f));
    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        switch (c) {
        case OPT_JSON: w.json = 1; break;
        case OPT_MACHINE:
            f.machine = optarg;
            st = check_name(ctx, "machine name", optarg);
            break;
        case OPT_STATE:
            f.state = optarg;
            st = check_name(ctx, "state", optarg);
            break;
        case OPT_NOT_STATE:
            f.not_state = optarg;
            st = check_name(ctx, "state", optarg);
            break;
        case OPT_BUSY: f.busy = 1; break;
        case OPT_STUCK: f.stuck = 1; break;
        case OPT_LIMIT:
            st = parse_int(ctx, "--limit", optarg, 1, LIMIT_MAX, &limit);
            break;
        case OPT_AFTER:
            f.after_id = optarg;
            st = check_id(ctx, "resource id", optarg);
            break;
        }
        if (st != 0)
            return st;
    }
    f.limit = (size_t)limit;
    st = want_args(ctx, argc - optind, 0, 0);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    if (f.stuck)
        return list_stuck(ctx, &f, w.json);
    vse_error_clear(&err);
    /* One read of every hold, before the rows: a row shows those. */
    rc = ctx->ops->holds(ctx, NULL, NULL, hold_push, &holds, &err);
    w.holds = holds.v;
    w.nholds = holds.n;
    if (rc >= 0)
        rc = ctx->ops->list(ctx, &f, list_row, &w, &err);
    vse__array_release(&holds);
    if (rc < 0)
        return report(rc, &err);
    if (!w.json && w.n == 0)
        print_list_header(-1); /* an empty table still says what it is */
    return EXIT_DONE;
}

/* ---- watch ------------------------------------------------------------- */

static volatile int stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

struct watch {
    int64_t count; /* events still wanted; -1 = no limit */
};

static int watch_event(void *arg, const struct vse_event *e)
{
    struct watch *w = arg;

    print_json(event_json(e));
    if (w->count > 0)
        w->count--;
    return w->count == 0 || out_failed() || stop_signal;
}

int cmd_watch(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"since", required_argument, NULL, OPT_SINCE},
        {"count", required_argument, NULL, OPT_COUNT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0}};
    struct watch w = {-1};
    struct sigaction sa;
    struct vse_error err;
    int64_t timeout_ms = 0, since = 0;
    int st = 0, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == OPT_SINCE)
            st = parse_int(ctx, "--since", optarg, 0, SEQ_MAX, &since);
        else if (c == OPT_COUNT)
            st = parse_int(ctx, "--count", optarg, 1, INT64_MAX, &w.count);
        else if (c == OPT_TIMEOUT)
            st = parse_duration(ctx, "--timeout", optarg, 1000, &timeout_ms);
        if (st != 0)
            return st;
    }
    st = want_args(ctx, argc - optind, 0, 0);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;

    /* No SA_RESTART: a signal should cut a wait short, not be retried. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    vse_error_clear(&err);
    rc = ctx->ops->watch(ctx, since, timeout_ms, &stop_signal, watch_event,
                         &w, &err);
    if (rc < 0 && !stop_signal)
        return report(rc, &err);
    return EXIT_DONE;
}
