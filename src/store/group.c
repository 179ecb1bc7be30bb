/*
 * group.c - group commit's queue (group.h).  Nobody waits on purpose:
 * a thread that finds room (fewer than `inflight` batches in flight)
 * leads at once with whatever is queued, its own transition among them
 * or not, so a lone transition goes to the store without delay, and under
 * load the queue fills while the batches in flight commit.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"

struct vse_gc_group {
    char *key;
    int refs;
    int inflight;
    pthread_mutex_t mu;
    struct vse_gc_req *head, *tail; /* waiting for a leader */
    int busy;                       /* batches in flight */
    _Atomic int64_t tick_at;        /* vse__gc_tick()'s last yes */
    struct vse_gc_group *next;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vse_gc_group *registry;
/* Batches of two or more committed, the transitions in them, and those
 * sent again alone after their batch failed. */
static _Atomic uint64_t n_batches, n_batched, n_retried;

void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried);
void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried)
{
    *batches = atomic_load(&n_batches);
    *transitions = atomic_load(&n_batched);
    *retried = atomic_load(&n_retried);
}

/* Transitions waiting for a leader in every group of the process. */
int vse__group_queued(void);
int vse__group_queued(void)
{
    int n = 0;

    pthread_mutex_lock(&registry_mu);
    for (struct vse_gc_group *g = registry; g != NULL; g = g->next) {
        pthread_mutex_lock(&g->mu);
        for (struct vse_gc_req *q = g->head; q != NULL; q = q->next)
            n++;
        pthread_mutex_unlock(&g->mu);
    }
    pthread_mutex_unlock(&registry_mu);
    return n;
}

void vse__gc_count(uint64_t batch_len, uint64_t retried)
{
    if (batch_len > 0) {
        atomic_fetch_add(&n_batches, 1);
        atomic_fetch_add(&n_batched, batch_len);
    }
    if (retried > 0)
        atomic_fetch_add(&n_retried, retried);
}

int vse__gc_tick(struct vse_gc_group *g, int64_t now, int64_t every)
{
    int64_t at = atomic_load(&g->tick_at);

    if (at != 0 && now - at < every)
        return 0;
    /* Of threads racing past the same tick, one wins it. */
    return atomic_compare_exchange_strong(&g->tick_at, &at, now);
}

struct vse_gc_group *vse__gc_join(const char *key, int inflight)
{
    struct vse_gc_group *g;

    pthread_mutex_lock(&registry_mu);
    for (g = registry; g != NULL; g = g->next)
        if (strcmp(g->key, key) == 0)
            break;
    if (g == NULL) {
        g = calloc(1, sizeof(*g));
        if (g != NULL && (g->key = strdup(key)) == NULL) {
            free(g);
            g = NULL;
        }
        if (g != NULL) {
            g->inflight = inflight < 1 ? 1 : inflight;
            pthread_mutex_init(&g->mu, NULL);
            g->next = registry;
            registry = g;
        }
    }
    if (g != NULL)
        g->refs++;
    pthread_mutex_unlock(&registry_mu);
    return g;
}

void vse__gc_leave(struct vse_gc_group *g)
{
    struct vse_gc_group **p;

    if (g == NULL)
        return;
    pthread_mutex_lock(&registry_mu);
    if (--g->refs == 0) {
        for (p = &registry; *p != g; p = &(*p)->next)
            ;
        *p = g->next;
        pthread_mutex_destroy(&g->mu);
        free(g->key);
        free(g);
    }
    pthread_mutex_unlock(&registry_mu);
}

/*
 * Each waiter sleeps on its own condition variable and is woken alone:
 * when its batch is done, or when it is first in the queue and a slot
 * has come free for it to lead.  (One shared one, broadcast at every
 * batch's end, woke all of them each time: at 16 threads the futex
 * traffic was a quarter of the client's CPU.)
 */
static void wake_next_leader(struct vse_gc_group *g)
{
    if (g->head != NULL && g->busy < g->inflight)
        pthread_cond_signal(&g->head->cv);
}

int vse__gc_apply(struct vse_gc_group *g, const struct vse_gc_ops *ops,
                  void *ctx, const struct vse_change *ch,
                  struct vse_resource *cur, int64_t *seq,
                  struct vse_error *err)
{
    struct vse_gc_req me = {.ch = ch, .cur = cur, .err = err};

    pthread_cond_init(&me.cv, NULL);
    pthread_mutex_lock(&g->mu);
    if (g->tail != NULL)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    while (!me.done) {
        struct vse_gc_req *batch, *last, *next;
        int n = 1;

        if (g->busy >= g->inflight || g->head == NULL) {
            pthread_cond_wait(&me.cv, &g->mu);
            continue;
        }
        /* Lead: take up to VSE_GC_MAX from the head (ours among them, or
         * ours comes in a later batch, perhaps also led by this thread). */
        g->busy++;
        batch = last = g->head;
        while (last->next != NULL && n < VSE_GC_MAX) {
            last = last->next;
            n++;
        }
        g->head = last->next;
        if (g->head == NULL)
            g->tail = NULL;
        last->next = NULL;
        /* Another slot may be free for what is left. */
        wake_next_leader(g);
        pthread_mutex_unlock(&g->mu);
        if (n == 1)
            ops->one(ctx, batch);
        else
            batch = ops->batch(ctx, batch);
        pthread_mutex_lock(&g->mu);
        for (struct vse_gc_req *q = batch; q != NULL; q = next) {
            /* Once done, q's owner may return and its memory go. */
            next = q->next;
            q->done = 1;
            if (q != &me)
                pthread_cond_signal(&q->cv);
        }
        g->busy--;
        wake_next_leader(g);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&me.cv);
    if (me.rc == 0 && seq != NULL)
        *seq = me.seq;
    return me.rc;
}
