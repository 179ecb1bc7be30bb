/*
 * pgbatch.c - a group commit whose connection is lost mid-batch
 * (issue 15): the leader's server session is ended while the batch's
 * transaction is open, so nothing of it commits; every transition of the
 * batch is then settled by its history row, found not written, and sent
 * again alone.  Every caller must be answered exactly once, with a
 * success, and every row must agree with its history.
 *
 * A trigger on the history table (test instrumentation on the real
 * server) holds chosen transitions on advisory locks the test keeps:
 * "fill0", "fill1"... on lock 1 fill the process's batch slots with lone
 * transitions while six more queue; lock 1 is let go, the six go as one
 * batch, and "slow" inside it waits on lock 2 with the batch's
 * transaction open.  That session is terminated, then lock 2 let go.
 * Then a renew that writes no history row loses its connection
 * (lost_renew()), and the store is made unreachable (unreachable()).
 *
 * usage: pgbatch URL
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store-pg-sql.h"
#include "store.h"
#include "vse.h"

#define PGTEST_PROG "pgbatch"
#include "../rest-row.h"
#include "pgtest.h"

/* Lone transitions that fill the batch slots, then six that queue. */
#define SLOTS VSE_PG_BATCHES_IN_FLIGHT
#define NT (SLOTS + 6)

void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried);
int vse__group_queued(void);

static const char *url;

/* Until `cond` (a count query) reaches `want`, within 20 s. */
static void wait_count(PGconn *c, const char *cond, int64_t want)
{
    int64_t deadline = now_ms() + 20000;

    while (sql_i64(c, cond) < want) {
        CHECK(now_ms() < deadline, "timed out waiting for %s >= %" PRId64,
              cond, want);
        sleep_ms(5);
    }
}

struct mover {
    char id[16];
    int rc;
    int64_t seq;
    struct vse_error err;
    pthread_t th;
};

static void *mover_main(void *arg)
{
    struct mover *m = arg;
    struct vse_store *s;
    struct vse_resource r, cur;
    struct vse_event e;

    CHECK(vse__store_open(url, &s, &m->err) == 0, "open: %s", m->err.msg);
    rest_row(&r, &e, m->id, 2);
    m->rc = vse__store_apply(
        s, &(struct vse_change){.expect_version = 1, .row = &r, .ev = &e},
        &cur, &m->seq, &m->err);
    vse__store_close(s);
    return NULL;
}

static int count_rows(void *ctx, const struct vse_event *e)
{
    (void)e;
    ++*(int *)ctx;
    return 0;
}

/*
 * The store unreachable past the reconnect budget (1 s here) while eight
 * threads send a transition each: each is refused, nothing written, and
 * all within a couple of budgets.  A batch that found its connection down
 * once sent its members again one by one, each waiting out a budget of
 * its own: 1 + 6 budgets for the last.
 */
struct downer {
    struct vse_store *s;
    char id[16];
    pthread_barrier_t *go;
    int rc;
    int64_t done_ms;
    struct vse_error err;
    pthread_t th;
};

static void *downer_main(void *arg)
{
    struct downer *d = arg;
    struct vse_resource r, cur;
    struct vse_event e;

    /* A read first, so that every handle knows its connection is gone
     * (reads reconnect within the budget, and fail). */
    CHECK(vse__store_get(d->s, d->id, &cur, &d->err) < 0,
          "%s: read with the store away", d->id);
    pthread_barrier_wait(d->go);
    rest_row(&r, &e, d->id, 3);
    d->rc = vse__store_apply(
        d->s, &(struct vse_change){.expect_version = 2, .row = &r, .ev = &e},
        &cur, NULL, &d->err);
    d->done_ms = now_ms();
    return NULL;
}

