/*
 * store-blind.c - the store wrapper behind `vsed --coordination
 * local-locks`, and nothing else: it exists only so that the approach vse
 * replaces (a status check, then a blind write) can be run beside the
 * enforcer under the same load (bench/side-by-side.sh,
 * docs/reliability.md).  Never use it on a store that matters.
 *
 * It wraps the real store the way tests/store/test-faults.c does (the
 * store URL "blind:sqlite:PATH" opens the real one underneath), so libvse
 * knows nothing of it: the core decides and compare-and-swaps as always,
 * and this wrapper undoes the two things that make that safe.
 *
 *  - A lost compare-and-swap is not reported: what the caller decided is
 *    written over the row as it is by then, at its current version, the
 *    way `volume.status = X; volume.save()` writes the fields it changed
 *    and keeps the rest.  State, op, token, owner and lease go in as
 *    decided; the attrs the caller changed (against the row it read) are
 *    changed in the current attrs; the history row says where the row
 *    really was (`from`), so that `vsectl check` shows what happened.
 *  - Tokens fence nothing.  The connection remembers, per resource, the
 *    row it last handed to its caller (read, listed or written: an ORM
 *    session's objects).  When the caller reads a row again and the op in
 *    flight has a token other than the one the caller was given, the
 *    caller is shown its own token: a status check looks at the status,
 *    not at who owns the work.  The transition is then decided against
 *    the current row, and what is written keeps the row's real token.
 *
 * A transition decided against o->seen (a read the caller made earlier)
 * is decided against that stale row and then written blindly: that is
 * the "status check, then write" of a Cinder manager.  Creates and the
 * reaper's expiries keep their compare-and-swap (vse did not blind them
 * before either, and local-locks runs no reaper).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store.h"
#include "util.h"
#include "vsed.h"

/* As the enforcer's own retry bound: a row that keeps changing under a
 * blind write is reported busy rather than written forever. */
#define BLIND_ATTEMPTS 16
/* Rows remembered per connection (a slot per hash of the id; a collision
 * forgets the older row, which then reads as the enforcer would). */
#define BLIND_SLOTS 128

struct blind_conn {
    struct vse_store base; /* must be first */
    struct vse_store *inner;
    struct vse_resource *seen[BLIND_SLOTS]; /* the caller's view */
    /* The token get() last swapped for the caller's own (one resource). */
    char sub_id[VSE_ID_MAX + 1];
    char sub_real[VSE_OPID_LEN + 1];
    char sub_shown[VSE_OPID_LEN + 1];
};

static struct blind_conn *conn(struct vse_store *s)
{
    return (struct blind_conn *)s;
}

/* The inner store, told of a vse_interrupt() made on the wrapper. */
static struct vse_store *in(struct vse_store *s)
{
    struct vse_store *inner = conn(s)->inner;

    if (atomic_load(&s->interrupted))
        atomic_store(&inner->interrupted, 1);
    return inner;
}

static size_t slot(const char *id)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)(h % BLIND_SLOTS);
}

static const struct vse_resource *recall(struct blind_conn *b, const char *id)
{
    const struct vse_resource *r = b->seen[slot(id)];

    return r != NULL && strcmp(r->id, id) == 0 ? r : NULL;
}

/* Remember r as what the caller was shown; out of memory forgets it. */
static void remember(struct blind_conn *b, const struct vse_resource *r)
{
    struct vse_resource **p = &b->seen[slot(r->id)];

    if (*p == NULL)
        *p = malloc(sizeof(**p));
    if (*p != NULL)
        **p = *r;
}

static int b_open(struct vse_store *s, const char *rest,
                  struct vse_error *err)
{
    return vse__store_open(rest, &conn(s)->inner, err);
}

static void b_close(struct vse_store *s)
{
    struct blind_conn *b = conn(s);

    for (int i = 0; i < BLIND_SLOTS; i++)
        free(b->seen[i]);
    vse__store_close(b->inner);
}

static int b_get(struct vse_store *s, const char *id,
                 struct vse_resource *out, struct vse_error *err)
{
    struct blind_conn *b = conn(s);
    const struct vse_resource *was;
    int rc = vse__store_get(in(s), id, out, err);

    if (rc < 0)
        return rc;
    was = recall(b, id);
    b->sub_id[0] = '\0';
    if (was != NULL && was->op_id[0] != '\0' && out->op_id[0] != '\0' &&
        strcmp(was->op_id, out->op_id) != 0) {
        vse__strlcpy(b->sub_id, id, sizeof(b->sub_id));
        vse__strlcpy(b->sub_real, out->op_id, sizeof(b->sub_real));
        vse__strlcpy(b->sub_shown, was->op_id, sizeof(b->sub_shown));
        vse__strlcpy(out->op_id, was->op_id, sizeof(out->op_id));
    }
    remember(b, out);
    return 0;
}

