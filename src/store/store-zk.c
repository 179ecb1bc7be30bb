/*
 * store-zk.c - the "zookeeper:" store: the resource tree of the proposal
 * in a ZooKeeper ensemble, through Debian's multi-threaded C client.
 * Each resource is a znode whose data is its row and whose znode version
 * is the row's version; a transition is one zoo_multi (set the row at its
 * version, create the history node named by that version, add the event
 * to the log), so it is atomic, and its zxid is its seq.  The layout is in
 * docs/architecture.md ("The ZooKeeper store").
 */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

/* The synchronous calls are declared only for the threaded client. */
#define THREADED
#include <zookeeper/zookeeper.h>

#include "store.h"
#include "util.h"

/*
 * ROOT/meta holds the schema version with the SQL stores' numbering, so
 * that vsectl migrate and the release notes speak of one number.  store.c
 * judges it and runs the steps (zk_steps); a version the ZooKeeper layout
 * does not care about (a change to the SQL tables only) is a step with
 * nothing to do but let the core record the number.
 */
/* Session timeout asked of the server; VSE_ZK_SESSION_MS overrides. */
#define SESSION_MS 10000
/* How long a call keeps trying to reach the ensemble before it answers;
 * VSE_ZK_RECONNECT_MS overrides (tests). */
#define RECONNECT_MS 15000
/* A log bucket is sealed once it holds this many entries: a child list
 * comes back in one reply and ZooKeeper keeps every node in memory.
 * VSE_ZK_BUCKET_MAX overrides (tests, to make buckets roll over). */
#define BUCKET_MAX 4096
/* Seal races and bucket moves retried before apply gives up. */
#define BUCKET_RETRIES 8
#define PATH_SIZE 1536

/* What the node helpers answer besides 0 (done) and a negative VSE_
 * code: ZooKeeper's own codes are negative too, so they never escape. */
#define ABSENT 1  /* no such node (or no parent, for a create) */
#define EXISTS 2  /* a create found the node there */
#define SKIPPED 3 /* a delete found it changed or not empty */
#define DATA_SIZE (64 * 1024)

