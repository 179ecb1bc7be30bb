/*
 * raw-zk.c - the raw-engine baseline for the ZooKeeper store: the same
 * attach/detach cycle as bench/raw-pg.c and `vsectl bench`, issuing per
 * transition the requests store-zk.c issues (zoo_get of the row, then one
 * zoo_multi: set the row at the version just read and create the history
 * entry), with rows and entries of the same shape, but no libvse at all:
 * only the ZooKeeper C client, jansson and libc.  Each client is a thread
 * with its own session (vsectl bench: a process with its own session).
 *
 *   raw-zk --url zookeeper://HOST:PORT[,...]/CHROOT [--clients N]
 *          [--resources R] [--seconds S] [--json]
 *
 * It works under its own CHROOT: give it one vse does not use.
 */
#define THREADED
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zookeeper/zookeeper.h>

#define TTL_US INT64_C(60000000)
#define SESSION_MS 10000
#define ROW_MAX 4096

struct opts {
    const char *hosts;  /* HOST:PORT[,...] */
    const char *chroot; /* "/name" */
    int clients;
    int resources;
    double seconds;
    int json;
};

struct row {
    char id[64], machine[64], state[64], op[64], op_id[40], origin[64],
        owner[64];
    int64_t lease_expires, lease_ttl, since, updated, created, version;
    int zversion; /* the znode's version: the CAS */
};

struct lat {
    size_t n, cap;
    uint32_t *v;
};

struct client {
    const struct opts *o;
    int idx;
    zhandle_t *zh;
    int64_t bucket; /* the open log bucket; -1: look it up */
    uint64_t rng;
    char owner[32];
    uint64_t transitions, refused, errors;
    struct lat lat;
    char error[256];
};

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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
        perror("raw-zk: getrandom");
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
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL) {
            fprintf(stderr, "raw-zk: out of memory\n");
            exit(1);
        }
    }
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int fail(struct client *c, int zrc, const char *what)
{
    if (c->error[0] == '\0')
        snprintf(c->error, sizeof(c->error), "%s: %s", what,
                 zrc ? zerror(zrc) : "unexpected");
    c->errors++;
    return -1;
}

/* ---- the session ------------------------------------------------------ */

struct conn_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
};