static void unreachable(PGconn *ctl, const char *const *ids)
{
    struct downer d[NT];
    pthread_barrier_t go;
    char pgb[1024];
    const char *at = strchr(url, '@');
    struct vse_error e;
    int64_t start, last = 0;

    CHECK(at != NULL, "no user in %s", url);
    snprintf(pgb, sizeof(pgb), "postgresql://pgbatch:pgbatch%s", at);
    PQclear(sql(ctl, "CREATE ROLE pgbatch SUPERUSER LOGIN "
                     "PASSWORD 'pgbatch'"));
    setenv("VSE_PG_RECONNECT_MS", "1000", 1);
    memset(d, 0, sizeof(d));
    for (int i = 0; i < NT; i++) {
        CHECK(vse__store_open(pgb, &d[i].s, &e) == 0, "open: %s", e.msg);
        snprintf(d[i].id, sizeof(d[i].id), "%s", ids[i]);
        d[i].go = &go;
    }
    PQclear(sql(ctl, "ALTER ROLE pgbatch NOLOGIN"));
    PQclear(sql(ctl, "SELECT pg_terminate_backend(pid, 5000) FROM "
                     "pg_stat_activity WHERE usename = 'pgbatch'"));
    pthread_barrier_init(&go, NULL, NT + 1);
    for (int i = 0; i < NT; i++)
        CHECK(pthread_create(&d[i].th, NULL, downer_main, &d[i]) == 0, "th");
    pthread_barrier_wait(&go);
    start = now_ms();
    for (int i = 0; i < NT; i++) {
        pthread_join(d[i].th, NULL);
        CHECK(d[i].rc == VSE_ESTORE &&
                  strstr(d[i].err.detail, "nothing was sent") != NULL,
              "%s: rc %d: %s (%s)", d[i].id, d[i].rc, d[i].err.msg,
              d[i].err.detail);
        if (d[i].done_ms > last)
            last = d[i].done_ms;
        vse__store_close(d[i].s);
    }
    pthread_barrier_destroy(&go);
    PQclear(sql(ctl, "ALTER ROLE pgbatch LOGIN"));
    CHECK(last - start < 4500,
          "%d transitions refused in %" PRId64 " ms with a 1 s budget", NT,
          last - start);
    printf("pgbatch: store unreachable: %d transitions refused, nothing "
           "sent, the last after %" PRId64 " ms (reconnect budget 1 s)\n",
           NT, last - start);
}

#define WAITING(lock)                                                        \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "         \
    "NOT granted AND objid = " lock

/*
 * A renew that writes no history row, whose connection is lost while its
 * UPDATE waits (a trigger on resources holds it on lock 3): settled by
 * the row (still at the version it was sent against), sent again, and
 * answered once with a success; still no history row, and the checker
 * accepts the gap.
 */
struct renewer {
    const char *op_id;
    int rc;
    struct vse_resource out;
    struct vse_error err;
};

static void *renewer_main(void *arg)
{
    struct renewer *w = arg;
    struct vse_opts o = {.ttl_ms = 600000};
    vse_db *db;

    CHECK(vse_open(url, &db, &w->err) == 0, "open: %s", w->err.msg);
    w->rc = vse_renew(db, "quiet", w->op_id, &o, &w->out, &w->err);
    vse_close(db);
    return NULL;
}