struct zk_conn {
    struct vse_store base; /* must be first */
    zhandle_t *zh;
    char hosts[1024];
    char root[PATH_SIZE / 2]; /* "/CHROOT", no trailing slash */
    char where[1400];         /* zookeeper://HOSTS/CHROOT, for messages */
    int session_ms;
    int reconnect_ms;
    int bucket_max;
    int64_t bucket; /* the log bucket appends go to; -1: look it up */
    /* Where the last event history_all() delivered is in the log: a
     * watcher asks for "after the last one I saw", and this spares it
     * the binary search.  Only a hint, checked against after_seq. */
    int64_t pos_seq;
    int64_t pos_bucket;
    char pos_name[32];
    /* Wake-ups: the client's event thread bumps gen on every watch and
     * session event; vse_wait sleeps on cv. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
    int sync_inited;
    /* Between schema_begin and schema_end: meta as it will be written,
     * and the znode version it was read at (-1: there was none). */
    json_t *meta;
    int meta_at;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int interrupted(const struct zk_conn *c)
{
    return atomic_load(&c->base.interrupted);
}

/* Errors after which the call's outcome is unknown or the session must
 * be re-established: none of them is an answer about the data. */
static int lost(int zrc)
{
    return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT ||
           zrc == ZSESSIONEXPIRED || zrc == ZINVALIDSTATE ||
           zrc == ZSESSIONMOVED || zrc == ZCLOSING || zrc == ZNOTHING;
}

static int zk_fail(struct zk_conn *c, int zrc, struct vse_error *err,
                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int zk_fail(struct zk_conn *c, int zrc, struct vse_error *err,
                   const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (lost(zrc)) {
        vse__err(err, VSE_ESTORE,
                 "lost the connection to store '%s' while "
                 "trying to %s",
                 c->where, what);
        vse__err_detail(err, "zookeeper: %s", zerror(zrc));
        vse__err_hint(err, "the next call reconnects; check that the "
                           "ensemble is running");
        return VSE_ESTORE;
    }
    vse__err(err, VSE_ESTORE, "cannot %s in store '%s'", what, c->where);
    vse__err_detail(err, "zookeeper: %s", zerror(zrc));
    if (zrc == ZNOAUTH)
        vse__err_hint(err, "the ACL of the chroot must allow this client "
                           "to read, write, create and delete");
    return VSE_ESTORE;
}

/*
 * Resource ids are any UTF-8 without control characters; a znode name
 * may not hold '/', be "." or "..", or hold some code points.  Bytes
 * outside [A-Za-z0-9_-] are written %XX, so every id has one name.
 */
static void enc_id(const char *id, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';

        if (n + 4 >= size)
            break;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* 0, or -1 for a name that is not one of ours. */
static int dec_id(const char *name, char *out, size_t size)
{
    size_t n = 0;

    for (const char *p = name; *p; p++) {
        int ch = (unsigned char)*p;

        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            p += 2;
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return 0;
}

static void res_path(const struct zk_conn *c, const char *id, char *buf,
                     size_t size)
{
    char enc[VSE_ID_MAX * 3 + 1];

    enc_id(id, enc, sizeof(enc));
    snprintf(buf, size, "%s/resources/%s", c->root, enc);
}

/* History nodes are named by the version they record, zero-padded so
 * that names sort as versions do. */
static void hist_path(const struct zk_conn *c, const char *id,
                      int64_t version, char *buf, size_t size)
{
    char rp[PATH_SIZE];

    res_path(c, id, rp, sizeof(rp));
    snprintf(buf, size, "%s/%020" PRId64, rp, version);
}

static void bucket_path(const struct zk_conn *c, int64_t b, char *buf,
                        size_t size)
{
    snprintf(buf, size, "%s/log/b%010" PRId64, c->root, b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_names(struct String_vector *v)
{
    if (v->count > 1)
        qsort(v->data, (size_t)v->count, sizeof(char *), cmp_str);
}

/* ------------------------------------------------------------------ */
/* Rows and events as JSON                                             */
/* ------------------------------------------------------------------ */

static char *row_json(const struct vse_resource *r)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:s}",
        "id", r->id, "machine", r->machine, "state", r->state, "op", r->op,
        "op_id", r->op_id, "origin", r->origin, "owner", r->owner,
        "lease_expires", (json_int_t)r->lease_expires, "lease_ttl",
        (json_int_t)r->lease_ttl, "since", (json_int_t)r->since, "updated",
        (json_int_t)r->updated, "created", (json_int_t)r->created, "version",
        (json_int_t)r->version, "attrs", r->attrs[0] ? r->attrs : "{}");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

static char *event_json(const struct vse_event *e)
{
    const char *kind = vse_kind_name(e->kind);
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
        "resource", e->resource, "version", (json_int_t)e->version, "machine",
        e->machine, "kind", kind ? kind : "", "op", e->op, "op_id", e->op_id,
        "from", e->from, "to", e->to, "owner", e->owner, "at",
        (json_int_t)e->at, "request_id", e->request_id, "reason", e->reason);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

static void j_str(json_t *o, const char *key, char *dst, size_t size)
{
    const char *v = json_string_value(json_object_get(o, key));

    vse__strlcpy(dst, v ? v : "", size);
}

static int64_t j_int(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static int parse_row(const char *buf, int len, struct vse_resource *out)
{
    json_t *o = json_loadb(buf, len > 0 ? (size_t)len : 0, 0, NULL);

    memset(out, 0, sizeof(*out));
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    j_str(o, "id", out->id, sizeof(out->id));
    j_str(o, "machine", out->machine, sizeof(out->machine));
    j_str(o, "state", out->state, sizeof(out->state));
    j_str(o, "op", out->op, sizeof(out->op));
    j_str(o, "op_id", out->op_id, sizeof(out->op_id));
    j_str(o, "origin", out->origin, sizeof(out->origin));
    j_str(o, "owner", out->owner, sizeof(out->owner));
    out->lease_expires = j_int(o, "lease_expires");
    out->lease_ttl = j_int(o, "lease_ttl");
    out->since = j_int(o, "since");
    out->updated = j_int(o, "updated");
    out->created = j_int(o, "created");
    out->version = j_int(o, "version");
    j_str(o, "attrs", out->attrs, sizeof(out->attrs));
    if (out->attrs[0] == '\0')
        vse__strlcpy(out->attrs, "{}", sizeof(out->attrs));
    json_decref(o);
    return 0;
}

static int parse_event(const char *buf, int len, int64_t seq,
                       struct vse_event *e)
{
    json_t *o = json_loadb(buf, len > 0 ? (size_t)len : 0, 0, NULL);
    char kind[16];

    memset(e, 0, sizeof(*e));
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    e->seq = seq;
    j_str(o, "resource", e->resource, sizeof(e->resource));
    e->version = j_int(o, "version");
    j_str(o, "machine", e->machine, sizeof(e->machine));
    j_str(o, "kind", kind, sizeof(kind));
    e->kind = vse_kind_parse(kind);
    j_str(o, "op", e->op, sizeof(e->op));
    j_str(o, "op_id", e->op_id, sizeof(e->op_id));
    j_str(o, "from", e->from, sizeof(e->from));
    j_str(o, "to", e->to, sizeof(e->to));
    j_str(o, "owner", e->owner, sizeof(e->owner));
    e->at = j_int(o, "at");
    j_str(o, "request_id", e->request_id, sizeof(e->request_id));
    j_str(o, "reason", e->reason, sizeof(e->reason));
    json_decref(o);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The session                                                         */
/* ------------------------------------------------------------------ */

/* Runs on the client's event thread: only note and wake. */
static void on_event(zhandle_t *zh, int type, int state, const char *path,
                     void *ctx)
{
    struct zk_conn *c = ctx;

    (void)zh;
    (void)type;
    (void)state;
    (void)path;
    pthread_mutex_lock(&c->mu);
    c->gen++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The client logs every reconnect attempt at length to stderr, which is
 * the caller's (vsectl's output, vsed's log); the errors it would say
 * reach the caller through vse_error instead. */
static void on_log(const char *msg)
{
    (void)msg;
}

static int session_open(struct zk_conn *c)
{
    c->zh = zookeeper_init2(c->hosts, on_event, c->session_ms, NULL, c, 0,
                            on_log);
    return c->zh != NULL ? 0 : -1;
}

static void session_close(struct zk_conn *c)
{
    if (c->zh != NULL)
        zookeeper_close(c->zh);
    c->zh = NULL;
}

/* Wait for cv up to ms, in the caller's thread. */
static void nap(struct zk_conn *c, uint64_t seen, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (c->gen == seen) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->mu);
}

static uint64_t gen_now(struct zk_conn *c)
{
    uint64_t g;

    pthread_mutex_lock(&c->mu);
    g = c->gen;
    pthread_mutex_unlock(&c->mu);
    return g;
}

/*
 * Make sure the session is connected, waiting up to reconnect_ms.  The
 * client reconnects by itself (to any member of the ensemble); an expired
 * session is replaced by a new one.  0 or VSE_ESTORE.
 */
static int ensure_until(struct zk_conn *c, int64_t deadline,
                        struct vse_error *err)
{
    for (;;) {
        uint64_t g = gen_now(c);
        int st = c->zh ? zoo_state(c->zh) : 0;

        if (st == ZOO_CONNECTED_STATE)
            return 0;
        if (c->zh == NULL || st == ZOO_EXPIRED_SESSION_STATE ||
            st == ZOO_AUTH_FAILED_STATE) {
            session_close(c);
            if (session_open(c) < 0)
                return vse__err(err, VSE_ESTORE,
                                "cannot start a "
                                "ZooKeeper session for '%s': %s",
                                c->where, strerror(errno));
            continue;
        }
        if (interrupted(c) || mono_ms() >= deadline)
            break;
        nap(c, g, 50);
    }
    vse__err(err, VSE_ESTORE, "cannot connect to store '%s'", c->where);
    if (interrupted(c)) {
        vse__err_hint(err, "interrupted (shutting down): not waiting for "
                           "the store");
        return VSE_ESTORE;
    }
    vse__err_detail(err, "no member of the ensemble answered within %d ms",
                    c->reconnect_ms);
    vse__err_hint(err, "check that ZooKeeper is running at %s", c->hosts);
    return VSE_ESTORE;
}

static int ensure(struct zk_conn *c, struct vse_error *err)
{
    return ensure_until(c, mono_ms() + c->reconnect_ms, err);
}

/*
 * Reads are safe to repeat: after a lost connection, wait for the
 * session and send once more, until reconnect_ms has passed.  Each
 * helper returns 0, ABSENT (EXISTS, SKIPPED) or a negative VSE_ code
 * with err set.
 */
static int retry_read(struct zk_conn *c, int zrc, int *attempts,
                      struct vse_error *err)
{
    if (!lost(zrc) || ++*attempts > 3)
        return 0;
    return ensure(c, err) == 0;
}

/* Read a node into a malloc'ed buffer (*buf, NUL-terminated). */
static int zget(struct zk_conn *c, const char *path, char **buf, int *len,
                struct Stat *st, int watch, struct vse_error *err,
                const char *what)
{
    int size = DATA_SIZE, attempts = 0, zrc;

    *buf = NULL;
    for (;;) {
        char *b = vse__malloc((size_t)size + 1);
        int n = size;

        if (b == NULL)
            return vse__err(err, VSE_ENOMEM, "out of memory");
        zrc = ensure(c, err);
        if (zrc < 0) {
            free(b);
            return zrc;
        }
        zrc = zoo_get(c->zh, path, watch, b, &n, st);
        if (zrc == ZOK && st->dataLength > size) {
            free(b);
            size = st->dataLength;
            continue;
        }
        if (zrc == ZOK) {
            b[n < 0 ? 0 : n] = '\0';
            *buf = b;
            *len = n < 0 ? 0 : n;
            return 0;
        }
        free(b);
        if (retry_read(c, zrc, &attempts, err))
            continue;
        if (zrc == ZNONODE)
            return ABSENT;
        return zk_fail(c, zrc, err, "%s", what);
    }
}

static int zchildren(struct zk_conn *c, const char *path, int watch,
                     struct String_vector *out, struct Stat *st,
                     struct vse_error *err, const char *what)
{
    int attempts = 0, zrc;
    struct Stat tmp;

    memset(out, 0, sizeof(*out));
    for (;;) {
        zrc = ensure(c, err);
        if (zrc < 0)
            return zrc;
        zrc = zoo_get_children2(c->zh, path, watch, out, st ? st : &tmp);
        if (zrc == ZOK)
            return 0;
        if (retry_read(c, zrc, &attempts, err))
            continue;
        if (zrc == ZNONODE)
            return ABSENT;
        return zk_fail(c, zrc, err, "%s", what);
    }
}

static int zexists(struct zk_conn *c, const char *path, struct Stat *st,
                   struct vse_error *err, const char *what)
{
    int attempts = 0, zrc;

    for (;;) {
        zrc = ensure(c, err);
        if (zrc < 0)
            return zrc;
        zrc = zoo_exists(c->zh, path, 0, st);
        if (zrc == ZOK || zrc == ZNONODE)
            return zrc == ZOK ? 0 : ABSENT;
        if (retry_read(c, zrc, &attempts, err))
            continue;
        return zk_fail(c, zrc, err, "%s", what);
    }
}

/* Writes that are safe to resend: a create whose "exists" is success,
 * and deletes whose "no node" is. */
static int zcreate(struct zk_conn *c, const char *path, const char *data,
                   struct vse_error *err, const char *what)
{
    int attempts = 0, zrc;

    for (;;) {
        zrc = ensure(c, err);
        if (zrc < 0)
            return zrc;
        zrc = zoo_create(c->zh, path, data, data ? (int)strlen(data) : -1,
                         &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        if (zrc == ZOK)
            return 0;
        if (zrc == ZNODEEXISTS)
            return EXISTS;
        if (zrc == ZNONODE)
            return ABSENT;
        if (retry_read(c, zrc, &attempts, err))
            continue;
        return zk_fail(c, zrc, err, "%s", what);
    }
}

static int zdelete(struct zk_conn *c, const char *path, int version,
                   struct vse_error *err, const char *what)
{
    int attempts = 0, zrc;

    for (;;) {
        zrc = ensure(c, err);
        if (zrc < 0)
            return zrc;
        zrc = zoo_delete(c->zh, path, version);
        if (zrc == ZOK)
            return 0;
        if (zrc == ZNONODE)
            return ABSENT;
        if (zrc == ZBADVERSION || zrc == ZNOTEMPTY)
            return SKIPPED;
        if (retry_read(c, zrc, &attempts, err))
            continue;
        return zk_fail(c, zrc, err, "%s", what);
    }
}

/*
 * Wait until the server we talk to has seen everything the leader
 * committed before now (zoo_async's "sync"), so that a read after a lost
 * answer is not served from a member that lags behind.
 */
struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
};

static void on_sync(int rc, const char *value, const void *data)
{
    struct sync_wait *w = (struct sync_wait *)data;

    (void)value;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int zsync(struct zk_conn *c, const char *path)
{
    struct sync_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                          0, 0};
    int rc = zoo_async(c->zh, path, on_sync, &w);

    if (rc != ZOK)
        return rc;
    /* The completion always runs (with an error if the session goes). */
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.rc;
}

/* ------------------------------------------------------------------ */
/* URL, layout and open                                                */
/* ------------------------------------------------------------------ */

static int bad_url(const char *rest, const char *why, struct vse_error *err)
{
    vse__err(err, VSE_EINVAL, "store URL 'zookeeper:%s' is not valid: %s",
             rest, why);
    vse__err_hint(err, "write it as zookeeper://HOST:PORT[,HOST:PORT...]"
                       "/CHROOT, e.g. zookeeper://127.0.0.1:2181/vse");
    return VSE_EINVAL;
}

static int env_ms(const char *name, int dflt)
{
    const char *v = getenv(name);

    return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

static int parse_url(struct zk_conn *c, const char *rest,
                     struct vse_error *err)
{
    const char *hosts, *slash;
    size_t hl;

    c->session_ms = env_ms("VSE_ZK_SESSION_MS", SESSION_MS);
    c->reconnect_ms = env_ms("VSE_ZK_RECONNECT_MS", RECONNECT_MS);
    c->bucket_max = env_ms("VSE_ZK_BUCKET_MAX", BUCKET_MAX);
    if (strncmp(rest, "//", 2) != 0)
        return bad_url(rest, "it does not start with //", err);
    hosts = rest + 2;
    slash = strchr(hosts, '/');
    if (slash == NULL || slash[1] == '\0')
        return bad_url(rest, "it names no chroot path", err);
    hl = (size_t)(slash - hosts);
    if (hl == 0)
        return bad_url(rest, "it names no host", err);
    if (hl >= sizeof(c->hosts))
        return bad_url(rest, "the host list is too long", err);
    /* Each member is HOST:PORT. */
    for (const char *h = hosts; h < slash;) {
        const char *end = memchr(h, ',', (size_t)(slash - h));
        const char *colon;
        char *stop;
        long port;

        if (end == NULL)
            end = slash;
        colon = NULL;
        for (const char *p = h; p < end; p++)
            if (*p == ':')
                colon = p;
        if (colon == NULL || colon == h)
            return bad_url(rest, "each member must be HOST:PORT", err);
        port = strtol(colon + 1, &stop, 10);
        if (stop != end || port < 1 || port > 65535)
            return bad_url(rest, "a port is not a number in 1..65535", err);
        h = end + 1;
    }
    memcpy(c->hosts, hosts, hl);
    c->hosts[hl] = '\0';
    if (strlen(slash) >= sizeof(c->root))
        return bad_url(rest, "the chroot path is too long", err);
    vse__strlcpy(c->root, slash, sizeof(c->root));
    /* Trailing slashes are dropped; empty components are refused. */
    for (size_t n = strlen(c->root); n > 1 && c->root[n - 1] == '/'; n--)
        c->root[n - 1] = '\0';
    if (strstr(c->root, "//") != NULL || strcmp(c->root, "/") == 0 ||
        strcmp(c->root, "/zookeeper") == 0 ||
        strncmp(c->root, "/zookeeper/", 11) == 0)
        return bad_url(rest,
                       "the chroot must be a path such as /vse, not "
                       "the root or ZooKeeper's own",
                       err);
    for (const char *p = c->root; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad_url(rest, "the chroot holds a control character", err);
        if (p[0] == '/' && p[1] == '.' &&
            (p[2] == '/' || p[2] == '\0' ||
             (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
            return bad_url(rest, "the chroot holds . or ..", err);
    }
    snprintf(c->where, sizeof(c->where), "zookeeper://%s%s", c->hosts,
             c->root);
    return 0;
}

/* ---- the schema: facts for store.c, which judges them ---- */

/* The lock schema_begin takes: an ephemeral node, so that it goes with
 * a process that dies while migrating.  Not a node of the layout. */
#define LOCK_NODE "schema-lock"

static int layout_node(const char *name)
{
    return strcmp(name, "resources") == 0 || strcmp(name, "machines") == 0 ||
           strcmp(name, "log") == 0 || strcmp(name, LOCK_NODE) == 0 ||
           strcmp(name, "holds") == 0 || strcmp(name, "holders") == 0;
}

/*
 * ROOT/meta is a JSON object (format, schema_version, created...); no
 * meta node and nothing but the layout's nodes (what a creation cut short
 * leaves) is an empty store.
 */
static int zk_inspect(struct vse_store *s, struct vse_store_facts *f,
                      struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE], *buf;
    struct String_vector kids;
    struct Stat st;
    int len, zrc;

    f->where = c->where;
    f->hint = "use a chroot of its own, e.g. zookeeper://HOST:PORT/vse";
    snprintf(path, sizeof(path), "%s/meta", c->root);
    zrc = zget(c, path, &buf, &len, &st, 0, err, "read the schema");
    if (zrc < 0)
        return zrc;
    if (zrc == 0) {
        json_t *o = json_loadb(buf, (size_t)len, 0, NULL);
        const char *fmt = json_string_value(json_object_get(o, "format"));
        json_t *v = json_object_get(o, "schema_version");

        f->has_meta = 1;
        vse__strlcpy(f->format, fmt ? fmt : "", sizeof(f->format));
        if (json_is_integer(v) && json_integer_value(v) > 0 &&
            json_integer_value(v) <= INT_MAX)
            f->version = (int)json_integer_value(v);
        json_decref(o);
        free(buf);
        return 0;
    }
    zrc = zchildren(c, c->root, 0, &kids, NULL, err, "read the chroot");
    if (zrc < 0)
        return zrc;
    if (zrc == 0) {
        for (int i = 0; i < kids.count; i++)
            if (!layout_node(kids.data[i]))
                f->other = "the chroot holds other nodes and no meta node";
        deallocate_String_vector(&kids);
    }
    return 0;
}

/* Create every component of the chroot that is missing. */
static int make_root(struct zk_conn *c, struct vse_error *err)
{
    char p[sizeof(c->root)];

    for (size_t i = 1;; i++) {
        if (c->root[i] != '/' && c->root[i] != '\0')
            continue;
        memcpy(p, c->root, i);
        p[i] = '\0';
        if (zcreate(c, p, NULL, err, "create the chroot") < 0)
            return VSE_ESTORE;
        if (c->root[i] == '\0')
            return 0;
    }
}

/* Is the lock node ours (made by this session, e.g. by a create whose
 * answer was lost)?  1, 0 (someone else's or gone), or an error. */
static int lock_ours(struct zk_conn *c, const char *path,
                     struct vse_error *err)
{
    struct Stat st;
    int zrc = zoo_exists(c->zh, path, 0, &st);

    if (zrc == ZNONODE)
        return 0;
    if (zrc != ZOK)
        return zk_fail(c, zrc, err, "read the schema lock");
    return st.ephemeralOwner == zoo_client_id(c->zh)->client_id;
}

/*
 * ZooKeeper has no transaction that spans the steps: the lock keeps two
 * processes from migrating at once, every step is safe to run again, and
 * meta is written once, in schema_end, so a store is at one version or
 * the next.  A lock left by a process that died goes with its session.
 */
static int zk_schema_begin(struct vse_store *s, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    int64_t deadline = mono_ms() + c->reconnect_ms + c->session_ms;
    char path[PATH_SIZE];
    struct Stat st;
    int rc;

    rc = make_root(c, err);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/" LOCK_NODE, c->root);
    for (;;) {
        uint64_t g = gen_now(c);
        int zrc;

        rc = ensure(c, err);
        if (rc < 0)
            return rc;
        zrc = zoo_create(c->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
                         ZOO_EPHEMERAL, NULL, 0);
        if (zrc == ZOK)
            break;
        if (zrc == ZNODEEXISTS || lost(zrc)) {
            if (zrc == ZNODEEXISTS || ensure(c, NULL) == 0) {
                rc = lock_ours(c, path, zrc == ZNODEEXISTS ? err : NULL);
                if (rc == 1)
                    break;
                if (rc < 0 && zrc == ZNODEEXISTS)
                    return rc;
            }
        } else {
            return zk_fail(c, zrc, err, "take the schema lock");
        }
        if (interrupted(c) || mono_ms() >= deadline) {
            vse__err(err, VSE_EBUSY, "cannot take the schema lock of '%s'",
                     c->where);
            vse__err_detail(err,
                            "another process is creating or migrating "
                            "the store (node %s)",
                            path);
            vse__err_hint(err, "retry later");
            return VSE_EBUSY;
        }
        /* A watch on the lock wakes the nap when it goes. */
        zoo_exists(c->zh, path, 1, &st);
        nap(c, g, 200);
    }
    snprintf(path, sizeof(path), "%s/meta", c->root);
    json_decref(c->meta);
    c->meta = NULL;
    c->meta_at = -1;
    {
        char *buf;
        int len;

        rc = zget(c, path, &buf, &len, &st, 0, err, "read the schema");
        if (rc == 0) {
            c->meta = json_loadb(buf, (size_t)len, 0, NULL);
            c->meta_at = st.version;
            free(buf);
        }
    }
    if (rc >= 0 && c->meta == NULL)
        c->meta = json_object();
    if (rc >= 0 && c->meta == NULL)
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
    if (rc < 0) {
        snprintf(path, sizeof(path), "%s/" LOCK_NODE, c->root);
        zdelete(c, path, -1, NULL, "drop the schema lock");
        return rc;
    }
    return 0;
}

/* Write meta (at the version read under the lock), then drop the lock. */
static int zk_schema_end(struct vse_store *s, int commit,
                         struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE], *text = NULL;
    int rc = 0, zrc;

    snprintf(path, sizeof(path), "%s/meta", c->root);
    if (commit) {
        text = json_dumps(c->meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text == NULL)
            rc = vse__err(err, VSE_ENOMEM, "out of memory");
    }
    if (text != NULL) {
        rc = ensure(c, err);
        if (rc == 0) {
            zrc = c->meta_at < 0
                      ? zoo_create(c->zh, path, text, (int)strlen(text),
                                   &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0)
                      : zoo_set(c->zh, path, text, (int)strlen(text),
                                c->meta_at);
            if (zrc == ZNODEEXISTS || zrc == ZBADVERSION) {
                rc = vse__err(err, VSE_EBUSY,
                              "the schema of '%s' changed "
                              "while it was being migrated",
                              c->where);
                vse__err_hint(err, "retry: the next open judges it again");
            } else if (zrc != ZOK) {
                rc = zk_fail(c, zrc, err, "record the schema version");
            }
        }
        free(text);
    }
    json_decref(c->meta);
    c->meta = NULL;
    snprintf(path, sizeof(path), "%s/" LOCK_NODE, c->root);
    zdelete(c, path, -1, NULL, "drop the schema lock");
    return rc;
}

/* Numbers stay numbers in meta (format is the one string). */
static int zk_meta_set(struct vse_store *s, const char *key,
                       const char *value, const char *what,
                       struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char *end;
    long long n;
    json_t *v;

    errno = 0;
    n = strtoll(value, &end, 10);
    if (value[0] != '\0' && *end == '\0' && errno == 0)
        v = json_integer((json_int_t)n);
    else
        v = json_string(value);
    if (v == NULL || c->meta == NULL ||
        json_object_set_new(c->meta, key, v) < 0)
        return vse__err(err, VSE_ENOMEM, "cannot %s: out of memory", what);
    return 0;
}

/* Step 0: the tree.  Each node may be there already (a creation cut
 * short); the first log bucket is 0. */
static int step_tree(struct vse_store *s, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE];
    const char *dirs[] = {"resources", "machines", "log"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        snprintf(path, sizeof(path), "%s/%s", c->root, dirs[i]);
        if (zcreate(c, path, NULL, err, "create the store layout") < 0)
            return VSE_ESTORE;
    }
    bucket_path(c, 0, path, sizeof(path));
    if (zcreate(c, path, NULL, err, "create the store layout") < 0)
        return VSE_ESTORE;
    return 0;
}

/* Schema versions 2 and 3 changed the SQL stores only. */
static int step_none(struct vse_store *s, struct vse_error *err)
{
    return 0;
}

/* Step 4 -> 5: the trees of holds (docs/architecture.md). */
static int step_holds(struct vse_store *s, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE];
    const char *dirs[] = {"holds", "holders"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        snprintf(path, sizeof(path), "%s/%s", c->root, dirs[i]);
        if (zcreate(c, path, NULL, err, "create the holds layout") < 0)
            return VSE_ESTORE;
    }
    return 0;
}

static const struct vse_store_step zk_steps[] = {
    {NULL, step_tree}, /* 0 -> 1 */
    {NULL, step_none}, /* 1 -> 2 */
    {NULL, step_none}, /* 2 -> 3 */
    /* Version 4: empty; it was set aside for retry budgets, which needed
     * no new column in the end.  Kept so the numbering stays shared. */
    {NULL, step_none},  /* 3 -> 4 */
    {NULL, step_holds}, /* 4 -> 5 */
    /* Version 6: several history rows per PostgreSQL transaction; the
     * ZooKeeper layout does not change. */
    {NULL, step_none}, /* 5 -> 6 */
};
_Static_assert(sizeof(zk_steps) / sizeof(*zk_steps) == VSE_SCHEMA_VERSION,
               "one step per schema version");

static void zk_close(struct vse_store *s)
{
    struct zk_conn *c = (struct zk_conn *)s;

    session_close(c);
    json_decref(c->meta);
    c->meta = NULL;
    if (c->sync_inited) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        c->sync_inited = 0;
    }
}

static int zk_open(struct vse_store *s, const char *rest,
                   struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    int rc = parse_url(c, rest, err);

    if (rc < 0)
        return rc;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->sync_inited = 1;
    c->bucket = -1;
    /* The client's own logging goes through on_log; its level is
     * process-wide, so leave it as the application set it. */
    if (session_open(c) < 0) {
        rc = vse__err(err, VSE_ESTORE,
                      "cannot start a ZooKeeper session "
                      "for '%s': %s",
                      c->where, strerror(errno));
    } else {
        rc = ensure(c, err);
    }
    if (rc < 0)
        zk_close(s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The log: buckets of sequential nodes                                */
/* ------------------------------------------------------------------ */

/* Bucket numbers from names "bNNNNNNNNNN", ascending; *n of them. */
static int list_buckets(struct zk_conn *c, int watch, int64_t **out, int *n,
                        struct vse_error *err)
{
    char path[PATH_SIZE];
    struct String_vector kids;
    int zrc;

    *out = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "%s/log", c->root);
    zrc = zchildren(c, path, watch, &kids, NULL, err, "list the log");
    if (zrc < 0)
        return zrc;
    if (zrc == ABSENT)
        return vse__err(err, VSE_ESTORE, "store '%s' has no log node",
                        c->where);
    sort_names(&kids);
    *out = vse__calloc((size_t)kids.count + 1, sizeof(int64_t));
    if (*out == NULL) {
        deallocate_String_vector(&kids);
        return vse__err(err, VSE_ENOMEM, "out of memory");
    }
    for (int i = 0; i < kids.count; i++)
        if (kids.data[i][0] == 'b')
            (*out)[(*n)++] = strtoll(kids.data[i] + 1, NULL, 10);
    deallocate_String_vector(&kids);
    return 0;
}

/* The open bucket: the highest; a log without one gets b0 again. */
static int current_bucket(struct zk_conn *c, struct vse_error *err)
{
    int64_t *b;
    int n, rc;

    if (c->bucket >= 0)
        return 0;
    rc = list_buckets(c, 0, &b, &n, err);
    if (rc < 0)
        return rc;
    if (n > 0) {
        c->bucket = b[n - 1];
    } else {
        char path[PATH_SIZE];

        bucket_path(c, 0, path, sizeof(path));
        rc = zcreate(c, path, NULL, err, "create a log bucket");
        c->bucket = rc < 0 ? -1 : 0;
    }
    free(b);
    return rc < 0 ? rc : 0;
}

/*
 * Seal bucket b and open b + 1, in one multi.  Every append checks that
 * its bucket is still at data version 0, so once the seal commits no
 * entry lands in b: every entry of b comes before every entry of b + 1,
 * and a reader can stop at a sealed bucket older than what it has seen.
 * Losing the race to another sealer is fine.
 */
static void seal_bucket(struct zk_conn *c, int64_t b)
{
    char p0[PATH_SIZE], p1[PATH_SIZE];
    zoo_op_t ops[2];
    zoo_op_result_t res[2];

    bucket_path(c, b, p0, sizeof(p0));
    bucket_path(c, b + 1, p1, sizeof(p1));
    zoo_set_op_init(&ops[0], p0, "sealed", 6, 0, NULL);
    zoo_create_op_init(&ops[1], p1, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL,
                       0);
    zoo_multi(c->zh, 2, ops, res);
    c->bucket = -1;
}

/* ------------------------------------------------------------------ */
/* Resources: the hot path                                             */
/* ------------------------------------------------------------------ */

static int zk_get(struct vse_store *s, const char *id,
                  struct vse_resource *out, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE], *buf;
    struct Stat st;
    int len, zrc;

    res_path(c, id, path, sizeof(path));
    zrc = zget(c, path, &buf, &len, &st, 0, err, "read a resource");
    if (zrc < 0)
        return zrc;
    /* A node created by an apply whose set has not... cannot exist: the
     * create and the set are one multi.  Empty data is not a row. */
    if (zrc == ABSENT || len == 0) {
        free(buf);
        return vse__err(err, VSE_ENOTFOUND, "resource '%s' not found", id);
    }
    zrc = parse_row(buf, len, out);
    free(buf);
    if (zrc < 0)
        return vse__err(err, VSE_ESTORE,
                        "resource '%s' in store '%s' is "
                        "not a vse row",
                        id, c->where);
    /* The znode's version is the compare-and-swap version. */
    out->version = st.version;
    return 0;
}

static int conflict(struct zk_conn *c, const struct vse_change *ch,
                    struct vse_resource *cur, struct vse_error *err)
{
    struct vse_resource tmp;
    struct vse_error e2;
    int rc;

    if (cur == NULL)
        cur = &tmp;
    rc = zk_get(&c->base, ch->row->id, cur, &e2);
    if (rc == VSE_ENOTFOUND) {
        memset(cur, 0, sizeof(*cur));
        vse__strlcpy(cur->id, ch->row->id, sizeof(cur->id));
        return vse__err(err, VSE_ECONFLICT, "resource '%s' does not exist",
                        ch->row->id);
    }
    if (rc < 0) {
        if (err != NULL)
            *err = e2;
        return rc;
    }
    return vse__err(err, VSE_ECONFLICT,
                    "resource '%s' is at version %" PRId64 ", not %" PRId64,
                    ch->row->id, cur->version, ch->expect_version);
}

/* ------------------------------------------------------------------ */
/* Holds                                                               */
/* ------------------------------------------------------------------ */

/*
 * ROOT/holds/HELD has one child per hold on HELD, named by the holder,
 * whose data is the hold; ROOT/holders/HOLDER names what HOLDER holds.
 * The version of ROOT/holds/HELD counts the holds taken: a take sets it
 * at the version it read, a guarded begin checks it, so the two cannot
 * both commit against the same reading (a multi has no reads).  A release
 * deletes without a set: it only makes a later begin more permissive.
 * Purge removes the directory of a resource it drops (purge_terminal()).
 */
typedef VSE_ARRAY(struct vse_hold) zk_holds_array;

static void holds_dir(const struct zk_conn *c, const char *held, char *buf,
                      size_t size)
{
    char enc[VSE_ID_MAX * 3 + 1];

    enc_id(held, enc, sizeof(enc));
    snprintf(buf, size, "%s/holds/%s", c->root, enc);
}

static void hold_node(const struct zk_conn *c, const char *held,
                      const char *holder, char *buf, size_t size)
{
    char dir[PATH_SIZE], enc[VSE_ID_MAX * 3 + 1];

    holds_dir(c, held, dir, sizeof(dir));
    enc_id(holder, enc, sizeof(enc));
    snprintf(buf, size, "%s/%s", dir, enc);
}

static void holder_node(const struct zk_conn *c, const char *holder,
                        char *buf, size_t size)
{
    char enc[VSE_ID_MAX * 3 + 1];

    enc_id(holder, enc, sizeof(enc));
    snprintf(buf, size, "%s/holders/%s", c->root, enc);
}

static char *hold_json(const struct vse_hold *h)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "held", h->held,
                          "holder", h->holder, "machine", h->machine, "op",
                          h->op, "mode", vse_hold_mode_name(h->mode), "since",
                          (json_int_t)h->since);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

static int parse_hold(const char *buf, int len, struct vse_hold *h)
{
    json_t *o = json_loadb(buf, (size_t)len, 0, NULL);
    char mode[16];

    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    memset(h, 0, sizeof(*h));
    j_str(o, "held", h->held, sizeof(h->held));
    j_str(o, "holder", h->holder, sizeof(h->holder));
    j_str(o, "machine", h->machine, sizeof(h->machine));
    j_str(o, "op", h->op, sizeof(h->op));
    j_str(o, "mode", mode, sizeof(mode));
    h->mode = strcmp(mode, "exclusive") == 0 ? VSE_HOLD_EXCLUSIVE
                                             : VSE_HOLD_SHARED;
    h->since = j_int(o, "since");
    json_decref(o);
    return 0;
}

/*
 * The holds on `held`, appended to *a, and the version of its directory
 * node in *dir_version (-1: there is none, so no holds).
 */
static int read_held(struct zk_conn *c, const char *held, zk_holds_array *a,
                     int *dir_version, struct vse_error *err)
{
    char dir[PATH_SIZE], path[PATH_SIZE * 2];
    struct String_vector kids;
    struct Stat st;
    int rc;

    holds_dir(c, held, dir, sizeof(dir));
    rc = zchildren(c, dir, 0, &kids, &st, err, "read holds");
    *dir_version = -1;
    if (rc == ABSENT)
        return 0;
    if (rc < 0)
        return rc;
    *dir_version = st.version;
    sort_names(&kids);
    for (int i = 0; rc >= 0 && i < kids.count; i++) {
        struct vse_hold h;
        struct Stat hs;
        char *buf;
        int len;

        snprintf(path, sizeof(path), "%s/%s", dir, kids.data[i]);
        rc = zget(c, path, &buf, &len, &hs, 0, err, "read a hold");
        if (rc == ABSENT) {
            rc = 0; /* released since the listing */
            continue;
        }
        if (rc < 0)
            break;
        if (parse_hold(buf, len, &h) == 0 && vse__array_push(a, h) < 0)
            rc = vse__err(err, VSE_ENOMEM, "out of memory");
        free(buf);
    }
    deallocate_String_vector(&kids);
    return rc < 0 ? rc : 0;
}

static int zk_holds(struct vse_store *s, const char *held, const char *holder,
                    vse_hold_cb cb, void *ctx, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    zk_holds_array a = {0};
    char path[PATH_SIZE], name[VSE_ID_MAX + 1];
    struct String_vector kids = {0};
    int rc = 0, ver;

    if (held != NULL) {
        rc = read_held(c, held, &a, &ver, err);
    } else if (holder != NULL) {
        struct Stat st;
        char *buf;
        int len;

        holder_node(c, holder, path, sizeof(path));
        rc = zget(c, path, &buf, &len, &st, 0, err, "read a holder");
        if (rc == 0) {
            rc = read_held(c, buf, &a, &ver, err);
            free(buf);
        } else if (rc == ABSENT) {
            rc = 0;
        }
    } else {
        snprintf(path, sizeof(path), "%s/holds", c->root);
        rc = zchildren(c, path, 0, &kids, NULL, err, "list holds");
        if (rc == ABSENT)
            rc = 0;
        sort_names(&kids);
        for (int i = 0; rc == 0 && i < kids.count; i++)
            if (dec_id(kids.data[i], name, sizeof(name)) == 0)
                rc = read_held(c, name, &a, &ver, err);
        deallocate_String_vector(&kids);
    }
    for (size_t i = 0; rc == 0 && i < a.n; i++) {
        if (holder != NULL && strcmp(a.v[i].holder, holder) != 0)
            continue;
        if (cb(ctx, &a.v[i]) != 0)
            break;
    }
    vse__array_release(&a);
    return rc < 0 ? rc : 0;
}

/* The holds part of one multi, read before it is sent. */
struct hold_ops {
    int guard_ver; /* the guarded resource's holds dir, -1 absent */
    int take_ver;  /* the held resource's holds dir, -1 absent */
    char gdir[PATH_SIZE], tdir[PATH_SIZE], tnode[PATH_SIZE];
    char tidx[PATH_SIZE], hres[PATH_SIZE], rnode[PATH_SIZE], ridx[PATH_SIZE];
    char *tjson;
};

/* 0: go on; 1: a guard or take is refused by what is there now. */
static int hold_prep(struct zk_conn *c, const struct vse_change *ch,
                     struct hold_ops *h, struct vse_error *err)
{
    zk_holds_array a = {0};
    int rc = 0;

    if (ch->guard != 0) {
        rc = read_held(c, ch->row->id, &a, &h->guard_ver, err);
        for (size_t i = 0; rc == 0 && i < a.n; i++)
            if ((unsigned)a.v[i].mode & ch->guard)
                rc = 1;
        holds_dir(c, ch->row->id, h->gdir, sizeof(h->gdir));
        a.n = 0;
    }
    if (rc == 0 && ch->take != NULL) {
        rc = read_held(c, ch->take->held, &a, &h->take_ver, err);
        for (size_t i = 0; rc == 0 && i < a.n; i++)
            if (strcmp(a.v[i].holder, ch->row->id) != 0 &&
                (a.v[i].mode == VSE_HOLD_EXCLUSIVE ||
                 ch->take->mode == VSE_HOLD_EXCLUSIVE))
                rc = 1;
        holds_dir(c, ch->take->held, h->tdir, sizeof(h->tdir));
        hold_node(c, ch->take->held, ch->row->id, h->tnode, sizeof(h->tnode));
        holder_node(c, ch->row->id, h->tidx, sizeof(h->tidx));
        res_path(c, ch->take->held, h->hres, sizeof(h->hres));
        free(h->tjson);
        h->tjson = hold_json(ch->take);
        if (rc == 0 && h->tjson == NULL)
            rc = vse__err(err, VSE_ENOMEM, "out of memory");
    }
    if (ch->release != NULL) {
        hold_node(c, ch->release, ch->row->id, h->rnode, sizeof(h->rnode));
        holder_node(c, ch->row->id, h->ridx, sizeof(h->ridx));
    }
    vse__array_release(&a);
    return rc;
}

/* Append the holds ops of h to ops at *n. */
static void hold_ops_add(const struct vse_change *ch,
                         const struct hold_ops *h, zoo_op_t *ops, int *n)
{
    if (ch->guard != 0) {
        if (h->guard_ver >= 0) {
            zoo_check_op_init(&ops[(*n)++], h->gdir, h->guard_ver);
        } else {
            /* "There is no such node", as a multi can say it. */
            zoo_create_op_init(&ops[(*n)++], h->gdir, NULL, -1,
                               &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
            zoo_delete_op_init(&ops[(*n)++], h->gdir, 0);
        }
    }
    if (ch->take != NULL) {
        zoo_check_op_init(&ops[(*n)++], h->hres, (int)ch->held_version);
        if (h->take_ver >= 0)
            zoo_set_op_init(&ops[(*n)++], h->tdir, NULL, -1, h->take_ver,
                            NULL);
        else
            zoo_create_op_init(&ops[(*n)++], h->tdir, NULL, -1,
                               &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        zoo_create_op_init(&ops[(*n)++], h->tnode, h->tjson,
                           (int)strlen(h->tjson), &ZOO_OPEN_ACL_UNSAFE, 0,
                           NULL, 0);
        zoo_create_op_init(&ops[(*n)++], h->tidx, ch->take->held,
                           (int)strlen(ch->take->held), &ZOO_OPEN_ACL_UNSAFE,
                           0, NULL, 0);
    }
    if (ch->release != NULL) {
        zoo_delete_op_init(&ops[(*n)++], h->rnode, -1);
        zoo_delete_op_init(&ops[(*n)++], h->ridx, -1);
    }
}

/* A guard or take failed: the row as it is, at the version expected. */
static int held_conflict(struct zk_conn *c, const struct vse_change *ch,
                         struct vse_resource *cur, struct vse_error *err)
{
    struct vse_resource tmp;
    struct vse_error e2;
    int rc;

    if (cur == NULL)
        cur = &tmp;
    rc = zk_get(&c->base, ch->row->id, cur, &e2);
    if (rc == VSE_ENOTFOUND) {
        memset(cur, 0, sizeof(*cur));
        vse__strlcpy(cur->id, ch->row->id, sizeof(cur->id));
    } else if (rc < 0) {
        if (err != NULL)
            *err = e2;
        return rc;
    }
    return vse__err(err, VSE_ECONFLICT, "the holds on '%s' changed",
                    ch->take ? ch->take->held : ch->row->id);
}

/*
 * One try at reading the history node at path after a sync, so that the
 * read sees every write the lost multi could have made.  ZOK (*buf set),
 * ZNONODE, or the client's error.
 */
static int settle_read(struct zk_conn *c, const char *path, char **buf,
                       int *len, struct Stat *st)
{
    int size = DATA_SIZE, zrc = zsync(c, path);

    *buf = NULL;
    while (zrc == ZOK) {
        char *b = vse__malloc((size_t)size + 1);
        int n = size;

        if (b == NULL)
            return ZSYSTEMERROR;
        zrc = zoo_get(c->zh, path, 0, b, &n, st);
        if (zrc == ZOK && st->dataLength > size) {
            free(b);
            size = st->dataLength;
            continue;
        }
        if (zrc == ZOK) {
            b[n < 0 ? 0 : n] = '\0';
            *buf = b;
            *len = n < 0 ? 0 : n;
            return ZOK;
        }
        free(b);
    }
    return zrc;
}

/*
 * The session a write went out on may still commit it after the client
 * gave up on its answer: a server that had not read the request yet may
 * read it later (seen with a frozen server: the write landed after a sync
 * and a read on the same, reconnected session said it had not).  Closing
 * that session makes what it did final: a request of it the server reads
 * after the close fails with the session, one read before is ordered
 * before the close, and so before anything read on the next session.  A
 * close that is not answered leaves the session to expire: wait that
 * out.  `old` is the session's id; a session the client already replaced
 * (it expired) needs nothing.  0, or VSE_ESTORE past the deadline or when
 * interrupted.
 */
static int retire_session(struct zk_conn *c, int64_t old, int64_t deadline)
{
    int64_t until;
    int expiry_ms;

    if (c->zh == NULL || zoo_client_id(c->zh)->client_id != old)
        return 0;
    expiry_ms = zoo_recv_timeout(c->zh);
    if (zookeeper_close(c->zh) == ZOK) {
        c->zh = NULL;
        return 0;
    }
    c->zh = NULL;
    until = mono_ms() + (expiry_ms > 0 ? expiry_ms : c->session_ms);
    while (mono_ms() < until) {
        if (interrupted(c) || mono_ms() >= deadline)
            return VSE_ESTORE;
        nap(c, gen_now(c), 100);
    }
    return 0;
}

/* Connected on a session other than `old`, the one a lost write went out
 * on (closed first): 0, or VSE_ESTORE with err set. */
static int session_after(struct zk_conn *c, int64_t old, int64_t deadline,
                         struct vse_error *err)
{
    int rc = ensure_until(c, deadline, err);

    if (rc == 0 && retire_session(c, old, deadline) != 0)
        rc = vse__err(err, VSE_ESTORE,
                      "cannot close the session of a lost write to '%s'",
                      c->where);
    if (rc == 0)
        rc = ensure_until(c, deadline, err);
    return rc;
}

/*
 * The multi's answer was lost.  The history node it would have created is
 * named by (resource, version): once the session the multi went out on
 * is closed (retire_session()), after a sync on a new one, that node with
 * our kind, op_id and time says it landed (and its czxid is the seq); no
 * node, or someone else's, says it did not.  A leader election makes the
 * ensemble unreachable for a few seconds, so reconnect, sync and read are tried
 * again (backing off) until reconnect_ms has passed: VSE_EUNKNOWN only
 * when settling stayed impossible that long, or vse_interrupt() asked to
 * stop.  0 landed, 1 not, VSE_EUNKNOWN.
 */
static int settle(struct zk_conn *c, const struct vse_change *ch,
                  int64_t *seq, int zlost, struct vse_error *err)
{
    /* NULL: a renew without a history row; the row itself says. */
    const struct vse_event *e = ch->quiet ? NULL : ch->ev;
    int64_t deadline = mono_ms() + c->reconnect_ms, pause = 50;
    char path[PATH_SIZE], *buf = NULL;
    struct vse_event got;
    struct Stat st;
    int len = 0, rc, zrc = ZOK, tries = 0;
    int64_t old = c->zh != NULL ? zoo_client_id(c->zh)->client_id : 0;

    if (e == NULL)
        res_path(c, ch->row->id, path, sizeof(path));
    else
        hist_path(c, e->resource, e->version, path, sizeof(path));
    for (;;) {
        uint64_t g = gen_now(c);

        tries++;
        rc = session_after(c, old, deadline, NULL);
        if (rc == 0) {
            zrc = settle_read(c, path, &buf, &len, &st);
            if (zrc == ZOK || zrc == ZNONODE)
                break;
            if (!lost(zrc))
                break; /* an answer about the data we cannot read */
        }
        if (interrupted(c) || mono_ms() >= deadline)
            break;
        /* Woken early when the session's state changes. */
        nap(c, g, pause);
        pause = pause * 2 > 1000 ? 1000 : pause * 2;
    }
    if (rc == 0 && zrc == ZOK && e == NULL) {
        struct vse_resource now;

        /* Still at the version it was sent against: not written; at ours
         * with our lease: written; moved on past it: undecidable. */
        rc = parse_row(buf, len, &now) == 0 ? 2 : 1;
        free(buf);
        if (rc == 2 && (int64_t)st.version == ch->expect_version)
            return 1;
        if (rc == 2 && (int64_t)st.version == ch->row->version &&
            now.lease_expires == ch->row->lease_expires &&
            strcmp(now.op_id, ch->row->op_id) == 0)
            return 0;
        rc = 0;
        zrc = ZBADVERSION; /* it moved on, or it cannot be read */
    } else if (rc == 0 && zrc == ZOK) {
        rc = 1;
        if (parse_event(buf, len, st.czxid, &got) == 0 &&
            got.kind == e->kind && got.at == e->at &&
            strcmp(got.op_id, e->op_id) == 0) {
            if (seq != NULL)
                *seq = st.czxid;
            rc = 0;
        }
        free(buf);
        return rc;
    }
    if (rc == 0 && zrc == ZNONODE)
        return 1;
    if (e == NULL)
        vse__err(err, VSE_EUNKNOWN,
                 "outcome of the renew unknown: re-read resource '%s'",
                 ch->row->id);
    else
        vse__err(err, VSE_EUNKNOWN,
                 "outcome unknown until the store is back: "
                 "re-read resource '%s'",
                 ch->row->id);
    vse__err_detail(err,
                    "lost the connection to '%s' during the "
                    "transition to version %" PRId64 " (zookeeper: %s); "
                    "%s after %d tries to settle it (last: %s)",
                    c->where, ch->row->version, zerror(zlost),
                    interrupted(c) ? "interrupted" : "gave up", tries,
                    rc == 0 ? zerror(zrc) : "no session");
    if (e == NULL)
        vse__err_hint(err, "renew again: a renew only extends the lease");
    else
        vse__err_hint(err,
                      "the transition happened if the history of '%s' "
                      "has version %" PRId64 " with op_id %s",
                      ch->row->id, ch->row->version,
                      e->op_id[0] ? e->op_id : "-");
    return VSE_EUNKNOWN;
}

/*
 * One multi: [check the log bucket is open], [create the row node],
 * set the row at expect_version (the znode's version), create the history
 * node named by the new version, append the event to the log.  The set's
 * stat carries the transaction's zxid: the seq.
 */
static int apply_once(struct zk_conn *c, const struct vse_change *ch,
                      const char *row, const char *ev,
                      const struct hold_ops *h, struct vse_resource *cur,
                      int64_t *seq, int *zlost, struct vse_error *err)
{
    char rp[PATH_SIZE], hp[PATH_SIZE], bp[PATH_SIZE], lp[PATH_SIZE],
        made[PATH_SIZE];
    zoo_op_t ops[16];
    zoo_op_result_t res[16];
    struct Stat st;
    int n = 0, i_check = -1, i_create = -1, i_set, i_hist = -1, i_holds;
    int zrc;

    memset(&st, 0, sizeof(st));
    res_path(c, ch->row->id, rp, sizeof(rp));
    hist_path(c, ch->row->id, ch->row->version, hp, sizeof(hp));
    bucket_path(c, c->bucket, bp, sizeof(bp));
    snprintf(lp, sizeof(lp), "%s/e-", bp);
    if (ev != NULL) {
        i_check = n;
        zoo_check_op_init(&ops[n++], bp, 0);
    }
    if (ch->expect_version == 0) {
        i_create = n;
        zoo_create_op_init(&ops[n++], rp, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
                           NULL, 0);
    }
    i_set = n;
    zoo_set_op_init(&ops[n++], rp, row, (int)strlen(row),
                    (int)ch->expect_version, &st);
    made[0] = '\0';
    if (ev != NULL) {
        i_hist = n;
        zoo_create_op_init(&ops[n++], hp, ev, (int)strlen(ev),
                           &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        zoo_create_op_init(&ops[n++], lp, ev, (int)strlen(ev),
                           &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
                           made, sizeof(made));
    }
    i_holds = n;
    hold_ops_add(ch, h, ops, &n);
    memset(res, 0, sizeof(res));
    zrc = zoo_multi(c->zh, n, ops, res);
    if (zrc == ZOK) {
        const char *dash = strrchr(made, '-');

        if (seq != NULL)
            *seq = ev != NULL ? st.mzxid : 0;
        if (dash != NULL && strtoll(dash + 1, NULL, 10) >= c->bucket_max)
            seal_bucket(c, c->bucket);
        return 0;
    }
    if (lost(zrc)) {
        *zlost = zrc;
        return 1;
    }
    if (i_check >= 0 && res[i_check].err != ZOK) {
        c->bucket = -1; /* sealed or gone: find the open one and retry */
        return 2;
    }
    if ((i_create >= 0 && res[i_create].err == ZNODEEXISTS) ||
        res[i_set].err == ZBADVERSION || res[i_set].err == ZNONODE)
        return conflict(c, ch, cur, err);
    /* The ops before the one that failed answer ZOK, those after it
     * ZRUNTIMEINCONSISTENCY: a holds op with another answer failed. */
    for (int i = i_holds; i < n; i++)
        if (res[i].err != ZOK && res[i].err != ZRUNTIMEINCONSISTENCY)
            return held_conflict(c, ch, cur, err);
    if (i_hist >= 0 && res[i_hist].err == ZNODEEXISTS) {
        vse__err(err, VSE_ESTORE,
                 "cannot apply a transition to '%s' in "
                 "store '%s'",
                 ch->row->id, c->where);
        vse__err_detail(err,
                        "zookeeper: the history node of version "
                        "%" PRId64 " exists but the row is at %" PRId64,
                        ch->row->version, ch->expect_version);
        vse__err_hint(err, "history and resources disagree: run "
                           "'vsectl check'");
        return VSE_ESTORE;
    }
    return zk_fail(c, zrc, err, "apply a transition to '%s'", ch->row->id);
}

static int zk_apply(struct vse_store *s, const struct vse_change *ch,
                    struct vse_resource *cur, int64_t *seq,
                    struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char *row = row_json(ch->row);
    char *ev = ch->quiet ? NULL : event_json(ch->ev);
    int rc = 0, settled = 0, moves = 0;
    struct hold_ops *h = vse__calloc(1, sizeof(*h));

    if (row == NULL || (!ch->quiet && ev == NULL) || h == NULL) {
        free(h);
        free(row);
        free(ev);
        return vse__err(err, VSE_ENOMEM, "out of memory");
    }
    /* A second send only after settle() proved the first wrote nothing:
     * the version check still guards it, so a call happens once or not
     * at all. */
    for (;;) {
        int zlost = 0;

        rc = ensure(c, err);
        if (rc == 0)
            rc = current_bucket(c, err);
        if (rc < 0) {
            vse__err_detail(err, "nothing was sent: the transition was not "
                                 "applied");
            break;
        }
        /* Read again before every send: what the multi checks is what
         * was read. */
        if (ch->take != NULL || ch->guard != 0 || ch->release != NULL) {
            rc = hold_prep(c, ch, h, err);
            if (rc == 1)
                rc = held_conflict(c, ch, cur, err);
            if (rc < 0)
                break;
        }
        rc = apply_once(c, ch, row, ev, h, cur, seq, &zlost, err);
        if (rc == 2 && ++moves < BUCKET_RETRIES)
            continue;
        if (rc == 2) {
            rc = vse__err(err, VSE_EBUSY,
                          "store '%s' is busy: the log "
                          "bucket kept moving",
                          c->where);
            vse__err_hint(err, "retry later");
            break;
        }
        if (rc != 1)
            break;
        rc = settle(c, ch, seq, zlost, err);
        if (rc <= 0)
            break;
        if (settled++ > 0) {
            rc = vse__err(err, VSE_ESTORE,
                          "connection lost; the transition "
                          "was not applied");
            vse__err_detail(err,
                            "lost the connection to '%s' twice while "
                            "applying version %" PRId64 " of '%s' "
                            "(zookeeper: %s)",
                            c->where, ch->row->version, ch->row->id,
                            zerror(zlost));
            vse__err_hint(err, "retry: nothing was written");
            break;
        }
    }
    free(h->tjson);
    free(h);
    free(row);
    free(ev);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading many                                                        */
/* ------------------------------------------------------------------ */

struct idname {
    char id[VSE_ID_MAX + 1];
    const char *name;
};

static int cmp_idname(const void *a, const void *b)
{
    return strcmp(((const struct idname *)a)->id,
                  ((const struct idname *)b)->id);
}

/* Every resource id, sorted (byte order, as the SQL stores' ORDER BY). */
static int list_ids(struct zk_conn *c, struct String_vector *kids,
                    struct idname **out, int *n, struct vse_error *err)
{
    char path[PATH_SIZE];
    int zrc;

    *out = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "%s/resources", c->root);
    zrc = zchildren(c, path, 0, kids, NULL, err, "list resources");
    if (zrc < 0)
        return zrc;
    if (zrc == ABSENT)
        return vse__err(err, VSE_ESTORE, "store '%s' has no resources node",
                        c->where);
    *out = vse__calloc((size_t)kids->count + 1, sizeof(**out));
    if (*out == NULL) {
        deallocate_String_vector(kids);
        return vse__err(err, VSE_ENOMEM, "out of memory");
    }
    for (int i = 0; i < kids->count; i++) {
        if (dec_id(kids->data[i], (*out)[*n].id, sizeof((*out)[*n].id)) < 0)
            continue;
        (*out)[(*n)++].name = kids->data[i];
    }
    qsort(*out, (size_t)*n, sizeof(**out), cmp_idname);
    return 0;
}

static int zk_list(struct vse_store *s, const struct vse_filter *f,
                   int64_t now, vse_resource_cb cb, void *ctx,
                   struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    static const struct vse_filter all;
    struct String_vector kids;
    struct idname *ids;
    struct vse_resource *r = vse__malloc(sizeof(*r));
    size_t sent = 0;
    int n, rc;

    if (r == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    if (f == NULL)
        f = &all;
    rc = list_ids(c, &kids, &ids, &n, err);
    for (int i = 0; rc == 0 && i < n; i++) {
        int got;

        if (f->after_id != NULL && f->after_id[0] != '\0' &&
            strcmp(ids[i].id, f->after_id) <= 0)
            continue;
        got = zk_get(s, ids[i].id, r, err);
        if (got == VSE_ENOTFOUND)
            continue; /* deleted since the listing */
        if (got < 0) {
            rc = got;
            break;
        }
        if (f->machine && f->machine[0] && strcmp(r->machine, f->machine))
            continue;
        if (f->state && f->state[0] && strcmp(r->state, f->state))
            continue;
        if (f->not_state && f->not_state[0] &&
            strcmp(r->state, f->not_state) == 0)
            continue;
        if ((f->busy || f->stuck) && r->op[0] == '\0')
            continue;
        if (f->stuck && (r->lease_expires == 0 || r->lease_expires >= now))
            continue;
        if (cb(ctx, r) != 0)
            break;
        if (f->limit != 0 && ++sent >= f->limit)
            break;
    }
    if (ids != NULL) {
        free(ids);
        deallocate_String_vector(&kids);
    }
    free(r);
    return rc;
}

/*
 * First index in the sorted entries of a bucket (or of a resource's
 * history) whose czxid is above after_seq: entries are appended in commit
 * order, so a binary search on
 * their stats finds it.  An entry purged meanwhile counts as old.
 */
static int first_after(struct zk_conn *c, const char *bp,
                       const struct String_vector *kids, int64_t after_seq,
                       int *at, struct vse_error *err)
{
    int lo = 0, hi = kids->count;

    if (after_seq <= 0) {
        *at = 0;
        return 0;
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        char path[PATH_SIZE * 2];
        struct Stat st;
        int zrc;

        snprintf(path, sizeof(path), "%s/%s", bp, kids->data[mid]);
        zrc = zexists(c, path, &st, err, "read history");
        if (zrc < 0)
            return zrc;
        if (zrc == ABSENT || st.czxid <= after_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

/* One resource's history, in version order: its node's children. */
static int history_one(struct zk_conn *c, const char *id, int64_t after_seq,
                       size_t limit, vse_event_cb cb, void *ctx,
                       struct vse_error *err)
{
    char rp[PATH_SIZE], path[PATH_SIZE * 2];
    struct String_vector kids;
    struct vse_event *e = vse__malloc(sizeof(*e));
    size_t sent = 0;
    int rc = 0, zrc, from = 0;

    if (e == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    res_path(c, id, rp, sizeof(rp));
    zrc = zchildren(c, rp, 0, &kids, NULL, err, "read history");
    if (zrc != ZOK) {
        free(e);
        return zrc < 0 ? zrc : 0;
    }
    sort_names(&kids);
    /* Read only what follows after_seq: the reaper counts an op's
     * expiries from the row that began it, and a resource's history grows
     * with every op it ever ran (a stat per probe, not a read per row). */
    rc = first_after(c, rp, &kids, after_seq, &from, err);
    for (int i = from; rc == 0 && i < kids.count; i++) {
        struct Stat st;
        char *buf;
        int len;

        snprintf(path, sizeof(path), "%s/%s", rp, kids.data[i]);
        zrc = zget(c, path, &buf, &len, &st, 0, err, "read history");
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc == ABSENT)
            continue; /* purged since the listing */
        zrc = parse_event(buf, len, st.czxid, e);
        free(buf);
        if (zrc < 0 || e->seq <= after_seq)
            continue;
        if (cb(ctx, e) != 0)
            break;
        if (limit != 0 && ++sent >= limit)
            break;
    }
    deallocate_String_vector(&kids);
    free(e);
    return rc;
}

/*
 * The whole log after after_seq, in seq (zxid) order.  Buckets are read
 * from the newest back to the first sealed one whose seal is not newer
 * than after_seq (nothing in it or before it can be), then forwards.
 */
static int history_all(struct zk_conn *c, int64_t after_seq, size_t limit,
                       vse_event_cb cb, void *ctx, struct vse_error *err)
{
    struct vse_event *e = vse__malloc(sizeof(*e));
    int64_t *b = NULL;
    size_t sent = 0;
    int n = 0, from, rc, stop = 0, hit = 0;

    if (e == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    rc = list_buckets(c, 0, &b, &n, err);
    from = n;
    if (after_seq > 0 && after_seq == c->pos_seq) {
        /* Buckets before the one holding the entry at after_seq hold
         * older entries only (they were sealed before it was opened). */
        for (int i = 0; i < n; i++)
            if (b[i] == c->pos_bucket)
                from = i;
        hit = from < n;
    }
    while (rc == 0 && !hit && from > 0) {
        char bp[PATH_SIZE];
        struct Stat st;
        int zrc;

        if (from < n) {
            bucket_path(c, b[from - 1], bp, sizeof(bp));
            zrc = zexists(c, bp, &st, err, "read the log");
            if (zrc < 0) {
                rc = zrc;
                break;
            }
            if (zrc == ZOK && st.version > 0 && st.mzxid <= after_seq)
                break;
        }
        from--;
    }
    for (int i = from; rc == 0 && !stop && i < n; i++) {
        char bp[PATH_SIZE], path[PATH_SIZE * 2];
        struct String_vector kids;
        int at, zrc;

        bucket_path(c, b[i], bp, sizeof(bp));
        zrc = zchildren(c, bp, 0, &kids, NULL, err, "read the log");
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc == ABSENT)
            continue;
        sort_names(&kids);
        at = 0;
        if (hit && b[i] == c->pos_bucket) {
            /* Names are in commit order within a bucket. */
            while (at < kids.count && strcmp(kids.data[at], c->pos_name) <= 0)
                at++;
        } else if (!hit) {
            rc = first_after(c, bp, &kids, after_seq, &at, err);
        }
        for (int k = at; rc == 0 && k < kids.count; k++) {
            struct Stat est;
            char *buf;
            int len;

            snprintf(path, sizeof(path), "%s/%s", bp, kids.data[k]);
            zrc = zget(c, path, &buf, &len, &est, 0, err, "read the log");
            if (zrc < 0) {
                rc = zrc;
                break;
            }
            if (zrc == ABSENT)
                continue;
            zrc = parse_event(buf, len, est.czxid, e);
            free(buf);
            if (zrc < 0 || e->seq <= after_seq)
                continue;
            c->pos_seq = e->seq;
            c->pos_bucket = b[i];
            vse__strlcpy(c->pos_name, kids.data[k], sizeof(c->pos_name));
            if (cb(ctx, e) != 0 || (limit != 0 && ++sent >= limit)) {
                stop = 1;
                break;
            }
        }
        deallocate_String_vector(&kids);
    }
    free(b);
    free(e);
    return rc;
}

static int zk_history(struct vse_store *s, const char *id, int64_t after_seq,
                      size_t limit, vse_event_cb cb, void *ctx,
                      struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;

    if (id != NULL)
        return history_one(c, id, after_seq, limit, cb, ctx, err);
    return history_all(c, after_seq, limit, cb, ctx, err);
}

static int str_match(const char *want, const char *have)
{
    return want == NULL || strcmp(want, have) == 0;
}

/* Cold path (idempotency checks after a refusal): newest first. */
static int zk_find_event(struct vse_store *s, const struct vse_event_query *q,
                         struct vse_event *out, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char rp[PATH_SIZE], path[PATH_SIZE * 2];
    struct String_vector kids;
    int zrc, found = 0;

    res_path(c, q->resource, rp, sizeof(rp));
    zrc = zchildren(c, rp, 0, &kids, NULL, err, "read history");
    if (zrc < 0)
        return zrc;
    if (zrc == ZOK) {
        sort_names(&kids);
        for (int i = kids.count - 1; i >= 0 && !found; i--) {
            struct Stat st;
            char *buf;
            int len;

            snprintf(path, sizeof(path), "%s/%s", rp, kids.data[i]);
            zrc = zget(c, path, &buf, &len, &st, 0, err, "read history");
            if (zrc < 0)
                break;
            if (zrc == ABSENT)
                continue;
            if (parse_event(buf, len, st.czxid, out) == 0 &&
                str_match(q->op_id, out->op_id) &&
                str_match(q->request_id, out->request_id) &&
                (q->kind == 0 || q->kind == out->kind) &&
                str_match(q->to, out->to))
                found = 1;
            free(buf);
        }
        deallocate_String_vector(&kids);
        if (zrc < 0)
            return zrc;
    }
    if (!found)
        return vse__err(err, VSE_ENOTFOUND,
                        "no matching history row for '%s'", q->resource);
    return 0;
}

static int cmp_lease(const void *a, const void *b)
{
    const struct vse_resource *x = a, *y = b;

    return (x->lease_expires > y->lease_expires) -
           (x->lease_expires < y->lease_expires);
}

/*
 * A scan of the rows.  ZooKeeper has no secondary index, and one kept by
 * hand (a node per owned op, created and deleted in the transition's
 * multi) would need the previous row in the store, which apply does not
 * get.  Rows are served from every member's memory and the reaper asks a
 * few times a minute, so the scan costs O(resources) reads per pass.
 */
static int zk_expired(struct vse_store *s, int64_t now, size_t limit,
                      vse_resource_cb cb, void *ctx, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    struct String_vector kids;
    struct idname *ids;
    struct vse_resource *rows = NULL;
    size_t nrows = 0;
    int n, rc;

    rc = list_ids(c, &kids, &ids, &n, err);
    if (rc < 0)
        return rc;
    rows = vse__calloc((size_t)n + 1, sizeof(*rows));
    if (rows == NULL)
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        struct vse_resource *r = &rows[nrows];
        int got = zk_get(s, ids[i].id, r, err);

        if (got == VSE_ENOTFOUND)
            continue;
        if (got < 0) {
            rc = got;
            break;
        }
        /* Unowned ops wait in a queue for a claim and never expire. */
        if (r->op[0] && r->owner[0] && r->lease_expires != 0 &&
            r->lease_expires < now)
            nrows++;
    }
    free(ids);
    deallocate_String_vector(&kids);
    if (rc == 0) {
        qsort(rows, nrows, sizeof(*rows), cmp_lease);
        for (size_t i = 0; i < nrows && (limit == 0 || i < limit); i++)
            if (cb(ctx, &rows[i]) != 0)
                break;
    }
    free(rows);
    return rc;
}

/*
 * The seq of the newest event: the czxid of the last entry of the newest
 * non-empty bucket.  watch != 0 leaves a one-shot watch on the log and on
 * the open bucket, so that vse_wait wakes on the next append or seal.
 */
static int last_seq(struct zk_conn *c, int watch, int64_t *seq,
                    struct vse_error *err)
{
    int64_t *b;
    int n, rc;

    *seq = 0;
    rc = list_buckets(c, watch, &b, &n, err);
    for (int i = n - 1; rc == 0 && i >= 0; i--) {
        char bp[PATH_SIZE], path[PATH_SIZE * 2];
        struct String_vector kids;
        struct Stat st;
        int zrc;

        bucket_path(c, b[i], bp, sizeof(bp));
        zrc = zchildren(c, bp, watch && i == n - 1, &kids, NULL, err,
                        "read the log");
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc == ABSENT)
            continue;
        sort_names(&kids);
        for (int k = kids.count - 1; k >= 0; k--) {
            snprintf(path, sizeof(path), "%s/%s", bp, kids.data[k]);
            zrc = zexists(c, path, &st, err, "read the log");
            if (zrc < 0) {
                rc = zrc;
                break;
            }
            if (zrc == ZOK) {
                *seq = st.czxid;
                break;
            }
        }
        deallocate_String_vector(&kids);
        if (*seq != 0)
            break;
    }
    free(b);
    return rc;
}

static int zk_last_seq(struct vse_store *s, int64_t *seq,
                       struct vse_error *err)
{
    return last_seq((struct zk_conn *)s, 0, seq, err);
}

/* ------------------------------------------------------------------ */
/* Purge                                                               */
/* ------------------------------------------------------------------ */

static int read_at(struct zk_conn *c, const char *path, int64_t *at,
                   struct vse_error *err)
{
    struct Stat st;
    char *buf;
    int len, zrc = zget(c, path, &buf, &len, &st, 0, err, "read history");
    json_t *o;

    if (zrc != ZOK)
        return zrc;
    o = json_loadb(buf, (size_t)len, 0, NULL);
    *at = j_int(o, "at");
    json_decref(o);
    free(buf);
    return ZOK;
}

/* History of one resource older than before, but never its newest. */
static int purge_resource_history(struct zk_conn *c, const char *name,
                                  int64_t before, int64_t *count,
                                  struct vse_error *err)
{
    char rp[PATH_SIZE], path[PATH_SIZE * 2];
    struct String_vector kids;
    int zrc, rc = 0;

    snprintf(rp, sizeof(rp), "%s/resources/%s", c->root, name);
    zrc = zchildren(c, rp, 0, &kids, NULL, err, "purge history");
    if (zrc != ZOK)
        return zrc < 0 ? zrc : 0;
    sort_names(&kids);
    for (int i = 0; i + 1 < kids.count; i++) {
        int64_t at = 0;

        snprintf(path, sizeof(path), "%s/%s", rp, kids.data[i]);
        zrc = read_at(c, path, &at, err);
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc != ZOK || at >= before)
            continue;
        zrc = zdelete(c, path, -1, err, "purge history");
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc == ZOK)
            ++*count;
    }
    deallocate_String_vector(&kids);
    return rc;
}

/*
 * Drop a terminal resource with its history: the history nodes and the
 * row (at the version read) in one multi, so a resource that a
 * concurrent transition just moved on keeps both.
 */
static int purge_terminal(struct zk_conn *c, const char *name,
                          const struct vse_state_ref *terminal, size_t nt,
                          int64_t before, struct vse_purge_stats *st,
                          struct vse_error *err)
{
    char rp[PATH_SIZE], *buf;
    struct String_vector kids;
    struct vse_resource r;
    struct Stat rst;
    zoo_op_t *ops;
    zoo_op_result_t *res;
    char(*paths)[PATH_SIZE * 2];
    int len, zrc, hit = 0;

    snprintf(rp, sizeof(rp), "%s/resources/%s", c->root, name);
    zrc = zget(c, rp, &buf, &len, &rst, 0, err, "purge resources");
    if (zrc != ZOK)
        return zrc < 0 ? zrc : 0;
    zrc = parse_row(buf, len, &r);
    free(buf);
    if (zrc < 0 || r.op[0] != '\0' || r.updated >= before)
        return 0;
    for (size_t i = 0; i < nt; i++)
        if (strcmp(terminal[i].machine, r.machine) == 0 &&
            strcmp(terminal[i].state, r.state) == 0)
            hit = 1;
    if (!hit)
        return 0;
    zrc = zchildren(c, rp, 0, &kids, NULL, err, "purge resources");
    if (zrc != ZOK)
        return zrc < 0 ? zrc : 0;
    ops = vse__calloc((size_t)kids.count + 1, sizeof(*ops));
    res = vse__calloc((size_t)kids.count + 1, sizeof(*res));
    paths = vse__calloc((size_t)kids.count + 1, sizeof(*paths));
    if (ops == NULL || res == NULL || paths == NULL) {
        zrc = vse__err(err, VSE_ENOMEM, "out of memory");
    } else {
        for (int i = 0; i < kids.count; i++) {
            snprintf(paths[i], sizeof(paths[i]), "%s/%s", rp, kids.data[i]);
            zoo_delete_op_init(&ops[i], paths[i], -1);
        }
        zoo_delete_op_init(&ops[kids.count], rp, rst.version);
        zrc = zoo_multi(c->zh, kids.count + 1, ops, res);
        if (zrc == ZOK) {
            char dir[PATH_SIZE];

            st->resources++;
            st->history_rows += kids.count;
            /* Its holds directory, empty: a hold ends with its op, and
             * a take checks the held row, which is gone.  Best effort:
             * a later purge does not see it again, but an empty node
             * only costs a little of each member's memory. */
            holds_dir(c, r.id, dir, sizeof(dir));
            zoo_delete(c->zh, dir, -1);
        } else if (lost(zrc)) {
            /* Not done, or done: purge is idempotent; the caller runs it
             * again. */
            zrc = zk_fail(c, zrc, err, "purge resources");
        } else {
            zrc = 0; /* moved on, or a new history node: keep it */
        }
    }
    free(ops);
    free(res);
    free(paths);
    deallocate_String_vector(&kids);
    return zrc < 0 ? zrc : 0;
}

/*
 * The log: entries older than before, except the newest of all (so that
 * last_seq never goes back); sealed buckets left empty are removed, the
 * open one never.
 */
static int purge_log(struct zk_conn *c, int64_t before, struct vse_error *err)
{
    int64_t *b = NULL, newest = 0;
    int n, rc;

    rc = last_seq(c, 0, &newest, err);
    if (rc == 0)
        rc = list_buckets(c, 0, &b, &n, err);
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < n; i++) {
        char bp[PATH_SIZE], path[PATH_SIZE * 2];
        struct String_vector kids;
        int zrc, left = 0;

        bucket_path(c, b[i], bp, sizeof(bp));
        zrc = zchildren(c, bp, 0, &kids, NULL, err, "purge the log");
        if (zrc < 0) {
            rc = zrc;
            break;
        }
        if (zrc == ABSENT)
            continue;
        sort_names(&kids);
        for (int k = 0; k < kids.count; k++) {
            struct Stat st;
            char *buf;
            int len;
            json_t *o;
            int64_t at;

            snprintf(path, sizeof(path), "%s/%s", bp, kids.data[k]);
            zrc = zget(c, path, &buf, &len, &st, 0, err, "purge the log");
            if (zrc < 0) {
                rc = zrc;
                break;
            }
            if (zrc != ZOK)
                continue;
            o = json_loadb(buf, (size_t)len, 0, NULL);
            at = j_int(o, "at");
            json_decref(o);
            free(buf);
            if (at >= before || st.czxid >= newest) {
                left++;
                continue;
            }
            zrc = zdelete(c, path, -1, err, "purge the log");
            if (zrc < 0) {
                rc = zrc;
                break;
            }
        }
        deallocate_String_vector(&kids);
        if (rc == 0 && left == 0 && i < n - 1)
            zdelete(c, bp, -1, NULL, "purge the log");
    }
    free(b);
    return rc;
}

static int zk_purge(struct vse_store *s, int64_t before,
                    const struct vse_state_ref *terminal, size_t nt,
                    struct vse_purge_stats *stats, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    struct vse_purge_stats st = {0, 0};
    struct String_vector kids;
    struct idname *ids;
    int n, rc;

    rc = list_ids(c, &kids, &ids, &n, err);
    if (rc < 0)
        return rc;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = purge_resource_history(c, ids[i].name, before, &st.history_rows,
                                    err);
    for (int i = 0; rc == 0 && nt > 0 && i < n; i++)
        rc = purge_terminal(c, ids[i].name, terminal, nt, before, &st, err);
    free(ids);
    deallocate_String_vector(&kids);
    if (rc == 0)
        rc = purge_log(c, before, err);
    if (rc < 0)
        return rc;
    if (stats != NULL)
        *stats = st;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Machine pins                                                        */
/* ------------------------------------------------------------------ */

static void pin_path(const struct zk_conn *c, const char *machine, char *buf,
                     size_t size)
{
    char enc[VSE_NAME_MAX * 3 + 1];

    enc_id(machine, enc, sizeof(enc));
    snprintf(buf, size, "%s/machines/%s", c->root, enc);
}

static int zk_pin_get(struct vse_store *s, const char *machine,
                      struct vse_pin *out, struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE], *buf;
    struct Stat st;
    json_t *o;
    const char *def;
    int len, zrc;

    pin_path(c, machine, path, sizeof(path));
    zrc = zget(c, path, &buf, &len, &st, 0, err, "read a machine pin");
    if (zrc < 0)
        return zrc;
    if (zrc == ABSENT)
        return vse__err(err, VSE_ENOTFOUND, "machine '%s' is not pinned",
                        machine);
    o = json_loadb(buf, (size_t)len, 0, NULL);
    free(buf);
    memset(out, 0, sizeof(*out));
    vse__strlcpy(out->machine, machine, sizeof(out->machine));
    out->version = (int)j_int(o, "version");
    j_str(o, "hash", out->hash, sizeof(out->hash));
    out->pinned_at = j_int(o, "pinned_at");
    def = json_string_value(json_object_get(o, "definition"));
    out->definition = vse__strdup(def ? def : "");
    json_decref(o);
    if (out->definition == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    return 0;
}

/* A create whose "exists" is the answer: safe to resend. */
static int zk_pin_put(struct vse_store *s, const struct vse_pin *pin,
                      struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    char path[PATH_SIZE], *data;
    json_t *o = json_pack("{s:i, s:s, s:s, s:I}", "version", pin->version,
                          "hash", pin->hash, "definition",
                          pin->definition ? pin->definition : "", "pinned_at",
                          (json_int_t)pin->pinned_at);
    int zrc;

    data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (data == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    pin_path(c, pin->machine, path, sizeof(path));
    zrc = zcreate(c, path, data, err, "pin a machine");
    free(data);
    if (zrc == ABSENT)
        return vse__err(err, VSE_ESTORE, "store '%s' has no machines node",
                        c->where);
    return zrc < 0 ? zrc : 0;
}

/*
 * Above this many resources of the machine, the re-pin's multi checks
 * the versions of those with an operation in flight only: a multi is one
 * request, and requests are bounded (jute.maxbuffer, 1 MB by default).
 */
#define REPIN_CHECK_MAX 2048

struct repin_scan {
    vse_store_repin_check_fn *check;
    void *ctx;
    VSE_ARRAY(struct vse_resource) rows;
    int oom;
};

static int repin_collect(void *ctx, const struct vse_resource *r)
{
    struct repin_scan *sc = ctx;

    sc->check(sc->ctx, r);
    if (vse__array_push(&sc->rows, *r) < 0)
        sc->oom = 1;
    return 0;
}

/*
 * One multi: [the log bucket is open], [each resource read is still at
 * the version it was judged at], set the pin at the version it was read
 * at, append the event to the log.  A resource that moved, or a pin that
 * changed, fails the whole multi: VSE_ECONFLICT, and the core judges
 * again.  1: the answer was lost (settle); 2: the bucket moved.
 */
static int repin_once(struct zk_conn *c, const char *ppath, int pin_at,
                      const char *data, const char *ev,
                      const struct repin_scan *sc, int64_t *seq, int *zlost,
                      struct vse_error *err)
{
    size_t n = 0, cap = sc->rows.n + 3, busy_only;
    char(*paths)[PATH_SIZE] = vse__calloc(sc->rows.n + 1, sizeof(*paths));
    zoo_op_t *ops = vse__calloc(cap, sizeof(*ops));
    zoo_op_result_t *res = vse__calloc(cap, sizeof(*res));
    char bp[PATH_SIZE], lp[PATH_SIZE], made[PATH_SIZE];
    struct Stat st;
    size_t i_pin;
    int zrc, rc = 0;

    if (paths == NULL || ops == NULL || res == NULL) {
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
        goto out;
    }
    memset(&st, 0, sizeof(st));
    busy_only = sc->rows.n > REPIN_CHECK_MAX;
    bucket_path(c, c->bucket, bp, sizeof(bp));
    snprintf(lp, sizeof(lp), "%s/e-", bp);
    zoo_check_op_init(&ops[n++], bp, 0);
    for (size_t i = 0; i < sc->rows.n; i++) {
        const struct vse_resource *r = &sc->rows.v[i];

        if (busy_only && r->op[0] == '\0')
            continue;
        res_path(c, r->id, paths[i], sizeof(paths[i]));
        zoo_check_op_init(&ops[n++], paths[i], (int)r->version);
    }
    i_pin = n;
    zoo_set_op_init(&ops[n++], ppath, data, (int)strlen(data), pin_at, &st);
    zoo_create_op_init(&ops[n++], lp, ev, (int)strlen(ev),
                       &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL, made,
                       sizeof(made));
    zrc = zoo_multi(c->zh, (int)n, ops, res);
    if (zrc == ZOK) {
        *seq = st.mzxid;
    } else if (lost(zrc)) {
        *zlost = zrc;
        rc = 1;
    } else if (res[0].err != ZOK) {
        c->bucket = -1;
        rc = 2;
    } else {
        for (size_t i = 1; i <= i_pin && rc == 0; i++)
            if (res[i].err == ZBADVERSION || res[i].err == ZNONODE)
                rc = vse__err(err, VSE_ECONFLICT,
                              "a resource or the pin moved during the "
                              "upgrade");
        if (rc == 0)
            rc = zk_fail(c, zrc, err, "upgrade a machine");
    }
out:
    free(paths);
    free(ops);
    free(res);
    return rc;
}

/*
 * A lost multi: after a sync, the pin says whether it landed (its hash
 * is ours and its mzxid the transaction's).  0 landed, 1 not.
 */
static int repin_settle(struct zk_conn *c, const char *ppath,
                        const char *hash, int64_t *seq, struct vse_error *err)
{
    char *buf = NULL, got[17] = "";
    struct Stat st;
    json_t *o;
    int64_t old = c->zh != NULL ? zoo_client_id(c->zh)->client_id : 0;
    /* As settle(): what the lost write's session did is final only once
     * it is closed. */
    int len = 0, rc = session_after(c, old, mono_ms() + c->reconnect_ms, err);

    if (rc == 0 && zsync(c, ppath) != ZOK)
        rc = vse__err(err, VSE_EUNKNOWN, "cannot sync with '%s'", c->where);
    if (rc == 0)
        rc = zget(c, ppath, &buf, &len, &st, 0, err, "read a machine pin");
    if (rc < 0 || rc == ABSENT) {
        free(buf);
        vse__err(err, VSE_EUNKNOWN,
                 "outcome unknown: the connection to '%s' was lost "
                 "during the upgrade",
                 c->where);
        vse__err_hint(err, "run the upgrade again: an upgrade that "
                           "landed answers 'pinned already'");
        return VSE_EUNKNOWN;
    }
    o = json_loadb(buf, (size_t)len, 0, NULL);
    free(buf);
    j_str(o, "hash", got, sizeof(got));
    json_decref(o);
    if (strcmp(got, hash) != 0)
        return 1;
    *seq = st.mzxid;
    return 0;
}

static int zk_repin(struct vse_store *s, const char *expect_hash,
                    const struct vse_pin *pin, const struct vse_event *ev,
                    vse_store_repin_check_fn *check, void *ctx, int64_t *seq,
                    struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    struct vse_filter f = {.machine = pin->machine};
    struct repin_scan sc = {check, ctx, {0}, 0};
    char ppath[PATH_SIZE], hash[17] = "", *buf = NULL, *data = NULL,
                           *evj = NULL;
    struct Stat st;
    json_t *o;
    int64_t got = 0;
    int len = 0, rc, moves = 0;

    pin_path(c, pin->machine, ppath, sizeof(ppath));
    rc = zget(c, ppath, &buf, &len, &st, 0, err, "read a machine pin");
    if (rc == ABSENT)
        rc = vse__err(err, VSE_ECONFLICT, "machine '%s' is not pinned",
                      pin->machine);
    if (rc < 0)
        return rc;
    o = json_loadb(buf, (size_t)len, 0, NULL);
    free(buf);
    j_str(o, "hash", hash, sizeof(hash));
    json_decref(o);
    if (strcmp(hash, expect_hash) != 0)
        return vse__err(err, VSE_ECONFLICT,
                        "the pin of machine '%s' changed meanwhile",
                        pin->machine);
    rc = zk_list(s, &f, 0, repin_collect, &sc, err);
    if (rc == 0 && sc.oom)
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
    if (rc == 0)
        rc = check(ctx, NULL);
    if (rc < 0)
        goto out;
    o = json_pack("{s:i, s:s, s:s, s:I}", "version", pin->version, "hash",
                  pin->hash, "definition",
                  pin->definition ? pin->definition : "", "pinned_at",
                  (json_int_t)pin->pinned_at);
    data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    evj = event_json(ev);
    if (data == NULL || evj == NULL) {
        rc = vse__err(err, VSE_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        int zlost = 0;

        rc = ensure(c, err);
        if (rc == 0)
            rc = current_bucket(c, err);
        if (rc < 0)
            break;
        rc = repin_once(c, ppath, st.version, data, evj, &sc, &got, &zlost,
                        err);
        if (rc == 2 && ++moves < BUCKET_RETRIES)
            continue;
        if (rc == 2)
            rc = vse__err(err, VSE_EBUSY,
                          "store '%s' is busy: the log bucket kept moving",
                          c->where);
        if (rc == 1) {
            rc = repin_settle(c, ppath, pin->hash, &got, err);
            if (rc == 1)
                rc = vse__err(err, VSE_ESTORE,
                              "connection lost; the upgrade was not "
                              "applied (zookeeper: %s)",
                              zerror(zlost));
        }
        break;
    }
    if (rc == 0 && seq != NULL)
        *seq = got;
out:
    vse__array_release(&sc.rows);
    free(data);
    free(evj);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Waiting for events                                                  */
/* ------------------------------------------------------------------ */

/*
 * Watches are one-shot and carry no data: each round re-arms them on the
 * log (a seal opens a bucket) and on the open bucket (an append), then
 * reads last_seq; changes in between merge into one wake-up.
 */
static int zk_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                   struct vse_error *err)
{
    struct zk_conn *c = (struct zk_conn *)s;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        uint64_t g = gen_now(c);
        int64_t last = 0, left;
        int rc = last_seq(c, 1, &last, err);

        if (rc < 0)
            return rc;
        if (last > after_seq)
            return 1;
        left = deadline - mono_ms();
        if (left <= 0 || interrupted(c))
            return 0;
        /* In slices: vse_interrupt() ends the wait within one.  Long
         * ones: a wake-up is the watch's job, not the slice's. */
        nap(c, g, left > 1000 ? 1000 : left);
    }
}

const struct vse_store_methods vse__store_zk = {
    .version = 3,
    .scheme = "zookeeper",
    .conn_size = sizeof(struct zk_conn),
    .open = zk_open,
    .close = zk_close,
    .get = zk_get,
    .apply = zk_apply,
    .list = zk_list,
    .history = zk_history,
    .find_event = zk_find_event,
    .expired = zk_expired,
    .last_seq = zk_last_seq,
    .purge = zk_purge,
    .pin_get = zk_pin_get,
    .pin_put = zk_pin_put,
    .repin = zk_repin,
    .wait = zk_wait,
    .inspect = zk_inspect,
    .schema_begin = zk_schema_begin,
    .schema_end = zk_schema_end,
    .meta_set = zk_meta_set,
    .steps = zk_steps,
    .nsteps = sizeof(zk_steps) / sizeof(*zk_steps),
    .holds = zk_holds,
};
