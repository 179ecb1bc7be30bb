/*
 * json.c - one JSON form of resources, history rows and error codes for
 * vsectl and vsed: `vsectl get --json` and `GET /v1/resources/ID` print
 * the same object, and vsectl --url reads it back without loss.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

json_t *vse__jstr(const char *s)
{
    json_t *j;
    char *copy;

    if (s == NULL || s[0] == '\0')
        return json_null();
    j = json_string(s);
    if (j != NULL)
        return j;
    /* Not UTF-8 (a reason written by an older client, say): keep the
     * ASCII, mark the rest, rather than drop the whole field. */
    copy = strdup(s);
    if (copy == NULL)
        return json_null();
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j != NULL ? j : json_null();
}

json_t *vse__jtime(int64_t us)
{
    char buf[40];

    if (us == 0)
        return json_null();
    return json_string(vse_time_format(us, buf, sizeof(buf)));
}

int64_t vse__time_parse(const char *s)
{
    struct tm tm;
    long usec = 0;
    const char *p;
    int n = 0;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL)
        return -1;
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9' && n < 6) {
            usec = usec * 10 + (*p++ - '0');
            n++;
        }
        for (; n < 6; n++)
            usec *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    return (int64_t)timegm(&tm) * 1000000 + usec;
}

/* A resource's attrs as JSON: the object itself ({} when empty). */
static json_t *attrs_json(const char *attrs)
{
    json_t *a = json_loads(attrs[0] ? attrs : "{}", 0, NULL);

    return a != NULL ? a : json_object();
}

json_t *vse__json_resource(const struct vse_resource *r, const char *status)
{
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:I, s:I, s:o, s:o, s:o}",
        "id", vse__jstr(r->id), "machine", vse__jstr(r->machine), "state",
        vse__jstr(r->state), "status", vse__jstr(status), "op",
        vse__jstr(r->op), "op_id", vse__jstr(r->op_id), "owner",
        vse__jstr(r->owner), "origin", vse__jstr(r->origin), "lease_expires",
        vse__jtime(r->lease_expires), "since", vse__jtime(r->since),
        "lease_ttl_ms", (json_int_t)(r->lease_ttl / 1000), "version",
        (json_int_t)r->version, "created", vse__jtime(r->created), "updated",
        vse__jtime(r->updated), "attrs", attrs_json(r->attrs));
}

json_t *vse__json_event(const struct vse_event *e)
{
    const char *kind = vse_kind_name(e->kind);

    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                     "s:o, s:I, s:o}",
                     "seq", (json_int_t)e->seq, "resource",
                     vse__jstr(e->resource), "machine", vse__jstr(e->machine),
                     "op", vse__jstr(e->op), "op_id", vse__jstr(e->op_id),
                     "from", vse__jstr(e->from), "to", vse__jstr(e->to),
                     "owner", vse__jstr(e->owner), "at", vse__jtime(e->at),
                     "reason", vse__jstr(e->reason), "kind",
                     vse__jstr(kind ? kind : ""), "version",
                     (json_int_t)e->version, "request_id",
                     vse__jstr(e->request_id));
}

