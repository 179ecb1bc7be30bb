/*
 * fault.c - vse-load's managed processes and faults.  vse-load starts the
 * volume managers itself (--manager), so that it knows their pids and can
 * kill, stop and restart them at known times; a monitor thread reaps them
 * and tells a crash from an injected kill; one thread per --fault waits
 * for its time and carries it out while the load runs.  After the run has
 * settled, every op a stopped manager held is checked in its history: a
 * woken manager must not write under an op_id that was taken from it.
 * docs/reliability.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "load.h"

#define FAULTS_MAX 64
#define MANAGERS_MAX 32
#define KILL_FOR_S 0.5
#define STOP_FOR_S 5.0
#define POOL_FOR_S 3.0
#define STOP_WAIT_S                                                          \
    2.0                  /* a stop waits this long for the manager to
                            hold an op, so that it lands mid-step */
#define TERM_WAIT_S 10.0 /* SIGTERM, then this long, then SIGKILL */
#define FILLER "fill-vse-load"

static const char *const kind_names[] = {"kill", "stop", "pg-restart",
                                         "pool-full"};

struct held {
    char id[80], machine[40], op[40], op_id[80], owner[120];
};

struct fault {
    char spec[100];
    enum load_fault_kind kind;
    double at, dur; /* seconds; at drawn at random if not given */
    int has_at, has_for;
    int target; /* kill, stop: index of the manager */
    pthread_t thread;
    json_t *rec; /* the record for report.json */
    /* stop: what the manager held when it was stopped, and when (wall
     * clock, microseconds: history rows carry wall-clock times). */
    struct held *held;
    size_t nheld;
    long pid;
    int64_t stop_wall, cont_wall;
};

struct manager {
    int n; /* 1-based, as in manager-N.log */
    const char *cmd;
    char *shcmd; /* "exec CMD" */
    char log[4200];
    pid_t pid;       /* 0 while not running */
    int expect_exit; /* killed by a fault or by the end of the run */
    json_t *pids;    /* every pid it ran as */
    char end[120];   /* how the last process ended */
};

static struct {
    struct load_fault_opts o;
    struct fault faults[FAULTS_MAX];
    int nfaults;
    struct manager mgrs[MANAGERS_MAX];
    int nmgrs;
    pthread_mutex_t mu; /* mgrs, violations, filler */
    pthread_t monitor, sigthread;
    int monitoring;
    atomic_int monitor_stop, dying;
    json_t *violations;
    char filler[4200]; /* the pool filler while it exists, else "" */
    int64_t t0;
    int (*load_over)(void);
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double since_t0(void)
{
    return (double)(vse__now_mono_us() - F.t0) / 1e6;
}

/* Sleep `s` seconds, in short naps so that a dying run is not held up;
 * 0 if the run is dying. */
static int nap(double s)
{
    int64_t end = vse__now_mono_us() + (int64_t)(s * 1e6);
    const struct timespec ten = {0, 10 * 1000000L};

    while (vse__now_mono_us() < end) {
        if (atomic_load(&F.dying))
            return 0;
        nanosleep(&ten, NULL);
    }
    return !atomic_load(&F.dying);
}

static void add_violation(const char *kind, const char *msg)
{
    pthread_mutex_lock(&F.mu);
    if (F.violations == NULL)
        F.violations = json_array();
    json_array_append_new(F.violations,
                          json_pack("{s:s, s:i, s:s}", "kind", kind, "count",
                                    1, "message", msg));
    pthread_mutex_unlock(&F.mu);
}

/* "exit 0", "signal 9": how a wait status reads in the report. */
static void wait_status(int st, char *buf, size_t size)
{
    if (WIFEXITED(st))
        snprintf(buf, size, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(buf, size, "wait status %d", st);
}

/* ---- parsing ---------------------------------------------------------- */

static void usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "vse-load: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry 'vse-load --help'.\n");
    exit(2);
}

/* A number of seconds in SPEC: digits, optional decimals. */
static double spec_num(const char *spec, const char *s, size_t len,
                       const char *what)
{
    char buf[64], *end;
    double v;

    if (len == 0 || len >= sizeof(buf))
        usage_error("--fault '%s': %s missing or too long", spec, what);
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* Plain decimals only: strtod would take "inf", "1e9" and hex. */
    if (strspn(buf, "0123456789.") != len ||
        strchr(buf, '.') != strrchr(buf, '.'))
        usage_error("--fault '%s': bad %s (seconds, e.g. 2.5)", spec, what);
    errno = 0;
    v = strtod(buf, &end);
    if (errno != 0 || *end != '\0')
        usage_error("--fault '%s': bad %s (seconds, e.g. 2.5)", spec, what);
    return v;
}

