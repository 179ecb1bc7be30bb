/*
 * test-faults.c - store failures, injected by a wrapper around the real
 * SQLite store (as SQLite's test_vfs.c wraps a real VFS: no mock).  The
 * store URL "fault:sqlite:PATH" opens the real store underneath; the Nth
 * store call from then on fails with VSE_ESTORE, once.  A script of
 * transitions runs once per N, and every call must either do exactly what
 * it says or report the failure - never a conflict, never a half-change -
 * and the history must stay a valid path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "vse-int.h"

/* ---- the wrapper ---------------------------------------------------- */

struct fault_conn {
    struct vse_store base; /* must be first */
    struct vse_store *inner;
};

static int countdown = -1; /* store calls left before the fault; -1 off */
static int injected;       /* faults injected so far */

static int fault(struct vse_error *err)
{
    if (countdown < 0)
        return 0;
    if (countdown-- > 0)
        return 0;
    injected++;
    return vse__err(err, VSE_ESTORE, "injected fault");
}

static struct vse_store *in(struct vse_store *s)
{
    return ((struct fault_conn *)s)->inner;
}

static int f_open(struct vse_store *s, const char *rest,
                  struct vse_error *err)
{
    return vse__store_open(rest, &((struct fault_conn *)s)->inner, err);
}

static void f_close(struct vse_store *s)
{
    vse__store_close(in(s));
}

static int f_get(struct vse_store *s, const char *id,
                 struct vse_resource *out, struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE : vse__store_get(in(s), id, out, err);
}

static int f_apply(struct vse_store *s, const struct vse_change *c,
                   struct vse_resource *cur, int64_t *seq,
                   struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_apply(in(s), c, cur, seq, err);
}

static int f_list(struct vse_store *s, const struct vse_filter *f,
                  int64_t now, vse_resource_cb cb, void *ctx,
                  struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_list(in(s), f, now, cb, ctx, err);
}

static int f_history(struct vse_store *s, const char *id, int64_t after,
                     size_t limit, vse_event_cb cb, void *ctx,
                     struct vse_error *err)
{
    return fault(err)
               ? VSE_ESTORE
               : vse__store_history(in(s), id, after, limit, cb, ctx, err);
}

static int f_find_event(struct vse_store *s, const struct vse_event_query *q,
                        struct vse_event *out, struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_find_event(in(s), q, out, err);
}

static int f_expired(struct vse_store *s, int64_t now, size_t limit,
                     vse_resource_cb cb, void *ctx, struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_expired(in(s), now, limit, cb, ctx, err);
}

static int f_last_seq(struct vse_store *s, int64_t *seq,
                      struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE : vse__store_last_seq(in(s), seq, err);
}

static int f_purge(struct vse_store *s, int64_t before,
                   const struct vse_state_ref *t, size_t n,
                   struct vse_purge_stats *st, struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_purge(in(s), before, t, n, st, err);
}

static int f_pin_get(struct vse_store *s, const char *machine,
                     struct vse_pin *out, struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE
                      : vse__store_pin_get(in(s), machine, out, err);
}

static int f_pin_put(struct vse_store *s, const struct vse_pin *p,
                     struct vse_error *err)
{
    return fault(err) ? VSE_ESTORE : vse__store_pin_put(in(s), p, err);
}

static int f_holds(struct vse_store *s, const char *held, const char *holder,
                   vse_hold_cb cb, void *ctx, struct vse_error *err)
{
    return vse__store_holds(in(s), held, holder, cb, ctx, err);
}

static const struct vse_store_methods fault_store = {
    .version = 1,
    .scheme = "fault",
    .conn_size = sizeof(struct fault_conn),
    .open = f_open,
    .close = f_close,
    .get = f_get,
    .apply = f_apply,
    .list = f_list,
    .history = f_history,
    .find_event = f_find_event,
    .expired = f_expired,
    .last_seq = f_last_seq,
    .purge = f_purge,
    .pin_get = f_pin_get,
    .pin_put = f_pin_put,
    .holds = f_holds,
};

/* ---- the script ----------------------------------------------------- */

