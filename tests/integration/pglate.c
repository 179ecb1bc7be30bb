/*
 * pglate.c - a transition that took an earlier position in the log but
 * commits last is never skipped by a watcher (issue 11).  A trigger on
 * the history table (test instrumentation on the real server) holds the
 * transition of resource "late" after its history row was written, until
 * this program lets it go; meanwhile other transitions commit, with
 * higher seqs, without waiting for it.
 *
 * The guarantee checked: a reader returns the log as a prefix in seq
 * order that only grows.  While "late" is in flight nothing after it is
 * readable (vse_events, vse_last_seq, vse_wait all say so); once it
 * commits a watcher receives it first and then the later ones, each seq
 * greater than the one before; if it rolls back instead, the watcher is
 * woken (no notification comes from a rollback) and receives the later
 * ones.
 *
 * usage: pglate URL
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

#include "vse.h"

#define PGTEST_PROG "pglate"
#include "pgtest.h"

#define HOLD_LOCK "4242"

static const char *url;
static char url_buf[1024];
static const char *url_raw; /* for libpq itself */
/* A reason: a renew without one writes no history row. */
static struct vse_opts opts = {.owner = "pglate",
                               .ttl_ms = 600000,
                               .reason = "pglate"};

/* ------------------------------------------------------------------ */
/* The late transition, in its own thread and its own store handle.    */

struct late {
    const char *id;
    char op_id[64];
    int rc;
    struct vse_error err;
};

static void *late_main(void *arg)
{
    struct late *l = arg;
    vse_db *db;

    CHECK(vse_open(url, &db, &l->err) == 0, "open: %s", l->err.msg);
    l->rc = vse_renew(db, l->id, l->op_id, &opts, NULL, &l->err);
    vse_close(db);
    return NULL;
}

/* Until the late transition waits in the trigger, its row written. */
static void wait_held(PGconn *ctl)
{
    int64_t deadline = now_ms() + 30000;

    while (sql_i64(ctl, "SELECT count(*) FROM pg_locks WHERE "
                        "locktype = 'advisory' AND NOT granted") != 1) {
        CHECK(now_ms() < deadline, "the late transition never got held");
        sleep_ms(5);
    }
}

/* The seq the held transition's row has: the first of its xid's
 * (store-pg-sql.h, schema 6). */
static int64_t held_seq(PGconn *ctl)
{
    return sql_i64(ctl,
                   "SELECT (a.backend_xid::TEXT::BIGINT + m.value::BIGINT) "
                   "* 256 FROM pg_stat_activity a, vse_meta m WHERE "
                   "m.key = 'seq_base' AND a.wait_event_type = 'Lock' "
                   "AND a.wait_event = 'advisory'");
}

/* ------------------------------------------------------------------ */
/* The watcher: vse_wait + vse_events from a seq, as `vsectl watch`.   */

struct watch {
    vse_db *db;
    int64_t after;
    int want;
    int n;
    struct vse_event ev[8];
    int64_t done_ms;
};

static int on_event(void *ctx, const struct vse_event *e)
{
    struct watch *w = ctx;

    CHECK(e->seq > w->after, "event seq %" PRId64 " not after %" PRId64,
          e->seq, w->after);
    CHECK(w->n < 8, "too many events");
    w->ev[w->n++] = *e;
    w->after = e->seq;
    return 0;
}

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    struct vse_error e;
    int64_t deadline = now_ms() + 20000;

    while (w->n < w->want) {
        int rc = vse_wait(w->db, w->after, 1000, &e);

        CHECK(rc >= 0, "wait: %s", e.msg);
        CHECK(now_ms() < deadline, "watcher: %d of %d events", w->n, w->want);
        if (rc == 1)
            CHECK(vse_events(w->db, w->after, 0, on_event, w, &e) == 0,
                  "events: %s", e.msg);
    }
    w->done_ms = now_ms();
    return NULL;
}

static int count_events(vse_db *db, int64_t after)
{
    struct watch w = {.after = after};
    struct vse_error e;

    CHECK(vse_events(db, after, 0, on_event, &w, &e) == 0, "events: %s",
          e.msg);
    return w.n;
}

/*
 * One round: hold `late`, commit `later` renews of "b" meanwhile, check
 * nothing is readable, start a watcher, release (commit or roll back),
 * and check what the watcher received.  Returns the seq it ended at.
 */
