/*
 * race.c - the concurrency proof: several processes race begin, step,
 * finish, fail, renew, claim and reset-state on a few volumes while leases
 * run out and a reaper process fences the stalled, then every history is
 * checked.  Each worker logs every call it made and its outcome, so the
 * checker can prove that no refused or fenced call changed anything and
 * that every call answered "done" left exactly one history row (a renew
 * without a reason, which writes none, excepted: it is logged "lease").
 *
 * usage: race --store URL --procs N --resources R --attempts A
 *             [--ttl-ms T] [--faults] --dir DIR
 *
 * --faults: the store's servers are killed and restarted during the race,
 * so a call may also fail clearly (VSE_ESTORE, VSE_EBUSY: it changed
 * nothing) or answer VSE_EUNKNOWN (it left one history row or none).
 * The check then proves that every call answered "done" still left
 * exactly one row, and that each row no call was told about is covered by
 * an "outcome unknown" call of its kind.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vse.h"

static const char *store_url;
static int nprocs = 4, nres = 8, attempts = 6000, ttl_ms = 80;
static const char *dir;
static int faults; /* --faults */

/* A store error a fault may cause: allowed with --faults only. */
static int fault_rc(int rc)
{
    return faults &&
           (rc == VSE_ESTORE || rc == VSE_EBUSY || rc == VSE_EUNKNOWN);
}

