/*
 * store-sqlite.c - the "sqlite:" store: one SQLite file in WAL mode,
 * shared by any number of processes on one host.  Every transition is one
 * BEGIN IMMEDIATE transaction (CAS update + history row) on statements
 * prepared once per connection; a fair busy handler of our own replaces
 * SQLite's, whose waits grow to seconds under contention (FIELD-NOTES.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "group.h"
#include "sqlite-gate.h"
#include "store-sqlite-sql.h"
#include "store.h"
#include "util.h"

#define DEFAULT_BUSY_MS 5000
#define MAX_BUSY_MS (24 * 3600 * 1000)

/* Cached statements, prepared on first use and kept until close. */
enum stmt_id {
    ST_GET,
    ST_INSERT,
    ST_UPDATE,
    ST_HIST_INSERT,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_HIST_ONE,
    ST_HIST_ALL,
    ST_EXPIRED,
    ST_LAST_SEQ,
    ST_PIN_GET,
    ST_PIN_PUT,
    ST_HOLD_GUARD,
    ST_HOLD_CHECK,
    ST_HOLD_INSERT,
    ST_HOLD_DELETE,
    ST_HOLDS,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_GET] = VSE_SQL_GET,
    [ST_INSERT] = VSE_SQL_INSERT,
    [ST_UPDATE] = VSE_SQL_UPDATE,
    [ST_HIST_INSERT] = VSE_SQL_HISTORY_INSERT,
    [ST_BEGIN] = VSE_SQL_BEGIN,
    [ST_COMMIT] = VSE_SQL_COMMIT,
    [ST_ROLLBACK] = VSE_SQL_ROLLBACK,
    [ST_HIST_ONE] = "SELECT " VSE_SQL_HISTORY_COLS " FROM history "
                    "WHERE resource = ?1 AND seq > ?2 "
                    "ORDER BY version LIMIT ?3",
    [ST_HIST_ALL] = "SELECT " VSE_SQL_HISTORY_COLS " FROM history "
                    "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    /* Unowned ops wait in a queue for a claim and never expire. */
    [ST_EXPIRED] = "SELECT " VSE_SQL_RESOURCE_COLS " FROM resources "
                   "WHERE op IS NOT NULL AND owner IS NOT NULL "
                   "AND lease_expires < ?1 "
                   "ORDER BY lease_expires LIMIT ?2",
    /* AUTOINCREMENT keeps the highest seq ever handed out in
     * sqlite_sequence, also after purge removed the rows. */
    [ST_LAST_SEQ] = "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                    "WHERE name = 'history'), "
                    "(SELECT max(seq) FROM history), 0)",
    [ST_PIN_GET] = "SELECT version, hash, definition, pinned_at "
                   "FROM machines WHERE name = ?1",
    [ST_PIN_PUT] = "INSERT OR IGNORE INTO machines"
                   "(name, version, hash, definition, pinned_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    /* Holds of resource ?1 in the modes of mask ?2 (VSE_HOLD_*). */
    [ST_HOLD_GUARD] = "SELECT count(*) FROM holds WHERE held = ?1 AND "
                      "((mode = 'shared' AND (?2 & 1) != 0) OR "
                      "(mode = 'exclusive' AND (?2 & 2) != 0))",
    /* 1 if resource ?1 is at version ?2 and a hold of mode ?4 by ?3
     * fits beside the others: only shared holds share. */
    [ST_HOLD_CHECK] = "SELECT (SELECT count(*) FROM resources "
                      "WHERE id = ?1 AND version = ?2) = 1 AND NOT EXISTS "
                      "(SELECT 1 FROM holds WHERE held = ?1 AND holder != ?3 "
                      "AND (mode = 'exclusive' OR ?4 = 'exclusive'))",
    [ST_HOLD_INSERT] = "INSERT INTO holds(holder, held, machine, op, mode, "
                       "since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_HOLD_DELETE] = "DELETE FROM holds WHERE holder = ?1 AND held = ?2",
    [ST_HOLDS] = "SELECT held, holder, machine, op, mode, since FROM holds "
                 "WHERE (?1 IS NULL OR held = ?1) AND "
                 "(?2 IS NULL OR holder = ?2) ORDER BY held, holder",
};

/* list() filters: one cached statement per combination of conditions. */
enum {
    LF_MACHINE = 1 << 0,
    LF_STATE = 1 << 1,
    LF_BUSY = 1 << 2,
    LF_STUCK = 1 << 3,
    LF_AFTER = 1 << 4,
    LF_NOT_STATE = 1 << 5,
    LF_COUNT = 1 << 6
};

struct sqlite_conn {
    struct vse_store base; /* must be first */
    sqlite3 *db;
    char *path;
    int synchronous_full;
    int busy_ms;
    int64_t busy_deadline; /* CLOCK_MONOTONIC us; set on the first retry */
    int in_checkpoint;     /* the busy handler uses the short deadline */
    uint64_t rng;
    /* The shared file beside the store; NULL if it cannot be had
     * (writers then rely on the busy handler, watchers poll). */
    struct vse_sqlite_gate *gate;
    int ordered;      /* writers queue at the gate (synchronous=full) */
    int group_commit; /* ?group_commit=on (the default) */
    struct vse_gc_group *group; /* this file's, shared by the process */
    sqlite3_stmt *st[ST_COUNT];
    sqlite3_stmt *list_st[LF_COUNT];
};

/* ------------------------------------------------------------------ */
/* Group commit (on unless ?group_commit=off)                          */
/* ------------------------------------------------------------------ */

/*
 * The transitions that this process's threads send to one store file
 * while a commit is in flight go to SQLite together, in the next
 * transaction: one fsync for all of them (the queue: group.c).  The
 * first thread to find no commit in flight leads: it takes everything
 * queued, applies each under a savepoint of its own on its own
 * connection, so that a lost compare-and-swap undoes only that one,
 * commits once, and answers each.  Nobody waits on purpose (there is no
 * commit_delay): a transition waits at most for the commit in flight and
 * its own.  Every answer comes after the commit is durable; a failed
 * commit fails them all, with nothing written.
 */

/* Group commit of the file at path: its group is keyed by device and
 * inode, so that two spellings of one path share it; NULL if it cannot be
 * had.  One batch in flight: SQLite lets one writer in at a time. */
static struct vse_gc_group *gc_join(const char *path)
{
    struct stat st;
    char key[64];

    if (stat(path, &st) != 0)
        return NULL;
    snprintf(key, sizeof(key), "sqlite:%llu:%llu",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    return vse__gc_join(key, 1);
}

static const struct vse_gc_ops gc_ops;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* xorshift64*: only spreads the busy sleeps, needs no quality. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static void rng_seed(uint64_t *s)
{
    if (getrandom(s, sizeof(*s), GRND_NONBLOCK) != (ssize_t)sizeof(*s))
        *s = (uint64_t)vse__now_mono_us() ^ ((uint64_t)getpid() << 32);
    if (*s == 0)
        *s = 0x9e3779b97f4a7c15ULL;
}

/*
 * SQLite calls this while a lock it needs is held elsewhere; returning 0
 * makes the statement fail with SQLITE_BUSY.  `count` restarts at 0 for
 * every new wait, which is when the deadline is set.
 */
static int busy_handler(void *arg, int count)
{
    struct sqlite_conn *c = arg;
    int64_t now = vse__now_mono_us();
    int64_t spread, us;
    struct timespec ts;

    if (count == 0)
        c->busy_deadline = now + (int64_t)(c->in_checkpoint
                                               ? VSE_SQLITE_CKPT_WAIT_MS
                                               : c->busy_ms) *
                                     1000;
    if (now >= c->busy_deadline)
        return 0;
    spread = VSE_SQLITE_BUSY_SPREAD_US +
             (int64_t)count * VSE_SQLITE_BUSY_GROW_US;
    if (spread > VSE_SQLITE_BUSY_MAX_US)
        spread = VSE_SQLITE_BUSY_MAX_US;
    us = VSE_SQLITE_BUSY_MIN_US +
         (int64_t)(rng_next(&c->rng) % (uint64_t)spread);
    if (now + us > c->busy_deadline)
        us = c->busy_deadline - now;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)us * 1000;
    nanosleep(&ts, NULL);
    return 1;
}

