/*
 * group.h - group commit's queue, shared by the SQL stores: the
 * transitions that one process's threads send to one store while a batch
 * is in flight wait here, and the next thread to find room leads them to
 * the store together, in one transaction the store makes (store-sqlite.c,
 * store-pg.c).  This part only queues, elects leaders and hands out the
 * answers; what a batch is in the store is the store's.
 */
#ifndef VSE_STORE_GROUP_H
#define VSE_STORE_GROUP_H

#include <pthread.h>
#include <stdint.h>

#include "store.h"

/* One transition waiting for, or in, a batch; lives on its caller's
 * stack until answered. */
struct vse_gc_req {
    const struct vse_change *ch;
    struct vse_resource *cur;
    struct vse_error *err;
    int64_t seq;
    int rc;
    int done;
    pthread_cond_t cv; /* its owner waits here (group.c) */
    struct vse_gc_req *next;
};

struct vse_gc_group;

/* The most transitions one batch takes. */
#define VSE_GC_MAX 64

/*
 * The process's group for `key` (one store: a file, a database), made on
 * first use, with at most `inflight` batches in flight at once; NULL out
 * of memory.  Each join is matched by a leave.
 */
struct vse_gc_group *vse__gc_join(const char *key, int inflight);
void vse__gc_leave(struct vse_gc_group *g);

/*
 * The store's two ways of applying: one transition alone (its rc and seq
 * into q), and a batch of two or more (each member's rc and seq set);
 * `batch` may reorder the list and returns its head.
 */
struct vse_gc_ops {
    void (*one)(void *ctx, struct vse_gc_req *q);
    struct vse_gc_req *(*batch)(void *ctx, struct vse_gc_req *list);
};

/* Queues the change, leads batches while there is room and work, and
 * returns the change's own answer (*seq set on success). */
int vse__gc_apply(struct vse_gc_group *g, const struct vse_gc_ops *ops,
                  void *ctx, const struct vse_change *ch,
                  struct vse_resource *cur, int64_t *seq,
                  struct vse_error *err);

/*
 * A clock shared by the group's users, for work done at most once per
 * `every` (in now's unit) by the whole process for this store, whichever
 * thread does it: 1 when this caller is the one to do it now.
 */
int vse__gc_tick(struct vse_gc_group *g, int64_t now, int64_t every);

/* Counters of this process, for tests (not the library's API). */
void vse__gc_count(uint64_t batch_len, uint64_t retried);

#endif /* VSE_STORE_GROUP_H */
