/*
 * machine.c - load a machine definition from YAML, check it, and build the
 * in-memory tables (struct vse_machine in vse-int.h) that transition.c
 * tests with a few bit operations.  Every problem in the file becomes one
 * "FILE:LINE:COL: message" diagnostic; the format is in docs/machines.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libfyaml.h>

#include "vse-int.h"

/* At most this many diagnostics are kept; the rest are only counted, so
 * that a hostile file cannot make us allocate without bound. */
#define DIAGS_MAX 1000
#define DIAG_MSG_SIZE 240
#define DESCRIPTION_MAX 4096
#define STATUSES_MAX 128
#define SHOW_MAX 40 /* bytes of a subject quoted in a message */

#define BIT(i) ((uint64_t)1 << (i))

struct diag {
    int line, col;
    unsigned seq; /* order found, so that sorting is stable */
    char msg[DIAG_MSG_SIZE];
};

/* Per-state facts the loader needs but the machine does not keep. */
struct state_info {
    struct fy_node *key;
    int kind_ok; /* kind was rest or busy: checks of kind may rely on it */
};

struct loader {
    const char *file;
    struct diag *diags;
    size_t ndiags;
    size_t total; /* diagnostics found, kept or not */
    vse_machine *m;
    struct state_info st[VSE_MACHINE_STATES_MAX];
    struct fy_node *op_key[VSE_MACHINE_OPS_MAX];
    int have_statuses;
    int nstatuses;
    char statuses[STATUSES_MAX][VSE_NAME_MAX + 1];
    int edge_src; /* the step whose 'edges' targets are being read */
    int nomem;
};

static const char *const top_keys[] = {"machine",  "version", "description",
                                       "statuses", "states",  "operations"};
static const char *const state_keys[] = {"kind", "status"};
static const char *const op_keys[] = {
    "from",      "steps", "edges", "success",           "failure",
    "on_expiry", "retry", "holds", "refused_while_held"};
static const char *const retry_keys[] = {"attempts", "unclaimed"};
static const char *const hold_keys[] = {"machine", "mode"};
enum { K_MACHINE, K_VERSION, K_DESCRIPTION, K_STATUSES, K_STATES, K_OPS };
enum { S_KIND, S_STATUS };
enum {
    O_FROM,
    O_STEPS,
    O_EDGES,
    O_SUCCESS,
    O_FAILURE,
    O_EXPIRY,
    O_RETRY,
    O_HOLDS,
    O_REFUSED
};
enum { R_ATTEMPTS, R_UNCLAIMED };
enum { H_MACHINE, H_MODE };

#define NKEYS(a) ((int)(sizeof(a) / sizeof(*(a))))
/* read_keys() tracks each mapping's keys in a small fixed array. */
#define KEYS_MAX 16
_Static_assert(NKEYS(top_keys) <= KEYS_MAX && NKEYS(op_keys) <= KEYS_MAX,
               "read_keys() needs a bigger array");

/* ------------------------------------------------------------------ */
/* Diagnostics                                                         */
/* ------------------------------------------------------------------ */

/*
 * Position of a node, 1-based.  libfyaml 0.7.12 has no start mark for
 * collections, only for scalar tokens, so a collection is placed at its
 * first scalar; 0 when it has none (an empty collection or a null).
 */
static void node_pos(struct fy_node *n, int *line, int *col)
{
    *line = *col = 0;
    /* Bounded: libfyaml refuses documents deeper than 64 levels. */
    for (int depth = 0; n != NULL && depth < 128; depth++) {
        if (fy_node_is_scalar(n)) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *mk = t ? fy_token_start_mark(t) : NULL;

            if (mk != NULL && mk->line >= 0) {
                *line = mk->line + 1;
                *col = mk->column + 1;
            }
            return;
        }
        if (fy_node_is_mapping(n)) {
            void *it = NULL;
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);

            if (p == NULL)
                return;
            n = fy_node_pair_key(p) ? fy_node_pair_key(p)
                                    : fy_node_pair_value(p);
        } else if (fy_node_is_sequence(n)) {
            void *it = NULL;

            n = fy_node_sequence_iterate(n, &it);
        } else {
            return;
        }
    }
}

static void add_diag_v(struct loader *l, int line, int col, const char *fmt,
                       va_list ap)
{
    struct diag *d;

    l->total++;
    if (l->ndiags >= DIAGS_MAX)
        return;
    if (l->diags == NULL) {
        l->diags = vse__calloc(DIAGS_MAX, sizeof(*l->diags));
        if (l->diags == NULL) {
            l->nomem = 1;
            return;
        }
    }
    d = &l->diags[l->ndiags];
    d->line = line;
    d->col = col;
    d->seq = (unsigned)l->ndiags;
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    l->ndiags++;
}

static void __attribute__((format(printf, 4, 5)))
error_at(struct loader *l, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    add_diag_v(l, line, col, fmt, ap);
    va_end(ap);
}

/* Report at node n, or at `near` when n has no position of its own. */
static void __attribute__((format(printf, 4, 5)))
error_node(struct loader *l, struct fy_node *n, struct fy_node *near,
           const char *fmt, ...)
{
    va_list ap;
    int line, col;

    node_pos(n, &line, &col);
    if (line == 0)
        node_pos(near, &line, &col);
    va_start(ap, fmt);
    add_diag_v(l, line, col, fmt, ap);
    va_end(ap);
}

/*
 * A subject for a message: at most SHOW_MAX bytes, anything but printable
 * ASCII shown as '?', so that junk in a file cannot garble a terminal.
 */
static const char *show(const char *s, size_t len, char *buf, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 4 < size; i++) {
        if (i == SHOW_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    }
    buf[o] = '\0';
    return buf;
}

static int cmp_diag(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hand every diagnostic to the caller in file order; fill err. */
static int report(struct loader *l, vse_diag_fn diag, void *ctx,
                  struct vse_error *err)
{
    const struct diag *first;
    size_t more;

    if (l->ndiags == 0)
        return vse__err(err, VSE_ENOMEM, "out of memory checking '%s'",
                        l->file);
    qsort(l->diags, l->ndiags, sizeof(*l->diags), cmp_diag);
    for (size_t i = 0; diag != NULL && i < l->ndiags; i++)
        diag(ctx, l->file, l->diags[i].line, l->diags[i].col,
             l->diags[i].msg);
    if (diag != NULL && l->total > l->ndiags) {
        char msg[80];

        snprintf(msg, sizeof(msg), "%zu more errors not shown",
                 l->total - l->ndiags);
        diag(ctx, l->file, 0, 0, msg);
    }
    first = &l->diags[0];
    vse__err(err, VSE_EMACHINE, "%s:%d:%d: %s", l->file, first->line,
             first->col, first->msg);
    more = l->total - 1;
    if (more > 0)
        vse__err_hint(err, "and %zu more error%s", more,
                      more == 1 ? "" : "s");
    return VSE_EMACHINE;
}

/* ------------------------------------------------------------------ */
/* Reading nodes                                                       */
/* ------------------------------------------------------------------ */

/*
 * Refuse what a machine file has no use for and what could make one
 * document expand without bound: aliases (and so merge keys) and tags.
 * Returns 1 if n may be read.
 */
static int plain_node(struct loader *l, struct fy_node *n,
                      struct fy_node *near)
{
    size_t len;
    const char *tag;
    char b[64];

    if (n == NULL)
        return 1;
    if (fy_node_is_alias(n)) {
        const char *a = fy_node_get_scalar(n, &len);

        error_node(l, n, near,
                   "alias '*%s' is not supported in a machine "
                   "file",
                   show(a ? a : "", a ? len : 0, b, sizeof(b)));
        return 0;
    }
    tag = fy_node_get_tag(n, &len);
    if (tag != NULL) {
        error_node(l, n, near, "tag '%s' is not supported in a machine file",
                   show(tag, len, b, sizeof(b)));
        return 0;
    }
    return 1;
}

/*
 * The text of a scalar node, NUL-free, or NULL (reported) when n is not a
 * scalar.  An empty or null scalar gives "" with *len 0.
 */
static const char *scalar_text(struct loader *l, struct fy_node *n,
                               struct fy_node *near, const char *what,
                               size_t *len)
{
    const char *s;

    *len = 0;
    if (n == NULL || fy_node_is_null(n))
        return "";
    if (!plain_node(l, n, near))
        return NULL;
    if (!fy_node_is_scalar(n)) {
        error_node(l, n, near, "%s must be a scalar, not a %s", what,
                   fy_node_is_mapping(n) ? "mapping" : "sequence");
        return NULL;
    }
    s = fy_node_get_scalar(n, len);
    if (s == NULL) {
        *len = 0;
        return "";
    }
    if (memchr(s, '\0', *len) != NULL) {
        error_node(l, n, near, "%s holds a NUL character", what);
        return NULL;
    }
    return s;
}

static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len > VSE_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    return 1;
}

