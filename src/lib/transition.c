/*
 * transition.c - the enforcer's contract (DESIGN §4).  Every transition is
 * read row -> decide in memory against the machine -> one atomic
 * compare-and-swap in the store (row at the version we read, else nothing
 * happens).  Nothing here waits for anything but the store: a transition
 * the state does not allow is refused at once, with what is in the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store.h"
#include "vse-int.h"

/*
 * How often one call re-decides after losing a CAS race to a transition
 * that did not make it impossible (a renew, say).  A loss that does make
 * it impossible is answered as a refusal at once.
 */
#define CAS_ATTEMPTS 16
/* Reaper batch: leases examined per store round trip. */
#define REAP_BATCH 64

struct call {
    enum vse_kind kind;
    const char *id;
    const char *machine; /* create */
    const char *op;      /* create, begin */
    const char *op_id;   /* step, finish, fail, claim, renew */
    const char *to;      /* step, finish, reset, claim_step */
    const struct vse_opts *o;
    int64_t now;
};

static const struct vse_opts no_opts;

static int64_t ttl_us(const struct call *c, int64_t fallback)
{
    if (c->o->ttl_ms > 0)
        return c->o->ttl_ms * 1000;
    if (fallback > 0)
        return fallback;
    return (int64_t)VSE_DEFAULT_TTL_MS * 1000;
}

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- explaining a refusal ----------------------------------------- */

static void fmt_since(int64_t us, char *buf, size_t size)
{
    vse_time_format(us, buf, size);
}

/* "volume 'v1' is busy: delete, step deleting, owner x, since T" */
static void describe(const struct vse_resource *cur, char *buf, size_t size)
{
    char since[32];

    fmt_since(cur->since, since, sizeof(since));
    if (!has(cur->op)) {
        snprintf(buf, size, "%s '%s' is %s (since %s)", cur->machine, cur->id,
                 cur->state, since);
        return;
    }
    snprintf(buf, size, "%s '%s' is busy: %s, step %s, owner %s, since %s",
             cur->machine, cur->id, cur->op, cur->state,
             has(cur->owner) ? cur->owner : "none (waiting for a claim)",
             since);
}

/* Append to buf at *len, keeping it terminated. */
static void add(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*len >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
    if (*len >= size)
        *len = size - 1;
}

static void add_states(char *buf, size_t size, size_t *len,
                       const vse_machine *m, uint64_t set)
{
    int first = 1;

    for (int s = 0; s < m->nstates; s++) {
        if (!(set & (UINT64_C(1) << s)))
            continue;
        add(buf, size, len, "%s%s", first ? "" : "|", m->states[s].name);
        first = 0;
    }
}

/* What may happen to cur now, as err->hint. */
static void hint_allowed(struct vse_error *err, const vse_machine *m,
                         const struct vse_resource *cur)
{
    char buf[VSE_ERROR_HINT_SIZE];
    size_t len = 0;
    int s = vse__machine_state(m, cur->state);

    if (err == NULL || s < 0)
        return;
    if (!has(cur->op)) {
        int n = 0;

        add(buf, sizeof(buf), &len, "allowed now from %s:", cur->state);
        for (int i = 0; i < m->nops; i++) {
            if (!(m->ops[i].from & (UINT64_C(1) << s)))
                continue;
            add(buf, sizeof(buf), &len, "%s begin %s", n ? "," : "",
                m->ops[i].name);
            n++;
        }
        if (n == 0)
            add(buf, sizeof(buf), &len,
                " nothing ('%s' is terminal; only reset-state leaves it)",
                cur->state);
    } else {
        int o = vse__machine_op(m, cur->op);
        const struct vse__op *op;

        if (o < 0)
            return;
        op = &m->ops[o];
        add(buf, sizeof(buf), &len,
            "allowed now, with op_id %s:", cur->op_id);
        if (op->step_to[s]) {
            add(buf, sizeof(buf), &len, " step to ");
            add_states(buf, sizeof(buf), &len, m, op->step_to[s]);
            add(buf, sizeof(buf), &len, ",");
        }
        if (op->finish_to[s]) {
            add(buf, sizeof(buf), &len, " finish to ");
            add_states(buf, sizeof(buf), &len, m, op->finish_to[s]);
            add(buf, sizeof(buf), &len, ",");
        }
        add(buf, sizeof(buf), &len, " fail (to %s)",
            m->states[op->failure].name);
        if (has(cur->owner))
            add(buf, sizeof(buf), &len, ", renew");
        else
            add(buf, sizeof(buf), &len, ", claim");
        if (has(cur->owner) && cur->lease_expires > 0) {
            char t[32];

            add(buf, sizeof(buf), &len, "; lease of %s expires %s",
                cur->owner, vse_time_format(cur->lease_expires, t, 32));
        }
    }
    vse__strlcpy(err->hint, buf, sizeof(err->hint));
}

static int refuse(struct vse_error *err, const vse_machine *m,
                  const struct vse_resource *cur, const char *why)
{
    char what[VSE_ERROR_MSG_SIZE];

    describe(cur, what, sizeof(what));
    if (why != NULL)
        vse__err(err, VSE_ECONFLICT, "%s; %s", what, why);
    else
        vse__err(err, VSE_ECONFLICT, "%s", what);
    hint_allowed(err, m, cur);
    return VSE_ECONFLICT;
}

static int fenced(struct vse_error *err, const vse_machine *m,
                  const struct vse_resource *cur, const char *op_id)
{
    char what[VSE_ERROR_MSG_SIZE];

    describe(cur, what, sizeof(what));
    if (!has(cur->op))
        vse__err(err, VSE_EFENCED,
                 "op_id %s is fenced: %s, no operation in flight", op_id,
                 what);
    else
        vse__err(err, VSE_EFENCED, "op_id %s is fenced: %s (op_id %s)", op_id,
                 what, cur->op_id);
    vse__err_detail(err, "the op was ended, reaped, reset or claimed by "
                         "another worker; this worker must stop");
    hint_allowed(err, m, cur);
    return VSE_EFENCED;
}

