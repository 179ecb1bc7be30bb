/*
 * vsectl.c - the operator's command-line tool: global options, the one
 * command table (as git.c's), per-command help, and the store handle the
 * commands share.  Each command lives in a cmd-*.c file as cmd_<name>().
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vsectl.h"

/*
 * Each command's --help is assembled from these parts in one fixed
 * order, so that every command reads the same way and man/vsectl.1 can
 * follow it section by section.
 */
struct cmd_doc {
    const char *usage;
    const char *desc;
    const char *options; /* the command's own; common ones are appended */
    const char *exits;
    const char *example;
};

#define EXITS_TRANSITION                                                     \
    "0 done (also when it was already done: a note goes\nto stderr), 1 "     \
    "store error, 2 bad input, 3 refused (conflict or fenced),\n4 no "       \
    "such resource."
#define EXITS_READ "0 done, 1 store error, 2 bad input, 4 no such resource."
#define OPT_REQID                                                            \
    "      --request-id R   idempotency key: a repeat with the same R is "   \
    "done\n"                                                                 \
    "      --attrs JSON     merge patch for the resource's attrs, applied "  \
    "in the\n                       same atomic change\n"
#define OPT_HOLD                                                             \
    "      --hold H         the resource the operation holds, when its "     \
    "machine\n                       declares 'holds' (docs/machines.md)\n"
#define OPT_JSON_RES                                                         \
    "      --json           print the resulting resource as one JSON "       \
    "object\n"
#define OPT_TTL                                                              \
    "      --ttl DURATION   lease length: seconds, or with a unit ms, s, "   \
    "m, h\n"                                                                 \
    "                       (default 60s)\n"
/* claim and renew: one lease, the op's own length unchanged. */
#define OPT_TTL_ONCE                                                         \
    "      --ttl DURATION   this lease's length: seconds, or with a unit "   \
    "ms, s,\n"                                                               \
    "                       m, h (default: the operation's lease length, "   \
    "set by\n"                                                               \
    "                       its begin, which stays)\n"

