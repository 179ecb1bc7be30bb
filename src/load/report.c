/*
 * report.c - vse-load's report: per-operation counts and latency
 * percentiles, refusals by reason, what became of every accepted request,
 * and a per-second timeline that gnuplot draws as throughput and latency
 * plots (SVG and PNG), with a red line where each fault began.  Checks
 * that every accepted request settled in a status its op may end in.
 * JSON for machines, a table for people.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "load.h"

const char *const load_reason_names[RS_COUNT] = {
    "accepted",      "400 busy",      "400 wrong status", "400 snapshots",
    "400 size",      "400 bad input", "409 lost race",    "409 held",
    "404 not found", "5xx server",    "transport",        "other"};

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of n sorted values, in ms. */
static double pct(const int32_t *v, size_t n, double p)
{
    size_t k;

    if (n == 0)
        return 0;
    k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1] / 1000.0;
}

struct opstat {
    size_t count, accepted, refused, errors;
    int32_t *lat;
};

static json_t *op_json(struct opstat *s)
{
    qsort(s->lat, s->count, sizeof(*s->lat), cmp_i32);
    return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f}", "count",
                     (json_int_t)s->count, "accepted",
                     (json_int_t)s->accepted, "refused",
                     (json_int_t)s->refused, "errors", (json_int_t)s->errors,
                     "p50_ms", pct(s->lat, s->count, 50), "p95_ms",
                     pct(s->lat, s->count, 95), "p99_ms",
                     pct(s->lat, s->count, 99), "max_ms",
                     pct(s->lat, s->count, 100));
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int one_of(const char *s, const char *const *list)
{
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/*
 * Is the settled status one the accepted op may end in?  The outcome is
 * the first status at rest the settler saw after the 202, and other
 * clients' requests may have moved the volume on before that poll, so a
 * status that says "the op took, and then something else happened" is
 * fine.  Where in doubt, the outcome is fine: a false violation would
 * hide the real ones.  0 and why[] filled when it is not.
 *
 *   delete, snapshot delete  deleted or error_deleting; a volume still at
 *                            rest lost an accepted delete (nothing else
 *                            moves it out of deleting)
 *   extend, extend_in_use    error_extending or error, or at rest with
 *                            size >= the size asked for (a later extend
 *                            may have grown it more), or smaller where
 *                            the volume's history shows that the op the
 *                            request began failed, expired or was reset
 *                            (an in-use extend's failure leaves the
 *                            volume in use at its old size, and a detach
 *                            may follow before the poll); gone only if a
 *                            delete of it was sent
 *   create                   any status but gone: every status at rest
 *                            other than deleted needs the volume to
 *                            exist; gone only if a delete was sent
 *   create_from_snapshot,    as create: the new volume is the outcome
 *   clone
 *   snapshot                 available, error, error_deleting (a later
 *                            delete failed); gone only if a delete of it
 *                            was sent
 */
static int outcome_ok(const struct load_report *r,
                      const struct load_outcome *o, char *why, size_t size)
{
    static const char *const deleted[] = {"deleted", "error_deleting", NULL};
    static const char *const snap[] = {"available", "error", "error_deleting",
                                       NULL};
    const char *what = o->snapshot ? "snapshot" : "volume";
    int gone = strcmp(o->outcome, "deleted") == 0;

    if (o->id[0] == '\0' || strcmp(o->outcome, "unresolved") == 0)
        return 1; /* synchronous, or counted as unresolved already */
    if (gone && o->op != OP_DELETE && o->op != OP_SNAPSHOT_DELETE) {
        /* A delete with no clear answer may have been carried out. */
        if (r->ndeletes > 0 && bsearch(o->id, r->deletes, r->ndeletes,
                                       sizeof(*r->deletes), cmp_id) != NULL)
            return 1;
        snprintf(why, size, "the %s is gone and no delete of it was sent",
                 what);
        return 0;
    }
    switch (o->op) {
    case OP_DELETE:
    case OP_SNAPSHOT_DELETE:
        if (one_of(o->outcome, deleted))
            return 1;
        break;
    case OP_EXTEND:
    case OP_EXTEND_IN_USE:
        /* An extend may fail (a full pool), and at 3.42+ one that meets
         * a volume attached meanwhile runs as extend_in_use, whose
         * failure leaves it in use at its old size, from where a detach
         * may make it available before the settler's poll.  So a volume
         * smaller than asked is fine where the history shows that the op
         * the request began did not finish (op_end, read by the
         * settler), or could not be read. */
        if (strcmp(o->outcome, "error_extending") == 0 ||
            strcmp(o->outcome, "error") == 0 || o->size < 0 ||
            o->size >= o->want_size || strcmp(o->op_end, "fail") == 0 ||
            strcmp(o->op_end, "expire") == 0 ||
            strcmp(o->op_end, "reset") == 0 ||
            strcmp(o->op_end, "unread") == 0)
            return 1;
        snprintf(why, size,
                 "the volume settled '%s' at %lld GiB, not the "
                 "%lld GiB asked for, and %s",
                 o->outcome, (long long)o->size, (long long)o->want_size,
                 strcmp(o->op_end, "finish") == 0
                     ? "the history shows the extend finished"
                 : strcmp(o->op_end, "running") == 0
                     ? "the history shows the extend still running"
                     : "the history shows no extend begun between the "
                       "request and its answer");
        return 0;
    case OP_SNAPSHOT:
        if (one_of(o->outcome, snap))
            return 1;
        break;
    default: return 1;
    }
    snprintf(why, size, "the %s settled '%s'", what, o->outcome);
    return 0;
}

/* A violation for every outcome its op may not end in. */
static void check_outcomes(const struct load_report *r, json_t *viol)
{
    char why[200], msg[400];

    for (size_t i = 0; i < r->nouts; i++) {
        const struct load_outcome *o = &r->outs[i];

        if (outcome_ok(r, o, why, sizeof(why)))
            continue;
        snprintf(msg, sizeof(msg), "%s of %s %s accepted at %.1f s but %s",
                 o->op == OP_SNAPSHOT_DELETE ? "delete"
                 : o->op == OP_SNAPSHOT      ? "create"
                                             : load_op_names[o->op],
                 o->snapshot ? "snapshot" : "volume", o->id,
                 (double)o->accepted_us / 1e6, why);
        json_array_append_new(viol,
                              json_pack("{s:s, s:i, s:s}", "kind", "outcome",
                                        "count", 1, "message", msg));
    }
}

/* Count of accepted requests per op and outcome, and the violations. */
static json_t *outcomes_json(const struct load_report *r, json_t *viol,
                             size_t *unresolved)
{
    json_t *by = json_object();
    int32_t *t = calloc(r->nouts ? r->nouts : 1, sizeof(*t));
    size_t settled = 0;

    *unresolved = 0;
    for (size_t i = 0; i < r->nouts; i++) {
        const struct load_outcome *o = &r->outs[i];
        json_t *m = json_object_get(by, load_op_names[o->op]);
        json_t *n;

        if (m == NULL) {
            m = json_object();
            json_object_set_new(by, load_op_names[o->op], m);
        }
        n = json_object_get(m, o->outcome);
        json_object_set_new(m, o->outcome,
                            json_integer(json_integer_value(n) + 1));
        if (strcmp(o->outcome, "unresolved") == 0) {
            (*unresolved)++;
            continue;
        }
        if (t != NULL) {
            int64_t us = o->settle_us;

            t[settled] = us > INT32_MAX ? INT32_MAX : (int32_t)us;
        }
        settled++;
    }
    if (*unresolved > 0)
        json_array_append_new(
            viol, json_pack("{s:s, s:I, s:s}", "kind", "unresolved", "count",
                            (json_int_t)*unresolved, "message",
                            "accepted requests whose resource never left "
                            "its transient status"));
    if (t != NULL)
        qsort(t, settled, sizeof(*t), cmp_i32);
    by = json_pack("{s:I, s:I, s:I, s:f, s:f, s:o}", "accepted",
                   (json_int_t)r->nouts, "settled", (json_int_t)settled,
                   "unresolved", (json_int_t)*unresolved, "settle_p50_ms",
                   t ? pct(t, settled, 50) : 0.0, "settle_p99_ms",
                   t ? pct(t, settled, 99) : 0.0, "by_op", by);
    free(t);
    return by;
}

/*
 * --mix create: accepted creates per second of the load phase, and
 * create -> available (POST sent to the first GET showing it available)
 * of the creates that ended available.  NULL for other mixes.
 */
static json_t *creates_json(const struct load_report *r)
{
    int32_t *t = calloc(r->nouts ? r->nouts : 1, sizeof(*t));
    size_t n = 0, accepted = 0, other = 0;
    json_t *j;

    if (r->mix == NULL || strcmp(r->mix, "create") != 0 || t == NULL) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < r->nrecs; i++)
        if (r->recs[i].op == OP_CREATE && r->recs[i].status == 202)
            accepted++;
    for (size_t i = 0; i < r->nouts; i++) {
        const struct load_outcome *o = &r->outs[i];

        if (o->op != OP_CREATE)
            continue;
        if (strcmp(o->outcome, "available") != 0 || o->total_us <= 0) {
            other++;
            continue;
        }
        t[n++] = o->total_us > INT32_MAX ? INT32_MAX : (int32_t)o->total_us;
    }
    qsort(t, n, sizeof(*t), cmp_i32);
    j = json_pack("{s:I, s:f, s:I, s:I, s:{s:f, s:f, s:f}, s:f}", "accepted",
                  (json_int_t)accepted, "accepted_per_s",
                  r->elapsed > 0 ? (double)accepted / r->elapsed : 0.0,
                  "available", (json_int_t)n, "not_available",
                  (json_int_t)other, "create_to_available_ms", "p50",
                  pct(t, n, 50), "p99", pct(t, n, 99), "max",
                  n ? t[n - 1] / 1000.0 : 0.0, "poll_ms", r->poll_ms);
    free(t);
    return j;
}

