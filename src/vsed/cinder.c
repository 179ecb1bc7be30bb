/*
 * cinder.c - the Cinder Block Storage v3 API subset of the api role
 * (docs/volume-api.md): routing, version discovery, microversions, the
 * caller's project, and the helpers its resources share (cinder-*.c).
 * Every change is one enforcer transition (or a short chain of them), so
 * a request the volume's state does not allow is refused before it is
 * accepted; the driver work is left to the host's manager, by state.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cinder.h"

void cinder_tstamp(int64_t us, char *buf, size_t size)
{
    size_t n;

    vse_time_format(us, buf, size);
    /* Cinder's times carry no zone suffix. */
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == 'Z')
        buf[n - 1] = '\0';
}

json_t *cinder_jtime(int64_t us)
{
    char t[40];

    if (us == 0)
        return json_null();
    cinder_tstamp(us, t, sizeof(t));
    return json_string(t);
}

const char *cinder_status(vse_db *db, const struct vse_resource *r)
{
    const char *s = vsed_status_of(db, r);

    if (strcmp(r->state, VOLUME_RESERVED) == 0 &&
        strcmp(r->machine, VSED_MACHINE_VOLUME) == 0 &&
        strstr(r->attrs, "\"" CINDER_LEGACY_RESERVE "\"") != NULL) {
        json_t *a = vsed_attrs(r);
        int legacy = json_is_true(json_object_get(a, CINDER_LEGACY_RESERVE));

        json_decref(a);
        if (legacy)
            return "attaching";
    }

    /* A client that knows only Cinder's statuses needs one of them; a row
     * whose state shows none is one an operator must look at. */
    return s[0] != '\0' ? s : "error";
}

const char *cinder_deleted(const char *machine)
{
    return strcmp(machine, VSED_MACHINE_SNAPSHOT) == 0 ? SNAPSHOT_DELETED
                                                       : VOLUME_DELETED;
}

int cinder_uuid4(struct cinder_ctx *c, char *buf)
{
    struct vse_error err;
    int rc;

    vse_error_clear(&err);
    rc = vse_uuid4(buf, &err);
    if (rc < 0)
        cinder_lib_fault(c, "id", "make an id", rc, &err);
    return rc < 0 ? -1 : 0;
}

/* What is in the way, for a refusal: the status, and the op in flight
 * with its owner and since when (DESIGN §4: no second read needed). */
static void in_the_way(struct cinder_ctx *c, const struct vse_resource *r,
                       char *buf, size_t size)
{
    char t[40];

    cinder_tstamp(r->since, t, sizeof(t));
    if (r->op[0] == '\0')
        snprintf(buf, size, "its status is '%s' (state %s) since %s",
                 cinder_status(c->q->db, r), r->state, t);
    else
        snprintf(buf, size,
                 "its status is '%s': operation %s in flight "
                 "(step %s), owner %s, since %s",
                 cinder_status(c->q->db, r), r->op, r->state,
                 r->owner[0] ? r->owner : "none (queued)", t);
}

/* The wording is Cinder's (InvalidVolume, NotFound); the status is
 * vsed_http_status()'s. */
void cinder_lib_fault_r(struct cinder_ctx *c, const char *kind,
                        const char *what, int rc, const struct vse_error *err,
                        const struct vse_resource *cur)
{
    vsed_metrics_refusal(rc);
    if (rc == VSE_ECONFLICT && cur != NULL && cur->id[0] != '\0')
        cinder_fault(c, 400, "Invalid %s: cannot %s: its status is '%s': %s",
                     kind, what, cinder_status(c->q->db, cur), err->msg);
    else if (rc == VSE_ECONFLICT)
        cinder_fault(c, 400, "Invalid %s: cannot %s: %s", kind, what,
                     err->msg);
    else if (rc == VSE_EFENCED || rc == VSE_EEXIST)
        cinder_fault(c, 409, "cannot %s: %s changed meanwhile: %s", what,
                     kind, err->msg);
    else if (rc == VSE_ENOTFOUND)
        cinder_fault(c, 404, "%s could not be found", kind);
    else if (rc == VSE_EINVAL)
        cinder_fault(c, 400, "Invalid input: %s", err->msg);
    else
        cinder_fault(c, vsed_http_status(rc, VSED_DIALECT_CINDER),
                     "cannot %s: %s", what,
                     err->msg[0] ? err->msg : vse_strerror(rc));
}

