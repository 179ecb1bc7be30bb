/*
 * role-volume.c - the volume manager of one host: ops in flight, released
 * by the scheduler or the API, on volumes and snapshots whose attrs.host
 * is this host are its queue.  It claims one, runs its tasks (each with
 * an execute and a revert, as taskflow), and finishes it; on failure it
 * reverts what was done, in reverse, and fails the op.  Each start, done
 * and revert is a history row, so `vsectl watch` shows the flow.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "util.h"
#include "names.h"
#include "vsed.h"

#define RESCAN_MS 5000
#define ERR_SIZE 512

struct job {
    vse_db *db;
    const struct vsed_driver *drv;
    struct vse_resource row; /* as claimed */
    json_t *attrs;
    char err[ERR_SIZE];
    const char *success;    /* rest state to finish in */
    char *done_attrs;       /* patch written with the finish */
    const char *fail_attrs; /* patch written with the fail */
    int reschedule;         /* a failed first task hands the op back to
                               the schedulers (create's capacity check) */
    int64_t reserved_gb;    /* counted in `reserved` until the job ends */
};

struct task {
    const char *name;
    int (*execute)(struct job *j);
    void (*revert)(struct job *j); /* NULL: nothing to undo */
    /* Only reads (the capacity check): it may run before the claim, so
     * that the claim is the fence right before the driver writes. */
    int before_claim;
};

/* ---- tasks -------------------------------------------------------------- */

/* The job's failure reason (its history row's) from a driver error:
 * "cannot create '/pool/volume-x': No space left on device". */
static int driver_failed(struct job *j, const struct vse_error *e)
{
    if (e->detail[0] != '\0')
        snprintf(j->err, sizeof(j->err), "%s: %s", e->msg, e->detail);
    else
        snprintf(j->err, sizeof(j->err), "%s", e->msg);
    return -1;
}

/*
 * What the jobs of this process have found room for and not yet written
 * (--volume-workers): the pool's files do not show it yet, and two jobs
 * checking at once must not both take the last free GiB.
 */
static pthread_mutex_t reserve_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t reserved;

/*
 * Listing the pool and stat-ing every file took 4.5 ms per create with a
 * thousand volumes, growing with the pool, and every job waited for it.
 * The count is taken again when it is older than SCAN_MS; meanwhile what
 * this process's jobs wrote since is added to it (`written`), so that it
 * never counts less than the pool holds because of us.  Deletes make it
 * count more than the pool holds until the next scan: on the safe side.
 * Other processes writing to the same pool were never seen before their
 * files were (the check and the write are not one step across
 * processes); they are now seen up to SCAN_MS later.
 */
#define SCAN_MS 500
static int64_t scanned_gb, scanned_at, written;

static int pool_used(const struct vsed_driver *d, int64_t *used,
                     struct vse_error *e)
{
    int64_t now = vse__now_mono_ms();

    if (scanned_at == 0 || now - scanned_at >= SCAN_MS) {
        if (vsed_driver_used_gb(d, &scanned_gb, e) < 0) {
            scanned_at = 0;
            return -1;
        }
        scanned_at = now;
        written = 0;
    }
    *used = scanned_gb + written;
    return 0;
}

/* The pool's own count is the truth on this host: the scheduler's view
 * may be stale when several schedulers pick at once. */
static int fits(struct job *j, int64_t want)
{
    char path[PATH_MAX + 300];
    struct stat st;
    int64_t used = 0, mine = 0, held;
    struct vse_error e;

    vse_error_clear(&e);
    pthread_mutex_lock(&reserve_mu);
    if (pool_used(j->drv, &used, &e) < 0) {
        pthread_mutex_unlock(&reserve_mu);
        return driver_failed(j, &e);
    }
    vsed_driver_path(j->drv, "volume", j->row.id, path, sizeof(path));
    if (stat(path, &st) == 0)
        mine = (st.st_size + VSED_GIB - 1) / VSED_GIB;
    held = reserved;
    if (used - mine + want + held > j->drv->capacity_gb) {
        pthread_mutex_unlock(&reserve_mu);
        snprintf(j->err, sizeof(j->err),
                 "pool '%s' has %lld of %lld GiB "
                 "free; %lld needed",
                 j->drv->pool,
                 (long long)(j->drv->capacity_gb - used + mine - held),
                 (long long)j->drv->capacity_gb, (long long)want);
        return -1;
    }
    reserved += want;
    j->reserved_gb = want;
    pthread_mutex_unlock(&reserve_mu);
    return 0;
}

