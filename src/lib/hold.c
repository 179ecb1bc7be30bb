/*
 * hold.c - holds between resources (docs/machines.md, "Holds").  The core
 * reads the holds, decides here whether an op may begin or take its hold,
 * and hands the store a plan it applies in the same transaction as the
 * transition; the store re-checks what it can only know at commit (the
 * held resource's version, the holds beside it), so a decision made on a
 * stale read fails as a lost race and is decided again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vse-int.h"

typedef VSE_ARRAY(struct vse_hold) hold_array;

/* What collect() fills: a push that failed must not pass for fewer
 * holds. */
struct gather {
    hold_array *a;
    int nomem;
};

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int collect(void *ctx, const struct vse_hold *h)
{
    struct gather *g = ctx;

    if (vse__array_push(g->a, *h) < 0) {
        g->nomem = 1;
        return 1;
    }
    return 0;
}

static int gather(vse_db *db, const char *held, const char *holder,
                  hold_array *a, struct vse_error *err)
{
    struct gather g = {a, 0};
    int rc = vse__store_holds(db->store, held, holder, collect, &g, err);

    if (rc == 0 && g.nomem)
        rc = vse__err(err, VSE_ENOMEM, "out of memory reading holds");
    return rc;
}

/*
 * Read holds (as vse_holds() does) into *a, with each holder's current
 * op_id and owner; the caller releases a.
 */
static int read_holds(vse_db *db, const char *held, const char *holder,
                      hold_array *a, struct vse_error *err)
{
    int rc = gather(db, held, holder, a, err);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < a->n; i++) {
        struct vse_resource r;

        rc = vse__store_get(db->store, a->v[i].holder, &r, NULL);
        if (rc == 0) {
            vse__strlcpy(a->v[i].op_id, r.op_id, sizeof(a->v[i].op_id));
            vse__strlcpy(a->v[i].owner, r.owner, sizeof(a->v[i].owner));
        } else if (rc != VSE_ENOTFOUND) {
            return vse__store_get(db->store, a->v[i].holder, &r, err);
        }
    }
    return 0;
}

int vse_holds(vse_db *db, const char *held, const char *holder,
              vse_hold_cb cb, void *ctx, struct vse_error *err)
{
    hold_array a = {0};
    int rc;

    if (db == NULL || cb == NULL)
        return vse__err(err, VSE_EINVAL,
                        "vse_holds needs a handle and a "
                        "callback");
    if (held != NULL && (rc = vse_check_id("resource id", held, err)) < 0)
        return rc;
    if (holder != NULL && (rc = vse_check_id("resource id", holder, err)) < 0)
        return rc;
    rc = read_holds(db, held, holder, &a, err);
    for (size_t i = 0; rc == 0 && i < a.n; i++)
        if (cb(ctx, &a.v[i]) != 0)
            break;
    vse__array_release(&a);
    return rc;
}

/*
 * "shared by snap 's1' (create, owner x, since T), ..." into buf, at
 * most `max` holders, then "and N more".
 */
