/*
 * raw-pg.c - the raw-engine baseline for the PostgreSQL store: the same
 * attach/detach cycle as bench/raw-sqlite.c and `vsectl bench`, done the
 * way an application with no ordering scheme would: read the row (a
 * prepared SELECT), then the bare transaction in one prepared statement
 * (UPDATE ... WHERE id = $1 AND version = $2, insert the history row,
 * commit), on a minimal schema of its own (raw_resources, raw_history:
 * the same columns, only the primary keys, the history seq an identity
 * column).  No libvse, no vse SQL: only libpq and libc.  --contention R:W
 * runs the contention shapes instead: W threads per resource cycling
 * available -> deleting -> available, with acquire/release latencies.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "util.h"

/*
 * The minimal schema: vse's columns, no secondary index, no counter, no
 * function.  Made here if absent, so the baseline needs no vse at all.
 */
#define RAW_SCHEMA                                                           \
    "SET client_min_messages = warning;"                                     \
    "CREATE TABLE IF NOT EXISTS raw_resources(id TEXT COLLATE \"C\""         \
    " PRIMARY KEY, machine TEXT NOT NULL, state TEXT NOT NULL, op TEXT,"     \
    " op_id TEXT, origin TEXT, owner TEXT, lease_expires BIGINT,"            \
    " lease_ttl BIGINT NOT NULL DEFAULT 0, since BIGINT NOT NULL,"           \
    " updated BIGINT NOT NULL, created BIGINT NOT NULL,"                     \
    " version BIGINT NOT NULL, attrs TEXT NOT NULL DEFAULT '{}');"           \
    "CREATE TABLE IF NOT EXISTS raw_history(seq BIGINT"                      \
    " GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"                             \
    " resource TEXT COLLATE \"C\" NOT NULL, version BIGINT NOT NULL,"        \
    " machine TEXT NOT NULL, kind TEXT NOT NULL, op TEXT, op_id TEXT,"       \
    " from_state TEXT NOT NULL, to_state TEXT NOT NULL, owner TEXT,"         \
    " at BIGINT NOT NULL, request_id TEXT, reason TEXT)"

#define RAW_COLS                                                             \
    "id, machine, state, op, op_id, origin, owner, lease_expires, "          \
    "lease_ttl, since, updated, created, version"

#define RAW_GET "SELECT " RAW_COLS " FROM raw_resources WHERE id = $1"

/*
 * The bare transaction as one statement, so one round trip and one
 * commit, as vse's: the CAS on the row, and the history row only if it
 * won.  $1 id, $2 expected version, $3.. the new row, then the event.
 */
#define RAW_APPLY                                                            \
    "WITH u AS (UPDATE raw_resources SET state = $3, op = $4, op_id = $5,"   \
    " origin = $6, owner = $7, lease_expires = $8, lease_ttl = $9,"          \
    " since = $10, updated = $11, version = $12"                             \
    " WHERE id = $1 AND version = $2 RETURNING id, machine, version)"        \
    " INSERT INTO raw_history(resource, version, machine, kind, op, op_id,"  \
    " from_state, to_state, owner, at)"                                      \
    " SELECT u.id, u.version, u.machine, $13, $17, $14, $15, $3, $16, $11"   \
    " FROM u RETURNING seq"
#define RAW_APPLY_TYPES "titttttiiiiittttt"

#define TTL_US INT64_C(60000000)

struct opts {
    const char *url;
    int clients;
    int resources;
    double seconds;
    int cont_res, cont_workers; /* --contention R:W */
    int json;
};

struct row {
    char id[64], machine[64], state[64], op[64], op_id[40], origin[64],
        owner[64];
    int64_t lease_expires, lease_ttl, since, updated, created, version;
};

struct lat {
    size_t n, cap;
    uint32_t *v;
};

