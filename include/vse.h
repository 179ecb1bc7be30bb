/*
 * vse.h - the volume state enforcer: the one public header of libvse.
 *
 * A resource has a state in a shared store; every operation moves it
 * through the states its machine declares, one atomic compare-and-swap at
 * a time.  A transition the machine or the current state does not allow is
 * refused at once, with the reason, never queued behind a lock.
 *
 * Conventions used throughout this header:
 *  - Functions return int: 0 (or a positive "already done" code) on
 *    success, a negative VSE_E* code on failure.
 *  - The last argument `struct vse_error *err` may be NULL.  When given, it
 *    receives a one-line message (and optional detail and hint) on failure.
 *  - String arguments are copied; the caller keeps ownership.
 *  - `char *` results are freed with vse_free().
 *  - A vse_db handle is used by one thread at a time.  Separate handles,
 *    in one process or many, on one host or many, may share one store.
 */
#ifndef VSE_H
#define VSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libvse.so is built with -fvisibility=hidden: what this header declares
 * is exported, and nothing else (internal vse__ functions stay private).
 * The ABI rule is in docs/operations.md. */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

/* Before 1.0, a minor version may change structs the caller allocates
 * (0.3.0 added vse_filter.not_state) or remove functions (0.4.0 removed
 * vse_set_coordination() and enum vse_coordination: vsed's comparison
 * mode is a store wrapper of its own now; 0.5.0 appended vse_opts.hold
 * and .if_version and two counters to vse_reap_stats): rebuild against
 * the new header. */
#define VSE_VERSION_STRING "0.5.0"
/* The store schema this libvse writes; older ones are migrated on open. */
#define VSE_SCHEMA_VERSION 6

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/*
 * XX(name, code, cli exit status, http status, static message)
 * Codes are never renumbered or reused.  The exit statuses are the
 * contract of vsectl: 0 done, 1 error, 2 usage or bad input,
 * 3 refused (conflict or fenced), 4 not found.
 */
#define VSE_ERROR_MAP(XX)                                                    \
    XX(EINVAL, -1, 2, 400, "invalid argument")                               \
    XX(ENOTFOUND, -2, 4, 404, "not found")                                   \
    XX(ECONFLICT, -3, 3, 409, "transition refused")                          \
    XX(EFENCED, -4, 3, 409, "operation fenced")                              \
    XX(EEXIST, -5, 3, 409, "resource already exists")                        \
    XX(ESTORE, -6, 1, 503, "store failure")                                  \
    XX(ENOMEM, -7, 1, 500, "out of memory")                                  \
    XX(EMACHINE, -8, 2, 422, "invalid machine definition")                   \
    XX(ESCHEMA, -9, 1, 503, "store schema not usable")                       \
    XX(EPINNED, -10, 1, 503, "machine differs from the store's pinned one")  \
    XX(ETOOBIG, -11, 2, 413, "input too large")                              \
    XX(EBUSY, -12, 1, 503, "store busy")                                     \
    XX(EINTERNAL, -13, 1, 500, "internal error")                             \
    XX(EIO, -14, 1, 500, "i/o error")                                        \
    XX(EUNKNOWN, -15, 1, 503, "outcome unknown")

enum vse_errno {
    VSE_OK = 0,
    /* A repeat of a transition that already happened (same op_id or same
     * request id): the caller's intent is satisfied, nothing changed. */
    VSE_REPEATED = 1,
#define VSE_XX_(name, code, exit_, http, msg) VSE_##name = code,
    VSE_ERROR_MAP(VSE_XX_)
#undef VSE_XX_
};

#define VSE_ERROR_MSG_SIZE 256
#define VSE_ERROR_DETAIL_SIZE 512
#define VSE_ERROR_HINT_SIZE 512

/*
 * Caller-owned error detail.  `msg` is the primary message: one line, lower
 * case, no trailing period, what failed first.  `detail` holds facts (errno
 * text, the store's own message); `hint` holds advice (for a refusal: which
 * operations are allowed now).  Empty strings when absent.
 */
