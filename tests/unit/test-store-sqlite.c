/*
 * test-store-sqlite.c - the SQLite store below the core: its open rules
 * (a refused open leaves the file byte for byte as it was), URL
 * parameters, the CAS primitive, and EBUSY when the write lock stays
 * taken.  The behaviour seen through the public API is tests/store/.
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
#include <sqlite3.h>

#include "sqlite-gate.h"
#include "store.h"
#include "vse-int.h"

struct fx {
    char dir[64];
    char path[128];
    char url[160];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    strcpy(f->dir, "/tmp/vse-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/s.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void sql(const char *path, const char *text)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Open must fail with `code`, and the file must not change at all. */
static void refused_unchanged(struct fx *f, int code, const char *needle)
{
    struct vse_store *s = NULL;
    struct vse_error err;
    size_t n0, n1;
    char *before = slurp(f->path, &n0);
    char *after;

    assert_int_equal(vse__store_open(f->url, &s, &err), code);
    assert_null(s);
    after = slurp(f->path, &n1);
    assert_non_null(strstr(err.msg, needle));
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

static void test_new_file_gets_schema(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    sqlite3 *db;
    sqlite3_stmt *st;

    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    vse__store_close(s);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
                                        NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT group_concat(key || '=' || value, ',') "
                           "FROM (SELECT * FROM vse_meta WHERE key != "
                           "'created' ORDER BY key)",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "format=vse,schema_version=6");
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* A second open of an existing store changes nothing either. */
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    vse__store_close(s);
}

static void test_zero_byte_file_gets_schema(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    vse__store_close(s);
}

static void test_not_a_database_refused(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, just some text\n", fp);
    fclose(fp);
    refused_unchanged(f, VSE_ESCHEMA, "not an SQLite database");
}

static void test_foreign_database_refused(void **state)
{
    struct fx *f = *state;

    sql(f->path, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    refused_unchanged(f, VSE_ESCHEMA, "holds other tables");
}

static void test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;

    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    vse__store_close(s);
    sql(f->path, "UPDATE vse_meta SET value = '7' "
                 "WHERE key = 'schema_version'");
    refused_unchanged(f, VSE_ESCHEMA, "schema version 7, newer");
}

/*
 * A store written by vse 0.1 (schema 1: no attrs) is migrated on open,
 * its rows kept, never reinterpreted.
 */
static void test_schema_1_migrated(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_resource r;
    struct vse_error err;

    sql(f->path,
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE vse_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO vse_meta VALUES ('format','vse'),"
        " ('schema_version','1'), ('created','1');"
        "CREATE TABLE resources(id TEXT PRIMARY KEY, machine TEXT NOT NULL,"
        " state TEXT NOT NULL, op TEXT, op_id TEXT, origin TEXT, owner TEXT,"
        " lease_expires INTEGER, lease_ttl INTEGER NOT NULL DEFAULT 0,"
        " since INTEGER NOT NULL, updated INTEGER NOT NULL,"
        " created INTEGER NOT NULL, version INTEGER NOT NULL);"
        "CREATE TABLE history(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " resource TEXT NOT NULL, version INTEGER NOT NULL,"
        " machine TEXT NOT NULL, kind TEXT NOT NULL, op TEXT, op_id TEXT,"
        " from_state TEXT NOT NULL, to_state TEXT NOT NULL, owner TEXT,"
        " at INTEGER NOT NULL, request_id TEXT, reason TEXT,"
        " UNIQUE(resource, version));"
        "CREATE TABLE machines(name TEXT PRIMARY KEY, version INTEGER NOT"
        " NULL, hash TEXT NOT NULL, definition TEXT NOT NULL,"
        " pinned_at INTEGER NOT NULL);"
        "INSERT INTO resources VALUES ('old', 'volume', 'available', NULL,"
        " NULL, NULL, NULL, NULL, 0, 5, 5, 5, 1);");
    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    assert_int_equal(vse__store_get(s, "old", &r, &err), 0);
    assert_string_equal(r.state, "available");
    assert_int_equal(r.version, 1);
    assert_string_equal(r.attrs, "{}");
    vse__store_close(s);
}

static void test_other_format_refused(void **state)
{
    struct fx *f = *state;

    sql(f->path, "CREATE TABLE vse_meta(key TEXT PRIMARY KEY, value TEXT);"
                 "INSERT INTO vse_meta VALUES ('format', 'other'), "
                 "('schema_version', '1');");
    refused_unchanged(f, VSE_ESCHEMA, "not a vse store");
}