static void lost_renew(PGconn *ctl)
{
    struct vse_opts o = {.owner = "pgbatch", .ttl_ms = 60000};
    struct vse_resource r, now;
    struct renewer w;
    struct vse_error e;
    pthread_t th;
    int64_t rows, bad = -1;
    vse_db *db;

    CHECK(vse_open(url, &db, &e) == 0, "open: %s", e.msg);
    CHECK(vse_create(db, "volume", "quiet", &o, &r, &e) == 0, "create: %s",
          e.msg);
    PQclear(sql(ctl, "CREATE FUNCTION pgbatch_renew() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN "
                     "PERFORM pg_advisory_xact_lock_shared(3); "
                     "RETURN NEW; END $$;"
                     "CREATE TRIGGER pgbatch_renew BEFORE UPDATE ON "
                     "resources FOR EACH ROW WHEN (NEW.id = 'quiet') "
                     "EXECUTE FUNCTION pgbatch_renew()"));
    PQclear(sql(ctl, "SELECT pg_advisory_lock(3)"));
    memset(&w, 0, sizeof(w));
    w.op_id = r.op_id;
    CHECK(pthread_create(&th, NULL, renewer_main, &w) == 0, "th");
    wait_count(ctl, WAITING("3"), 1);
    CHECK(sql_i64(ctl, "SELECT count(*) FROM pg_terminate_backend(("
                       "SELECT pid FROM pg_locks WHERE locktype = "
                       "'advisory' AND NOT granted AND objid = 3), 5000) t "
                       "WHERE t") == 1,
          "could not end the renew's session");
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(3)"));
    pthread_join(th, NULL);
    CHECK(w.rc == 0, "renew: rc %d: %s (%s)", w.rc, w.err.msg, w.err.detail);
    CHECK(vse_get(db, "quiet", &now, &e) == 0 &&
              now.version == r.version + 1 &&
              now.lease_expires == w.out.lease_expires &&
              now.lease_expires > r.lease_expires,
          "quiet: version %" PRId64 ", lease %" PRId64 " (answer %" PRId64
          ")",
          now.version, now.lease_expires, w.out.lease_expires);
    rows = sql_i64(ctl, "SELECT count(*) FROM history "
                        "WHERE resource = 'quiet'");
    CHECK(rows == 1, "quiet: %" PRId64 " history rows, not 1", rows);
    CHECK(vse_check(db, "quiet", NULL, NULL, &bad, &e) == 0 && bad == 0,
          "check: %" PRId64 " violations", bad);
    PQclear(sql(ctl, "DROP TRIGGER pgbatch_renew ON resources"));
    vse_close(db);
    printf("pgbatch: a renew without a history row, its connection lost "
           "mid-statement: settled by the row, sent again, answered once\n");
}

/*
 * A transition whose row another transaction holds, and which that one
 * then moves on: the compare-and-swap loses, and the row the statement
 * read in its own snapshot is the one from before the winner
 * (VSE_PG_STEP).  The answer must carry the winner's row, whether the
 * loser went alone or in a batch, and for a create that waited on
 * another's insert of the same id (its snapshot has no row at all).
 */
struct racer {
    char id[16];
    int64_t expect;
    const struct vse_hold *take; /* of a resource at version 1 */
    unsigned guard;
    int rc;
    struct vse_resource cur;
    struct vse_error err;
    pthread_t th;
};

/* Resources ids[0..n-1], each at rest at version 1. */
static void create_rows(struct vse_store *s, const char *const *ids, int n)
{
    struct vse_error e;

    for (int i = 0; i < n; i++) {
        struct vse_resource r, cur;
        struct vse_event ev;

        rest_row(&r, &ev, ids[i], 1);
        CHECK(vse__store_apply(s,
                               &(struct vse_change){
                                   .expect_version = 0, .row = &r, .ev = &ev},
                               &cur, NULL, &e) == 0,
              "create %s: %s", ids[i], e.msg);
    }
}

static void *racer_main(void *arg)
{
    struct racer *w = arg;
    struct vse_store *s;
    struct vse_resource r;
    struct vse_event e;

    CHECK(vse__store_open(url, &s, &w->err) == 0, "open: %s", w->err.msg);
    rest_row(&r, &e, w->id, w->expect + 1);
    w->rc = vse__store_apply(s,
                             &(struct vse_change){.expect_version = w->expect,
                                                  .row = &r,
                                                  .ev = &e,
                                                  .take = w->take,
                                                  .held_version = 1,
                                                  .guard = w->guard},
                             &w->cur, NULL, &w->err);
    vse__store_close(s);
    return NULL;
}

static void race_start(struct racer *w, const char *id, int64_t expect)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->expect = expect;
    CHECK(pthread_create(&w->th, NULL, racer_main, w) == 0, "th");
}

static void race_lost(struct racer *w, int64_t version, const char *how)
{
    pthread_join(w->th, NULL);
    CHECK(w->rc == VSE_ECONFLICT && w->cur.version == version &&
              strcmp(w->cur.state, "won") == 0,
          "%s (%s): rc %d, answered version %" PRId64 " in state '%s', "
          "not the winner's %" PRId64 ": %s",
          w->id, how, w->rc, w->cur.version, w->cur.state, version,
          w->err.msg);
}

