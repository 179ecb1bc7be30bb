/*
 * load.c - vse-load: N client threads drive vsed's Cinder v3 API over HTTP
 * with a contention or a throughput workload, record every request, then
 * poll every volume or snapshot whose request was answered 202 until it
 * settles, and hand it all to report.c.  With --manager and --fault it
 * also runs the volume managers and breaks them on a schedule (fault.c).
 * The load and fault harness of issue 7; docs/reliability.md.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "load.h"

/* Snapshots a volume of the workload keeps at most; the array has room
 * for clients that race past the limit, so every snapshot stays known
 * and is deleted before its volume (else the volume's delete is
 * refused for the harness's own sake). */
#define SNAPS_KEPT 3
#define SLOT_SNAPS 32
/* Volumes made from a snapshot or cloned: outside the slots, deleted
 * again once more than EXTRAS_KEPT wait, so that they do not fill the
 * pool. */
#define EXTRAS_MAX 64
#define EXTRAS_KEPT 8
/* --mix create: fine enough to time a create that takes a few ms. */
#define CREATE_POLL_MS 2.0
#define SETTLE_DEFAULT_S 60
#define URLS_MAX 16
#define MANAGERS_MAX 32

const char *const load_op_names[OP_COUNT] = {"create",
                                             "delete",
                                             "extend",
                                             "reserve",
                                             "attach",
                                             "unreserve",
                                             "begin_detaching",
                                             "detach",
                                             "snapshot",
                                             "snapshot_delete",
                                             "create_from_snapshot",
                                             "clone",
                                             "extend_in_use"};

/* A volume the workload aims at.  The contention workload shares a few
 * slots among all clients, so that their requests collide; throughput
 * gives each client slots of its own. */
struct slot {
    char id[40];  /* "" = empty: the next pick creates one */
    int creating; /* a client is posting the create */
    int64_t size; /* GiB, as last accepted */
    int attached; /* an attach was accepted, no detach since */
    int broken;   /* settled in an error status: delete it */
    int settling; /* accepted requests not settled yet: the
                             throughput workload leaves the slot alone */
    char snaps[SLOT_SNAPS][40];
    int nsnaps;
};

/* An accepted request waiting to settle. */
struct pending {
    int op;
    int slot;     /* index in g.slots, -1 for none */
    int snapshot; /* poll /snapshots, not /volumes */
    char id[40];
    int64_t accepted_us;
    int64_t want_size; /* extend: the new size asked for */
    int64_t sent_us;   /* --mix create: when the POST was sent, else 0 */
    /* extend: wall clock when sent and answered, to find in the history
     * the op the request began */
    int64_t sent_wall, answered_wall;
};

static struct {
    const char *urls[URLS_MAX];
    int nurls;
    const char *workload;
    const char *mix;
    int create_only; /* --mix create */
    const char *project;
    int clients;
    double seconds;
    long requests; /* 0 = no limit */
    double settle_s;
    double poll_ms; /* --mix create: between polls of one create */
    int contention;
    char extras[EXTRAS_MAX][40];
    int nextras;
    int nslots, per_client;
    struct slot *slots;
    pthread_mutex_t mu; /* slots and the pending queue */
    struct pending *pend;
    size_t npend, cappend;
    struct load_outcome *outs;
    size_t nouts, capouts;
    char (*deletes)[40]; /* see struct load_report */
    size_t ndeletes, capdeletes;
    atomic_long issued;
    atomic_int stop; /* load phase over */
    atomic_int clients_done;
    int64_t t0;
} g = {.project = "load",
       .mix = "all",
       .settle_s = SETTLE_DEFAULT_S,
       .poll_ms = CREATE_POLL_MS};

/* One request on /v3/PROJECT/PATH; the status (0: no answer), the body
 * in h->body. */
static int http_do(struct load_http *h, const char *method, const char *path,
                   const char *payload)
{
    char full[1024];

    snprintf(full, sizeof(full), "/v3/%s/%s", g.project, path);
    return load_http_do(h, method, full, payload);
}

/* The reason class of a refusal, from Cinder's fault body. */
static int classify(int status, const char *body)
{
    if (status >= 200 && status < 300)
        return RS_NONE;
    if (status == 0)
        return RS_TRANSPORT;
    if (status == 409)
        return body != NULL && strstr(body, "is held") != NULL ? RS_HELD
                                                               : RS_LOST_RACE;
    if (status == 404)
        return RS_NOT_FOUND;
    if (status >= 500)
        return RS_SERVER;
    if (status != 400 || body == NULL)
        return RS_OTHER;
    if (strstr(body, "dependent snapshots") != NULL)
        return RS_SNAPSHOTS;
    if (strstr(body, "New size for extend") != NULL)
        return RS_SIZE;
    if (strstr(body, "in flight") != NULL || strstr(body, "is busy") != NULL)
        return RS_BUSY;
    if (strstr(body, "Invalid volume") != NULL ||
        strstr(body, "Invalid snapshot") != NULL)
        return RS_STATUS;
    return RS_BAD_INPUT;
}

/* ---- per-client state ----------------------------------------------- */