/*
 * Called after each commit in WAL mode (it replaces the auto-checkpoint;
 * see VSE_SQLITE_CKPT_PAGES for why).  The commit has happened whatever
 * this returns, and an error here would be reported as the commit's, so
 * a checkpoint that cannot finish now is left for a later commit.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sqlite_conn *c = arg;

    if (pages < VSE_SQLITE_CKPT_PAGES)
        return SQLITE_OK;
    c->in_checkpoint = 1;
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL,
                              NULL);
    c->in_checkpoint = 0;
    return SQLITE_OK;
}

/*
 * Report a failed SQLite call.  Must run before anything else touches the
 * handle (a ROLLBACK would replace sqlite3_errmsg).  A lock that stayed
 * taken is VSE_EBUSY; everything else is VSE_ESTORE, never a conflict.
 */
static int db_fail(struct sqlite_conn *c, int rc, struct vse_error *err,
                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int db_fail(struct sqlite_conn *c, int rc, struct vse_error *err,
                   const char *fmt, ...)
{
    char what[256];
    va_list ap;
    int prim = rc & 0xff;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        vse__err(err, VSE_EBUSY,
                 "store '%s' is busy: the write lock was held for more "
                 "than %d ms",
                 c->path, c->busy_ms);
        vse__err_detail(err, "trying to %s; sqlite: %s (code %d)", what,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc),
                        rc);
        vse__err_hint(err, "retry later, or raise busy_timeout in the store "
                           "URL (sqlite:PATH?busy_timeout=MS)");
        return VSE_EBUSY;
    }
    if (prim == SQLITE_NOMEM)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    vse__err(err, VSE_ESTORE, "cannot %s in store '%s'", what, c->path);
    vse__err_detail(err, "sqlite: %s (code %d)",
                    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), rc);
    switch (prim) {
    case SQLITE_FULL:
        vse__err_hint(err, "the disk holding '%s' is full", c->path);
        break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        vse__err_hint(err,
                      "check that '%s', its directory and its -wal and "
                      "-shm files are writable",
                      c->path);
        break;
    case SQLITE_CORRUPT:
        vse__err_hint(err, "the file is damaged: restore it from a backup");
        break;
    }
    return VSE_ESTORE;
}

/*
 * A cached statement from *slot, prepared on first use.  If it is in use
 * already (a callback re-entered the store while a list was running), a
 * private one is prepared instead; release() tells them apart.
 */
static int acquire(struct sqlite_conn *c, sqlite3_stmt **slot,
                   const char *sql, sqlite3_stmt **out, struct vse_error *err)
{
    int rc;

    *out = NULL;
    if (*slot != NULL && !sqlite3_stmt_busy(*slot)) {
        *out = *slot;
        return 0;
    }
    rc = sqlite3_prepare_v3(c->db, sql, -1,
                            *slot ? 0 : SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "prepare a statement");
    if (*slot == NULL)
        *slot = *out;
    return 0;
}

static int get_stmt(struct sqlite_conn *c, enum stmt_id id,
                    sqlite3_stmt **out, struct vse_error *err)
{
    return acquire(c, &c->st[id], stmt_sql[id], out, err);
}

static void release(sqlite3_stmt **slot, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    if (st == *slot) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
}

static void put_stmt(struct sqlite_conn *c, enum stmt_id id, sqlite3_stmt *st)
{
    release(&c->st[id], st);
}

/* Run a cached statement that returns no rows (BEGIN, COMMIT, ...). */
static int run(struct sqlite_conn *c, enum stmt_id id, struct vse_error *err,
               const char *what)
{
    sqlite3_stmt *st;
    int rc = get_stmt(c, id, &st, err);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        rc = db_fail(c, rc, err, "%s", what);
    else
        rc = 0;
    put_stmt(c, id, st);
    return rc;
}

/* Undo an open transaction, if any; keeps the error already reported. */
static void rollback(struct sqlite_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        run(c, ST_ROLLBACK, NULL, "roll back");
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* 0 means "none" for lease_expires, as "" does for text columns. */
static int bind_opt_i64(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == 0)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_int64(st, i, v);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    vse__strlcpy(dst, t ? (const char *)t : "", size);
}

/* Bind a row as ?1..?14, in VSE_SQL_RESOURCE_COLS order. */
static int bind_row(sqlite3_stmt *st, const struct vse_resource *r)
{
    int rc = bind_text(st, 1, r->id);

    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, r->machine);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, r->state);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, r->op);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 5, r->op_id);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 6, r->origin);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 7, r->owner);
    if (rc == SQLITE_OK)
        rc = bind_opt_i64(st, 8, r->lease_expires);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 9, r->lease_ttl);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 10, r->since);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 11, r->updated);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 12, r->created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 13, r->version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 14, r->attrs[0] ? r->attrs : "{}", -1,
                               SQLITE_STATIC);
    return rc;
}

static void read_row(sqlite3_stmt *st, struct vse_resource *r)
{
    memset(r, 0, sizeof(*r));
    col_text(st, 0, r->id, sizeof(r->id));
    col_text(st, 1, r->machine, sizeof(r->machine));
    col_text(st, 2, r->state, sizeof(r->state));
    col_text(st, 3, r->op, sizeof(r->op));
    col_text(st, 4, r->op_id, sizeof(r->op_id));
    col_text(st, 5, r->origin, sizeof(r->origin));
    col_text(st, 6, r->owner, sizeof(r->owner));
    r->lease_expires = sqlite3_column_int64(st, 7);
    r->lease_ttl = sqlite3_column_int64(st, 8);
    r->since = sqlite3_column_int64(st, 9);
    r->updated = sqlite3_column_int64(st, 10);
    r->created = sqlite3_column_int64(st, 11);
    r->version = sqlite3_column_int64(st, 12);
    col_text(st, 13, r->attrs, sizeof(r->attrs));
    if (r->attrs[0] == '\0')
        vse__strlcpy(r->attrs, "{}", sizeof(r->attrs));
}

/* Bind a history row as ?1..?12, in VSE_SQL_HISTORY_COLS order less seq. */
static int bind_event(sqlite3_stmt *st, const struct vse_event *e)
{
    /* As text even when empty: an upgrade row is no resource's (""). */
    int rc = sqlite3_bind_text(st, 1, e->resource, -1, SQLITE_STATIC);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, e->version);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, e->machine);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, vse_kind_name(e->kind));
    if (rc == SQLITE_OK)
        rc = bind_text(st, 5, e->op);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 6, e->op_id);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 7, e->from);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 8, e->to);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 9, e->owner);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 10, e->at);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 11, e->request_id);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 12, e->reason);
    return rc;
}