#define ROW_WAIT                                                             \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND "    \
    "NOT granted"

/* id's transition from expect waits for the transaction `winner` opens
 * on win, which then commits the row at `version`. */
static void lose_to(PGconn *ctl, PGconn *win, const char *winner,
                    const char *id, int64_t expect, int64_t version,
                    const char *how)
{
    struct racer w;

    PQclear(sql(win, winner));
    race_start(&w, id, expect);
    wait_count(ctl, ROW_WAIT, 1);
    PQclear(sql(win, "COMMIT"));
    race_lost(&w, version, how);
}

static void stale_race(PGconn *ctl, struct vse_store *s)
{
    /* race0; the slot fillers hold0...; then race2 and b8, queued. */
    enum { RACE2 = SLOTS + 1, B8 = SLOTS + 2, N = SLOTS + 3 };
    char ids[N][16];
    const char *idp[N];
    struct racer w[N];
    uint64_t b0, t0, r0, b1, t1, r1;
    PGconn *win = PQconnectdb(url);

    CHECK(PQstatus(win) == CONNECTION_OK, "%s", PQerrorMessage(win));
    snprintf(ids[0], sizeof(ids[0]), "race0");
    for (int i = 1; i <= SLOTS; i++)
        snprintf(ids[i], sizeof(ids[i]), "hold%d", i - 1);
    snprintf(ids[RACE2], sizeof(ids[RACE2]), "race2");
    snprintf(ids[B8], sizeof(ids[B8]), "b8");
    for (int i = 0; i < N; i++)
        idp[i] = ids[i];
    create_rows(s, idp, N);

    lose_to(ctl, win,
            "BEGIN; UPDATE resources SET version = 2, state = 'won' "
            "WHERE id = 'race0'",
            "race0", 1, 2, "alone");
    lose_to(ctl, win,
            "BEGIN; INSERT INTO resources(id, machine, state, since, "
            "updated, created, version) VALUES ('race1', 'volume', 'won', "
            "1, 1, 1, 1)",
            "race1", 0, 1, "create");

    /* In a batch: "hold0"... fill the slots (a trigger holds them on
     * lock 4), "race2" and "b8" queue and go together. */
    PQclear(sql(ctl, "CREATE FUNCTION pgbatch_race() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN "
                     "PERFORM pg_advisory_xact_lock_shared(4); "
                     "RETURN NEW; END $$;"
                     "CREATE TRIGGER pgbatch_race AFTER INSERT ON history "
                     "FOR EACH ROW WHEN (NEW.resource LIKE 'hold%') "
                     "EXECUTE FUNCTION pgbatch_race()"));
    PQclear(sql(ctl, "SELECT pg_advisory_lock(4)"));
    vse__group_stats(&b0, &t0, &r0);
    for (int i = 1; i <= SLOTS; i++) {
        race_start(&w[i], ids[i], 1);
        wait_count(ctl, WAITING("4"), i);
    }
    PQclear(sql(win, "BEGIN; UPDATE resources SET version = 2, "
                     "state = 'won' WHERE id = 'race2'"));
    race_start(&w[RACE2], "race2", 1);
    race_start(&w[B8], "b8", 1);
    {
        int64_t deadline = now_ms() + 20000;

        while (vse__group_queued() < 2) {
            CHECK(now_ms() < deadline, "only %d queued", vse__group_queued());
            sleep_ms(2);
        }
    }
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(4)"));
    wait_count(ctl, ROW_WAIT, 1);
    PQclear(sql(win, "COMMIT"));
    race_lost(&w[RACE2], 2, "in a batch");
    for (int i = 1; i < N; i++) {
        if (i == RACE2)
            continue;
        pthread_join(w[i].th, NULL);
        CHECK(w[i].rc == 0, "%s: rc %d: %s", ids[i], w[i].rc, w[i].err.msg);
    }
    vse__group_stats(&b1, &t1, &r1);
    CHECK(b1 - b0 == 1 && t1 - t0 == 2 && r1 == r0,
          "%" PRIu64 " batches of %" PRIu64 " (%" PRIu64 " sent again), "
          "not one of two",
          b1 - b0, t1 - t0, r1 - r0);
    PQclear(sql(ctl, "DROP TRIGGER pgbatch_race ON history"));
    PQfinish(win);
    printf("pgbatch: a transition that waited for the winner of its row "
           "answers the winner's row (alone, as a create, in a batch)\n");
}

