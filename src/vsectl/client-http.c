/*
 * client-http.c - vsectl's client interface over vsed's /v1 API with
 * libcurl (one easy handle, so one kept-alive connection per command).
 * Errors come back as the library's codes, from the API's error code, so
 * exit statuses and messages are those of --store.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client.h"
#include "vsectl.h"

struct buf {
    char *p;
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *p = realloc(b->p, b->len + size * n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, size * n);
    b->p = p;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    int *repeated = arg;

    if (size * n >= 15 && strncasecmp(data, "X-Vse-Repeated:", 15) == 0)
        *repeated = 1;
    return size * n;
}

/* A code the API sent that the library does not have: by HTTP status. */
static int rc_of_status(long status)
{
    switch (status) {
    case 400:
    case 413:
    case 415:
    case 422: return VSE_EINVAL;
    case 404: return VSE_ENOTFOUND;
    case 409: return VSE_ECONFLICT;
    default: return VSE_EIO;
    }
}

static void copy(char *dst, size_t size, json_t *j)
{
    if (json_is_string(j))
        snprintf(dst, size, "%s", json_string_value(j));
}

/*
 * One request: METHOD path (already escaped) with an optional JSON body.
 * On success *out gets the parsed body (or NULL for a text body in
 * *text).  On an API error the error shape becomes err and the rc; a
 * conflict's current row goes to *cur.
 */
static int request(struct ctx *ctx, const char *method, const char *path,
                   json_t *body, const char *request_id, json_t **out,
                   int *repeated, struct vse_resource *cur,
                   struct vse_error *err)
{
    CURL *c = ctx->http;
    struct curl_slist *h = NULL;
    struct buf b = {NULL, 0};
    char url[4096], hdr[512], *payload = NULL;
    long status = 0;
    json_t *j, *e;
    CURLcode cc;
    int rc;

    *out = NULL;
    *repeated = 0;
    snprintf(url, sizeof(url), "%s%s", ctx->url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "{}");
        h = curl_slist_append(h, "Content-Type: application/json");
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (ctx->token != NULL) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", ctx->token);
        h = curl_slist_append(h, hdr);
    }
    if (request_id != NULL) {
        snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", request_id);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, repeated);
    cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    free(payload);
    if (cc != CURLE_OK) {
        free(b.p);
        snprintf(err->msg, sizeof(err->msg), "cannot reach vsed at '%s'",
                 ctx->url);
        snprintf(err->detail, sizeof(err->detail), "%s",
                 curl_easy_strerror(cc));
        return VSE_EIO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    j = b.p != NULL ? json_loadb(b.p, b.len, 0, NULL) : NULL;
    free(b.p);
    if (status >= 200 && status < 300) {
        if (j == NULL) {
            snprintf(err->msg, sizeof(err->msg),
                     "vsed answered %ld with a "
                     "body that is not JSON",
                     status);
            return VSE_EIO;
        }
        *out = j;
        return 0;
    }
    e = json_object_get(j, "error");
    rc = vse__err_from_code(json_string_value(json_object_get(e, "code")));
    if (rc == 0)
        rc = rc_of_status(status);
    if (e != NULL) {
        copy(err->msg, sizeof(err->msg), json_object_get(e, "message"));
        copy(err->detail, sizeof(err->detail), json_object_get(e, "detail"));
        copy(err->hint, sizeof(err->hint), json_object_get(e, "hint"));
        if (cur != NULL && json_object_get(e, "current") != NULL)
            vse__json_to_resource(json_object_get(e, "current"), cur, NULL);
    } else {
        snprintf(err->msg, sizeof(err->msg), "vsed answered HTTP %ld",
                 status);
    }
    err->code = rc;
    json_decref(j);
    return rc;
}

/* "/v1/resources/ID" + suffix, the id escaped. */
static void res_path(struct ctx *ctx, char *buf, size_t size, const char *id,
                     const char *suffix)
{
    char *e = curl_easy_escape(ctx->http, id, 0);

    snprintf(buf, size, "/v1/resources/%s%s", e ? e : "", suffix);
    curl_free(e);
}

static void set_str(json_t *j, const char *key, const char *v)
{
    if (v != NULL)
        json_object_set_new(j, key, json_string(v));
}

static int http_transition(struct ctx *ctx, const struct tr *t,
                           struct vse_resource *out, char *status,
                           struct vse_error *err)
{
    static const char *const action[] = {
        [VSE_KIND_BEGIN] = "/begin",       [VSE_KIND_STEP] = "/step",
        [VSE_KIND_FINISH] = "/finish",     [VSE_KIND_FAIL] = "/fail",
        [VSE_KIND_CLAIM] = "/claim",       [VSE_KIND_RENEW] = "/renew",
        [VSE_KIND_RESET] = "/reset-state", [VSE_KIND_UPDATE] = "/update"};
    json_t *body = json_object(), *res = NULL;
    char path[1024];
    int repeated, rc;

    memset(out, 0, sizeof(*out));
    status[0] = '\0';
    if (t->kind == VSE_KIND_CREATE) {
        snprintf(path, sizeof(path), "/v1/resources");
        set_str(body, "machine", t->machine);
        set_str(body, "id", t->id);
        set_str(body, "op", t->o.op);
    } else {
        res_path(ctx, path, sizeof(path), t->id, action[t->kind]);
    }
    set_str(body, "op", t->op);
    set_str(body, "hold", t->o.hold);
    set_str(body, "op_id", t->op_id);
    set_str(body, "to", t->to);
    set_str(body, "reason", t->o.reason);
    if (t->kind == VSE_KIND_CREATE || t->kind == VSE_KIND_BEGIN ||
        t->kind == VSE_KIND_CLAIM || t->kind == VSE_KIND_RESET)
        set_str(body, "owner", t->o.owner);
    if (t->o.ttl_ms > 0 && t->kind != VSE_KIND_STEP &&
        t->kind != VSE_KIND_FINISH && t->kind != VSE_KIND_FAIL &&
        t->kind != VSE_KIND_RESET)
        json_object_set_new(body, "ttl_ms", json_integer(t->o.ttl_ms));
    if (t->o.release)
        json_object_set_new(body, "release", json_true());
    if (t->o.attrs != NULL) {
        json_t *a = json_loads(t->o.attrs, 0, NULL);

        if (!json_is_object(a)) {
            json_decref(a);
            json_decref(body);
            snprintf(err->msg, sizeof(err->msg),
                     "attrs must be a JSON "
                     "object");
            return VSE_EINVAL;
        }
        json_object_set_new(body, "attrs", a);
    }
    rc = request(ctx, "POST", path, body, t->o.request_id, &res, &repeated,
                 out, err);
    json_decref(body);
    if (rc < 0)
        return rc;
    rc = vse__json_to_resource(res, out, status);
    json_decref(res);
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "vsed answered with a resource "
                 "vsectl cannot read");
        return VSE_EIO;
    }
    return repeated ? VSE_REPEATED : 0;
}