struct vse_error {
    int code;
    char msg[VSE_ERROR_MSG_SIZE];
    char detail[VSE_ERROR_DETAIL_SIZE];
    char hint[VSE_ERROR_HINT_SIZE];
};

/* Static text for a code ("transition refused"); never NULL. */
const char *vse_strerror(int code);
/* Symbolic name for a code ("VSE_ECONFLICT"); never NULL. */
const char *vse_err_name(int code);
/* vsectl exit status for a code: 0, 1, 2, 3 or 4. */
int vse_err_exit_status(int code);
/* HTTP status for a code (200 for success codes). */
int vse_err_http_status(int code);
/* Reset *err to "no error".  Accepts NULL. */
void vse_error_clear(struct vse_error *err);

/* Free memory returned by libvse.  Accepts NULL. */
void vse_free(void *p);

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

#define VSE_ID_MAX 255      /* resource id, owner, request id: bytes */
#define VSE_NAME_MAX 63     /* machine, state and operation names */
#define VSE_OPID_LEN 36     /* op_id: a random UUID, 8-4-4-4-12 hex */
#define VSE_REASON_MAX 1023 /* reason text recorded in history */
#define VSE_ATTRS_MAX 8191  /* a resource's attrs, JSON text, bytes */
#define VSE_MACHINE_FILE_MAX (1024 * 1024) /* machine file, bytes */
#define VSE_MACHINE_STATES_MAX 64
#define VSE_MACHINE_OPS_MAX 64
#define VSE_DEFAULT_TTL_MS 60000 /* default lease */

/*
 * Check a resource id: 1..VSE_ID_MAX bytes, valid UTF-8, no control
 * characters.  Owners and request ids follow the same rule.  Returns 0 or
 * VSE_EINVAL with a message naming `what` ("resource id", "owner", ...).
 */
int vse_check_id(const char *what, const char *id, struct vse_error *err);

/* ------------------------------------------------------------------ */
/* Machines                                                            */
/* ------------------------------------------------------------------ */

typedef struct vse_machine vse_machine;

/*
 * Called once per problem found while loading a machine file, in file
 * order.  `file` is the name given to the loader; line and column are
 * 1-based (0 when unknown).  All strings are valid during the call only.
 */
typedef void (*vse_diag_fn)(void *ctx, const char *file, int line, int col,
                            const char *msg);

/*
 * Load and validate a machine from a YAML file or buffer.  Every problem
 * is passed to `diag` (may be NULL); `err->msg` receives the first one as
 * "FILE:LINE:COL: message" and `err->hint` the count of the others.
 * Returns 0 and a new machine in *out (free with vse_machine_free()), or
 * VSE_EMACHINE, VSE_ETOOBIG (over VSE_MACHINE_FILE_MAX), VSE_EIO.
 * `name` labels diagnostics of a buffer (e.g. "machines/volume.yaml").
 */
int vse_machine_load_file(const char *path, vse_diag_fn diag, void *ctx,
                          vse_machine **out, struct vse_error *err);
int vse_machine_load_buffer(const char *name, const char *buf, size_t len,
                            vse_diag_fn diag, void *ctx, vse_machine **out,
                            struct vse_error *err);
/* A built-in machine ("volume", "snapshot"); VSE_ENOTFOUND if unknown. */
int vse_machine_builtin(const char *name, vse_machine **out,
                        struct vse_error *err);
/* Names of the built-in machines, NULL-terminated, static. */
const char *const *vse_machine_builtin_names(void);
void vse_machine_free(vse_machine *m);

const char *vse_machine_name(const vse_machine *m);
int vse_machine_version(const vse_machine *m);
/* Hash of the machine's canonical form, 16 hex digits; static per m. */
const char *vse_machine_hash(const vse_machine *m);
/* Visible status of a state, or NULL if the state is unknown. */
const char *vse_machine_status(const vse_machine *m, const char *state);
/* 1 if `state` is a busy state, 0 if rest, VSE_EINVAL if unknown. */
int vse_machine_state_busy(const vse_machine *m, const char *state);