static void read_event(sqlite3_stmt *st, struct vse_event *e)
{
    char kind[16];

    memset(e, 0, sizeof(*e));
    e->seq = sqlite3_column_int64(st, 0);
    col_text(st, 1, e->resource, sizeof(e->resource));
    e->version = sqlite3_column_int64(st, 2);
    col_text(st, 3, e->machine, sizeof(e->machine));
    col_text(st, 4, kind, sizeof(kind));
    e->kind = vse_kind_parse(kind);
    col_text(st, 5, e->op, sizeof(e->op));
    col_text(st, 6, e->op_id, sizeof(e->op_id));
    col_text(st, 7, e->from, sizeof(e->from));
    col_text(st, 8, e->to, sizeof(e->to));
    col_text(st, 9, e->owner, sizeof(e->owner));
    e->at = sqlite3_column_int64(st, 10);
    col_text(st, 11, e->request_id, sizeof(e->request_id));
    col_text(st, 12, e->reason, sizeof(e->reason));
}

/* LIMIT ?: SQLite takes a negative limit as "no limit". */
static sqlite3_int64 sql_limit(size_t limit)
{
    return limit == 0 || limit > (size_t)INT64_MAX ? -1
                                                   : (sqlite3_int64)limit;
}

/* ------------------------------------------------------------------ */
/* URL                                                                 */
/* ------------------------------------------------------------------ */

static int bad_url(struct vse_error *err, const char *url, const char *what,
                   const char *item)
{
    vse__err(err, VSE_EINVAL, "store URL 'sqlite:%s' has %s '%s'", url, what,
             item);
    vse__err_hint(err, "write it as sqlite:PATH[?synchronous=full|normal"
                       "&busy_timeout=MS]");
    return VSE_EINVAL;
}

/* PATH[?synchronous=full|normal&busy_timeout=MS], or //PATH[?...]. */
static int parse_url(struct sqlite_conn *c, const char *rest,
                     struct vse_error *err)
{
    const char *q, *p;
    size_t plen;

    c->synchronous_full = 1; /* durable after power loss */
    c->group_commit = 1;     /* one fsync for what threads send at once */
    c->busy_ms = DEFAULT_BUSY_MS;
    if (strncmp(rest, "//", 2) == 0)
        rest += 2;
    q = strchr(rest, '?');
    plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0) {
        vse__err(err, VSE_EINVAL, "store URL 'sqlite:%s' has no path", rest);
        vse__err_hint(err, "write it as sqlite:PATH, e.g. "
                           "sqlite:./var/vse.db");
        return VSE_EINVAL;
    }
    c->path = vse__malloc(plen + 1);
    if (c->path == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    memcpy(c->path, rest, plen);
    c->path[plen] = '\0';

    for (p = q ? q + 1 : NULL; p != NULL && *p != '\0';) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        char item[128];
        char *val;

        if (len >= sizeof(item))
            len = sizeof(item) - 1;
        memcpy(item, p, len);
        item[len] = '\0';
        p = amp ? amp + 1 : NULL;
        val = strchr(item, '=');
        if (val == NULL)
            return bad_url(err, rest, "a parameter without a value", item);
        *val++ = '\0';
        if (strcmp(item, "synchronous") == 0) {
            if (strcasecmp(val, "full") == 0)
                c->synchronous_full = 1;
            else if (strcasecmp(val, "normal") == 0)
                c->synchronous_full = 0;
            else
                return bad_url(err, rest, "an unknown value for synchronous",
                               val);
        } else if (strcmp(item, "group_commit") == 0) {
            if (strcasecmp(val, "on") == 0)
                c->group_commit = 1;
            else if (strcasecmp(val, "off") == 0)
                c->group_commit = 0;
            else
                return bad_url(err, rest,
                               "an unknown value for group_commit (on or "
                               "off)",
                               val);
        } else if (strcmp(item, "busy_timeout") == 0) {
            char *end;
            long v;

            errno = 0;
            v = strtol(val, &end, 10);
            if (val[0] == '\0' || *end != '\0' || errno != 0 || v < 0 ||
                v > MAX_BUSY_MS)
                return bad_url(err, rest,
                               "an invalid busy_timeout (milliseconds, 0.."
                               "86400000)",
                               val);
            c->busy_ms = (int)v;
        } else {
            return bad_url(err, rest, "an unknown parameter", item);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Schema and migrations                                               */
/* ------------------------------------------------------------------ */

static const char schema_v1[] =
    "CREATE TABLE vse_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE resources(id TEXT PRIMARY KEY, machine TEXT NOT NULL,"
    " state TEXT NOT NULL, op TEXT, op_id TEXT, origin TEXT, owner TEXT,"
    " lease_expires INTEGER, lease_ttl INTEGER NOT NULL DEFAULT 0,"
    " since INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " created INTEGER NOT NULL, version INTEGER NOT NULL);"
    "CREATE INDEX resources_machine_state ON resources(machine, state);"
    "CREATE INDEX resources_lease ON resources(lease_expires)"
    " WHERE op IS NOT NULL;"
    "CREATE TABLE history(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " resource TEXT NOT NULL, version INTEGER NOT NULL,"
    " machine TEXT NOT NULL, kind TEXT NOT NULL, op TEXT, op_id TEXT,"
    " from_state TEXT NOT NULL, to_state TEXT NOT NULL, owner TEXT,"
    " at INTEGER NOT NULL, request_id TEXT, reason TEXT,"
    " UNIQUE(resource, version));"
    "CREATE INDEX history_request ON history(resource, request_id)"
    " WHERE request_id IS NOT NULL;"
    "CREATE TABLE machines(name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " hash TEXT NOT NULL, definition TEXT NOT NULL,"
    " pinned_at INTEGER NOT NULL);";

static int exec_sql(struct sqlite_conn *c, const char *sql,
                    struct vse_error *err, const char *what)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "%s", what);
    return 0;
}

/*
 * The schema's history, one step per version (store.h): steps[v] takes
 * the schema from version v to v + 1, and store.c runs them, in one
 * transaction.  A new schema version appends a step here; the PostgreSQL
 * store keeps the same numbering.
 */
static const struct vse_store_step steps[] = {
    /* Version 1: the store itself. */
    {.sql = schema_v1},
    /* Version 2: resources carry attrs, the caller's JSON object. */
    {.sql = "ALTER TABLE resources ADD COLUMN attrs TEXT NOT NULL "
            "DEFAULT '{}'"},
    /* Version 3 changed only the PostgreSQL store (history seqs without
     * the counter lock); the numbering is shared, so here it is empty. */
    {.sql = ""},
    /* Version 4: empty; it was set aside for retry budgets, which needed
     * no new column in the end.  Kept so the numbering stays shared. */
    {.sql = ""},
    /* Version 5: holds between resources, one per holder (an op holds at
     * most one resource, and a resource runs one op at a time). */
    {.sql = "CREATE TABLE holds ("
            " holder TEXT PRIMARY KEY,"
            " held TEXT NOT NULL,"
            " machine TEXT NOT NULL,"
            " op TEXT NOT NULL,"
            " mode TEXT NOT NULL CHECK (mode IN ('shared', 'exclusive')),"
            " since INTEGER NOT NULL);"
            "CREATE INDEX holds_held ON holds(held, holder);"},
    /* Version 6 changed only the PostgreSQL store (several history rows
     * per transaction, for group commit). */
    {.sql = ""},
};

