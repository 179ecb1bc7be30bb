/*
 * cmd-bench.c - `vsectl bench`: N forked clients, each with its own store
 * handle (or, with --url, its own connection to vsed), run attach/detach
 * cycles on R volumes.  The cycle is the one bench/raw-sqlite.c runs with
 * hand-written SQL, so that the two numbers of `make bench` compare the
 * enforcer with the bare engine; through vsed it adds what HTTP costs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vsectl.h"

enum {
    OPT_CLIENTS = OPT_FIRST_LOCAL,
    OPT_RESOURCES,
    OPT_SECONDS,
    OPT_JSON,
    OPT_THREADS
};

#define BENCH_MACHINE "volume"
#define BENCH_CLIENTS_MAX 256
#define BENCH_RESOURCES_MAX 1000000
#define BENCH_SECONDS_MAX 3600

/* What a client sends back through its pipe, before its samples. */
struct bench_report {
    int64_t transitions;
    int64_t refused;
    int64_t nsamples;
    int64_t elapsed_us;
    int32_t failed;
    int32_t pad_;
};

struct samples {
    uint32_t *v;
    size_t n, cap;
};

static int sample_add(struct samples *s, int64_t us)
{
    return vse__array_push(s, us > UINT32_MAX ? UINT32_MAX : (uint32_t)us) < 0
               ? -1
               : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Bring bench-0 .. bench-R-1 to rest, creating the missing ones along the
 * volume's create path.  Ones at rest (available or in_use) are left as
 * they are; one left busy by an interrupted run is reset to available.
 */
static int bench_setup(struct ctx *ctx, int64_t nres)
{
    char status[VSE_STATUS_MAX + 1];
    struct vse_resource r, w;
    struct vse_error err;
    struct tr t;
    char id[32];
    int rc;

    for (int64_t i = 0; i < nres; i++) {
        snprintf(id, sizeof(id), "bench-%" PRId64, i);
        vse_error_clear(&err);
        rc = ctx->ops->get(ctx, id, &r, status, &err);
        if (rc == 0 && r.op[0] == '\0')
            continue;
        memset(&t, 0, sizeof(t));
        t.id = id;
        if (rc == 0) {
            t.kind = VSE_KIND_RESET;
            t.to = "available";
            t.o.reason = "bench: left busy by an earlier run";
            t.o.owner = "vsectl-bench";
            rc = ctx->ops->transition(ctx, &t, &w, status, &err);
        } else if (rc == VSE_ENOTFOUND) {
            t.kind = VSE_KIND_CREATE;
            t.machine = BENCH_MACHINE;
            rc = ctx->ops->transition(ctx, &t, &r, status, &err);
            memset(&t, 0, sizeof(t));
            t.id = id;
            t.op_id = r.op_id;
            t.kind = VSE_KIND_STEP;
            t.to = "scheduling";
            if (rc >= 0)
                rc = ctx->ops->transition(ctx, &t, &w, status, &err);
            t.to = "creating_vol";
            if (rc >= 0)
                rc = ctx->ops->transition(ctx, &t, &w, status, &err);
            t.kind = VSE_KIND_FINISH;
            t.to = "available";
            if (rc >= 0)
                rc = ctx->ops->transition(ctx, &t, &w, status, &err);
        }
        if (rc < 0) {
            warnx_("bench: cannot set up '%s'", id);
            return report(rc, &err);
        }
    }
    return 0;
}

struct client {
    /* The client's own store handle (ctx.db), or with --url its own
     * connection to vsed (ctx.ops, client-http.c). */
    struct ctx ctx;
    int n; /* client number, for messages */
    struct vse_opts o;
    struct bench_report rep;
    struct samples s;
    struct vse_error err;
};

/* A refusal of begin is the measured outcome of contention; anything
 * else means the benchmark is not measuring what it claims to. */
static int refused(int rc)
{
    return rc == VSE_ECONFLICT || rc == VSE_EFENCED;
}

/* Time one call from t0; 0, or -1 after printing why. */
static int timed(struct client *c, int rc, int64_t t0, const char *what,
                 const char *id)
{
    if (rc < 0) {
        fprintf(stderr, "vsectl: bench client %d: %s '%s': %s\n", c->n, what,
                id, c->err.msg[0] ? c->err.msg : vse_strerror(rc));
        return -1;
    }
    c->rep.transitions++;
    if (sample_add(&c->s, vse__now_mono_us() - t0) != 0) {
        fprintf(stderr, "vsectl: bench client %d: out of memory\n", c->n);
        return -1;
    }
    return 0;
}

/* Through vsed (--url): the same calls as the client's own handle makes
 * in cycle(), as requests to /v1. */
static int http_call(struct client *c, enum vse_kind kind, const char *id,
                     const char *op, const char *op_id, const char *to,
                     struct vse_resource *out)
{
    char status[VSE_STATUS_MAX + 1];
    struct vse_resource tmp;
    struct tr t;

    memset(&t, 0, sizeof(t));
    t.kind = kind;
    t.id = id;
    t.op = op;
    t.op_id = op_id;
    t.to = to;
    t.o.owner = c->o.owner;
    return c->ctx.ops->transition(&c->ctx, &t, out ? out : &tmp, status,
                                  &c->err);
}

static int get(struct client *c, const char *id, struct vse_resource *r)
{
    char status[VSE_STATUS_MAX + 1];

    if (c->ctx.url != NULL)
        return c->ctx.ops->get(&c->ctx, id, r, status, &c->err);
    return vse_get(c->ctx.db, id, r, &c->err);
}

static int begin(struct client *c, const char *id, const char *op,
                 struct vse_resource *out)
{
    if (c->ctx.url != NULL)
        return http_call(c, VSE_KIND_BEGIN, id, op, NULL, NULL, out);
    return vse_begin(c->ctx.db, id, op, &c->o, out, &c->err);
}

static int step(struct client *c, const char *id, const char *op_id,
                const char *to)
{
    if (c->ctx.url != NULL)
        return http_call(c, VSE_KIND_STEP, id, NULL, op_id, to, NULL);
    return vse_step(c->ctx.db, id, op_id, to, NULL, NULL, &c->err);
}

static int finish(struct client *c, const char *id, const char *op_id,
                  const char *to)
{
    if (c->ctx.url != NULL)
        return http_call(c, VSE_KIND_FINISH, id, NULL, op_id, to, NULL);
    return vse_finish(c->ctx.db, id, op_id, to, NULL, NULL, &c->err);
}

/* One cycle on one resource: get, then attach (3 transitions) or detach
 * (2).  0 (also for a refusal), -1 on a real error. */
static int cycle(struct client *c, const char *id)
{
    struct vse_resource r, b;
    int64_t t0 = vse__now_mono_us();
    int rc, attach;

    vse_error_clear(&c->err);
    rc = get(c, id, &r);
    if (rc < 0)
        return timed(c, rc, t0, "get", id);
    attach = strcmp(r.state, "available") == 0;
    if (r.op[0] != '\0' || (!attach && strcmp(r.state, "in_use") != 0)) {
        c->rep.refused++;
        return 0;
    }
    /* Decide against the row just read, as raw-sqlite does: one read
     * per begin, not two.  (vsed reads it again: the API has no way to
     * pass it.) */
    c->o.seen = &r;
    rc = begin(c, id, attach ? "attach" : "detach", &b);
    c->o.seen = NULL;
    if (refused(rc)) {
        c->rep.refused++;
        return 0;
    }
    if (timed(c, rc, t0, "begin", id) != 0)
        return -1;
    if (attach) {
        t0 = vse__now_mono_us();
        rc = step(c, id, b.op_id, "attaching");
        if (timed(c, rc, t0, "step", id) != 0)
            return -1;
    }
    t0 = vse__now_mono_us();
    rc = finish(c, id, b.op_id, attach ? "in_use" : "available");
    return timed(c, rc, t0, "finish", id);
}

/* One client: open, wait for the start, loop, report into out_fd.  Its
 * exit status. */
static int client_run(const struct ctx *ctx, int n, int64_t nres,
                      int64_t secs, int go_fd, int out_fd)
{
    struct client c;
    char owner[64], id[32], b;
    unsigned int seed;
    int64_t start, deadline;
    int rc;

    memset(&c, 0, sizeof(c));
    c.n = n;
    snprintf(owner, sizeof(owner), "bench-%d@%ld", n, (long)getpid());
    c.o.owner = owner;
    c.ctx.cmd = ctx->cmd;
    c.ctx.token = ctx->token;
    if (ctx->url != NULL) {
        c.ctx.url = ctx->url;
        if (client_http_open(&c.ctx) != 0)
            c.rep.failed = 1;
    } else {
        rc = vse_open(ctx->store_url, &c.ctx.db, &c.err);
        if (rc < 0) {
            fprintf(stderr, "vsectl: bench client %d: %s\n", n, c.err.msg);
            c.ctx.db = NULL;
            c.rep.failed = 1;
        }
    }
    /* Every client starts when the parent closes the go pipe, so that
     * opening the store is not measured and all run at the same time. */
    while (read(go_fd, &b, 1) < 0 && errno == EINTR)
        ;
    seed = (unsigned int)(getpid() ^ vse__now_mono_us() ^
                          ((int64_t)n * 2654435761u));
    start = vse__now_mono_us();
    deadline = start + secs * 1000000;
    while (!c.rep.failed && vse__now_mono_us() < deadline) {
        snprintf(id, sizeof(id), "bench-%" PRId64,
                 (int64_t)(rand_r(&seed) % nres));
        if (cycle(&c, id) != 0)
            c.rep.failed = 1;
    }
    c.rep.elapsed_us = vse__now_mono_us() - start;
    c.rep.nsamples = (int64_t)c.s.n;
    ctx_close(&c.ctx);
    if (write_all(out_fd, &c.rep, sizeof(c.rep)) != 0 ||
        write_all(out_fd, c.s.v, c.s.n * sizeof(*c.s.v)) != 0) {
        free(c.s.v);
        return EXIT_ERROR;
    }
    free(c.s.v);
    return c.rep.failed ? EXIT_ERROR : EXIT_DONE;
}

/* A forked client.  Never returns. */
static void client_main(const struct ctx *ctx, int n, int64_t nres,
                        int64_t secs, int go_fd, int out_fd)
{
    _exit(client_run(ctx, n, nres, secs, go_fd, out_fd));
}

/* A client as a thread of this process (--threads). */
struct client_thread {
    pthread_t tid;
    const struct ctx *ctx;
    int n, go_fd, out_fd, status;
    int64_t nres, secs;
};

static void *client_thread_main(void *arg)
{
    struct client_thread *ct = arg;

    ct->status = client_run(ct->ctx, ct->n, ct->nres, ct->secs, ct->go_fd,
                            ct->out_fd);
    close(ct->out_fd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static uint32_t percentile(const uint32_t *v, size_t n, int p)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (n * (size_t)p + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

struct totals {
    int64_t transitions, refused, elapsed_us;
    struct samples s;
    int failed;
};

/* Read one client's report and samples into t. */
static int collect(int fd, struct totals *t)
{
    struct bench_report rep;
    size_t need;

    if (read_all(fd, &rep, sizeof(rep)) != 0 || rep.nsamples < 0)
        return -1;
    t->transitions += rep.transitions;
    t->refused += rep.refused;
    if (rep.elapsed_us > t->elapsed_us)
        t->elapsed_us = rep.elapsed_us;
    t->failed |= rep.failed;
    need = t->s.n + (size_t)rep.nsamples;
    if (vse__array_reserve(&t->s, need) < 0)
        return -1;
    if (read_all(fd, t->s.v + t->s.n,
                 (size_t)rep.nsamples * sizeof(*t->s.v)) != 0)
        return -1;
    t->s.n = need;
    return 0;
}

/*
 * The store URL as it may be printed: a password in it
 * ("postgresql://user:secret@host/db") becomes "***", since bench output
 * ends up in docs and tickets.
 */
static void redact_url(const char *url, char *buf, size_t size)
{
    const char *auth = strstr(url, "://");
    const char *at, *colon, *slash;

    snprintf(buf, size, "%s", url);
    if (auth == NULL)
        return;
    auth += 3;
    slash = strchr(auth, '/');
    at = strchr(auth, '@');
    if (at == NULL || (slash != NULL && at > slash))
        return;
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return;
    snprintf(buf, size, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

static void print_result(const struct ctx *ctx, int json, int64_t clients,
                         int64_t nres, int64_t secs, const struct totals *t)
{
    char url[1024];
    double elapsed = t->elapsed_us > 0 ? t->elapsed_us / 1e6 : (double)secs;
    double tps = t->transitions / elapsed;
    uint32_t p50 = percentile(t->s.v, t->s.n, 50);
    uint32_t p99 = percentile(t->s.v, t->s.n, 99);

    /* Through vsed, "store" names the vsed the cycles went through. */
    redact_url(ctx->url ? ctx->url : ctx->store_url, url, sizeof(url));
    if (json) {
        print_json(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:I, s:I, "
                             "s:I}",
                             "engine", ctx->url ? "vsed" : "vse", "store",
                             url, "clients", (json_int_t)clients, "resources",
                             (json_int_t)nres, "seconds", (json_int_t)secs,
                             "transitions", (json_int_t)t->transitions,
                             "transitions_per_s", tps, "refused",
                             (json_int_t)t->refused, "p50_us",
                             (json_int_t)p50, "p99_us", (json_int_t)p99));
        return;
    }
    printf("bench: %s %s, %" PRId64 " clients, %" PRId64
           " resources, %" PRId64 " s\n",
           ctx->url ? "vse through vsed at" : "vse on", url, clients, nres,
           secs);
    printf("transitions        %" PRId64 "\n", t->transitions);
    printf("transitions_per_s  %.1f\n", tps);
    printf("refused            %" PRId64 "\n", t->refused);
    printf("p50_us             %" PRIu32 "\n", p50);
    printf("p99_us             %" PRIu32 "\n", p99);
}

/*
 * --threads: the clients as threads of this process, each with its own
 * store handle, started together, their reports gathered as from forked
 * ones.  The raw programs in bench/ run threads: on these virtual
 * machines a switch between processes costs more than one between
 * threads (raw-pg did 12-16 % less at 16 clients as processes).
 */
static int run_threads(const struct ctx *ctx, int64_t clients, int64_t nres,
                       int64_t secs, struct totals *t)
{
    struct client_thread *ct = calloc((size_t)clients, sizeof(*ct));
    int go[2], fds[BENCH_CLIENTS_MAX];
    int64_t started = 0;
    int bad = 0;

    if (ct == NULL || pipe(go) != 0) {
        warnx_("bench: cannot start the clients: %s", strerror(errno));
        free(ct);
        return EXIT_ERROR;
    }
    for (; started < clients; started++) {
        int p[2];

        if (pipe(p) != 0) {
            warnx_("bench: cannot make a pipe: %s", strerror(errno));
            bad = 1;
            break;
        }
        ct[started] = (struct client_thread){.ctx = ctx,
                                             .n = (int)started,
                                             .go_fd = go[0],
                                             .out_fd = p[1],
                                             .nres = nres,
                                             .secs = secs};
        if (pthread_create(&ct[started].tid, NULL, client_thread_main,
                           &ct[started]) != 0) {
            warnx_("bench: cannot start a thread");
            close(p[0]);
            close(p[1]);
            bad = 1;
            break;
        }
        fds[started] = p[0];
    }
    close(go[1]); /* EOF: every client starts at once */
    for (int64_t i = 0; i < started; i++) {
        if (collect(fds[i], t) != 0)
            bad = 1;
        close(fds[i]);
        pthread_join(ct[i].tid, NULL);
        if (ct[i].status != EXIT_DONE)
            bad = 1;
    }
    close(go[0]);
    free(ct);
    if (bad || t->failed) {
        warnx_("bench: a client failed; no result");
        return EXIT_ERROR;
    }
    return EXIT_DONE;
}

/* Fork the clients, start them together, gather their reports. */
static int run_clients(const struct ctx *ctx, int64_t clients, int64_t nres,
                       int64_t secs, struct totals *t)
{
    int go[2], fds[BENCH_CLIENTS_MAX];
    pid_t pids[BENCH_CLIENTS_MAX];
    int64_t started = 0;
    int bad = 0;

    if (pipe(go) != 0) {
        warnx_("bench: cannot make a pipe: %s", strerror(errno));
        return EXIT_ERROR;
    }
    fflush(stdout);
    fflush(stderr);
    for (; started < clients; started++) {
        int p[2];
        pid_t pid;

        if (pipe(p) != 0) {
            warnx_("bench: cannot make a pipe: %s", strerror(errno));
            bad = 1;
            break;
        }
        pid = fork();
        if (pid < 0) {
            warnx_("bench: cannot fork: %s", strerror(errno));
            close(p[0]);
            close(p[1]);
            bad = 1;
            break;
        }
        if (pid == 0) {
            close(go[1]);
            close(p[0]);
            for (int64_t j = 0; j < started; j++)
                close(fds[j]);
            client_main(ctx, (int)started, nres, secs, go[0], p[1]);
        }
        close(p[1]);
        fds[started] = p[0];
        pids[started] = pid;
    }
    /* EOF on the go pipe starts every client at once; after a failure
     * it starts them too, and they end at their deadline. */
    close(go[0]);
    close(go[1]);
    for (int64_t i = 0; i < started; i++) {
        int status;

        if (collect(fds[i], t) != 0)
            bad = 1;
        close(fds[i]);
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad = 1;
    }
    if (bad || t->failed) {
        warnx_("bench: a client failed; no result");
        return EXIT_ERROR;
    }
    return EXIT_DONE;
}

int cmd_bench(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"clients", required_argument, NULL, OPT_CLIENTS},
        {"resources", required_argument, NULL, OPT_RESOURCES},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"json", no_argument, NULL, OPT_JSON},
        {"threads", no_argument, NULL, OPT_THREADS},
        {NULL, 0, NULL, 0}};
    int64_t clients = 1, nres = 1, secs = 5;
    int threads = 0;
    struct totals t;
    char *url = NULL;
    int json = 0, st = 0;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == OPT_CLIENTS)
            st = parse_int(ctx, "--clients", optarg, 1, BENCH_CLIENTS_MAX,
                           &clients);
        else if (c == OPT_RESOURCES)
            st = parse_int(ctx, "--resources", optarg, 1, BENCH_RESOURCES_MAX,
                           &nres);
        else if (c == OPT_SECONDS)
            st = parse_int(ctx, "--seconds", optarg, 1, BENCH_SECONDS_MAX,
                           &secs);
        else if (c == OPT_JSON)
            json = 1;
        else if (c == OPT_THREADS)
            threads = 1;
        if (st != 0)
            return st;
    }
    st = want_args(ctx, argc - optind, 0, 0);
    /* An HTTP client sets libcurl up and tears it down, which is not
     * for threads of one process. */
    if (st == 0 && threads && ctx->url != NULL)
        st = usage_error(ctx, "--threads runs store clients; with --url "
                              "each client is a process");
    if (st == 0)
        st = ctx_open(ctx);
    if (st == 0)
        st = bench_setup(ctx, nres);
    /* --url as client_http_open() made it, which ctx_close() frees. */
    if (st == 0 && ctx->url != NULL && (url = strdup(ctx->url)) == NULL)
        st = report(VSE_ENOMEM, NULL);
    /* Neither a store handle nor a connection may cross fork(): each
     * client makes its own. */
    ctx_close(ctx);
    ctx->ops = NULL;
    ctx->url = url;
    if (st != 0)
        return st;
    memset(&t, 0, sizeof(t));
    st = threads ? run_threads(ctx, clients, nres, secs, &t)
                 : run_clients(ctx, clients, nres, secs, &t);
    if (st == 0) {
        if (t.s.n > 0)
            qsort(t.s.v, t.s.n, sizeof(*t.s.v), cmp_u32);
        print_result(ctx, json, clients, nres, secs, &t);
    }
    free(t.s.v);
    ctx->url = NULL;
    free(url);
    return st;
}
