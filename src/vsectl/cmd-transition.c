/*
 * cmd-transition.c - the commands that change a resource: create, begin,
 * step, finish, fail, claim, renew and reset-state.  Each checks all of
 * its arguments first, then makes exactly one library call, which is one
 * atomic transition in the store.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsectl.h"

enum {
    OPT_OWNER = OPT_FIRST_LOCAL,
    OPT_TTL,
    OPT_OP,
    OPT_REQID,
    OPT_REASON,
    OPT_ACTOR,
    OPT_JSON,
    OPT_RELEASE,
    OPT_ATTRS
};

#define LOPT(name, has, val) {name, has, NULL, val}
#define L_OWNER LOPT("owner", required_argument, OPT_OWNER)
#define L_TTL LOPT("ttl", required_argument, OPT_TTL)
#define L_OP LOPT("op", required_argument, OPT_OP)
#define L_REQID LOPT("request-id", required_argument, OPT_REQID)
#define L_REASON LOPT("reason", required_argument, OPT_REASON)
#define L_ACTOR LOPT("actor", required_argument, OPT_ACTOR)
#define L_JSON LOPT("json", no_argument, OPT_JSON)
#define L_RELEASE LOPT("release", no_argument, OPT_RELEASE)
#define L_ATTRS LOPT("attrs", required_argument, OPT_ATTRS)
#define L_END {NULL, 0, NULL, 0}

struct targs {
    const char *owner;
    const char *op;
    const char *request_id;
    const char *reason;
    const char *actor;
    int64_t ttl_ms;
    int json;
    int release;
    const char *attrs;
    char **pos; /* positional arguments */
    int npos;
};

/*
 * Parse options and check each value as it comes; positional arguments
 * are counted here and checked by the command.  0, PARSE_HELP or an exit
 * status.
 */
static int parse(struct ctx *ctx, int argc, char **argv,
                 const struct option *longopts, int min, int max,
                 struct targs *a)
{
    int st = 0;

    memset(a, 0, sizeof(*a));
    for (;;) {
        int c = next_opt(ctx, argc, argv, "", longopts);

        if (c == -1)
            break;
        if (c < -1)
            return c == OPT_STOP_DONE ? PARSE_HELP : EXIT_USAGE;
        switch (c) {
        case OPT_OWNER:
            a->owner = optarg;
            st = check_id(ctx, "owner", optarg);
            break;
        case OPT_TTL:
            st = parse_duration(ctx, "--ttl", optarg, 1000, &a->ttl_ms);
            break;
        case OPT_OP:
            a->op = optarg;
            st = check_name(ctx, "operation", optarg);
            break;
        case OPT_REQID:
            a->request_id = optarg;
            st = check_id(ctx, "request id", optarg);
            break;
        case OPT_REASON:
            a->reason = optarg;
            st = check_reason(ctx, optarg);
            break;
        case OPT_ACTOR:
            a->actor = optarg;
            st = check_id(ctx, "actor", optarg);
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_RELEASE:
            a->release = 1;
            break;
        case OPT_ATTRS: {
            json_error_t je;
            json_t *j = json_loads(optarg, JSON_REJECT_DUPLICATES, &je);

            a->attrs = optarg;
            if (j == NULL)
                st = usage_error(ctx, "--attrs is not valid JSON: %s",
                                 je.text);
            else if (!json_is_object(j))
                st = usage_error(ctx, "--attrs must be a JSON object");
            json_decref(j);
            break;
        }
        default:
            st = usage_error(ctx, "unexpected option");
            break;
        }
        if (st != 0)
            return st;
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    return want_args(ctx, a->npos, min, max);
}

/* The visible status of the last transition's resource (one command per
 * process: one transition). */
static char status[VSE_STATUS_MAX + 1];

/* One transition through the client: libvse or vsed alike. */
static int run(struct ctx *ctx, enum vse_kind kind, const char *machine,
               const char *id, const char *op, const char *op_id,
               const char *to, const struct vse_opts *o,
               struct vse_resource *out, struct vse_error *err)
{
    struct tr t;

    memset(&t, 0, sizeof(t));
    t.kind = kind;
    t.machine = machine;
    t.id = id;
    t.op = op;
    t.op_id = op_id;
    t.to = to;
    t.o = *o;
    return ctx->ops->transition(ctx, &t, out, status, err);
}

static struct vse_opts opts_of(const struct targs *a)
{
    struct vse_opts o;

    memset(&o, 0, sizeof(o));
    o.owner = a->owner;
    o.ttl_ms = a->ttl_ms;
    o.request_id = a->request_id;
    o.reason = a->reason;
    o.op = a->op;
    o.release = a->release;
    o.attrs = a->attrs;
    return o;
}

/*
 * The common ending: a repeat is success with a note; a refusal or
 * error is reported; a new op_id is printed alone so that scripts can
 * write op=$(vsectl begin ...).
 */
static int done(struct ctx *ctx, int rc, const struct vse_error *err,
                const struct vse_resource *out, const struct targs *a,
                int print_op_id, const char *what)
{
    if (rc < 0)
        return report(rc, err);
    if (rc == VSE_REPEATED) {
        fflush(stdout);
        fprintf(stderr, "vsectl: already done (repeated): %s\n", what);
    }
    if (a->json)
        print_json(resource_json(status, out));
    else if (print_op_id)
        printf("%s\n", out->op_id);
    return EXIT_DONE;
}

int cmd_create(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_OWNER, L_TTL, L_OP,
                                       L_REQID, L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_name(ctx, "machine name", a.pos[0]);
    if (st == 0)
        st = check_id(ctx, "resource id", a.pos[1]);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_CREATE, a.pos[0], a.pos[1], NULL, NULL, NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "create %s '%s'", a.pos[0], a.pos[1]);
    return done(ctx, rc, &err, &out, &a, 1, what);
}

