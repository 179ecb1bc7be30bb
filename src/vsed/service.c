/*
 * service.c - the roles a vsed process runs (--role, --all-in-one) and
 * their heartbeats.  Each role is a resource of the `service` machine,
 * "BINARY@HOST", whose op `run` is held by the process: renewing its
 * lease is the heartbeat, and a dead process's lease runs out, so
 * `os-services` can tell up from down without any other registry.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "names.h"
#include "vsed.h"

#define HEARTBEAT_TTL_MS 10000
#define HEARTBEAT_EVERY_MS 3000

const struct vsed_config *vsed_cfg;

/* The service machine (heartbeats) is a libvse built-in. */
/* Every handle vsed opened, so that a shutdown can tell them all to stop
 * waiting for a store that is away (vsed_stores_interrupt()). */
#define OPEN_MAX 512
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static vse_db *open_dbs[OPEN_MAX];
static int nopen, interrupting;

/*
 * VSED_TEST_MACHINE=FILE: the machine in FILE stands in for the built-in
 * of its name in every handle vsed opens, so that a test can start a vsed
 * whose built-in is newer than a store's pin.  For tests only (it is
 * logged at start); NULL when unset.
 */
static const char *test_machine(void)
{
    const char *f = getenv("VSED_TEST_MACHINE");

    return f != NULL && f[0] != '\0' ? f : NULL;
}

/* vsed's machine called `name`: the built-in, or the test's stand-in. */
static int vsed_machine(const char *name, vse_machine **out,
                        struct vse_error *err)
{
    const char *f = test_machine();
    vse_machine *m;
    int rc;

    if (f != NULL) {
        rc = vse_machine_load_file(f, NULL, NULL, &m, err);
        if (rc < 0)
            return rc;
        if (strcmp(vse_machine_name(m), name) == 0) {
            *out = m;
            return 0;
        }
        vse_machine_free(m);
    }
    return vse_machine_builtin(name, out, err);
}

static void track(vse_db *db)
{
    pthread_mutex_lock(&open_mu);
    if (interrupting)
        vse_interrupt(db);
    if (nopen < OPEN_MAX)
        open_dbs[nopen++] = db;
    pthread_mutex_unlock(&open_mu);
}

static void untrack(vse_db *db)
{
    pthread_mutex_lock(&open_mu);
    for (int i = 0; i < nopen; i++)
        if (open_dbs[i] == db) {
            open_dbs[i] = open_dbs[--nopen];
            break;
        }
    pthread_mutex_unlock(&open_mu);
}

/*
 * vse_open(), with the test's stand-in machine when there is one.  The
 * handle is tracked from its first connection on: loading the machines
 * reads the store, and a store lost in between must not hold a shutdown
 * for a whole reconnect budget.
 */
static int open_machines(const char *url, vse_db **out, struct vse_error *err)
{
    const char *const *names = vse_machine_builtin_names();
    int rc;

    rc = vse_open_bare(url, out, err);
    if (rc < 0)
        return rc;
    track(*out);
    for (size_t i = 0; rc == 0 && names[i] != NULL; i++) {
        vse_machine *m;

        rc = vsed_machine(names[i], &m, err);
        if (rc == 0)
            rc = vse_add_machine(*out, m, err);
    }
    if (rc < 0) {
        untrack(*out);
        vse_close(*out);
        *out = NULL;
    }
    return rc;
}

static void log_blocker(void *arg, const struct vse_upgrade_blocker *b)
{
    (void)arg;
    fprintf(stderr, "vsed:   %s: %s\n", b->resource, b->reason);
}

int vsed_upgrade_machines(const char *url, struct vse_error *err)
{
    const char *const *names = vse_machine_builtin_names();
    char actor[VSE_ID_MAX + 1], host[200];
    vse_db *db;
    int rc;

    if (test_machine() != NULL)
        vsed_log("TEST: the machine in %s (VSED_TEST_MACHINE) stands in "
                 "for the built-in of its name",
                 test_machine());
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(actor, sizeof(actor), "vsed@%s", host);
    rc = vse_open_bare(url, &db, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; names[i] != NULL; i++) {
        struct vse_upgrade_info info;
        vse_machine *m;

        rc = vsed_machine(names[i], &m, err);
        if (rc < 0)
            break;
        rc = vse_upgrade_machine(db, m, actor, log_blocker, NULL, &info, err);
        if (rc == 0 && info.from_version > 0)
            vsed_log("machine %s upgraded from version %d to %d (hash %s "
                     "-> %s): %s",
                     names[i], info.from_version, info.to_version,
                     info.from_hash, info.to_hash, info.changes);
        if (rc < 0)
            break;
    }
    vse_close(db);
    return rc < 0 ? rc : 0;
}

