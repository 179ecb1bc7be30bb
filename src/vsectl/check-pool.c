/*
 * check-pool.c - the checks of `vsectl check` that look past the store:
 * the files in the volume hosts' pools agree with the volumes and
 * snapshots the store holds (--pool HOST=DIR), what the store counts as
 * used on a host agrees with its pool and stays within its capacity, and
 * no operation stays in flight longer than a lease and a reap interval
 * (--stuck-after), a resource another one holds has the file its holder
 * reads, and a volume made from a snapshot or a clone of a volume sits
 * where its source's data was (and is no smaller than a snapshot).  File names come from
 * the driver itself (src/driver/driver.h), never a copy.
 */
#include <dirent.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver.h"
#include "util.h"
#include "vsectl.h"

/* What the checks need of one volume or snapshot row. */
struct item {
    char id[VSE_ID_MAX + 1];
    char state[VSE_NAME_MAX + 1];
    char op[VSE_NAME_MAX + 1];
    char owner[VSE_ID_MAX + 1];
    char host[VSE_ID_MAX + 1];
    int64_t size;
    int located; /* attrs.provider_location is set */
    /* A volume made from a snapshot (1) or a clone of a volume (0): its
     * source; kind -1 otherwise. */
    char source[VSE_ID_MAX + 1];
    int source_kind;
    int64_t version;
    int64_t updated;
};

struct items {
    struct item *v;
    size_t n, cap;
};

struct run {
    vse_db *db;
    vse_violation_fn cb;
    void *ctx;
    int64_t count;
    struct items kind[2]; /* volume, snapshot: each in id order */
};

static const char *const machines[2] = {"volume", "snapshot"};

static void violation(struct run *r, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(struct run *r, const char *id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->cb(r->ctx, id, msg);
    r->count++;
}

static void item_of(const struct vse_resource *res, struct item *it)
{
    json_t *a = json_loads(res->attrs, 0, NULL);
    json_t *size = json_object_get(a, "size");
    const char *host = json_string_value(json_object_get(a, "host"));

    memset(it, 0, sizeof(*it));
    snprintf(it->id, sizeof(it->id), "%s", res->id);
    snprintf(it->state, sizeof(it->state), "%s", res->state);
    snprintf(it->op, sizeof(it->op), "%s", res->op);
    snprintf(it->owner, sizeof(it->owner), "%s", res->owner);
    snprintf(it->host, sizeof(it->host), "%s", host ? host : "");
    it->size = json_is_integer(size) ? json_integer_value(size) : -1;
    it->located = json_is_string(json_object_get(a, "provider_location"));
    it->source_kind = -1;
    if (json_is_string(json_object_get(a, "snapshot_id"))) {
        it->source_kind = 1;
        snprintf(it->source, sizeof(it->source), "%s",
                 json_string_value(json_object_get(a, "snapshot_id")));
    } else if (json_is_string(json_object_get(a, "source_volid"))) {
        it->source_kind = 0;
        snprintf(it->source, sizeof(it->source), "%s",
                 json_string_value(json_object_get(a, "source_volid")));
    }
    it->version = res->version;
    it->updated = res->updated;
    json_decref(a);
}

static int collect(void *arg, const struct vse_resource *res)
{
    struct items *l = arg;

    if (vse__array_reserve(l, l->n + 1) < 0)
        return 1;
    item_of(res, &l->v[l->n++]);
    return 0;
}

static int by_id(const void *key, const void *elem)
{
    return strcmp(key, ((const struct item *)elem)->id);
}

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->id, ((const struct item *)b)->id);
}

/* The pool of `host` among the --pool options, or NULL. */
static const struct vsed_driver *pool_of(const struct check_pool *p, int n,
                                         const char *host)
{
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].host, host) == 0)
            return &p[i].drv;
    return NULL;
}

/* 1 if the row changed since it was listed: a live store moved on, and
 * what was seen is no evidence of a violation. */
static int moved_on(struct run *r, const struct item *it)
{
    struct vse_resource cur;
    struct vse_error err;

    vse_error_clear(&err);
    if (vse_get(r->db, it->id, &cur, &err) < 0)
        return 1;
    return cur.version != it->version;
}

/*
 * A volume at rest in available or in-use, or a snapshot available, has
 * exactly one file: in its host's pool, of its size (volumes; a snapshot
 * may copy a volume whose extend overlapped it, so its size is not
 * checked), and in no other pool given.
 */