static void test_missing_directory(void **state)
{
    struct fx *f = *state;
    struct vse_store *s = NULL;
    struct vse_error err;
    char url[200];

    snprintf(url, sizeof(url), "sqlite:%s/nodir/s.db", f->dir);
    assert_int_equal(vse__store_open(url, &s, &err), VSE_ESTORE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "nodir/s.db"));
    assert_non_null(strstr(err.detail, "No such file or directory"));
    assert_non_null(strstr(err.hint, "nodir"));
}

static void test_url_parameters(void **state)
{
    struct fx *f = *state;
    struct vse_store *s = NULL;
    struct vse_error err;
    char url[240];

    snprintf(url, sizeof(url),
             "sqlite://%s?synchronous=normal"
             "&busy_timeout=10",
             f->path);
    assert_int_equal(vse__store_open(url, &s, &err), 0);
    vse__store_close(s);
    snprintf(url, sizeof(url), "sqlite:%s?synchronous=off", f->path);
    assert_int_equal(vse__store_open(url, &s, &err), VSE_EINVAL);
    assert_non_null(strstr(err.msg, "'off'"));
    snprintf(url, sizeof(url), "sqlite:%s?cache=1", f->path);
    assert_int_equal(vse__store_open(url, &s, &err), VSE_EINVAL);
    assert_non_null(strstr(err.msg, "unknown parameter 'cache'"));
    snprintf(url, sizeof(url), "sqlite:%s?busy_timeout=-3", f->path);
    assert_int_equal(vse__store_open(url, &s, &err), VSE_EINVAL);
    snprintf(url, sizeof(url), "sqlite:%s?group_commit=yes", f->path);
    assert_int_equal(vse__store_open(url, &s, &err), VSE_EINVAL);
    assert_non_null(strstr(err.msg, "group_commit (on or off)"));
    snprintf(url, sizeof(url), "sqlite:%s?group_commit=off", f->path);
    assert_int_equal(vse__store_open(url, &s, &err), 0);
    vse__store_close(s);
    assert_int_equal(vse__store_open("sqlite:", &s, &err), VSE_EINVAL);
}

static void fill(struct vse_resource *r, struct vse_event *e, const char *id,
                 const char *state, const char *op, int64_t version)
{
    memset(r, 0, sizeof(*r));
    memset(e, 0, sizeof(*e));
    strcpy(r->id, id);
    strcpy(r->machine, "volume");
    strcpy(r->state, state);
    strcpy(r->op, op);
    if (op[0] != '\0') {
        strcpy(r->op_id, "00000000-0000-4000-8000-000000000000");
        strcpy(r->owner, "w1");
        r->lease_expires = 1000 + version;
    }
    r->since = r->updated = r->created = 10 * version;
    r->version = version;
    strcpy(e->resource, id);
    strcpy(e->machine, "volume");
    e->version = version;
    e->kind = version == 1 ? VSE_KIND_CREATE : VSE_KIND_STEP;
    strcpy(e->op, op);
    strcpy(e->from, "x");
    strcpy(e->to, state);
    e->at = 10 * version;
    if (version == 2)
        strcpy(e->request_id, "req-2");
}