/*
 * A guarded begin (a step refused while its resource is held) that finds
 * its row locked by a take of a hold on that resource, still in flight:
 * it must wait for the take and then be refused.  The guarded statement
 * alone, without the row lock before it, would read the holds with a
 * snapshot from before its wait and write (checked).
 */
static void guard_race(PGconn *ctl, struct vse_store *s)
{
    static const char *const ids[] = {"gdisk", "gsnap"};
    struct vse_hold take = {.held = "gdisk",
                            .holder = "gsnap",
                            .machine = "volume",
                            .op = "snap",
                            .mode = VSE_HOLD_SHARED,
                            .since = 1};
    struct racer t = {.id = "gsnap", .expect = 1, .take = &take};
    struct racer g = {.id = "gdisk",
                      .expect = 1,
                      .guard = VSE_HOLD_SHARED | VSE_HOLD_EXCLUSIVE};
    struct vse_resource now;
    struct vse_error e;

    create_rows(s, ids, 2);
    PQclear(sql(ctl, "CREATE FUNCTION pgbatch_take() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN "
                     "PERFORM pg_advisory_xact_lock_shared(5); "
                     "RETURN NEW; END $$;"
                     "CREATE TRIGGER pgbatch_take AFTER INSERT ON holds "
                     "FOR EACH ROW EXECUTE FUNCTION pgbatch_take()"));
    PQclear(sql(ctl, "SELECT pg_advisory_lock(5)"));
    CHECK(pthread_create(&t.th, NULL, racer_main, &t) == 0, "th");
    wait_count(ctl, WAITING("5"), 1);
    CHECK(pthread_create(&g.th, NULL, racer_main, &g) == 0, "th");
    wait_count(ctl, ROW_WAIT, 1);
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(5)"));
    pthread_join(t.th, NULL);
    pthread_join(g.th, NULL);
    CHECK(t.rc == 0, "the take: rc %d: %s", t.rc, t.err.msg);
    CHECK(g.rc == VSE_ECONFLICT && g.cur.version == 1,
          "the guarded begin after the take: rc %d, version %" PRId64 ": %s",
          g.rc, g.cur.version, g.err.msg);
    CHECK(vse__store_get(s, "gdisk", &now, &e) == 0 && now.version == 1,
          "gdisk was written while held: version %" PRId64, now.version);
    PQclear(sql(ctl, "DROP TRIGGER pgbatch_take ON holds"));
    printf("pgbatch: a guarded begin that waited for a take of a hold on "
           "its resource is refused\n");
}