/* Copy string member `key` (null = "") into buf; -1 if not a string. */
static int get_str(const json_t *j, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(j, key);

    buf[0] = '\0';
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= size)
        return -1;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_int(const json_t *j, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(j, key);

    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int get_time(const json_t *j, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(j, key);

    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = vse__time_parse(json_string_value(v));
    return *out < 0 ? -1 : 0;
}

int vse__json_to_resource(const json_t *j, struct vse_resource *r,
                          char *status)
{
    char st[VSE_STATUS_MAX + 1];
    int bad = 0;

    memset(r, 0, sizeof(*r));
    if (!json_is_object(j))
        return VSE_EINVAL;
    bad |= get_str(j, "id", r->id, sizeof(r->id));
    bad |= get_str(j, "machine", r->machine, sizeof(r->machine));
    bad |= get_str(j, "state", r->state, sizeof(r->state));
    bad |= get_str(j, "status", st, sizeof(st));
    bad |= get_str(j, "op", r->op, sizeof(r->op));
    bad |= get_str(j, "op_id", r->op_id, sizeof(r->op_id));
    bad |= get_str(j, "owner", r->owner, sizeof(r->owner));
    bad |= get_str(j, "origin", r->origin, sizeof(r->origin));
    bad |= get_time(j, "lease_expires", &r->lease_expires);
    bad |= get_time(j, "since", &r->since);
    bad |= get_int(j, "lease_ttl_ms", &r->lease_ttl);
    bad |= get_int(j, "version", &r->version);
    bad |= get_time(j, "created", &r->created);
    bad |= get_time(j, "updated", &r->updated);
    {
        const json_t *a = json_object_get(j, "attrs");
        char *s = json_is_object(a) ? json_dumps(a, JSON_COMPACT) : NULL;

        if (s != NULL && strlen(s) <= VSE_ATTRS_MAX)
            memcpy(r->attrs, s, strlen(s) + 1);
        else
            memcpy(r->attrs, "{}", 3);
        bad |= a != NULL && (s == NULL || strlen(s) > VSE_ATTRS_MAX);
        free(s);
    }
    r->lease_ttl *= 1000;
    if (status != NULL)
        memcpy(status, st, sizeof(st));
    return bad ? VSE_EINVAL : 0;
}

int vse__json_to_event(const json_t *j, struct vse_event *e)
{
    char kind[16];
    int bad = 0;

    memset(e, 0, sizeof(*e));
    if (!json_is_object(j))
        return VSE_EINVAL;
    bad |= get_int(j, "seq", &e->seq);
    bad |= get_str(j, "resource", e->resource, sizeof(e->resource));
    bad |= get_str(j, "machine", e->machine, sizeof(e->machine));
    bad |= get_str(j, "op", e->op, sizeof(e->op));
    bad |= get_str(j, "op_id", e->op_id, sizeof(e->op_id));
    bad |= get_str(j, "from", e->from, sizeof(e->from));
    bad |= get_str(j, "to", e->to, sizeof(e->to));
    bad |= get_str(j, "owner", e->owner, sizeof(e->owner));
    bad |= get_time(j, "at", &e->at);
    bad |= get_str(j, "reason", e->reason, sizeof(e->reason));
    bad |= get_str(j, "kind", kind, sizeof(kind));
    bad |= get_int(j, "version", &e->version);
    bad |= get_str(j, "request_id", e->request_id, sizeof(e->request_id));
    e->kind = vse_kind_parse(kind);
    return bad ? VSE_EINVAL : 0;
}

static const struct {
    int rc;
    const char *code;
} codes[] = {
    {VSE_EINVAL, "invalid"},     {VSE_ENOTFOUND, "not_found"},
    {VSE_ECONFLICT, "conflict"}, {VSE_EFENCED, "fenced"},
    {VSE_EEXIST, "exists"},      {VSE_ESTORE, "store"},
    {VSE_ENOMEM, "no_memory"},   {VSE_EMACHINE, "invalid_machine"},
    {VSE_ESCHEMA, "schema"},     {VSE_EPINNED, "pinned"},
    {VSE_ETOOBIG, "too_large"},  {VSE_EBUSY, "busy"},
    {VSE_EINTERNAL, "internal"}, {VSE_EIO, "io"},
};

json_t *vse__json_hold(const struct vse_hold *h)
{
    const char *mode = vse_hold_mode_name(h->mode);

    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "held",
                     vse__jstr(h->held), "holder", vse__jstr(h->holder),
                     "machine", vse__jstr(h->machine), "op", vse__jstr(h->op),
                     "op_id", vse__jstr(h->op_id), "mode",
                     vse__jstr(mode ? mode : ""), "owner",
                     vse__jstr(h->owner), "since", vse__jtime(h->since));
}

int vse__json_to_hold(const json_t *j, struct vse_hold *h)
{
    char mode[16];

    memset(h, 0, sizeof(*h));
    if (!json_is_object(j) ||
        get_str(j, "held", h->held, sizeof(h->held)) < 0 ||
        get_str(j, "holder", h->holder, sizeof(h->holder)) < 0 ||
        get_str(j, "machine", h->machine, sizeof(h->machine)) < 0 ||
        get_str(j, "op", h->op, sizeof(h->op)) < 0 ||
        get_str(j, "op_id", h->op_id, sizeof(h->op_id)) < 0 ||
        get_str(j, "mode", mode, sizeof(mode)) < 0 ||
        get_str(j, "owner", h->owner, sizeof(h->owner)) < 0 ||
        get_time(j, "since", &h->since) < 0)
        return -1;
    if (strcmp(mode, "shared") == 0)
        h->mode = VSE_HOLD_SHARED;
    else if (strcmp(mode, "exclusive") == 0)
        h->mode = VSE_HOLD_EXCLUSIVE;
    else
        return -1;
    return 0;
}

void vse__json_attach_holds(json_t *res, const char *id,
                            const struct vse_hold *v, size_t n)
{
    json_t *holds = json_array(), *holding = json_null();

    for (size_t i = 0; i < n; i++) {
        const char *mode = vse_hold_mode_name(v[i].mode);

        if (strcmp(v[i].held, id) == 0)
            json_array_append_new(
                holds,
                json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "holder",
                          vse__jstr(v[i].holder), "machine",
                          vse__jstr(v[i].machine), "op", vse__jstr(v[i].op),
                          "op_id", vse__jstr(v[i].op_id), "mode",
                          vse__jstr(mode ? mode : ""), "owner",
                          vse__jstr(v[i].owner), "since",
                          vse__jtime(v[i].since)));
        if (strcmp(v[i].holder, id) == 0 && json_is_null(holding))
            holding = json_pack("{s:o, s:o, s:o}", "held",
                                vse__jstr(v[i].held), "mode",
                                vse__jstr(mode ? mode : ""), "since",
                                vse__jtime(v[i].since));
    }
    json_object_set_new(res, "holds", holds ? holds : json_array());
    json_object_set_new(res, "holding", holding ? holding : json_null());
}

const char *vse__err_code(int rc)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].rc == rc)
            return codes[i].code;
    return "internal";
}

int vse__err_from_code(const char *code)
{
    for (size_t i = 0; code != NULL && i < sizeof(codes) / sizeof(codes[0]);
         i++)
        if (strcmp(codes[i].code, code) == 0)
            return codes[i].rc;
    return 0;
}