static int count_cb(void *ctx, const struct vse_resource *r)
{
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static int count_ev(void *ctx, const struct vse_event *e)
{
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static void test_apply_cas(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    struct vse_resource r, cur;
    struct vse_event e, got;
    int64_t seq = 0, seq2 = 0;
    int n;

    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    fill(&r, &e, "v1", "creating", "create", 1);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, &seq, &err),
        0);
    assert_true(seq > 0);
    /* Create again: conflict with the current row. */
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        VSE_ECONFLICT);
    assert_int_equal(cur.version, 1);
    assert_string_equal(cur.op, "create");
    assert_string_equal(cur.owner, "w1");
    /* A stale expected version loses, and nothing is written. */
    fill(&r, &e, "v1", "available", "", 2);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 5, .row = &r, .ev = &e},
            &cur, NULL, &err),
        VSE_ECONFLICT);
    assert_int_equal(cur.version, 1);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, &seq2, &err),
        0);
    assert_true(seq2 > seq);
    assert_int_equal(vse__store_get(s, "v1", &cur, &err), 0);
    assert_int_equal(cur.version, 2);
    assert_string_equal(cur.op, "");
    assert_int_equal(cur.lease_expires, 0);
    /* An absent resource: cur->version == 0. */
    fill(&r, &e, "v9", "available", "", 2);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, NULL, &err),
        VSE_ECONFLICT);
    assert_int_equal(cur.version, 0);
    assert_int_equal(vse__store_get(s, "v9", &cur, &err), VSE_ENOTFOUND);

    n = 0;
    assert_int_equal(vse__store_history(s, "v1", 0, 0, count_ev, &n, &err),
                     0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(vse__store_history(s, NULL, seq, 0, count_ev, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(vse__store_last_seq(s, &seq, &err), 0);
    assert_int_equal(seq, seq2);
    assert_int_equal(vse__store_find_event(s,
                                           &(struct vse_event_query){
                                               "v1", NULL, "req-2", 0, NULL},
                                           &got, &err),
                     0);
    assert_int_equal(got.version, 2);
    assert_int_equal(got.kind, VSE_KIND_STEP);
    assert_string_equal(got.reason, "");
    assert_int_equal(vse__store_find_event(s,
                                           &(struct vse_event_query){
                                               "v1", NULL, "nope", 0, NULL},
                                           &got, &err),
                     VSE_ENOTFOUND);

    n = 0;
    assert_int_equal(
        vse__store_list(s, &(struct vse_filter){.state = "available"}, 0,
                        count_cb, &n, &err),
        0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(vse__store_list(s, &(struct vse_filter){.busy = 1}, 0,
                                     count_cb, &n, &err),
                     0);
    assert_int_equal(n, 0);
    vse__store_close(s);
}

static void test_expired_and_purge(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    struct vse_resource r, cur;
    struct vse_event e;
    struct vse_purge_stats ps;
    struct vse_state_ref term = {"volume", "deleted"};
    int n;

    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    fill(&r, &e, "a", "creating", "create", 1);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    fill(&r, &e, "b", "creating", "create", 1);
    r.owner[0] = '\0'; /* unowned: waits for a claim, never expires */
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    n = 0;
    assert_int_equal(vse__store_expired(s, 5000, 0, count_cb, &n, &err), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(vse__store_list(s, &(struct vse_filter){.stuck = 1},
                                     5000, count_cb, &n, &err),
                     0);
    assert_true(n >= 1);
    fill(&r, &e, "a", "deleted", "", 2);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    assert_int_equal(vse__store_purge(s, 1000, &term, 1, &ps, &err), 0);
    assert_int_equal(ps.resources, 1);
    assert_int_equal(ps.history_rows, 2);
    assert_int_equal(vse__store_get(s, "a", &cur, &err), VSE_ENOTFOUND);
    assert_int_equal(vse__store_get(s, "b", &cur, &err), 0);
    vse__store_close(s);
}

static void test_pins(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    struct vse_pin p = {"volume", 1, "0123456789abcdef", "{}", 42}, got;

    assert_int_equal(vse__store_open(f->url, &s, &err), 0);
    assert_int_equal(vse__store_pin_get(s, "volume", &got, &err),
                     VSE_ENOTFOUND);
    assert_int_equal(vse__store_pin_put(s, &p, &err), 0);
    p.version = 2;
    assert_int_equal(vse__store_pin_put(s, &p, &err), 0); /* ignored */
    assert_int_equal(vse__store_pin_get(s, "volume", &got, &err), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.hash, "0123456789abcdef");
    assert_string_equal(got.definition, "{}");
    free(got.definition);
    vse__store_close(s);
}

static void test_busy_gives_ebusy(void **state)
{
    struct fx *f = *state;
    struct vse_store *s;
    struct vse_error err;
    struct vse_resource r, cur;
    struct vse_event e;
    char url[200];
    sqlite3 *other;
    int64_t t0;

    snprintf(url, sizeof(url), "%s?busy_timeout=50", f->url);
    assert_int_equal(vse__store_open(url, &s, &err), 0);
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    fill(&r, &e, "v1", "creating", "create", 1);
    t0 = vse_now_us();
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        VSE_EBUSY);
    assert_true(vse_now_us() - t0 >= 50000);
    assert_non_null(strstr(err.msg, "more than 50 ms"));
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(vse__store_get(s, "v1", &cur, &err), VSE_ENOTFOUND);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    vse__store_close(s);
}

/*
 * Writers queue at the gate in ticket order; a ticket whose holder died
 * without letting the next one in is skipped, so the queue cannot stall
 * the store.
 */
static void test_gate_skips_dead_holder(void **state)
{
    struct fx *f = *state;
    struct vse_db *db;
    struct vse_resource r;
    struct vse_error err;
    struct vse_sqlite_gate *g;
    int64_t t0, waited;

    assert_int_equal(vse_open(f->url, &db, &err), 0);
    g = vse_sqlite_gate_open(f->path);
    assert_non_null(g);
    /* A writer takes its turn and dies holding it. */
    (void)vse_sqlite_gate_enter(g);
    t0 = vse__now_mono_us();
    assert_int_equal(vse_create(db, "volume", "g1", NULL, &r, &err), 0);
    waited = vse__now_mono_us() - t0;
    assert_true(waited >= VSE_SQLITE_GATE_SKIP_US / 2);
    assert_true(waited < 20 * VSE_SQLITE_GATE_SKIP_US);
    /* And the queue flows again: the next writer does not wait. */
    t0 = vse__now_mono_us();
    assert_int_equal(
        vse_step(db, "g1", r.op_id, "scheduling", NULL, &r, &err), 0);
    assert_true(vse__now_mono_us() - t0 < VSE_SQLITE_GATE_SKIP_US / 2);
    vse_sqlite_gate_close(g);
    vse_close(db);
}

/* The hint for an unknown scheme lists the registry's real schemes, not
 * the aliases. */
static void test_unknown_scheme_hint(void **state)
{
    struct vse_error err;
    vse_db *db = NULL;

    (void)state;
    assert_int_equal(vse_open("bogus:x", &db, &err), VSE_EINVAL);
    assert_null(db);
    assert_string_equal(err.msg, "store URL 'bogus:x' has an unknown scheme "
                                 "'bogus'");
    assert_string_equal(err.hint,
                        "known schemes: sqlite, postgresql, zookeeper");
}

/* A backend answers to its aliases as to its scheme (one vtable), and
 * store.c settles the schema of whatever backend it opened. */
static void test_alias_opens_the_same_backend(void **state)
{
    static const char *const aliases[] = {"lite", "sqlite3", NULL};
    static struct vse_store_methods m;
    struct fx *f = *state;
    struct vse_error err;
    struct vse_resource r;
    char url[200];
    vse_db *db;

    m = vse__store_sqlite;
    m.scheme = "sqlite-test";
    m.aliases = aliases;
    assert_int_equal(vse__store_register(&m), 0);
    snprintf(url, sizeof(url), "sqlite3:%s", f->path);
    assert_int_equal(vse_open(url, &db, &err), 0);
    assert_int_equal(vse_create(db, "volume", "a1", NULL, &r, &err), 0);
    vse_close(db);
    snprintf(url, sizeof(url), "lite:%s", f->path);
    assert_int_equal(vse_open(url, &db, &err), 0);
    assert_int_equal(vse_get(db, "a1", &r, &err), 0);
    vse_close(db);
    snprintf(url, sizeof(url), "sqlite:%s", f->path);
    assert_int_equal(vse_open(url, &db, &err), 0);
    assert_int_equal(vse_get(db, "a1", &r, &err), 0);
    vse_close(db);
}

/* A backend whose migration steps are malformed is refused before it is
 * used: the core checks the table once. */
static void test_backend_with_bad_steps_refused(void **state)
{
    static const struct vse_store_step bad[] = {{.sql = NULL, .run = NULL}};
    static struct vse_store_methods m;
    struct fx *f = *state;
    struct vse_error err;
    char url[200];
    vse_db *db = NULL;

    m = vse__store_sqlite;
    m.scheme = "badsteps";
    m.aliases = NULL;
    m.steps = bad;
    m.nsteps = 1;
    assert_int_equal(vse__store_register(&m), 0);
    snprintf(url, sizeof(url), "badsteps:%s", f->path);
    assert_int_equal(vse_open(url, &db, &err), VSE_EINTERNAL);
    assert_null(db);
    assert_string_equal(err.msg, "store backend 'badsteps' is incomplete");
    assert_int_equal(access(f->path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_new_file_gets_schema),
        T(test_zero_byte_file_gets_schema),
        T(test_not_a_database_refused),
        T(test_foreign_database_refused),
        T(test_newer_schema_refused),
        T(test_schema_1_migrated),
        T(test_gate_skips_dead_holder),
        T(test_other_format_refused),
        T(test_missing_directory),
        T(test_url_parameters),
        T(test_apply_cas),
        T(test_expired_and_purge),
        T(test_pins),
        T(test_busy_gives_ebusy),
        T(test_unknown_scheme_hint),
        T(test_alias_opens_the_same_backend),
        T(test_backend_with_bad_steps_refused),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