void load_fault_add(const char *spec)
{
    struct fault *f;
    const char *at = strchr(spec, '@'), *dur = strchr(spec, ':');
    size_t klen = strcspn(spec, "@:");
    int k;

    if (F.nfaults == FAULTS_MAX)
        usage_error("more than 64 faults%s%s", "", "");
    f = &F.faults[F.nfaults];
    memset(f, 0, sizeof(*f));
    if (strlen(spec) >= sizeof(f->spec))
        usage_error("--fault '%s': too long%s", spec, "");
    snprintf(f->spec, sizeof(f->spec), "%s", spec);
    for (k = 0; k < 4; k++)
        if (strlen(kind_names[k]) == klen &&
            strncmp(spec, kind_names[k], klen) == 0)
            break;
    if (k == 4)
        usage_error("--fault '%s': unknown kind (kill, stop, pg-restart, "
                    "pool-full)%s",
                    spec, "");
    f->kind = (enum load_fault_kind)k;
    if (at != NULL && dur != NULL && dur < at)
        usage_error("--fault '%s': @AT comes before :FOR%s", spec, "");
    if (at != NULL) {
        if (at != spec + klen)
            usage_error("--fault '%s': bad kind%s", spec, "");
        f->at = spec_num(spec, at + 1,
                         dur ? (size_t)(dur - at - 1) : strlen(at + 1), "AT");
        f->has_at = 1;
    }
    if (dur != NULL) {
        if (at == NULL && dur != spec + klen)
            usage_error("--fault '%s': bad kind%s", spec, "");
        f->dur = spec_num(spec, dur + 1, strlen(dur + 1), "FOR");
        if (f->dur <= 0)
            usage_error("--fault '%s': FOR must be above 0%s", spec, "");
        f->has_for = 1;
    }
    F.nfaults++;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

void load_faults_check(const struct load_fault_opts *o)
{
    uint64_t rng = o->seed ^ UINT64_C(0x6A09E667F3BCC909);
    int next_mgr = 0;

    F.o = *o;
    if (rng == 0)
        rng = 1;
    if (o->nmanagers > MANAGERS_MAX)
        usage_error("more than 32 managers%s%s", "", "");
    for (int i = 0; i < F.nfaults; i++) {
        struct fault *f = &F.faults[i];
        char secs[40];

        snprintf(secs, sizeof(secs), "%g", o->seconds);
        if (f->has_at && f->at > o->seconds)
            usage_error("--fault '%s': AT is past the end of the load "
                        "(--seconds %s)",
                        f->spec, secs);
        /* Without @AT: somewhere in the middle of the run, so that the
         * load is under way and has time to meet the fault's effects. */
        if (!f->has_at)
            f->at = o->seconds * (0.1 + 0.6 * (double)(rng_next(&rng) >> 11) /
                                            9007199254740992.0);
        switch (f->kind) {
        case FK_KILL:
        case FK_STOP:
            if (o->nmanagers == 0)
                usage_error("--fault '%s' needs a --manager to %s", f->spec,
                            f->kind == FK_KILL ? "kill" : "stop");
            /* Round-robin in the order the faults were given. */
            f->target = next_mgr++ % o->nmanagers;
            if (!f->has_for)
                f->dur = f->kind == FK_KILL ? KILL_FOR_S : STOP_FOR_S;
            break;
        case FK_PG_RESTART:
            if (f->has_for && (o->pg_stop == NULL || o->pg_start == NULL))
                usage_error("--fault '%s' (with :FOR) needs --pg-stop and "
                            "--pg-start%s",
                            f->spec, "");
            if (!f->has_for && o->pg_restart == NULL)
                usage_error("--fault '%s' needs --pg-restart%s", f->spec, "");
            break;
        case FK_POOL_FULL:
            if (o->pool == NULL)
                usage_error("--fault '%s' needs --pool DIR%s", f->spec, "");
            if (!f->has_for)
                f->dur = POOL_FOR_S;
            break;
        }
    }
}

/* ---- managers ------------------------------------------------------- */

/* Start manager m as `/bin/sh -c 'exec CMD'` in a process group of its
 * own (a signal to the group reaches whatever CMD forks too), output
 * appended to its log.  F.mu held or no other thread yet. */
static int spawn(struct manager *m)
{
    sigset_t none;
    FILE *f;
    pid_t pid;
    int fd;

    f = fopen(m->log, "a");
    if (f == NULL) {
        fprintf(stderr, "vse-load: cannot open '%s': %s\n", m->log,
                strerror(errno));
        return -1;
    }
    fprintf(f, "vse-load: starting manager %d at %.3f s: %s\n", m->n,
            F.t0 ? since_t0() : 0.0, m->cmd);
    fclose(f);
    sigemptyset(&none);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "vse-load: cannot fork manager %d: %s\n", m->n,
                strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls here: the parent has threads. */
        setpgid(0, 0);
        fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
        /* vse-load blocks SIGINT and SIGTERM for its signal thread; the
         * manager must get them. */
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl("/bin/sh", "sh", "-c", m->shcmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    m->pid = pid;
    m->expect_exit = 0;
    json_array_append_new(m->pids, json_integer(pid));
    return 0;
}

/* Reap managers that ended; one that nobody meant to end is a
 * violation.  F.mu held. */
static void reap_locked(void)
{
    for (int i = 0; i < F.nmgrs; i++) {
        struct manager *m = &F.mgrs[i];
        char how[100], msg[300];
        int st;

        if (m->pid <= 0 || waitpid(m->pid, &st, WNOHANG) != m->pid)
            continue;
        wait_status(st, how, sizeof(how));
        snprintf(m->end, sizeof(m->end), "pid %ld: %s", (long)m->pid, how);
        if (!m->expect_exit && !atomic_load(&F.dying)) {
            snprintf(msg, sizeof(msg),
                     "manager %d exited by itself (%s, pid "
                     "%ld, at %.1f s; see %s)",
                     m->n, how, (long)m->pid, since_t0(), m->log);
            fprintf(stderr, "vse-load: %s\n", msg);
            if (F.violations == NULL)
                F.violations = json_array();
            json_array_append_new(F.violations,
                                  json_pack("{s:s, s:i, s:s}", "kind",
                                            "manager_exit", "count", 1,
                                            "message", msg));
        }
        m->pid = 0;
    }
}

static void *monitor_main(void *arg)
{
    const struct timespec twenty = {0, 20 * 1000000L};

    (void)arg;
    while (!atomic_load(&F.monitor_stop)) {
        pthread_mutex_lock(&F.mu);
        reap_locked();
        pthread_mutex_unlock(&F.mu);
        nanosleep(&twenty, NULL);
    }
    return NULL;
}

/* SIGCONT (a stopped process would not see SIGTERM), SIGTERM, up to 10 s,
 * then SIGKILL: every manager.  F.mu held. */
static void terminate_locked(void)
{
    int64_t end = vse__now_mono_us() + (int64_t)(TERM_WAIT_S * 1e6);
    const struct timespec ten = {0, 10 * 1000000L};
    int left;

    for (int i = 0; i < F.nmgrs; i++)
        if (F.mgrs[i].pid > 0) {
            F.mgrs[i].expect_exit = 1;
            kill(-F.mgrs[i].pid, SIGCONT);
            kill(-F.mgrs[i].pid, SIGTERM);
        }
    do {
        left = 0;
        for (int i = 0; i < F.nmgrs; i++) {
            struct manager *m = &F.mgrs[i];
            char how[100];
            int st;

            if (m->pid <= 0)
                continue;
            if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
                wait_status(st, how, sizeof(how));
                snprintf(m->end, sizeof(m->end), "pid %ld: SIGTERM: %s",
                         (long)m->pid, how);
                m->pid = 0;
            } else if (vse__now_mono_us() >= end) {
                kill(-m->pid, SIGKILL);
                waitpid(m->pid, &st, 0);
                snprintf(m->end, sizeof(m->end),
                         "pid %ld: did not end "
                         "within %.0f s of SIGTERM: SIGKILL",
                         (long)m->pid, TERM_WAIT_S);
                fprintf(stderr, "vse-load: manager %d: %s\n", m->n, m->end);
                m->pid = 0;
            } else {
                left++;
            }
        }
        if (left > 0)
            nanosleep(&ten, NULL);
    } while (left > 0);
}

/* The signal thread: SIGINT or SIGTERM to vse-load stops its managers
 * and removes the pool filler, then vse-load dies of the same signal, as
 * its caller expects.  Nothing is orphaned. */
static void *sig_main(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;

    sigwait(set, &sig);
    atomic_store(&F.dying, 1);
    fprintf(stderr, "vse-load: %s: stopping the managers\n", strsignal(sig));
    pthread_mutex_lock(&F.mu);
    terminate_locked();
    if (F.filler[0] != '\0')
        unlink(F.filler);
    pthread_mutex_unlock(&F.mu);
    signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, set, NULL);
    raise(sig);
    _exit(128 + sig);
}