/* What the caller was shown in place of the real token goes back. */
static void unswap(struct blind_conn *b, struct vse_resource *row,
                   struct vse_event *ev)
{
    if (b->sub_id[0] == '\0' || strcmp(b->sub_id, row->id) != 0)
        return;
    if (strcmp(row->op_id, b->sub_shown) == 0)
        vse__strlcpy(row->op_id, b->sub_real, sizeof(row->op_id));
    if (strcmp(ev->op_id, b->sub_shown) == 0)
        vse__strlcpy(ev->op_id, b->sub_real, sizeof(ev->op_id));
}

/*
 * to = the current attrs with the caller's changes (base -> decided)
 * made in them, members set or removed whole.  Without the caller's base
 * the decided attrs are written whole, as a save of the entire object.
 */
static int blind_attrs(const struct vse_resource *base,
                       const struct vse_resource *decided,
                       const struct vse_resource *cur,
                       struct vse_resource *to, struct vse_error *err)
{
    json_t *b, *d, *c, *v;
    const char *k;
    char *s = NULL;
    void *tmp;
    int rc = 0;

    if (base == NULL) {
        vse__strlcpy(to->attrs, decided->attrs, sizeof(to->attrs));
        return 0;
    }
    b = json_loads(base->attrs[0] ? base->attrs : "{}", 0, NULL);
    d = json_loads(decided->attrs[0] ? decided->attrs : "{}", 0, NULL);
    c = json_loads(cur->attrs[0] ? cur->attrs : "{}", 0, NULL);
    if (!json_is_object(b) || !json_is_object(d) || !json_is_object(c)) {
        rc = vse__err(err, VSE_EINTERNAL,
                      "attrs of '%s' are not a JSON "
                      "object",
                      cur->id);
        goto out;
    }
    json_object_foreach_safe(b, tmp, k, v)
        if (json_object_get(d, k) == NULL)
            json_object_del(c, k);
    json_object_foreach(d, k, v)
        if (!json_equal(json_object_get(b, k), v))
            json_object_set(c, k, v);
    s = json_dumps(c, JSON_COMPACT);
    if (s == NULL)
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
    else if (strlen(s) > VSE_ATTRS_MAX)
        rc = vse__err(err, VSE_ETOOBIG,
                      "attrs of '%s' would be %zu bytes "
                      "long, the limit is %d",
                      cur->id, strlen(s), VSE_ATTRS_MAX);
    else
        vse__strlcpy(to->attrs, s, sizeof(to->attrs));
out:
    free(s);
    json_decref(b);
    json_decref(d);
    json_decref(c);
    return rc;
}

/* The decided row written over cur, and its history row. */
static int overwrite(const struct vse_resource *base,
                     const struct vse_resource *decided,
                     const struct vse_event *ev_decided,
                     const struct vse_resource *cur, struct vse_resource *row,
                     struct vse_event *ev, struct vse_error *err)
{
    *row = *cur;
    vse__strlcpy(row->state, decided->state, sizeof(row->state));
    vse__strlcpy(row->op, decided->op, sizeof(row->op));
    vse__strlcpy(row->op_id, decided->op_id, sizeof(row->op_id));
    vse__strlcpy(row->origin, decided->origin, sizeof(row->origin));
    vse__strlcpy(row->owner, decided->owner, sizeof(row->owner));
    row->lease_expires = decided->lease_expires;
    row->lease_ttl = decided->lease_ttl;
    row->since = decided->since;
    row->updated = decided->updated;
    row->version = cur->version + 1;
    *ev = *ev_decided;
    ev->version = row->version;
    vse__strlcpy(ev->from, cur->state, sizeof(ev->from));
    return blind_attrs(base, decided, cur, row, err);
}

/* Does a lost compare-and-swap of this change become a blind write?  A
 * create and a reaper's expiry keep theirs. */
static int blind(const struct vse_change *c, const struct vse_resource *cur)
{
    return c->expect_version > 0 && cur->version > 0 &&
           c->ev->kind != VSE_KIND_EXPIRE;
}

static int b_apply(struct vse_store *s, const struct vse_change *c,
                   struct vse_resource *cur, int64_t *seq,
                   struct vse_error *err)
{
    struct blind_conn *b = conn(s);
    const struct vse_resource *was = recall(b, c->row->id);
    const struct vse_resource *base = NULL;
    struct vse_resource *decided, *row;
    struct vse_event ev_decided, ev;
    struct vse_change first, again;
    int rc;

