/*
 * cinder-attachments.c - the Cinder API's attachments (3.27+): an
 * attachment lives in its volume's attrs; creating, connecting,
 * completing and deleting one move the volume through attach or detach.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cinder.h"

/* The connection info of an attachment: the file that is the volume. */
static json_t *connection(const struct vse_resource *r, const json_t *a)
{
    return json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "driver_volume_type",
                     "local", "data", "device_path",
                     vsed_attr_str(a, "provider_location"), "volume_id",
                     r->id, "host", vsed_attr_str(a, "host"), "access_mode",
                     "rw");
}

/* An attachment (3.27+) of volume r. */
static json_t *attachment_json(const struct vse_resource *r, const json_t *a,
                               const json_t *at, int with_connection)
{
    json_t *j = json_pack("{s:O?, s:s, s:O?, s:s, s:O?, s:O?, s:s}", "id",
                          json_object_get(at, "id"), "volume_id", r->id,
                          "instance", json_object_get(at, "server_id"),
                          "status", vsed_attr_str(at, "status"),
                          "attached_at", json_object_get(at, "attached_at"),
                          "detached_at", NULL, "attach_mode",
                          vsed_attr_str(at, "attach_mode")[0]
                              ? vsed_attr_str(at, "attach_mode")
                              : "rw");

    if (j != NULL && with_connection)
        json_object_set_new(j, "connection_info",
                            json_object_get(at, "connector") != NULL
                                ? connection(r, a)
                                : json_object());
    return j;
}

char *cinder_new_attachment(const char *server, const char *host,
                            const char *mountpoint, const char *mode,
                            const char *status, const json_t *connector,
                            char *id_out)
{
    char t[40];

    if (vse_uuid4(id_out, NULL) < 0)
        return NULL;
    cinder_tstamp(vse_now_us(), t, sizeof(t));
    /* Every begin of attach but os-reserve's clears its mark. */
    return vsed_json_text(json_pack(
        "{s:[{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:O?, s:s?}], s:n}",
        "attachments", "id", id_out, "server_id", server, "host_name", host,
        "mountpoint", mountpoint, "status", status, "attach_mode",
        mode ? mode : "rw", "connector", connector, "attached_at",
        strcmp(status, "attached") == 0 ? t : NULL, CINDER_LEGACY_RESERVE));
}

struct att_scan {
    struct cinder_ctx *c;
    const char *id;     /* one attachment, or NULL: all of them */
    const char *volume; /* ?volume_id= */
    json_t *arr;
    int detail;              /* /attachments/detail: with connection_info */
    struct vse_resource row; /* the volume holding `id` */
    int found;
};

static int att_one(void *arg, const struct vse_resource *r)
{
    struct att_scan *s = arg;
    json_t *a, *at;
    size_t i;

    /* Left out by the store already (not_state); kept as in
     * cinder_list_match(). */
    if (strcmp(r->state, VOLUME_DELETED) == 0)
        return 0;
    a = vsed_attrs(r);
    if ((!cinder_all_tenants(s->c) && s->id == NULL &&
         !cinder_owns(s->c, a)) ||
        (s->volume != NULL && strcmp(s->volume, r->id) != 0)) {
        json_decref(a);
        return 0;
    }
    json_array_foreach(json_object_get(a, "attachments"), i, at) {
        if (s->id == NULL) {
            /* Both lists carry connection_info: Cinder's /detail does,
             * and a client of the summary loses nothing by it. */
            json_array_append_new(s->arr, attachment_json(r, a, at, 1));
        } else if (strcmp(vsed_attr_str(at, "id"), s->id) == 0 &&
                   cinder_owns(s->c, a)) {
            s->row = *r;
            s->found = 1;
        }
    }
    json_decref(a);
    return s->found;
}

static int find_attachment(struct cinder_ctx *c, const char *id,
                           struct vse_resource *r)
{
    struct att_scan s;
    struct vse_filter f;
    struct vse_error err;

    memset(&s, 0, sizeof(s));
    memset(&f, 0, sizeof(f));
    s.c = c;
    s.id = id;
    f.machine = VSED_MACHINE_VOLUME;
    f.not_state = VOLUME_DELETED;
    vse_error_clear(&err);
    if (vse_list(c->q->db, &f, att_one, &s, &err) < 0) {
        cinder_lib_fault(c, "attachment", "find the attachment", err.code,
                         &err);
        return -1;
    }
    if (!s.found) {
        cinder_fault(c, 404,
                     "Volume attachment could not be found with filter: "
                     "attachment_id = %s.",
                     id);
        return -1;
    }
    *r = s.row;
    return 0;
}

