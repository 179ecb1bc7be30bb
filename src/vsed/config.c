/*
 * config.c - vsed's YAML configuration (listen, store, auth,
 * reaper_interval, volume_workers, limits, tokens) read with libfyaml over the built-in
 * defaults; command-line flags are applied over it by main.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <libfyaml.h>

#include "util.h"
#include "vsed.h"

void vsed_config_init(struct vsed_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "%s", VSED_DEFAULT_LISTEN);
    snprintf(c->store, sizeof(c->store), "%s", VSED_DEFAULT_STORE);
    c->auth = 1;
    c->reaper_interval = 10;
    c->body_max = 64 * 1024;
    c->idle_timeout = 30;
    c->request_timeout = 30;
    c->conn_max = 4096;
    c->threads = 2;
    c->services = SVC_API | SVC_REAPER;
    if (gethostname(c->host, sizeof(c->host)) != 0 || c->host[0] == '\0')
        snprintf(c->host, sizeof(c->host), "localhost");
    c->host[sizeof(c->host) - 1] = '\0';
    snprintf(c->pool, sizeof(c->pool), "./var/pool");
    c->capacity_gb = 1000;
    c->volume_workers = 1;
    c->lease_ms = 30000;
    snprintf(c->lock_dir, sizeof(c->lock_dir), "/run/lock/vsed");
}

void vsed_config_release(struct vsed_config *c)
{
    free(c->tokens);
    c->tokens = NULL;
    c->ntokens = 0;
}

static const char *const role_names[] = {"none", "reader", "member", "admin"};

enum vsed_role vsed_role_parse(const char *s)
{
    for (int i = ROLE_READER; i <= ROLE_ADMIN; i++)
        if (strcmp(s, role_names[i]) == 0)
            return (enum vsed_role)i;
    return ROLE_NONE;
}

const char *vsed_role_name(enum vsed_role r)
{
    return r >= ROLE_NONE && r <= ROLE_ADMIN ? role_names[r] : "none";
}

struct cfgerr {
    const char *path;
    struct vse_error *err;
};

static int fail(struct cfgerr *e, struct fy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cfgerr *e, struct fy_node *n, const char *fmt, ...)
{
    const struct fy_mark *m = NULL;
    struct fy_token *t = n != NULL ? fy_node_get_scalar_token(n) : NULL;
    char what[VSE_ERROR_MSG_SIZE];
    va_list ap;

    if (t != NULL)
        m = fy_token_start_mark(t);
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (m != NULL)
        vse__err(e->err, VSE_EINVAL, "%s:%d:%d: %s", e->path, m->line + 1,
                 m->column + 1, what);
    else
        vse__err(e->err, VSE_EINVAL, "%s: %s", e->path, what);
    return -1;
}

/* The scalar text of n, NUL-terminated in buf; -1 if not a scalar. */
static int scalar(struct cfgerr *e, struct fy_node *n, const char *key,
                  char *buf, size_t size)
{
    const char *s;
    size_t len;

    if (n == NULL || !fy_node_is_scalar(n))
        return fail(e, n, "'%s' must be a plain value", key);
    s = fy_node_get_scalar(n, &len);
    if (s == NULL || len >= size)
        return fail(e, n, "'%s' is too long", key);
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 0;
}

static int number(struct cfgerr *e, struct fy_node *n, const char *key,
                  long long min, long long max, long long *out)
{
    char buf[32], *end;

    if (scalar(e, n, key, buf, sizeof(buf)) != 0)
        return -1;
    errno = 0;
    *out = strtoll(buf, &end, 10);
    if (buf[0] == '\0' || *end != '\0' || errno != 0 || *out < min ||
        *out > max)
        return fail(e, n, "'%s' must be a number from %lld to %lld", key, min,
                    max);
    return 0;
}

static int limits(struct cfgerr *e, struct vsed_config *c, struct fy_node *n)
{
    struct fy_node_pair *p;
    void *it = NULL;
    char key[64];
    long long v;

    if (!fy_node_is_mapping(n))
        return fail(e, n, "'limits' must be a mapping");
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *val = fy_node_pair_value(p);

        if (scalar(e, fy_node_pair_key(p), "limits key", key, sizeof(key)))
            return -1;
        if (strcmp(key, "body_max") == 0) {
            if (number(e, val, key, 16, 64 << 20, &v) != 0)
                return -1;
            c->body_max = (size_t)v;
        } else if (strcmp(key, "idle_timeout") == 0) {
            if (number(e, val, key, 1, 86400, &v) != 0)
                return -1;
            c->idle_timeout = (int)v;
        } else if (strcmp(key, "request_timeout") == 0) {
            if (number(e, val, key, 1, 86400, &v) != 0)
                return -1;
            c->request_timeout = (int)v;
        } else if (strcmp(key, "connections") == 0) {
            if (number(e, val, key, 1, 1 << 20, &v) != 0)
                return -1;
            c->conn_max = (unsigned)v;
        } else if (strcmp(key, "threads") == 0) {
            if (number(e, val, key, 1, 64, &v) != 0)
                return -1;
            c->threads = (int)v;
        } else {
            return fail(e, fy_node_pair_key(p),
                        "unknown limit '%s' (body_max,"
                        " idle_timeout, request_timeout, connections, "
                        "threads)",
                        key);
        }
    }
    return 0;
}

