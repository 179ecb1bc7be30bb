/*
 * cinder.h - what the files of the Cinder v3 API share (cinder.c routes
 * and holds the helpers; cinder-volumes.c, cinder-attachments.c,
 * cinder-snapshots.c and cinder-services.c hold one resource each).
 * Not used outside them: vsed.h has the API's entry points.  Names
 * shared across these files start with cinder_.
 */
#ifndef VSED_CINDER_H
#define VSED_CINDER_H

#include <jansson.h>

#include "names.h"
#include "vsed.h"

#define CINDER_MV_MIN 0  /* 3.0 */
#define CINDER_MV_MAX 70 /* 3.70 */

/* attrs member: true while the volume is `reserved` by the legacy
 * os-reserve, which Cinder shows as `attaching` (cinder_status()). */
#define CINDER_LEGACY_RESERVE "legacy_reserve"

/* One request, as the handlers see it. */
struct cinder_ctx {
    const struct vsed_req *q;
    struct vsed_resp *p;
    int mv; /* negotiated microversion: 3.mv */
    int admin;
    const char *project; /* the caller's project */
    const char *user;
    char url_project[VSE_ID_MAX + 1];
    char base[512];     /* http://HOST/v3/PROJECT, for links */
    const char *seg[5]; /* path segments after /v3[/PROJECT] */
    char segbuf[1024];
    int nseg;
};

/* ---- cinder.c: answers --------------------------------------------------- */

