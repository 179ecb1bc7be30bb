/*
 * test-conformance.c - the enforcer's contract (DESIGN.md section 4),
 * checked through the public API against one store.  The same suite runs
 * once per store: VSE_TEST_STORE=sqlite (default: a fresh file per test)
 * or postgresql (VSE_TEST_PG_URL; a fresh schema per test, dropped after)
 * or zookeeper (VSE_TEST_ZK_HOSTS, HOST:PORT,...; a fresh chroot per test,
 * left on the throwaway server).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "vse-int.h"
#include "vse.h"

#include "../rest-row.h"

struct fx {
    char dir[64];
    char schema[64]; /* postgresql: this test's own schema */
    char url[1024];
    vse_db *db;
    struct vse_error err;
};

static int serial;

/* Run "VERB schema" on the server at url (schema names are ours). */
static int pg_exec(const char *url, const char *verb, const char *schema)
{
    char sql[160];
    PGconn *c = PQconnectdb(url);
    PGresult *r;
    int ok;

    snprintf(sql, sizeof(sql), "%s %s%s", verb, schema,
             strcmp(verb, "DROP SCHEMA") == 0 ? " CASCADE" : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s: %s", url, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* The one switch between stores. */
static int store_url(struct fx *f)
{
    const char *which = getenv("VSE_TEST_STORE");

    if (which == NULL || which[0] == '\0' || strcmp(which, "sqlite") == 0) {
        strcpy(f->dir, "/tmp/vse-conf-XXXXXX");
        if (mkdtemp(f->dir) == NULL)
            return -1;
        snprintf(f->url, sizeof(f->url), "sqlite:%s/store.db", f->dir);
        return 0;
    }
    if (strcmp(which, "postgresql") == 0) {
        const char *u = getenv("VSE_TEST_PG_URL");

        if (u == NULL || u[0] == '\0')
            return 1; /* skipped */
        /* Tests reuse resource ids: each gets its own empty schema, which
         * the store creates its tables in (the first in search_path). */
        snprintf(f->schema, sizeof(f->schema), "conf_%d_%d", (int)getpid(),
                 ++serial);
        if (pg_exec(u, "CREATE SCHEMA", f->schema) != 0)
            return -1;
        snprintf(f->url, sizeof(f->url), "%s%soptions=-csearch_path%%3D%s", u,
                 strchr(u, '?') ? "&" : "?", f->schema);
        return 0;
    }
    if (strcmp(which, "zookeeper") == 0) {
        const char *h = getenv("VSE_TEST_ZK_HOSTS");

        if (h == NULL || h[0] == '\0')
            return 1; /* skipped */
        snprintf(f->url, sizeof(f->url), "zookeeper://%s/vse-conf/%d-%d", h,
                 (int)getpid(), ++serial);
        return 0;
    }
    fprintf(stderr, "VSE_TEST_STORE must be sqlite, postgresql or "
                    "zookeeper\n");
    return -1;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    int rc;

    if (f == NULL)
        return -1;
    *state = f;
    rc = store_url(f);
    if (rc != 0)
        return -1;
    if (vse_open(f->url, &f->db, &f->err) != 0) {
        fprintf(stderr, "vse_open %s: %s (%s)\n", f->url, f->err.msg,
                f->err.detail);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    vse_close(f->db);
    if (f->schema[0] != '\0' &&
        pg_exec(getenv("VSE_TEST_PG_URL"), "DROP SCHEMA", f->schema) != 0)
        return -1;
    if (f->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            return -1;
    }
    free(f);
    return 0;
}

#define OK(call)                                                             \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0)                                                        \
            fail_msg("%s = %s: %s", #call, vse_err_name(rc_), f->err.msg);   \
    } while (0)

static struct vse_opts owner_opts(const char *owner)
{
    struct vse_opts o = {0};

    o.owner = owner;
    return o;
}

/* A volume through the whole create flow, ending in `available`. */
static void make_available(struct fx *f, const char *id,
                           struct vse_resource *out)
{
    struct vse_opts o = owner_opts("api@h1");
    struct vse_resource r;

    OK(vse_create(f->db, "volume", id, &o, &r, &f->err));
    OK(vse_step(f->db, id, r.op_id, "scheduling", NULL, &r, &f->err));
    OK(vse_step(f->db, id, r.op_id, "creating_vol", NULL, &r, &f->err));
    OK(vse_finish(f->db, id, r.op_id, "available", NULL, &r, &f->err));
    if (out != NULL)
        *out = r;
}

/* Begin attach on an available volume: in `reserved`, owned by w1. */
static void begin_attach(struct fx *f, const char *id, int64_t ttl_ms,
                         struct vse_resource *out)
{
    struct vse_opts o = owner_opts("w1");

    o.ttl_ms = ttl_ms;
    OK(vse_begin(f->db, id, "attach", &o, out, &f->err));
}

static int64_t version_of(struct fx *f, const char *id)
{
    struct vse_resource r;

    OK(vse_get(f->db, id, &r, &f->err));
    return r.version;
}

/* Wait, without sleeping a fixed time, until the clock is past t. */
static void wait_past(int64_t t)
{
    while (vse_now_us() <= t)
        ; /* the lease is in ms: a few ms of spinning */
}

static void test_create_flow_to_available(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("api@h1");
    struct vse_resource r;
    char first[VSE_OPID_LEN + 1];

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    assert_string_equal(r.state, "creating_db");
    assert_string_equal(r.op, "create");
    assert_string_equal(r.owner, "api@h1");
    assert_int_equal(strlen(r.op_id), VSE_OPID_LEN);
    assert_int_equal(r.version, 1);
    assert_true(r.lease_expires > r.since);
    strcpy(first, r.op_id);
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", NULL, &r, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "creating_vol", NULL, &r, &f->err));
    OK(vse_finish(f->db, "v1", r.op_id, "available", NULL, &r, &f->err));
    OK(vse_get(f->db, "v1", &r, &f->err));
    assert_string_equal(r.state, "available");
    assert_string_equal(r.op, "");
    assert_string_equal(r.op_id, "");
    assert_string_equal(r.owner, "");
    assert_int_equal(r.lease_expires, 0);
    assert_int_equal(r.version, 4);
    (void)first;
}

static void test_begin_refused_while_busy(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;
    struct vse_opts o = owner_opts("w2");

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    assert_int_equal(vse_begin(f->db, "v1", "delete", &o, &cur, &f->err),
                     VSE_ECONFLICT);
    /* The refusal carries the current row: no second read needed. */
    assert_int_equal(cur.version, r.version);
    assert_string_equal(cur.op, "attach");
    assert_string_equal(cur.op_id, r.op_id);
    assert_string_equal(cur.owner, "w1");
    assert_non_null(strstr(f->err.msg, "attach"));
    assert_non_null(strstr(f->err.msg, "w1"));
    assert_non_null(strstr(f->err.msg, "since"));
    assert_non_null(strstr(f->err.hint, "step to attaching"));
    assert_non_null(strstr(f->err.hint, "fail"));
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_begin_not_allowed_from_rest_state(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;
    struct vse_opts o = owner_opts("w1");

    make_available(f, "v1", &r);
    assert_int_equal(vse_begin(f->db, "v1", "detach", &o, &cur, &f->err),
                     VSE_ECONFLICT);
    assert_string_equal(cur.state, "available");
    assert_non_null(strstr(f->err.msg, "detach"));
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_step_along_edge(void **state)
{
    struct fx *f = *state;
    struct vse_resource r;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &r, &f->err));
    assert_string_equal(r.state, "attaching");
    assert_string_equal(r.op, "attach");
    OK(vse_finish(f->db, "v1", r.op_id, NULL, NULL, &r, &f->err));
    assert_string_equal(r.state, "in_use");
}

static void test_step_off_edge_refused(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    /* deleting is another op's step; in_use is a rest state. */
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "deleting", NULL, &cur,
                              &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "in_use", NULL, &cur,
                              &f->err),
                     VSE_ECONFLICT);
    assert_string_equal(cur.state, "reserved");
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_finish_to_non_success_refused(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &r, &f->err));
    assert_int_equal(vse_finish(f->db, "v1", r.op_id, "error", NULL, &cur,
                                &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(vse_finish(f->db, "v1", r.op_id, "available", NULL, &cur,
                                &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_fail_needs_reason(void **state)
{
    struct fx *f = *state;
    struct vse_resource r;
    struct vse_opts o = {0};

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    assert_int_equal(vse_fail(f->db, "v1", r.op_id, NULL, NULL, &f->err),
                     VSE_EINVAL);
    assert_int_equal(vse_fail(f->db, "v1", r.op_id, &o, NULL, &f->err),
                     VSE_EINVAL);
    assert_int_equal(version_of(f, "v1"), r.version);
    o.reason = "no path to host";
    OK(vse_fail(f->db, "v1", r.op_id, &o, &r, &f->err));
    assert_string_equal(r.state, "available"); /* attach's failure state */
}

static void test_wrong_op_id_fenced(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;
    const char *other = "00000000-0000-4000-8000-000000000000";

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    assert_int_equal(vse_step(f->db, "v1", other, "attaching", NULL, &cur,
                              &f->err),
                     VSE_EFENCED);
    assert_string_equal(cur.op_id, r.op_id);
    assert_int_equal(vse_finish(f->db, "v1", other, NULL, NULL, &cur,
                                &f->err),
                     VSE_EFENCED);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_repeated_step(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, again;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &r, &f->err));
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &again,
                              &f->err),
                     VSE_REPEATED);
    assert_int_equal(again.version, r.version);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_repeated_finish(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, again;
    char op_id[VSE_OPID_LEN + 1];

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    strcpy(op_id, r.op_id);
    OK(vse_step(f->db, "v1", op_id, "attaching", NULL, &r, &f->err));
    OK(vse_finish(f->db, "v1", op_id, "in_use", NULL, &r, &f->err));
    assert_int_equal(vse_finish(f->db, "v1", op_id, "in_use", NULL, &again,
                                &f->err),
                     VSE_REPEATED);
    assert_int_equal(again.version, r.version);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_repeated_fail(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, again;
    struct vse_opts o = {.reason = "driver error"};
    char op_id[VSE_OPID_LEN + 1];

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    strcpy(op_id, r.op_id);
    OK(vse_fail(f->db, "v1", op_id, &o, &r, &f->err));
    assert_int_equal(vse_fail(f->db, "v1", op_id, &o, &again, &f->err),
                     VSE_REPEATED);
    assert_int_equal(again.version, r.version);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_create_existing_id(void **state)
{
    struct fx *f = *state;
    struct vse_resource r, cur;

    make_available(f, "v1", &r);
    assert_int_equal(vse_create(f->db, "volume", "v1", NULL, &cur, &f->err),
                     VSE_EEXIST);
    assert_string_equal(cur.state, "available");
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_create_repeated_request_id(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "api@h1", .request_id = "req-1"};
    struct vse_resource r, again;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    assert_int_equal(vse_create(f->db, "volume", "v1", &o, &again, &f->err),
                     VSE_REPEATED);
    assert_string_equal(again.op_id, r.op_id);
    assert_int_equal(version_of(f, "v1"), 1);
}

static void test_begin_repeated_request_id(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "w1", .request_id = "req-7"};
    struct vse_resource r, again;

    make_available(f, "v1", NULL);
    OK(vse_begin(f->db, "v1", "attach", &o, &r, &f->err));
    assert_int_equal(vse_begin(f->db, "v1", "attach", &o, &again, &f->err),
                     VSE_REPEATED);
    assert_string_equal(again.op_id, r.op_id);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_claim_unowned_rotates_op_id(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("api@h1");
    struct vse_opts rel = {.release = 1};
    struct vse_opts sched = owner_opts("sched@h2");
    struct vse_resource r, c, cur;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", &rel, &r, &f->err));
    assert_string_equal(r.owner, "");
    OK(vse_claim(f->db, "v1", r.op_id, &sched, &c, &f->err));
    assert_string_equal(c.owner, "sched@h2");
    assert_int_equal(strlen(c.op_id), VSE_OPID_LEN);
    assert_string_not_equal(c.op_id, r.op_id);
    /* The hand-off's old token is dead. */
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "creating_vol", NULL,
                              &cur, &f->err),
                     VSE_EFENCED);
    assert_int_equal(version_of(f, "v1"), c.version);
    OK(vse_step(f->db, "v1", c.op_id, "creating_vol", NULL, &r, &f->err));
}

static void test_claim_refused_while_lease_live(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("api@h1");
    struct vse_opts other = owner_opts("sched@h2");
    struct vse_resource r, cur;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", NULL, &r, &f->err));
    assert_int_equal(vse_claim(f->db, "v1", r.op_id, &other, &cur, &f->err),
                     VSE_ECONFLICT);
    assert_string_equal(cur.owner, "api@h1");
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void count_violation(void *ctx, const char *id, const char *msg);
static struct vse_event last_event(struct fx *f, const char *id);

/*
 * claim_step: a claim and the step after it as one transition (the
 * scheduler's), handing the op off again.  One history row of kind
 * claim that moves the state, names the claimer and passes the checker;
 * refused like a claim (live lease) and like a step (off an edge).
 */
static void test_claim_step(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("api@h1");
    struct vse_opts rel = {.release = 1};
    struct vse_opts sched = owner_opts("sched@h2");
    struct vse_opts mgr = owner_opts("vol@h3");
    struct vse_resource r, c, cur;
    struct vse_event e;
    int64_t n = -1;
    int seen = 0;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", &rel, &r, &f->err));
    assert_int_equal(vse_claim_step(f->db, "v1", r.op_id, "available", &sched,
                                    &cur, &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(version_of(f, "v1"), r.version);
    sched.release = 1;
    OK(vse_claim_step(f->db, "v1", r.op_id, "creating_vol", &sched, &c,
                      &f->err));
    assert_string_equal(c.state, "creating_vol");
    assert_string_equal(c.owner, "");
    assert_int_equal(c.version, r.version + 1);
    assert_string_not_equal(c.op_id, r.op_id);
    e = last_event(f, "v1");
    assert_int_equal(e.kind, VSE_KIND_CLAIM);
    assert_string_equal(e.from, "scheduling");
    assert_string_equal(e.to, "creating_vol");
    assert_string_equal(e.owner, "sched@h2");
    assert_string_equal(e.op_id, c.op_id);
    /* The hand-off's old token is dead; the new one is claimed. */
    assert_int_equal(vse_claim(f->db, "v1", r.op_id, &mgr, &cur, &f->err),
                     VSE_EFENCED);
    OK(vse_claim(f->db, "v1", c.op_id, &mgr, &r, &f->err));
    OK(vse_finish(f->db, "v1", r.op_id, "available", NULL, &r, &f->err));
    OK(vse_check(f->db, NULL, count_violation, &seen, &n, &f->err));
    assert_int_equal(n, 0);

    /* Owned by a live lease: refused as a claim is. */
    OK(vse_create(f->db, "volume", "v2", &o, &r, &f->err));
    OK(vse_step(f->db, "v2", r.op_id, "scheduling", NULL, &r, &f->err));
    assert_int_equal(vse_claim_step(f->db, "v2", r.op_id, "creating_vol",
                                    &sched, &cur, &f->err),
                     VSE_ECONFLICT);
    assert_string_equal(cur.owner, "api@h1");
    assert_int_equal(version_of(f, "v2"), r.version);
    assert_int_equal(vse_claim_step(f->db, "v2", r.op_id, "", &sched, &cur,
                                    &f->err),
                     VSE_EINVAL);
}

static void test_renew_extends_lease(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.ttl_ms = 60000};
    struct vse_resource r, n;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 60000, &r);
    wait_past(r.updated + 1000);
    OK(vse_renew(f->db, "v1", r.op_id, &o, &n, &f->err));
    assert_true(n.lease_expires > r.lease_expires);
    assert_string_equal(n.op_id, r.op_id);
    assert_int_equal(n.version, r.version + 1);
    OK(vse_get(f->db, "v1", &r, &f->err));
    assert_int_equal(r.lease_expires, n.lease_expires);
}

/*
 * A renew that only extends the lease writes no history row (issue 15):
 * the version moves (a reaper that read the old lease loses its CAS),
 * the history has a gap inside the op, and the checker accepts it: in
 * the middle of the op and at its end (the row ahead of its history).
 * A renew with a reason still writes its row.
 */
static void test_renew_writes_no_history(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.ttl_ms = 60000};
    struct vse_opts why = {.ttl_ms = 60000, .reason = "task x: start"};
    struct vse_resource r, n, cur;
    struct vse_event e;
    int64_t bad = -1;
    int seen = 0;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 60000, &r);
    e = last_event(f, "v1");
    OK(vse_renew(f->db, "v1", r.op_id, &o, &n, &f->err));
    OK(vse_renew(f->db, "v1", r.op_id, &o, &n, &f->err));
    assert_int_equal(n.version, r.version + 2);
    OK(vse_get(f->db, "v1", &cur, &f->err));
    assert_int_equal(cur.version, r.version + 2);
    assert_int_equal(cur.lease_expires, n.lease_expires);
    assert_int_equal(last_event(f, "v1").version, e.version);
    OK(vse_check(f->db, "v1", count_violation, &seen, &bad, &f->err));
    assert_int_equal(bad, 0);
    /* A stale read of the row loses its compare-and-swap to the renew. */
    o.seen = &r;
    OK(vse_renew(f->db, "v1", r.op_id, &o, &n, &f->err));
    assert_int_equal(n.version, r.version + 3);
    o.seen = NULL;
    OK(vse_renew(f->db, "v1", r.op_id, &why, &n, &f->err));
    e = last_event(f, "v1");
    assert_int_equal(e.kind, VSE_KIND_RENEW);
    assert_int_equal(e.version, r.version + 4);
    assert_string_equal(e.reason, "task x: start");
    OK(vse_renew(f->db, "v1", r.op_id, &o, &n, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &n, &f->err));
    assert_int_equal(last_event(f, "v1").version, r.version + 6);
    OK(vse_check(f->db, "v1", count_violation, &seen, &bad, &f->err));
    assert_int_equal(bad, 0);
    assert_int_equal(seen, 0);
}

/* Records whether a violation message contains ctx->want. */
struct want_violation {
    const char *want;
    int seen;
};

static void note_violation(void *ctx, const char *id, const char *msg)
{
    struct want_violation *w = ctx;

    (void)id;
    if (strstr(msg, w->want) != NULL)
        w->seen = 1;
}

/*
 * The gap a quiet renew leaves is allowed inside an op only: a row that
 * moved with no history row while nothing was in flight (written here
 * through the store interface, as no vse call can) is a violation, at
 * the end of the history and in its middle.
 */
static void test_check_gap_outside_op(void **state)
{
    struct fx *f = *state;
    struct want_violation tail = {"history ends at", 0};
    struct want_violation mid = {"versions jump from 1 to 3", 0};
    struct vse_store *s;
    struct vse_resource r, cur;
    struct vse_event e;
    int64_t n = -1;

    assert_int_equal(vse__store_open(f->url, &s, &f->err), 0);
    rest_row(&r, &e, "g1", 1);
    OK(vse__store_apply(
        s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
        &cur, NULL, &f->err));
    rest_row(&r, &e, "g1", 2);
    OK(vse__store_apply(s,
                        &(struct vse_change){.expect_version = 1,
                                             .row = &r,
                                             .ev = &e,
                                             .quiet = 1},
                        &cur, NULL, &f->err));
    OK(vse_check(f->db, "g1", note_violation, &tail, &n, &f->err));
    assert_true(tail.seen);
    rest_row(&r, &e, "g1", 3);
    OK(vse__store_apply(
        s, &(struct vse_change){.expect_version = 2, .row = &r, .ev = &e},
        &cur, NULL, &f->err));
    OK(vse_check(f->db, "g1", note_violation, &mid, &n, &f->err));
    assert_true(mid.seen);
    vse__store_close(s);
}

static void test_reset_state_fences_op(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "admin", .reason = "host lost"};
    struct vse_resource r, cur;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_reset_state(f->db, "v1", "error", &o, &cur, &f->err));
    assert_string_equal(cur.state, "error");
    assert_string_equal(cur.op, "");
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &cur,
                              &f->err),
                     VSE_EFENCED);
    assert_string_equal(cur.state, "error");
}