int vsed_open(const char *url, vse_db **out, struct vse_error *err)
{
    char blind[2048];

    /* local-locks: the same store, through the comparison's wrapper. */
    if (vsed_cfg != NULL && vsed_cfg->local_locks) {
        snprintf(blind, sizeof(blind), "blind:%s", url);
        url = blind;
    }
    return open_machines(url, out, err);
}

void vsed_close(vse_db *db)
{
    untrack(db);
    vse_close(db);
}

void vsed_stores_interrupt(void)
{
    pthread_mutex_lock(&open_mu);
    interrupting = 1;
    for (int i = 0; i < nopen; i++)
        vse_interrupt(open_dbs[i]);
    pthread_mutex_unlock(&open_mu);
}

json_t *vsed_attrs(const struct vse_resource *r)
{
    json_t *j = json_loads(r->attrs[0] ? r->attrs : "{}", 0, NULL);

    if (j != NULL && json_is_object(j))
        return j;
    json_decref(j);
    return json_object();
}

const char *vsed_attr_str(const json_t *a, const char *key)
{
    const char *s = json_string_value(json_object_get(a, key));

    return s != NULL ? s : "";
}

int64_t vsed_attr_int(const json_t *a, const char *key, int64_t def)
{
    json_t *v = json_object_get(a, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

char *vsed_json_text(json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return s;
}

void vsed_service_id(const char *binary, const char *host, char *buf,
                     size_t size)
{
    snprintf(buf, size, "%s@%s", binary, host);
}

void vsed_owner(const char *role, char *buf, size_t size)
{
    snprintf(buf, size, "%s@%s:%ld", role, vsed_cfg->host, (long)getpid());
}

/* ---- heartbeats --------------------------------------------------------- */

struct svc {
    const char *binary; /* Cinder's name: cinder-volume ... */
    const char *role;
    char id[VSE_ID_MAX + 1];
    char op_id[VSE_OPID_LEN + 1];
    int up;
    int warned;
    int64_t retry_at; /* not up: when the holder's lease ends (wall
                           clock, us), to take the row over right then */
};

static struct svc svcs[4];
static int nsvcs;
static pthread_t hb_thread, sched_thread, vol_thread;
static int hb_running, sched_running, vol_running;
static atomic_int stop_flag;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static vse_db *hb_db;

/* Take the service row: create it, start it again, or take it over from
 * a process whose heartbeat stopped.  0 when this process holds it. */
static int svc_up(struct svc *s)
{
    const struct vsed_config *c = vsed_cfg;
    struct vse_resource cur, out;
    struct vse_error err;
    struct vse_opts o;
    char owner[VSE_ID_MAX + 1], t[40];
    char *attrs;
    int rc;

    memset(&cur, 0, sizeof(cur));
    vsed_owner(s->role, owner, sizeof(owner));
    attrs = vsed_json_text(json_pack(
        "{s:s, s:s, s:s, s:I, s:s, s:I}", "binary", s->binary, "host",
        c->host, "zone", "nova", "pid", (json_int_t)getpid(), "pool",
        strcmp(s->role, "volume") == 0 ? c->pool : "", "capacity_gb",
        (json_int_t)(strcmp(s->role, "volume") == 0 ? c->capacity_gb : 0)));
    memset(&o, 0, sizeof(o));
    o.owner = owner;
    o.ttl_ms = HEARTBEAT_TTL_MS;
    o.attrs = attrs;
    o.reason = "service started";
    vse_error_clear(&err);
    rc = vse_create(hb_db, VSED_SERVICE_MACHINE, s->id, &o, &out, &err);
    if (rc == VSE_EEXIST && vse_get(hb_db, s->id, &cur, &err) == 0) {
        vse_error_clear(&err);
        if (cur.op[0] == '\0')
            rc = vse_begin(hb_db, s->id, SERVICE_OP_RUN, &o, &out, &err);
        else
            rc = vse_claim(hb_db, s->id, cur.op_id, &o, &out, &err);
    }
    free(attrs);
    if (rc < 0) {
        if (!s->warned)
            vsed_log("service %s: not up yet: %s (held by %s until %s?)",
                     s->id, err.msg, cur.owner,
                     vse_time_format(cur.lease_expires, t, sizeof(t)));
        s->warned = 1;
        /* Another process of this host holds it (a manager beside us):
         * try again the moment its lease ends, not up to a heartbeat
         * later, so that the host is not counted down in between. */
        s->retry_at = cur.owner[0] != '\0' && cur.lease_expires > vse_now_us()
                          ? cur.lease_expires
                          : 0; /* else: the next heartbeat, no spinning */
        return -1;
    }
    s->retry_at = 0;
    snprintf(s->op_id, sizeof(s->op_id), "%s", out.op_id);
    s->up = 1;
    vsed_log("service %s up (heartbeat every %d ms)", s->id,
             HEARTBEAT_EVERY_MS);
    return 0;
}

static void svc_beat(struct svc *s)
{
    struct vse_error err;
    struct vse_opts o;
    int rc;

    if (!s->up) {
        svc_up(s);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.ttl_ms = HEARTBEAT_TTL_MS;
    vse_error_clear(&err);
    rc = vse_renew(hb_db, s->id, s->op_id, &o, NULL, &err);
    if (rc == VSE_EFENCED || rc == VSE_ECONFLICT || rc == VSE_ENOTFOUND) {
        /* Reaped (we stalled past the lease) or reset: take it again. */
        vsed_log("service %s: heartbeat refused: %s", s->id, err.msg);
        s->up = 0;
        svc_up(s);
    } else if (rc < 0) {
        vsed_log("service %s: heartbeat failed: %s", s->id, err.msg);
    }
}

/* Heartbeats every HEARTBEAT_EVERY_MS; in between, a service that is not
 * up yet is tried again when the lease of the process holding it ends. */
static void *hb_main(void *arg)
{
    int64_t next_beat = vse__now_mono_ms() + HEARTBEAT_EVERY_MS;
    struct timespec until;

    pthread_mutex_lock(&mu);
    while (!atomic_load(&stop_flag)) {
        int64_t wake = next_beat, now = vse__now_mono_ms();
        int64_t wall = vse_now_us();

        for (int i = 0; i < nsvcs; i++)
            if (!svcs[i].up && svcs[i].retry_at > 0) {
                int64_t at = now + (svcs[i].retry_at - wall) / 1000 + 5;

                wake = at < wake ? at : wake;
            }
        if (wake < now + 5)
            wake = now + 5;
        until.tv_sec = (time_t)(wake / 1000);
        until.tv_nsec = (long)(wake % 1000) * 1000000L;
        while (!atomic_load(&stop_flag) &&
               pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
            ;
        if (atomic_load(&stop_flag))
            break;
        pthread_mutex_unlock(&mu);
        if (vse__now_mono_ms() >= next_beat) {
            for (int i = 0; i < nsvcs; i++)
                svc_beat(&svcs[i]);
            next_beat = vse__now_mono_ms() + HEARTBEAT_EVERY_MS;
        } else {
            for (int i = 0; i < nsvcs; i++)
                if (!svcs[i].up && svcs[i].retry_at > 0 &&
                    vse_now_us() >= svcs[i].retry_at)
                    svc_up(&svcs[i]);
        }
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void add_svc(const char *binary, const char *role)
{
    struct svc *s = &svcs[nsvcs++];

    memset(s, 0, sizeof(*s));
    s->binary = binary;
    s->role = role;
    vsed_service_id(binary, vsed_cfg->host, s->id, sizeof(s->id));
}

int vsed_services_start(const struct vsed_config *c)
{
    pthread_condattr_t ca;
    struct vse_error err;

    vsed_cfg = c;
    /* A monotonic clock: a wall-clock jump must not stall heartbeats. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    vse_error_clear(&err);
    if (vsed_open(c->store, &hb_db, &err) < 0) {
        vsed_log("services: cannot open store: %s", err.msg);
        return -1;
    }
    if ((c->services & SVC_API) && c->heartbeat)
        add_svc("cinder-api", "api");
    if (c->services & SVC_SCHEDULER)
        add_svc("cinder-scheduler", "scheduler");
    if (c->services & SVC_VOLUME)
        add_svc("cinder-volume", "volume");
    if ((c->services & SVC_REAPER) && c->heartbeat)
        add_svc("vse-reaper", "reaper");
    /* Registered before the first request is served, so that a
     * scheduler sees the volume hosts of an all-in-one at once. */
    for (int i = 0; i < nsvcs; i++)
        svc_up(&svcs[i]);
    if (pthread_create(&hb_thread, NULL, hb_main, NULL) != 0)
        return -1;
    hb_running = 1;
    if (c->services & SVC_SCHEDULER) {
        if (pthread_create(&sched_thread, NULL, vsed_scheduler_main,
                           &stop_flag) != 0)
            return -1;
        sched_running = 1;
    }
    if (c->services & SVC_VOLUME) {
        if (pthread_create(&vol_thread, NULL, vsed_volume_main, &stop_flag) !=
            0)
            return -1;
        vol_running = 1;
    }
    return 0;
}

void vsed_services_stop(void)
{
    struct vse_error err;

    pthread_mutex_lock(&mu);
    atomic_store(&stop_flag, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    if (sched_running)
        pthread_join(sched_thread, NULL);
    if (vol_running)
        pthread_join(vol_thread, NULL);
    if (hb_running)
        pthread_join(hb_thread, NULL);
    sched_running = vol_running = hb_running = 0;
    /* A clean stop says so at once: the service shows down now, not
     * when its lease runs out. */
    for (int i = 0; i < nsvcs && hb_db != NULL; i++) {
        struct vse_opts o;

        if (!svcs[i].up)
            continue;
        memset(&o, 0, sizeof(o));
        o.reason = "service stopped";
        vse_error_clear(&err);
        vse_finish(hb_db, svcs[i].id, svcs[i].op_id, SERVICE_STOPPED, &o,
                   NULL, &err);
    }
    nsvcs = 0;
    vsed_close(hb_db);
    hb_db = NULL;
}

/* ---- waking the roles --------------------------------------------------- */

struct wake {
    const char *const *states;
    int64_t seq;
    int hit;
};

static int wake_event(void *arg, const struct vse_event *e)
{
    struct wake *w = arg;

    w->seq = e->seq;
    /* A renew (a heartbeat, a task boundary) never makes new work. */
    if (e->kind == VSE_KIND_RENEW)
        return 0;
    for (int i = 0; w->states[i] != NULL && !w->hit; i++)
        w->hit = strcmp(e->to, w->states[i]) == 0 ||
                 (e->kind == VSE_KIND_EXPIRE &&
                  strcmp(e->from, w->states[i]) == 0);
    return 0;
}

int vsed_wait_for(vse_db *db, int64_t *seq, const char *const *states,
                  int timeout_ms, const atomic_int *stop)
{
    struct wake w = {states, *seq, 0};
    struct vse_error err;
    int64_t deadline = vse_now_us() + (int64_t)timeout_ms * 1000;

    /* Short waits, so that a stop is seen within a quarter second. */
    while (!atomic_load(stop) && vse_now_us() < deadline) {
        int rc;

        vse_error_clear(&err);
        rc = vse_wait(db, w.seq, 250, &err);
        if (rc < 0) {
            /* The store is away: do not spin; the pass after the wait
             * finds what was missed. */
            struct timespec ts = {0, 250 * 1000000L};

            nanosleep(&ts, NULL);
            continue;
        }
        if (rc == 0)
            continue;
        if (vse_events(db, w.seq, 1000, wake_event, &w, &err) < 0)
            break;
        *seq = w.seq;
        if (w.hit)
            return 1;
    }
    *seq = w.seq;
    return 0;
}
