/*
 * sqlite-gate.h - a first-come, first-served queue for SQLite writers on
 * one host, in a small shared file beside the store (PATH-gate), and the
 * commit signal that wakes watchers on that host.
 *
 * SQLite lets one writer in at a time and leaves the waiting to a busy
 * handler: whoever retries at the right moment wins, so under several
 * writers the tail latency is set by luck (FIELD-NOTES.md saw one writer
 * wait seconds).  Here each writer takes a ticket and enters in ticket
 * order; SQLite's own lock still guarantees exclusion, so the gate only
 * orders, and a ticket whose holder died or stalled is skipped after
 * VSE_SQLITE_GATE_SKIP_US.  Waiting happens before BEGIN, holding no read
 * snapshot, which also lets checkpoints complete.
 *
 * Header-only, because bench/raw-sqlite.c must wait exactly as the store
 * does.  Inline functions, no state outside the mapping.
 */
#ifndef VSE_SQLITE_GATE_H
#define VSE_SQLITE_GATE_H

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* A ticket holder that has not let the next one in by then is skipped:
 * far above a commit's time (~0.3 ms with fsync), far below a lease. */
#define VSE_SQLITE_GATE_SKIP_US 50000

struct vse_sqlite_gate {
    _Atomic uint64_t next;    /* the next ticket to hand out */
    _Atomic uint64_t serving; /* the ticket allowed in now */
    _Atomic int64_t moved;    /* CLOCK_MONOTONIC us when serving moved */
    _Atomic uint32_t wake;    /* bumped on every move: the futex word */
    /* Added later (a gate file made by an older vse is grown to this
     * size; the new words read as zero): the commit signal that wakes
     * vse_wait() callers on this host at once, where SQLite has none. */
    _Atomic uint32_t commits;  /* bumped after every commit: futex word */
    _Atomic uint32_t watchers; /* callers asleep on `commits` */
};

/* Waiters sleep in the kernel on `wake` (a futex works across processes
 * on a shared mapping), so they take no CPU from the writer they wait
 * for: on two cores, spinning waiters halved the throughput. */
static inline void vse_sqlite_gate_sleep(struct vse_sqlite_gate *g,
                                         uint32_t seen, long ns)
{
    struct timespec ts = {0, ns};

    syscall(SYS_futex, (uint32_t *)&g->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static inline void vse_sqlite_gate_wake(struct vse_sqlite_gate *g)
{
    atomic_fetch_add(&g->wake, 1);
    syscall(SYS_futex, (uint32_t *)&g->wake, FUTEX_WAKE, INT_MAX, NULL, NULL,
            0);
}

/*
 * Map the gate of the store at db_path, creating it if need be.  NULL if
 * it cannot be had (a read-only directory, say): writers then rely on
 * the busy handler alone, which is slower under contention but correct.
 */
static inline struct vse_sqlite_gate *
vse_sqlite_gate_open(const char *db_path)
{
    char path[4200];
    struct stat st;
    void *p;
    int fd;

    if (snprintf(path, sizeof(path), "%s-gate", db_path) >= (int)sizeof(path))
        return NULL;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return NULL;
    /* A new file reads as zeros: ticket 0 is served first. */
    if (fstat(fd, &st) != 0 ||
        (st.st_size < (off_t)sizeof(struct vse_sqlite_gate) &&
         ftruncate(fd, sizeof(struct vse_sqlite_gate)) != 0)) {
        close(fd);
        return NULL;
    }
    p = mmap(NULL, sizeof(struct vse_sqlite_gate), PROT_READ | PROT_WRITE,
             MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : (struct vse_sqlite_gate *)p;
}

static inline void vse_sqlite_gate_close(struct vse_sqlite_gate *g)
{
    if (g != NULL)
        munmap(g, sizeof(*g));
}

/* Wait for our turn; returns the ticket to give back to _leave(). */
static inline uint64_t vse_sqlite_gate_enter(struct vse_sqlite_gate *g)
{
    uint64_t t = atomic_fetch_add(&g->next, 1);
    int64_t start = vse__now_mono_us();

    for (;;) {
        uint32_t seen = atomic_load(&g->wake);
        uint64_t s = atomic_load(&g->serving);
        int64_t now = vse__now_mono_us(), moved;

        if (s >= t) {
            /* Our turn (or we were skipped while asleep): mark when it
             * began, so nobody behind takes us for a dead holder. */
            atomic_store(&g->moved, now);
            return t;
        }
        /* Skip only a holder that did nothing for the whole time we
         * watched: after an idle spell, `moved` is old. */
        moved = atomic_load(&g->moved);
        if (now - (moved > start ? moved : start) > VSE_SQLITE_GATE_SKIP_US) {
            if (atomic_compare_exchange_strong(&g->serving, &s, s + 1)) {
                atomic_store(&g->moved, now);
                vse_sqlite_gate_wake(g);
            }
            continue;
        }
        /* `seen` was read before `serving`: a move after that changes
         * `wake`, and the futex then returns at once. */
        vse_sqlite_gate_sleep(g, seen, 5 * 1000 * 1000L);
    }
}

/* Let the next ticket in (unless ours was skipped meanwhile). */
static inline void vse_sqlite_gate_leave(struct vse_sqlite_gate *g,
                                         uint64_t t)
{
    uint64_t s = t;

    if (atomic_compare_exchange_strong(&g->serving, &s, t + 1)) {
        atomic_store(&g->moved, vse__now_mono_us());
        vse_sqlite_gate_wake(g);
    }
}

/*
 * The commit signal.  Only a hint that something was committed: the
 * waiter reads the store's own last sequence number to know what, so a
 * gate file that outlived its store (or a commit by a process without
 * the gate) costs at most a poll interval, never a wrong answer.
 */
static inline void vse_sqlite_gate_committed(struct vse_sqlite_gate *g)
{
    atomic_fetch_add(&g->commits, 1);
    /* After the bump: a watcher counted itself before reading `commits`,
     * so either it sees the bump or this sees it and wakes it. */
    if (atomic_load(&g->watchers) > 0)
        syscall(SYS_futex, (uint32_t *)&g->commits, FUTEX_WAKE, INT_MAX, NULL,
                NULL, 0);
}

/* Count a watcher in; the value of `commits` to sleep on, read before
 * the caller looks at the store. */
static inline uint32_t vse_sqlite_gate_watch(struct vse_sqlite_gate *g)
{
    atomic_fetch_add(&g->watchers, 1);
    return atomic_load(&g->commits);
}

/* Sleep until a commit after `seen`, or ns pass. */
static inline void vse_sqlite_gate_await(struct vse_sqlite_gate *g,
                                         uint32_t seen, long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};

    syscall(SYS_futex, (uint32_t *)&g->commits, FUTEX_WAIT, seen, &ts, NULL,
            0);
}

/* Count the watcher out again, after every _watch(). */
static inline void vse_sqlite_gate_unwatch(struct vse_sqlite_gate *g)
{
    atomic_fetch_sub(&g->watchers, 1);
}

#endif /* VSE_SQLITE_GATE_H */