static const struct cmd_doc docs[] = {
    /* order and names match cmds[] below */
    {"vsectl machine validate FILE | show NAME|FILE [--format F] | upgrade "
     "FILE|NAME",
     "Work with machine definitions (YAML files).  validate and show do not "
     "open the\nstore; upgrade re-pins it to a newer version.  See 'vsectl "
     "machine SUB --help'.",
     "", "0 done, 1 error, 2 bad input or invalid machine.",
     "vsectl machine show volume --format mermaid"},
    {"vsectl machine validate FILE",
     "Load and check the machine file FILE.  Every problem is printed on "
     "stderr as\nFILE:LINE:COL: message.  A valid machine is summed up on "
     "stdout.",
     "", "0 valid, 2 invalid (or too large), 1 cannot read FILE.",
     "vsectl machine validate machines/volume.yaml"},
    {"vsectl machine show NAME|FILE [--format table|dot|mermaid|json]",
     "Print a machine's transition table, or its diagram as Graphviz DOT "
     "or Mermaid,\nor all of it as JSON.  NAME is a built-in machine (or one "
     "loaded with\n--machines); an argument that holds a '/' or ends in "
     ".yaml or .yml is a file.",
     "  -f, --format F       table (default), dot, mermaid or json\n",
     "0 done, 1 cannot read FILE, 2 invalid machine or format,\n4 no such "
     "machine.",
     "vsectl machine show volume --format dot | dot -Tsvg > volume.svg"},
    {"vsectl --store URL machine upgrade FILE|NAME [--json]",
     "Re-pin the store to FILE (or this vsectl's built-in machine NAME), a "
     "newer\nversion (a higher 'version') of a machine it pinned, while "
     "resources may be\nmid-operation.  Every resource of the machine must "
     "fit the new version: its\nstate exists there; an operation in flight "
     "exists there and is at one of its\nsteps.  Resources that do not are "
     "listed, one line each ('ID: why'), and\nnothing is changed.  Otherwise "
     "the pin is replaced and one history row of kind\n'upgrade' is written "
     "(see 'vsectl watch'), in one transaction with the check;\noperations "
     "in flight go on under the new version.  Prints what changed.\nProcesses "
     "still running the old definition keep it until they restart.",
     "      --json           print one JSON object (blockers as an "
     "array)\n",
     "0 done (also when FILE is pinned already), 1 store error, or FILE's "
     "version\nis not higher than the pin's (the same version changed, or "
     "a newer vse\npinned the store), 2 bad input or resources in the way, "
     "3 the pin kept\nchanging meanwhile.",
     "vsectl --store sqlite:/var/lib/vse/vse.db machine upgrade "
     "volume-v2.yaml"},
    {"vsectl create MACHINE ID [--owner O] [--ttl D] [--op OP] [--hold H] "
     "[--request-id R]",
     "Create resource ID of machine MACHINE, already inside its creating "
     "operation,\nand print the new op_id (the operation's fencing token) "
     "alone on stdout.",
     "      --owner O        who does the work (default: unowned, waiting "
     "for a claim)\n" OPT_TTL
     "      --op OP          the creating operation, when the machine has "
     "several\n" OPT_HOLD OPT_REQID OPT_JSON_RES,
     EXITS_TRANSITION " 3 also when ID exists.",
     "op=$(vsectl create volume vol-1 --owner api@host1)"},
    {"vsectl begin ID OP [--owner O] [--ttl D] [--hold H] [--request-id R]",
     "Begin operation OP on resource ID, which must be at rest in one of "
     "the states\nOP may start from.  Prints the new op_id alone on stdout. "
     " A refusal says what\nis in the way and what is allowed now.",
     "      --owner O        who does the work (default: unowned)\n" OPT_TTL
         OPT_HOLD OPT_REQID OPT_JSON_RES,
     EXITS_TRANSITION,
     "op=$(vsectl begin vol-1 delete --owner volume@host2)"},
    {"vsectl step ID OP_ID STATE [--release] [--request-id R]",
     "Move the operation OP_ID on resource ID to the busy state STATE, "
     "along an edge\nof its machine; this renews the lease.  With "
     "--release the op is handed off:\nits owner is cleared and another "
     "worker takes it with 'vsectl claim'.  Prints\nnothing unless --json.",
     "      --release        hand the op off (clear its owner) for a claim\n" OPT_REQID
         OPT_JSON_RES,
     EXITS_TRANSITION, "vsectl step vol-1 \"$op\" scheduling --release"},
    {"vsectl finish ID OP_ID [STATE] [--request-id R]",
     "End the operation OP_ID on resource ID in the rest state STATE (may "
     "be left out\nwhen the operation has one success state).  Prints "
     "nothing unless --json.",
     OPT_REQID OPT_JSON_RES, EXITS_TRANSITION,
     "vsectl finish vol-1 \"$op\" available"},
    {"vsectl fail ID OP_ID --reason R [--request-id R]",
     "End the operation OP_ID on resource ID in its failure state, "
     "recording REASON\n(up to 1023 bytes).  Prints nothing unless --json.",
     "      --reason R       why it failed (required)\n" OPT_REQID
         OPT_JSON_RES,
     EXITS_TRANSITION,
     "vsectl fail vol-1 \"$op\" --reason 'no space on host1'"},
    {"vsectl claim ID OP_ID --owner O [--ttl D] [--request-id R]",
     "Take over the operation OP_ID on resource ID: allowed when it has no "
     "owner (it\nwas handed off) or its lease expired on a step that may be "
     "retried.  Prints\nthe new op_id alone; the old one is fenced.",
     "      --owner O        the new owner (required)\n" OPT_TTL_ONCE
         OPT_REQID OPT_JSON_RES,
     EXITS_TRANSITION,
     "op=$(vsectl claim vol-1 \"$op\" --owner scheduler@host1)"},
    {"vsectl renew ID OP_ID [--ttl D] [--reason R] [--request-id R]",
     "Extend the lease of the operation OP_ID on resource ID (a heartbeat "
     "of its\nowner).  The version moves but no history row is written "
     "(the row shows the\nlease), unless --reason, --attrs or --request-id "
     "is given: a change worth\nrecording.  Prints nothing unless "
     "--json.",
     OPT_TTL_ONCE "      --reason R       record this renew in the history, "
                  "with R\n" OPT_REQID OPT_JSON_RES,
     EXITS_TRANSITION, "vsectl renew vol-1 \"$op\" --ttl 5m"},
    {"vsectl reset-state ID STATE --reason R [--actor A] [--request-id R]",
     "The operator's escape hatch: put resource ID in the rest state STATE "
     "with no\noperation in flight.  Any op_id in flight is fenced.  The "
     "reason and the actor\nare recorded in the history.",
     "      --reason R       why (required)\n"
     "      --actor A        who did it (default: $USER@hostname)\n" OPT_REQID
         OPT_JSON_RES,
     EXITS_TRANSITION,
     "vsectl reset-state vol-1 error --reason 'host1 lost its disk'"},
    {"vsectl update ID --attrs JSON [--request-id R] [--json]",
     "Change the attrs of resource ID (a JSON object kept with it) in any "
     "state, with\nno change of state or operation: --attrs is a JSON merge "
     "patch (RFC 7396):\nmembers are set, a null removes one.  One history "
     "row of kind update.  Every\ntransition also takes --attrs, applied in "
     "the same atomic change.",
     OPT_REQID OPT_JSON_RES, EXITS_TRANSITION,
     "vsectl update vol-1 --attrs '{\"name\":\"db\"}'"},
    {"vsectl migrate [--json]",
     "Bring the store's schema up to date (opening a store does that, in "
     "one\ntransaction; a newer schema is refused, unchanged) and print the "
     "schema version.",
     "      --json           print one JSON object\n",
     "0 done, 1 store error or newer schema, 2 bad input.",
     "vsectl --store postgresql://vse@db1/vse migrate"},
    {"vsectl reap [--json]",
     "Apply each expired lease's expiry policy once (retry: hand the step "
     "back for a\nclaim; fail; revert) and print what was done on one line.",
     "      --json           print the counts as one JSON object\n",
     "0 done, 1 store error, 2 bad input.", "vsectl reap"},
    {"vsectl purge [--older-than DURATION] [--keep-terminal]",
     "Remove history rows older than DURATION (default 30d; units s, m, h, "
     "d; a bare\nnumber is seconds), never a resource's latest row, and "
     "resources at rest in a\nterminal state untouched since then.",
     "      --older-than D   age limit (default 30d)\n"
     "      --keep-terminal  keep resources in terminal states\n"
     "      --json           print the counts as one JSON object\n",
     "0 done, 1 store error, 2 bad input.", "vsectl purge --older-than 7d"},
    {"vsectl check [ID] [--json] [--pool HOST=DIR]... [--stuck-after D]",
     "Check the invariants of every resource (or only ID): its history is a "
     "valid path\nof its machine, operations never overlapped, the version "
     "counts the history,\nthe row agrees with the last history row.  With "
     "--pool, also: every volume\navailable or in-use (and every snapshot "
     "available) on HOST has exactly one\nfile, in DIR, of its size; every "
     "file in DIR belongs to a volume or snapshot\nof HOST that is not "
     "deleted; the store's usage of HOST equals what its files\ntake, "
     "within capacity; a held volume or snapshot has the file its holder\n"
     "reads; a volume made from a snapshot or cloned sits on its source's "
     "host and\nno smaller than a snapshot it was made from.  Prints each violation as 'ID: message' and "
     "a summary.",
     "      --json           print one JSON object: violations and count\n"
     "      --pool HOST=DIR  the pool directory of volume host HOST "
     "(repeatable)\n"
     "      --stuck-after D  also a violation: a volume or snapshot busy "
     "with no\n"
     "                       transition for longer than D (lease + reap "
     "interval;\n"
     "                       units ms, s, m, h; a bare number is seconds)\n",
     "0 no violation, 1 violations found or store error,\n2 bad input, 4 no "
     "such resource.",
     "vsectl check --pool node1=/srv/vse-pool --stuck-after 40s"},
    {"vsectl get ID [--json]",
     "Print resource ID: its state, visible status, the operation in "
     "flight, owner,\nlease and version.  Times are RFC 3339 UTC.",
     "      --json           print one JSON object\n", EXITS_READ,
     "vsectl get vol-1 --json"},
    {"vsectl history ID [--since SEQ] [--limit N] [--json]",
     "Print the history of resource ID in version order: one row per "
     "committed\ntransition.",
     "      --since SEQ      only rows with a sequence number above SEQ\n"
     "      --limit N        at most N rows\n"
     "      --json           one JSON object per line\n",
     EXITS_READ, "vsectl history vol-1"},
    {"vsectl list [--machine M] [--state S] [--not-state S] [--busy] "
     "[--stuck]\n"
     "                   "
     "[--limit N] [--after ID] [--json]",
     "List resources in id order.",
     "      --machine M      only resources of machine M\n"
     "      --state S        only resources in state S\n"
     "      --not-state S    only resources not in state S (e.g. deleted)\n"
     "      --busy           only resources with an operation in flight\n"
     "      --stuck          only busy resources whose lease has expired, with\n"
     "                       EXPIRIES: the lease expiries of the op so far\n"
     "                       (its retry budget ends it after the attempts\n"
     "                       'machine show' lists)\n"
     "      --limit N        at most N resources\n"
     "      --after ID       start after ID (paging)\n"
     "      --json           one JSON object per line\n",
     "0 done, 1 store error, 2 bad input.", "vsectl list --stuck"},
    {"vsectl watch [--since SEQ] [--count N] [--timeout SECONDS]",
     "Print every event (committed transition) as one JSON line, in "
     "sequence order,\nfrom the first (or after SEQ), then follow new ones "
     "as they are committed.\nStops after N events, after SECONDS, or on "
     "SIGINT or SIGTERM.",
     "      --since SEQ      start after sequence number SEQ\n"
     "      --count N        stop after N events\n"
     "      --timeout D      stop after D (seconds, or with a unit)\n",
     "0 done (also when stopped by a signal or the timeout),\n1 store error, "
     "2 bad input.",
     "vsectl watch --since 120 --count 10"},
    {"vsectl bench --clients N --resources R --seconds S [--threads] "
     "[--json]",
     "Run N processes, each with its own store handle, doing attach and "
     "detach cycles\n(begin, step, finish) on R volumes bench-0 .. bench-R-1 "
     "for S seconds, and\nprint transitions, transitions per second, "
     "refusals and latency percentiles.\nWith --url, each process makes the "
     "same calls through vsed's /v1 API instead.",
     "      --clients N      client processes (default 1)\n"
     "      --resources R    volumes (default 1)\n"
     "      --seconds S      how long (default 5)\n"
     "      --threads        run the clients as threads of one process, each "
     "with its\n"
     "                       own store handle, as the raw programs in bench/ "
     "do\n"
     "                       (not with --url)\n"
     "      --json           print one JSON object\n",
     "0 done, 1 error, 2 bad input.",
     "vsectl --store sqlite:/tmp/b.db bench --clients 4 --resources 8 "
     "--seconds 5"},
};

