/*
 * store-pg-sql.h - the SQL text of the PostgreSQL store: its schema (with
 * the server-side functions of each version) and its hot-path statements.
 * Only string and number macros: the store (store-pg.c) and its tests
 * (tests/integration/pgmigrate.c, pgbatch.c) include it.  The raw-libpq
 * benchmark (bench/raw-pg.c) does not: it is the baseline, with SQL of
 * its own.
 */
#ifndef VSE_STORE_PG_SQL_H
#define VSE_STORE_PG_SQL_H

/* Same tables, columns and meaning as the SQLite store (store-sqlite.c);
 * "" is stored as NULL there and here. */
#define VSE_PG_RESOURCE_COLS                                                 \
    "id, machine, state, op, op_id, origin, owner, lease_expires, "          \
    "lease_ttl, since, updated, created, version, attrs"

/* The columns of schema version 1, frozen: its migration must create
 * exactly what it did when it shipped. */
#define VSE_PG_RESOURCE_COLS_V1                                              \
    "id, machine, state, op, op_id, origin, owner, lease_expires, "          \
    "lease_ttl, since, updated, created, version"

#define VSE_PG_HISTORY_COLS                                                  \
    "seq, resource, version, machine, kind, op, op_id, from_state, "         \
    "to_state, owner, at, request_id, reason"

/* LISTEN/NOTIFY channel: a wake-up only, the payload is the seq. */
#define VSE_PG_CHANNEL "vse_events"

/*
 * Schema version 1.  Ids sort by bytes (COLLATE "C"), as in SQLite,
 * whatever the database's locale.
 *
 * vse_seq is a one-row counter: the next history seq is taken by
 * updating it, and its row lock is held until COMMIT, so transactions
 * take seqs in the order they commit and a watcher reading `seq > N`
 * cannot miss a row that commits later with a lower seq (a plain
 * sequence hands out numbers at INSERT time, not in commit order).  It
 * also keeps the highest seq ever committed after purge removed rows, as
 * sqlite_sequence does.  The lock is taken last in the transaction, in
 * the server, with no client round trip while it is held: the serialised
 * tail is the history insert and the commit (WAL flush) only.
 *
 * vse_apply() is one transition in one round trip: the CAS on the row
 * (INSERT ... ON CONFLICT DO NOTHING when expect = 0), then seq, history
 * row and NOTIFY; or, if the CAS lost, the current row with o_seq = 0
 * (no row at all: it does not exist).  Each statement of a PL/pgSQL
 * function takes a fresh snapshot under READ COMMITTED, so the row
 * returned is the one that won, not one from before the wait.
 */
