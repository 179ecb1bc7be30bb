/*
 * cinder-lists.c - GET /volumes[/detail] and /snapshots[/detail] as
 * Cinder lists them: newest first (created_at, then id, descending),
 * `sort=KEY[:DIR][,KEY[:DIR]]` or the older `sort_key`/`sort_dir`, and
 * pages of at most `limit` (and never more than Cinder's default
 * osapi_max_limit, 1000) after `marker`, with a "next" link in
 * volumes_links / snapshots_links when a page is full.
 *
 * The store lists in id order, so the rows the caller may see are
 * gathered, sorted here and then cut to the page: a list costs what the
 * project's live rows cost, as a Cinder list costs its SQL sort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cinder.h"

#define MAX_LIMIT 1000 /* Cinder's osapi_max_limit default */
#define MAX_KEYS 8

/* The sort keys a list accepts, as Cinder names them, and where the
 * value comes from: attrs member `attr`, or the row itself. */
enum src { S_ID, S_CREATED, S_UPDATED, S_STATUS, S_ATTR, S_ATTR_INT };
static const struct key {
    const char *name;
    enum src src;
    const char *attr;
    int snapshots; /* 1: snapshots only, -1: volumes only, 0: both */
} keys[] = {
    {"id", S_ID, NULL, 0},
    {"created_at", S_CREATED, NULL, 0},
    {"updated_at", S_UPDATED, NULL, 0},
    {"status", S_STATUS, NULL, 0},
    {"name", S_ATTR, "name", 0},
    {"display_name", S_ATTR, "name", 0},
    {"description", S_ATTR, "description", 0},
    {"display_description", S_ATTR, "description", 0},
    {"size", S_ATTR_INT, "size", 0},
    {"project_id", S_ATTR, "project_id", 0},
    {"user_id", S_ATTR, "user_id", 0},
    {"availability_zone", S_ATTR, "availability_zone", -1},
    {"bootable", S_ATTR, "bootable", -1},
    {"volume_type", S_ATTR, "volume_type", -1},
    {"volume_id", S_ATTR, "volume_id", 1},
};

struct order {
    int n;
    const struct key *k[MAX_KEYS];
    int desc[MAX_KEYS];
};

/* One row that passed the filters: its sort values and its JSON. */
struct row {
    const struct order *ord;
    json_t *vals; /* array, one value per sort key */
    json_t *out;
    char id[VSE_ID_MAX + 1];
};

struct gather {
    struct cinder_listing *l;
    const struct order *ord;
    struct row *rows;
    size_t n, cap;
    int oom;
};

static const struct key *find_key(const char *name, int snapshots)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, name) == 0 &&
            (keys[i].snapshots == 0 ||
             keys[i].snapshots == (snapshots ? 1 : -1)))
            return &keys[i];
    return NULL;
}

static int add_key(struct cinder_ctx *c, struct order *o, const char *name,
                   size_t len, const char *dir, size_t dlen, int snapshots)
{
    char k[64], d[16];

    snprintf(k, sizeof(k), "%.*s", (int)(len < 63 ? len : 63), name);
    snprintf(d, sizeof(d), "%.*s", (int)(dlen < 15 ? dlen : 15), dir);
    if (o->n == MAX_KEYS) {
        cinder_fault(c, 400, "Invalid input received: at most %d sort keys",
                     MAX_KEYS);
        return -1;
    }
    o->k[o->n] = find_key(k, snapshots);
    if (o->k[o->n] == NULL || len == 0) {
        cinder_fault(c, 400,
                     "Invalid input received: Invalid sort key '%s' (sort "
                     "keys of %s: id, created_at, updated_at, status, name, "
                     "description, size, project_id, user_id, %s)",
                     k, snapshots ? "snapshots" : "volumes",
                     snapshots ? "volume_id"
                               : "availability_zone, bootable, volume_type");
        return -1;
    }
    if (d[0] == '\0' || strcasecmp(d, "desc") == 0) {
        o->desc[o->n] = 1;
    } else if (strcasecmp(d, "asc") == 0) {
        o->desc[o->n] = 0;
    } else {
        cinder_fault(c, 400,
                     "Invalid input received: Unknown sort direction '%s', "
                     "must be 'desc' or 'asc'",
                     d);
        return -1;
    }
    o->n++;
    return 0;
}

/* Split "a:asc,b" (sort) or "a,b" with "asc,desc" (sort_key, sort_dir)
 * into o; then, as Cinder does, created_at and id are added (in the
 * first key's direction) when missing, so that the order is total. */
