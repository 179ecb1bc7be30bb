/*
 * cmd-machine.c - `vsectl machine validate` and `vsectl machine show`:
 * machine definitions on their own, without a store, so that a machine
 * file can be checked and drawn before any process uses it.
 */
#include <string.h>

#include "vsectl.h"

/* An argument that looks like a path is read as a file, else a name. */
static int is_path(const char *s)
{
    size_t n = strlen(s);

    return strchr(s, '/') != NULL ||
           (n > 5 && strcmp(s + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(s + n - 4, ".yml") == 0);
}

static void builtin_hint(struct vse_error *err)
{
    const char *const *names = vse_machine_builtin_names();
    size_t len;

    snprintf(err->hint, sizeof(err->hint), "built-in machines:");
    for (; names != NULL && *names != NULL; names++) {
        len = strlen(err->hint);
        snprintf(err->hint + len, sizeof(err->hint) - len, " %s", *names);
    }
    len = strlen(err->hint);
    snprintf(err->hint + len, sizeof(err->hint) - len,
             "; a file is named by a path with a '/' or a .yaml ending");
}

static size_t count(json_t *j)
{
    if (json_is_array(j))
        return json_array_size(j);
    if (json_is_object(j))
        return json_object_size(j);
    return 0;
}

/*
 * NEEDSWORK: vse.h has no accessors for the number of states, operations
 * and transitions, so count them in the JSON rendering.
 */
static void machine_counts(const vse_machine *m, size_t *s, size_t *o,
                           size_t *t)
{
    char *text = NULL;
    json_t *root;

    *s = *o = *t = 0;
    if (vse_machine_render(m, VSE_FORMAT_JSON, &text, NULL) < 0)
        return;
    root = json_loads(text, 0, NULL);
    vse_free(text);
    if (root == NULL)
        return;
    *s = count(json_object_get(root, "states"));
    *o = count(json_object_get(root, "operations"));
    if (*o == 0)
        *o = count(json_object_get(root, "ops"));
    *t = count(json_object_get(root, "transitions"));
    json_decref(root);
}

int cmd_machine_validate(int argc, char **argv, struct ctx *ctx)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {NULL, 0, 0, 0}};
    vse_machine *m = NULL;
    size_t s, o, t;
    int st;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", longopts);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        return usage_error(ctx, "unexpected option");
    }
    st = want_args(ctx, argc - optind, 1, 1);
    if (st != 0)
        return st;
    st = load_machine(argv[optind], &m);
    if (st != 0)
        return st;
    machine_counts(m, &s, &o, &t);
    printf("%s: machine %s version %d is valid (%zu states, %zu operations, "
           "%zu transitions)\n",
           argv[optind], vse_machine_name(m), vse_machine_version(m), s, o,
           t);
    vse_machine_free(m);
    return EXIT_DONE;
}

int cmd_machine_show(int argc, char **argv, struct ctx *ctx)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"format", required_argument,
                                              NULL, 'f'},
                                             {NULL, 0, 0, 0}};
    enum vse_format fmt = VSE_FORMAT_TABLE;
    struct vse_error err;
    vse_machine *m = NULL;
    const char *what;
    char *text = NULL;
    int st, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "f:", longopts);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == 'f') {
            fmt = vse_format_parse(optarg);
            if (fmt == 0)
                return usage_error(ctx,
                                   "unknown format '%s' (table, dot, "
                                   "mermaid or json)",
                                   optarg);
        }
    }
    st = want_args(ctx, argc - optind, 1, 1);
    if (st != 0)
        return st;
    what = argv[optind];
    vse_error_clear(&err);
    if (is_path(what)) {
        st = load_machine(what, &m);
        if (st != 0)
            return st;
    } else {
        st = check_name(ctx, "machine name", what);
        if (st != 0)
            return st;
        /* A machine from --machines wins over a built-in of that name,
         * as it would in a store opened with the same options. */
        st = ctx_load_machines(ctx);
        if (st != 0)
            return st;
        for (int i = 0; i < ctx->nmachines && m == NULL; i++) {
            if (strcmp(vse_machine_name(ctx->machines[i]), what) == 0) {
                m = ctx->machines[i];
                ctx->machines[i] = ctx->machines[--ctx->nmachines];
            }
        }
        if (m == NULL) {
            rc = vse_machine_builtin(what, &m, &err);
            if (rc < 0) {
                if (err.hint[0] == '\0')
                    builtin_hint(&err);
                return report(rc, &err);
            }
        }
    }
    rc = vse_machine_render(m, fmt, &text, &err);
    vse_machine_free(m);
    if (rc < 0)
        return report(rc, &err);
    fputs(text, stdout);
    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        fputc('\n', stdout);
    vse_free(text);
    return EXIT_DONE;
}

