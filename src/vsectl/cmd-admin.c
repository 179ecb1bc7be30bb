/*
 * cmd-admin.c - upkeep of a store: reap (apply the expiry policy of dead
 * owners' leases), purge (history retention) and check (the invariants
 * that the concurrency tests also assert, run against a live store).
 */
#include <inttypes.h>
#include <string.h>

#include "vsectl.h"

enum { OPT_JSON = OPT_FIRST_LOCAL, OPT_OLDER, OPT_KEEP, OPT_POOL, OPT_STUCK };

/* Options of a command whose only own option is --json. */
static int json_only(struct ctx *ctx, int argc, char **argv, int *json)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {NULL, 0, NULL, 0}};

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            return 0;
        if (c < -1)
            return c == OPT_STOP_DONE ? PARSE_HELP : EXIT_USAGE;
        if (c == OPT_JSON)
            *json = 1;
    }
}

int cmd_reap(int argc, char **argv, struct ctx *ctx)
{
    struct vse_reap_stats s;
    struct vse_error err;
    int json = 0, st, rc;

    st = json_only(ctx, argc, argv, &json);
    if (st != 0)
        return exit_of(st);
    st = want_args(ctx, argc - optind, 0, 0);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    memset(&s, 0, sizeof(s));
    vse_error_clear(&err);
    rc = ctx->ops->reap(ctx, &s, &err);
    if (rc < 0)
        return report(rc, &err);
    if (json)
        print_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                             "examined", (json_int_t)s.examined, "retried",
                             (json_int_t)s.retried, "failed",
                             (json_int_t)s.failed, "reverted",
                             (json_int_t)s.reverted, "skipped",
                             (json_int_t)s.skipped, "exhausted",
                             (json_int_t)s.exhausted, "unclaimed",
                             (json_int_t)s.unclaimed));
    else
        printf("reap: %" PRId64 " expired, %" PRId64 " retried, %" PRId64
               " failed, %" PRId64 " reverted, %" PRId64 " skipped, %" PRId64
               " out of attempts, %" PRId64 " not claimed in time\n",
               s.examined, s.retried, s.failed, s.reverted, s.skipped,
               s.exhausted, s.unclaimed);
    return EXIT_DONE;
}

#define PURGE_DEFAULT_MS (INT64_C(30) * 86400 * 1000)

int cmd_purge(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"json", no_argument, NULL, OPT_JSON},
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"keep-terminal", no_argument, NULL, OPT_KEEP},
        {NULL, 0, NULL, 0}};
    struct vse_purge_stats s;
    struct vse_error err;
    int64_t older_ms = PURGE_DEFAULT_MS;
    int json = 0, keep = 0, st = 0, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == OPT_JSON)
            json = 1;
        else if (c == OPT_KEEP)
            keep = 1;
        else if (c == OPT_OLDER)
            st = parse_duration(ctx, "--older-than", optarg, 1000, &older_ms);
        if (st != 0)
            return st;
    }
    st = want_args(ctx, argc - optind, 0, 0);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    memset(&s, 0, sizeof(s));
    vse_error_clear(&err);
    rc = ctx->ops->purge(ctx, older_ms, keep, &s, &err);
    if (rc < 0)
        return report(rc, &err);
    if (json)
        print_json(json_pack("{s:I, s:I}", "history_rows",
                             (json_int_t)s.history_rows, "resources",
                             (json_int_t)s.resources));
    else
        printf("purge: %" PRId64 " history rows, %" PRId64 " resources "
               "removed\n",
               s.history_rows, s.resources);
    return EXIT_DONE;
}

struct violations {
    int json;
    json_t *list;
};

static void on_violation(void *arg, const char *id, const char *msg)
{
    struct violations *v = arg;

    if (v->json)
        json_array_append_new(v->list, json_pack("{s:o, s:o}", "id", jstr(id),
                                                 "message", jstr(msg)));
    else
        printf("%s: %s\n", id[0] ? id : "(store)", msg);
}