static int parse_order(struct cinder_ctx *c, struct order *o, int snapshots)
{
    const char *sort = vsed_arg(c->q, "sort");
    const char *skey = vsed_arg(c->q, "sort_key");
    const char *sdir = vsed_arg(c->q, "sort_dir");
    int first_desc = 1;

    memset(o, 0, sizeof(*o));
    if (sort != NULL && (skey != NULL || sdir != NULL)) {
        cinder_fault(c, 400,
                     "The 'sort_key' and 'sort_dir' parameters are "
                     "deprecated and cannot be used with the 'sort' "
                     "parameter.");
        return -1;
    }
    if (sort != NULL) {
        for (const char *p = sort; *p != '\0';) {
            size_t len = strcspn(p, ",");
            const char *colon = memchr(p, ':', len);
            size_t klen = colon ? (size_t)(colon - p) : len;

            if (add_key(c, o, p, klen, colon ? colon + 1 : "",
                        colon ? len - klen - 1 : 0, snapshots) != 0)
                return -1;
            p += len;
            p += *p == ',';
        }
    } else if (skey != NULL || sdir != NULL) {
        const char *k = skey != NULL ? skey : "created_at";
        const char *d = sdir != NULL ? sdir : "";

        while (*k != '\0') {
            size_t len = strcspn(k, ","), dlen = strcspn(d, ",");

            if (add_key(c, o, k, len, d, dlen, snapshots) != 0)
                return -1;
            k += len;
            k += *k == ',';
            /* The last direction goes for the keys after it. */
            if (d[dlen] == ',')
                d += dlen + 1;
        }
    }
    if (o->n > 0)
        first_desc = o->desc[0];
    for (int i = 0; i < 2; i++) {
        const struct key *dk = find_key(i == 0 ? "created_at" : "id", 0);
        int have = 0;

        for (int j = 0; j < o->n; j++)
            have |= o->k[j] == dk;
        if (have)
            continue;
        if (o->n == MAX_KEYS)
            o->n--; /* room for the tie-breakers: the order stays total */
        o->k[o->n] = dk;
        o->desc[o->n++] = first_desc;
    }
    return 0;
}

static json_t *value_of(const struct key *k, vse_db *db,
                        const struct vse_resource *r, const json_t *a)
{
    json_t *v;

    switch (k->src) {
    case S_ID: return json_string(r->id);
    case S_CREATED: return json_integer(r->created);
    case S_UPDATED: return json_integer(r->updated);
    case S_STATUS: return json_string(cinder_status(db, r));
    case S_ATTR_INT: return json_integer(vsed_attr_int(a, k->attr, 0));
    case S_ATTR:
        v = json_object_get(a, k->attr);
        return v != NULL ? json_deep_copy(v) : json_null();
    }
    return json_null();
}

/* null first, then false < true, numbers, strings. */
static int rank(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return 0;
    case JSON_FALSE: return 1;
    case JSON_TRUE: return 2;
    case JSON_INTEGER:
    case JSON_REAL: return 3;
    case JSON_STRING: return 4;
    default: return 5;
    }
}

static int cmp_value(const json_t *a, const json_t *b)
{
    int ra = rank(a), rb = rank(b);

    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 3) {
        double x = json_number_value(a), y = json_number_value(b);

        return x < y ? -1 : x > y;
    }
    if (ra == 4)
        return strcmp(json_string_value(a), json_string_value(b));
    return 0;
}

static int cmp_rows(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;

    for (int i = 0; i < a->ord->n; i++) {
        int d = cmp_value(json_array_get(a->vals, (size_t)i),
                          json_array_get(b->vals, (size_t)i));

        if (d != 0)
            return a->ord->desc[i] ? -d : d;
    }
    return 0;
}

static int gather_one(void *arg, const struct vse_resource *r)
{
    struct gather *g = arg;
    struct cinder_listing *l = g->l;
    struct row *w;
    json_t *a;

    a = vsed_attrs(r);
    if (!cinder_list_match(l, r, a)) {
        json_decref(a);
        return 0;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct row *p = realloc(g->rows, cap * sizeof(*p));

        if (p == NULL) {
            json_decref(a);
            g->oom = 1;
            return 1;
        }
        g->rows = p;
        g->cap = cap;
    }
    w = &g->rows[g->n++];
    memset(w, 0, sizeof(*w));
    w->ord = g->ord;
    snprintf(w->id, sizeof(w->id), "%s", r->id);
    w->vals = json_array();
    for (int i = 0; i < g->ord->n; i++)
        json_array_append_new(w->vals,
                              value_of(g->ord->k[i], l->c->q->db, r, a));
    w->out = strcmp(l->machine, VSED_MACHINE_VOLUME) == 0
                 ? cinder_volume_json(l->c, r, a, l->detail)
                 : cinder_snapshot_json(l->c, r, a, l->detail);
    json_decref(a);
    return 0;
}

/* Percent-encode s into buf for a query string. */
static void qenc(char *buf, size_t size, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (; *s != '\0' && n + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr("-._~:,", ch) != NULL) {
            buf[n++] = (char)ch;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[ch >> 4];
            buf[n++] = hex[ch & 15];
        }
    }
    buf[n] = '\0';
}

