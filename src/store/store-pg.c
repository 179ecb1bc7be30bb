/*
 * store-pg.c - the "postgresql:" store: one PostgreSQL database shared by
 * vse processes on many hosts.  Same tables and meaning as the SQLite
 * store; each transition is one round trip to a server-side function
 * (store-pg-sql.h), history seqs come from the writer's transaction id
 * and the log is read only below the oldest transaction still running, so
 * no commit waits for another (store-pg-sql.h, schema 3), and a
 * connection lost mid-call is settled by re-reading the history row the
 * call would have written before anything is answered (FIELD-NOTES.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "group.h"
#include "store-pg-sql.h"
#include "store.h"
#include "util.h"

/* How long a call keeps trying to reach a server that went away, in
 * total, before it answers; VSE_PG_RECONNECT_MS overrides (tests). */
#define RECONNECT_MS 10000
#define BACKOFF_MIN_MS 20
#define BACKOFF_MAX_MS 1000
/* How long settling an unknown outcome waits for the old session to end. */
#define TERMINATE_WAIT_MS 5000
/* A wait re-reads last_seq at least this often: a wake-up is sent after
 * the commit and is lost if the writer's connection drops in between. */
#define WAIT_RECHECK_MS 1000
/* A connection sends at most one wake-up per NOTIFY_EVERY_MS; a watcher
 * that got one polls last_seq every NOTIFY_EVERY_MS / 2 for twice that
 * long after it, and so sees the commits whose wake-up was skipped
 * (pg_wait()). */
#define NOTIFY_EVERY_MS 20
/* history() reads the whole log in pages of this many rows. */
#define HISTORY_PAGE 2000
/* Group commit's batches of one process in flight at once. */
#define PGC_INFLIGHT VSE_PG_BATCHES_IN_FLIGHT
/* Any constant: all vse processes on one database serialise migrations. */
#define MIGRATION_LOCK "7600533" /* "vse" */

#define OID_INT8 20
#define OID_TEXT 25

enum stmt_id {
    ST_GET,
    ST_STEP,
    ST_CREATE,
    ST_HIST_AT,
    ST_HIST_ONE,
    ST_HIST_ALL,
    ST_EXPIRED,
    ST_LAST_SEQ,
    ST_PIN_GET,
    ST_PIN_PUT,
    ST_APPLY_HELD,
    ST_HOLDS,
    ST_RENEW_ROW,
    ST_STEP_GUARDED,
    ST_LOCK,
    ST_COUNT
};

struct stmt {
    const char *name;
    const char *sql;
    const char *types; /* one letter per parameter: 'i' BIGINT, 't' TEXT */
};

static const struct stmt stmts[ST_COUNT] = {
    [ST_GET] = {"vse_get", VSE_PG_GET, "t"},
    [ST_STEP] = {"vse_step", VSE_PG_STEP, VSE_PG_STEP_TYPES},
    [ST_CREATE] = {"vse_create", VSE_PG_CREATE, VSE_PG_STEP_TYPES},
    [ST_HIST_AT] = {"vse_hist_at",
                    "SELECT " VSE_PG_HISTORY_COLS " FROM history "
                    "WHERE resource = $1 AND version = $2",
                    "ti"},
    [ST_HIST_ONE] = {"vse_hist_one",
                     "SELECT " VSE_PG_HISTORY_COLS " FROM history "
                     "WHERE resource = $1 AND seq > $2 "
                     "ORDER BY version LIMIT $3",
                     "tii"},
    [ST_HIST_ALL] = {"vse_hist_all",
                     "SELECT " VSE_PG_HISTORY_COLS " FROM history "
                     "WHERE seq > $1 AND " VSE_PG_SETTLED " "
                     "ORDER BY seq LIMIT $2",
                     "ii"},
    /* Unowned ops wait in a queue for a claim and never expire. */
    [ST_EXPIRED] = {"vse_expired",
                    "SELECT " VSE_PG_RESOURCE_COLS " FROM resources "
                    "WHERE op IS NOT NULL AND owner IS NOT NULL "
                    "AND lease_expires < $1 "
                    "ORDER BY lease_expires LIMIT $2",
                    "ii"},
    /* The newest settled row; vse_seq keeps the floor after a purge. */
    [ST_LAST_SEQ] = {"vse_last_seq",
                     "SELECT greatest((SELECT seq FROM vse_seq), "
                     "(SELECT max(seq) FROM history WHERE " VSE_PG_SETTLED
                     "))",
                     ""},
    [ST_PIN_GET] = {"vse_pin_get",
                    "SELECT version, hash, definition, pinned_at "
                    "FROM machines WHERE name = $1",
                    "t"},
    [ST_PIN_PUT] = {"vse_pin_put",
                    "INSERT INTO machines"
                    "(name, version, hash, definition, pinned_at) "
                    "VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (name) DO NOTHING",
                    "titti"},
    [ST_APPLY_HELD] = {"vse_apply_held", VSE_PG_APPLY_HELD,
                       VSE_PG_APPLY_HELD_TYPES},
    [ST_HOLDS] = {"vse_holds",
                  "SELECT held, holder, machine, op, mode, since FROM holds "
                  "WHERE ($1::TEXT IS NULL OR held = $1) AND "
                  "($2::TEXT IS NULL OR holder = $2) ORDER BY held, holder",
                  "tt"},
    [ST_RENEW_ROW] = {"vse_renew_row", VSE_PG_RENEW_ROW, VSE_PG_ROW_TYPES},
    [ST_STEP_GUARDED] = {"vse_step_guarded", VSE_PG_STEP_GUARDED,
                         VSE_PG_STEP_GUARDED_TYPES},
    [ST_LOCK] = {"vse_lock", VSE_PG_LOCK, "t"},
};