void load_managers_start(const struct load_fault_opts *o)
{
    static sigset_t set;
    const struct timespec settle = {0, 300 * 1000000L};

    F.o = *o;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_create(&F.sigthread, NULL, sig_main, &set);
    pthread_detach(F.sigthread);

    F.nmgrs = o->nmanagers;
    for (int i = 0; i < F.nmgrs; i++) {
        struct manager *m = &F.mgrs[i];
        size_t len = strlen(o->managers[i]) + 6;

        m->n = i + 1;
        m->cmd = o->managers[i];
        m->shcmd = malloc(len);
        m->pids = json_array();
        if (m->shcmd == NULL) {
            fprintf(stderr, "vse-load: out of memory\n");
            exit(1);
        }
        snprintf(m->shcmd, len, "exec %s", m->cmd);
        snprintf(m->log, sizeof(m->log), "%s/manager-%d.log", o->out, m->n);
        pthread_mutex_lock(&F.mu);
        if (spawn(m) != 0) {
            terminate_locked();
            exit(1);
        }
        pthread_mutex_unlock(&F.mu);
    }
    if (F.nmgrs == 0)
        return;
    /* A command that cannot run at all (a typo, a port in use) is an
     * error of the run, not a finding: see it before the load starts. */
    nanosleep(&settle, NULL);
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.nmgrs; i++) {
        struct manager *m = &F.mgrs[i];
        int st;

        if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
            char how[100];

            wait_status(st, how, sizeof(how));
            fprintf(stderr,
                    "vse-load: manager %d ended at start (%s); see "
                    "%s\n",
                    m->n, how, m->log);
            m->pid = 0;
            terminate_locked();
            exit(1);
        }
    }
    pthread_mutex_unlock(&F.mu);
    F.monitoring = 1;
    pthread_create(&F.monitor, NULL, monitor_main, NULL);
}