enum vse_format {
    VSE_FORMAT_TABLE = 1, /* the transition table, for people */
    VSE_FORMAT_DOT,       /* Graphviz */
    VSE_FORMAT_MERMAID,   /* Mermaid stateDiagram-v2 */
    VSE_FORMAT_JSON       /* states, operations and every transition */
};
/* Parse "table", "dot", "mermaid", "json"; 0 if unknown. */
enum vse_format vse_format_parse(const char *s);
/* Render m; *out is NUL-terminated, freed with vse_free(). */
int vse_machine_render(const vse_machine *m, enum vse_format fmt, char **out,
                       struct vse_error *err);

/* ------------------------------------------------------------------ */
/* Resources and history                                               */
/* ------------------------------------------------------------------ */

/*
 * One resource as stored.  Plain data: the caller owns it.  Times are
 * microseconds since the Unix epoch (UTC).  Empty strings mean "none".
 */
struct vse_resource {
    char id[VSE_ID_MAX + 1];
    char machine[VSE_NAME_MAX + 1];
    char state[VSE_NAME_MAX + 1];
    char op[VSE_NAME_MAX + 1];     /* operation in flight, "" at rest */
    char op_id[VSE_OPID_LEN + 1];  /* its fencing token, "" at rest */
    char origin[VSE_NAME_MAX + 1]; /* rest state the op began from */
    char owner[VSE_ID_MAX + 1];    /* "" = unowned: waiting for a claim */
    int64_t lease_expires;         /* 0 when at rest */
    int64_t lease_ttl;             /* the op's lease length, us */
    int64_t since;                 /* when the op began (or rest began) */
    int64_t updated;               /* last transition */
    int64_t created;
    int64_t version; /* number of history rows written */
    /* The caller's data about the resource (a volume's size, host,
     * project...): a JSON object, "{}" when empty, changed only together
     * with a transition or by vse_update(), so it is never out of step
     * with the state. */
    char attrs[VSE_ATTRS_MAX + 1];
};

/* What a history row records. */
enum vse_kind {
    VSE_KIND_CREATE = 1,
    VSE_KIND_BEGIN,
    VSE_KIND_STEP,
    VSE_KIND_FINISH,
    VSE_KIND_FAIL,
    VSE_KIND_CLAIM,
    VSE_KIND_RENEW,
    VSE_KIND_EXPIRE, /* the reaper applied the step's expiry policy */
    VSE_KIND_RESET,  /* an operator's reset-state */
    VSE_KIND_UPDATE, /* attrs changed, state and op untouched */
    /* A machine was re-pinned to a newer version (vse_upgrade_machine).
     * No resource's row: `resource` is "", `machine` the machine, `from`
     * and `to` "version N", `reason` the versions, hashes and changes,
     * `version` minus the time in us (apart from every resource's). */
    VSE_KIND_UPGRADE
};
/* "create", "begin", ...; NULL for an unknown kind. */
const char *vse_kind_name(enum vse_kind k);
/* Inverse of vse_kind_name(); 0 if unknown. */
enum vse_kind vse_kind_parse(const char *s);

/*
 * One history row: one committed transition, and so one event.  `seq` is
 * global and increases in commit order; `version` is the resource version
 * this row created.  `op_id` is the fencing token the transition was made
 * under (for begin and create: the new one; for a claim or an expiry
 * that hands the op on: the new one too).
 */
struct vse_event {
    int64_t seq;
    int64_t version;
    enum vse_kind kind;
    char resource[VSE_ID_MAX + 1];
    char machine[VSE_NAME_MAX + 1];
    char op[VSE_NAME_MAX + 1];
    char op_id[VSE_OPID_LEN + 1];
    char from[VSE_NAME_MAX + 1]; /* "new" for create */
    char to[VSE_NAME_MAX + 1];
    char owner[VSE_ID_MAX + 1];
    int64_t at;
    char request_id[VSE_ID_MAX + 1];
    char reason[VSE_REASON_MAX + 1];
};

/* Format microseconds since the epoch as RFC 3339 UTC with microseconds,
 * "2026-11-27T12:03:04.123456Z"; buf needs 32 bytes.  Returns buf. */