struct pg_conn {
    struct vse_store base; /* must be first */
    PGconn *conn;
    char *uri;         /* as libpq takes it; may hold a password */
    char where[300];   /* user@host:port/db, for messages: no password */
    unsigned prepared; /* bit per enum stmt_id, for this session */
    int listening;     /* LISTEN again after a reconnect */
    int64_t notified;  /* highest seq a notification named */
    int64_t woke_for;  /* after_seq of the last wait a notification ended */
    int notify_sent;   /* a wake-up's results are still to be read */
    int64_t hot_until; /* a watcher polls until then (mono ms) */
    int reconnect_ms;
    int group_commit;           /* on unless ?group_commit=off */
    struct vse_gc_group *group; /* this URI's, shared by the process:
                                 * group commit, the wake-ups' clock */
    /* Which server session this is, so that after losing it we can make
     * sure it is gone before judging what it did. */
    char backend_pid[16];
    char backend_start[32]; /* us since the epoch, as text */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The first line of a libpq message, without "ERROR:  " noise. */
static void first_line(const char *msg, char *buf, size_t size)
{
    size_t n;

    if (msg == NULL)
        msg = "";
    n = strcspn(msg, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
}

static int conn_ok(const struct pg_conn *c)
{
    return c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK;
}

/*
 * Report a failed call.  A dropped connection and a server that cannot
 * take more work are told apart from an error in the statement; none of
 * them is ever a conflict.
 */
static int pg_fail(struct pg_conn *c, const PGresult *res,
                   struct vse_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pg_fail(struct pg_conn *c, const PGresult *res,
                   struct vse_error *err, const char *fmt, ...)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : 0;
    const char *primary = res ? PQresultErrorField(res,
                                                   PG_DIAG_MESSAGE_PRIMARY)
                              : NULL;
    char what[256], line[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (primary != NULL)
        first_line(primary, line, sizeof(line));
    else
        first_line(c->conn ? PQerrorMessage(c->conn) : "out of memory", line,
                   sizeof(line));
    if (!conn_ok(c)) {
        vse__err(err, VSE_ESTORE,
                 "lost the connection to store '%s' while "
                 "trying to %s",
                 c->where, what);
        vse__err_detail(err, "postgresql: %s", line);
        vse__err_hint(err, "the next call reconnects; check that the "
                           "server is running");
        return VSE_ESTORE;
    }
    if (state != NULL &&
        (strncmp(state, "53", 2) == 0 || strcmp(state, "40001") == 0 ||
         strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
         strcmp(state, "57P03") == 0)) {
        vse__err(err, VSE_EBUSY, "store '%s' is busy: cannot %s", c->where,
                 what);
        vse__err_detail(err, "postgresql: %s (SQLSTATE %s)", line, state);
        vse__err_hint(err, "retry later");
        return VSE_EBUSY;
    }
    vse__err(err, VSE_ESTORE, "cannot %s in store '%s'", what, c->where);
    vse__err_detail(err, "postgresql: %s%s%s%s", line,
                    state ? " (SQLSTATE " : "", state ? state : "",
                    state ? ")" : "");
    if (state != NULL && strcmp(state, "42501") == 0)
        vse__err_hint(err, "the role needs CREATE on the schema and "
                           "SELECT/INSERT/UPDATE/DELETE on vse's tables");
    else if (state != NULL && strcmp(state, "23505") == 0)
        vse__err_hint(err, "history and resources disagree: run "
                           "'vsectl check'");
    return VSE_ESTORE;
}

static const char *txt(const char *s)
{
    return s == NULL || s[0] == '\0' ? NULL : s; /* "" is stored as NULL */
}

static void col_text(const PGresult *r, int row, int col, char *dst,
                     size_t size)
{
    vse__strlcpy(dst, PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col),
                 size);
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Read a row in VSE_PG_RESOURCE_COLS order, starting at column `at`. */
static void read_row(const PGresult *r, int row, int at,
                     struct vse_resource *out)
{
    memset(out, 0, sizeof(*out));
    col_text(r, row, at + 0, out->id, sizeof(out->id));
    col_text(r, row, at + 1, out->machine, sizeof(out->machine));
    col_text(r, row, at + 2, out->state, sizeof(out->state));
    col_text(r, row, at + 3, out->op, sizeof(out->op));
    col_text(r, row, at + 4, out->op_id, sizeof(out->op_id));
    col_text(r, row, at + 5, out->origin, sizeof(out->origin));
    col_text(r, row, at + 6, out->owner, sizeof(out->owner));
    out->lease_expires = col_i64(r, row, at + 7);
    out->lease_ttl = col_i64(r, row, at + 8);
    out->since = col_i64(r, row, at + 9);
    out->updated = col_i64(r, row, at + 10);
    out->created = col_i64(r, row, at + 11);
    out->version = col_i64(r, row, at + 12);
    col_text(r, row, at + 13, out->attrs, sizeof(out->attrs));
    if (out->attrs[0] == '\0')
        vse__strlcpy(out->attrs, "{}", sizeof(out->attrs));
}

static void read_event(const PGresult *r, int row, struct vse_event *e)
{
    char kind[16];

    memset(e, 0, sizeof(*e));
    e->seq = col_i64(r, row, 0);
    col_text(r, row, 1, e->resource, sizeof(e->resource));
    e->version = col_i64(r, row, 2);
    col_text(r, row, 3, e->machine, sizeof(e->machine));
    col_text(r, row, 4, kind, sizeof(kind));
    e->kind = vse_kind_parse(kind);
    col_text(r, row, 5, e->op, sizeof(e->op));
    col_text(r, row, 6, e->op_id, sizeof(e->op_id));
    col_text(r, row, 7, e->from, sizeof(e->from));
    col_text(r, row, 8, e->to, sizeof(e->to));
    col_text(r, row, 9, e->owner, sizeof(e->owner));
    e->at = col_i64(r, row, 10);
    col_text(r, row, 11, e->request_id, sizeof(e->request_id));
    col_text(r, row, 12, e->reason, sizeof(e->reason));
}

/* Parameters as text; numbers are formatted into `nums`. */
struct params {
    int n;
    const char *v[40];
    char nums[40][24];
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n++] = txt(s);
}

static void p_i64(struct params *p, int64_t x)
{
    snprintf(p->nums[p->n], sizeof(p->nums[0]), "%" PRId64, x);
    p->v[p->n] = p->nums[p->n];
    p->n++;
}

/* 0 means "none" for lease_expires, as "" does for text columns. */
static void p_opt_i64(struct params *p, int64_t x)
{
    if (x == 0)
        p->v[p->n++] = NULL;
    else
        p_i64(p, x);
}

/* LIMIT NULL is no limit. */
static void p_limit(struct params *p, size_t limit)
{
    if (limit == 0 || limit > (size_t)INT64_MAX)
        p->v[p->n++] = NULL;
    else
        p_i64(p, (int64_t)limit);
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */
/* ------------------------------------------------------------------ */

static int exec_ok(PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Run plain SQL (no parameters); 0 or a reported error. */
static int exec_sql(struct pg_conn *c, const char *sql, struct vse_error *err,
                    const char *what)
{
    PGresult *r = PQexec(c->conn, sql);
    int rc = 0;

    if (!exec_ok(r))
        rc = pg_fail(c, r, err, "%s", what);
    PQclear(r);
    return rc;
}

/* Server notices (a shutdown's WARNING) are not ours to print. */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/*
 * Set up a fresh session: note which backend it is, and LISTEN again if
 * this handle was listening.  Prepared statements are per session.
 */
static int session_init(struct pg_conn *c, struct vse_error *err)
{
    PGresult *r;
    int rc = 0;

    c->prepared = 0;
    c->notify_sent = 0;
    PQsetNoticeProcessor(c->conn, quiet, NULL);
    r = PQexec(c->conn,
               "SELECT pg_backend_pid(), "
               "(extract(epoch FROM backend_start) * 1000000)::BIGINT "
               "FROM pg_stat_activity WHERE pid = pg_backend_pid()");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        col_text(r, 0, 0, c->backend_pid, sizeof(c->backend_pid));
        col_text(r, 0, 1, c->backend_start, sizeof(c->backend_start));
    } else {
        rc = pg_fail(c, r, err, "identify the session");
    }
    PQclear(r);
    if (rc == 0 && c->listening) {
        rc = exec_sql(c, "LISTEN " VSE_PG_CHANNEL, err, "listen for events");
        c->hot_until = vse__now_mono_ms() + 2 * NOTIFY_EVERY_MS;
    }
    return rc;
}

static void describe_target(struct pg_conn *c)
{
    const char *host = c->conn ? PQhost(c->conn) : NULL;
    const char *port = c->conn ? PQport(c->conn) : NULL;
    const char *user = c->conn ? PQuser(c->conn) : NULL;
    const char *db = c->conn ? PQdb(c->conn) : NULL;

    snprintf(c->where, sizeof(c->where), "postgresql://%s%s%s%s%s/%s",
             user && *user ? user : "", user && *user ? "@" : "",
             host && *host ? host : "", port && *port ? ":" : "",
             port && *port ? port : "", db ? db : "");
}

static int cannot_connect(struct pg_conn *c, struct vse_error *err)
{
    char line[256];

    first_line(c->conn ? PQerrorMessage(c->conn) : "out of memory", line,
               sizeof(line));
    vse__err(err, VSE_ESTORE, "cannot connect to store '%s'", c->where);
    vse__err_detail(err, "postgresql: %s", line);
    if (strstr(line, "password") != NULL ||
        strstr(line, "authentication") != NULL)
        vse__err_hint(err, "give the password in the URL "
                           "(postgresql://USER:PASSWORD@HOST/DB), in "
                           "PGPASSWORD or in ~/.pgpass");
    else if (strstr(line, "does not exist") != NULL)
        vse__err_hint(err, "create the database and role first "
                           "(createdb, createuser)");
    else
        vse__err_hint(err, "check that PostgreSQL is running and accepts "
                           "connections at that host and port");
    return VSE_ESTORE;
}

static int connect_first(struct pg_conn *c, struct vse_error *err)
{
    /* Defaults first: what the URI says wins (expand_dbname). */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {"5", c->uri, NULL};
    int rc;

    c->conn = PQconnectdbParams(keys, vals, 1);
    describe_target(c);
    if (!conn_ok(c))
        return cannot_connect(c, err);
    rc = session_init(c, err);
    if (rc < 0)
        return rc;
    return 0;
}

/*
 * Make sure the connection works, reconnecting with backoff for up to
 * reconnect_ms in total.  The caller re-sends its statement: the session
 * is new, with nothing prepared.
 */
static int interrupted(const struct pg_conn *c)
{
    return atomic_load(&c->base.interrupted);
}

static int reconnect(struct pg_conn *c, struct vse_error *err)
{
    int64_t deadline = vse__now_mono_ms() + c->reconnect_ms;
    int64_t backoff = BACKOFF_MIN_MS;

    for (;;) {
        PQreset(c->conn);
        if (conn_ok(c) && session_init(c, NULL) == 0)
            return 0;
        if (vse__now_mono_ms() + backoff > deadline || interrupted(c))
            break;
        /* In slices: vse_interrupt() ends the wait within one. */
        for (int64_t end = vse__now_mono_ms() + backoff;
             vse__now_mono_ms() < end && !interrupted(c);) {
            int64_t left = end - vse__now_mono_ms();

            sleep_ms(left < 50 ? left : 50);
        }
        if (interrupted(c))
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    cannot_connect(c, err);
    if (interrupted(c)) {
        vse__err_hint(err, "interrupted (shutting down): not waiting for "
                           "the store");
        return VSE_ESTORE;
    }
    vse__err_hint(err,
                  "the store was unreachable for %d ms; the next call "
                  "tries again",
                  c->reconnect_ms);
    return VSE_ESTORE;
}

/*
 * The wake-up for watchers (VSE_PG_NOTIFY) is sent after the transition
 * committed and its answer read only before the next statement, so it
 * costs no round trip of its own.  It may be lost with the connection:
 * watchers re-read last_seq at least every WAIT_RECHECK_MS anyway.
 *
 * It is still a transaction of its own, and the server takes one global
 * lock for it: one per transition cost a third of the throughput at 4
 * and 16 clients (docs/benchmarks.md).  So the process sends at most one
 * per NOTIFY_EVERY_MS to a database, whichever connection commits (one
 * per connection was 13 % of the server's transactions at 16 clients).  A
 * commit whose wake-up is skipped follows, by less than
 * NOTIFY_EVERY_MS, one whose wake-up was sent; every
 * watcher woken by that one polls for 2 x NOTIFY_EVERY_MS after it, so
 * it finds the later commit within NOTIFY_EVERY_MS / 2.
 */
static void notify_send(struct pg_conn *c, int64_t seq)
{
    int64_t now = vse__now_mono_ms();
    char sql[192];

    if (!vse__gc_tick(c->group, now, NOTIFY_EVERY_MS))
        return;
    snprintf(sql, sizeof(sql), VSE_PG_NOTIFY, (long long)seq);
    if (PQsendQuery(c->conn, sql))
        c->notify_sent = 1;
}

static void notify_collect(struct pg_conn *c)
{
    PGresult *r;

    if (!c->notify_sent)
        return;
    c->notify_sent = 0;
    while ((r = PQgetResult(c->conn)) != NULL)
        PQclear(r);
}

static int ensure(struct pg_conn *c, struct vse_error *err)
{
    notify_collect(c);
    if (conn_ok(c))
        return 0;
    return reconnect(c, err);
}

static int prepare(struct pg_conn *c, enum stmt_id id, struct vse_error *err)
{
    const struct stmt *s = &stmts[id];
    Oid types[40];
    int n = (int)strlen(s->types);
    PGresult *r;
    int rc = 0;

    if (c->prepared & (1u << id))
        return 0;
    for (int i = 0; i < n; i++)
        types[i] = s->types[i] == 'i' ? OID_INT8 : OID_TEXT;
    r = PQprepare(c->conn, s->name, s->sql, n, types);
    if (!exec_ok(r))
        rc = pg_fail(c, r, err, "prepare a statement");
    else
        c->prepared |= 1u << id;
    PQclear(r);
    return rc;
}

/*
 * Run a prepared read.  Reads are safe to repeat, so a connection found
 * dropped (the server restarted while we were idle) is re-established and
 * the statement sent once more.  Returns the result (caller clears) or
 * NULL with err set.
 */
static int run_read(struct pg_conn *c, enum stmt_id id,
                    const struct params *p, PGresult **out,
                    struct vse_error *err, const char *what)
{
    for (int attempt = 0;; attempt++) {
        PGresult *r;
        int rc = ensure(c, err);

        if (rc == 0)
            rc = prepare(c, id, err);
        if (rc == 0) {
            r = PQexecPrepared(c->conn, stmts[id].name, p ? p->n : 0,
                               p ? p->v : NULL, NULL, NULL, 0);
            if (exec_ok(r)) {
                *out = r;
                return 0;
            }
            rc = pg_fail(c, r, err, "%s", what);
            PQclear(r);
        }
        if (conn_ok(c) || attempt > 0)
            return rc;
    }
}

/* The same for ad-hoc statements (cold paths), with retry. */
static int run_adhoc(struct pg_conn *c, const char *sql,
                     const struct params *p, PGresult **out,
                     struct vse_error *err, const char *what)
{
    for (int attempt = 0;; attempt++) {
        PGresult *r;
        int rc = ensure(c, err);

        if (rc == 0) {
            r = PQexecParams(c->conn, sql, p ? p->n : 0, NULL,
                             p ? p->v : NULL, NULL, NULL, 0);
            if (exec_ok(r)) {
                *out = r;
                return 0;
            }
            rc = pg_fail(c, r, err, "%s", what);
            PQclear(r);
        }
        if (conn_ok(c) || attempt > 0)
            return rc;
    }
}

/* ------------------------------------------------------------------ */
/* URL                                                                 */
/* ------------------------------------------------------------------ */

/*
 * vse's own parameter in the URI's query, group_commit=on|off, taken out
 * before libpq sees the URI (it refuses names it does not know).
 */
static int take_group_commit(struct pg_conn *c, struct vse_error *err)
{
    char *q = strchr(c->uri, '?');
    char *p, *out;

    c->group_commit = 1;
    if (q == NULL)
        return 0;
    for (p = out = q + 1; *p != '\0';) {
        size_t len = strcspn(p, "&");
        char *next = p + len + (p[len] == '&');

        if (strncmp(p, "group_commit=", 13) == 0) {
            const char *v = p + 13;
            size_t vlen = len - 13;

            if (vlen == 2 && strncmp(v, "on", 2) == 0) {
                c->group_commit = 1;
            } else if (vlen == 3 && strncmp(v, "off", 3) == 0) {
                c->group_commit = 0;
            } else {
                vse__err(err, VSE_EINVAL,
                         "store URL has an unknown value for group_commit "
                         "(on or off): '%.*s'",
                         (int)vlen, v);
                return VSE_EINVAL;
            }
        } else {
            if (out != q + 1)
                *out++ = '&';
            memmove(out, p, len);
            out += len;
        }
        p = next;
    }
    *out = '\0';
    if (out == q + 1)
        *q = '\0'; /* nothing left after the '?' */
    return 0;
}

static int parse_url(struct pg_conn *c, const char *rest,
                     struct vse_error *err)
{
    const char *env = getenv("VSE_PG_RECONNECT_MS");
    PQconninfoOption *opts;
    char *msg = NULL;
    size_t n;

    c->reconnect_ms = RECONNECT_MS;
    if (env != NULL && atoi(env) >= 0)
        c->reconnect_ms = atoi(env);
    if (strncmp(rest, "//", 2) != 0) {
        vse__err(err, VSE_EINVAL,
                 "store URL 'postgresql:%s' is not a "
                 "connection URI",
                 rest);
        vse__err_hint(err, "write it as postgresql://USER[:PASSWORD]@HOST"
                           "[:PORT]/DB[?PARAM=VALUE...]");
        return VSE_EINVAL;
    }
    n = strlen("postgresql:") + strlen(rest) + 1;
    c->uri = vse__malloc(n);
    if (c->uri == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    snprintf(c->uri, n, "postgresql:%s", rest);
    if (take_group_commit(c, err) < 0)
        return VSE_EINVAL;
    /* Syntax first, so that a typo is "bad input", not "store down". */
    opts = PQconninfoParse(c->uri, &msg);
    if (opts == NULL) {
        char line[256];

        first_line(msg ? msg : "out of memory", line, sizeof(line));
        PQfreemem(msg);
        vse__err(err, VSE_EINVAL,
                 "store URL is not a valid PostgreSQL "
                 "connection URI");
        vse__err_detail(err, "postgresql: %s", line);
        vse__err_hint(err, "write it as postgresql://USER[:PASSWORD]@HOST"
                           "[:PORT]/DB[?PARAM=VALUE...]");
        return VSE_EINVAL;
    }
    PQconninfoFree(opts);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Schema and migrations                                               */
/* ------------------------------------------------------------------ */

/*
 * steps[v] takes the schema from version v to v + 1 (0 is "no schema":
 * creating the store is step 0); store.c runs them, in one transaction,
 * so a store is at one version or the next, never between.  A new schema
 * version appends a step here.  The SQLite store keeps the same
 * numbering.
 */
static const struct vse_store_step steps[] = {
    {.sql = VSE_PG_SCHEMA_V1},
    {.sql = VSE_PG_SCHEMA_V2},
    {.sql = VSE_PG_SCHEMA_V3},
    /* Version 4: empty; it was set aside for retry budgets, which needed
     * no new column in the end.  Kept so the numbering stays shared. */
    {.sql = ""},
    {.sql = VSE_PG_SCHEMA_V5},
    {.sql = VSE_PG_SCHEMA_V6},
};

static int pg_exec(struct vse_store *s, const char *sql, const char *what,
                   struct vse_error *err)
{
    return exec_sql((struct pg_conn *)s, sql, err, what);
}

static int pg_meta_set(struct vse_store *s, const char *key,
                       const char *value, const char *what,
                       struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    const char *const v[2] = {key, value};
    PGresult *r = PQexecParams(c->conn,
                               "INSERT INTO vse_meta(key, value) VALUES "
                               "($1, $2) ON CONFLICT (key) "
                               "DO UPDATE SET value = excluded.value",
                               2, NULL, v, NULL, NULL, 0);
    int rc = 0;

    if (!exec_ok(r))
        rc = pg_fail(c, r, err, "%s", what);
    PQclear(r);
    return rc;
}

/* What the schema on the search path holds, without writing anything. */
static int pg_inspect(struct vse_store *s, struct vse_store_facts *in,
                      struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    PGresult *r;
    int rc = 0;

    in->where = c->where;
    in->hint = "use an empty database, or put vse in its own schema: "
               "?options=-csearch_path%3DSCHEMA";
    r = PQexec(c->conn, "SELECT to_regclass('vse_meta') IS NOT NULL, "
                        "to_regclass('resources') IS NOT NULL OR "
                        "to_regclass('history') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = pg_fail(c, r, err, "read the schema");
        PQclear(r);
        return rc;
    }
    in->has_meta = PQgetvalue(r, 0, 0)[0] == 't';
    if (PQgetvalue(r, 0, 1)[0] == 't')
        in->other = "it has a resources or history table but no vse_meta";
    PQclear(r);
    if (!in->has_meta)
        return 0;
    r = PQexec(c->conn, "SELECT key, value FROM vse_meta "
                        "WHERE key IN ('format', 'schema_version')");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = pg_fail(c, r, err, "read the schema version");
        PQclear(r);
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *k = PQgetvalue(r, i, 0);
        const char *v = PQgetvalue(r, i, 1);

        if (strcmp(k, "format") == 0)
            vse__strlcpy(in->format, v, sizeof(in->format));
        else
            in->version = atoi(v);
    }
    PQclear(r);
    return 0;
}

/*
 * A session advisory lock is taken *before* the transaction, so two
 * processes opening a new database at once create it once.  Taken inside
 * the transaction, the lock's own statement fixes the catalog snapshot
 * that to_regclass() reads after the wait: the second process would still
 * see no vse_meta and fail on CREATE TABLE ("relation already exists",
 * found by starting an API and a volume vsed at once on a new database).
 */
static int pg_schema_begin(struct vse_store *s, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    int rc = exec_sql(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", err,
                      "lock the schema");

    if (rc == 0) {
        rc = exec_sql(c, "BEGIN", err, "begin the schema transaction");
        if (rc < 0 && conn_ok(c))
            exec_sql(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", NULL,
                     "unlock the schema");
    }
    return rc;
}

static int pg_schema_end(struct vse_store *s, int commit,
                         struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    int rc = 0;

    if (commit)
        rc = exec_sql(c, "COMMIT", err, "commit the schema");
    if ((!commit || rc < 0) && conn_ok(c))
        exec_sql(c, "ROLLBACK", NULL, "roll back");
    /* A lost connection released it already. */
    if (conn_ok(c))
        exec_sql(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", NULL,
                 "unlock the schema");
    return rc;
}

/*
 * Seqs ahead of the cluster (store-pg-sql.h, VSE_PG_SEQ_AHEAD): rebase
 * once, under the migration lock; 1 if it did.
 */
static int rebase_if_ahead(struct pg_conn *c, struct vse_error *err)
{
    PGresult *r = PQexec(c->conn, VSE_PG_SEQ_AHEAD);
    int ahead, rc;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = pg_fail(c, r, err, "read the newest history row");
        PQclear(r);
        return rc;
    }
    ahead = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!ahead)
        return 0;
    rc = exec_sql(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", err,
                  "lock the schema");
    if (rc < 0)
        return rc;
    rc = exec_sql(c, "BEGIN", err, "begin the rebase");
    if (rc == 0)
        rc = exec_sql(c, VSE_PG_REBASE, err, "rebase history seqs");
    if (rc == 0)
        rc = exec_sql(c, "COMMIT", err, "commit the rebase");
    if (rc < 0 && conn_ok(c))
        exec_sql(c, "ROLLBACK", NULL, "roll back");
    if (conn_ok(c))
        exec_sql(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", NULL,
                 "unlock the schema");
    return rc < 0 ? rc : 1;
}

static int pg_settled(struct vse_store *s, struct vse_error *err)
{
    int rc = rebase_if_ahead((struct pg_conn *)s, err);

    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

static void close_conn(struct pg_conn *c)
{
    if (c->conn != NULL)
        notify_collect(c);
    PQfinish(c->conn);
    c->conn = NULL;
    free(c->uri);
    c->uri = NULL;
}

static int pg_open(struct vse_store *s, const char *rest,
                   struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    int rc = parse_url(c, rest, err);

    c->woke_for = -1;
    if (rc == 0)
        rc = connect_first(c, err);
    /* Joined with group commit off too: the wake-ups' clock is the
     * group's. */
    if (rc == 0) {
        c->group = vse__gc_join(c->uri, PGC_INFLIGHT);
        if (c->group == NULL)
            rc = vse__err(err, VSE_ENOMEM,
                          "cannot set up group commit for '%s'", c->where);
    }
    if (rc < 0) {
        close_conn(c);
        return rc;
    }
    return 0;
}

static void pg_close(struct vse_store *s)
{
    struct pg_conn *c = (struct pg_conn *)s;

    vse__gc_leave(c->group);
    c->group = NULL;
    close_conn(c);
}

/* ------------------------------------------------------------------ */
/* Resources: the hot path                                             */
/* ------------------------------------------------------------------ */

static int pg_get(struct vse_store *s, const char *id,
                  struct vse_resource *out, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    PGresult *r;
    int rc = 0;

    p_text(&p, id);
    rc = run_read(c, ST_GET, &p, &r, err, "read a resource");
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = vse__err(err, VSE_ENOTFOUND, "resource '%s' not found", id);
    else
        read_row(r, 0, 0, out);
    PQclear(r);
    return rc;
}

/* A change with a holds part goes through vse_apply_held(). */
static int held_change(const struct vse_change *ch)
{
    return ch->take != NULL || ch->release != NULL || ch->guard != 0;
}

/* The statement that applies ch (a renew without a history row aside);
 * a guarded step needs its row locked first in its transaction. */
static enum stmt_id apply_stmt(const struct vse_change *ch)
{
    if (ch->take != NULL || ch->release != NULL)
        return ST_APPLY_HELD;
    if (ch->guard != 0)
        return ST_STEP_GUARDED;
    return ch->expect_version == 0 ? ST_CREATE : ST_STEP;
}

/* The expected version and the row: VSE_PG_STEP's $1..$15, and all of a
 * renew without a history row (VSE_PG_RENEW_ROW). */
static void row_params(struct params *p, const struct vse_change *ch)
{
    const struct vse_resource *r = ch->row;

    p_i64(p, ch->expect_version);
    p_text(p, r->id);
    p_text(p, r->machine);
    p_text(p, r->state);
    p_text(p, r->op);
    p_text(p, r->op_id);
    p_text(p, r->origin);
    p_text(p, r->owner);
    p_opt_i64(p, r->lease_expires);
    p_i64(p, r->lease_ttl);
    p_i64(p, r->since);
    p_i64(p, r->updated);
    p_i64(p, r->created);
    p_i64(p, r->version);
    p_text(p, r->attrs[0] ? r->attrs : "{}");
}

/* k: the history row's number in its transaction (VSE_PG_STEP's $28). */
static void apply_params(struct params *p, const struct vse_change *ch,
                         int64_t k)
{
    const struct vse_event *e = ch->ev;

    row_params(p, ch);
    p_text(p, e->resource);
    p_i64(p, e->version);
    p_text(p, e->machine);
    p_text(p, vse_kind_name(e->kind));
    p_text(p, e->op);
    p_text(p, e->op_id);
    p_text(p, e->from);
    p_text(p, e->to);
    p_text(p, e->owner);
    p_i64(p, e->at);
    p_text(p, e->request_id);
    p_text(p, e->reason);
    if (apply_stmt(ch) != ST_APPLY_HELD) {
        p_i64(p, k);
        if (ch->guard != 0)
            p_i64(p, (int64_t)ch->guard);
        return;
    }
    p_text(p, ch->take ? ch->take->held : NULL);
    p_text(p, ch->take ? ch->take->machine : NULL);
    p_text(p, ch->take ? ch->take->op : NULL);
    p_text(p, ch->take ? vse_hold_mode_name(ch->take->mode) : NULL);
    p_i64(p, ch->take ? ch->take->since : 0);
    p_i64(p, ch->held_version);
    p_text(p, ch->release);
    p_i64(p, (int64_t)ch->guard);
}

/*
 * The answer of a step, a create or vse_apply_held(): 0 with *seq, or
 * VSE_ECONFLICT with the row that was in the way (cur->version 0: there
 * is none).
 */
static int apply_result(const PGresult *r, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *seq,
                        struct vse_error *err)
{
    struct vse_resource tmp;

    if (PQntuples(r) == 1 && col_i64(r, 0, 0) > 0) {
        if (seq != NULL)
            *seq = col_i64(r, 0, 0);
        return 0;
    }
    if (cur == NULL)
        cur = &tmp;
    if (PQntuples(r) == 0) {
        memset(cur, 0, sizeof(*cur));
        vse__strlcpy(cur->id, ch->row->id, sizeof(cur->id));
        if (ch->take != NULL && ch->expect_version == 0)
            return vse__err(err, VSE_ECONFLICT, "the holds on '%s' changed",
                            ch->take->held);
        return vse__err(err, VSE_ECONFLICT, "resource '%s' does not exist",
                        ch->row->id);
    }
    read_row(r, 0, 1, cur);
    if (col_i64(r, 0, 0) < 0)
        return vse__err(err, VSE_ECONFLICT, "the holds on '%s' changed",
                        ch->take ? ch->take->held : ch->row->id);
    return vse__err(err, VSE_ECONFLICT,
                    "resource '%s' is at version %" PRId64 ", not %" PRId64,
                    ch->row->id, cur->version, ch->expect_version);
}

/*
 * A step or create that lost answers the row in its way as its
 * statement's snapshot saw it (VSE_PG_STEP): still at the version
 * expected, or absent for a create, that is the row from before the
 * transaction it waited for, which has committed by now.
 */
static int stale_loser(const struct vse_change *ch,
                       const struct vse_resource *cur, int rc)
{
    return rc == VSE_ECONFLICT && cur != NULL && !held_change(ch) &&
           cur->version == ch->expect_version;
}

/* Reads the row in ch's way again: VSE_ECONFLICT with *cur (version 0:
 * there is none), or the read's error. */
static int reread_loser(struct pg_conn *c, const struct vse_change *ch,
                        struct vse_resource *cur, struct vse_error *err)
{
    int rc = pg_get(&c->base, ch->row->id, cur, err);

    if (rc == VSE_ENOTFOUND) {
        memset(cur, 0, sizeof(*cur));
        vse__strlcpy(cur->id, ch->row->id, sizeof(cur->id));
        return vse__err(err, VSE_ECONFLICT, "resource '%s' does not exist",
                        ch->row->id);
    }
    if (rc < 0)
        return rc;
    return vse__err(err, VSE_ECONFLICT,
                    "resource '%s' is at version %" PRId64 ", not %" PRId64,
                    ch->row->id, cur->version, ch->expect_version);
}

/*
 * Make sure the server session we lost can no longer commit anything:
 * after a crash it is gone; after a network cut it may still be running
 * our statement, so end it and wait.  1 gone, 0 still there, < 0 error.
 */
static int old_session_gone(struct pg_conn *c, const char *pid,
                            const char *start, struct vse_error *err)
{
    struct params p = {0};
    char sql[256];
    PGresult *r;
    int gone;

    p_text(&p, pid);
    p_text(&p, start);
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid, %d) FROM pg_stat_activity "
             "WHERE pid = $1::INT AND (extract(epoch FROM backend_start) "
             "* 1000000)::BIGINT = $2::BIGINT",
             TERMINATE_WAIT_MS);
    r = PQexecParams(c->conn, sql, p.n, NULL, p.v, NULL, NULL, 0);
    if (!exec_ok(r)) {
        pg_fail(c, r, err, "end the lost session");
        PQclear(r);
        return VSE_ESTORE;
    }
    gone = PQntuples(r) == 0 || PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return gone;
}

/*
 * After a lost connection: a new one, and the old server session surely
 * gone, so that what it did is final.  0, or VSE_ESTORE.
 */
static int settle_session(struct pg_conn *c)
{
    char pid[sizeof(c->backend_pid)], start[sizeof(c->backend_start)];
    int rc;

    memcpy(pid, c->backend_pid, sizeof(pid));
    memcpy(start, c->backend_start, sizeof(start));
    rc = reconnect(c, NULL);
    if (rc == 0)
        rc = old_session_gone(c, pid, start, NULL);
    return rc == 1 ? 0 : VSE_ESTORE;
}

/*
 * Whether a transition of a session now gone landed: the history row it
 * would have written is named by (resource, version), and that row, with
 * our kind, op_id and time, says which.  0 (landed: *seq set), 1
 * (nothing was written) or VSE_ESTORE (the store is unreachable).
 */
static int history_says(struct pg_conn *c, const struct vse_change *ch,
                        int64_t *seq)
{
    const struct vse_event *e = ch->ev;
    struct vse_event got;
    struct params p = {0};
    PGresult *r;
    int rc;

    p_text(&p, e->resource);
    p_i64(&p, e->version);
    if (prepare(c, ST_HIST_AT, NULL) < 0)
        return VSE_ESTORE;
    r = PQexecPrepared(c->conn, stmts[ST_HIST_AT].name, p.n, p.v, NULL, NULL,
                       0);
    rc = VSE_ESTORE;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        rc = 1;
        if (PQntuples(r) == 1) {
            read_event(r, 0, &got);
            if (got.kind == e->kind && got.at == e->at &&
                strcmp(got.op_id, e->op_id) == 0) {
                if (seq != NULL)
                    *seq = got.seq;
                rc = 0;
            }
        }
    }
    PQclear(r);
    return rc;
}

static int unknown_outcome(struct pg_conn *c, const struct vse_change *ch,
                           const char *lost, struct vse_error *err)
{
    if (ch->quiet) {
        vse__err(err, VSE_EUNKNOWN,
                 "outcome of the renew unknown: re-read resource '%s'",
                 ch->row->id);
        vse__err_detail(err,
                        "lost the connection to '%s' during the renew to "
                        "version %" PRId64 " (postgresql: %s)",
                        c->where, ch->row->version, lost);
        vse__err_hint(err, "renew again: a renew only extends the lease");
        return VSE_EUNKNOWN;
    }
    vse__err(err, VSE_EUNKNOWN,
             "outcome unknown until the store is back: "
             "re-read resource '%s'",
             ch->row->id);
    vse__err_detail(err,
                    "lost the connection to '%s' during the "
                    "transition to version %" PRId64 " (postgresql: %s)",
                    c->where, ch->row->version, lost);
    vse__err_hint(err,
                  "the transition happened if the history of '%s' "
                  "has version %" PRId64 " with op_id %s",
                  ch->row->id, ch->row->version,
                  ch->ev->op_id[0] ? ch->ev->op_id : "-");
    return VSE_EUNKNOWN;
}

/*
 * A renew without a history row whose answer was lost: the row says.
 * 0 landed, 1 not (the row is still at the version it was sent against,
 * or gone), VSE_ESTORE unreachable or no longer decidable (the row moved
 * on past it).
 */
static int row_says(struct pg_conn *c, const struct vse_change *ch)
{
    struct vse_resource now;
    int rc = pg_get(&c->base, ch->row->id, &now, NULL);

    if (rc == VSE_ENOTFOUND)
        return 1;
    if (rc < 0)
        return VSE_ESTORE;
    if (now.version == ch->expect_version)
        return 1;
    if (now.version == ch->row->version &&
        now.lease_expires == ch->row->lease_expires &&
        strcmp(now.op_id, ch->row->op_id) == 0)
        return 0;
    return VSE_ESTORE;
}

/*
 * The connection dropped after a transition (or a renew's UPDATE) may
 * have been sent, so it may or may not have committed: its history row (the
 * renew's: the row itself) says.  Returns 0 (it landed: *seq set), 1
 * (nothing was written) or VSE_EUNKNOWN (the store stayed unreachable, or
 * a renew's row moved on past it).
 */
static int settle(struct pg_conn *c, const struct vse_change *ch,
                  int64_t *seq, const char *lost, struct vse_error *err)
{
    int rc = settle_session(c);

    if (rc == 0)
        rc = ch->quiet ? row_says(c, ch) : history_says(c, ch, seq);
    if (rc >= 0)
        return rc;
    return unknown_outcome(c, ch, lost, err);
}

/*
 * Connected, with statement sid prepared: 0; 1 when the connection
 * dropped before anything was sent (try again); < 0 an error, with
 * nothing sent (`what`: "transition", "renew").
 */
static int ready(struct pg_conn *c, enum stmt_id sid, const char *what,
                 struct vse_error *err)
{
    int rc = ensure(c, err);

