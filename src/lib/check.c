/*
 * check.c - the invariant checker behind `vsectl check` and the
 * concurrency proofs: it replays each resource's history against its
 * machine, independently of the code that wrote it, and reports every
 * place where the store's record is not a valid path, where two
 * operations overlapped, or where the row disagrees with its history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vse-int.h"

struct events {
    size_t n, cap;
    struct vse_event *v;
    int oom;
};

static int collect_event(void *ctx, const struct vse_event *e)
{
    struct events *ev = ctx;

    if (vse__array_push(ev, *e) < 0) {
        ev->oom = 1;
        return 1;
    }
    return 0;
}

/* When each machine's current definition was pinned (cached). */
struct pinned {
    char machine[VSE_NAME_MAX + 1];
    int64_t at;
};

struct checker {
    vse_db *db;
    struct pinned pins[VSE_DB_MACHINES_MAX];
    int npins;
    vse_violation_fn cb;
    void *ctx;
    int64_t violations;
    struct events ev;
    int rc;
    struct vse_error *err;
};

static void violation(struct checker *ck, const char *id, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));
static void violation(struct checker *ck, const char *id, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ck->violations++;
    if (ck->cb != NULL)
        ck->cb(ck->ctx, id, msg);
}

static int bit(uint64_t set, int i)
{
    return i >= 0 && (set & (UINT64_C(1) << i)) != 0;
}

/*
 * A row written before `pinned_at` was written under an earlier version
 * of the machine (vse_upgrade_machine), whose definition the store no
 * longer keeps: follow it without judging its edges against today's
 * machine.  Only its place in the sequence is checked.  1 if e was such
 * a row.
 */
static int follow_earlier(const vse_machine *m, const struct vse_event *e,
                          int64_t pinned_at, int *inflight, char *token,
                          char *origin)
{
    if (e->at >= pinned_at)
        return 0;
    switch (e->kind) {
    case VSE_KIND_CREATE:
    case VSE_KIND_BEGIN:
        /* -2: an op the current version does not have. */
        *inflight = vse__machine_op(m, e->op);
        if (*inflight < 0)
            *inflight = -2;
        vse__strlcpy(token, e->op_id, VSE_OPID_LEN + 1);
        vse__strlcpy(origin, e->from, VSE_NAME_MAX + 1);
        break;
    case VSE_KIND_CLAIM:
        vse__strlcpy(token, e->op_id, VSE_OPID_LEN + 1);
        break;
    case VSE_KIND_EXPIRE:
        if (strcmp(e->from, e->to) == 0)
            vse__strlcpy(token, e->op_id, VSE_OPID_LEN + 1);
        else
            *inflight = -1;
        break;
    case VSE_KIND_FINISH:
    case VSE_KIND_FAIL:
    case VSE_KIND_RESET: *inflight = -1; break;
    default: break;
    }
    return 1;
}

/*
 * Replay one resource's history.  `inflight` is the op the history says
 * is running (-1: none) and `token` its current op_id.
 */
