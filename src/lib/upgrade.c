/*
 * upgrade.c - machines upgraded in place: re-pin a store to a newer
 * version of a machine while resources are mid-operation.  The core
 * judges each resource against the new version; the store (repin slot)
 * runs that judgement and the re-pin in one transaction, so that no
 * resource can move into the way between the check and the new pin.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vse-int.h"

/* How often a re-pin that lost a race (the pin or a resource changed
 * under a ZooKeeper multi) is tried again, from the start. */
#define REPIN_TRIES 5

struct blocker {
    char resource[VSE_ID_MAX + 1];
    char state[VSE_NAME_MAX + 1];
    char op[VSE_NAME_MAX + 1];
    char reason[2 * VSE_NAME_MAX + 96];
};

struct judge {
    const vse_machine *m; /* the new version */
    VSE_ARRAY(struct blocker) in_way;
    int oom;
    struct vse_error *err;
};

static int in_set(uint64_t set, int i)
{
    return i >= 0 && (set & (UINT64_C(1) << i)) != 0;
}

static int say(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return 1;
}

/*
 * Why r cannot go on under m, into why[]; 0 if it can.  An op in flight
 * goes on when m has the op, the current state is one of its steps (so
 * every later step, finish, fail and expiry is m's), and its origin is a
 * rest state (where a revert on expiry lands).
 */
static int why_in_way(const vse_machine *m, const struct vse_resource *r,
                      char *why, size_t size)
{
    int s = vse__machine_state(m, r->state);
    int o, origin;

    if (r->op[0] == '\0') {
        if (s < 0)
            return say(why, size, "state '%s' is not in version %d", r->state,
                       m->version);
        if (m->states[s].busy)
            return say(why, size,
                       "state '%s' is a busy state in version %d, "
                       "and no operation is in flight",
                       r->state, m->version);
        return 0;
    }
    o = vse__machine_op(m, r->op);
    if (o < 0)
        return say(why, size, "operation '%s' in flight is not in version %d",
                   r->op, m->version);
    if (s < 0)
        return say(why, size,
                   "operation '%s' is at step '%s', which version "
                   "%d drops",
                   r->op, r->state, m->version);
    if (!in_set(m->ops[o].busy, s))
        return say(why, size,
                   "operation '%s' is at '%s', which is not one of its "
                   "steps in version %d",
                   r->op, r->state, m->version);
    if (strcmp(r->origin, VSE_STATE_NEW) == 0)
        return m->ops[o].from_new
                   ? 0
                   : say(why, size,
                         "operation '%s' is creating the resource, which "
                         "it does not in version %d",
                         r->op, m->version);
    origin = r->origin[0] ? vse__machine_state(m, r->origin) : -2;
    if (origin == -1 || (origin >= 0 && m->states[origin].busy))
        return say(why, size,
                   "operation '%s' began from '%s', which is not a "
                   "rest state in version %d",
                   r->op, r->origin, m->version);
    return 0;
}

/* The store's check callback: collect, decide at the end (r == NULL). */
static int judge_one(void *ctx, const struct vse_resource *r)
{
    struct judge *j = ctx;
    struct blocker b;

    if (r == NULL) {
        if (j->oom)
            return vse__err(j->err, VSE_ENOMEM, "out of memory");
        if (j->in_way.n == 0)
            return 0;
        vse__err(j->err, VSE_EINVAL,
                 "cannot upgrade machine '%s' to version %d: %zu "
                 "resource%s in the way",
                 j->m->name, j->m->version, j->in_way.n,
                 j->in_way.n == 1 ? " is" : "s are");
        vse__err_hint(j->err, "finish or reset those resources (or keep "
                              "the states and steps they are in), then "
                              "upgrade again; nothing was changed");
        return VSE_EINVAL;
    }
    memset(&b, 0, sizeof(b));
    if (!why_in_way(j->m, r, b.reason, sizeof(b.reason)))
        return 0;
    vse__strlcpy(b.resource, r->id, sizeof(b.resource));
    vse__strlcpy(b.state, r->state, sizeof(b.state));
    vse__strlcpy(b.op, r->op, sizeof(b.op));
    if (vse__array_push(&j->in_way, b) < 0)
        j->oom = 1;
    return 0;
}

static void fill_info(struct vse_upgrade_info *info, const struct vse_pin *p,
                      const vse_machine *m)
{
    if (info == NULL)
        return;
    info->from_version = p != NULL ? p->version : 0;
    vse__strlcpy(info->from_hash, p != NULL ? p->hash : "",
                 sizeof(info->from_hash));
    info->to_version = m->version;
    memcpy(info->to_hash, m->hash, sizeof(info->to_hash));
    if (p != NULL)
        vse__machine_diff(p->definition ? p->definition : "", m,
                          info->changes, sizeof(info->changes));
}

/* m is older than, or as old as, the pin: say which, as VSE_EPINNED. */
static int not_newer(const struct vse_pin *p, const vse_machine *m,
                     struct vse_error *err)
{
    char how[VSE_ERROR_DETAIL_SIZE];

    vse__machine_diff(p->definition ? p->definition : "", m, how,
                      sizeof(how));
    if (m->version < p->version) {
        vse__err(err, VSE_EPINNED,
                 "machine '%s' version %d is older than the store's pin "
                 "(version %d, hash %s): a newer vse pinned this store",
                 m->name, m->version, p->version, p->hash);
        vse__err_detail(err, "%s", how);
        vse__err_hint(err,
                      "run a vse whose machine '%s' is version %d or "
                      "later; a pin is never downgraded",
                      m->name, p->version);
    } else {
        vse__err(err, VSE_EPINNED,
                 "machine '%s' (version %d, hash %s) differs from the one "
                 "the store pinned (version %d, hash %s)",
                 m->name, m->version, m->hash, p->version, p->hash);
        vse__err_detail(err, "%s", how);
        vse__err_hint(err, "an upgrade needs a higher version number; "
                           "a changed definition under the same version "
                           "is refused");
    }
    return VSE_EPINNED;
}