static const struct cmd cmds[] = {
    {"machine", cmd_machine, "validate or show a machine definition", NULL},
    {"machine validate", cmd_machine_validate, "check a machine file", NULL},
    {"machine show", cmd_machine_show, "print a machine: table, dot, mermaid",
     NULL},
    {"machine upgrade", cmd_machine_upgrade,
     "re-pin the store to a newer version of a machine", NULL},
    {"create", cmd_create, "create a resource inside its creating operation",
     NULL},
    {"begin", cmd_begin, "begin an operation; prints its op_id", NULL},
    {"step", cmd_step, "move an operation to its next busy state", NULL},
    {"finish", cmd_finish, "end an operation in a rest state", NULL},
    {"fail", cmd_fail, "end an operation in its failure state", NULL},
    {"claim", cmd_claim, "take over an unowned or expired operation", NULL},
    {"renew", cmd_renew, "extend an operation's lease", NULL},
    {"reset-state", cmd_reset_state, "force a resource into a state (admin)",
     NULL},
    {"update", cmd_update, "change a resource's attrs, in any state", NULL},
    {"migrate", cmd_migrate, "bring the store's schema up to date", NULL},
    {"reap", cmd_reap, "apply the expiry policy of expired leases", NULL},
    {"purge", cmd_purge, "remove old history and terminal resources", NULL},
    {"check", cmd_check, "check the store's invariants", NULL},
    {"get", cmd_get, "show one resource", NULL},
    {"history", cmd_history, "show a resource's history", NULL},
    {"list", cmd_list, "list resources", NULL},
    {"watch", cmd_watch, "print events as they are committed", NULL},
    {"bench", cmd_bench, "measure transitions per second", NULL},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))