/* Cinder's statuses use '-' too ("in-use", "error_backing-up"). */
static int status_ok(const char *s, size_t len)
{
    if (len == 0 || len > VSE_NAME_MAX || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/*
 * Read a name (machine, state or operation) into out; 0 and a diagnostic
 * if it is not one.
 */
static int read_name(struct loader *l, struct fy_node *n,
                     struct fy_node *near, const char *what,
                     char out[VSE_NAME_MAX + 1])
{
    size_t len;
    const char *s = scalar_text(l, n, near, what, &len);
    char b[64];

    if (s == NULL)
        return 0;
    if (len == 0) {
        error_node(l, n, near, "%s is empty", what);
        return 0;
    }
    if (!name_ok(s, len)) {
        error_node(l, n, near,
                   "invalid %s '%s': a name is [a-z][a-z0-9_]*, at most %d "
                   "bytes",
                   what, show(s, len, b, sizeof(b)), VSE_NAME_MAX);
        return 0;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

/*
 * Read the keys of mapping `map` into vals[] (and their key nodes into
 * keys[]) by the names in `names`; unknown and repeated keys are reported
 * with `where` ("operation 'create'").  Returns the set of names present,
 * usable or not: keys[i] stays NULL for a value already reported (an
 * alias, a tag), so that it is neither read nor called missing.
 */
static unsigned read_keys(struct loader *l, struct fy_node *map,
                          const char *where, const char *const *names,
                          int nnames, struct fy_node **keys,
                          struct fy_node **vals)
{
    void *it = NULL;
    struct fy_node_pair *p;
    unsigned present = 0;
    struct fy_node *first[KEYS_MAX]; /* where each name was first seen */

    for (int i = 0; i < nnames; i++)
        keys[i] = vals[i] = first[i] = NULL;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        size_t len;
        const char *s;
        char b[64];
        int i;

        if (k == NULL || !fy_node_is_scalar(k) || fy_node_is_alias(k)) {
            error_node(l, k, fy_node_pair_value(p),
                       "a key in %s is not a plain name", where);
            continue;
        }
        s = scalar_text(l, k, NULL, "a key", &len);
        if (s == NULL)
            continue;
        for (i = 0; i < nnames; i++)
            if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
                break;
        if (i == nnames) {
            error_node(l, k, NULL, "unknown key '%s' in %s",
                       show(s, len, b, sizeof(b)), where);
            continue;
        }
        if (present & (1u << i)) {
            int line, col;

            node_pos(first[i], &line, &col);
            error_node(l, k, NULL,
                       "duplicate key '%s' in %s (first at %d:%d)", names[i],
                       where, line, col);
            continue;
        }
        present |= 1u << i;
        first[i] = k;
        if (!plain_node(l, fy_node_pair_value(p), k))
            continue;
        keys[i] = k;
        vals[i] = fy_node_pair_value(p);
    }
    return present;
}

/* ------------------------------------------------------------------ */
/* Name index                                                          */
/* ------------------------------------------------------------------ */

static unsigned slot_of(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & 255;
}

/* 256 slots for at most 64 names: probes stay short and always end. */
static void index_add(uint8_t slots[256], const char *name, int idx)
{
    unsigned s = slot_of(name);

    while (slots[s] != 0)
        s = (s + 1) & 255;
    slots[s] = (uint8_t)(idx + 1);
}

int vse__machine_state(const vse_machine *m, const char *name)
{
    if (m == NULL || name == NULL)
        return -1;
    for (unsigned s = slot_of(name), n = 0; n < 256; s = (s + 1) & 255, n++) {
        int i = m->state_slots[s];

        if (i == 0)
            return -1;
        if (strcmp(m->states[i - 1].name, name) == 0)
            return i - 1;
    }
    return -1;
}

int vse__machine_op(const vse_machine *m, const char *name)
{
    if (m == NULL || name == NULL)
        return -1;
    for (unsigned s = slot_of(name), n = 0; n < 256; s = (s + 1) & 255, n++) {
        int i = m->op_slots[s];

        if (i == 0)
            return -1;
        if (strcmp(m->ops[i - 1].name, name) == 0)
            return i - 1;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Top level, statuses, states                                         */
/* ------------------------------------------------------------------ */

static void read_version(struct loader *l, struct fy_node *n,
                         struct fy_node *key)
{
    size_t len;
    const char *s = scalar_text(l, n, key, "'version'", &len);
    char buf[32], b[64];
    char *end;
    long v;

    if (s == NULL)
        return;
    /* A quoted "1" is a string in YAML: insist on a plain integer. */
    if (len == 0 || len >= sizeof(buf) ||
        fy_node_get_style(n) != FYNS_PLAIN) {
        error_node(l, n, key, "'version' must be an integer, not '%s'",
                   show(s, len, b, sizeof(b)));
        return;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (*end != '\0' || errno != 0 || buf[0] == '+' || buf[0] == ' ') {
        error_node(l, n, key, "'version' must be an integer, not '%s'",
                   show(s, len, b, sizeof(b)));
        return;
    }
    if (v < 1 || v > 1000000000) {
        error_node(l, n, key, "'version' %ld is out of range (1..1000000000)",
                   v);
        return;
    }
    l->m->version = (int)v;
}

static void read_description(struct loader *l, struct fy_node *n,
                             struct fy_node *key)
{
    size_t len;
    const char *s = scalar_text(l, n, key, "'description'", &len);

    if (s == NULL)
        return;
    if (len > DESCRIPTION_MAX) {
        error_node(l, n, key,
                   "'description' is %zu bytes long, the limit is "
                   "%d",
                   len, DESCRIPTION_MAX);
        return;
    }
    l->m->description = vse__malloc(len + 1);
    if (l->m->description == NULL) {
        l->nomem = 1;
        return;
    }
    memcpy(l->m->description, s, len);
    l->m->description[len] = '\0';
}

static void read_statuses(struct loader *l, struct fy_node *n,
                          struct fy_node *key)
{
    void *it = NULL;
    struct fy_node *item;

    if (n == NULL || !fy_node_is_sequence(n)) {
        error_node(l, n, key, "'statuses' must be a list of statuses");
        return;
    }
    l->have_statuses = 1;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        size_t len;
        const char *s = scalar_text(l, item, key, "a status", &len);
        char b[64];
        int dup = 0;

        if (s == NULL)
            continue;
        if (!status_ok(s, len)) {
            error_node(l, item, key,
                       "invalid status '%s': a status is [a-z][a-z0-9_-]*, "
                       "at most %d bytes",
                       show(s, len, b, sizeof(b)), VSE_NAME_MAX);
            continue;
        }
        for (int i = 0; i < l->nstatuses && !dup; i++)
            dup = strlen(l->statuses[i]) == len &&
                  memcmp(l->statuses[i], s, len) == 0;
        if (dup) {
            error_node(l, item, key, "duplicate status '%s' in 'statuses'",
                       show(s, len, b, sizeof(b)));
            continue;
        }
        if (l->nstatuses == STATUSES_MAX) {
            error_node(l, item, key, "more than %d statuses", STATUSES_MAX);
            return;
        }
        memcpy(l->statuses[l->nstatuses], s, len);
        l->statuses[l->nstatuses][len] = '\0';
        l->nstatuses++;
    }
}

static int find_state(const struct loader *l, const char *name)
{
    for (int i = 0; i < l->m->nstates; i++)
        if (strcmp(l->m->states[i].name, name) == 0)
            return i;
    return -1;
}

static void read_kind(struct loader *l, int idx, struct fy_node *n,
                      struct fy_node *key)
{
    struct vse__state *st = &l->m->states[idx];
    size_t len;
    const char *s = scalar_text(l, n, key, "'kind'", &len);
    char b[64];

    if (s == NULL)
        return;
    if (len == 4 && memcmp(s, "rest", 4) == 0) {
        st->busy = 0;
        l->st[idx].kind_ok = 1;
    } else if (len == 4 && memcmp(s, "busy", 4) == 0) {
        st->busy = 1;
        l->st[idx].kind_ok = 1;
    } else {
        error_node(l, n, key,
                   "unknown kind '%s' of state '%s': expected rest or busy",
                   show(s, len, b, sizeof(b)), st->name);
    }
}

static void read_state_body(struct loader *l, int idx, struct fy_node *key,
                            struct fy_node *body)
{
    struct vse__state *st = &l->m->states[idx];
    struct fy_node *keys[NKEYS(state_keys)], *vals[NKEYS(state_keys)];
    char where[VSE_NAME_MAX + 16], b[64];
    const char *s;
    size_t len;
    unsigned present;

    if (!plain_node(l, body, key))
        return;
    if (body == NULL || !fy_node_is_mapping(body)) {
        error_node(l, body, key,
                   "state '%s' must be a mapping with 'kind' and 'status'",
                   st->name);
        return;
    }
    snprintf(where, sizeof(where), "state '%s'", st->name);
    present = read_keys(l, body, where, state_keys, NKEYS(state_keys), keys,
                        vals);

    if (!(present & (1u << S_KIND)))
        error_node(l, key, NULL, "state '%s' has no 'kind' (rest or busy)",
                   st->name);
    else if (keys[S_KIND] != NULL)
        read_kind(l, idx, vals[S_KIND], keys[S_KIND]);

    if (!(present & (1u << S_STATUS))) {
        error_node(l, key, NULL, "state '%s' has no 'status'", st->name);
        return;
    }
    if (keys[S_STATUS] == NULL)
        return;
    s = scalar_text(l, vals[S_STATUS], keys[S_STATUS], "'status'", &len);
    if (s == NULL)
        return;
    if (len == 0) {
        error_node(l, vals[S_STATUS], keys[S_STATUS],
                   "status of state '%s' is empty", st->name);
        return;
    }
    if (!status_ok(s, len)) {
        error_node(l, vals[S_STATUS], keys[S_STATUS],
                   "invalid status '%s' of state '%s': a status is "
                   "[a-z][a-z0-9_-]*, at most %d bytes",
                   show(s, len, b, sizeof(b)), st->name, VSE_NAME_MAX);
        return;
    }
    memcpy(st->status, s, len);
    st->status[len] = '\0';
    if (l->have_statuses) {
        int i;

        for (i = 0; i < l->nstatuses; i++)
            if (strcmp(l->statuses[i], st->status) == 0)
                break;
        if (i == l->nstatuses)
            error_node(l, vals[S_STATUS], keys[S_STATUS],
                       "status '%s' of state '%s' is not in 'statuses'",
                       st->status, st->name);
    }
}

static void read_states(struct loader *l, struct fy_node *n,
                        struct fy_node *key)
{
    void *it = NULL;
    struct fy_node_pair *p;

    if (n == NULL || !fy_node_is_mapping(n)) {
        error_node(l, n, key, "'states' must be a mapping of state names");
        return;
    }
    if (fy_node_mapping_item_count(n) == 0) {
        error_node(l, n, key, "'states' is empty");
        return;
    }
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char name[VSE_NAME_MAX + 1];
        int dup, idx;

        if (!read_name(l, k, fy_node_pair_value(p), "state name", name))
            continue;
        if (strcmp(name, VSE_STATE_NEW) == 0) {
            error_node(l, k, NULL,
                       "'new' is reserved for the pseudo-state before "
                       "creation and cannot be a state name");
            continue;
        }
        dup = find_state(l, name);
        if (dup >= 0) {
            error_node(l, k, NULL,
                       "duplicate state '%s' (first declared at %d:%d)", name,
                       l->m->states[dup].line, l->m->states[dup].col);
            continue;
        }
        if (l->m->nstates == VSE_MACHINE_STATES_MAX) {
            error_node(l, k, NULL, "more than %d states",
                       VSE_MACHINE_STATES_MAX);
            return;
        }
        idx = l->m->nstates++;
        vse__strlcpy(l->m->states[idx].name, name, VSE_NAME_MAX + 1);
        node_pos(k, &l->m->states[idx].line, &l->m->states[idx].col);
        l->st[idx].key = k;
        read_state_body(l, idx, k, fy_node_pair_value(p));
    }
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

/* What a state reference must be. */
enum want { WANT_ANY, WANT_REST, WANT_BUSY };

/*
 * Resolve a state name in an operation; -1 (reported) if it is not a
 * declared state.  `role` says where it was found ("'success' of operation
 * 'create'").  A state whose kind was itself wrong passes, so that one
 * mistake is reported once.
 */
static int ref_state(struct loader *l, struct fy_node *n,
                     struct fy_node *near, const char *role, enum want want)
{
    size_t len;
    const char *s = scalar_text(l, n, near, "a state name", &len);
    char name[VSE_NAME_MAX + 1], b[64];
    int i;

    if (s == NULL)
        return -1;
    if (len == 0) {
        error_node(l, n, near, "empty state name in %s", role);
        return -1;
    }
    if (len > VSE_NAME_MAX) {
        error_node(l, n, near, "unknown state '%s' in %s",
                   show(s, len, b, sizeof(b)), role);
        return -1;
    }
    memcpy(name, s, len);
    name[len] = '\0';
    if (strcmp(name, VSE_STATE_NEW) == 0) {
        error_node(l, n, near, "'new' in %s: 'new' is only allowed in 'from'",
                   role);
        return -1;
    }
    i = find_state(l, name);
    if (i < 0) {
        error_node(l, n, near, "unknown state '%s' in %s",
                   show(s, len, b, sizeof(b)), role);
        return -1;
    }
    if (!l->st[i].kind_ok)
        return i;
    if (want == WANT_REST && l->m->states[i].busy) {
        error_node(l, n, near,
                   "busy state '%s' in %s: it must be a rest "
                   "state",
                   name, role);
        return -1;
    }
    if (want == WANT_BUSY && !l->m->states[i].busy) {
        error_node(l, n, near,
                   "rest state '%s' in %s: it must be a busy "
                   "state",
                   name, role);
        return -1;
    }
    return i;
}

/*
 * Iterate a "state or list of states" value: calls fn for each item node.
 * Returns the number of items, or -1 (reported) for a wrong type.
 */
typedef void list_fn(struct loader *l, struct vse__op *op,
                     struct fy_node *item, struct fy_node *key,
                     const char *role);

static int for_list(struct loader *l, struct vse__op *op, struct fy_node *n,
                    struct fy_node *key, const char *role, list_fn *fn)
{
    void *it = NULL;
    struct fy_node *item;
    int count = 0;

    if (n == NULL || fy_node_is_null(n))
        return 0;
    if (fy_node_is_scalar(n)) {
        fn(l, op, n, key, role);
        return 1;
    }
    if (!fy_node_is_sequence(n)) {
        error_node(l, n, key, "%s must be a state name or a list of them",
                   role);
        return -1;
    }
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        if (!plain_node(l, item, key))
            continue;
        if (!fy_node_is_scalar(item)) {
            error_node(l, item, key, "%s must list state names", role);
            continue;
        }
        fn(l, op, item, key, role);
        count++;
    }
    return count;
}

static void add_from(struct loader *l, struct vse__op *op,
                     struct fy_node *item, struct fy_node *key,
                     const char *role)
{
    size_t len;
    const char *s = scalar_text(l, item, key, "a state name", &len);
    int i;

    if (s == NULL)
        return;
    if (len == 3 && memcmp(s, VSE_STATE_NEW, 3) == 0) {
        if (op->from_new)
            error_node(l, item, key, "'new' repeated in %s", role);
        op->from_new = 1;
        return;
    }
    i = ref_state(l, item, key, role, WANT_REST);
    if (i < 0)
        return;
    if (op->from & BIT(i))
        error_node(l, item, key, "state '%s' repeated in %s",
                   l->m->states[i].name, role);
    op->from |= BIT(i);
}

static void add_step(struct loader *l, struct vse__op *op,
                     struct fy_node *item, struct fy_node *key,
                     const char *role)
{
    int i = ref_state(l, item, key, role, WANT_BUSY);

    if (i < 0)
        return;
    if (op->busy & BIT(i)) {
        error_node(l, item, key, "step '%s' repeated in operation '%s'",
                   l->m->states[i].name, op->name);
        return;
    }
    op->busy |= BIT(i);
    op->steps[op->nsteps++] = i;
}

static void add_success(struct loader *l, struct vse__op *op,
                        struct fy_node *item, struct fy_node *key,
                        const char *role)
{
    int i = ref_state(l, item, key, role, WANT_REST);

    if (i < 0)
        return;
    if (op->success & BIT(i))
        error_node(l, item, key, "state '%s' repeated in %s",
                   l->m->states[i].name, role);
    op->success |= BIT(i);
}

static void add_edge(struct loader *l, struct vse__op *op,
                     struct fy_node *item, struct fy_node *key,
                     const char *role)
{
    const struct vse__state *st = l->m->states;
    int edge_src = l->edge_src;
    int t = ref_state(l, item, key, role, WANT_ANY);

    if (t < 0)
        return;
    if (t == edge_src) {
        error_node(l, item, key, "self-edge on step '%s' of operation '%s'",
                   st[t].name, op->name);
    } else if (op->busy & BIT(t)) {
        op->step_to[edge_src] |= BIT(t);
    } else if (op->success & BIT(t)) {
        op->finish_to[edge_src] |= BIT(t);
    } else {
        error_node(l, item, key,
                   "edge target '%s' of step '%s' is neither a step nor a "
                   "success state of operation '%s'",
                   st[t].name, st[edge_src].name, op->name);
    }
}

static void read_edges(struct loader *l, struct vse__op *op,
                       struct fy_node *n, struct fy_node *key)
{
    void *it = NULL;
    struct fy_node_pair *p;

    if (n == NULL || fy_node_is_null(n))
        return;
    if (!fy_node_is_mapping(n)) {
        error_node(l, n, key,
                   "'edges' of operation '%s' must be a mapping "
                   "from steps to states",
                   op->name);
        return;
    }
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char role[2 * VSE_NAME_MAX + 48];
        int s;

        snprintf(role, sizeof(role), "'edges' of operation '%s'", op->name);
        s = ref_state(l, k, fy_node_pair_value(p), role, WANT_ANY);
        if (s < 0)
            continue;
        if (!(op->busy & BIT(s))) {
            error_node(l, k, NULL,
                       "edge from '%s', which is not a step of operation "
                       "'%s'",
                       l->m->states[s].name, op->name);
            continue;
        }
        l->edge_src = s;
        for_list(l, op, fy_node_pair_value(p), k, role, add_edge);
    }
}

static enum vse__expiry parse_policy(struct loader *l, struct vse__op *op,
                                     struct fy_node *n, struct fy_node *key)
{
    size_t len;
    const char *s = scalar_text(l, n, key, "an expiry policy", &len);
    enum vse__expiry e = VSE_EXPIRY_NONE;
    char b[64];

    if (s == NULL)
        return VSE_EXPIRY_NONE;
    if (len == 5 && memcmp(s, "retry", 5) == 0)
        e = VSE_EXPIRY_RETRY;
    else if (len == 4 && memcmp(s, "fail", 4) == 0)
        e = VSE_EXPIRY_FAIL;
    else if (len == 6 && memcmp(s, "revert", 6) == 0)
        e = VSE_EXPIRY_REVERT;
    if (e == VSE_EXPIRY_NONE) {
        error_node(l, n, key,
                   "unknown expiry policy '%s' in operation '%s': expected "
                   "retry, fail or revert",
                   show(s, len, b, sizeof(b)), op->name);
        return VSE_EXPIRY_NONE;
    }
    if (e == VSE_EXPIRY_REVERT && op->from_new) {
        error_node(l, n, key,
                   "expiry policy 'revert' in operation '%s', which starts "
                   "from 'new': there is nothing to go back to",
                   op->name);
        return VSE_EXPIRY_NONE;
    }
    return e;
}

/* Returns 0 if on_expiry itself was unusable (then no step is blamed). */
static int read_expiry(struct loader *l, struct vse__op *op,
                       struct fy_node *n, struct fy_node *key)
{
    void *it = NULL;
    struct fy_node_pair *p;

    if (fy_node_is_scalar(n)) {
        enum vse__expiry e = parse_policy(l, op, n, key);

        if (e == VSE_EXPIRY_NONE)
            return 0;
        for (int i = 0; i < op->nsteps; i++)
            op->expiry[op->steps[i]] = e;
        return 1;
    }
    if (!fy_node_is_mapping(n)) {
        error_node(l, n, key,
                   "'on_expiry' of operation '%s' must be a policy or a "
                   "mapping from steps to policies",
                   op->name);
        return 0;
    }
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char role[VSE_NAME_MAX + 40];
        enum vse__expiry e;
        int s;

        snprintf(role, sizeof(role), "'on_expiry' of operation '%s'",
                 op->name);
        s = ref_state(l, k, fy_node_pair_value(p), role, WANT_ANY);
        if (s < 0)
            continue;
        if (!(op->busy & BIT(s))) {
            error_node(l, k, NULL,
                       "'on_expiry' of operation '%s' names '%s', which is "
                       "not one of its steps",
                       op->name, l->m->states[s].name);
            continue;
        }
        if (op->expiry[s] != VSE_EXPIRY_NONE) {
            error_node(l, k, NULL,
                       "step '%s' repeated in 'on_expiry' of "
                       "operation '%s'",
                       l->m->states[s].name, op->name);
            continue;
        }
        e = parse_policy(l, op, fy_node_pair_value(p), k);
        /* A wrong policy is already reported: do not also call it
         * missing. */
        op->expiry[s] = e != VSE_EXPIRY_NONE ? e : VSE_EXPIRY_FAIL;
    }
    return 1;
}

/* "shared" or "exclusive" -> VSE_HOLD_*, 0 (reported) otherwise. */
static int read_mode(struct loader *l, struct fy_node *n, struct fy_node *key,
                     const char *role)
{
    size_t len;
    const char *s = scalar_text(l, n, key, role, &len);
    char b[64];

    if (s == NULL)
        return 0;
    if (len == 6 && memcmp(s, "shared", 6) == 0)
        return VSE_HOLD_SHARED;
    if (len == 9 && memcmp(s, "exclusive", 9) == 0)
        return VSE_HOLD_EXCLUSIVE;
    error_node(l, n, key,
               "unknown hold mode '%s' in %s: expected shared or "
               "exclusive",
               show(s, len, b, sizeof(b)), role);
    return 0;
}

/*
 * holds: {machine: M, mode: shared|exclusive}.  The held machine is
 * another file: whether it is loaded is known only when an op begins.
 */
static void read_holds(struct loader *l, struct vse__op *op,
                       struct fy_node *n, struct fy_node *key)
{
    struct fy_node *keys[NKEYS(hold_keys)], *vals[NKEYS(hold_keys)];
    char where[VSE_NAME_MAX + 40];
    unsigned present;

    snprintf(where, sizeof(where), "'holds' of operation '%s'", op->name);
    if (n == NULL || !fy_node_is_mapping(n)) {
        error_node(l, n, key,
                   "%s must be a mapping {machine: NAME, mode: shared or "
                   "exclusive}",
                   where);
        return;
    }
    present = read_keys(l, n, where, hold_keys, NKEYS(hold_keys), keys, vals);
    for (int i = 0; i < NKEYS(hold_keys); i++)
        if (!(present & (1u << i)))
            error_node(l, key, NULL, "%s has no '%s'", where, hold_keys[i]);
    if (keys[H_MACHINE] != NULL &&
        !read_name(l, vals[H_MACHINE], keys[H_MACHINE], "held machine name",
                   op->hold_machine))
        op->hold_machine[0] = '\0';
    if (keys[H_MODE] != NULL)
        op->hold_mode = read_mode(l, vals[H_MODE], keys[H_MODE], where);
    if (op->hold_machine[0] == '\0' || op->hold_mode == 0) {
        op->hold_machine[0] = '\0';
        op->hold_mode = 0;
    }
}

/* refused_while_held: a mode or a list of modes. */
static void read_refused(struct loader *l, struct vse__op *op,
                         struct fy_node *n, struct fy_node *key)
{
    char where[VSE_NAME_MAX + 60];
    struct fy_node *item;
    void *it = NULL;

    snprintf(where, sizeof(where), "'refused_while_held' of operation '%s'",
             op->name);
    if (n != NULL && fy_node_is_scalar(n) && !fy_node_is_null(n)) {
        op->refused_while_held = (unsigned)read_mode(l, n, key, where);
        return;
    }
    if (n == NULL || !fy_node_is_sequence(n)) {
        error_node(l, n, key,
                   "%s must be a hold mode or a list of them (shared, "
                   "exclusive)",
                   where);
        return;
    }
    if (fy_node_sequence_item_count(n) == 0) {
        error_node(l, n, key, "%s is empty", where);
        return;
    }
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
        int mode;

        if (!plain_node(l, item, key))
            continue;
        mode = read_mode(l, item, key, where);
        if (mode != 0 && (op->refused_while_held & (unsigned)mode)) {
            error_node(l, item, key, "hold mode '%s' repeated in %s",
                       vse_hold_mode_name(mode), where);
            continue;
        }
        op->refused_while_held |= (unsigned)mode;
    }
}

/* ---- the retry budget ---- */

int vse__op_retries(const struct vse__op *op)
{
    for (int i = 0; i < op->nsteps; i++)
        if (op->expiry[op->steps[i]] == VSE_EXPIRY_RETRY)
            return 1;
    return 0;
}

char *vse__duration_format(int64_t us, char *buf, size_t size)
{
    int64_t t = us / 1000000;
    int64_t h = t / 3600, m = t / 60 % 60, sec = t % 60;

    if (h > 0)
        snprintf(buf, size, "%" PRId64 "h%" PRId64 "m%" PRId64 "s", h, m,
                 sec);
    else if (m > 0)
        snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", m, sec);
    else
        snprintf(buf, size, "%" PRId64 "s", sec);
    return buf;
}

/*
 * A duration: one to three groups of digits with a unit, in the order h,
 * m, s, each unit at most once ("30s", "10m", "1h30m", "10m0s", the form
 * vse prints).  Returns the microseconds, or -1 if s is not one; a value
 * too large to be in range gives INT64_MAX, so the caller says "out of
 * range" rather than "not a duration".
 */
static int64_t parse_duration(const char *s, size_t len)
{
    static const char units[] = "hms";
    static const int64_t scale[] = {3600, 60, 1};
    int64_t total = 0;
    size_t i = 0;
    int next = 0, groups = 0;

    while (i < len) {
        int64_t v = 0;
        size_t start = i;
        const char *u;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (v < INT64_C(1000000000))
                v = v * 10 + (s[i] - '0');
            i++;
        }
        if (i == start || i == len)
            return -1;
        u = memchr(units + next, s[i], strlen(units + next));
        if (u == NULL)
            return -1;
        next = (int)(u - units) + 1;
        total += v * scale[u - units];
        groups++;
        i++;
    }
    if (groups == 0)
        return -1;
    if (total > VSE_RETRY_UNCLAIMED_MAX_US / 1000000)
        return INT64_MAX;
    return total * 1000000;
}