/* One row per second of the run: requests, accepted, refused, latency
 * p50/p95/p99 of the requests that started in it. */
static int write_timeline(const struct load_report *r, const char *dir)
{
    char path[4200];
    size_t secs = (size_t)r->elapsed + 1;
    size_t *cnt = calloc(secs, sizeof(*cnt));
    size_t *acc = calloc(secs, sizeof(*acc));
    int32_t *lat = malloc((r->nrecs ? r->nrecs : 1) * sizeof(*lat));
    FILE *f;

    snprintf(path, sizeof(path), "%s/timeline.tsv", dir);
    f = fopen(path, "w");
    if (f == NULL || cnt == NULL || acc == NULL || lat == NULL) {
        if (f != NULL)
            fclose(f);
        free(cnt);
        free(acc);
        free(lat);
        return -1;
    }
    fprintf(f, "# second\trequests\taccepted\trefused\tp50_ms\tp95_ms\t"
               "p99_ms\n");
    for (size_t s = 0; s < secs; s++) {
        size_t n = 0;

        for (size_t i = 0; i < r->nrecs; i++) {
            const struct load_rec *x = &r->recs[i];

            if ((size_t)(x->start_us / 1000000) != s)
                continue;
            lat[n++] = x->latency_us;
            cnt[s]++;
            if (x->reason == RS_NONE)
                acc[s]++;
        }
        qsort(lat, n, sizeof(*lat), cmp_i32);
        if (n > 0)
            fprintf(f, "%zu\t%zu\t%zu\t%zu\t%.3f\t%.3f\t%.3f\n", s, cnt[s],
                    acc[s], cnt[s] - acc[s], pct(lat, n, 50), pct(lat, n, 95),
                    pct(lat, n, 99));
    }
    fclose(f);
    free(cnt);
    free(acc);
    free(lat);
    return 0;
}