struct client {
    int n;
    pthread_t thread;
    struct load_http h;
    uint64_t rng;
    int64_t want_size;                /* of the extend being sent */
    int64_t sent_wall, answered_wall; /* of the last request */
    struct load_rec *recs;
    size_t nrecs, cap;
};

static uint32_t rnd(struct client *c, uint32_t n)
{
    /* xorshift64*: each client its own stream, no lock. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * UINT64_C(2685821657736338717)) >> 33) % n;
}

static void add_pending(int op, int slot, int snapshot, const char *id,
                        int64_t at, const struct client *c)
{
    pthread_mutex_lock(&g.mu);
    if (vse__grow(g.pend, g.cappend, g.npend + 1) < 0)
        load_oom();
    if (slot >= 0)
        g.slots[slot].settling++;
    g.pend[g.npend].slot = slot;
    g.pend[g.npend].op = op;
    g.pend[g.npend].snapshot = snapshot;
    snprintf(g.pend[g.npend].id, sizeof(g.pend[0].id), "%s", id);
    g.pend[g.npend].accepted_us = at;
    if (c != NULL) {
        g.pend[g.npend].want_size = c->want_size;
        g.pend[g.npend].sent_wall = c->sent_wall;
        g.pend[g.npend].answered_wall = c->answered_wall;
    }
    g.npend++;
    pthread_mutex_unlock(&g.mu);
}

static void add_outcome(const struct pending *p, const char *what, int64_t at,
                        int64_t size, const char *op_end);

/* A delete of `id` that may have been carried out: answered 202, or with
 * no clear answer (5xx, none), which may hide an accepted one. */
static void add_delete(const char *id)
{
    pthread_mutex_lock(&g.mu);
    if (vse__grow(g.deletes, g.capdeletes, g.ndeletes + 1) < 0)
        load_oom();
    snprintf(g.deletes[g.ndeletes++], sizeof(g.deletes[0]), "%s", id);
    pthread_mutex_unlock(&g.mu);
}

/* The status a synchronous action ends in when answered 202: the API
 * carries attach and detach through their states before it answers, so
 * the answer is the outcome.  NULL for work a volume host does later. */
static const char *sync_outcome(int op)
{
    switch (op) {
    case OP_RESERVE: return "reserved";
    case OP_ATTACH: return "in-use";
    case OP_UNRESERVE: return "available";
    case OP_BEGIN_DETACHING: return "detaching";
    case OP_DETACH: return "available";
    default: return NULL;
    }
}

/* Send one request and record it; the status. */
static int send_op(struct client *c, int op, const char *method,
                   const char *path, const char *payload, int slot,
                   int snapshot, const char *id)
{
    int64_t t = vse__now_mono_us();
    int64_t done;
    struct load_rec *r;
    int status;

    atomic_fetch_add(&g.issued, 1);
    c->sent_wall = load_wall_us();
    status = http_do(&c->h, method, path, payload);
    done = vse__now_mono_us();
    c->answered_wall = load_wall_us();

    if (vse__grow(c->recs, c->cap, c->nrecs + 1) < 0)
        load_oom();
    r = &c->recs[c->nrecs++];
    r->start_us = t - g.t0;
    r->latency_us = (int32_t)(done - t);
    r->status = (int16_t)status;
    r->op = (uint8_t)op;
    r->reason = (uint8_t)classify(status, c->h.body);
    if (status == 202 && sync_outcome(op) != NULL) {
        struct pending p = {.op = op, .accepted_us = done};

        add_outcome(&p, sync_outcome(op), done, -1, NULL);
    } else if (status == 202 && id != NULL) {
        add_pending(op, slot, snapshot, id, done, c);
    }
    if ((op == OP_DELETE || op == OP_SNAPSHOT_DELETE) && id != NULL &&
        (status == 202 || status == 0 || status >= 500))
        add_delete(id);
    return status;
}

/* The id of the created volume or snapshot in a 202 body, into buf. */
static int created_id(const struct client *c, const char *key, char *buf,
                      size_t size)
{
    json_t *j = json_loads(c->h.body ? c->h.body : "", 0, NULL);
    const char *id = json_string_value(
        json_object_get(json_object_get(j, key), "id"));
    int rc = id != NULL ? 0 : -1;

    if (id != NULL)
        snprintf(buf, size, "%s", id);
    json_decref(j);
    return rc;
}

static void do_create(struct client *c, struct slot *s)
{
    char id[40] = "";
    int st = send_op(c, OP_CREATE, "POST", "volumes",
                     "{\"volume\": {\"size\": 1, \"name\": \"load\"}}", -1, 0,
                     NULL);

    if (st == 202 && created_id(c, "volume", id, sizeof(id)) == 0)
        add_pending(OP_CREATE, (int)(s - g.slots), 0, id, vse__now_mono_us(),
                    NULL);
    pthread_mutex_lock(&g.mu);
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->size = 1;
    s->attached = 0;
    s->broken = 0;
    s->nsnaps = 0;
    s->creating = 0;
    pthread_mutex_unlock(&g.mu);
}

/* The op for a slot that holds a volume, from what was last accepted on
 * it: the workload means to be valid, and collides only when clients
 * share the slot. */
static int pick_op(struct client *c, const struct slot *s)
{
    uint32_t r = rnd(c, 100);

    if (s->broken)
        return s->nsnaps > 0 ? OP_SNAPSHOT_DELETE : OP_DELETE;
    if (s->attached) {
        if (r < 65)
            return OP_BEGIN_DETACHING;
        if (r < 80)
            return OP_EXTEND_IN_USE;
        return s->nsnaps >= SNAPS_KEPT ? OP_BEGIN_DETACHING : OP_SNAPSHOT;
    }
    if (r < 12)
        return s->nsnaps > 0 ? OP_SNAPSHOT_DELETE : OP_DELETE;
    if (r < 35)
        return OP_EXTEND;
    if (r < 60)
        return OP_RESERVE;
    if (r < 80)
        return s->nsnaps < SNAPS_KEPT ? OP_SNAPSHOT : OP_SNAPSHOT_DELETE;
    if (r < 90 && g.nextras < EXTRAS_MAX)
        return s->nsnaps > 0 && r < 85 ? OP_FROM_SNAPSHOT : OP_CLONE;
    return s->nsnaps > 0 ? OP_SNAPSHOT_DELETE : OP_EXTEND;
}

static void one(struct client *c)
{
    int base = g.contention ? 0 : c->n * g.per_client;
    int n = g.contention ? g.nslots : g.per_client;
    int si = base + (int)rnd(c, (uint32_t)n);
    struct slot *s = &g.slots[si];
    const struct timespec nap = {0, 1000000L};
    char id[40], snap[40] = "", path[200], body[300];
    int64_t size;
    int op, st, attached;

    pthread_mutex_lock(&g.mu);
    if (g.nextras > EXTRAS_KEPT) {
        /* The oldest extra volume goes: by now it is most likely at
         * rest.  One whose delete is refused (still being made) is kept
         * for a later try. */
        snprintf(id, sizeof(id), "%s", g.extras[0]);
        memmove(g.extras[0], g.extras[1],
                (size_t)(g.nextras - 1) * sizeof(g.extras[0]));
        g.nextras--;
        pthread_mutex_unlock(&g.mu);
        snprintf(path, sizeof(path), "volumes/%s", id);
        if (send_op(c, OP_DELETE, "DELETE", path, NULL, -1, 0, id) != 202) {
            pthread_mutex_lock(&g.mu);
            if (g.nextras < EXTRAS_MAX)
                snprintf(g.extras[g.nextras++], sizeof(g.extras[0]), "%s",
                         id);
            pthread_mutex_unlock(&g.mu);
        }
        return;
    }
    if (s->creating || (!g.contention && s->settling > 0)) {
        pthread_mutex_unlock(&g.mu);
        /* Another client is making this slot's volume, or (throughput)
         * its last request is still being carried out. */
        nanosleep(&nap, NULL);
        return;
    }
    if (s->id[0] == '\0') {
        s->creating = 1;
        pthread_mutex_unlock(&g.mu);
        do_create(c, s);
        return;
    }
    snprintf(id, sizeof(id), "%s", s->id);
    size = s->size;
    attached = s->attached;
    op = pick_op(c, s);
    if (op == OP_SNAPSHOT_DELETE || op == OP_FROM_SNAPSHOT)
        snprintf(snap, sizeof(snap), "%s",
                 s->snaps[rnd(c, (uint32_t)s->nsnaps)]);
    pthread_mutex_unlock(&g.mu);

    snprintf(path, sizeof(path), "volumes/%s/action", id);
    switch (op) {
    case OP_DELETE:
        snprintf(path, sizeof(path), "volumes/%s", id);
        if (send_op(c, op, "DELETE", path, NULL, si, 0, id) == 202) {
            pthread_mutex_lock(&g.mu);
            if (strcmp(s->id, id) == 0)
                s->id[0] = '\0';
            pthread_mutex_unlock(&g.mu);
        }
        break;
    case OP_EXTEND:
    case OP_EXTEND_IN_USE:
        snprintf(body, sizeof(body), "{\"os-extend\": {\"new_size\": %lld}}",
                 (long long)size + 1);
        c->want_size = size + 1;
        st = send_op(c, op, "POST", path, body, si, 0, id);
        c->want_size = 0;
        if (st == 202) {
            pthread_mutex_lock(&g.mu);
            if (strcmp(s->id, id) == 0 && s->size < size + 1)
                s->size = size + 1;
            pthread_mutex_unlock(&g.mu);
        }
        break;
    case OP_RESERVE:
        /* The legacy attach flow: reserve, then attach; a reserve whose
         * attach is refused is unreserved, so nothing stays held. */
        if (send_op(c, op, "POST", path, "{\"os-reserve\": {}}", si, 0, id) !=
            202)
            break;
        snprintf(body, sizeof(body),
                 "{\"os-attach\": {\"instance_uuid\": "
                 "\"load-%d\", \"mountpoint\": \"/dev/vdb\", \"mode\": "
                 "\"rw\"}}",
                 c->n);
        st = send_op(c, OP_ATTACH, "POST", path, body, si, 0, id);
        if (st != 202) {
            send_op(c, OP_UNRESERVE, "POST", path, "{\"os-unreserve\": {}}",
                    si, 0, id);
            break;
        }
        pthread_mutex_lock(&g.mu);
        if (strcmp(s->id, id) == 0)
            s->attached = 1;
        pthread_mutex_unlock(&g.mu);
        break;
    case OP_BEGIN_DETACHING:
        if (send_op(c, op, "POST", path, "{\"os-begin_detaching\": {}}", si,
                    0, id) != 202)
            break;
        if (send_op(c, OP_DETACH, "POST", path, "{\"os-detach\": {}}", si, 0,
                    id) != 202)
            break;
        pthread_mutex_lock(&g.mu);
        if (strcmp(s->id, id) == 0)
            s->attached = 0;
        pthread_mutex_unlock(&g.mu);
        break;
    case OP_SNAPSHOT:
        /* An in-use volume is snapshotted only with force, as Cinder. */
        snprintf(body, sizeof(body),
                 "{\"snapshot\": {\"volume_id\": \"%s\", "
                 "\"name\": \"load\", \"force\": %s}}",
                 id, attached ? "true" : "false");
        if (send_op(c, op, "POST", "snapshots", body, si, 1, NULL) != 202 ||
            created_id(c, "snapshot", snap, sizeof(snap)) != 0)
            break;
        add_pending(OP_SNAPSHOT, si, 1, snap, vse__now_mono_us(), NULL);
        pthread_mutex_lock(&g.mu);
        if (strcmp(s->id, id) == 0 && s->nsnaps < SLOT_SNAPS)
            snprintf(s->snaps[s->nsnaps++], sizeof(s->snaps[0]), "%s", snap);
        pthread_mutex_unlock(&g.mu);
        break;
    case OP_FROM_SNAPSHOT:
    case OP_CLONE: {
        char made[40];

        if (op == OP_CLONE)
            snprintf(body, sizeof(body),
                     "{\"volume\": {\"source_volid\": \"%s\", "
                     "\"name\": \"load\"}}",
                     id);
        else
            snprintf(body, sizeof(body),
                     "{\"volume\": {\"snapshot_id\": \"%s\", "
                     "\"name\": \"load\"}}",
                     snap);
        if (send_op(c, op, "POST", "volumes", body, si, 0, NULL) != 202 ||
            created_id(c, "volume", made, sizeof(made)) != 0)
            break;
        add_pending(op, -1, 0, made, vse__now_mono_us(), NULL);
        pthread_mutex_lock(&g.mu);
        if (g.nextras < EXTRAS_MAX)
            snprintf(g.extras[g.nextras++], sizeof(g.extras[0]), "%s", made);
        pthread_mutex_unlock(&g.mu);
        break;
    }
    case OP_SNAPSHOT_DELETE:
        snprintf(path, sizeof(path), "snapshots/%s", snap);
        if (send_op(c, op, "DELETE", path, NULL, si, 1, snap) != 202)
            break;
        pthread_mutex_lock(&g.mu);
        for (int i = 0; i < s->nsnaps; i++)
            if (strcmp(s->snaps[i], snap) == 0) {
                memmove(s->snaps[i], s->snaps[s->nsnaps - 1],
                        sizeof(s->snaps[0]));
                s->nsnaps--;
                break;
            }
        pthread_mutex_unlock(&g.mu);
        break;
    }
}

static int settle_one(struct load_http *h, const struct pending *p,
                      char *what);

/*
 * --mix create: one volume created and polled by its own client until it
 * leaves `creating` (every --poll-ms), so that the report can say how
 * long create -> available takes, not only how fast creates are
 * accepted.  The volumes stay: the pool must have room for them.
 */
static void one_create(struct client *c)
{
    const int64_t ns = (int64_t)(g.poll_ms * 1e6);
    const struct timespec nap = {ns / 1000000000, ns % 1000000000};
    struct pending p = {.op = OP_CREATE, .slot = -1};
    int64_t deadline;
    char what[24];
    int st;

    p.sent_us = vse__now_mono_us();
    st = send_op(c, OP_CREATE, "POST", "volumes",
                 "{\"volume\": {\"size\": 1, \"name\": \"load\"}}", -1, 0,
                 NULL);
    p.accepted_us = vse__now_mono_us();
    if (st != 202 || created_id(c, "volume", p.id, sizeof(p.id)) != 0)
        return;
    deadline = p.accepted_us + (int64_t)(g.settle_s * 1e6);
    while (!settle_one(&c->h, &p, what)) {
        if (vse__now_mono_us() >= deadline) {
            add_outcome(&p, "unresolved", vse__now_mono_us(), -1, NULL);
            return;
        }
        nanosleep(&nap, NULL);
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int64_t end = g.t0 + (int64_t)(g.seconds * 1e6);

    while (!atomic_load(&g.stop) && vse__now_mono_us() < end) {
        /* --requests counts requests sent; a pair such as reserve and
         * attach is let finish. */
        if (g.requests > 0 && atomic_load(&g.issued) >= g.requests)
            break;
        if (g.create_only)
            one_create(c);
        else
            one(c);
    }
    atomic_fetch_add(&g.clients_done, 1);
    return NULL;
}

/* ---- settling accepted requests ----------------------------------- */

/* Statuses in which the work a 202 promised is still under way.  reserved
 * and detaching are not: the API itself carries attach and detach to
 * them, and the next request of the same client moves them on. */
static int transient(const char *st)
{
    static const char *const t[] = {"creating", "deleting", "extending",
                                    "attaching", NULL};

    for (int i = 0; t[i] != NULL; i++)
        if (strcmp(st, t[i]) == 0)
            return 1;
    return 0;
}

static void add_outcome(const struct pending *p, const char *what, int64_t at,
                        int64_t size, const char *op_end)
{
    struct load_outcome *o;

    pthread_mutex_lock(&g.mu);
    if (vse__grow(g.outs, g.capouts, g.nouts + 1) < 0)
        load_oom();
    o = &g.outs[g.nouts++];
    memset(o, 0, sizeof(*o));
    o->op = (uint8_t)p->op;
    o->snapshot = (uint8_t)p->snapshot;
    snprintf(o->outcome, sizeof(o->outcome), "%s", what);
    snprintf(o->id, sizeof(o->id), "%s", p->id);
    o->accepted_us = p->accepted_us - g.t0;
    o->settle_us = at - p->accepted_us;
    o->want_size = p->want_size;
    o->size = size;
    o->total_us = p->sent_us > 0 ? at - p->sent_us : 0;
    snprintf(o->op_end, sizeof(o->op_end), "%s", op_end ? op_end : "");
    pthread_mutex_unlock(&g.mu);
}

/*
 * An extend settled smaller than asked: which end did the op it began
 * come to?  Its begin row was written between the request and the 202;
 * operations on one volume never overlap (vsectl check verifies it), so
 * the next row that ends an op is its end.  The answer is the first of
 * those ends that is not a finish (an
 * extend of a volume attached meanwhile runs as extend_in_use, whose
 * failure leaves it in use at its old size, from where a detach makes it
 * available: not a lost extend).  Same host, same clock: a little slack
 * for the store's timestamps only.
 */
#define END_SLACK_US 20000
struct extend_seek {
    const struct pending *p;
    const char *end;
    int in_op;
};

static int extend_row(void *ctx, json_t *v)
{
    static const char *const ends[] = {"finish", "fail", "reset", "expire"};
    struct extend_seek *x = ctx;
    const char *kind = json_string_value(json_object_get(v, "kind"));
    const char *op = json_string_value(json_object_get(v, "op"));
    const char *to = json_string_value(json_object_get(v, "to"));
    int64_t at = load_parse_time(json_string_value(json_object_get(v, "at"))
                                     ?: "");

    if (kind == NULL || op == NULL || to == NULL)
        return 0;
    if (strcmp(kind, "begin") == 0 &&
        (strcmp(op, "extend") == 0 || strcmp(op, "extend_in_use") == 0) &&
        at >= x->p->sent_wall - END_SLACK_US &&
        at <= x->p->answered_wall + END_SLACK_US) {
        x->in_op = 1;
        x->end = "running";
    } else if (x->in_op &&
               (strcmp(kind, "finish") == 0 || strcmp(kind, "fail") == 0 ||
                strcmp(kind, "reset") == 0 ||
                (strcmp(kind, "expire") == 0 &&
                 strcmp(to, "extending") != 0))) {
        for (size_t k = 0; k < 4; k++)
            if (strcmp(kind, ends[k]) == 0)
                x->end = ends[k];
        x->in_op = 0;
        return strcmp(x->end, "finish") != 0;
    }
    return 0;
}

static const char *extend_end(struct load_http *h, const struct pending *p)
{
    struct extend_seek x = {.p = p, .end = "none"};

    if (load_history_each(h, p->id, extend_row, &x) < 0)
        return "unread";
    return x.end;
}

/* Poll one pending request; 1 if it settled (outcome recorded, and
 * copied into what[24]). */
static int settle_one(struct load_http *h, const struct pending *p,
                      char *what)
{
    char path[200];
    const char *st;
    json_t *j, *o, *size;
    int code, done = 0;

    snprintf(path, sizeof(path), "%s/%s",
             p->snapshot ? "snapshots" : "volumes", p->id);
    code = http_do(h, "GET", path, NULL);
    if (code == 404) {
        add_outcome(p, "deleted", vse__now_mono_us(), -1, NULL);
        snprintf(what, 24, "deleted");
        return 1;
    }
    if (code != 200)
        return 0;
    j = json_loads(h->body, 0, NULL);
    o = json_object_get(j, p->snapshot ? "snapshot" : "volume");
    st = json_string_value(json_object_get(o, "status"));
    size = json_object_get(o, "size");
    if (st != NULL && !transient(st)) {
        /* The size, for the check that an accepted extend took. */
        int64_t sz = !p->snapshot && json_is_integer(size)
                         ? (int64_t)json_integer_value(size)
                         : -1;
        const char *end = NULL;

        if ((p->op == OP_EXTEND || p->op == OP_EXTEND_IN_USE) && sz >= 0 &&
            sz < p->want_size && strcmp(st, "error_extending") != 0 &&
            strcmp(st, "error") != 0)
            end = extend_end(h, p);
        add_outcome(p, st, vse__now_mono_us(), sz, end);
        snprintf(what, 24, "%s", st);
        done = 1;
    }
    json_decref(j);
    return done;
}

/*
 * The settler polls every accepted request until its resource leaves
 * the transient status, during the run and after it; what has not
 * settled `settle_s` after the load stopped is recorded "unresolved".
 */
static void *settler_main(void *arg)
{
    struct load_http h;
    struct pending *mine = NULL;
    size_t n = 0, cap = 0;
    int64_t deadline = 0;
    const struct timespec nap = {0, 5 * 1000000L};

    (void)arg;
    load_http_init(&h, g.urls[0], g.project);
    for (;;) {
        int load_over = atomic_load(&g.clients_done) == g.clients;
        size_t k = 0;
        char what[24];

        pthread_mutex_lock(&g.mu);
        if (vse__grow(mine, cap, n + g.npend) < 0)
            load_oom();
        if (g.npend > 0)
            memcpy(mine + n, g.pend, g.npend * sizeof(*g.pend));
        n += g.npend;
        g.npend = 0;
        pthread_mutex_unlock(&g.mu);
        for (size_t i = 0; i < n; i++) {
            if (!settle_one(&h, &mine[i], what)) {
                mine[k++] = mine[i];
                continue;
            }
            pthread_mutex_lock(&g.mu);
            if (mine[i].slot >= 0) {
                struct slot *s = &g.slots[mine[i].slot];

                s->settling--;
                /* Only a delete moves a volume out of error: say so to
                 * the clients that pick ops for it. */
                if (!mine[i].snapshot && strcmp(s->id, mine[i].id) == 0 &&
                    strncmp(what, "error", 5) == 0)
                    s->broken = 1;
            }
            pthread_mutex_unlock(&g.mu);
        }
        n = k;
        if (load_over && deadline == 0)
            deadline = vse__now_mono_us() + (int64_t)(g.settle_s * 1e6);
        if (load_over && n == 0)
            break;
        if (deadline != 0 && vse__now_mono_us() >= deadline) {
            for (size_t i = 0; i < n; i++)
                add_outcome(&mine[i], "unresolved", vse__now_mono_us(), -1,
                            NULL);
            break;
        }
        nanosleep(&nap, NULL);
    }
    free(mine);
    load_http_free(&h);
    return NULL;
}

/* ---- main ------------------------------------------------------------ */

static void usage(int st)
{
    fprintf(
        st ? stderr : stdout,
        "Usage: vse-load --url URL [--url URL2 ...] --workload contention|throughput\n"
        "                --clients N --seconds S [--requests K] --out DIR\n"
        "                [--manager CMD ...] [--fault SPEC ...] [options]\n"
        "Drive vsed's Cinder v3 API with N client threads for S seconds (or K\n"
        "requests in all), wait for every accepted request to settle, check what\n"
        "it settled in, and write report.json, report.txt, timeline.tsv,\n"
        "faults.tsv and the plots into DIR.  Optionally run the volume managers\n"
        "and inject faults into them, PostgreSQL and the pool while the load runs.\n"
        "\n"
        "Load:\n"
        "      --url URL          an API server (http://HOST:PORT); repeat it for\n"
        "                         several: client i uses URL number i mod n; the\n"
        "                         settler and /v1 calls use the first\n"
        "      --workload W       contention: all clients share a few volumes;\n"
        "                         throughput: each client has volumes of its own\n"
        "      --mix M            all (default): the full mix of operations;\n"
        "                         create (throughput only): each client creates a\n"
        "                         1 GiB volume and polls it every --poll-ms until\n"
        "                         it leaves creating, then the next; the report\n"
        "                         adds accepted creates/s and create->available\n"
        "                         p50/p99 (from sending the POST to the first GET\n"
        "                         that shows it available).  The volumes stay\n"
        "      --poll-ms MS       --mix create: between two polls of a create\n"
        "                         (default 2; 0.1 to 10000).  Every poll is a GET\n"
        "                         the server answers: with many clients a short\n"
        "                         interval is much of the load\n"
        "      --volumes V        volumes aimed at (contention: shared, default 4;\n"
        "                         throughput: per client, default 4)\n"
        "      --project P        the project sent in X-Auth-Token (default load)\n"
        "      --settle-seconds S how long accepted requests may take to settle\n"
        "                         after the load (default 60)\n"
        "      --seed N           random seed of the workload and of fault times\n"
        "                         (default: from the time; the report prints it,\n"
        "                         so a run can be repeated)\n"
        "\n"
        "Managed processes:\n"
        "      --manager CMD      a volume manager (vsed --role volume ...) that\n"
        "                         vse-load starts before the load as\n"
        "                         /bin/sh -c 'exec CMD' in a process group of its\n"
        "                         own, output appended to DIR/manager-N.log (N from\n"
        "                         1, in option order); repeatable.  After settling,\n"
        "                         or on SIGINT or SIGTERM to vse-load, each gets\n"
        "                         SIGCONT and SIGTERM, and SIGKILL 10 s later.  A\n"
        "                         manager that exits when no fault killed it is a\n"
        "                         violation\n"
        "\n"
        "Faults:\n"
        "      --fault SPEC       KIND[@AT][:FOR], repeatable.  AT and FOR are\n"
        "                         seconds (decimals allowed) from the start of the\n"
        "                         load; AT at most --seconds, FOR above 0.  Without\n"
        "                         @AT the fault comes at a random time in 10%%-70%%\n"
        "                         of --seconds.  Each fault runs in a thread of its\n"
        "                         own while the load goes on.  KIND is one of:\n"
        "        kill             SIGKILL a manager (round-robin over --manager in\n"
        "                         --fault order), start the same CMD again FOR\n"
        "                         seconds later (default 0.5)\n"
        "        stop             SIGSTOP a manager (same round-robin) for FOR\n"
        "                         seconds (default 5; make it longer than the\n"
        "                         lease plus the reap interval), then SIGCONT.  It\n"
        "                         waits up to 2 s for the manager to hold an op\n"
        "                         (GET /v1/resources?busy=true), so that the stop\n"
        "                         lands mid-step; after the run, each held op's\n"
        "                         history must show no write by the woken manager\n"
        "                         under its op_id once that was fenced\n"
        "        pg-restart       run --pg-restart CMD; with :FOR, run --pg-stop\n"
        "                         CMD, wait FOR seconds, run --pg-start CMD.\n"
        "                         Output goes to DIR/pg.log\n"
        "        pool-full        create the sparse file DIR/fill-vse-load in the\n"
        "                         --pool directory, hold it FOR seconds (default\n"
        "                         3), remove it\n"
        "      --pg-restart CMD   restart PostgreSQL (e.g. pg_ctl -D D -m immediate\n"
        "                         restart); run with /bin/sh -c\n"
        "      --pg-stop CMD      stop PostgreSQL, for pg-restart:FOR\n"
        "      --pg-start CMD     start PostgreSQL, for pg-restart:FOR\n"
        "      --pool DIR         the volume managers' pool, for pool-full\n"
        "      --pool-fill-gb N   size of the pool-full file in GiB (default: the\n"
        "                         largest the filesystem takes, 1 PiB down to 1 GiB)\n"
        "\n"
        "Violations: an accepted request that never settled, or settled in a\n"
        "status its operation may not end in (a delete whose volume is still\n"
        "available, an extend whose volume did not grow); a 5xx or no answer; a\n"
        "manager that exited by itself; a write by a woken manager through a fence.\n"
        "\n"
        "Exit status: 0 done and no violation, 1 a violation or an error, 2 usage.\n");
    exit(st);
}

static double num(const char *what, const char *s, double min)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < min) {
        fprintf(stderr, "vse-load: bad %s '%s'\n", what, s);
        usage(2);
    }
    return v;
}