/* The job's writes are done (or will not happen): until the next scan
 * sees them, they count as written. */
static void unreserve(struct job *j)
{
    pthread_mutex_lock(&reserve_mu);
    reserved -= j->reserved_gb;
    written += j->reserved_gb;
    j->reserved_gb = 0;
    pthread_mutex_unlock(&reserve_mu);
}

/* The job was not ours after all (its claim was refused): nothing was
 * written for it. */
static void unreserve_unused(struct job *j)
{
    pthread_mutex_lock(&reserve_mu);
    reserved -= j->reserved_gb;
    j->reserved_gb = 0;
    pthread_mutex_unlock(&reserve_mu);
}

static int check_create(struct job *j)
{
    return fits(j, vsed_attr_int(j->attrs, "size", 1));
}

static int check_extend(struct job *j)
{
    return fits(j, vsed_attr_int(j->attrs, "new_size", 0));
}

static int do_create(struct job *j)
{
    char path[PATH_MAX + 300];
    struct vse_error e;

    vse_error_clear(&e);
    if (vsed_driver_create(j->drv, j->row.id,
                           vsed_attr_int(j->attrs, "size", 1), &e) < 0)
        return driver_failed(j, &e);
    vsed_driver_path(j->drv, "volume", j->row.id, path, sizeof(path));
    j->done_attrs = vsed_json_text(
        json_pack("{s:s}", "provider_location", path));
    return 0;
}

/* A volume made from a snapshot or cloned from a volume: the source's
 * file is in this pool, since the scheduler placed the volume on the
 * source's host (role-scheduler.c). */
static int do_copy(struct job *j)
{
    char path[PATH_MAX + 300];
    const char *snap = vsed_attr_str(j->attrs, "snapshot_id");
    const char *vol = vsed_attr_str(j->attrs, "source_volid");
    int reflinked = 0;
    struct vse_error e;

    vse_error_clear(&e);
    if (snap[0] == '\0' && vol[0] == '\0') {
        snprintf(j->err, sizeof(j->err),
                 "no snapshot_id or source_volid in attrs");
        return -1;
    }
    if (vsed_driver_copy(j->drv, snap[0] ? "snapshot" : "volume",
                         snap[0] ? snap : vol, "volume", j->row.id,
                         vsed_attr_int(j->attrs, "size", 1), &reflinked,
                         &e) < 0)
        return driver_failed(j, &e);
    vsed_driver_path(j->drv, "volume", j->row.id, path, sizeof(path));
    j->done_attrs = vsed_json_text(json_pack(
        "{s:s, s:b}", "provider_location", path, "reflinked", reflinked));
    return 0;
}

static void undo_create(struct job *j)
{
    vsed_driver_delete(j->drv, "volume", j->row.id, NULL);
}

static int do_extend(struct job *j)
{
    int64_t gb = vsed_attr_int(j->attrs, "new_size", 0);
    struct vse_error e;

    vse_error_clear(&e);
    if (gb <= 0) {
        snprintf(j->err, sizeof(j->err), "no new_size in attrs");
        return -1;
    }
    if (vsed_driver_extend(j->drv, j->row.id, gb, &e) < 0)
        return driver_failed(j, &e);
    j->done_attrs = vsed_json_text(
        json_pack("{s:I, s:n}", "size", (json_int_t)gb, "new_size"));
    return 0;
}

static int do_delete(struct job *j)
{
    struct vse_error e;

    vse_error_clear(&e);
    if (vsed_driver_delete(j->drv, "volume", j->row.id, &e) < 0)
        return driver_failed(j, &e);
    j->done_attrs = vsed_json_text(json_pack("{s:n}", "provider_location"));
    return 0;
}

static int do_snapshot(struct job *j)
{
    char path[PATH_MAX + 300];
    int reflinked = 0;
    struct vse_error e;

    vse_error_clear(&e);
    if (vsed_driver_snapshot(j->drv, vsed_attr_str(j->attrs, "volume_id"),
                             j->row.id, &reflinked, &e) < 0)
        return driver_failed(j, &e);
    vsed_driver_path(j->drv, "snapshot", j->row.id, path, sizeof(path));
    j->done_attrs = vsed_json_text(json_pack(
        "{s:s, s:b}", "provider_location", path, "reflinked", reflinked));
    return 0;
}