/* ---- attrs ------------------------------------------------------- */

/* RFC 7396 merge of patch into target (both objects). */
static void merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;

    json_object_foreach(patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(target, k);
        } else if (json_is_object(v)) {
            json_t *t = json_object_get(target, k);

            if (!json_is_object(t)) {
                t = json_object();
                json_object_set_new(target, k, t);
            }
            merge_patch(t, v);
        } else {
            json_object_set(target, k, v);
        }
    }
}

/* Check a patch from outside: a JSON object of bounded size. */
static int attrs_check(const char *patch, struct vse_error *err)
{
    json_error_t je;
    json_t *p;
    size_t n = strlen(patch);

    if (n > VSE_ATTRS_MAX)
        return vse__err(err, VSE_ETOOBIG,
                        "attrs patch is %zu bytes long, "
                        "the limit is %d",
                        n, VSE_ATTRS_MAX);
    p = json_loadb(patch, n, JSON_REJECT_DUPLICATES, &je);
    if (p == NULL)
        return vse__err(err, VSE_EINVAL,
                        "attrs patch is not valid JSON: "
                        "%s at character %d",
                        je.text, je.position);
    if (!json_is_object(p)) {
        json_decref(p);
        return vse__err(err, VSE_EINVAL,
                        "attrs patch must be a JSON "
                        "object");
    }
    json_decref(p);
    return 0;
}

/* next->attrs = merge(cur, patch), or an error if it outgrows the row. */
static int attrs_apply(const char *cur, const char *patch,
                       struct vse_resource *next, struct vse_error *err)
{
    json_t *t = json_loads(cur[0] ? cur : "{}", 0, NULL);
    json_t *p = json_loads(patch, 0, NULL);
    char *s = NULL;
    int rc = 0;

    if (t == NULL || !json_is_object(t) || p == NULL) {
        rc = vse__err(err, VSE_EINTERNAL,
                      "attrs of '%s' are not a JSON "
                      "object",
                      next->id);
        goto out;
    }
    merge_patch(t, p);
    s = json_dumps(t, JSON_COMPACT);
    if (s == NULL) {
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
        goto out;
    }
    if (strlen(s) > VSE_ATTRS_MAX) {
        rc = vse__err(err, VSE_ETOOBIG,
                      "attrs of '%s' would be %zu bytes "
                      "long, the limit is %d",
                      next->id, strlen(s), VSE_ATTRS_MAX);
        goto out;
    }
    vse__strlcpy(next->attrs, s, sizeof(next->attrs));
out:
    free(s);
    json_decref(t);
    json_decref(p);
    return rc;
}

/* ---- deciding ------------------------------------------------------ */

static void ev_init(struct vse_event *ev, const struct call *c,
                    const struct vse_resource *cur,
                    const struct vse_resource *next)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = c->kind;
    ev->version = next->version;
    vse__strlcpy(ev->resource, next->id, sizeof(ev->resource));
    vse__strlcpy(ev->machine, next->machine, sizeof(ev->machine));
    vse__strlcpy(ev->from, cur ? cur->state : VSE_STATE_NEW,
                 sizeof(ev->from));
    vse__strlcpy(ev->to, next->state, sizeof(ev->to));
    /* The op and token the transition was made under: for one that ends
     * the op, the row no longer holds them. */
    if (cur == NULL)
        cur = next;
    vse__strlcpy(ev->op, has(next->op) ? next->op : cur->op, sizeof(ev->op));
    vse__strlcpy(ev->op_id, has(next->op_id) ? next->op_id : cur->op_id,
                 sizeof(ev->op_id));
    vse__strlcpy(ev->owner, has(next->owner) ? next->owner : cur->owner,
                 sizeof(ev->owner));
    /* A claim that steps and hands off again leaves no owner in the row:
     * the history still names who did it. */
    if (c->kind == VSE_KIND_CLAIM && has(c->o->owner))
        vse__strlcpy(ev->owner, c->o->owner, sizeof(ev->owner));
    ev->at = c->now;
    if (has(c->o->request_id))
        vse__strlcpy(ev->request_id, c->o->request_id,
                     sizeof(ev->request_id));
    if (has(c->o->reason))
        vse__strlcpy(ev->reason, c->o->reason, sizeof(ev->reason));
}

static void to_rest(struct vse_resource *next, const char *state, int64_t now)
{
    vse__strlcpy(next->state, state, sizeof(next->state));
    next->op[0] = '\0';
    next->op_id[0] = '\0';
    next->origin[0] = '\0';
    next->owner[0] = '\0';
    next->lease_expires = 0;
    next->lease_ttl = 0;
    next->since = now;
}

/* A new op entering its first step; the caller fills state/origin. */
static int enter_op(const struct call *c, const struct vse__op *op,
                    const vse_machine *m, struct vse_resource *next,
                    struct vse_error *err)
{
    int rc = vse__uuid(next->op_id, err);

    if (rc < 0)
        return rc;
    vse__strlcpy(next->op, op->name, sizeof(next->op));
    vse__strlcpy(next->state, m->states[op->steps[0]].name,
                 sizeof(next->state));
    vse__strlcpy(next->owner, has(c->o->owner) ? c->o->owner : "",
                 sizeof(next->owner));
    next->lease_ttl = ttl_us(c, 0);
    next->lease_expires = c->now + next->lease_ttl;
    next->since = c->now;
    return 0;
}

static int decide_create(const struct call *c, const vse_machine *m,
                         struct vse_resource *next, struct vse_error *err)
{
    int o = -1;

