/*
 * cinder-volumes.c - the Cinder API's volumes: create, list shapes, show,
 * update, delete, and the volume actions (POST .../action), one table
 * row per action with the microversion it needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cinder.h"

/* A volume's attachments as the volume shows them. */
static json_t *volume_attachments(const struct vse_resource *r,
                                  const json_t *a)
{
    json_t *out = json_array(), *at;
    size_t i;

    json_array_foreach(json_object_get(a, "attachments"), i, at) {
        json_array_append_new(
            out,
            json_pack("{s:O?, s:O?, s:s, s:O?, s:O?, s:O?, s:O?}", "id",
                      json_object_get(at, "id"), "attachment_id",
                      json_object_get(at, "id"), "volume_id", r->id,
                      "server_id", json_object_get(at, "server_id"),
                      "host_name", json_object_get(at, "host_name"), "device",
                      json_object_get(at, "mountpoint"), "attached_at",
                      json_object_get(at, "attached_at")));
    }
    return out;
}

json_t *cinder_volume_json(const struct cinder_ctx *c,
                           const struct vse_resource *r, const json_t *a,
                           int detail)
{
    json_t *v = json_pack("{s:s, s:o, s:o}", "id", r->id, "name",
                          cinder_jcopy(a, "name", json_null()), "links",
                          cinder_links(c, "volumes", r->id));
    const char *bootable;

    if (!detail)
        return v;
    bootable = json_is_true(json_object_get(a, "bootable")) ? "true"
                                                            : "false";
    json_object_set_new(v, "status", json_string(cinder_status(c->q->db, r)));
    json_object_set_new(v, "size", json_integer(vsed_attr_int(a, "size", 0)));
    json_object_set_new(v, "availability_zone",
                        cinder_jcopy(a, "availability_zone",
                                     json_string("nova")));
    json_object_set_new(v, "created_at", cinder_jtime(r->created));
    json_object_set_new(v, "updated_at", cinder_jtime(r->updated));
    json_object_set_new(v, "attachments", volume_attachments(r, a));
    json_object_set_new(v, "description",
                        cinder_jcopy(a, "description", json_null()));
    json_object_set_new(v, "volume_type",
                        cinder_jcopy(a, "volume_type",
                                     json_string("__DEFAULT__")));
    json_object_set_new(v, "snapshot_id",
                        cinder_jcopy(a, "snapshot_id", json_null()));
    json_object_set_new(v, "source_volid", json_null());
    json_object_set_new(v, "metadata",
                        cinder_jcopy(a, "metadata", json_object()));
    json_object_set_new(v, "bootable", json_string(bootable));
    json_object_set_new(v, "encrypted", json_false());
    json_object_set_new(v, "multiattach", json_false());
    json_object_set_new(v, "replication_status", json_null());
    json_object_set_new(v, "consistencygroup_id", json_null());
    json_object_set_new(v, "user_id",
                        cinder_jcopy(a, "user_id", json_null()));
    json_object_set_new(v, "os-vol-tenant-attr:tenant_id",
                        cinder_jcopy(a, "project_id", json_null()));
    json_object_set_new(v, "migration_status", json_null());
    if (c->admin) {
        json_object_set_new(v, "os-vol-host-attr:host",
                            cinder_jcopy(a, "host", json_null()));
        json_object_set_new(v, "os-vol-mig-status-attr:migstat", json_null());
        json_object_set_new(v, "os-vol-mig-status-attr:name_id", json_null());
    }
    /* The keys later microversions add (Cinder's v3 volume view): what
     * vse has no notion of is null, as Cinder shows an unset column. */
    if (c->mv >= 13)
        json_object_set_new(v, "group_id", json_null());
    if (c->mv >= 21 && c->admin)
        json_object_set_new(v, "provider_id", json_null());
    if (c->mv >= 48) {
        /* One host reaches its own files: no target is shared, so a
         * client (os-brick) needs no lock per service. */
        json_object_set_new(v, "shared_targets", json_false());
        json_object_set_new(v, "service_uuid", json_null());
    }
    if (c->mv >= 61 && c->admin)
        json_object_set_new(v, "cluster_name", json_null());
    if (c->mv >= 63)
        json_object_set_new(v, "volume_type_id", json_null());
    if (c->mv >= 65)
        json_object_set_new(v, "consumes_quota", json_true());
    return v;
}