static int sqlite_exec(struct vse_store *s, const char *sql, const char *what,
                       struct vse_error *err)
{
    return exec_sql((struct sqlite_conn *)s, sql, err, what);
}

static int sqlite_meta_set(struct vse_store *s, const char *key,
                           const char *value, const char *what,
                           struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "INSERT OR REPLACE INTO vse_meta(key, value) "
                                "VALUES (?1, ?2)",
                                -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(c, rc, err, "%s", what);
    return 0;
}

static const char not_vse_hint[] =
    "give the path of a vse store, or of a file that does not exist yet";

/* What the file holds, found without writing anything. */
static int sqlite_inspect(struct vse_store *s, struct vse_store_facts *in,
                          struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st = NULL;
    int rc;

    in->where = c->path;
    in->hint = not_vse_hint;
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT count(*), coalesce(sum(type = 'table' "
                            "AND name = 'vse_meta'), 0) FROM sqlite_master "
                            "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (sqlite3_column_int(st, 0) > 0)
                in->other = "it holds other tables";
            in->has_meta = sqlite3_column_int(st, 1);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if ((rc & 0xff) == SQLITE_NOTADB) {
        in->other = "not an SQLite database";
        return 0;
    }
    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "read the schema");
    if (!in->has_meta)
        return 0;

    rc = sqlite3_prepare_v2(c->db,
                            "SELECT key, value FROM vse_meta "
                            "WHERE key IN ('format', 'schema_version')",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "read the schema");
    for (;;) {
        const char *k;
        const char *v;

        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        k = (const char *)sqlite3_column_text(st, 0);
        v = (const char *)sqlite3_column_text(st, 1);
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "format") == 0)
            vse__strlcpy(in->format, v, sizeof(in->format));
        else
            in->version = atoi(v);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(c, rc, err, "read the schema");
    return 0;
}

/* BEGIN IMMEDIATE takes the write lock first and store.c judges the
 * store again under it, so two processes opening one new file create the
 * schema once. */
static int sqlite_schema_begin(struct vse_store *s, struct vse_error *err)
{
    return run((struct sqlite_conn *)s, ST_BEGIN, err,
               "begin the schema transaction");
}

static int sqlite_schema_end(struct vse_store *s, int commit,
                             struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int rc = 0;

    if (commit)
        rc = run(c, ST_COMMIT, err, "commit the schema");
    if (!commit || rc < 0)
        rollback(c);
    return rc;
}

static int set_pragmas(struct sqlite_conn *c, struct vse_error *err)
{
    return exec_sql(c,
                    c->synchronous_full ? "PRAGMA synchronous = FULL"
                                        : "PRAGMA synchronous = NORMAL",
                    err, "set synchronous");
}

/*
 * WAL is persistent: set only once the file is known to be ours.  While
 * a new file is still in rollback mode, processes opening it at once can
 * each hold the shared lock the other's switch waits for; SQLite then
 * answers SQLITE_BUSY at once, without the busy handler, so that one of
 * them backs off.  Retry here, paced and bounded by the busy handler.
 */
static int set_wal(struct sqlite_conn *c, struct vse_error *err)
{
    sqlite3_stmt *st;
    const char *mode;
    int tries = 0;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st,
                                NULL);

    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "switch to WAL mode");
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW || (rc & 0xff) != SQLITE_BUSY ||
            !busy_handler(c, tries++))
            break;
        sqlite3_reset(st);
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(c, rc, err, "switch to WAL mode");
        sqlite3_finalize(st);
        return rc;
    }
    mode = (const char *)sqlite3_column_text(st, 0);
    if (mode == NULL || strcasecmp(mode, "wal") != 0) {
        vse__err(err, VSE_ESTORE, "cannot switch store '%s' to WAL mode",
                 c->path);
        vse__err_detail(err, "journal_mode stayed '%s'",
                        mode ? mode : "unknown");
        vse__err_hint(err, "WAL needs shared memory: keep the store on a "
                           "local file system");
        sqlite3_finalize(st);
        return VSE_ESTORE;
    }
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

static void close_conn(struct sqlite_conn *c)
{
    vse_sqlite_gate_close(c->gate);
    c->gate = NULL;
    vse__gc_leave(c->group);
    c->group = NULL;
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    for (int i = 0; i < LF_COUNT; i++) {
        sqlite3_finalize(c->list_st[i]);
        c->list_st[i] = NULL;
    }
    /* The last connection to close checkpoints the WAL into the file and
     * removes it. */
    sqlite3_close(c->db);
    c->db = NULL;
    free(c->path);
    c->path = NULL;
}

static int cannot_open(struct sqlite_conn *c, int rc, struct vse_error *err)
{
    int e = c->db ? sqlite3_system_errno(c->db) : 0;
    const char *slash = strrchr(c->path, '/');

    vse__err(err, VSE_ESTORE, "cannot open store '%s'", c->path);
    if (e != 0)
        vse__err_detail(err, "open: %s", strerror(e));
    else
        vse__err_detail(err, "sqlite: %s", sqlite3_errstr(rc));
    if (e == ENOENT && slash != NULL)
        vse__err_hint(err, "create the directory '%.*s' first",
                      (int)(slash - c->path), c->path);
    else if (e == EACCES || e == EPERM || e == EROFS)
        vse__err_hint(err,
                      "check the permissions of '%s' and its "
                      "directory",
                      c->path);
    else
        vse__err_hint(err, "give the path of a file (it is created if it "
                           "does not exist)");
    return VSE_ESTORE;
}

