/*
 * load.h - what the two halves of vse-load share: the record of one HTTP
 * request, the outcome of one accepted request, and the report writer
 * (report.c) that turns them into report.json, report.txt and the plots.
 */
#ifndef VSE_LOAD_H
#define VSE_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "util.h"

/* The operations vse-load sends; names in load_op_names[]. */
enum load_op {
    OP_CREATE,
    OP_DELETE,
    OP_EXTEND,
    OP_RESERVE,
    OP_ATTACH,
    OP_UNRESERVE,
    OP_BEGIN_DETACHING,
    OP_DETACH,
    OP_SNAPSHOT,
    OP_SNAPSHOT_DELETE,
    OP_FROM_SNAPSHOT, /* POST /volumes with snapshot_id */
    OP_CLONE,         /* POST /volumes with source_volid */
    OP_EXTEND_IN_USE, /* os-extend of an attached volume (3.42+) */
    OP_COUNT
};
extern const char *const load_op_names[OP_COUNT];

/* Why a request was not accepted, from its status and body. */
enum load_reason {
    RS_NONE,      /* accepted (2xx) */
    RS_BUSY,      /* 400: an operation is in flight on it */
    RS_STATUS,    /* 400: at rest, but in a status the op may not
                         start from */
    RS_SNAPSHOTS, /* 400: a volume with snapshots is not deleted */
    RS_SIZE,      /* 400: extend to a size not above the current */
    RS_BAD_INPUT, /* 400: anything else */
    RS_LOST_RACE, /* 409: the op_id changed between read and write */
    RS_HELD,      /* 409: another op holds the resource (a snapshot or a
                     clone being copied from it) */
    RS_NOT_FOUND, /* 404 */
    RS_SERVER,    /* 5xx */
    RS_TRANSPORT, /* no HTTP answer at all */
    RS_OTHER,
    RS_COUNT
};
extern const char *const load_reason_names[RS_COUNT];

/* One HTTP request as the client saw it. */
struct load_rec {
    int64_t start_us; /* since the run began */
    int32_t latency_us;
    int16_t status; /* HTTP status, 0 when there was none */
    uint8_t op;     /* enum load_op */
    uint8_t reason; /* enum load_reason */
};

/* What became of one request answered 202. */
struct load_outcome {
    uint8_t op;
    uint8_t snapshot;    /* id is a snapshot's, not a volume's */
    char outcome[24];    /* settled status ("available", "deleted", ...),
                           or "unresolved" past the deadline */
    char id[40];         /* "" for the synchronous actions */
    int64_t accepted_us; /* since the run began */
    int64_t settle_us;   /* from the answer to the settled status */
    int64_t want_size;   /* extend: the new size asked for, GiB */
    int64_t size;        /* volume size in the settled body, -1 unknown */
    int64_t total_us;    /* --mix create: from sending the POST to the
                            first answer that showed it settled; 0 when
                            not measured */
    /* extend, extend_in_use settled below the size asked for: how the
     * history says the op the request began ended ("finish", "fail",
     * "expire", "reset", "running", "none" when none began between the
     * request and its answer, "unread"); "" when not looked up. */
    char op_end[12];
};

struct json_t;

struct load_report {
    const char *workload;
    const char *mix;         /* "all", or "create" (throughput only) */
    double poll_ms;          /* --mix create: between polls of a create */
    const char *const *urls; /* the first is the settler's */
    int nurls;
    uint64_t seed;
    int clients;
    double seconds;  /* asked for */
    double elapsed;  /* measured, load phase only */
    double settle_s; /* time the drain took */
    struct load_rec *recs;
    size_t nrecs;
    struct load_outcome *outs;
    size_t nouts;
    /* Volumes and snapshots a delete may have reached (answered 202, 5xx
     * or not at all), sorted for bsearch: a create whose resource is
     * later gone is fine only if one of these names it. */
    char (*deletes)[40];
    size_t ndeletes;
    struct json_t *faults;     /* array of fault records (fault.c) */
    struct json_t *managers;   /* array, one per --manager */
    struct json_t *violations; /* array of {kind, count, message} found
                                  by fault.c: managers that exited by
                                  themselves, writes past a fence */
};