/* Cinder's next link: this collection, with the request's query and
 * marker set to the page's last id. */
static json_t *next_link(const struct cinder_ctx *c, const char *coll,
                         int detail, const char *last)
{
    char href[4096], v[1024];
    size_t n;

    n = (size_t)snprintf(href, sizeof(href), "%s/%s%s?", c->base, coll,
                         detail ? "/detail" : "");
    for (int i = 0; i < c->q->nargs && n < sizeof(href); i++) {
        if (strcmp(c->q->args[i].key, "marker") == 0)
            continue;
        qenc(v, sizeof(v), c->q->args[i].key);
        n += (size_t)snprintf(href + n, sizeof(href) - n, "%s=", v);
        if (n >= sizeof(href))
            break;
        qenc(v, sizeof(v), c->q->args[i].value ? c->q->args[i].value : "");
        n += (size_t)snprintf(href + n, sizeof(href) - n, "%s&", v);
    }
    if (n < sizeof(href)) {
        qenc(v, sizeof(v), last);
        snprintf(href + n, sizeof(href) - n, "marker=%s", v);
    }
    return json_pack("[{s:s, s:s}]", "rel", "next", "href", href);
}

/* ?limit=: Cinder's rules (an integer, not negative; 0 or none is the
 * maximum; more than the maximum is the maximum).  0, or -1 after
 * answering 400. */
static int parse_limit(struct cinder_ctx *c, size_t *limit)
{
    const char *s = vsed_arg(c->q, "limit");
    char *end;
    long long v;

    *limit = MAX_LIMIT;
    if (s == NULL)
        return 0;
    v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0') {
        cinder_fault(c, 400, "limit param must be an integer");
        return -1;
    }
    if (v < 0) {
        cinder_fault(c, 400, "limit param must be positive");
        return -1;
    }
    if (v > 0 && v < MAX_LIMIT)
        *limit = (size_t)v;
    return 0;
}

void cinder_list(struct cinder_ctx *c, const char *machine, int detail)
{
    int vol = strcmp(machine, VSED_MACHINE_VOLUME) == 0;
    const char *coll = vol ? "volumes" : "snapshots";
    const char *marker = vsed_arg(c->q, "marker");
    struct cinder_listing l;
    struct order ord;
    struct gather g;
    struct vse_filter f;
    struct vse_error err;
    size_t limit, start = 0, end;
    json_t *arr, *out;
    char links[32];
    int rc;

    if (parse_order(c, &ord, !vol) != 0 || parse_limit(c, &limit) != 0)
        return;
    memset(&l, 0, sizeof(l));
    memset(&f, 0, sizeof(f));
    memset(&g, 0, sizeof(g));
    l.c = c;
    l.machine = machine;
    l.detail = detail;
    l.name = vsed_arg(c->q, "name");
    l.status = vsed_arg(c->q, "status");
    l.volume_id = vsed_arg(c->q, "volume_id");
    l.all = cinder_all_tenants(c);
    g.l = &l;
    g.ord = &ord;
    f.machine = machine;
    /* Deleted rows are kept until a purge: leave them out in the store. */
    f.not_state = cinder_deleted(machine);
    vse_error_clear(&err);
    rc = vse_list(c->q->db, &f, gather_one, &g, &err);
    if (rc == 0 && g.oom) {
        rc = VSE_ENOMEM;
        err.code = rc;
        snprintf(err.msg, sizeof(err.msg), "out of memory sorting the list");
    }
    if (rc == 0 && g.n > 1)
        qsort(g.rows, g.n, sizeof(*g.rows), cmp_rows);
    if (rc == 0 && marker != NULL) {
        while (start < g.n && strcmp(g.rows[start].id, marker) != 0)
            start++;
        if (start == g.n) {
            cinder_fault(c, 400,
                         "Invalid input received: marker '%s' is not a "
                         "%s in this list (it may have been deleted, or "
                         "belong to another project)",
                         marker, vol ? "volume" : "snapshot");
            rc = 1;
        } else {
            start++;
        }
    }
    if (rc < 0)
        cinder_lib_fault(c, machine, "list", rc, &err);
    arr = json_array();
    end = start + limit < g.n ? start + limit : g.n;
    for (size_t i = 0; i < g.n; i++) {
        if (rc == 0 && i >= start && i < end)
            json_array_append(arr, g.rows[i].out);
        json_decref(g.rows[i].out);
        json_decref(g.rows[i].vals);
    }
    if (rc != 0) {
        json_decref(arr);
        free(g.rows);
        return;
    }
    out = json_pack("{s:o}", coll, arr);
    /* Cinder links the next page whenever this one is full. */
    if (end > start && end - start == limit) {
        snprintf(links, sizeof(links), "%s_links", coll);
        json_object_set_new(out, links,
                            next_link(c, coll, detail, g.rows[end - 1].id));
    }
    free(g.rows);
    cinder_reply(c, 200, out);
}
