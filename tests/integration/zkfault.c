/*
 * zkfault.c - one transition on a ZooKeeper store across a fault that
 * t-zk-faults.sh injects, then a check that its answer is exactly what
 * happened.  The store is opened and a volume created while the server
 * is up; DIR/ready is written, and the call is made once DIR/go exists
 * (with --pause, the process stops itself with SIGSTOP first, so that the
 * server expires its session, and goes on when continued).  The answer is
 * written to DIR/result; once DIR/check exists (the server is back), the
 * row and its history are read and compared with --expect:
 *
 *   done    the call answered 0; the row is at the next version, whose
 *           history node holds this call's request id, exactly once
 *   failed  the call answered VSE_ESTORE; the row and history unchanged
 *
 * The call is vse_update() with a request id.  With --direct it is the
 * same change made at the store level (store.h) on a handle whose create
 * has cached the log bucket, so that the write is the first thing the
 * call sends: a server frozen before "go" then loses the write's answer,
 * where through libvse the reads before it would wait for the server
 * first.  --direct --renew: a renew that writes no history row (settled
 * by the row alone); "done" is then the row at the next version with the
 * renew's lease and no history row at that version.
 *
 * usage: zkfault --store URL --dir DIR --expect done|failed [--pause]
 *        [--direct [--renew]]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../rest-row.h"
#include "store.h"
#include "vse.h"

static const char *dir;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void touch(const char *name, const char *text)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* Poll for DIR/name, 120 s at most. */
static void await(const char *name)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (int i = 0; i < 12000; i++) {
        if (stat(path, &st) == 0)
            return;
        sleep_ms(10);
    }
    fprintf(stderr, "zkfault: %s never appeared\n", path);
    exit(2);
}

struct count {
    int64_t version;
    int rows;
    char request_id[VSE_ID_MAX + 1];
};

static int count_rows(void *ctx, const struct vse_event *e)
{
    struct count *c = ctx;

    if (e->version == c->version) {
        c->rows++;
        snprintf(c->request_id, sizeof(c->request_id), "%s", e->request_id);
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --direct: v1 created through store handle s, at version 1. */
static int direct_setup(const char *url, struct vse_store **s,
                        struct vse_resource *r, struct vse_error *err)
{
    struct vse_resource cur;
    struct vse_event e;

    if (vse__store_open(url, s, err) != 0)
        return -1;
    rest_row(r, &e, "v1", 1);
    return vse__store_apply(
        *s, &(struct vse_change){.expect_version = 0, .row = r, .ev = &e},
        &cur, NULL, err);
}

/* --direct: the call, from version 1 to 2; *after is the row sent. */
static int direct_call(struct vse_store *s, int renew,
                       struct vse_resource *after, struct vse_error *err)
{
    struct vse_resource cur;
    struct vse_event e;

    rest_row(after, &e, "v1", 2);
    if (renew) {
        after->lease_expires = after->updated + 600000000;
    } else {
        snprintf(after->attrs, sizeof(after->attrs), "{\"fault\":1}");
        snprintf(e.request_id, sizeof(e.request_id), "zkfault-call");
    }
    return vse__store_apply(s,
                            &(struct vse_change){.expect_version = 1,
                                                 .row = after,
                                                 .ev = &e,
                                                 .quiet = renew},
                            &cur, NULL, err);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"expect", required_argument, NULL, 'e'},
        {"pause", no_argument, NULL, 'p'},
        {"direct", no_argument, NULL, 'D'},
        {"renew", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *expect = NULL;
    struct vse_error err;
    struct vse_resource r, after;
    struct vse_opts o = {0};
    struct count cnt = {0};
    struct vse_store *s = NULL;
    vse_db *db;
    char line[512];
    int64_t v0, t0, ms;
    int pause = 0, direct = 0, renew = 0, rc, ch, ok;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 's')
            url = optarg;
        else if (ch == 'd')
            dir = optarg;
        else if (ch == 'e')
            expect = optarg;
        else if (ch == 'p')
            pause = 1;
        else if (ch == 'D')
            direct = 1;
        else if (ch == 'r')
            renew = 1;
        else
            return 2;
    }
    if (url == NULL || dir == NULL || expect == NULL ||
        (strcmp(expect, "done") != 0 && strcmp(expect, "failed") != 0) ||
        (renew && !direct)) {
        fprintf(stderr, "usage: zkfault --store URL --dir DIR "
                        "--expect done|failed [--pause] "
                        "[--direct [--renew]]\n");
        return 2;
    }
    if (vse_open(url, &db, &err) != 0 ||
        (direct ? direct_setup(url, &s, &r, &err)
                : vse_create(db, "volume", "v1", NULL, &r, &err)) != 0) {
        fprintf(stderr, "zkfault: setup: %s (%s)\n", err.msg, err.detail);
        return 2;
    }
    v0 = r.version;
    touch("ready", "");
    if (pause)
        raise(SIGSTOP);
    else
        await("go");
    o.attrs = "{\"fault\":1}";
    o.request_id = "zkfault-call";
    vse_error_clear(&err); /* the answer's own, not the setup's */
    t0 = mono_ms();
    if (direct)
        rc = direct_call(s, renew, &after, &err);
    else
        rc = vse_update(db, "v1", &o, &after, &err);
    ms = mono_ms() - t0;
    snprintf(line, sizeof(line), "%s %lld ms: %s (%s; %s)\n",
             vse_err_name(rc), (long long)ms, err.msg, err.detail, err.hint);
    touch("result", line);
    fputs(line, stdout);
    await("check");
    if (vse_get(db, "v1", &r, &err) != 0) {
        fprintf(stderr, "zkfault: read back: %s (%s)\n", err.msg, err.detail);
        return 1;
    }
    cnt.version = v0 + 1;
    if (vse_history(db, "v1", 0, 0, count_rows, &cnt, &err) != 0) {
        fprintf(stderr, "zkfault: history: %s (%s)\n", err.msg, err.detail);
        return 1;
    }
    printf("row at version %lld (was %lld), %d history row(s) at %lld\n",
           (long long)r.version, (long long)v0, cnt.rows,
           (long long)cnt.version);
    if (renew && strcmp(expect, "done") == 0)
        ok = rc == 0 && r.version == v0 + 1 && cnt.rows == 0 &&
             r.lease_expires == after.lease_expires;
    else if (strcmp(expect, "done") == 0)
        ok = rc == 0 && r.version == v0 + 1 && after.version == v0 + 1 &&
             cnt.rows == 1 && strcmp(cnt.request_id, "zkfault-call") == 0 &&
             strstr(r.attrs, "\"fault\"") != NULL;
    else
        ok = rc == VSE_ESTORE && r.version == v0 && cnt.rows == 0;
    vse_close(db);
    if (s != NULL)
        vse__store_close(s);
    if (!ok) {
        fprintf(stderr, "zkfault: expected %s\n", expect);
        return 1;
    }
    return 0;
}