    if (rc < 0) {
        vse__err_detail(err, "nothing was sent: the %s was not applied",
                        what);
        return rc;
    }
    rc = prepare(c, sid, err);
    if (rc == 0 && sid == ST_STEP_GUARDED)
        rc = prepare(c, ST_LOCK, err);
    if (rc < 0 && conn_ok(c))
        return rc;
    return rc < 0 ? 1 : 0;
}

/* Its answer: one row updated, or the compare-and-swap lost (*cur the
 * row in the way, version 0 when it is gone). */
static int renew_result(struct pg_conn *c, PGresult *r,
                        const struct vse_change *ch, struct vse_resource *cur,
                        struct vse_error *err)
{
    struct vse_resource tmp;
    int n = PQntuples(r);

    PQclear(r);
    if (n == 1)
        return 0;
    return reread_loser(c, ch, cur != NULL ? cur : &tmp, err);
}

static int send_guarded(struct pg_conn *c, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *landed, char *lost,
                        size_t size, struct vse_error *err);

/* One transition in a transaction of its own. */
static int apply_alone(struct pg_conn *c, const struct vse_change *ch,
                       struct vse_resource *cur, int64_t *seq,
                       struct vse_error *err)
{
    struct params p = {0};
    char lost[256] = "";
    int64_t landed = 0;
    int rc = 0;
    enum stmt_id sid = ch->quiet ? ST_RENEW_ROW : apply_stmt(ch);

