/*
 * reaper.c - the reaper role inside vsed: every interval, apply each
 * expired lease's expiry policy (vse_reap) on a handle of its own.  Any
 * number of vsed processes may reap one store: each expiry is one CAS,
 * so two reapers never apply the same policy twice.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "vsed.h"

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int stop, running, interval;
static vse_db *db;

static void *reaper_main(void *arg)
{
    struct timespec until;

    pthread_mutex_lock(&mu);
    while (!stop) {
        struct vse_reap_stats s;
        struct vse_error err;
        int rc;

        memset(&s, 0, sizeof(s));
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += interval;
        while (!stop && pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
            ;
        if (stop)
            break;
        pthread_mutex_unlock(&mu);
        vse_error_clear(&err);
        rc = vse_reap(db, &s, &err);
        if (rc < 0)
            vsed_log("reaper: %s", err.msg[0] ? err.msg : vse_strerror(rc));
        else if (s.examined > 0 || s.unclaimed > 0)
            vsed_log("reaper: %lld expired, %lld retried, %lld failed, "
                     "%lld reverted, %lld skipped, %lld out of attempts, "
                     "%lld not claimed in time",
                     (long long)s.examined, (long long)s.retried,
                     (long long)s.failed, (long long)s.reverted,
                     (long long)s.skipped, (long long)s.exhausted,
                     (long long)s.unclaimed);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int vsed_reaper_start(const char *store, int interval_s)
{
    pthread_condattr_t ca;
    struct vse_error err;

    if (interval_s <= 0)
        return 0;
    vse_error_clear(&err);
    if (vsed_open(store, &db, &err) < 0) {
        vsed_log("reaper: cannot open store: %s", err.msg);
        return -1;
    }
    /* A monotonic clock: a wall-clock jump must not stall the reaper. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    interval = interval_s;
    if (pthread_create(&thread, NULL, reaper_main, NULL) != 0) {
        vsed_close(db);
        db = NULL;
        return -1;
    }
    running = 1;
    return 0;
}

void vsed_reaper_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stop = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&cv);
    vsed_close(db);
    db = NULL;
    running = 0;
}