static void test_reset_state_needs_reason(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "admin"};
    struct vse_resource r;

    make_available(f, "v1", &r);
    assert_int_equal(vse_reset_state(f->db, "v1", "error", &o, NULL, &f->err),
                     VSE_EINVAL);
    assert_int_equal(version_of(f, "v1"), r.version);
}

static void test_reap_retry_hands_back(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "sched@h2", .ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, cur;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", NULL, &r, &f->err));
    wait_past(r.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.retried, 1);
    OK(vse_get(f->db, "v1", &cur, &f->err));
    assert_string_equal(cur.state, "scheduling");
    assert_string_equal(cur.op, "create");
    assert_string_equal(cur.owner, "");
    assert_string_not_equal(cur.op_id, r.op_id);
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "creating_vol", NULL,
                              NULL, &f->err),
                     VSE_EFENCED);
    /* Waiting unowned is a queue, not an expired lease. */
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.retried + st.failed + st.reverted, 0);
}

static void test_reap_fail(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "api@h1", .ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, cur;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    wait_past(r.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.failed, 1);
    OK(vse_get(f->db, "v1", &cur, &f->err));
    assert_string_equal(cur.state, "error");
    assert_string_equal(cur.op, "");
}

static void test_reap_revert(void **state)
{
    struct fx *f = *state;
    struct vse_reap_stats st;
    struct vse_resource r, cur;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 20, &r);
    wait_past(r.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.reverted, 1);
    OK(vse_get(f->db, "v1", &cur, &f->err));
    assert_string_equal(cur.state, "available");
    assert_int_equal(vse_step(f->db, "v1", r.op_id, "attaching", NULL, NULL,
                              &f->err),
                     VSE_EFENCED);
}