void cinder_volume_create(struct cinder_ctx *c)
{
    json_t *root, *v, *size, *meta;
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    char id[VSE_OPID_LEN + 1], owner[VSE_ID_MAX + 1], *attrs;
    int rc;

    if (cinder_body(c, &root) == NULL)
        return;
    v = json_object_get(root, "volume");
    if (!json_is_object(v)) {
        json_decref(root);
        cinder_fault(c, 400,
                     "Missing required element 'volume' in request body.");
        return;
    }
    size = json_object_get(v, "size");
    if (json_is_string(size))
        size = json_integer(strtoll(json_string_value(size), NULL, 10));
    else
        json_incref(size);
    if (!json_is_integer(size) || json_integer_value(size) < 1 ||
        json_integer_value(size) > INT64_C(1) << 30) {
        json_decref(size);
        json_decref(root);
        cinder_fault(c, 400,
                     "Invalid input received: 'size' must be an integer "
                     "of at least 1 (GiB)");
        return;
    }
    if (json_object_get(v, "snapshot_id") != NULL &&
        !json_is_null(json_object_get(v, "snapshot_id"))) {
        json_decref(size);
        json_decref(root);
        cinder_fault(c, 400,
                     "Invalid input received: creating a volume from a "
                     "snapshot is not supported by vse (docs/volume-api.md)");
        return;
    }
    meta = json_object_get(v, "metadata");
    if ((meta != NULL && !json_is_null(meta) &&
         cinder_metadata_check(c, meta) != 0) ||
        cinder_uuid4(c, id) != 0) {
        json_decref(size);
        json_decref(root);
        return;
    }
    attrs = vsed_json_text(json_pack(
        "{s:O?, s:O?, s:O, s:s, s:s, s:o, s:b, s:s, s:s, s:[]}", "name",
        json_object_get(v, "name"), "description",
        json_object_get(v, "description"), "size", size, "availability_zone",
        "nova", "volume_type",
        json_is_string(json_object_get(v, "volume_type"))
            ? json_string_value(json_object_get(v, "volume_type"))
            : "__DEFAULT__",
        "metadata", json_is_object(meta) ? json_incref(meta) : json_object(),
        "bootable", 0, "project_id", c->project, "user_id", c->user,
        "attachments"));
    json_decref(size);
    json_decref(root);
    if (attrs == NULL) {
        cinder_fault(c, 400, "Invalid input received: bad volume fields");
        return;
    }
    /* creating_db: the API records the volume; then hands it to the
     * schedulers by releasing the op in `scheduling`. */
    vsed_owner("api", owner, sizeof(owner));
    cinder_init_opts(&o, "task create_volume.record: done (api recorded the "
                         "volume)");
    o.owner = owner;
    o.ttl_ms = vsed_cfg->lease_ms;
    o.attrs = attrs;
    vse_error_clear(&err);
    rc = vse_create(c->q->db, VSED_MACHINE_VOLUME, id, &o, &out, &err);
    free(attrs);
    if (rc < 0) {
        cinder_lib_fault(c, "volume", "create the volume", rc, &err);
        return;
    }
    cinder_init_opts(&o,
                     "task create_volume.schedule: queued for a scheduler");
    o.release = 1;
    rc = vse_step(c->q->db, id, out.op_id, VOLUME_SCHEDULING, &o, &out, &err);
    if (rc < 0) {
        cinder_lib_fault(c, "volume", "queue the volume", rc, &err);
        return;
    }
    v = vsed_attrs(&out);
    cinder_reply(c, 202,
                 json_pack("{s:o}", "volume",
                           cinder_volume_json(c, &out, v, 1)));
    json_decref(v);
}

void cinder_volume_show(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    json_t *a;

    if (cinder_load(c, VSED_MACHINE_VOLUME, id, &r, &a) != 0)
        return;
    cinder_reply(c, 200,
                 json_pack("{s:o}", "volume",
                           cinder_volume_json(c, &r, a, 1)));
    json_decref(a);
}

/* PUT /volumes/{id} and /snapshots/{id}: name and description (or the
 * older display_ names), and metadata, replaced as a whole as Cinder
 * replaces it (cinder_set_metadata()).  0, or -1 after answering; *r
 * is the row as written. */
int cinder_update_common(struct cinder_ctx *c, const char *machine,
                         const char *id, const char *member,
                         struct vse_resource *r)
{
    static const char *const keys[] = {"name", "description", "display_name",
                                       "display_description", NULL};
    const char *kind = strcmp(machine, VSED_MACHINE_VOLUME) == 0 ? "volume"
                                                                 : "snapshot";
    json_t *root, *v, *a, *patch, *meta;
    char reason[64];
    int rc;

