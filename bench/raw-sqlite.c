/*
 * raw-sqlite.c - the raw-engine baseline for vsectl bench: the same
 * attach/detach cycle on the same vse schema, issuing per transition the
 * statements the SQLite store issues (SELECT by id; BEGIN IMMEDIATE,
 * CAS UPDATE, history INSERT, COMMIT), with the same pragmas and busy
 * handler, but no libvse at all: only SQLite and libc.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* SQL text and busy parameters shared with src/store/store-sqlite.c:
 * string and number macros only, so no vse code runs here. */
#include "sqlite-gate.h"
#include "store-sqlite-sql.h"
#include "util.h"

#define BUSY_MS 5000
#define TTL_US INT64_C(60000000) /* vse's default lease */

struct opts {
    const char *db;
    int clients;
    int resources;
    double seconds;
    int full; /* synchronous=FULL */
    int json;
};

/* What one client sends its parent, followed by n_lat uint32 latencies. */
struct report {
    uint64_t transitions;
    uint64_t refused;
    uint64_t errors;
    uint64_t n_lat;
    int64_t elapsed_us;
    char error[256];
};

/* The row as the store reads it (VSE_SQL_RESOURCE_COLS order). */
struct row {
    char id[64];
    char machine[64];
    char state[64];
    char op[64];
    char op_id[40];
    char origin[64];
    char owner[64];
    int64_t lease_expires, lease_ttl, since, updated, created, version;
};

struct client {
    sqlite3 *db;
    struct vse_sqlite_gate *gate;
    sqlite3_stmt *get, *update, *insert, *hist, *begin, *commit, *rollback;
    uint64_t rng;
    int64_t busy_deadline;
    int in_checkpoint;
    char owner[32];
    struct report rep;
    uint32_t *lat;
    size_t lat_cap;
};

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

/* The store's busy handler, same parameters (store-sqlite-sql.h). */
static int busy_handler(void *arg, int count)
{
    struct client *c = arg;
    int64_t now = vse__now_mono_us();
    int64_t spread, us;
    struct timespec ts;

    if (count == 0)
        c->busy_deadline = now + (int64_t)(c->in_checkpoint
                                               ? VSE_SQLITE_CKPT_WAIT_MS
                                               : BUSY_MS) *
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

/* The store's checkpoint after commit (store-sqlite-sql.h). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct client *c = arg;

    if (pages < VSE_SQLITE_CKPT_PAGES)
        return SQLITE_OK;
    c->in_checkpoint = 1;
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL,
                              NULL);
    c->in_checkpoint = 0;
    return SQLITE_OK;
}

/* A fresh random op_id, as vse makes one on begin (getrandom, UUID v4). */
static void make_op_id(char out[37])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("raw-sqlite: getrandom");
            exit(1);
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void die_db(sqlite3 *db, const char *what)
{
    fprintf(stderr, "raw-sqlite: %s: %s\n", what,
            db ? sqlite3_errmsg(db) : "out of memory");
    exit(1);
}

static sqlite3 *open_db(const struct opts *o, struct client *c)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(o->db, &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die_db(db, o->db);
    sqlite3_extended_result_codes(db, 1);
    c->gate = o->full ? vse_sqlite_gate_open(o->db) : NULL; /* as vse */
    sqlite3_busy_handler(db, busy_handler, c);
    sqlite3_wal_hook(db, wal_hook, c);
    if (sqlite3_exec(db,
                     o->full ? "PRAGMA synchronous = FULL"
                             : "PRAGMA synchronous = NORMAL",
                     NULL, NULL, NULL) != SQLITE_OK)
        die_db(db, "PRAGMA synchronous");
    return db;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK)
        die_db(db, sql);
    return st;
}

static void prepare_all(struct client *c)
{
    c->get = prep(c->db, VSE_SQL_GET);
    c->update = prep(c->db, VSE_SQL_UPDATE);
    c->insert = prep(c->db, VSE_SQL_INSERT);
    c->hist = prep(c->db, VSE_SQL_HISTORY_INSERT);
    c->begin = prep(c->db, VSE_SQL_BEGIN);
    c->commit = prep(c->db, VSE_SQL_COMMIT);
    c->rollback = prep(c->db, VSE_SQL_ROLLBACK);
}