static void test_reap_leaves_live_leases(void **state)
{
    struct fx *f = *state;
    struct vse_reap_stats st;
    struct vse_resource r;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 60000, &r);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.examined, 0);
    assert_int_equal(version_of(f, "v1"), r.version);
}

/* ---- the retry budget (docs/machines.md) ---- */

/* A machine with a small budget, so that a test sees it spent. */
static const char job_yaml[] =
    "machine: job\nversion: 1\n"
    "states:\n"
    "  working: {kind: busy, status: working}\n"
    "  done: {kind: rest, status: done}\n"
    "  broken: {kind: rest, status: broken}\n"
    "operations:\n"
    "  make:\n"
    "    from: new\n    steps: [working]\n    success: done\n"
    "    failure: broken\n    on_expiry: retry\n"
    "    retry: {attempts: 3, unclaimed: 1s}\n"
    "  redo:\n"
    "    from: [done, broken]\n    steps: [working]\n    success: done\n"
    "    failure: broken\n    on_expiry: retry\n"
    "    retry: {attempts: 3, unclaimed: 1s}\n";

static void add_job_machine(struct fx *f)
{
    vse_machine *m = NULL;

    OK(vse_machine_load_buffer("job.yaml", job_yaml, strlen(job_yaml), NULL,
                               NULL, &m, &f->err));
    OK(vse_add_machine(f->db, m, &f->err));
}

static int keep_last(void *ctx, const struct vse_event *e)
{
    *(struct vse_event *)ctx = *e;
    return 0;
}

static struct vse_event last_event(struct fx *f, const char *id)
{
    struct vse_event e;

    memset(&e, 0, sizeof(e));
    OK(vse_history(f->db, id, 0, 0, keep_last, &e, &f->err));
    return e;
}

/* Let the lease of r run out, then reap once. */
static void expire_and_reap(struct fx *f, const struct vse_resource *r,
                            struct vse_reap_stats *st)
{
    wait_past(r->lease_expires);
    OK(vse_reap(f->db, st, &f->err));
}

static void test_retry_budget_attempts(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "w1", .ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, cur;
    struct vse_event e;

    add_job_machine(f);
    OK(vse_create(f->db, "job", "j1", &o, &r, &f->err));
    for (int i = 1; i <= 2; i++) {
        expire_and_reap(f, &r, &st);
        assert_int_equal(st.retried, 1);
        assert_int_equal(st.exhausted, 0);
        e = last_event(f, "j1");
        assert_non_null(strstr(e.reason, i == 1 ? "(retry, expiry 1 of 3)"
                                                : "(retry, expiry 2 of 3)"));
        OK(vse_get(f->db, "j1", &cur, &f->err));
        OK(vse_claim(f->db, "j1", cur.op_id, &o, &r, &f->err));
    }
    /* The third expiry spends the budget: the failure state, not a hand
     * back, and the reason says why. */
    expire_and_reap(f, &r, &st);
    assert_int_equal(st.retried, 0);
    assert_int_equal(st.exhausted, 1);
    assert_int_equal(st.failed, 0);
    OK(vse_get(f->db, "j1", &cur, &f->err));
    assert_string_equal(cur.state, "broken");
    assert_string_equal(cur.op, "");
    e = last_event(f, "j1");
    assert_int_equal(e.kind, VSE_KIND_EXPIRE);
    assert_string_equal(e.to, "broken");
    assert_true(
        strncmp(e.reason, "retry budget spent: 3 expiries of make", 38) == 0);
    assert_int_equal(vse_renew(f->db, "j1", r.op_id, &o, NULL, &f->err),
                     VSE_EFENCED);

    /* A new op starts with the whole budget again. */
    OK(vse_begin(f->db, "j1", "redo", &o, &r, &f->err));
    expire_and_reap(f, &r, &st);
    assert_int_equal(st.retried, 1);
    e = last_event(f, "j1");
    assert_non_null(strstr(e.reason, "(retry, expiry 1 of 3)"));
    OK(vse_check(f->db, NULL, NULL, NULL, &st.examined, &f->err));
    assert_int_equal(st.examined, 0); /* no violations */
}

/* Reap every 50 ms until id is at rest; the time it took, in us. */
static int64_t reap_until_rest(struct fx *f, const char *id,
                               struct vse_reap_stats *total)
{
    int64_t t0 = vse_now_us();
    struct vse_resource cur;

    memset(total, 0, sizeof(*total));
    for (;;) {
        struct vse_reap_stats st;

        OK(vse_reap(f->db, &st, &f->err));
        total->unclaimed += st.unclaimed;
        total->exhausted += st.exhausted;
        total->failed += st.failed;
        OK(vse_get(f->db, id, &cur, &f->err));
        if (cur.op[0] == '\0')
            return vse_now_us() - t0;
        if (vse_now_us() - t0 > INT64_C(10000000))
            fail_msg("%s still in %s after 10 s of reaping", id, cur.state);
        usleep(50000);
    }
}

static void test_retry_budget_unclaimed(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "w1", .ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, cur;
    struct vse_event e;
    int64_t handed_back, took;

    add_job_machine(f);
    OK(vse_create(f->db, "job", "j1", &o, &r, &f->err));
    expire_and_reap(f, &r, &st);
    assert_int_equal(st.retried, 1);
    OK(vse_get(f->db, "j1", &cur, &f->err));
    handed_back = cur.lease_expires - cur.lease_ttl;
    /* Waiting unowned, within the budget: left alone. */
    wait_past(cur.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.unclaimed + st.exhausted + st.failed, 0);
    OK(vse_get(f->db, "j1", &cur, &f->err));
    assert_string_equal(cur.state, "working");

    took = reap_until_rest(f, "j1", &st);
    assert_int_equal(st.unclaimed, 1);
    assert_int_equal(st.exhausted + st.failed, 0);
    assert_true(vse_now_us() - handed_back >= INT64_C(1000000));
    assert_true(took < INT64_C(5000000));
    OK(vse_get(f->db, "j1", &cur, &f->err));
    assert_string_equal(cur.state, "broken");
    e = last_event(f, "j1");
    assert_int_equal(e.kind, VSE_KIND_EXPIRE);
    assert_true(strncmp(e.reason, "handed back ", 12) == 0);
    assert_non_null(strstr(e.reason, " ago and not claimed: step working of "
                                     "make waited longer than its unclaimed "
                                     "budget (1s)"));
}

/* The unclaimed clock starts when a step releases the op, whatever lease
 * the step gives it: lease_expires - lease_ttl is when it became unowned. */
static void test_release_starts_unclaimed_clock(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.owner = "w1"}, rel = {.release = 1, .ttl_ms = 20};
    struct vse_resource r;

    OK(vse_create(f->db, "volume", "v1", &o, &r, &f->err));
    assert_int_equal(r.lease_ttl, (int64_t)VSE_DEFAULT_TTL_MS * 1000);
    OK(vse_step(f->db, "v1", r.op_id, "scheduling", &rel, &r, &f->err));
    assert_string_equal(r.owner, "");
    assert_int_equal(r.lease_ttl, 20000);
    assert_int_equal(r.lease_expires - r.lease_ttl, r.updated);
}

/* An op begun unowned for a worker that never comes (the volume
 * in `extending` with no volume host) ends the same way. */
static void test_retry_budget_unclaimed_from_begin(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, cur;

    add_job_machine(f);
    OK(vse_create(f->db, "job", "j2", &o, &r, &f->err));
    assert_string_equal(r.owner, "");
    reap_until_rest(f, "j2", &st);
    assert_int_equal(st.unclaimed, 1);
    OK(vse_get(f->db, "j2", &cur, &f->err));
    assert_string_equal(cur.state, "broken");
    assert_true(cur.updated - r.since >= INT64_C(1000000));
}

struct evlog {
    int n;
    int64_t seq[64];
    int64_t version[64];
    char resource[64][16];
};

static int log_event(void *ctx, const struct vse_event *e)
{
    struct evlog *l = ctx;

    if (l->n < 64) {
        l->seq[l->n] = e->seq;
        l->version[l->n] = e->version;
        snprintf(l->resource[l->n], sizeof(l->resource[0]), "%s",
                 e->resource);
        l->n++;
    }
    return 0;
}

static void test_history_versions_contiguous(void **state)
{
    struct fx *f = *state;
    struct evlog l = {0};
    struct vse_resource r;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &r, &f->err));
    OK(vse_finish(f->db, "v1", r.op_id, NULL, NULL, &r, &f->err));
    OK(vse_history(f->db, "v1", 0, 0, log_event, &l, &f->err));
    assert_int_equal(l.n, r.version);
    for (int i = 0; i < l.n; i++) {
        assert_int_equal(l.version[i], i + 1);
        if (i > 0)
            assert_true(l.seq[i] > l.seq[i - 1]);
    }
}

static void test_history_of_unknown_resource(void **state)
{
    struct fx *f = *state;
    struct evlog l = {0};

    assert_int_equal(vse_history(f->db, "nope", 0, 0, log_event, &l, &f->err),
                     VSE_ENOTFOUND);
}

static void test_events_global_order_from_seq(void **state)
{
    struct fx *f = *state;
    struct evlog all = {0}, tail = {0};
    struct vse_resource a, b;
    int64_t last;

    /* Interleave two resources so seq order differs from per-resource. */
    make_available(f, "va", NULL);
    make_available(f, "vb", NULL);
    begin_attach(f, "va", 0, &a);
    begin_attach(f, "vb", 0, &b);
    OK(vse_step(f->db, "va", a.op_id, "attaching", NULL, &a, &f->err));
    OK(vse_events(f->db, 0, 0, log_event, &all, &f->err));
    assert_int_equal(all.n, 4 + 4 + 2 + 1);
    for (int i = 1; i < all.n; i++)
        assert_true(all.seq[i] > all.seq[i - 1]);
    assert_string_equal(all.resource[all.n - 1], "va");
    assert_string_equal(all.resource[all.n - 2], "vb");
    OK(vse_last_seq(f->db, &last, &f->err));
    assert_int_equal(last, all.seq[all.n - 1]);
    OK(vse_events(f->db, all.seq[7], 0, log_event, &tail, &f->err));
    assert_int_equal(tail.n, all.n - 8);
    assert_int_equal(tail.seq[0], all.seq[8]);
    tail.n = 0;
    OK(vse_events(f->db, 0, 3, log_event, &tail, &f->err));
    assert_int_equal(tail.n, 3);
}