/* ---- /v1 of the first API server ----------------------------------- */

/* GET URL/v1/PATH as JSON; NULL if there is no 200 answer. */
static json_t *v1_get(const char *path)
{
    struct load_http h;
    char full[1024];
    json_t *j = NULL;

    load_http_init(&h, F.o.url, F.o.project);
    snprintf(full, sizeof(full), "/v1/%s", path);
    if (load_http_do(&h, "GET", full, NULL) == 200 && h.body != NULL)
        j = json_loads(h.body, 0, NULL);
    load_http_free(&h);
    return j;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* Is `owner` the volume manager with this pid ("volume@HOST:PID")? */
static int owned_by(const char *owner, long pid)
{
    char suffix[32];
    size_t n = strlen(owner), k;

    k = (size_t)snprintf(suffix, sizeof(suffix), ":%ld", pid);
    return strncmp(owner, "volume@", 7) == 0 && n > k + 7 &&
           strcmp(owner + n - k, suffix) == 0;
}

/* The ops manager `pid` holds: busy resources it owns.  Their count, or
 * -1 if the list cannot be read; *out gets a malloc'd array, *steps the
 * count of those that are not its service row (the heartbeat, held all
 * the time). */
static int held_ops(long pid, struct held **out, int *steps)
{
    char path[300], after[100] = "";
    struct held *h = NULL;
    size_t cap = 0;
    int n = 0;

    *out = NULL;
    *steps = 0;
    for (;;) {
        json_t *j, *v, *next;
        size_t i;

        snprintf(path, sizeof(path), "resources?busy=true&limit=1000%s%s",
                 after[0] ? "&after=" : "", after);
        j = v1_get(path);
        if (j == NULL) {
            free(h);
            return -1;
        }
        json_array_foreach(json_object_get(j, "resources"), i, v) {
            struct held *x;

            if (!owned_by(jstr(v, "owner"), pid))
                continue;
            if (vse__grow(h, cap, (size_t)n + 1) < 0)
                break;
            x = &h[n++];
            snprintf(x->id, sizeof(x->id), "%s", jstr(v, "id"));
            snprintf(x->machine, sizeof(x->machine), "%s",
                     jstr(v, "machine"));
            *steps += strcmp(x->machine, "service") != 0;
            snprintf(x->op, sizeof(x->op), "%s", jstr(v, "op"));
            snprintf(x->op_id, sizeof(x->op_id), "%s", jstr(v, "op_id"));
            snprintf(x->owner, sizeof(x->owner), "%s", jstr(v, "owner"));
        }
        next = json_object_get(j, "next");
        if (!json_is_string(next)) {
            json_decref(j);
            break;
        }
        snprintf(after, sizeof(after), "%s", json_string_value(next));
        json_decref(j);
    }
    *out = h;
    return n;
}

/* ---- the faults ------------------------------------------------------- */

static void rec_done(struct fault *f, double at, const char *target, int ok,
                     const char *detail)
{
    json_object_set_new(f->rec, "at_s", json_real(at));
    json_object_set_new(f->rec, "duration_s", json_real(since_t0() - at));
    json_object_set_new(f->rec, "target", json_string(target));
    json_object_set_new(f->rec, "detail", json_string(detail));
    json_object_set_new(f->rec, "ok", json_boolean(ok));
}

/* Wait for a manager to be running (a kill may be restarting it); its
 * pid, 0 if it is not back within 5 s. */
static pid_t running(struct manager *m)
{
    int64_t end = vse__now_mono_us() + 5000000;
    pid_t pid;

    for (;;) {
        pthread_mutex_lock(&F.mu);
        pid = m->pid;
        pthread_mutex_unlock(&F.mu);
        if (pid > 0 || vse__now_mono_us() >= end || !nap(0.02))
            return pid;
    }
}

static void fault_kill(struct fault *f)
{
    struct manager *m = &F.mgrs[f->target];
    char target[100], detail[400];
    double at;
    pid_t pid = running(m), now;
    int ok = 0;

    at = since_t0();
    snprintf(target, sizeof(target), "manager %d pid %ld", m->n, (long)pid);
    if (pid <= 0) {
        snprintf(detail, sizeof(detail), "manager %d was not running", m->n);
        rec_done(f, at, target, 0, detail);
        return;
    }
    pthread_mutex_lock(&F.mu);
    m->expect_exit = 1;
    kill(-pid, SIGKILL);
    pthread_mutex_unlock(&F.mu);
    json_object_set_new(f->rec, "pid", json_integer(pid));
    /* The monitor reaps it; then the restart, FOR seconds later. */
    do {
        pthread_mutex_lock(&F.mu);
        now = m->pid;
        pthread_mutex_unlock(&F.mu);
    } while (now == pid && nap(0.01));
    if (!nap(f->dur)) {
        rec_done(f, at, target, 0,
                 "SIGKILL sent; vse-load was interrupted "
                 "before the restart");
        return;
    }
    pthread_mutex_lock(&F.mu);
    ok = spawn(m) == 0;
    now = m->pid;
    pthread_mutex_unlock(&F.mu);
    json_object_set_new(f->rec, "new_pid",
                        ok ? json_integer(now) : json_null());
    if (ok)
        snprintf(detail, sizeof(detail),
                 "SIGKILL to manager %d (pid %ld), "
                 "started again after %.2f s as pid %ld",
                 m->n, (long)pid, f->dur, (long)now);
    else
        snprintf(detail, sizeof(detail),
                 "SIGKILL to manager %d (pid %ld); "
                 "could not start it again",
                 m->n, (long)pid);
    rec_done(f, at, target, ok, detail);
}

static void fault_stop(struct fault *f)
{
    struct manager *m = &F.mgrs[f->target];
    char target[100], detail[400];
    json_t *held;
    struct held *h = NULL;
    int64_t until, stopped;
    double at;
    pid_t pid = running(m);
    int n, steps = 0;

    /* Land the stop mid-step if the manager gets an op soon. */
    until = vse__now_mono_us() + (int64_t)(STOP_WAIT_S * 1e6);
    while (pid > 0 && vse__now_mono_us() < until) {
        held_ops(pid, &h, &steps);
        free(h);
        if (steps > 0 || !nap(0.02))
            break;
    }
    at = since_t0();
    snprintf(target, sizeof(target), "manager %d pid %ld", m->n, (long)pid);
    pthread_mutex_lock(&F.mu);
    if (pid <= 0 || m->pid != pid) {
        pthread_mutex_unlock(&F.mu);
        snprintf(detail, sizeof(detail), "manager %d was not running", m->n);
        rec_done(f, at, target, 0, detail);
        return;
    }
    kill(-pid, SIGSTOP);
    f->stop_wall = load_wall_us();
    stopped = vse__now_mono_us();
    pthread_mutex_unlock(&F.mu);
    f->pid = (long)pid;
    /* Listed after the stop: what it holds while frozen is exact.  The op
     * seen above may have ended between that look and the SIGSTOP, which
     * leaves a stop that proves nothing about fencing: then let it go at
     * once and stop it again, while the wait lasts. */
    n = held_ops(pid, &f->held, &steps);
    while (n >= 0 && steps == 0 && vse__now_mono_us() < until) {
        free(f->held);
        f->held = NULL;
        n = 0;
        pthread_mutex_lock(&F.mu);
        if (m->pid != pid) {
            pthread_mutex_unlock(&F.mu);
            break;
        }
        kill(-pid, SIGCONT);
        pthread_mutex_unlock(&F.mu);
        if (!nap(0.02))
            break;
        pthread_mutex_lock(&F.mu);
        if (m->pid != pid) {
            pthread_mutex_unlock(&F.mu);
            break;
        }
        kill(-pid, SIGSTOP);
        f->stop_wall = load_wall_us();
        stopped = vse__now_mono_us();
        at = since_t0();
        pthread_mutex_unlock(&F.mu);
        n = held_ops(pid, &f->held, &steps);
    }
    f->nheld = n > 0 ? (size_t)n : 0;
    held = json_array();
    for (size_t i = 0; i < f->nheld; i++)
        json_array_append_new(
            held,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", f->held[i].id,
                      "machine", f->held[i].machine, "op", f->held[i].op,
                      "op_id", f->held[i].op_id, "owner", f->held[i].owner));
    json_object_set_new(f->rec, "pid", json_integer(pid));
    json_object_set_new(f->rec, "held", held);
    /* The list may be slow (a manager stopped inside a SQLite write
     * transaction holds the store's write lock): FOR counts from the
     * SIGSTOP, not from the list. */
    nap(f->dur - (double)(vse__now_mono_us() - stopped) / 1e6);
    pthread_mutex_lock(&F.mu);
    if (m->pid == pid)
        kill(-pid, SIGCONT);
    f->cont_wall = load_wall_us();
    pthread_mutex_unlock(&F.mu);
    if (n < 0)
        snprintf(detail, sizeof(detail),
                 "SIGSTOP to manager %d (pid %ld) "
                 "for %.2f s, SIGCONT; its ops could not be listed",
                 m->n, (long)pid, f->dur);
    else
        snprintf(detail, sizeof(detail),
                 "SIGSTOP to manager %d (pid %ld) "
                 "for %.2f s holding %d op(s) (%d besides its service "
                 "row), SIGCONT",
                 m->n, (long)pid, f->dur, n, steps);
    rec_done(f, at, target, 1, detail);
}