static int http_get(struct ctx *ctx, const char *id, struct vse_resource *out,
                    char *status, struct vse_error *err)
{
    json_t *res;
    char path[1024];
    int repeated, rc;

    res_path(ctx, path, sizeof(path), id, "");
    rc = request(ctx, "GET", path, NULL, NULL, &res, &repeated, NULL, err);
    if (rc < 0)
        return rc;
    rc = vse__json_to_resource(res, out, status);
    json_decref(res);
    return rc < 0 ? VSE_EIO : 0;
}

static void add_arg(struct ctx *ctx, char *buf, size_t size, const char *key,
                    const char *val)
{
    char *e;
    size_t n = strlen(buf);

    if (val == NULL)
        return;
    e = curl_easy_escape(ctx->http, val, 0);
    snprintf(buf + n, size - n, "%s%s=%s", strchr(buf, '?') ? "&" : "?", key,
             e ? e : "");
    curl_free(e);
}

#define PAGE_MAX 1000

static int http_list(struct ctx *ctx, const struct vse_filter *f,
                     client_res_cb cb, void *arg, struct vse_error *err)
{
    char after[VSE_ID_MAX + 1] = "", path[2048], num[32];
    size_t left = f->limit;
    int repeated, rc;

    if (f->after_id != NULL)
        snprintf(after, sizeof(after), "%s", f->after_id);
    for (;;) {
        size_t page = left != 0 && left < PAGE_MAX ? left : PAGE_MAX;
        json_t *res, *arr, *next, *item;
        size_t i;

        snprintf(path, sizeof(path), "/v1/resources");
        add_arg(ctx, path, sizeof(path), "machine", f->machine);
        add_arg(ctx, path, sizeof(path), "state", f->state);
        add_arg(ctx, path, sizeof(path), "not_state", f->not_state);
        add_arg(ctx, path, sizeof(path), "busy", f->busy ? "true" : NULL);
        add_arg(ctx, path, sizeof(path), "stuck", f->stuck ? "true" : NULL);
        add_arg(ctx, path, sizeof(path), "after", after[0] ? after : NULL);
        snprintf(num, sizeof(num), "%zu", page);
        add_arg(ctx, path, sizeof(path), "limit", num);
        rc = request(ctx, "GET", path, NULL, NULL, &res, &repeated, NULL,
                     err);
        if (rc < 0)
            return rc;
        arr = json_object_get(res, "resources");
        json_array_foreach(arr, i, item) {
            struct vse_resource r;
            char status[VSE_STATUS_MAX + 1];

            if (vse__json_to_resource(item, &r, status) < 0 ||
                cb(arg, &r, status) != 0) {
                json_decref(res);
                return 0;
            }
        }
        if (left != 0)
            left -= json_array_size(arr);
        next = json_object_get(res, "next");
        if (!json_is_string(next) || (f->limit != 0 && left == 0)) {
            json_decref(res);
            return 0;
        }
        snprintf(after, sizeof(after), "%s", json_string_value(next));
        json_decref(res);
    }
}