static void test_purge(void **state)
{
    struct fx *f = *state;
    struct vse_resource r;
    struct vse_purge_policy p = {0};
    struct vse_purge_stats st;
    struct evlog l = {0};
    int64_t last_before, last_after;

    make_available(f, "keep", NULL);
    make_available(f, "gone", NULL);
    OK(vse_begin(f->db, "gone", "delete", NULL, &r, &f->err));
    OK(vse_finish(f->db, "gone", r.op_id, NULL, NULL, &r, &f->err));
    assert_string_equal(r.state, "deleted");
    OK(vse_last_seq(f->db, &last_before, &f->err));
    wait_past(vse_now_us());
    p.before = vse_now_us();
    p.drop_terminal = 1;
    OK(vse_purge(f->db, &p, &st, &f->err));
    assert_int_equal(st.resources, 1);
    assert_int_equal(st.history_rows, 3 + 6);
    assert_int_equal(vse_get(f->db, "gone", &r, &f->err), VSE_ENOTFOUND);
    /* The latest row of a kept resource stays, and seq never goes back. */
    OK(vse_history(f->db, "keep", 0, 0, log_event, &l, &f->err));
    assert_int_equal(l.n, 1);
    assert_int_equal(l.version[0], 4);
    OK(vse_last_seq(f->db, &last_after, &f->err));
    assert_int_equal(last_after, last_before);
}

static void count_violation(void *ctx, const char *id, const char *msg)
{
    fprintf(stderr, "violation: '%s': %s\n", id, msg);
    ++*(int *)ctx;
}

static void test_check_finds_no_violations(void **state)
{
    struct fx *f = *state;
    struct vse_opts why = {.reason = "test"};
    struct vse_resource r;
    int64_t n = -1;
    int seen = 0;

    make_available(f, "v1", NULL);
    begin_attach(f, "v1", 0, &r);
    OK(vse_step(f->db, "v1", r.op_id, "attaching", NULL, &r, &f->err));
    OK(vse_finish(f->db, "v1", r.op_id, NULL, NULL, &r, &f->err));
    make_available(f, "v2", NULL);
    begin_attach(f, "v2", 0, &r);
    OK(vse_fail(f->db, "v2", r.op_id, &why, &r, &f->err));
    OK(vse_check(f->db, NULL, count_violation, &seen, &n, &f->err));
    assert_int_equal(n, 0);
    assert_int_equal(seen, 0);
}

/*
 * Two callers read the same available volume; one begins delete, then the
 * other begins extend deciding from its (now stale) read.  The enforcer
 * decides again against the row it would write and refuses; nothing
 * changes.
 */
static void test_stale_read_redecided(void **state)
{
    struct fx *f = *state;
    struct vse_opts del = {.seen = NULL}, ext;
    struct vse_resource read, r;

    make_available(f, "v1", &read);
    OK(vse_begin(f->db, "v1", "delete", &del, &r, &f->err));
    memset(&ext, 0, sizeof(ext));
    ext.seen = &read;
    assert_int_equal(vse_begin(f->db, "v1", "extend", &ext, &r, &f->err),
                     VSE_ECONFLICT);
    assert_string_equal(r.op, "delete");
    assert_int_equal(version_of(f, "v1"), read.version + 1);
}

/*
 * vsed --coordination local-locks, the comparison with what vse replaces,
 * is vsed's store wrapper src/vsed/store-blind.c (linked into this test
 * only; see the Makefile): a second handle on the same store through
 * "blind:URL".  Declared here because vsed.h is the daemon's header.
 */
int vsed_store_blind_register(void);

static vse_db *open_blind(struct fx *f)
{
    char url[1100];
    vse_db *db = NULL;

    OK(vsed_store_blind_register());
    snprintf(url, sizeof(url), "blind:%s", f->url);
    OK(vse_open(url, &db, &f->err));
    return db;
}

/*
 * The same two calls through the blind wrapper: the extend is written
 * over the delete, as a status check and a save would, and vse_check
 * says so.
 */
static void test_blind_overwrites_and_check_finds_it(void **state)
{
    struct fx *f = *state;
    struct vse_opts del, ext, why = {.reason = "test"};
    struct vse_resource read, d, r;
    vse_db *blind = open_blind(f);
    int64_t n = 0;
    int seen = 0;

    make_available(f, "v1", &read);
    memset(&del, 0, sizeof(del));
    del.seen = &read;
    OK(vse_begin(blind, "v1", "delete", &del, &d, &f->err));
    memset(&ext, 0, sizeof(ext));
    ext.seen = &read;
    ext.attrs = "{\"new_size\":2}";
    OK(vse_begin(blind, "v1", "extend", &ext, &r, &f->err));
    OK(vse_get(f->db, "v1", &r, &f->err));
    assert_string_equal(r.state, "extending");
    assert_string_equal(r.op, "extend");
    assert_string_equal(r.attrs, "{\"new_size\":2}");
    assert_int_equal(r.version, read.version + 2);
    /* The delete's worker finishes from the row it claimed: its token
     * fences nothing, the extend in flight is wiped out. */
    why.seen = &d;
    OK(vse_finish(blind, "v1", d.op_id, "deleted", &why, NULL, &f->err));
    OK(vse_get(f->db, "v1", &r, &f->err));
    assert_string_equal(r.state, "deleted");
    assert_string_equal(r.op, "");
    assert_int_equal(r.version, read.version + 3);
    OK(vse_check(f->db, "v1", count_violation, &seen, &n, &f->err));
    assert_true(n >= 2);
    assert_int_equal(seen, n);
    /* A create keeps its compare-and-swap. */
    assert_int_equal(vse_create(blind, "volume", "v1", NULL, NULL, &f->err),
                     VSE_EEXIST);
    vse_close(blind);
}

/*
 * A token the caller was given fences nothing through the wrapper, even
 * on a fresh read: the renew of a fenced worker goes through and keeps the
 * row's real token, where the enforcer refuses it.
 */
static void test_blind_token_fences_nothing(void **state)
{
    struct fx *f = *state;
    struct vse_opts w = owner_opts("w1"), w2 = owner_opts("w2");
    struct vse_opts why = {.reason = "test"};
    struct vse_resource mine, r, after;
    struct vse_event ev;
    vse_db *blind = open_blind(f);

    make_available(f, "v1", NULL);
    OK(vse_begin(blind, "v1", "attach", &w, &mine, &f->err));
    OK(vse_reset_state(f->db, "v1", "available", &why, &r, &f->err));
    OK(vse_begin(f->db, "v1", "extend", &w2, &r, &f->err));
    assert_int_equal(vse_renew(f->db, "v1", mine.op_id, NULL, NULL, &f->err),
                     VSE_EFENCED);
    OK(vse_renew(blind, "v1", mine.op_id, NULL, NULL, &f->err));
    OK(vse_get(f->db, "v1", &after, &f->err));
    assert_string_equal(after.op, "extend");
    assert_string_equal(after.op_id, r.op_id);
    assert_int_equal(after.version, r.version + 1);
    OK(vse_history(f->db, "v1", 0, 0, keep_last, &ev, &f->err));
    assert_int_equal(ev.kind, VSE_KIND_RENEW);
    assert_string_equal(ev.op_id, r.op_id);
    vse_close(blind);
}

/*
 * A blind write changes in the current attrs what the caller changed
 * against its read, and keeps what others changed meanwhile.
 */
static void test_blind_attrs_merge_over_current(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {0};
    struct vse_resource read, r;
    vse_db *blind = open_blind(f);

    make_available(f, "v1", NULL);
    o.attrs = "{\"a\":1}";
    OK(vse_update(f->db, "v1", &o, &r, &f->err));
    OK(vse_get(blind, "v1", &read, &f->err));
    o.attrs = "{\"b\":2}";
    OK(vse_update(f->db, "v1", &o, &r, &f->err));
    o.seen = &read;
    o.attrs = "{\"a\":null,\"c\":3}";
    OK(vse_update(blind, "v1", &o, NULL, &f->err));
    OK(vse_get(f->db, "v1", &r, &f->err));
    assert_string_equal(r.attrs, "{\"b\":2,\"c\":3}");
    assert_int_equal(r.version, read.version + 2);
    vse_close(blind);
}

