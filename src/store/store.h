/*
 * store.h - the private interface between libvse's core and its stores.
 *
 * A store knows nothing of machines.  It keeps rows and history and
 * applies "if the row is still at this version, write this row and append
 * this history row" atomically - the one primitive every transition is
 * built from.  That shape fits SQL (UPDATE ... WHERE version = ?) and
 * etcd (a txn comparing mod_revision) alike.  The core decides; the store
 * only commits or reports what is in the way.
 *
 * Like sqlite3_vfs: `version` first, slots only ever appended; the core
 * allocates `conn_size` bytes, and the backend's struct embeds
 * `struct vse_store` as its first member.  Backends write their own text
 * into the vse_error they are given; the core never parses it.
 */
#ifndef VSE_STORE_H
#define VSE_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "vse.h"

struct vse_store_methods;

/* Base of every backend connection. */
struct vse_store {
    const struct vse_store_methods *m;
    char *url; /* as given, owned by the core */
    /* Set by vse_interrupt() from any thread: a store waiting for an
     * unreachable server (reconnect backoff) gives up at once. */
    atomic_int interrupted;
};

/* A machine definition the store was first used with. */
struct vse_pin {
    char machine[VSE_NAME_MAX + 1];
    int version;
    char hash[17];
    char *definition; /* canonical JSON; owned by whoever filled it */
    int64_t pinned_at;
};

/*
 * One atomic change.  expect_version 0 means "the resource must not
 * exist" (create).  row->version must be expect_version + 1, and
 * ev->version the same; ev->seq is assigned by the store.
 */
struct vse_change {
    int64_t expect_version;
    const struct vse_resource *row;
    const struct vse_event *ev;
    /* A renew that only extends the lease: the row alone, no history row
     * (*seq 0); ev is what the row would have been.  Never with holds. */
    int quiet;
    /*
     * Holds (schema 5), all zero for a change that touches none.  In the
     * same transaction as the row:
     *  - take: record this hold (take->holder is row->id; held, machine,
     *    op, mode and since are set) if the held resource is still at
     *    held_version and every hold on it is compatible (shared with
     *    shared); else nothing is written.
     *  - release: remove the hold row->id has on this resource.
     *  - guard: the VSE_HOLD_* modes that refuse this change: if
     *    row->id has a hold of one of them, nothing is written.
     * A failed take or guard answers VSE_ECONFLICT with *cur at
     * expect_version (cur->version 0 for a create): the core reads the
     * holds again and decides again.
     */
    const struct vse_hold *take;
    int64_t held_version;
    const char *release;
    unsigned guard;
};

/* Conditions for looking up an earlier history row (idempotency). */
struct vse_event_query {
    const char *resource;   /* required */
    const char *op_id;      /* NULL = any */
    const char *request_id; /* NULL = any */
    enum vse_kind kind;     /* 0 = any */
    const char *to;         /* NULL = any */
};

/*
 * Connect to the store.  `rest` is the URL after "scheme:".  Writes
 * nothing: the core then inspects what is there and decides whether to
 * create, migrate or refuse it (the schema slots below).  On failure the
 * backend has released what it took; on success the core calls close.
 */
typedef int vse_store_open_fn(struct vse_store *s, const char *rest,
                              struct vse_error *err);
/* Close the connection; must not free s itself. */
typedef void vse_store_close_fn(struct vse_store *s);
/* Read one resource: 0, VSE_ENOTFOUND, VSE_ESTORE. */
typedef int vse_store_get_fn(struct vse_store *s, const char *id,
                             struct vse_resource *out, struct vse_error *err);
/*
 * Apply a change atomically.  0: the row was written and the history row
 * appended, *seq (may be NULL) holds its seq.  VSE_ECONFLICT: the
 * resource is not at expect_version; *cur holds the current row, or, if
 * it does not exist, has cur->version == 0.  Nothing was written.
 * VSE_ESTORE / VSE_EBUSY: nothing was written (a store that cannot tell
 * must find out, e.g. by re-reading the history row named by
 * (resource, version), before it answers).  VSE_EUNKNOWN: it could not
 * find out in time; err->hint names the version to look for.
 */
