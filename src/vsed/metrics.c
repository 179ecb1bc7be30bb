/*
 * metrics.c - vsed's Prometheus metrics.  Hot-path counters (HTTP
 * requests, store latency, refusals) are fixed arrays of atomics so that
 * worker threads never wait on each other to count; the transition
 * counters are fed by the one notifier thread from the history (so they
 * count every committed transition, whoever made it) under a mutex.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vsed.h"

static const int codes[] = {200, 201, 400, 401, 403, 404, 405, 408,
                            409, 413, 415, 422, 500, 503, 0};
#define NCODES (sizeof(codes) / sizeof(codes[0]))
static atomic_llong http_count[R_COUNT][NCODES];

/* Store latency buckets, seconds (upper bounds), and +Inf last. */
static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                0.005,  0.01,    0.025,  0.05,  0.1,
                                0.25,   0.5,     1,      2.5};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))
static atomic_llong store_bucket[NBOUNDS + 1];
static atomic_llong store_sum_us;

static const int refusal_rc[] = {VSE_ECONFLICT, VSE_EFENCED, VSE_EEXIST};
static const char *const refusal_name[] = {"conflict", "fenced", "exists"};
static atomic_llong refusals[3];

static atomic_llong expired;

struct tcount {
    char *labels; /* machine="..",op="..",kind="..",from="..",to=".." */
    long long n;
};
#define TRANSITIONS_MAX 4096
static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
/* Under tmu. */
static VSE_ARRAY(struct tcount) tcs;

void vsed_metrics_http(int route, int status)
{
    size_t i;

    for (i = 0; i + 1 < NCODES && codes[i] != status; i++)
        ;
    if (route < 0 || route >= R_COUNT)
        route = R_UNKNOWN;
    atomic_fetch_add(&http_count[route][i], 1);
}

void vsed_metrics_store(int64_t us)
{
    size_t i;

    for (i = 0; i < NBOUNDS && (double)us > bounds[i] * 1e6; i++)
        ;
    atomic_fetch_add(&store_bucket[i], 1);
    atomic_fetch_add(&store_sum_us, us);
}

void vsed_metrics_refusal(int rc)
{
    for (size_t i = 0; i < 3; i++)
        if (refusal_rc[i] == rc)
            atomic_fetch_add(&refusals[i], 1);
}

/* Label values are names the machine validator accepted, but a label
 * must never break the exposition format whatever it holds. */
static void esc(char *out, size_t size, const char *s)
{
    size_t n = 0;

    for (; *s != '\0' && n + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
            continue;
        }
        out[n++] = *s;
    }
    out[n] = '\0';
}

void vsed_metrics_event(const struct vse_event *e)
{
    char m[2 * VSE_NAME_MAX + 2], op[2 * VSE_NAME_MAX + 2];
    char from[2 * VSE_NAME_MAX + 2], to[2 * VSE_NAME_MAX + 2];
    char labels[1024];
    const char *kind = vse_kind_name(e->kind);

    if (e->kind == VSE_KIND_EXPIRE)
        atomic_fetch_add(&expired, 1);
    esc(m, sizeof(m), e->machine);
    esc(op, sizeof(op), e->op);
    esc(from, sizeof(from), e->from);
    esc(to, sizeof(to), e->to);
    snprintf(labels, sizeof(labels),
             "machine=\"%s\",op=\"%s\",kind=\"%s\",from=\"%s\",to=\"%s\"", m,
             op, kind ? kind : "", from, to);
    pthread_mutex_lock(&tmu);
    for (size_t i = 0; i < tcs.n; i++) {
        if (strcmp(tcs.v[i].labels, labels) == 0) {
            tcs.v[i].n++;
            pthread_mutex_unlock(&tmu);
            return;
        }
    }
    if (tcs.n < TRANSITIONS_MAX) {
        struct tcount t = {.labels = strdup(labels), .n = 1};

        if (t.labels != NULL && vse__array_push(&tcs, t) < 0)
            free(t.labels);
    }
    pthread_mutex_unlock(&tmu);
}

void vsed_metrics_release(void)
{
    pthread_mutex_lock(&tmu);
    for (size_t i = 0; i < tcs.n; i++)
        free(tcs.v[i].labels);
    vse__array_release(&tcs);
    pthread_mutex_unlock(&tmu);
}