static void replay(struct checker *ck, const vse_machine *m,
                   const struct vse_resource *r, int64_t pinned_at)
{
    const struct events *h = &ck->ev;
    char state[VSE_NAME_MAX + 1], origin[VSE_NAME_MAX + 1];
    char token[VSE_OPID_LEN + 1] = "";
    int inflight = -1;
    int64_t since_version = 0, skipped = 0;
    const char *id = r->id;

    if (h->n == 0) {
        violation(ck, id, "no history at all, yet at version %lld",
                  (long long)r->version);
        return;
    }
    vse__strlcpy(state, h->v[0].from, sizeof(state));
    vse__strlcpy(origin, "", sizeof(origin));
    if (h->v[0].version == 1 && h->v[0].kind != VSE_KIND_CREATE)
        violation(ck, id, "version 1 is a %s, not a create",
                  vse_kind_name(h->v[0].kind));
    /* History purged below the first row we see: trust its op context. */
    if (h->v[0].version > 1 && h->v[0].kind != VSE_KIND_BEGIN &&
        h->v[0].kind != VSE_KIND_RESET && h->v[0].kind != VSE_KIND_CREATE) {
        inflight = h->v[0].op[0] ? vse__machine_op(m, h->v[0].op) : -1;
        if (h->v[0].op[0] && inflight < 0 && h->v[0].at < pinned_at)
            inflight = -2;
        vse__strlcpy(token, h->v[0].op_id, sizeof(token));
    }

    for (size_t i = 0; i < h->n; i++) {
        const struct vse_event *e = &h->v[i];
        int from = vse__machine_state(m, e->from);
        int to = vse__machine_state(m, e->to);
        int o = e->op[0] ? vse__machine_op(m, e->op) : -1;
        const struct vse__op *op = o >= 0 ? &m->ops[o] : NULL;
        long long v = (long long)e->version;

        /* A renew that only extends the lease writes no history row:
         * a gap is allowed while an op is in flight (the op_id checks
         * below see that the next row goes on with the same op). */
        if (i > 0 && e->version > h->v[i - 1].version + 1 && inflight >= 0)
            skipped += e->version - h->v[i - 1].version - 1;
        else if (i > 0 && e->version != h->v[i - 1].version + 1)
            violation(ck, id, "versions jump from %lld to %lld",
                      (long long)h->v[i - 1].version, v);
        if (strcmp(e->from, state) != 0)
            violation(ck, id,
                      "version %lld starts from '%s' but the state "
                      "was '%s'",
                      v, e->from, state);
        if (follow_earlier(m, e, pinned_at, &inflight, token, origin)) {
            vse__strlcpy(state, e->to, sizeof(state));
            continue;
        }
        if (to < 0) {
            violation(ck, id, "version %lld moves to unknown state '%s'", v,
                      e->to);
            return;
        }
        if (e->kind == VSE_KIND_UPDATE) {
            if (from != to)
                violation(ck, id, "version %lld: update changed the state",
                          v);
            vse__strlcpy(state, e->to, sizeof(state));
            continue;
        }
        if (e->kind != VSE_KIND_RESET && op == NULL) {
            violation(ck, id, "version %lld (%s) names unknown op '%s'", v,
                      vse_kind_name(e->kind), e->op);
            return;
        }
        /* Transitions under an op_id must use the op's current token:
         * anything else is a fenced call that changed something. */
        if ((e->kind == VSE_KIND_STEP || e->kind == VSE_KIND_FINISH ||
             e->kind == VSE_KIND_FAIL || e->kind == VSE_KIND_RENEW) &&
            (inflight != o || strcmp(token, e->op_id) != 0))
            violation(ck, id,
                      "version %lld: %s under op_id %s, which was "
                      "not the current token of a running %s",
                      v, vse_kind_name(e->kind), e->op_id, e->op);

        switch (e->kind) {
        case VSE_KIND_CREATE:
        case VSE_KIND_BEGIN:
            if (inflight >= 0)
                violation(ck, id,
                          "operations overlap: %s %s at version "
                          "%lld while %s (since version %lld) was in "
                          "flight",
                          vse_kind_name(e->kind), e->op, v,
                          m->ops[inflight].name, (long long)since_version);
            if (e->kind == VSE_KIND_CREATE ? !op->from_new
                                           : !bit(op->from, from))
                violation(ck, id,
                          "version %lld: %s may not begin from "
                          "'%s'",
                          v, e->op, e->from);
            if (to != op->steps[0])
                violation(ck, id,
                          "version %lld: %s must enter '%s', not "
                          "'%s'",
                          v, e->op, m->states[op->steps[0]].name, e->to);
            inflight = o;
            since_version = e->version;
            vse__strlcpy(token, e->op_id, sizeof(token));
            vse__strlcpy(origin, e->from, sizeof(origin));
            break;
        case VSE_KIND_STEP:
            if (op != NULL && !bit(op->step_to[from], to))
                violation(ck, id,
                          "version %lld: step '%s' -> '%s' is not "
                          "an edge of %s",
                          v, e->from, e->to, e->op);
            break;
        case VSE_KIND_FINISH:
            if (op != NULL && !bit(op->finish_to[from], to))
                violation(ck, id,
                          "version %lld: finish '%s' -> '%s' is "
                          "not allowed in %s",
                          v, e->from, e->to, e->op);
            inflight = -1;
            break;
        case VSE_KIND_FAIL:
            if (op != NULL && to != op->failure)
                violation(ck, id,
                          "version %lld: fail must end in '%s', "
                          "not '%s'",
                          v, m->states[op->failure].name, e->to);
            inflight = -1;
            break;
        case VSE_KIND_CLAIM:
        case VSE_KIND_RENEW:
            if (inflight != o)
                violation(ck, id,
                          "version %lld: %s of %s, which was not "
                          "in flight",
                          v, vse_kind_name(e->kind), e->op);
            /* A claim may step along an edge of the op (claim_step). */
            if (from != to && e->kind == VSE_KIND_CLAIM && op != NULL &&
                !bit(op->step_to[from], to))
                violation(ck, id,
                          "version %lld: claim moved '%s' -> '%s', which "
                          "is not an edge of %s",
                          v, e->from, e->to, e->op);
            else if (from != to && e->kind != VSE_KIND_CLAIM)
                violation(ck, id, "version %lld: %s changed the state", v,
                          vse_kind_name(e->kind));
            if (e->kind == VSE_KIND_CLAIM)
                vse__strlcpy(token, e->op_id, sizeof(token));
            break;
        case VSE_KIND_EXPIRE:
            if (inflight != o)
                violation(ck, id,
                          "version %lld: expiry of %s, which was "
                          "not in flight",
                          v, e->op);
            else if (from == to)
                vse__strlcpy(token, e->op_id, sizeof(token)); /* retry */
            else if (op != NULL && to != op->failure &&
                     strcmp(e->to, origin) != 0)
                violation(ck, id,
                          "version %lld: expiry moved to '%s', "
                          "neither the failure state nor the origin",
                          v, e->to);
            else
                inflight = -1;
            break;
        case VSE_KIND_RESET:
            if (m->states[to].busy)
                violation(ck, id, "version %lld: reset to busy state '%s'", v,
                          e->to);
            inflight = -1;
            break;
        default:
            violation(ck, id, "version %lld has unknown kind", v);
            return;
        }
        vse__strlcpy(state, e->to, sizeof(state));
    }

    /* Renews since the last row: the row goes on with the op in flight,
     * under the same op_id. */
    if (r->version > h->v[h->n - 1].version && inflight >= 0 &&
        r->op[0] != '\0' && strcmp(r->op_id, token) == 0)
        skipped += r->version - h->v[h->n - 1].version;
    else if (h->v[h->n - 1].version != r->version)
        violation(ck, id,
                  "row is at version %lld but the history ends at "
                  "%lld",
                  (long long)r->version, (long long)h->v[h->n - 1].version);
    if (h->v[0].version == 1 && (int64_t)h->n + skipped != r->version)
        violation(ck, id, "version %lld but %zu history rows",
                  (long long)r->version, h->n);
    if (strcmp(r->state, state) != 0)
        violation(ck, id, "row says '%s' but the history ends in '%s'",
                  r->state, state);
    if ((inflight >= 0) != (r->op[0] != '\0') ||
        (inflight >= 0 && strcmp(r->op, m->ops[inflight].name) != 0))
        violation(ck, id, "row says op '%s' but the history says '%s'", r->op,
                  inflight >= 0 ? m->ops[inflight].name : "");
    else if (inflight >= 0 && strcmp(r->op_id, token) != 0)
        violation(ck, id, "row holds op_id %s but the history's token is %s",
                  r->op_id, token);
    if (m->states[vse__machine_state(m, r->state)].busy != (r->op[0] != '\0'))
        violation(ck, id, "state '%s' and op '%s' disagree on busy", r->state,
                  r->op);
}