    if (cinder_load(c, machine, id, r, &a) != 0)
        return -1;
    json_decref(a);
    if (cinder_body(c, &root) == NULL)
        return -1;
    v = json_object_get(root, member);
    if (!json_is_object(v)) {
        json_decref(root);
        cinder_fault(c, 400, "Missing required element '%s' in request body.",
                     member);
        return -1;
    }
    patch = json_object();
    for (int i = 0; keys[i] != NULL; i++) {
        json_t *x = json_object_get(v, keys[i]);

        if (x == NULL)
            continue;
        if (!json_is_string(x) && !json_is_null(x)) {
            json_decref(patch);
            json_decref(root);
            cinder_fault(c, 400,
                         "Invalid input received: %s must be a string",
                         keys[i]);
            return -1;
        }
        json_object_set(patch,
                        strncmp(keys[i], "display_", 8) == 0 ? keys[i] + 8
                                                             : keys[i],
                        x);
    }
    meta = json_object_get(v, "metadata");
    if (json_is_null(meta))
        meta = NULL;
    if (meta != NULL && cinder_metadata_check(c, meta) != 0) {
        json_decref(patch);
        json_decref(root);
        return -1;
    }
    snprintf(reason, sizeof(reason), "%s update", kind);
    rc = cinder_set_metadata(c, kind, r, patch, meta, 1, reason);
    json_decref(patch);
    json_decref(root);
    return rc;
}

void cinder_volume_update(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    json_t *a;

    if (cinder_update_common(c, VSED_MACHINE_VOLUME, id, "volume", &r) != 0)
        return;
    a = vsed_attrs(&r);
    cinder_reply(c, 200,
                 json_pack("{s:o}", "volume",
                           cinder_volume_json(c, &r, a, 1)));
    json_decref(a);
}

/* Snapshots of a volume that still exist: a volume with one is not
 * deleted (Cinder: "Volume still has N dependent snapshots"). */
static int count_snapshots(void *arg, const struct vse_resource *r)
{
    struct cinder_listing *l = arg;
    json_t *a;

    if (strcmp(r->state, SNAPSHOT_DELETED) == 0)
        return 0;
    a = vsed_attrs(r);
    if (strcmp(vsed_attr_str(a, "volume_id"), l->volume_id) == 0)
        l->snapshots++;
    json_decref(a);
    return 0;
}

/* Begin `delete`: handed to the volume's host, or done here when it never
 * got a host (nothing on disk). */
static void volume_delete_row(struct cinder_ctx *c, struct vse_resource *r,
                              const json_t *a)
{
    struct cinder_listing l;
    struct vse_filter f;
    struct vse_error err;
    struct vse_opts o;
    char owner[VSE_ID_MAX + 1];
    int local = 0, rc;

    /* Only the states a snapshot lives in, each an indexed (machine,
     * state) read: deleted snapshots pile up until purge, and scanning
     * them made every delete slower than the last (seen by vse-load). */
    static const char *const live[] = {
        SNAPSHOT_CREATING, SNAPSHOT_AVAILABLE,      SNAPSHOT_DELETING,
        SNAPSHOT_ERROR,    SNAPSHOT_ERROR_DELETING, NULL};

    memset(&l, 0, sizeof(l));
    memset(&f, 0, sizeof(f));
    l.volume_id = r->id;
    f.machine = VSED_MACHINE_SNAPSHOT;
    vse_error_clear(&err);
    rc = 0;
    for (int i = 0; live[i] != NULL && rc == 0; i++) {
        f.state = live[i];
        rc = vse_list(c->q->db, &f, count_snapshots, &l, &err);
    }
    if (rc == 0 && l.snapshots > 0) {
        cinder_fault(c, 400,
                     "Invalid volume: Volume %s still has %lld dependent "
                     "snapshots.",
                     r->id, (long long)l.snapshots);
        return;
    }
    vsed_owner("api", owner, sizeof(owner));
    /* Begun unowned, for the volume's host.  Whether it has a host is read
     * from the row the begin wrote, never from the earlier read (`a`): a
     * create that finished in between has put a file on disk, and a
     * delete done here would leave it there (found by vse-load, #7). */
    cinder_init_opts(&o, "task delete_volume: queued for the host");
    cinder_status_read(&o, r);
    o.ttl_ms = vsed_cfg->lease_ms;
    vse_error_clear(&err);
    rc = vse_begin(c->q->db, r->id, VOLUME_OP_DELETE, &o, r, &err);
    if (rc == 0) {
        json_t *now = vsed_attrs(r);

        local = vsed_attr_str(now, "host")[0] == '\0';
        json_decref(now);
    }
    if (rc == 0 && local) {
        cinder_init_opts(&o, "task delete_volume: start (no host: nothing on "
                             "disk)");
        o.owner = owner;
        o.ttl_ms = vsed_cfg->lease_ms;
        rc = vse_claim(c->q->db, r->id, r->op_id, &o, r, &err);
    }
    if (rc == 0 && local) {
        cinder_init_opts(&o, "task delete_volume: done");
        rc = vse_finish(c->q->db, r->id, r->op_id, VOLUME_DELETED, &o, NULL,
                        &err);
    }
    if (rc < 0) {
        cinder_lib_fault_r(c, "volume", "delete the volume", rc, &err, r);
        return;
    }
    cinder_empty(c, 202);
}

