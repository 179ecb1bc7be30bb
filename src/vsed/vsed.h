/*
 * vsed.h - what the parts of vsed share: the configuration, the roles of
 * callers, the request and response that api-v1.c works on (kept free of
 * libmicrohttpd so that the fuzzer can drive it), metrics and the threads
 * that run beside the HTTP pool (event notifier, reaper).
 */
#ifndef VSED_H
#define VSED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "vse.h"

#define VSED_DEFAULT_LISTEN "127.0.0.1:8776"
#define VSED_DEFAULT_STORE "sqlite:./var/vse.db"

enum vsed_role {
    ROLE_NONE = 0, /* no valid token */
    ROLE_READER,   /* GET */
    ROLE_MEMBER,   /* transitions */
    ROLE_ADMIN     /* reset-state, reap, purge */
};

#define VSED_TOKEN_NAME_MAX 63

struct vsed_token {
    char name[VSED_TOKEN_NAME_MAX + 1];
    uint8_t hash[32]; /* SHA-256 of the token */
    enum vsed_role role;
    char project[VSE_ID_MAX + 1]; /* the volume API's project; "" none */
};

/* The services (DESIGN §2) one vsed process runs: --role, as bits. */
enum vsed_service {
    SVC_API = 1,       /* HTTP: /v1 and the Cinder v3 API */
    SVC_SCHEDULER = 2, /* picks a volume host for creates */
    SVC_VOLUME = 4,    /* a volume host's manager: runs the driver */
    SVC_REAPER = 8     /* applies expiry policies to dead leases */
};
#define SVC_ALL (SVC_API | SVC_SCHEDULER | SVC_VOLUME | SVC_REAPER)

struct vsed_config {
    char listen[128];    /* ADDR:PORT */
    int listen_set;      /* listen given (--listen or the config file):
                             a role without the API serves HTTP only then */
    char store[1024];    /* store URL */
    int auth;            /* 1 = token (default), 0 = noauth */
    int reaper_interval; /* seconds; 0 = no reaper */
    size_t body_max;     /* bytes; bigger bodies are answered 413 */
    int idle_timeout;    /* seconds a connection may stay silent */
    int request_timeout; /* seconds for one request's body to arrive */
    unsigned conn_max;   /* concurrent connections */
    int threads;         /* MHD worker threads */
    struct vsed_token *tokens;
    int ntokens;
    unsigned services;           /* enum vsed_service bits */
    int heartbeat;               /* register the roles as services (--role or
                             --all-in-one given) */
    char host[VSE_NAME_MAX + 1]; /* this process's host name */
    char pool[1024];             /* volume role: the pool directory */
    int64_t capacity_gb;         /* volume role: what the pool may hold */
    int volume_workers;          /* volume role: jobs carried at once */
    int64_t lease_ms;            /* leases of workers' steps and heartbeats */
    int local_locks;     /* --coordination local-locks: the approach vse
                             replaces, for comparison (issue 7) */
    char lock_dir[1024]; /* its per-host file locks */
};

/* Defaults: loopback, token auth, reaper every 10 s. */
void vsed_config_init(struct vsed_config *c);
void vsed_config_release(struct vsed_config *c);
/* Read a YAML config file over *c: 0, or VSE_EINVAL with err (may be
 * NULL) naming file:line:column and what is wrong. */
int vsed_config_load(struct vsed_config *c, const char *path,
                     struct vse_error *err);
/* "reader" ... "admin"; ROLE_NONE if unknown. */
enum vsed_role vsed_role_parse(const char *s);
const char *vsed_role_name(enum vsed_role r);

/* ---- auth.c ---------------------------------------------------------- */

/* "sha256:HEX" of token into buf (72 bytes). */
void vsed_hash_token(const char *token, size_t len, char *buf, size_t size);
/* Parse "sha256:HEX"; 0 or -1. */
int vsed_parse_hash(const char *s, uint8_t out[32]);
/* The role of a presented token (ROLE_NONE if none matches); *name gets
 * the token's name. */
enum vsed_role vsed_auth(const struct vsed_config *c, const char *token,
                         const char **name, const char **project);

/* ---- the request as api-v1.c sees it ------------------------------- */

#define VSED_ARGS_MAX 16

struct vsed_kv {
    const char *key;
    const char *value;
};

struct vsed_req {
    const char *method;
    const char *path;
    struct vsed_kv args[VSED_ARGS_MAX]; /* query arguments */
    int nargs;
    int too_many_args;
    const char *content_type; /* NULL if none */
    const char *body;         /* NUL-terminated, may be NULL */
    size_t body_len;
    const char *request_id; /* always set: logged and echoed */
    /* The client's X-Request-Id, or NULL: only an id the client knows
     * can make a retry idempotent, so only that one is recorded. */
    const char *client_request_id;
    int authenticated; /* a token was presented and matched, or
                                noauth */
    int token_presented;
    enum vsed_role role;
    const char *actor; /* token name, or "anonymous" */
    /* The volume API's caller: the token's project, or under noauth the
     * client's x-project-id / X-Auth-Token USER:PROJECT. */
    const char *project;
    const char *user;
    const char *api_version; /* OpenStack-API-Version header, or NULL */
    const char *host_header; /* Host, for links; NULL if absent */
    vse_db *db;              /* NULL when the store cannot be opened */
    const char *db_error;
};

