/*
 * httpjson.c - the HTTP/JSON plumbing that /v1 (api-v1.c) and the Cinder
 * v3 API (cinder*.c) share: replies, the two error shapes, the one map
 * from vse error codes to HTTP statuses, the one map from a row to its
 * visible status, query arguments and JSON request bodies.  Each API
 * words its own answers; how they are built and sent is decided here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json.h"
#include "vsed.h"

/* ---- replies ------------------------------------------------------------ */

/* What a reply says when even its JSON could not be made. */
static const char *const oom_body[] = {
    [VSED_DIALECT_V1] = "{\"error\":{\"code\":\"no_memory\",\"message\":"
                        "\"out of memory\"}}\n",
    [VSED_DIALECT_CINDER] = "{\"computeFault\":{\"message\":\"out of "
                            "memory\",\"code\":500}}",
};

void vsed_reply(struct vsed_resp *p, enum vsed_dialect d, int status,
                json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)
                        : NULL;
    size_t n;

    json_decref(j);
    free(p->body);
    p->body = NULL;
    p->content_type = "application/json";
    if (s == NULL) {
        p->status = 500;
        p->body = strdup(oom_body[d]);
        p->len = p->body != NULL ? strlen(p->body) : 0;
        return;
    }
    n = strlen(s);
    p->body = s;
    p->len = n;
    p->status = status;
    /* /v1 ends a body with a newline, as vsectl prints it; Cinder's
     * answers end with the closing brace. */
    if (d == VSED_DIALECT_V1) {
        char *t = realloc(s, n + 2);

        if (t != NULL) {
            t[n] = '\n';
            t[n + 1] = '\0';
            p->body = t;
            p->len = n + 1;
        }
    }
}

void vsed_reply_text(struct vsed_resp *p, int status, char *text,
                     const char *ctype)
{
    free(p->body);
    p->body = text;
    p->len = text != NULL ? strlen(text) : 0;
    p->status = status;
    p->content_type = ctype;
}

void vsed_reply_empty(struct vsed_resp *p, int status)
{
    vsed_reply_text(p, status, strdup(""), "application/json");
}

/* ---- the two error shapes ----------------------------------------------- */

json_t *vsed_error_json(const char *code, const char *msg, const char *detail,
                        const char *hint)
{
    json_t *e = json_pack("{s:s, s:o}", "code", code, "message",
                          vse__jstr(msg));

    if (e == NULL)
        return NULL;
    if (detail != NULL && detail[0] != '\0')
        json_object_set_new(e, "detail", vse__jstr(detail));
    if (hint != NULL && hint[0] != '\0')
        json_object_set_new(e, "hint", vse__jstr(hint));
    return json_pack("{s:o}", "error", e);
}

void vsed_api_error(struct vsed_resp *p, int status, const char *code,
                    const char *msg, const char *detail, const char *hint)
{
    vsed_reply(p, VSED_DIALECT_V1, status,
               vsed_error_json(code, msg, detail, hint));
}

/* Cinder names its faults by status (cinder/api/openstack/wsgi.py). */
static const char *fault_name(int status)
{
    switch (status) {
    case 400: return "badRequest";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "itemNotFound";
    case 405: return "badMethod";
    case 406: return "notAcceptable";
    case 409: return "conflictingRequest";
    case 413: return "overLimit";
    case 415: return "badMediaType";
    case 503: return "serviceUnavailable";
    }
    return "computeFault";
}

void vsed_cinder_vfault(struct vsed_resp *p, int status, const char *fmt,
                        va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    vsed_reply(p, VSED_DIALECT_CINDER, status,
               json_pack("{s:{s:s, s:i}}", fault_name(status), "message", msg,
                         "code", status));
}

/* ---- one meaning per code ----------------------------------------------- */

int vsed_http_status(int rc, enum vsed_dialect d)
{
    /* A transition the volume's state does not allow is Cinder's
     * InvalidVolume, a 400; every other code answers as VSE_ERROR_MAP
     * says, in both APIs. */
    if (d == VSED_DIALECT_CINDER && rc == VSE_ECONFLICT)
        return 400;
    return vse_err_http_status(rc);
}

const char *vsed_status_of(vse_db *db, const struct vse_resource *r)
{
    const vse_machine *m = vse_find_machine(db, r->machine);
    const char *s = m != NULL ? vse_machine_status(m, r->state) : NULL;

    return s != NULL ? s : "";
}

/* ---- requests ----------------------------------------------------------- */

const char *vsed_arg(const struct vsed_req *q, const char *key)
{
    for (int i = 0; i < q->nargs; i++)
        if (strcmp(q->args[i].key, key) == 0)
            return q->args[i].value != NULL ? q->args[i].value : "";
    return NULL;
}

int vsed_is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

enum vsed_body vsed_body_parse(const struct vsed_req *q, json_t **out,
                               json_error_t *je)
{
    *out = NULL;
    if (q->body == NULL || q->body_len == 0)
        return VSED_BODY_EMPTY;
    *out = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, je);
    if (*out == NULL)
        return VSED_BODY_SYNTAX;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return VSED_BODY_NOT_OBJECT;
    }
    return VSED_BODY_OK;
}