void cinder_reply(struct cinder_ctx *c, int status, json_t *j);
void cinder_empty(struct cinder_ctx *c, int status);
/* Cinder's fault shape: {"badRequest": {"message": ..., "code": 400}}. */
void cinder_fault(struct cinder_ctx *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A library refusal or failure as Cinder would answer it; `cur` (may be
 * NULL) is the current row the library returned with a refusal. */
void cinder_lib_fault_r(struct cinder_ctx *c, const char *kind,
                        const char *what, int rc, const struct vse_error *err,
                        const struct vse_resource *cur);
void cinder_lib_fault(struct cinder_ctx *c, const char *kind,
                      const char *what, int rc, const struct vse_error *err);
/* A refusal the API makes itself, worded as the library's. */
void cinder_refuse(struct cinder_ctx *c, const char *kind,
                   const struct vse_resource *r, const char *what);

/* ---- cinder.c: shapes and reads ------------------------------------------ */

/* Cinder's time form (no zone suffix); buf needs 32 bytes. */
void cinder_tstamp(int64_t us, char *buf, size_t size);
/* That string, or null for 0. */
json_t *cinder_jtime(int64_t us);
/* The row's Cinder status; "error" when its state shows none;
 * "attaching" for a volume reserved by os-reserve. */
const char *cinder_status(vse_db *db, const struct vse_resource *r);
/* The terminal state of a volume or snapshot row: left out of lists. */
const char *cinder_deleted(const char *machine);
/* A new resource id: a random UUID.  0, or -1 after answering 500. */
int cinder_uuid4(struct cinder_ctx *c, char *buf);
/* A copy of a[key], or dflt (stolen) when absent. */
json_t *cinder_jcopy(const json_t *a, const char *key, json_t *dflt);
json_t *cinder_links(const struct cinder_ctx *c, const char *coll,
                     const char *id);
/* ?all_tenants=1 by an admin. */
int cinder_all_tenants(const struct cinder_ctx *c);
/* The body as a JSON object (in *root, the caller's to decref); NULL
 * after answering 400. */
json_t *cinder_body(struct cinder_ctx *c, json_t **root);
/* 1 if the caller may see a row with attrs a. */
int cinder_owns(const struct cinder_ctx *c, const json_t *a);
/* Read a resource of `machine` the caller may see; -1 after answering. */
int cinder_load(struct cinder_ctx *c, const char *machine, const char *id,
                struct vse_resource *r, json_t **a);
/*
 * The preamble of a create that names a volume in its body
 * ({"MEMBER": {"KEY": "volume id", ...}}): parse the body, require the
 * id, load the volume.  Returns the member object (owned by *root), or
 * NULL after answering the error, with nothing left to free.
 */
json_t *cinder_body_volume(struct cinder_ctx *c, const char *member,
                           const char *key, json_t **root,
                           struct vse_resource *r, json_t **a);

/* ---- cinder-metadata.c ---------------------------------------------------- */

/* Cinder's checks of a metadata object (keys 1-255 characters, values
 * strings of at most 255); 0, or -1 after answering 400. */
int cinder_metadata_check(struct cinder_ctx *c, const json_t *m);
/*
 * One update of resource *r (as read): the members of `extra` (may be
 * NULL) and `meta` (may be NULL) merged into its metadata, or replacing
 * it as a whole (replace: made against r's version, read and made again
 * when it changed meanwhile; 409 when it kept changing).  *r becomes the
 * row as written.  0, or -1 after answering.
 */
int cinder_set_metadata(struct cinder_ctx *c, const char *kind,
                        struct vse_resource *r, const json_t *extra,
                        const json_t *meta, int replace, const char *reason);

/* ---- cinder.c: transitions ----------------------------------------------- */

void cinder_init_opts(struct vse_opts *o, const char *reason);
/* --coordination local-locks: decide against the row this request read. */
void cinder_status_read(struct vse_opts *o, const struct vse_resource *r);
/* 1 if r is at step `st` of op `op`. */
int cinder_is(const struct vse_resource *r, const char *op, const char *st);
/* The rest state of `machine` that shows `status`; 0 or -1. */
int cinder_rest_state_of(vse_db *db, const char *machine, const char *status,
                         char *state, size_t size);

/* ---- lists (cinder-lists.c) and limits' counts (cinder.c) ---------------- */

struct cinder_listing {
    struct cinder_ctx *c;
    json_t *arr;
    const char *machine;
    int detail;
    const char *name, *status, *volume_id; /* filters; NULL: any */
    int all;
    /* limits: what the project holds */
    int64_t volumes, gigabytes, snapshots, snap_gb;
};
/* 1 if row r (attrs a) is live and passes l's project and filters. */
int cinder_list_match(const struct cinder_listing *l,
                      const struct vse_resource *r, const json_t *a);
/* vse_list() callback: count the matching rows into l's totals. */
int cinder_count_one(void *arg, const struct vse_resource *r);
void cinder_list(struct cinder_ctx *c, const char *machine, int detail);

/* ---- the resources ------------------------------------------------------- */

json_t *cinder_volume_json(const struct cinder_ctx *c,
                           const struct vse_resource *r, const json_t *a,
                           int detail);
void cinder_volume_create(struct cinder_ctx *c);
void cinder_volume_show(struct cinder_ctx *c, const char *id);
void cinder_volume_update(struct cinder_ctx *c, const char *id);
/* The PUT both share (cinder-volumes.c): resource `id` updated
 * from body member `member`; 0, or -1 after answering. */
int cinder_update_common(struct cinder_ctx *c, const char *machine,
                         const char *id, const char *member,
                         struct vse_resource *r);
void cinder_volume_delete(struct cinder_ctx *c, const char *id);
void cinder_volume_action(struct cinder_ctx *c, const char *id);
/* /volumes/{id}/metadata[/{key}] and /snapshots/... (cinder-metadata.c);
 * key may be NULL. */
void cinder_metadata(struct cinder_ctx *c, const char *machine,
                     const char *id, const char *key);

/* attrs patch adding one attachment; its new id into id_out. */
char *cinder_new_attachment(const char *server, const char *host,
                            const char *mountpoint, const char *mode,
                            const char *status, const json_t *connector,
                            char *id_out);
void cinder_attachment_create(struct cinder_ctx *c);
void cinder_attachment_list(struct cinder_ctx *c);
void cinder_attachment_show(struct cinder_ctx *c, const char *id);
void cinder_attachment_update(struct cinder_ctx *c, const char *id);
void cinder_attachment_action(struct cinder_ctx *c, const char *id);
void cinder_attachment_delete(struct cinder_ctx *c, const char *id);

json_t *cinder_snapshot_json(const struct cinder_ctx *c,
                             const struct vse_resource *r, const json_t *a,
                             int detail);
void cinder_snapshot_create(struct cinder_ctx *c);
void cinder_snapshot_show(struct cinder_ctx *c, const char *id);
void cinder_snapshot_update(struct cinder_ctx *c, const char *id);
void cinder_snapshot_delete(struct cinder_ctx *c, const char *id);
void cinder_snapshot_action(struct cinder_ctx *c, const char *id);

void cinder_services(struct cinder_ctx *c);
void cinder_limits(struct cinder_ctx *c);
void cinder_zones(struct cinder_ctx *c);

#endif /* VSED_CINDER_H */