struct vsed_resp {
    int status;
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;
    int retry_after;      /* seconds; 0 = no header */
    int repeated;         /* X-Vse-Repeated: true */
    const char *allow;    /* Allow header for a 405 */
    int route;            /* enum vsed_route, for metrics and logs */
    char api_version[32]; /* OpenStack-API-Version answer; "" none */
};

enum vsed_route {
    R_UNKNOWN = 0,
    R_HEALTHZ,
    R_METRICS,
    R_MACHINES,
    R_MACHINE,
    R_RESOURCES,
    R_RESOURCE,
    R_TRANSITION,
    R_RESET,
    R_HISTORY,
    R_REAP,
    R_PURGE,
    R_EVENTS,
    R_CINDER, /* the Cinder v3 API (cinder.c) */
    R_HOLDS,
    R_COUNT
};
const char *vsed_route_name(int route);

/* Route of (method, path), before the body: used to answer the events
 * route outside api-v1.c and to pick the role a request needs. */
int vsed_api_route(const char *path);
/* Handle one complete request; fills *p (p->body to be freed). */
void vsed_api_handle(const struct vsed_req *q, struct vsed_resp *p);
/* Fill *p with /v1's one error shape (httpjson.c). */
void vsed_api_error(struct vsed_resp *p, int status, const char *code,
                    const char *msg, const char *detail, const char *hint);
/* Check the caller may use a route needing `need`; 0, or fills *p. */
int vsed_api_allow(const struct vsed_req *q, enum vsed_role need,
                   struct vsed_resp *p);
/* noauth: every caller is admin.  Set once at start. */
extern int vsed_noauth;

/* ---- cinder.c: the Cinder v3 API (cinder-*.c hold its resources) ---- */

/* 1 if `path` belongs to the Cinder API ("/", "/v3", "/v3/..."). */
int vsed_cinder_route(const char *path);
/* Handle one complete Cinder API request; fills *p. */
void vsed_cinder_handle(const struct vsed_req *q, struct vsed_resp *p);

/* ---- httpjson.c: what /v1 and the Cinder API share ------------------- */

/* Whose shapes an answer takes. */
enum vsed_dialect {
    VSED_DIALECT_V1,    /* {"error": {"code", "message", ...}}, newline */
    VSED_DIALECT_CINDER /* {"itemNotFound": {"message", "code"}} */
};

/* Compact JSON of j (stolen) as the body of *p, application/json; an
 * answer that cannot be made becomes the dialect's 500. */
void vsed_reply(struct vsed_resp *p, enum vsed_dialect d, int status,
                json_t *j);
/* text (malloc'd, taken over) as the body. */
void vsed_reply_text(struct vsed_resp *p, int status, char *text,
                     const char *ctype);
/* An empty application/json body (Cinder's 202 and 204). */
void vsed_reply_empty(struct vsed_resp *p, int status);
/* /v1's error object {"error": {...}}; detail and hint may be NULL. */
json_t *vsed_error_json(const char *code, const char *msg, const char *detail,
                        const char *hint);
/* A Cinder fault, {"NAME": {"message": ..., "code": status}}, NAME after
 * the status as Cinder names it. */
void vsed_cinder_vfault(struct vsed_resp *p, int status, const char *fmt,
                        va_list ap);
/* The HTTP status of a vse error code: VSE_ERROR_MAP's, except that the
 * Cinder API answers a refused transition 400 (Cinder's "Invalid
 * volume"). */
int vsed_http_status(int rc, enum vsed_dialect d);
/* The visible status of a row's state; "" if its machine or state is not
 * known to this process. */
const char *vsed_status_of(vse_db *db, const struct vse_resource *r);
/* A query argument ("" when given without a value), or NULL. */
const char *vsed_arg(const struct vsed_req *q, const char *key);
/* 1 if ct is application/json, with or without parameters. */
int vsed_is_json_type(const char *ct);
/* What became of a JSON request body (the size limit is http.c's). */
enum vsed_body {
    VSED_BODY_OK,        /* *out: the object, the caller's to decref */
    VSED_BODY_EMPTY,     /* no body */
    VSED_BODY_SYNTAX,    /* not JSON: *je says where and why */
    VSED_BODY_NOT_OBJECT /* JSON, but not an object */
};
enum vsed_body vsed_body_parse(const struct vsed_req *q, json_t **out,
                               json_error_t *je);

/* ---- service.c: roles, heartbeats ------------------------------------ */