static void name_holders(const hold_array *a, size_t max, char *buf,
                         size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < a->n && len + 1 < size; i++) {
        if (i == max) {
            snprintf(buf + len, size - len, " and %zu more", a->n - max);
            return;
        }
        const struct vse_hold *h = &a->v[i];
        char since[32];
        int n;

        vse_time_format(h->since, since, sizeof(since));
        n = snprintf(buf + len, size - len,
                     "%s%s by %s '%s' (%s, owner %s, since %s)",
                     i ? ", " : "", vse_hold_mode_name(h->mode), h->machine,
                     h->holder, h->op,
                     has(h->owner) ? h->owner : "none (waiting for a claim)",
                     since);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    if (len >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

/* The modes in `mask` that some hold in a has, as VSE_HOLD_* bits. */
static unsigned modes_of(const hold_array *a)
{
    unsigned m = 0;

    for (size_t i = 0; i < a->n; i++)
        m |= (unsigned)a->v[i].mode;
    return m;
}

static int refuse_held(const struct vse_resource *held, const hold_array *a,
                       const char *why, struct vse_error *err)
{
    char who[VSE_ERROR_MSG_SIZE], all[VSE_ERROR_DETAIL_SIZE];

    /* The message names the first holder (one line), the detail all. */
    name_holders(a, 1, who, sizeof(who));
    name_holders(a, a->n, all, sizeof(all));
    vse__err(err, VSE_ECONFLICT, "%s '%s' is held: %s; %s", held->machine,
             held->id, who, why);
    vse__err_detail(err, "held by: %s", all);
    vse__err_hint(err, "retry when the holding operation%s ended",
                  a->n > 1 ? "s have" : " has");
    return VSE_ECONFLICT;
}

/*
 * May op begin on cur?  Sets p->guard, which the store checks with the
 * write (atomically: a hold taken meanwhile refuses it there).  The holds
 * are read here only to name them (look: the store refused the guard of
 * the attempt before), so a guarded begin costs no read of its own.
 */
static int plan_guard(vse_db *db, const struct vse__op *op,
                      const struct vse_resource *cur, int look,
                      struct vse__hold_plan *p, struct vse_error *err)
{
    hold_array a = {0};
    char why[VSE_NAME_MAX + 64];
    int rc;

    if (op->refused_while_held == 0)
        return 0;
    p->guard = op->refused_while_held;
    if (!look)
        return 0;
    rc = read_holds(db, cur->id, NULL, &a, err);
    if (rc == 0 && (modes_of(&a) & op->refused_while_held)) {
        snprintf(why, sizeof(why), "%s may not begin while it is held",
                 op->name);
        rc = refuse_held(cur, &a, why, err);
    }
    vse__array_release(&a);
    return rc;
}

/* May op (of machine m, on resource id) take its hold on o->hold? */
static int plan_take(vse_db *db, const vse_machine *m,
                     const struct vse__op *op, const char *id,
                     const char *want, int64_t now, struct vse__hold_plan *p,
                     struct vse_error *err)
{
    struct vse_resource held;
    const vse_machine *hm;
    const char *mode = vse_hold_mode_name(op->hold_mode);
    hold_array a = {0};
    char why[160];
    int s, rc;

    if (!has(want)) {
        vse__err(err, VSE_EINVAL,
                 "operation '%s' of machine '%s' holds a %s: name it",
                 op->name, m->name, op->hold_machine);
        vse__err_hint(err, "give the id of the %s to hold (--hold ID)",
                      op->hold_machine);
        return VSE_EINVAL;
    }
    if (strcmp(want, id) == 0)
        return vse__err(err, VSE_EINVAL, "%s '%s' cannot hold itself",
                        m->name, id);
    rc = vse__store_get(db->store, want, &held, err);
    if (rc == VSE_ENOTFOUND)
        return vse__err(err, VSE_ENOTFOUND,
                        "%s '%s' to be held by %s '%s' (%s) not found",
                        op->hold_machine, want, m->name, id, op->name);
    if (rc < 0)
        return rc;
    if (strcmp(held.machine, op->hold_machine) != 0)
        return vse__err(err, VSE_EINVAL,
                        "operation '%s' of machine '%s' holds a %s, and '%s' "
                        "is a %s",
                        op->name, m->name, op->hold_machine, want,
                        held.machine);
    hm = vse__db_machine(db, held.machine, err);
    if (hm == NULL)
        return VSE_EINVAL;
    s = vse__machine_state(hm, held.state);
    if (s < 0)
        return vse__err(err, VSE_EINTERNAL,
                        "%s '%s' is in state '%s', which machine '%s' does "
                        "not declare",
                        held.machine, held.id, held.state, hm->name);
    if (!has(held.op) && vse__machine_terminal(hm, s))
        return vse__err(err, VSE_ECONFLICT,
                        "%s '%s' is %s, a terminal state: it cannot be held",
                        held.machine, held.id, held.state);
    if (has(held.op)) {
        int ho = vse__machine_op(hm, held.op);

        if (ho >= 0 &&
            (hm->ops[ho].refused_while_held & (unsigned)op->hold_mode))
            return vse__err(err, VSE_ECONFLICT,
                            "%s '%s' is busy: %s, step %s, owner %s; it may "
                            "not be held %s while %s runs",
                            held.machine, held.id, held.op, held.state,
                            has(held.owner) ? held.owner : "none", mode,
                            held.op);
    }
    rc = read_holds(db, held.id, NULL, &a, err);
    /* A create repeated without a request id finds its own hold. */
    for (size_t i = 0; rc == 0 && i < a.n; i++)
        if (strcmp(a.v[i].holder, id) == 0)
            a.v[i--] = a.v[--a.n];
    if (rc == 0 && a.n > 0 &&
        (op->hold_mode == VSE_HOLD_EXCLUSIVE ||
         (modes_of(&a) & VSE_HOLD_EXCLUSIVE))) {
        snprintf(why, sizeof(why), "a %s hold for %s '%s' (%s) does not fit",
                 mode, m->name, id, op->name);
        rc = refuse_held(&held, &a, why, err);
    }
    vse__array_release(&a);
    if (rc < 0)
        return rc;
    memset(&p->take, 0, sizeof(p->take));
    vse__strlcpy(p->take.held, held.id, sizeof(p->take.held));
    vse__strlcpy(p->take.holder, id, sizeof(p->take.holder));
    vse__strlcpy(p->take.machine, m->name, sizeof(p->take.machine));
    vse__strlcpy(p->take.op, op->name, sizeof(p->take.op));
    p->take.mode = op->hold_mode;
    p->take.since = now;
    p->taking = 1;
    p->held_version = held.version;
    return 0;
}

int vse__hold_plan_start(vse_db *db, const vse_machine *m,
                         const struct vse__op *op, const char *id,
                         const struct vse_resource *cur, int look,
                         const struct vse_opts *o, int64_t now,
                         struct vse__hold_plan *p, struct vse_error *err)
{
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (op->hold_mode == 0 && has(o->hold))
        return vse__err(err, VSE_EINVAL,
                        "operation '%s' of machine '%s' holds nothing: "
                        "leave hold unset",
                        op->name, m->name);
    if (cur != NULL)
        rc = plan_guard(db, op, cur, look, p, err);
    if (rc == 0 && op->hold_mode != 0)
        rc = plan_take(db, m, op, id, o->hold, now, p, err);
    return rc;
}

int vse__hold_plan_end(vse_db *db, const vse_machine *m,
                       const struct vse_resource *cur,
                       struct vse__hold_plan *p, struct vse_error *err)
{
    hold_array a = {0};
    int o = vse__machine_op(m, cur->op);
    int rc;

    memset(p, 0, sizeof(*p));
    /* Only ops that hold look: every other transition costs no read. */
    if (o < 0 || m->ops[o].hold_mode == 0)
        return 0;
    rc = gather(db, NULL, cur->id, &a, err);
    if (rc == 0 && a.n > 0) {
        vse__strlcpy(p->release, a.v[0].held, sizeof(p->release));
        p->releasing = 1;
    }
    vse__array_release(&a);
    return rc;
}

void vse__hold_plan_put(const struct vse__hold_plan *p, struct vse_change *ch)
{
    ch->take = p->taking ? &p->take : NULL;
    ch->held_version = p->taking ? p->held_version : 0;
    ch->release = p->releasing ? p->release : NULL;
    ch->guard = p->guard;
}