static void undo_snapshot(struct job *j)
{
    vsed_driver_delete(j->drv, "snapshot", j->row.id, NULL);
}

static int do_delete_snapshot(struct job *j)
{
    struct vse_error e;

    vse_error_clear(&e);
    if (vsed_driver_delete(j->drv, "snapshot", j->row.id, &e) < 0)
        return driver_failed(j, &e);
    return 0;
}

static const struct task create_volume[] = {
    {"create_volume.check_capacity", check_create, NULL, 1},
    {"create_volume.driver_create", do_create, undo_create, 0}};
static const struct task create_volume_copy[] = {
    {"create_volume.check_capacity", check_create, NULL, 1},
    {"create_volume.driver_copy", do_copy, undo_create, 0}};
static const struct task extend_volume[] = {
    {"extend_volume.check_capacity", check_extend, NULL, 1},
    {"extend_volume.driver_extend", do_extend, NULL, 0}};
static const struct task delete_volume[] = {
    {"delete_volume.driver_delete", do_delete, NULL, 0}};
static const struct task create_snapshot[] = {
    {"create_snapshot.driver_copy", do_snapshot, undo_snapshot, 0}};
static const struct task delete_snapshot[] = {
    {"delete_snapshot.driver_delete", do_delete_snapshot, NULL, 0}};

/* ---- running a flow ----------------------------------------------------- */

/*
 * A history row for a task event that is not a transition of its own.
 * It is a renew under the op's token, not an update: a manager that was
 * stopped past its lease and woken again is fenced here, before its next
 * task touches the pool, and writes nothing; and each task boundary
 * extends the lease.  -1 when the op is no longer ours.
 */
static int note(struct job *j, const char *reason, const char *patch)
{
    struct vse_error err;
    struct vse_opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    o.reason = reason;
    o.attrs = patch;
    o.ttl_ms = vsed_cfg->lease_ms;
    vse_error_clear(&err);
    rc = vse_renew(j->db, j->row.id, j->row.op_id, &o, NULL, &err);
    if (rc == VSE_EFENCED || rc == VSE_ECONFLICT || rc == VSE_ENOTFOUND) {
        vsed_log("volume: %s: %s: refused, the op is no longer ours: %s",
                 j->row.id, reason, err.msg);
        return -1;
    }
    if (rc < 0)
        vsed_log("volume: %s: %s: %s", j->row.id, reason, err.msg);
    return 0;
}

/*
 * The machine's reschedule edge (creating_vol -> scheduling): this host
 * cannot take the volume after all (another scheduler filled it), so the
 * schedulers pick again, without this host.
 */
static void reschedule(struct job *j, const char *task)
{
    char reason[VSE_REASON_MAX + 1], *patch;
    json_t *ex = json_deep_copy(json_object_get(j->attrs, "excluded_hosts"));
    struct vse_error err;
    struct vse_opts o;

    if (!json_is_array(ex)) {
        json_decref(ex);
        ex = json_array();
    }
    json_array_append_new(ex, json_string(vsed_cfg->host));
    patch = vsed_json_text(
        json_pack("{s:n, s:o}", "host", "excluded_hosts", ex));
    snprintf(reason, sizeof(reason),
             "task %s: failed: %s; rescheduled "
             "without host %s",
             task, j->err, vsed_cfg->host);
    memset(&o, 0, sizeof(o));
    o.reason = reason;
    o.attrs = patch;
    o.release = 1;
    vse_error_clear(&err);
    if (vse_step(j->db, j->row.id, j->row.op_id, VOLUME_SCHEDULING, &o, NULL,
                 &err) < 0) {
        vsed_log("volume: %s: reschedule: %s", j->row.id, err.msg);
    } else {
        char path[PATH_MAX + 300];

        vsed_log("volume: %s: %s", j->row.id, reason);
        /* The volume leaves this host, which is now excluded: a file of
         * it here is what an earlier attempt on this host left (a manager
         * killed between its copy and its finish), and nothing else
         * would ever remove it. */
        vsed_driver_path(j->drv, "volume", j->row.id, path, sizeof(path));
        if (access(path, F_OK) == 0 &&
            vsed_driver_delete(j->drv, "volume", j->row.id, NULL) == 0)
            vsed_log("volume: %s: removed %s, left by an earlier attempt",
                     j->row.id, path);
    }
    free(patch);
}