static int sqlite_open(struct vse_store *s, const char *rest,
                       struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int rc;

    rc = parse_url(c, rest, err);
    if (rc < 0)
        goto fail;
    rc = sqlite3_open_v2(c->path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        rc = rc == SQLITE_NOMEM ? vse__err(err, VSE_ENOMEM, "out of memory")
                                : cannot_open(c, rc, err);
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    rng_seed(&c->rng);
    sqlite3_busy_handler(c->db, busy_handler, c);
    sqlite3_wal_hook(c->db, wal_hook, c);
    /* Nothing before sqlite_accept() writes to the file: a refusal leaves
     * it exactly as it was.  sqlite_inspect() is the first read and so
     * the one that finds a file that is not a database. */
    return 0;
fail:
    if (c->path != NULL)
        close_conn(c);
    return rc;
}

/* The file is empty or a vse store (store.c judged it): make it ours. */
static int sqlite_accept(struct vse_store *s, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int rc = set_pragmas(c, err);

    if (rc == 0)
        rc = set_wal(c, err);
    if (rc < 0)
        return rc;
    /* Only now, with the file known to be a vse store: the gate file is
     * the one thing besides SQLite's own that vse puts beside it.  With
     * synchronous=NORMAL a commit takes ~30 us, less than a futex
     * hand-off, and the gate halved throughput at 4 writers; with FULL a
     * commit waits for fsync and the queue cut p99 by 4x at no cost. */
    c->gate = vse_sqlite_gate_open(c->path);
    c->ordered = c->synchronous_full;
    if (c->group_commit) {
        c->group = gc_join(c->path);
        if (c->group == NULL)
            return vse__err(err, VSE_ENOMEM,
                            "cannot set up group commit for '%s'", c->path);
    }
    return 0;
}

static void sqlite_close(struct vse_store *s)
{
    close_conn((struct sqlite_conn *)s);
}

/* ------------------------------------------------------------------ */
/* Resources: the hot path                                             */
/* ------------------------------------------------------------------ */

/* One SELECT by primary key; 0 with the row, or VSE_ENOTFOUND. */
static int read_resource(struct sqlite_conn *c, const char *id,
                         struct vse_resource *out, struct vse_error *err)
{
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_GET, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_row(st, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = VSE_ENOTFOUND;
    } else {
        rc = db_fail(c, rc, err, "read resource '%s'", id);
    }
    put_stmt(c, ST_GET, st);
    return rc;
}

static int sqlite_get(struct vse_store *s, const char *id,
                      struct vse_resource *out, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int rc = read_resource(c, id, out, err);

    if (rc == VSE_ENOTFOUND)
        return vse__err(err, VSE_ENOTFOUND, "resource '%s' not found", id);
    return rc;
}

/* Write the row: 1 if written, 0 if the CAS lost, or a VSE_E* code. */
static int write_row(struct sqlite_conn *c, const struct vse_change *ch,
                     struct vse_error *err)
{
    enum stmt_id id = ch->expect_version == 0 ? ST_INSERT : ST_UPDATE;
    sqlite3_stmt *st;
    int rc = get_stmt(c, id, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_row(st, ch->row);
    if (rc == SQLITE_OK && id == ST_UPDATE)
        rc = sqlite3_bind_int64(st, 15, ch->expect_version);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = sqlite3_changes(c->db) > 0;
    else
        rc = db_fail(c, rc, err, "write resource '%s'", ch->row->id);
    put_stmt(c, id, st);
    return rc;
}

static int append_history(struct sqlite_conn *c, const struct vse_event *ev,
                          int64_t *seq, struct vse_error *err)
{
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_HIST_INSERT, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_event(st, ev);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *seq = sqlite3_last_insert_rowid(c->db);
        rc = 0;
    } else {
        /* UNIQUE(resource, version) failing means history and row
         * disagree: a damaged store, not a lost race. */
        rc = db_fail(c, rc, err, "append history of '%s' version %lld",
                     ev->resource, (long long)ev->version);
    }
    put_stmt(c, ST_HIST_INSERT, st);
    return rc;
}

/*
 * The current row when the CAS lost, read inside the same transaction so
 * it is exactly the row that was in the way.
 */
static int conflict(struct sqlite_conn *c, const struct vse_change *ch,
                    struct vse_resource *cur, struct vse_error *err)
{
    struct vse_resource tmp;
    struct vse_resource *r = cur ? cur : &tmp;
    int rc = read_resource(c, ch->row->id, r, err);

    if (rc == VSE_ENOTFOUND) {
        memset(r, 0, sizeof(*r));
        vse__strlcpy(r->id, ch->row->id, sizeof(r->id));
        vse__err(err, VSE_ECONFLICT, "resource '%s' does not exist",
                 ch->row->id);
        return VSE_ECONFLICT;
    }
    if (rc < 0)
        return rc;
    vse__err(err, VSE_ECONFLICT, "resource '%s' is at version %lld, not %lld",
             ch->row->id, (long long)r->version,
             (long long)ch->expect_version);
    return VSE_ECONFLICT;
}

static int apply_locked(struct sqlite_conn *c, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *seq,
                        struct vse_error *err);

/* A statement answering one integer, with text ?1 (and ?3, ?4) and an
 * integer ?2; for the holds checks. */
static int query_int(struct sqlite_conn *c, enum stmt_id id, const char *t1,
                     int64_t i2, const char *t3, const char *t4, int64_t *out,
                     struct vse_error *err)
{
    sqlite3_stmt *st;
    int rc = get_stmt(c, id, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, t1);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, i2);
    if (rc == SQLITE_OK && t3 != NULL)
        rc = bind_text(st, 3, t3);
    if (rc == SQLITE_OK && t4 != NULL)
        rc = bind_text(st, 4, t4);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = db_fail(c, rc, err, "check the holds on '%s'", t1);
    }
    put_stmt(c, id, st);
    return rc;
}

/* Run a hold insert or delete. */
static int write_hold(struct sqlite_conn *c, const struct vse_change *ch,
                      int insert, struct vse_error *err)
{
    enum stmt_id id = insert ? ST_HOLD_INSERT : ST_HOLD_DELETE;
    const struct vse_hold *h = ch->take;
    sqlite3_stmt *st;
    int rc = get_stmt(c, id, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, ch->row->id);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, insert ? h->held : ch->release);
    if (insert) {
        if (rc == SQLITE_OK)
            rc = bind_text(st, 3, h->machine);
        if (rc == SQLITE_OK)
            rc = bind_text(st, 4, h->op);
        if (rc == SQLITE_OK)
            rc = bind_text(st, 5, vse_hold_mode_name(h->mode));
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 6, h->since);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = db_fail(c, rc, err, "%s the hold of '%s'",
                     insert ? "record" : "remove", ch->row->id);
    put_stmt(c, id, st);
    return rc;
}

/*
 * The holds part of a change, inside its transaction and before the row
 * is written: 0 to go on, 1 if a guard or take failed (nothing written).
 */
static int holds_allow(struct sqlite_conn *c, const struct vse_change *ch,
                       struct vse_error *err)
{
    int64_t n = 0;
    int rc;

    if (ch->guard != 0) {
        rc = query_int(c, ST_HOLD_GUARD, ch->row->id, ch->guard, NULL, NULL,
                       &n, err);
        if (rc < 0)
            return rc;
        if (n > 0)
            return 1;
    }
    if (ch->take != NULL) {
        rc = query_int(c, ST_HOLD_CHECK, ch->take->held, ch->held_version,
                       ch->row->id, vse_hold_mode_name(ch->take->mode), &n,
                       err);
        if (rc < 0)
            return rc;
        if (n == 0)
            return 1;
    }
    return 0;
}

/* A guard or take failed: the row as it is, at the version expected. */
static int held_conflict(struct sqlite_conn *c, const struct vse_change *ch,
                         struct vse_resource *cur, struct vse_error *err)
{
    struct vse_resource tmp;
    struct vse_resource *r = cur ? cur : &tmp;
    int rc = read_resource(c, ch->row->id, r, err);

    if (rc == VSE_ENOTFOUND) {
        memset(r, 0, sizeof(*r));
        vse__strlcpy(r->id, ch->row->id, sizeof(r->id));
    } else if (rc < 0) {
        return rc;
    }
    if (ch->take != NULL)
        return vse__err(err, VSE_ECONFLICT,
                        "the holds on '%s' or '%s' changed", ch->take->held,
                        ch->row->id);
    return vse__err(err, VSE_ECONFLICT, "the holds on '%s' changed",
                    ch->row->id);
}

/* A writer's turn at the gate (with synchronous=full), around every
 * write transaction; giving it back signals the commit to watchers. */
static uint64_t turn_take(struct sqlite_conn *c)
{
    return c->gate != NULL && c->ordered ? vse_sqlite_gate_enter(c->gate) : 0;
}

static void turn_give(struct sqlite_conn *c, uint64_t ticket, int committed)
{
    if (c->gate != NULL && c->ordered)
        vse_sqlite_gate_leave(c->gate, ticket);
    if (committed && c->gate != NULL)
        vse_sqlite_gate_committed(c->gate);
}

/* One transition in a transaction of its own. */
static int apply_alone(struct sqlite_conn *c, const struct vse_change *ch,
                       struct vse_resource *cur, int64_t *seq,
                       struct vse_error *err)
{
    uint64_t ticket = turn_take(c);
    int rc = apply_locked(c, ch, cur, seq, err);