void cinder_lib_fault(struct cinder_ctx *c, const char *kind,
                      const char *what, int rc, const struct vse_error *err)
{
    cinder_lib_fault_r(c, kind, what, rc, err, NULL);
}

void cinder_reply(struct cinder_ctx *c, int status, json_t *j)
{
    vsed_reply(c->p, VSED_DIALECT_CINDER, status, j);
}

void cinder_empty(struct cinder_ctx *c, int status)
{
    vsed_reply_empty(c->p, status);
}

void cinder_fault(struct cinder_ctx *c, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsed_cinder_vfault(c->p, status, fmt, ap);
    va_end(ap);
}

int cinder_all_tenants(const struct cinder_ctx *c)
{
    const char *s = vsed_arg(c->q, "all_tenants");

    return c->admin && s != NULL && strcmp(s, "0") != 0 &&
           strcasecmp(s, "false") != 0;
}

json_t *cinder_body(struct cinder_ctx *c, json_t **root)
{
    json_error_t je;

    switch (vsed_body_parse(c->q, root, &je)) {
    case VSED_BODY_EMPTY:
        cinder_fault(c, 400, "Malformed request body: no body");
        return NULL;
    case VSED_BODY_SYNTAX:
        cinder_fault(c, 400, "Malformed request body: %s", je.text);
        return NULL;
    case VSED_BODY_NOT_OBJECT:
        cinder_fault(c, 400, "Malformed request body: not an object");
        return NULL;
    case VSED_BODY_OK: break;
    }
    return *root;
}

int cinder_owns(const struct cinder_ctx *c, const json_t *a)
{
    return c->admin ||
           strcmp(vsed_attr_str(a, "project_id"), c->project) == 0;
}

int cinder_load(struct cinder_ctx *c, const char *machine, const char *id,
                struct vse_resource *r, json_t **a)
{
    struct vse_error err;
    const char *kind = strcmp(machine, VSED_MACHINE_VOLUME) == 0 ? "Volume"
                                                                 : "Snapshot";

    *a = NULL;
    vse_error_clear(&err);
    if (vse_get(c->q->db, id, r, &err) == 0 &&
        strcmp(r->machine, machine) == 0 &&
        strcmp(r->state, cinder_deleted(machine))) {
        *a = vsed_attrs(r);
        if (cinder_owns(c, *a))
            return 0;
        json_decref(*a);
        *a = NULL;
    } else if (err.code != 0 && err.code != VSE_ENOTFOUND) {
        cinder_lib_fault(c, kind, "read", err.code, &err);
        return -1;
    }
    cinder_fault(c, 404, "%s %s could not be found.", kind, id);
    return -1;
}

json_t *cinder_jcopy(const json_t *a, const char *key, json_t *dflt)
{
    json_t *v = json_object_get(a, key);

    if (v == NULL) {
        return dflt;
    }
    json_decref(dflt);
    return json_deep_copy(v);
}

json_t *cinder_links(const struct cinder_ctx *c, const char *coll,
                     const char *id)
{
    char self[1024];

    snprintf(self, sizeof(self), "%s/%s/%s", c->base, coll, id);
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "href", self, "rel", "self",
                     "href", self, "rel", "bookmark");
}

void cinder_init_opts(struct vse_opts *o, const char *reason)
{
    memset(o, 0, sizeof(*o));
    o->reason = reason;
}

/*
 * --coordination local-locks: the transition is decided against the row
 * this request read (a Cinder-style status check) and written whatever
 * the row holds by then.  The enforcer decides against the row it
 * writes, so it never needs this.
 */
void cinder_status_read(struct vse_opts *o, const struct vse_resource *r)
{
    if (vsed_cfg->local_locks)
        o->seen = r;
}