typedef int vse_store_apply_fn(struct vse_store *s,
                               const struct vse_change *c,
                               struct vse_resource *cur, int64_t *seq,
                               struct vse_error *err);
/*
 * Resources matching f in id order.  `now` decides f->stuck
 * (lease_expires < now).
 */
typedef int vse_store_list_fn(struct vse_store *s, const struct vse_filter *f,
                              int64_t now, vse_resource_cb cb, void *ctx,
                              struct vse_error *err);
/*
 * History rows with seq > after_seq, of one resource (id != NULL, in
 * version order) or of all (id == NULL, in seq order); limit 0 = all.
 */
typedef int vse_store_history_fn(struct vse_store *s, const char *id,
                                 int64_t after_seq, size_t limit,
                                 vse_event_cb cb, void *ctx,
                                 struct vse_error *err);
/* The latest history row matching q: 0, VSE_ENOTFOUND, VSE_ESTORE. */
typedef int vse_store_find_event_fn(struct vse_store *s,
                                    const struct vse_event_query *q,
                                    struct vse_event *out,
                                    struct vse_error *err);
/*
 * Owned busy resources (owner not empty) with lease_expires < now, at
 * most limit, oldest lease first.  Unowned ops are waiting in a queue for
 * a claim and never expire.
 */
typedef int vse_store_expired_fn(struct vse_store *s, int64_t now,
                                 size_t limit, vse_resource_cb cb, void *ctx,
                                 struct vse_error *err);
/* Highest seq committed (0 if none). */
typedef int vse_store_last_seq_fn(struct vse_store *s, int64_t *seq,
                                  struct vse_error *err);
/*
 * Remove history rows with at < before, keeping each resource's latest
 * row; then remove resources in `terminal` (pairs machine, state; n of
 * them) updated before `before`, with their history.
 */
struct vse_state_ref {
    const char *machine;
    const char *state;
};
typedef int vse_store_purge_fn(struct vse_store *s, int64_t before,
                               const struct vse_state_ref *terminal, size_t n,
                               struct vse_purge_stats *st,
                               struct vse_error *err);
/* Read a pin: 0 (out->definition malloc'ed, caller frees), VSE_ENOTFOUND. */
typedef int vse_store_pin_get_fn(struct vse_store *s, const char *machine,
                                 struct vse_pin *out, struct vse_error *err);
/* Insert a pin if none exists under that name (an existing one is left
 * alone and is not an error: the caller re-reads and compares). */
typedef int vse_store_pin_put_fn(struct vse_store *s, const struct vse_pin *p,
                                 struct vse_error *err);
/*
 * Re-pin a machine (vse_upgrade_machine), as atomically as the store
 * allows.  Inside one transaction: the pin of p->machine must still have
 * hash `expect_hash` (else VSE_ECONFLICT, nothing written); `check` is
 * called with every resource of that machine, then once with NULL - a
 * negative answer to NULL rolls back and is returned as it is (the core
 * wrote err); 0 goes on: the pin is replaced by p and `ev` (kind upgrade,
 * resource "") appended to the history, *seq (may be NULL) its seq.
 * A store calls `check` for one pass only; when the pin or a resource
 * moved under it, it answers VSE_ECONFLICT and the core starts again.
 * What "one transaction" means per store is in docs/operations.md.
 */
typedef int vse_store_repin_check_fn(void *ctx, const struct vse_resource *r);
typedef int vse_store_repin_fn(struct vse_store *s, const char *expect_hash,
                               const struct vse_pin *p,
                               const struct vse_event *ev,
                               vse_store_repin_check_fn *check, void *ctx,
                               int64_t *seq, struct vse_error *err);

/*
 * Optional (NULL: the core polls last_seq).  Block until seq > after_seq
 * may exist or timeout_ms passes: 1 or 0.
 */
typedef int vse_store_wait_fn(struct vse_store *s, int64_t after_seq,
                              int timeout_ms, struct vse_error *err);

/*
 * Holds on `held` (if not NULL) or by `holder` (if not NULL), or all, in
 * (held, holder) order.  Fills held, holder, machine, op, mode, since;
 * op_id and owner are the core's to fill from the holder's row.
 */