    turn_give(c, ticket, rc == 0);
    return rc;
}

static int sqlite_apply(struct vse_store *s, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *seq,
                        struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int64_t got = 0;
    int rc;

    if (c->group != NULL)
        return vse__gc_apply(c->group, &gc_ops, c, ch, cur, seq, err);
    rc = apply_alone(c, ch, cur, &got, err);
    if (rc == 0 && seq != NULL)
        *seq = got;
    return rc;
}

/* One transition's writes, inside an open write transaction: 0,
 * VSE_ECONFLICT (nothing of it written; *cur the row in the way), or a
 * store error. */
static int apply_body(struct sqlite_conn *c, const struct vse_change *ch,
                      struct vse_resource *cur, int64_t *seq,
                      struct vse_error *err)
{
    /* BEGIN IMMEDIATE serialises writers: what holds_allow() read stays
     * true until the commit. */
    int rc = holds_allow(c, ch, err);

    if (rc == 1)
        rc = held_conflict(c, ch, cur, err);
    if (rc == 0) {
        rc = write_row(c, ch, err);
        if (rc == 0)
            rc = conflict(c, ch, cur, err);
        else if (rc == 1)
            rc = ch->quiet ? 0 : append_history(c, ch->ev, seq, err);
    }
    if (rc == 0 && ch->take != NULL)
        rc = write_hold(c, ch, 1, err);
    if (rc == 0 && ch->release != NULL)
        rc = write_hold(c, ch, 0, err);
    return rc;
}

/* The transaction itself; the writer's turn at the gate is held. */
static int apply_locked(struct sqlite_conn *c, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *seq,
                        struct vse_error *err)
{
    int64_t got = 0;
    int rc = run(c, ST_BEGIN, err, "begin a transaction");

    if (rc < 0)
        return rc;
    rc = apply_body(c, ch, cur, &got, err);
    if (rc == 0)
        rc = run(c, ST_COMMIT, err, "commit");
    if (rc < 0) {
        /* A failed COMMIT in SQLite leaves the transaction open or rolled
         * back, never committed: after this, nothing was written. */
        rollback(c);
        return rc;
    }
    if (seq != NULL)
        *seq = got;
    return 0;
}

/* A lone transition of the group. */
static void gc_one(void *ctx, struct vse_gc_req *q)
{
    q->rc = apply_alone(ctx, q->ch, q->cur, &q->seq, q->err);
}

/* The leader's transaction for a batch of two or more. */
static struct vse_gc_req *gc_batch(void *ctx, struct vse_gc_req *batch)
{
    struct sqlite_conn *c = ctx;
    struct vse_error e;
    struct vse_gc_req *culprit = NULL;
    uint64_t ticket = 0, retried = 0;
    int rc, wrote = 0;
    vse_error_clear(&e);
    ticket = turn_take(c);
    rc = run(c, ST_BEGIN, &e, "begin a transaction");
    for (struct vse_gc_req *q = batch; rc == 0 && q != NULL; q = q->next) {
        q->seq = 0;
        rc = exec_sql(c, "SAVEPOINT gc", &e, "set a savepoint");
        if (rc < 0)
            break;
        q->rc = apply_body(c, q->ch, q->cur, &q->seq, q->err);
        if (q->rc == 0) {
            wrote = 1;
            rc = exec_sql(c, "RELEASE gc", &e, "release a savepoint");
        } else if (q->rc == VSE_ECONFLICT) {
            rc = exec_sql(c, "ROLLBACK TO gc", &e, "roll back a savepoint");
            if (rc == 0)
                rc = exec_sql(c, "RELEASE gc", &e, "release a savepoint");
        } else {
            /* A store error: the transaction is lost for all, but only
             * this transition is known to cause it. */
            if (q->err != NULL)
                e = *q->err;
            rc = q->rc;
            culprit = q;
        }
    }
    if (rc == 0 && wrote)
        rc = run(c, ST_COMMIT, &e, "commit");
    if (rc == 0 && wrote) {
        uint64_t n = 0;

        for (struct vse_gc_req *q = batch; q != NULL; q = q->next)
            n++;
        vse__gc_count(n, 0);
    } else if (rc == 0)
        rollback(c);
    if (rc < 0) {
        /* Nothing of the batch was written: a refusal stays a refusal
         * (it read the row in the way), everything else fails. */
        rollback(c);
        for (struct vse_gc_req *q = batch; q != NULL; q = q->next)
            if (q->rc != VSE_ECONFLICT) {
                q->rc = rc;
                if (q->err != NULL)
                    *q->err = e;
            }
        wrote = 0;
    }
    turn_give(c, ticket, wrote);
    if (culprit == NULL)
        return batch;
    /* One transition's own error (a constraint, a full disk at its
     * insert) need not fail the others: each goes again alone, and is
     * answered by that. */
    for (struct vse_gc_req *q = batch; q != NULL; q = q->next)
        if (q != culprit && q->rc != VSE_ECONFLICT) {
            q->seq = 0;
            q->rc = apply_alone(c, q->ch, q->cur, &q->seq, q->err);
            retried++;
        }
    vse__gc_count(0, retried);
    return batch;
}

static const struct vse_gc_ops gc_ops = {gc_one, gc_batch};

/* ------------------------------------------------------------------ */
/* Reading many                                                        */
/* ------------------------------------------------------------------ */

/* Step st, calling cb per row; the callback may stop early. */
static int each_resource(struct sqlite_conn *c, sqlite3_stmt *st,
                         vse_resource_cb cb, void *ctx, struct vse_error *err,
                         const char *what)
{
    struct vse_resource r;
    int rc;

    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        read_row(st, &r);
        if (cb(ctx, &r) != 0)
            return 0;
    }
    if (rc != SQLITE_DONE)
        return db_fail(c, rc, err, "%s", what);
    return 0;
}

static int each_event(struct sqlite_conn *c, sqlite3_stmt *st,
                      vse_event_cb cb, void *ctx, struct vse_error *err)
{
    struct vse_event *e = vse__malloc(sizeof(*e));
    int rc;

    if (e == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        read_event(st, e);
        if (cb(ctx, e) != 0)
            break;
    }
    free(e);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_fail(c, rc, err, "read history");
    return 0;
}

static void list_sql(unsigned mask, char *buf, size_t size)
{
    size_t n = 0;
    const char *and = " WHERE ";

#define ADD(cond)                                                            \
    do {                                                                     \
        n += (size_t)snprintf(buf + n, size - n, "%s%s", and, cond);         \
        and = " AND ";                                                       \
    } while (0)
    n += (size_t)snprintf(buf, size, "SELECT %s FROM resources",
                          VSE_SQL_RESOURCE_COLS);
    if (mask & LF_MACHINE)
        ADD("machine = ?1");
    if (mask & LF_STATE)
        ADD("state = ?2");
    if (mask & LF_NOT_STATE)
        ADD("state <> ?6");
    if (mask & (LF_BUSY | LF_STUCK))
        ADD("op IS NOT NULL");
    if (mask & LF_STUCK)
        ADD("lease_expires < ?3");
    if (mask & LF_AFTER)
        ADD("id > ?4");
#undef ADD
    snprintf(buf + n, size - n, " ORDER BY id LIMIT ?5");
}