static int count_row(void *ctx, const struct vse_resource *r)
{
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static void test_bad_ids_rejected(void **state)
{
    struct fx *f = *state;
    char big[VSE_ID_MAX + 2];
    const char *bad[] = {"", big, "a\x01z", "tab\there", "del\x7f"};
    int64_t last;
    int rows = 0;

    memset(big, 'x', VSE_ID_MAX + 1);
    big[VSE_ID_MAX + 1] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(vse_create(f->db, "volume", bad[i], NULL, NULL,
                                    &f->err),
                         VSE_EINVAL);
    assert_int_equal(vse_begin(f->db, "", "attach", NULL, NULL, &f->err),
                     VSE_EINVAL);
    OK(vse_list(f->db, NULL, count_row, &rows, &f->err));
    assert_int_equal(rows, 0);
    OK(vse_last_seq(f->db, &last, &f->err));
    assert_int_equal(last, 0);
}

struct ids {
    char buf[256]; /* "a1 c3 ...": easy to compare, and to read on failure */
};

static int add_id(void *ctx, const struct vse_resource *r)
{
    struct ids *l = ctx;
    size_t n = strlen(l->buf);

    snprintf(l->buf + n, sizeof(l->buf) - n, "%s%s", n ? " " : "", r->id);
    return 0;
}

static const char *list_ids(struct fx *f, const struct vse_filter *flt,
                            struct ids *l)
{
    l->buf[0] = '\0';
    OK(vse_list(f->db, flt, add_id, l, &f->err));
    return l->buf;
}

/* not_state leaves out one state in the store, with every other filter:
 * the Cinder API's lists skip "deleted" rows this way. */
static void test_list_not_state(void **state)
{
    struct fx *f = *state;
    struct vse_filter flt = {0};
    struct vse_resource r;
    struct ids l;
    const char *gone[] = {"b2", "d4"};

    make_available(f, "a1", NULL);
    make_available(f, "b2", NULL);
    make_available(f, "c3", NULL);
    begin_attach(f, "c3", 60000, &r); /* busy, in reserved */
    make_available(f, "d4", NULL);
    make_available(f, "e5", NULL);
    OK(vse_create(f->db, "volume", "f6", NULL, &r, &f->err)); /* busy */
    for (size_t i = 0; i < sizeof(gone) / sizeof(*gone); i++) {
        OK(vse_begin(f->db, gone[i], "delete", NULL, &r, &f->err));
        OK(vse_finish(f->db, gone[i], r.op_id, NULL, NULL, &r, &f->err));
        assert_string_equal(r.state, "deleted");
    }

    flt.machine = "volume";
    assert_string_equal(list_ids(f, &flt, &l), "a1 b2 c3 d4 e5 f6");
    flt.not_state = "deleted";
    assert_string_equal(list_ids(f, &flt, &l), "a1 c3 e5 f6");
    flt.machine = NULL;
    assert_string_equal(list_ids(f, &flt, &l), "a1 c3 e5 f6");
    flt.machine = "volume";

    /* Paging: the pages put together are the list above. */
    flt.limit = 2;
    assert_string_equal(list_ids(f, &flt, &l), "a1 c3");
    flt.after_id = "c3";
    assert_string_equal(list_ids(f, &flt, &l), "e5 f6");
    flt.after_id = "b2"; /* a deleted row as the marker */
    assert_string_equal(list_ids(f, &flt, &l), "c3 e5");
    flt.after_id = "f6";
    assert_string_equal(list_ids(f, &flt, &l), "");
    flt.after_id = NULL;
    flt.limit = 0;

    /* With state: both hold; the same state in both matches nothing. */
    flt.state = "available";
    assert_string_equal(list_ids(f, &flt, &l), "a1 e5");
    flt.not_state = "available";
    assert_string_equal(list_ids(f, &flt, &l), "");
    flt.state = "deleted";
    flt.not_state = "deleted";
    assert_string_equal(list_ids(f, &flt, &l), "");
    flt.state = NULL;

    /* With busy: c3 (reserved) and f6 are busy; leave out reserved. */
    flt.busy = 1;
    flt.not_state = "reserved";
    assert_string_equal(list_ids(f, &flt, &l), "f6");
    flt.busy = 0;

    /* A state the machine does not have is a mistake, not "no filter". */
    flt.not_state = "delted";
    assert_int_equal(vse_list(f->db, &flt, add_id, &l, &f->err), VSE_EINVAL);
}

static void test_longest_id_accepted(void **state)
{
    struct fx *f = *state;
    char id[VSE_ID_MAX + 1];
    struct vse_resource r;

    memset(id, 'x', VSE_ID_MAX);
    id[VSE_ID_MAX] = '\0';
    OK(vse_create(f->db, "volume", id, NULL, NULL, &f->err));
    OK(vse_get(f->db, id, &r, &f->err));
    assert_string_equal(r.id, id);
}

/* attrs go in with the transition that sets them, as one change. */
static void test_attrs_set_with_transitions(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("api@h1");
    struct vse_resource r;

    o.attrs = "{\"size\":1,\"name\":\"db\"}";
    OK(vse_create(f->db, "volume", "a1", &o, &r, &f->err));
    assert_string_equal(r.attrs, "{\"size\":1,\"name\":\"db\"}");
    o = (struct vse_opts){.attrs = "{\"host\":\"h2\",\"name\":null}"};
    OK(vse_step(f->db, "a1", r.op_id, "scheduling", &o, &r, &f->err));
    OK(vse_get(f->db, "a1", &r, &f->err));
    assert_string_equal(r.attrs, "{\"size\":1,\"host\":\"h2\"}");
    assert_string_equal(r.state, "scheduling");
    assert_int_equal(r.version, 2);
}

/* update changes attrs only, in any state, and is in the history. */
static void test_update_attrs_any_state(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.attrs = "{\"name\":\"renamed\"}"};
    struct vse_resource r, u;
    int64_t violations = -1;

    make_available(f, "a2", NULL);
    begin_attach(f, "a2", 60000, &r);
    OK(vse_update(f->db, "a2", &o, &u, &f->err));
    assert_string_equal(u.state, "reserved");
    assert_string_equal(u.op_id, r.op_id);
    assert_string_equal(u.attrs, "{\"name\":\"renamed\"}");
    assert_int_equal(u.version, r.version + 1);
    /* The op goes on under its token: update fenced nothing. */
    OK(vse_step(f->db, "a2", r.op_id, "attaching", NULL, &r, &f->err));
    OK(vse_check(f->db, "a2", NULL, NULL, &violations, &f->err));
    assert_int_equal(violations, 0);
}

/* if_version: the call is made only against that version of the row;
 * a stale one is fenced, changes nothing and hands back the current row. */
static void test_update_if_version(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {.attrs = "{\"m\":{\"a\":\"1\"}}"};
    struct vse_resource r, u;
    int64_t v;

    make_available(f, "a4", NULL);
    v = version_of(f, "a4");
    o.if_version = v;
    OK(vse_update(f->db, "a4", &o, &u, &f->err));
    assert_int_equal(u.version, v + 1);
    o.attrs = "{\"m\":null}";
    assert_int_equal(vse_update(f->db, "a4", &o, &r, &f->err), VSE_EFENCED);
    assert_int_equal(r.version, v + 1);
    assert_string_equal(r.attrs, u.attrs);
    assert_non_null(strstr(f->err.msg, "changed meanwhile"));
    assert_int_equal(version_of(f, "a4"), v + 1);
    /* Transitions honour it too. */
    o.attrs = NULL;
    assert_int_equal(vse_begin(f->db, "a4", "attach", &o, &r, &f->err),
                     VSE_EFENCED);
    o.if_version = v + 1;
    OK(vse_begin(f->db, "a4", "attach", &o, &r, &f->err));
    assert_int_equal(r.version, v + 2);
}

/* Bad attrs change nothing. */
static void test_bad_attrs_rejected(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = {0};
    struct vse_resource r;
    char big[VSE_ATTRS_MAX + 64], xs[VSE_ATTRS_MAX];

    make_available(f, "a3", NULL);
    o.attrs = "{not json";
    assert_int_equal(vse_update(f->db, "a3", &o, &r, &f->err), VSE_EINVAL);
    o.attrs = "[1,2]";
    assert_int_equal(vse_update(f->db, "a3", &o, &r, &f->err), VSE_EINVAL);
    o.attrs = NULL;
    assert_int_equal(vse_update(f->db, "a3", &o, &r, &f->err), VSE_EINVAL);
    /* Each patch fits, but together they outgrow the row. */
    memset(xs, 'x', sizeof(xs));
    snprintf(big, sizeof(big), "{\"k\":\"%.*s\"}", VSE_ATTRS_MAX / 2, xs);
    o.attrs = big;
    OK(vse_update(f->db, "a3", &o, &r, &f->err));
    big[2] = 'j';
    assert_int_equal(vse_update(f->db, "a3", &o, &r, &f->err), VSE_ETOOBIG);
    assert_int_equal(version_of(f, "a3"), 5);
}

/* ---- machines upgraded in place ---- */

#define TINY_HEAD                                                            \
    "machine: tiny\nstatuses: [ready, busy, broken]\nstates:\n"              \
    "  ready: {kind: rest, status: ready}\n"                                 \
    "  broken: {kind: rest, status: broken}\n"
#define MAKING "  making: {kind: busy, status: busy}\n"
#define CHECKING "  checking: {kind: busy, status: busy}\n"
#define TINY_MAKE                                                            \
    "operations:\n  make:\n    from: [new]\n    success: [ready]\n"          \
    "    failure: broken\n    on_expiry: fail\n"

static vse_machine *tiny(struct fx *f, const char *text)
{
    vse_machine *m = NULL;

    OK(vse_machine_load_buffer("tiny.yaml", text, strlen(text), NULL, NULL,
                               &m, &f->err));
    return m;
}

struct seen {
    int n;
    char lines[4][256];
};

static void blocked(void *ctx, const struct vse_upgrade_blocker *b)
{
    struct seen *s = ctx;

    if (s->n < 4)
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s %s %s: %s",
                 b->resource, b->state, b->op, b->reason);
    s->n++;
}

static int count_upgrades(void *ctx, const struct vse_event *e)
{
    int *n = ctx;

    if (e->kind == VSE_KIND_UPGRADE) {
        assert_string_equal(e->resource, "");
        assert_string_equal(e->machine, "tiny");
        (*n)++;
    }
    return 0;
}

static int upgrades(struct fx *f)
{
    int n = 0;

    OK(vse_events(f->db, 0, 0, count_upgrades, &n, &f->err));
    return n;
}

static void test_upgrade_machine_in_flight(void **state)
{
    struct fx *f = *state;
    struct vse_upgrade_info info;
    struct vse_resource r;
    struct seen seen = {0};
    int64_t last = 0, last2 = 0;

    /* v1: make has one step; v2 adds `checking` after it; v3 renames
     * `making`, which r1 is at. */
    OK(vse_add_machine(f->db,
                       tiny(f, "version: 1\n" TINY_HEAD MAKING TINY_MAKE
                               "    steps: [making]\n"),
                       &f->err));
    OK(vse_create(f->db, "tiny", "r1", NULL, &r, &f->err));
    OK(vse_upgrade_machine(
        f->db,
        tiny(f, "version: 2\n" TINY_HEAD MAKING CHECKING TINY_MAKE
                "    steps: [making, checking]\n"),
        "tester", blocked, &seen, &info, &f->err));
    assert_int_equal(seen.n, 0);
    assert_int_equal(info.from_version, 1);
    assert_int_equal(info.to_version, 2);
    assert_true(info.seq > 0);
    assert_string_equal(info.changes,
                        "version 1 -> 2; state 'checking' added; operation "
                        "'make' changed (on_expiry, steps)");
    assert_int_equal(upgrades(f), 1);
    /* The op begun under v1 goes on under v2, through its new step. */
    OK(vse_step(f->db, "r1", r.op_id, "checking", NULL, &r, &f->err));

    OK(vse_last_seq(f->db, &last, &f->err));
    assert_int_equal(
        vse_upgrade_machine(
            f->db,
            tiny(f, "version: 3\n" TINY_HEAD
                    "  shaping: {kind: busy, status: busy}\n" TINY_MAKE
                    "    steps: [shaping]\n"),
            "tester", blocked, &seen, &info, &f->err),
        VSE_EINVAL);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.lines[0],
                        "r1 checking make: operation 'make' is at step "
                        "'checking', which version 3 drops");
    assert_int_equal(info.blockers, 1);
    assert_string_equal(f->err.msg, "cannot upgrade machine 'tiny' to "
                                    "version 3: 1 resource is in the way");
    /* The same states, but the op in flight renamed. */
    seen.n = 0;
    assert_int_equal(
        vse_upgrade_machine(
            f->db,
            tiny(f, "version: 3\n" TINY_HEAD MAKING CHECKING
                    "operations:\n  build:\n    from: [new]\n"
                    "    success: [ready]\n    failure: broken\n"
                    "    on_expiry: fail\n    steps: [making, checking]\n"),
            "tester", blocked, &seen, &info, &f->err),
        VSE_EINVAL);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.lines[0],
                        "r1 checking make: operation 'make' in flight is not "
                        "in version 3");
    OK(vse_last_seq(f->db, &last2, &f->err));
    assert_int_equal(last2, last);
    assert_int_equal(upgrades(f), 1);

    /* The handle enforces v2: the op finishes along v2's edges. */
    OK(vse_finish(f->db, "r1", r.op_id, "ready", NULL, &r, &f->err));
    assert_int_equal(
        vse_upgrade_machine(f->db,
                            tiny(f, "version: 1\n" TINY_HEAD MAKING TINY_MAKE
                                    "    steps: [making]\n"),
                            NULL, NULL, NULL, &info, &f->err),
        VSE_EPINNED);
    assert_int_equal(
        vse_upgrade_machine(f->db,
                            tiny(f, "version: 2\n" TINY_HEAD MAKING
                                    "  checking: {kind: busy, status: "
                                    "broken}\n" TINY_MAKE
                                    "    steps: [making, checking]\n"),
                            NULL, NULL, NULL, &info, &f->err),
        VSE_EPINNED);
    assert_int_equal(
        vse_upgrade_machine(
            f->db,
            tiny(f, "version: 2\n" TINY_HEAD MAKING CHECKING TINY_MAKE
                    "    steps: [making, checking]\n"),
            NULL, NULL, NULL, &info, &f->err),
        VSE_REPEATED);
    assert_int_equal(upgrades(f), 1);
    {
        int64_t n = -1;

        OK(vse_check(f->db, NULL, NULL, NULL, &n, &f->err));
        assert_int_equal(n, 0);
    }
}