static int http_history(struct ctx *ctx, const char *id, int64_t since,
                        size_t limit, vse_event_cb cb, void *arg,
                        struct vse_error *err)
{
    size_t left = limit;
    char path[1024], num[32];
    int repeated, rc;

    for (;;) {
        size_t page = left != 0 && left < PAGE_MAX ? left : PAGE_MAX;
        json_t *res, *arr, *next, *item;
        size_t i;

        res_path(ctx, path, sizeof(path), id, "/history");
        snprintf(num, sizeof(num), "%lld", (long long)since);
        add_arg(ctx, path, sizeof(path), "since", num);
        snprintf(num, sizeof(num), "%zu", page);
        add_arg(ctx, path, sizeof(path), "limit", num);
        rc = request(ctx, "GET", path, NULL, NULL, &res, &repeated, NULL,
                     err);
        if (rc < 0)
            return rc;
        arr = json_object_get(res, "history");
        json_array_foreach(arr, i, item) {
            struct vse_event e;

            if (vse__json_to_event(item, &e) < 0 || cb(arg, &e) != 0) {
                json_decref(res);
                return 0;
            }
        }
        if (left != 0)
            left -= json_array_size(arr);
        next = json_object_get(res, "next");
        if (!json_is_integer(next) || (limit != 0 && left == 0)) {
            json_decref(res);
            return 0;
        }
        since = json_integer_value(next);
        json_decref(res);
    }
}

/* ---- watch: the event stream ------------------------------------------ */

struct sse {
    struct buf line;
    vse_event_cb cb;
    void *arg;
    volatile int *stop;
    int done;
    long status;
    struct buf other; /* a non-stream body (an error) */
    CURL *c;
};

static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
    struct sse *s = arg;
    size_t len = size * n;

    if (s->status == 0)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200)
        return on_body(data, size, n, &s->other);
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];

        if (ch != '\n') {
            if (on_body(&ch, 1, 1, &s->line) != 1)
                return 0;
            continue;
        }
        if (s->line.p != NULL && strncmp(s->line.p, "data: ", 6) == 0) {
            json_t *j = json_loads(s->line.p + 6, 0, NULL);
            struct vse_event e;

            if (j != NULL && vse__json_to_event(j, &e) == 0 &&
                s->cb(s->arg, &e) != 0)
                s->done = 1;
            json_decref(j);
            fflush(stdout);
        }
        s->line.len = 0;
        if (s->line.p != NULL)
            s->line.p[0] = '\0';
        if (s->done)
            return 0; /* ends the transfer */
    }
    return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d)
{
    struct sse *s = arg;

    return *s->stop != 0;
}

static int http_watch(struct ctx *ctx, int64_t after, int64_t timeout_ms,
                      volatile int *stop, vse_event_cb cb, void *arg,
                      struct vse_error *err)
{
    struct sse s = {{NULL, 0}, cb, arg, stop, 0, 0, {NULL, 0}, ctx->http};
    struct curl_slist *h = NULL;
    char url[4096], hdr[512];
    CURLcode cc;
    int rc = 0;

