/*
 * pgloss.c - server loss under load (issue 4): worker processes attach and
 * detach volumes on a PostgreSQL store while the test script crashes and
 * restarts the server.  Every call carries its own request id and is
 * logged with its outcome; afterwards each outcome is checked against the
 * history: "done" left exactly one row, a failure none, and "outcome
 * unknown" at most one.  Nothing else may be in the history.
 *
 * With --threads T each worker process runs T threads, each with its own
 * handle and log: their transitions go to the server in group commits,
 * so a crash lands mid-batch too.
 *
 * usage: pgloss --store URL --dir DIR [--procs N] [--threads T]
 *               [--resources R] [--ttl-ms T]
 * Runs until DIR/stop exists, then checks.  DIR/worker-K.log is written
 * line by line so that the script can watch progress.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vse.h"

static const char *store_url, *dir;
static int nprocs = 8, nthreads = 1, nres = 8, ttl_ms = 1000;

/* Outcome classes, as logged. */
enum { DONE, REFUSED, FAILED, UNKNOWN };

static void die(const char *what, const struct vse_error *e)
{
    fprintf(stderr, "pgloss: %s: %s (%s)\n", what, e ? e->msg : "",
            e ? e->detail : "");
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int stopped(void)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/stop", dir);
    return stat(path, &st) == 0;
}

struct worker {
    int k;
    long n;
    vse_db *db;
    FILE *log;
    char owner[32];
    char rid[64];
    unsigned seed;
};

/* A fresh request id per call: each names exactly one attempt. */
static struct vse_opts opts(struct worker *w)
{
    struct vse_opts o = {.owner = w->owner, .ttl_ms = ttl_ms};

    snprintf(w->rid, sizeof(w->rid), "pl-%d-%ld", w->k, w->n++);
    o.request_id = w->rid;
    return o;
}

/*
 * Log one call.  VSE_ESTORE must say which it is: the transition did not
 * happen, or its outcome is unknown; anything else from the store is a
 * failure of the store, and so of the test.
 */
static int logcall(struct worker *w, const char *kind, const char *id, int rc,
                   const struct vse_error *e)
{
    int cls;

    if (rc >= 0)
        cls = DONE;
    else if (rc == VSE_ECONFLICT || rc == VSE_EFENCED || rc == VSE_ENOTFOUND)
        cls = REFUSED;
    else if (rc == VSE_EUNKNOWN)
        cls = UNKNOWN;
    else if (rc == VSE_ESTORE && (strstr(e->msg, "not applied") != NULL ||
                                  strstr(e->detail, "not applied") != NULL))
        cls = FAILED;
    else if (rc == VSE_ESTORE || rc == VSE_EBUSY)
        cls = FAILED; /* a read before the CAS failed: nothing sent */
    else
        die("unexpected error", e);
    fprintf(w->log, "%s %s %s %d %d %s\n", w->rid, kind, id, rc, cls,
            rc == VSE_ESTORE ? e->msg : "-");
    return cls;
}

/* Drive our op from `state` to rest; stop at the first non-success. */
static void drive(struct worker *w, const char *id, const char *op_id,
                  const char *state)
{
    char st[VSE_NAME_MAX + 1];

    snprintf(st, sizeof(st), "%s", state);
    while (!stopped()) {
        struct vse_opts o = opts(w);
        struct vse_resource r;
        struct vse_error e;
        int rc;

        if (strcmp(st, "reserved") == 0) {
            rc = vse_step(w->db, id, op_id, "attaching", &o, &r, &e);
            logcall(w, "step", id, rc, &e);
        } else if (strcmp(st, "attaching") == 0) {
            rc = vse_finish(w->db, id, op_id, "in_use", &o, &r, &e);
            logcall(w, "finish", id, rc, &e);
        } else if (strcmp(st, "detaching") == 0) {
            rc = vse_finish(w->db, id, op_id, "available", &o, &r, &e);
            logcall(w, "finish", id, rc, &e);
        } else {
            return;
        }
        if (rc < 0) {
            /* Whatever happened, the row says where the op is now. */
            if (vse_get(w->db, id, &r, &e) < 0 || strcmp(r.op_id, op_id) != 0)
                return;
        }
        snprintf(st, sizeof(st), "%s", r.state);
    }
}