static void read_attempts(struct loader *l, struct vse__op *op,
                          struct fy_node *n, struct fy_node *key)
{
    size_t len;
    const char *s = scalar_text(l, n, key, "'attempts'", &len);
    char buf[32], b[64];
    char *end;
    long v;

    if (s == NULL)
        return;
    /* As 'version': a quoted "3" is a string, not a count. */
    if (len == 0 || len >= sizeof(buf) ||
        fy_node_get_style(n) != FYNS_PLAIN) {
        error_node(l, n, key,
                   "'attempts' of operation '%s' must be an integer, not "
                   "'%s'",
                   op->name, show(s, len, b, sizeof(b)));
        return;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (*end != '\0' || errno != 0 || buf[0] == '+' || buf[0] == ' ') {
        error_node(l, n, key,
                   "'attempts' of operation '%s' must be an integer, not "
                   "'%s'",
                   op->name, show(s, len, b, sizeof(b)));
        return;
    }
    if (v < 1 || v > VSE_RETRY_ATTEMPTS_MAX) {
        error_node(l, n, key,
                   "'attempts' %ld of operation '%s' is out of range "
                   "(1..%d)",
                   v, op->name, VSE_RETRY_ATTEMPTS_MAX);
        return;
    }
    op->retry_attempts = (int)v;
}

static void read_unclaimed(struct loader *l, struct vse__op *op,
                           struct fy_node *n, struct fy_node *key)
{
    size_t len;
    const char *s = scalar_text(l, n, key, "'unclaimed'", &len);
    char b[64];
    int64_t us;