    if (ch->quiet)
        row_params(&p, ch);
    else
        apply_params(&p, ch, 0);
    /* A second attempt only after settle() proved the first wrote
     * nothing: the CAS on expect_version still guards it, so a call
     * happens once or not at all. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r;

        rc = ready(c, sid, "transition", err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        if (sid == ST_STEP_GUARDED) {
            rc = send_guarded(c, ch, cur, &landed, lost, sizeof(lost), err);
            if (rc != 2)
                break;
            rc = settle(c, ch, &landed, lost, err);
            if (rc <= 0)
                break;
            continue;
        }
        r = PQexecPrepared(c->conn, stmts[sid].name, p.n, p.v, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && ch->quiet) {
            rc = renew_result(c, r, ch, cur, err);
            break;
        }
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            rc = apply_result(r, ch, cur, &landed, err);
            PQclear(r);
            if (stale_loser(ch, cur, rc))
                rc = reread_loser(c, ch, cur, err);
            break;
        }
        if (conn_ok(c)) {
            /* The server answered with an error: the function's
             * transaction was rolled back. */
            rc = pg_fail(c, r, err, "apply a transition to '%s'",
                         ch->row->id);
            PQclear(r);
            return rc;
        }
        first_line(PQerrorMessage(c->conn), lost, sizeof(lost));
        PQclear(r);
        rc = settle(c, ch, &landed, lost, err);
        if (rc <= 0)
            break;
    }
    if (rc == 0) {
        if (seq != NULL)
            *seq = landed;
        if (landed > 0) /* a renew without a history row has no event */
            notify_send(c, landed);
        return 0;
    }
    if (rc < 0)
        return rc;
    vse__err(err, VSE_ESTORE,
             "connection lost; the transition was not "
             "applied");
    vse__err_detail(err,
                    "lost the connection to '%s' twice while applying "
                    "version %" PRId64 " of '%s' (postgresql: %s)",
                    c->where, ch->row->version, ch->row->id, lost);
    vse__err_hint(err, "retry: nothing was written");
    return VSE_ESTORE;
}