static void check_backing(struct run *r, int k, const struct item *it,
                          const struct check_pool *p, int n)
{
    const struct vsed_driver *d = pool_of(p, n, it->host);
    char path[PATH_MAX + 300];
    struct stat st;

    if (strcmp(it->state, "available") != 0 &&
        strcmp(it->state, "in_use") != 0)
        return;
    if (d == NULL)
        return; /* its host's pool was not given: nothing to compare */
    vsed_driver_path(d, machines[k], it->id, path, sizeof(path));
    if (stat(path, &st) != 0) {
        if (!moved_on(r, it))
            violation(r, it->id,
                      "%s is %s on host %s but its file '%s' "
                      "is missing",
                      machines[k], it->state, it->host, path);
    } else if (k == 0 && st.st_size != it->size * VSED_GIB) {
        if (!moved_on(r, it))
            violation(r, it->id,
                      "volume file '%s' is %lld bytes; the "
                      "volume is %lld GiB (%lld bytes)",
                      path, (long long)st.st_size, (long long)it->size,
                      (long long)(it->size * VSED_GIB));
    }
    for (int i = 0; i < n; i++) {
        if (&p[i].drv == d)
            continue;
        vsed_driver_path(&p[i].drv, machines[k], it->id, path, sizeof(path));
        if (stat(path, &st) == 0 && !moved_on(r, it))
            violation(r, it->id,
                      "a second file '%s' in the pool of host "
                      "%s; the %s is on host %s",
                      path, p[i].host, machines[k], it->host);
    }
}

/* Every volume or snapshot file in a pool belongs to a resource of that
 * host that is not deleted. */
static void check_files(struct run *r, const struct check_pool *p)
{
    char kind[16], id[VSE_ID_MAX + 1], path[PATH_MAX + 300];
    struct dirent *e;
    DIR *dir = opendir(p->drv.pool);

    if (dir == NULL) {
        violation(r, "", "cannot read the pool of host %s '%s'", p->host,
                  p->drv.pool);
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        const struct item *it;
        struct vse_resource cur;
        struct vse_error err;
        int k;

        if (vsed_driver_parse(e->d_name, kind, sizeof(kind), id,
                              sizeof(id)) != 0)
            continue; /* in-flight steps' temporary files; not ours */
        k = strcmp(kind, "volume") == 0 ? 0 : 1;
        snprintf(path, sizeof(path), "%s/%s", p->drv.pool, e->d_name);
        it = bsearch(id, r->kind[k].v, r->kind[k].n, sizeof(struct item),
                     by_id);
        /* Read the row now: the file may be newer than the listing. */
        vse_error_clear(&err);
        if (vse_get(r->db, id, &cur, &err) < 0 ||
            strcmp(cur.machine, machines[k]) != 0) {
            violation(r, id,
                      "file '%s' in the pool of host %s has no %s "
                      "in the store",
                      path, p->host, kind);
            continue;
        }
        if (it == NULL || it->version != cur.version) {
            struct item now;

            item_of(&cur, &now);
            if (strcmp(now.state, "deleted") == 0 && now.op[0] == '\0')
                violation(r, id,
                          "file '%s' in the pool of host %s belongs "
                          "to a deleted %s",
                          path, p->host, kind);
            else if (strcmp(now.host, p->host) != 0)
                violation(r, id,
                          "file '%s' is in the pool of host %s; the "
                          "%s is on host '%s'",
                          path, p->host, kind, now.host);
            continue;
        }
        if (strcmp(it->state, "deleted") == 0 && it->op[0] == '\0')
            violation(r, id,
                      "file '%s' in the pool of host %s belongs to a "
                      "deleted %s",
                      path, p->host, kind);
        else if (strcmp(it->host, p->host) != 0)
            violation(r, id,
                      "file '%s' is in the pool of host %s; the %s "
                      "is on host '%s'",
                      path, p->host, kind, it->host);
    }
    closedir(dir);
}

/*
 * Usage and capacity agree.  The store's count is the scheduler's
 * (role-scheduler.c): every volume of the host from the moment it is
 * placed until it is deleted, except a create that failed and removed
 * its file.  On a quiet host (no volume op in flight) it must equal what
 * the volume files in the pool take, and neither may exceed the capacity
 * the host's manager announced in its service row.
 */