    if (has(c->op)) {
        o = vse__machine_op(m, c->op);
        if (o < 0)
            return vse__err(err, VSE_EINVAL,
                            "machine '%s' has no operation "
                            "'%s'",
                            m->name, c->op);
        if (!m->ops[o].from_new)
            return vse__err(err, VSE_EINVAL,
                            "operation '%s' of machine "
                            "'%s' does not create resources (its from has "
                            "no 'new')",
                            c->op, m->name);
    } else {
        /* With several creating operations, the one named "create" is
         * the default: the volume machine gained create_from_snapshot
         * and clone (version 2), and callers written for version 1 name
         * no op. */
        o = vse__machine_op(m, "create");
        if (o >= 0 && !m->ops[o].from_new)
            o = -1;
        for (int i = 0; o < 0 && i < m->nops; i++) {
            if (!m->ops[i].from_new)
                continue;
            for (int k = i + 1; k < m->nops; k++) {
                if (!m->ops[k].from_new)
                    continue;
                vse__err(err, VSE_EINVAL,
                         "machine '%s' has more than one "
                         "creating operation",
                         m->name);
                vse__err_hint(err, "name one with --op: '%s' or '%s'",
                              m->ops[i].name, m->ops[k].name);
                return VSE_EINVAL;
            }
            o = i;
        }
        if (o < 0)
            return vse__err(err, VSE_EINVAL,
                            "machine '%s' has no creating "
                            "operation",
                            m->name);
    }
    memset(next, 0, sizeof(*next));
    vse__strlcpy(next->id, c->id, sizeof(next->id));
    vse__strlcpy(next->machine, m->name, sizeof(next->machine));
    vse__strlcpy(next->origin, VSE_STATE_NEW, sizeof(next->origin));
    vse__strlcpy(next->attrs, "{}", sizeof(next->attrs));
    next->created = c->now;
    next->updated = c->now;
    next->version = 1;
    return enter_op(c, &m->ops[o], m, next, err);
}

/*
 * Decide a transition on an existing row.  Returns 0 with *next filled,
 * or a refusal (VSE_ECONFLICT, VSE_EFENCED, VSE_EINVAL).
 */
/*
 * The step part of a step, or of a claim that also steps (claim_step):
 * `to` must be an edge of the op from state s.
 */
static int step_to(const struct call *c, const vse_machine *m,
                   const struct vse__op *op, int s,
                   const struct vse_resource *cur, struct vse_resource *next,
                   struct vse_error *err)
{
    int t = vse__machine_state(m, c->to);
    char why[160];

    if (t < 0)
        return vse__err(err, VSE_EINVAL, "machine '%s' has no state '%s'",
                        m->name, c->to);
    if (!(op->step_to[s] & (UINT64_C(1) << t))) {
        snprintf(why, sizeof(why), "step to %s is not allowed", c->to);
        return refuse(err, m, cur, why);
    }
    vse__strlcpy(next->state, c->to, sizeof(next->state));
    /* Progress proves the owner alive: each step renews the lease. */
    next->lease_expires = c->now + ttl_us(c, cur->lease_ttl);
    if (c->o->release)
        next->owner[0] = '\0';
    /* An op left unowned waits for a claim since now: the reaper
     * reads that as lease_expires - lease_ttl (the retry budget's
     * unclaimed clock), so the two must agree. */
    if (!has(next->owner))
        next->lease_ttl = ttl_us(c, cur->lease_ttl);
    return 0;
}

static int decide(const struct call *c, const vse_machine *m,
                  const struct vse_resource *cur, struct vse_resource *next,
                  struct vse_error *err)
{
    int s = vse__machine_state(m, cur->state);
    int o = has(cur->op) ? vse__machine_op(m, cur->op) : -1;
    const struct vse__op *op = o >= 0 ? &m->ops[o] : NULL;
    char why[160];

    if (s < 0 || (has(cur->op) && o < 0))
        return vse__err(err, VSE_EINTERNAL,
                        "%s '%s' is in state '%s' / op "
                        "'%s', which machine '%s' does not declare",
                        cur->machine, cur->id, cur->state, cur->op, m->name);
    *next = *cur;
    next->version = cur->version + 1;
    next->updated = c->now;

    switch (c->kind) {
    case VSE_KIND_BEGIN: {
        int b = vse__machine_op(m, c->op);
        int rc;

        if (b < 0)
            return vse__err(err, VSE_EINVAL,
                            "machine '%s' has no operation "
                            "'%s'",
                            m->name, c->op);
        if (has(cur->op)) {
            snprintf(why, sizeof(why), "%s may not begin", c->op);
            return refuse(err, m, cur, why);
        }
        if (!(m->ops[b].from & (UINT64_C(1) << s))) {
            snprintf(why, sizeof(why), "%s may not begin from %s", c->op,
                     cur->state);
            return refuse(err, m, cur, why);
        }
        rc = enter_op(c, &m->ops[b], m, next, err);
        vse__strlcpy(next->origin, cur->state, sizeof(next->origin));
        return rc;
    }
    case VSE_KIND_RESET: {
        int t = vse__machine_state(m, c->to);

        if (t < 0)
            return vse__err(err, VSE_EINVAL, "machine '%s' has no state '%s'",
                            m->name, c->to);
        if (m->states[t].busy)
            return vse__err(err, VSE_EINVAL,
                            "'%s' is a busy state; "
                            "reset-state takes a rest state",
                            c->to);
        to_rest(next, c->to, c->now);
        return 0;
    }
    case VSE_KIND_UPDATE: return 0; /* attrs only: run() applies the patch */
    default: break;
    }

    /* Everything else acts on the op in flight, under its token. */
    if (op == NULL || strcmp(cur->op_id, c->op_id) != 0)
        return fenced(err, m, cur, c->op_id);

