/*
 * pgwatch.c - how fast a commit wakes a watcher in another process (issue
 * 4, events across hosts): a child blocks in vse_wait() while the parent
 * commits renew transitions at intervals; the child reads each event and
 * notes the time from the event's `at` (taken before its commit) to its
 * wake-up.  Prints p50/p99/max; fails if p99 exceeds --max-ms.
 *
 * usage: pgwatch --store URL [--events N] [--max-ms MS]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vse.h"

static void die(const char *what, const struct vse_error *e)
{
    fprintf(stderr, "pgwatch: %s: %s (%s)\n", what, e ? e->msg : "",
            e ? e->detail : "");
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

struct seen {
    int64_t last;
    int n, cap;
    int64_t *lat;
};

static int on_event(void *ctx, const struct vse_event *ev)
{
    struct seen *s = ctx;
    int64_t now = vse_now_us();

    s->last = ev->seq;
    if (ev->kind == VSE_KIND_RENEW && s->n < s->cap)
        s->lat[s->n++] = now - ev->at;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int watcher(const char *url, int events, int fd, int max_ms)
{
    struct seen s = {0};
    struct vse_error e;
    vse_db *db;
    char go = 'g';

    s.cap = events;
    s.lat = calloc((size_t)events, sizeof(*s.lat));
    if (s.lat == NULL || vse_open(url, &db, &e) < 0)
        die("watcher open", &e);
    if (vse_last_seq(db, &s.last, &e) < 0)
        die("last_seq", &e);
    /* The first wait sets up LISTEN; only then may the writer start. */
    if (vse_wait(db, s.last, 1, &e) < 0)
        die("wait", &e);
    if (write(fd, &go, 1) != 1)
        die("pipe", NULL);
    while (s.n < events) {
        int rc = vse_wait(db, s.last, 10000, &e);

        if (rc < 0)
            die("wait", &e);
        if (rc == 0)
            die("no wake-up within 10 s", NULL);
        if (vse_events(db, s.last, 0, on_event, &s, &e) < 0)
            die("events", &e);
    }
    vse_close(db);
    qsort(s.lat, (size_t)s.n, sizeof(*s.lat), cmp64);
    printf("pgwatch: %d events, commit to wake-up: p50 %.2f ms, p99 %.2f "
           "ms, max %.2f ms\n",
           s.n, s.lat[s.n / 2] / 1000.0, s.lat[(s.n * 99) / 100] / 1000.0,
           s.lat[s.n - 1] / 1000.0);
    return s.lat[(s.n * 99) / 100] > (int64_t)max_ms * 1000;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"store", required_argument, 0, 's'},
                                       {"events", required_argument, 0, 'n'},
                                       {"max-ms", required_argument, 0, 'm'},
                                       {0, 0, 0, 0}};
    const char *url = NULL;
    int events = 200, max_ms = 50, c, fds[2], st;
    struct vse_resource r;
    struct vse_error e;
    /* A reason: a renew without one writes no history row, no event. */
    struct vse_opts o = {.owner = "pgwatch",
                         .ttl_ms = 60000,
                         .reason = "pgwatch"};
    vse_db *db;
    char go;
    pid_t child;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': url = optarg; break;
        case 'n': events = atoi(optarg); break;
        case 'm': max_ms = atoi(optarg); break;
        default: return 2;
        }
    }
    if (url == NULL || events < 1) {
        fprintf(stderr, "usage: pgwatch --store URL [--events N] "
                        "[--max-ms MS]\n");
        return 2;
    }
    if (vse_open(url, &db, &e) < 0)
        die("open", &e);
    if (vse_create(db, "volume", "watched", &o, &r, &e) < 0)
        die("create", &e);
    /* A store client may run threads of its own (ZooKeeper's does): fork
     * with no handle open, so that the child holds no copy of one whose
     * threads it does not have. */
    vse_close(db);
    if (pipe(fds) < 0)
        die("pipe", NULL);
    fflush(NULL);
    child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[0]);
        exit(watcher(url, events, fds[1], max_ms));
    }
    close(fds[1]);
    if (vse_open(url, &db, &e) < 0)
        die("open", &e);
    if (read(fds[0], &go, 1) != 1)
        die("the watcher did not start", NULL);
    for (int i = 0; i < events; i++) {
        /* Spaced out, so each wake-up is a wake-up, not a batch. */
        sleep_ms(5);
        if (vse_renew(db, "watched", r.op_id, &o, NULL, &e) < 0)
            die("renew", &e);
    }
    vse_close(db);
    if (waitpid(child, &st, 0) < 0 || !WIFEXITED(st))
        return 1;
    return WEXITSTATUS(st);
}
