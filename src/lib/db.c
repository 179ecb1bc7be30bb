/*
 * db.c - the enforcer handle: a store connection plus the machines this
 * process enforces.  Each machine is checked against the definition the
 * store pinned when it first saw that name, so that two processes can
 * never enforce two different tables on one store.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "vse-int.h"

/*
 * Compare m with the store's pin of its name; pin it if there is none.
 * Returns 0, VSE_EPINNED (err says how they differ) or a store error.
 */
static int pin_check(vse_db *db, const vse_machine *m, struct vse_error *err)
{
    struct vse_pin pin;
    int rc;

    memset(&pin, 0, sizeof(pin));
    rc = vse__store_pin_get(db->store, m->name, &pin, err);
    if (rc == VSE_ENOTFOUND) {
        struct vse_pin np;

        memset(&np, 0, sizeof(np));
        vse__strlcpy(np.machine, m->name, sizeof(np.machine));
        np.version = m->version;
        memcpy(np.hash, m->hash, sizeof(np.hash));
        np.definition = (char *)vse__machine_canonical(m);
        np.pinned_at = vse_now_us();
        rc = vse__store_pin_put(db->store, &np, err);
        if (rc < 0)
            return rc;
        /* Another process may have pinned first: read back what won. */
        rc = vse__store_pin_get(db->store, m->name, &pin, err);
    }
    if (rc < 0)
        return rc;
    rc = 0;
    if (strcmp(pin.hash, m->hash) != 0) {
        char how[VSE_ERROR_DETAIL_SIZE];

        vse__machine_diff(pin.definition ? pin.definition : "", m, how,
                          sizeof(how));
        vse__err(err, VSE_EPINNED,
                 "machine '%s' (version %d, hash %s) differs from the one "
                 "the store pinned (version %d, hash %s)",
                 m->name, m->version, m->hash, pin.version, pin.hash);
        vse__err_detail(err, "%s", how);
        if (m->version > pin.version)
            vse__err_hint(err,
                          "upgrade the store's pin first: 'vsectl machine "
                          "upgrade FILE' (vsed upgrades to its built-in "
                          "machines at start)");
        else if (m->version < pin.version)
            vse__err_hint(err,
                          "a newer vse pinned this store: run a vse "
                          "with version %d or later of '%s'",
                          pin.version, m->name);
        else
            vse__err_hint(err, "run the vse whose machine definitions "
                               "created this store, or use a new store");
        rc = VSE_EPINNED;
    }
    free(pin.definition);
    return rc;
}

int vse_open_bare(const char *url, vse_db **out, struct vse_error *err)
{
    vse_db *db;
    int rc;

    *out = NULL;
    db = vse__calloc(1, sizeof(*db));
    if (db == NULL)
        return vse__err(err, VSE_ENOMEM, "out of memory");
    rc = vse__store_open(url, &db->store, err);
    if (rc < 0) {
        free(db);
        return rc;
    }
    *out = db;
    return 0;
}

int vse_open(const char *url, vse_db **out, struct vse_error *err)
{
    const char *const *names = vse_machine_builtin_names();
    vse_db *db;
    int rc;

    rc = vse_open_bare(url, &db, err);
    if (rc < 0)
        return rc;
    *out = NULL; /* until every machine is in */
    for (size_t i = 0; names[i] != NULL; i++) {
        vse_machine *m;

        rc = vse_machine_builtin(names[i], &m, err);
        if (rc < 0)
            goto fail;
        rc = vse_add_machine(db, m, err);
        if (rc < 0)
            goto fail;
    }
    *out = db;
    return 0;
fail:
    vse_close(db);
    return rc;
}

void vse_interrupt(vse_db *db)
{
    if (db != NULL && db->store != NULL)
        atomic_store(&db->store->interrupted, 1);
}

void vse_close(vse_db *db)
{
    if (db == NULL)
        return;
    vse__store_close(db->store);
    for (int i = 0; i < db->nmachines; i++)
        vse_machine_free(db->machines[i]);
    free(db);
}

int vse_add_machine(vse_db *db, vse_machine *m, struct vse_error *err)
{
    int rc;
    int slot = db->nmachines;

    for (int i = 0; i < db->nmachines; i++) {
        if (strcmp(db->machines[i]->name, m->name) != 0)
            continue;
        if (strcmp(db->machines[i]->hash, m->hash) == 0) {
            vse_machine_free(m);
            return 0;
        }
        slot = i;
        break;
    }
    if (slot == VSE_DB_MACHINES_MAX) {
        vse__err(err, VSE_EINVAL,
                 "cannot add machine '%s': at most %d "
                 "machines per handle",
                 m->name, VSE_DB_MACHINES_MAX);
        vse_machine_free(m);
        return VSE_EINVAL;
    }
    rc = pin_check(db, m, err);
    if (rc < 0) {
        vse_machine_free(m);
        return rc;
    }
    if (slot < db->nmachines) {
        /* Same name, different definition, yet the pin matches m: the
         * one loaded before was the stale one. */
        vse_machine_free(db->machines[slot]);
    } else {
        db->nmachines++;
    }
    db->machines[slot] = m;
    return 0;
}

const vse_machine *vse_find_machine(vse_db *db, const char *name)
{
    for (int i = 0; i < db->nmachines; i++)
        if (strcmp(db->machines[i]->name, name) == 0)
            return db->machines[i];
    return NULL;
}