static int64_t round_trip(vse_db *w, vse_db *r, PGconn *ctl, struct late *l,
                          const char *b_op_id, int later, int aborts)
{
    struct watch wa = {.db = r};
    struct vse_error e;
    pthread_t lt, wt;
    int64_t start, last, lseq, t0;
    char q[256];
    int rc;

    CHECK(vse_last_seq(r, &start, &e) == 0, "last_seq: %s", e.msg);
    PQclear(sql(ctl, "SELECT pg_advisory_lock(" HOLD_LOCK ")"));
    CHECK(pthread_create(&lt, NULL, late_main, l) == 0, "thread");
    wait_held(ctl);
    lseq = held_seq(ctl);
    CHECK(lseq > start, "held seq %" PRId64 " <= %" PRId64, lseq, start);

    /* Later transitions commit while it is held: no commit waits. */
    for (int i = 0; i < later; i++)
        CHECK(vse_renew(w, "b", b_op_id, &opts, NULL, &e) == 0, "renew b: %s",
              e.msg);
    snprintf(q, sizeof(q),
             "SELECT min(seq) FROM history WHERE "
             "resource = 'b' AND seq > %" PRId64,
             start);
    CHECK(sql_i64(ctl, q) > lseq,
          "the later commits do not have higher seqs than the held one");

    /* Committed, but behind an open transaction: not readable yet. */
    CHECK(count_events(r, start) == 0, "read past an open transaction");
    CHECK(vse_last_seq(r, &last, &e) == 0 && last == start,
          "last_seq moved past an open transaction: %" PRId64, last);
    /* vse_wait may answer "events may exist" once for a notification;
     * once nothing was readable it must wait. */
    rc = vse_wait(r, start, 200, &e);
    CHECK(rc >= 0, "wait: %s", e.msg);
    if (rc == 1) {
        CHECK(count_events(r, start) == 0, "read past an open transaction");
        rc = vse_wait(r, start, 200, &e);
    }
    CHECK(rc == 0, "vse_wait woke for rows behind an open transaction");

    wa.after = start;
    wa.want = later + (aborts ? 0 : 1);
    CHECK(pthread_create(&wt, NULL, watch_main, &wa) == 0, "thread");
    sleep_ms(50); /* let it block in vse_wait; correctness needs no sleep */
    t0 = now_ms();
    PQclear(sql(ctl, "SELECT pg_advisory_unlock(" HOLD_LOCK ")"));
    pthread_join(lt, NULL);
    pthread_join(wt, NULL);

    if (aborts) {
        CHECK(l->rc < 0, "the late transition was meant to roll back");
    } else {
        CHECK(l->rc == 0, "late renew: %s (%s)", l->err.msg, l->err.detail);
        CHECK(strcmp(wa.ev[0].resource, l->id) == 0 && wa.ev[0].seq == lseq,
              "the watcher got '%s' seq %" PRId64
              " first, not '%s' seq %" PRId64,
              wa.ev[0].resource, wa.ev[0].seq, l->id, lseq);
    }
    for (int i = aborts ? 0 : 1; i < wa.n; i++)
        CHECK(strcmp(wa.ev[i].resource, "b") == 0 && wa.ev[i].seq > lseq,
              "event %d: '%s' seq %" PRId64, i, wa.ev[i].resource,
              wa.ev[i].seq);
    for (int i = 1; i < wa.n; i++)
        CHECK(wa.ev[i].seq > wa.ev[i - 1].seq, "out of order");
    CHECK(wa.n == wa.want, "%d events, want %d", wa.n, wa.want);
    CHECK(count_events(r, start) == wa.want, "a second read disagrees");
    printf("pglate: %s: held seq %" PRId64 ", %d later commits; watcher got "
           "%d events in order %" PRId64 " ms after the release\n",
           aborts ? "rolled back" : "committed last", lseq, later, wa.n,
           wa.done_ms - t0);
    return wa.ev[wa.n - 1].seq;
}

int main(int argc, char **argv)
{
    struct late late = {.id = "late"}, gone = {.id = "late-abort"};
    struct vse_resource res;
    struct vse_error e;
    char b_op[64];
    vse_db *w, *r;
    PGconn *ctl;

    if (argc != 2) {
        fprintf(stderr, "usage: pglate URL\n");
        return 2;
    }
    /* The late transition and the ones committing past it stand for
     * different processes' writers: in one process, group commit would
     * queue them behind it (store-pg.c). */
    snprintf(url_buf, sizeof(url_buf), "%s%sgroup_commit=off", argv[1],
             strchr(argv[1], '?') ? "&" : "?");
    url = url_buf;
    url_raw = argv[1];
    alarm(120); /* a serialising store would hang in round_trip() */
    CHECK(vse_open(url, &w, &e) == 0, "open: %s", e.msg);
    CHECK(vse_open(url, &r, &e) == 0, "open: %s", e.msg);
    CHECK(vse_create(w, "volume", "late", &opts, &res, &e) == 0, "%s", e.msg);
    snprintf(late.op_id, sizeof(late.op_id), "%s", res.op_id);
    CHECK(vse_create(w, "volume", "late-abort", &opts, &res, &e) == 0, "%s",
          e.msg);
    snprintf(gone.op_id, sizeof(gone.op_id), "%s", res.op_id);
    CHECK(vse_create(w, "volume", "b", &opts, &res, &e) == 0, "%s", e.msg);
    snprintf(b_op, sizeof(b_op), "%s", res.op_id);

    ctl = PQconnectdb(url_raw);
    CHECK(PQstatus(ctl) == CONNECTION_OK, "%s", PQerrorMessage(ctl));
    PQclear(sql(ctl,
                "CREATE FUNCTION pglate_hold() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.resource LIKE 'late%' AND NEW.kind = 'renew' THEN "
                "PERFORM pg_advisory_xact_lock_shared(" HOLD_LOCK ");"
                "IF NEW.resource = 'late-abort' THEN "
                "RAISE EXCEPTION 'pglate: rolled back on purpose'; END IF;"
                "END IF; RETURN NEW; END $$;"
                "CREATE TRIGGER pglate_hold AFTER INSERT ON history "
                "FOR EACH ROW EXECUTE FUNCTION pglate_hold()"));

    round_trip(w, r, ctl, &late, b_op, 3, 0);
    round_trip(w, r, ctl, &gone, b_op, 2, 1);

    PQfinish(ctl);
    vse_close(r);
    vse_close(w);
    return 0;
}
