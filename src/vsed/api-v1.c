/*
 * api-v1.c - the /v1 HTTP/JSON API of vsed on top of the public vse.h:
 * routing, roles, JSON bodies in, the shapes of src/common/json.c out,
 * and the one error shape.  It sees a request as plain data (struct
 * vsed_req), never libmicrohttpd, so the fuzzer drives it directly.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "json.h"
#include "util.h"
#include "vsed.h"

int vsed_noauth;

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define HISTORY_DEFAULT 1000
#define HISTORY_MAX 10000
#define PURGE_DEFAULT_MS (INT64_C(30) * 86400 * 1000)
#define TTL_MAX_MS (INT64_C(365) * 86400 * 1000)

static const char *const route_names[R_COUNT] = {
    "unknown",   "healthz",  "metrics",    "machines",    "machine",
    "resources", "resource", "transition", "reset-state", "history",
    "reap",      "purge",    "events",     "cinder",      "holds"};

const char *vsed_route_name(int route)
{
    return route >= 0 && route < R_COUNT ? route_names[route] : "unknown";
}

static const char *const actions[] = {"begin",       "step",    "finish",
                                      "fail",        "claim",   "renew",
                                      "reset-state", "history", "update",
                                      NULL};

/* A parsed path: the route, and the resource id or machine name in it. */
struct path {
    int route;
    char name[VSE_ID_MAX + 2];
    const char *action;
};

static void parse_path(const char *p, struct path *out)
{
    static const char res[] = "/v1/resources/";
    static const char mach[] = "/v1/machines/";
    const char *id, *slash;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (strcmp(p, "/healthz") == 0)
        out->route = R_HEALTHZ;
    else if (strcmp(p, "/metrics") == 0)
        out->route = R_METRICS;
    else if (strcmp(p, "/v1/machines") == 0)
        out->route = R_MACHINES;
    else if (strcmp(p, "/v1/resources") == 0)
        out->route = R_RESOURCES;
    else if (strcmp(p, "/v1/reap") == 0)
        out->route = R_REAP;
    else if (strcmp(p, "/v1/purge") == 0)
        out->route = R_PURGE;
    else if (strcmp(p, "/v1/events") == 0)
        out->route = R_EVENTS;
    else if (strcmp(p, "/v1/holds") == 0)
        out->route = R_HOLDS;
    else if (strncmp(p, mach, sizeof(mach) - 1) == 0) {
        id = p + sizeof(mach) - 1;
        n = strlen(id);
        if (n == 0 || n > VSE_NAME_MAX || strchr(id, '/') != NULL)
            return;
        memcpy(out->name, id, n + 1);
        out->route = R_MACHINE;
    } else if (strncmp(p, res, sizeof(res) - 1) == 0) {
        id = p + sizeof(res) - 1;
        n = strlen(id);
        /* An id may hold '/': only a known last segment is an action. */
        slash = strrchr(id, '/');
        if (slash != NULL) {
            for (int i = 0; actions[i] != NULL; i++)
                if (strcmp(slash + 1, actions[i]) == 0)
                    out->action = actions[i];
            if (out->action != NULL)
                n = (size_t)(slash - id);
        }
        if (n == 0 || n > VSE_ID_MAX)
            return;
        memcpy(out->name, id, n);
        out->name[n] = '\0';
        if (out->action == NULL)
            out->route = R_RESOURCE;
        else if (strcmp(out->action, "history") == 0)
            out->route = R_HISTORY;
        else if (strcmp(out->action, "reset-state") == 0)
            out->route = R_RESET;
        else
            out->route = R_TRANSITION;
    }
}

int vsed_api_route(const char *path)
{
    struct path p;

    parse_path(path, &p);
    return p.route;
}

/* ---- responses ------------------------------------------------------- */

static void set_json(struct vsed_resp *p, int status, json_t *j)
{
    vsed_reply(p, VSED_DIALECT_V1, status, j);
}