/* Run CMD through /bin/sh, output appended to OUTDIR/pg.log; its wait
 * status, -1 if it could not be run. */
static int run_cmd(const char *cmd)
{
    char log[4200];
    sigset_t none;
    pid_t pid;
    int st, fd;

    snprintf(log, sizeof(log), "%s/pg.log", F.o.out);
    sigemptyset(&none);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

static void fault_pg(struct fault *f)
{
    char detail[600], how[100] = "", how2[100] = "";
    double at = since_t0(), took;
    int64_t t = vse__now_mono_us();
    int st, st2 = 0, ok;

    if (!f->has_for) {
        st = run_cmd(F.o.pg_restart);
        took = (double)(vse__now_mono_us() - t) / 1e6;
        ok = st == 0;
        wait_status(st, how, sizeof(how));
        snprintf(detail, sizeof(detail), "--pg-restart: %s in %.2f s",
                 st < 0 ? "could not run" : how, took);
    } else {
        st = run_cmd(F.o.pg_stop);
        wait_status(st, how, sizeof(how));
        nap(f->dur);
        st2 = run_cmd(F.o.pg_start);
        wait_status(st2, how2, sizeof(how2));
        took = (double)(vse__now_mono_us() - t) / 1e6;
        ok = st == 0 && st2 == 0;
        snprintf(detail, sizeof(detail),
                 "--pg-stop: %s, %.2f s down, "
                 "--pg-start: %s; %.2f s in all",
                 st < 0 ? "could not run" : how, f->dur,
                 st2 < 0 ? "could not run" : how2, took);
    }
    json_object_set_new(f->rec, "status", json_string(how));
    if (f->has_for)
        json_object_set_new(f->rec, "start_status", json_string(how2));
    json_object_set_new(f->rec, "took_s", json_real(took));
    rec_done(f, at, "postgresql", ok, detail);
}

/* A sparse file as large as the pool's filesystem takes: no data is
 * written, so it fills nothing on disk, but the driver counts it as used
 * space.  Its size, 0 on failure (errno set). */
static int64_t fill(int fd)
{
    const int64_t gib = INT64_C(1) << 30;
    int64_t size;

    if (F.o.pool_fill_gb > 0) {
        size = (int64_t)(F.o.pool_fill_gb * (double)gib);
        return ftruncate(fd, size) == 0 ? size : 0;
    }
    for (size = gib << 20; size >= gib; size /= 2) {
        if (ftruncate(fd, size) == 0)
            return size;
        if (errno != EFBIG && errno != EINVAL)
            return 0;
    }
    return 0;
}

static void fault_pool(struct fault *f)
{
    char path[4200], target[4300], detail[4600];
    double at = since_t0();
    int64_t size = 0;
    int fd, ok = 0;

    snprintf(path, sizeof(path), "%s/%s", F.o.pool, FILLER);
    snprintf(target, sizeof(target), "pool %s", F.o.pool);
    pthread_mutex_lock(&F.mu);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        snprintf(F.filler, sizeof(F.filler), "%s", path);
        size = fill(fd);
        if (size == 0)
            snprintf(detail, sizeof(detail), "cannot size '%s': %s", path,
                     strerror(errno));
        close(fd);
    } else {
        snprintf(detail, sizeof(detail), "cannot create '%s': %s", path,
                 strerror(errno));
    }
    pthread_mutex_unlock(&F.mu);
    if (size > 0) {
        ok = 1;
        nap(f->dur);
        snprintf(detail, sizeof(detail),
                 "sparse file %s of %lld GiB for "
                 "%.2f s",
                 path, (long long)(size >> 30), f->dur);
    }
    pthread_mutex_lock(&F.mu);
    if (F.filler[0] != '\0' && unlink(F.filler) != 0) {
        fprintf(stderr, "vse-load: cannot remove '%s': %s\n", F.filler,
                strerror(errno));
        ok = 0;
    }
    F.filler[0] = '\0';
    pthread_mutex_unlock(&F.mu);
    json_object_set_new(f->rec, "path", json_string(path));
    json_object_set_new(f->rec, "size_bytes", json_integer(size));
    rec_done(f, at, target, ok, detail);
}