/* Write report.json, report.txt, timeline.tsv, faults.tsv and (with
 * gnuplot) the plots into `dir`, which exists.  Prints report.txt on
 * stdout too.  Returns the number of violations found (accepted requests
 * that never settled or settled in a status their op may not end in,
 * plus those in r->violations), or -1 if a file cannot be written. */
int load_report_write(const struct load_report *r, const char *dir);

/* ---- fault.c: managed processes and fault injection ------------------ */

enum load_fault_kind { FK_KILL, FK_STOP, FK_PG_RESTART, FK_POOL_FULL };

/* What fault.c needs from the command line. */
struct load_fault_opts {
    const char *const *managers; /* --manager CMDs */
    int nmanagers;
    const char *pg_restart, *pg_stop, *pg_start, *pool;
    double pool_fill_gb; /* 0 = the largest the filesystem takes */
    const char *out;     /* OUTDIR, for the logs */
    const char *url;     /* /v1 of the first API server */
    const char *project; /* the token's project */
    double seconds;      /* --seconds */
    uint64_t seed;
};

/* Parse one --fault SPEC into the list; exits 2 with a message if it is
 * malformed.  Checked against the options by load_faults_check(). */
void load_fault_add(const char *spec);
/* Usage errors that need every option: a kind whose option is missing,
 * AT past --seconds.  Exits 2. */
void load_faults_check(const struct load_fault_opts *o);
/* Start the managers (exits 1 if one cannot be started) and the thread
 * that takes SIGINT and SIGTERM; call before any other thread starts, so
 * that every thread inherits the blocked signals. */
void load_managers_start(const struct load_fault_opts *o);
/* Start the fault threads; t0 is the load phase's start (CLOCK_MONOTONIC
 * microseconds); load_over() says whether the clients are done. */
void load_faults_start(int64_t t0, int (*load_over)(void));
/* Wait for the fault threads, verify fencing, stop the managers, and
 * hand over the JSON for the report (the caller owns it). */
void load_faults_finish(struct json_t **faults, struct json_t **managers,
                        struct json_t **violations);

/* ---- http.c: the HTTP client ----------------------------------------- */

/* Every duration vse-load measures is vse__now_mono_us() (util.h); wall
 * clock times are only for comparing with history rows, which carry
 * them. */
int64_t load_wall_us(void);
/* "2026-11-27T12:03:04.123456Z" as microseconds since the epoch; 0 if it
 * is not one. */
int64_t load_parse_time(const char *s);
/* Out of memory: exit(1) with a message. */
_Noreturn void load_oom(void);

/* One connection's worth of state to one API server; one per thread. */
struct load_http {
    const char *url; /* http://HOST:PORT, borrowed */
    CURL *c;
    struct curl_slist *hdrs;
    char *body; /* the last answer's body, NUL-terminated */
    size_t len, cap;
};

void load_http_init(struct load_http *h, const char *url,
                    const char *project);
void load_http_free(struct load_http *h);
/* METHOD url+PATH (PATH from the root: "/v3/...", "/v1/..."), with a JSON
 * payload or NULL; the HTTP status, 0 when there was no answer. */
int load_http_do(struct load_http *h, const char *method, const char *path,
                 const char *payload);
/*
 * Every row of resource id's history (/v1/resources/ID/history, page by
 * page), oldest first, to cb until it returns non-zero.  0 all read, 1
 * stopped by cb, -1 a page could not be read.
 */
int load_history_each(struct load_http *h, const char *id,
                      int (*cb)(void *ctx, struct json_t *row), void *ctx);

#endif /* VSE_LOAD_H */