_Static_assert(sizeof(docs) / sizeof(docs[0]) == NCMDS,
               "one doc per command");

const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static const struct cmd_doc *find_doc(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &docs[i];
    return NULL;
}

static void print_main_help(FILE *f)
{
    fprintf(
        f,
        "Usage: vsectl [--store URL | --url URL] [--machines FILE] COMMAND "
        "[ARGS]\n"
        "\n"
        "vsectl reads and changes the state of resources kept by the "
        "volume state\nenforcer.  Every change is one atomic transition "
        "of the resource's machine;\na transition that is not allowed "
        "now is refused at once, with the reason.\n"
        "\nCommands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  %-18s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f,
            "\nGlobal options (before or after COMMAND):\n"
            "      --store URL      the store (default: $VSE_STORE, else "
            "%s)\n"
            "      --machines FILE  load another machine file (repeatable)\n"
            "      --url URL        speak to vsed at URL instead of a store\n"
            "      --token T        vsed token (default: $VSE_TOKEN)\n"
            "  -h, --help           show help ('vsectl help COMMAND' for a "
            "command's)\n"
            "      --version        print the version\n"
            "\nExit status: 0 done, 1 error, 2 usage or bad input, 3 refused "
            "(conflict or\nfenced), 4 not found.  See vsectl(1).\n",
            VSECTL_DEFAULT_STORE);
}