/* ---- holds ------------------------------------------------------- */

struct viol {
    int64_t count;
    char first[512];
};

static void on_violation(void *ctx, const char *id, const char *msg)
{
    struct viol *v = ctx;

    (void)id;
    if (v->first[0] == '\0')
        snprintf(v->first, sizeof(v->first), "%s", msg);
}

/* Two small machines: a snap's create holds its disk shared, its export
 * holds it exclusive; a disk may not be deleted while held at all, nor
 * resized while held exclusive. */
static const char disk_yaml[] =
    "machine: disk\n"
    "version: 1\n"
    "states:\n"
    "  creating: {kind: busy, status: creating}\n"
    "  ready: {kind: rest, status: ready}\n"
    "  resizing: {kind: busy, status: resizing}\n"
    "  deleting: {kind: busy, status: deleting}\n"
    "  deleted: {kind: rest, status: deleted}\n"
    "  error: {kind: rest, status: error}\n"
    "operations:\n"
    "  create: {from: new, steps: [creating], success: ready,\n"
    "           failure: error, on_expiry: fail}\n"
    "  resize: {from: ready, steps: [resizing], success: ready,\n"
    "           failure: error, on_expiry: revert,\n"
    "           refused_while_held: exclusive}\n"
    "  delete: {from: [ready, error], steps: [deleting], success: deleted,\n"
    "           failure: error, on_expiry: fail,\n"
    "           refused_while_held: [shared, exclusive]}\n";
static const char snap_yaml[] =
    "machine: snap\n"
    "version: 1\n"
    "states:\n"
    "  creating: {kind: busy, status: creating}\n"
    "  ready: {kind: rest, status: ready}\n"
    "  exporting: {kind: busy, status: exporting}\n"
    "  error: {kind: rest, status: error}\n"
    "operations:\n"
    "  create: {from: new, steps: [creating], success: ready,\n"
    "           failure: error, on_expiry: fail,\n"
    "           holds: {machine: disk, mode: shared}}\n"
    "  export: {from: ready, steps: [exporting], success: ready,\n"
    "           failure: error, on_expiry: revert,\n"
    "           holds: {machine: disk, mode: exclusive}}\n";

static void add_hold_machines(struct fx *f)
{
    vse_machine *m;

    OK(vse_machine_load_buffer("disk.yaml", disk_yaml, strlen(disk_yaml),
                               NULL, NULL, &m, &f->err));
    OK(vse_add_machine(f->db, m, &f->err));
    OK(vse_machine_load_buffer("snap.yaml", snap_yaml, strlen(snap_yaml),
                               NULL, NULL, &m, &f->err));
    OK(vse_add_machine(f->db, m, &f->err));
}

static void make_disk(struct fx *f, const char *id)
{
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_resource r;

    OK(vse_create(f->db, "disk", id, &o, &r, &f->err));
    OK(vse_finish(f->db, id, r.op_id, NULL, NULL, &r, &f->err));
}

/* Create snap `id` holding disk `disk`: in `creating`, op_id in *out. */
static int create_snap(struct fx *f, const char *id, const char *disk,
                       struct vse_resource *out)
{
    struct vse_opts o = {.owner = "snap@h2", .hold = disk};

    return vse_create(f->db, "snap", id, &o, out, &f->err);
}

struct holds_seen {
    int n;
    struct vse_hold h[8];
};

static int on_hold(void *ctx, const struct vse_hold *h)
{
    struct holds_seen *s = ctx;

    if (s->n < 8)
        s->h[s->n] = *h;
    s->n++;
    return 0;
}

static int count_holds(struct fx *f, const char *held, const char *holder,
                       struct holds_seen *s)
{
    memset(s, 0, sizeof(*s));
    OK(vse_holds(f->db, held, holder, on_hold, s, &f->err));
    return s->n;
}

static void test_hold_shared_coexist(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_resource r, s1, s2, s3;
    struct holds_seen hs;

    add_hold_machines(f);
    make_disk(f, "d1");
    OK(create_snap(f, "s1", "d1", &s1));
    OK(create_snap(f, "s2", "d1", &s2));
    OK(create_snap(f, "s3", "d1", &s3));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 3);
    assert_string_equal(hs.h[0].held, "d1");
    assert_string_equal(hs.h[0].holder, "s1");
    assert_string_equal(hs.h[0].machine, "snap");
    assert_string_equal(hs.h[0].op, "create");
    assert_string_equal(hs.h[0].op_id, s1.op_id);
    assert_string_equal(hs.h[0].owner, "snap@h2");
    assert_int_equal(hs.h[0].mode, VSE_HOLD_SHARED);
    assert_true(hs.h[0].since > 0);
    assert_string_equal(hs.h[2].holder, "s3");
    assert_int_equal(count_holds(f, NULL, "s2", &hs), 1);
    assert_string_equal(hs.h[0].held, "d1");
    assert_int_equal(count_holds(f, NULL, NULL, &hs), 3);
    /* Delete is refused at once, naming the holders. */
    assert_int_equal(vse_begin(f->db, "d1", "delete", &o, &r, &f->err),
                     VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg,
                           "disk 'd1' is held: shared by snap "
                           "'s1' (create, owner snap@h2, since "));
    if (strstr(f->err.msg, "delete may not begin while it is held") == NULL)
        fail_msg("message: %s", f->err.msg);
    assert_string_equal(r.state, "ready");
    assert_int_equal(version_of(f, "d1"), 2);
    /* A shared hold does not refuse resize. */
    OK(vse_begin(f->db, "d1", "resize", &o, &r, &f->err));
    OK(vse_finish(f->db, "d1", r.op_id, NULL, NULL, &r, &f->err));
}

static void test_hold_exclusive_excludes(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_opts ex = {.owner = "snap@h2", .hold = "d1"};
    struct vse_resource r, s1, s2;
    struct holds_seen hs;

    add_hold_machines(f);
    make_disk(f, "d1");
    OK(create_snap(f, "s1", "d1", &s1));
    /* Exclusive does not fit beside a shared hold... */
    OK(create_snap(f, "s2", "d1", &s2));
    OK(vse_finish(f->db, "s2", s2.op_id, NULL, NULL, &s2, &f->err));
    assert_int_equal(vse_begin(f->db, "s2", "export", &ex, &r, &f->err),
                     VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "disk 'd1' is held: shared by snap "
                                       "'s1'"));
    assert_string_equal(r.state, "ready");
    OK(vse_finish(f->db, "s1", s1.op_id, NULL, NULL, &s1, &f->err));
    /* ...and, once taken, excludes every other hold. */
    OK(vse_begin(f->db, "s2", "export", &ex, &s2, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 1);
    assert_int_equal(hs.h[0].mode, VSE_HOLD_EXCLUSIVE);
    assert_string_equal(hs.h[0].op, "export");
    assert_int_equal(create_snap(f, "s3", "d1", &r), VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "exclusive by snap 's2' (export"));
    assert_int_equal(vse_get(f->db, "s3", &r, &f->err), VSE_ENOTFOUND);
    assert_int_equal(vse_begin(f->db, "d1", "resize", &o, &r, &f->err),
                     VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "resize may not begin"));
    OK(vse_finish(f->db, "s2", s2.op_id, NULL, NULL, &s2, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 0);
    OK(create_snap(f, "s3", "d1", &r));
}

static void test_hold_ends_with_its_op(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_opts why = {.reason = "test"};
    struct vse_opts quick = {.owner = "snap@h2", .hold = "d1", .ttl_ms = 20};
    struct vse_reap_stats st;
    struct vse_resource r, s;
    struct holds_seen hs;

    add_hold_machines(f);
    make_disk(f, "d1");
    /* finish */
    OK(create_snap(f, "s1", "d1", &s));
    OK(vse_finish(f->db, "s1", s.op_id, NULL, NULL, &s, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 0);
    /* fail */
    OK(create_snap(f, "s2", "d1", &s));
    OK(vse_fail(f->db, "s2", s.op_id, &why, &s, &f->err));
    assert_string_equal(s.state, "error");
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 0);
    /* reset-state */
    OK(create_snap(f, "s3", "d1", &s));
    OK(vse_reset_state(f->db, "s3", "error", &why, &s, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 0);
    /* expiry, failed by the reaper */
    OK(vse_create(f->db, "snap", "s4", &quick, &s, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 1);
    wait_past(s.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.failed, 1);
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 0);
    /* expiry, reverted by the reaper */
    OK(vse_begin(f->db, "s1", "export", &quick, &s, &f->err));
    assert_int_equal(count_holds(f, NULL, "s1", &hs), 1);
    wait_past(s.lease_expires);
    OK(vse_reap(f->db, &st, &f->err));
    assert_int_equal(st.reverted, 1);
    assert_int_equal(count_holds(f, NULL, NULL, &hs), 0);
    /* Nothing holds d1 now: delete may begin. */
    OK(vse_begin(f->db, "d1", "delete", &o, &r, &f->err));
    {
        int64_t violations = -1;

        OK(vse_check(f->db, NULL, NULL, NULL, &violations, &f->err));
        assert_int_equal(violations, 0);
    }
}

static void test_hold_refused_inputs(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_opts bad = {.owner = "x", .hold = "d1"};
    struct vse_resource r, s;
    struct holds_seen hs;

    add_hold_machines(f);
    make_disk(f, "d1");
    /* The hold must be named, exist, be of the declared machine. */
    assert_int_equal(create_snap(f, "s1", NULL, &r), VSE_EINVAL);
    assert_non_null(strstr(f->err.msg, "holds a disk: name it"));
    assert_int_equal(create_snap(f, "s1", "d9", &r), VSE_ENOTFOUND);
    assert_non_null(strstr(f->err.msg, "disk 'd9' to be held by snap 's1'"));
    OK(create_snap(f, "s0", "d1", &s));
    assert_int_equal(create_snap(f, "s1", "s0", &r), VSE_EINVAL);
    assert_non_null(strstr(f->err.msg, "'s0' is a snap"));
    assert_int_equal(create_snap(f, "s1", "s1", &r), VSE_EINVAL);
    /* An op that holds nothing takes no hold; only create/begin do. */
    assert_int_equal(vse_create(f->db, "disk", "d2", &bad, &r, &f->err),
                     VSE_EINVAL);
    assert_non_null(strstr(f->err.msg, "holds nothing"));
    assert_int_equal(vse_finish(f->db, "s0", s.op_id, NULL, &bad, &r,
                                &f->err),
                     VSE_EINVAL);
    OK(vse_finish(f->db, "s0", s.op_id, NULL, NULL, &r, &f->err));
    /* Busy in an op refused while held, or terminal: no hold. */
    OK(vse_begin(f->db, "d1", "delete", &o, &r, &f->err));
    assert_int_equal(create_snap(f, "s1", "d1", &s), VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "it may not be held shared while "
                                       "delete runs"));
    OK(vse_finish(f->db, "d1", r.op_id, NULL, NULL, &r, &f->err));
    assert_int_equal(create_snap(f, "s1", "d1", &s), VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "terminal"));
    /* Nothing was written by any refusal. */
    assert_int_equal(vse_get(f->db, "s1", &r, &f->err), VSE_ENOTFOUND);
    assert_int_equal(vse_get(f->db, "d2", &r, &f->err), VSE_ENOTFOUND);
    assert_int_equal(count_holds(f, NULL, NULL, &hs), 0);
}

