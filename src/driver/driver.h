/*
 * driver.h - the file-backed volume driver of a volume host: a pool
 * directory where a volume is a sparse file of its size and a snapshot a
 * copy of it.  Every call is idempotent, so a step that a new worker
 * resumes after a crash is safe to run again.
 *
 * Errors are vse's: 0, or VSE_EIO with err (may be NULL) saying what
 * could not be done to which file ("cannot create '/pool/volume-x'") and
 * errno's text in its detail.
 */
#ifndef VSE_DRIVER_H
#define VSE_DRIVER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "vse.h"

#define VSED_GIB (INT64_C(1) << 30)

struct vsed_driver {
    char pool[PATH_MAX]; /* absolute path of the pool directory */
    int64_t capacity_gb;
};

/* Make the pool directory if needed and remove temporary files that a
 * process killed mid-step left (one manager per pool owns its temp
 * names). */
int vsed_driver_open(struct vsed_driver *d, const char *pool,
                     int64_t capacity_gb, struct vse_error *err);
/* Fill d to read a pool (vsectl check): unlike vsed_driver_open(), no
 * directory is made and no temporary file removed, since a manager may
 * be using them. */
int vsed_driver_inspect(struct vsed_driver *d, const char *pool,
                        struct vse_error *err);
/* If `name`, a file name in a pool, is a volume's or a snapshot's file,
 * put its kind ("volume", "snapshot") and id into the buffers and return
 * 0; -1 for any other name, temporary files included. */
int vsed_driver_parse(const char *name, char *kind, size_t ksize, char *id,
                      size_t isize);
/* The path of a volume's or a snapshot's file, into buf. */
void vsed_driver_path(const struct vsed_driver *d, const char *kind,
                      const char *id, char *buf, size_t size);
/* Create volume `id` of `gb` GiB (sparse).  Done if it already exists
 * with that size. */
int vsed_driver_create(const struct vsed_driver *d, const char *id,
                       int64_t gb, struct vse_error *err);
/* Grow volume `id` to `gb` GiB; done if it is that large already. */
int vsed_driver_extend(const struct vsed_driver *d, const char *id,
                       int64_t gb, struct vse_error *err);
/* Remove a volume or snapshot file; done if it is gone already. */
int vsed_driver_delete(const struct vsed_driver *d, const char *kind,
                       const char *id, struct vse_error *err);
/* Copy volume `vol` to snapshot `snap` (a reflink where the filesystem
 * can, else a sparse copy); *reflinked tells which. */
int vsed_driver_snapshot(const struct vsed_driver *d, const char *vol,
                         const char *snap, int *reflinked,
                         struct vse_error *err);
/* Copy the file of `src_kind` `src_id` to a new file of `kind` `id` in
 * the same pool, the way vsed_driver_snapshot() does, grown to `gb` GiB
 * if it is smaller (0: the source's size).  A volume made from a snapshot
 * or cloned from a volume.  Done if the new file is in place already. */
int vsed_driver_copy(const struct vsed_driver *d, const char *src_kind,
                     const char *src_id, const char *kind, const char *id,
                     int64_t gb, int *reflinked, struct vse_error *err);
/* GiB the pool's volume files take by their size (not their blocks). */
int vsed_driver_used_gb(const struct vsed_driver *d, int64_t *gb,
                        struct vse_error *err);

#endif /* VSE_DRIVER_H */