char *vse_time_format(int64_t us, char *buf, size_t size);
/* Current time, microseconds since the epoch. */
int64_t vse_now_us(void);
/*
 * A random (version 4) UUID in the form of op_ids, 8-4-4-4-12 lower-case
 * hex, into buf (VSE_OPID_LEN + 1 bytes), for callers that name their
 * resources as Cinder does.  0, or VSE_EIO when the kernel gives no
 * random bytes.
 */
int vse_uuid4(char *buf, struct vse_error *err);

/* ------------------------------------------------------------------ */
/* The enforcer                                                        */
/* ------------------------------------------------------------------ */

typedef struct vse_db vse_db;

/*
 * Open the store at `url` ("sqlite:PATH[?synchronous=full|normal]",
 * "postgresql://..." (or "postgres://..."), or
 * "zookeeper://HOST:PORT[,HOST:PORT...]/CHROOT") with the built-in machines
 * loaded and checked against the definitions the store pinned.  A SQLite
 * store file that does not exist is created.  Returns VSE_EINVAL (bad URL),
 * VSE_ESTORE, VSE_ESCHEMA (not a vse store, or a newer schema) or
 * VSE_EPINNED (a built-in differs from the pinned definition: err says
 * how).
 */
int vse_open(const char *url, vse_db **out, struct vse_error *err);
/* Close and free; accepts NULL. */
void vse_close(vse_db *db);
/*
 * From any thread, for a shutdown while the store may be away: calls on
 * this handle, those waiting now and all later ones, stop waiting for an
 * unreachable server.  A lost connection is tried once, without backoff,
 * and the call fails with VSE_ESTORE.  A reachable store is unaffected.
 */
void vse_interrupt(vse_db *db);

/*
 * Add a machine (from a file).  Takes ownership of m, also on failure.
 * A machine with the name of one already added replaces it only if its
 * definition is identical; VSE_EPINNED if the store pinned a different
 * definition under that name.
 */
int vse_add_machine(vse_db *db, vse_machine *m, struct vse_error *err);
/* The machine of that name, or NULL; valid until vse_close(). */
const vse_machine *vse_find_machine(vse_db *db, const char *name);

/*
 * Open the store at `url` as vse_open() does, but with no machine loaded
 * or checked: for a process that upgrades the store's pins before it
 * opens the store for work (vsed at start), and then adds machines with
 * vse_add_machine() or vse_upgrade_machine().
 */
int vse_open_bare(const char *url, vse_db **out, struct vse_error *err);

/* A resource in the way of an upgrade; valid during the callback only. */
struct vse_upgrade_blocker {
    const char *resource;
    const char *state;
    const char *op;     /* the operation in flight, "" at rest */
    const char *reason; /* "state 'x' is not in version 2" */
};
typedef void (*vse_blocker_fn)(void *ctx,
                               const struct vse_upgrade_blocker *b);

/* What vse_upgrade_machine() found or did.  Plain data, caller-owned. */
struct vse_upgrade_info {
    int from_version; /* the pinned version; 0: the store had no pin */
    int to_version;
    char from_hash[17];
    char to_hash[17];
    int64_t seq;      /* the upgrade's history row; 0 when none written */
    int64_t blockers; /* resources in the way */
    char changes[VSE_ERROR_DETAIL_SIZE]; /* one line, as VSE_EPINNED's */
};

/*
 * Re-pin the store to m, a newer version of a machine it pinned, while
 * resources may be mid-operation; takes ownership of m, also on failure.
 * Every resource of the machine must fit m: its state must exist in m; an
 * operation in flight must exist in m, with the current state one of its
 * steps (and the state it began from a rest state).  Each resource that
 * does not is passed to `cb` (may be NULL), once, after the store's answer,
 * and nothing is changed.  Otherwise the pin is replaced and one history
 * row of kind VSE_KIND_UPGRADE is written, with `actor` (may be NULL) as
 * its owner, in one store transaction with the check (docs/operations.md
 * says how atomic each store makes it).  Operations in flight go on under
 * m; the handle uses m from now on.  Other processes keep the definition
 * they loaded until they restart (and are refused at start if older).
 *
 * Returns 0 (upgraded, or pinned: the store had no pin of that name),
 * VSE_REPEATED (the store already pinned exactly m: nothing changed),
 * VSE_EPINNED (m's version is not higher than the pin's: the same version
 * with another definition, or an older one - a newer vse pinned the
 * store), VSE_EINVAL (resources in the way; err says how many), or a
 * store error.  `info` (may be NULL) is filled in every case it can be.
 */