struct client {
    const struct opts *o;
    int idx;
    PGconn *pg;
    uint64_t rng;
    char owner[32];
    uint64_t transitions, refused, conflicts, errors;
    struct lat lat, acq, rel;
    char error[256];
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

static void make_op_id(char out[37])
{
    unsigned char b[16];

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        perror("raw-pg: getrandom");
        exit(1);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void add_lat(struct lat *l, int64_t us)
{
    if (vse__array_push(l, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us) < 0) {
        fprintf(stderr, "raw-pg: out of memory\n");
        exit(1);
    }
}

static int fail(struct client *c, PGresult *r, const char *what)
{
    if (c->error[0] == '\0')
        snprintf(c->error, sizeof(c->error), "%s: %s", what,
                 r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
    c->errors++;
    return -1;
}

/* Both statements prepared once per connection, as the store does. */
static void prepare_all(struct client *c)
{
    Oid types[32];
    const char *t = RAW_APPLY_TYPES;
    PGresult *r;

    for (int i = 0; t[i]; i++)
        types[i] = t[i] == 'i' ? 20 : 25;
    r = PQprepare(c->pg, "raw_apply", RAW_APPLY, (int)strlen(t), types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "raw-pg: prepare: %s", PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    types[0] = 25;
    r = PQprepare(c->pg, "raw_get", RAW_GET, 1, types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "raw-pg: prepare: %s", PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static void connect_client(struct client *c, int prepare)
{
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {"5", c->o->url, NULL};

    c->pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        fprintf(stderr, "raw-pg: connect: %s", PQerrorMessage(c->pg));
        exit(1);
    }
    if (prepare)
        prepare_all(c);
}

static void col(const PGresult *r, int i, char *dst, size_t n)
{
    snprintf(dst, n, "%s", PQgetisnull(r, 0, i) ? "" : PQgetvalue(r, 0, i));
}

static int64_t coli(const PGresult *r, int i)
{
    return PQgetisnull(r, 0, i) ? 0 : strtoll(PQgetvalue(r, 0, i), NULL, 10);
}

/* The store's get: 1 with the row, 0 if absent, -1 on error. */
static int get_row(struct client *c, const char *id, struct row *w)
{
    const char *v[1] = {id};
    PGresult *r = PQexecPrepared(c->pg, "raw_get", 1, v, NULL, NULL, 0);
    int rc;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = fail(c, r, "get");
    } else if (PQntuples(r) == 0) {
        rc = 0;
    } else {
        memset(w, 0, sizeof(*w));
        col(r, 0, w->id, sizeof(w->id));
        col(r, 1, w->machine, sizeof(w->machine));
        col(r, 2, w->state, sizeof(w->state));
        col(r, 3, w->op, sizeof(w->op));
        col(r, 4, w->op_id, sizeof(w->op_id));
        col(r, 5, w->origin, sizeof(w->origin));
        col(r, 6, w->owner, sizeof(w->owner));
        w->lease_expires = coli(r, 7);
        w->lease_ttl = coli(r, 8);
        w->since = coli(r, 9);
        w->updated = coli(r, 10);
        w->created = coli(r, 11);
        w->version = coli(r, 12);
        rc = 1;
    }
    PQclear(r);
    return rc;
}

static const char *nz(const char *s)
{
    return s[0] ? s : NULL;
}

/* The bare transaction: 1 committed, 0 lost CAS, -1 error. */
static int apply(struct client *c, const struct row *n, int64_t expect,
                 const char *kind, const char *from, const char *op,
                 const char *op_id)
{
    char num[8][24];
    const char *v[17];
    PGresult *r;
    int k = 0, rc;

#define NUM(x) (snprintf(num[k], 24, "%" PRId64, (int64_t)(x)), num[k++])
    v[0] = n->id;
    v[1] = NUM(expect);
    v[2] = n->state;
    v[3] = nz(n->op);
    v[4] = nz(n->op_id);
    v[5] = nz(n->origin);
    v[6] = nz(n->owner);
    v[7] = n->lease_expires ? NUM(n->lease_expires) : NULL;
    v[8] = NUM(n->lease_ttl);
    v[9] = NUM(n->since);
    v[10] = NUM(n->updated);
    v[11] = NUM(n->version);
    v[12] = kind;
    v[13] = nz(op_id);
    v[14] = from;
    v[15] = c->owner;
    v[16] = nz(op); /* the event's op: the row's is gone at a finish */
#undef NUM
    r = PQexecPrepared(c->pg, "raw_apply", 17, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = fail(c, r, "apply");
    else
        rc = PQntuples(r) == 1;
    PQclear(r);
    return rc;
}

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

/* A later transition of our own op: read the row, then the CAS. */
static int follow(struct client *c, const char *id, const char *kind,
                  const char *to, int rest, struct lat *l)
{
    int64_t t0 = vse__now_mono_us();
    struct row r;
    char from[64], op[64], op_id[40];
    int64_t expect;
    int rc = get_row(c, id, &r);

    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, NULL, "row vanished");
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
        snprintf(c->error, sizeof(c->error),
                 "lost the CAS on '%s' inside "
                 "our own op",
                 id);
        c->errors++;
        return -1;
    }
    if (rc < 0)
        return -1;
    c->transitions++;
    add_lat(l, vse__now_mono_us() - t0);
    return 0;
}

/* The bench cycle of raw-sqlite.c and vsectl bench. */
static int cycle(struct client *c)
{
    char id[32];
    struct row r;
    int64_t t0 = vse__now_mono_us(), expect;
    int attach, rc;

    snprintf(id, sizeof(id), "bench-%d",
             (int)(rng_next(&c->rng) % (uint64_t)c->o->resources));
    rc = get_row(c, id, &r);
    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, NULL, "resource missing");
    if (r.op[0] != '\0') {
        c->refused++;
        return 0;
    }
    if (strcmp(r.state, "available") == 0)
        attach = 1;
    else if (strcmp(r.state, "in_use") == 0)
        attach = 0;
    else {
        c->refused++;
        return 0;
    }
    expect = r.version;
    to_busy(c, &r, attach ? "reserved" : "detaching",
            attach ? "attach" : "detach", 1);
    rc = apply(c, &r, expect, "begin", attach ? "available" : "in_use", r.op,
               r.op_id);
    if (rc <= 0) {
        if (rc == 0)
            c->refused++;
        return rc;
    }
    c->transitions++;
    add_lat(&c->lat, vse__now_mono_us() - t0);
    if (attach)
        return follow(c, id, "step", "attaching", 0, &c->lat) < 0 ||
                       follow(c, id, "finish", "in_use", 1, &c->lat) < 0
                   ? -1
                   : 0;
    return follow(c, id, "finish", "available", 1, &c->lat);
}

/*
 * Contention: acquire = the CAS available -> deleting (begin delete),
 * retried after a random pause while another worker holds the resource;
 * release = deleting -> available.  The pause doubles from 0.1 ms to
 * 10 ms, so that hundreds of waiters do not drown the server in reads.
 */
static int contend(struct client *c, const char *id)
{
    int64_t t0 = vse__now_mono_us();
    struct row r;

    for (int tries = 0;; tries++) {
        int64_t expect, pause;
        int rc = get_row(c, id, &r);

        if (rc <= 0)
            return rc < 0 ? -1 : fail(c, NULL, "resource missing");
        if (r.op[0] == '\0' && strcmp(r.state, "available") == 0) {
            expect = r.version;
            to_busy(c, &r, "deleting", "delete", 1);
            rc = apply(c, &r, expect, "begin", "available", r.op, r.op_id);
            if (rc < 0)
                return -1;
            if (rc == 1)
                break;
        }
        c->conflicts++;
        pause = tries < 7 ? INT64_C(100) << tries : 10000;
        usleep((useconds_t)(pause / 2 +
                            (int64_t)(rng_next(&c->rng) % (uint64_t)pause)));
    }
    c->transitions++;
    add_lat(&c->acq, vse__now_mono_us() - t0);
    return follow(c, id, "finish", "available", 1, &c->rel);
}

static volatile int go;
static int64_t deadline;

static void *client_main(void *arg)
{
    struct client *c = arg;
    char id[32];

    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        usleep(1000);
    if (c->o->cont_res > 0)
        snprintf(id, sizeof(id), "cont-%d", c->idx % c->o->cont_res);
    while (vse__now_mono_us() < deadline) {
        int rc = c->o->cont_res > 0 ? contend(c, id) : cycle(c);

        if (rc < 0)
            break;
    }
    PQfinish(c->pg);
    return NULL;
}

/* The schema if absent, then PREFIX-0 .. PREFIX-(n-1) available. */
static void setup(const struct opts *o, const char *prefix, int n)
{
    struct client c = {.o = o};
    int64_t now = vse_now_us();
    PGresult *r;

    connect_client(&c, 0);
    r = PQexec(c.pg, RAW_SCHEMA);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "raw-pg: schema: %s", PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
    for (int i = 0; i < n; i++) {
        char id[32], num[24];
        const char *v[2] = {id, num};

        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        snprintf(num, sizeof(num), "%" PRId64, now);
        r = PQexecParams(c.pg,
                         "INSERT INTO raw_resources(" RAW_COLS ", attrs) "
                         "VALUES ($1, 'volume', 'available', NULL, NULL, "
                         "NULL, NULL, NULL, 0, $2, $2, $2, 1, '{}') "
                         "ON CONFLICT (id) DO NOTHING",
                         2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "raw-pg: setup: %s", PQresultErrorMessage(r));
            exit(1);
        }
        PQclear(r);
    }
    PQfinish(c.pg);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t pct(const struct lat *l, double p)
{
    size_t k = (size_t)(p * (double)l->n + 0.999999);

    if (l->n == 0)
        return 0;
    if (k < 1)
        k = 1;
    return l->v[(k > l->n ? l->n : k) - 1];
}

static double mean(const struct lat *l)
{
    double s = 0;

    for (size_t i = 0; i < l->n; i++)
        s += l->v[i];
    return l->n ? s / (double)l->n : 0;
}

static void merge(struct lat *to, const struct lat *from)
{
    for (size_t i = 0; i < from->n; i++)
        add_lat(to, from->v[i]);
}

static void usage(void)
{
    fprintf(stderr, "usage: raw-pg --url URL [--clients N --resources R | "
                    "--contention R:W]\n"
                    "              [--seconds S] [--json]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {.clients = 1, .resources = 1, .seconds = 5};
    struct client *cs;
    pthread_t *th;
    struct lat lat = {0}, acq = {0}, rel = {0};
    uint64_t transitions = 0, refused = 0, conflicts = 0;
    int failed = 0, n;
    int64_t start;
    double secs, tps;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--json") == 0) {
            o.json = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--url") == 0)
            o.url = v;
        else if (strcmp(a, "--clients") == 0)
            o.clients = atoi(v);
        else if (strcmp(a, "--resources") == 0)
            o.resources = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else if (strcmp(a, "--contention") == 0 &&
                 sscanf(v, "%d:%d", &o.cont_res, &o.cont_workers) == 2)
            ;
        else
            usage();
    }
    if (o.url == NULL || o.clients < 1 || o.resources < 1 ||
        !(o.seconds > 0) || o.cont_res < 0 || o.cont_workers < 0)
        usage();
    if (o.cont_res > 0) {
        setup(&o, "cont", o.cont_res);
        n = o.cont_res * o.cont_workers;
    } else {
        setup(&o, "bench", o.resources);
        n = o.clients;
    }
    cs = calloc((size_t)n, sizeof(*cs));
    th = calloc((size_t)n, sizeof(*th));
    if (cs == NULL || th == NULL)
        return 1;
    deadline = INT64_MAX;
    for (int i = 0; i < n; i++) {
        cs[i].o = &o;
        cs[i].idx = i;
        cs[i].rng = (uint64_t)vse__now_mono_us() * 2654435761u + (uint64_t)i +
                    1;
        snprintf(cs[i].owner, sizeof(cs[i].owner), "raw-%d", i);
        /* One at a time: hundreds of SCRAM handshakes at once time out
         * on two cores, and the start is not what is measured. */
        connect_client(&cs[i], 1);
        if (pthread_create(&th[i], NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "raw-pg: cannot start thread %d\n", i);
            return 1;
        }
    }
    start = vse__now_mono_us();
    deadline = start + (int64_t)(o.seconds * 1e6);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        transitions += cs[i].transitions;
        refused += cs[i].refused;
        conflicts += cs[i].conflicts;
        merge(&lat, &cs[i].lat);
        merge(&acq, &cs[i].acq);
        merge(&rel, &cs[i].rel);
        if (cs[i].errors > 0) {
            fprintf(stderr, "raw-pg: client %d: %s\n", i, cs[i].error);
            failed = 1;
        }
        free(cs[i].lat.v);
        free(cs[i].acq.v);
        free(cs[i].rel.v);
    }
    secs = (double)(vse__now_mono_us() - start) / 1e6;
    tps = (double)transitions / secs;
    qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u32);
    qsort(acq.v, acq.n, sizeof(*acq.v), cmp_u32);
    qsort(rel.v, rel.n, sizeof(*rel.v), cmp_u32);
    if (o.cont_res > 0)
        printf(o.json ? "{\"engine\":\"raw-pg\",\"shape\":\"%dx%d\","
                        "\"transitions_per_s\":%.1f,\"cycles\":%zu,"
                        "\"lost_cas\":%" PRIu64 ",\"acquire_mean_us\":%.0f,"
                        "\"acquire_p99_us\":%" PRIu32 ","
                        "\"release_mean_us\":%.0f,"
                        "\"release_p99_us\":%" PRIu32 "}\n"
                      : "raw-pg contention %d resources x %d workers: "
                        "%.1f transitions/s, %zu cycles, %" PRIu64
                        " lost CAS; acquire mean %.0f us p99 %" PRIu32
                        " us; release mean %.0f us p99 %" PRIu32 " us\n",
               o.cont_res, o.cont_workers, tps, rel.n, conflicts, mean(&acq),
               pct(&acq, 0.99), mean(&rel), pct(&rel, 0.99));
    else if (o.json)
        printf("{\"engine\":\"raw-pg\",\"clients\":%d,\"resources\":%d,"
               "\"transitions_per_s\":%.1f,\"refused\":%" PRIu64
               ",\"p50_us\":%" PRIu32 ",\"p99_us\":%" PRIu32 "}\n",
               o.clients, o.resources, tps, refused, pct(&lat, 0.5),
               pct(&lat, 0.99));
    else
        printf("engine             raw-pg\n"
               "clients            %d\n"
               "resources          %d\n"
               "transitions        %" PRIu64 "\n"
               "transitions_per_s  %.1f\n"
               "refused            %" PRIu64 "\n"
               "p50_us             %" PRIu32 "\n"
               "p99_us             %" PRIu32 "\n",
               o.clients, o.resources, transitions, tps, refused,
               pct(&lat, 0.5), pct(&lat, 0.99));
    free(lat.v);
    free(acq.v);
    free(rel.v);
    free(cs);
    free(th);
    return failed;
}
