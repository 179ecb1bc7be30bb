/*
 * holdrace.c - holds under a race: snapper processes create snaps that
 * hold a disk shared while deleter processes begin deletes of the same
 * disks (refused while any hold is on them).  A snapper that got its hold
 * then reads the disk, and a deleter that got its delete reads the
 * holds: a disk being deleted under a live hold is the race the store's
 * transaction must exclude.  At the end no hold is left and vse_check
 * finds nothing.
 *
 * usage: holdrace --store URL [--procs N] [--disks D] [--attempts A]
 * Exit 0 clean, 1 a violation (printed), 2 setup failed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vse.h"

static const char disk_yaml[] =
    "machine: disk\nversion: 1\nstates:\n"
    "  creating: {kind: busy, status: creating}\n"
    "  ready: {kind: rest, status: ready}\n"
    "  deleting: {kind: busy, status: deleting}\n"
    "  deleted: {kind: rest, status: deleted}\n"
    "  error: {kind: rest, status: error}\n"
    "operations:\n"
    "  create: {from: new, steps: [creating], success: ready,\n"
    "           failure: error, on_expiry: fail}\n"
    "  delete: {from: [ready, error], steps: [deleting], success: deleted,\n"
    "           failure: error, on_expiry: fail,\n"
    "           refused_while_held: [shared, exclusive]}\n";
static const char snap_yaml[] =
    "machine: snap\nversion: 1\nstates:\n"
    "  creating: {kind: busy, status: creating}\n"
    "  ready: {kind: rest, status: ready}\n"
    "  error: {kind: rest, status: error}\n"
    "operations:\n"
    "  create: {from: new, steps: [creating], success: ready,\n"
    "           failure: error, on_expiry: fail,\n"
    "           holds: {machine: disk, mode: shared}}\n";

static const char *url;
static int nprocs = 4, ndisks = 2, attempts = 400;

static void die(const char *what, const struct vse_error *e)
{
    fprintf(stderr, "holdrace: %s: %s (%s)\n", what, e->msg, e->detail);
    exit(2);
}

static vse_db *open_db(void)
{
    const char *texts[] = {disk_yaml, snap_yaml};
    struct vse_error e;
    vse_db *db;

    if (vse_open(url, &db, &e) != 0)
        die("open", &e);
    for (int i = 0; i < 2; i++) {
        vse_machine *m;

        if (vse_machine_load_buffer(i ? "snap.yaml" : "disk.yaml", texts[i],
                                    strlen(texts[i]), NULL, NULL, &m,
                                    &e) != 0 ||
            vse_add_machine(db, m, &e) != 0)
            die("add machine", &e);
    }
    return db;
}

static int count_hold(void *ctx, const struct vse_hold *h)
{
    (void)h;
    ++*(int *)ctx;
    return 0;
}

/*
 * A refusal is an answer; so is a fence (another deleter's reset-state
 * ends whatever delete runs).  A store error is not a violation, but the
 * run cannot judge it.
 */
static int check_rc(int rc, const char *what, const struct vse_error *e)
{
    if (rc == 0 || rc == VSE_ECONFLICT || rc == VSE_EBUSY ||
        rc == VSE_EFENCED)
        return rc;
    fprintf(stderr, "holdrace: %s: %s: %s\n", what, vse_err_name(rc), e->msg);
    exit(2);
}

static int snapper(int p)
{
    vse_db *db = open_db();
    unsigned seed = (unsigned)p * 7919u;
    int bad = 0;

    for (int n = 0; n < attempts && !bad; n++) {
        char sid[64], did[32];
        struct vse_opts o = {.owner = "snapper"};
        struct vse_resource s, d;
        struct vse_error e;
        int rc;

        snprintf(did, sizeof(did), "d%d", (int)(rand_r(&seed) % ndisks));
        snprintf(sid, sizeof(sid), "s-%d-%d", p, n);
        o.hold = did;
        rc = check_rc(vse_create(db, "snap", sid, &o, &s, &e), "create", &e);
        if (rc != 0)
            continue;
        rc = vse_get(db, did, &d, &e);
        if (rc != 0)
            die("get disk", &e);
        if (strcmp(d.op, "delete") == 0 || strcmp(d.state, "deleted") == 0) {
            fprintf(stderr,
                    "holdrace: VIOLATION: %s holds %s, which is %s (op %s)\n",
                    sid, did, d.state, d.op);
            bad = 1;
        }
        check_rc(vse_finish(db, sid, s.op_id, NULL, NULL, NULL, &e), "finish",
                 &e);
    }
    vse_close(db);
    return bad;
}