void print_cmd_help(const char *name)
{
    const struct cmd_doc *d = find_doc(name);

    if (d == NULL) {
        print_main_help(stdout);
        return;
    }
    printf("Usage: %s\n\n%s\n\nOptions:\n%s", d->usage, d->desc, d->options);
    printf("      --store URL      the store (default: $VSE_STORE, else "
           "%s)\n"
           "      --machines FILE  load another machine file (repeatable)\n"
           "      --url URL        speak to vsed at URL instead of a store\n"
           "      --token T        vsed token (default: $VSE_TOKEN)\n"
           "  -h, --help           show this help\n",
           VSECTL_DEFAULT_STORE);
    printf("\nExit status: %s\n\nExample:\n  %s\n", d->exits, d->example);
}

int usage_error(const struct ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("vsectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vsectl %s%s--help'.\n", ctx->cmd ? ctx->cmd : "",
            ctx->cmd ? " " : "");
    return EXIT_USAGE;
}

int want_args(const struct ctx *ctx, int have, int min, int max)
{
    if (have < min)
        return usage_error(ctx, "%s: missing argument%s", ctx->cmd,
                           min - have > 1 ? "s" : "");
    if (max >= 0 && have > max)
        return usage_error(ctx, "%s: too many arguments", ctx->cmd);
    return 0;
}

static int add_machine_file(struct ctx *ctx, const char *path)
{
    if (ctx->nmachine_files >= VSECTL_MACHINE_FILES_MAX)
        return usage_error(ctx, "too many --machines (the limit is %d)",
                           VSECTL_MACHINE_FILES_MAX);
    if (path[0] == '\0')
        return usage_error(ctx, "--machines needs a file name");
    ctx->machine_files[ctx->nmachine_files++] = path;
    return 0;
}

static const char *long_name(const struct option *longopts, int val)
{
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (o->val == val)
            return o->name;
    return NULL;
}