void cinder_volume_delete(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    json_t *a;

    if (cinder_load(c, VSED_MACHINE_VOLUME, id, &r, &a) != 0)
        return;
    volume_delete_row(c, &r, a);
    json_decref(a);
}

static int64_t int_field(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return -1;
}

/* ---- volume actions ---------------------------------------------------- */

/* One POST .../action on a volume, as its handler sees it. */
struct action {
    struct cinder_ctx *c;
    const char *id;
    const char *name;      /* "os-extend" */
    struct vse_resource r; /* the volume as read; then as written */
    json_t *a;             /* its attrs */
    const json_t *val;     /* the body's member for the action */
    struct vse_opts o;     /* reason, and the read for local-locks */
    struct vse_error err;
    char owner[VSE_ID_MAX + 1];
    char reason[VSE_REASON_MAX + 1];
    char *patch; /* freed after the handler */
};

/* What a handler returns: a library code (0: answer 202; < 0: answer
 * the failure), or ANSWERED when it answered itself. */
#define ANSWERED 1

typedef int action_fn(struct action *x);

static int act_extend(struct action *x)
{
    int64_t want = int_field(x->val, "new_size");
    int64_t size = vsed_attr_int(x->a, "size", 0);

    if (want <= size) {
        cinder_fault(x->c, 400,
                     "Invalid input received: New size for "
                     "extend must be greater than current size. (current: "
                     "%lld, extended: %lld).",
                     (long long)size, (long long)want);
        return ANSWERED;
    }
    if (vsed_attr_str(x->a, "host")[0] == '\0') {
        cinder_refuse(x->c, "volume", &x->r, "extend");
        return ANSWERED;
    }
    x->patch = vsed_json_text(
        json_pack("{s:I}", "new_size", (json_int_t)want));
    snprintf(x->reason, sizeof(x->reason),
             "task extend_volume: queued for "
             "host %s (%lld -> %lld GiB)",
             vsed_attr_str(x->a, "host"), (long long)size, (long long)want);
    x->o.attrs = x->patch;
    return vse_begin(x->c->q->db, x->id, VOLUME_OP_EXTEND, &x->o, &x->r,
                     &x->err);
}

/* The legacy reserve shows `attaching`, as Cinder's does; the machine's
 * `reserved` is also what an attachment made without a connector shows,
 * and there Cinder shows `reserved`.  The mark goes with the begin, in
 * the same transition, and every other begin of attach clears it
 * (cinder_new_attachment()), so it is never stale while the volume is
 * `reserved`: cinder_status() reads it. */
static int act_reserve(struct action *x)
{
    x->o.attrs = "{\"" CINDER_LEGACY_RESERVE "\":true}";
    return vse_begin(x->c->q->db, x->id, VOLUME_OP_ATTACH, &x->o, &x->r,
                     &x->err);
}

/* Nova calls os-unreserve (and os-roll_detaching) on its cleanup paths
 * whatever the volume's state: Cinder then changes nothing and answers
 * 202, and so does vse for a volume at rest.  One with another op in
 * flight is still refused, naming it: unreserving must not end that op. */
