/*
 * store.c - the registry of store backends and the wrappers through which
 * the core reaches them.  The core allocates each backend's connection
 * (conn_size bytes, struct vse_store first), as SQLite's core allocates
 * a VFS's file object, and checks each backend's method table once.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vse-int.h"

/* store-pg.c; "postgres:" is libpq's other spelling of the scheme. */
extern const struct vse_store_methods vse__store_pg;
extern const struct vse_store_methods vse__store_postgres;
/* store-zk.c */
extern const struct vse_store_methods vse__store_zk;

static const struct vse_store_methods *const backends[] = {
    &vse__store_sqlite,
    &vse__store_pg,
    &vse__store_postgres,
    &vse__store_zk,
};

/* Backends registered at run time: test shims (tests/store/). */
#define EXTRA_MAX 4
static const struct vse_store_methods *extra[EXTRA_MAX];

int vse__store_register(const struct vse_store_methods *m)
{
    for (int i = 0; i < EXTRA_MAX; i++) {
        if (extra[i] == NULL || extra[i] == m) {
            extra[i] = m;
            return 0;
        }
    }
    return VSE_EINVAL;
}

static const struct vse_store_methods *backend(size_t i)
{
    size_t nb = sizeof(backends) / sizeof(*backends);

    if (i < nb)
        return backends[i];
    return i - nb < EXTRA_MAX ? extra[i - nb] : NULL;
}

static int methods_ok(const struct vse_store_methods *m)
{
    return m->version >= 1 && m->conn_size >= sizeof(struct vse_store) &&
           m->open && m->close && m->get && m->apply && m->list &&
           m->history && m->find_event && m->expired && m->last_seq &&
           m->purge && m->pin_get && m->pin_put;
}

int vse__store_open(const char *url, struct vse_store **out,
                    struct vse_error *err)
{
    const char *colon;
    size_t slen;
    struct vse_store *s;
    int rc;

    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return vse__err(err, VSE_EINVAL, "store URL is empty");
    colon = strchr(url, ':');
    if (colon == NULL || colon == url) {
        vse__err(err, VSE_EINVAL, "store URL '%s' has no scheme", url);
        vse__err_hint(err, "write it as sqlite:PATH, e.g. sqlite:./var/vse.db");
        return VSE_EINVAL;
    }
    slen = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof(backends) / sizeof(*backends) + EXTRA_MAX;
         i++) {
        const struct vse_store_methods *m = backend(i);

        if (m == NULL)
            continue;
        if (strlen(m->scheme) != slen || strncmp(m->scheme, url, slen) != 0)
            continue;
        if (!methods_ok(m))
            return vse__err(err, VSE_EINTERNAL,
                            "store backend '%s' is incomplete", m->scheme);
        s = vse__calloc(1, m->conn_size);
        if (s == NULL)
            return vse__err(err, VSE_ENOMEM, "out of memory");
        s->m = m;
        s->url = vse__strdup(url);
        if (s->url == NULL) {
            free(s);
            return vse__err(err, VSE_ENOMEM, "out of memory");
        }
        rc = m->open(s, colon + 1, err);
        if (rc < 0) {
            free(s->url);
            free(s);
            return rc;
        }
        *out = s;
        return 0;
    }
    vse__err(err, VSE_EINVAL, "store URL '%s' has an unknown scheme '%.*s'",
             url, (int)slen, url);
    vse__err_hint(err, "known schemes: sqlite, postgresql, zookeeper");
    return VSE_EINVAL;
}

void vse__store_close(struct vse_store *s)
{
    if (s == NULL)
        return;
    s->m->close(s);
    free(s->url);
    free(s);
}

int vse__store_get(struct vse_store *s, const char *id,
                   struct vse_resource *out, struct vse_error *err)
{
    return s->m->get(s, id, out, err);
}

int vse__store_apply(struct vse_store *s, const struct vse_change *c,
                     struct vse_resource *cur, int64_t *seq,
                     struct vse_error *err)
{
    return s->m->apply(s, c, cur, seq, err);
}

int vse__store_list(struct vse_store *s, const struct vse_filter *f,
                    int64_t now, vse_resource_cb cb, void *ctx,
                    struct vse_error *err)
{
    return s->m->list(s, f, now, cb, ctx, err);
}

int vse__store_history(struct vse_store *s, const char *id,
                       int64_t after_seq, size_t limit, vse_event_cb cb,
                       void *ctx, struct vse_error *err)
{
    return s->m->history(s, id, after_seq, limit, cb, ctx, err);
}

int vse__store_find_event(struct vse_store *s,
                          const struct vse_event_query *q,
                          struct vse_event *out, struct vse_error *err)
{
    return s->m->find_event(s, q, out, err);
}

int vse__store_expired(struct vse_store *s, int64_t now, size_t limit,
                       vse_resource_cb cb, void *ctx, struct vse_error *err)
{
    return s->m->expired(s, now, limit, cb, ctx, err);
}

int vse__store_last_seq(struct vse_store *s, int64_t *seq,
                        struct vse_error *err)
{
    return s->m->last_seq(s, seq, err);
}

int vse__store_purge(struct vse_store *s, int64_t before,
                     const struct vse_state_ref *terminal, size_t n,
                     struct vse_purge_stats *st, struct vse_error *err)
{
    return s->m->purge(s, before, terminal, n, st, err);
}

int vse__store_pin_get(struct vse_store *s, const char *machine,
                       struct vse_pin *out, struct vse_error *err)
{
    return s->m->pin_get(s, machine, out, err);
}

int vse__store_pin_put(struct vse_store *s, const struct vse_pin *p,
                       struct vse_error *err)
{
    return s->m->pin_put(s, p, err);
}

int vse__store_wait(struct vse_store *s, int64_t after_seq, int timeout_ms,
                    struct vse_error *err)
{
    if (s->m->wait != NULL)
        return s->m->wait(s, after_seq, timeout_ms, err);
    return -1; /* the core polls */
}