#define VSE_PG_SCHEMA_V1                                                     \
    "CREATE TABLE vse_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"      \
    "CREATE TABLE resources(id TEXT COLLATE \"C\" PRIMARY KEY,"              \
    " machine TEXT NOT NULL, state TEXT NOT NULL, op TEXT, op_id TEXT,"      \
    " origin TEXT, owner TEXT, lease_expires BIGINT,"                        \
    " lease_ttl BIGINT NOT NULL DEFAULT 0, since BIGINT NOT NULL,"           \
    " updated BIGINT NOT NULL, created BIGINT NOT NULL,"                     \
    " version BIGINT NOT NULL);"                                             \
    "CREATE INDEX resources_machine_state ON resources(machine, state);"     \
    "CREATE INDEX resources_lease ON resources(lease_expires)"               \
    " WHERE op IS NOT NULL;"                                                 \
    "CREATE TABLE history(seq BIGINT PRIMARY KEY,"                           \
    " resource TEXT COLLATE \"C\" NOT NULL, version BIGINT NOT NULL,"        \
    " machine TEXT NOT NULL, kind TEXT NOT NULL, op TEXT, op_id TEXT,"       \
    " from_state TEXT NOT NULL, to_state TEXT NOT NULL, owner TEXT,"         \
    " at BIGINT NOT NULL, request_id TEXT, reason TEXT,"                     \
    " UNIQUE(resource, version));"                                           \
    "CREATE INDEX history_request ON history(resource, request_id)"          \
    " WHERE request_id IS NOT NULL;"                                         \
    "CREATE TABLE machines(name TEXT PRIMARY KEY, version INTEGER NOT NULL," \
    " hash TEXT NOT NULL, definition TEXT NOT NULL,"                         \
    " pinned_at BIGINT NOT NULL);"                                           \
    "CREATE TABLE vse_seq(one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one)," \
    " seq BIGINT NOT NULL) WITH (fillfactor = 20);"                          \
    "INSERT INTO vse_seq(one, seq) VALUES (true, 0);"                        \
    "CREATE FUNCTION vse_apply(p_expect BIGINT,"                             \
    " p_id TEXT, p_machine TEXT, p_state TEXT, p_op TEXT, p_op_id TEXT,"     \
    " p_origin TEXT, p_owner TEXT, p_lease_expires BIGINT,"                  \
    " p_lease_ttl BIGINT, p_since BIGINT, p_updated BIGINT,"                 \
    " p_created BIGINT, p_version BIGINT,"                                   \
    " h_resource TEXT, h_version BIGINT, h_machine TEXT, h_kind TEXT,"       \
    " h_op TEXT, h_op_id TEXT, h_from TEXT, h_to TEXT, h_owner TEXT,"        \
    " h_at BIGINT, h_request_id TEXT, h_reason TEXT)"                        \
    " RETURNS TABLE(o_seq BIGINT, o_id TEXT, o_machine TEXT, o_state TEXT,"  \
    " o_op TEXT, o_op_id TEXT, o_origin TEXT, o_owner TEXT,"                 \
    " o_lease_expires BIGINT, o_lease_ttl BIGINT, o_since BIGINT,"           \
    " o_updated BIGINT, o_created BIGINT, o_version BIGINT)"                 \
    " LANGUAGE plpgsql AS $vse$\n"                                           \
    "DECLARE n BIGINT;\n"                                                    \
    "BEGIN\n"                                                                \
    "  IF p_expect = 0 THEN\n"                                               \
    "    INSERT INTO resources(" VSE_PG_RESOURCE_COLS_V1 ")\n"               \
    "    VALUES (p_id, p_machine, p_state, p_op, p_op_id, p_origin,"         \
    " p_owner, p_lease_expires, p_lease_ttl, p_since, p_updated,"            \
    " p_created, p_version)\n"                                               \
    "    ON CONFLICT (id) DO NOTHING;\n"                                     \
    "  ELSE\n"                                                               \
    "    UPDATE resources r SET machine = p_machine, state = p_state,"       \
    " op = p_op, op_id = p_op_id, origin = p_origin, owner = p_owner,"       \
    " lease_expires = p_lease_expires, lease_ttl = p_lease_ttl,"             \
    " since = p_since, updated = p_updated, created = p_created,"            \
    " version = p_version\n"                                                 \
    "    WHERE r.id = p_id AND r.version = p_expect;\n"                      \
    "  END IF;\n"                                                            \
    "  IF NOT FOUND THEN\n"                                                  \
    "    RETURN QUERY SELECT 0::BIGINT, r.id::TEXT, r.machine, r.state,"     \
    " r.op, r.op_id, r.origin, r.owner, r.lease_expires, r.lease_ttl,"       \
    " r.since, r.updated, r.created, r.version"                              \
    " FROM resources r WHERE r.id = p_id;\n"                                 \
    "    RETURN;\n"                                                          \
    "  END IF;\n"                                                            \
    "  UPDATE vse_seq s SET seq = s.seq + 1 RETURNING s.seq INTO n;\n"       \
    "  INSERT INTO history(" VSE_PG_HISTORY_COLS ")\n"                       \
    "  VALUES (n, h_resource, h_version, h_machine, h_kind, h_op, h_op_id,"  \
    " h_from, h_to, h_owner, h_at, h_request_id, h_reason);\n"               \
    "  PERFORM pg_notify('" VSE_PG_CHANNEL "', n::TEXT);\n"                  \
    "  o_seq := n;\n"                                                        \
    "  RETURN NEXT;\n"                                                       \
    "END\n"                                                                  \
    "$vse$;"

/*
 * Schema version 2: resources carry attrs (the caller's JSON object), and
 * vse_apply() writes and returns them.  Same function otherwise.
 */