static int first_unowned(void *ctx, const struct vse_resource *r)
{
    struct vse_resource *out = ctx;

    if (r->owner[0] != '\0')
        return 0;
    *out = *r;
    return 1;
}

static void *worker_run(void *arg)
{
    int k = (int)(intptr_t)arg;
    struct worker w;
    struct vse_error e;
    char path[4096];

    memset(&w, 0, sizeof(w));
    w.k = k;
    w.seed = (unsigned)(getpid() ^ time(NULL) ^ ((unsigned)k << 16));
    snprintf(w.owner, sizeof(w.owner), "pgloss-%d", k);
    snprintf(path, sizeof(path), "%s/worker-%d.log", dir, k);
    w.log = fopen(path, "w");
    if (w.log == NULL)
        die("cannot write log", NULL);
    setvbuf(w.log, NULL, _IOLBF, 0);
    if (vse_open(store_url, &w.db, &e) < 0)
        die("open", &e);
    while (!stopped()) {
        struct vse_resource r, u;
        struct vse_filter f = {.machine = "volume", .busy = 1};
        struct vse_opts o;
        char id[32], op_id[VSE_OPID_LEN + 1];
        int rc;

        /* Ops handed back by the reaper wait for a claim. */
        u.id[0] = '\0';
        if (rand_r(&w.seed) % 8 == 0 &&
            vse_list(w.db, &f, first_unowned, &u, &e) == 0 &&
            u.id[0] != '\0') {
            o = opts(&w);
            rc = vse_claim(w.db, u.id, u.op_id, &o, &r, &e);
            if (logcall(&w, "claim", u.id, rc, &e) == DONE) {
                snprintf(op_id, sizeof(op_id), "%s", r.op_id);
                drive(&w, u.id, op_id, r.state);
            }
            continue;
        }
        snprintf(id, sizeof(id), "pl-%d",
                 (int)(rand_r(&w.seed) % (unsigned)nres));
        rc = vse_get(w.db, id, &r, &e);
        if (rc < 0) {
            if (rc != VSE_ESTORE && rc != VSE_EBUSY)
                die("get", &e);
            /* The store is away; the next call reconnects.  Logged as a
             * failed call so that the test sees the outage reach every
             * worker; "get-" is no request id, so the checker expects no
             * history row for it. */
            fprintf(w.log, "get-%d-%ld get %s %d %d -\n", k, w.n++, id, rc,
                    FAILED);
            continue;
        }
        if (r.op[0] != '\0')
            continue;
        o = opts(&w);
        rc = vse_begin(w.db, id,
                       strcmp(r.state, "in_use") == 0 ? "detach" : "attach",
                       &o, &r, &e);
        if (logcall(&w, "begin", id, rc, &e) == DONE) {
            snprintf(op_id, sizeof(op_id), "%s", r.op_id);
            drive(&w, id, op_id, r.state);
        }
    }
    fclose(w.log);
    vse_close(w.db);
    return NULL;
}

void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried);

/* Worker process k: threads k * nthreads ... ; DIR/group-K says how many
 * batches of two or more its store handles committed. */
static void worker_main(int k)
{
    pthread_t th[64];
    uint64_t b, n, r;
    char path[4096];
    FILE *f;

    for (int t = 0; t < nthreads; t++)
        if (pthread_create(&th[t], NULL, worker_run,
                           (void *)(intptr_t)(k * nthreads + t)) != 0)
            die("pthread_create", NULL);
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    vse__group_stats(&b, &n, &r);
    snprintf(path, sizeof(path), "%s/group-%d", dir, k);
    f = fopen(path, "w");
    if (f == NULL ||
        fprintf(f, "%llu %llu %llu\n", (unsigned long long)b,
                (unsigned long long)n, (unsigned long long)r) < 0 ||
        fclose(f) != 0)
        die("cannot write the group counts", NULL);
    exit(0);
}