    switch (c->kind) {
    case VSE_KIND_STEP: return step_to(c, m, op, s, cur, next, err);
    case VSE_KIND_FINISH: {
        int t;

        if (has(c->to)) {
            t = vse__machine_state(m, c->to);
            if (t < 0)
                return vse__err(err, VSE_EINVAL,
                                "machine '%s' has no state "
                                "'%s'",
                                m->name, c->to);
        } else {
            uint64_t set = op->finish_to[s];

            if (set == 0 || (set & (set - 1)) != 0) {
                snprintf(why, sizeof(why),
                         "finish needs a state here (one "
                         "of the op's success states)");
                return refuse(err, m, cur, why);
            }
            t = __builtin_ctzll(set);
        }
        if (!(op->finish_to[s] & (UINT64_C(1) << t))) {
            snprintf(why, sizeof(why), "finish to %s is not allowed",
                     m->states[t].name);
            return refuse(err, m, cur, why);
        }
        to_rest(next, m->states[t].name, c->now);
        return 0;
    }
    case VSE_KIND_FAIL:
        to_rest(next, m->states[op->failure].name, c->now);
        return 0;
    case VSE_KIND_CLAIM: {
        int rc;

        if (has(cur->owner) && cur->lease_expires >= c->now) {
            snprintf(why, sizeof(why), "its lease is live");
            return refuse(err, m, cur, why);
        }
        if (has(cur->owner) && op->expiry[s] != VSE_EXPIRY_RETRY) {
            snprintf(why, sizeof(why),
                     "step %s may not be resumed by "
                     "another worker (its expiry policy is not retry); "
                     "the reaper will end it",
                     cur->state);
            return refuse(err, m, cur, why);
        }
        rc = vse__uuid(next->op_id, err);
        if (rc < 0)
            return rc;
        vse__strlcpy(next->owner, c->o->owner, sizeof(next->owner));
        next->lease_expires = c->now + ttl_us(c, cur->lease_ttl);
        return has(c->to) ? step_to(c, m, op, s, cur, next, err) : 0;
    }
    case VSE_KIND_RENEW:
        if (!has(cur->owner)) {
            snprintf(why, sizeof(why), "an unowned op has no lease to renew");
            return refuse(err, m, cur, why);
        }
        /* Renewing a lease that has run out is still safe: the op_id
         * matched, so nobody reaped or claimed the op in between. */
        next->lease_expires = c->now + ttl_us(c, cur->lease_ttl);
        return 0;
    default:
        return vse__err(err, VSE_EINTERNAL, "unknown transition kind %d",
                        (int)c->kind);
    }
}

/*
 * Was this call already carried out?  For calls with a request id, the
 * request id says so; otherwise a step, finish or fail under the same
 * op_id to the same state is the same transition delivered twice.
 */
static int find_repeat(vse_db *db, const struct call *c, struct vse_event *ev,
                       struct vse_error *err)
{
    struct vse_error e2;
    int rc;
    struct vse_event_query q;

    memset(&q, 0, sizeof(q));
    q.resource = c->id;
    q.kind = c->kind;
    if (has(c->o->request_id)) {
        q.request_id = c->o->request_id;
    } else {
        switch (c->kind) {
        case VSE_KIND_STEP:
        case VSE_KIND_FINISH:
            q.to = has(c->to) ? c->to : NULL;
            /* fall through */
        case VSE_KIND_FAIL: q.op_id = c->op_id; break;
        default: return VSE_ENOTFOUND;
        }
    }
    rc = vse__store_find_event(db->store, &q, ev, &e2);
    /* A failed lookup is a store failure, never "not a repeat": the
     * caller must not answer a refusal it could not check. */
    if (rc < 0 && rc != VSE_ENOTFOUND && err != NULL)
        *err = e2;
    return rc;
}

static int repeated(const struct call *c, const struct vse_event *ev,
                    struct vse_resource *out)
{
    (void)c;
    /* The caller of create/begin/claim wants the token it was given. */
    if (out != NULL && ev->kind != VSE_KIND_STEP &&
        ev->kind != VSE_KIND_FINISH && ev->kind != VSE_KIND_FAIL)
        vse__strlcpy(out->op_id, ev->op_id, sizeof(out->op_id));
    return VSE_REPEATED;
}

/* ---- applying ------------------------------------------------------ */

static int check_inputs(const struct call *c, struct vse_error *err)
{
    int rc = vse_check_id("resource id", c->id, err);

    if (rc == 0 && has(c->o->owner))
        rc = vse_check_id("owner", c->o->owner, err);
    if (rc == 0 && c->o->request_id != NULL)
        rc = vse_check_id("request id", c->o->request_id, err);
    if (rc < 0)
        return rc;
    if (c->o->reason != NULL && strlen(c->o->reason) > VSE_REASON_MAX)
        return vse__err(err, VSE_EINVAL,
                        "reason is %zu bytes long, the "
                        "limit is %d",
                        strlen(c->o->reason), VSE_REASON_MAX);
    if (c->o->attrs != NULL && attrs_check(c->o->attrs, err) < 0)
        return err ? err->code : VSE_EINVAL;
    if (c->o->hold != NULL && c->kind != VSE_KIND_CREATE &&
        c->kind != VSE_KIND_BEGIN)
        return vse__err(err, VSE_EINVAL,
                        "only create and begin take a hold, not %s",
                        vse_kind_name(c->kind));
    if (has(c->o->hold) &&
        vse_check_id("held resource id", c->o->hold, err) < 0)
        return VSE_EINVAL;
    if (c->kind == VSE_KIND_UPDATE && c->o->attrs == NULL)
        return vse__err(err, VSE_EINVAL, "update needs attrs");
    if (c->o->ttl_ms < 0)
        return vse__err(err, VSE_EINVAL, "lease ttl is negative");
    if (c->o->ttl_ms > INT64_C(1000) * 86400 * 365)
        return vse__err(err, VSE_EINVAL, "lease ttl is longer than a year");
    if ((c->kind == VSE_KIND_FAIL || c->kind == VSE_KIND_RESET) &&
        !has(c->o->reason))
        return vse__err(err, VSE_EINVAL, "%s needs a reason",
                        vse_kind_name(c->kind));
    if (c->kind == VSE_KIND_CLAIM && !has(c->o->owner))
        return vse__err(err, VSE_EINVAL, "claim needs an owner");
    if (c->op_id != NULL &&
        (c->op_id[0] == '\0' || strlen(c->op_id) != VSE_OPID_LEN))
        return vse__err(err, VSE_EINVAL,
                        "op_id '%.40s' is not an op_id "
                        "(%d characters)",
                        c->op_id, VSE_OPID_LEN);
    if (c->to != NULL && strlen(c->to) > VSE_NAME_MAX)
        return vse__err(err, VSE_EINVAL, "state name is longer than %d bytes",
                        VSE_NAME_MAX);
    if (c->op != NULL && strlen(c->op) > VSE_NAME_MAX)
        return vse__err(err, VSE_EINVAL,
                        "operation name is longer than %d "
                        "bytes",
                        VSE_NAME_MAX);
    return 0;
}