static int act_unreserve(struct action *x)
{
    if (x->r.op[0] == '\0')
        return 0;
    if (!cinder_is(&x->r, VOLUME_OP_ATTACH, VOLUME_RESERVED)) {
        cinder_refuse(x->c, "volume", &x->r, "unreserve");
        return ANSWERED;
    }
    x->o.attrs = "{\"" CINDER_LEGACY_RESERVE "\":null}";
    return vse_fail(x->c->q->db, x->id, x->r.op_id, &x->o, &x->r, &x->err);
}

static int act_attach(struct action *x)
{
    vse_db *db = x->c->q->db;
    char att[VSE_OPID_LEN + 1];
    int rc = 0;

    if (x->r.op[0] == '\0') {
        x->o.owner = x->owner;
        x->o.ttl_ms = vsed_cfg->lease_ms;
        rc = vse_begin(db, x->id, VOLUME_OP_ATTACH, &x->o, &x->r, &x->err);
        x->o.owner = NULL;
    } else if (!cinder_is(&x->r, VOLUME_OP_ATTACH, VOLUME_RESERVED)) {
        cinder_refuse(x->c, "volume", &x->r, "attach");
        return ANSWERED;
    }
    if (rc == 0)
        rc = vse_step(db, x->id, x->r.op_id, VOLUME_ATTACHING, &x->o, &x->r,
                      &x->err);
    if (rc < 0)
        return rc;
    x->patch = cinder_new_attachment(
        json_string_value(json_object_get(x->val, "instance_uuid")),
        json_string_value(json_object_get(x->val, "host_name")),
        json_string_value(json_object_get(x->val, "mountpoint")),
        json_string_value(json_object_get(x->val, "mode")), "attached", NULL,
        att);
    if (x->patch == NULL)
        return VSE_ENOMEM;
    x->o.attrs = x->patch;
    return vse_finish(db, x->id, x->r.op_id, VOLUME_IN_USE, &x->o, &x->r,
                      &x->err);
}

static int act_begin_detaching(struct action *x)
{
    return vse_begin(x->c->q->db, x->id, VOLUME_OP_DETACH, &x->o, &x->r,
                     &x->err);
}

static int act_roll_detaching(struct action *x)
{
    if (x->r.op[0] == '\0')
        return 0; /* at rest: nothing to roll back (see act_unreserve) */
    if (!cinder_is(&x->r, VOLUME_OP_DETACH, VOLUME_DETACHING)) {
        cinder_refuse(x->c, "volume", &x->r, "roll back detaching of");
        return ANSWERED;
    }
    return vse_fail(x->c->q->db, x->id, x->r.op_id, &x->o, &x->r, &x->err);
}

static int act_detach(struct action *x)
{
    vse_db *db = x->c->q->db;
    int rc = 0;

    if (x->r.op[0] == '\0')
        rc = vse_begin(db, x->id, VOLUME_OP_DETACH, &x->o, &x->r, &x->err);
    else if (!cinder_is(&x->r, VOLUME_OP_DETACH, VOLUME_DETACHING)) {
        cinder_refuse(x->c, "volume", &x->r, "detach");
        return ANSWERED;
    }
    x->o.attrs = "{\"attachments\":[]}";
    if (rc == 0)
        rc = vse_finish(db, x->id, x->r.op_id, VOLUME_AVAILABLE, &x->o, &x->r,
                        &x->err);
    return rc;
}

static int act_reset_status(struct action *x)
{
    const char *st = json_string_value(json_object_get(x->val, "status"));
    const char *ast = json_string_value(
        json_object_get(x->val, "attach_status"));
    char state[VSE_NAME_MAX + 1];

    if (!x->c->admin) {
        cinder_fault(x->c, 403,
                     "Policy doesn't allow volume_extension:"
                     "volume_admin_actions:reset_status to be performed.");
        return ANSWERED;
    }
    if (st == NULL && ast != NULL)
        st = strcmp(ast, "attached") == 0 ? "in-use" : "available";
    if (st == NULL || cinder_rest_state_of(x->c->q->db, VSED_MACHINE_VOLUME,
                                           st, state, sizeof(state))) {
        cinder_fault(x->c, 400,
                     "Invalid input received: vse resets a "
                     "volume only to a status with no operation in flight "
                     "(available, error, in-use, error_deleting, "
                     "error_extending), not '%s'",
                     st ? st : "(none)");
        return ANSWERED;
    }
    if (ast != NULL && strcmp(ast, "detached") == 0)
        x->o.attrs = "{\"attachments\":[]}";
    x->o.owner = x->c->user;
    return vse_reset_state(x->c->q->db, x->id, state, &x->o, &x->r, &x->err);
}