int main(int argc, char **argv)
{
    static const char *queued[NT - SLOTS] = {"b0",   "b1", "b2",
                                             "slow", "b4", "b5"};
    char ids_buf[NT][16];
    const char *ids[NT];
    struct mover m[NT];
    struct vse_store *s;
    struct vse_error e;
    uint64_t b0, t0, r0, b1, t1, r1;
    PGconn *ctl;

    if (argc != 2) {
        fprintf(stderr, "usage: pgbatch URL\n");
        return 2;
    }
    url = argv[1];
    alarm(120);
    for (int i = 0; i < NT; i++) {
        if (i < SLOTS)
            snprintf(ids_buf[i], sizeof(ids_buf[i]), "fill%d", i);
        else
            snprintf(ids_buf[i], sizeof(ids_buf[i]), "%s", queued[i - SLOTS]);
        ids[i] = ids_buf[i];
    }
    CHECK(vse__store_open(url, &s, &e) == 0, "open: %s", e.msg);
    create_rows(s, ids, NT);
    ctl = PQconnectdb(url);
    CHECK(PQstatus(ctl) == CONNECTION_OK, "%s", PQerrorMessage(ctl));
    PQclear(sql(ctl, "CREATE FUNCTION pgbatch_hold() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN "
                     "IF NEW.resource LIKE 'fill%' THEN "
                     "PERFORM pg_advisory_xact_lock_shared(1); "
                     "ELSIF NEW.resource = 'slow' THEN "
                     "PERFORM pg_advisory_xact_lock_shared(2); END IF; "
                     "RETURN NEW; END $$;"
                     "CREATE TRIGGER pgbatch_hold AFTER INSERT ON history "
                     "FOR EACH ROW EXECUTE FUNCTION pgbatch_hold()"));
    PQclear(sql(ctl, "SELECT pg_advisory_lock(1), pg_advisory_lock(2)"));
    vse__group_stats(&b0, &t0, &r0);

    /* Lone transitions fill the slots, held on lock 1. */
    memset(m, 0, sizeof(m));
    for (int i = 0; i < NT; i++)
        snprintf(m[i].id, sizeof(m[i].id), "%s", ids[i]);
    for (int i = 0; i < SLOTS; i++) {
        CHECK(pthread_create(&m[i].th, NULL, mover_main, &m[i]) == 0, "th");
        wait_count(ctl, WAITING("1"), i + 1);
    }
    /* Six more queue behind them. */
    for (int i = SLOTS; i < NT; i++)
        CHECK(pthread_create(&m[i].th, NULL, mover_main, &m[i]) == 0, "th");
    {
        int64_t deadline = now_ms() + 20000;

        while (vse__group_queued() < NT - SLOTS) {
            CHECK(now_ms() < deadline, "only %d queued", vse__group_queued());
            sleep_ms(2);
        }
    }
    /* The six go as one batch; "slow" holds it open on lock 2. */
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(1)"));
    wait_count(ctl, WAITING("2"), 1);
    CHECK(sql_i64(ctl, "SELECT count(*) FROM pg_terminate_backend(("
                       "SELECT pid FROM pg_locks WHERE locktype = "
                       "'advisory' AND NOT granted AND objid = 2), 5000) t "
                       "WHERE t") == 1,
          "could not end the batch's session");
    /* Sent again alone, "slow" waits on lock 2 once more. */
    wait_count(ctl, WAITING("2"), 1);
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(2)"));
    for (int i = 0; i < NT; i++)
        pthread_join(m[i].th, NULL);
    vse__group_stats(&b1, &t1, &r1);

    for (int i = 0; i < NT; i++) {
        struct vse_resource r;
        int n = 0;

        CHECK(m[i].rc == 0 && m[i].seq > 0, "%s: rc %d: %s (%s)", m[i].id,
              m[i].rc, m[i].err.msg, m[i].err.detail);
        CHECK(vse__store_get(s, m[i].id, &r, &e) == 0 && r.version == 2,
              "%s: at version %" PRId64, m[i].id, r.version);
        CHECK(vse__store_history(s, m[i].id, 0, 0, count_rows, &n, &e) == 0 &&
                  n == 2,
              "%s: %d history rows", m[i].id, n);
    }
    CHECK(b1 == b0, "a batch committed: %" PRIu64, b1 - b0);
    CHECK(r1 - r0 == NT - SLOTS, "%" PRIu64 " sent again alone, not %d",
          r1 - r0, NT - SLOTS);
    stale_race(ctl, s);
    guard_race(ctl, s);
    lost_renew(ctl);
    unreachable(ctl, ids);
    for (int i = 0; i < NT; i++) {
        struct vse_resource r;

        CHECK(vse__store_get(s, ids[i], &r, &e) == 0 && r.version == 2,
              "%s: a refused transition was written", ids[i]);
    }
    printf("pgbatch: a batch of %d lost with its connection mid-"
           "transaction: each settled, sent again alone and answered "
           "once\n",
           NT - SLOTS);
    PQfinish(ctl);
    vse__store_close(s);
    return 0;
}