struct fx {
    char dir[64];
    char url[128];       /* the real store */
    char fault_url[160]; /* the same, through the wrapper */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    strcpy(f->dir, "/tmp/vse-faults-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int64_t version(vse_db *real, const char *id)
{
    struct vse_resource r;
    struct vse_error e;

    return vse_get(real, id, &r, &e) == 0 ? r.version : 0;
}

/*
 * One transition of the script through the faulty handle `db`, checked
 * against the real store: done means exactly one more version, a store
 * failure means none, and an injected fault must surface as the store
 * failure it is.
 */
static int step_checked(vse_db *db, vse_db *real, int i, char *op_id,
                        int *faults_seen)
{
    struct vse_opts o = {.owner = "w1", .ttl_ms = 60000};
    struct vse_resource r;
    struct vse_error e;
    int64_t before = version(real, "v"), after;
    int before_faults = injected, rc;

    switch (i) {
    case 0:
        o.attrs = "{\"size\":1}";
        rc = vse_create(db, "volume", "v", &o, &r, &e);
        break;
    case 1:
        o.request_id = "req-1";
        rc = vse_step(db, "v", op_id, "scheduling", &o, &r, &e);
        break;
    case 2: rc = vse_step(db, "v", op_id, "creating_vol", &o, &r, &e); break;
    case 3: rc = vse_finish(db, "v", op_id, "available", &o, &r, &e); break;
    case 4: rc = vse_begin(db, "v", "extend", &o, &r, &e); break;
    case 5: rc = vse_renew(db, "v", op_id, &o, &r, &e); break;
    case 6:
        o.attrs = "{\"size\":2}";
        rc = vse_update(db, "v", &o, &r, &e);
        break;
    case 7:
        o.reason = "driver said no";
        rc = vse_fail(db, "v", op_id, &o, &r, &e);
        break;
    case 8: rc = vse_begin(db, "v", "delete", &o, &r, &e); break;
    default:
        /* A step that is not allowed: the refusal must be a refusal even
         * when looking for an earlier identical step fails. */
        rc = vse_step(db, "v", op_id, "available", &o, &r, &e);
        break;
    }
    after = version(real, "v");
    if (injected > before_faults) {
        (*faults_seen)++;
        if (rc != VSE_ESTORE)
            fail_msg("call %d: an injected store failure came back as %s "
                     "(%s)",
                     i, vse_err_name(rc), e.msg);
        if (after != before)
            fail_msg("call %d failed in the store yet changed the version "
                     "from %lld to %lld",
                     i, (long long)before, (long long)after);
        return rc;
    }
    if (rc == 0 && after != before + 1)
        fail_msg("call %d done but version %lld -> %lld", i,
                 (long long)before, (long long)after);
    if (rc < 0 && after != before)
        fail_msg("call %d refused (%s) yet changed the version", i,
                 vse_err_name(rc));
    if (rc == 0 && (i == 0 || i == 4 || i == 8))
        strcpy(op_id, r.op_id);
    return rc;
}

static void test_every_store_call_can_fail(void **state)
{
    struct fx *f = *state;
    int faults_seen = 0, open_faults = 0, n;

    assert_int_equal(vse__store_register(&fault_store), 0);
    /* N counts store calls from the handle's open on; past the end of the
     * script, nothing fails any more and the loop ends. */
    for (n = 0;; n++) {
        char op_id[VSE_OPID_LEN + 1] = "00000000-0000-4000-8000-000000000000";
        struct vse_error e;
        vse_db *db, *real;
        int64_t violations = -1;
        int before = injected;

        snprintf(f->url, sizeof(f->url), "sqlite:%s/s%d.db", f->dir, n);
        snprintf(f->fault_url, sizeof(f->fault_url), "fault:%s", f->url);
        assert_int_equal(vse_open(f->url, &real, &e), 0);
        countdown = n;
        if (vse_open(f->fault_url, &db, &e) != 0) {
            /* A fault while opening (pinning the machines): reported as
             * the store failure it is. */
            assert_int_equal(e.code, VSE_ESTORE);
            open_faults++;
            countdown = -1;
            vse_close(real);
            continue;
        }
        for (int i = 0; i < 10; i++)
            step_checked(db, real, i, op_id, &faults_seen);
        countdown = -1;
        assert_int_equal(vse_check(real, NULL, NULL, NULL, &violations, &e),
                         0);
        assert_int_equal(violations, 0);
        vse_close(db);
        vse_close(real);
        if (injected == before)
            break; /* the script ran to its end without a fault */
    }
    print_message("%d store calls, each failed once: %d while opening, "
                  "%d inside the script\n",
                  n, open_faults, faults_seen);
    /* Run n had no fault left to inject: each of the n calls before it
     * failed once, and each failure was seen where it happened. */
    assert_int_equal(open_faults + faults_seen, n);
    assert_true(faults_seen >= 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_store_call_can_fail, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
