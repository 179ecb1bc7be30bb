/*
 * pgtest.h - what the PostgreSQL test programs (pglate.c, pgbatch.c)
 * share: a CHECK that names the program and line and exits 1, a
 * monotonic clock, a sleep, and SQL on their control connection that
 * fails the test on any error.  Define PGTEST_PROG ("pglate") first.
 */
#ifndef VSE_TEST_PGTEST_H
#define VSE_TEST_PGTEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, PGTEST_PROG ": line %d: ", __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static inline int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The result (the caller clears it) of q, which must succeed. */
static inline PGresult *sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);

    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK ||
              PQresultStatus(r) == PGRES_TUPLES_OK,
          "%s: %s", q, PQerrorMessage(c));
    return r;
}

/* The one value q returns. */
static inline int64_t sql_i64(PGconn *c, const char *q)
{
    PGresult *r = sql(c, q);
    int64_t v;

    CHECK(PQntuples(r) == 1 && !PQgetisnull(r, 0, 0), "%s: no value", q);
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

#endif /* VSE_TEST_PGTEST_H */