/* A red line where each fault began, labelled with its kind; the time it
 * lasted shaded, with a dashed line where it ended.  Labels step down so
 * that faults close together stay readable. */
static void fault_marks(FILE *f, json_t *faults)
{
    json_t *v;
    size_t i;

    /* The key would hide the labels at the top left. */
    if (json_array_size(faults) > 0)
        fprintf(f, "set key below horizontal\n");
    json_array_foreach(faults, i, v) {
        double at = json_real_value(json_object_get(v, "at_s"));
        double dur = json_real_value(json_object_get(v, "duration_s"));
        const char *kind = json_string_value(json_object_get(v, "kind"));

        if (!json_is_true(json_object_get(v, "ok")))
            continue;
        fprintf(f,
                "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead "
                "lc rgb 'red' lw 1.5 front\n"
                "set label '%s' at %.3f, graph %.2f offset 0.3,0 "
                "tc rgb 'red' front\n",
                at, at, kind ? kind : "?", at, 0.95 - 0.06 * (double)(i % 4));
        if (dur < 0.05)
            continue;
        fprintf(f,
                "set object rect from %.3f, graph 0 to %.3f, graph 1 "
                "fc rgb 'red' fs transparent solid 0.08 noborder behind\n"
                "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead "
                "lc rgb 'red' dt 2 front\n",
                at, at + dur, at + dur, at + dur);
    }
}