int next_opt(struct ctx *ctx, int argc, char **argv, const char *shortopts,
             const struct option *longopts)
{
    char spec[64];
    int c;
    const char *name;

    /* ':' first: a missing value is reported as ':' and not as '?', so
     * the two get different messages. */
    snprintf(spec, sizeof(spec), ":%sh", shortopts);
    opterr = 0;
    for (;;) {
        c = getopt_long(argc, argv, spec, longopts, NULL);
        switch (c) {
        case OPT_STORE: ctx->store_url = optarg; continue;
        case OPT_MACHINES:
            if (add_machine_file(ctx, optarg) != 0)
                return OPT_STOP_USAGE;
            continue;
        case OPT_URL: ctx->url = optarg; continue;
        case OPT_TOKEN: ctx->token = optarg; continue;
        case 'h': print_cmd_help(ctx->cmd); return OPT_STOP_DONE;
        case ':':
            name = long_name(longopts, optopt);
            if (name != NULL)
                usage_error(ctx, "option '--%s' needs a value", name);
            else
                usage_error(ctx, "option '-%c' needs a value", optopt);
            return OPT_STOP_USAGE;
        case '?':
            name = optopt ? long_name(longopts, optopt) : NULL;
            if (name != NULL && optopt >= 0x100)
                usage_error(ctx, "option '--%s' takes no value", name);
            else if (optopt > 0 && optopt < 0x100)
                usage_error(ctx, "unknown option '-%c'", optopt);
            else
                usage_error(ctx, "unknown option '%s'", argv[optind - 1]);
            return OPT_STOP_USAGE;
        default: return c;
        }
    }
}

/* Machine-file diagnostics go to stderr as they come, in file order. */
static void print_diag(void *arg, const char *file, int line, int col,
                       const char *msg)
{
    int *count = arg;

    (*count)++;
    fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
}

int load_machine(const char *path, vse_machine **out)
{
    struct vse_error err;
    int ndiag = 0;
    int rc;

    vse_error_clear(&err);
    rc = vse_machine_load_file(path, print_diag, &ndiag, out, &err);
    if (rc >= 0)
        return 0;
    *out = NULL;
    if (ndiag > 0 && rc == VSE_EMACHINE) {
        warnx_("'%s' is not a valid machine (%d problem%s)", path, ndiag,
               ndiag == 1 ? "" : "s");
        return vse_err_exit_status(rc);
    }
    return report(rc, &err);
}

int ctx_load_machines(struct ctx *ctx)
{
    while (ctx->nmachines < ctx->nmachine_files) {
        int i = ctx->nmachines;
        int st = load_machine(ctx->machine_files[i], &ctx->machines[i]);

        if (st != 0)
            return st;
        ctx->nmachines++;
    }
    return 0;
}

int ctx_open(struct ctx *ctx)
{
    struct vse_error err;
    int st, rc;

    if (ctx->url != NULL) {
        if (ctx->nmachine_files > 0)
            return usage_error(ctx, "--machines works with --store only: "
                                    "vsed has its own machines");
        return client_http_open(ctx);
    }
    ctx->ops = &client_lib;
    /* Machine files first: a bad file must not even open the store. */
    st = ctx_load_machines(ctx);
    if (st != 0)
        return st;
    vse_error_clear(&err);
    rc = vse_open(ctx->store_url, &ctx->db, &err);
    if (rc < 0) {
        ctx->db = NULL;
        return report(rc, &err);
    }
    for (int i = 0; i < ctx->nmachines; i++) {
        vse_machine *m = ctx->machines[i];

        ctx->machines[i] = NULL; /* vse_add_machine owns it now */
        vse_error_clear(&err);
        rc = vse_add_machine(ctx->db, m, &err);
        if (rc < 0) {
            for (int j = i + 1; j < ctx->nmachines; j++) {
                vse_machine_free(ctx->machines[j]);
                ctx->machines[j] = NULL;
            }
            ctx->nmachines = 0;
            return report(rc, &err);
        }
    }
    ctx->nmachines = 0;
    return 0;
}

void ctx_close(struct ctx *ctx)
{
    for (int i = 0; i < ctx->nmachines; i++)
        vse_machine_free(ctx->machines[i]);
    ctx->nmachines = 0;
    if (ctx->ops != NULL)
        ctx->ops->close(ctx);
    vse_close(ctx->db);
    ctx->db = NULL;
    free(ctx->url_buf);
    ctx->url_buf = NULL;
}

int ctx_need_store(struct ctx *ctx)
{
    if (ctx->url != NULL)
        return usage_error(ctx, "%s works with --store only, not --url",
                           ctx->cmd);
    return 0;
}