/* ------------------------------------------------------------------ */
/* Group commit (on unless ?group_commit=off)                          */
/* ------------------------------------------------------------------ */

/*
 * The transitions that this process's threads send to one database while
 * its batches are in flight go to the server together, in the next one:
 * one round trip (libpq's pipeline: BEGIN, each transition's statement,
 * COMMIT) and one commit for all of them.  A thread that finds fewer than
 * PGC_INFLIGHT batches in flight leads, on its own connection, with what
 * is queued (the queue: group.c); the others wait and are answered after
 * the COMMIT is durable.  A step writes nothing when its
 * compare-and-swap loses, so a lost one costs the others nothing; schema
 * 6 numbers several history rows of one transaction.  Nobody waits on
 * purpose: a transition waits at most for the batch in flight and its
 * own.  When the batch's transaction fails (a deadlock with another
 * process's batch, one transition's own error), nothing of it was written
 * and each transition goes again alone, answered by that.  A connection
 * lost mid-batch is settled as a single transition's is: each one's
 * history row says whether the batch landed.
 */
_Static_assert(VSE_GC_MAX <= VSE_PG_BATCH_ROW0 &&
                   VSE_PG_BATCH_ROW0 + VSE_GC_MAX <= VSE_PG_ROWS_PER_XACT,
               "a batch's rows fit a transaction, numbered apart from "
               "vse_xact_row()'s");

/* The next result of the pipeline; NULL (and *lost filled) when the
 * connection went. */
static PGresult *pipe_result(struct pg_conn *c, char *lost, size_t size)
{
    PGresult *r = PQgetResult(c->conn);

    if (r == NULL || !conn_ok(c)) {
        first_line(PQerrorMessage(c->conn), lost, size);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Reads the end of one statement's results (PQgetResult's NULL). */
static void pipe_end(struct pg_conn *c)
{
    PGresult *r;

    while ((r = PQgetResult(c->conn)) != NULL)
        PQclear(r);
}

enum batch_end {
    BATCH_COMMITTED, /* every member answered: won or refused */
    BATCH_FAILED,    /* the server refused the transaction: none written */
    BATCH_LOST       /* the connection went: settle each */
};

/* What the pipeline's answers leave: how it ended, and why. */
struct pipe_state {
    enum batch_end end;
    char *lost; /* the first error's first line */
    size_t size;
    PGresult *fatal; /* the first error, kept when asked for */
    int keep_fatal;
};

/*
 * One statement's answer in the pipeline: BEGIN, a row lock or COMMIT
 * (q NULL: want is its status), or a member's statement (its rc set).
 * Anything else than the answer wanted fails the batch.  -1 when the
 * connection went.
 */
static int pipe_answer(struct pg_conn *c, struct vse_gc_req *q,
                       ExecStatusType want, struct pipe_state *pe)
{
    PGresult *r = pipe_result(c, pe->lost, pe->size);

    if (r == NULL)
        return -1;
    if (PQresultStatus(r) != (q != NULL ? PGRES_TUPLES_OK : want))
        pe->end = BATCH_FAILED;
    else if (q != NULL)
        q->rc = apply_result(r, q->ch, q->cur, &q->seq, q->err);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && pe->lost[0] == '\0')
        first_line(PQresultErrorMessage(r), pe->lost, pe->size);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && pe->keep_fatal &&
        pe->fatal == NULL)
        pe->fatal = r;
    else
        PQclear(r);
    pipe_end(c);
    return 0;
}

/*
 * Sends the batch as one transaction and reads every answer.  The
 * members' rc are set for the committed case; on failure or loss the
 * caller decides.  `first`: the batch's first row number (its members
 * are numbered from it).
 */