/* Batches committed by all workers, and transitions sent again alone. */
static void group_totals(unsigned long long *batches,
                         unsigned long long *retried)
{
    *batches = *retried = 0;
    for (int k = 0; k < nprocs; k++) {
        unsigned long long b = 0, n = 0, r = 0;
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/group-%d", dir, k);
        f = fopen(path, "r");
        if (f == NULL || fscanf(f, "%llu %llu %llu", &b, &n, &r) != 3)
            die("cannot read the group counts", NULL);
        fclose(f);
        *batches += b;
        *retried += r;
    }
}

/* Expire the leases of ops abandoned after a failure. */
static void reaper_main(void)
{
    struct vse_error e;
    vse_db *db;

    if (vse_open(store_url, &db, &e) < 0)
        die("reaper open", &e);
    while (!stopped()) {
        struct vse_reap_stats st;

        (void)vse_reap(db, &st, &e); /* fails while the server is down */
        sleep_ms(50);
    }
    vse_close(db);
    exit(0);
}

/* ---- the checker --------------------------------------------------- */

struct row {
    char rid[64];
    int count; /* history rows with this request id */
    int cls;   /* logged outcome, -1 if no call was logged */
    char kind[16];
};

struct rows {
    size_t n, cap;
    struct row *v;
};

static struct row *add(struct rows *s, const char *rid)
{
    if (vse__array_reserve(s, s->n + 1) < 0)
        die("out of memory", NULL);
    memset(&s->v[s->n], 0, sizeof(s->v[0]));
    snprintf(s->v[s->n].rid, sizeof(s->v[0].rid), "%s", rid);
    s->v[s->n].cls = -1;
    return &s->v[s->n++];
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->rid, ((const struct row *)b)->rid);
}

static int add_event(void *ctx, const struct vse_event *ev)
{
    if (strncmp(ev->request_id, "pl-", 3) == 0)
        add(ctx, ev->request_id)->count = 1;
    return 0;
}

static void on_violation(void *ctx, const char *id, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "VIOLATION %s: %s\n", id, msg);
}