static void *fault_main(void *arg)
{
    struct fault *f = arg;
    int64_t when = F.t0 + (int64_t)(f->at * 1e6);
    const struct timespec ten = {0, 10 * 1000000L};
    char detail[200];

    f->rec = json_pack("{s:s, s:s, s:f, s:f}", "kind", kind_names[f->kind],
                       "spec", f->spec, "planned_at_s", f->at, "for_s",
                       f->kind == FK_PG_RESTART && !f->has_for ? 0.0
                                                               : f->dur);
    while (vse__now_mono_us() < when && !atomic_load(&F.dying)) {
        /* --requests may end the load before a fault's time. */
        if (F.load_over()) {
            snprintf(detail, sizeof(detail),
                     "not carried out: the load "
                     "was over at %.1f s",
                     since_t0());
            rec_done(f, since_t0(), "", 0, detail);
            json_object_set_new(f->rec, "duration_s", json_real(0));
            return NULL;
        }
        nanosleep(&ten, NULL);
    }
    if (atomic_load(&F.dying))
        return NULL;
    switch (f->kind) {
    case FK_KILL: fault_kill(f); break;
    case FK_STOP: fault_stop(f); break;
    case FK_PG_RESTART: fault_pg(f); break;
    case FK_POOL_FULL: fault_pool(f); break;
    }
    fprintf(stderr, "vse-load: fault %s at %.2f s: %s\n", f->spec,
            json_real_value(json_object_get(f->rec, "at_s")),
            jstr(f->rec, "detail"));
    return NULL;
}

