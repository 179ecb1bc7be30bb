/*
 * cinder-metadata.c - metadata of volumes and snapshots: the checks
 * Cinder makes of it, the volume metadata calls (GET, POST, PUT
 * /volumes/{id}/metadata; GET, PUT, DELETE .../metadata/{key}), and the
 * one write the updates share.  Snapshots have the same calls under
 * /snapshots/{id}/metadata, as in Cinder.
 *
 * Metadata lives in the resource's attrs ("metadata": {...}) and changes
 * by vse_update(), whose merge patch the library applies to the row it
 * writes: a merge (POST, PUT of one key, DELETE of one key) never loses a
 * concurrent write.  A replace (PUT of the whole metadata) must remove
 * the keys it does not name, which it reads from the row: it is made
 * only against the version it read (if_version), and read and made
 * again when another write came in between; after CINDER_META_TRIES such
 * races it answers 409 and changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cinder.h"

#define CINDER_META_TRIES 8
#define CINDER_META_LEN 255 /* Cinder's limit on a key and on a value */

int cinder_metadata_check(struct cinder_ctx *c, const json_t *m)
{
    const char *k;
    json_t *v;

    if (!json_is_object(m)) {
        cinder_fault(c, 400,
                     "Invalid input received: metadata must be an object "
                     "of strings");
        return -1;
    }
    json_object_foreach((json_t *)m, k, v) {
        if (k[0] == '\0' || strlen(k) > CINDER_META_LEN) {
            cinder_fault(c, 400,
                         "Invalid input received: metadata key '%.40s%s' "
                         "must be 1 to %d characters long",
                         k, strlen(k) > 40 ? "..." : "", CINDER_META_LEN);
            return -1;
        }
        if (!json_is_string(v) ||
            strlen(json_string_value(v)) > CINDER_META_LEN) {
            cinder_fault(c, 400,
                         "Invalid input received: the value of metadata key "
                         "'%.40s' must be a string of at most %d characters",
                         k, CINDER_META_LEN);
            return -1;
        }
    }
    return 0;
}

int cinder_set_metadata(struct cinder_ctx *c, const char *kind,
                        struct vse_resource *r, const json_t *extra,
                        const json_t *meta, int replace, const char *reason)
{
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    char what[64];
    int rc = 0;

    snprintf(what, sizeof(what), "update the %s", kind);
    for (int attempt = 0; attempt < CINDER_META_TRIES; attempt++) {
        json_t *patch = extra != NULL ? json_deep_copy(extra) : json_object();
        char *text;

        if (meta != NULL && replace) {
            json_t *a = vsed_attrs(r), *m = json_deep_copy(meta), *x;
            const char *k;

            json_object_foreach(json_object_get(a, "metadata"), k, x)
                if (json_object_get(m, k) == NULL)
                    json_object_set_new(m, k, json_null());
            json_decref(a);
            json_object_set_new(patch, "metadata", m);
        } else if (meta != NULL) {
            json_object_set_new(patch, "metadata", json_deep_copy(meta));
        }
        text = vsed_json_text(patch);
        if (text == NULL) {
            cinder_fault(c, 500, "cannot %s: out of memory", what);
            return -1;
        }
        cinder_init_opts(&o, reason);
        o.attrs = text;
        if (meta != NULL && replace)
            o.if_version = r->version;
        vse_error_clear(&err);
        rc = vse_update(c->q->db, r->id, &o, &out, &err);
        free(text);
        if (rc != VSE_EFENCED || !(meta != NULL && replace))
            break;
        /* Another write came in between: decide again against it. */
        if (strcmp(out.state, cinder_deleted(out.machine)) == 0) {
            cinder_fault(c, 404, "%s %s could not be found.", kind, r->id);
            return -1;
        }
        *r = out;
    }
    if (rc == VSE_EFENCED) {
        cinder_fault(c, 409,
                     "cannot %s %s: its metadata changed %d times while "
                     "this replace was being made; nothing was changed, "
                     "try again",
                     what, r->id, CINDER_META_TRIES);
        return -1;
    }
    if (rc < 0) {
        cinder_lib_fault(c, kind, what, rc, &err);
        return -1;
    }
    *r = out;
    return 0;
}

