/*
 * http.c - vsed's HTTP server on libmicrohttpd: an epoll thread pool,
 * bodies gathered until the request is complete (answering earlier makes
 * MHD close keep-alive connections: shared/FIELD-NOTES.md), limits on
 * body size and time, auth, request ids, one log line per request, and a
 * vse_db handle per worker thread (a handle is single-threaded).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "util.h"
#include "vsed.h"

/* Set by main() before the HTTP threads start; read-only after. */
const char *vsed_store_url;
/* Set by main() on a stop signal, read by the MHD threads. */
atomic_int vsed_stopping;

static struct MHD_Daemon *daemon_;
static int listen_fd = -1; /* vsed_http_bind()'s, MHD's once started */
/* cfg and reqid_prefix are set by vsed_http_start() before MHD's threads
 * start, and only read after. */
static const struct vsed_config *cfg;
static atomic_int inflight;
static char reqid_prefix[17];
static atomic_ullong reqid_next;

/* ---- per-thread store handles ------------------------------------------ */

#define DBS_MAX 256
static pthread_key_t db_key;
static pthread_mutex_t dbs_mu = PTHREAD_MUTEX_INITIALIZER;
static vse_db *dbs[DBS_MAX];
static int ndbs;
/* Handles opened before the threads start, handed out on first use.  A
 * worker thread's first request then finds its connection made: opening
 * one lazily during a ZooKeeper leader election, under CPU starvation,
 * could outlast the reconnect budget and answer 503, where a session
 * opened earlier rides the election out. */
static vse_db *spare[DBS_MAX];
static int nspare;

/* A new handle, kept in dbs[] to be closed at the stop; NULL on failure
 * with err filled. */
static vse_db *open_tracked(struct vse_error *err)
{
    vse_db *db;

    if (vsed_open(vsed_store_url, &db, err) < 0)
        return NULL;
    pthread_mutex_lock(&dbs_mu);
    if (ndbs == DBS_MAX) {
        pthread_mutex_unlock(&dbs_mu);
        vsed_close(db);
        snprintf(err->msg, sizeof(err->msg),
                 "too many store handles (%d) in this process", DBS_MAX);
        err->code = VSE_ESTORE;
        return NULL;
    }
    dbs[ndbs++] = db;
    pthread_mutex_unlock(&dbs_mu);
    return db;
}

vse_db *vsed_thread_db(struct vse_error *err)
{
    vse_db *db = pthread_getspecific(db_key);

    if (db != NULL)
        return db;
    pthread_mutex_lock(&dbs_mu);
    if (nspare > 0)
        db = spare[--nspare];
    pthread_mutex_unlock(&dbs_mu);
    if (db == NULL)
        db = open_tracked(err);
    if (db != NULL)
        pthread_setspecific(db_key, db);
    return db;
}