/*
 * Our finish was fenced: the lease ran out, or an operator reset the
 * resource (os-force_delete fences a create in flight, then deletes).
 * What this step made (only creates make anything: a file) stays when
 * the resource still wants it: while another worker carries the same op
 * on (a claim gives it a new op_id but keeps its start, `since`), and
 * once any op recorded the file as the resource's (provider_location):
 * the volume may have been finished, then extended or attached, since.
 * It goes when nobody will use it: the resource is deleted, being
 * deleted or gone, or the op ended without a file (the reaper failed
 * it), so that no file outlives its volume.
 */
#define FENCED_READS 10
static void fenced(struct job *j, const struct task *t, int n,
                   const char *why)
{
    struct vse_resource cur;
    struct vse_error err;
    int rc;

    vsed_log("volume: %s: %s", j->row.id, why);
    /* What to do with the file depends on the row: a store that is away
     * for a moment must not leave a file behind for good. */
    for (int attempt = 0;; attempt++) {
        vse_error_clear(&err);
        rc = vse_get(j->db, j->row.id, &cur, &err);
        if (rc >= 0 || rc == VSE_ENOTFOUND)
            break;
        vsed_log("volume: %s: fenced: cannot read the row%s: %s", j->row.id,
                 attempt < FENCED_READS
                     ? ", trying again"
                     : "; the file "
                       "stays (vsectl check --pool names it)",
                 err.msg);
        if (attempt == FENCED_READS)
            return;
        nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
    }
    if (rc == VSE_ENOTFOUND) {
        snprintf(cur.state, sizeof(cur.state), "gone");
    } else if (strcmp(cur.state, "deleted") != 0 &&
               strcmp(cur.op, "delete") != 0) {
        json_t *a = vsed_attrs(&cur);
        const char *pl = json_string_value(
            json_object_get(a, "provider_location"));
        int vol = strcmp(cur.machine, VSED_MACHINE_VOLUME) == 0;
        /* A volume's op goes on here only while the row names this host:
         * one rescheduled away (its host cleared) owns nothing in this
         * pool, and would leave the file behind for good. */
        int here = !vol ||
                   strcmp(vsed_attr_str(a, "host"), vsed_cfg->host) == 0;
        char mine[PATH_MAX + 300];
        int located;

        vsed_driver_path(j->drv, "volume", j->row.id, mine, sizeof(mine));
        located = pl != NULL && (!vol || strcmp(pl, mine) == 0);
        json_decref(a);
        if (located || (here && strcmp(cur.op, j->row.op) == 0 &&
                        cur.since == j->row.since)) {
            vsed_log("volume: %s: now %s%s%s: the file stays (%s)", j->row.id,
                     cur.state, cur.op[0] ? ", op " : "", cur.op,
                     located ? "the row records it" : "the op goes on");
            return;
        }
    }
    for (int k = n - 1; k >= 0; k--)
        if (t[k].revert != NULL)
            t[k].revert(j);
    vsed_log("volume: %s: now %s: what the fenced step made is removed",
             j->row.id, cur.state);
}

/* Tasks before `first` ran before the claim, and task `first`'s start is
 * the claim's own history row. */