static void make_event(struct vse_event *ev, const struct vse_pin *old,
                       const struct vse_pin *np, const char *actor,
                       const char *changes)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = VSE_KIND_UPGRADE;
    /* No resource's row: minus the time keeps the (resource, version)
     * of every upgrade row apart from each other and from resources. */
    ev->version = -np->pinned_at;
    vse__strlcpy(ev->machine, np->machine, sizeof(ev->machine));
    snprintf(ev->from, sizeof(ev->from), "version %d", old->version);
    snprintf(ev->to, sizeof(ev->to), "version %d", np->version);
    vse__strlcpy(ev->owner, actor ? actor : "", sizeof(ev->owner));
    ev->at = np->pinned_at;
    snprintf(ev->reason, sizeof(ev->reason),
             "machine %s upgraded from version %d to %d (hash %s -> %s): %s",
             np->machine, old->version, np->version, old->hash, np->hash,
             changes);
}

/* The handle enforces m from now on (as vse_add_machine's replace). */
static int adopt(vse_db *db, vse_machine *m, struct vse_error *err)
{
    for (int i = 0; i < db->nmachines; i++) {
        if (strcmp(db->machines[i]->name, m->name) == 0) {
            vse_machine_free(db->machines[i]);
            db->machines[i] = m;
            return 0;
        }
    }
    if (db->nmachines == VSE_DB_MACHINES_MAX) {
        vse_machine_free(m);
        return vse__err(err, VSE_EINVAL,
                        "cannot add machine: at most %d machines per handle",
                        VSE_DB_MACHINES_MAX);
    }
    db->machines[db->nmachines++] = m;
    return 0;
}

static int repin(vse_db *db, vse_machine *m, const struct vse_pin *old,
                 const char *actor, vse_blocker_fn cb, void *ctx,
                 struct vse_upgrade_info *info, struct vse_error *err)
{
    struct judge j;
    struct vse_pin np;
    struct vse_event ev;
    int64_t seq = 0;
    int rc;

    memset(&np, 0, sizeof(np));
    vse__strlcpy(np.machine, m->name, sizeof(np.machine));
    np.version = m->version;
    memcpy(np.hash, m->hash, sizeof(np.hash));
    np.definition = (char *)vse__machine_canonical(m);
    np.pinned_at = vse_now_us();
    make_event(&ev, old, &np, actor, info->changes);

    memset(&j, 0, sizeof(j));
    j.m = m;
    j.err = err;
    rc = vse__store_repin(db->store, old->hash, &np, &ev, judge_one, &j, &seq,
                          err);
    /* Blockers reach the caller only after the store's answer: a pass
     * that lost a race (VSE_ECONFLICT) is judged again, from zero. */
    info->blockers = (int64_t)j.in_way.n;
    if (rc == VSE_EINVAL && j.in_way.n > 0 && cb != NULL) {
        for (size_t i = 0; i < j.in_way.n; i++) {
            struct vse_upgrade_blocker b = {j.in_way.v[i].resource,
                                            j.in_way.v[i].state,
                                            j.in_way.v[i].op,
                                            j.in_way.v[i].reason};

            cb(ctx, &b);
        }
    }
    vse__array_release(&j.in_way);
    if (rc == 0)
        info->seq = seq;
    return rc;
}

int vse_upgrade_machine(vse_db *db, vse_machine *m, const char *actor,
                        vse_blocker_fn cb, void *ctx,
                        struct vse_upgrade_info *info, struct vse_error *err)
{
    struct vse_upgrade_info none;
    struct vse_pin pin;
    int rc;

    if (info == NULL)
        info = &none;
    memset(info, 0, sizeof(*info));
    if (m == NULL)
        return vse__err(err, VSE_EINVAL, "no machine to upgrade to");
    if (actor != NULL && actor[0] != '\0' &&
        vse_check_id("actor", actor, err) < 0) {
        vse_machine_free(m);
        return VSE_EINVAL;
    }
    for (int attempt = 0;; attempt++) {
        memset(&pin, 0, sizeof(pin));
        rc = vse__store_pin_get(db->store, m->name, &pin, err);
        if (rc == VSE_ENOTFOUND) {
            /* Nothing pinned yet: this is a first pin, not an upgrade. */
            fill_info(info, NULL, m);
            vse_error_clear(err);
            return vse_add_machine(db, m, err);
        }
        if (rc < 0)
            break;
        fill_info(info, &pin, m);
        if (strcmp(pin.hash, m->hash) == 0) {
            free(pin.definition);
            rc = adopt(db, m, err);
            return rc < 0 ? rc : VSE_REPEATED;
        }
        if (m->version <= pin.version) {
            rc = not_newer(&pin, m, err);
            break;
        }
        rc = repin(db, m, &pin, actor, cb, ctx, info, err);
        free(pin.definition);
        pin.definition = NULL;
        if (rc == VSE_ECONFLICT && attempt + 1 < REPIN_TRIES)
            continue; /* the pin or a resource moved: judge again */
        if (rc == 0)
            return adopt(db, m, err);
        break;
    }
    free(pin.definition);
    vse_machine_free(m);
    return rc;
}