/* One --pool HOST=DIR into p; 0 or exit status. */
static int parse_pool(const struct ctx *ctx, char *arg, struct check_pool *p)
{
    char *eq = strchr(arg, '=');
    struct vse_error e;

    if (eq == NULL || eq == arg || eq[1] == '\0')
        return usage_error(ctx, "--pool wants HOST=DIR, not '%s'", arg);
    *eq = '\0';
    p->host = arg;
    vse_error_clear(&e);
    if (vsed_driver_inspect(&p->drv, eq + 1, &e) < 0) {
        warnx_("%s: %s", e.msg, e.detail);
        return EXIT_USAGE;
    }
    return 0;
}

static int check_opts(struct ctx *ctx, int argc, char **argv,
                      struct violations *v, struct check_pool *pools,
                      int *npools, int64_t *stuck_ms)
{
    static const struct option lo[] = {
        COMMON_LONGOPTS,
        {"json", no_argument, NULL, OPT_JSON},
        {"pool", required_argument, NULL, OPT_POOL},
        {"stuck-after", required_argument, NULL, OPT_STUCK},
        {NULL, 0, NULL, 0}};
    int st = 0;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", lo);

        if (c == -1)
            return 0;
        if (c < -1)
            return c == OPT_STOP_DONE ? PARSE_HELP : EXIT_USAGE;
        if (c == OPT_JSON)
            v->json = 1;
        else if (c == OPT_POOL && *npools == CHECK_POOLS_MAX)
            st = usage_error(ctx, "too many --pool (the limit is %d)",
                             CHECK_POOLS_MAX);
        else if (c == OPT_POOL)
            st = parse_pool(ctx, optarg, &pools[(*npools)++]);
        else if (c == OPT_STUCK)
            st = parse_duration(ctx, "--stuck-after", optarg, 1000, stuck_ms);
        if (st != 0)
            return st;
    }
}

int cmd_check(int argc, char **argv, struct ctx *ctx)
{
    struct violations v = {0, NULL};
    struct check_pool pools[CHECK_POOLS_MAX];
    struct vse_error err;
    const char *id = NULL;
    int64_t n = 0, more = 0, stuck_ms = 0;
    int st, rc, npools = 0;

    st = check_opts(ctx, argc, argv, &v, pools, &npools, &stuck_ms);
    if (st != 0)
        return exit_of(st);
    st = want_args(ctx, argc - optind, 0, 1);
    if (st == 0 && argc - optind == 1) {
        id = argv[optind];
        st = check_id(ctx, "resource id", id);
    }
    if (st == 0 && id != NULL && (npools > 0 || stuck_ms > 0))
        st = usage_error(ctx, "--pool and --stuck-after check the whole "
                              "store, not one ID");
    if (st == 0)
        st = ctx_need_store(ctx);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    v.list = json_array();
    vse_error_clear(&err);
    rc = vse_check(ctx->db, id, on_violation, &v, &n, &err);
    if (rc == 0 && (npools > 0 || stuck_ms > 0))
        rc = check_pools(ctx->db, pools, npools, stuck_ms, on_violation, &v,
                         &more, &err);
    if (rc < 0) {
        json_decref(v.list);
        return report(rc, &err);
    }
    n += more;
    if (v.json)
        print_json(json_pack("{s:o, s:I}", "violations", v.list, "count",
                             (json_int_t)n));
    else {
        json_decref(v.list);
        printf("check: %" PRId64 " violation%s found\n", n,
               n == 1 ? "" : "s");
    }
    return n > 0 ? EXIT_ERROR : EXIT_DONE;
}

/*
 * `vsectl migrate`: opening a store brings an older schema up to date
 * (in one transaction) or refuses a newer one, so this opens it and says
 * where it stands.
 */
int cmd_migrate(int argc, char **argv, struct ctx *ctx)
{
    int json = 0, st;

    st = json_only(ctx, argc, argv, &json);
    if (st != 0)
        return exit_of(st);
    st = want_args(ctx, argc - optind, 0, 0);
    if (st == 0)
        st = ctx_need_store(ctx);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return st;
    if (json)
        print_json(json_pack("{s:s, s:i}", "store", ctx->store_url,
                             "schema_version", VSE_SCHEMA_VERSION));
    else
        printf("migrate: the store is at schema version %d, the current "
               "one\n",
               VSE_SCHEMA_VERSION);
    return EXIT_DONE;
}
