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
    OPT_ATTRS,
    OPT_HOLD
};

#define LOPT(name, has, val)                                                 \
    {                                                                        \
        name, has, NULL, val                                                 \
    }
#define L_OWNER LOPT("owner", required_argument, OPT_OWNER)
#define L_TTL LOPT("ttl", required_argument, OPT_TTL)
#define L_OP LOPT("op", required_argument, OPT_OP)
#define L_REQID LOPT("request-id", required_argument, OPT_REQID)
#define L_REASON LOPT("reason", required_argument, OPT_REASON)
#define L_ACTOR LOPT("actor", required_argument, OPT_ACTOR)
#define L_JSON LOPT("json", no_argument, OPT_JSON)
#define L_RELEASE LOPT("release", no_argument, OPT_RELEASE)
#define L_ATTRS LOPT("attrs", required_argument, OPT_ATTRS)
#define L_HOLD LOPT("hold", required_argument, OPT_HOLD)
#define L_END                                                                \
    {                                                                        \
        NULL, 0, NULL, 0                                                     \
    }

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
    const char *hold;
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
        case OPT_JSON: a->json = 1; break;
        case OPT_RELEASE: a->release = 1; break;
        case OPT_HOLD:
            a->hold = optarg;
            st = check_id(ctx, "held resource id", optarg);
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
        default: st = usage_error(ctx, "unexpected option"); break;
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
    o.hold = a->hold;
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

/* "$USER@hostname": who pressed the escape hatch, for the history. */
void default_actor(char *buf, size_t size)
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

/*
 * What a transition command takes: its options, how many positional
 * arguments, and the option it cannot do without.  The positional
 * arguments mean, by kind: create MACHINE ID; begin ID OP; step ID OP_ID
 * STATE; finish ID OP_ID [STATE]; fail, claim, renew ID OP_ID;
 * reset-state ID STATE; update ID.
 */
struct tcmd {
    const char *name;
    enum vse_kind kind;
    const struct option *lo;
    int min, max;
    const char *needs; /* "reason", "owner", "attrs" or NULL */
    int print_op_id;   /* a new op_id is the output */
};

static int check_positional(struct ctx *ctx, const struct tcmd *t,
                            struct targs *a)
{
    int st;

    switch (t->kind) {
    case VSE_KIND_CREATE:
        st = check_name(ctx, "machine name", a->pos[0]);
        return st != 0 ? st : check_id(ctx, "resource id", a->pos[1]);
    case VSE_KIND_BEGIN:
        st = check_id(ctx, "resource id", a->pos[0]);
        return st != 0 ? st : check_name(ctx, "operation", a->pos[1]);
    case VSE_KIND_RESET:
        st = check_id(ctx, "resource id", a->pos[0]);
        return st != 0 ? st : check_name(ctx, "state", a->pos[1]);
    case VSE_KIND_UPDATE: return check_id(ctx, "resource id", a->pos[0]);
    default:
        return check_id_opid(
            ctx, a, t->kind == VSE_KIND_STEP || t->kind == VSE_KIND_FINISH);
    }
}

/* The subject of the "already done" note. */
static void describe(const struct tcmd *t, const struct targs *a, char *what,
                     size_t size)
{
    const char *third = a->npos > 2 ? a->pos[2] : NULL;

    switch (t->kind) {
    case VSE_KIND_CREATE:
        snprintf(what, size, "create %s '%s'", a->pos[0], a->pos[1]);
        break;
    case VSE_KIND_BEGIN:
        snprintf(what, size, "begin %s on '%s'", a->pos[1], a->pos[0]);
        break;
    case VSE_KIND_STEP:
        snprintf(what, size, "step '%s' to %s", a->pos[0], third);
        break;
    case VSE_KIND_FINISH:
        snprintf(what, size, "finish '%s'%s%s", a->pos[0],
                 third ? " in " : "", third ? third : "");
        break;
    case VSE_KIND_CLAIM:
        snprintf(what, size, "claim '%s' by %s", a->pos[0], a->owner);
        break;
    case VSE_KIND_RESET:
        snprintf(what, size, "reset-state '%s' to %s", a->pos[0], a->pos[1]);
        break;
    default: snprintf(what, size, "%s '%s'", t->name, a->pos[0]); break;
    }
}