int vse_upgrade_machine(vse_db *db, vse_machine *m, const char *actor,
                        vse_blocker_fn cb, void *ctx,
                        struct vse_upgrade_info *info, struct vse_error *err);

/* Per-call options; NULL means all defaults.  Strings are copied. */
struct vse_opts {
    const char *owner;      /* who does the work; NULL or "" = unowned */
    int64_t ttl_ms;         /* lease; 0 = VSE_DEFAULT_TTL_MS */
    const char *request_id; /* idempotency key: a repeat is "done" */
    const char *reason;     /* recorded in history; fail/reset need one */
    const char *op;         /* create: the creating op (NULL = the one
                               named "create", else the only one) */
    int release;            /* step: hand the op off (owner cleared), so
                               that another worker claims it */
    /* A row of this resource the caller has just read (to choose what to
     * do): the call decides against it instead of reading it again, which
     * saves a store round trip.  If it is stale, the compare-and-swap
     * fails and the call reads the current row and decides again, so
     * correctness never depends on it.  NULL = read it. */
    const struct vse_resource *seen;
    /* A JSON merge patch (RFC 7396: members set, null removes) applied
     * to the resource's attrs in the same atomic transition; it must be
     * an object, and the result at most VSE_ATTRS_MAX bytes.  NULL
     * leaves attrs as they are. */
    const char *attrs;
    /* Last, so the fields above keep their offsets.  create, begin: the
     * id of the resource the op holds, for an op whose machine declares
     * 'holds' (docs/machines.md); required for such an op, refused for
     * any other.  The hold is taken in the same atomic transaction as
     * the transition and ends with the op, however it ends. */
    const char *hold;
    /* Also last (after `hold`).  0 = any version;
     * otherwise the call is made only if the resource's version is this
     * one, else VSE_EFENCED with the current row in *out: a caller that
     * computed its change from a row it read (a whole new attrs member,
     * say) learns that the row changed meanwhile instead of overwriting
     * that change.  Not for create. */
    int64_t if_version;
};

/*
 * The transitions.  Each is one atomic store transaction that checks the
 * current row, writes the new one with version + 1 and appends one history
 * row, or changes nothing.  On success *out (may be NULL) holds the row as
 * written; the new op_id, where one is made, is out->op_id.
 *
 * Returns 0 when done; VSE_REPEATED when the same transition had already
 * happened under the same op_id (or request id), *out then holding the
 * current row (for create, begin and claim, out->op_id is the op_id that
 * the first call made, even if that op has ended since); VSE_ECONFLICT when the machine or the current state does
 * not allow it; VSE_EFENCED when op_id is not the resource's current
 * op_id; VSE_EEXIST (create of an existing id); VSE_ENOTFOUND;
 * VSE_EINVAL (unknown machine, op or state; bad id); VSE_ESTORE, VSE_EBUSY
 * (nothing was written); VSE_EUNKNOWN (the store was lost while the write
 * was in flight and did not come back in time: the transition happened
 * if and only if the history holds the version err->hint names).
 * On VSE_ECONFLICT and VSE_EFENCED, *out holds the current row, err->msg
 * says what is in the way ("volume 'v1' is busy: delete, step deleting,
 * owner volume@host2, since ...") and err->hint what is allowed now.
 */
int vse_create(vse_db *db, const char *machine, const char *id,
               const struct vse_opts *o, struct vse_resource *out,
               struct vse_error *err);
int vse_begin(vse_db *db, const char *id, const char *op,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err);
int vse_step(vse_db *db, const char *id, const char *op_id, const char *to,
             const struct vse_opts *o, struct vse_resource *out,
             struct vse_error *err);
/* `to` may be NULL when the op has exactly one success state. */
int vse_finish(vse_db *db, const char *id, const char *op_id, const char *to,
               const struct vse_opts *o, struct vse_resource *out,
               struct vse_error *err);
