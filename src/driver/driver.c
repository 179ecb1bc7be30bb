/*
 * driver.c - the file-backed pool of a volume host.  Each change is made
 * under a temporary name and renamed into place, so a step killed half
 * way leaves no half-written volume: the final name holds either nothing
 * or the whole result, and a resumed step simply does it again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include "driver.h"
#include "util.h"

#define TMP_PREFIX ".tmp-"

/* VSE_EIO: "cannot WHAT 'PATH'", errno's text in the detail. */
static int fail(struct vse_error *err, const char *what, const char *path)
{
    int saved = errno;

    vse__err(err, VSE_EIO, "cannot %s '%s'", what, path);
    vse__err_detail(err, "%s", strerror(saved));
    return VSE_EIO;
}

void vsed_driver_path(const struct vsed_driver *d, const char *kind,
                      const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s-%s", d->pool, kind, id);
}

int vsed_driver_inspect(struct vsed_driver *d, const char *pool,
                        struct vse_error *err)
{
    memset(d, 0, sizeof(*d));
    if (realpath(pool, d->pool) == NULL)
        return fail(err, "resolve pool directory", pool);
    return 0;
}

int vsed_driver_parse(const char *name, char *kind, size_t ksize, char *id,
                      size_t isize)
{
    static const char *const kinds[] = {"volume", "snapshot"};

    for (int i = 0; i < 2; i++) {
        size_t n = strlen(kinds[i]);

        /* The inverse of vsed_driver_path(): KIND-ID. */
        if (strncmp(name, kinds[i], n) == 0 && name[n] == '-' &&
            name[n + 1] != '\0') {
            snprintf(kind, ksize, "%s", kinds[i]);
            snprintf(id, isize, "%s", name + n + 1);
            return 0;
        }
    }
    return -1;
}

/*
 * A step's temporary file is its process's own (".tmp-PID-KIND-ID"): two
 * managers of one pool may run the same step at once (one stopped past
 * its lease and woken after another took the op over), and with a shared
 * name one would rename the other's half-written file into place.
 */
static void tmp_path(const struct vsed_driver *d, const char *kind,
                     const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/" TMP_PREFIX "%ld-%s-%s", d->pool, (long)getpid(),
             kind, id);
}

/* 1 if the temporary file `name` belongs to a live process of this
 * host, which may still rename it. */