static void finalize_all(struct client *c)
{
    sqlite3_finalize(c->get);
    sqlite3_finalize(c->update);
    sqlite3_finalize(c->insert);
    sqlite3_finalize(c->hist);
    sqlite3_finalize(c->begin);
    sqlite3_finalize(c->commit);
    sqlite3_finalize(c->rollback);
}

/* As the store binds: "" and lease 0 are NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL || s[0] == '\0')
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static void bind_row(sqlite3_stmt *st, const struct row *r)
{
    bind_text(st, 1, r->id);
    bind_text(st, 2, r->machine);
    bind_text(st, 3, r->state);
    bind_text(st, 4, r->op);
    bind_text(st, 5, r->op_id);
    bind_text(st, 6, r->origin);
    bind_text(st, 7, r->owner);
    if (r->lease_expires == 0)
        sqlite3_bind_null(st, 8);
    else
        sqlite3_bind_int64(st, 8, r->lease_expires);
    sqlite3_bind_int64(st, 9, r->lease_ttl);
    sqlite3_bind_int64(st, 10, r->since);
    sqlite3_bind_int64(st, 11, r->updated);
    sqlite3_bind_int64(st, 12, r->created);
    sqlite3_bind_int64(st, 13, r->version);
    sqlite3_bind_text(st, 14, "{}", -1, SQLITE_STATIC); /* attrs */
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int fail(struct client *c, int rc, const char *what)
{
    if (c->rep.error[0] == '\0')
        snprintf(c->rep.error, sizeof(c->rep.error), "%s: %s (%d)", what,
                 sqlite3_errmsg(c->db), rc);
    c->rep.errors++;
    return -1;
}

/* The store's get: 1 with the row, 0 if absent, -1 on error. */
static int get_row(struct client *c, const char *id, struct row *r)
{
    int rc;

    bind_text(c->get, 1, id);
    rc = sqlite3_step(c->get);
    if (rc == SQLITE_ROW) {
        memset(r, 0, sizeof(*r));
        col_text(c->get, 0, r->id, sizeof(r->id));
        col_text(c->get, 1, r->machine, sizeof(r->machine));
        col_text(c->get, 2, r->state, sizeof(r->state));
        col_text(c->get, 3, r->op, sizeof(r->op));
        col_text(c->get, 4, r->op_id, sizeof(r->op_id));
        col_text(c->get, 5, r->origin, sizeof(r->origin));
        col_text(c->get, 6, r->owner, sizeof(r->owner));
        r->lease_expires = sqlite3_column_int64(c->get, 7);
        r->lease_ttl = sqlite3_column_int64(c->get, 8);
        r->since = sqlite3_column_int64(c->get, 9);
        r->updated = sqlite3_column_int64(c->get, 10);
        r->created = sqlite3_column_int64(c->get, 11);
        r->version = sqlite3_column_int64(c->get, 12);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = fail(c, rc, "select");
    }
    done(c->get);
    return rc;
}

static int step_simple(struct client *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    done(st);
    return rc == SQLITE_DONE ? 0 : fail(c, rc, what);
}

/*
 * The store's apply for an update: 1 committed, 0 lost CAS (rolled
 * back), -1 error.  `kind`, `from` fill the history row.
 */
static int apply_locked(struct client *c, const struct row *next,
                        int64_t expect, const char *kind, const char *from,
                        const char *op, const char *op_id);

/* Writers queue at the store's gate first, exactly as the store does. */
static int apply(struct client *c, const struct row *next, int64_t expect,
                 const char *kind, const char *from, const char *op,
                 const char *op_id)
{
    uint64_t t = 0;
    int rc;

    if (c->gate != NULL)
        t = vse_sqlite_gate_enter(c->gate);
    rc = apply_locked(c, next, expect, kind, from, op, op_id);
    if (c->gate != NULL)
        vse_sqlite_gate_leave(c->gate, t);
    return rc;
}