static void run_flow(struct job *j, const struct task *t, int n, int first)
{
    char reason[VSE_REASON_MAX + 1], reverted[400] = "";
    struct vse_error err;
    struct vse_opts o;
    int i, rc;
    size_t len = 0;

    for (i = first; i < n; i++) {
        if (i > first) {
            snprintf(reason, sizeof(reason), "task %s: start", t[i].name);
            if (note(j, reason, "{\"task\":null}") < 0) {
                /* Fenced between tasks: undo what ran, unless another
                 * worker carries the op on (fenced() decides). */
                fenced(j, t, i, "fenced between tasks");
                return;
            }
        }
        if (t[i].execute(j) != 0)
            break;
    }
    memset(&o, 0, sizeof(o));
    o.seen = &j->row;
    vse_error_clear(&err);
    if (i == n) {
        snprintf(reason, sizeof(reason), "task %s: done", t[n - 1].name);
        o.reason = reason;
        o.attrs = j->done_attrs;
        rc = vse_finish(j->db, j->row.id, j->row.op_id, j->success, &o, NULL,
                        &err);
        if (rc == VSE_EFENCED || rc == VSE_ENOTFOUND) {
            char why[VSE_ERROR_MSG_SIZE + 32];

            snprintf(why, sizeof(why), "finish refused: %s", err.msg);
            fenced(j, t, n, why);
        } else if (rc < 0)
            vsed_log("volume: %s: finish: %s", j->row.id, err.msg);
        return;
    }
    if (i == 0 && j->reschedule) {
        reschedule(j, t[0].name);
        return;
    }
    /* Undo what was done, last first, each one recorded. */
    for (int k = i - 1; k >= 0; k--) {
        if (t[k].revert == NULL)
            continue;
        t[k].revert(j);
        snprintf(reason, sizeof(reason), "task %s: reverted", t[k].name);
        note(j, reason, "{\"provider_location\":null}");
        len += (size_t)snprintf(reverted + len,
                                len < sizeof(reverted)
                                    ? sizeof(reverted) - len
                                    : 0,
                                " %s", t[k].name);
    }
    snprintf(reason, sizeof(reason), "task %s: failed: %s%s%s", t[i].name,
             j->err, reverted[0] ? "; reverted:" : "", reverted);
    o.reason = reason;
    o.attrs = j->fail_attrs;
    rc = vse_fail(j->db, j->row.id, j->row.op_id, &o, NULL, &err);
    vsed_log("volume: %s: %s", j->row.id, reason);
    if (rc < 0)
        vsed_log("volume: %s: fail: %s", j->row.id, err.msg);
}

/* ---- local locks (--coordination local-locks) --------------------------- */

/*
 * The approach vse replaces, for comparison: each manager function runs
 * under an exclusive file lock named after the volume and the function,
 * as Cinder's `@synchronized('{volume_id}-delete_volume', external=True)`
 * does.  The lock holds on this host only, and only against the same
 * function on the same volume: a delete and an extend of one volume, or
 * two hosts, do not see each other's locks.
 */
int vsed_locks_init(const char *dir, char *err, size_t size)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, size, "cannot create lock directory '%s': %s", dir,
                 strerror(errno));
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(err, size, "lock directory '%s' is not writable: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* The lock's descriptor, -1 if it cannot be taken (logged; the function
 * then runs unlocked: the comparison is about what the lock cannot see,
 * not about a lock directory gone missing). */
