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
                        "format=vse,schema_version=5");
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

/* ---- group commit ------------------------------------------------- */

void vse__sqlite_group_stats(uint64_t *batches, uint64_t *transitions);

#define GC_THREADS 8
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
        fill(&r, &e, id, "available", "", cur.version + 1);
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
        fill(&r, &e, id, "available", "", 1);
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
    int64_t v[GC_THREADS * GC_ITERS + 2];
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
    char url[200];
    struct gc_worker *w = calloc(GC_THREADS, sizeof(*w));
    pthread_t th[GC_THREADS];
    struct vse_store *s;
    struct vse_error err;
    uint64_t b0, t0, b1, t1;
    int lost = 0, wins = 0;

    assert_non_null(w);
    snprintf(url, sizeof(url), "%s?group_commit=on", f->url);
    gc_make_rows(url);
    vse__sqlite_group_stats(&b0, &t0);
    for (int i = 0; i < GC_THREADS; i++) {
        w[i].url = url;
        w[i].n = i;
        w[i].out_fd = -1;
        assert_int_equal(pthread_create(&th[i], NULL, gc_worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(th[i], NULL);
    vse__sqlite_group_stats(&b1, &t1);
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
    assert_true(b1 > b0); /* batches of two or more committed */
    assert_true(t1 - t0 >= 2 * (b1 - b0));
    free(w);
}

uint64_t vse__sqlite_group_retried(void);

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

        fill(&r, &e, "bad", "available", "", 2);
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
    char url[200];
    struct gc_worker *w = calloc(GC_THREADS, sizeof(*w));
    pthread_t th[GC_THREADS], bt;
    struct gc_culprit b = {.tries = 300};
    struct vse_store *s;
    struct vse_error err;
    struct vse_resource r, cur;
    struct vse_event e;
    uint64_t r0, r1;
    int wins = 0, lost = 0;

    assert_non_null(w);
    snprintf(url, sizeof(url), "%s?group_commit=on", f->url);
    gc_make_rows(url);
    assert_int_equal(vse__store_open(url, &s, &err), 0);
    fill(&r, &e, "bad", "available", "", 1);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 0, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    fill(&r, &e, "bad", "available", "", 2);
    assert_int_equal(
        vse__store_apply(
            s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
            &cur, NULL, &err),
        0);
    vse__store_close(s);
    sql(f->path, "UPDATE resources SET version = 1 WHERE id = 'bad'");

    b.url = url;
    r0 = vse__sqlite_group_retried();
    assert_int_equal(pthread_create(&bt, NULL, gc_culprit_main, &b), 0);
    for (int i = 0; i < GC_THREADS - 1; i++) {
        w[i].url = url;
        w[i].n = i;
        w[i].out_fd = -1;
        assert_int_equal(pthread_create(&th[i], NULL, gc_worker_main, &w[i]),
                         0);
    }
    for (int i = 0; i < GC_THREADS - 1; i++)
        pthread_join(th[i], NULL);
    pthread_join(bt, NULL);
    r1 = vse__sqlite_group_retried();

    assert_int_equal(b.store_errors, b.tries);
    assert_int_equal(b.other, 0);
    for (int i = 0; i < GC_THREADS - 1; i++) {
        assert_int_equal(w[i].bad, 0); /* never the culprit's error */
        lost += w[i].lost;
        for (int k = 0; k < GC_RES; k++)
            wins += w[i].nwon[k];
    }
    assert_int_equal(wins + lost, (GC_THREADS - 1) * GC_ITERS);
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
    char url[200], buf[4096], line[64];
    size_t have = 0;
    int fds[2], reported = 0, status = 0;
    int64_t(*got)[2] = calloc(GC_THREADS * GC_ITERS, sizeof(*got));
    struct vse_store *s;
    struct vse_error err;
    pid_t pid;

    assert_non_null(got);
    snprintf(url, sizeof(url), "%s?group_commit=on", f->url);
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
        T(test_group_commit_threads),
        T(test_group_commit_crash),
        T(test_group_commit_culprit),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