typedef int vse_store_holds_fn(struct vse_store *s, const char *held,
                               const char *holder, vse_hold_cb cb, void *ctx,
                               struct vse_error *err);

/* ---- schema: backends report facts, the core decides (store.c) ---- */

/*
 * What a backend found where its store should be, read without writing
 * anything.  The core judges it once, for every backend: metadata with
 * format "vse" and a schema version it knows -> use it (migrating an
 * older one); no metadata and nothing else -> an empty store, created;
 * anything else -> refused with VSE_ESCHEMA ("'WHERE' is not a vse store
 * (OTHER)", or "... newer than this vse understands").
 */
struct vse_store_facts {
    int has_meta;      /* vse's metadata (vse_meta) exists */
    char format[32];   /* its "format" entry; "vse" in a vse store */
    int version;       /* its "schema_version" entry; 0: missing/invalid */
    const char *other; /* no metadata, but something else is there, in
                          words: "it holds other tables"; NULL: empty */
    const char *where; /* the store in messages (a path, user@host/db);
                          valid while the connection is open */
    const char *hint;  /* what to give instead of a foreign store */
};
/* Fill *f (zeroed by the core).  0, or VSE_ESTORE and friends when the
 * store cannot be read at all. */
typedef int vse_store_inspect_fn(struct vse_store *s,
                                 struct vse_store_facts *f,
                                 struct vse_error *err);
/* Optional: the store was judged usable (empty or vse's), before any
 * migration; the backend may now write to it (SQLite: WAL mode). */
typedef int vse_store_accept_fn(struct vse_store *s, struct vse_error *err);
/* Optional: the schema is at the backend's current version; the backend
 * may check or repair what the schema cannot say (PostgreSQL: history
 * positions ahead of a cluster restored from a backup).  0 or an error. */
typedef int vse_store_settled_fn(struct vse_store *s, struct vse_error *err);
/*
 * Begin the one transaction all migration steps run in, holding whatever
 * keeps two processes from migrating at once (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: an advisory lock, then BEGIN).  The core inspects again
 * inside it.
 */
typedef int vse_store_schema_begin_fn(struct vse_store *s,
                                      struct vse_error *err);
/* Commit (commit != 0) or roll back, and release the lock; called after
 * every successful schema_begin.  Rolling back reports nothing. */
typedef int vse_store_schema_end_fn(struct vse_store *s, int commit,
                                    struct vse_error *err);
/* Set key to value in vse's metadata (insert or replace); `what` names
 * the action for the error message ("record the schema version"). */
typedef int vse_store_meta_set_fn(struct vse_store *s, const char *key,
                                  const char *value, const char *what,
                                  struct vse_error *err);
/* Run a step's SQL text (for backends whose steps are SQL). */
typedef int vse_store_exec_fn(struct vse_store *s, const char *sql,
                              const char *what, struct vse_error *err);
/* A step given as code, for backends whose schema is not SQL. */
typedef int vse_store_step_fn(struct vse_store *s, struct vse_error *err);

/*
 * steps[v] takes a store from schema version v to v + 1; steps[0]
 * creates it (the core then writes format "vse" and "created").  Exactly
 * one of sql (run with exec) and run.  A new schema version is one new
 * entry at the end of a backend's table: the core derives the backend's
 * current version from the table's length.
 */
struct vse_store_step {
    const char *sql;
    vse_store_step_fn *run;
};