/* {"NAME": metadata of r} */
static void reply_meta(struct cinder_ctx *c, const struct vse_resource *r)
{
    json_t *a = vsed_attrs(r);

    cinder_reply(c, 200,
                 json_pack("{s:o}", "metadata",
                           cinder_jcopy(a, "metadata", json_object())));
    json_decref(a);
}

static void metadata_all(struct cinder_ctx *c, const char *kind,
                         struct vse_resource *r)
{
    int put = strcmp(c->q->method, "PUT") == 0;
    char reason[64];

    json_t *root, *m;

    if (c->q->method[0] == 'G' || c->q->method[0] == 'H') {
        reply_meta(c, r);
        return;
    }
    if (cinder_body(c, &root) == NULL)
        return;
    m = json_object_get(root, "metadata");
    if (m == NULL) {
        json_decref(root);
        cinder_fault(c, 400,
                     "Missing required element 'metadata' in request body.");
        return;
    }
    /* POST merges, PUT replaces, as Cinder's create and update_all. */
    snprintf(reason, sizeof(reason), "%s metadata %s", kind,
             put ? "replaced" : "merged");
    if (cinder_metadata_check(c, m) == 0 &&
        cinder_set_metadata(c, kind, r, NULL, m, put, reason) == 0)
        reply_meta(c, r);
    json_decref(root);
}

static void metadata_key(struct cinder_ctx *c, const char *kind,
                         struct vse_resource *r, const char *key)
{
    char reason[64];

    json_t *a = vsed_attrs(r), *root, *meta, *v;
    const char *k;

    v = json_object_get(json_object_get(a, "metadata"), key);
    if (strcmp(c->q->method, "PUT") != 0 && v == NULL) {
        json_decref(a);
        cinder_fault(c, 404, "%s %s has no metadata with key %s.",
                     kind[0] == 'v' ? "Volume" : "Snapshot", r->id, key);
        return;
    }
    if (c->q->method[0] == 'G' || c->q->method[0] == 'H') {
        cinder_reply(c, 200, json_pack("{s:{s:O}}", "meta", key, v));
        json_decref(a);
        return;
    }
    json_decref(a);
    if (strcmp(c->q->method, "DELETE") == 0) {
        meta = json_pack("{s:n}", key);
        snprintf(reason, sizeof(reason), "%s metadata key deleted", kind);
        if (cinder_set_metadata(c, kind, r, NULL, meta, 0, reason) == 0)
            cinder_empty(c, 200);
        json_decref(meta);
        return;
    }
    if (cinder_body(c, &root) == NULL)
        return;
    meta = json_object_get(root, "meta");
    k = json_is_object(meta) && json_object_size(meta) == 1
            ? json_object_iter_key(json_object_iter(meta))
            : NULL;
    if (!json_is_object(meta))
        cinder_fault(c, 400,
                     "Missing required element 'meta' in request body.");
    else if (json_object_size(meta) != 1)
        cinder_fault(c, 400, "Request body contains too many items.");
    else if (strcmp(k, key) != 0)
        cinder_fault(c, 400, "Request body and URI mismatch");
    else if (cinder_metadata_check(c, meta) == 0) {
        snprintf(reason, sizeof(reason), "%s metadata key set", kind);
        if (cinder_set_metadata(c, kind, r, NULL, meta, 0, reason) == 0)
            cinder_reply(c, 200, json_pack("{s:O}", "meta", meta));
    }
    json_decref(root);
}

void cinder_metadata(struct cinder_ctx *c, const char *machine,
                     const char *id, const char *key)
{
    const char *kind = strcmp(machine, VSED_MACHINE_VOLUME) == 0 ? "volume"
                                                                 : "snapshot";
    struct vse_resource r;
    json_t *a;

    if (cinder_load(c, machine, id, &r, &a) != 0)
        return;
    json_decref(a);
    if (key == NULL)
        metadata_all(c, kind, &r);
    else
        metadata_key(c, kind, &r, key);
}
