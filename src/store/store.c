/*
 * store.c - the registry of store backends and the wrappers through which
 * the core reaches them.  The core allocates each backend's connection
 * (conn_size bytes, struct vse_store first), as SQLite's core allocates
 * a VFS's file object, and checks each backend's method table once.
 * Store policy lives here, once for every backend: whether what a URL
 * points at is a vse store, whether it is newer than this vse, which
 * migration steps apply, and what the messages say.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

static const struct vse_store_methods *const backends[] = {
    &vse__store_sqlite,
    &vse__store_pg,
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

static int schema_ok(const struct vse_store_methods *m)
{
    if (m->version < 2 || m->inspect == NULL)
        return 1; /* a wrapper: the store beneath settled its schema */
    if (!m->schema_begin || !m->schema_end || !m->meta_set || !m->steps ||
        m->nsteps < 1)
        return 0;
    for (size_t v = 0; v < m->nsteps; v++) {
        const struct vse_store_step *st = &m->steps[v];

        if ((st->sql == NULL) == (st->run == NULL))
            return 0;
        if (st->sql != NULL && m->exec == NULL)
            return 0;
    }
    return 1;
}

static int methods_ok(const struct vse_store_methods *m)
{
    return m->version >= 1 && m->conn_size >= sizeof(struct vse_store) &&
           m->open && m->close && m->get && m->apply && m->list &&
           m->history && m->find_event && m->expired && m->last_seq &&
           m->purge && m->pin_get && m->pin_put && schema_ok(m);
}

/* Does m answer to the scheme url[0..slen)? */
static int answers(const struct vse_store_methods *m, const char *url,
                   size_t slen)
{
    if (strlen(m->scheme) == slen && strncmp(m->scheme, url, slen) == 0)
        return 1;
    if (m->version < 2 || m->aliases == NULL)
        return 0;
    for (const char *const *a = m->aliases; *a != NULL; a++) {
        if (strlen(*a) == slen && strncmp(*a, url, slen) == 0)
            return 1;
    }
    return 0;
}

/* "sqlite, postgresql": the real schemes, for the hint. */
static void known_schemes(char *buf, size_t size)
{
    size_t nb = sizeof(backends) / sizeof(*backends);

    buf[0] = '\0';
    for (size_t i = 0; i < nb; i++) {
        size_t len = strlen(buf);

        snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
                 backends[i]->scheme);
    }
}

/* ---- the schema: judged here, once, for every backend ---- */

static int not_vse(const struct vse_store_facts *f, const char *why,
                   struct vse_error *err)
{
    vse__err(err, VSE_ESCHEMA, "'%s' is not a vse store (%s)", f->where, why);
    if (f->hint != NULL)
        vse__err_hint(err, "%s", f->hint);
    return VSE_ESCHEMA;
}

/* Refuse what this vse cannot use; 0 if the store is empty, or vse's at
 * `current` or older. */
static int judge(const struct vse_store_facts *f, size_t current,
                 struct vse_error *err)
{
    char why[96];

    if (!f->has_meta)
        return f->other != NULL ? not_vse(f, f->other, err) : 0;
    if (strcmp(f->format, "vse") != 0) {
        snprintf(why, sizeof(why), "its vse_meta format is '%.40s'",
                 f->format);
        return not_vse(f, why, err);
    }
    if (f->version > (int)current) {
        vse__err(err, VSE_ESCHEMA,
                 "store '%s' has schema version %d, newer than this vse "
                 "understands (%zu)",
                 f->where, f->version, current);
        vse__err_hint(err,
                      "upgrade vse (this is %s) to a release that "
                      "knows schema version %d",
                      VSE_VERSION_STRING, f->version);
        return VSE_ESCHEMA;
    }
    if (f->version < 1)
        return not_vse(f, "its schema_version is missing or invalid", err);
    return 0;
}

static int inspect(struct vse_store *s, struct vse_store_facts *f,
                   struct vse_error *err)
{
    memset(f, 0, sizeof(*f));
    return s->m->inspect(s, f, err);
}

/* Step v: schema version v -> v + 1. */
static int run_step(struct vse_store *s, size_t v, struct vse_error *err)
{
    const struct vse_store_step *st = &s->m->steps[v];
    char what[64], val[32];
    int rc;

    if (v == 0)
        snprintf(what, sizeof(what), "create the schema");
    else
        snprintf(what, sizeof(what), "migrate the schema to version %zu",
                 v + 1);
    /* An empty step is a version that changed another backend only. */
    if (st->sql != NULL && st->sql[0] == '\0')
        rc = 0;
    else
        rc = st->sql != NULL ? s->m->exec(s, st->sql, what, err)
                             : st->run(s, err);
    if (rc == 0 && v == 0) {
        snprintf(val, sizeof(val), "%" PRId64, vse_now_us());
        rc = s->m->meta_set(s, "format", "vse", "create the schema", err);
        if (rc == 0)
            rc = s->m->meta_set(s, "created", val, "create the schema", err);
    }
    if (rc == 0) {
        snprintf(val, sizeof(val), "%zu", v + 1);
        rc = s->m->meta_set(s, "schema_version", val,
                            "record the schema version", err);
    }
    return rc;
}

