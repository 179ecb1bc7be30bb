/*
 * vsectl.h - what vsectl's command files share: the context every command
 * gets, the command table entry, option parsing helpers and the output
 * helpers of out.c.  vsectl uses only the public vse.h, plus jansson,
 * and the driver's file naming for `check --pool`.
 */
#ifndef VSECTL_H
#define VSECTL_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "client.h"
#include "driver.h"
#include "vse.h"

#define VSECTL_DEFAULT_STORE "sqlite:./var/vse.db"
#define VSECTL_MACHINE_FILES_MAX 32

/* Exit statuses: DESIGN §7, the same as vse_err_exit_status(). */
enum {
    EXIT_DONE = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_REFUSED = 3,
    EXIT_NOTFOUND = 4
};

struct ctx {
    const char *cmd; /* "step", "machine show": for messages */
    const char *store_url;
    const char *machine_files[VSECTL_MACHINE_FILES_MAX];
    int nmachine_files;
    /* Loaded from machine_files by ctx_load_machines(); ownership moves
     * to db in ctx_open(). */
    vse_machine *machines[VSECTL_MACHINE_FILES_MAX];
    int nmachines;
    vse_db *db;
    /* --url: vsed's API instead of a store (client-http.c). */
    const char *url;
    char *url_buf;
    const char *token; /* --token, else $VSE_TOKEN */
    void *http;        /* CURL * */
    /* How commands reach the enforcer; set by ctx_open(). */
    const struct client_ops *ops;
};

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv, struct ctx *ctx);
    const char *summary; /* one line for `vsectl help` */
    const char *help;    /* the whole --help text */
};

/* Look up a command (or "machine validate" style subcommand) by name. */
const struct cmd *find_cmd(const char *name);

int cmd_machine(int argc, char **argv, struct ctx *ctx);
int cmd_machine_validate(int argc, char **argv, struct ctx *ctx);
int cmd_machine_show(int argc, char **argv, struct ctx *ctx);
int cmd_machine_upgrade(int argc, char **argv, struct ctx *ctx);
int cmd_create(int argc, char **argv, struct ctx *ctx);
int cmd_begin(int argc, char **argv, struct ctx *ctx);
int cmd_step(int argc, char **argv, struct ctx *ctx);
int cmd_finish(int argc, char **argv, struct ctx *ctx);
int cmd_fail(int argc, char **argv, struct ctx *ctx);
int cmd_claim(int argc, char **argv, struct ctx *ctx);
int cmd_renew(int argc, char **argv, struct ctx *ctx);
int cmd_reset_state(int argc, char **argv, struct ctx *ctx);
int cmd_reap(int argc, char **argv, struct ctx *ctx);
int cmd_update(int argc, char **argv, struct ctx *ctx);
int cmd_migrate(int argc, char **argv, struct ctx *ctx);
int cmd_purge(int argc, char **argv, struct ctx *ctx);
int cmd_check(int argc, char **argv, struct ctx *ctx);
int cmd_get(int argc, char **argv, struct ctx *ctx);
int cmd_history(int argc, char **argv, struct ctx *ctx);
int cmd_list(int argc, char **argv, struct ctx *ctx);
int cmd_watch(int argc, char **argv, struct ctx *ctx);
int cmd_bench(int argc, char **argv, struct ctx *ctx);

/* ---- vsectl check --pool, --stuck-after (check-pool.c) ------------- */

#define CHECK_POOLS_MAX 16

/* One --pool HOST=DIR: the pool of a volume host, read through the
 * driver's own naming (src/driver/driver.h). */
struct check_pool {
    const char *host;
    struct vsed_driver drv;
};

/*
 * Compare the volumes and snapshots in the store with the files in
 * `pools`, and (stuck_ms > 0) report busy ones whose last transition is
 * older than stuck_ms.  Each violation goes to cb; *count receives their
 * number.  0, or a library error code (listing failed).
 */
int check_pools(vse_db *db, const struct check_pool *pools, int npools,
                int64_t stuck_ms, vse_violation_fn cb, void *ctx,
                int64_t *count, struct vse_error *err);

/* ---- option parsing (vsectl.c) ------------------------------------- */

/* Long option values shared by every command; above any char. */
enum {
    OPT_STORE = 0x100,
    OPT_MACHINES,
    OPT_HELP,
    OPT_URL,
    OPT_TOKEN,
    OPT_FIRST_LOCAL = 0x200 /* commands number their own from here */
};

#define COMMON_LONGOPTS                                                      \
    {"store", required_argument, NULL, OPT_STORE},                           \
        {"machines", required_argument, NULL, OPT_MACHINES},                 \
        {"url", required_argument, NULL, OPT_URL},                           \
        {"token", required_argument, NULL, OPT_TOKEN},                       \
    {                                                                        \
        "help", no_argument, NULL, 'h'                                       \
    }