/* The attachment `id` inside attrs a, or NULL. */
static json_t *attachment_in(const json_t *a, const char *id)
{
    json_t *at;
    size_t i;

    json_array_foreach(json_object_get(a, "attachments"), i, at)
        if (strcmp(vsed_attr_str(at, "id"), id) == 0)
            return at;
    return NULL;
}

/* attrs patch: attachment `id` with status (and connector) changed. */
static char *attachment_patch(const json_t *a, const char *id,
                              const char *status, const json_t *connector)
{
    json_t *arr = json_deep_copy(json_object_get(a, "attachments"));
    json_t *at;
    char t[40];
    size_t i;

    cinder_tstamp(vse_now_us(), t, sizeof(t));
    json_array_foreach(arr, i, at) {
        if (strcmp(vsed_attr_str(at, "id"), id) != 0)
            continue;
        json_object_set_new(at, "status", json_string(status));
        if (connector != NULL)
            json_object_set(at, "connector", (json_t *)connector);
        if (strcmp(status, "attached") == 0)
            json_object_set_new(at, "attached_at", json_string(t));
    }
    return vsed_json_text(json_pack("{s:o}", "attachments", arr));
}

static void attachment_reply(struct cinder_ctx *c, int status,
                             const char *vol, const char *id)
{
    struct vse_resource r;
    struct vse_error err;
    json_t *a;

    vse_error_clear(&err);
    if (vse_get(c->q->db, vol, &r, &err) < 0) {
        cinder_lib_fault(c, "volume", "read the volume", err.code, &err);
        return;
    }
    a = vsed_attrs(&r);
    cinder_reply(c, status,
                 json_pack("{s:o}", "attachment",
                           attachment_json(&r, a, attachment_in(a, id), 1)));
    json_decref(a);
}

void cinder_attachment_create(struct cinder_ctx *c)
{
    struct vse_resource r;
    struct vse_error err;
    struct vse_opts o;
    json_t *root, *v, *a, *conn;
    const char *vol;
    char id[VSE_OPID_LEN + 1], reason[VSE_REASON_MAX + 1], *patch;
    int rc, connect;

    v = cinder_body_volume(c, "attachment", "volume_uuid", &root, &r, &a);
    if (v == NULL)
        return;
    vol = json_string_value(json_object_get(v, "volume_uuid"));
    conn = json_object_get(v, "connector");
    connect = json_is_object(conn) && json_object_size(conn) > 0;
    patch = cinder_new_attachment(
        json_string_value(json_object_get(v, "instance_uuid")),
        connect ? json_string_value(json_object_get(conn, "host")) : NULL,
        connect ? json_string_value(json_object_get(conn, "mountpoint"))
                : NULL,
        json_string_value(json_object_get(v, "mode")),
        connect ? "attaching" : "reserved", connect ? conn : NULL, id);
    snprintf(reason, sizeof(reason), "attachment %s created by %s", id,
             c->user);
    cinder_init_opts(&o, reason);
    cinder_status_read(&o, &r);
    o.attrs = patch;
    vse_error_clear(&err);
    /* Without a connector the volume is only reserved for the instance;
     * with one, the connection is made too (Cinder's attachment_create
     * then attachment_update). */
    rc = vse_begin(c->q->db, vol, VOLUME_OP_ATTACH, &o, &r, &err);
    if (rc == 0 && connect) {
        o.attrs = NULL;
        rc = vse_step(c->q->db, vol, r.op_id, VOLUME_ATTACHING, &o, &r, &err);
    }
    free(patch);
    json_decref(root); /* vol points into it: r.id from here on */
    json_decref(a);
    if (rc < 0) {
        cinder_lib_fault_r(c, "volume", "attach the volume", rc, &err, &r);
        return;
    }
    attachment_reply(c, 200, r.id, id);
}

void cinder_attachment_list(struct cinder_ctx *c)
{
    struct att_scan s;
    struct vse_filter f;
    struct vse_error err;

    memset(&s, 0, sizeof(s));
    memset(&f, 0, sizeof(f));
    s.c = c;
    s.volume = vsed_arg(c->q, "volume_id");
    s.arr = json_array();
    f.machine = VSED_MACHINE_VOLUME;
    f.not_state = VOLUME_DELETED;
    vse_error_clear(&err);
    if (vse_list(c->q->db, &f, att_one, &s, &err) < 0) {
        json_decref(s.arr);
        cinder_lib_fault(c, "attachment", "list attachments", err.code, &err);
        return;
    }
    cinder_reply(c, 200, json_pack("{s:o}", "attachments", s.arr));
}