    decided = malloc(2 * sizeof(*decided));
    if (decided == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    row = decided + 1;
    *decided = *c->row;
    ev_decided = *c->ev;
    unswap(b, decided, &ev_decided);
    b->sub_id[0] = '\0';
    if (was != NULL && was->version == c->expect_version)
        base = was;
    /* Holds go with every write, blind or not: they are the core's. */
    /* Every write, a quiet renew too, is recorded: the comparison's
     * history must show what each blind write did. */
    first = *c;
    first.row = decided;
    first.ev = &ev_decided;
    first.quiet = 0;
    rc = vse__store_apply(in(s), &first, cur, seq, err);
    for (int i = 0;
         i < BLIND_ATTEMPTS && rc == VSE_ECONFLICT && blind(c, cur); i++) {
        int64_t at = cur->version;

        rc = overwrite(base, decided, &ev_decided, cur, row, &ev, err);
        if (rc < 0)
            break;
        again = *c;
        again.expect_version = at;
        again.row = row;
        again.ev = &ev;
        again.quiet = 0;
        rc = vse__store_apply(in(s), &again, cur, seq, err);
    }
    if (rc == VSE_ECONFLICT && blind(c, cur))
        rc = vse__err(err, VSE_EBUSY,
                      "%s '%s' changed %d times while a "
                      "blind write was being made",
                      cur->machine, cur->id, BLIND_ATTEMPTS);
    free(decided);
    /* The caller now holds the row as it decided it (its "object"). */
    if (rc == 0)
        remember(b, c->row);
    else if (rc == VSE_ECONFLICT && cur->version > 0)
        remember(b, cur);
    return rc;
}

struct list_ctx {
    struct blind_conn *b;
    vse_resource_cb cb;
    void *ctx;
};

static int listed(void *arg, const struct vse_resource *r)
{
    struct list_ctx *l = arg;

    remember(l->b, r);
    return l->cb(l->ctx, r);
}

static int b_list(struct vse_store *s, const struct vse_filter *f,
                  int64_t now, vse_resource_cb cb, void *ctx,
                  struct vse_error *err)
{
    struct list_ctx l = {conn(s), cb, ctx};

    return vse__store_list(in(s), f, now, listed, &l, err);
}

static int b_history(struct vse_store *s, const char *id, int64_t after,
                     size_t limit, vse_event_cb cb, void *ctx,
                     struct vse_error *err)
{
    return vse__store_history(in(s), id, after, limit, cb, ctx, err);
}

static int b_find_event(struct vse_store *s, const struct vse_event_query *q,
                        struct vse_event *out, struct vse_error *err)
{
    return vse__store_find_event(in(s), q, out, err);
}

static int b_expired(struct vse_store *s, int64_t now, size_t limit,
                     vse_resource_cb cb, void *ctx, struct vse_error *err)
{
    return vse__store_expired(in(s), now, limit, cb, ctx, err);
}

static int b_last_seq(struct vse_store *s, int64_t *seq,
                      struct vse_error *err)
{
    return vse__store_last_seq(in(s), seq, err);
}

static int b_purge(struct vse_store *s, int64_t before,
                   const struct vse_state_ref *t, size_t n,
                   struct vse_purge_stats *st, struct vse_error *err)
{
    return vse__store_purge(in(s), before, t, n, st, err);
}

static int b_pin_get(struct vse_store *s, const char *machine,
                     struct vse_pin *out, struct vse_error *err)
{
    return vse__store_pin_get(in(s), machine, out, err);
}

static int b_pin_put(struct vse_store *s, const struct vse_pin *p,
                     struct vse_error *err)
{
    return vse__store_pin_put(in(s), p, err);
}

static int b_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                  struct vse_error *err)
{
    return vse__store_wait(in(s), after_seq, timeout_ms, err);
}

static int b_holds(struct vse_store *s, const char *held, const char *holder,
                   vse_hold_cb cb, void *ctx, struct vse_error *err)
{
    return vse__store_holds(in(s), held, holder, cb, ctx, err);
}

static const struct vse_store_methods blind_store = {
    .version = 1,
    .scheme = "blind",
    .conn_size = sizeof(struct blind_conn),
    .open = b_open,
    .close = b_close,
    .get = b_get,
    .apply = b_apply,
    .list = b_list,
    .history = b_history,
    .find_event = b_find_event,
    .expired = b_expired,
    .last_seq = b_last_seq,
    .purge = b_purge,
    .pin_get = b_pin_get,
    .pin_put = b_pin_put,
    .holds = b_holds,
    .wait = b_wait,
};

int vsed_store_blind_register(void)
{
    return vse__store_register(&blind_store);
}