/* next_opt() results that end the command: --help was printed (exit 0),
 * or a usage error was (exit 2).  See stop_status(). */
#define OPT_STOP_DONE (-2)
#define OPT_STOP_USAGE (-3)
static inline int stop_status(int c)
{
    return c == OPT_STOP_DONE ? EXIT_DONE : EXIT_USAGE;
}
/* Helpers that parse return 0 to go on, -1 when --help was printed (so
 * the command ends with 0), or an exit status. */
#define PARSE_HELP (-1)
static inline int exit_of(int st)
{
    return st == PARSE_HELP ? EXIT_DONE : st;
}

/*
 * Run getopt_long over argv with `shortopts` (without the leading ':'
 * and 'h', which are added) and `longopts` (which must contain
 * COMMON_LONGOPTS).  Handles the common options itself.  Returns the
 * option for the command to handle, -1 at the end, or OPT_STOP_*.
 */
int next_opt(struct ctx *ctx, int argc, char **argv, const char *shortopts,
             const struct option *longopts);
/* Print "vsectl: <msg>" and "Try 'vsectl CMD --help'."; returns 2. */
int usage_error(const struct ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Check the positional count: between min and max (max -1: any). */
int want_args(const struct ctx *ctx, int have, int min, int max);
/* Print the --help text of ctx->cmd on stdout. */
void print_cmd_help(const char *name);

/* Load one machine file, diagnostics on stderr; 0 or exit status. */
int load_machine(const char *path, vse_machine **out);
/* Load --machines files (no store needed); exit status or 0. */
int ctx_load_machines(struct ctx *ctx);
/* Load --machines files, open the store, add the machines; 0 or exit
 * status (after printing the error). */
int ctx_open(struct ctx *ctx);
void ctx_close(struct ctx *ctx);
/* Commands that need a store itself (check, migrate): usage error with
 * --url.  0 or exit status. */
int ctx_need_store(struct ctx *ctx);

/* "$USER@hostname", for history rows an operator caused. */
void default_actor(char *buf, size_t size);

/* ---- argument checks (out.c): 0 or exit status, message printed ---- */

int check_id(const struct ctx *ctx, const char *what, const char *s);
int check_name(const struct ctx *ctx, const char *what, const char *s);
int check_op_id(const struct ctx *ctx, char *s);
int check_reason(const struct ctx *ctx, const char *s);
/* A strictly parsed integer in [min, max]. */
int parse_int(const struct ctx *ctx, const char *what, const char *s,
              int64_t min, int64_t max, int64_t *out);
/*
 * A positive duration: a number with an optional unit ms, s, m, h or d;
 * a bare number is in `unit_ms` units (1000 for seconds).  Result in ms.
 */
int parse_duration(const struct ctx *ctx, const char *what, const char *s,
                   int64_t unit_ms, int64_t *out_ms);

/* ---- output (out.c) -------------------------------------------------- */

/* Print a library error: "vsectl: msg", "  detail: ...", "  hint: ...".
 * Returns the exit status for rc. */
int report(int rc, const struct vse_error *err);
/* Print "vsectl: <msg>" on stderr. */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 if stdout has failed (closed pipe...): stop producing output. */
int out_failed(void);
/* Flush stdout; turn a write failure into exit status 1. */
int out_finish(int status);

/* A JSON string, or null when s is empty; never fails on bad UTF-8. */
json_t *jstr(const char *s);
/* RFC 3339 string, or null for 0. */
json_t *jtime(int64_t us);
json_t *resource_json(const char *status, const struct vse_resource *r);
json_t *event_json(const struct vse_event *e);
/* Print one compact JSON value and a newline; steals j. */
void print_json(json_t *j);
/* Human forms. */
void print_resource(const char *status, const struct vse_resource *r);
/* The holds among v[0..n) on r (held_by: lines) and r's own (holding:),
 * after print_resource(); nothing when there are none. */
void print_holds(const struct vse_resource *r, const struct vse_hold *v,
                 size_t n);
void print_history_header(void);
void print_history_row(const struct vse_event *e);
/* `expiries` < 0: the plain list, ending with a HOLDS column (the holds
 * among v[0..n) on or by r); otherwise list --stuck, ending with
 * EXPIRIES. */
void print_list_header(int expiries);
void print_list_row(const char *status, const struct vse_resource *r,
                    const struct vse_hold *v, size_t n, int64_t expiries);
/* Status of r per its machine ("" when unknown). */
const char *resource_status(vse_db *db, const struct vse_resource *r);
/* Print s padded with spaces to `width` display columns, then a space. */
void print_col(const char *s, int width);

#endif /* VSECTL_H */