/*
 * A create is one insert; with a hold it may also lose a race on the held
 * resource (cur.version stays 0), and then it is decided again.
 */
static int run_create(vse_db *db, struct call *c, const vse_machine *m,
                      struct vse_resource *out, struct vse_error *err)
{
    struct vse_resource cur, next;
    struct vse_event ev;
    struct vse__hold_plan plan;
    int rc = 0;

    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct vse_change ch = {.row = &next, .ev = &ev};

        c->now = vse_now_us();
        rc = decide_create(c, m, &next, err);
        if (rc == 0 && c->o->attrs != NULL)
            rc = attrs_apply("{}", c->o->attrs, &next, err);
        if (rc == 0)
            rc = vse__hold_plan_start(db, m,
                                      &m->ops[vse__machine_op(m, next.op)],
                                      c->id, NULL, 0, c->o, c->now, &plan,
                                      err);
        if (rc < 0)
            return rc;
        ev_init(&ev, c, NULL, &next);
        vse__hold_plan_put(&plan, &ch);
        rc = vse__store_apply(db->store, &ch, &cur, &ev.seq, err);
        if (rc == 0) {
            if (out)
                *out = next;
            return 0;
        }
        if (rc != VSE_ECONFLICT)
            return rc;
        if (cur.version == 0 && plan.taking)
            continue; /* the held resource moved: decide again */
        if (out)
            *out = cur;
        rc = has(c->o->request_id) ? find_repeat(db, c, &ev, err)
                                   : VSE_ENOTFOUND;
        if (rc == 0)
            return repeated(c, &ev, out);
        if (rc != VSE_ENOTFOUND)
            return rc;
        {
            char what[VSE_ERROR_MSG_SIZE];

            describe(&cur, what, sizeof(what));
            vse__err(err, VSE_EEXIST, "resource '%s' already exists: %s",
                     c->id, what);
        }
        return VSE_EEXIST;
    }
    return vse__err(err, VSE_EBUSY,
                    "the resource %s '%s' holds changed %d times while its "
                    "create was being decided",
                    m->name, c->id, CAS_ATTEMPTS);
}

/*
 * A renew that only extends the lease (no reason, no attrs, no request
 * id) writes no history row (issue 15): the row shows the lease, and the
 * history records owner changes and expiries, not heartbeats.  Its
 * version still moves, so a reaper or a claim that read the old lease
 * loses its compare-and-swap; the gap it leaves in the history's
 * versions lies inside one owned op (vse_check allows exactly that).
 */
static int silent(const struct call *c)
{
    return c->kind == VSE_KIND_RENEW && !has(c->o->reason) &&
           c->o->attrs == NULL && !has(c->o->request_id);
}

static int run(vse_db *db, struct call *c, struct vse_resource *out,
               struct vse_error *err)
{
    struct vse_resource cur, next;
    struct vse_event ev;
    struct vse__hold_plan plan;
    struct vse_change ch;
    const vse_machine *m = NULL;
    int rc, guard_refused = 0;

    if (c->o == NULL)
        c->o = &no_opts;
    rc = check_inputs(c, err);
    if (rc < 0)
        return rc;
    if (c->kind == VSE_KIND_CREATE) {
        m = vse__db_machine(db, c->machine, err);
        if (m == NULL)
            return VSE_EINVAL;
    }
    /* A request id names one request: if it is already in the history
     * the request was carried out, even if the state has moved on. */
    rc = has(c->o->request_id) ? find_repeat(db, c, &ev, err) : VSE_ENOTFOUND;
    if (rc < 0 && rc != VSE_ENOTFOUND)
        return rc;
    if (rc == 0) {
        rc = vse__store_get(db->store, c->id, &cur, err);
        if (rc < 0)
            return rc;
        if (out)
            *out = cur;
        return repeated(c, &ev, out);
    }

    if (c->kind == VSE_KIND_CREATE)
        return run_create(db, c, m, out, err);