static int sqlite_list(struct vse_store *s, const struct vse_filter *f,
                       int64_t now, vse_resource_cb cb, void *ctx,
                       struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    static const struct vse_filter all;
    unsigned mask = 0;
    char sql[512];
    sqlite3_stmt *st;
    int rc;

    if (f == NULL)
        f = &all;
    if (f->machine != NULL && f->machine[0] != '\0')
        mask |= LF_MACHINE;
    if (f->state != NULL && f->state[0] != '\0')
        mask |= LF_STATE;
    if (f->not_state != NULL && f->not_state[0] != '\0')
        mask |= LF_NOT_STATE;
    if (f->busy)
        mask |= LF_BUSY;
    if (f->stuck)
        mask |= LF_STUCK;
    if (f->after_id != NULL && f->after_id[0] != '\0')
        mask |= LF_AFTER;
    list_sql(mask, sql, sizeof(sql));
    rc = acquire(c, &c->list_st[mask], sql, &st, err);
    if (rc < 0)
        return rc;
    /* Parameters a condition does not use are left unbound (NULL). */
    rc = SQLITE_OK;
    if (mask & LF_MACHINE)
        rc = bind_text(st, 1, f->machine);
    if (rc == SQLITE_OK && (mask & LF_STATE))
        rc = bind_text(st, 2, f->state);
    if (rc == SQLITE_OK && (mask & LF_STUCK))
        rc = sqlite3_bind_int64(st, 3, now);
    if (rc == SQLITE_OK && (mask & LF_AFTER))
        rc = bind_text(st, 4, f->after_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, sql_limit(f->limit));
    if (rc == SQLITE_OK && (mask & LF_NOT_STATE))
        rc = bind_text(st, 6, f->not_state);
    if (rc != SQLITE_OK)
        rc = db_fail(c, rc, err, "list resources");
    else
        rc = each_resource(c, st, cb, ctx, err, "list resources");
    release(&c->list_st[mask], st);
    return rc;
}

static int sqlite_history(struct vse_store *s, const char *id,
                          int64_t after_seq, size_t limit, vse_event_cb cb,
                          void *ctx, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    enum stmt_id which = id ? ST_HIST_ONE : ST_HIST_ALL;
    sqlite3_stmt *st;
    int p = 1;
    int rc = get_stmt(c, which, &st, err);

    if (rc < 0)
        return rc;
    rc = SQLITE_OK;
    if (id != NULL)
        rc = bind_text(st, p++, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, p++, after_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, p, sql_limit(limit));
    if (rc != SQLITE_OK)
        rc = db_fail(c, rc, err, "read history");
    else
        rc = each_event(c, st, cb, ctx, err);
    put_stmt(c, which, st);
    return rc;
}

/* Cold path (idempotency checks after a refusal): prepared per call. */
static int sqlite_find_event(struct vse_store *s,
                             const struct vse_event_query *q,
                             struct vse_event *out, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    char sql[512];
    sqlite3_stmt *st;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT %s FROM history WHERE resource = ?1%s%s%s%s "
             "ORDER BY version DESC LIMIT 1",
             VSE_SQL_HISTORY_COLS, q->op_id ? " AND op_id = ?2" : "",
             q->request_id ? " AND request_id = ?3" : "",
             q->kind ? " AND kind = ?4" : "",
             q->to ? " AND to_state = ?5" : "");
    rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "prepare a statement");
    rc = bind_text(st, 1, q->resource);
    /* Bound as given: "" matches nothing, as NULL columns hold "". */
    if (rc == SQLITE_OK && q->op_id)
        rc = sqlite3_bind_text(st, 2, q->op_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && q->request_id)
        rc = sqlite3_bind_text(st, 3, q->request_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && q->kind)
        rc = bind_text(st, 4, vse_kind_name(q->kind));
    if (rc == SQLITE_OK && q->to)
        rc = sqlite3_bind_text(st, 5, q->to, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_event(st, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = vse__err(err, VSE_ENOTFOUND, "no matching history row for '%s'",
                      q->resource);
    } else {
        rc = db_fail(c, rc, err, "read history of '%s'", q->resource);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_expired(struct vse_store *s, int64_t now, size_t limit,
                          vse_resource_cb cb, void *ctx,
                          struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_EXPIRED, &st, err);

    if (rc < 0)
        return rc;
    rc = sqlite3_bind_int64(st, 1, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, sql_limit(limit));
    if (rc != SQLITE_OK)
        rc = db_fail(c, rc, err, "list expired leases");
    else
        rc = each_resource(c, st, cb, ctx, err, "list expired leases");
    put_stmt(c, ST_EXPIRED, st);
    return rc;
}

static int sqlite_last_seq(struct vse_store *s, int64_t *seq,
                           struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_LAST_SEQ, &st, err);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = db_fail(c, rc, err, "read the last sequence number");
    }
    put_stmt(c, ST_LAST_SEQ, st);
    return rc;
}