void cinder_attachment_show(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;

    if (find_attachment(c, id, &r) == 0)
        attachment_reply(c, 200, r.id, id);
}

/* PUT with a connector: reserved -> attaching. */
void cinder_attachment_update(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    struct vse_error err;
    struct vse_opts o;
    json_t *root, *conn, *a;
    char *patch;
    int rc;

    if (find_attachment(c, id, &r) != 0 || cinder_body(c, &root) == NULL)
        return;
    conn = json_object_get(json_object_get(root, "attachment"), "connector");
    if (!json_is_object(conn)) {
        json_decref(root);
        cinder_fault(c, 400, "Invalid input received: connector is required");
        return;
    }
    if (!cinder_is(&r, VOLUME_OP_ATTACH, VOLUME_RESERVED)) {
        json_decref(root);
        cinder_refuse(c, "volume", &r, "connect an attachment of");
        return;
    }
    a = vsed_attrs(&r);
    patch = attachment_patch(a, id, "attaching", conn);
    cinder_init_opts(&o, "attachment update: connector given");
    cinder_status_read(&o, &r);
    o.attrs = patch;
    vse_error_clear(&err);
    rc = vse_step(c->q->db, r.id, r.op_id, VOLUME_ATTACHING, &o, &r, &err);
    free(patch);
    json_decref(a);
    json_decref(root);
    if (rc < 0)
        cinder_lib_fault_r(c, "volume", "connect the attachment", rc, &err,
                           &r);
    else
        attachment_reply(c, 200, r.id, id);
}

/* os-complete: attaching -> in-use. */
void cinder_attachment_action(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    struct vse_error err;
    struct vse_opts o;
    json_t *root, *a;
    char *patch;
    int rc;

    if (find_attachment(c, id, &r) != 0 || cinder_body(c, &root) == NULL)
        return;
    if (json_object_get(root, "os-complete") == NULL) {
        json_decref(root);
        cinder_fault(c, 400, "There is no such action: %s",
                     json_object_iter_key(json_object_iter(root))
                         ? json_object_iter_key(json_object_iter(root))
                         : "");
        return;
    }
    json_decref(root);
    if (strcmp(r.state, VOLUME_IN_USE) == 0 && r.op[0] == '\0') {
        cinder_empty(c, 204); /* completed already: a retry */
        return;
    }
    if (!cinder_is(&r, VOLUME_OP_ATTACH, VOLUME_ATTACHING)) {
        cinder_refuse(c, "volume", &r, "complete an attachment of");
        return;
    }
    a = vsed_attrs(&r);
    patch = attachment_patch(a, id, "attached", NULL);
    cinder_init_opts(&o, "attachment complete");
    cinder_status_read(&o, &r);
    o.attrs = patch;
    vse_error_clear(&err);
    rc = vse_finish(c->q->db, r.id, r.op_id, VOLUME_IN_USE, &o, &r, &err);
    free(patch);
    json_decref(a);
    if (rc < 0)
        cinder_lib_fault_r(c, "volume", "complete the attachment", rc, &err,
                           &r);
    else
        cinder_empty(c, 204);
}

void cinder_attachment_delete(struct cinder_ctx *c, const char *id)
{
    struct vse_resource r;
    struct vse_error err;
    struct vse_opts o;
    int rc;

    if (find_attachment(c, id, &r) != 0)
        return;
    cinder_init_opts(&o, "attachment delete");
    cinder_status_read(&o, &r);
    vse_error_clear(&err);
    if (strcmp(r.op, VOLUME_OP_ATTACH) == 0) {
        /* Not connected yet: the attach op ends, failed, in available. */
        o.attrs = "{\"attachments\":[]}";
        rc = vse_fail(c->q->db, r.id, r.op_id, &o, &r, &err);
    } else if (strcmp(r.state, VOLUME_IN_USE) == 0 && r.op[0] == '\0') {
        rc = vse_begin(c->q->db, r.id, VOLUME_OP_DETACH, &o, &r, &err);
        o.attrs = "{\"attachments\":[]}";
        if (rc == 0)
            rc = vse_finish(c->q->db, r.id, r.op_id, VOLUME_AVAILABLE, &o, &r,
                            &err);
    } else {
        cinder_refuse(c, "volume", &r, "delete an attachment of");
        return;
    }
    if (rc < 0)
        cinder_lib_fault_r(c, "volume", "delete the attachment", rc, &err,
                           &r);
    else
        cinder_reply(c, 200, json_pack("{s:[]}", "attachments"));
}
