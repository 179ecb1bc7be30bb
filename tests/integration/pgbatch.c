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
 * "slow0" and "slow1" on lock 1 fill the process's two batch slots with
 * lone transitions while six more queue; lock 1 is let go, the six go as
 * one batch, and "slow2" inside it waits on lock 2 with the batch's
 * transaction open.  That session is terminated, then lock 2 let go.
 *
 * usage: pgbatch URL
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store.h"
#include "vse.h"

#define NT 8

void vse__group_stats(uint64_t *batches, uint64_t *transitions,
                      uint64_t *retried);
int vse__group_queued(void);

static const char *url;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "pgbatch: line %d: ", __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t sql_i64(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    int64_t v;

    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s",
          q, PQerrorMessage(c));
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);

    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK ||
              PQresultStatus(r) == PGRES_TUPLES_OK,
          "%s: %s", q, PQerrorMessage(c));
    PQclear(r);
}

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

static void fill(struct vse_resource *r, struct vse_event *e, const char *id,
                 int64_t version)
{
    memset(r, 0, sizeof(*r));
    memset(e, 0, sizeof(*e));
    snprintf(r->id, sizeof(r->id), "%s", id);
    strcpy(r->machine, "volume");
    strcpy(r->state, "available");
    r->since = r->updated = r->created = 10 * version;
    r->version = version;
    snprintf(e->resource, sizeof(e->resource), "%s", id);
    strcpy(e->machine, "volume");
    e->version = version;
    e->kind = version == 1 ? VSE_KIND_CREATE : VSE_KIND_STEP;
    strcpy(e->from, "x");
    strcpy(e->to, "available");
    e->at = 10 * version;
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
    fill(&r, &e, m->id, 2);
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

#define WAITING(lock)                                                        \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "         \
    "NOT granted AND objid = " lock

int main(int argc, char **argv)
{
    static const char *ids[NT] = {"slow0", "slow1", "b2", "b3",
                                  "b4",    "slow2", "b6", "b7"};
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
    CHECK(vse__store_open(url, &s, &e) == 0, "open: %s", e.msg);
    for (int i = 0; i < NT; i++) {
        struct vse_resource r, cur;
        struct vse_event ev;

        fill(&r, &ev, ids[i], 1);
        CHECK(vse__store_apply(s,
                               &(struct vse_change){
                                   .expect_version = 0, .row = &r, .ev = &ev},
                               &cur, NULL, &e) == 0,
              "create %s: %s", ids[i], e.msg);
    }
    ctl = PQconnectdb(url);
    CHECK(PQstatus(ctl) == CONNECTION_OK, "%s", PQerrorMessage(ctl));
    sql(ctl, "CREATE FUNCTION pgbatch_hold() RETURNS trigger "
             "LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.resource IN ('slow0', 'slow1') THEN "
             "PERFORM pg_advisory_xact_lock_shared(1); "
             "ELSIF NEW.resource = 'slow2' THEN "
             "PERFORM pg_advisory_xact_lock_shared(2); END IF; "
             "RETURN NEW; END $$;"
             "CREATE TRIGGER pgbatch_hold AFTER INSERT ON history "
             "FOR EACH ROW EXECUTE FUNCTION pgbatch_hold()");
    sql(ctl, "SELECT pg_advisory_lock(1), pg_advisory_lock(2)");
    vse__group_stats(&b0, &t0, &r0);

    /* Two lone transitions fill the two slots, held on lock 1. */
    memset(m, 0, sizeof(m));
    for (int i = 0; i < NT; i++)
        snprintf(m[i].id, sizeof(m[i].id), "%s", ids[i]);
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&m[i].th, NULL, mover_main, &m[i]) == 0, "th");
        wait_count(ctl, WAITING("1"), i + 1);
    }
    /* Six more queue behind them. */
    for (int i = 2; i < NT; i++)
        CHECK(pthread_create(&m[i].th, NULL, mover_main, &m[i]) == 0, "th");
    {
        int64_t deadline = now_ms() + 20000;

        while (vse__group_queued() < NT - 2) {
            CHECK(now_ms() < deadline, "only %d queued", vse__group_queued());
            sleep_ms(2);
        }
    }
    /* The six go as one batch; "slow2" holds it open on lock 2. */
    sql(ctl, "SELECT pg_advisory_unlock(1)");
    wait_count(ctl, WAITING("2"), 1);
    CHECK(sql_i64(ctl, "SELECT count(*) FROM pg_terminate_backend(("
                       "SELECT pid FROM pg_locks WHERE locktype = "
                       "'advisory' AND NOT granted AND objid = 2), 5000) t "
                       "WHERE t") == 1,
          "could not end the batch's session");
    /* Sent again alone, "slow2" waits on lock 2 once more. */
    wait_count(ctl, WAITING("2"), 1);
    sql(ctl, "SELECT pg_advisory_unlock(2)");
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
    CHECK(r1 - r0 == NT - 2, "%" PRIu64 " sent again alone, not %d", r1 - r0,
          NT - 2);
    printf("pgbatch: a batch of %d lost with its connection mid-"
           "transaction: each settled, sent again alone and answered "
           "once\n",
           NT - 2);
    PQfinish(ctl);
    vse__store_close(s);
    return 0;
}