/* Seconds until the lease in the way runs out: when to try again. */
static int retry_after(const struct vse_resource *r)
{
    int64_t left = r->lease_expires - vse_now_us();

    if (r->lease_expires == 0 || left <= 0)
        return 1;
    left = (left + 999999) / 1000000;
    return left > 3600 ? 3600 : (int)left;
}

/* A library failure; a refusal carries the current row. */
static void lib_error(const struct vsed_req *q, struct vsed_resp *p, int rc,
                      const struct vse_error *err,
                      const struct vse_resource *cur)
{
    int status = vsed_http_status(rc, VSED_DIALECT_V1);
    json_t *j = vsed_error_json(vse__err_code(rc),
                                err->msg[0] ? err->msg : vse_strerror(rc),
                                err->detail, err->hint);

    vsed_metrics_refusal(rc);
    if (j != NULL && cur != NULL &&
        (rc == VSE_ECONFLICT || rc == VSE_EFENCED) && cur->id[0] != '\0') {
        json_object_set_new(json_object_get(j, "error"), "current",
                            vse__json_resource(cur,
                                               vsed_status_of(q->db, cur)));
    }
    if (status == 409)
        p->retry_after = cur != NULL && cur->id[0] ? retry_after(cur) : 1;
    set_json(p, status, j);
}

/* ---- auth ------------------------------------------------------------ */