/* Run a one-off statement with up to three parameters; counts changes. */
static int purge_step(struct sqlite_conn *c, const char *sql, int64_t before,
                      const struct vse_state_ref *t, int64_t *count,
                      struct vse_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return db_fail(c, rc, err, "prepare a statement");
    rc = sqlite3_bind_int64(st, 1, before);
    if (rc == SQLITE_OK && t != NULL)
        rc = bind_text(st, 2, t->machine);
    if (rc == SQLITE_OK && t != NULL)
        rc = bind_text(st, 3, t->state);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *count += sqlite3_changes(c->db);
        rc = 0;
    } else {
        rc = db_fail(c, rc, err, "purge history");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_purge(struct vse_store *s, int64_t before,
                        const struct vse_state_ref *terminal, size_t n,
                        struct vse_purge_stats *stats, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    struct vse_purge_stats st = {0, 0};
    int rc = run(c, ST_BEGIN, err, "begin a transaction");

    if (rc < 0)
        return rc;
    /* The latest row of a resource stays: it is what its row agrees
     * with, and what the UNIQUE(resource, version) max lookup finds. */
    rc = purge_step(c,
                    "DELETE FROM history WHERE at < ?1 AND version < "
                    "(SELECT max(h.version) FROM history h "
                    "WHERE h.resource = history.resource)",
                    before, NULL, &st.history_rows, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = purge_step(c,
                        "DELETE FROM history WHERE resource IN "
                        "(SELECT id FROM resources WHERE updated < ?1 AND "
                        "machine = ?2 AND state = ?3 AND op IS NULL)",
                        before, &terminal[i], &st.history_rows, err);
        if (rc == 0)
            rc = purge_step(c,
                            "DELETE FROM resources WHERE updated < ?1 AND "
                            "machine = ?2 AND state = ?3 AND op IS NULL",
                            before, &terminal[i], &st.resources, err);
    }
    if (rc == 0)
        rc = run(c, ST_COMMIT, err, "commit");
    if (rc < 0) {
        rollback(c);
        return rc;
    }
    if (stats != NULL)
        *stats = st;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Machine pins                                                        */
/* ------------------------------------------------------------------ */

static int sqlite_pin_get(struct vse_store *s, const char *machine,
                          struct vse_pin *out, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_PIN_GET, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, machine);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *def = (const char *)sqlite3_column_text(st, 2);

        memset(out, 0, sizeof(*out));
        vse__strlcpy(out->machine, machine, sizeof(out->machine));
        out->version = sqlite3_column_int(st, 0);
        col_text(st, 1, out->hash, sizeof(out->hash));
        out->pinned_at = sqlite3_column_int64(st, 3);
        out->definition = vse__strdup(def ? def : "");
        rc = out->definition ? 0 : vse__err(err, VSE_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = vse__err(err, VSE_ENOTFOUND, "machine '%s' is not pinned",
                      machine);
    } else {
        rc = db_fail(c, rc, err, "read the pin of machine '%s'", machine);
    }
    put_stmt(c, ST_PIN_GET, st);
    return rc;
}

static int sqlite_pin_put(struct vse_store *s, const struct vse_pin *p,
                          struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st;
    int rc = get_stmt(c, ST_PIN_PUT, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, p->machine);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, p->version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, p->hash, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 4, p->definition ? p->definition : "", -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, p->pinned_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = db_fail(c, rc, err, "pin machine '%s'", p->machine);
    put_stmt(c, ST_PIN_PUT, st);
    return rc;
}

struct repin_scan {
    vse_store_repin_check_fn *check;
    void *ctx;
};

static int repin_each(void *ctx, const struct vse_resource *r)
{
    struct repin_scan *sc = ctx;

    sc->check(sc->ctx, r);
    return 0;
}

/*
 * BEGIN IMMEDIATE holds the write lock from the start: no transition can
 * commit between reading the resources and replacing the pin, so the
 * check and the re-pin are one transaction.
 */
static int repin_locked(struct sqlite_conn *c, const char *expect_hash,
                        const struct vse_pin *p, const struct vse_event *ev,
                        vse_store_repin_check_fn *check, void *ctx,
                        int64_t *seq, struct vse_error *err)
{
    struct vse_filter f = {.machine = p->machine};
    struct repin_scan sc = {check, ctx};
    sqlite3_stmt *st = NULL;
    struct vse_pin cur;
    int rc = run(c, ST_BEGIN, err, "begin a transaction");

    if (rc < 0)
        return rc;
    memset(&cur, 0, sizeof(cur));
    rc = sqlite_pin_get(&c->base, p->machine, &cur, err);
    if (rc == 0 && strcmp(cur.hash, expect_hash) != 0)
        rc = vse__err(err, VSE_ECONFLICT,
                      "the pin of machine '%s' changed meanwhile (now "
                      "version %d, hash %s)",
                      p->machine, cur.version, cur.hash);
    free(cur.definition);
    if (rc == 0)
        rc = sqlite_list(&c->base, &f, 0, repin_each, &sc, err);
    if (rc == 0)
        rc = check(ctx, NULL);
    if (rc == 0) {
        rc = sqlite3_prepare_v2(c->db,
                                "UPDATE machines SET version = ?2, "
                                "hash = ?3, definition = ?4, pinned_at = ?5 "
                                "WHERE name = ?1 AND hash = ?6",
                                -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 1, p->machine, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int(st, 2, p->version);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 3, p->hash, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 4, p->definition, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, 5, p->pinned_at);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 6, expect_hash, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        sqlite3_finalize(st);
        rc = rc == SQLITE_DONE
                 ? 0
                 : db_fail(c, rc, err, "re-pin machine '%s'", p->machine);
    }
    if (rc == 0)
        rc = append_history(c, ev, seq, err);
    if (rc == 0)
        rc = run(c, ST_COMMIT, err, "commit");
    if (rc < 0)
        rollback(c);
    return rc;
}

static int sqlite_repin(struct vse_store *s, const char *expect_hash,
                        const struct vse_pin *p, const struct vse_event *ev,
                        vse_store_repin_check_fn *check, void *ctx,
                        int64_t *seq, struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int64_t got = 0;
    uint64_t ticket = 0;
    int rc;

    ticket = turn_take(c);
    rc = repin_locked(c, expect_hash, p, ev, check, ctx, &got, err);
    turn_give(c, ticket, rc == 0);
    if (rc == 0 && seq != NULL)
        *seq = got;
    return rc;
}

/*
 * SQLite has no notification to block on.  Every writer on this host
 * signals its commits through the gate file's futex word, so a watcher
 * sleeps there and reads the last sequence number only when something
 * was committed (a hand-off between two roles took half a poll interval
 * before, 10 ms on average, twice per create).  The signal is a hint:
 * the store's own last_seq decides, and a commit nobody signalled (a
 * writer on another host, which SQLite does not support anyway, or
 * without the gate) is still seen within WAIT_POLL_MS.  Without the
 * gate file the core polls.
 */
#define WAIT_POLL_MS 20
static int sqlite_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                       struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    int64_t deadline = vse__now_mono_us() + (int64_t)timeout_ms * 1000;

    if (c->gate == NULL)
        return -1; /* the core polls */
    for (;;) {
        uint32_t seen = vse_sqlite_gate_watch(c->gate);
        int64_t last = 0, left;
        int rc = sqlite_last_seq(s, &last, err);

        left = deadline - vse__now_mono_us();
        if (rc < 0 || last > after_seq || left <= 0 ||
            atomic_load(&c->base.interrupted)) {
            vse_sqlite_gate_unwatch(c->gate);
            return rc < 0 ? rc : last > after_seq;
        }
        if (left > WAIT_POLL_MS * 1000)
            left = WAIT_POLL_MS * 1000;
        vse_sqlite_gate_await(c->gate, seen, (long)left * 1000);
        vse_sqlite_gate_unwatch(c->gate);
    }
}

static int sqlite_holds(struct vse_store *s, const char *held,
                        const char *holder, vse_hold_cb cb, void *ctx,
                        struct vse_error *err)
{
    struct sqlite_conn *c = (struct sqlite_conn *)s;
    sqlite3_stmt *st;
    struct vse_hold h;
    int rc = get_stmt(c, ST_HOLDS, &st, err);

    if (rc < 0)
        return rc;
    rc = bind_text(st, 1, held);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, holder);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        char mode[16];

        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        memset(&h, 0, sizeof(h));
        col_text(st, 0, h.held, sizeof(h.held));
        col_text(st, 1, h.holder, sizeof(h.holder));
        col_text(st, 2, h.machine, sizeof(h.machine));
        col_text(st, 3, h.op, sizeof(h.op));
        col_text(st, 4, mode, sizeof(mode));
        h.mode = strcmp(mode, "exclusive") == 0 ? VSE_HOLD_EXCLUSIVE
                                                : VSE_HOLD_SHARED;
        h.since = sqlite3_column_int64(st, 5);
        if (cb(ctx, &h) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : db_fail(c, rc, err, "read holds");
    put_stmt(c, ST_HOLDS, st);
    return rc;
}

const struct vse_store_methods vse__store_sqlite = {
    .version = 3,
    .scheme = "sqlite",
    .conn_size = sizeof(struct sqlite_conn),
    .open = sqlite_open,
    .close = sqlite_close,
    .get = sqlite_get,
    .apply = sqlite_apply,
    .list = sqlite_list,
    .history = sqlite_history,
    .find_event = sqlite_find_event,
    .expired = sqlite_expired,
    .last_seq = sqlite_last_seq,
    .purge = sqlite_purge,
    .pin_get = sqlite_pin_get,
    .pin_put = sqlite_pin_put,
    .wait = sqlite_wait,
    .inspect = sqlite_inspect,
    .accept = sqlite_accept,
    .schema_begin = sqlite_schema_begin,
    .schema_end = sqlite_schema_end,
    .meta_set = sqlite_meta_set,
    .exec = sqlite_exec,
    .steps = steps,
    .nsteps = sizeof(steps) / sizeof(*steps),
    .repin = sqlite_repin,
    .holds = sqlite_holds,
};