/* When m's pin was written; 0 if unknown (every row is judged). */
static int pinned_at(struct checker *ck, const vse_machine *m, int64_t *at)
{
    struct vse_pin pin;
    int rc;

    for (int i = 0; i < ck->npins; i++) {
        if (strcmp(ck->pins[i].machine, m->name) == 0) {
            *at = ck->pins[i].at;
            return 0;
        }
    }
    memset(&pin, 0, sizeof(pin));
    rc = vse__store_pin_get(ck->db->store, m->name, &pin, ck->err);
    free(pin.definition);
    if (rc == VSE_ENOTFOUND) {
        vse_error_clear(ck->err);
        pin.pinned_at = 0;
    } else if (rc < 0) {
        return rc;
    }
    *at = strcmp(pin.hash, m->hash) == 0 ? pin.pinned_at : 0;
    if (ck->npins < VSE_DB_MACHINES_MAX) {
        vse__strlcpy(ck->pins[ck->npins].machine, m->name,
                     sizeof(ck->pins[0].machine));
        ck->pins[ck->npins++].at = *at;
    }
    return 0;
}

static int check_one(void *ctx, const struct vse_resource *r)
{
    struct checker *ck = ctx;
    const vse_machine *m = vse_find_machine(ck->db, r->machine);
    int64_t since = 0;
    int rc;

    ck->ev.n = 0;
    if (m == NULL) {
        violation(ck, r->id, "machine '%s' is not loaded", r->machine);
        return 0;
    }
    if (vse__machine_state(m, r->state) < 0) {
        violation(ck, r->id, "state '%s' is not in machine '%s'", r->state,
                  r->machine);
        return 0;
    }
    rc = pinned_at(ck, m, &since);
    if (rc < 0) {
        ck->rc = rc;
        return 1;
    }
    rc = vse__store_history(ck->db->store, r->id, 0, 0, collect_event,
                            &ck->ev, ck->err);
    if (rc < 0 || ck->ev.oom) {
        ck->rc = rc < 0 ? rc : vse__err(ck->err, VSE_ENOMEM, "out of memory");
        return 1;
    }
    /* The row was read first: its version V guarantees that history rows
     * up to V were committed with it.  Rows past V committed since, with
     * newer row versions this pass did not read; leave them out, or a
     * check run beside live writers would report a row behind its
     * history. */
    while (ck->ev.n > 0 && ck->ev.v[ck->ev.n - 1].version > r->version)
        ck->ev.n--;
    replay(ck, m, r, since);
    return 0;
}