struct inflight {
    struct {
        char machine[VSE_NAME_MAX + 1];
        char state[VSE_NAME_MAX + 1];
        long long n;
    } row[256];
    size_t n;
};

static int count_busy(void *arg, const struct vse_resource *r)
{
    struct inflight *f = arg;
    size_t i;

    for (i = 0; i < f->n; i++)
        if (strcmp(f->row[i].machine, r->machine) == 0 &&
            strcmp(f->row[i].state, r->state) == 0)
            break;
    if (i == f->n) {
        if (f->n == sizeof(f->row) / sizeof(f->row[0]))
            return 0;
        snprintf(f->row[i].machine, sizeof(f->row[i].machine), "%s",
                 r->machine);
        snprintf(f->row[i].state, sizeof(f->row[i].state), "%s", r->state);
        f->row[i].n = 0;
        f->n++;
    }
    f->row[i].n++;
    return 0;
}

char *vsed_metrics_render(vse_db *db, size_t *len)
{
    struct inflight *f = calloc(1, sizeof(*f));
    struct vse_filter flt = {.busy = 1};
    char *buf = NULL;
    long long cum = 0;
    FILE *o;

    o = open_memstream(&buf, len);
    if (o == NULL || f == NULL) {
        if (o != NULL)
            fclose(o);
        free(f);
        free(buf);
        return NULL;
    }
    fputs("# HELP vse_transitions_total Transitions committed to the store."
          "\n# TYPE vse_transitions_total counter\n",
          o);
    pthread_mutex_lock(&tmu);
    for (size_t i = 0; i < tcs.n; i++)
        fprintf(o, "vse_transitions_total{%s} %lld\n", tcs.v[i].labels,
                tcs.v[i].n);
    pthread_mutex_unlock(&tmu);

    fputs("# HELP vse_refusals_total Transitions refused, by reason.\n"
          "# TYPE vse_refusals_total counter\n",
          o);
    for (size_t i = 0; i < 3; i++)
        fprintf(o, "vse_refusals_total{reason=\"%s\"} %lld\n",
                refusal_name[i], atomic_load(&refusals[i]));

    fputs("# HELP vse_inflight Resources with an operation in flight.\n"
          "# TYPE vse_inflight gauge\n",
          o);
    if (db != NULL && vse_list(db, &flt, count_busy, f, NULL) == 0)
        for (size_t i = 0; i < f->n; i++)
            fprintf(o, "vse_inflight{machine=\"%s\",state=\"%s\"} %lld\n",
                    f->row[i].machine, f->row[i].state, f->row[i].n);

    fprintf(o,
            "# HELP vse_expired_leases_total Leases the reaper "
            "expired.\n# TYPE vse_expired_leases_total counter\n"
            "vse_expired_leases_total %lld\n",
            atomic_load(&expired));

    fputs("# HELP vse_store_seconds Time of one store call made for a "
          "request.\n# TYPE vse_store_seconds histogram\n",
          o);
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += atomic_load(&store_bucket[i]);
        if (i < NBOUNDS)
            fprintf(o, "vse_store_seconds_bucket{le=\"%g\"} %lld\n",
                    bounds[i], cum);
        else
            fprintf(o, "vse_store_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
    }
    fprintf(o, "vse_store_seconds_sum %.6f\nvse_store_seconds_count %lld\n",
            (double)atomic_load(&store_sum_us) / 1e6, cum);

    fputs("# HELP vse_http_requests_total HTTP requests answered.\n"
          "# TYPE vse_http_requests_total counter\n",
          o);
    for (int r = 0; r < R_COUNT; r++)
        for (size_t i = 0; i < NCODES; i++) {
            long long n = atomic_load(&http_count[r][i]);

            if (n == 0)
                continue;
            if (codes[i] != 0)
                fprintf(o,
                        "vse_http_requests_total{route=\"%s\",code=\"%d\"}"
                        " %lld\n",
                        vsed_route_name(r), codes[i], n);
            else
                fprintf(o,
                        "vse_http_requests_total{route=\"%s\",code="
                        "\"other\"} %lld\n",
                        vsed_route_name(r), n);
        }
    free(f);
    if (fclose(o) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
