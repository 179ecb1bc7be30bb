/*
 * role-scheduler.c - the scheduler role: volumes waiting unowned in
 * `scheduling` are its queue (DESIGN §2).  For each it picks the up volume
 * host with the most free capacity that fits, then claims the volume and
 * steps it to `creating_vol` with attrs.host set and the op released, in
 * one transition (vse_claim_step), which puts it in that host's queue.
 * The claim is the only lock there is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "names.h"
#include "vsed.h"

#define HOSTS_MAX 64
#define RESCAN_MS 5000
/* How long what the hosts hold, read by a scan of every volume, is
 * trusted (with this scheduler's own placements added meanwhile).  Other
 * schedulers' placements are missed that long at most; a host that is
 * fuller than a scheduler knew hands the volume back (the reschedule
 * edge).  Scanning every volume per wake-up made the scheduler the
 * pipeline's bottleneck once thousands of volumes existed. */
#define USAGE_MS 500

struct host {
    char name[VSE_NAME_MAX + 1];
    int64_t capacity, used;
};

struct sched {
    vse_db *db;
    char owner[VSE_ID_MAX + 1];
    struct host hosts[HOSTS_MAX];
    int nhosts;
    /* What each host holds, by the last scan of every volume, plus this
     * scheduler's placements since (by host name: the host list is
     * read again at every pass). */
    struct host usage[HOSTS_MAX];
    int nusage;
    int64_t usage_at; /* monotonic ms of that scan; 0 = none */
    /* Ops waiting in "scheduling" with no owner, by one scan. */
    VSE_ARRAY(struct vse_resource) w;
};