/* faults.tsv: one row per fault, as in report.json. */
static int write_faults(json_t *faults, const char *dir)
{
    char path[4200];
    json_t *v;
    size_t i;
    FILE *f;

    snprintf(path, sizeof(path), "%s/faults.tsv", dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "# kind\tat_s\tduration_s\tok\ttarget\tdetail\n");
    json_array_foreach(faults, i, v)
        fprintf(f, "%s\t%.3f\t%.3f\t%d\t%s\t%s\n",
                json_string_value(json_object_get(v, "kind")),
                json_real_value(json_object_get(v, "at_s")),
                json_real_value(json_object_get(v, "duration_s")),
                json_is_true(json_object_get(v, "ok")),
                json_string_value(json_object_get(v, "target")),
                json_string_value(json_object_get(v, "detail")));
    return fclose(f) == 0 ? 0 : -1;
}

/* gnuplot draws timeline.tsv; without gnuplot the plots are missing
 * and the report says so (the numbers are all in report.json). */
static int plot(const char *dir, const char *workload, json_t *faults)
{
    static const char *const term[2][2] = {{"svg size 800,400 dynamic",
                                            "svg"},
                                           {"pngcairo size 800,400", "png"}};
    char path[4200], cmd[4300];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/plot.gp", dir);
    f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "# Made by vse-load: gnuplot plot.gp (in this directory)\n"
               "set datafile separator '\\t'\nset grid\nset key top left\n"
               "set xlabel 'seconds since start'\n");
    fault_marks(f, faults);
    for (int t = 0; t < 2; t++) {
        fprintf(f,
                "set terminal %s\nset output 'throughput.%s'\n"
                "set title 'vse-load %s: requests per second'\n"
                "set ylabel 'requests/s'\n"
                "plot 'timeline.tsv' using 1:2 with linespoints title "
                "'all', '' using 1:3 with linespoints title 'accepted', "
                "'' using 1:4 with linespoints title 'refused'\n",
                term[t][0], term[t][1], workload);
        fprintf(f,
                "set terminal %s\nset output 'latency.%s'\n"
                "set title 'vse-load %s: latency of requests started "
                "in each second'\nset ylabel 'ms'\n"
                "plot 'timeline.tsv' using 1:5 with linespoints title "
                "'p50', '' using 1:6 with linespoints title 'p95', "
                "'' using 1:7 with linespoints title 'p99'\n",
                term[t][0], term[t][1], workload);
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot plot.gp 2>gnuplot.err",
             dir);
    rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static void text(FILE *f, const struct load_report *r, json_t *rep)
{
    json_t *ops = json_object_get(rep, "operations"), *v, *m;
    json_t *out = json_object_get(rep, "outcomes");
    const char *k, *k2;
    size_t i;

    fprintf(f, "vse-load %s: %d clients, %.1f s against %s", r->workload,
            r->clients, r->elapsed, r->urls[0]);
    for (int u = 1; u < r->nurls; u++)
        fprintf(f, ", %s", r->urls[u]);
    fprintf(f, " (seed %llu)\n", (unsigned long long)r->seed);
    fprintf(f,
            "requests %lld, %.1f/s; accepted %lld, refused %lld, "
            "errors %lld\n\n",
            (long long)json_integer_value(json_object_get(rep, "requests")),
            json_real_value(json_object_get(rep, "throughput_rps")),
            (long long)json_integer_value(json_object_get(rep, "accepted")),
            (long long)json_integer_value(json_object_get(rep, "refused")),
            (long long)json_integer_value(json_object_get(rep, "errors")));
    if (json_object_get(rep, "creates") != NULL) {
        json_t *cr = json_object_get(rep, "creates");
        json_t *ca = json_object_get(cr, "create_to_available_ms");

        fprintf(
            f,
            "creates: %lld accepted, %.1f/s; %lld available, create -> "
            "available p50 %.1f ms, p99 %.1f ms, max %.1f ms; %lld "
            "not available (each polled every %g ms)\n\n",
            (long long)json_integer_value(json_object_get(cr, "accepted")),
            json_real_value(json_object_get(cr, "accepted_per_s")),
            (long long)json_integer_value(json_object_get(cr, "available")),
            json_real_value(json_object_get(ca, "p50")),
            json_real_value(json_object_get(ca, "p99")),
            json_real_value(json_object_get(ca, "max")),
            (long long)json_integer_value(
                json_object_get(cr, "not_available")),
            json_real_value(json_object_get(cr, "poll_ms")));
    }
    fprintf(f, "%-20s %7s %8s %7s %6s %8s %8s %8s %8s\n", "OPERATION",
            "COUNT", "ACCEPTED", "REFUSED", "ERRORS", "P50 ms", "P95 ms",
            "P99 ms", "MAX ms");
    json_object_foreach(ops, k, v)
        fprintf(f, "%-20s %7lld %8lld %7lld %6lld %8.2f %8.2f %8.2f %8.2f\n",
                k, (long long)json_integer_value(json_object_get(v, "count")),
                (long long)json_integer_value(json_object_get(v, "accepted")),
                (long long)json_integer_value(json_object_get(v, "refused")),
                (long long)json_integer_value(json_object_get(v, "errors")),
                json_real_value(json_object_get(v, "p50_ms")),
                json_real_value(json_object_get(v, "p95_ms")),
                json_real_value(json_object_get(v, "p99_ms")),
                json_real_value(json_object_get(v, "max_ms")));
    fprintf(f, "\n%-20s %7s\n", "REFUSED: REASON", "COUNT");
    json_object_foreach(json_object_get(rep, "refusals"), k, v)
        fprintf(f, "%-20s %7lld\n", k, (long long)json_integer_value(v));
    fprintf(f,
            "\naccepted requests: %lld, settled %lld, unresolved %lld "
            "(settle p50 %.1f ms, p99 %.1f ms)\n",
            (long long)json_integer_value(json_object_get(out, "accepted")),
            (long long)json_integer_value(json_object_get(out, "settled")),
            (long long)json_integer_value(json_object_get(out, "unresolved")),
            json_real_value(json_object_get(out, "settle_p50_ms")),
            json_real_value(json_object_get(out, "settle_p99_ms")));
    fprintf(f, "%-20s %-16s %7s\n", "OPERATION", "OUTCOME", "COUNT");
    json_object_foreach(json_object_get(out, "by_op"), k, m)
        json_object_foreach(m, k2, v)
            fprintf(f, "%-20s %-16s %7lld\n", k, k2,
                    (long long)json_integer_value(v));
    fprintf(f, "\nfaults injected: %zu\n",
            json_array_size(json_object_get(rep, "faults")));
    if (json_array_size(json_object_get(rep, "faults")) > 0)
        fprintf(f, "FAULTS\n%-10s %7s %7s %-3s %-22s %s\n", "KIND", "AT s",
                "FOR s", "OK", "TARGET", "DETAIL");
    json_array_foreach(json_object_get(rep, "faults"), i, v) {
        fprintf(f, "%-10s %7.2f %7.2f %-3s %-22s %s\n",
                json_string_value(json_object_get(v, "kind")),
                json_real_value(json_object_get(v, "at_s")),
                json_real_value(json_object_get(v, "duration_s")),
                json_is_true(json_object_get(v, "ok")) ? "yes" : "NO",
                json_string_value(json_object_get(v, "target")),
                json_string_value(json_object_get(v, "detail")));
        if (json_object_get(v, "verdict") != NULL)
            fprintf(f, "%-10s fencing: %s\n", "",
                    json_string_value(json_object_get(v, "verdict")));
    }
    json_array_foreach(json_object_get(rep, "managers"), i, v) {
        json_t *pid;
        size_t k;

        fprintf(f, "%s manager %lld: pid", i == 0 ? "MANAGERS\n" : "",
                (long long)json_integer_value(json_object_get(v, "n")));
        json_array_foreach(json_object_get(v, "pids"), k, pid)
            fprintf(f, "%s %lld", k ? "," : "",
                    (long long)json_integer_value(pid));
        fprintf(f, "; last %s; log %s\n",
                json_string_value(json_object_get(v, "end")),
                json_string_value(json_object_get(v, "log")));
    }
    fprintf(f, "violations: %zu\n",
            json_array_size(json_object_get(rep, "violations")));
    json_array_foreach(json_object_get(rep, "violations"), i, v)
        fprintf(f, "  %s: %lld: %s\n",
                json_string_value(json_object_get(v, "kind")),
                (long long)json_integer_value(json_object_get(v, "count")),
                json_string_value(json_object_get(v, "message")));
}

