/*
 * vse-int.h - internals shared by libvse's modules; not installed.
 *
 * The machine representation lives here so that transition.c can check a
 * transition with a few bit tests (O(1)), and so that check.c and the
 * renderers read the same tables the loader built.  Store backends must
 * not include it (the build gives them no path to it): what they may use
 * is src/util/util.h and src/store/store.h.
 */
#ifndef VSE_INT_H
#define VSE_INT_H

#include <stdarg.h>
#include <stdint.h>

#include "util.h"
#include "vse.h"

#define VSE_STATE_NEW "new" /* the pseudo-state before create */

enum vse__expiry {
    VSE_EXPIRY_NONE = 0, /* not a step of this op */
    VSE_EXPIRY_RETRY,    /* idempotent step: hand back, another may claim */
    VSE_EXPIRY_FAIL,     /* end the op in its failure state */
    VSE_EXPIRY_REVERT    /* back to the rest state the op began from */
};

/*
 * The retry budget (docs/machines.md, "Retry budget"): an op with a step
 * whose policy is retry ends in its failure state after this many lease
 * expiries, or when it waits unowned at such a step this long.  An op
 * that declares no `retry` gets these defaults.
 */
#define VSE_RETRY_ATTEMPTS_DEFAULT 5
#define VSE_RETRY_ATTEMPTS_MAX 100
#define VSE_RETRY_UNCLAIMED_DEFAULT_US (INT64_C(600) * 1000000)    /* 10m */
#define VSE_RETRY_UNCLAIMED_MAX_US (INT64_C(168) * 3600 * 1000000) /* 7d */

struct vse__state {
    char name[VSE_NAME_MAX + 1];
    char status[VSE_NAME_MAX + 1];
    int busy;
    int line, col; /* where it was declared, for diagnostics */
};

/*
 * One operation, with its edges precomputed as bit masks over state
 * indexes (a machine has at most 64 states, so one uint64_t holds a set).
 */
struct vse__op {
    char name[VSE_NAME_MAX + 1];
    int from_new;  /* may start a resource (create) */
    uint64_t from; /* rest states it may begin from */
    int nsteps;
    int steps[VSE_MACHINE_STATES_MAX]; /* declared order; steps[0] is entered
                                          by begin/create */
    uint64_t busy;                     /* the set of its steps */
    uint64_t success;                  /* rest states finish may end in */
    int failure;                       /* state index fail ends in */
    /* step_to[s]: busy states a step may move to from step s;
     * finish_to[s]: success states finish may move to from step s. */
    uint64_t step_to[VSE_MACHINE_STATES_MAX];
    uint64_t finish_to[VSE_MACHINE_STATES_MAX];
    enum vse__expiry expiry[VSE_MACHINE_STATES_MAX]; /* by state index */
    /* The effective retry budget; both 0 when no step retries. */
    int retry_attempts;
    int64_t retry_unclaimed_us;
    int line, col;
    /* 'holds': while this op runs, it holds one resource of machine
     * hold_machine in mode hold_mode (0: it holds nothing). */
    char hold_machine[VSE_NAME_MAX + 1];
    int hold_mode;
    /* 'refused_while_held': the hold modes (VSE_HOLD_* bits) during which
     * this op may not begin on the held resource (0: never refused). */
    unsigned refused_while_held;
};

struct vse_machine {
    char name[VSE_NAME_MAX + 1];
    int version;
    char hash[17];
    char *file;      /* name diagnostics used; owned */
    char *canonical; /* canonical JSON (sorted keys, compact); owned */
    int nstates;
    struct vse__state states[VSE_MACHINE_STATES_MAX];
    int nops;
    struct vse__op ops[VSE_MACHINE_OPS_MAX];
    /* Open-addressing name index: slot -> index + 1, 0 = empty. */
    uint8_t state_slots[256];
    uint8_t op_slots[256];
    char *description; /* free text from the file, NULL if none; owned */
};

/* Index of a state or op by name, or -1.  O(1) on average. */
int vse__machine_state(const vse_machine *m, const char *name);
int vse__machine_op(const vse_machine *m, const char *name);
/* 1 if state index s is at rest and no op may begin from it. */
int vse__machine_terminal(const vse_machine *m, int s);
/* The canonical JSON the hash is taken over; owned by m. */
const char *vse__machine_canonical(const vse_machine *m);
/*
 * Describe how the machine pinned as `pinned_canonical` differs from m,
 * in one line ("version 1 -> 2; state 'x' added; operation 'delete'
 * changed"), into buf.
 */
void vse__machine_diff(const char *pinned_canonical, const vse_machine *m,
                       char *buf, size_t size);

/* 1 if some step of op has the expiry policy retry. */
int vse__op_retries(const struct vse__op *op);
/*
 * The effective retry budget of op as JSON, {"attempts": N, "unclaimed":
 * "10m0s"}, or NULL when no step of op retries.  Freed with json_decref().
 */
struct json_t *vse__op_retry_json(const struct vse__op *op);
/*
 * Format a duration of whole seconds (us is truncated) the way machine
 * files and reasons show it: "45s", "10m0s", "1h30m0s".  Returns buf.
 */
char *vse__duration_format(int64_t us, char *buf, size_t size);

/* A fresh random UUID (version 4) into buf[VSE_OPID_LEN + 1]. */
int vse__uuid(char *buf, struct vse_error *err);
/* FNV-1a 64 as 16 hex digits into out[17]. */
void vse__hash_hex(const void *data, size_t len, char out[17]);

/* ---- the enforcer handle (db.c) ---- */
#define VSE_DB_MACHINES_MAX 32

struct vse_store;

struct vse_db {
    struct vse_store *store;
    int nmachines;
    vse_machine *machines[VSE_DB_MACHINES_MAX];
};

/* The machine a resource row names, or NULL (with err set: VSE_EINVAL). */
const vse_machine *vse__db_machine(vse_db *db, const char *name,
                                   struct vse_error *err);

/* ---- holds (hold.c) ---- */
struct vse_change;

/* What a transition does to holds, for its vse_change. */
struct vse__hold_plan {
    int taking;
    struct vse_hold take;
    int64_t held_version;
    int releasing;
    char release[VSE_ID_MAX + 1];
    unsigned guard;
};
/*
 * op begins on cur (NULL: creates resource id): may it, with the holds on
 * cur, and may it take its own hold (on o->hold)?  0 with *p filled, or
 * a refusal naming the holders (VSE_ECONFLICT), VSE_EINVAL,
 * VSE_ENOTFOUND (the resource to hold), or a store error.  The holds on
 * cur are left to the store's check of p->guard unless `look` (its check
 * refused the attempt before: read them, to name them).
 */
int vse__hold_plan_start(vse_db *db, const vse_machine *m,
                         const struct vse__op *op, const char *id,
                         const struct vse_resource *cur, int look,
                         const struct vse_opts *o, int64_t now,
                         struct vse__hold_plan *p, struct vse_error *err);
/* cur's op ends with this transition: the hold it has, if any, goes. */
int vse__hold_plan_end(vse_db *db, const vse_machine *m,
                       const struct vse_resource *cur,
                       struct vse__hold_plan *p, struct vse_error *err);
void vse__hold_plan_put(const struct vse__hold_plan *p,
                        struct vse_change *ch);

#endif /* VSE_INT_H */