static int local_lock(const char *id, const char *function)
{
    char path[2048];
    int fd;

    snprintf(path, sizeof(path), "%s/vse-%s-%s", vsed_cfg->lock_dir, id,
             function);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        vsed_log("volume: %s: cannot lock '%s': %s", id, path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void local_unlock(int fd)
{
    if (fd < 0)
        return;
    flock(fd, LOCK_UN);
    close(fd);
}

struct mgr {
    vse_db *db;
    struct vsed_driver drv;
    char owner[VSE_ID_MAX + 1];
    VSE_ARRAY(struct vse_resource) rows; /* this host's, by one scan */
};

static int collect(void *arg, const struct vse_resource *r)
{
    struct mgr *m = arg;
    json_t *a;
    int mine;

    if (r->owner[0] != '\0')
        return 0;
    a = vsed_attrs(r);
    mine = strcmp(vsed_attr_str(a, "host"), vsed_cfg->host) == 0;
    json_decref(a);
    if (!mine)
        return 0;
    return vse__array_push(&m->rows, *r) < 0 ? 1 : 0;
}

static void work(struct mgr *m, const struct vse_resource *r)
{
    const struct task *t = NULL;
    struct job j;
    struct vse_error err;
    struct vse_opts o;
    char reason[VSE_REASON_MAX + 1];
    int n = 0, first = 0, fd = -1;
    int vol = strcmp(r->machine, VSED_MACHINE_VOLUME) == 0;

    memset(&j, 0, sizeof(j));
    if (vol && strcmp(r->state, VOLUME_CREATING_VOL) == 0) {
        t = strcmp(r->op, VOLUME_OP_CREATE) == 0 ? create_volume
                                                 : create_volume_copy;
        n = 2;
        j.success = VOLUME_AVAILABLE;
        j.reschedule = 1;
    } else if (vol && strcmp(r->state, VOLUME_EXTENDING) == 0) {
        t = extend_volume;
        n = 2;
        /* extend_in_use ends where it began: attached. */
        j.success = strcmp(r->op, VOLUME_OP_EXTEND_IN_USE) == 0
                        ? VOLUME_IN_USE
                        : VOLUME_AVAILABLE;
        j.fail_attrs = "{\"new_size\":null}";
    } else if (vol && strcmp(r->state, VOLUME_DELETING) == 0) {
        t = delete_volume;
        n = 1;
        j.success = VOLUME_DELETED;
    } else if (!vol && strcmp(r->state, SNAPSHOT_CREATING) == 0) {
        t = create_snapshot;
        n = 1;
        j.success = SNAPSHOT_AVAILABLE;
    } else if (!vol && strcmp(r->state, SNAPSHOT_DELETING) == 0) {
        t = delete_snapshot;
        n = 1;
        j.success = SNAPSHOT_DELETED;
    } else {
        return; /* not a driver step: the API drives attach and detach */
    }
    j.db = m->db;
    j.drv = &m->drv;
    j.row = *r;
    j.attrs = vsed_attrs(r);
    if (vsed_cfg->local_locks) {
        /* "create_volume.check_capacity" -> "create_volume" */
        char fn[64];

        snprintf(fn, sizeof(fn), "%.*s", (int)strcspn(t[0].name, "."),
                 t[0].name);
        fd = local_lock(r->id, fn);
    }
    /*
     * A check that only reads runs before the claim, so that the claim
     * is the fence right before the driver writes and one history row
     * does for both (a create costs one durable commit fewer).  A check
     * that fails is claimed and run again as the flow's first task: the
     * reschedule or the failure is then recorded by the op's owner, as
     * before.
     */
    if (n > 1 && t[0].before_claim && t[0].execute(&j) == 0)
        first = 1;
    memset(&o, 0, sizeof(o));
    o.owner = m->owner;
    o.ttl_ms = vsed_cfg->lease_ms;
    o.seen = r;
    if (first > 0)
        snprintf(reason, sizeof(reason), "task %s: done; task %s: start",
                 t[0].name, t[1].name);
    else
        snprintf(reason, sizeof(reason), "task %s: start", t[0].name);
    o.reason = reason;
    vse_error_clear(&err);
    if (vse_claim(m->db, r->id, r->op_id, &o, &j.row, &err) < 0) {
        /* another manager of this host took it */
        unreserve_unused(&j);
        local_unlock(fd);
        json_decref(j.attrs);
        return;
    }
    json_decref(j.attrs);
    j.attrs = vsed_attrs(&j.row);
    run_flow(&j, t, n, first);
    local_unlock(fd);
    unreserve(&j);
    json_decref(j.attrs);
    free(j.done_attrs);
}

/*
 * --volume-workers N > 1: the scanning thread hands the rows it finds to
 * N worker threads, each with its own store handle and driver, through
 * one queue.  A row queued or being worked is not queued again by a
 * later scan (its claim would only be refused).  Claims still decide:
 * a row another manager of the host took is refused to the worker.
 */
struct job_id {
    char s[VSE_ID_MAX + 1];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    VSE_ARRAY(struct vse_resource) q; /* waiting, oldest first */
    VSE_ARRAY(struct job_id) on;      /* ids queued or being worked */
    int stop;
} wq = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int taken(const char *id)
{
    for (size_t i = 0; i < wq.on.n; i++)
        if (strcmp(wq.on.v[i].s, id) == 0)
            return 1;
    return 0;
}

static void dispatch(const struct vse_resource *r)
{
    pthread_mutex_lock(&wq.mu);
    if (!taken(r->id) && vse__array_push(&wq.q, *r) == 0) {
        struct job_id id;

        snprintf(id.s, sizeof(id.s), "%s", r->id);
        if (vse__array_push(&wq.on, id) == 0)
            pthread_cond_signal(&wq.cv);
        else
            wq.q.n--;
    }
    pthread_mutex_unlock(&wq.mu);
}

static int mgr_open(struct mgr *m)
{
    struct vse_error err;

    vse_error_clear(&err);
    if (vsed_driver_open(&m->drv, vsed_cfg->pool, vsed_cfg->capacity_gb,
                         &err) < 0) {
        vsed_log("volume: %s: %s", err.msg, err.detail);
        return -1;
    }
    vse_error_clear(&err);
    if (vsed_open(vsed_cfg->store, &m->db, &err) < 0) {
        vsed_log("volume: cannot open store: %s", err.msg);
        return -1;
    }
    vsed_owner("volume", m->owner, sizeof(m->owner));
    return 0;
}

static void *worker_main(void *arg)
{
    struct mgr *m = arg;

    pthread_mutex_lock(&wq.mu);
    for (;;) {
        struct vse_resource r;

        while (wq.q.n == 0 && !wq.stop)
            pthread_cond_wait(&wq.cv, &wq.mu);
        if (wq.stop)
            break;
        r = wq.q.v[0];
        memmove(wq.q.v, wq.q.v + 1, (wq.q.n - 1) * sizeof(*wq.q.v));
        wq.q.n--;
        pthread_mutex_unlock(&wq.mu);
        work(m, &r);
        pthread_mutex_lock(&wq.mu);
        for (size_t i = 0; i < wq.on.n; i++)
            if (strcmp(wq.on.v[i].s, r.id) == 0) {
                wq.on.v[i] = wq.on.v[--wq.on.n];
                break;
            }
    }
    pthread_mutex_unlock(&wq.mu);
    return NULL;
}

static void pass(struct mgr *m, int pooled)
{
    static const char *const machines[] = {VSED_MACHINE_VOLUME,
                                           VSED_MACHINE_SNAPSHOT};
    struct vse_filter f;
    struct vse_error err;

    m->rows.n = 0;
    for (int i = 0; i < 2; i++) {
        memset(&f, 0, sizeof(f));
        f.machine = machines[i];
        f.busy = 1;
        vse_error_clear(&err);
        if (vse_list(m->db, &f, collect, m, &err) < 0)
            vsed_log("volume: %s", err.msg);
    }
    for (size_t i = 0; i < m->rows.n; i++) {
        if (pooled)
            dispatch(&m->rows.v[i]);
        else
            work(m, &m->rows.v[i]);
    }
}

void *vsed_volume_main(void *arg)
{
    static const char *const wake[] = {VOLUME_CREATING_VOL, VOLUME_EXTENDING,
                                       VOLUME_DELETING, SNAPSHOT_CREATING,
                                       NULL};
    const atomic_int *stop = arg;
    int nw = vsed_cfg->volume_workers > 1 ? vsed_cfg->volume_workers : 0;
    struct mgr *m = calloc((size_t)nw + 1, sizeof(*m));
    pthread_t *tid = calloc((size_t)nw + 1, sizeof(*tid));
    struct vse_error err;
    int64_t seq = 0;
    int started = 0;

    if (m == NULL || tid == NULL || mgr_open(&m[0]) < 0) {
        if (m != NULL && m[0].db != NULL)
            vsed_close(m[0].db);
        free(m);
        free(tid);
        return NULL;
    }
    for (; started < nw; started++)
        if (mgr_open(&m[started + 1]) < 0 ||
            pthread_create(&tid[started], NULL, worker_main,
                           &m[started + 1]) != 0)
            break;
    vse_error_clear(&err);
    vse_last_seq(m[0].db, &seq, &err);
    if (started > 0)
        vsed_log("volume: host %s, pool %s, %lld GiB, running as %s, with "
                 "%d workers",
                 vsed_cfg->host, m[0].drv.pool,
                 (long long)m[0].drv.capacity_gb, m[0].owner, started);
    else
        vsed_log("volume: host %s, pool %s, %lld GiB, running as %s",
                 vsed_cfg->host, m[0].drv.pool,
                 (long long)m[0].drv.capacity_gb, m[0].owner);
    while (!atomic_load(stop)) {
        pass(&m[0], started > 0);
        vsed_wait_for(m[0].db, &seq, wake, RESCAN_MS, stop);
    }
    pthread_mutex_lock(&wq.mu);
    wq.stop = 1;
    pthread_cond_broadcast(&wq.cv);
    pthread_mutex_unlock(&wq.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i <= nw; i++) {
        vse__array_release(&m[i].rows);
        if (m[i].db != NULL)
            vsed_close(m[i].db);
    }
    vse__array_release(&wq.q);
    vse__array_release(&wq.on);
    free(m);
    free(tid);
    return NULL;
}