static struct host *find_in(struct host *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* Volume hosts whose heartbeat is live. */
static int collect_host(void *arg, const struct vse_resource *r)
{
    struct sched *s = arg;
    json_t *a;

    if (r->owner[0] == '\0' || r->lease_expires < vse_now_us() ||
        s->nhosts == HOSTS_MAX)
        return 0;
    a = vsed_attrs(r);
    if (strcmp(vsed_attr_str(a, "binary"), "cinder-volume") == 0) {
        struct host *h = &s->hosts[s->nhosts++];

        snprintf(h->name, sizeof(h->name), "%s", vsed_attr_str(a, "host"));
        h->capacity = vsed_attr_int(a, "capacity_gb", 0);
        h->used = 0;
    }
    json_decref(a);
    return 0;
}

/*
 * What a volume takes on its host: from the moment the scheduler names
 * the host until it is deleted, except a create that failed (its file
 * was removed when the create was reverted).  An extend in flight counts
 * at its new size.
 */
static int collect_volume(void *arg, const struct vse_resource *r)
{
    struct sched *s = arg;
    json_t *a = vsed_attrs(r);
    const char *name = vsed_attr_str(a, "host");
    struct host *h = find_in(s->usage, s->nusage, name);

    if (h == NULL && name[0] != '\0' && s->nusage < HOSTS_MAX) {
        h = &s->usage[s->nusage++];
        snprintf(h->name, sizeof(h->name), "%s", name);
        h->used = 0;
    }
    if (h != NULL && strcmp(r->state, VOLUME_DELETED) != 0 &&
        !(strcmp(r->state, VOLUME_ERROR) == 0 &&
          json_object_get(a, "provider_location") == NULL)) {
        int64_t size = vsed_attr_int(a, "size", 0);
        int64_t grow = strcmp(r->state, VOLUME_EXTENDING) == 0
                           ? vsed_attr_int(a, "new_size", size)
                           : size;

        h->used += grow > size ? grow : size;
    }
    json_decref(a);
    return 0;
}

/* Volumes waiting for a scheduler: in scheduling, unowned. */
static int collect_waiting(void *arg, const struct vse_resource *r)
{
    struct sched *s = arg;

    if (strcmp(r->state, VOLUME_SCHEDULING) == 0 && r->owner[0] == '\0' &&
        vse__array_push(&s->w, *r) < 0)
        return 1;
    return 0;
}

/* This scheduler's placements count until the next scan sees them. */
static void add_usage(struct sched *s, const char *name, int64_t size)
{
    struct host *u = find_in(s->usage, s->nusage, name);

    if (u == NULL && s->nusage < HOSTS_MAX) {
        u = &s->usage[s->nusage++];
        snprintf(u->name, sizeof(u->name), "%s", name);
        u->used = 0;
    }
    if (u != NULL)
        u->used += size;
}

static void schedule(struct sched *s, const struct vse_resource *r)
{
    json_t *a = vsed_attrs(r);
    json_t *excluded = json_object_get(a, "excluded_hosts"), *x;
    int64_t size = vsed_attr_int(a, "size", 1);
    /* A volume made from a snapshot or a clone goes where its source's
     * file is (as Cinder keeps such a volume on the source's backend):
     * the copy is then a reflink, or a local copy, and no manager reads
     * another host's pool. */
    const char *only = vsed_attr_str(a, "source_host");
    struct host *best = NULL;
    struct vse_error err;
    struct vse_opts o;
    char reason[VSE_REASON_MAX + 1], *patch;
    size_t n = 0;
    int rc;

    for (int i = 0; i < s->nhosts; i++) {
        struct host *h = &s->hosts[i];
        int skip = 0;
        size_t k;

        /* Hosts whose manager handed the volume back (their pool is
         * fuller than this scheduler knew). */
        json_array_foreach(excluded, k, x)
            skip |= json_is_string(x) &&
                    strcmp(json_string_value(x), h->name) == 0;
        skip |= only[0] != '\0' && strcmp(only, h->name) != 0;
        if (!skip && h->capacity - h->used >= size &&
            (best == NULL ||
             h->capacity - h->used > best->capacity - best->used))
            best = h;
        n += (size_t)snprintf(reason + n, n < 200 ? 200 - n : 0,
                              " %s %lld/%lld", h->name,
                              (long long)(h->capacity - h->used),
                              (long long)h->capacity);
    }
    memset(&o, 0, sizeof(o));
    o.owner = s->owner;
    o.ttl_ms = vsed_cfg->lease_ms;
    o.seen = r;
    vse_error_clear(&err);
    if (best == NULL) {
        char why[VSE_REASON_MAX + 1];

        if (only[0] != '\0')
            snprintf(why, sizeof(why),
                     "task schedule: failed: the source's host %s is "
                     "down, was excluded, or has not %lld GiB free "
                     "(free/capacity:%s)",
                     only, (long long)size,
                     s->nhosts ? reason : " no host up");
        else
            snprintf(why, sizeof(why),
                     "task schedule: failed: no volume host "
                     "has %lld GiB free (free/capacity:%s)",
                     (long long)size, s->nhosts ? reason : " no host up");
        json_decref(a);
        o.reason = why;
        /* Under the handed-off op's token: a scheduler that placed it
         * meanwhile changed the version, and this fails the CAS. */
        if (vse_fail(s->db, r->id, r->op_id, &o, NULL, &err) == 0)
            vsed_log("scheduler: %s: %s", r->id, why);
        return;
    }
    json_decref(a);
    patch = vsed_json_text(json_pack("{s:s}", "host", best->name));
    snprintf(reason, sizeof(reason),
             "task schedule: done: host %s (%lld "
             "of %lld GiB free before)",
             best->name, (long long)(best->capacity - best->used),
             (long long)best->capacity);
    o.reason = reason;
    o.attrs = patch;
    o.release = 1;
    rc = vse_claim_step(s->db, r->id, r->op_id, VOLUME_CREATING_VOL, &o, NULL,
                        &err);
    if (rc == 0) {
        best->used += size;
        add_usage(s, best->name, size);
    }
    /* Else another scheduler took it, or it changed: its turn. */
    free(patch);
}

/* One pass: the hosts and what they hold, then every waiting volume. */
static void pass(struct sched *s)
{
    struct vse_filter f;
    struct vse_error err;
    int64_t now = vse__now_mono_ms();

    memset(&f, 0, sizeof(f));
    s->nhosts = 0;
    s->w.n = 0;
    vse_error_clear(&err);
    f.machine = VSED_SERVICE_MACHINE;
    if (vse_list(s->db, &f, collect_host, s, &err) < 0) {
        vsed_log("scheduler: %s", err.msg);
        return;
    }
    f.machine = VSED_MACHINE_VOLUME;
    f.state = VOLUME_SCHEDULING;
    if (vse_list(s->db, &f, collect_waiting, s, &err) < 0) {
        vsed_log("scheduler: %s", err.msg);
        return;
    }
    /* With no volume host up at all, volumes wait rather than fail: a
     * cluster that is starting has not registered its hosts yet. */
    if (s->w.n == 0 || (s->nhosts == 0 && s->w.n > 0))
        return;
    if (s->usage_at == 0 || now - s->usage_at >= USAGE_MS) {
        f.state = NULL;
        f.not_state = VOLUME_DELETED; /* they take nothing, and pile up */
        s->nusage = 0;
        if (vse_list(s->db, &f, collect_volume, s, &err) < 0) {
            vsed_log("scheduler: %s", err.msg);
            s->usage_at = 0;
            return;
        }
        s->usage_at = now;
    }
    for (int i = 0; i < s->nhosts; i++) {
        struct host *u = find_in(s->usage, s->nusage, s->hosts[i].name);

        s->hosts[i].used = u != NULL ? u->used : 0;
    }
    for (size_t i = 0; i < s->w.n; i++)
        schedule(s, &s->w.v[i]);
}

void *vsed_scheduler_main(void *arg)
{
    /* A volume entering scheduling, or a service (a volume host) taken
     * up: volumes wait while no host is up, and a host whose manager
     * died is down from its lease's end until another process of that
     * host takes its service row over. */
    static const char *const wake[] = {VOLUME_SCHEDULING, SERVICE_RUNNING,
                                       NULL};
    const atomic_int *stop = arg;
    struct sched *s = calloc(1, sizeof(*s));
    struct vse_error err;
    int64_t seq = 0;

    if (s == NULL)
        return NULL;
    vse_error_clear(&err);
    if (vsed_open(vsed_cfg->store, &s->db, &err) < 0) {
        vsed_log("scheduler: cannot open store: %s", err.msg);
        free(s);
        return NULL;
    }
    vsed_owner("scheduler", s->owner, sizeof(s->owner));
    vse_last_seq(s->db, &seq, &err);
    vsed_log("scheduler: running as %s", s->owner);
    while (!atomic_load(stop)) {
        pass(s);
        vsed_wait_for(s->db, &seq, wake, RESCAN_MS, stop);
    }
    vse__array_release(&s->w);
    vsed_close(s->db);
    free(s);
    return NULL;
}