    if (s == NULL)
        return;
    us = parse_duration(s, len);
    if (us < 0) {
        error_node(l, n, key,
                   "'unclaimed' of operation '%s' must be a duration such "
                   "as 30s, 10m or 1h30m, not '%s'",
                   op->name, show(s, len, b, sizeof(b)));
        return;
    }
    if (us < 1000000 || us > VSE_RETRY_UNCLAIMED_MAX_US) {
        error_node(l, n, key,
                   "'unclaimed' %s of operation '%s' is out of range "
                   "(1s..168h)",
                   show(s, len, b, sizeof(b)), op->name);
        return;
    }
    op->retry_unclaimed_us = us;
}

/*
 * `retry: {attempts: N, unclaimed: DURATION}`; a key left out keeps its
 * default.  Read after on_expiry: a budget only means something for an
 * op that has a step to retry.
 */
static void read_retry(struct loader *l, struct vse__op *op,
                       struct fy_node *n, struct fy_node *key)
{
    struct fy_node *keys[NKEYS(retry_keys)], *vals[NKEYS(retry_keys)];
    char where[VSE_NAME_MAX + 40];

    if (n == NULL || fy_node_is_null(n) || !fy_node_is_mapping(n)) {
        error_node(l, n, key,
                   "'retry' of operation '%s' must be a mapping such as "
                   "{attempts: 5, unclaimed: 10m}",
                   op->name);
        return;
    }
    snprintf(where, sizeof(where), "'retry' of operation '%s'", op->name);
    read_keys(l, n, where, retry_keys, NKEYS(retry_keys), keys, vals);
    if (keys[R_ATTEMPTS] != NULL)
        read_attempts(l, op, vals[R_ATTEMPTS], keys[R_ATTEMPTS]);
    if (keys[R_UNCLAIMED] != NULL)
        read_unclaimed(l, op, vals[R_UNCLAIMED], keys[R_UNCLAIMED]);
}

static void read_op_body(struct loader *l, struct vse__op *op,
                         struct fy_node *key, struct fy_node *body)
{
    struct fy_node *keys[NKEYS(op_keys)], *vals[NKEYS(op_keys)];
    char where[VSE_NAME_MAX + 16], role[VSE_NAME_MAX + 40];
    size_t nerr = l->total;
    int n, expiry_ok = 0;
    unsigned present;

