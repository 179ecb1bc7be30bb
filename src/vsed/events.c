/*
 * events.c - GET /v1/events as server-sent events without a thread per
 * watcher.  A watcher's content reader sends what the store holds after
 * its last sequence number; when it has caught up it suspends its
 * connection.  One notifier thread waits on vse_wait(), counts new events
 * into the metrics, and resumes the watchers that are behind.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "json.h"
#include "util.h"
#include "vsed.h"

#define BATCH 128
#define HEARTBEAT_US (15 * 1000000LL)
#define NOTIFY_WAIT_MS 250

struct watcher {
    struct MHD_Connection *conn;
    int64_t last; /* highest seq sent */
    char *buf;
    size_t len, off, cap;
    int suspended;
    int64_t last_write;
    struct watcher *prev, *next;
};

/* mu guards the list, head and every watcher's `suspended`.  A reader
 * checks head and suspends under it; the notifier raises head and
 * resumes under it: no wake-up is lost between the two. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct watcher *all;
static int nwatchers;
static int64_t head;
/* Set under mu, but also read without it by the readers' fast path. */
static atomic_int ending;
static pthread_t notifier;
static int notifier_running;
static char *store_url;

static int append(struct watcher *w, const char *s, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        char *b;

        while (cap < w->len + n)
            cap *= 2;
        b = realloc(w->buf, cap);
        if (b == NULL)
            return -1;
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    return 0;
}

static int add_event(void *arg, const struct vse_event *e)
{
    struct watcher *w = arg;
    json_t *j = vse__json_event(e);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    char id[48];
    int rc = -1;

    json_decref(j);
    if (s != NULL) {
        snprintf(id, sizeof(id), "id: %lld\ndata: ", (long long)e->seq);
        rc = append(w, id, strlen(id)) || append(w, s, strlen(s)) ||
             append(w, "\n\n", 2);
        free(s);
    }
    w->last = e->seq;
    return rc != 0;
}

/* Read the next batch into w->buf; the number of events, or -1. */
static int refill(struct watcher *w)
{
    struct vse_error err;
    vse_db *db;
    int64_t before = w->last;

    vse_error_clear(&err);
    db = vsed_thread_db(&err);
    if (db == NULL)
        return -1;
    w->len = w->off = 0;
    if (vse_events(db, w->last, BATCH, add_event, w, &err) < 0)
        return -1;
    return w->last != before;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct watcher *w = cls;
    int got;

    for (;;) {
        if (w->off < w->len) {
            size_t n = w->len - w->off < max ? w->len - w->off : max;

            memcpy(buf, w->buf + w->off, n);
            w->off += n;
            w->last_write = vse__now_mono_us();
            return (ssize_t)n;
        }
        if (atomic_load(&vsed_stopping) || atomic_load(&ending))
            return MHD_CONTENT_READER_END_OF_STREAM;
        got = refill(w);
        if (got < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (got > 0)
            continue;
        pthread_mutex_lock(&mu);
        if (atomic_load(&ending)) {
            pthread_mutex_unlock(&mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (head > w->last) {
            /* Committed after our read.  If nothing above w->last can be
             * read (purged), jump, rather than spin on the gap. */
            if (refill(w) == 0)
                w->last = head;
            pthread_mutex_unlock(&mu);
            continue;
        }
        if (vse__now_mono_us() - w->last_write >= HEARTBEAT_US) {
            pthread_mutex_unlock(&mu);
            w->len = w->off = 0;
            /* A comment line: keeps proxies open and finds dead peers. */
            if (append(w, ": keepalive\n\n", 13) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        w->suspended = 1;
        MHD_suspend_connection(w->conn);
        pthread_mutex_unlock(&mu);
        return 0;
    }
}

static void free_watcher(void *cls)
{
    struct watcher *w = cls;

    pthread_mutex_lock(&mu);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        all = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    nwatchers--;
    pthread_mutex_unlock(&mu);
    free(w->buf);
    free(w);
}

struct MHD_Response *vsed_events_response(struct MHD_Connection *conn,
                                          int64_t since)
{
    struct watcher *w = calloc(1, sizeof(*w));
    struct MHD_Response *r;

    if (w == NULL)
        return NULL;
    w->conn = conn;
    w->last = since;
    w->last_write = vse__now_mono_us();
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, w,
                                          free_watcher);
    if (r == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_lock(&mu);
    w->next = all;
    if (all != NULL)
        all->prev = w;
    all = w;
    nwatchers++;
    pthread_mutex_unlock(&mu);
    return r;
}

int vsed_events_watchers(void)
{
    int n;

    pthread_mutex_lock(&mu);
    n = nwatchers;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Resume watchers that are behind head, or all when `everyone`. */
static void wake(int everyone)
{
    int64_t t = vse__now_mono_us();

    for (struct watcher *w = all; w != NULL; w = w->next) {
        if (!w->suspended)
            continue;
        if (everyone || w->last < head || t - w->last_write >= HEARTBEAT_US) {
            w->suspended = 0;
            MHD_resume_connection(w->conn);
        }
    }
}

static int count_event(void *arg, const struct vse_event *e)
{
    int64_t *seen = arg;

    vsed_metrics_event(e);
    *seen = e->seq;
    return 0;
}

static void *notify_main(void *arg)
{
    vse_db *db = arg;
    int64_t seen;
    struct vse_error err;

    pthread_mutex_lock(&mu);
    seen = head;
    pthread_mutex_unlock(&mu);
    for (;;) {
        int64_t before;

        pthread_mutex_lock(&mu);
        if (atomic_load(&ending)) {
            pthread_mutex_unlock(&mu);
            break;
        }
        pthread_mutex_unlock(&mu);
        vse_error_clear(&err);
        if (vse_wait(db, seen, NOTIFY_WAIT_MS, &err) < 0) {
            struct timespec ts = {0, 100 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
        do {
            before = seen;
            vse_error_clear(&err);
            if (vse_events(db, seen, 1024, count_event, &seen, &err) < 0)
                break;
        } while (seen - before >= 1024);
        pthread_mutex_lock(&mu);
        head = seen;
        wake(0);
        pthread_mutex_unlock(&mu);
    }
    vsed_close(db);
    return NULL;
}

int vsed_events_start(const char *store, int64_t *start_seq)
{
    struct vse_error err;
    vse_db *db;

    vse_error_clear(&err);
    if (vsed_open(store, &db, &err) < 0) {
        vsed_log("events: cannot open store: %s", err.msg);
        return -1;
    }
    if (vse_last_seq(db, &head, &err) < 0) {
        vsed_close(db);
        vsed_log("events: cannot read the last sequence: %s", err.msg);
        return -1;
    }
    *start_seq = head;
    store_url = strdup(store);
    if (pthread_create(&notifier, NULL, notify_main, db) != 0) {
        vsed_close(db);
        return -1;
    }
    notifier_running = 1;
    return 0;
}

void vsed_events_stop(void)
{
    pthread_mutex_lock(&mu);
    atomic_store(&ending, 1);
    wake(1);
    pthread_mutex_unlock(&mu);
    if (notifier_running)
        pthread_join(notifier, NULL);
    notifier_running = 0;
    free(store_url);
    store_url = NULL;
}