    if (c->o->seen != NULL && c->o->seen->version > 0 &&
        strcmp(c->o->seen->id, c->id) == 0) {
        cur = *c->o->seen;
    } else {
        rc = vse__store_get(db->store, c->id, &cur, err);
        if (rc == VSE_ENOTFOUND)
            return vse__err(err, VSE_ENOTFOUND, "resource '%s' not found",
                            c->id);
        if (rc < 0)
            return rc;
    }
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        m = vse__db_machine(db, cur.machine, err);
        if (m == NULL)
            return VSE_EINVAL;
        c->now = vse_now_us();
        if (c->o->if_version > 0 && cur.version != c->o->if_version) {
            if (out)
                *out = cur;
            return vse__err(err, VSE_EFENCED,
                            "%s '%s' changed meanwhile: it is at version "
                            "%lld, the call was made for version %lld",
                            cur.machine, c->id, (long long)cur.version,
                            (long long)c->o->if_version);
        }
        rc = decide(c, m, &cur, &next, err);
        /* Holds: a begin checks the holds on cur and takes its own; a
         * transition that ends the op ends its hold. */
        if (rc == 0 && c->kind == VSE_KIND_BEGIN)
            rc = vse__hold_plan_start(db, m,
                                      &m->ops[vse__machine_op(m, c->op)],
                                      c->id, &cur, guard_refused, c->o,
                                      c->now, &plan, err);
        else if (rc == 0 && has(cur.op) && !has(next.op))
            rc = vse__hold_plan_end(db, m, &cur, &plan, err);
        else if (rc == 0)
            memset(&plan, 0, sizeof(plan));
        if (rc == VSE_ECONFLICT || rc == VSE_EFENCED) {
            if (out)
                *out = cur;
            int fr = find_repeat(db, c, &ev, err);

            if (fr == 0) {
                vse_error_clear(err);
                return repeated(c, &ev, out);
            }
            return fr == VSE_ENOTFOUND ? rc : fr;
        }
        if (rc == 0 && c->o->attrs != NULL)
            rc = attrs_apply(cur.attrs, c->o->attrs, &next, err);
        if (rc < 0)
            return rc;
        ev_init(&ev, c, &cur, &next);
        if (c->kind == VSE_KIND_UPDATE) {
            /* Not a step of the op in flight: no op, and the actor. */
            ev.op[0] = '\0';
            ev.op_id[0] = '\0';
            vse__strlcpy(ev.owner, has(c->o->owner) ? c->o->owner : "",
                         sizeof(ev.owner));
        }
        if (c->kind == VSE_KIND_RESET) {
            /* Record the op (and token) that the reset fenced. */
            vse__strlcpy(ev.op, cur.op, sizeof(ev.op));
            vse__strlcpy(ev.op_id, cur.op_id, sizeof(ev.op_id));
            vse__strlcpy(ev.owner, has(c->o->owner) ? c->o->owner : "",
                         sizeof(ev.owner));
        }
        ch = (struct vse_change){.expect_version = cur.version,
                                 .row = &next,
                                 .ev = &ev,
                                 .quiet = silent(c)};
        vse__hold_plan_put(&plan, &ch);
        rc = vse__store_apply(db->store, &ch, &cur, &ev.seq, err);
        if (rc == 0) {
            if (out)
                *out = next;
            return 0;
        }
        if (rc != VSE_ECONFLICT)
            return rc;
        if (cur.version == 0)
            return vse__err(err, VSE_ENOTFOUND, "resource '%s' not found",
                            c->id);
        /* Lost a race, or the guard was refused (then the holds are read,
         * to name them): decide again against what won. */
        guard_refused = ch.guard != 0;
    }
    return vse__err(err, VSE_EBUSY,
                    "%s '%s' changed %d times while this "
                    "transition was being decided",
                    cur.machine, c->id, CAS_ATTEMPTS);
}

int vse_create(vse_db *db, const char *machine, const char *id,
               const struct vse_opts *o, struct vse_resource *out,
               struct vse_error *err)
{
    struct call c = {
        .kind = VSE_KIND_CREATE, .id = id, .machine = machine, .o = o};

    if (machine == NULL || machine[0] == '\0')
        return vse__err(err, VSE_EINVAL, "machine name is empty");
    if (o != NULL)
        c.op = o->op;
    return run(db, &c, out, err);
}

int vse_begin(vse_db *db, const char *id, const char *op,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err)
{
    struct call c = {.kind = VSE_KIND_BEGIN, .id = id, .op = op, .o = o};

    if (op == NULL || op[0] == '\0')
        return vse__err(err, VSE_EINVAL, "operation name is empty");
    return run(db, &c, out, err);
}

/* The transitions made under an op's token share one shape. */
static int by_op(vse_db *db, enum vse_kind kind, const char *id,
                 const char *op_id, const char *to, const struct vse_opts *o,
                 struct vse_resource *out, struct vse_error *err)
{
    struct call c = {.kind = kind, .id = id, .op_id = op_id, .to = to, .o = o};

    if (op_id == NULL)
        return vse__err(err, VSE_EINVAL, "%s needs an op_id",
                        vse_kind_name(kind));
    return run(db, &c, out, err);
}

int vse_step(vse_db *db, const char *id, const char *op_id, const char *to,
             const struct vse_opts *o, struct vse_resource *out,
             struct vse_error *err)
{
    if (to == NULL || to[0] == '\0')
        return vse__err(err, VSE_EINVAL, "step needs a state");
    return by_op(db, VSE_KIND_STEP, id, op_id, to, o, out, err);
}

int vse_finish(vse_db *db, const char *id, const char *op_id, const char *to,
               const struct vse_opts *o, struct vse_resource *out,
               struct vse_error *err)
{
    return by_op(db, VSE_KIND_FINISH, id, op_id, to, o, out, err);
}

int vse_fail(vse_db *db, const char *id, const char *op_id,
             const struct vse_opts *o, struct vse_resource *out,
             struct vse_error *err)
{
    return by_op(db, VSE_KIND_FAIL, id, op_id, NULL, o, out, err);
}

int vse_claim(vse_db *db, const char *id, const char *op_id,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err)
{
    return by_op(db, VSE_KIND_CLAIM, id, op_id, NULL, o, out, err);
}

int vse_claim_step(vse_db *db, const char *id, const char *op_id,
                   const char *to, const struct vse_opts *o,
                   struct vse_resource *out, struct vse_error *err)
{
    if (to == NULL || to[0] == '\0')
        return vse__err(err, VSE_EINVAL, "claim_step needs a state");
    return by_op(db, VSE_KIND_CLAIM, id, op_id, to, o, out, err);
}

int vse_renew(vse_db *db, const char *id, const char *op_id,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err)
{
    return by_op(db, VSE_KIND_RENEW, id, op_id, NULL, o, out, err);
}

int vse_reset_state(vse_db *db, const char *id, const char *state,
                    const struct vse_opts *o, struct vse_resource *out,
                    struct vse_error *err)
{
    struct call c = {.kind = VSE_KIND_RESET, .id = id, .to = state, .o = o};

    if (state == NULL || state[0] == '\0')
        return vse__err(err, VSE_EINVAL, "reset-state needs a state");
    return run(db, &c, out, err);
}