void cinder_refuse(struct cinder_ctx *c, const char *kind,
                   const struct vse_resource *r, const char *what)
{
    char way[600];

    in_the_way(c, r, way, sizeof(way));
    vsed_metrics_refusal(VSE_ECONFLICT);
    cinder_fault(c, 400, "Invalid %s: cannot %s %s %s: %s", kind, what, kind,
                 r->id, way);
}

int cinder_is(const struct vse_resource *r, const char *op, const char *st)
{
    return strcmp(r->op, op) == 0 && strcmp(r->state, st) == 0;
}

int cinder_rest_state_of(vse_db *db, const char *machine, const char *status,
                         char *state, size_t size)
{
    const vse_machine *m = vse_find_machine(db, machine);
    const char *shown;

    snprintf(state, size, "%s", status);
    for (char *p = state; *p; p++)
        if (*p == '-')
            *p = '_';
    if (m == NULL || vse_machine_state_busy(m, state) != 0)
        return -1;
    shown = vse_machine_status(m, state);
    return shown != NULL && strcmp(shown, status) == 0 ? 0 : -1;
}

json_t *cinder_body_volume(struct cinder_ctx *c, const char *member,
                           const char *key, json_t **root,
                           struct vse_resource *r, json_t **a)
{
    json_t *v;

    if (cinder_body(c, root) == NULL)
        return NULL;
    v = json_object_get(*root, member);
    if (json_string_value(json_object_get(v, key)) == NULL) {
        json_decref(*root);
        cinder_fault(c, 400, "Invalid input received: %s is required", key);
        return NULL;
    }
    if (cinder_load(c, VSED_MACHINE_VOLUME,
                    json_string_value(json_object_get(v, key)), r, a) != 0) {
        json_decref(*root);
        return NULL;
    }
    return v;
}

int cinder_list_match(const struct cinder_listing *l,
                      const struct vse_resource *r, const json_t *a)
{
    /* The store leaves deleted rows out (not_state), so that a list costs
     * what the live rows cost, not the store's age; the check stays for
     * a caller that forgets the filter. */
    return strcmp(r->state, cinder_deleted(r->machine)) != 0 &&
           (l->all ||
            strcmp(vsed_attr_str(a, "project_id"), l->c->project) == 0) &&
           (!l->name || strcmp(vsed_attr_str(a, "name"), l->name) == 0) &&
           (!l->status ||
            strcmp(cinder_status(l->c->q->db, r), l->status) == 0) &&
           (!l->volume_id ||
            strcmp(vsed_attr_str(a, "volume_id"), l->volume_id) == 0);
}

int cinder_count_one(void *arg, const struct vse_resource *r)
{
    struct cinder_listing *l = arg;
    json_t *a = vsed_attrs(r);

    if (cinder_list_match(l, r, a)) {
        if (strcmp(r->machine, VSED_MACHINE_VOLUME) == 0) {
            l->volumes++;
            l->gigabytes += vsed_attr_int(a, "size", 0);
        } else {
            l->snapshots++;
            l->snap_gb += vsed_attr_int(a, "size", 0);
        }
    }
    json_decref(a);
    return 0;
}

static json_t *version_v3(const struct cinder_ctx *c)
{
    char self[600];

    snprintf(self, sizeof(self), "http://%s/v3/",
             c->q->host_header ? c->q->host_header : "localhost");
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}, {s:s, s:s}], "
        "s:[{s:s, s:s}]}",
        "id", "v3.0", "status", "CURRENT", "version", "3.70", "min_version",
        "3.0", "updated", "2023-08-31T00:00:00Z", "links", "rel",
        "describedby", "type", "text/html", "href",
        "https://docs.openstack.org/", "rel", "self", "href", self,
        "media-types", "base", "application/json", "type",
        "application/vnd.openstack.volume+json;version=3");
}

static const char *const collections[] = {
    "volumes",     "snapshots", "attachments",
    "os-services", "limits",    "os-availability-zone",
    NULL};

int vsed_cinder_route(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/v3") == 0 ||
           strncmp(path, "/v3/", 4) == 0;
}

/* OpenStack-API-Version: "volume 3.27" (or "volume latest"); 3.0 when
 * absent.  0, or -1 after answering. */