static void check_usage(struct run *r, const struct check_pool *p)
{
    char path[PATH_MAX + 300], kind[16], id[VSE_ID_MAX + 1];
    char svc[VSE_ID_MAX + 1];
    int64_t store_gb = 0, pool_gb = 0, cap = 0;
    int quiet = 1;
    struct vse_resource row;
    struct vse_error err;
    struct dirent *e;
    struct stat st;
    DIR *dir;

    for (size_t i = 0; i < r->kind[0].n; i++) {
        const struct item *it = &r->kind[0].v[i];

        if (strcmp(it->host, p->host) != 0)
            continue;
        if (it->op[0] != '\0')
            quiet = 0;
        if (strcmp(it->state, "deleted") != 0 &&
            !(strcmp(it->state, "error") == 0 && !it->located))
            store_gb += it->size > 0 ? it->size : 0;
    }
    dir = opendir(p->drv.pool);
    if (dir == NULL)
        return; /* check_files reported it */
    while ((e = readdir(dir)) != NULL) {
        if (vsed_driver_parse(e->d_name, kind, sizeof(kind), id,
                              sizeof(id)) != 0 ||
            strcmp(kind, "volume") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", p->drv.pool, e->d_name);
        if (stat(path, &st) == 0)
            pool_gb += (st.st_size + VSED_GIB - 1) / VSED_GIB;
    }
    closedir(dir);
    /* Reported under the service row of the host's manager (vsed's
     * service.c): the resource that stands for the host. */
    snprintf(svc, sizeof(svc), "cinder-volume@%s", p->host);
    if (quiet && store_gb != pool_gb)
        violation(r, svc,
                  "host %s: the store counts %lld GiB of volumes "
                  "on it; the volume files in its pool '%s' take %lld GiB",
                  p->host, (long long)store_gb, p->drv.pool,
                  (long long)pool_gb);
    vse_error_clear(&err);
    if (vse_get(r->db, svc, &row, &err) == 0) {
        json_t *a = json_loads(row.attrs, 0, NULL);
        json_t *c = json_object_get(a, "capacity_gb");

        cap = json_is_integer(c) ? json_integer_value(c) : 0;
        json_decref(a);
    }
    if (cap > 0 && (store_gb > cap || pool_gb > cap))
        violation(r, svc,
                  "host %s: volumes take %lld GiB (store) and %lld "
                  "GiB (pool), more than its capacity of %lld GiB",
                  p->host, (long long)store_gb, (long long)pool_gb,
                  (long long)cap);
}

/*
 * A volume made from a snapshot or cloned from a volume, at rest: the
 * scheduler placed it on its source's host, since the driver copies (or
 * reflinks) the source's file within one pool; and Cinder refuses a size
 * below the source's.  Only a snapshot's size is still the one the copy
 * was made from (a source volume may have been extended since).  A
 * source purged since is no evidence.
 */
static void check_clone(struct run *r, const struct item *it)
{
    const struct item *src;

    if (it->source_kind < 0 || it->op[0] != '\0' ||
        (strcmp(it->state, "available") != 0 &&
         strcmp(it->state, "in_use") != 0))
        return;
    src = bsearch(it->source, r->kind[it->source_kind].v,
                  r->kind[it->source_kind].n, sizeof(struct item), by_id);
    if (src == NULL)
        return;
    if (src->host[0] != '\0' && strcmp(src->host, it->host) != 0 &&
        !moved_on(r, it))
        violation(r, it->id,
                  "volume made from %s %s on host %s is on host %s: its "
                  "data is copied within the source's pool",
                  machines[it->source_kind], src->id, src->host, it->host);
    if (it->source_kind == 1 && src->size > 0 && it->size < src->size &&
        !moved_on(r, it))
        violation(r, it->id,
                  "volume of %lld GiB made from %s %s of %lld GiB: a "
                  "copy is never smaller than its source",
                  (long long)it->size, machines[it->source_kind], src->id,
                  (long long)src->size);
}

struct holds {
    struct vse_hold *v;
    size_t n, cap;
};

static int collect_hold(void *arg, const struct vse_hold *h)
{
    struct holds *l = arg;

    if (vse__array_reserve(l, l->n + 1) < 0)
        return 1;
    l->v[l->n++] = *h;
    return 0;
}

static int count_hold(void *arg, const struct vse_hold *h)
{
    (void)h;
    ++*(int *)arg;
    return 0;
}

/*
 * A held volume or snapshot is the source its holder reads (a snapshot's
 * volume, a copy's snapshot or volume): its file is in its host's pool
 * for as long as the hold lasts.  vsectl check verifies the holds
 * themselves (src/lib/check.c); this is what they protect.
 */
static int check_holds(struct run *r, const struct check_pool *p, int n,
                       struct vse_error *err)
{
    struct holds hs = {0};
    int rc = vse_holds(r->db, NULL, NULL, collect_hold, &hs, err);

    for (size_t i = 0; rc == 0 && i < hs.n; i++) {
        const struct vse_hold *h = &hs.v[i];
        const struct vsed_driver *d;
        const struct item *it = NULL;
        char path[PATH_MAX + 300], since[40];
        struct vse_error e;
        struct stat st;
        int k, still = 0;

        for (k = 0; k < 2 && it == NULL; k++)
            it = bsearch(h->held, r->kind[k].v, r->kind[k].n,
                         sizeof(struct item), by_id);
        k--;
        if (it == NULL || (d = pool_of(p, n, it->host)) == NULL)
            continue;
        vsed_driver_path(d, machines[k], it->id, path, sizeof(path));
        if (stat(path, &st) == 0)
            continue;
        /* Read again: the hold may have ended and its resource gone. */
        vse_error_clear(&e);
        if (vse_holds(r->db, h->held, h->holder, count_hold, &still, &e) <
                0 ||
            still == 0 || moved_on(r, it))
            continue;
        vse_time_format(h->since, since, sizeof(since));
        violation(r, it->id,
                  "%s held %s by %s %s (op %s) since %s, but its file '%s' "
                  "is missing on host %s",
                  machines[k], vse_hold_mode_name(h->mode), h->machine,
                  h->holder, h->op, since, path, it->host);
    }
    free(hs.v);
    return rc;
}

/* A busy volume or snapshot whose last transition is older than the
 * limit: nobody is carrying its op on, and the reaper did not either. */
static void check_stuck(struct run *r, int k, const struct item *it,
                        int64_t stuck_ms, int64_t now)
{
    char since[40];

    if (it->op[0] == '\0' || now - it->updated <= stuck_ms * 1000)
        return;
    if (moved_on(r, it))
        return;
    vse_time_format(it->updated, since, sizeof(since));
    violation(r, it->id,
              "%s busy in %s (op %s, owner %s) since %s: "
              "%.1f s, longer than %.1f s",
              machines[k], it->state, it->op,
              it->owner[0] ? it->owner : "none", since,
              (double)(now - it->updated) / 1e6, (double)stuck_ms / 1000.0);
}

int check_pools(vse_db *db, const struct check_pool *pools, int npools,
                int64_t stuck_ms, vse_violation_fn cb, void *ctx,
                int64_t *count, struct vse_error *err)
{
    struct run r;
    struct vse_filter f;
    int64_t now = vse_now_us();
    int rc = 0;

    memset(&r, 0, sizeof(r));
    r.db = db;
    r.cb = cb;
    r.ctx = ctx;
    for (int k = 0; k < 2 && rc == 0; k++) {
        memset(&f, 0, sizeof(f));
        f.machine = machines[k];
        rc = vse_list(db, &f, collect, &r.kind[k], err);
        /* A store lists in its own collation's order: sort for bsearch. */
        if (r.kind[k].n > 0)
            qsort(r.kind[k].v, r.kind[k].n, sizeof(struct item), cmp_items);
    }
    for (int k = 0; k < 2 && rc == 0; k++)
        for (size_t i = 0; i < r.kind[k].n; i++) {
            check_backing(&r, k, &r.kind[k].v[i], pools, npools);
            if (k == 0)
                check_clone(&r, &r.kind[k].v[i]);
            if (stuck_ms > 0)
                check_stuck(&r, k, &r.kind[k].v[i], stuck_ms, now);
        }
    if (rc == 0)
        rc = check_holds(&r, pools, npools, err);
    for (int i = 0; i < npools && rc == 0; i++) {
        check_files(&r, &pools[i]);
        check_usage(&r, &pools[i]);
    }
    free(r.kind[0].v);
    free(r.kind[1].v);
    *count = r.count;
    return rc;
}