static int check(int64_t setup_seq)
{
    struct rows hist = {0};
    struct vse_error e;
    int64_t violations = 0;
    long by_cls[4] = {0}, bad = 0;
    vse_db *db;

    if (vse_open(store_url, &db, &e) < 0)
        die("open for the check", &e);
    if (vse_check(db, NULL, on_violation, NULL, &violations, &e) < 0 ||
        vse_events(db, setup_seq, 0, add_event, &hist, &e) < 0)
        die("check", &e);
    vse_close(db);
    qsort(hist.v, hist.n, sizeof(*hist.v), cmp_row);
    for (size_t i = 1; i < hist.n; i++)
        if (strcmp(hist.v[i - 1].rid, hist.v[i].rid) == 0) {
            fprintf(stderr, "pgloss: request %s has two history rows\n",
                    hist.v[i].rid);
            bad++;
        }
    for (int k = 0; k < nprocs * nthreads; k++) {
        char path[4096], line[1024], rid[64], kind[16], id[64];
        int rc, cls;
        FILE *f;

        snprintf(path, sizeof(path), "%s/worker-%d.log", dir, k);
        f = fopen(path, "r");
        if (f == NULL)
            die("cannot read a worker log", NULL);
        while (fgets(line, sizeof(line), f) != NULL) {
            struct row key, *h;

            if (sscanf(line, "%63s %15s %63s %d %d", rid, kind, id, &rc,
                       &cls) != 5)
                continue;
            by_cls[cls]++;
            snprintf(key.rid, sizeof(key.rid), "%s", rid);
            h = bsearch(&key, hist.v, hist.n, sizeof(*hist.v), cmp_row);
            if (h != NULL)
                h->cls = cls;
            if (cls == DONE && h == NULL) {
                fprintf(stderr,
                        "pgloss: %s %s %s answered done but left "
                        "no history row\n",
                        rid, kind, id);
                bad++;
            } else if ((cls == REFUSED || cls == FAILED) && h != NULL) {
                fprintf(stderr,
                        "pgloss: %s %s %s was reported %s but "
                        "happened: %s",
                        rid, kind, id, cls == FAILED ? "failed" : "refused",
                        line);
                bad++;
            }
        }
        fclose(f);
    }
    for (size_t i = 0; i < hist.n; i++)
        if (hist.v[i].cls < 0) {
            fprintf(stderr,
                    "pgloss: history row of request %s matches no "
                    "logged call\n",
                    hist.v[i].rid);
            bad++;
        }
    printf("pgloss: %d processes x %d threads, %d resources: %ld done, "
           "%ld refused, "
           "%ld failed (not applied), %ld outcome unknown; %zu history "
           "rows; %lld violations; %ld mismatches\n",
           nprocs, nthreads, nres, by_cls[DONE], by_cls[REFUSED],
           by_cls[FAILED], by_cls[UNKNOWN], hist.n, (long long)violations,
           bad);
    free(hist.v);
    if (nthreads > 1) {
        unsigned long long batches, retried;

        group_totals(&batches, &retried);
        printf("pgloss: %llu group commits of two or more; %llu "
               "transitions sent again alone after their batch failed\n",
               batches, retried);
        if (batches == 0) {
            fprintf(stderr, "pgloss: no batch was ever committed\n");
            return 1;
        }
    }
    if (by_cls[DONE] == 0) {
        fprintf(stderr, "pgloss: nothing was done\n");
        return 1;
    }
    return bad != 0 || violations != 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"store", required_argument, 0, 's'},
                                       {"procs", required_argument, 0, 'p'},
                                       {"threads", required_argument, 0, 'T'},
                                       {"resources", required_argument, 0,
                                        'r'},
                                       {"ttl-ms", required_argument, 0, 't'},
                                       {"dir", required_argument, 0, 'd'},
                                       {0, 0, 0, 0}};
    struct vse_error e;
    int64_t setup_seq = 0;
    vse_db *db;
    int c, failed = 0;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': store_url = optarg; break;
        case 'p': nprocs = atoi(optarg); break;
        case 'T': nthreads = atoi(optarg); break;
        case 'r': nres = atoi(optarg); break;
        case 't': ttl_ms = atoi(optarg); break;
        case 'd': dir = optarg; break;
        default: return 2;
        }
    }
    if (store_url == NULL || dir == NULL || nprocs < 1 || nres < 1 ||
        nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "usage: pgloss --store URL --dir DIR [--procs N] "
                        "[--threads 1..64] [--resources R] [--ttl-ms T]\n");
        return 2;
    }
    if (vse_open(store_url, &db, &e) < 0)
        die("open", &e);
    for (int i = 0; i < nres; i++) {
        struct vse_resource r;
        char id[32];

        snprintf(id, sizeof(id), "pl-%d", i);
        if (vse_create(db, "volume", id, NULL, &r, &e) < 0 ||
            vse_step(db, id, r.op_id, "scheduling", NULL, NULL, &e) < 0 ||
            vse_step(db, id, r.op_id, "creating_vol", NULL, NULL, &e) < 0 ||
            vse_finish(db, id, r.op_id, "available", NULL, NULL, &e) < 0)
            die("setup", &e);
    }
    if (vse_last_seq(db, &setup_seq, &e) < 0)
        die("last_seq", &e);
    vse_close(db);
    fflush(NULL);

    for (int k = 0; k <= nprocs; k++) {
        pid_t p = fork();

        if (p < 0)
            die("fork", NULL);
        if (p == 0) {
            /* Die with the parent: a worker must never outlive its test. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (k == nprocs)
                reaper_main();
            worker_main(k);
        }
    }
    for (int k = 0; k <= nprocs; k++) {
        int st;

        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "pgloss: a child failed (status %d)\n", st);
            failed = 1;
        }
    }
    return check(setup_seq) || failed;
}