static int negotiate(struct cinder_ctx *c)
{
    const char *h = c->q->api_version, *v;
    char *end;
    long minor;

    c->mv = CINDER_MV_MIN;
    v = h != NULL ? strstr(h, "volume") : NULL;
    if (v != NULL) {
        v += 6;
        while (*v == ' ')
            v++;
        if (strncmp(v, "latest", 6) == 0) {
            c->mv = CINDER_MV_MAX;
        } else if (v[0] == '3' && v[1] == '.' && v[2] >= '0' && v[2] <= '9') {
            minor = strtol(v + 2, &end, 10);
            if (minor > CINDER_MV_MAX) {
                cinder_fault(c, 406,
                             "Version 3.%ld is not supported by the API. "
                             "Minimum is 3.0 and maximum is 3.%d.",
                             minor, CINDER_MV_MAX);
                return -1;
            }
            c->mv = (int)minor;
        } else {
            cinder_fault(c, 400,
                         "API Version String '%s' is of invalid format. It "
                         "must be of format 'major.minor'.",
                         v);
            return -1;
        }
    }
    snprintf(c->p->api_version, sizeof(c->p->api_version), "volume 3.%d",
             c->mv);
    return 0;
}

static int split(struct cinder_ctx *c, const char *rest)
{
    char *save = NULL, *tok;
    int known = 0;

    snprintf(c->segbuf, sizeof(c->segbuf), "%s", rest);
    for (tok = strtok_r(c->segbuf, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (c->nseg == 5)
            return -1;
        c->seg[c->nseg++] = tok;
    }
    for (int i = 0; c->nseg > 0 && collections[i] != NULL; i++)
        known |= strcmp(c->seg[0], collections[i]) == 0;
    /* /v3/{project_id}/... and, from 3.67, /v3/... */
    if (c->nseg > 0 && !known) {
        snprintf(c->url_project, sizeof(c->url_project), "%s", c->seg[0]);
        for (int i = 1; i < c->nseg; i++)
            c->seg[i - 1] = c->seg[i];
        c->nseg--;
    }
    return 0;
}

static int method(const struct cinder_ctx *c, const char *m)
{
    return strcmp(c->q->method, m) == 0 ||
           (strcmp(m, "GET") == 0 && strcmp(c->q->method, "HEAD") == 0);
}

static void dispatch(struct cinder_ctx *c)
{
    const char *coll = c->seg[0], *id = c->nseg > 1 ? c->seg[1] : NULL;
    int n = c->nseg, vol = strcmp(coll, "volumes") == 0;

    if (vol || strcmp(coll, "snapshots") == 0) {
        const char *machine = vol ? VSED_MACHINE_VOLUME
                                  : VSED_MACHINE_SNAPSHOT;

        if (n == 1 && method(c, "GET"))
            cinder_list(c, machine, 0);
        else if (n == 1 && method(c, "POST"))
            vol ? cinder_volume_create(c) : cinder_snapshot_create(c);
        else if (n == 2 && strcmp(id, "detail") == 0 && method(c, "GET"))
            cinder_list(c, machine, 1);
        else if (n == 2 && method(c, "GET"))
            vol ? cinder_volume_show(c, id) : cinder_snapshot_show(c, id);
        else if (n == 2 && method(c, "PUT"))
            vol ? cinder_volume_update(c, id) : cinder_snapshot_update(c, id);
        else if (n >= 3 && n <= 4 && strcmp(c->seg[2], "metadata") == 0 &&
                 (method(c, "GET") || (n == 3 && method(c, "POST")) ||
                  method(c, "PUT") || (n == 4 && method(c, "DELETE"))))
            cinder_metadata(c, machine, id, n == 4 ? c->seg[3] : NULL);
        else if (n == 2 && method(c, "DELETE"))
            vol ? cinder_volume_delete(c, id) : cinder_snapshot_delete(c, id);
        else if (n == 3 && strcmp(c->seg[2], "action") == 0 &&
                 method(c, "POST"))
            vol ? cinder_volume_action(c, id) : cinder_snapshot_action(c, id);
        else
            cinder_fault(c, n <= 4 ? 405 : 404, "no such call: %s %s",
                         c->q->method, c->q->path);
    } else if (n > 4) {
        cinder_fault(c, 404, "no such call: %s %s", c->q->method, c->q->path);
    } else if (strcmp(coll, "attachments") == 0) {
        if (c->mv < 27)
            cinder_fault(c, 404,
                         "attachments need microversion 3.27 or later");
        else if (n == 1 && method(c, "GET"))
            cinder_attachment_list(c);
        else if (n == 1 && method(c, "POST"))
            cinder_attachment_create(c);
        else if (n == 2 && strcmp(id, "detail") == 0 && method(c, "GET"))
            cinder_attachment_list(c);
        else if (n == 2 && method(c, "GET"))
            cinder_attachment_show(c, id);
        else if (n == 2 && method(c, "PUT"))
            cinder_attachment_update(c, id);
        else if (n == 2 && method(c, "DELETE"))
            cinder_attachment_delete(c, id);
        else if (n == 3 && strcmp(c->seg[2], "action") == 0 &&
                 method(c, "POST"))
            cinder_attachment_action(c, id);
        else
            cinder_fault(c, 404, "no such call: %s %s", c->q->method,
                         c->q->path);
    } else if (strcmp(coll, "os-services") == 0 && n == 1 &&
               method(c, "GET")) {
        cinder_services(c);
    } else if (strcmp(coll, "limits") == 0 && n == 1 && method(c, "GET")) {
        cinder_limits(c);
    } else if (strcmp(coll, "os-availability-zone") == 0 && n == 1 &&
               method(c, "GET")) {
        cinder_zones(c);
    } else {
        cinder_fault(c, 404, "no such call: %s %s", c->q->method, c->q->path);
    }
}

void vsed_cinder_handle(const struct vsed_req *q, struct vsed_resp *p)
{
    struct cinder_ctx c;

    memset(p, 0, sizeof(*p));
    memset(&c, 0, sizeof(c));
    p->route = R_CINDER;
    c.q = q;
    c.p = p;
    if (strcmp(q->path, "/") == 0 || strcmp(q->path, "/v3") == 0 ||
        strcmp(q->path, "/v3/") == 0) {
        /* Version discovery needs no token, as in Cinder. */
        cinder_reply(&c, q->path[1] == '\0' ? 300 : 200,
                     json_pack("{s:[o]}", "versions", version_v3(&c)));
        return;
    }
    if (negotiate(&c) != 0)
        return;
    if (split(&c, q->path + 4) != 0 || c.nseg == 0) {
        cinder_fault(&c, 404, "no such call: %s %s", q->method, q->path);
        return;
    }
    if (!q->authenticated) {
        cinder_fault(&c, 401, "%s",
                     q->token_presented
                         ? "The request you have made requires "
                           "authentication: token not accepted."
                         : "The request you have made requires "
                           "authentication.");
        return;
    }
    c.admin = q->role == ROLE_ADMIN;
    c.project = q->project != NULL ? q->project : "";
    c.user = q->user != NULL ? q->user : q->actor;
    if (!c.admin && c.project[0] == '\0') {
        cinder_fault(&c, 403, "token '%s' is bound to no project", q->actor);
        return;
    }
    if (c.url_project[0] != '\0' && strcmp(c.url_project, c.project) != 0 &&
        !c.admin) {
        cinder_fault(&c, 403,
                     "Malformed request URL: URL's project_id '%s' "
                     "doesn't match Context's project_id '%s'",
                     c.url_project, c.project);
        return;
    }
    if (q->role < ROLE_MEMBER && !method(&c, "GET")) {
        cinder_fault(&c, 403, "token '%s' has role reader: it may only read",
                     q->actor);
        return;
    }
    if (q->db == NULL) {
        cinder_fault(&c, 503, "store not available: %s", q->db_error);
        return;
    }
    snprintf(c.base, sizeof(c.base), "http://%s/v3/%s",
             q->host_header ? q->host_header : "localhost", c.project);
    dispatch(&c);
}