/* `vsectl help [CMD [SUB]]` */
static int cmd_help(int argc, char **argv)
{
    char name[64];

    if (argc < 2) {
        print_main_help(stdout);
        return out_finish(EXIT_DONE);
    }
    if (argc >= 3)
        snprintf(name, sizeof(name), "%s %s", argv[1], argv[2]);
    else
        snprintf(name, sizeof(name), "%s", argv[1]);
    if (find_cmd(name) == NULL) {
        warnx_("'%s' is not a vsectl command", name);
        fprintf(stderr, "Try 'vsectl --help'.\n");
        return EXIT_USAGE;
    }
    print_cmd_help(name);
    return out_finish(EXIT_DONE);
}

/* Global options before the command name; returns the index of the
 * command name, or -1 - exit status. */
static int global_opts(struct ctx *ctx, int argc, char **argv)
{
    int i = 1;

    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0)
            return i + 1;
        if (strcmp(a, "--store") == 0 || strcmp(a, "--machines") == 0 ||
            strcmp(a, "--url") == 0 || strcmp(a, "--token") == 0) {
            if (i + 1 >= argc) {
                usage_error(ctx, "option '%s' needs a value", a);
                return -1 - EXIT_USAGE;
            }
            if (a[2] == 's')
                ctx->store_url = argv[i + 1];
            else if (a[2] == 'u')
                ctx->url = argv[i + 1];
            else if (a[2] == 't')
                ctx->token = argv[i + 1];
            else if (add_machine_file(ctx, argv[i + 1]) != 0)
                return -1 - EXIT_USAGE;
            i += 2;
        } else if (strncmp(a, "--url=", 6) == 0) {
            ctx->url = a + 6;
            i++;
        } else if (strncmp(a, "--token=", 8) == 0) {
            ctx->token = a + 8;
            i++;
        } else if (strncmp(a, "--store=", 8) == 0) {
            ctx->store_url = a + 8;
            i++;
        } else if (strncmp(a, "--machines=", 11) == 0) {
            if (add_machine_file(ctx, a + 11) != 0)
                return -1 - EXIT_USAGE;
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_main_help(stdout);
            return -1 - out_finish(EXIT_DONE);
        } else if (strcmp(a, "--version") == 0) {
            printf("vsectl %s\n", VSE_VERSION_STRING);
            return -1 - out_finish(EXIT_DONE);
        } else {
            usage_error(ctx, "unknown option '%s'", a);
            return -1 - EXIT_USAGE;
        }
    }
    return i;
}

int main(int argc, char **argv)
{
    struct ctx ctx;
    const struct cmd *c;
    const char *env = getenv("VSE_STORE");
    int i, st;

    /* A closed stdout (vsectl list | head -1) is a write error we see
     * and end on quietly, not a signal that kills us mid-line. */
    signal(SIGPIPE, SIG_IGN);
    memset(&ctx, 0, sizeof(ctx));
    ctx.store_url = env != NULL && env[0] != '\0' ? env
                                                  : VSECTL_DEFAULT_STORE;
    env = getenv("VSE_TOKEN");
    ctx.token = env != NULL && env[0] != '\0' ? env : NULL;

    i = global_opts(&ctx, argc, argv);
    if (i < 0)
        return -1 - i;
    if (i >= argc) {
        print_main_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0)
        return cmd_help(argc - i, argv + i);
    c = find_cmd(argv[i]);
    if (c == NULL || strchr(c->name, ' ') != NULL) {
        warnx_("'%s' is not a vsectl command", argv[i]);
        fprintf(stderr, "Try 'vsectl --help'.\n");
        return EXIT_USAGE;
    }
    ctx.cmd = c->name;
    st = c->fn(argc - i, argv + i, &ctx);
    ctx_close(&ctx);
    return out_finish(st);
}

/* `vsectl machine SUB ...`: the subcommand picks the real command. */
int cmd_machine(int argc, char **argv, struct ctx *ctx)
{
    char name[64];
    const struct cmd *c;

    if (argc < 2)
        return usage_error(ctx, "machine: missing subcommand (validate, "
                                "show or upgrade)");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        print_cmd_help("machine");
        return EXIT_DONE;
    }
    snprintf(name, sizeof(name), "machine %s", argv[1]);
    c = find_cmd(name);
    if (c == NULL)
        return usage_error(ctx, "machine: unknown subcommand '%s'", argv[1]);
    ctx->cmd = c->name;
    return c->fn(argc - 1, argv + 1, ctx);
}