static int token(struct cfgerr *e, struct vsed_config *c, struct fy_node *n)
{
    struct vsed_token *t = &c->tokens[c->ntokens];
    struct fy_node_pair *p;
    void *it = NULL;
    char key[16], val[128];
    int have = 0;

    memset(t, 0, sizeof(*t));
    if (!fy_node_is_mapping(n))
        return fail(e, n, "a token must be a mapping of name, hash, role");
    while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *v = fy_node_pair_value(p);

        if (scalar(e, fy_node_pair_key(p), "token key", key, sizeof(key)))
            return -1;
        if (scalar(e, v, key, val, sizeof(val)) != 0)
            return -1;
        if (strcmp(key, "name") == 0) {
            if (val[0] == '\0' || strlen(val) > VSED_TOKEN_NAME_MAX ||
                vse_check_id("token name", val, NULL) != 0)
                return fail(e, v, "token name '%s' is not valid", val);
            snprintf(t->name, sizeof(t->name), "%s", val);
            have |= 1;
        } else if (strcmp(key, "hash") == 0) {
            if (vsed_parse_hash(val, t->hash) != 0)
                return fail(e, v,
                            "hash must be sha256: and 64 hex digits "
                            "(see 'vsed hash-token')");
            have |= 2;
        } else if (strcmp(key, "project") == 0) {
            if (vse_check_id("project", val, NULL) != 0)
                return fail(e, v, "project '%s' is not valid", val);
            snprintf(t->project, sizeof(t->project), "%s", val);
        } else if (strcmp(key, "role") == 0) {
            t->role = vsed_role_parse(val);
            if (t->role == ROLE_NONE)
                return fail(e, v,
                            "unknown role '%s' (reader, member or "
                            "admin)",
                            val);
            have |= 4;
        } else {
            return fail(e, fy_node_pair_key(p), "unknown token key '%s'",
                        key);
        }
    }
    if (have != 7)
        return fail(e, n, "a token needs name, hash and role");
    c->ntokens++;
    return 0;
}

static int tokens(struct cfgerr *e, struct vsed_config *c, struct fy_node *n)
{
    struct fy_node *item;
    void *it = NULL;
    int count = 0;

    if (!fy_node_is_sequence(n))
        return fail(e, n, "'tokens' must be a list");
    while (fy_node_sequence_iterate(n, &it) != NULL)
        count++;
    free(c->tokens);
    c->ntokens = 0;
    c->tokens = calloc((size_t)count + 1, sizeof(*c->tokens));
    if (c->tokens == NULL)
        return fail(e, n, "out of memory");
    it = NULL;
    while ((item = fy_node_sequence_iterate(n, &it)) != NULL)
        if (token(e, c, item) != 0)
            return -1;
    return 0;
}

static int top(struct cfgerr *e, struct vsed_config *c, struct fy_node *root)
{
    struct fy_node_pair *p;
    void *it = NULL;
    char key[64], val[1024];
    long long v;

    if (root == NULL || !fy_node_is_mapping(root))
        return fail(e, root, "the configuration must be a mapping");
    while ((p = fy_node_mapping_iterate(root, &it)) != NULL) {
        struct fy_node *n = fy_node_pair_value(p);

        if (scalar(e, fy_node_pair_key(p), "key", key, sizeof(key)))
            return -1;
        if (strcmp(key, "listen") == 0) {
            if (scalar(e, n, key, val, sizeof(c->listen)) != 0)
                return -1;
            snprintf(c->listen, sizeof(c->listen), "%s", val);
            c->listen_set = 1;
        } else if (strcmp(key, "store") == 0) {
            if (scalar(e, n, key, c->store, sizeof(c->store)) != 0)
                return -1;
        } else if (strcmp(key, "auth") == 0) {
            if (scalar(e, n, key, val, sizeof(val)) != 0)
                return -1;
            if (strcmp(val, "token") != 0 && strcmp(val, "noauth") != 0)
                return fail(e, n, "auth must be token or noauth");
            c->auth = strcmp(val, "token") == 0;
        } else if (strcmp(key, "reaper_interval") == 0) {
            if (number(e, n, key, 0, 86400, &v) != 0)
                return -1;
            c->reaper_interval = (int)v;
        } else if (strcmp(key, "volume_workers") == 0) {
            if (number(e, n, key, 1, 64, &v) != 0)
                return -1;
            c->volume_workers = (int)v;
        } else if (strcmp(key, "limits") == 0) {
            if (limits(e, c, n) != 0)
                return -1;
        } else if (strcmp(key, "tokens") == 0) {
            if (tokens(e, c, n) != 0)
                return -1;
        } else {
            return fail(e, fy_node_pair_key(p),
                        "unknown setting '%s' "
                        "(listen, store, auth, reaper_interval, "
                        "volume_workers, limits, tokens)",
                        key);
        }
    }
    return 0;
}

int vsed_config_load(struct vsed_config *c, const char *path,
                     struct vse_error *err)
{
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
    struct cfgerr e = {path, err};
    struct fy_document *d;
    int rc;

    d = fy_document_build_from_file(&cfg, path);
    if (d == NULL)
        return vse__err(err, VSE_EINVAL,
                        "cannot read config '%s': not "
                        "readable or not valid YAML",
                        path);
    rc = top(&e, c, fy_document_root(d));
    fy_document_destroy(d);
    return rc < 0 ? VSE_EINVAL : 0;
}