static int apply_locked(struct client *c, const struct row *next,
                        int64_t expect, const char *kind, const char *from,
                        const char *op, const char *op_id)
{
    int rc;

    if (step_simple(c, c->begin, "begin") < 0)
        return -1;
    bind_row(c->update, next);
    sqlite3_bind_int64(c->update, 15, expect);
    rc = sqlite3_step(c->update);
    done(c->update);
    if (rc != SQLITE_DONE) {
        fail(c, rc, "update");
        step_simple(c, c->rollback, "rollback");
        return -1;
    }
    if (sqlite3_changes(c->db) == 0) {
        /* The store reads the current row inside the transaction here
         * to report the conflict; so does the baseline. */
        struct row cur;

        get_row(c, next->id, &cur);
        return step_simple(c, c->rollback, "rollback") < 0 ? -1 : 0;
    }
    bind_text(c->hist, 1, next->id);
    sqlite3_bind_int64(c->hist, 2, next->version);
    bind_text(c->hist, 3, next->machine);
    bind_text(c->hist, 4, kind);
    bind_text(c->hist, 5, op);
    bind_text(c->hist, 6, op_id);
    bind_text(c->hist, 7, from);
    bind_text(c->hist, 8, next->state);
    bind_text(c->hist, 9, c->owner);
    sqlite3_bind_int64(c->hist, 10, next->updated);
    rc = sqlite3_step(c->hist);
    done(c->hist);
    if (rc != SQLITE_DONE) {
        fail(c, rc, "insert history");
        step_simple(c, c->rollback, "rollback");
        return -1;
    }
    if (step_simple(c, c->commit, "commit") < 0) {
        if (!sqlite3_get_autocommit(c->db))
            step_simple(c, c->rollback, "rollback");
        return -1;
    }
    return 1;
}

static void record(struct client *c, int64_t t0)
{
    int64_t us = vse__now_mono_us() - t0;

    if (c->rep.n_lat == c->lat_cap) {
        c->lat_cap = c->lat_cap ? c->lat_cap * 2 : 65536;
        c->lat = realloc(c->lat, c->lat_cap * sizeof(*c->lat));
        if (c->lat == NULL) {
            fprintf(stderr, "raw-sqlite: out of memory\n");
            exit(1);
        }
    }
    c->lat[c->rep.n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    c->rep.transitions++;
}

/* Move r into busy state `to` of op (begin when r is at rest). */
static void to_busy(struct client *c, struct row *r, const char *to,
                    const char *op, int begin)
{
    int64_t now = vse_now_us();

    if (begin) {
        make_op_id(r->op_id);
        snprintf(r->op, sizeof(r->op), "%s", op);
        snprintf(r->origin, sizeof(r->origin), "%s", r->state);
        snprintf(r->owner, sizeof(r->owner), "%s", c->owner);
        r->lease_ttl = TTL_US;
        r->since = now;
    }
    snprintf(r->state, sizeof(r->state), "%s", to);
    r->lease_expires = now + r->lease_ttl;
    r->updated = now;
    r->version++;
}

static void to_rest(struct row *r, const char *to)
{
    int64_t now = vse_now_us();

    snprintf(r->state, sizeof(r->state), "%s", to);
    r->op[0] = r->op_id[0] = r->origin[0] = r->owner[0] = '\0';
    r->lease_expires = 0;
    r->lease_ttl = 0;
    r->since = now;
    r->updated = now;
    r->version++;
}

/*
 * One later transition of our own op (step or finish): read the row
 * (as vse_step/vse_finish do), then the CAS.  0 done, -1 error.
 */
static int follow(struct client *c, const char *id, const char *kind,
                  const char *to, int rest)
{
    int64_t t0 = vse__now_mono_us();
    struct row r;
    char from[64], op[64], op_id[40];
    int64_t expect;
    int rc = get_row(c, id, &r);

    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, SQLITE_NOTFOUND, "row vanished");
    expect = r.version;
    snprintf(from, sizeof(from), "%s", r.state);
    snprintf(op, sizeof(op), "%s", r.op);
    snprintf(op_id, sizeof(op_id), "%s", r.op_id);
    if (rest)
        to_rest(&r, to);
    else
        to_busy(c, &r, to, op, 0);
    rc = apply(c, &r, expect, kind, from, op, op_id);
    if (rc == 0) {
        snprintf(c->rep.error, sizeof(c->rep.error),
                 "lost the CAS on '%s' inside our own op", id);
        c->rep.errors++;
        return -1;
    }
    if (rc < 0)
        return -1;
    record(c, t0);
    return 0;
}