/*
 * Holds, as they are now: each belongs to a holder whose op is in flight
 * and declares that hold (so none outlived its op), holds a resource of
 * the declared machine, and the held resource runs no op that one of
 * its holds refuses.  The history does not name held resources, so a
 * conflicting op that began and ended while a hold came and went is out
 * of this check's sight (NEEDSWORK: record the held id in history).
 */
struct hold_check {
    struct checker *ck;
    const char *only; /* NULL, or the one resource checked */
};

static int check_hold(void *ctx, const struct vse_hold *h)
{
    struct hold_check *hc = ctx;
    struct checker *ck = hc->ck;
    struct vse_resource holder, held;
    const vse_machine *m, *hm;
    const char *mode = vse_hold_mode_name(h->mode);
    int o, rc;

    if (hc->only != NULL && strcmp(h->held, hc->only) != 0 &&
        strcmp(h->holder, hc->only) != 0)
        return 0;
    rc = vse__store_get(ck->db->store, h->holder, &holder, NULL);
    if (rc == VSE_ENOTFOUND) {
        violation(ck, h->holder, "holds '%s' (%s) but does not exist",
                  h->held, mode);
        return 0;
    }
    if (rc < 0) {
        ck->rc = vse__store_get(ck->db->store, h->holder, &holder, ck->err);
        return 1;
    }
    if (holder.op[0] == '\0') {
        violation(ck, h->holder,
                  "holds '%s' (%s) at rest: the hold outlived its op %s",
                  h->held, mode, h->op);
        return 0;
    }
    m = vse_find_machine(ck->db, holder.machine);
    o = m != NULL ? vse__machine_op(m, holder.op) : -1;
    if (o >= 0 &&
        (m->ops[o].hold_mode != h->mode || strcmp(holder.op, h->op) != 0))
        violation(ck, h->holder,
                  "holds '%s' %s for op %s, but its op in flight is %s, "
                  "which holds %s",
                  h->held, mode, h->op, holder.op,
                  m->ops[o].hold_mode
                      ? vse_hold_mode_name(m->ops[o].hold_mode)
                      : "nothing");
    rc = vse__store_get(ck->db->store, h->held, &held, NULL);
    if (rc == VSE_ENOTFOUND) {
        violation(ck, h->held, "held by '%s' (%s) but does not exist",
                  h->holder, mode);
        return 0;
    }
    if (rc < 0) {
        ck->rc = vse__store_get(ck->db->store, h->held, &held, ck->err);
        return 1;
    }
    if (o >= 0 && strcmp(held.machine, m->ops[o].hold_machine) != 0)
        violation(ck, h->held,
                  "held by '%s' (op %s, %s), which holds a %s, not a %s",
                  h->holder, holder.op, mode, m->ops[o].hold_machine,
                  held.machine);
    hm = vse_find_machine(ck->db, held.machine);
    o = hm != NULL && held.op[0] ? vse__machine_op(hm, held.op) : -1;
    if (o >= 0 && (hm->ops[o].refused_while_held & (unsigned)h->mode))
        violation(ck, h->held,
                  "runs %s, which is refused while held %s, yet '%s' holds "
                  "it %s",
                  held.op, mode, h->holder, mode);
    return 0;
}

int vse_check(vse_db *db, const char *id, vse_violation_fn cb, void *ctx,
              int64_t *violations, struct vse_error *err)
{
    struct checker ck;
    int rc;

    memset(&ck, 0, sizeof(ck));
    ck.db = db;
    ck.cb = cb;
    ck.ctx = ctx;
    ck.err = err;
    if (id != NULL) {
        struct vse_resource r;

        rc = vse_get(db, id, &r, err);
        if (rc == 0)
            check_one(&ck, &r);
    } else {
        struct vse_filter all;

        memset(&all, 0, sizeof(all));
        rc = vse__store_list(db->store, &all, vse_now_us(), check_one, &ck,
                             err);
    }
    if (rc == 0 && ck.rc == 0) {
        struct hold_check hc = {&ck, id};

        rc = vse__store_holds(db->store, NULL, NULL, check_hold, &hc, err);
    }
    free(ck.ev.v);
    if (violations != NULL)
        *violations = ck.violations;
    if (rc < 0)
        return rc;
    return ck.rc;
}