static enum batch_end batch_send(struct pg_conn *c, struct vse_gc_req *batch,
                                 int64_t first, struct pipe_state *pe)
{
    PGresult *r;
    int ok;

    pe->end = BATCH_COMMITTED;
    pe->lost[0] = '\0';
    if (!PQenterPipelineMode(c->conn)) {
        first_line(PQerrorMessage(c->conn), pe->lost, pe->size);
        pe->end = conn_ok(c) ? BATCH_FAILED : BATCH_LOST;
        return pe->end;
    }
    ok = PQsendQueryParams(c->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (struct vse_gc_req *q = batch; ok && q != NULL; q = q->next) {
        enum stmt_id sid = apply_stmt(q->ch);
        struct params p = {0};

        if (sid == ST_STEP_GUARDED) {
            p_text(&p, q->ch->row->id);
            ok = PQsendQueryPrepared(c->conn, stmts[ST_LOCK].name, p.n, p.v,
                                     NULL, NULL, 0);
            p.n = 0;
        }
        apply_params(&p, q->ch, first++);
        ok = ok && PQsendQueryPrepared(c->conn, stmts[sid].name, p.n, p.v,
                                       NULL, NULL, 0);
    }
    ok = ok &&
         PQsendQueryParams(c->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
         PQpipelineSync(c->conn);
    if (!ok) {
        /* Not sent whole: settling ends the old session, so that nothing
         * of it can commit, and reads what did. */
        first_line(PQerrorMessage(c->conn), pe->lost, pe->size);
        goto gone;
    }
    if (pipe_answer(c, NULL, PGRES_COMMAND_OK, pe) < 0) /* BEGIN */
        goto gone;
    for (struct vse_gc_req *q = batch; q != NULL; q = q->next) {
        if (apply_stmt(q->ch) == ST_STEP_GUARDED &&
            pipe_answer(c, NULL, PGRES_TUPLES_OK, pe) < 0)
            goto gone;
        if (pipe_answer(c, q, PGRES_TUPLES_OK, pe) < 0)
            goto gone;
    }
    /* COMMIT: its answer comes after the commit is durable. */
    if (pipe_answer(c, NULL, PGRES_COMMAND_OK, pe) < 0)
        goto gone;
    /* The sync point. */
    if ((r = pipe_result(c, pe->lost, pe->size)) == NULL)
        goto gone;
    PQclear(r);
    PQexitPipelineMode(c->conn);
    if (pe->end == BATCH_FAILED)
        exec_sql(c, "ROLLBACK", NULL, "roll back a failed batch");
    return pe->end;
gone:
    while ((r = PQgetResult(c->conn)) != NULL)
        PQclear(r);
    PQexitPipelineMode(c->conn);
    return BATCH_LOST;
}

/*
 * A guarded step alone: its row lock and the step in one transaction,
 * one round trip.  The answer's rc (*landed set), or 2 when the
 * connection went (the caller settles).
 */
static int send_guarded(struct pg_conn *c, const struct vse_change *ch,
                        struct vse_resource *cur, int64_t *landed, char *lost,
                        size_t size, struct vse_error *err)
{
    struct vse_gc_req q = {.ch = ch, .cur = cur, .err = err};
    struct pipe_state pe = {.lost = lost, .size = size, .keep_fatal = 1};
    int rc = 2;

    switch (batch_send(c, &q, 0, &pe)) {
    case BATCH_COMMITTED:
        if (q.rc == 0)
            *landed = q.seq;
        rc = q.rc;
        break;
    case BATCH_FAILED:
        /* Rolled back: nothing was written. */
        rc = pg_fail(c, pe.fatal, err, "apply a transition to '%s'",
                     ch->row->id);
        break;
    case BATCH_LOST: break;
    }
    PQclear(pe.fatal);
    return rc;
}

/* Every statement a batch may send. */
static int prepare_batch(struct pg_conn *c, struct vse_error *err)
{
    static const enum stmt_id all[] = {ST_STEP, ST_CREATE, ST_STEP_GUARDED,
                                       ST_LOCK, ST_APPLY_HELD};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (prepare(c, all[i], err) < 0)
            return -1;
    return 0;
}

/* Sorted by resource id (stable: one resource's transitions keep their
 * order), so that two processes' batches lock rows in the same order. */
static struct vse_gc_req *batch_sort(struct vse_gc_req *batch)
{
    struct vse_gc_req *out = NULL;

    while (batch != NULL) {
        struct vse_gc_req *q = batch, **at = &out;

        batch = batch->next;
        while (*at != NULL && strcmp((*at)->ch->row->id, q->ch->row->id) <= 0)
            at = &(*at)->next;
        q->next = *at;
        *at = q;
    }
    return out;
}

/* A lone transition of the group. */
static void gc_one(void *ctx, struct vse_gc_req *q)
{
    q->rc = apply_alone(ctx, q->ch, q->cur, &q->seq, q->err);
}

/* The leader's work for a batch of two or more. */
static struct vse_gc_req *gc_batch(void *ctx, struct vse_gc_req *batch)
{
    struct pg_conn *c = ctx;
    struct vse_error e;
    char lost[256] = "";
    struct pipe_state pe = {.lost = lost, .size = sizeof(lost)};
    enum batch_end end;
    int64_t top = 0;
    uint64_t n = 0, retried = 0;
    int rc, unreachable = 0;

    batch = batch_sort(batch);
    vse_error_clear(&e);
    for (struct vse_gc_req *q = batch; q != NULL; q = q->next) {
        q->rc = VSE_ESTORE;
        q->seq = 0;
        n++;
    }
    if ((rc = ensure(c, &e)) < 0) {
        /* The store stayed unreachable for the whole reconnect budget:
         * that is every member's answer.  Sent again one by one, each
         * would wait out a budget of its own, the last n times over. */
        vse__err_detail(&e, "nothing was sent: the transition was not "
                            "applied");
        for (struct vse_gc_req *q = batch; q != NULL; q = q->next) {
            q->rc = rc;
            if (q->err != NULL)
                *q->err = e;
        }
        return batch;
    }
    if (prepare_batch(c, NULL) < 0)
        end = BATCH_FAILED; /* each alone says why */
    else
        end = batch_send(c, batch, VSE_PG_BATCH_ROW0, &pe);
    if (end == BATCH_COMMITTED) {
        for (struct vse_gc_req *q = batch; q != NULL; q = q->next) {
            if (q->rc == 0 && q->seq > top)
                top = q->seq;
            if (stale_loser(q->ch, q->cur, q->rc))
                q->rc = reread_loser(c, q->ch, q->cur, q->err);
        }
        vse__gc_count(n, 0);
        if (top > 0)
            notify_send(c, top);
        return batch;
    }
    if (end == BATCH_LOST)
        unreachable = settle_session(c) < 0;
    for (struct vse_gc_req *q = batch; q != NULL; q = q->next) {
        int rc = 1;

        if (end == BATCH_LOST && unreachable) {
            q->rc = unknown_outcome(c, q->ch, lost, q->err);
            continue;
        }
        if (end == BATCH_LOST) {
            rc = history_says(c, q->ch, &q->seq);
            if (rc < 0) {
                q->rc = unknown_outcome(c, q->ch, lost, q->err);
                continue;
            }
        }
        if (rc == 0) {
            q->rc = 0;
            continue;
        }
        /* Nothing of the batch was written: alone, this transition wins,
         * loses or fails on its own. */
        retried++;
        q->seq = 0;
        q->rc = apply_alone(c, q->ch, q->cur, &q->seq, q->err);
    }
    vse__gc_count(0, retried);
    return batch;
}

static const struct vse_gc_ops gc_ops = {gc_one, gc_batch};

static int pg_apply(struct vse_store *s, const struct vse_change *ch,
                    struct vse_resource *cur, int64_t *seq,
                    struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;

    /* A renew without a history row has no seq to batch under. */
    if (c->group_commit && !ch->quiet)
        return vse__gc_apply(c->group, &gc_ops, c, ch, cur, seq, err);
    return apply_alone(c, ch, cur, seq, err);
}

/* ------------------------------------------------------------------ */
/* Reading many                                                        */
/* ------------------------------------------------------------------ */

/*
 * Callbacks run after the result is in memory, so they may call the
 * store again.
 */
static int each_resource(PGresult *r, vse_resource_cb cb, void *ctx)
{
    struct vse_resource row;

    for (int i = 0; i < PQntuples(r); i++) {
        read_row(r, i, 0, &row);
        if (cb(ctx, &row) != 0)
            return 1;
    }
    return 0;
}

static int pg_list(struct vse_store *s, const struct vse_filter *f,
                   int64_t now, vse_resource_cb cb, void *ctx,
                   struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    static const struct vse_filter all;
    struct params p = {0};
    char sql[512];
    size_t n;
    const char *and = " WHERE ";
    PGresult *r;
    int rc;

    if (f == NULL)
        f = &all;
    n = (size_t)snprintf(sql, sizeof(sql), "SELECT %s FROM resources",
                         VSE_PG_RESOURCE_COLS);
#define ADD(...)                                                             \
    do {                                                                     \
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s", and);          \
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, __VA_ARGS__);        \
        and = " AND ";                                                       \
    } while (0)
    if (f->machine != NULL && f->machine[0] != '\0') {
        p_text(&p, f->machine);
        ADD("machine = $%d", p.n);
    }
    if (f->state != NULL && f->state[0] != '\0') {
        p_text(&p, f->state);
        ADD("state = $%d", p.n);
    }
    if (f->not_state != NULL && f->not_state[0] != '\0') {
        p_text(&p, f->not_state);
        ADD("state <> $%d", p.n);
    }
    if (f->busy || f->stuck)
        ADD("op IS NOT NULL");
    if (f->stuck) {
        p_i64(&p, now);
        ADD("lease_expires < $%d", p.n);
    }
    if (f->after_id != NULL && f->after_id[0] != '\0') {
        p_text(&p, f->after_id);
        ADD("id > $%d", p.n);
    }
#undef ADD
    p_limit(&p, f->limit);
    snprintf(sql + n, sizeof(sql) - n, " ORDER BY id LIMIT $%d::BIGINT", p.n);
    rc = run_adhoc(c, sql, &p, &r, err, "list resources");
    if (rc < 0)
        return rc;
    each_resource(r, cb, ctx);
    PQclear(r);
    return 0;
}

static int pg_history(struct vse_store *s, const char *id, int64_t after_seq,
                      size_t limit, vse_event_cb cb, void *ctx,
                      struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct vse_event *e = vse__malloc(sizeof(*e));
    size_t left = limit;
    int rc = 0;

    if (e == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    /* One resource's history comes in one result; the whole log in
     * pages by seq, so that memory stays bounded on a long history. */
    for (;;) {
        struct params p = {0};
        size_t page = id ? limit
                         : (left == 0 || left > HISTORY_PAGE ? HISTORY_PAGE
                                                             : left);
        PGresult *r;
        int rows, stop = 0;

        if (id != NULL)
            p_text(&p, id);
        p_i64(&p, after_seq);
        p_limit(&p, page);
        rc = run_read(c, id ? ST_HIST_ONE : ST_HIST_ALL, &p, &r, err,
                      "read history");
        if (rc < 0)
            break;
        rows = PQntuples(r);
        for (int i = 0; i < rows && !stop; i++) {
            read_event(r, i, e);
            after_seq = e->seq;
            stop = cb(ctx, e) != 0;
        }
        PQclear(r);
        if (id != NULL || stop || (size_t)rows < page)
            break;
        if (limit != 0) {
            left -= (size_t)rows;
            if (left == 0)
                break;
        }
    }
    free(e);
    return rc;
}

/* Cold path (idempotency checks after a refusal): one ad-hoc query. */
static int pg_find_event(struct vse_store *s, const struct vse_event_query *q,
                         struct vse_event *out, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    char sql[512];
    size_t n;
    PGresult *r;
    int rc = 0;

    p_text(&p, q->resource);
    n = (size_t)snprintf(sql, sizeof(sql),
                         "SELECT %s FROM history WHERE resource = $1",
                         VSE_PG_HISTORY_COLS);
    /* Bound as given: "" matches nothing, as NULL columns hold "". */
    if (q->op_id != NULL) {
        p.v[p.n++] = q->op_id;
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND op_id = $%d",
                              p.n);
    }
    if (q->request_id != NULL) {
        p.v[p.n++] = q->request_id;
        n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                              " AND request_id = $%d", p.n);
    }
    if (q->kind != 0) {
        p_text(&p, vse_kind_name(q->kind));
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND kind = $%d",
                              p.n);
    }
    if (q->to != NULL) {
        p.v[p.n++] = q->to;
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND to_state = $%d",
                              p.n);
    }
    snprintf(sql + n, sizeof(sql) - n, " ORDER BY version DESC LIMIT 1");
    rc = run_adhoc(c, sql, &p, &r, err, "read history");
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = vse__err(err, VSE_ENOTFOUND, "no matching history row for '%s'",
                      q->resource);
    else
        read_event(r, 0, out);
    PQclear(r);
    return rc;
}