static int deleter(int p)
{
    vse_db *db = open_db();
    unsigned seed = (unsigned)p * 104729u;
    int bad = 0;

    for (int n = 0; n < attempts && !bad; n++) {
        struct vse_opts o = {.owner = "deleter"};
        struct vse_opts why = {.reason = "holdrace: undo the delete"};
        struct vse_resource d, cur;
        struct vse_error e;
        char did[32];
        int held = 0, rc;

        snprintf(did, sizeof(did), "d%d", (int)(rand_r(&seed) % ndisks));
        rc = check_rc(vse_begin(db, did, "delete", &o, &d, &e), "delete", &e);
        if (rc != 0)
            continue;
        if (vse_holds(db, did, NULL, count_hold, &held, &e) != 0)
            die("holds", &e);
        /* Holds seen while our delete still runs (no reset ended it in
         * between, which would let a hold in legitimately). */
        if (held != 0 && vse_get(db, did, &cur, &e) == 0 &&
            strcmp(cur.op_id, d.op_id) == 0) {
            fprintf(stderr,
                    "holdrace: VIOLATION: delete of %s began with %d "
                    "holds on it\n",
                    did, held);
            bad = 1;
        }
        /* Undo: fail it, and put the disk back for the next round. */
        check_rc(vse_fail(db, did, d.op_id, &why, NULL, &e), "fail", &e);
        check_rc(vse_reset_state(db, did, "ready", &why, NULL, &e), "reset",
                 &e);
    }
    vse_close(db);
    return bad;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"store", required_argument, NULL, 's'},
        {"procs", required_argument, NULL, 'p'},
        {"disks", required_argument, NULL, 'd'},
        {"attempts", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0}};
    struct vse_error e;
    int c, failed = 0, holds = 0;
    int64_t violations = 0;
    vse_db *db;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's')
            url = optarg;
        else if (c == 'p')
            nprocs = atoi(optarg);
        else if (c == 'd')
            ndisks = atoi(optarg);
        else if (c == 'a')
            attempts = atoi(optarg);
        else
            return 2;
    }
    if (url == NULL || nprocs < 2 || ndisks < 1 || attempts < 1) {
        fprintf(stderr, "usage: holdrace --store URL [--procs N>=2] "
                        "[--disks D] [--attempts A]\n");
        return 2;
    }
    db = open_db();
    for (int i = 0; i < ndisks; i++) {
        struct vse_opts o = {.owner = "setup"};
        struct vse_resource r;
        char did[32];

        snprintf(did, sizeof(did), "d%d", i);
        if (vse_create(db, "disk", did, &o, &r, &e) != 0 ||
            vse_finish(db, did, r.op_id, NULL, NULL, NULL, &e) != 0)
            die("create disk", &e);
    }
    /* No store client threads across fork(): ZooKeeper's would leave a
     * child holding a libc lock only they could release. */
    vse_close(db);
    fflush(NULL);
    for (int p = 0; p < nprocs; p++) {
        pid_t pid = fork();

        if (pid == 0)
            _exit(p % 2 ? deleter(p) : snapper(p));
        if (pid < 0)
            return 2;
    }
    for (int p = 0; p < nprocs; p++) {
        int st;

        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
    }
    db = open_db();
    if (vse_holds(db, NULL, NULL, count_hold, &holds, &e) != 0 ||
        vse_check(db, NULL, NULL, NULL, &violations, &e) != 0)
        die("final check", &e);
    if (holds != 0 || violations != 0) {
        fprintf(stderr, "holdrace: %d holds left, %lld violations\n", holds,
                (long long)violations);
        failed = 1;
    }
    vse_close(db);
    if (failed == 0)
        printf("holdrace: clean (%d processes, %d disks, %d attempts "
               "each)\n",
               nprocs, ndisks, attempts);
    return failed;
}