struct blockers {
    json_t *list; /* --json: the array; else NULL and lines on stdout */
};

static void print_blocker(void *arg, const struct vse_upgrade_blocker *b)
{
    struct blockers *bl = arg;

    if (bl->list != NULL) {
        json_array_append_new(bl->list,
                              json_pack("{s:s, s:s, s:o, s:s}", "resource",
                                        b->resource, "state", b->state, "op",
                                        jstr(b->op), "reason", b->reason));
        return;
    }
    printf("%s: %s\n", b->resource, b->reason);
}

static const char *upgrade_result(int rc, const struct vse_upgrade_info *in)
{
    if (rc == VSE_REPEATED)
        return "unchanged";
    if (rc < 0)
        return "refused";
    return in->from_version == 0 ? "pinned" : "upgraded";
}

/*
 * `vsectl machine upgrade FILE`: the store is opened bare - no built-in
 * machine is checked - so that a store whose pins are newer than this
 * vsectl's built-ins can still be upgraded further.
 */
int cmd_machine_upgrade(int argc, char **argv, struct ctx *ctx)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"json", no_argument, NULL, 'j'},
                                             {NULL, 0, 0, 0}};
    struct blockers bl = {NULL};
    struct vse_upgrade_info info;
    struct vse_error err;
    vse_machine *m = NULL;
    char actor[VSE_ID_MAX + 300], name[VSE_NAME_MAX + 1];
    int json = 0, st, rc;

    for (;;) {
        int c = next_opt(ctx, argc, argv, "", longopts);

        if (c == -1)
            break;
        if (c < -1)
            return stop_status(c);
        if (c == 'j')
            json = 1;
    }
    st = want_args(ctx, argc - optind, 1, 1);
    if (st == 0)
        st = ctx_need_store(ctx);
    if (st != 0)
        return st;
    if (ctx->nmachine_files > 0)
        return usage_error(ctx, "machine upgrade takes the machine as FILE, "
                                "not --machines");
    /* A bad file must not even open the store.  A name that is not a
     * path is this vsectl's built-in of that name. */
    if (is_path(argv[optind])) {
        st = load_machine(argv[optind], &m);
        if (st != 0)
            return st;
    } else {
        st = check_name(ctx, "machine name", argv[optind]);
        if (st != 0)
            return st;
        vse_error_clear(&err);
        rc = vse_machine_builtin(argv[optind], &m, &err);
        if (rc < 0) {
            if (err.hint[0] == '\0')
                builtin_hint(&err);
            return report(rc, &err);
        }
    }
    snprintf(name, sizeof(name), "%s", vse_machine_name(m));
    vse_error_clear(&err);
    rc = vse_open_bare(ctx->store_url, &ctx->db, &err);
    if (rc < 0) {
        vse_machine_free(m);
        ctx->db = NULL;
        return report(rc, &err);
    }
    if (json)
        bl.list = json_array();
    memset(&info, 0, sizeof(info));
    default_actor(actor, sizeof(actor));
    actor[VSE_ID_MAX] = '\0';
    rc = vse_upgrade_machine(ctx->db, m, actor, print_blocker, &bl, &info,
                             &err);
    if (json)
        print_json(
            json_pack("{s:s, s:s, s:i, s:o, s:i, s:s, s:o, s:I, s:o}",
                      "machine", name, "result", upgrade_result(rc, &info),
                      "from_version", info.from_version, "from_hash",
                      jstr(info.from_hash), "to_version", info.to_version,
                      "to_hash", info.to_hash, "changes", jstr(info.changes),
                      "seq", (json_int_t)info.seq, "blockers", bl.list));
    if (rc < 0)
        return report(rc, &err);
    if (json)
        return EXIT_DONE;
    if (rc == VSE_REPEATED)
        printf("machine %s version %d (hash %s) is pinned already: "
               "nothing changed\n",
               name, info.to_version, info.to_hash);
    else if (info.from_version == 0)
        printf("machine %s version %d (hash %s) pinned: the store had no "
               "pin of it\n",
               name, info.to_version, info.to_hash);
    else
        printf("machine %s upgraded from version %d to %d (hash %s -> %s)\n"
               "  changes: %s\n",
               name, info.from_version, info.to_version, info.from_hash,
               info.to_hash, info.changes);
    return EXIT_DONE;
}
