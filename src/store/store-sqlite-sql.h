/*
 * store-sqlite-sql.h - the SQL text of the SQLite store's hot path, and
 * its busy-wait parameters.  Only string and number macros: the store
 * (store-sqlite.c) and the raw-engine benchmark (bench/raw-sqlite.c)
 * include it so that the benchmark runs exactly the statements vse runs.
 */
#ifndef VSE_STORE_SQLITE_SQL_H
#define VSE_STORE_SQLITE_SQL_H

#define VSE_SQL_RESOURCE_COLS                                                \
    "id, machine, state, op, op_id, origin, owner, lease_expires, "          \
    "lease_ttl, since, updated, created, version, attrs"

#define VSE_SQL_HISTORY_COLS                                                 \
    "seq, resource, version, machine, kind, op, op_id, from_state, "         \
    "to_state, owner, at, request_id, reason"

/* ?1 id */
#define VSE_SQL_GET                                                          \
    "SELECT " VSE_SQL_RESOURCE_COLS " FROM resources WHERE id = ?1"

/* ?1..?14 the row in VSE_SQL_RESOURCE_COLS order, ?15 expected version */
#define VSE_SQL_UPDATE                                                       \
    "UPDATE resources SET machine = ?2, state = ?3, op = ?4, op_id = ?5, "   \
    "origin = ?6, owner = ?7, lease_expires = ?8, lease_ttl = ?9, "          \
    "since = ?10, updated = ?11, created = ?12, version = ?13, "             \
    "attrs = ?14 WHERE id = ?1 AND version = ?15"

/* ?1..?14 the row; an existing id changes nothing (changes() == 0) */
#define VSE_SQL_INSERT                                                       \
    "INSERT INTO resources(" VSE_SQL_RESOURCE_COLS ") "                      \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "  \
    "ON CONFLICT(id) DO NOTHING"

/* ?1..?12 the history row without seq, in VSE_SQL_HISTORY_COLS order */
#define VSE_SQL_HISTORY_INSERT                                               \
    "INSERT INTO history(resource, version, machine, kind, op, op_id, "      \
    "from_state, to_state, owner, at, request_id, reason) "                  \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"

#define VSE_SQL_BEGIN "BEGIN IMMEDIATE"
#define VSE_SQL_COMMIT "COMMIT"
#define VSE_SQL_ROLLBACK "ROLLBACK"

/*
 * The busy handler sleeps a random time in [MIN, MIN + spread) us, the
 * spread growing by GROW us per retry up to MAX: short, randomised waits
 * keep every waiter polling often, so the lock goes to roughly whoever is
 * next rather than to the process that just released it (SQLite's own
 * handler backs off to many milliseconds; see FIELD-NOTES.md).
 */
#define VSE_SQLITE_BUSY_MIN_US 20
#define VSE_SQLITE_BUSY_SPREAD_US 80
#define VSE_SQLITE_BUSY_GROW_US 4
#define VSE_SQLITE_BUSY_MAX_US 400

/*
 * Checkpoints.  Writers that poll for the lock keep starting read
 * transactions, so SQLite's PASSIVE auto-checkpoint never catches up with
 * them and the WAL is never restarted: measured here, it grew by 50-300
 * MB/s under 4 writers.  A commit that leaves the WAL at CKPT_PAGES pages
 * or more runs a RESTART checkpoint instead, waiting at most CKPT_WAIT_MS
 * for readers; if they do not clear, the next commit tries again.
 */
#define VSE_SQLITE_CKPT_PAGES 1000
#define VSE_SQLITE_CKPT_WAIT_MS 20

#endif /* VSE_STORE_SQLITE_SQL_H */