static void die(const char *what, const struct vse_error *e)
{
    fprintf(stderr, "race: %s: %s (%s)\n", what, e ? e->msg : "",
            e ? e->detail : "");
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void res_id(int i, char *buf, size_t n)
{
    snprintf(buf, n, "race-%d", i);
}

/* ---- a worker ------------------------------------------------------ */

struct worker {
    vse_db *db;
    FILE *log;
    int n; /* attempts made */
    char owner[64];
    char stale[VSE_OPID_LEN + 1]; /* an op_id of an earlier op */
    unsigned seed;
};

static int chance(struct worker *w, int per_mille)
{
    return (int)(rand_r(&w->seed) % 1000) < per_mille;
}

/* One logged call.  Every attempt counts toward the total. */
static void logcall(struct worker *w, const char *kind, const char *id,
                    const char *op_id, int rc)
{
    fprintf(w->log, "%s %s %s %d\n", kind, id, op_id[0] ? op_id : "-", rc);
    w->n++;
}

static void check_rc(int rc, const struct vse_error *e)
{
    /* Anything but done / repeated / refused / fenced / not found / busy
     * is a failure of the enforcer or the store, not of the race.  Busy
     * (VSE_EBUSY) is a clear answer that wrote nothing: the row changed
     * under every one of the core's compare-and-swap attempts, which
     * happens when the machine is loaded enough to starve one process;
     * the summary counts them and too many fail the run. */
    if (rc >= 0 || rc == VSE_ECONFLICT || rc == VSE_EFENCED ||
        rc == VSE_ENOTFOUND || rc == VSE_EBUSY || fault_rc(rc))
        return;
    die("unexpected error", e);
}

/* The remaining path of an op from a busy state: the next call. */
static int next_call(const char *state, const char **kind, const char **to,
                     struct worker *w)
{
    if (strcmp(state, "reserved") == 0) {
        *kind = "step";
        *to = "attaching";
    } else if (strcmp(state, "attaching") == 0) {
        *kind = "finish";
        *to = "in_use";
    } else if (strcmp(state, "extending") == 0) {
        *kind = "finish";
        *to = "available";
    } else if (strcmp(state, "detaching") == 0) {
        *kind = "finish";
        *to = chance(w, 500) ? "available" : "in_use";
    } else if (strcmp(state, "deleting") == 0) {
        *kind = "finish";
        *to = "deleted";
    } else {
        return 0;
    }
    return 1;
}

/* Drive an op we hold until it ends, is fenced, or we give up. */
static void drive(struct worker *w, const char *id, char *op_id,
                  const char *state0)
{
    char state[VSE_NAME_MAX + 1];
    struct vse_resource r;
    struct vse_error e;
    const char *kind, *to;
    int rc;

    snprintf(state, sizeof(state), "%s", state0);
    while (next_call(state, &kind, &to, w) && w->n < attempts) {
        struct vse_opts o = {.ttl_ms = ttl_ms};

        if (chance(w, 25)) {
            /* Stall past the lease: the reaper hands the op on or ends
             * it, and this worker's next call must be fenced. */
            sleep_ms(ttl_ms * 2);
        }
        if (chance(w, 30)) {
            rc = vse_step(w->db, id, w->stale, to, &o, &r, &e);
            check_rc(rc, &e);
            logcall(w, "step", id, w->stale, rc);
        }
        if (chance(w, 50)) {
            /* Half the renews give a reason and write a history row;
             * the others only extend the lease and write none (logged
             * as "lease": no row to match, vse_check covers the gap). */
            int quiet = chance(w, 50);

            if (!quiet)
                o.reason = "race: renew";
            rc = vse_renew(w->db, id, op_id, &o, &r, &e);
            o.reason = NULL;
            check_rc(rc, &e);
            logcall(w, quiet ? "lease" : "renew", id, op_id, rc);
            if (rc < 0)
                return;
        }
        if (chance(w, 50)) {
            o.reason = "race: injected failure";
            rc = vse_fail(w->db, id, op_id, &o, &r, &e);
            check_rc(rc, &e);
            logcall(w, "fail", id, op_id, rc);
            snprintf(w->stale, sizeof(w->stale), "%s", op_id);
            return;
        }
        if (strcmp(kind, "step") == 0)
            rc = vse_step(w->db, id, op_id, to, &o, &r, &e);
        else
            rc = vse_finish(w->db, id, op_id, to, &o, &r, &e);
        check_rc(rc, &e);
        logcall(w, kind, id, op_id, rc);
        if (rc < 0)
            return;
        if (rc == 0 && chance(w, 40)) {
            /* Re-delivery of the same call: must be answered "repeated"
             * (or fenced, if the reaper got there first), never applied
             * twice. */
            struct vse_resource again;
            int rc2 = strcmp(kind, "step") == 0
                          ? vse_step(w->db, id, op_id, to, &o, &again, &e)
                          : vse_finish(w->db, id, op_id, to, &o, &again, &e);

            check_rc(rc2, &e);
            logcall(w, kind, id, op_id, rc2);
            if (rc2 == 0) {
                fprintf(stderr,
                        "race: a re-delivered %s was applied "
                        "twice\n",
                        kind);
                exit(3);
            }
        }
        snprintf(state, sizeof(state), "%s", r.state);
        if (strcmp(kind, "finish") == 0)
            snprintf(w->stale, sizeof(w->stale), "%s", op_id);
    }
}

struct unowned {
    int found;
    struct vse_resource r;
};

static int first_unowned(void *ctx, const struct vse_resource *r)
{
    struct unowned *u = ctx;

    if (r->owner[0] != '\0')
        return 0;
    u->found = 1;
    u->r = *r;
    return 1;
}

static void worker_main(int k)
{
    static const char *const ops[] = {"attach", "extend", "detach",
                                      "attach", "detach", "delete"};
    struct worker w;
    struct vse_error e;
    char path[4096];
    int rc;

    memset(&w, 0, sizeof(w));
    w.seed = (unsigned)(getpid() ^ time(NULL));
    snprintf(w.owner, sizeof(w.owner), "worker-%d", k);
    memset(w.stale, '0', VSE_OPID_LEN);
    snprintf(path, sizeof(path), "%s/worker-%d.log", dir, k);
    w.log = fopen(path, "w");
    if (w.log == NULL)
        die("cannot write log", NULL);
    if (vse_open(store_url, &w.db, &e) < 0)
        die("open", &e);
    while (w.n < attempts) {
        char id[32];
        struct vse_resource r;
        struct vse_opts o = {.owner = w.owner, .ttl_ms = ttl_ms};

        res_id((int)(rand_r(&w.seed) % (unsigned)nres), id, sizeof(id));
        if (chance(&w, 60)) {
            struct unowned u = {0};
            struct vse_filter f = {.machine = "volume", .busy = 1};

            rc = vse_list(w.db, &f, first_unowned, &u, &e);
            check_rc(rc, &e);
            if (u.found) {
                rc = vse_claim(w.db, u.r.id, u.r.op_id, &o, &r, &e);
                check_rc(rc, &e);
                logcall(&w, "claim", u.r.id, u.r.op_id, rc);
                if (rc == 0) {
                    char op_id[VSE_OPID_LEN + 1];

                    snprintf(op_id, sizeof(op_id), "%s", r.op_id);
                    drive(&w, u.r.id, op_id, r.state);
                }
                continue;
            }
        }
        if (chance(&w, 8)) {
            o.reason = "race: operator reset";
            o.owner = "operator";
            rc = vse_reset_state(w.db, id, "available", &o, &r, &e);
            check_rc(rc, &e);
            logcall(&w, "reset", id, "-", rc);
            continue;
        }
        /* Mostly an op the state allows, sometimes any: both the
         * races between workers and plain wrong requests get refused. */
        const char *op = ops[rand_r(&w.seed) % 6];

        if (chance(&w, 800) && vse_get(w.db, id, &r, &e) == 0) {
            if (strcmp(r.state, "in_use") == 0)
                op = "detach";
            else if (strcmp(r.state, "available") == 0)
                op = chance(&w, 100)
                         ? "delete"
                         : (chance(&w, 500) ? "attach" : "extend");
            else if (r.op[0] == '\0')
                op = "delete";
        }
        rc = vse_begin(w.db, id, op, &o, &r, &e);
        check_rc(rc, &e);
        logcall(&w, "begin", id, rc == 0 ? r.op_id : "-", rc);
        if (rc == 0) {
            char op_id[VSE_OPID_LEN + 1];

            snprintf(op_id, sizeof(op_id), "%s", r.op_id);
            drive(&w, id, op_id, r.state);
        }
    }
    fclose(w.log);
    vse_close(w.db);
    exit(0);
}

static void reaper_main(int stop_fd)
{
    struct vse_error e;
    vse_db *db;
    FILE *log;
    char path[4096];
    long long expired = 0;

    snprintf(path, sizeof(path), "%s/reaper.log", dir);
    log = fopen(path, "w");
    if (log == NULL || vse_open(store_url, &db, &e) < 0)
        die("reaper open", &e);
    for (;;) {
        struct vse_reap_stats st;
        struct pollfd pfd = {.fd = stop_fd, .events = POLLIN};
        int rc = vse_reap(db, &st, &e);

        if (rc < 0 && rc != VSE_EBUSY && !fault_rc(rc))
            die("reap", &e);
        if (rc < 0)
            memset(&st, 0, sizeof(st));
        expired += st.retried + st.failed + st.reverted;
        /* Reap every 10 ms until the parent closes the pipe (the workers
         * are done): POLLHUP then ends the loop. */
        if (poll(&pfd, 1, 10) > 0)
            break;
    }
    fprintf(log, "expired %lld\n", expired);
    fclose(log);
    vse_close(db);
    exit(0);
}

/* ---- the checker --------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct strs {
    size_t n, cap;
    char **v;
};

static void push(struct strs *s, const char *kind, const char *op_id)
{
    char buf[128];

    if (vse__array_reserve(s, s->n + 1) < 0)
        die("out of memory", NULL);
    snprintf(buf, sizeof(buf), "%s %s", kind, op_id);
    s->v[s->n++] = strdup(buf);
}

static int add_history(void *ctx, const struct vse_event *ev)
{
    struct strs *s = ctx;
    const char *k = vse_kind_name(ev->kind);

    if (ev->kind == VSE_KIND_BEGIN || ev->kind == VSE_KIND_STEP ||
        ev->kind == VSE_KIND_FINISH || ev->kind == VSE_KIND_FAIL ||
        ev->kind == VSE_KIND_RENEW)
        push(s, k, ev->op_id);
    return 0;
}

static int count_kind(void *ctx, const struct vse_event *ev)
{
    long long *n = ctx;

    n[ev->kind]++;
    return 0;
}

/*
 * With --faults: every call answered "done" left its row (sorted lists
 * "KIND OP_ID", merged), and every other row of the race is paid for by
 * one "outcome unknown" call of its kind (whose op_id a begin does not
 * learn).  1 if not.
 */
static int match_faults(const struct strs *done, const struct strs *hist,
                        struct strs *unknown)
{
    size_t i = 0, j = 0;
    int bad = 0;

    while (i < done->n || j < hist->n) {
        int c = i >= done->n   ? 1
                : j >= hist->n ? -1
                               : strcmp(done->v[i], hist->v[j]);
        size_t k, len;

        if (c == 0) {
            i++;
            j++;
            continue;
        }
        if (c < 0) {
            fprintf(stderr,
                    "race: '%s' answered done but left no history "
                    "row\n",
                    done->v[i++]);
            bad = 1;
            continue;
        }
        len = strcspn(hist->v[j], " ");
        for (k = 0; k < unknown->n; k++)
            if (unknown->v[k][0] != '\0' &&
                strncmp(unknown->v[k], hist->v[j], len) == 0 &&
                unknown->v[k][len] == ' ')
                break;
        if (k == unknown->n) {
            fprintf(stderr,
                    "race: history row '%s' of a call that was "
                    "not answered done\n",
                    hist->v[j]);
            bad = 1;
        } else {
            unknown->v[k][0] = '\0'; /* used up */
        }
        j++;
    }
    return bad;
}

static void on_violation(void *ctx, const char *id, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "VIOLATION %s: %s\n", id, msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, 0, 's'},
        {"procs", required_argument, 0, 'p'},
        {"resources", required_argument, 0, 'r'},
        {"attempts", required_argument, 0, 'a'},
        {"ttl-ms", required_argument, 0, 't'},
        {"dir", required_argument, 0, 'd'},
        {"faults", no_argument, 0, 'f'},
        {0, 0, 0, 0}};
    struct vse_error e;
    struct strs done = {0}, hist = {0}, unknown = {0};
    long long calls = 0, by_rc[8] = {0}, kinds[16] = {0}, store_errs = 0,
              busy = 0;
    int64_t violations = 0, setup_seq = 0;
    vse_db *db;
    int c, fds[2], failed = 0;
    pid_t reaper;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_url = optarg; break;
        case 'p': nprocs = atoi(optarg); break;
        case 'r': nres = atoi(optarg); break;
        case 'a': attempts = atoi(optarg); break;
        case 't': ttl_ms = atoi(optarg); break;
        case 'd': dir = optarg; break;
        case 'f': faults = 1; break;
        default: return 2;
        }
    }
    if (store_url == NULL || dir == NULL || nprocs < 1 || nres < 1) {
        fprintf(stderr, "usage: race --store URL --dir DIR [--procs N] "
                        "[--resources R] [--attempts A] [--ttl-ms T] "
                        "[--faults]\n");
        return 2;
    }
    attempts = (attempts + nprocs - 1) / nprocs; /* per worker */

    /* Setup: R volumes at rest in available. */
    if (vse_open(store_url, &db, &e) < 0)
        die("open", &e);
    for (int i = 0; i < nres; i++) {
        struct vse_resource r;
        char id[32];

        res_id(i, id, sizeof(id));
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

    if (pipe(fds) < 0)
        die("pipe", NULL);
    reaper = fork();
    if (reaper == 0) {
        /* Die with the parent: a worker must never outlive its test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(fds[1]);
        reaper_main(fds[0]);
    }
    close(fds[0]);
    for (int k = 0; k < nprocs; k++) {
        pid_t p = fork();

        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(fds[1]);
            worker_main(k);
        }
        if (p < 0)
            die("fork", NULL);
    }
    /* Wait for the workers (every child but the reaper). */
    for (int k = 0; k < nprocs; k++) {
        int st;
        pid_t p = wait(&st);

        if (p == reaper) {
            fprintf(stderr, "race: the reaper died early\n");
            failed = 1;
            k--;
            continue;
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "race: a worker failed (status %d)\n", st);
            failed = 1;
        }
    }
    close(fds[1]);
    {
        int st;

        if (waitpid(reaper, &st, 0) == reaper &&
            (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
            failed = 1;
    }

    /* Gather what the workers were told. */
    for (int k = 0; k < nprocs; k++) {
        char path[4096], kind[16], id[64], op_id[64];
        int rc;
        FILE *f;

        snprintf(path, sizeof(path), "%s/worker-%d.log", dir, k);
        f = fopen(path, "r");
        if (f == NULL)
            die("cannot read a worker log", NULL);
        while (fscanf(f, "%15s %63s %63s %d", kind, id, op_id, &rc) == 4) {
            calls++;
            by_rc[rc >= 0 ? rc : (rc >= -5 ? 1 - rc : 7)]++;
            /* A call answered "done" must have written exactly one row;
             * refused, fenced and repeated ones none. */
            if (rc == 0 && strcmp(kind, "reset") != 0 &&
                strcmp(kind, "claim") != 0 && strcmp(kind, "lease") != 0)
                push(&done, kind, op_id);
            if (rc == VSE_EUNKNOWN && strcmp(kind, "lease") != 0)
                push(&unknown, kind, "");
            if (fault_rc(rc))
                store_errs++;
            else if (rc == VSE_EBUSY)
                busy++;
        }
        fclose(f);
    }

    if (vse_open(store_url, &db, &e) < 0)
        die("open", &e);
    if (vse_check(db, NULL, on_violation, NULL, &violations, &e) < 0)
        die("check", &e);
    /* Only the race's rows: the setup's are not the workers' calls. */
    if (vse_events(db, setup_seq, 0, add_history, &hist, &e) < 0 ||
        vse_events(db, setup_seq, 0, count_kind, kinds, &e) < 0)
        die("events", &e);
    vse_close(db);

    qsort(done.v, done.n, sizeof(char *), cmp_str);
    qsort(hist.v, hist.n, sizeof(char *), cmp_str);
    if (faults) {
        failed |= match_faults(&done, &hist, &unknown);
    } else if (done.n != hist.n) {
        fprintf(stderr,
                "race: %zu calls answered done, %zu history rows "
                "for them\n",
                done.n, hist.n);
        failed = 1;
    }
    for (size_t i = 0; !faults && i < done.n && i < hist.n; i++) {
        if (strcmp(done.v[i], hist.v[i]) != 0) {
            fprintf(stderr, "race: call/history mismatch: '%s' vs '%s'\n",
                    done.v[i], hist.v[i]);
            failed = 1;
            break;
        }
    }

    printf("race: %d processes, %d resources, %lld calls: %lld done, "
           "%lld repeated, %lld refused, %lld fenced; history: %lld "
           "begins, %lld claims, %lld expiries, %lld resets; %lld "
           "violations; %lld busy\n",
           nprocs, nres, calls, by_rc[0], by_rc[1], by_rc[4], by_rc[5],
           kinds[VSE_KIND_BEGIN], kinds[VSE_KIND_CLAIM],
           kinds[VSE_KIND_EXPIRE], kinds[VSE_KIND_RESET],
           (long long)violations, busy);
    /* Busy is allowed as a rare outcome of contention, not as a way for
     * the enforcer to dodge the race. */
    if (busy * 100 > calls) {
        fprintf(stderr, "race: %lld of %lld calls answered busy (over 1%%)\n",
                busy, calls);
        failed = 1;
    }
    if (faults)
        printf("race: %lld calls failed on the store, %zu of them with "
               "the outcome unknown\n",
               store_errs, unknown.n);
    /* The race must really have happened, or it proves nothing. */
    if (calls < (long long)attempts * nprocs || by_rc[1] == 0 ||
        by_rc[4] == 0 || by_rc[5] == 0 || kinds[VSE_KIND_EXPIRE] == 0 ||
        kinds[VSE_KIND_CLAIM] == 0 || kinds[VSE_KIND_RESET] == 0) {
        fprintf(stderr, "race: the run did not exercise repeats, refusals, "
                        "fencing, expiry, claims and resets\n");
        failed = 1;
    }
    if (violations != 0)
        failed = 1;
    for (size_t i = 0; i < done.n; i++)
        free(done.v[i]);
    for (size_t i = 0; i < hist.n; i++)
        free(hist.v[i]);
    for (size_t i = 0; i < unknown.n; i++)
        free(unknown.v[i]);
    free(done.v);
    free(hist.v);
    free(unknown.v);
    return failed;
}