/* One cycle on a random resource: 0 done or refused, -1 error. */
static int cycle(struct client *c, int resources)
{
    char id[32];
    struct row r;
    int64_t t0 = vse__now_mono_us();
    int64_t expect;
    const char *op, *to;
    int attach, rc;

    snprintf(id, sizeof(id), "bench-%d",
             (int)(rng_next(&c->rng) % (uint64_t)resources));
    rc = get_row(c, id, &r);
    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, SQLITE_NOTFOUND, "resource missing");
    if (r.op[0] != '\0') {
        c->rep.refused++;
        return 0;
    }
    if (strcmp(r.state, "available") == 0)
        attach = 1;
    else if (strcmp(r.state, "in_use") == 0)
        attach = 0;
    else {
        c->rep.refused++;
        return 0;
    }
    op = attach ? "attach" : "detach";
    to = attach ? "reserved" : "detaching";
    expect = r.version;
    to_busy(c, &r, to, op, 1);
    rc = apply(c, &r, expect, "begin", attach ? "available" : "in_use", op,
               r.op_id);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        c->rep.refused++;
        return 0;
    }
    record(c, t0);
    if (attach) {
        if (follow(c, id, "step", "attaching", 0) < 0 ||
            follow(c, id, "finish", "in_use", 1) < 0)
            return -1;
    } else if (follow(c, id, "finish", "available", 1) < 0) {
        return -1;
    }
    return 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            perror("raw-sqlite: write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = read(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void run_client(const struct opts *o, int idx, int go_fd, int out_fd)
{
    struct client c;
    char b;
    int64_t start, deadline;

    memset(&c, 0, sizeof(c));
    rng_seed(&c.rng);
    snprintf(c.owner, sizeof(c.owner), "bench-%d", idx);
    c.db = open_db(o, &c);
    prepare_all(&c);
    /* Wait until every client is ready: the parent closes the pipe. */
    while (read(go_fd, &b, 1) < 0 && errno == EINTR)
        ;
    start = vse__now_mono_us();
    deadline = start + (int64_t)(o->seconds * 1e6);
    /* The deadline is checked between cycles only, so no op is left in
     * flight for the next run to trip over. */
    while (vse__now_mono_us() < deadline)
        if (cycle(&c, o->resources) < 0)
            break;
    c.rep.elapsed_us = vse__now_mono_us() - start;
    finalize_all(&c);
    sqlite3_close(c.db);
    write_all(out_fd, &c.rep, sizeof(c.rep));
    write_all(out_fd, c.lat, c.rep.n_lat * sizeof(*c.lat));
    free(c.lat);
    _exit(0);
}

/* Make bench-0 .. bench-(R-1) in `available` where absent. */
static void setup(const struct opts *o)
{
    struct client c;
    sqlite3_stmt *st;
    int64_t now = vse_now_us();

    memset(&c, 0, sizeof(c));
    rng_seed(&c.rng);
    c.db = open_db(o, &c);
    if (sqlite3_prepare_v2(c.db,
                           "SELECT value FROM vse_meta "
                           "WHERE key = 'schema_version'",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr,
                "raw-sqlite: '%s' holds no vse schema: make it "
                "with 'vsectl --store sqlite:%s list'\n",
                o->db, o->db);
        exit(1);
    }
    sqlite3_finalize(st);
    prepare_all(&c);
    if (sqlite3_exec(c.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        die_db(c.db, "begin");
    for (int i = 0; i < o->resources; i++) {
        struct row r = {0};

        snprintf(r.id, sizeof(r.id), "bench-%d", i);
        snprintf(r.machine, sizeof(r.machine), "volume");
        snprintf(r.state, sizeof(r.state), "available");
        r.since = r.updated = r.created = now;
        r.version = 1;
        bind_row(c.insert, &r);
        if (sqlite3_step(c.insert) != SQLITE_DONE)
            die_db(c.db, "insert resource");
        done(c.insert);
        if (sqlite3_changes(c.db) == 0)
            continue;
        bind_text(c.hist, 1, r.id);
        sqlite3_bind_int64(c.hist, 2, 1);
        bind_text(c.hist, 3, "volume");
        bind_text(c.hist, 4, "create");
        bind_text(c.hist, 7, "new");
        bind_text(c.hist, 8, "available");
        sqlite3_bind_int64(c.hist, 10, now);
        if (sqlite3_step(c.hist) != SQLITE_DONE)
            die_db(c.db, "insert history");
        done(c.hist);
    }
    if (sqlite3_exec(c.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die_db(c.db, "commit");
    finalize_all(&c);
    sqlite3_close(c.db);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v. */
static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    size_t k;

    if (n == 0)
        return 0;
    k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return v[(k > n ? n : k) - 1];
}

static void usage(void)
{
    fprintf(stderr,
            "usage: raw-sqlite --db PATH --clients N --resources R "
            "--seconds S\n"
            "                  [--synchronous full|normal] [--json]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    o->clients = 1;
    o->resources = 1;
    o->seconds = 5;
    o->full = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--db") == 0)
            o->db = v;
        else if (strcmp(a, "--clients") == 0)
            o->clients = atoi(v);
        else if (strcmp(a, "--resources") == 0)
            o->resources = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = atof(v);
        else if (strcmp(a, "--synchronous") == 0 && strcmp(v, "full") == 0)
            o->full = 1;
        else if (strcmp(a, "--synchronous") == 0 && strcmp(v, "normal") == 0)
            o->full = 0;
        else
            usage();
    }
    if (o->db == NULL || o->clients < 1 || o->clients > 1024 ||
        o->resources < 1 || !(o->seconds > 0))
        usage();
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    struct report total = {0};
    uint32_t *lat = NULL;
    int64_t elapsed = 0;
    int go[2], failed = 0;
    int *fds;
    pid_t *pids;
    double tps;

    parse(argc, argv, &o);
    setup(&o);
    fds = calloc((size_t)o.clients, sizeof(*fds));
    pids = calloc((size_t)o.clients, sizeof(*pids));
    if (fds == NULL || pids == NULL || pipe(go) < 0) {
        perror("raw-sqlite");
        return 1;
    }
    fflush(NULL);
    for (int i = 0; i < o.clients; i++) {
        int p[2];

        if (pipe(p) < 0) {
            perror("raw-sqlite: pipe");
            return 1;
        }
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("raw-sqlite: fork");
            return 1;
        }
        if (pids[i] == 0) {
            close(go[1]);
            close(p[0]);
            run_client(&o, i, go[0], p[1]);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    close(go[0]);
    close(go[1]); /* go */

    for (int i = 0; i < o.clients; i++) {
        struct report r;
        int status;

        if (read_all(fds[i], &r, sizeof(r)) < 0) {
            fprintf(stderr, "raw-sqlite: client %d sent no report\n", i);
            failed = 1;
        } else {
            uint32_t *nl = realloc(lat, (total.n_lat + r.n_lat + 1) *
                                            sizeof(*lat));

            if (nl == NULL || read_all(fds[i], nl + total.n_lat,
                                       r.n_lat * sizeof(*lat)) < 0) {
                fprintf(stderr, "raw-sqlite: client %d: short report\n", i);
                return 1;
            }
            lat = nl;
            total.transitions += r.transitions;
            total.refused += r.refused;
            total.errors += r.errors;
            total.n_lat += r.n_lat;
            if (r.elapsed_us > elapsed)
                elapsed = r.elapsed_us;
            if (r.errors > 0) {
                fprintf(stderr, "raw-sqlite: client %d: %s\n", i, r.error);
                failed = 1;
            }
        }
        close(fds[i]);
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "raw-sqlite: client %d failed\n", i);
            failed = 1;
        }
    }
    if (lat != NULL)
        qsort(lat, total.n_lat, sizeof(*lat), cmp_u32);
    tps = elapsed > 0 ? (double)total.transitions * 1e6 / (double)elapsed
                      : 0.0;
    if (o.json)
        printf("{\"engine\":\"raw-sqlite\",\"clients\":%d,\"resources\":%d,"
               "\"seconds\":%g,\"transitions\":%" PRIu64
               ",\"transitions_per_s\":%.1f,\"refused\":%" PRIu64
               ",\"p50_us\":%" PRIu32 ",\"p99_us\":%" PRIu32 "}\n",
               o.clients, o.resources, o.seconds, total.transitions, tps,
               total.refused, pct(lat, total.n_lat, 0.50),
               pct(lat, total.n_lat, 0.99));
    else
        printf("engine             raw-sqlite\n"
               "clients            %d\n"
               "resources          %d\n"
               "seconds            %g\n"
               "synchronous        %s\n"
               "transitions        %" PRIu64 "\n"
               "transitions_per_s  %.1f\n"
               "refused            %" PRIu64 "\n"
               "p50_us             %" PRIu32 "\n"
               "p99_us             %" PRIu32 "\n",
               o.clients, o.resources, o.seconds, o.full ? "full" : "normal",
               total.transitions, tps, total.refused,
               pct(lat, total.n_lat, 0.50), pct(lat, total.n_lat, 0.99));
    free(lat);
    free(fds);
    free(pids);
    return failed;
}