#define VSE_PG_SCHEMA_V2                                                     \
    "ALTER TABLE resources ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';"     \
    "DROP FUNCTION vse_apply;"                                               \
    "CREATE FUNCTION vse_apply(p_expect BIGINT,"                             \
    " p_id TEXT, p_machine TEXT, p_state TEXT, p_op TEXT, p_op_id TEXT,"     \
    " p_origin TEXT, p_owner TEXT, p_lease_expires BIGINT,"                  \
    " p_lease_ttl BIGINT, p_since BIGINT, p_updated BIGINT,"                 \
    " p_created BIGINT, p_version BIGINT, p_attrs TEXT,"                     \
    " h_resource TEXT, h_version BIGINT, h_machine TEXT, h_kind TEXT,"       \
    " h_op TEXT, h_op_id TEXT, h_from TEXT, h_to TEXT, h_owner TEXT,"        \
    " h_at BIGINT, h_request_id TEXT, h_reason TEXT)"                        \
    " RETURNS TABLE(o_seq BIGINT, o_id TEXT, o_machine TEXT, o_state TEXT,"  \
    " o_op TEXT, o_op_id TEXT, o_origin TEXT, o_owner TEXT,"                 \
    " o_lease_expires BIGINT, o_lease_ttl BIGINT, o_since BIGINT,"           \
    " o_updated BIGINT, o_created BIGINT, o_version BIGINT, o_attrs TEXT)"   \
    " LANGUAGE plpgsql AS $vse$\n"                                           \
    "DECLARE n BIGINT;\n"                                                    \
    "BEGIN\n"                                                                \
    "  IF p_expect = 0 THEN\n"                                               \
    "    INSERT INTO resources(" VSE_PG_RESOURCE_COLS ")\n"                  \
    "    VALUES (p_id, p_machine, p_state, p_op, p_op_id, p_origin,"         \
    " p_owner, p_lease_expires, p_lease_ttl, p_since, p_updated,"            \
    " p_created, p_version, p_attrs)\n"                                      \
    "    ON CONFLICT (id) DO NOTHING;\n"                                     \
    "  ELSE\n"                                                               \
    "    UPDATE resources r SET machine = p_machine, state = p_state,"       \
    " op = p_op, op_id = p_op_id, origin = p_origin, owner = p_owner,"       \
    " lease_expires = p_lease_expires, lease_ttl = p_lease_ttl,"             \
    " since = p_since, updated = p_updated, created = p_created,"            \
    " version = p_version, attrs = p_attrs\n"                                \
    "    WHERE r.id = p_id AND r.version = p_expect;\n"                      \
    "  END IF;\n"                                                            \
    "  IF NOT FOUND THEN\n"                                                  \
    "    RETURN QUERY SELECT 0::BIGINT, r.id::TEXT, r.machine, r.state,"     \
    " r.op, r.op_id, r.origin, r.owner, r.lease_expires, r.lease_ttl,"       \
    " r.since, r.updated, r.created, r.version, r.attrs"                     \
    " FROM resources r WHERE r.id = p_id;\n"                                 \
    "    RETURN;\n"                                                          \
    "  END IF;\n"                                                            \
    "  UPDATE vse_seq s SET seq = s.seq + 1 RETURNING s.seq INTO n;\n"       \
    "  INSERT INTO history(" VSE_PG_HISTORY_COLS ")\n"                       \
    "  VALUES (n, h_resource, h_version, h_machine, h_kind, h_op, h_op_id,"  \
    " h_from, h_to, h_owner, h_at, h_request_id, h_reason);\n"               \
    "  PERFORM pg_notify('" VSE_PG_CHANNEL "', n::TEXT);\n"                  \
    "  o_seq := n;\n"                                                        \
    "  RETURN NEXT;\n"                                                       \
    "END\n"                                                                  \
    "$vse$;"

/*
 * Schema version 3: no counter lock.  A history row's seq is derived from
 * the id of the transaction that writes it (pg_current_xact_id(), kept in
 * the xid column) plus a constant offset (vse_meta 'seq_offset', chosen
 * at migration so that new seqs follow the old counter's).  One
 * transition is one transaction and writes one history row, so seqs are
 * unique and ordered as the writers' xids are.  Nothing is held to
 * COMMIT: concurrent commits group in one WAL flush.
 *
 * Readers of the log (the whole history after a seq, last_seq, and so
 * vse_wait, `vsectl watch`, /v1/events) return only rows whose xid is
 * below the xmin of their snapshot, the oldest transaction still running
 * (pg_snapshot_xmin(pg_current_snapshot())).  Every transaction that can
 * still commit has an xid at or above that xmin, so a seq above every row
 * returned: a reader that has seen seq N never later finds a row below N.
 * Rows of earlier releases get xid 0 (all committed).  vse_seq stays only
 * as a floor for last_seq after purge deleted the newest rows.
 *
 * vse_apply() no longer NOTIFYs: a notifying transaction takes one
 * database-wide lock from before its commit record until the commit is
 * flushed, which serialised commits as the counter did (measured: most
 * backends waiting on "Lock: object").  The store sends the wake-up
 * itself after the commit (VSE_PG_NOTIFY).  It keeps its signature, so
 * processes of the previous release still running during the migration
 * go on calling it (their watchers are woken by their poll, not NOTIFY).
 */
/* vse_apply()'s signature and its compare-and-swap, as schema 3 wrote
 * them and schema 6 keeps them (frozen: both must create what shipped). */