/*
 * Bring an empty or older store to the backend's current version, in one
 * transaction (a store is at one version or the next, never between),
 * judged again inside it: of several processes opening one new store at
 * once, one creates it and the others find it made.
 */
static int migrate(struct vse_store *s, struct vse_error *err)
{
    const struct vse_store_methods *m = s->m;
    struct vse_store_facts f;
    int rc = m->schema_begin(s, err);

    if (rc < 0)
        return rc;
    rc = inspect(s, &f, err);
    if (rc == 0)
        rc = judge(&f, m->nsteps, err);
    for (size_t v = rc == 0 ? (size_t)f.version : m->nsteps;
         rc == 0 && v < m->nsteps; v++)
        rc = run_step(s, v, err);
    if (rc == 0)
        return m->schema_end(s, 1, err);
    m->schema_end(s, 0, NULL);
    return rc;
}

/* Judged once without the lock (the common case: a store at the current
 * version), and again under it if it needs creating or migrating. */
static int settle_schema(struct vse_store *s, struct vse_error *err)
{
    const struct vse_store_methods *m = s->m;
    struct vse_store_facts f;
    int rc;

    if (m->version < 2 || m->inspect == NULL)
        return 0;
    rc = inspect(s, &f, err);
    if (rc == 0)
        rc = judge(&f, m->nsteps, err);
    if (rc == 0 && m->accept != NULL)
        rc = m->accept(s, err);
    if (rc == 0 && (size_t)f.version < m->nsteps)
        rc = migrate(s, err);
    if (rc == 0 && m->settled != NULL)
        rc = m->settled(s, err);
    return rc;
}

int vse__store_open(const char *url, struct vse_store **out,
                    struct vse_error *err)
{
    const char *colon;
    char known[128];
    size_t slen;
    struct vse_store *s;
    int rc;

    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return vse__err(err, VSE_EINVAL, "store URL is empty");
    colon = strchr(url, ':');
    if (colon == NULL || colon == url) {
        vse__err(err, VSE_EINVAL, "store URL '%s' has no scheme", url);
        vse__err_hint(err,
                      "write it as sqlite:PATH, e.g. sqlite:./var/vse.db");
        return VSE_EINVAL;
    }
    slen = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof(backends) / sizeof(*backends) + EXTRA_MAX;
         i++) {
        const struct vse_store_methods *m = backend(i);

        if (m == NULL)
            continue;
        if (!answers(m, url, slen))
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
        rc = settle_schema(s, err);
        if (rc < 0) {
            vse__store_close(s);
            return rc;
        }
        *out = s;
        return 0;
    }
    known_schemes(known, sizeof(known));
    vse__err(err, VSE_EINVAL, "store URL '%s' has an unknown scheme '%.*s'",
             url, (int)slen, url);
    vse__err_hint(err, "known schemes: %s", known);
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
    if ((c->take != NULL || c->release != NULL || c->guard != 0) &&
        s->m->holds == NULL)
        return vse__err(err, VSE_EINVAL,
                        "store '%s' keeps no holds (its backend '%s' "
                        "predates them)",
                        s->url, s->m->scheme);
    return s->m->apply(s, c, cur, seq, err);
}

int vse__store_holds(struct vse_store *s, const char *held,
                     const char *holder, vse_hold_cb cb, void *ctx,
                     struct vse_error *err)
{
    if (s->m->holds == NULL)
        return 0; /* it keeps none, so there are none */
    return s->m->holds(s, held, holder, cb, ctx, err);
}

int vse__store_list(struct vse_store *s, const struct vse_filter *f,
                    int64_t now, vse_resource_cb cb, void *ctx,
                    struct vse_error *err)
{
    return s->m->list(s, f, now, cb, ctx, err);
}

int vse__store_history(struct vse_store *s, const char *id, int64_t after_seq,
                       size_t limit, vse_event_cb cb, void *ctx,
                       struct vse_error *err)
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

int vse__store_repin(struct vse_store *s, const char *expect_hash,
                     const struct vse_pin *p, const struct vse_event *ev,
                     vse_store_repin_check_fn *check, void *ctx, int64_t *seq,
                     struct vse_error *err)
{
    if (s->m->version < 3 || s->m->repin == NULL)
        return vse__err(err, VSE_EINVAL,
                        "store '%s' cannot upgrade machines in place",
                        s->m->scheme);
    return s->m->repin(s, expect_hash, p, ev, check, ctx, seq, err);
}