struct vse_store_methods {
    int version;        /* 3; a version 1 backend has none of the slots
                             after `wait` (test wrappers), a version 2 one
                             none after `settled` */
    const char *scheme; /* "sqlite", "postgresql", "etcd" */
    size_t conn_size;   /* sizeof the backend's struct */
    vse_store_open_fn *open;
    vse_store_close_fn *close;
    vse_store_get_fn *get;
    vse_store_apply_fn *apply;
    vse_store_list_fn *list;
    vse_store_history_fn *history;
    vse_store_find_event_fn *find_event;
    vse_store_expired_fn *expired;
    vse_store_last_seq_fn *last_seq;
    vse_store_purge_fn *purge;
    vse_store_pin_get_fn *pin_get;
    vse_store_pin_put_fn *pin_put;
    vse_store_wait_fn *wait; /* optional */
    /* ---- version 2 ---- */
    /* Other spellings of scheme, NULL-terminated; NULL if none. */
    const char *const *aliases;
    /* The schema slots, all set or (a wrapper around a store opened with
     * vse__store_open, which settled the schema) all NULL; accept and
     * exec are optional. */
    vse_store_inspect_fn *inspect;
    vse_store_accept_fn *accept;
    vse_store_schema_begin_fn *schema_begin;
    vse_store_schema_end_fn *schema_end;
    vse_store_meta_set_fn *meta_set;
    vse_store_exec_fn *exec;
    const struct vse_store_step *steps;
    size_t nsteps;                 /* the backend's current schema version */
    vse_store_settled_fn *settled; /* optional */
    /* ---- version 3 ---- */
    vse_store_repin_fn *repin; /* optional: no machine upgrades without */
    /* Required of a backend that stores holds; a wrapper forwards it.
     * NULL: the store keeps no holds, and a change that takes or
     * releases one is refused. */
    vse_store_holds_fn *holds;
};

/* The built-in backends (store-*.c), in the registry of store.c. */
extern const struct vse_store_methods vse__store_sqlite;
extern const struct vse_store_methods vse__store_pg;
extern const struct vse_store_methods vse__store_zk;

/*
 * Make a backend known at run time, after the built-ins; for test shims
 * such as the fault-injecting wrapper of tests/store/test-faults.c.  Not
 * thread-safe: call before opening stores.  0, or VSE_EINVAL when full.
 */
int vse__store_register(const struct vse_store_methods *m);

/*
 * Core-side wrappers: the only way the core reaches a store.  open picks
 * the backend by the URL's scheme (or an alias), allocates it, validates
 * its methods, and settles the schema: creates an empty store, migrates
 * an older one, refuses (VSE_ESCHEMA) one that is not vse's or is newer.
 */
int vse__store_open(const char *url, struct vse_store **out,
                    struct vse_error *err);
void vse__store_close(struct vse_store *s);
int vse__store_get(struct vse_store *s, const char *id,
                   struct vse_resource *out, struct vse_error *err);
int vse__store_apply(struct vse_store *s, const struct vse_change *c,
                     struct vse_resource *cur, int64_t *seq,
                     struct vse_error *err);
int vse__store_list(struct vse_store *s, const struct vse_filter *f,
                    int64_t now, vse_resource_cb cb, void *ctx,
                    struct vse_error *err);
int vse__store_history(struct vse_store *s, const char *id, int64_t after_seq,
                       size_t limit, vse_event_cb cb, void *ctx,
                       struct vse_error *err);
int vse__store_find_event(struct vse_store *s,
                          const struct vse_event_query *q,
                          struct vse_event *out, struct vse_error *err);
int vse__store_expired(struct vse_store *s, int64_t now, size_t limit,
                       vse_resource_cb cb, void *ctx, struct vse_error *err);
int vse__store_last_seq(struct vse_store *s, int64_t *seq,
                        struct vse_error *err);
int vse__store_purge(struct vse_store *s, int64_t before,
                     const struct vse_state_ref *terminal, size_t n,
                     struct vse_purge_stats *st, struct vse_error *err);
int vse__store_pin_get(struct vse_store *s, const char *machine,
                       struct vse_pin *out, struct vse_error *err);
int vse__store_pin_put(struct vse_store *s, const struct vse_pin *p,
                       struct vse_error *err);
int vse__store_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                    struct vse_error *err);
/* VSE_EINVAL when the backend has no repin slot. */
int vse__store_repin(struct vse_store *s, const char *expect_hash,
                     const struct vse_pin *p, const struct vse_event *ev,
                     vse_store_repin_check_fn *check, void *ctx, int64_t *seq,
                     struct vse_error *err);
int vse__store_holds(struct vse_store *s, const char *held,
                     const char *holder, vse_hold_cb cb, void *ctx,
                     struct vse_error *err);

#endif /* VSE_STORE_H */