const vse_machine *vse__db_machine(vse_db *db, const char *name,
                                   struct vse_error *err)
{
    const vse_machine *m = vse_find_machine(db, name);

    if (m == NULL) {
        vse__err(err, VSE_EINVAL, "unknown machine '%s'", name);
        vse__err_hint(err, "load its definition with --machines FILE");
    }
    return m;
}

int vse_get(vse_db *db, const char *id, struct vse_resource *out,
            struct vse_error *err)
{
    int rc = vse_check_id("resource id", id, err);

    if (rc < 0)
        return rc;
    rc = vse__store_get(db->store, id, out, err);
    if (rc == VSE_ENOTFOUND)
        vse__err(err, VSE_ENOTFOUND, "resource '%s' not found", id);
    return rc;
}

int vse_list(vse_db *db, const struct vse_filter *f, vse_resource_cb cb,
             void *ctx, struct vse_error *err)
{
    struct vse_filter none;

    if (f == NULL) {
        memset(&none, 0, sizeof(none));
        f = &none;
    }
    if (f->machine != NULL && vse_find_machine(db, f->machine) == NULL) {
        vse__err(err, VSE_EINVAL, "unknown machine '%s'", f->machine);
        return VSE_EINVAL;
    }
    if (f->machine != NULL && f->state != NULL &&
        vse__machine_state(vse_find_machine(db, f->machine), f->state) < 0)
        return vse__err(err, VSE_EINVAL, "machine '%s' has no state '%s'",
                        f->machine, f->state);
    /* A typo would otherwise leave out nothing, silently. */
    if (f->machine != NULL && f->not_state != NULL &&
        vse__machine_state(vse_find_machine(db, f->machine), f->not_state) <
            0)
        return vse__err(err, VSE_EINVAL, "machine '%s' has no state '%s'",
                        f->machine, f->not_state);
    return vse__store_list(db->store, f, vse_now_us(), cb, ctx, err);
}

struct first_ctx {
    vse_event_cb cb;
    void *ctx;
    int seen;
};

static int count_first(void *ctx, const struct vse_event *e)
{
    struct first_ctx *fc = ctx;

    fc->seen = 1;
    return fc->cb(fc->ctx, e);
}

int vse_history(vse_db *db, const char *id, int64_t after_seq, size_t limit,
                vse_event_cb cb, void *ctx, struct vse_error *err)
{
    struct first_ctx fc = {cb, ctx, 0};
    struct vse_resource r;
    int rc = vse_check_id("resource id", id, err);

    if (rc < 0)
        return rc;
    rc = vse__store_history(db->store, id, after_seq, limit, count_first, &fc,
                            err);
    if (rc < 0 || fc.seen)
        return rc;
    /* An empty answer is "not found" only if the resource is unknown too;
     * a purged or paged-past history is simply empty. */
    rc = vse__store_get(db->store, id, &r, err);
    if (rc == VSE_ENOTFOUND)
        return vse__err(err, VSE_ENOTFOUND, "resource '%s' not found", id);
    return rc < 0 ? rc : 0;
}

int vse_events(vse_db *db, int64_t after_seq, size_t limit, vse_event_cb cb,
               void *ctx, struct vse_error *err)
{
    return vse__store_history(db->store, NULL, after_seq, limit, cb, ctx,
                              err);
}

int vse_last_seq(vse_db *db, int64_t *seq, struct vse_error *err)
{
    return vse__store_last_seq(db->store, seq, err);
}

int vse_wait(vse_db *db, int64_t after_seq, int timeout_ms,
             struct vse_error *err)
{
    const int poll_ms = 20;
    int64_t deadline = vse_now_us() + (int64_t)timeout_ms * 1000;
    int rc = vse__store_wait(db->store, after_seq, timeout_ms, err);

    if (rc != -1)
        return rc;
    /* No wake-up channel in this store: poll the sequence.  20 ms keeps
     * a watcher's delay small at the cost of one indexed read. */
    for (;;) {
        int64_t last = 0;
        struct timespec ts = {0, poll_ms * 1000000L};

        rc = vse__store_last_seq(db->store, &last, err);
        if (rc < 0)
            return rc;
        if (last > after_seq)
            return 1;
        if (vse_now_us() >= deadline)
            return 0;
        nanosleep(&ts, NULL);
    }
}

int vse_purge(vse_db *db, const struct vse_purge_policy *p,
              struct vse_purge_stats *st, struct vse_error *err)
{
    struct vse_state_ref refs[VSE_DB_MACHINES_MAX * VSE_MACHINE_STATES_MAX];
    struct vse_purge_stats none;
    size_t n = 0;

    if (st == NULL)
        st = &none;
    memset(st, 0, sizeof(*st));
    if (p == NULL || p->before <= 0)
        return vse__err(err, VSE_EINVAL, "purge needs a cut-off time");
    if (p->drop_terminal) {
        for (int i = 0; i < db->nmachines; i++) {
            const vse_machine *m = db->machines[i];

            for (int s = 0; s < m->nstates; s++) {
                if (!vse__machine_terminal(m, s))
                    continue;
                refs[n].machine = m->name;
                refs[n].state = m->states[s].name;
                n++;
            }
        }
    }
    return vse__store_purge(db->store, p->before, refs, n, st, err);
}