    if (!plain_node(l, body, key))
        return;
    if (body == NULL || !fy_node_is_mapping(body)) {
        error_node(l, body, key, "operation '%s' must be a mapping",
                   op->name);
        return;
    }
    snprintf(where, sizeof(where), "operation '%s'", op->name);
    present = read_keys(l, body, where, op_keys, NKEYS(op_keys), keys, vals);
    for (int i = 0; i < NKEYS(op_keys); i++)
        if (!(present & (1u << i)) && i != O_EDGES && i != O_EXPIRY &&
            i != O_RETRY && i != O_HOLDS && i != O_REFUSED)
            error_node(l, key, NULL, "operation '%s' has no '%s'", op->name,
                       op_keys[i]);
    op->failure = -1;

    if (keys[O_FROM] != NULL) {
        snprintf(role, sizeof(role), "'from' of operation '%s'", op->name);
        n = for_list(l, op, vals[O_FROM], keys[O_FROM], role, add_from);
        if (n == 0)
            error_node(l, vals[O_FROM], keys[O_FROM], "%s is empty", role);
    }
    if (keys[O_STEPS] != NULL) {
        snprintf(role, sizeof(role), "'steps' of operation '%s'", op->name);
        n = for_list(l, op, vals[O_STEPS], keys[O_STEPS], role, add_step);
        if (n == 0)
            error_node(l, vals[O_STEPS], keys[O_STEPS], "%s is empty", role);
    }
    if (keys[O_SUCCESS] != NULL) {
        snprintf(role, sizeof(role), "'success' of operation '%s'", op->name);
        /* An empty list is left to the "cannot reach a rest state"
         * check, which says what it means. */
        for_list(l, op, vals[O_SUCCESS], keys[O_SUCCESS], role, add_success);
    }
    if (keys[O_FAILURE] != NULL) {
        snprintf(role, sizeof(role), "'failure' of operation '%s'", op->name);
        if (vals[O_FAILURE] == NULL || fy_node_is_null(vals[O_FAILURE]))
            error_node(l, vals[O_FAILURE], keys[O_FAILURE], "%s is empty",
                       role);
        else if (!fy_node_is_scalar(vals[O_FAILURE]))
            error_node(l, vals[O_FAILURE], keys[O_FAILURE],
                       "%s must be one state name", role);
        else
            op->failure = ref_state(l, vals[O_FAILURE], keys[O_FAILURE], role,
                                    WANT_REST);
    }

    /* The linear path: begin enters steps[0], each step moves to the
     * next, the last one finishes in any success state. */
    for (int i = 0; i + 1 < op->nsteps; i++)
        op->step_to[op->steps[i]] |= BIT(op->steps[i + 1]);
    if (op->nsteps > 0)
        op->finish_to[op->steps[op->nsteps - 1]] |= op->success;

    if (keys[O_EDGES] != NULL)
        read_edges(l, op, vals[O_EDGES], keys[O_EDGES]);
    /* From every step some success state must stay reachable.  Only
     * worth asking when the op's own lists were read cleanly. */
    if (l->total == nerr && op->nsteps > 0) {
        uint64_t ok = 0, prev;

        do {
            prev = ok;
            for (int i = 0; i < op->nsteps; i++) {
                int s = op->steps[i];

                if (op->finish_to[s] != 0 || (op->step_to[s] & ok))
                    ok |= BIT(s);
            }
        } while (ok != prev);
        for (int i = 0; i < op->nsteps; i++)
            if (!(ok & BIT(op->steps[i]))) {
                error_node(l, key, NULL,
                           "operation '%s' cannot reach a rest state from "
                           "step '%s'",
                           op->name, l->m->states[op->steps[i]].name);
                break;
            }
    }

    if (vals[O_EXPIRY] != NULL && !fy_node_is_null(vals[O_EXPIRY]))
        expiry_ok = read_expiry(l, op, vals[O_EXPIRY], keys[O_EXPIRY]);
    else /* absent: every step lacks a policy, say so; not if unusable */
        expiry_ok = !(present & (1u << O_EXPIRY)) || keys[O_EXPIRY] != NULL;
    for (int i = 0; expiry_ok && i < op->nsteps; i++)
        if (op->expiry[op->steps[i]] == VSE_EXPIRY_NONE)
            error_node(l, key, NULL,
                       "busy state '%s' has no expiry policy in operation "
                       "'%s'",
                       l->m->states[op->steps[i]].name, op->name);
    if (keys[O_HOLDS] != NULL)
        read_holds(l, op, vals[O_HOLDS], keys[O_HOLDS]);
    if (keys[O_REFUSED] != NULL)
        read_refused(l, op, vals[O_REFUSED], keys[O_REFUSED]);

    if (keys[O_RETRY] != NULL) {
        read_retry(l, op, vals[O_RETRY], keys[O_RETRY]);
        /* Blame the budget only when the policies were read cleanly: a
         * misspelt `retry` policy must not also make this an error. */
        if (expiry_ok && l->total == nerr && !vse__op_retries(op))
            error_node(l, keys[O_RETRY], NULL,
                       "'retry' in operation '%s', which has no step whose "
                       "expiry policy is retry: the budget would never "
                       "apply",
                       op->name);
    }
    /* Every op that hands steps back has a budget (the defaults unless
     * declared), so that no op waits for a claim forever. */
    if (vse__op_retries(op)) {
        if (op->retry_attempts == 0)
            op->retry_attempts = VSE_RETRY_ATTEMPTS_DEFAULT;
        if (op->retry_unclaimed_us == 0)
            op->retry_unclaimed_us = VSE_RETRY_UNCLAIMED_DEFAULT_US;
    } else {
        op->retry_attempts = 0;
        op->retry_unclaimed_us = 0;
    }
}

static void read_ops(struct loader *l, struct fy_node *n, struct fy_node *key)
{
    void *it = NULL;
    struct fy_node_pair *p;

    if (n == NULL || !fy_node_is_mapping(n)) {
        error_node(l, n, key,
                   "'operations' must be a mapping of operation names");
        return;
    }
    if (fy_node_mapping_item_count(n) == 0) {
        error_node(l, n, key, "'operations' is empty");
        return;
    }
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        char name[VSE_NAME_MAX + 1];
        struct vse__op *op;
        int i;

        if (!read_name(l, k, fy_node_pair_value(p), "operation name", name))
            continue;
        for (i = 0; i < l->m->nops; i++)
            if (strcmp(l->m->ops[i].name, name) == 0)
                break;
        if (i < l->m->nops) {
            error_node(l, k, NULL,
                       "duplicate operation '%s' (first declared at %d:%d)",
                       name, l->m->ops[i].line, l->m->ops[i].col);
            continue;
        }
        if (l->m->nops == VSE_MACHINE_OPS_MAX) {
            error_node(l, k, NULL, "more than %d operations",
                       VSE_MACHINE_OPS_MAX);
            return;
        }
        op = &l->m->ops[l->m->nops];
        l->op_key[l->m->nops] = k;
        l->m->nops++;
        vse__strlcpy(op->name, name, sizeof(op->name));
        node_pos(k, &op->line, &op->col);
        read_op_body(l, op, k, fy_node_pair_value(p));
    }
}