static int clients_over(void)
{
    return atomic_load(&g.clients_done) == g.clients;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"workload", required_argument, NULL, 'w'},
        {"mix", required_argument, NULL, 'M'},
        {"clients", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 's'},
        {"requests", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"volumes", required_argument, NULL, 'v'},
        {"project", required_argument, NULL, 'p'},
        {"settle-seconds", required_argument, NULL, 'S'},
        {"poll-ms", required_argument, NULL, 'Q'},
        {"seed", required_argument, NULL, 'x'},
        {"manager", required_argument, NULL, 'm'},
        {"fault", required_argument, NULL, 'f'},
        {"pg-restart", required_argument, NULL, 'R'},
        {"pg-stop", required_argument, NULL, 'T'},
        {"pg-start", required_argument, NULL, 'B'},
        {"pool", required_argument, NULL, 'P'},
        {"pool-fill-gb", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct load_fault_opts fo;
    const char *managers[MANAGERS_MAX];
    struct load_report rep;
    struct client *cl;
    pthread_t settler;
    const char *out = NULL;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    int volumes = 4, c, violations, nmanagers = 0;
    size_t total = 0;
    char *end;

    memset(&fo, 0, sizeof(fo));
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (g.nurls == URLS_MAX) {
                fprintf(stderr, "vse-load: more than %d --url\n", URLS_MAX);
                usage(2);
            }
            g.urls[g.nurls++] = optarg;
            break;
        case 'w': g.workload = optarg; break;
        case 'M': g.mix = optarg; break;
        case 'c': g.clients = (int)num("--clients", optarg, 1); break;
        case 's': g.seconds = num("--seconds", optarg, 0.1); break;
        case 'r': g.requests = (long)num("--requests", optarg, 1); break;
        case 'o': out = optarg; break;
        case 'v': volumes = (int)num("--volumes", optarg, 1); break;
        case 'p': g.project = optarg; break;
        case 'S': g.settle_s = num("--settle-seconds", optarg, 0); break;
        case 'Q':
            g.poll_ms = num("--poll-ms", optarg, 0.1);
            if (g.poll_ms > 10000) {
                fprintf(stderr,
                        "vse-load: bad --poll-ms '%s' (0.1 to "
                        "10000)\n",
                        optarg);
                usage(2);
            }
            break;
        case 'x':
            /* Exact, not through a double: the report prints it back. */
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' ||
                optarg[0] == '-') {
                fprintf(stderr, "vse-load: bad --seed '%s'\n", optarg);
                usage(2);
            }
            break;
        case 'm':
            if (nmanagers == MANAGERS_MAX) {
                fprintf(stderr, "vse-load: more than %d --manager\n",
                        MANAGERS_MAX);
                usage(2);
            }
            managers[nmanagers++] = optarg;
            break;
        case 'f': load_fault_add(optarg); break;
        case 'R': fo.pg_restart = optarg; break;
        case 'T': fo.pg_stop = optarg; break;
        case 'B': fo.pg_start = optarg; break;
        case 'P': fo.pool = optarg; break;
        case 'G': fo.pool_fill_gb = num("--pool-fill-gb", optarg, 1); break;
        case 'h': usage(0); break;
        default: usage(2);
        }
    }
    if (optind != argc || g.nurls == 0 || g.workload == NULL ||
        g.clients < 1 || g.seconds <= 0 || out == NULL)
        usage(2);
    g.contention = strcmp(g.workload, "contention") == 0;
    if (!g.contention && strcmp(g.workload, "throughput") != 0) {
        fprintf(stderr, "vse-load: unknown workload '%s'\n", g.workload);
        usage(2);
    }
    g.create_only = strcmp(g.mix, "create") == 0;
    if (!g.create_only && strcmp(g.mix, "all") != 0) {
        fprintf(stderr, "vse-load: unknown --mix '%s' (all or create)\n",
                g.mix);
        usage(2);
    }
    if (g.create_only && g.contention) {
        fprintf(stderr, "vse-load: --mix create goes with --workload "
                        "throughput: contention shares volumes\n");
        usage(2);
    }
    fo.managers = managers;
    fo.nmanagers = nmanagers;
    fo.out = out;
    fo.url = g.urls[0];
    fo.project = g.project;
    fo.seconds = g.seconds;
    fo.seed = seed;
    load_faults_check(&fo);
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "vse-load: cannot create '%s': %s\n", out,
                strerror(errno));
        return 1;
    }
    g.per_client = volumes;
    g.nslots = g.contention ? volumes : volumes * g.clients;
    g.slots = calloc((size_t)g.nslots, sizeof(*g.slots));
    cl = calloc((size_t)g.clients, sizeof(*cl));
    if (g.slots == NULL || cl == NULL)
        return 1;
    pthread_mutex_init(&g.mu, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Before any other thread: the signal thread must see SIGINT and
     * SIGTERM blocked everywhere else. */
    load_managers_start(&fo);
    g.t0 = vse__now_mono_us();
    load_faults_start(g.t0, clients_over);
    for (int i = 0; i < g.clients; i++) {
        cl[i].n = i;
        cl[i].rng = seed + (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15) + 1;
        load_http_init(&cl[i].h, g.urls[i % g.nurls], g.project);
        pthread_create(&cl[i].thread, NULL, client_main, &cl[i]);
    }
    pthread_create(&settler, NULL, settler_main, NULL);
    for (int i = 0; i < g.clients; i++)
        pthread_join(cl[i].thread, NULL);
    memset(&rep, 0, sizeof(rep));
    rep.elapsed = (double)(vse__now_mono_us() - g.t0) / 1e6;
    pthread_join(settler, NULL);
    rep.settle_s = (double)(vse__now_mono_us() - g.t0) / 1e6 - rep.elapsed;
    /* Settled: now the fence checks, then the managers stop. */
    load_faults_finish(&rep.faults, &rep.managers, &rep.violations);

    for (int i = 0; i < g.clients; i++)
        total += cl[i].nrecs;
    rep.recs = calloc(total ? total : 1, sizeof(*rep.recs));
    if (rep.recs == NULL)
        return 1;
    for (int i = 0; i < g.clients; i++) {
        if (cl[i].nrecs > 0)
            memcpy(rep.recs + rep.nrecs, cl[i].recs,
                   cl[i].nrecs * sizeof(*rep.recs));
        rep.nrecs += cl[i].nrecs;
        free(cl[i].recs);
        load_http_free(&cl[i].h);
    }
    if (g.ndeletes > 0)
        qsort(g.deletes, g.ndeletes, sizeof(*g.deletes), cmp_id);
    rep.workload = g.workload;
    rep.mix = g.mix;
    rep.poll_ms = g.poll_ms;
    rep.urls = g.urls;
    rep.nurls = g.nurls;
    rep.seed = seed;
    rep.clients = g.clients;
    rep.seconds = g.seconds;
    rep.outs = g.outs;
    rep.nouts = g.nouts;
    rep.deletes = g.deletes;
    rep.ndeletes = g.ndeletes;
    violations = load_report_write(&rep, out);
    json_decref(rep.faults);
    json_decref(rep.managers);
    json_decref(rep.violations);
    free(rep.recs);
    free(g.outs);
    free(g.pend);
    free(g.deletes);
    free(g.slots);
    free(cl);
    curl_global_cleanup();
    pthread_mutex_destroy(&g.mu);
    return violations == 0 ? 0 : 1;
}