static int volume_attached(const struct vse_resource *r, const json_t *a)
{
    json_t *at;
    size_t i;

    if (strcmp(r->state, VOLUME_IN_USE) == 0 ||
        (r->op[0] != '\0' && strcmp(r->origin, VOLUME_IN_USE) == 0))
        return 1;
    json_array_foreach(json_object_get(a, "attachments"), i, at)
        if (strcmp(vsed_attr_str(at, "status"), "attached") == 0)
            return 1;
    return 0;
}

static int act_force_delete(struct action *x)
{
    int rc;

    if (!x->c->admin) {
        cinder_fault(x->c, 403,
                     "Policy doesn't allow volume_extension:"
                     "volume_admin_actions:force_delete to be performed.");
        return ANSWERED;
    }
    /* An attached volume is refused, as Cinder refuses it (its delete
     * wants attach_status other than attached, forced or not): the
     * instance still uses the file.  In use, or an op begun from in use
     * (detaching), or an attachment that says attached. */
    if (volume_attached(&x->r, x->a)) {
        cinder_fault(x->c, 400,
                     "Invalid volume: cannot force-delete volume %s: it is "
                     "attached (status '%s'); detach it first",
                     x->r.id, cinder_status(x->c->q->db, &x->r));
        return ANSWERED;
    }
    /* Whatever is in flight is fenced first: its worker's next
     * transition is refused, so it cannot finish over the delete. */
    if (x->r.op[0] != '\0') {
        x->o.owner = x->c->user;
        x->o.attrs = "{\"attachments\":[]}";
        rc = vse_reset_state(x->c->q->db, x->id, VOLUME_ERROR, &x->o, &x->r,
                             &x->err);
        if (rc < 0)
            return rc;
    }
    volume_delete_row(x->c, &x->r, x->a);
    return ANSWERED;
}

/* Cinder's volume actions that vse serves, with the microversion each
 * needs (3.min_mv).  Others are refused by name. */
static const struct {
    const char *name;
    int min_mv;
    action_fn *fn;
} actions[] = {
    {"os-extend", 0, act_extend},
    {"os-reserve", 0, act_reserve},
    {"os-unreserve", 0, act_unreserve},
    {"os-attach", 0, act_attach},
    {"os-begin_detaching", 0, act_begin_detaching},
    {"os-roll_detaching", 0, act_roll_detaching},
    {"os-detach", 0, act_detach},
    {"os-reset_status", 0, act_reset_status},
    {"os-force_delete", 0, act_force_delete},
};

void cinder_volume_action(struct cinder_ctx *c, const char *id)
{
    struct action x;
    json_t *root;
    size_t i, n = sizeof(actions) / sizeof(actions[0]);
    int rc;

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.id = id;
    if (cinder_load(c, VSED_MACHINE_VOLUME, id, &x.r, &x.a) != 0)
        return;
    if (cinder_body(c, &root) == NULL) {
        json_decref(x.a);
        return;
    }
    x.name = json_object_iter_key(json_object_iter(root));
    x.val = json_object_get(root, x.name ? x.name : "");
    for (i = 0; x.name != NULL && i < n; i++)
        if (strcmp(x.name, actions[i].name) == 0)
            break;
    if (x.name == NULL)
        cinder_fault(c, 400, "Malformed request body: no action");
    else if (i == n)
        cinder_fault(c, 400, "There is no such action: %s", x.name);
    else if (c->mv < actions[i].min_mv)
        /* Cinder's VersionNotFoundForAPIMethod. */
        cinder_fault(c, 404,
                     "API version 3.%d is not supported on this "
                     "method (%s needs 3.%d or later).",
                     c->mv, x.name, actions[i].min_mv);
    if (x.name == NULL || i == n || c->mv < actions[i].min_mv)
        goto out;
    vsed_owner("api", x.owner, sizeof(x.owner));
    vse_error_clear(&x.err);
    cinder_init_opts(&x.o, x.reason);
    cinder_status_read(&x.o, &x.r);
    snprintf(x.reason, sizeof(x.reason), "%s by %s (project %s)", x.name,
             c->user, c->project);
    rc = actions[i].fn(&x);
    if (rc < 0)
        cinder_lib_fault_r(c, "volume", x.name, rc, &x.err, &x.r);
    else if (rc != ANSWERED)
        cinder_empty(c, 202);
out:
    free(x.patch);
    json_decref(root);
    json_decref(x.a);
}