    snprintf(url, sizeof(url), "%s/v1/events?since=%lld", ctx->url,
             (long long)after);
    if (ctx->token != NULL) {
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", ctx->token);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(ctx->http, CURLOPT_URL, url);
    curl_easy_setopt(ctx->http, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(ctx->http, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(ctx->http, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(ctx->http, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(ctx->http, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(ctx->http, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(ctx->http, CURLOPT_XFERINFODATA, &s);
    curl_easy_setopt(ctx->http, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    cc = curl_easy_perform(ctx->http);
    curl_slist_free_all(h);
    if (s.status != 0 && s.status != 200) {
        json_t *j = s.other.p ? json_loads(s.other.p, 0, NULL) : NULL;
        json_t *e = json_object_get(j, "error");

        rc = vse__err_from_code(
            json_string_value(json_object_get(e, "code")));
        if (rc == 0)
            rc = rc_of_status(s.status);
        copy(err->msg, sizeof(err->msg), json_object_get(e, "message"));
        json_decref(j);
    } else if (cc != CURLE_OK && cc != CURLE_OPERATION_TIMEDOUT && !s.done &&
               !*stop) {
        snprintf(err->msg, sizeof(err->msg),
                 "event stream from '%s' "
                 "broke off",
                 ctx->url);
        snprintf(err->detail, sizeof(err->detail), "%s",
                 curl_easy_strerror(cc));
        rc = VSE_EIO;
    }
    free(s.line.p);
    free(s.other.p);
    return rc;
}

static int http_reap(struct ctx *ctx, struct vse_reap_stats *st,
                     struct vse_error *err)
{
    json_t *body = json_object(), *res;
    int repeated, rc;

    rc = request(ctx, "POST", "/v1/reap", body, NULL, &res, &repeated, NULL,
                 err);
    json_decref(body);
    if (rc < 0)
        return rc;
    st->examined = json_integer_value(json_object_get(res, "examined"));
    st->retried = json_integer_value(json_object_get(res, "retried"));
    st->failed = json_integer_value(json_object_get(res, "failed"));
    st->reverted = json_integer_value(json_object_get(res, "reverted"));
    st->skipped = json_integer_value(json_object_get(res, "skipped"));
    /* 0 from a vsed that predates retry budgets. */
    st->exhausted = json_integer_value(json_object_get(res, "exhausted"));
    st->unclaimed = json_integer_value(json_object_get(res, "unclaimed"));
    json_decref(res);
    return 0;
}

static int http_purge(struct ctx *ctx, int64_t older_ms, int keep_terminal,
                      struct vse_purge_stats *st, struct vse_error *err)
{
    json_t *body = json_pack("{s:I, s:b}", "older_than_ms",
                             (json_int_t)older_ms, "keep_terminal",
                             keep_terminal),
           *res;
    int repeated, rc;

    rc = request(ctx, "POST", "/v1/purge", body, NULL, &res, &repeated, NULL,
                 err);
    json_decref(body);
    if (rc < 0)
        return rc;
    st->history_rows = json_integer_value(
        json_object_get(res, "history_rows"));
    st->resources = json_integer_value(json_object_get(res, "resources"));
    json_decref(res);
    return 0;
}

static void http_close(struct ctx *ctx)
{
    curl_easy_cleanup(ctx->http);
    ctx->http = NULL;
    curl_global_cleanup();
}

int client_http_open(struct ctx *ctx)
{
    size_t n = strlen(ctx->url);

    if (strncmp(ctx->url, "http://", 7) != 0 &&
        strncmp(ctx->url, "https://", 8) != 0)
        return usage_error(ctx,
                           "--url '%s' must start with http:// or "
                           "https://",
                           ctx->url);
    /* "http://h:p/" and "http://h:p" name the same server. */
    while (n > 8 && ctx->url[n - 1] == '/')
        n--;
    ctx->url_buf = strndup(ctx->url, n);
    if (ctx->url_buf == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return report(VSE_ENOMEM, NULL);
    ctx->url = ctx->url_buf;
    ctx->http = curl_easy_init();
    if (ctx->http == NULL)
        return report(VSE_ENOMEM, NULL);
    curl_easy_setopt(ctx->http, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(ctx->http, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(ctx->http, CURLOPT_USERAGENT,
                     "vsectl/" VSE_VERSION_STRING);
    ctx->ops = &client_http;
    return 0;
}

static int http_holds(struct ctx *ctx, const char *held, const char *holder,
                      vse_hold_cb cb, void *arg, struct vse_error *err)
{
    char path[2048];
    json_t *res, *item;
    size_t i;
    int repeated, rc;

    snprintf(path, sizeof(path), "/v1/holds");
    add_arg(ctx, path, sizeof(path), "held", held);
    add_arg(ctx, path, sizeof(path), "holder", holder);
    rc = request(ctx, "GET", path, NULL, NULL, &res, &repeated, NULL, err);
    if (rc < 0)
        return rc;
    json_array_foreach(json_object_get(res, "holds"), i, item) {
        struct vse_hold h;

        if (vse__json_to_hold(item, &h) < 0) {
            json_decref(res);
            vse_error_clear(err);
            if (err != NULL)
                snprintf(err->msg, sizeof(err->msg),
                         "vsed answered with a hold vsectl cannot read");
            return VSE_EIO;
        }
        if (cb(arg, &h) != 0)
            break;
    }
    json_decref(res);
    return 0;
}

const struct client_ops client_http = {
    http_transition, http_get,   http_list,  http_history, http_watch,
    http_reap,       http_purge, http_close, http_holds,
};