/* o->reason is required. */
int vse_fail(vse_db *db, const char *id, const char *op_id,
             const struct vse_opts *o, struct vse_resource *out,
             struct vse_error *err);
/*
 * Take over an in-flight op that is unowned, or whose lease expired on a
 * step whose expiry policy is `retry`.  o->owner is required.  The op gets
 * a fresh op_id (out->op_id), so the previous holder is fenced.
 */
int vse_claim(vse_db *db, const char *id, const char *op_id,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err);
/*
 * A claim and the step after it as one transition, for a worker that has
 * nothing durable to do between them (a scheduler picking a host): one
 * store write instead of two.  As vse_claim (the op gets a fresh op_id,
 * out->op_id), then as vse_step to `to`, which must be an edge of the op
 * from the current state; o->release hands the op off again.  The history
 * row has kind claim, goes from the old state to `to`, and names
 * o->owner even when the op is handed off.
 */
int vse_claim_step(vse_db *db, const char *id, const char *op_id,
                   const char *to, const struct vse_opts *o,
                   struct vse_resource *out, struct vse_error *err);
/* Extend the lease of the current owner by o->ttl_ms.  The version moves;
 * a history row is written only with o->reason, o->attrs or
 * o->request_id (a heartbeat leaves none; vse_check allows the gap). */
int vse_renew(vse_db *db, const char *id, const char *op_id,
              const struct vse_opts *o, struct vse_resource *out,
              struct vse_error *err);
/*
 * The operator's escape hatch: put the resource in the rest state `state`
 * with no op in flight; any op_id in flight is fenced.  o->reason is
 * required; o->owner names the actor.
 */
int vse_reset_state(vse_db *db, const char *id, const char *state,
                    const struct vse_opts *o, struct vse_resource *out,
                    struct vse_error *err);

/*
 * Apply o->attrs (required) to the resource's attrs in any state, with
 * no change of state or op: one history row of kind "update".  Used for
 * data that may change at any time (a volume's name); data that belongs
 * to a step (the host a volume is created on) goes with that step.
 */
int vse_update(vse_db *db, const char *id, const struct vse_opts *o,
               struct vse_resource *out, struct vse_error *err);

struct vse_reap_stats {
    int64_t examined; /* expired leases seen */
    int64_t retried;  /* handed back for another worker to claim */
    int64_t failed;   /* ended in the op's failure state */
    int64_t reverted; /* returned to the rest state the op began from */
    int64_t skipped;  /* changed under us, or already waiting unowned */
    /* Appended, so the fields above keep their offsets.  Both end the op
     * in its failure state, for its retry budget (docs/machines.md): */
    int64_t exhausted; /* its lease expired the budget's attempts-th time */
    int64_t unclaimed; /* handed back and not claimed within the budget */
};
/*
 * Apply each expired lease's expiry policy, and end each op that waits
 * unowned at a retry step longer than its op's retry budget allows.  `st`
 * may be NULL.
 */
int vse_reap(vse_db *db, struct vse_reap_stats *st, struct vse_error *err);

/* ------------------------------------------------------------------ */
/* Holds                                                               */
/* ------------------------------------------------------------------ */

/*
 * An operation whose machine says `holds: {machine: M, mode: MODE}` holds
 * one resource of machine M for as long as it runs.  Shared holds on one
 * resource coexist; an exclusive hold excludes every other hold.  While a
 * resource is held, the operations its machine marks
 * `refused_while_held` for that mode may not begin: vse_begin() answers
 * VSE_ECONFLICT naming the holders.
 */
enum vse_hold_mode { VSE_HOLD_SHARED = 1, VSE_HOLD_EXCLUSIVE = 2 };
/* "shared", "exclusive"; NULL for an unknown mode. */
const char *vse_hold_mode_name(int mode);