static int transition_cmd(int argc, char **argv, struct ctx *ctx,
                          const struct tcmd *t)
{
    struct vse_resource out;
    struct vse_error err;
    struct vse_opts o;
    struct targs a;
    char actor[VSE_ID_MAX + 300], what[512];
    const char *first = NULL, *id, *op = NULL, *op_id = NULL, *to = NULL;
    int st, rc;

    st = parse(ctx, argc, argv, t->lo, t->min, t->max, &a);
    if (st == 0)
        st = check_positional(ctx, t, &a);
    if (st == 0 && t->needs != NULL &&
        ((strcmp(t->needs, "reason") == 0 && a.reason == NULL) ||
         (strcmp(t->needs, "owner") == 0 && a.owner == NULL) ||
         (strcmp(t->needs, "attrs") == 0 && a.attrs == NULL)))
        st = usage_error(ctx, "%s needs --%s", t->name, t->needs);
    if (st == 0 && t->kind == VSE_KIND_RESET && a.actor == NULL) {
        default_actor(actor, sizeof(actor));
        a.actor = actor;
        st = check_id(ctx, "actor", actor);
    }
    if (st == 0)
        st = ctx_open(ctx);
    if (st != 0)
        return exit_of(st);
    o = opts_of(&a);
    if (t->kind == VSE_KIND_RESET)
        o.owner = a.actor;
    id = a.pos[0];
    switch (t->kind) {
    case VSE_KIND_CREATE:
        first = a.pos[0]; /* the machine */
        id = a.pos[1];
        break;
    case VSE_KIND_BEGIN: op = a.pos[1]; break;
    case VSE_KIND_RESET: to = a.pos[1]; break;
    case VSE_KIND_UPDATE: break;
    default:
        op_id = a.pos[1];
        to = a.npos > 2 ? a.pos[2] : NULL;
        break;
    }
    vse_error_clear(&err);
    rc = run(ctx, t->kind, first, id, op, op_id, to, &o, &out, &err);
    describe(t, &a, what, sizeof(what));
    return done(ctx, rc, &err, &out, &a, t->print_op_id, what);
}

#define TCMD(fn, name_, kind_, min_, max_, needs_, print_, ...)              \
    int fn(int argc, char **argv, struct ctx *ctx)                           \
    {                                                                        \
        static const struct option lo[] = {COMMON_LONGOPTS, L_REQID, L_JSON, \
                                           L_ATTRS, __VA_ARGS__ L_END};      \
        static const struct tcmd t = {name_, kind_,  lo,    min_,            \
                                      max_,  needs_, print_};                \
        return transition_cmd(argc, argv, ctx, &t);                          \
    }

/* Each command's own options, each followed by a comma. */
TCMD(cmd_create, "create", VSE_KIND_CREATE, 2, 2, NULL, 1, L_OWNER, L_TTL,
     L_OP, L_HOLD, )
TCMD(cmd_begin, "begin", VSE_KIND_BEGIN, 2, 2, NULL, 1, L_OWNER, L_TTL,
     L_HOLD, )
TCMD(cmd_step, "step", VSE_KIND_STEP, 3, 3, NULL, 0, L_RELEASE, )
TCMD(cmd_finish, "finish", VSE_KIND_FINISH, 2, 3, NULL, 0, )
TCMD(cmd_fail, "fail", VSE_KIND_FAIL, 2, 2, "reason", 0, L_REASON, )
TCMD(cmd_claim, "claim", VSE_KIND_CLAIM, 2, 2, "owner", 1, L_OWNER, L_TTL, )
TCMD(cmd_renew, "renew", VSE_KIND_RENEW, 2, 2, NULL, 0, L_TTL, L_REASON, )
TCMD(cmd_reset_state, "reset-state", VSE_KIND_RESET, 2, 2, "reason", 0,
     L_REASON, L_ACTOR, )
TCMD(cmd_update, "update", VSE_KIND_UPDATE, 1, 1, "attrs", 0, )