/* ------------------------------------------------------------------ */
/* Whole-machine checks                                                */
/* ------------------------------------------------------------------ */

/*
 * Which states can a resource ever be in?  A walk from `new` over pairs
 * (op, step) and rest states: being in a busy state inside one op says
 * nothing about another op that shares it.  At most 64 + 64 * 64 nodes.
 */
static void check_reachable(struct loader *l)
{
    const vse_machine *m = l->m;
    uint64_t rest = 0, seen_states = 0;
    uint64_t in_op[VSE_MACHINE_OPS_MAX] = {0};
    int changed = 1;

    for (int o = 0; o < m->nops; o++)
        if (m->ops[o].from_new && m->ops[o].nsteps > 0)
            in_op[o] |= BIT(m->ops[o].steps[0]);
    /* A fixed point: every pass adds states or stops; at most 4160. */
    while (changed) {
        changed = 0;
        for (int o = 0; o < m->nops; o++) {
            const struct vse__op *op = &m->ops[o];
            uint64_t cur = in_op[o], r = rest;

            if (op->nsteps == 0)
                continue;
            if (op->from & rest)
                cur |= BIT(op->steps[0]);
            for (int i = 0; i < op->nsteps; i++) {
                int s = op->steps[i];

                if (!(cur & BIT(s)))
                    continue;
                cur |= op->step_to[s];
                r |= op->finish_to[s];
                if (op->failure >= 0)
                    r |= BIT(op->failure);
            }
            if (cur != in_op[o] || r != rest) {
                in_op[o] = cur;
                rest = r;
                changed = 1;
            }
        }
    }
    seen_states = rest;
    for (int o = 0; o < m->nops; o++)
        seen_states |= in_op[o];
    for (int s = 0; s < m->nstates; s++)
        if (!(seen_states & BIT(s)))
            error_at(l, m->states[s].line, m->states[s].col,
                     "unreachable state '%s': no path from 'new' leads to it",
                     m->states[s].name);
}

/* ------------------------------------------------------------------ */
/* Canonical form                                                      */
/* ------------------------------------------------------------------ */

static const char *const expiry_names[] = {NULL, "retry", "fail", "revert"};

static json_t *state_list(const vse_machine *m, uint64_t set, int with_new)
{
    json_t *a = json_array();

    if (with_new)
        json_array_append_new(a, json_string(VSE_STATE_NEW));
    for (int s = 0; s < m->nstates; s++)
        if (set & BIT(s))
            json_array_append_new(a, json_string(m->states[s].name));
    return a;
}

static void add_transition(json_t *a, const char *op, const char *kind,
                           const char *from, const char *to)
{
    json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "op", op,
                                       "kind", kind, "from", from, "to", to));
}

/* Every transition the machine allows, in a fixed order (see the JSON
 * format in docs/machines.md). */
static json_t *transitions(const vse_machine *m)
{
    json_t *a = json_array();

    for (int o = 0; o < m->nops; o++) {
        const struct vse__op *op = &m->ops[o];
        const char *first;

        if (op->nsteps == 0)
            continue;
        first = m->states[op->steps[0]].name;
        if (op->from_new)
            add_transition(a, op->name, "begin", VSE_STATE_NEW, first);
        for (int s = 0; s < m->nstates; s++)
            if (op->from & BIT(s))
                add_transition(a, op->name, "begin", m->states[s].name,
                               first);
        for (int i = 0; i < op->nsteps; i++)
            for (int t = 0; t < m->nstates; t++)
                if (op->step_to[op->steps[i]] & BIT(t))
                    add_transition(a, op->name, "step",
                                   m->states[op->steps[i]].name,
                                   m->states[t].name);
        for (int i = 0; i < op->nsteps; i++)
            for (int t = 0; t < m->nstates; t++)
                if (op->finish_to[op->steps[i]] & BIT(t))
                    add_transition(a, op->name, "finish",
                                   m->states[op->steps[i]].name,
                                   m->states[t].name);
        for (int i = 0; op->failure >= 0 && i < op->nsteps; i++)
            add_transition(a, op->name, "fail", m->states[op->steps[i]].name,
                           m->states[op->failure].name);
    }
    return a;
}

static json_t *op_json(const vse_machine *m, const struct vse__op *op)
{
    json_t *o = json_object(), *steps = json_array();
    json_t *expiry = json_object(), *edges = json_object();

    for (int i = 0; i < op->nsteps; i++) {
        int s = op->steps[i];
        /* Only declared extra edges: the linear ones are implied. */
        uint64_t step_extra = op->step_to[s];
        uint64_t fin_extra = op->finish_to[s];

        json_array_append_new(steps, json_string(m->states[s].name));
        if (op->expiry[s] != VSE_EXPIRY_NONE)
            json_object_set_new(expiry, m->states[s].name,
                                json_string(expiry_names[op->expiry[s]]));
        if (i + 1 < op->nsteps)
            step_extra &= ~BIT(op->steps[i + 1]);
        else
            fin_extra &= ~op->success;
        if (step_extra | fin_extra)
            json_object_set_new(edges, m->states[s].name,
                                state_list(m, step_extra | fin_extra, 0));
    }
    json_object_set_new(o, "name", json_string(op->name));
    json_object_set_new(o, "from", state_list(m, op->from, op->from_new));
    json_object_set_new(o, "steps", steps);
    json_object_set_new(o, "success", state_list(m, op->success, 0));
    json_object_set_new(o, "failure",
                        op->failure >= 0
                            ? json_string(m->states[op->failure].name)
                            : json_null());
    json_object_set_new(o, "on_expiry", expiry);
    json_object_set_new(o, "edges", edges);
    /* Only when declared: a machine without holds keeps the canonical
     * form, and so the hash, that stores pinned before holds existed. */
    if (op->hold_mode != 0)
        json_object_set_new(o, "holds",
                            json_pack("{s:s, s:s}", "machine",
                                      op->hold_machine, "mode",
                                      vse_hold_mode_name(op->hold_mode)));
    if (op->refused_while_held != 0) {
        json_t *a = json_array();

        for (int mode = VSE_HOLD_SHARED; mode <= VSE_HOLD_EXCLUSIVE;
             mode <<= 1)
            if (op->refused_while_held & (unsigned)mode)
                json_array_append_new(a,
                                      json_string(vse_hold_mode_name(mode)));
        json_object_set_new(o, "refused_while_held", a);
    }
    /* A budget equal to the default is left out of the canonical form,
     * however the file writes it: machines pinned before budgets existed
     * keep their hash, and writing the default out changes nothing. */
    if (vse__op_retries(op) &&
        (op->retry_attempts != VSE_RETRY_ATTEMPTS_DEFAULT ||
         op->retry_unclaimed_us != VSE_RETRY_UNCLAIMED_DEFAULT_US))
        json_object_set_new(o, "retry", vse__op_retry_json(op));
    return o;
}

json_t *vse__op_retry_json(const struct vse__op *op)
{
    char d[32];

    if (!vse__op_retries(op))
        return NULL;
    return json_pack(
        "{s:i, s:s}", "attempts", op->retry_attempts, "unclaimed",
        vse__duration_format(op->retry_unclaimed_us, d, sizeof(d)));
}

/* The canonical JSON: everything that makes the machine behave as it
 * does, nothing that does not (description, comments, key order). */
static char *canonical_json(const vse_machine *m)
{
    json_t *root = json_object(), *states = json_array(), *ops = json_array();
    char *text, *copy;

    for (int s = 0; s < m->nstates; s++)
        json_array_append_new(
            states, json_pack("{s:s, s:s, s:s}", "name", m->states[s].name,
                              "kind", m->states[s].busy ? "busy" : "rest",
                              "status", m->states[s].status));
    for (int o = 0; o < m->nops; o++)
        json_array_append_new(ops, op_json(m, &m->ops[o]));
    json_object_set_new(root, "machine", json_string(m->name));
    json_object_set_new(root, "version", json_integer(m->version));
    json_object_set_new(root, "states", states);
    json_object_set_new(root, "operations", ops);
    json_object_set_new(root, "transitions", transitions(m));
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    /* json_dumps uses jansson's allocator; hand out ours. */
    copy = vse__strdup(text);
    free(text);
    return copy;
}