/* The service machine's name and the binaries of services. */
#define VSED_SERVICE_MACHINE "service"
/* Open a store handle with the machines vsed adds to the built-ins. */
int vsed_open(const char *url, vse_db **out, struct vse_error *err);
/*
 * At start, before any vsed_open(): re-pin the store to each built-in
 * machine that is newer than its pin (a log line per upgrade; resources
 * in the way are printed on stderr, one line each).  0, or the library's
 * error (VSE_EPINNED: a built-in is older than the pin, or changed under
 * the same version; VSE_EINVAL: resources in the way).
 */
int vsed_upgrade_machines(const char *url, struct vse_error *err);
/* Close a handle vsed_open() gave. */
void vsed_close(vse_db *db);
/* Shutdown: every open handle (and any opened later) stops waiting for
 * an unreachable store; a reachable one is unaffected. */
void vsed_stores_interrupt(void);
/* The resource id of a service: "BINARY@HOST". */
void vsed_service_id(const char *binary, const char *host, char *buf,
                     size_t size);
/* Start the heartbeat thread (one service row per role) and the role
 * threads of c->services; 0 or -1. */
int vsed_services_start(const struct vsed_config *c);
void vsed_services_stop(void);
/* This process's owner name for a role: "ROLE@HOST:PID". */
void vsed_owner(const char *role, char *buf, size_t size);
/* The process's config, for the roles: set before any thread that reads
 * it starts, read-only after. */
extern const struct vsed_config *vsed_cfg;

/* Wait until an event moves a resource into (or expires a lease in) one
 * of `states` (NULL-terminated), timeout_ms passes or *stop is set;
 * *seq follows the events read.  1 when such an event came. */
int vsed_wait_for(vse_db *db, int64_t *seq, const char *const *states,
                  int timeout_ms, const atomic_int *stop);
/* Role threads: run until *stop is set. */
void *vsed_scheduler_main(void *stop);
void *vsed_volume_main(void *stop);
/* --coordination local-locks: make the lock directory; 0, or -1 with a
 * message. */
int vsed_locks_init(const char *dir, char *err, size_t size);
/* --coordination local-locks: make the store wrapper (store-blind.c)
 * that turns transitions into status checks and blind writes known as
 * the "blind:" scheme; vsed_open() then opens "blind:URL".  Call before
 * any thread opens a store.  0, or a VSE_E* code. */
int vsed_store_blind_register(void);

/* attrs of a row as a JSON object (an empty one if unparsable); the
 * caller json_decref()s it. */
json_t *vsed_attrs(const struct vse_resource *r);
/* A string member, or "" */
const char *vsed_attr_str(const json_t *a, const char *key);
/* An integer member, or def. */
int64_t vsed_attr_int(const json_t *a, const char *key, int64_t def);
/* Compact JSON text of j (steals j), malloc'd; NULL on failure. */
char *vsed_json_text(json_t *j);

/* ---- metrics.c ------------------------------------------------------- */

void vsed_metrics_http(int route, int status);
void vsed_metrics_store(int64_t us);
void vsed_metrics_refusal(int rc);
void vsed_metrics_event(const struct vse_event *e);
/* Prometheus text of every metric; in-flight read from db. */
char *vsed_metrics_render(vse_db *db, size_t *len);
void vsed_metrics_release(void);

/* ---- events.c -------------------------------------------------------- */

struct MHD_Connection;
struct MHD_Response;
/* Start the notifier thread on its own handle; 0 or -1. */
int vsed_events_start(const char *store, int64_t *start_seq);
/* Wake every watcher to end its stream, then stop the notifier. */
void vsed_events_stop(void);
/* A response streaming events after `since` on conn. */
struct MHD_Response *vsed_events_response(struct MHD_Connection *conn,
                                          int64_t since);
/* Open watchers (for logs and tests). */
int vsed_events_watchers(void);

/* ---- reaper.c -------------------------------------------------------- */

int vsed_reaper_start(const char *store, int interval_s);
void vsed_reaper_stop(void);

/* ---- http.c ---------------------------------------------------------- */

int vsed_http_start(struct vsed_config *c);
/* Bind and listen on c->listen before anything is registered, so that a
 * port in use ends the start early; vsed_http_start() serves on that
 * socket.  0, or -1 with a message naming the address. */
int vsed_http_bind(const struct vsed_config *c, char *err, size_t size);
/* 0 and *loopback set if `listen` is ADDR:PORT, else -1. */
int vsed_listen_is_loopback(const char *listen, int *loopback);
/* Stop accepting connections. */
void vsed_http_quiesce(void);
/* Wait for requests in flight to finish, up to grace_ms. */
void vsed_http_drain(int grace_ms);
void vsed_http_stop(void);
/* The handle of the calling worker thread (opened lazily); NULL on
 * failure with err filled. */
vse_db *vsed_thread_db(struct vse_error *err);
/* Set by main() before the HTTP threads start, read-only after. */
extern const char *vsed_store_url;
/* Set when a shutdown began, from the main thread: event streams end. */
extern atomic_int vsed_stopping;

/* One line on stderr, prefixed by the time. */
void vsed_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* VSED_H */