int cmd_begin(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_OWNER, L_TTL,
                                       L_REQID, L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_id(ctx, "resource id", a.pos[0]);
    if (st == 0)
        st = check_name(ctx, "operation", a.pos[1]);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_BEGIN, NULL, a.pos[0], a.pos[1], NULL, NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "begin %s on '%s'", a.pos[1], a.pos[0]);
    return done(ctx, rc, &err, &out, &a, 1, what);
}

/* ID OP_ID [STATE]: the shape of step, finish, fail, claim and renew. */
static int check_id_opid(struct ctx *ctx, struct targs *a, int nstate)
{
    int st = check_id(ctx, "resource id", a->pos[0]);

    if (st == 0)
        st = check_op_id(ctx, a->pos[1]);
    if (st == 0 && nstate && a->npos > 2)
        st = check_name(ctx, "state", a->pos[2]);
    return st;
}

int cmd_step(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_RELEASE, L_REQID,
                                       L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 3, 3, &a);
    if (st == 0)
        st = check_id_opid(ctx, &a, 1);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_STEP, NULL, a.pos[0], NULL, a.pos[1], a.pos[2],
             &o, &out, &err);
    snprintf(what, sizeof(what), "step '%s' to %s", a.pos[0], a.pos[2]);
    return done(ctx, rc, &err, &out, &a, 0, what);
}

int cmd_finish(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_REQID, L_JSON,
                                       L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    const char *to;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 3, &a);
    if (st == 0)
        st = check_id_opid(ctx, &a, 1);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    to = a.npos > 2 ? a.pos[2] : NULL;
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_FINISH, NULL, a.pos[0], NULL, a.pos[1], to, &o,
             &out, &err);
    snprintf(what, sizeof(what), "finish '%s'%s%s", a.pos[0],
             to ? " in " : "", to ? to : "");
    return done(ctx, rc, &err, &out, &a, 0, what);
}

int cmd_fail(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_REASON, L_REQID,
                                       L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_id_opid(ctx, &a, 0);
    if (st == 0 && a.reason == NULL)
        st = usage_error(ctx, "fail needs --reason");
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_FAIL, NULL, a.pos[0], NULL, a.pos[1], NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "fail '%s'", a.pos[0]);
    return done(ctx, rc, &err, &out, &a, 0, what);
}

int cmd_claim(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_OWNER, L_TTL,
                                       L_REQID, L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_id_opid(ctx, &a, 0);
    if (st == 0 && a.owner == NULL)
        st = usage_error(ctx, "claim needs --owner");
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_CLAIM, NULL, a.pos[0], NULL, a.pos[1], NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "claim '%s' by %s", a.pos[0], a.owner);
    return done(ctx, rc, &err, &out, &a, 1, what);
}

int cmd_renew(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_TTL, L_REQID,
                                       L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_id_opid(ctx, &a, 0);
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_RENEW, NULL, a.pos[0], NULL, a.pos[1], NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "renew '%s'", a.pos[0]);
    return done(ctx, rc, &err, &out, &a, 0, what);
}

/* "$USER@hostname": who pressed the escape hatch, for the history. */
static void default_actor(char *buf, size_t size)
{
    const char *user = getenv("USER");
    char host[256];

    if (user == NULL || user[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());

        user = pw != NULL ? pw->pw_name : "unknown";
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, size, "%s@%s", user, host);
}

int cmd_reset_state(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_REASON, L_ACTOR,
                                       L_REQID, L_JSON, L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char actor[VSE_ID_MAX + 300];
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 2, 2, &a);
    if (st == 0)
        st = check_id(ctx, "resource id", a.pos[0]);
    if (st == 0)
        st = check_name(ctx, "state", a.pos[1]);
    if (st == 0 && a.reason == NULL)
        st = usage_error(ctx, "reset-state needs --reason");
    if (st == 0 && a.actor == NULL) {
        default_actor(actor, sizeof(actor));
        a.actor = actor;
        st = check_id(ctx, "actor", actor);
    }
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    o.owner = a.actor;
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_RESET, NULL, a.pos[0], NULL, NULL, a.pos[1], &o,
             &out, &err);
    snprintf(what, sizeof(what), "reset-state '%s' to %s", a.pos[0],
             a.pos[1]);
    return done(ctx, rc, &err, &out, &a, 0, what);
}

int cmd_update(int argc, char **argv, struct ctx *ctx)
{
    static const struct option lo[] = {COMMON_LONGOPTS, L_REQID, L_JSON,
                                       L_ATTRS, L_END};
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char what[512];
    int st, rc;

    st = parse(ctx, argc, argv, lo, 1, 1, &a);
    if (st == 0)
        st = check_id(ctx, "resource id", a.pos[0]);
    if (st == 0 && a.attrs == NULL)
        st = usage_error(ctx, "update needs --attrs");
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    vse_error_clear(&err);
    rc = run(ctx, VSE_KIND_UPDATE, NULL, a.pos[0], NULL, NULL, NULL, &o,
             &out, &err);
    snprintf(what, sizeof(what), "update '%s'", a.pos[0]);
    return done(ctx, rc, &err, &out, &a, 0, what);
}