#define VSE_PG_APPLY_SIG_V3                                                  \
    "CREATE OR REPLACE FUNCTION vse_apply(p_expect BIGINT,"                  \
    " p_id TEXT, p_machine TEXT, p_state TEXT, p_op TEXT, p_op_id TEXT,"     \
    " p_origin TEXT, p_owner TEXT, p_lease_expires BIGINT,"                  \
    " p_lease_ttl BIGINT, p_since BIGINT, p_updated BIGINT,"                 \
    " p_created BIGINT, p_version BIGINT, p_attrs TEXT,"                     \
    " h_resource TEXT, h_version BIGINT, h_machine TEXT, h_kind TEXT,"       \
    " h_op TEXT, h_op_id TEXT, h_from TEXT, h_to TEXT, h_owner TEXT,"        \
    " h_at BIGINT, h_request_id TEXT, h_reason TEXT)"                        \
    " RETURNS TABLE(o_seq BIGINT, o_id TEXT, o_machine TEXT, o_state TEXT,"  \
    " o_op TEXT, o_op_id TEXT, o_origin TEXT, o_owner TEXT,"                 \
    " o_lease_expires BIGINT, o_lease_ttl BIGINT, o_since BIGINT,"           \
    " o_updated BIGINT, o_created BIGINT, o_version BIGINT, o_attrs TEXT)"   \
    " LANGUAGE plpgsql AS $vse$\n"

#define VSE_PG_APPLY_CAS_V3                                                  \
    "BEGIN\n"                                                                \
    "  IF p_expect = 0 THEN\n"                                               \
    "    INSERT INTO resources(" VSE_PG_RESOURCE_COLS ")\n"                  \
    "    VALUES (p_id, p_machine, p_state, p_op, p_op_id, p_origin,"         \
    " p_owner, p_lease_expires, p_lease_ttl, p_since, p_updated,"            \
    " p_created, p_version, p_attrs)\n"                                      \
    "    ON CONFLICT (id) DO NOTHING;\n"                                     \
    "  ELSE\n"                                                               \
    "    UPDATE resources r SET machine = p_machine, state = p_state,"       \
    " op = p_op, op_id = p_op_id, origin = p_origin, owner = p_owner,"       \
    " lease_expires = p_lease_expires, lease_ttl = p_lease_ttl,"             \
    " since = p_since, updated = p_updated, created = p_created,"            \
    " version = p_version, attrs = p_attrs\n"                                \
    "    WHERE r.id = p_id AND r.version = p_expect;\n"                      \
    "  END IF;\n"                                                            \
    "  IF NOT FOUND THEN\n"                                                  \
    "    RETURN QUERY SELECT 0::BIGINT, r.id::TEXT, r.machine, r.state,"     \
    " r.op, r.op_id, r.origin, r.owner, r.lease_expires, r.lease_ttl,"       \
    " r.since, r.updated, r.created, r.version, r.attrs"                     \
    " FROM resources r WHERE r.id = p_id;\n"                                 \
    "    RETURN;\n"                                                          \
    "  END IF;\n"

#define VSE_PG_SCHEMA_V3                                                     \
    "ALTER TABLE history ADD COLUMN xid xid8 NOT NULL DEFAULT '0';"          \
    "ALTER TABLE history ALTER COLUMN xid SET DEFAULT pg_current_xact_id();" \
    "INSERT INTO vse_meta(key, value) SELECT 'seq_offset',"                  \
    " greatest(0, greatest(s.seq, (SELECT max(seq) FROM history))"           \
    " - pg_snapshot_xmax(pg_current_snapshot())::TEXT::BIGINT + 1)::TEXT"    \
    " FROM vse_seq s;" VSE_PG_APPLY_SIG_V3                                   \
    "DECLARE n BIGINT;\n" VSE_PG_APPLY_CAS_V3                                \
    "  INSERT INTO history(seq, xid, resource, version, machine, kind, op,"  \
    " op_id, from_state, to_state, owner, at, request_id, reason)\n"         \
    "  SELECT pg_current_xact_id()::TEXT::BIGINT + m.value::BIGINT,"         \
    " pg_current_xact_id(), h_resource, h_version, h_machine, h_kind,"       \
    " h_op, h_op_id, h_from, h_to, h_owner, h_at, h_request_id, h_reason\n"  \
    "  FROM vse_meta m WHERE m.key = 'seq_offset'\n"                         \
    "  RETURNING history.seq INTO n;\n"                                      \
    "  o_seq := n;\n"                                                        \
    "  RETURN NEXT;\n"                                                       \
    "END\n"                                                                  \
    "$vse$;"