int vse_update(vse_db *db, const char *id, const struct vse_opts *o,
               struct vse_resource *out, struct vse_error *err)
{
    struct call c = {.kind = VSE_KIND_UPDATE, .id = id, .o = o};

    return run(db, &c, out, err);
}

/* ---- the reaper ---------------------------------------------------- */

struct reap_batch {
    int n;
    struct vse_resource rows[REAP_BATCH];
};

static int collect(void *ctx, const struct vse_resource *r)
{
    struct reap_batch *b = ctx;

    if (b->n < REAP_BATCH)
        b->rows[b->n++] = *r;
    return 0;
}

/* Counts the expiries since the latest row that began an op. */
static int count_expiry(void *ctx, const struct vse_event *e)
{
    int *n = ctx;

    if (e->kind == VSE_KIND_BEGIN || e->kind == VSE_KIND_CREATE)
        *n = 0;
    else if (e->kind == VSE_KIND_EXPIRE)
        (*n)++;
    return 0;
}

/*
 * How many lease expiries the op in flight on cur has had so far.  The
 * history is the record (no column keeps a count): read from the row
 * that began the op, so the cost is this op's rows, not the resource's
 * whole past.  If retention purged that row, the count starts at the
 * oldest row kept, which can only under-count.
 */
static int expiries_so_far(vse_db *db, const struct vse_resource *cur, int *n,
                           struct vse_error *err)
{
    struct vse_event_query q;
    struct vse_event start;
    int64_t after = 0;
    int rc;

    memset(&q, 0, sizeof(q));
    q.resource = cur->id;
    q.kind = strcmp(cur->origin, VSE_STATE_NEW) == 0 ? VSE_KIND_CREATE
                                                     : VSE_KIND_BEGIN;
    rc = vse__store_find_event(db->store, &q, &start, err);
    if (rc == 0)
        after = start.seq - 1; /* include it: it resets the count */
    else if (rc != VSE_ENOTFOUND)
        return rc;
    *n = 0;
    return vse__store_history(db->store, cur->id, after, 0, count_expiry, n,
                              err);
}

/*
 * End cur's op in its failure state for the reaper, with `reason`, in one
 * CAS against the version read.  1 if applied, 0 if the row changed under
 * us.
 */
static int reap_to_failure(vse_db *db, const vse_machine *m, int o,
                           const struct vse_resource *cur, const char *reason,
                           struct vse_error *err)
{
    struct call c = {.kind = VSE_KIND_EXPIRE, .id = cur->id, .o = &no_opts};
    struct vse_resource next, now_row;
    struct vse_event ev;
    struct vse__hold_plan plan;
    struct vse_change ch;
    int rc;

    c.now = vse_now_us();
    next = *cur;
    next.version = cur->version + 1;
    next.updated = c.now;
    to_rest(&next, m->states[m->ops[o].failure].name, c.now);
    ev_init(&ev, &c, cur, &next);
    vse__strlcpy(ev.owner, cur->owner, sizeof(ev.owner));
    vse__strlcpy(ev.reason, reason, sizeof(ev.reason));
    /* The op ends here, and so does what it holds. */
    rc = vse__hold_plan_end(db, m, cur, &plan, err);
    if (rc < 0)
        return rc;
    ch = (struct vse_change){.expect_version = cur->version,
                             .row = &next,
                             .ev = &ev};
    vse__hold_plan_put(&plan, &ch);
    rc = vse__store_apply(db->store, &ch, &now_row, &ev.seq, err);
    if (rc == VSE_ECONFLICT)
        return 0;
    return rc < 0 ? rc : 1;
}

/*
 * Apply the expiry policy of cur's step.  Returns 1 if applied, 0 if the
 * row changed under us (someone renewed, finished or reaped it first).
 */
static int expire_one(vse_db *db, const struct vse_resource *cur,
                      struct vse_reap_stats *st, struct vse_error *err)
{
    const vse_machine *m = vse_find_machine(db, cur->machine);
    struct call c = {.kind = VSE_KIND_EXPIRE, .id = cur->id, .o = &no_opts};
    struct vse_resource next, now_row;
    struct vse_event ev;
    struct vse__hold_plan plan;
    struct vse_change ch;
    char reason[VSE_REASON_MAX + 1], when[32];
    enum vse__expiry policy;
    int s, o, rc, used = 0;