const char *vse__machine_canonical(const vse_machine *m)
{
    return m ? m->canonical : NULL;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

/* libfyaml's own syntax errors are collected, not printed; this catches
 * anything it would still write, so that nothing reaches stderr. */
static void fy_quiet(struct fy_diag *diag, void *user, const char *buf,
                     size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/*
 * libfyaml accepts bytes that are not UTF-8 and NULs; a machine file is
 * text, so refuse them up front with the place of the first one.
 */
static int check_bytes(struct loader *l, const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    int line = 1, col = 1;

    for (size_t i = 0; i < len;) {
        size_t n = 0;
        unsigned c = p[i];

        if (c == 0) {
            error_at(l, line, col,
                     "file holds a NUL byte; a machine file is "
                     "UTF-8 text");
            return 0;
        }
        if (c < 0x80)
            n = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        for (size_t k = 1; n > 0 && k < n; k++)
            if (i + k >= len || (p[i + k] & 0xc0) != 0x80)
                n = 0;
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if (n == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) ||
                       (c == 0xed && p[i + 1] >= 0xa0)))
            n = 0;
        if (n == 4 && ((c == 0xf0 && p[i + 1] < 0x90) ||
                       (c == 0xf4 && p[i + 1] >= 0x90)))
            n = 0;
        if (n == 0) {
            error_at(l, line, col,
                     "invalid UTF-8 byte 0x%02x; a machine "
                     "file is UTF-8 text",
                     c);
            return 0;
        }
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return 1;
}

static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z')
        s[0] = (char)(s[0] - 'A' + 'a');
}

/* 1 if only white space follows 1-based (line, col) of buf: the place
 * libfyaml reports an error at when the input ran out. */
static int at_end(const char *buf, size_t len, int line, int col)
{
    size_t i = 0;

    for (int n = 1; n < line && i < len; i++)
        if (buf[i] == '\n')
            n++;
    /* Columns count characters: skip UTF-8 continuation bytes. */
    for (int c = 1; c < col && i < len && buf[i] != '\n'; c++)
        for (i++; i < len && ((unsigned char)buf[i] & 0xc0) == 0x80; i++)
            ;
    for (; i < len; i++)
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' &&
            buf[i] != '\n')
            return 0;
    return 1;
}

/*
 * A flow collection ('[' or '{') still open where the text ends: libfyaml
 * reports it at the end of the file, where nothing can be fixed, so find
 * the innermost one still open with the scanner, whose tokens carry their
 * start marks.  1 with its 1-based place and kind, or 0.
 */
static int unclosed_flow(const char *buf, size_t len, int *line, int *col,
                         int *mapping)
{
    enum { OPEN_MAX = 64 }; /* libfyaml's own nesting limit */
    struct {
        int line, col, mapping;
    } open[OPEN_MAX];
    struct fy_diag_cfg dc;
    struct fy_parse_cfg pc;
    struct fy_parser *fyp;
    struct fy_diag *fyd;
    struct fy_token *t;
    int depth = 0, deep = 0;

    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = fy_quiet;
    dc.colorize = false;
    fyd = fy_diag_create(&dc);
    if (fyd == NULL)
        return 0;
    fy_diag_set_collect_errors(fyd, true);
    memset(&pc, 0, sizeof(pc));
    pc.flags = FYPCF_QUIET;
    pc.diag = fyd;
    fyp = fy_parser_create(&pc);
    if (fyp == NULL || fy_parser_set_string(fyp, buf, len) != 0) {
        fy_parser_destroy(fyp);
        fy_diag_destroy(fyd);
        return 0;
    }
    while ((t = fy_scan(fyp)) != NULL) {
        enum fy_token_type type = fy_token_get_type(t);

        if (type == FYTT_FLOW_SEQUENCE_START ||
            type == FYTT_FLOW_MAPPING_START) {
            const struct fy_mark *mk = fy_token_start_mark(t);

            if (depth < OPEN_MAX && mk != NULL) {
                open[depth].line = mk->line + 1;
                open[depth].col = mk->column + 1;
                open[depth].mapping = type == FYTT_FLOW_MAPPING_START;
            } else {
                deep = 1;
            }
            depth++;
        } else if ((type == FYTT_FLOW_SEQUENCE_END ||
                    type == FYTT_FLOW_MAPPING_END) &&
                   depth > 0) {
            depth--;
        }
        fy_scan_token_free(fyp, t);
    }
    fy_parser_destroy(fyp);
    fy_diag_destroy(fyd);
    if (depth == 0 || deep)
        return 0;
    *line = open[depth - 1].line;
    *col = open[depth - 1].col;
    *mapping = open[depth - 1].mapping;
    return 1;
}

/* Parse the YAML text; NULL when there is no usable single document (the
 * reason is in l's diagnostics). */
static struct fy_document *parse(struct loader *l, struct fy_parser **fypp,
                                 struct fy_diag **diagp, const char *buf,
                                 size_t len)
{
    struct fy_diag_cfg dc;
    struct fy_parse_cfg pc;
    struct fy_document *doc = NULL, *extra;
    struct fy_diag_error *e;
    void *it = NULL;
    int moved = 0;

    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = fy_quiet;
    dc.colorize = false;
    *diagp = fy_diag_create(&dc);
    if (*diagp == NULL) {
        l->nomem = 1;
        return NULL;
    }
    fy_diag_set_collect_errors(*diagp, true);
    memset(&pc, 0, sizeof(pc));
    /* Duplicates are ours to report, with the place of the first. */
    pc.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS;
    pc.diag = *diagp;
    *fypp = fy_parser_create(&pc);
    if (*fypp == NULL || fy_parser_set_string(*fypp, buf, len) != 0) {
        l->nomem = 1;
        return NULL;
    }
    doc = fy_parse_load_document(*fypp);
    if (doc != NULL && !fy_diag_got_error(*diagp)) {
        extra = fy_parse_load_document(*fypp);
        if (extra != NULL) {
            struct fy_document_state *ds = fy_document_get_document_state(
                extra);
            const struct fy_mark *mk = ds ? fy_document_state_start_mark(ds)
                                          : NULL;

            error_at(l, mk ? mk->line + 1 : 0, mk ? mk->column + 1 : 0,
                     "more than one YAML document; a machine file holds "
                     "exactly one");
            fy_parse_document_destroy(*fypp, extra);
        }
    }
    while ((e = fy_diag_errors_iterate(*diagp, &it)) != NULL) {
        char msg[DIAG_MSG_SIZE];
        int line, col, mapping;

        if (e->type < FYET_ERROR)
            continue;
        /* The text ended inside a '[' or '{': say where it was opened
         * (libfyaml's own message for a mapping is "missing comma"). */
        if (!moved && at_end(buf, len, e->line, e->column) &&
            unclosed_flow(buf, len, &line, &col, &mapping)) {
            moved = 1;
            error_at(l, line, col,
                     "yaml syntax error: flow %s without a "
                     "closing %s",
                     mapping ? "mapping" : "sequence",
                     mapping ? "brace" : "bracket");
            continue;
        }
        vse__strlcpy(msg, e->msg ? e->msg : "error", sizeof(msg));
        lower_first(msg);
        error_at(l, e->line, e->column, "yaml syntax error: %s", msg);
    }
    if (l->total > 0) {
        if (doc != NULL)
            fy_parse_document_destroy(*fypp, doc);
        return NULL;
    }
    if (doc == NULL || fy_document_root(doc) == NULL ||
        fy_node_is_null(fy_document_root(doc))) {
        error_at(l, 1, 1, "machine file is empty");
        if (doc != NULL)
            fy_parse_document_destroy(*fypp, doc);
        return NULL;
    }
    return doc;
}

static void read_machine(struct loader *l, struct fy_node *root)
{
    struct fy_node *keys[NKEYS(top_keys)], *vals[NKEYS(top_keys)];
    unsigned present;

    if (!plain_node(l, root, NULL))
        return;
    if (!fy_node_is_mapping(root)) {
        error_node(l, root, NULL,
                   "top level must be a mapping with "
                   "'machine', 'version', 'states' and 'operations'");
        return;
    }
    present = read_keys(l, root, "the top level", top_keys, NKEYS(top_keys),
                        keys, vals);
    for (int i = 0; i < NKEYS(top_keys); i++)
        if (!(present & (1u << i)) && i != K_DESCRIPTION && i != K_STATUSES)
            error_node(l, root, NULL, "missing key '%s' at the top level",
                       top_keys[i]);
    if (keys[K_MACHINE] != NULL)
        read_name(l, vals[K_MACHINE], keys[K_MACHINE], "machine name",
                  l->m->name);
    if (keys[K_VERSION] != NULL)
        read_version(l, vals[K_VERSION], keys[K_VERSION]);
    if (keys[K_DESCRIPTION] != NULL)
        read_description(l, vals[K_DESCRIPTION], keys[K_DESCRIPTION]);
    if (keys[K_STATUSES] != NULL)
        read_statuses(l, vals[K_STATUSES], keys[K_STATUSES]);
    /* States first, whatever the order in the file: operations refer to
     * them. */
    if (keys[K_STATES] != NULL)
        read_states(l, vals[K_STATES], keys[K_STATES]);
    if (keys[K_OPS] != NULL)
        read_ops(l, vals[K_OPS], keys[K_OPS]);
    /* Reachability means little while parts are missing; it would only
     * echo the errors already found. */
    if (l->total == 0)
        check_reachable(l);
}

void vse_machine_free(vse_machine *m)
{
    if (m == NULL)
        return;
    vse_free(m->file);
    vse_free(m->canonical);
    vse_free(m->description);
    vse_free(m);
}