/* One hold, as read.  Plain data: the caller owns it. */
struct vse_hold {
    char held[VSE_ID_MAX + 1];      /* the held resource */
    char holder[VSE_ID_MAX + 1];    /* the resource whose op holds it */
    char machine[VSE_NAME_MAX + 1]; /* the holder's machine */
    char op[VSE_NAME_MAX + 1];      /* the holder's op */
    char op_id[VSE_OPID_LEN + 1];   /* its current token */
    char owner[VSE_ID_MAX + 1];     /* its current owner, "" unowned */
    int mode;                       /* enum vse_hold_mode */
    int64_t since;                  /* when the hold was taken */
};
typedef int (*vse_hold_cb)(void *ctx, const struct vse_hold *h);
/*
 * The holds on resource `held` (if not NULL) or taken by resource
 * `holder` (if not NULL; a resource holds at most one), or every hold
 * when both are NULL; in (held, holder) order.  The callback returns 0
 * to go on, non-zero to stop.
 */
int vse_holds(vse_db *db, const char *held, const char *holder,
              vse_hold_cb cb, void *ctx, struct vse_error *err);

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

int vse_get(vse_db *db, const char *id, struct vse_resource *out,
            struct vse_error *err);

/* Callbacks return 0 to go on, non-zero to stop (the call returns 0). */
typedef int (*vse_resource_cb)(void *ctx, const struct vse_resource *r);
typedef int (*vse_event_cb)(void *ctx, const struct vse_event *e);

struct vse_filter {
    const char *machine;  /* NULL = any */
    const char *state;    /* NULL = any */
    int busy;             /* only resources with an op in flight */
    int stuck;            /* only busy ones whose lease has expired */
    const char *after_id; /* paging: ids greater than this */
    size_t limit;         /* 0 = no limit */
    /* Last, so the fields above keep their offsets.  "deleted" rows stay
     * until a purge: skipping them in the store keeps a list's cost with
     * the live rows, not with the store's age. */
    const char *not_state; /* NULL = none; skip resources in this state */
};
/* Resources in id order. */
int vse_list(vse_db *db, const struct vse_filter *f, vse_resource_cb cb,
             void *ctx, struct vse_error *err);
/* History of one resource, in version order, rows with seq > after_seq;
 * limit 0 = all.  VSE_ENOTFOUND if the resource has no row and no
 * history. */
int vse_history(vse_db *db, const char *id, int64_t after_seq, size_t limit,
                vse_event_cb cb, void *ctx, struct vse_error *err);
/* Every event with seq > after_seq, in seq order; limit 0 = all. */
int vse_events(vse_db *db, int64_t after_seq, size_t limit, vse_event_cb cb,
               void *ctx, struct vse_error *err);
/* The highest seq committed so far (0 if none). */
int vse_last_seq(vse_db *db, int64_t *seq, struct vse_error *err);
/*
 * Block until an event with seq > after_seq may exist, or timeout_ms
 * passes.  Returns 1 if there may be new events, 0 on time-out.  A wake-up
 * is only a hint: read with vse_events().
 */
int vse_wait(vse_db *db, int64_t after_seq, int timeout_ms,
             struct vse_error *err);

/* Retention: what vse_purge() removes. */
struct vse_purge_policy {
    /* History rows older than this (us since the epoch) are removed, but
     * never a resource's latest row. */
    int64_t before;
    /* Resources at rest in a terminal state (one no op may begin from,
     * e.g. "deleted") and untouched since `before` are removed with all
     * their history. */
    int drop_terminal;
};
struct vse_purge_stats {
    int64_t history_rows;
    int64_t resources;
};
int vse_purge(vse_db *db, const struct vse_purge_policy *p,
              struct vse_purge_stats *st, struct vse_error *err);

/* ------------------------------------------------------------------ */
/* Checking                                                            */
/* ------------------------------------------------------------------ */

/* Called once per violation found; `id` may be "" for store-wide ones. */
typedef void (*vse_violation_fn)(void *ctx, const char *id, const char *msg);
/*
 * Check invariants of every resource (or only `id` if not NULL): its
 * history is a valid path of its machine, no two operations overlapped,
 * version counts the history rows (unless purged), and the row agrees
 * with the last history row.  *violations receives the count.
 */
int vse_check(vse_db *db, const char *id, vse_violation_fn cb, void *ctx,
              int64_t *violations, struct vse_error *err);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* VSE_H */