int load_report_write(const struct load_report *r, const char *dir)
{
    struct opstat st[OP_COUNT];
    size_t reasons[RS_COUNT] = {0}, acc = 0, ref = 0, errs = 0, unresolved;
    json_t *rep, *ops = json_object(), *refs = json_object();
    json_t *viol = json_array(), *outs, *urls = json_array();
    json_t *empty = json_array();
    json_t *faults = r->faults ? r->faults : empty;
    char path[4200];
    size_t nviol;
    FILE *f;
    int plotted;

    memset(st, 0, sizeof(st));
    for (int o = 0; o < OP_COUNT; o++)
        st[o].lat = malloc((r->nrecs ? r->nrecs : 1) * sizeof(int32_t));
    for (size_t i = 0; i < r->nrecs; i++) {
        const struct load_rec *x = &r->recs[i];
        struct opstat *s = &st[x->op];

        if (s->lat != NULL)
            s->lat[s->count] = x->latency_us;
        s->count++;
        reasons[x->reason]++;
        if (x->reason == RS_NONE) {
            s->accepted++;
            acc++;
        } else if (x->reason == RS_SERVER || x->reason == RS_TRANSPORT) {
            s->errors++;
            errs++;
        } else {
            s->refused++;
            ref++;
        }
    }
    for (int o = 0; o < OP_COUNT; o++) {
        if (st[o].count > 0 && st[o].lat != NULL)
            json_object_set_new(ops, load_op_names[o], op_json(&st[o]));
        free(st[o].lat);
    }
    for (int k = 1; k < RS_COUNT; k++)
        if (reasons[k] > 0)
            json_object_set_new(refs, load_reason_names[k],
                                json_integer((json_int_t)reasons[k]));
    outs = outcomes_json(r, viol, &unresolved);
    check_outcomes(r, viol);
    json_array_extend(viol, r->violations ? r->violations : empty);
    if (errs > 0)
        json_array_append_new(
            viol, json_pack("{s:s, s:I, s:s}", "kind", "server_error",
                            "count", (json_int_t)errs, "message",
                            "requests answered 5xx or not at all"));
    for (int u = 0; u < r->nurls; u++)
        json_array_append_new(urls, json_string(r->urls[u]));
    if (write_timeline(r, dir) != 0 || write_faults(faults, dir) != 0) {
        fprintf(stderr, "vse-load: cannot write the timeline into '%s'\n",
                dir);
        json_decref(ops);
        json_decref(refs);
        json_decref(viol);
        json_decref(outs);
        json_decref(urls);
        json_decref(empty);
        return -1;
    }
    plotted = plot(dir, r->workload, faults) == 0;
    nviol = json_array_size(viol);
    rep = json_pack(
        "{s:s, s:s, s:o, s:I, s:i, s:f, s:f, s:f, s:I, s:f, s:I, s:I, s:I, "
        "s:o, s:o, s:O, s:O, s:o, s:o, s:b}",
        "workload", r->workload, "url", r->urls[0], "urls", urls, "seed",
        (json_int_t)r->seed, "clients", r->clients, "seconds", r->seconds,
        "elapsed_s", r->elapsed, "settle_s", r->settle_s, "requests",
        (json_int_t)r->nrecs, "throughput_rps",
        r->elapsed > 0 ? (double)r->nrecs / r->elapsed : 0.0, "accepted",
        (json_int_t)acc, "refused", (json_int_t)ref, "errors",
        (json_int_t)errs, "operations", ops, "refusals", refs, "faults",
        faults, "managers", r->managers ? r->managers : empty, "violations",
        viol, "outcomes", outs, "plots", plotted);
    json_decref(empty);
    if (rep != NULL) {
        json_t *cr = creates_json(r);

        json_object_set_new(rep, "mix", json_string(r->mix ? r->mix : "all"));
        if (cr != NULL)
            json_object_set_new(rep, "creates", cr);
    }
    snprintf(path, sizeof(path), "%s/report.json", dir);
    if (rep == NULL ||
        json_dump_file(rep, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) !=
            0) {
        fprintf(stderr, "vse-load: cannot write '%s'\n", path);
        json_decref(rep);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/report.txt", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        json_decref(rep);
        return -1;
    }
    text(f, r, rep);
    if (!plotted)
        fprintf(f, "plots: not drawn (gnuplot missing or failed; see "
                   "gnuplot.err)\n");
    fclose(f);
    text(stdout, r, rep);
    json_decref(rep);
    return (int)nviol;
}