/*
 * The store applies hold and transition together or not at all: a take
 * against a held resource that moved on, or a guarded change of a
 * resource that is now held, writes nothing, and the core decides again.
 */
static void test_hold_atomic_in_store(void **state)
{
    struct fx *f = *state;
    struct vse_opts o = owner_opts("disk@h1");
    struct vse_resource d, row, cur;
    struct vse_event ev;
    struct vse_hold take;
    struct vse_change ch;
    struct holds_seen hs;

    add_hold_machines(f);
    make_disk(f, "d1");
    OK(vse_get(f->db, "d1", &d, &f->err));
    /* A snap row as the core would write it, taking a hold on d1 at a
     * version d1 has already left. */
    memset(&row, 0, sizeof(row));
    strcpy(row.id, "s1");
    strcpy(row.machine, "snap");
    strcpy(row.state, "creating");
    strcpy(row.op, "create");
    OK(vse_uuid4(row.op_id, &f->err));
    strcpy(row.origin, "new");
    strcpy(row.attrs, "{}");
    row.version = 1;
    row.created = row.updated = row.since = vse_now_us();
    memset(&ev, 0, sizeof(ev));
    ev.kind = VSE_KIND_CREATE;
    ev.version = 1;
    strcpy(ev.resource, "s1");
    strcpy(ev.machine, "snap");
    strcpy(ev.op, "create");
    strcpy(ev.op_id, row.op_id);
    strcpy(ev.from, "new");
    strcpy(ev.to, "creating");
    ev.at = row.since;
    memset(&take, 0, sizeof(take));
    strcpy(take.held, "d1");
    strcpy(take.holder, "s1");
    strcpy(take.machine, "snap");
    strcpy(take.op, "create");
    take.mode = VSE_HOLD_SHARED;
    take.since = row.since;
    ch = (struct vse_change){.expect_version = 0, .row = &row, .ev = &ev};
    ch.take = &take;
    ch.held_version = d.version - 1;
    assert_int_equal(vse__store_apply(f->db->store, &ch, &cur, NULL, &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(cur.version, 0);
    assert_int_equal(vse_get(f->db, "s1", &cur, &f->err), VSE_ENOTFOUND);
    assert_int_equal(count_holds(f, NULL, NULL, &hs), 0);
    /* At the right version it lands, row and hold together. */
    ch.held_version = d.version;
    OK(vse__store_apply(f->db->store, &ch, &cur, NULL, &f->err));
    assert_int_equal(count_holds(f, "d1", NULL, &hs), 1);
    /* A delete of d1 decided before the hold was seen (no read of holds,
     * only the guard) is refused by the store, and nothing moves. */
    row = d;
    row.version = d.version + 1;
    strcpy(row.state, "deleting");
    strcpy(row.op, "delete");
    OK(vse_uuid4(row.op_id, &f->err));
    strcpy(row.origin, "ready");
    ev.kind = VSE_KIND_BEGIN;
    ev.version = row.version;
    strcpy(ev.resource, "d1");
    strcpy(ev.machine, "disk");
    strcpy(ev.op, "delete");
    strcpy(ev.op_id, row.op_id);
    strcpy(ev.from, "ready");
    strcpy(ev.to, "deleting");
    ch = (struct vse_change){.expect_version = d.version,
                             .row = &row,
                             .ev = &ev};
    ch.guard = VSE_HOLD_SHARED | VSE_HOLD_EXCLUSIVE;
    assert_int_equal(vse__store_apply(f->db->store, &ch, &cur, NULL, &f->err),
                     VSE_ECONFLICT);
    assert_int_equal(cur.version, d.version);
    assert_int_equal(version_of(f, "d1"), d.version);
    /* Through the API, the same begin is refused naming s1. */
    assert_int_equal(vse_begin(f->db, "d1", "delete", &o, &cur, &f->err),
                     VSE_ECONFLICT);
    assert_non_null(strstr(f->err.msg, "snap 's1' (create"));
    /* A holder put at rest behind the core's back (no release) leaves a
     * hold that outlived its op: vse_check says so. */
    OK(vse_get(f->db, "s1", &cur, &f->err));
    row = cur;
    row.version = cur.version + 1;
    strcpy(row.state, "ready");
    row.op[0] = row.op_id[0] = row.origin[0] = row.owner[0] = '\0';
    row.lease_expires = row.lease_ttl = 0;
    ev.kind = VSE_KIND_FINISH;
    ev.version = row.version;
    strcpy(ev.resource, "s1");
    strcpy(ev.machine, "snap");
    strcpy(ev.op, "create");
    strcpy(ev.op_id, cur.op_id);
    strcpy(ev.from, "creating");
    strcpy(ev.to, "ready");
    ch = (struct vse_change){.expect_version = cur.version,
                             .row = &row,
                             .ev = &ev};
    OK(vse__store_apply(f->db->store, &ch, &cur, NULL, &f->err));
    {
        struct viol v = {0};

        OK(vse_check(f->db, NULL, on_violation, &v, &v.count, &f->err));
        assert_int_equal(v.count, 1);
        assert_non_null(strstr(v.first, "holds 'd1' (shared) at rest: the "
                                        "hold outlived its op create"));
    }
}

/* ---- group commit ------------------------------------------------- */

/*
 * Many threads of one process, each with its own handle, racing
 * compare-and-swaps: on SQLite and PostgreSQL they go to the store in
 * batches (group commit), on ZooKeeper each alone; on every store each
 * is decided by its own compare-and-swap.
 */
void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried);

/* The process's group-commit counters; 0 if the store under test has no
 * group commit (ZooKeeper). */
static int group_stats(uint64_t *batches, uint64_t *transitions,
                       uint64_t *retried)
{
    const char *which = getenv("VSE_TEST_STORE");

    vse__group_stats(batches, transitions, retried);
    return which == NULL || strcmp(which, "zookeeper") != 0;
}

/* Well above the PostgreSQL store's batches in flight per process
 * (VSE_PG_BATCHES_IN_FLIGHT, 4), so that batches form. */
#define GC_THREADS 16
/* The culprit test's races, at most: one whose failing transition shared
 * no batch shows nothing (seen under ASan and TSan, where the clients are
 * slow and the slots rarely all busy), and is run again. */
#define GC_ROUNDS 6
#define GC_RES 3
#define GC_ITERS 120

struct gc_worker {
    const char *url;
    int n;
    int out_fd;                    /* >= 0: report each win there */
    int64_t won[GC_RES][GC_ITERS]; /* versions this thread wrote */
    int nwon[GC_RES];
    int lost, bad;
};

/* Compare-and-swap the next version of a few shared rows, as fast as
 * possible: threads collide in the same batch and across batches. */
static void *gc_worker_main(void *arg)
{
    struct gc_worker *w = arg;
    struct vse_store *s;
    struct vse_error err;

    if (vse__store_open(w->url, &s, &err) != 0) {
        w->bad++;
        return NULL;
    }
    for (int i = 0; i < GC_ITERS; i++) {
        int k = (w->n + i) % GC_RES;
        char id[8];
        struct vse_resource cur, r;
        struct vse_event e;
        int64_t seq = 0;
        int rc;

        snprintf(id, sizeof(id), "g%d", k);
        if (vse__store_get(s, id, &cur, &err) != 0) {
            w->bad++;
            continue;
        }
        rest_row(&r, &e, id, cur.version + 1);
        rc = vse__store_apply(
            s,
            &(struct vse_change){
                .expect_version = cur.version, .row = &r, .ev = &e},
            &cur, &seq, &err);
        if (rc == 0 && seq > 0) {
            w->won[k][w->nwon[k]++] = r.version;
            if (w->out_fd >= 0) {
                char line[32];
                int len = snprintf(line, sizeof(line), "%d %lld\n", k,
                                   (long long)r.version);

                if (write(w->out_fd, line, (size_t)len) != len)
                    w->bad++;
            }
        } else if (rc == VSE_ECONFLICT && cur.version > r.version - 1) {
            w->lost++;
        } else {
            w->bad++;
        }
    }
    vse__store_close(s);
    return NULL;
}

static void gc_make_rows(const char *url)
{
    struct vse_store *s;
    struct vse_error err;

    assert_int_equal(vse__store_open(url, &s, &err), 0);
    for (int k = 0; k < GC_RES; k++) {
        struct vse_resource r, cur;
        struct vse_event e;
        char id[8];

        snprintf(id, sizeof(id), "g%d", k);
        rest_row(&r, &e, id, 1);
        assert_int_equal(
            vse__store_apply(s,
                             &(struct vse_change){
                                 .expect_version = 0, .row = &r, .ev = &e},
                             &cur, NULL, &err),
            0);
    }
    vse__store_close(s);
}

struct gc_hist {
    int64_t v[GC_ROUNDS * GC_THREADS * GC_ITERS + 2];
    int n;
};

static int gc_collect(void *ctx, const struct vse_event *e)
{
    struct gc_hist *h = ctx;

    if (h->n < (int)(sizeof(h->v) / sizeof(h->v[0])))
        h->v[h->n++] = e->version;
    return 0;
}

/* Row k is at version V, its history holds exactly versions 1..V. */
static int64_t gc_check_row(struct vse_store *s, int k)
{
    struct vse_resource r;
    struct vse_error err;
    struct gc_hist *h = calloc(1, sizeof(*h));
    char id[8];
    int64_t v;

    assert_non_null(h);
    snprintf(id, sizeof(id), "g%d", k);
    assert_int_equal(vse__store_get(s, id, &r, &err), 0);
    assert_int_equal(vse__store_history(s, id, 0, 0, gc_collect, h, &err), 0);
    assert_int_equal(h->n, r.version);
    for (int i = 0; i < h->n; i++)
        assert_int_equal(h->v[i], i + 1);
    v = r.version;
    free(h);
    return v;
}

/*
 * Eight threads, each with its own connection, race compare-and-swaps on
 * three rows through one group: every version is won by exactly one
 * thread, every loser is told, row and history agree, and commits of
 * several transitions did happen.
 */
static void test_group_commit_threads(void **state)
{
    struct fx *f = *state;
    const char *url = f->url;
    struct gc_worker *w = calloc(GC_THREADS, sizeof(*w));
    pthread_t th[GC_THREADS];
    struct vse_store *s;
    struct vse_error err;
    uint64_t b0, t0, r0, b1, t1, r1;
    int lost = 0, wins = 0, grouped;

    assert_non_null(w);
    gc_make_rows(url);
    grouped = group_stats(&b0, &t0, &r0);
    for (int i = 0; i < GC_THREADS; i++) {
        w[i].url = url;
        w[i].n = i;
        w[i].out_fd = -1;
        assert_int_equal(pthread_create(&th[i], NULL, gc_worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(th[i], NULL);
    group_stats(&b1, &t1, &r1);
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    for (int k = 0; k < GC_RES; k++) {
        int64_t v = gc_check_row(s, k);
        char *seen = calloc((size_t)v + 1, 1);

        assert_non_null(seen);
        for (int i = 0; i < GC_THREADS; i++)
            for (int j = 0; j < w[i].nwon[k]; j++) {
                int64_t x = w[i].won[k][j];

                assert_true(x >= 2 && x <= v);
                assert_int_equal(seen[x], 0); /* won once */
                seen[x] = 1;
                wins++;
            }
        for (int64_t x = 2; x <= v; x++)
            assert_int_equal(seen[x], 1); /* every write was answered */
        free(seen);
    }
    for (int i = 0; i < GC_THREADS; i++) {
        assert_int_equal(w[i].bad, 0);
        lost += w[i].lost;
    }
    vse__store_close(s);
    assert_int_equal(wins + lost, GC_THREADS * GC_ITERS);
    assert_true(lost > 0);
    if (grouped) {
        assert_true(b1 > b0); /* batches of two or more committed */
        assert_true(t1 - t0 >= 2 * (b1 - b0));
    }
    free(w);
}

/* Changes a store behind vse's back (SQLite or PostgreSQL). */
static void damage(struct fx *f, const char *text)
{
    if (f->schema[0] != '\0') {
        PGconn *c = PQconnectdb(f->url);
        PGresult *r = PQexec(c, text);

        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
    } else {
        char path[128];
        sqlite3 *db;

        snprintf(path, sizeof(path), "%s/store.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
    }
}

struct gc_culprit {
    const char *url;
    int tries, store_errors, other;
};

/* Applies, again and again, a transition that the store refuses with an
 * error of its own: the row says version 1, its history already holds 2. */
static void *gc_culprit_main(void *arg)
{
    struct gc_culprit *b = arg;
    struct vse_store *s;
    struct vse_error err;

    if (vse__store_open(b->url, &s, &err) != 0) {
        b->other++;
        return NULL;
    }
    for (int i = 0; i < b->tries; i++) {
        struct vse_resource r, cur;
        struct vse_event e;
        int rc;

        rest_row(&r, &e, "bad", 2);
        rc = vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, NULL, &err);
        if (rc == VSE_ESTORE)
            b->store_errors++;
        else
            b->other++;
    }
    vse__store_close(s);
    return NULL;
}

/*
 * A transition that fails with a store error in a batch costs the others
 * of its batch nothing: they go again alone and win or lose by their own
 * compare-and-swap, never with its error.
 */
static void test_group_commit_culprit(void **state)
{
    struct fx *f = *state;
    const char *url = f->url;
    struct gc_worker *w;
    pthread_t th[GC_THREADS], bt;
    struct vse_store *s;
    struct vse_error err;
    struct vse_resource r, cur;
    struct vse_event e;
    uint64_t b0, t0, r0, r1;
    int rounds = 0;

    if (!group_stats(&b0, &t0, &r0))
        skip(); /* no group commit: each transition is alone already */
    w = calloc(GC_THREADS, sizeof(*w));
    assert_non_null(w);
    gc_make_rows(url);
    assert_int_equal(vse__store_open(url, &s, &err), 0);
    rest_row(&r, &e, "bad", 1);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    rest_row(&r, &e, "bad", 2);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    vse__store_close(s);
    damage(f, "UPDATE resources SET version = 1 WHERE id = 'bad'");

    group_stats(&b0, &t0, &r0);
    r1 = r0;
    while (r1 == r0 && rounds++ < GC_ROUNDS) {
        struct gc_culprit b = {.url = url, .tries = 300};
        int wins = 0, lost = 0;

        memset(w, 0, GC_THREADS * sizeof(*w));
        assert_int_equal(pthread_create(&bt, NULL, gc_culprit_main, &b), 0);
        for (int i = 0; i < GC_THREADS - 1; i++) {
            w[i].url = url;
            w[i].n = i;
            w[i].out_fd = -1;
            assert_int_equal(
                pthread_create(&th[i], NULL, gc_worker_main, &w[i]), 0);
        }
        for (int i = 0; i < GC_THREADS - 1; i++)
            pthread_join(th[i], NULL);
        pthread_join(bt, NULL);
        group_stats(&b0, &t0, &r1);

        assert_int_equal(b.store_errors, b.tries);
        assert_int_equal(b.other, 0);
        for (int i = 0; i < GC_THREADS - 1; i++) {
            assert_int_equal(w[i].bad, 0); /* never the culprit's error */
            lost += w[i].lost;
            for (int k = 0; k < GC_RES; k++)
                wins += w[i].nwon[k];
        }
        assert_int_equal(wins + lost, (GC_THREADS - 1) * GC_ITERS);
    }
    assert_true(r1 > r0); /* the culprit did share batches */
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    for (int k = 0; k < GC_RES; k++)
        gc_check_row(s, k);
    vse__store_close(s);
    free(w);
}

/*
 * The same race in a child process, killed with SIGKILL mid-run: every
 * write the child was answered (and reported before it died) is in the
 * store, and each row agrees with its history (nothing half-done).
 */
static void test_group_commit_crash(void **state)
{
    struct fx *f = *state;
    const char *url = f->url;
    char buf[4096], line[64];
    size_t have = 0;
    int fds[2], reported = 0, status = 0;
    int64_t(*got)[2] = calloc(GC_THREADS * GC_ITERS, sizeof(*got));
    struct vse_store *s;
    struct vse_error err;
    pid_t pid;

    assert_non_null(got);
    gc_make_rows(url);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static struct gc_worker cw[GC_THREADS];
        pthread_t th[GC_THREADS];

        close(fds[0]);
        for (int i = 0; i < GC_THREADS; i++) {
            cw[i].url = url;
            cw[i].n = i;
            cw[i].out_fd = fds[1];
            pthread_create(&th[i], NULL, gc_worker_main, &cw[i]);
        }
        for (int i = 0; i < GC_THREADS; i++)
            pthread_join(th[i], NULL);
        _exit(0);
    }
    close(fds[1]);
    /* Kill it once it has answered some writes, mid-stream. */
    for (;;) {
        ssize_t n = read(fds[0], buf + have, sizeof(buf) - 1 - have);

        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        for (char *nl; (nl = strchr(buf, '\n')) != NULL;) {
            size_t len = (size_t)(nl - buf) + 1;
            int k;
            long long v;

            memcpy(line, buf, len < sizeof(line) ? len : sizeof(line) - 1);
            line[len < sizeof(line) ? len : sizeof(line) - 1] = '\0';
            if (sscanf(line, "%d %lld", &k, &v) == 2 &&
                reported < GC_THREADS * GC_ITERS) {
                got[reported][0] = k;
                got[reported][1] = v;
                reported++;
            }
            memmove(buf, nl + 1, have - len + 1);
            have -= len;
        }
        if (reported == 60)
            kill(pid, SIGKILL);
    }
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(reported >= 60);
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    {
        int64_t v[GC_RES];

        for (int k = 0; k < GC_RES; k++)
            v[k] = gc_check_row(s, k);
        for (int i = 0; i < reported; i++)
            assert_true(got[i][1] <= v[got[i][0]]); /* durable */
    }
    vse__store_close(s);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_create_flow_to_available),
        T(test_begin_refused_while_busy),
        T(test_begin_not_allowed_from_rest_state),
        T(test_step_along_edge),
        T(test_step_off_edge_refused),
        T(test_finish_to_non_success_refused),
        T(test_fail_needs_reason),
        T(test_wrong_op_id_fenced),
        T(test_repeated_step),
        T(test_repeated_finish),
        T(test_repeated_fail),
        T(test_create_existing_id),
        T(test_create_repeated_request_id),
        T(test_begin_repeated_request_id),
        T(test_claim_unowned_rotates_op_id),
        T(test_claim_refused_while_lease_live),
        T(test_claim_step),
        T(test_renew_extends_lease),
        T(test_reset_state_fences_op),
        T(test_reset_state_needs_reason),
        T(test_reap_retry_hands_back),
        T(test_reap_fail),
        T(test_reap_revert),
        T(test_reap_leaves_live_leases),
        T(test_retry_budget_attempts),
        T(test_retry_budget_unclaimed),
        T(test_retry_budget_unclaimed_from_begin),
        T(test_release_starts_unclaimed_clock),
        T(test_history_versions_contiguous),
        T(test_history_of_unknown_resource),
        T(test_events_global_order_from_seq),
        T(test_purge),
        T(test_check_finds_no_violations),
        T(test_bad_ids_rejected),
        T(test_list_not_state),
        T(test_longest_id_accepted),
        T(test_attrs_set_with_transitions),
        T(test_update_attrs_any_state),
        T(test_update_if_version),
        T(test_bad_attrs_rejected),
        T(test_stale_read_redecided),
        T(test_blind_overwrites_and_check_finds_it),
        T(test_blind_token_fences_nothing),
        T(test_renew_writes_no_history),
        T(test_check_gap_outside_op),
        T(test_blind_attrs_merge_over_current),
        T(test_upgrade_machine_in_flight),
        T(test_hold_shared_coexist),
        T(test_hold_exclusive_excludes),
        T(test_hold_ends_with_its_op),
        T(test_hold_refused_inputs),
        T(test_hold_atomic_in_store),
        T(test_group_commit_threads),
        T(test_group_commit_crash),
        T(test_group_commit_culprit),
#undef T
    };
    const char *which = getenv("VSE_TEST_STORE");

    if (which != NULL && strcmp(which, "postgresql") == 0 &&
        getenv("VSE_TEST_PG_URL") == NULL) {
        printf("skipped: VSE_TEST_STORE=postgresql needs VSE_TEST_PG_URL\n");
        return 0;
    }
    if (which != NULL && strcmp(which, "zookeeper") == 0 &&
        getenv("VSE_TEST_ZK_HOSTS") == NULL) {
        printf("skipped: VSE_TEST_STORE=zookeeper needs VSE_TEST_ZK_HOSTS\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