static void watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *ctx)
{
    struct conn_wait *w = ctx;

    if (type != ZOO_SESSION_EVENT || w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->state = state;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A connected session rooted at the chroot (created when absent). */
static zhandle_t *connect_zk(const struct opts *o, int with_chroot)
{
    static struct conn_wait w = {PTHREAD_MUTEX_INITIALIZER,
                                 PTHREAD_COND_INITIALIZER, 0};
    char hosts[1024];
    struct timespec until;
    zhandle_t *zh;

    snprintf(hosts, sizeof(hosts), "%s%s", o->hosts,
             with_chroot ? o->chroot : "");
    pthread_mutex_lock(&w.mu);
    w.state = 0;
    zh = zookeeper_init(hosts, watcher, SESSION_MS, NULL, &w, 0);
    if (zh == NULL) {
        fprintf(stderr, "raw-zk: zookeeper_init: %s\n", strerror(errno));
        exit(1);
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 15;
    while (w.state != ZOO_CONNECTED_STATE)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &until) == ETIMEDOUT) {
            fprintf(stderr, "raw-zk: cannot connect to %s\n", o->hosts);
            exit(1);
        }
    pthread_mutex_unlock(&w.mu);
    /* The session's later events (none expected) must not touch w. */
    zoo_set_context(zh, NULL);
    return zh;
}

/* ---- the layout: as src/store/store-zk.c lays it out ------------------ */

/*
 * CHROOT/resources/ID          the row (JSON), its znode version the CAS
 * CHROOT/resources/ID/VERSION  the history entry of that version
 * CHROOT/log/bNNNNNNNNNN/e-SEQ the event again, in the global log: a
 *                              sequential node in the open bucket, which a
 *                              transition checks is still open (data
 *                              version 0); sealed after BUCKET_MAX entries
 */
#define BUCKET_MAX 4096

static void row_path(char *buf, size_t n, const char *id)
{
    snprintf(buf, n, "/resources/%s", id);
}

static void hist_path(char *buf, size_t n, const char *id, int64_t version)
{
    snprintf(buf, n, "/resources/%s/%020" PRId64, id, version);
}

static void bucket_path(char *buf, size_t n, int64_t b)
{
    snprintf(buf, n, "/log/b%010" PRId64, b);
}

static int row_decode(struct row *w, const char *buf, int len, int zversion)
{
    json_t *j = json_loadb(buf, (size_t)len, 0, NULL);
    const char *s;

#define STR(f)                                                               \
    s = json_string_value(json_object_get(j, #f));                           \
    snprintf(w->f, sizeof(w->f), "%s", s ? s : "")
#define NUM(f) w->f = json_integer_value(json_object_get(j, #f))
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    memset(w, 0, sizeof(*w));
    STR(id);
    STR(machine);
    STR(state);
    STR(op);
    STR(op_id);
    STR(origin);
    STR(owner);
    NUM(lease_expires);
    NUM(lease_ttl);
    NUM(since);
    NUM(updated);
    NUM(created);
#undef STR
#undef NUM
    /* As the store: the znode's version is the row's. */
    w->version = zversion;
    w->zversion = zversion;
    json_decref(j);
    return 0;
}

/* The same JSON, built the same way (jansson), as the store's rows. */
static char *row_encode(const struct row *w)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:s}",
        "id", w->id, "machine", w->machine, "state", w->state, "op", w->op,
        "op_id", w->op_id, "origin", w->origin, "owner", w->owner,
        "lease_expires", (json_int_t)w->lease_expires, "lease_ttl",
        (json_int_t)w->lease_ttl, "since", (json_int_t)w->since, "updated",
        (json_int_t)w->updated, "created", (json_int_t)w->created, "version",
        (json_int_t)w->version, "attrs", "{}");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

static char *hist_encode(const struct row *n, const char *kind,
                         const char *from, const char *op, const char *op_id,
                         const char *owner)
{
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
        "resource", n->id, "version", (json_int_t)n->version, "machine",
        n->machine, "kind", kind, "op", op, "op_id", op_id, "from", from,
        "to", n->state, "owner", owner, "at", (json_int_t)n->updated,
        "request_id", "", "reason", "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

/* The store's get: 1 with the row, 0 if absent, -1 on error. */
static int get_row(struct client *c, const char *id, struct row *w)
{
    char path[128], buf[ROW_MAX];
    int len = sizeof(buf), rc;
    struct Stat st;

    row_path(path, sizeof(path), id);
    rc = zoo_get(c->zh, path, 0, buf, &len, &st);
    if (rc == ZNONODE)
        return 0;
    if (rc != ZOK)
        return fail(c, rc, "get");
    if (len < 0 || row_decode(w, buf, len, st.version) != 0)
        return fail(c, 0, "get: a row that is not JSON");
    return 1;
}

static int lost(int zrc)
{
    return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT ||
           zrc == ZSESSIONEXPIRED || zrc == ZINVALIDSTATE;
}

/* The open bucket (the highest), as the store finds it after a seal. */
static int find_bucket(struct client *c)
{
    struct String_vector kids;
    int64_t top = -1;
    int rc = zoo_get_children(c->zh, "/log", 0, &kids);

    if (rc != ZOK)
        return fail(c, rc, "list the log");
    for (int i = 0; i < kids.count; i++)
        if (kids.data[i][0] == 'b' &&
            strtoll(kids.data[i] + 1, NULL, 10) > top)
            top = strtoll(kids.data[i] + 1, NULL, 10);
    deallocate_String_vector(&kids);
    if (top < 0)
        return fail(c, 0, "the log has no bucket");
    c->bucket = top;
    return 0;
}

/* Seal bucket b and open b + 1 in one multi (losing the race is fine). */
static void seal_bucket(struct client *c, int64_t b)
{
    char p0[64], p1[64];
    zoo_op_t ops[2];
    zoo_op_result_t res[2];

    bucket_path(p0, sizeof(p0), b);
    bucket_path(p1, sizeof(p1), b + 1);
    zoo_set_op_init(&ops[0], p0, "sealed", 6, 0, NULL);
    zoo_create_op_init(&ops[1], p1, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL,
                       0);
    zoo_multi(c->zh, 2, ops, res);
    c->bucket = -1;
}

/*
 * The store's apply: one multi (the log bucket is still open, set the row
 * at the version read, create the history entry, append to the log);
 * 1 committed, 0 lost CAS, -1 error.
 */
static int apply(struct client *c, const struct row *n, int zversion,
                 const char *kind, const char *from, const char *op,
                 const char *op_id)
{
    char rpath[128], hpath[160], bpath[64], lpath[80], made[128];
    char *row = row_encode(n),
         *ev = hist_encode(n, kind, from, op, op_id, c->owner);
    zoo_op_t ops[4];
    zoo_op_result_t res[4];
    struct Stat st;
    int rc = -1;

    if (row == NULL || ev == NULL) {
        fail(c, 0, "encode: out of memory");
        goto out;
    }
    for (int moves = 0; moves < 8; moves++) {
        const char *dash;
        int zrc;

        if (c->bucket < 0 && find_bucket(c) < 0)
            goto out;
        row_path(rpath, sizeof(rpath), n->id);
        hist_path(hpath, sizeof(hpath), n->id, n->version);
        bucket_path(bpath, sizeof(bpath), c->bucket);
        snprintf(lpath, sizeof(lpath), "%s/e-", bpath);
        zoo_check_op_init(&ops[0], bpath, 0);
        zoo_set_op_init(&ops[1], rpath, row, (int)strlen(row), zversion, &st);
        zoo_create_op_init(&ops[2], hpath, ev, (int)strlen(ev),
                           &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
        zoo_create_op_init(&ops[3], lpath, ev, (int)strlen(ev),
                           &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
                           made, sizeof(made));
        memset(res, 0, sizeof(res));
        zrc = zoo_multi(c->zh, 4, ops, res);
        if (zrc == ZOK) {
            dash = strrchr(made, '-');
            if (dash != NULL && strtoll(dash + 1, NULL, 10) >= BUCKET_MAX)
                seal_bucket(c, c->bucket);
            rc = 1;
            goto out;
        }
        if (res[0].err != ZOK && !lost(zrc)) {
            c->bucket = -1; /* sealed: find the open one, send again */
            continue;
        }
        if (res[1].err == ZBADVERSION) {
            rc = 0;
            goto out;
        }
        fail(c, zrc, "multi");
        goto out;
    }
    fail(c, 0, "the log bucket kept moving");
out:
    free(row);
    free(ev);
    return rc;
}

/* ---- the cycle: raw-pg.c's, op for op --------------------------------- */

static void to_busy(struct client *c, struct row *r, const char *to,
                    const char *op, int begin)
{
    int64_t now = wall_us();

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
    int64_t now = wall_us();

    snprintf(r->state, sizeof(r->state), "%s", to);
    r->op[0] = r->op_id[0] = r->origin[0] = r->owner[0] = '\0';
    r->lease_expires = 0;
    r->lease_ttl = 0;
    r->since = now;
    r->updated = now;
    r->version++;
}

/* A later transition of our own op: read the row, then the multi. */
static int follow(struct client *c, const char *id, const char *kind,
                  const char *to, int rest)
{
    int64_t t0 = mono_us();
    struct row r;
    char from[64], op[64], op_id[40];
    int rc = get_row(c, id, &r);

    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, 0, "row vanished");
    snprintf(from, sizeof(from), "%s", r.state);
    snprintf(op, sizeof(op), "%s", r.op);
    snprintf(op_id, sizeof(op_id), "%s", r.op_id);
    if (rest)
        to_rest(&r, to);
    else
        to_busy(c, &r, to, op, 0);
    rc = apply(c, &r, r.zversion, kind, from, op, op_id);
    if (rc == 0) {
        snprintf(c->error, sizeof(c->error),
                 "lost the CAS on '%s' inside our own op", id);
        c->errors++;
        return -1;
    }
    if (rc < 0)
        return -1;
    c->transitions++;
    add_lat(&c->lat, mono_us() - t0);
    return 0;
}

static int cycle(struct client *c)
{
    char id[32];
    struct row r;
    int64_t t0 = mono_us();
    int attach, rc;

    snprintf(id, sizeof(id), "bench-%d",
             (int)(rng_next(&c->rng) % (uint64_t)c->o->resources));
    rc = get_row(c, id, &r);
    if (rc <= 0)
        return rc < 0 ? -1 : fail(c, 0, "resource missing");
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
    to_busy(c, &r, attach ? "reserved" : "detaching",
            attach ? "attach" : "detach", 1);
    rc = apply(c, &r, r.zversion, "begin", attach ? "available" : "in_use",
               r.op, r.op_id);
    if (rc <= 0) {
        if (rc == 0)
            c->refused++;
        return rc;
    }
    c->transitions++;
    add_lat(&c->lat, mono_us() - t0);
    if (attach)
        return follow(c, id, "step", "attaching", 0) < 0 ||
                       follow(c, id, "finish", "in_use", 1) < 0
                   ? -1
                   : 0;
    return follow(c, id, "finish", "available", 1);
}

static volatile int go;
static int64_t deadline;

static void *client_main(void *arg)
{
    struct client *c = arg;

    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        usleep(1000);
    while (mono_us() < deadline)
        if (cycle(c) < 0)
            break;
    zookeeper_close(c->zh);
    return NULL;
}

static void must(int rc, int ok2, const char *what, const char *path)
{
    if (rc != ZOK && rc != ok2) {
        fprintf(stderr, "raw-zk: setup: %s %s: %s\n", what, path, zerror(rc));
        exit(1);
    }
}

/* The chroot, its parents and bench-0 .. bench-(n-1) at rest. */
static void setup(const struct opts *o)
{
    zhandle_t *zh = connect_zk(o, 0);
    char path[256];
    int64_t now = wall_us();

    for (const char *p = o->chroot + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            snprintf(path, sizeof(path), "%.*s", (int)(p - o->chroot),
                     o->chroot);
            must(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                            ZOO_PERSISTENT, NULL, 0),
                 ZNODEEXISTS, "create", path);
        }
        if (*p == '\0')
            break;
    }
    zookeeper_close(zh);
    zh = connect_zk(o, 1);
    bucket_path(path, sizeof(path), 0);
    {
        const char *const dirs[] = {"/resources", "/log", path};

        for (int i = 0; i < 3; i++)
            must(zoo_create(zh, dirs[i], NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                            ZOO_PERSISTENT, NULL, 0),
                 ZNODEEXISTS, "create", dirs[i]);
    }
    for (int i = 0; i < o->resources; i++) {
        struct row r = {.since = now, .updated = now, .created = now};
        char *buf;

        snprintf(r.id, sizeof(r.id), "bench-%d", i);
        snprintf(r.machine, sizeof(r.machine), "volume");
        snprintf(r.state, sizeof(r.state), "available");
        buf = row_encode(&r);
        if (buf == NULL) {
            fprintf(stderr, "raw-zk: out of memory\n");
            exit(1);
        }
        row_path(path, sizeof(path), r.id);
        must(zoo_create(zh, path, buf, (int)strlen(buf), &ZOO_OPEN_ACL_UNSAFE,
                        ZOO_PERSISTENT, NULL, 0),
             ZNODEEXISTS, "create", path);
        free(buf);
    }
    zookeeper_close(zh);
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

static void merge(struct lat *to, const struct lat *from)
{
    for (size_t i = 0; i < from->n; i++)
        add_lat(to, from->v[i]);
}

static void usage(void)
{
    fprintf(stderr, "usage: raw-zk --url zookeeper://HOST:PORT[,...]/CHROOT "
                    "[--clients N]\n"
                    "              [--resources R] [--seconds S] [--json]\n");
    exit(2);
}

/* zookeeper://HOSTS/CHROOT into o->hosts and o->chroot ("/CHROOT"). */
static void parse_url(struct opts *o, const char *url)
{
    static char hosts[1024], chroot[512];
    const char *h = url + strlen("zookeeper://"), *slash;

    if (strncmp(url, "zookeeper://", strlen("zookeeper://")) != 0)
        usage();
    slash = strchr(h, '/');
    if (slash == NULL || slash == h || slash[1] == '\0' ||
        (size_t)(slash - h) >= sizeof(hosts) ||
        strlen(slash) >= sizeof(chroot) || slash[strlen(slash) - 1] == '/')
        usage();
    snprintf(hosts, sizeof(hosts), "%.*s", (int)(slash - h), h);
    snprintf(chroot, sizeof(chroot), "%s", slash);
    o->hosts = hosts;
    o->chroot = chroot;
}

int main(int argc, char **argv)
{
    struct opts o = {.clients = 1, .resources = 1, .seconds = 5};
    struct client *cs;
    pthread_t *th;
    struct lat lat = {0};
    uint64_t transitions = 0, refused = 0;
    int failed = 0;
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
            parse_url(&o, v);
        else if (strcmp(a, "--clients") == 0)
            o.clients = atoi(v);
        else if (strcmp(a, "--resources") == 0)
            o.resources = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else
            usage();
    }
    if (o.hosts == NULL || o.clients < 1 || o.clients > 1024 ||
        o.resources < 1 || !(o.seconds > 0))
        usage();
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    setup(&o);
    cs = calloc((size_t)o.clients, sizeof(*cs));
    th = calloc((size_t)o.clients, sizeof(*th));
    if (cs == NULL || th == NULL)
        return 1;
    deadline = INT64_MAX;
    for (int i = 0; i < o.clients; i++) {
        cs[i].o = &o;
        cs[i].idx = i;
        cs[i].rng = (uint64_t)mono_us() * 2654435761u + (uint64_t)i + 1;
        snprintf(cs[i].owner, sizeof(cs[i].owner), "raw-%d", i);
        cs[i].zh = connect_zk(&o, 1);
        cs[i].bucket = -1;
        if (pthread_create(&th[i], NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "raw-zk: cannot start thread %d\n", i);
            return 1;
        }
    }
    start = mono_us();
    deadline = start + (int64_t)(o.seconds * 1e6);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < o.clients; i++) {
        pthread_join(th[i], NULL);
        transitions += cs[i].transitions;
        refused += cs[i].refused;
        merge(&lat, &cs[i].lat);
        if (cs[i].errors > 0) {
            fprintf(stderr, "raw-zk: client %d: %s\n", i, cs[i].error);
            failed = 1;
        }
        free(cs[i].lat.v);
    }
    secs = (double)(mono_us() - start) / 1e6;
    tps = (double)transitions / secs;
    qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u32);
    if (o.json)
        printf("{\"engine\":\"raw-zk\",\"clients\":%d,\"resources\":%d,"
               "\"transitions_per_s\":%.1f,\"refused\":%" PRIu64
               ",\"p50_us\":%" PRIu32 ",\"p99_us\":%" PRIu32 "}\n",
               o.clients, o.resources, tps, refused, pct(&lat, 0.5),
               pct(&lat, 0.99));
    else
        printf("engine             raw-zk\n"
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
    free(cs);
    free(th);
    return failed;
}