/*
 * The wake-up after a commit, %lld the seq: its own transaction, with
 * synchronous_commit off, so that it holds the NOTIFY lock only for
 * an instant (a wake-up needs no durability: the history is the truth).
 */
#define VSE_PG_NOTIFY                                                        \
    "BEGIN; SET LOCAL synchronous_commit = off;"                             \
    " SELECT pg_notify('" VSE_PG_CHANNEL "', '%lld'); COMMIT"

/* The xmin of the reading statement's snapshot: rows below it are final. */
#define VSE_PG_SETTLED "xid < pg_snapshot_xmin(pg_current_snapshot())"

/*
 * A store restored into another cluster (pg_dump, pg_restore) carries the
 * old cluster's transaction ids and seqs, while the new cluster's ids
 * start low: new seqs would sort before old ones and the old rows' xids
 * would stay above every reader's horizon.  Seen on open as the newest
 * row's xid or seq lying ahead of the cluster; VSE_PG_REBASE then, under
 * an EXCLUSIVE lock on history (no writer in flight), marks every row
 * settled and moves seq_base past the newest seq, counted from the
 * oldest transaction still running, so that every later row sorts after.
 */
#define VSE_PG_SEQ_AHEAD                                                     \
    "SELECT coalesce(h.xid >= pg_snapshot_xmax(pg_current_snapshot())"       \
    " OR h.seq >= (pg_snapshot_xmax(pg_current_snapshot())::TEXT::BIGINT"    \
    " + m.value::BIGINT) * 256, false)"                                      \
    " FROM vse_meta m LEFT JOIN (SELECT seq, xid FROM history"               \
    " ORDER BY seq DESC LIMIT 1) h ON true WHERE m.key = 'seq_base'"
#define VSE_PG_REBASE                                                        \
    "LOCK TABLE history IN EXCLUSIVE MODE;"                                  \
    "UPDATE history SET xid = '0' WHERE xid <> '0';"                         \
    "UPDATE vse_meta SET value = greatest(value::BIGINT,"                    \
    " ((SELECT max(seq) FROM history) + 256) / 256"                          \
    " - pg_snapshot_xmin(pg_current_snapshot())::TEXT::BIGINT)::TEXT"        \
    " WHERE key = 'seq_base'"

/* $1 id */
#define VSE_PG_GET                                                           \
    "SELECT " VSE_PG_RESOURCE_COLS " FROM resources WHERE id = $1"

/*
 * vse_apply()'s parameters, and those a transition's statements
 * (VSE_PG_STEP below, vse_apply_held()) begin with: $1 expected version,
 * $2..$15 the row in VSE_PG_RESOURCE_COLS order, $16..$27 the history row
 * in VSE_PG_HISTORY_COLS order less seq.  Their types ('i' BIGINT, 't'
 * TEXT):
 */
#define VSE_PG_ROW_TYPES "itttttttiiiiiit" /* $1..$15 */
#define VSE_PG_APPLY_TYPES VSE_PG_ROW_TYPES "titttttttitt"

/*
 * Version 5: holds between resources, one per holder, and
 * vse_apply_held(): vse_apply() with the holds part of a change before
 * it ($28..$35: the hold to take (held, holder's machine, op, mode,
 * since), the version the held resource must be at, the held resource
 * whose hold ends, the guard's modes).  Row locks order a take against
 * a guarded begin on the same resource: each locks that row first, and
 * in READ COMMITTED the holds query after the lock sees what the other
 * committed.  A failed guard or take answers o_seq -1 with the row (or
 * no row, for a create): nothing was written.
 */