    if (m == NULL) {
        st->skipped++; /* a machine this process does not enforce */
        return 0;
    }
    s = vse__machine_state(m, cur->state);
    o = vse__machine_op(m, cur->op);
    if (s < 0 || o < 0) {
        st->skipped++;
        return 0;
    }
    policy = m->ops[o].expiry[s];
    vse_time_format(cur->lease_expires, when, sizeof(when));
    if (policy == VSE_EXPIRY_RETRY) {
        rc = expiries_so_far(db, cur, &used, err);
        if (rc < 0)
            return rc;
        used++; /* this one */
        if (used >= m->ops[o].retry_attempts) {
            snprintf(reason, sizeof(reason),
                     "retry budget spent: %d expiries of %s (lease of %s "
                     "expired at %s in step %s)",
                     used, cur->op, cur->owner, when, cur->state);
            rc = reap_to_failure(db, m, o, cur, reason, err);
            if (rc == 0)
                st->skipped++;
            else if (rc > 0)
                st->exhausted++;
            return rc;
        }
    }
    c.now = vse_now_us();
    next = *cur;
    next.version = cur->version + 1;
    next.updated = c.now;
    switch (policy) {
    case VSE_EXPIRY_RETRY:
        /* Hand the op back with a new token: the stalled owner is fenced
         * and another worker may claim and resume the idempotent step.
         * The lease it is handed back with starts the unclaimed clock
         * (handed back at lease_expires - lease_ttl). */
        rc = vse__uuid(next.op_id, err);
        if (rc < 0)
            return rc;
        next.owner[0] = '\0';
        next.lease_expires = c.now + cur->lease_ttl;
        snprintf(reason, sizeof(reason),
                 "lease of %s expired at %s; "
                 "step %s handed back for another worker (retry, expiry "
                 "%d of %d)",
                 cur->owner, when, cur->state, used,
                 m->ops[o].retry_attempts);
        break;
    case VSE_EXPIRY_REVERT:
        if (!has(cur->origin) || strcmp(cur->origin, VSE_STATE_NEW) == 0 ||
            vse__machine_state(m, cur->origin) < 0) {
            st->skipped++;
            return 0;
        }
        to_rest(&next, cur->origin, c.now);
        snprintf(reason, sizeof(reason),
                 "lease of %s expired at %s; "
                 "reverted to %s",
                 cur->owner, when, cur->origin);
        break;
    default:
        to_rest(&next, m->states[m->ops[o].failure].name, c.now);
        snprintf(reason, sizeof(reason),
                 "lease of %s expired at %s; "
                 "failed in step %s",
                 cur->owner, when, cur->state);
        break;
    }
    ev_init(&ev, &c, cur, &next);
    vse__strlcpy(ev.owner, cur->owner, sizeof(ev.owner));
    vse__strlcpy(ev.reason, reason, sizeof(ev.reason));
    memset(&plan, 0, sizeof(plan));
    /* An op that ends here ends its hold; a retry keeps both. */
    if (policy != VSE_EXPIRY_RETRY) {
        rc = vse__hold_plan_end(db, m, cur, &plan, err);
        if (rc < 0)
            return rc;
    }
    ch = (struct vse_change){.expect_version = cur->version,
                             .row = &next,
                             .ev = &ev};
    vse__hold_plan_put(&plan, &ch);
    rc = vse__store_apply(db->store, &ch, &now_row, &ev.seq, err);
    if (rc == VSE_ECONFLICT) {
        st->skipped++;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (policy == VSE_EXPIRY_RETRY)
        st->retried++;
    else if (policy == VSE_EXPIRY_REVERT)
        st->reverted++;
    else
        st->failed++;
    return 1;
}

/*
 * An op waiting unowned at a retry step since it was handed back (by the
 * reaper, by a worker's release, or begun unowned): if nobody claimed it
 * within its op's unclaimed budget, end it in its failure state.  Only
 * rows whose hand-back lease has run out come here (the "stuck" ones), so
 * a budget shorter than the lease waits for the lease.
 */
static int unclaimed_one(vse_db *db, const struct vse_resource *cur,
                         int64_t now, struct vse_reap_stats *st,
                         struct vse_error *err)
{
    const vse_machine *m = vse_find_machine(db, cur->machine);
    const struct vse__op *op;
    char reason[VSE_REASON_MAX + 1], ago[32], budget[32];
    int64_t since;
    int s, o, rc;

    if (m == NULL || has(cur->owner))
        return 0; /* not ours, or an owned lease: the expiry pass's */
    s = vse__machine_state(m, cur->state);
    o = vse__machine_op(m, cur->op);
    if (s < 0 || o < 0)
        return 0;
    op = &m->ops[o];
    if (op->expiry[s] != VSE_EXPIRY_RETRY || op->retry_unclaimed_us <= 0)
        return 0;
    /* Every way an op becomes unowned sets lease_expires to then plus
     * lease_ttl; vse_update() touches neither, so renaming a waiting
     * volume does not restart its clock. */
    since = cur->lease_expires - cur->lease_ttl;
    if (now - since < op->retry_unclaimed_us)
        return 0;
    snprintf(reason, sizeof(reason),
             "handed back %s ago and not claimed: step %s of %s waited "
             "longer than its unclaimed budget (%s)",
             vse__duration_format(now - since, ago, sizeof(ago)), cur->state,
             cur->op,
             vse__duration_format(op->retry_unclaimed_us, budget,
                                  sizeof(budget)));
    rc = reap_to_failure(db, m, o, cur, reason, err);
    if (rc == 0)
        st->skipped++;
    else if (rc > 0)
        st->unclaimed++;
    return rc;
}

/* The unclaimed pass: page through the stuck rows in id order. */
static int reap_unclaimed(vse_db *db, struct reap_batch *b,
                          struct vse_reap_stats *st, struct vse_error *err)
{
    char after[VSE_ID_MAX + 1] = "";

    for (;;) {
        struct vse_filter f;
        int64_t now = vse_now_us();
        int rc;

        memset(&f, 0, sizeof(f));
        f.busy = 1;
        f.stuck = 1;
        f.after_id = after;
        f.limit = REAP_BATCH;
        b->n = 0;
        rc = vse__store_list(db->store, &f, now, collect, b, err);
        if (rc < 0)
            return rc;
        for (int i = 0; i < b->n; i++) {
            rc = unclaimed_one(db, &b->rows[i], now, st, err);
            if (rc < 0)
                return rc;
        }
        if (b->n < REAP_BATCH)
            return 0;
        vse__strlcpy(after, b->rows[b->n - 1].id, sizeof(after));
    }
}

int vse_reap(vse_db *db, struct vse_reap_stats *st, struct vse_error *err)
{
    struct vse_reap_stats none;
    struct reap_batch *b;
    int rc = 0;

    if (st == NULL)
        st = &none;
    memset(st, 0, sizeof(*st));
    b = vse__malloc(sizeof(*b));
    if (b == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    for (;;) {
        int applied = 0;

        b->n = 0;
        rc = vse__store_expired(db->store, vse_now_us(), REAP_BATCH, collect,
                                b, err);
        if (rc < 0)
            break;
        for (int i = 0; i < b->n; i++) {
            st->examined++;
            rc = expire_one(db, &b->rows[i], st, err);
            if (rc < 0)
                goto out;
            applied += rc;
        }
        /* A short batch was the last; a batch where nothing could be
         * applied would come back the same, so stop there too. */
        if (b->n < REAP_BATCH || applied == 0)
            break;
    }
    if (rc >= 0)
        rc = reap_unclaimed(db, b, st, err);
out:
    free(b);
    return rc < 0 ? rc : 0;
}