static int finish_machine(vse_machine *m, struct vse_error *err)
{
    for (int s = 0; s < m->nstates; s++)
        index_add(m->state_slots, m->states[s].name, s);
    for (int o = 0; o < m->nops; o++)
        index_add(m->op_slots, m->ops[o].name, o);
    m->canonical = canonical_json(m);
    if (m->canonical == NULL)
        return vse__err(err, VSE_ENOMEM,
                        "out of memory building machine "
                        "'%s'",
                        m->name);
    vse__hash_hex(m->canonical, strlen(m->canonical), m->hash);
    return 0;
}

int vse_machine_load_buffer(const char *name, const char *buf, size_t len,
                            vse_diag_fn diag, void *ctx, vse_machine **out,
                            struct vse_error *err)
{
    struct loader l;
    struct fy_parser *fyp = NULL;
    struct fy_diag *fyd = NULL;
    struct fy_document *doc = NULL;
    int rc = 0;

    if (out == NULL)
        return vse__err(err, VSE_EINVAL, "no place for the machine");
    *out = NULL;
    if (name == NULL)
        name = "<buffer>";
    if (buf == NULL && len > 0)
        return vse__err(err, VSE_EINVAL, "machine buffer is NULL");
    if (len > VSE_MACHINE_FILE_MAX)
        return vse__err(err, VSE_ETOOBIG,
                        "machine file '%s' is %zu bytes, the limit is %d",
                        name, len, VSE_MACHINE_FILE_MAX);
    memset(&l, 0, sizeof(l));
    l.file = name;
    l.m = vse__calloc(1, sizeof(*l.m));
    if (l.m == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory loading '%s'", name);
    l.m->file = vse__strdup(name);
    if (l.m->file == NULL)
        l.nomem = 1;

    if (!l.nomem && check_bytes(&l, buf ? buf : "", len))
        doc = parse(&l, &fyp, &fyd, buf ? buf : "", len);
    if (doc != NULL)
        read_machine(&l, fy_document_root(doc));

    if (l.nomem)
        rc = vse__err(err, VSE_ENOMEM, "out of memory loading '%s'", name);
    else if (l.total > 0)
        rc = report(&l, diag, ctx, err);
    else
        rc = finish_machine(l.m, err);

    if (doc != NULL)
        fy_parse_document_destroy(fyp, doc);
    if (fyp != NULL)
        fy_parser_destroy(fyp);
    if (fyd != NULL)
        fy_diag_destroy(fyd);
    free(l.diags);
    if (rc != 0) {
        vse_machine_free(l.m);
        return rc;
    }
    *out = l.m;
    return 0;
}

int vse_machine_load_file(const char *path, vse_diag_fn diag, void *ctx,
                          vse_machine **out, struct vse_error *err)
{
    struct stat sb;
    char *buf;
    size_t len = 0;
    int fd, rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL)
        return vse__err(err, VSE_EINVAL, "no machine file given");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = vse__err(err, VSE_EIO, "cannot open machine file '%s'", path);
        vse__err_detail(err, "%s", strerror(errno));
        return rc;
    }
    if (fstat(fd, &sb) != 0) {
        int e = errno;

        close(fd);
        rc = vse__err(err, VSE_EIO, "cannot read machine file '%s'", path);
        vse__err_detail(err, "%s", strerror(e));
        return rc;
    }
    /* A directory or a FIFO would fail late or block: refuse it here. */
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        rc = vse__err(err, VSE_EIO, "cannot read machine file '%s'", path);
        vse__err_detail(err, "not a regular file");
        return rc;
    }
    if (sb.st_size > VSE_MACHINE_FILE_MAX) {
        close(fd);
        return vse__err(err, VSE_ETOOBIG,
                        "machine file '%s' is %lld bytes, the limit is %d",
                        path, (long long)sb.st_size, VSE_MACHINE_FILE_MAX);
    }
    /* One byte more than the limit, in case the file grew since fstat. */
    buf = vse__malloc(VSE_MACHINE_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return vse__err(err, VSE_ENOMEM, "out of memory reading '%s'", path);
    }
    while (len <= VSE_MACHINE_FILE_MAX) {
        ssize_t n = read(fd, buf + len, VSE_MACHINE_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;

            close(fd);
            free(buf);
            rc = vse__err(err, VSE_EIO, "cannot read machine file '%s'",
                          path);
            vse__err_detail(err, "%s", strerror(e));
            return rc;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    rc = vse_machine_load_buffer(path, buf, len, diag, ctx, out, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

const char *vse_hold_mode_name(int mode)
{
    switch (mode) {
    case VSE_HOLD_SHARED: return "shared";
    case VSE_HOLD_EXCLUSIVE: return "exclusive";
    default: return NULL;
    }
}

const char *vse_machine_name(const vse_machine *m)
{
    return m ? m->name : NULL;
}

int vse_machine_version(const vse_machine *m)
{
    return m ? m->version : 0;
}

const char *vse_machine_hash(const vse_machine *m)
{
    return m ? m->hash : NULL;
}

const char *vse_machine_status(const vse_machine *m, const char *state)
{
    int s = vse__machine_state(m, state);

    return s < 0 ? NULL : m->states[s].status;
}

int vse_machine_state_busy(const vse_machine *m, const char *state)
{
    int s = vse__machine_state(m, state);

    return s < 0 ? VSE_EINVAL : m->states[s].busy;
}

int vse__machine_terminal(const vse_machine *m, int s)
{
    if (m == NULL || s < 0 || s >= m->nstates || m->states[s].busy)
        return 0;
    for (int o = 0; o < m->nops; o++)
        if (m->ops[o].from & BIT(s))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Diff against a pinned definition                                    */
/* ------------------------------------------------------------------ */

struct out {
    char *buf;
    size_t size, len;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->len + 1 >= o->size)
        return;
    if (o->len > 0) {
        n = snprintf(o->buf + o->len, o->size - o->len, "; ");
        o->len += (size_t)n < o->size - o->len ? (size_t)n
                                               : o->size - o->len - 1;
    }
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < o->size - o->len ? (size_t)n
                                               : o->size - o->len - 1;
}

/* The element of array a whose "name" is name, or NULL. */
static json_t *by_name(json_t *a, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));

        if (n != NULL && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

/* Report the added, removed and changed named elements of two arrays. */
static void diff_list(struct out *o, const char *what, json_t *old,
                      json_t *cur)
{
    size_t i;
    json_t *v;
    int other = 0;

    json_array_foreach(old, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));

        if (n != NULL && by_name(cur, n) == NULL)
            put(o, "%s '%s' removed", what, n), other = 1;
    }
    json_array_foreach(cur, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        json_t *was = n ? by_name(old, n) : NULL;
        const char *key;
        json_t *val;
        char fields[160] = "";

        if (n == NULL)
            continue;
        if (was == NULL) {
            put(o, "%s '%s' added", what, n);
            other = 1;
            continue;
        }
        /* Field names in sorted order: the canonical form's. */
        json_object_foreach(v, key, val) {
            if (!json_equal(val, json_object_get(was, key))) {
                size_t l = strlen(fields);

                snprintf(fields + l, sizeof(fields) - l, "%s%s",
                         l ? ", " : "", key);
            }
        }
        json_object_foreach(was, key, val)
            if (json_object_get(v, key) == NULL) {
                size_t l = strlen(fields);

                snprintf(fields + l, sizeof(fields) - l, "%s%s",
                         l ? ", " : "", key);
            }
        if (fields[0] != '\0')
            put(o, "%s '%s' changed (%s)", what, n, fields), other = 1;
    }
    if (!other && !json_equal(old, cur))
        put(o, "%ss reordered", what);
}

void vse__machine_diff(const char *pinned_canonical, const vse_machine *m,
                       char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    json_t *old, *cur;
    json_error_t je;

    if (buf == NULL || size == 0)
        return;
    buf[0] = '\0';
    if (m == NULL)
        return;
    if (pinned_canonical == NULL) {
        snprintf(buf, size, "no pinned definition of '%s'", m->name);
        return;
    }
    old = json_loads(pinned_canonical, 0, &je);
    if (old == NULL || !json_is_object(old)) {
        snprintf(buf, size,
                 "the pinned definition of '%s' is not readable "
                 "(%s)",
                 m->name, old ? "not a JSON object" : je.text);
        json_decref(old);
        return;
    }
    cur = json_loads(m->canonical, 0, &je);
    if (cur == NULL) {
        snprintf(buf, size, "cannot read the definition of '%s'", m->name);
        json_decref(old);
        return;
    }
    {
        const char *on = json_string_value(json_object_get(old, "machine"));

        if (on == NULL || strcmp(on, m->name) != 0)
            put(&o, "machine '%s' -> '%s'", on ? on : "?", m->name);
    }
    if (json_integer_value(json_object_get(old, "version")) != m->version)
        put(&o, "version %lld -> %d",
            (long long)json_integer_value(json_object_get(old, "version")),
            m->version);
    diff_list(&o, "state", json_object_get(old, "states"),
              json_object_get(cur, "states"));
    diff_list(&o, "operation", json_object_get(old, "operations"),
              json_object_get(cur, "operations"));
    if (o.len == 0 && strcmp(pinned_canonical, m->canonical) != 0)
        put(&o, "the definitions differ");
    if (o.len == 0)
        snprintf(buf, size, "no difference");
    json_decref(old);
    json_decref(cur);
}