#define VSE_PG_SCHEMA_V5                                                     \
    "CREATE TABLE holds (holder TEXT PRIMARY KEY, held TEXT NOT NULL,"       \
    " machine TEXT NOT NULL, op TEXT NOT NULL, mode TEXT NOT NULL"           \
    " CHECK (mode IN ('shared', 'exclusive')), since BIGINT NOT NULL);"      \
    "CREATE INDEX holds_held ON holds(held, holder);"                        \
    "CREATE FUNCTION vse_apply_held(p_expect BIGINT,"                        \
    " p_id TEXT, p_machine TEXT, p_state TEXT, p_op TEXT, p_op_id TEXT,"     \
    " p_origin TEXT, p_owner TEXT, p_lease_expires BIGINT,"                  \
    " p_lease_ttl BIGINT, p_since BIGINT, p_updated BIGINT,"                 \
    " p_created BIGINT, p_version BIGINT, p_attrs TEXT,"                     \
    " h_resource TEXT, h_version BIGINT, h_machine TEXT, h_kind TEXT,"       \
    " h_op TEXT, h_op_id TEXT, h_from TEXT, h_to TEXT, h_owner TEXT,"        \
    " h_at BIGINT, h_request_id TEXT, h_reason TEXT,"                        \
    " t_held TEXT, t_machine TEXT, t_op TEXT, t_mode TEXT, t_since BIGINT,"  \
    " t_held_version BIGINT, r_held TEXT, g_modes BIGINT)"                   \
    " RETURNS TABLE(o_seq BIGINT, o_id TEXT, o_machine TEXT, o_state TEXT,"  \
    " o_op TEXT, o_op_id TEXT, o_origin TEXT, o_owner TEXT,"                 \
    " o_lease_expires BIGINT, o_lease_ttl BIGINT, o_since BIGINT,"           \
    " o_updated BIGINT, o_created BIGINT, o_version BIGINT, o_attrs TEXT)"   \
    " LANGUAGE plpgsql AS $vse$\n"                                           \
    "DECLARE refused BOOLEAN := false; x RECORD;\n"                          \
    "BEGIN\n"                                                                \
    "  IF g_modes <> 0 THEN\n"                                               \
    "    PERFORM 1 FROM resources r WHERE r.id = p_id FOR UPDATE;\n"         \
    "    refused := EXISTS (SELECT 1 FROM holds h WHERE h.held = p_id AND"   \
    " ((h.mode = 'shared' AND (g_modes & 1) <> 0) OR"                        \
    " (h.mode = 'exclusive' AND (g_modes & 2) <> 0)));\n"                    \
    "  END IF;\n"                                                            \
    "  IF NOT refused AND t_held IS NOT NULL THEN\n"                         \
    "    PERFORM 1 FROM resources r WHERE r.id = t_held"                     \
    " AND r.version = t_held_version FOR UPDATE;\n"                          \
    "    refused := NOT FOUND OR EXISTS (SELECT 1 FROM holds h"              \
    " WHERE h.held = t_held AND h.holder <> p_id"                            \
    " AND (h.mode = 'exclusive' OR t_mode = 'exclusive'));\n"                \
    "  END IF;\n"                                                            \
    "  IF refused THEN\n"                                                    \
    "    RETURN QUERY SELECT -1::BIGINT, r.id::TEXT, r.machine, r.state,"    \
    " r.op, r.op_id, r.origin, r.owner, r.lease_expires, r.lease_ttl,"       \
    " r.since, r.updated, r.created, r.version, r.attrs"                     \
    " FROM resources r WHERE r.id = p_id;\n"                                 \
    "    RETURN;\n"                                                          \
    "  END IF;\n"                                                            \
    "  FOR x IN SELECT * FROM vse_apply(p_expect, p_id, p_machine, p_state," \
    " p_op, p_op_id, p_origin, p_owner, p_lease_expires, p_lease_ttl,"       \
    " p_since, p_updated, p_created, p_version, p_attrs, h_resource,"        \
    " h_version, h_machine, h_kind, h_op, h_op_id, h_from, h_to, h_owner,"   \
    " h_at, h_request_id, h_reason) LOOP\n"                                  \
    "    IF x.o_seq > 0 AND t_held IS NOT NULL THEN\n"                       \
    "      INSERT INTO holds(holder, held, machine, op, mode, since)"        \
    " VALUES (p_id, t_held, t_machine, t_op, t_mode, t_since);\n"            \
    "    END IF;\n"                                                          \
    "    IF x.o_seq > 0 AND r_held IS NOT NULL THEN\n"                       \
    "      DELETE FROM holds h WHERE h.holder = p_id AND h.held = r_held;\n" \
    "    END IF;\n"                                                          \
    "    o_seq := x.o_seq; o_id := x.o_id; o_machine := x.o_machine;"        \
    " o_state := x.o_state; o_op := x.o_op; o_op_id := x.o_op_id;"           \
    " o_origin := x.o_origin; o_owner := x.o_owner;"                         \
    " o_lease_expires := x.o_lease_expires; o_lease_ttl := x.o_lease_ttl;"   \
    " o_since := x.o_since; o_updated := x.o_updated;"                       \
    " o_created := x.o_created; o_version := x.o_version;"                   \
    " o_attrs := x.o_attrs;\n"                                               \
    "    RETURN NEXT;\n"                                                     \
    "  END LOOP;\n"                                                          \
    "END\n"                                                                  \
    "$vse$;"

#define VSE_PG_APPLY_HELD                                                    \
    "SELECT * FROM vse_apply_held($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"  \
    " $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24," \
    " $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)"
#define VSE_PG_APPLY_HELD_TYPES "itttttttiiiiiittitttttttittttttiiti"

