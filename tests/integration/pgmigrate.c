/*
 * pgmigrate.c - a PostgreSQL store made by vse 0.1 (schema version 1,
 * written here with that version's own SQL) is migrated when vse opens
 * it: its rows are kept and read as they were meant, and work goes on.
 *
 * usage: pgmigrate URL
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store-pg-sql.h"
#include "vse.h"

#define OPID "0b6f7c8e-1111-4222-8333-444455556666"
/* Far above this cluster's transaction ids: schema 3 derives seqs from
 * them, and must still number new events after the old ones. */
#define OLD_SEQ "1000000"
/* Seq and xid of a row restored from a busier cluster. */
#define AHEAD "900000000"

struct seen {
    int n;
    int64_t seq[4];
};

static int on_event(void *ctx, const struct vse_event *e)
{
    struct seen *s = ctx;

    if (s->n < 4)
        s->seq[s->n] = e->seq;
    s->n++;
    return 0;
}

static int exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
             PQresultStatus(r) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "pgmigrate: %s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : 1;
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "pgmigrate: " __VA_ARGS__);                      \
            fputc('\n', stderr);                                             \
            return 1;                                                        \
        }                                                                    \
    } while (0)

int main(int argc, char **argv)
{
    struct vse_resource r;
    struct vse_error e;
    int64_t violations = -1;
    vse_db *db;
    PGconn *c;

    if (argc != 2) {
        fprintf(stderr, "usage: pgmigrate URL\n");
        return 2;
    }
    c = PQconnectdb(argv[1]);
    CHECK(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    /* What vse 0.1 left behind: schema 1, one volume at rest, its row
     * and its history. */
    if (exec(c, "BEGIN") || exec(c, VSE_PG_SCHEMA_V1) ||
        exec(c, "INSERT INTO vse_meta VALUES ('format', 'vse'), "
                "('created', '1'), ('schema_version', '1')") ||
        exec(c, "INSERT INTO resources VALUES ('old', 'volume', "
                "'creating_db', 'create', '" OPID "', 'new', 'api', "
                "99999999999999999, 60000000, 5, 5, 5, 1)") ||
        exec(c, "INSERT INTO history VALUES (" OLD_SEQ ", 'old', 1, "
                "'volume', "
                "'create', 'create', '" OPID "', 'new', 'creating_db', "
                "'api', 5, NULL, NULL)") ||
        exec(c, "UPDATE vse_seq SET seq = " OLD_SEQ) || exec(c, "COMMIT"))
        return 1;
    PQfinish(c);

    CHECK(vse_open(argv[1], &db, &e) == 0, "open: %s (%s)", e.msg, e.detail);
    CHECK(vse_get(db, "old", &r, &e) == 0, "get: %s", e.msg);
    CHECK(strcmp(r.state, "creating_db") == 0 && r.version == 1 &&
              strcmp(r.op_id, OPID) == 0 && strcmp(r.attrs, "{}") == 0,
          "the old row was not kept: %s v%lld %s", r.state,
          (long long)r.version, r.attrs);
    /* The op in flight goes on under the token vse 0.1 gave it. */
    CHECK(vse_step(db, "old", OPID, "scheduling",
                   &(struct vse_opts){.attrs = "{\"size\":2}"}, &r, &e) == 0,
          "step after migration: %s", e.msg);
    CHECK(strcmp(r.attrs, "{\"size\":2}") == 0, "attrs: %s", r.attrs);
    /* A watcher at the old log's end gets the new event, numbered after
     * it; the whole log reads in order. */
    {
        struct seen all = {0}, after = {0};
        int64_t last = 0;

        CHECK(vse_events(db, 0, 0, on_event, &all, &e) == 0, "events: %s",
              e.msg);
        CHECK(all.n == 2 && all.seq[0] == atoll(OLD_SEQ) &&
                  all.seq[1] > all.seq[0],
              "log after migration: %d events, seqs %lld %lld", all.n,
              (long long)all.seq[0], (long long)all.seq[1]);
        CHECK(vse_events(db, atoll(OLD_SEQ), 0, on_event, &after, &e) == 0 &&
                  after.n == 1 && after.seq[0] == all.seq[1],
              "a watcher at the old end got %d events", after.n);
        CHECK(vse_last_seq(db, &last, &e) == 0 && last == all.seq[1],
              "last_seq %lld", (long long)last);
    }
    vse_close(db);

    /* The same store as if restored into another cluster: the newest
     * row's xid and seq lie ahead of this cluster's ids.  Opening it
     * rebases: the row is readable and the next event comes after it. */
    c = PQconnectdb(argv[1]);
    CHECK(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    if (exec(c, "UPDATE history SET seq = " AHEAD ", xid = '" AHEAD "' "
                "WHERE seq = (SELECT max(seq) FROM history)"))
        return 1;
    PQfinish(c);
    CHECK(vse_open(argv[1], &db, &e) == 0, "open: %s (%s)", e.msg, e.detail);
    {
        struct seen all = {0}, after = {0};

        /* A reason: a renew without one writes no history row. */
        struct vse_opts why = {.reason = "pgmigrate"};

        CHECK(vse_renew(db, "old", OPID, &why, NULL, &e) == 0, "renew: %s",
              e.msg);
        CHECK(vse_events(db, 0, 0, on_event, &all, &e) == 0 && all.n == 3 &&
                  all.seq[1] == atoll(AHEAD) && all.seq[2] > all.seq[1],
              "log after a restore: %d events", all.n);
        CHECK(vse_events(db, atoll(AHEAD), 0, on_event, &after, &e) == 0 &&
                  after.n == 1,
              "a watcher at the restored end got %d events", after.n);
    }
    CHECK(vse_check(db, NULL, NULL, NULL, &violations, &e) == 0 &&
              violations == 0,
          "check: %lld violations", (long long)violations);
    vse_close(db);
    printf("pgmigrate: schema 1 store migrated; its rows kept; a restored "
           "store rebased\n");
    return 0;
}