static int tmp_owner_alive(const char *name)
{
    char *end;
    long pid = strtol(name + strlen(TMP_PREFIX), &end, 10);

    if (end == name + strlen(TMP_PREFIX) || *end != '-' || pid <= 0)
        return 0; /* not ours, or from before names carried a pid */
    return pid != (long)getpid() &&
           (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Tests set VSE_DRIVER_PAUSE_MS to hold a step between writing its
 * temporary file and renaming it, so that a kill -9 lands mid-step. */
static void test_pause(void)
{
    const char *s = getenv("VSE_DRIVER_PAUSE_MS");
    long ms = s != NULL ? strtol(s, NULL, 10) : 0;
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

int vsed_driver_open(struct vsed_driver *d, const char *pool,
                     int64_t capacity_gb, struct vse_error *err)
{
    char path[PATH_MAX + 64];
    struct dirent *e;
    DIR *dir;

    memset(d, 0, sizeof(*d));
    if (mkdir(pool, 0750) != 0 && errno != EEXIST)
        return fail(err, "create pool directory", pool);
    if (realpath(pool, d->pool) == NULL)
        return fail(err, "resolve pool directory", pool);
    d->capacity_gb = capacity_gb;
    dir = opendir(d->pool);
    if (dir == NULL)
        return fail(err, "open pool directory", d->pool);
    /* Left by a step killed before its rename: never a volume.  Those of
     * another manager still running on this pool are its own. */
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0 ||
            tmp_owner_alive(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->pool, e->d_name);
        unlink(path);
    }
    closedir(dir);
    return 0;
}

/* Make `path` durable under its name: the file and its directory. */
static int sync_dir(const struct vsed_driver *d)
{
    int fd = open(d->pool, O_RDONLY | O_DIRECTORY);

    if (fd < 0)
        return -1;
    fsync(fd);
    close(fd);
    return 0;
}

int vsed_driver_create(const struct vsed_driver *d, const char *id,
                       int64_t gb, struct vse_error *err)
{
    char path[PATH_MAX + 300], tmp[PATH_MAX + 300];
    struct stat st;
    int fd;

    vsed_driver_path(d, "volume", id, path, sizeof(path));
    if (stat(path, &st) == 0 && st.st_size == gb * VSED_GIB)
        return 0; /* a resumed step: the rename already happened */
    tmp_path(d, "volume", id, tmp, sizeof(tmp));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail(err, "create", tmp);
    if (ftruncate(fd, gb * VSED_GIB) != 0 || fsync(fd) != 0) {
        int rc = fail(err, "size", tmp);

        close(fd);
        unlink(tmp);
        return rc;
    }
    close(fd);
    test_pause();
    if (rename(tmp, path) != 0) {
        int rc = fail(err, "rename into place", path);

        unlink(tmp);
        return rc;
    }
    sync_dir(d);
    return 0;
}

int vsed_driver_extend(const struct vsed_driver *d, const char *id,
                       int64_t gb, struct vse_error *err)
{
    char path[PATH_MAX + 300];
    struct stat st;
    int fd;

    vsed_driver_path(d, "volume", id, path, sizeof(path));
    /* Growing a sparse file in place is atomic: it only sets the size. */
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, "open", path);
    if (fstat(fd, &st) == 0 && st.st_size >= gb * VSED_GIB) {
        close(fd);
        return 0;
    }
    if (ftruncate(fd, gb * VSED_GIB) != 0 || fsync(fd) != 0) {
        int rc = fail(err, "grow", path);

        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

int vsed_driver_delete(const struct vsed_driver *d, const char *kind,
                       const char *id, struct vse_error *err)
{
    char path[PATH_MAX + 300];

    vsed_driver_path(d, kind, id, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        return fail(err, "remove", path);
    sync_dir(d);
    return 0;
}

/* Copy only the data extents, so a sparse volume stays sparse. */
static int sparse_copy(int in, int out, off_t len)
{
    char buf[65536];
    off_t pos = 0;

    while (pos < len) {
        off_t data = lseek(in, pos, SEEK_DATA), hole;

        if (data < 0)
            break; /* ENXIO: only a hole is left */
        hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            return -1;
        while (data < hole) {
            size_t want = (size_t)(hole - data) < sizeof(buf)
                              ? (size_t)(hole - data)
                              : sizeof(buf);
            ssize_t n = pread(in, buf, want, data);

            if (n <= 0 || pwrite(out, buf, (size_t)n, data) != n)
                return -1;
            data += n;
        }
        pos = hole;
    }
    return ftruncate(out, len);
}

int vsed_driver_copy(const struct vsed_driver *d, const char *src_kind,
                     const char *src_id, const char *kind, const char *id,
                     int64_t gb, int *reflinked, struct vse_error *err)
{
    char src[PATH_MAX + 300], path[PATH_MAX + 300], tmp[PATH_MAX + 300];
    struct stat st;
    int in, out, rc;

    *reflinked = 0;
    vsed_driver_path(d, src_kind, src_id, src, sizeof(src));
    vsed_driver_path(d, kind, id, path, sizeof(path));
    if (access(path, F_OK) == 0)
        return 0; /* renamed into place by an earlier try */
    tmp_path(d, kind, id, tmp, sizeof(tmp));
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(err, "open", src);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        close(in);
        return fail(err, "create", tmp);
    }
    if (ioctl(out, FICLONE, in) == 0) {
        *reflinked = 1;
        rc = 0;
    } else {
        rc = fstat(in, &st) == 0 ? sparse_copy(in, out, st.st_size) : -1;
    }
    /* A new volume larger than its source: grown before the rename, so
     * that the file in place always has the volume's size. */
    if (rc == 0 && gb > 0 && fstat(out, &st) == 0 &&
        st.st_size < gb * VSED_GIB)
        rc = ftruncate(out, gb * VSED_GIB);
    if (rc == 0)
        rc = fsync(out);
    if (rc != 0)
        rc = fail(err, "copy to", tmp);
    close(in);
    close(out);
    if (rc == 0) {
        test_pause();
        if (rename(tmp, path) != 0)
            rc = fail(err, "rename into place", path);
    }
    if (rc != 0)
        unlink(tmp);
    else
        sync_dir(d);
    return rc;
}

int vsed_driver_snapshot(const struct vsed_driver *d, const char *vol,
                         const char *snap, int *reflinked,
                         struct vse_error *err)
{
    return vsed_driver_copy(d, "volume", vol, "snapshot", snap, 0, reflinked,
                            err);
}

int vsed_driver_used_gb(const struct vsed_driver *d, int64_t *gb,
                        struct vse_error *err)
{
    char path[PATH_MAX + 300];
    struct dirent *e;
    struct stat st;
    int64_t bytes = 0;
    DIR *dir = opendir(d->pool);

    if (dir == NULL)
        return fail(err, "read pool", d->pool);
    /* Volumes take their size.  So does anything else in the pool that
     * is not ours (another tenant's data, or vse-load's pool-full fault),
     * as it would on a shared volume group; snapshots (reflinks or
     * sparse copies) and a step's temporary file do not count. */
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "snapshot-", 9) == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", d->pool, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            bytes += st.st_size;
    }
    closedir(dir);
    *gb = (bytes + VSED_GIB - 1) / VSED_GIB;
    return 0;
}