void vsed_log(const char *fmt, ...)
{
    char line[2048], ts[40];
    va_list ap;
    int n;

    vse_time_format(vse_now_us(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s vsed: ", ts);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line: lines of different threads never interleave. */
    n = (int)strlen(line);
    if (n < (int)sizeof(line) - 1)
        line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* ---- one request ----------------------------------------------------- */

struct request {
    int64_t start_us;
    char method[16];
    char *body;
    size_t len, cap;
    int answered; /* a response was queued before the body ended */
    int too_big;  /* over body_max: the rest is read and dropped */
    int status;
    int route;
    char request_id[VSE_ID_MAX + 1];
};

static enum MHD_Result send_resp(struct MHD_Connection *c, struct request *r,
                                 struct vsed_resp *p)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char ra[16];

    resp = MHD_create_response_from_buffer(p->len, p->body,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(p->body);
        return MHD_NO;
    }
    p->body = NULL;
    MHD_add_response_header(resp, "Content-Type",
                            p->content_type ? p->content_type
                                            : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (p->retry_after > 0) {
        snprintf(ra, sizeof(ra), "%d", p->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (p->repeated)
        MHD_add_response_header(resp, "X-Vse-Repeated", "true");
    if (p->allow != NULL)
        MHD_add_response_header(resp, "Allow", p->allow);
    if (p->api_version[0] != '\0') {
        MHD_add_response_header(resp, "OpenStack-API-Version",
                                p->api_version);
        MHD_add_response_header(resp, "Vary", "OpenStack-API-Version");
    }
    r->status = p->status;
    r->route = p->route;
    ret = MHD_queue_response(c, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* An error answer before the request was handled. */
static enum MHD_Result early(struct MHD_Connection *c, struct request *r,
                             int status, const char *code, const char *msg)
{
    struct vsed_resp p;

    memset(&p, 0, sizeof(p));
    vsed_api_error(&p, status, code, msg, NULL, NULL);
    r->answered = 1;
    return send_resp(c, r, &p);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    struct vsed_req *q = cls;

    if (q->nargs == VSED_ARGS_MAX) {
        q->too_many_args = 1;
        return MHD_NO;
    }
    q->args[q->nargs].key = key;
    q->args[q->nargs].value = value;
    q->nargs++;
    return MHD_YES;
}

static void new_request_id(char *buf, size_t size)
{
    snprintf(buf, size, "%s-%llu", reqid_prefix,
             (unsigned long long)atomic_fetch_add(&reqid_next, 1));
}

/* Cinder's noauth: "USER:PROJECT" in X-Auth-Token, or the x-user-id and
 * x-project-id headers; `buf` holds the split token.  A token without a
 * colon is both the user and the project, as in Cinder. */
static void noauth_identity(struct MHD_Connection *c, struct vsed_req *q,
                            char *buf, size_t size)
{
    const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "X-Auth-Token");
    const char *u = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "X-User-Id");
    const char *p = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "X-Project-Id");
    char *colon;

    if (tok != NULL && strlen(tok) < size) {
        snprintf(buf, size, "%s", tok);
        colon = strchr(buf, ':');
        if (colon != NULL) {
            *colon = '\0';
            if (u == NULL)
                u = buf;
            if (p == NULL)
                p = colon[1] != '\0' ? colon + 1 : buf;
        } else {
            if (u == NULL)
                u = buf;
            if (p == NULL)
                p = buf;
        }
    }
    q->user = u != NULL && u[0] ? u : "admin";
    q->project = p != NULL && p[0] ? p : "admin";
}

static void authenticate(struct MHD_Connection *c, struct vsed_req *q,
                         char *buf, size_t size)
{
    const char *project = "";
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "Authorization");
    const char *tok = NULL, *name = "anonymous";

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0)
        tok = h + 7;
    if (tok == NULL)
        tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Auth-Token");
    q->token_presented = tok != NULL;
    q->role = vsed_noauth ? ROLE_ADMIN : vsed_auth(cfg, tok, &name, &project);
    q->authenticated = vsed_noauth || q->role != ROLE_NONE;
    q->actor = vsed_noauth ? "anonymous" : name;
    if (vsed_noauth) {
        noauth_identity(c, q, buf, size);
    } else {
        q->user = name;
        q->project = project;
    }
    q->api_version = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "OpenStack-API-Version");
    q->host_header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
}

static enum MHD_Result events(struct MHD_Connection *c, struct request *r,
                              struct vsed_req *q)
{
    struct vsed_resp p;
    struct MHD_Response *resp;
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Last-Event-ID");
    const char *since = NULL;
    int64_t from = 0;
    enum MHD_Result ret;
    char *end;

    memset(&p, 0, sizeof(p));
    p.route = R_EVENTS;
    if (strcmp(q->method, "GET") != 0) {
        vsed_api_error(&p, 405, "method_not_allowed", "events take GET", NULL,
                       NULL);
        p.allow = "GET";
        return send_resp(c, r, &p);
    }
    if (vsed_api_allow(q, ROLE_READER, &p) != 0)
        return send_resp(c, r, &p);
    for (int i = 0; i < q->nargs; i++)
        if (strcmp(q->args[i].key, "since") == 0)
            since = q->args[i].value;
    /* Last-Event-ID is where a reconnecting client got to: it wins. */
    if (last != NULL)
        since = last;
    if (since != NULL) {
        from = strtoll(since, &end, 10);
        if (since[0] < '0' || since[0] > '9' || *end != '\0' || from < 0) {
            vsed_api_error(&p, 400, "invalid",
                           "since and Last-Event-ID "
                           "must be a sequence number",
                           NULL, NULL);
            return send_resp(c, r, &p);
        }
    }
    resp = vsed_events_response(c, from);
    if (resp == NULL) {
        vsed_api_error(&p, 503, "store", "cannot stream events", NULL, NULL);
        return send_resp(c, r, &p);
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    r->status = 200;
    r->route = R_EVENTS;
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result complete(struct MHD_Connection *c, struct request *r,
                                const char *url)
{
    struct vsed_req q;
    struct vsed_resp p;
    struct vse_error err;
    const char *rid;
    char idbuf[2 * VSE_ID_MAX + 2];

    memset(&q, 0, sizeof(q));
    memset(&p, 0, sizeof(p));
    q.method = r->method;
    q.path = url;
    q.body = r->body;
    q.body_len = r->len;
    q.request_id = r->request_id;
    q.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Content-Type");
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    authenticate(c, &q, idbuf, sizeof(idbuf));
    rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    q.client_request_id = rid;
    if (rid != NULL && vse_check_id("request id", rid, &err) != 0) {
        /* Never echo a header we refused. */
        new_request_id(r->request_id, sizeof(r->request_id));
        vsed_api_error(&p, 400, "invalid", err.msg, NULL,
                       "X-Request-Id: 1 to 255 bytes of UTF-8, no control "
                       "characters");
        p.route = vsed_api_route(url);
        return send_resp(c, r, &p);
    }
    /* A process without the api role serves its health and metrics. */
    if (!(cfg->services & SVC_API) && r->route != R_HEALTHZ &&
        r->route != R_METRICS) {
        vsed_api_error(&p, 404, "not_found",
                       "this vsed does not run the "
                       "api role",
                       NULL, "start it with --role api");
        return send_resp(c, r, &p);
    }
    if (r->route == R_EVENTS)
        return events(c, r, &q);
    vse_error_clear(&err);
    q.db = vsed_thread_db(&err);
    q.db_error = err.msg;
    if (r->route == R_CINDER)
        vsed_cinder_handle(&q, &p);
    else
        vsed_api_handle(&q, &p);
    return send_resp(c, r, &p);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct request *r = *con_cls;

    if (r == NULL) {
        const char *cl, *rid;

        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&inflight, 1);
        r->start_us = vse__now_mono_us();
        snprintf(r->method, sizeof(r->method), "%s", method);
        rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
        if (rid != NULL && strlen(rid) <= VSE_ID_MAX)
            snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
        else
            new_request_id(r->request_id, sizeof(r->request_id));
        r->route = vsed_cinder_route(url) ? R_CINDER : vsed_api_route(url);
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > cfg->body_max)
            return early(c, r, 413, "too_large", "request body too large");
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        /* MHD takes no response in the middle of a body: a body that is
         * too slow ends the connection; one too large (chunked, so its
         * size was not known at the start) is read to its end, no longer
         * than the request timeout, and answered 413. */
        if (vse__now_mono_us() - r->start_us >
            (int64_t)cfg->request_timeout * 1000000) {
            r->status = 408;
            return MHD_NO;
        }
        if (r->too_big || r->len + n > cfg->body_max) {
            r->too_big = 1;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            char *b;

            while (cap < r->len + n + 1)
                cap *= 2;
            b = realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    r->answered = 1;
    if (r->too_big)
        return early(c, r, 413, "too_large", "request body too large");
    return complete(c, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *r = *con_cls;
    int64_t us;

    if (r == NULL)
        return;
    us = vse__now_mono_us() - r->start_us;
    if (r->status == 0)
        r->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 0;
    vsed_metrics_http(r->route, r->status);
    vsed_log("req=%s %s %s %d %lldus%s", r->request_id, r->method,
             vsed_route_name(r->route), r->status, (long long)us,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    vsed_log("libmicrohttpd: %s", buf);
}

/* Parse "ADDR:PORT" (IPv4, or [IPv6]:PORT). */
static int parse_listen(const char *s, struct sockaddr_storage *ss,
                        int *loopback)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    char *end;
    long port;
    size_t hl;

    memset(ss, 0, sizeof(*ss));
    if (colon == NULL)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
        return -1;
    hl = (size_t)(colon - s);
    if (hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -1;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -1;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    return 0;
}

int vsed_listen_is_loopback(const char *listen, int *loopback)
{
    struct sockaddr_storage ss;

    return parse_listen(listen, &ss, loopback);
}

int vsed_http_bind(const struct vsed_config *c, char *err, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int loopback = 0, one = 1, fd;

    if (parse_listen(c->listen, &ss, &loopback) != 0) {
        snprintf(err, size, "listen address '%s' is not ADDR:PORT",
                 c->listen);
        return -1;
    }
    len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, size, "cannot listen on %s: %s", c->listen,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    listen_fd = fd;
    return 0;
}

/* One handle per worker thread, best effort: a store that cannot be
 * reached now is opened lazily later, as before. */
static void preopen(int n)
{
    struct vse_error err;

    for (int i = 0; i < n; i++) {
        vse_db *db;

        vse_error_clear(&err);
        db = open_tracked(&err);
        if (db == NULL) {
            vsed_log("opening the store for the HTTP threads: %s "
                     "(each opens its own at its first request)",
                     err.msg);
            return;
        }
        pthread_mutex_lock(&dbs_mu);
        spare[nspare++] = db;
        pthread_mutex_unlock(&dbs_mu);
    }
}

int vsed_http_start(struct vsed_config *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    unsigned char rnd[8];
    unsigned port = 0;
    char host[128];

    cfg = c;
    vsed_noauth = !c->auth;
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    for (int i = 0; i < 8; i++)
        snprintf(reqid_prefix + 2 * i, 3, "%02x", rnd[i]);
    pthread_key_create(&db_key, NULL);
    preopen(c->threads);
    if (listen_fd < 0) {
        vsed_log("cannot serve on %s: not bound", c->listen);
        return -1;
    }
    if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            flags |= MHD_USE_IPv6;
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    daemon_ = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads,
        MHD_OPTION_CONNECTION_LIMIT, c->conn_max,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->idle_timeout,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (daemon_ == NULL) {
        vsed_log("cannot serve on %s", c->listen);
        return -1;
    }
    snprintf(host, sizeof(host), "%.*s",
             (int)(strrchr(c->listen, ':') - c->listen), c->listen);
    vsed_log("listening on http://%s:%u", host, port);
    return 0;
}

void vsed_http_quiesce(void)
{
    MHD_socket fd;

    if (daemon_ == NULL)
        return;
    fd = MHD_quiesce_daemon(daemon_);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void vsed_http_drain(int grace_ms)
{
    int64_t deadline = vse__now_mono_us() + (int64_t)grace_ms * 1000;

    while (atomic_load(&inflight) > 0 && vse__now_mono_us() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    if (atomic_load(&inflight) > 0)
        vsed_log("%d requests still in flight after %d ms; stopping",
                 atomic_load(&inflight), grace_ms);
}

void vsed_http_stop(void)
{
    if (daemon_ != NULL)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    pthread_mutex_lock(&dbs_mu);
    for (int i = 0; i < ndbs; i++)
        vsed_close(dbs[i]);
    ndbs = 0;
    nspare = 0;
    pthread_mutex_unlock(&dbs_mu);
}
