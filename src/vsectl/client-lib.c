/*
 * client-lib.c - vsectl's client interface on libvse itself: each call
 * is the vse.h function of the same name on the handle ctx_open() made
 * from --store.
 */
#include <string.h>
#include <time.h>

#include "client.h"
#include "util.h"
#include "vsectl.h"

static int lib_transition(struct ctx *ctx, const struct tr *t,
                          struct vse_resource *out, char *status,
                          struct vse_error *err)
{
    int rc;

    switch (t->kind) {
    case VSE_KIND_CREATE:
        rc = vse_create(ctx->db, t->machine, t->id, &t->o, out, err);
        break;
    case VSE_KIND_BEGIN:
        rc = vse_begin(ctx->db, t->id, t->op, &t->o, out, err);
        break;
    case VSE_KIND_STEP:
        rc = vse_step(ctx->db, t->id, t->op_id, t->to, &t->o, out, err);
        break;
    case VSE_KIND_FINISH:
        rc = vse_finish(ctx->db, t->id, t->op_id, t->to, &t->o, out, err);
        break;
    case VSE_KIND_FAIL:
        rc = vse_fail(ctx->db, t->id, t->op_id, &t->o, out, err);
        break;
    case VSE_KIND_CLAIM:
        rc = vse_claim(ctx->db, t->id, t->op_id, &t->o, out, err);
        break;
    case VSE_KIND_RENEW:
        rc = vse_renew(ctx->db, t->id, t->op_id, &t->o, out, err);
        break;
    case VSE_KIND_UPDATE:
        rc = vse_update(ctx->db, t->id, &t->o, out, err);
        break;
    default:
        rc = vse_reset_state(ctx->db, t->id, t->to, &t->o, out, err);
        break;
    }
    snprintf(status, VSE_STATUS_MAX + 1, "%s", resource_status(ctx->db, out));
    return rc;
}

static int lib_get(struct ctx *ctx, const char *id, struct vse_resource *out,
                   char *status, struct vse_error *err)
{
    int rc = vse_get(ctx->db, id, out, err);

    if (rc >= 0)
        snprintf(status, VSE_STATUS_MAX + 1, "%s",
                 resource_status(ctx->db, out));
    return rc;
}

struct list_arg {
    struct ctx *ctx;
    client_res_cb cb;
    void *arg;
};

static int list_one(void *arg, const struct vse_resource *r)
{
    struct list_arg *a = arg;

    return a->cb(a->arg, r, resource_status(a->ctx->db, r));
}

static int lib_list(struct ctx *ctx, const struct vse_filter *f,
                    client_res_cb cb, void *arg, struct vse_error *err)
{
    struct list_arg a = {ctx, cb, arg};

    return vse_list(ctx->db, f, list_one, &a, err);
}

static int lib_history(struct ctx *ctx, const char *id, int64_t after,
                       size_t limit, vse_event_cb cb, void *arg,
                       struct vse_error *err)
{
    return vse_history(ctx->db, id, after, limit, cb, arg, err);
}

struct watch_arg {
    vse_event_cb cb;
    void *arg;
    int64_t last, got;
    int done;
};

static int watch_one(void *arg, const struct vse_event *e)
{
    struct watch_arg *w = arg;

    w->last = e->seq;
    w->got++;
    w->done = w->cb(w->arg, e);
    return w->done;
}

#define WATCH_BATCH 512
#define WATCH_WAIT_MS 1000

static int lib_watch(struct ctx *ctx, int64_t after, int64_t timeout_ms,
                     volatile int *stop, vse_event_cb cb, void *arg,
                     struct vse_error *err)
{
    struct watch_arg w = {cb, arg, after, 0, 0};
    int64_t deadline = timeout_ms > 0 ? vse__now_mono_ms() + timeout_ms : 0;
    int woken = 0, rc;

    while (!*stop) {
        int64_t wait_ms = WATCH_WAIT_MS;

        w.got = 0;
        rc = vse_events(ctx->db, w.last, WATCH_BATCH, watch_one, &w, err);
        if (rc < 0 && !*stop)
            return rc;
        if (w.done || *stop)
            break;
        if (w.got == WATCH_BATCH)
            continue;   /* more are waiting: no need to sleep */
        fflush(stdout); /* a follower reads line by line */
        if (deadline != 0) {
            int64_t left = deadline - vse__now_mono_ms();

            if (left <= 0)
                break;
            if (left < wait_ms)
                wait_ms = left;
        }
        if (w.got == 0 && woken) {
            /* The last wake-up found nothing: a store whose wait is
             * only a hint must still not make this loop spin. */
            struct timespec ts = {0, 50 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
        rc = vse_wait(ctx->db, w.last, (int)wait_ms, err);
        if (rc < 0 && !*stop)
            return rc;
        woken = rc == 1;
    }
    return 0;
}

static int lib_reap(struct ctx *ctx, struct vse_reap_stats *st,
                    struct vse_error *err)
{
    return vse_reap(ctx->db, st, err);
}

static int lib_purge(struct ctx *ctx, int64_t older_ms, int keep_terminal,
                     struct vse_purge_stats *st, struct vse_error *err)
{
    struct vse_purge_policy p;

    memset(&p, 0, sizeof(p));
    p.before = vse_now_us() - older_ms * 1000;
    p.drop_terminal = !keep_terminal;
    return vse_purge(ctx->db, &p, st, err);
}

static void lib_close(struct ctx *ctx)
{
    vse_close(ctx->db);
    ctx->db = NULL;
}

static int lib_holds(struct ctx *ctx, const char *held, const char *holder,
                     vse_hold_cb cb, void *arg, struct vse_error *err)
{
    return vse_holds(ctx->db, held, holder, cb, arg, err);
}

const struct client_ops client_lib = {
    lib_transition, lib_get,   lib_list,  lib_history, lib_watch,
    lib_reap,       lib_purge, lib_close, lib_holds,
};