int vsed_api_allow(const struct vsed_req *q, enum vsed_role need,
                   struct vsed_resp *p)
{
    if (need == ROLE_NONE || vsed_noauth)
        return 0;
    if (!q->authenticated) {
        vsed_api_error(p, 401, "unauthorized",
                       q->token_presented ? "token not accepted"
                                          : "authentication required",
                       NULL,
                       "send 'Authorization: Bearer TOKEN' or "
                       "'X-Auth-Token: TOKEN'");
        return -1;
    }
    if (q->role < need) {
        char msg[160];

        snprintf(msg, sizeof(msg), "token '%s' has role %s; this needs %s",
                 q->actor, vsed_role_name(q->role), vsed_role_name(need));
        vsed_api_error(p, 403, "forbidden", msg, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- query arguments -------------------------------------------------- */

/* An integer argument in [min, max]; -1 after filling p on bad input. */
static int arg_int(const struct vsed_req *q, struct vsed_resp *p,
                   const char *key, int64_t min, int64_t max, int64_t *out)
{
    const char *s = vsed_arg(q, key);
    char *end;
    long long v;
    char msg[200];

    if (s == NULL)
        return 0;
    errno = 0;
    v = isdigit((unsigned char)s[0]) ? strtoll(s, &end, 10) : -1;
    if (v < 0 || *end != '\0' || errno != 0 || v < min || v > max) {
        snprintf(msg, sizeof(msg),
                 "query argument '%s' must be a number "
                 "from %" PRId64 " to %" PRId64,
                 key, min, max);
        vsed_api_error(p, 400, "invalid", msg, NULL, NULL);
        return -1;
    }
    *out = v;
    return 0;
}

static int arg_bool(const struct vsed_req *q, struct vsed_resp *p,
                    const char *key, int *out)
{
    const char *s = vsed_arg(q, key);
    char msg[160];

    if (s == NULL)
        return 0;
    if (s[0] == '\0' || strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
        *out = 0;
    else {
        snprintf(msg, sizeof(msg),
                 "query argument '%s' must be true or "
                 "false",
                 key);
        vsed_api_error(p, 400, "invalid", msg, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- JSON bodies ------------------------------------------------------ */

/* Parse the body as an object with only the keys in `allowed`; NULL
 * after filling p.  An empty body is an empty object. */
static json_t *body_object(const struct vsed_req *q, struct vsed_resp *p,
                           const char *const *allowed)
{
    json_error_t je;
    json_t *j;
    const char *key;
    json_t *v;
    char detail[256], msg[160];

    switch (vsed_body_parse(q, &j, &je)) {
    case VSED_BODY_EMPTY: return json_object();
    case VSED_BODY_SYNTAX:
        snprintf(detail, sizeof(detail), "line %d, column %d: %s", je.line,
                 je.column, je.text);
        vsed_api_error(p, 400, "bad_json", "request body is not valid JSON",
                       detail, NULL);
        return NULL;
    case VSED_BODY_NOT_OBJECT:
        vsed_api_error(p, 422, "unprocessable",
                       "request body must be a JSON object", NULL, NULL);
        return NULL;
    case VSED_BODY_OK: break;
    }
    json_object_foreach(j, key, v) {
        int ok = 0;

        for (int i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(allowed[i], key) == 0;
        if (!ok) {
            char hint[256];
            size_t n = (size_t)snprintf(hint, sizeof(hint), "fields:");

            for (int i = 0; allowed[i] != NULL && n < sizeof(hint); i++)
                n += (size_t)snprintf(hint + n, sizeof(hint) - n, " %s",
                                      allowed[i]);
            snprintf(msg, sizeof(msg), "unknown field '%.64s'", key);
            vsed_api_error(p, 422, "unprocessable", msg, NULL, hint);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* A string field: *out NULL when absent or null; -1 after filling p when
 * of another type, or when required and absent. */
static int field_str(json_t *j, struct vsed_resp *p, const char *key,
                     int required, const char **out)
{
    json_t *v = json_object_get(j, key);
    char msg[160];

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        snprintf(msg, sizeof(msg), "field '%s' is required", key);
        vsed_api_error(p, 422, "unprocessable", msg, NULL, NULL);
        return -1;
    }
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(msg, sizeof(msg), "field '%s' must be a string", key);
        vsed_api_error(p, 422, "unprocessable", msg, NULL, NULL);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int field_int(json_t *j, struct vsed_resp *p, const char *key,
                     int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(j, key);
    char msg[200];

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        snprintf(msg, sizeof(msg),
                 "field '%s' must be an integer from "
                 "%" PRId64 " to %" PRId64,
                 key, min, max);
        vsed_api_error(p, 422, "unprocessable", msg, NULL, NULL);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int field_bool(json_t *j, struct vsed_resp *p, const char *key,
                      int *out)
{
    json_t *v = json_object_get(j, key);
    char msg[160];

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(msg, sizeof(msg), "field '%s' must be true or false", key);
        vsed_api_error(p, 422, "unprocessable", msg, NULL, NULL);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* ttl (seconds) or ttl_ms, into o->ttl_ms. */
static int field_ttl(json_t *j, struct vsed_resp *p, struct vse_opts *o)
{
    int64_t s = 0, ms = 0;

    if (field_int(j, p, "ttl", 1, TTL_MAX_MS / 1000, &s) != 0 ||
        field_int(j, p, "ttl_ms", 1, TTL_MAX_MS, &ms) != 0)
        return -1;
    o->ttl_ms = ms != 0 ? ms : s * 1000;
    return 0;
}

/* ---- handlers --------------------------------------------------------- */

typedef VSE_ARRAY(struct vse_hold) hold_list;

static int hold_push(void *ctx, const struct vse_hold *h)
{
    return vse__array_push((hold_list *)ctx, *h) < 0;
}

/* The holds on id and the one id has, into *l; 0 or a vse error. */
static int holds_of(vse_db *db, const char *id, hold_list *l,
                    struct vse_error *err)
{
    int rc = vse_holds(db, id, NULL, hold_push, l, err);

    if (rc == 0)
        rc = vse_holds(db, NULL, id, hold_push, l, err);
    return rc;
}

static void resource_reply(const struct vsed_req *q, struct vsed_resp *p,
                           int status, const struct vse_resource *r)
{
    json_t *j = vse__json_resource(r, vsed_status_of(q->db, r));
    hold_list l = {0};
    struct vse_error err;

    /* Holds are shown as read just after the row; a failed read leaves
     * them out rather than failing a transition that happened. */
    if (j != NULL && holds_of(q->db, r->id, &l, &err) == 0)
        vse__json_attach_holds(j, r->id, l.v, l.n);
    vse__array_release(&l);
    set_json(p, status, j);
}

/* GET /v1/holds?held=ID&holder=ID: every hold, or those of one side. */
static void list_holds(const struct vsed_req *q, struct vsed_resp *p)
{
    const char *held = vsed_arg(q, "held"), *holder = vsed_arg(q, "holder");
    hold_list l = {0};
    struct vse_error err;
    json_t *arr;
    int rc;

    vse_error_clear(&err);
    rc = vse_holds(q->db, held, holder, hold_push, &l, &err);
    if (rc < 0) {
        vse__array_release(&l);
        lib_error(q, p, rc, &err, NULL);
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, vse__json_hold(&l.v[i]));
    vse__array_release(&l);
    set_json(p, 200, json_pack("{s:o}", "holds", arr));
}

static void transition(const struct vsed_req *q, struct vsed_resp *p,
                       const struct path *pa)
{
    static const char *const f_create[] = {"machine", "id",     "owner",
                                           "ttl",     "ttl_ms", "op",
                                           "attrs",   "hold",   NULL};
    static const char *const f_begin[] = {"op",    "owner", "ttl", "ttl_ms",
                                          "attrs", "hold",  NULL};
    static const char *const f_step[] = {"op_id", "to", "release", "attrs",
                                         NULL};
    static const char *const f_finish[] = {"op_id", "to", "attrs", NULL};
    static const char *const f_fail[] = {"op_id", "reason", "attrs", NULL};
    static const char *const f_claim[] = {"op_id",  "owner", "ttl",
                                          "ttl_ms", "attrs", NULL};
    static const char *const f_renew[] = {"op_id",  "ttl",   "ttl_ms",
                                          "reason", "attrs", NULL};
    static const char *const f_reset[] = {"to", "reason", "owner", "attrs",
                                          NULL};
    static const char *const f_update[] = {"attrs", NULL};
    char *attrs = NULL;
    const char *a = pa->action != NULL ? pa->action : "create";
    const char *machine = NULL, *id = pa->name, *op_id = NULL, *to = NULL;
    const char *op = NULL;
    const char *const *allowed;
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    json_t *j;
    int64_t t0;
    int rc, bad = 0;

    if (strcmp(a, "create") == 0)
        allowed = f_create;
    else if (strcmp(a, "begin") == 0)
        allowed = f_begin;
    else if (strcmp(a, "step") == 0)
        allowed = f_step;
    else if (strcmp(a, "finish") == 0)
        allowed = f_finish;
    else if (strcmp(a, "fail") == 0)
        allowed = f_fail;
    else if (strcmp(a, "claim") == 0)
        allowed = f_claim;
    else if (strcmp(a, "renew") == 0)
        allowed = f_renew;
    else if (strcmp(a, "update") == 0)
        allowed = f_update;
    else
        allowed = f_reset;
    j = body_object(q, p, allowed);
    if (j == NULL)
        return;
    memset(&o, 0, sizeof(o));
    memset(&out, 0, sizeof(out));
    o.request_id = q->client_request_id;
    {
        /* attrs: a JSON object, handed on as a merge patch. */
        json_t *av = json_object_get(j, "attrs");

        if (av != NULL && !json_is_object(av)) {
            vsed_api_error(p, 422, "unprocessable",
                           "field 'attrs' must be a JSON object", NULL, NULL);
            json_decref(j);
            return;
        }
        if (av != NULL) {
            attrs = json_dumps(av, JSON_COMPACT);
            o.attrs = attrs;
        } else if (allowed == f_update) {
            vsed_api_error(p, 422, "unprocessable",
                           "field 'attrs' is required", NULL, NULL);
            json_decref(j);
            return;
        }
    }
    if (allowed == f_update) {
        /* attrs only */
    } else if (allowed == f_create) {
        bad = field_str(j, p, "machine", 1, &machine) ||
              field_str(j, p, "id", 1, &id) ||
              field_str(j, p, "owner", 0, &o.owner) ||
              field_str(j, p, "op", 0, &o.op) ||
              field_str(j, p, "hold", 0, &o.hold) || field_ttl(j, p, &o);
    } else if (allowed == f_begin) {
        bad = field_str(j, p, "op", 1, &op) ||
              field_str(j, p, "owner", 0, &o.owner) ||
              field_str(j, p, "hold", 0, &o.hold) || field_ttl(j, p, &o);
    } else if (allowed == f_reset) {
        bad = field_str(j, p, "to", 1, &to) ||
              field_str(j, p, "reason", 1, &o.reason) ||
              field_str(j, p, "owner", 0, &o.owner);
        if (o.owner == NULL)
            o.owner = q->actor;
    } else {
        bad = field_str(j, p, "op_id", 1, &op_id);
        if (!bad && allowed == f_step)
            bad = field_str(j, p, "to", 1, &to) ||
                  field_bool(j, p, "release", &o.release);
        if (!bad && allowed == f_finish)
            bad = field_str(j, p, "to", 0, &to);
        if (!bad && allowed == f_fail)
            bad = field_str(j, p, "reason", 1, &o.reason);
        if (!bad && allowed == f_claim)
            bad = field_str(j, p, "owner", 1, &o.owner) ||
                  field_ttl(j, p, &o);
        if (!bad && allowed == f_renew)
            bad = field_ttl(j, p, &o) ||
                  field_str(j, p, "reason", 0, &o.reason);
    }
    if (bad) {
        json_decref(j);
        free(attrs);
        return;
    }
    vse_error_clear(&err);
    t0 = vse__now_mono_us();
    if (allowed == f_create)
        rc = vse_create(q->db, machine, id, &o, &out, &err);
    else if (allowed == f_begin)
        rc = vse_begin(q->db, id, op, &o, &out, &err);
    else if (allowed == f_step)
        rc = vse_step(q->db, id, op_id, to, &o, &out, &err);
    else if (allowed == f_finish)
        rc = vse_finish(q->db, id, op_id, to, &o, &out, &err);
    else if (allowed == f_fail)
        rc = vse_fail(q->db, id, op_id, &o, &out, &err);
    else if (allowed == f_claim)
        rc = vse_claim(q->db, id, op_id, &o, &out, &err);
    else if (allowed == f_renew)
        rc = vse_renew(q->db, id, op_id, &o, &out, &err);
    else if (allowed == f_update)
        rc = vse_update(q->db, id, &o, &out, &err);
    else
        rc = vse_reset_state(q->db, id, to, &o, &out, &err);
    vsed_metrics_store(vse__now_mono_us() - t0);
    json_decref(j);
    free(attrs);
    if (rc < 0) {
        lib_error(q, p, rc, &err, &out);
        return;
    }
    p->repeated = rc == VSE_REPEATED;
    resource_reply(q, p, allowed == f_create && !p->repeated ? 201 : 200,
                   &out);
}

static void get_resource(const struct vsed_req *q, struct vsed_resp *p,
                         const struct path *pa)
{
    struct vse_resource r;
    struct vse_error err;
    int64_t t0 = vse__now_mono_us();
    int rc;

    vse_error_clear(&err);
    rc = vse_get(q->db, pa->name, &r, &err);
    vsed_metrics_store(vse__now_mono_us() - t0);
    if (rc < 0)
        lib_error(q, p, rc, &err, NULL);
    else
        resource_reply(q, p, 200, &r);
}

struct collect {
    vse_db *db;
    hold_list *holds; /* every hold, for list rows; NULL: none read */
    json_t *arr;
    size_t want; /* rows to return; one more tells that there is a next */
    size_t n;
    char last_id[VSE_ID_MAX + 1];
    int64_t last_seq;
    int more;
};

static int collect_resource(void *arg, const struct vse_resource *r)
{
    struct collect *c = arg;

    if (c->n == c->want) {
        c->more = 1;
        return 1;
    }
    {
        json_t *j = vse__json_resource(r, vsed_status_of(c->db, r));

        if (j != NULL && c->holds != NULL)
            vse__json_attach_holds(j, r->id, c->holds->v, c->holds->n);
        json_array_append_new(c->arr, j);
    }
    snprintf(c->last_id, sizeof(c->last_id), "%s", r->id);
    c->n++;
    return 0;
}

static int collect_event(void *arg, const struct vse_event *e)
{
    struct collect *c = arg;

    if (c->n == c->want) {
        c->more = 1;
        return 1;
    }
    json_array_append_new(c->arr, vse__json_event(e));
    c->last_seq = e->seq;
    c->n++;
    return 0;
}

static void list_resources(const struct vsed_req *q, struct vsed_resp *p)
{
    hold_list all = {0};
    struct collect c = {q->db, &all, NULL, LIST_DEFAULT, 0, "", 0, 0};
    struct vse_filter f;
    struct vse_error err;
    int64_t limit = LIST_DEFAULT, t0;
    int rc;

    memset(&f, 0, sizeof(f));
    if (arg_int(q, p, "limit", 1, LIST_MAX, &limit) != 0 ||
        arg_bool(q, p, "busy", &f.busy) != 0 ||
        arg_bool(q, p, "stuck", &f.stuck) != 0)
        return;
    f.machine = vsed_arg(q, "machine");
    f.state = vsed_arg(q, "state");
    f.not_state = vsed_arg(q, "not_state");
    f.after_id = vsed_arg(q, "after");
    vse_error_clear(&err);
    if ((f.machine && vse_check_id("machine name", f.machine, &err) != 0) ||
        (f.state && vse_check_id("state", f.state, &err) != 0) ||
        (f.not_state && vse_check_id("state", f.not_state, &err) != 0) ||
        (f.after_id && vse_check_id("resource id", f.after_id, &err) != 0)) {
        lib_error(q, p, VSE_EINVAL, &err, NULL);
        return;
    }
    c.want = (size_t)limit;
    f.limit = c.want + 1;
    c.arr = json_array();
    t0 = vse__now_mono_us();
    /* One read of every hold serves the whole page. */
    rc = vse_holds(q->db, NULL, NULL, hold_push, &all, &err);
    if (rc == 0)
        rc = vse_list(q->db, &f, collect_resource, &c, &err);
    vse__array_release(&all);
    vsed_metrics_store(vse__now_mono_us() - t0);
    if (rc < 0) {
        json_decref(c.arr);
        lib_error(q, p, rc, &err, NULL);
        return;
    }
    set_json(p, 200,
             json_pack("{s:o, s:o}", "resources", c.arr, "next",
                       c.more ? vse__jstr(c.last_id) : json_null()));
}

static void history(const struct vsed_req *q, struct vsed_resp *p,
                    const struct path *pa)
{
    struct collect c = {q->db, NULL, NULL, HISTORY_DEFAULT, 0, "", 0, 0};
    struct vse_error err;
    int64_t since = 0, limit = HISTORY_DEFAULT, t0;
    int rc;

    if (arg_int(q, p, "since", 0, INT64_MAX, &since) != 0 ||
        arg_int(q, p, "limit", 1, HISTORY_MAX, &limit) != 0)
        return;
    c.want = (size_t)limit;
    c.arr = json_array();
    vse_error_clear(&err);
    t0 = vse__now_mono_us();
    rc = vse_history(q->db, pa->name, since, c.want + 1, collect_event, &c,
                     &err);
    vsed_metrics_store(vse__now_mono_us() - t0);
    if (rc < 0) {
        json_decref(c.arr);
        lib_error(q, p, rc, &err, NULL);
        return;
    }
    set_json(p, 200,
             json_pack("{s:o, s:o}", "history", c.arr, "next",
                       c.more ? json_integer(c.last_seq) : json_null()));
}

static void machines(const struct vsed_req *q, struct vsed_resp *p)
{
    const char *const *names = vse_machine_builtin_names();
    json_t *arr = json_array();

    for (; names != NULL && *names != NULL; names++) {
        const vse_machine *m = vse_find_machine(q->db, *names);

        if (m != NULL)
            json_array_append_new(
                arr, json_pack("{s:s, s:i, s:s}", "name", vse_machine_name(m),
                               "version", vse_machine_version(m), "hash",
                               vse_machine_hash(m)));
    }
    set_json(p, 200, json_pack("{s:o}", "machines", arr));
}

static void machine(const struct vsed_req *q, struct vsed_resp *p,
                    const struct path *pa)
{
    const vse_machine *m = vse_find_machine(q->db, pa->name);
    const char *fs = vsed_arg(q, "format");
    enum vse_format fmt = VSE_FORMAT_JSON;
    struct vse_error err;
    char *text = NULL, msg[160];

    if (fs != NULL) {
        fmt = vse_format_parse(fs);
        if (fmt == 0) {
            vsed_api_error(p, 400, "invalid", "unknown format", NULL,
                           "format: json, table, dot or mermaid");
            return;
        }
    }
    if (m == NULL) {
        snprintf(msg, sizeof(msg), "machine '%.64s' not found", pa->name);
        vsed_api_error(p, 404, "not_found", msg, NULL, NULL);
        return;
    }
    vse_error_clear(&err);
    if (vse_machine_render(m, fmt, &text, &err) < 0) {
        lib_error(q, p, VSE_ENOMEM, &err, NULL);
        return;
    }
    /* Texts come back from the library allocator: copy into ours. */
    vsed_reply_text(p, 200, strdup(text),
                    fmt == VSE_FORMAT_JSON ? "application/json"
                                           : "text/plain; charset=utf-8");
    vse_free(text);
}

static void reap(const struct vsed_req *q, struct vsed_resp *p)
{
    static const char *const none[] = {NULL};
    struct vse_reap_stats s;
    struct vse_error err;
    json_t *j = body_object(q, p, none);
    int64_t t0;
    int rc;

    if (j == NULL)
        return;
    json_decref(j);
    memset(&s, 0, sizeof(s));
    vse_error_clear(&err);
    t0 = vse__now_mono_us();
    rc = vse_reap(q->db, &s, &err);
    vsed_metrics_store(vse__now_mono_us() - t0);
    if (rc < 0) {
        lib_error(q, p, rc, &err, NULL);
        return;
    }
    set_json(p, 200,
             json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "examined",
                       (json_int_t)s.examined, "retried",
                       (json_int_t)s.retried, "failed", (json_int_t)s.failed,
                       "reverted", (json_int_t)s.reverted, "skipped",
                       (json_int_t)s.skipped, "exhausted",
                       (json_int_t)s.exhausted, "unclaimed",
                       (json_int_t)s.unclaimed));
}

static void purge(const struct vsed_req *q, struct vsed_resp *p)
{
    static const char *const f[] = {"older_than_ms", "keep_terminal", NULL};
    struct vse_purge_policy pol;
    struct vse_purge_stats s;
    struct vse_error err;
    int64_t older = PURGE_DEFAULT_MS, t0;
    int keep = 0, rc;
    json_t *j = body_object(q, p, f);

    if (j == NULL)
        return;
    rc = field_int(j, p, "older_than_ms", 1, INT64_C(1000000000000),
                   &older) ||
         field_bool(j, p, "keep_terminal", &keep);
    json_decref(j);
    if (rc != 0)
        return;
    memset(&pol, 0, sizeof(pol));
    memset(&s, 0, sizeof(s));
    pol.before = vse_now_us() - older * 1000;
    pol.drop_terminal = !keep;
    vse_error_clear(&err);
    t0 = vse__now_mono_us();
    rc = vse_purge(q->db, &pol, &s, &err);
    vsed_metrics_store(vse__now_mono_us() - t0);
    if (rc < 0) {
        lib_error(q, p, rc, &err, NULL);
        return;
    }
    set_json(p, 200,
             json_pack("{s:I, s:I}", "history_rows",
                       (json_int_t)s.history_rows, "resources",
                       (json_int_t)s.resources));
}

static void metrics(const struct vsed_req *q, struct vsed_resp *p)
{
    size_t len = 0;
    char *text = vsed_metrics_render(q->db, &len);

    if (text == NULL) {
        vsed_api_error(p, 500, "no_memory", "out of memory", NULL, NULL);
        return;
    }
    vsed_reply_text(p, 200, text, "text/plain; version=0.0.4; charset=utf-8");
    p->len = len;
}

/* Which methods a route takes, and the role each needs. */
static int route_rules(int route, const char *method, enum vsed_role *need,
                       const char **allow)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;

    switch (route) {
    case R_HEALTHZ:
        *need = ROLE_NONE;
        *allow = "GET, HEAD";
        return get;
    case R_METRICS:
    case R_MACHINES:
    case R_MACHINE:
    case R_RESOURCE:
    case R_HISTORY:
    case R_EVENTS:
    case R_HOLDS:
        *need = ROLE_READER;
        *allow = "GET, HEAD";
        return get;
    case R_RESOURCES:
        *need = post ? ROLE_MEMBER : ROLE_READER;
        *allow = "GET, HEAD, POST";
        return get || post;
    case R_TRANSITION:
        *need = ROLE_MEMBER;
        *allow = "POST";
        return post;
    case R_RESET:
    case R_REAP:
    case R_PURGE:
        *need = ROLE_ADMIN;
        *allow = "POST";
        return post;
    }
    return 0;
}

void vsed_api_handle(const struct vsed_req *q, struct vsed_resp *p)
{
    enum vsed_role need = ROLE_NONE;
    const char *allow = NULL;
    struct path pa;
    char msg[160];

    memset(p, 0, sizeof(*p));
    parse_path(q->path, &pa);
    p->route = pa.route;
    if (pa.route == R_UNKNOWN) {
        snprintf(msg, sizeof(msg), "no route '%.100s'", q->path);
        vsed_api_error(p, 404, "not_found", msg, NULL,
                       "see docs/api.md; routes are under /v1");
        return;
    }
    if (!route_rules(pa.route, q->method, &need, &allow)) {
        snprintf(msg, sizeof(msg), "method %.16s is not allowed on %.100s",
                 q->method, q->path);
        vsed_api_error(p, 405, "method_not_allowed", msg, NULL, NULL);
        p->allow = allow;
        return;
    }
    if (vsed_api_allow(q, need, p) != 0)
        return;
    if (q->too_many_args) {
        vsed_api_error(p, 400, "invalid", "too many query arguments", NULL,
                       NULL);
        return;
    }
    if (q->body_len > 0 && !vsed_is_json_type(q->content_type)) {
        vsed_api_error(p, 415, "unsupported_media_type",
                       "request body must be application/json", NULL, NULL);
        return;
    }
    if (q->db == NULL) {
        if (pa.route == R_HEALTHZ) {
            set_json(p, 503, json_pack("{s:s}", "status", "unavailable"));
            return;
        }
        vsed_api_error(p, 503, "store", "store not available", q->db_error,
                       NULL);
        return;
    }
    switch (pa.route) {
    case R_HEALTHZ:
        set_json(p, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case R_METRICS: metrics(q, p); break;
    case R_MACHINES: machines(q, p); break;
    case R_MACHINE: machine(q, p, &pa); break;
    case R_RESOURCES:
        if (strcmp(q->method, "POST") == 0)
            transition(q, p, &pa);
        else
            list_resources(q, p);
        break;
    case R_RESOURCE: get_resource(q, p, &pa); break;
    case R_TRANSITION:
    case R_RESET: transition(q, p, &pa); break;
    case R_HISTORY: history(q, p, &pa); break;
    case R_REAP: reap(q, p); break;
    case R_PURGE: purge(q, p); break;
    case R_HOLDS: list_holds(q, p); break;
    default:
        /* R_EVENTS is answered by http.c; here only by the fuzzer. */
        vsed_api_error(p, 404, "not_found", "no route", NULL, NULL);
        break;
    }
}