static int pg_expired(struct vse_store *s, int64_t now, size_t limit,
                      vse_resource_cb cb, void *ctx, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    PGresult *r;
    int rc;

    p_i64(&p, now);
    p_limit(&p, limit);
    rc = run_read(c, ST_EXPIRED, &p, &r, err, "list expired leases");
    if (rc < 0)
        return rc;
    each_resource(r, cb, ctx);
    PQclear(r);
    return 0;
}

static int pg_last_seq(struct vse_store *s, int64_t *seq,
                       struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    PGresult *r;
    int rc = run_read(c, ST_LAST_SEQ, NULL, &r, err,
                      "read the last sequence number");

    if (rc < 0)
        return rc;
    *seq = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/*
 * The deleted rows `d` raise vse_seq, so that last_seq never goes back
 * (only settled ones: a row above the readers' horizon was never read).
 */
#define PURGE_FLOOR                                                          \
    "f AS (UPDATE vse_seq SET seq = greatest(vse_seq.seq, (SELECT "          \
    "max(d.seq) FROM d WHERE d." VSE_PG_SETTLED "))) "

/*
 * One statement, so one transaction: history older than `before` (but
 * never a resource's latest row), then each terminal resource with its
 * history.  Resources are deleted first and their history through
 * RETURNING, so a resource that a concurrent transition just moved out of
 * its terminal state keeps both (the DELETE re-checks the row it waited
 * for).
 */
static int pg_purge(struct vse_store *s, int64_t before,
                    const struct vse_state_ref *terminal, size_t n,
                    struct vse_purge_stats *stats, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct vse_purge_stats st = {0, 0};
    struct params p = {0};
    PGresult *r;
    int rc = ensure(c, err);

    if (rc < 0)
        return rc;
    rc = exec_sql(c, "BEGIN", err, "begin a transaction");
    if (rc < 0)
        return rc;
    p_i64(&p, before);
    r = PQexecParams(c->conn,
                     "WITH d AS (DELETE FROM history h WHERE "
                     "at < $1::BIGINT AND version < (SELECT max(h2.version) "
                     "FROM history h2 WHERE h2.resource = h.resource) "
                     "RETURNING h.seq, h.xid), " PURGE_FLOOR
                     "SELECT count(*) FROM d",
                     p.n, NULL, p.v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pg_fail(c, r, err, "purge history");
    else
        st.history_rows += col_i64(r, 0, 0);
    PQclear(r);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        p.n = 1;
        p_text(&p, terminal[i].machine);
        p_text(&p, terminal[i].state);
        r = PQexecParams(c->conn,
                         "WITH r AS (DELETE FROM resources WHERE "
                         "updated < $1::BIGINT AND machine = $2 AND "
                         "state = $3 AND op IS NULL RETURNING id), "
                         "d AS (DELETE FROM history WHERE resource IN "
                         "(SELECT id FROM r) RETURNING seq, xid), " PURGE_FLOOR
                         "SELECT (SELECT count(*) FROM r), "
                         "(SELECT count(*) FROM d)",
                         p.n, NULL, p.v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = pg_fail(c, r, err, "purge terminal resources");
        } else {
            st.resources += col_i64(r, 0, 0);
            st.history_rows += col_i64(r, 0, 1);
        }
        PQclear(r);
    }
    if (rc == 0)
        rc = exec_sql(c, "COMMIT", err, "commit the purge");
    if (rc < 0) {
        /* A purge lost with its connection is simply not done: it is
         * idempotent, the caller runs it again. */
        if (conn_ok(c))
            exec_sql(c, "ROLLBACK", NULL, "roll back");
        return rc;
    }
    if (stats != NULL)
        *stats = st;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Machine pins                                                        */
/* ------------------------------------------------------------------ */

static int pg_pin_get(struct vse_store *s, const char *machine,
                      struct vse_pin *out, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    PGresult *r;
    int rc = 0;

    p_text(&p, machine);
    rc = run_read(c, ST_PIN_GET, &p, &r, err, "read a machine pin");
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = vse__err(err, VSE_ENOTFOUND, "machine '%s' is not pinned",
                      machine);
    } else {
        memset(out, 0, sizeof(*out));
        vse__strlcpy(out->machine, machine, sizeof(out->machine));
        out->version = (int)col_i64(r, 0, 0);
        col_text(r, 0, 1, out->hash, sizeof(out->hash));
        out->pinned_at = col_i64(r, 0, 3);
        out->definition = vse__strdup(PQgetvalue(r, 0, 2));
        if (out->definition == NULL)
            rc = vse__err(err, VSE_ENOMEM, "out of memory");
    }
    PQclear(r);
    return rc;
}

/* INSERT ... ON CONFLICT DO NOTHING is idempotent: safe to resend. */
static int pg_pin_put(struct vse_store *s, const struct vse_pin *pin,
                      struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    PGresult *r;
    int rc;

    p_text(&p, pin->machine);
    p_i64(&p, pin->version);
    p.v[p.n++] = pin->hash;
    p.v[p.n++] = pin->definition ? pin->definition : "";
    p_i64(&p, pin->pinned_at);
    rc = run_read(c, ST_PIN_PUT, &p, &r, err, "pin a machine");
    if (rc < 0)
        return rc;
    PQclear(r);
    return 0;
}

/*
 * One statement inside the re-pin's transaction; 0 or a reported error
 * (*out set only on success, when out is not NULL).
 */
static int tx_exec(struct pg_conn *c, const char *sql, const struct params *p,
                   PGresult **out, struct vse_error *err, const char *what)
{
    PGresult *r = PQexecParams(c->conn, sql, p ? p->n : 0, NULL,
                               p ? p->v : NULL, NULL, NULL, 0);

    if (!exec_ok(r)) {
        int rc = pg_fail(c, r, err, "%s", what);

        PQclear(r);
        return rc;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/*
 * The lock on resources (SHARE ROW EXCLUSIVE: it conflicts with the ROW
 * EXCLUSIVE every transition's UPDATE or INSERT takes, and with itself)
 * holds every transition back from the moment the resources are read
 * until the new pin commits: the check and the re-pin are one
 * transaction, and two upgrades run one after the other.  Transitions
 * wait (they are not refused) for the few milliseconds this takes.
 */
static int repin_tx(struct pg_conn *c, const char *expect_hash,
                    const struct vse_pin *pin, const struct vse_event *ev,
                    vse_store_repin_check_fn *check, void *ctx, int64_t *seq,
                    struct vse_error *err)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = tx_exec(c, "LOCK TABLE resources IN SHARE ROW EXCLUSIVE MODE",
                     NULL, NULL, err, "lock the resources");

    if (rc < 0)
        return rc;
    p_text(&p, pin->machine);
    rc = tx_exec(c,
                 "SELECT hash, version FROM machines WHERE name = $1 FOR "
                 "UPDATE",
                 &p, &r, err, "read a machine pin");
    if (rc < 0)
        return rc;
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), expect_hash) != 0)
        rc = vse__err(err, VSE_ECONFLICT,
                      "the pin of machine '%s' changed meanwhile",
                      pin->machine);
    PQclear(r);
    if (rc < 0)
        return rc;
    rc = tx_exec(c,
                 "SELECT " VSE_PG_RESOURCE_COLS " FROM resources "
                 "WHERE machine = $1 ORDER BY id",
                 &p, &r, err, "list resources");
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct vse_resource row;

        read_row(r, i, 0, &row);
        check(ctx, &row);
    }
    PQclear(r);
    rc = check(ctx, NULL);
    if (rc < 0)
        return rc;
    p.n = 0;
    p_text(&p, pin->machine);
    p_i64(&p, pin->version);
    p.v[p.n++] = pin->hash;
    p.v[p.n++] = pin->definition ? pin->definition : "";
    p_i64(&p, pin->pinned_at);
    p.v[p.n++] = expect_hash;
    rc = tx_exec(c,
                 "UPDATE machines SET version = $2::INT, hash = $3, "
                 "definition = $4, pinned_at = $5::BIGINT "
                 "WHERE name = $1 AND hash = $6",
                 &p, NULL, err, "re-pin a machine");
    if (rc < 0)
        return rc;
    /* The history row as schema 6's vse_apply() writes one: its seq from
     * this transaction's id (vse_xact_row() its number in it). */
    p.n = 0;
    p.v[p.n++] = ev->resource; /* "", kept as text: no resource's row */
    p_i64(&p, ev->version);
    p_text(&p, ev->machine);
    p_text(&p, vse_kind_name(ev->kind));
    p_text(&p, ev->from);
    p_text(&p, ev->to);
    p_text(&p, ev->owner);
    p_i64(&p, ev->at);
    p_text(&p, ev->reason);
    rc = tx_exec(c,
                 "INSERT INTO history(seq, xid, resource, version, machine, "
                 "kind, op, op_id, from_state, to_state, owner, at, "
                 "request_id, reason) "
                 "SELECT " VSE_PG_NEXT_SEQ ", pg_current_xact_id(), $1, "
                 "$2::BIGINT, $3, $4, NULL, NULL, $5, $6, $7, $8::BIGINT, "
                 "NULL, $9 FROM vse_meta m WHERE m.key = 'seq_base' "
                 "RETURNING seq",
                 &p, &r, err, "append the upgrade to the history");
    if (rc < 0)
        return rc;
    *seq = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/*
 * A COMMIT whose answer was lost: the pin says whether it landed (the
 * pin's hash is ours only if our transaction, or an identical upgrade,
 * committed).  0 landed, 1 not, or an error.
 */