void load_faults_start(int64_t t0, int (*load_over)(void))
{
    F.t0 = t0;
    F.load_over = load_over;
    for (int i = 0; i < F.nfaults; i++)
        pthread_create(&F.faults[i].thread, NULL, fault_main, &F.faults[i]);
}

/* ---- fencing ---------------------------------------------------------- */

/* Kinds a woken manager could write under its old op_id.  An expire,
 * claim or reset is written by the reaper, another manager or an
 * operator: it is the fence, not a write through it. */
static int own_write(const char *kind)
{
    return strcmp(kind, "expire") != 0 && strcmp(kind, "claim") != 0 &&
           strcmp(kind, "reset") != 0;
}

struct fence_seek {
    const struct fault *f;
    const struct held *h;
    int64_t fence_at;
    int fenced, holding, bad;
};

static int fence_row(void *ctx, json_t *v)
{
    struct fence_seek *x = ctx;
    const char *kind = jstr(v, "kind");
    int64_t at = load_parse_time(jstr(v, "at"));
    char msg[600];

    if (!x->fenced && at >= x->f->stop_wall && !own_write(kind) &&
        x->holding) {
        x->fenced = 1;
        x->fence_at = at;
        return 0;
    }
    /* Still the manager's op after this row?  A finish or fail under X
     * ends it, a step with release hands it off (no owner): an expire or
     * claim after that takes nothing from the stopped manager. */
    if (!x->fenced)
        x->holding = strcmp(jstr(v, "op_id"), x->h->op_id) == 0 &&
                     owned_by(jstr(v, "owner"), x->f->pid) &&
                     strcmp(kind, "finish") != 0 && strcmp(kind, "fail") != 0;
    if (!x->fenced || !own_write(kind) ||
        strcmp(jstr(v, "op_id"), x->h->op_id) != 0 ||
        !owned_by(jstr(v, "owner"), x->f->pid))
        return 0;
    x->bad++;
    snprintf(msg, sizeof(msg),
             "woken manager %ld changed %s after "
             "it was fenced: %s row seq %lld at %s (%s -> %s) under "
             "op_id %s, fenced %.3f s after its SIGSTOP",
             x->f->pid, x->h->id, kind,
             (long long)json_integer_value(json_object_get(v, "seq")),
             jstr(v, "at"), jstr(v, "from"), jstr(v, "to"), x->h->op_id,
             (double)(x->fence_at - x->f->stop_wall) / 1e6);
    add_violation("fencing", msg);
    return 0;
}

