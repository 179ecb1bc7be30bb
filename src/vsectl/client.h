/*
 * client.h - the one small interface vsectl's commands call to reach the
 * enforcer, with two implementations: client-lib.c (libvse on a store
 * URL, in process) and client-http.c (vsed's /v1 API with libcurl).  A
 * command is written once and behaves the same over both.
 */
#ifndef VSECTL_CLIENT_H
#define VSECTL_CLIENT_H

#include "json.h"
#include "vse.h"

struct ctx;

/* One transition, as the commands fill it. */
struct tr {
    enum vse_kind kind;  /* CREATE, BEGIN, STEP, FINISH, FAIL, CLAIM,
                           RENEW or RESET */
    const char *machine; /* create */
    const char *id;
    const char *op;    /* begin */
    const char *op_id; /* step ... renew */
    const char *to;    /* step, finish, reset */
    struct vse_opts o;
};

/* A resource and its visible status, as the commands print them. */
typedef int (*client_res_cb)(void *arg, const struct vse_resource *r,
                             const char *status);

/* Every function returns what the vse.h call it stands for returns. */
struct client_ops {
    int (*transition)(struct ctx *ctx, const struct tr *t,
                      struct vse_resource *out, char *status,
                      struct vse_error *err);
    int (*get)(struct ctx *ctx, const char *id, struct vse_resource *out,
               char *status, struct vse_error *err);
    int (*list)(struct ctx *ctx, const struct vse_filter *f, client_res_cb cb,
                void *arg, struct vse_error *err);
    int (*history)(struct ctx *ctx, const char *id, int64_t after,
                   size_t limit, vse_event_cb cb, void *arg,
                   struct vse_error *err);
    /* Every event after `after`, then new ones as they come, until cb
     * returns non-zero, timeout_ms passes (0: none) or *stop is set. */
    int (*watch)(struct ctx *ctx, int64_t after, int64_t timeout_ms,
                 volatile int *stop, vse_event_cb cb, void *arg,
                 struct vse_error *err);
    int (*reap)(struct ctx *ctx, struct vse_reap_stats *st,
                struct vse_error *err);
    int (*purge)(struct ctx *ctx, int64_t older_ms, int keep_terminal,
                 struct vse_purge_stats *st, struct vse_error *err);
    void (*close)(struct ctx *ctx);
    int (*holds)(struct ctx *ctx, const char *held, const char *holder,
                 vse_hold_cb cb, void *arg, struct vse_error *err);
};

extern const struct client_ops client_lib;
extern const struct client_ops client_http;

/* client-http.c: connect ctx->url; 0 or exit status (after a message). */
int client_http_open(struct ctx *ctx);

#endif /* VSECTL_CLIENT_H */