/*
 * Version 6: one transaction may append several history rows (group
 * commit, store-pg.c).  A row's seq is (xid + seq_base) * 256 + k, k
 * counting the rows its transaction appended before (vse_xact_row(), a
 * transaction-local setting), so seqs stay unique and ordered as the
 * writers' xids, and the readers' rule (VSE_PG_SETTLED) is unchanged.
 * seq_base is chosen so that new seqs follow every old one: history is
 * locked first (EXCLUSIVE: writers in flight have committed, later ones
 * wait), and a transaction that can still write has an xid at or above
 * the xmin of the snapshot after the lock.  seq_offset is left holding
 * text that does not cast to a number, so a call of the old body already
 * running when this commits fails with nothing written instead of
 * appending a seq out of order.
 */
#define VSE_PG_ROWS_PER_XACT 256
/* The next history seq of this transaction; m is vse_meta's seq_base row. */
#define VSE_PG_NEXT_SEQ                                                      \
    "(pg_current_xact_id()::TEXT::BIGINT + m.value::BIGINT) * 256"           \
    " + vse_xact_row()"
#define VSE_PG_SCHEMA_V6                                                     \
    "LOCK TABLE history IN EXCLUSIVE MODE;"                                  \
    "INSERT INTO vse_meta(key, value) SELECT 'seq_base',"                    \
    " ((greatest(s.seq, (SELECT coalesce(max(seq), 0) FROM history))"        \
    " + 256) / 256 - pg_snapshot_xmin(pg_current_snapshot())::TEXT::BIGINT)" \
    "::TEXT FROM vse_seq s;"                                                 \
    "UPDATE vse_meta SET value = 'replaced by seq_base (schema 6)'"          \
    " WHERE key = 'seq_offset';"                                             \
    "CREATE FUNCTION vse_xact_row() RETURNS BIGINT LANGUAGE plpgsql"         \
    " AS $vse$\n"                                                            \
    "DECLARE k BIGINT;\n"                                                    \
    "BEGIN\n"                                                                \
    "  k := coalesce(nullif(current_setting('vse.xact_rows', true), ''),"    \
    " '0')::BIGINT;\n"                                                       \
    "  IF k >= 256 THEN\n"                                                   \
    "    RAISE EXCEPTION 'vse: more than 256 history rows in one"            \
    " transaction';\n"                                                       \
    "  END IF;\n"                                                            \
    "  PERFORM set_config('vse.xact_rows', (k + 1)::TEXT, true);\n"          \
    "  RETURN k;\n"                                                          \
    "END\n"                                                                  \
    "$vse$;" VSE_PG_APPLY_SIG_V3 "DECLARE n BIGINT;\n" VSE_PG_APPLY_CAS_V3   \
    "  INSERT INTO history(seq, xid, resource, version, machine, kind, op,"  \
    " op_id, from_state, to_state, owner, at, request_id, reason)\n"         \
    "  SELECT " VSE_PG_NEXT_SEQ ", pg_current_xact_id(), h_resource,"        \
    " h_version, h_machine, h_kind, h_op, h_op_id, h_from, h_to, h_owner,"   \
    " h_at, h_request_id, h_reason\n"                                        \
    "  FROM vse_meta m WHERE m.key = 'seq_base'\n"                           \
    "  RETURNING history.seq INTO n;\n"                                      \
    "  o_seq := n;\n"                                                        \
    "  RETURN NEXT;\n"                                                       \
    "END\n"                                                                  \
    "$vse$;"

/*
 * The transition as one statement, without vse_apply() (schema 6, no
 * change to it): a PL/pgSQL call cost the server more than the work
 * (measured with perf at 16 clients: plpgsql_exec_function 20 % of all
 * samples, its compile, and vse_xact_row()'s setting reset at every
 * commit).  The history row is inserted from the compare-and-swap's
 * RETURNING, so it exists only if the row was written; its seq is numbered
 * as VSE_PG_NEXT_SEQ's, with the row's number in its transaction given by
 * the store ($28: 0 alone; in a batch, VSE_PG_BATCH_ROW0 + its place,
 * above what vse_xact_row() hands vse_apply_held() in the same batch).
 *
 * Parameters as vse_apply()'s (VSE_PG_APPLY_TYPES), then $28.  The answer: the seq and the
 * row written; or 0 and the row in the way (none: it does not exist).
 * That row is read with the statement's snapshot, taken before it waited
 * for a transaction that held the row: found still at the version
 * expected (or absent, for a create), it is the row from before the
 * winner, and the store reads it again.
 */
