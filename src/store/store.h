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
 * Open the store.  `rest` is the URL after "scheme:".  Creates the
 * schema when the store is empty, migrates an older schema, refuses
 * (VSE_ESCHEMA) anything that is not a vse store or is newer.
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
typedef int vse_store_apply_fn(struct vse_store *s, const struct vse_change *c,
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
                               const struct vse_state_ref *terminal,
                               size_t n, struct vse_purge_stats *st,
                               struct vse_error *err);
/* Read a pin: 0 (out->definition malloc'ed, caller frees), VSE_ENOTFOUND. */
typedef int vse_store_pin_get_fn(struct vse_store *s, const char *machine,
                                 struct vse_pin *out, struct vse_error *err);
/* Insert a pin if none exists under that name (an existing one is left
 * alone and is not an error: the caller re-reads and compares). */
typedef int vse_store_pin_put_fn(struct vse_store *s, const struct vse_pin *p,
                                 struct vse_error *err);
/*
 * Optional (NULL: the core polls last_seq).  Block until seq > after_seq
 * may exist or timeout_ms passes: 1 or 0.
 */
typedef int vse_store_wait_fn(struct vse_store *s, int64_t after_seq,
                              int timeout_ms, struct vse_error *err);

struct vse_store_methods {
    int version;          /* 1 */
    const char *scheme;   /* "sqlite", "postgresql", "etcd" */
    size_t conn_size;     /* sizeof the backend's struct */
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
};

extern const struct vse_store_methods vse__store_sqlite;

/*
 * Make a backend known at run time, after the built-ins; for test shims
 * such as the fault-injecting wrapper of tests/store/test-faults.c.  Not
 * thread-safe: call before opening stores.  0, or VSE_EINVAL when full.
 */
int vse__store_register(const struct vse_store_methods *m);

/*
 * Core-side wrappers: the only way the core reaches a store.  open picks
 * the backend by the URL's scheme, allocates it and validates its
 * methods.
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
int vse__store_history(struct vse_store *s, const char *id,
                       int64_t after_seq, size_t limit, vse_event_cb cb,
                       void *ctx, struct vse_error *err);
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

#endif /* VSE_STORE_H */