/*
 * One op a stopped manager held: read the resource's whole history.  The
 * fence is the first expire, claim or reset written at or after the
 * SIGSTOP while the manager still held the op: from then on the op_id it
 * holds is stale.  Any later
 * row by that manager under that op_id is a write through the fence.
 * 1 fenced (while stopped or after), 0 not fenced, -1 history unreadable;
 * *bad counts the writes past the fence.
 */
static int check_fence(const struct fault *f, const struct held *h, int *bad)
{
    struct fence_seek x = {.f = f, .h = h};
    struct load_http c;
    int rc;

    load_http_init(&c, F.o.url, F.o.project);
    rc = load_history_each(&c, h->id, fence_row, &x);
    load_http_free(&c);
    *bad = x.bad;
    return rc < 0 ? -1 : x.fenced;
}

static void verify_stop(struct fault *f)
{
    char verdict[300];
    int fenced = 0, bad = 0, unread = 0;

    if (f->rec == NULL || f->pid == 0)
        return;
    for (size_t i = 0; i < f->nheld; i++) {
        int b, rc = check_fence(f, &f->held[i], &b);

        if (rc < 0)
            unread++;
        fenced += rc > 0;
        bad += b;
    }
    if (f->nheld == 0)
        snprintf(verdict, sizeof(verdict),
                 "held no op when stopped: "
                 "nothing to fence");
    else if (bad > 0)
        snprintf(verdict, sizeof(verdict),
                 "VIOLATION: %d write(s) through "
                 "the fence",
                 bad);
    else
        snprintf(verdict, sizeof(verdict),
                 "%d of %zu held op(s) taken over, "
                 "no write through a fence%s",
                 fenced, f->nheld,
                 unread ? "; some histories could not be read" : "");
    json_object_set_new(f->rec, "fenced", json_integer(fenced));
    json_object_set_new(f->rec, "fence_violations", json_integer(bad));
    json_object_set_new(f->rec, "verdict", json_string(verdict));
}

static double at_of(const struct fault *f)
{
    return f->rec ? json_real_value(json_object_get(f->rec, "at_s")) : f->at;
}

void load_faults_finish(json_t **faults, json_t **managers,
                        json_t **violations)
{
    struct fault *order[FAULTS_MAX];

    *faults = json_array();
    for (int i = 0; i < F.nfaults; i++) {
        struct fault *f = &F.faults[i];

        pthread_join(f->thread, NULL);
        if (f->kind == FK_STOP)
            verify_stop(f);
        free(f->held);
        /* In the order they happened, for the table and faults.tsv. */
        order[i] = f;
        for (int k = i; k > 0 && at_of(order[k]) < at_of(order[k - 1]); k--) {
            order[k] = order[k - 1];
            order[k - 1] = f;
        }
    }
    for (int i = 0; i < F.nfaults; i++)
        if (order[i]->rec != NULL)
            json_array_append_new(*faults, order[i]->rec);
    if (F.monitoring) {
        atomic_store(&F.monitor_stop, 1);
        pthread_join(F.monitor, NULL);
    }
    pthread_mutex_lock(&F.mu);
    reap_locked();
    terminate_locked();
    *managers = json_array();
    for (int i = 0; i < F.nmgrs; i++) {
        struct manager *m = &F.mgrs[i];

        json_array_append_new(*managers,
                              json_pack("{s:i, s:s, s:s, s:o, s:s}", "n",
                                        m->n, "cmd", m->cmd, "log", m->log,
                                        "pids", m->pids, "end", m->end));
        free(m->shcmd);
    }
    *violations = F.violations ? F.violations : json_array();
    F.violations = NULL;
    pthread_mutex_unlock(&F.mu);
}