/* Group commit's batches of one process in flight at once (store-pg.c;
 * tests/integration/pgbatch.c fills them).  With one, the
 * server's parallelism was lost: 4 threads did 2,650 transitions/s
 * against 3,640 each alone; with two, 3,560 (16 threads: 3,760 against
 * 3,290).  Once a transition was one statement, four did better than two
 * in three interleaved runs of vsectl bench: 16 threads 6,642 / 6,205 /
 * 7,365 against 5,930 / 5,256 / 6,622; 4 threads the same within the
 * noise. */
#define VSE_PG_BATCHES_IN_FLIGHT 4
#define VSE_PG_BATCH_ROW0 128
/* The history insert from u's RETURNING, and the answer: the seq and u,
 * or (what VSE_PG_IN_THE_WAY follows) the seq that says why and the row
 * in the way. */
#define VSE_PG_HISTORY_INSERT                                                \
    " h AS (INSERT INTO history(seq, xid, resource, version, machine, kind," \
    " op, op_id, from_state, to_state, owner, at, request_id, reason)"       \
    " SELECT (pg_current_xact_id()::TEXT::BIGINT + m.value::BIGINT) * 256"   \
    " + $28, pg_current_xact_id(), $16, $17, $18, $19, $20, $21, $22, $23,"  \
    " $24, $25, $26, $27 FROM u, vse_meta m WHERE m.key = 'seq_base'"        \
    " RETURNING seq)"                                                        \
    " SELECT h.seq, u.* FROM h, u UNION ALL SELECT "
#define VSE_PG_IN_THE_WAY                                                    \
    ", " VSE_PG_RESOURCE_COLS " FROM resources"                              \
    " WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM u)"
#define VSE_PG_STEP_UPDATE                                                   \
    "WITH u AS (UPDATE resources SET machine = $3, state = $4, op = $5,"     \
    " op_id = $6, origin = $7, owner = $8, lease_expires = $9,"              \
    " lease_ttl = $10, since = $11, updated = $12, created = $13,"           \
    " version = $14, attrs = $15 WHERE id = $2 AND version = $1"
#define VSE_PG_STEP                                                          \
    VSE_PG_STEP_UPDATE " RETURNING " VSE_PG_RESOURCE_COLS                    \
                       ")," VSE_PG_HISTORY_INSERT                            \
                       "0::BIGINT" VSE_PG_IN_THE_WAY
/* $1 is 0 and unused: a create expects no row. */
#define VSE_PG_CREATE                                                        \
    "WITH u AS (INSERT INTO resources(" VSE_PG_RESOURCE_COLS ")"             \
    " VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)" \
    " ON CONFLICT (id) DO NOTHING RETURNING " VSE_PG_RESOURCE_COLS           \
    ")," VSE_PG_HISTORY_INSERT "0::BIGINT" VSE_PG_IN_THE_WAY
#define VSE_PG_STEP_TYPES VSE_PG_APPLY_TYPES "i"
/* A renew without a history row: the step's compare-and-swap alone, with
 * its parameters $1..$15 (VSE_PG_ROW_TYPES). */
#define VSE_PG_RENEW_ROW                                                     \
    VSE_PG_STEP_UPDATE " RETURNING version) SELECT * FROM u"

/*
 * A begin that may not run while its resource is held ($29: the modes
 * that refuse it, 1 shared, 2 exclusive), in the transaction where
 * VSE_PG_LOCK took the row first: a hold is taken (vse_apply_held())
 * only with the held row locked, so with the lock this statement's
 * snapshot, taken after it, has every hold there is, and none can come
 * before the commit.  In the one statement the snapshot would be older
 * than the lock wait.  The answer: -1 and the row when a hold refused it
 * (the row at the version expected), otherwise as VSE_PG_STEP's.
 */
#define VSE_PG_LOCK "SELECT 1 FROM resources WHERE id = $1 FOR UPDATE"
#define VSE_PG_STEP_GUARDED                                                  \
    VSE_PG_STEP_UPDATE                                                       \
    " AND NOT EXISTS (SELECT 1 FROM holds h"                                 \
    " WHERE h.held = $2 AND ((h.mode = 'shared' AND ($29 & 1) <> 0) OR"      \
    " (h.mode = 'exclusive' AND ($29 & 2) <> 0)))"                           \
    " RETURNING " VSE_PG_RESOURCE_COLS ")," VSE_PG_HISTORY_INSERT            \
    "CASE WHEN version = $1 THEN -1 ELSE 0 END" VSE_PG_IN_THE_WAY
#define VSE_PG_STEP_GUARDED_TYPES VSE_PG_STEP_TYPES "i"

#endif /* VSE_STORE_PG_SQL_H */
