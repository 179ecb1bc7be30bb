/*
 * load.h - what the two halves of vse-load share: the record of one HTTP
 * request, the outcome of one accepted request, and the report writer
 * (report.c) that turns them into report.json, report.txt and the plots.
 */
#ifndef VSE_LOAD_H
#define VSE_LOAD_H

#include <stddef.h>
#include <stdint.h>

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
    OP_COUNT
};
extern const char *const load_op_names[OP_COUNT];

/* Why a request was not accepted, from its status and body. */
enum load_reason {
    RS_NONE,          /* accepted (2xx) */
    RS_BUSY,          /* 400: an operation is in flight on it */
    RS_STATUS,        /* 400: at rest, but in a status the op may not
                         start from */
    RS_SNAPSHOTS,     /* 400: a volume with snapshots is not deleted */
    RS_SIZE,          /* 400: extend to a size not above the current */
    RS_BAD_INPUT,     /* 400: anything else */
    RS_LOST_RACE,     /* 409: the op_id changed between read and write */
    RS_NOT_FOUND,     /* 404 */
    RS_SERVER,        /* 5xx */
    RS_TRANSPORT,     /* no HTTP answer at all */
    RS_OTHER,
    RS_COUNT
};
extern const char *const load_reason_names[RS_COUNT];

/* One HTTP request as the client saw it. */
struct load_rec {
    int64_t start_us; /* since the run began */
    int32_t latency_us;
    int16_t status;   /* HTTP status, 0 when there was none */
    uint8_t op;       /* enum load_op */
    uint8_t reason;   /* enum load_reason */
};

/* What became of one request answered 202. */
struct load_outcome {
    uint8_t op;
    char outcome[24];   /* settled status ("available", "deleted", ...),
                           or "unresolved" past the deadline */
    int64_t settle_us;  /* from the answer to the settled status */
};

struct load_report {
    const char *workload;
    const char *url;
    int clients;
    double seconds;    /* asked for */
    double elapsed;    /* measured, load phase only */
    double settle_s;   /* time the drain took */
    struct load_rec *recs;
    size_t nrecs;
    struct load_outcome *outs;
    size_t nouts;
};

/* Write report.json, report.txt, timeline.tsv and (with gnuplot) the
 * plots into `dir`, which exists.  Prints report.txt on stdout too.
 * Returns the number of violations found (accepted requests that never
 * settled), or -1 if a file cannot be written. */
int load_report_write(const struct load_report *r, const char *dir);

#endif /* VSE_LOAD_H */