static int repin_settle(struct pg_conn *c, const struct vse_pin *pin,
                        struct vse_error *err)
{
    struct vse_pin now;
    int rc;

    memset(&now, 0, sizeof(now));
    rc = pg_pin_get(&c->base, pin->machine, &now, err);
    free(now.definition);
    if (rc < 0) {
        vse__err(err, VSE_EUNKNOWN,
                 "outcome unknown: the connection to '%s' was lost while "
                 "committing the upgrade of machine '%s'",
                 c->where, pin->machine);
        vse__err_hint(err, "run the upgrade again: an upgrade that "
                           "landed answers 'pinned already'");
        return VSE_EUNKNOWN;
    }
    return strcmp(now.hash, pin->hash) == 0 ? 0 : 1;
}

static int pg_repin(struct vse_store *s, const char *expect_hash,
                    const struct vse_pin *pin, const struct vse_event *ev,
                    vse_store_repin_check_fn *check, void *ctx, int64_t *seq,
                    struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    int64_t got = 0;
    int rc = ensure(c, err);

    if (rc < 0)
        return rc;
    rc = exec_sql(c, "BEGIN", err, "begin a transaction");
    if (rc < 0)
        return rc;
    rc = repin_tx(c, expect_hash, pin, ev, check, ctx, &got, err);
    if (rc < 0) {
        if (conn_ok(c))
            exec_sql(c, "ROLLBACK", NULL, "roll back");
        return rc;
    }
    rc = exec_sql(c, "COMMIT", err, "commit the upgrade");
    if (rc < 0 && !conn_ok(c)) {
        struct vse_error e2;

        vse_error_clear(&e2);
        rc = repin_settle(c, pin, &e2);
        if (rc == 1 && err != NULL)
            vse__err_hint(err, "nothing was written: run the upgrade again");
        else if (rc != 1 && err != NULL)
            *err = e2;
        if (rc == 1)
            rc = VSE_ESTORE;
        if (rc == 0)
            got = 0; /* landed; its seq is in the history */
    }
    if (rc < 0)
        return rc;
    if (seq != NULL)
        *seq = got;
    if (got > 0)
        notify_send(c, got);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Waiting for events                                                  */
/* ------------------------------------------------------------------ */

/*
 * Consume queued notifications into c->notified, the highest seq named;
 * 1 if one named a seq above after_seq (someone's bare NOTIFY only wakes
 * the wait up: last_seq is read then).
 */
static int drain(struct pg_conn *c, int64_t after_seq)
{
    PGnotify *n;
    int hit = 0;

    while ((n = PQnotifies(c->conn)) != NULL) {
        int64_t seq = n->extra ? strtoll(n->extra, NULL, 10) : 0;

        c->hot_until = vse__now_mono_ms() + 2 * NOTIFY_EVERY_MS;
        if (seq > c->notified)
            c->notified = seq;
        if (seq > after_seq)
            hit = 1;
        PQfreemem(n);
    }
    return hit;
}

/*
 * A notification says a row committed, not that it can be read: an older
 * transaction may still be running, and the log is read only below it
 * (store-pg-sql.h, schema 3).  A fresh one still answers 1 at once, "new
 * events may exist", as the contract says: the common case costs no
 * query.  If the caller then finds nothing, its next wait sees that a
 * notified row is not readable yet (c->notified > last_seq) and polls
 * (from 1 ms, doubling to 50 ms): the older transaction may end by a
 * rollback, which sends nothing.  A wait for the same after_seq as the
 * last one a notification ended means the caller read nothing: that
 * wait trusts only last_seq, for more notifications of rows behind the
 * open transaction may still be arriving.  After a notification the
 * wait polls every NOTIFY_EVERY_MS / 2 for a while: the writers skip
 * wake-ups that would follow their last one closely.  Wake-ups are sent
 * after the commit (notify_send()), so one can be lost: last_seq is
 * re-read every WAIT_RECHECK_MS in any case.
 *
 * LISTEN is set up on the first wait only: a listening session that
 * never reads would pile notifications up in memory.  It is set up
 * before last_seq is read, so a commit in between is seen either way.
 */
static int pg_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                   struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    int64_t deadline = vse__now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int64_t settle_ms = 1;
    int trust_notify = c->woke_for != after_seq;
    int rc = ensure(c, err);

    if (rc < 0)
        return rc;
    if (!c->listening) {
        rc = exec_sql(c, "LISTEN " VSE_PG_CHANNEL, err, "listen for events");
        if (rc < 0)
            return rc;
        c->listening = 1;
        /* A wake-up sent just before LISTEN may have stood for commits
         * that follow it: poll a while, as after a notification. */
        c->hot_until = vse__now_mono_ms() + 2 * NOTIFY_EVERY_MS;
    }
    for (;;) {
        int64_t last = 0, left, nap;
        struct pollfd pfd;

        if (!PQconsumeInput(c->conn)) {
            /* Lost the session: notifications sent meanwhile are gone,
             * the history is not; reconnect and look there. */
            rc = ensure(c, err);
            if (rc < 0)
                return rc;
        }
        if (drain(c, after_seq) && trust_notify) {
            c->woke_for = after_seq;
            return 1;
        }
        rc = pg_last_seq(s, &last, err);
        if (rc < 0)
            return rc;
        if (last > after_seq) {
            c->woke_for = -1;
            return 1;
        }
        left = deadline - vse__now_mono_ms();
        if (left <= 0)
            return 0;
        nap = left > WAIT_RECHECK_MS ? WAIT_RECHECK_MS : left;
        if (vse__now_mono_ms() < c->hot_until && nap > NOTIFY_EVERY_MS / 2)
            nap = NOTIFY_EVERY_MS / 2;
        if (c->notified > last) {
            nap = nap < settle_ms ? nap : settle_ms;
            settle_ms = settle_ms * 2 > 50 ? 50 : settle_ms * 2;
        }
        pfd.fd = PQsocket(c->conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0)
            return pg_fail(c, NULL, err, "wait for events");
        rc = poll(&pfd, 1, (int)nap);
        if (rc < 0 && errno != EINTR)
            return vse__err(err, VSE_ESTORE, "cannot wait for events: %s",
                            strerror(errno));
    }
}

/* libpq accepts both URI schemes; so does vse. */
static const char *const aliases[] = {"postgres", NULL};

static int pg_holds(struct vse_store *s, const char *held, const char *holder,
                    vse_hold_cb cb, void *ctx, struct vse_error *err)
{
    struct pg_conn *c = (struct pg_conn *)s;
    struct params p = {0};
    PGresult *r;
    int rc;

    p_text(&p, held);
    p_text(&p, holder);
    rc = run_read(c, ST_HOLDS, &p, &r, err, "read holds");
    if (rc < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct vse_hold h;
        char mode[16];

        memset(&h, 0, sizeof(h));
        col_text(r, i, 0, h.held, sizeof(h.held));
        col_text(r, i, 1, h.holder, sizeof(h.holder));
        col_text(r, i, 2, h.machine, sizeof(h.machine));
        col_text(r, i, 3, h.op, sizeof(h.op));
        col_text(r, i, 4, mode, sizeof(mode));
        h.mode = strcmp(mode, "exclusive") == 0 ? VSE_HOLD_EXCLUSIVE
                                                : VSE_HOLD_SHARED;
        h.since = col_i64(r, i, 5);
        if (cb(ctx, &h) != 0)
            break;
    }
    PQclear(r);
    return 0;
}

const struct vse_store_methods vse__store_pg = {
    .version = 3,
    .scheme = "postgresql",
    .conn_size = sizeof(struct pg_conn),
    .open = pg_open,
    .close = pg_close,
    .get = pg_get,
    .apply = pg_apply,
    .list = pg_list,
    .history = pg_history,
    .find_event = pg_find_event,
    .expired = pg_expired,
    .last_seq = pg_last_seq,
    .purge = pg_purge,
    .pin_get = pg_pin_get,
    .pin_put = pg_pin_put,
    .wait = pg_wait,
    .aliases = aliases,
    .inspect = pg_inspect,
    .schema_begin = pg_schema_begin,
    .schema_end = pg_schema_end,
    .meta_set = pg_meta_set,
    .exec = pg_exec,
    .steps = steps,
    .nsteps = sizeof(steps) / sizeof(*steps),
    .settled = pg_settled,
    .repin = pg_repin,
    .holds = pg_holds,
};
