/*
 * test-machine.c - the machine subsystem: loading and checking machine
 * files (every error class, with its file:line:column), the built-in
 * machines and their transition tables, the canonical hash, the pinned
 * diff, and the renderers.  One behaviour per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "vse-int.h"

#define BIT(i) ((uint64_t)1 << (i))

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define DIAGS_KEPT 64

struct diags {
    int n;
    int line[DIAGS_KEPT], col[DIAGS_KEPT];
    char msg[DIAGS_KEPT][256];
    char file[256];
};

static void collect(void *ctx, const char *file, int line, int col,
                    const char *msg)
{
    struct diags *d = ctx;

    vse__strlcpy(d->file, file, sizeof(d->file));
    if (d->n < DIAGS_KEPT) {
        d->line[d->n] = line;
        d->col[d->n] = col;
        vse__strlcpy(d->msg[d->n], msg, sizeof(d->msg[0]));
    }
    d->n++;
}

static int load(const char *yaml, struct diags *d, vse_machine **m,
                struct vse_error *err)
{
    memset(d, 0, sizeof(*d));
    return vse_machine_load_buffer("t.yaml", yaml, strlen(yaml), collect, d,
                                   m, err);
}

/* Is there a diagnostic at line:col containing frag? */
static int has_diag(const struct diags *d, int line, int col,
                    const char *frag)
{
    for (int i = 0; i < d->n && i < DIAGS_KEPT; i++)
        if (d->line[i] == line && d->col[i] == col &&
            strstr(d->msg[i], frag) != NULL)
            return 1;
    return 0;
}

/*
 * Load yaml, which must fail with VSE_EMACHINE and report `frag` at
 * line:col (among possibly other diagnostics).
 */
static void expect_error(const char *yaml, int line, int col,
                         const char *frag)
{
    struct diags d;
    struct vse_error err;
    vse_machine *m = (vse_machine *)1;
    int rc = load(yaml, &d, &m, &err);

    assert_int_equal(rc, VSE_EMACHINE);
    assert_null(m);
    assert_int_equal(err.code, VSE_EMACHINE);
    assert_true(d.n >= 1);
    if (has_diag(&d, line, col, frag))
        return;
    for (int i = 0; i < d.n && i < DIAGS_KEPT; i++)
        print_error("  got %d:%d: %s\n", d.line[i], d.col[i], d.msg[i]);
    fail_msg("no diagnostic %d:%d containing \"%s\"", line, col, frag);
}

/* A small valid machine every error test starts from. */
#define HEAD "machine: m\nversion: 1\n"
#define STATES                                                               \
    "states:\n"                                                              \
    "  a: {kind: rest, status: a}\n"                                         \
    "  b: {kind: busy, status: b}\n"                                         \
    "  e: {kind: rest, status: e}\n"
#define OPS                                                                  \
    "operations:\n"                                                          \
    "  make:\n"                                                              \
    "    from: new\n"                                                        \
    "    steps: [b]\n"                                                       \
    "    success: a\n"                                                       \
    "    failure: e\n"                                                       \
    "    on_expiry: retry\n"
#define MINI HEAD STATES OPS
static const char mini[] = MINI;

static vse_machine *must_load(const char *yaml)
{
    struct diags d;
    struct vse_error err;
    vse_machine *m = NULL;
    int rc = load(yaml, &d, &m, &err);

    if (rc != 0)
        fail_msg("load failed: %s (%s)", err.msg, err.hint);
    assert_non_null(m);
    return m;
}

static vse_machine *must_builtin(const char *name)
{
    struct vse_error err;
    vse_machine *m = NULL;

    if (vse_machine_builtin(name, &m, &err) != 0)
        fail_msg("builtin %s: %s", name, err.msg);
    return m;
}

/* A built-in machine as the previous release shipped it (volume and
 * snapshot version 1, tests/unit/machines-v1/): stores it pinned must
 * keep opening, so its canonical form and hash must not move.  Run from
 * the repository's root (tests/run.sh). */
static vse_machine *must_v1(const char *name)
{
    char path[256];
    struct vse_error err;
    vse_machine *m = NULL;

    snprintf(path, sizeof(path), "tests/unit/machines-v1/%s.yaml", name);
    if (vse_machine_load_file(path, NULL, NULL, &m, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    return m;
}

static int st(const vse_machine *m, const char *name)
{
    int s = vse__machine_state(m, name);

    if (s < 0)
        fail_msg("no state %s", name);
    return s;
}

static const struct vse__op *op(const vse_machine *m, const char *name)
{
    int o = vse__machine_op(m, name);

    if (o < 0)
        fail_msg("no op %s", name);
    return &m->ops[o];
}

/* ------------------------------------------------------------------ */
/* Built-in machines                                                   */
/* ------------------------------------------------------------------ */

static void test_builtin_names(void **state)
{
    const char *const *n = vse_machine_builtin_names();

    (void)state;
    assert_string_equal(n[0], "volume");
    assert_string_equal(n[1], "snapshot");
    assert_string_equal(n[2], "service");
    assert_null(n[3]);
    /* Each loads, through the same loader as any file. */
    for (int i = 0; n[i] != NULL; i++) {
        struct vse_error err;
        vse_machine *m = NULL;

        assert_int_equal(vse_machine_builtin(n[i], &m, &err), 0);
        assert_string_equal(vse_machine_name(m), n[i]);
        vse_machine_free(m);
    }
}

static void test_builtin_unknown(void **state)
{
    struct vse_error err;
    vse_machine *m = (vse_machine *)1;

    (void)state;
    assert_int_equal(vse_machine_builtin("disk", &m, &err), VSE_ENOTFOUND);
    assert_null(m);
    assert_non_null(strstr(err.msg, "'disk'"));
}

static void test_volume_states(void **state)
{
    vse_machine *m = must_builtin("volume");

    (void)state;
    assert_string_equal(vse_machine_name(m), "volume");
    assert_int_equal(vse_machine_version(m), 2);
    assert_int_equal(m->nstates, 14);
    assert_int_equal(m->nops, 8);
    assert_string_equal(vse_machine_status(m, "in_use"), "in-use");
    assert_string_equal(vse_machine_status(m, "scheduling"), "creating");
    assert_int_equal(vse_machine_state_busy(m, "creating_vol"), 1);
    assert_int_equal(vse_machine_state_busy(m, "available"), 0);
    assert_int_equal(vse_machine_state_busy(m, "nope"), VSE_EINVAL);
    assert_null(vse_machine_status(m, "nope"));
    assert_int_equal(vse__machine_state(m, "new"), -1);
    /* Declaration order is kept. */
    assert_string_equal(m->states[0].name, "creating_db");
    assert_string_equal(m->states[13].name, "detaching");
    vse_machine_free(m);
}

static void test_volume_create_transitions(void **state)
{
    vse_machine *m = must_builtin("volume");
    const struct vse__op *c = op(m, "create");
    int db = st(m, "creating_db"), sch = st(m, "scheduling");
    int vol = st(m, "creating_vol");

    (void)state;
    assert_true(c->from_new);
    assert_int_equal(c->from, 0);
    assert_int_equal(c->nsteps, 3);
    assert_int_equal(c->steps[0], db);
    assert_int_equal(c->steps[1], sch);
    assert_int_equal(c->steps[2], vol);
    assert_true(c->step_to[db] == BIT(sch));
    assert_true(c->step_to[sch] == BIT(vol));
    assert_true(c->step_to[vol] == BIT(sch)); /* reschedule */
    assert_true(c->finish_to[vol] == BIT(st(m, "available")));
    assert_true(c->finish_to[db] == 0);
    assert_int_equal(c->failure, st(m, "error"));
    assert_int_equal(c->expiry[db], VSE_EXPIRY_FAIL);
    assert_int_equal(c->expiry[sch], VSE_EXPIRY_RETRY);
    assert_int_equal(c->expiry[vol], VSE_EXPIRY_RETRY);
    assert_true(c->busy == (BIT(db) | BIT(sch) | BIT(vol)));
    vse_machine_free(m);
}

static void test_volume_other_transitions(void **state)
{
    vse_machine *m = must_builtin("volume");
    const struct vse__op *del = op(m, "delete"), *att = op(m, "attach");
    const struct vse__op *det = op(m, "detach"), *ext = op(m, "extend");
    int av = st(m, "available"), in = st(m, "in_use");

    (void)state;
    assert_false(del->from_new);
    assert_true(del->from == (BIT(av) | BIT(st(m, "error")) |
                              BIT(st(m, "error_deleting")) |
                              BIT(st(m, "error_extending"))));
    assert_false(del->from & BIT(in));
    assert_int_equal(del->failure, st(m, "error_deleting"));
    assert_int_equal(del->expiry[st(m, "deleting")], VSE_EXPIRY_RETRY);
    assert_true(ext->finish_to[st(m, "extending")] == BIT(av));
    assert_int_equal(ext->failure, st(m, "error_extending"));
    assert_true(att->step_to[st(m, "reserved")] == BIT(st(m, "attaching")));
    assert_true(att->finish_to[st(m, "attaching")] == BIT(in));
    assert_int_equal(att->expiry[st(m, "reserved")], VSE_EXPIRY_REVERT);
    assert_int_equal(att->expiry[st(m, "attaching")], VSE_EXPIRY_REVERT);
    assert_true(det->success == (BIT(av) | BIT(in)));
    assert_true(det->finish_to[st(m, "detaching")] == (BIT(av) | BIT(in)));
    assert_int_equal(det->failure, in);
    assert_true(vse__machine_terminal(m, st(m, "deleted")));
    assert_false(vse__machine_terminal(m, av));
    assert_false(vse__machine_terminal(m, st(m, "deleting")));
    assert_false(vse__machine_terminal(m, -1));
    vse_machine_free(m);
}

static void test_snapshot_transitions(void **state)
{
    vse_machine *m = must_builtin("snapshot");
    const struct vse__op *c = op(m, "create"), *d = op(m, "delete");

    (void)state;
    assert_int_equal(m->nstates, 6);
    assert_true(c->from_new);
    assert_int_equal(c->steps[0], st(m, "creating"));
    assert_true(c->success == BIT(st(m, "available")));
    assert_int_equal(c->failure, st(m, "error"));
    assert_int_equal(c->expiry[st(m, "creating")], VSE_EXPIRY_RETRY);
    assert_true(d->from == (BIT(st(m, "available")) | BIT(st(m, "error")) |
                            BIT(st(m, "error_deleting"))));
    assert_true(d->success == BIT(st(m, "deleted")));
    assert_int_equal(d->failure, st(m, "error_deleting"));
    assert_true(vse__machine_terminal(m, st(m, "deleted")));
    vse_machine_free(m);
}

static void test_op_index(void **state)
{
    vse_machine *m = must_builtin("volume");

    (void)state;
    assert_int_equal(vse__machine_op(m, "create"), 0);
    assert_int_equal(vse__machine_op(m, "detach"), 7);
    assert_int_equal(vse__machine_op(m, "resize"), -1);
    assert_int_equal(vse__machine_op(m, NULL), -1);
    for (int s = 0; s < m->nstates; s++)
        assert_int_equal(vse__machine_state(m, m->states[s].name), s);
    vse_machine_free(m);
}

/* Does the JSON "transitions" array hold this one? */
static int has_transition(json_t *a, const char *o, const char *kind,
                          const char *from, const char *to)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "op")), o) == 0 &&
            strcmp(json_string_value(json_object_get(v, "kind")), kind) ==
                0 &&
            strcmp(json_string_value(json_object_get(v, "from")), from) ==
                0 &&
            strcmp(json_string_value(json_object_get(v, "to")), to) == 0)
            return 1;
    }
    return 0;
}

static void test_volume_json(void **state)
{
    vse_machine *m = must_builtin("volume");
    char *out = NULL;
    json_t *j, *tr;

    (void)state;
    assert_int_equal(vse_machine_render(m, VSE_FORMAT_JSON, &out, NULL), 0);
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "machine")),
                        "volume");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "hash")),
                        vse_machine_hash(m));
    assert_non_null(json_object_get(j, "description"));
    assert_int_equal(json_array_size(json_object_get(j, "states")), 14);
    tr = json_object_get(j, "transitions");
    assert_int_equal(json_array_size(tr), 45);
    assert_true(has_transition(tr, "create", "begin", "new", "creating_db"));
    assert_true(
        has_transition(tr, "create", "step", "creating_vol", "scheduling"));
    assert_true(
        has_transition(tr, "create", "finish", "creating_vol", "available"));
    assert_true(has_transition(tr, "create", "fail", "scheduling", "error"));
    assert_true(
        has_transition(tr, "detach", "finish", "detaching", "in_use"));
    assert_true(
        has_transition(tr, "attach", "fail", "reserved", "available"));
    assert_false(has_transition(tr, "delete", "begin", "in_use", "deleting"));
    assert_true(
        has_transition(tr, "extend_in_use", "fail", "extending", "in_use"));
    assert_true(has_transition(tr, "clone", "begin", "new", "creating_db"));
    {
        json_t *c = json_array_get(json_object_get(j, "operations"), 0);

        assert_string_equal(
            json_string_value(json_object_get(json_object_get(c, "on_expiry"),
                                              "creating_db")),
            "fail");
        assert_string_equal(
            json_string_value(json_array_get(
                json_object_get(json_object_get(c, "edges"), "creating_vol"),
                0)),
            "scheduling");
    }
    json_decref(j);
    vse_free(out);
    vse_machine_free(m);
}

/* ------------------------------------------------------------------ */
/* Renderers                                                           */
/* ------------------------------------------------------------------ */

static void test_render_table(void **state)
{
    vse_machine *m = must_builtin("volume");
    char *out = NULL;

    (void)state;
    assert_int_equal(vse_machine_render(m, VSE_FORMAT_TABLE, &out, NULL), 0);
    assert_non_null(strstr(out, "machine volume  version 2  hash "));
    assert_non_null(strstr(out, vse_machine_hash(m)));
    assert_non_null(strstr(out, "STATE"));
    assert_non_null(strstr(out, "in_use           rest  in-use"));
    assert_non_null(strstr(out, "create                begin   new"));
    assert_non_null(
        strstr(out, "attach                reserved         revert"));
    vse_free(out);
    vse_machine_free(m);
}

static void test_render_mermaid(void **state)
{
    vse_machine *m = must_builtin("volume");
    char *out = NULL;

    (void)state;
    assert_int_equal(vse_machine_render(m, VSE_FORMAT_MERMAID, &out, NULL),
                     0);
    assert_memory_equal(out, "stateDiagram-v2\n", 16);
    assert_non_null(strstr(out, "    [*] --> creating_db : create\n"));
    assert_non_null(strstr(out, "    deleting --> error_deleting : delete "
                                "(fail)\n"));
    assert_non_null(strstr(out, "    deleted --> [*]\n"));
    vse_free(out);
    vse_machine_free(m);
}

static void test_render_dot_shapes(void **state)
{
    vse_machine *m = must_builtin("volume");
    char *out = NULL;

    (void)state;
    assert_int_equal(vse_machine_render(m, VSE_FORMAT_DOT, &out, NULL), 0);
    assert_memory_equal(out, "digraph \"volume\" {", 18);
    assert_non_null(strstr(out, "\"new\" [shape=point"));
    assert_non_null(strstr(out, "\"creating_db\" [shape=box, "
                                "label=\"creating_db\\n(creating)\""));
    assert_non_null(strstr(out, "\"available\" [shape=ellipse"));
    assert_non_null(strstr(out, "\"deleting\" -> \"error_deleting\" "
                                "[label=\"delete\", style=dashed]"));
    vse_free(out);
    vse_machine_free(m);
}

/* Graphviz must accept the DOT of every built-in. */
static void test_render_dot_accepted_by_dot(void **state)
{
    const char *const *names = vse_machine_builtin_names();

    (void)state;
    if (access("/usr/bin/dot", X_OK) != 0)
        skip();
    for (int i = 0; names[i] != NULL; i++) {
        vse_machine *m = must_builtin(names[i]);
        char *out = NULL;
        FILE *p;
        int status;

        assert_int_equal(vse_machine_render(m, VSE_FORMAT_DOT, &out, NULL),
                         0);
        p = popen("/usr/bin/dot -Tsvg -o /dev/null 2>&1", "w");
        assert_non_null(p);
        fputs(out, p);
        status = pclose(p);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        vse_free(out);
        vse_machine_free(m);
    }
}

static void test_render_bad_format(void **state)
{
    vse_machine *m = must_builtin("snapshot");
    struct vse_error err;
    char *out = (char *)1;

    (void)state;
    assert_int_equal(vse_machine_render(m, 0, &out, &err), VSE_EINVAL);
    assert_null(out);
    vse_machine_free(m);
}

/* ------------------------------------------------------------------ */
/* Hash and diff                                                       */
/* ------------------------------------------------------------------ */

static void test_mini_loads(void **state)
{
    vse_machine *m = must_load(mini);

    (void)state;
    assert_string_equal(vse_machine_name(m), "m");
    assert_int_equal(strlen(vse_machine_hash(m)), 16);
    assert_string_equal(m->file, "t.yaml");
    vse_machine_free(m);
}

static void test_hash_stable(void **state)
{
    vse_machine *a = must_load(mini), *b = must_load(mini);
    vse_machine *c = must_builtin("volume"), *d = must_builtin("volume");

    (void)state;
    assert_string_equal(vse_machine_hash(a), vse_machine_hash(b));
    assert_string_equal(vse_machine_hash(c), vse_machine_hash(d));
    assert_string_not_equal(vse_machine_hash(a), vse_machine_hash(c));
    assert_string_equal(vse__machine_canonical(a), vse__machine_canonical(b));
    vse_machine_free(a);
    vse_machine_free(b);
    vse_machine_free(c);
    vse_machine_free(d);
}

/* Comments, descriptions, key order and flow vs block style do not
 * change what the machine does, so they do not change the hash. */
static void test_hash_ignores_presentation(void **state)
{
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(
        "# a comment\n"
        "version: 1\n"
        "description: something else\n"
        "machine: m\n"
        "operations:\n"
        "  make: {on_expiry: {b: retry}, failure: e, success: [a],\n"
        "         steps: b, from: [new]}\n" STATES);

    (void)state;
    assert_string_equal(vse_machine_hash(a), vse_machine_hash(b));
    vse_machine_free(a);
    vse_machine_free(b);
}

static void test_hash_changes_with_state(void **state)
{
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(HEAD "states:\n"
                                    "  a: {kind: rest, status: ok}\n"
                                    "  b: {kind: busy, status: b}\n"
                                    "  e: {kind: rest, status: e}\n" OPS);

    (void)state;
    assert_string_not_equal(vse_machine_hash(a), vse_machine_hash(b));
    vse_machine_free(a);
    vse_machine_free(b);
}

static void test_canonical_has_no_hash_or_description(void **state)
{
    vse_machine *m = must_builtin("volume");
    json_t *j = json_loads(vse__machine_canonical(m), 0, NULL);
    char h[17];

    (void)state;
    assert_non_null(j);
    assert_null(json_object_get(j, "hash"));
    assert_null(json_object_get(j, "description"));
    assert_non_null(json_object_get(j, "transitions"));
    vse__hash_hex(vse__machine_canonical(m),
                  strlen(vse__machine_canonical(m)), h);
    assert_string_equal(h, vse_machine_hash(m));
    json_decref(j);
    vse_machine_free(m);
}

static void diff_of(const char *pinned_yaml, const char *now_yaml, char *buf,
                    size_t size)
{
    vse_machine *p = must_load(pinned_yaml), *m = must_load(now_yaml);

    vse__machine_diff(vse__machine_canonical(p), m, buf, size);
    vse_machine_free(p);
    vse_machine_free(m);
}

static void test_diff_identical(void **state)
{
    char buf[256];

    (void)state;
    diff_of(mini, mini, buf, sizeof(buf));
    assert_string_equal(buf, "no difference");
}

static void test_diff_version_and_state(void **state)
{
    char buf[256];

    (void)state;
    diff_of(mini,
            "machine: m\nversion: 2\n" STATES
            "  x: {kind: rest, status: x}\n" OPS
            "  wreck:\n    from: a\n    steps: b\n    success: x\n"
            "    failure: e\n    on_expiry: retry\n",
            buf, sizeof(buf));
    assert_string_equal(buf, "version 1 -> 2; state 'x' added; "
                             "operation 'wreck' added");
}

static void test_diff_operation_changed(void **state)
{
    char buf[256];

    (void)state;
    diff_of(mini,
            HEAD STATES "operations:\n  make:\n    from: new\n"
                        "    steps: [b]\n    success: [a, e]\n"
                        "    failure: e\n    on_expiry: fail\n",
            buf, sizeof(buf));
    assert_string_equal(buf, "operation 'make' changed (on_expiry, "
                             "success)");
}

static void test_diff_state_removed_and_changed(void **state)
{
    char buf[256];

    (void)state;
    diff_of(HEAD STATES "  z: {kind: rest, status: z}\n" OPS
                        "  zap:\n    from: a\n    steps: b\n    success: z\n"
                        "    failure: e\n    on_expiry: retry\n",
            HEAD "states:\n  a: {kind: rest, status: ok}\n"
                 "  b: {kind: busy, status: b}\n"
                 "  e: {kind: rest, status: e}\n" OPS,
            buf, sizeof(buf));
    assert_string_equal(buf, "state 'z' removed; state 'a' changed "
                             "(status); operation 'zap' removed");
}

static void test_diff_unreadable_pin(void **state)
{
    vse_machine *m = must_load(mini);
    char buf[256];

    (void)state;
    vse__machine_diff("{not json", m, buf, sizeof(buf));
    assert_non_null(strstr(buf, "pinned definition of 'm' is not "
                                "readable"));
    vse__machine_diff("[1]", m, buf, sizeof(buf));
    assert_non_null(strstr(buf, "not readable"));
    vse_machine_free(m);
}

static void test_diff_small_buffer(void **state)
{
    char buf[12];

    (void)state;
    diff_of(mini, "machine: m\nversion: 7\n" STATES OPS, buf, sizeof(buf));
    assert_string_equal(buf, "version 1 -");
}

/* ------------------------------------------------------------------ */
/* Syntax and file-level errors                                        */
/* ------------------------------------------------------------------ */

static void test_err_yaml_syntax(void **state)
{
    (void)state;
    expect_error("machine: m\nversion: 1\nstates: [a, b, c]]\n", 3, 18,
                 "yaml syntax error: flow sequence with invalid extra "
                 "closing bracket");
}

/* The text ends inside a '[' or '{': reported where it was opened, not
 * at the end of the file (libfyaml's place). */
static void test_err_unclosed_flow_sequence(void **state)
{
    (void)state;
    expect_error("machine: m\nstates: [a, b\n", 2, 9,
                 "yaml syntax error: flow sequence without a closing "
                 "bracket");
    /* No newline at the end, white space after, a key swallowed. */
    expect_error("machine: m\nstates: [a, b", 2, 9,
                 "flow sequence without a closing bracket");
    expect_error("machine: m\nstates: [a, b\n  \n\n", 2, 9,
                 "flow sequence without a closing bracket");
    expect_error("machine: m\nstates: [a, b\nversion: 1\n", 2, 9,
                 "flow sequence without a closing bracket");
    /* The innermost one still open. */
    expect_error("machine: m\nstates: [a, [b, c], [d\n", 2, 21,
                 "flow sequence without a closing bracket");
}

static void test_err_unclosed_flow_mapping(void **state)
{
    (void)state;
    expect_error("machine: m\nstates: {a: 1, b: 2\n", 2, 9,
                 "yaml syntax error: flow mapping without a closing brace");
    expect_error("machine: m\nstates: [a, {b: 1\n", 2, 13,
                 "flow mapping without a closing brace");
    expect_error("machine: m\nstates: {a: [1, 2], b: 2", 2, 9,
                 "flow mapping without a closing brace");
}

static void test_err_empty(void **state)
{
    (void)state;
    expect_error("", 1, 1, "machine file is empty");
}

static void test_err_only_comments(void **state)
{
    (void)state;
    expect_error("# nothing\n   # here\n", 1, 1, "machine file is empty");
}

static void test_err_two_documents(void **state)
{
    (void)state;
    expect_error(MINI "---\nmachine: n\n", 14, 1,
                 "more than one YAML document");
}

static void test_err_top_not_mapping(void **state)
{
    (void)state;
    expect_error("- machine\n- m\n", 1, 3, "top level must be a mapping");
}

static void test_err_not_utf8(void **state)
{
    (void)state;
    expect_error("machine: m\nversion: 1\ndescription: caf\xe9\n", 3, 17,
                 "invalid UTF-8 byte 0xe9");
}

static void test_err_nul_byte(void **state)
{
    struct diags d;
    struct vse_error err;
    vse_machine *m = NULL;
    static const char buf[] = "machine: m\nversion: \0\n";

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_int_equal(vse_machine_load_buffer("t.yaml", buf, sizeof(buf) - 1,
                                             collect, &d, &m, &err),
                     VSE_EMACHINE);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.line[0], 2);
    assert_int_equal(d.col[0], 10);
    assert_non_null(strstr(d.msg[0], "NUL byte"));
}

static void test_err_too_big_buffer(void **state)
{
    size_t n = VSE_MACHINE_FILE_MAX + 1;
    char *buf = malloc(n);
    struct vse_error err;
    vse_machine *m = (vse_machine *)1;

    (void)state;
    memset(buf, '#', n);
    assert_int_equal(vse_machine_load_buffer("big.yaml", buf, n, NULL, NULL,
                                             &m, &err),
                     VSE_ETOOBIG);
    assert_null(m);
    assert_non_null(strstr(err.msg, "'big.yaml'"));
    free(buf);
}

static void test_err_too_big_file(void **state)
{
    char path[] = "/tmp/vse-test-machine-XXXXXX";
    int fd = mkstemp(path);
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, VSE_MACHINE_FILE_MAX + 1), 0);
    close(fd);
    assert_int_equal(vse_machine_load_file(path, NULL, NULL, &m, &err),
                     VSE_ETOOBIG);
    unlink(path);
}

static void test_err_unreadable_file(void **state)
{
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    assert_int_equal(vse_machine_load_file("/nonexistent/m.yaml", NULL, NULL,
                                           &m, &err),
                     VSE_EIO);
    assert_non_null(strstr(err.msg, "'/nonexistent/m.yaml'"));
    assert_string_equal(err.detail, "No such file or directory");
    assert_int_equal(vse_machine_load_file("/tmp", NULL, NULL, &m, &err),
                     VSE_EIO);
}

static void test_load_file_ok(void **state)
{
    char path[] = "/tmp/vse-test-machine-XXXXXX";
    int fd = mkstemp(path);
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, mini, strlen(mini)), (ssize_t)strlen(mini));
    close(fd);
    assert_int_equal(vse_machine_load_file(path, NULL, NULL, &m, &err), 0);
    assert_string_equal(m->file, path);
    vse_machine_free(m);
    unlink(path);
}

/* ------------------------------------------------------------------ */
/* Structure errors                                                    */
/* ------------------------------------------------------------------ */

static void test_err_missing_key(void **state)
{
    (void)state;
    expect_error("machine: m\n" STATES OPS, 1, 1,
                 "missing key 'version' at the top level");
}

static void test_err_unknown_top_key(void **state)
{
    (void)state;
    expect_error(HEAD "colour: red\n" STATES OPS, 3, 1,
                 "unknown key 'colour' in the top level");
}

static void test_err_unknown_state_key(void **state)
{
    (void)state;
    expect_error(HEAD "states:\n"
                      "  a: {kind: rest, status: a, size: 3}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: {kind: rest, status: e}\n" OPS,
                 4, 30, "unknown key 'size' in state 'a'");
}

static void test_err_unknown_op_key(void **state)
{
    (void)state;
    expect_error(MINI "    retries: 3\n", 14, 5,
                 "unknown key 'retries' in operation 'make'");
}

static void test_err_duplicate_key(void **state)
{
    (void)state;
    expect_error(MINI "    failure: a\n", 14, 5,
                 "duplicate key 'failure' in operation 'make' (first at "
                 "12:5)");
}

static void test_err_version_type(void **state)
{
    (void)state;
    expect_error("machine: m\nversion: one\n" STATES OPS, 2, 10,
                 "'version' must be an integer, not 'one'");
    /* libfyaml places a quoted scalar at its first character. */
    expect_error("machine: m\nversion: \"1\"\n" STATES OPS, 2, 11,
                 "'version' must be an integer");
    expect_error("machine: m\nversion: 0\n" STATES OPS, 2, 10,
                 "'version' 0 is out of range");
}

static void test_err_wrong_type(void **state)
{
    (void)state;
    expect_error(HEAD "states: [a, b]\n" OPS, 3, 10,
                 "'states' must be a mapping");
    expect_error(HEAD STATES "operations:\n  make: [a]\n", 8, 10,
                 "operation 'make' must be a mapping");
    expect_error(HEAD STATES "operations:\n  make:\n    from: {a: 1}\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: e\n    on_expiry: retry\n",
                 9, 12,
                 "'from' of operation 'make' must be a state name "
                 "or a list of them");
}

static void test_err_bad_names(void **state)
{
    (void)state;
    expect_error("machine: Volume\nversion: 1\n" STATES OPS, 1, 10,
                 "invalid machine name 'Volume'");
    expect_error(HEAD "states:\n  a: {kind: rest, status: a}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: {kind: rest, status: e}\n"
                      "  9lives: {kind: rest, status: a}\n" OPS,
                 7, 3, "invalid state name '9lives'");
    expect_error(HEAD STATES OPS "  Make: {from: a, steps: b, success: a, "
                                 "failure: e, on_expiry: retry}\n",
                 14, 3, "invalid operation name 'Make'");
}

static void test_err_reserved_new(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  new: {kind: rest, status: a}\n" OPS, 7, 3,
                 "'new' is reserved");
}

static void test_err_long_name(void **state)
{
    char yaml[1024];

    (void)state;
    snprintf(yaml, sizeof(yaml),
             HEAD STATES "  %064d: {kind: rest, status: "
                         "a}\n" OPS,
             0);
    yaml[strlen(HEAD STATES) + 2] = 'z'; /* a valid start, 64 bytes long */
    expect_error(yaml, 7, 3, "at most 63 bytes");
}

static void test_err_duplicate_state(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  a: {kind: rest, status: a}\n" OPS, 7, 3,
                 "duplicate state 'a' (first declared at 4:3)");
}

static void test_err_duplicate_operation(void **state)
{
    (void)state;
    expect_error(MINI "  make: {from: new, steps: b, success: a, failure: e, "
                      "on_expiry: retry}\n",
                 14, 3, "duplicate operation 'make' (first declared at 8:3)");
}

static void test_err_bad_kind(void **state)
{
    (void)state;
    expect_error(HEAD "states:\n  a: {kind: idle, status: a}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: {kind: rest, status: e}\n" OPS,
                 4, 13, "unknown kind 'idle' of state 'a'");
}

static void test_err_missing_status(void **state)
{
    (void)state;
    expect_error(HEAD "states:\n  a: {kind: rest}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: {kind: rest, status: e}\n" OPS,
                 4, 3, "state 'a' has no 'status'");
    expect_error(HEAD "states:\n  a: {kind: rest, status: ''}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: {kind: rest, status: e}\n" OPS,
                 4, 28, "status of state 'a' is empty");
}

static void test_err_status_not_in_vocabulary(void **state)
{
    (void)state;
    expect_error(HEAD "statuses: [a, b]\n" STATES OPS, 7, 27,
                 "status 'e' of state 'e' is not in 'statuses'");
}

static void test_err_unknown_state_reference(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: [a, done]\n"
                             "    failure: e\n    on_expiry: retry\n",
                 11, 18,
                 "unknown state 'done' in 'success' of operation "
                 "'make'");
}

static void test_err_from_busy(void **state)
{
    (void)state;
    expect_error(MINI "  poke: {from: [a, b], steps: b, success: a, "
                      "failure: e, on_expiry: retry}\n",
                 14, 20,
                 "busy state 'b' in 'from' of operation 'poke': it "
                 "must be a rest state");
}

static void test_err_step_not_busy(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b, a]\n    success: a\n"
                             "    failure: e\n    on_expiry: retry\n",
                 10, 16,
                 "rest state 'a' in 'steps' of operation 'make': "
                 "it must be a busy state");
}

static void test_err_step_repeated(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  c: {kind: busy, status: c}\n"
                             "operations:\n  make:\n    from: new\n"
                             "    steps: [b, c, b]\n    success: a\n"
                             "    failure: e\n    on_expiry: retry\n",
                 11, 19, "step 'b' repeated in operation 'make'");
}

static void test_err_success_not_rest(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  c: {kind: busy, status: c}\n"
                             "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: [c]\n"
                             "    failure: e\n    on_expiry: retry\n",
                 12, 15, "busy state 'c' in 'success' of operation 'make'");
}

static void test_err_failure_not_rest(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: b\n    on_expiry: retry\n",
                 12, 14, "busy state 'b' in 'failure' of operation 'make'");
}

static void test_err_edge_from_non_step(void **state)
{
    (void)state;
    expect_error(MINI "    edges: {a: [b]}\n", 14, 13,
                 "edge from 'a', which is not a step of operation 'make'");
}

static void test_err_self_edge(void **state)
{
    (void)state;
    expect_error(MINI "    edges: {b: [b]}\n", 14, 17,
                 "self-edge on step 'b' of operation 'make'");
}

static void test_err_edge_target(void **state)
{
    (void)state;
    expect_error(MINI "    edges: {b: [e]}\n", 14, 17,
                 "edge target 'e' of step 'b' is neither a step nor a "
                 "success state of operation 'make'");
}

/* ------------------------------------------------------------------ */
/* The retry budget                                                    */
/* ------------------------------------------------------------------ */

/* The built-in machines of the previous release were pinned before
 * budgets existed: their hash must not move, and their retrying ops get
 * the default budget. */
static void test_retry_builtin_defaults_keep_hash(void **state)
{
    vse_machine *v = must_v1("volume"), *s = must_v1("snapshot");

    (void)state;
    assert_string_equal(vse_machine_hash(v), "f8510952907d5e42");
    assert_string_equal(vse_machine_hash(s), "4132067e1f914178");
    assert_null(strstr(vse__machine_canonical(v), "\"retry\":{"));
    assert_int_equal(op(v, "extend")->retry_attempts, 5);
    assert_int_equal(op(v, "extend")->retry_unclaimed_us,
                     INT64_C(600) * 1000000);
    assert_int_equal(op(v, "create")->retry_attempts, 5);
    /* attach only reverts: no step is handed back, so no budget. */
    assert_int_equal(op(v, "attach")->retry_attempts, 0);
    assert_int_equal(op(v, "attach")->retry_unclaimed_us, 0);
    assert_int_equal(op(s, "delete")->retry_attempts, 5);
    vse_machine_free(v);
    vse_machine_free(s);
}

/* Volume and snapshot version 2 (issue 14): the holds between them, and
 * the hashes that stores pinned to them keep. */
static void test_builtin_v2_holds(void **state)
{
    vse_machine *v = must_builtin("volume"), *s = must_builtin("snapshot");
    const unsigned both = VSE_HOLD_SHARED | VSE_HOLD_EXCLUSIVE;

    (void)state;
    assert_int_equal(vse_machine_version(v), 2);
    assert_int_equal(vse_machine_version(s), 2);
    assert_string_equal(vse_machine_hash(v), "519410ec197fce20");
    assert_string_equal(vse_machine_hash(s), "800d2b287344b411");
    assert_string_equal(op(s, "create")->hold_machine, "volume");
    assert_int_equal(op(s, "create")->hold_mode, VSE_HOLD_SHARED);
    assert_string_equal(op(v, "create_from_snapshot")->hold_machine,
                        "snapshot");
    assert_int_equal(op(v, "create_from_snapshot")->hold_mode,
                     VSE_HOLD_SHARED);
    assert_string_equal(op(v, "clone")->hold_machine, "volume");
    assert_int_equal(op(v, "clone")->hold_mode, VSE_HOLD_SHARED);
    assert_int_equal(op(v, "create")->hold_mode, 0);
    assert_int_equal(op(v, "delete")->refused_while_held, both);
    assert_int_equal(op(v, "extend")->refused_while_held, both);
    assert_int_equal(op(v, "extend_in_use")->refused_while_held, both);
    assert_int_equal(op(v, "detach")->refused_while_held, both);
    assert_int_equal(op(v, "attach")->refused_while_held, 0);
    assert_int_equal(op(s, "delete")->refused_while_held, both);
    vse_machine_free(v);
    vse_machine_free(s);
}

static void test_retry_declared(void **state)
{
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(
        MINI "    retry: {attempts: 3, unclaimed: 1h30m}\n");
    const struct vse__op *o = op(b, "make");
    char *out = NULL;
    json_t *j, *r;

    (void)state;
    assert_int_equal(o->retry_attempts, 3);
    assert_int_equal(o->retry_unclaimed_us, INT64_C(5400) * 1000000);
    assert_string_not_equal(vse_machine_hash(a), vse_machine_hash(b));
    assert_non_null(strstr(vse__machine_canonical(b),
                           "\"retry\":{\"attempts\":3,\"unclaimed\":"
                           "\"1h30m0s\"}"));
    assert_int_equal(vse_machine_render(b, VSE_FORMAT_JSON, &out, NULL), 0);
    j = json_loads(out, 0, NULL);
    assert_non_null(j);
    r = json_object_get(json_array_get(json_object_get(j, "operations"), 0),
                        "retry");
    assert_int_equal(json_integer_value(json_object_get(r, "attempts")), 3);
    assert_string_equal(json_string_value(json_object_get(r, "unclaimed")),
                        "1h30m0s");
    json_decref(j);
    vse_free(out);
    vse_machine_free(a);
    vse_machine_free(b);
}

/* One key may be left out: it keeps its default. */
static void test_retry_partial(void **state)
{
    vse_machine *m = must_load(MINI "    retry: {unclaimed: 45s}\n");

    (void)state;
    assert_int_equal(op(m, "make")->retry_attempts,
                     VSE_RETRY_ATTEMPTS_DEFAULT);
    assert_int_equal(op(m, "make")->retry_unclaimed_us, INT64_C(45000000));
    vse_machine_free(m);
}

/* Writing the default out is the same machine as leaving it out, and the
 * JSON render shows the budget in force either way. */
static void test_retry_default_written_keeps_hash(void **state)
{
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(
        MINI "    retry:\n      attempts: 5\n      unclaimed: 600s\n");
    char *out = NULL;

    (void)state;
    assert_string_equal(vse_machine_hash(a), vse_machine_hash(b));
    assert_int_equal(vse_machine_render(a, VSE_FORMAT_JSON, &out, NULL), 0);
    assert_non_null(strstr(out, "\"unclaimed\": \"10m0s\""));
    vse_free(out);
    assert_int_equal(vse_machine_render(a, VSE_FORMAT_TABLE, &out, NULL), 0);
    assert_non_null(strstr(out, "make  5         10m0s  (default)"));
    vse_free(out);
    vse_machine_free(a);
    vse_machine_free(b);
}

static void test_retry_diff(void **state)
{
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(MINI "    retry: {attempts: 2}\n");
    char buf[256];

    (void)state;
    vse__machine_diff(vse__machine_canonical(a), b, buf, sizeof(buf));
    assert_string_equal(buf, "operation 'make' changed (retry)");
    vse_machine_free(a);
    vse_machine_free(b);
}

static void test_duration_format(void **state)
{
    char b[32];

    (void)state;
    assert_string_equal(vse__duration_format(0, b, sizeof(b)), "0s");
    assert_string_equal(vse__duration_format(INT64_C(45900000), b, sizeof(b)),
                        "45s");
    assert_string_equal(
        vse__duration_format(INT64_C(600) * 1000000, b, sizeof(b)), "10m0s");
    assert_string_equal(vse__duration_format(INT64_C(5401) * 1000000, b,
                                             sizeof(b)),
                        "1h30m1s");
}

static void test_err_retry_not_mapping(void **state)
{
    (void)state;
    expect_error(MINI "    retry: 3\n", 14, 12,
                 "'retry' of operation 'make' must be a mapping such as "
                 "{attempts: 5, unclaimed: 10m}");
}

static void test_err_retry_unknown_key(void **state)
{
    (void)state;
    expect_error(MINI "    retry: {attempts: 3, every: 1s}\n", 14, 26,
                 "unknown key 'every' in 'retry' of operation 'make'");
}

static void test_err_retry_duplicate_key(void **state)
{
    (void)state;
    expect_error(MINI "    retry: {attempts: 3, attempts: 4}\n", 14, 26,
                 "duplicate key 'attempts' in 'retry' of operation 'make' "
                 "(first at 14:13)");
}

static void test_err_retry_attempts_type(void **state)
{
    (void)state;
    expect_error(MINI "    retry: {attempts: \"3\"}\n", 14, 24,
                 "'attempts' of operation 'make' must be an integer, not "
                 "'3'");
    expect_error(MINI "    retry: {attempts: many}\n", 14, 23,
                 "'attempts' of operation 'make' must be an integer, not "
                 "'many'");
}

static void test_err_retry_attempts_range(void **state)
{
    (void)state;
    expect_error(MINI "    retry: {attempts: 0}\n", 14, 23,
                 "'attempts' 0 of operation 'make' is out of range "
                 "(1..100)");
    expect_error(MINI "    retry: {attempts: 101}\n", 14, 23,
                 "'attempts' 101 of operation 'make' is out of range "
                 "(1..100)");
}

static void test_err_retry_unclaimed_form(void **state)
{
    static const char *const bad[] = {"10",   "10x",  "m",   "10m5",
                                      "5s1m", "1h1h", "-1s", "1.5h"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char yaml[512], frag[160];

        snprintf(yaml, sizeof(yaml), MINI "    retry: {unclaimed: %s}\n",
                 bad[i]);
        snprintf(frag, sizeof(frag),
                 "'unclaimed' of operation 'make' must be a duration such "
                 "as 30s, 10m or 1h30m, not '%s'",
                 bad[i]);
        expect_error(yaml, 14, 24, frag);
    }
}

static void test_err_retry_unclaimed_range(void **state)
{
    (void)state;
    expect_error(MINI "    retry: {unclaimed: 0s}\n", 14, 24,
                 "'unclaimed' 0s of operation 'make' is out of range "
                 "(1s..168h)");
    expect_error(MINI "    retry: {unclaimed: 169h}\n", 14, 24,
                 "'unclaimed' 169h of operation 'make' is out of range "
                 "(1s..168h)");
    expect_error(MINI "    retry: {unclaimed: 99999999999999999999s}\n", 14,
                 24, "is out of range (1s..168h)");
}

static void test_err_retry_without_retry_step(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: e\n    on_expiry: fail\n"
                             "    retry: {attempts: 3}\n",
                 14, 5,
                 "'retry' in operation 'make', which has no step whose "
                 "expiry policy is retry: the budget would never apply");
}

static void test_err_revert_from_new(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: e\n    on_expiry: {b: revert}\n",
                 13, 20,
                 "expiry policy 'revert' in operation 'make', which "
                 "starts from 'new'");
}

static void test_err_bad_policy(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: e\n    on_expiry: wait\n",
                 13, 16, "unknown expiry policy 'wait' in operation 'make'");
}

static void test_err_expiry_names_non_step(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: a\n"
                             "    failure: e\n"
                             "    on_expiry: {b: retry, a: fail}\n",
                 13, 27,
                 "'on_expiry' of operation 'make' names 'a', which "
                 "is not one of its steps");
}

static void test_err_no_expiry_policy(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  c: {kind: busy, status: c}\n"
                             "operations:\n  make:\n    from: new\n"
                             "    steps: [b, c]\n    success: a\n"
                             "    failure: e\n    on_expiry: {b: retry}\n",
                 9, 3,
                 "busy state 'c' has no expiry policy in operation "
                 "'make'");
}

static void test_err_unreachable_state(void **state)
{
    (void)state;
    expect_error(HEAD STATES "  lost: {kind: rest, status: a}\n" OPS, 7, 3,
                 "unreachable state 'lost'");
}

static void test_err_cannot_reach_rest(void **state)
{
    (void)state;
    expect_error(HEAD STATES "operations:\n  make:\n    from: new\n"
                             "    steps: [b]\n    success: []\n"
                             "    failure: e\n    on_expiry: retry\n",
                 8, 3,
                 "operation 'make' cannot reach a rest state from "
                 "step 'b'");
}

/* More than 64 states or operations: reported at the first one over. */
static void test_err_too_many_states(void **state)
{
    size_t cap = 8192, len;
    char *y = malloc(cap);

    (void)state;
    len = (size_t)snprintf(y, cap, HEAD STATES);
    for (int i = 0; i < 62; i++)
        len += (size_t)snprintf(y + len, cap - len,
                                "  s%d: {kind: rest, status: a}\n", i);
    snprintf(y + len, cap - len, OPS);
    /* States 1-3 are a, b, e at lines 4-6; s61 is the 65th, line 68. */
    expect_error(y, 68, 3, "more than 64 states");
    free(y);
}

static void test_err_too_many_ops(void **state)
{
    size_t cap = 16384, len;
    char *y = malloc(cap);

    (void)state;
    len = (size_t)snprintf(y, cap, HEAD STATES OPS);
    for (int i = 0; i < 64; i++)
        len += (size_t)snprintf(y + len, cap - len,
                                "  o%d: {from: a, steps: b, success: a, "
                                "failure: e, on_expiry: retry}\n",
                                i);
    /* make is at line 8 and o0 at 14; o63 is the 65th op. */
    expect_error(y, 77, 3, "more than 64 operations");
    free(y);
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

static void test_errors_in_file_order(void **state)
{
    struct diags d;
    struct vse_error err;
    vse_machine *m = NULL;
    /* The states are read before the operations whatever their order in
     * the file; the report is still in file order. */
    const char *y = HEAD "operations:\n  make:\n    from: new\n"
                         "    steps: [zz]\n    success: a\n"
                         "    failure: e\n    on_expiry: retry\n"
                         "states:\n  a: {kind: rest, status: a}\n"
                         "  b: {kind: busy, status: b}\n"
                         "  e: {kind: rest, status: e}\n"
                         "  e: {kind: rest, status: e}\n";

    (void)state;
    assert_int_equal(load(y, &d, &m, &err), VSE_EMACHINE);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.line[0], 6);
    assert_int_equal(d.col[0], 13);
    assert_non_null(strstr(d.msg[0], "unknown state 'zz'"));
    assert_int_equal(d.line[1], 14);
    assert_non_null(strstr(d.msg[1], "duplicate state 'e'"));
    assert_string_equal(d.file, "t.yaml");
    assert_string_equal(err.msg, "t.yaml:6:13: unknown state 'zz' in "
                                 "'steps' of operation 'make'");
    assert_string_equal(err.hint, "and 1 more error");
}

static void test_diag_callback_optional(void **state)
{
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    assert_int_equal(vse_machine_load_buffer("x.yaml", "a: 1\n", 5, NULL,
                                             NULL, &m, &err),
                     VSE_EMACHINE);
    assert_memory_equal(err.msg, "x.yaml:1:1: ", 12);
    assert_string_equal(err.hint, "and 4 more errors");
    assert_int_equal(vse_machine_load_buffer("x.yaml", mini, strlen(mini),
                                             NULL, NULL, &m, NULL),
                     0);
    vse_machine_free(m);
    vse_machine_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Hostile input                                                       */
/* ------------------------------------------------------------------ */

static void test_junk_alias(void **state)
{
    (void)state;
    expect_error(HEAD "states:\n  a: &x {kind: rest, status: a}\n"
                      "  b: {kind: busy, status: b}\n"
                      "  e: *x\n" OPS,
                 6, 7, "alias '*x' is not supported");
}

/* The classic "billion laughs": refused at the first alias, never
 * expanded. */
static void test_junk_billion_laughs(void **state)
{
    (void)state;
    expect_error("a: &a [x, x, x, x, x, x, x, x, x]\n"
                 "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                 "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
                 1, 1, "unknown key 'a'");
}

static void test_junk_tag(void **state)
{
    (void)state;
    expect_error("machine: !!str m\nversion: 1\n" STATES OPS, 1, 16,
                 "is not supported in a machine file");
}

static void test_junk_deep_nesting(void **state)
{
    size_t n = 100000;
    char *y = malloc(2 * n + 1);
    struct diags d;
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    memset(y, '[', n);
    memset(y + n, ']', n);
    y[2 * n] = '\0';
    assert_int_equal(load(y, &d, &m, &err), VSE_EMACHINE);
    assert_non_null(strstr(err.msg, "yaml syntax error"));
    memset(y, ' ', 2 * n);
    for (size_t i = 0; i + 3 < 2 * n; i += 4)
        memcpy(y + i, "- \n ", 4); /* block sequences, deeper each line */
    assert_int_equal(load(y, &d, &m, &err), VSE_EMACHINE);
    free(y);
}

static void test_junk_huge_scalars(void **state)
{
    size_t n = 200000;
    char *y = malloc(n + 64);
    struct diags d;
    struct vse_error err;
    vse_machine *m = NULL;

    (void)state;
    memcpy(y, "machine: ", 9);
    memset(y + 9, 'a', n);
    strcpy(y + 9 + n, "\nversion: 1\n");
    assert_int_equal(load(y, &d, &m, &err), VSE_EMACHINE);
    assert_true(has_diag(&d, 1, 10, "invalid machine name 'aaaa"));
    /* The subject is cut short. */
    assert_true(has_diag(&d, 1, 10, "aaaaaaaa...': a name is"));
    memcpy(y, "description: ", 13);
    memset(y + 13, 'x', n);
    strcpy(y + 13 + n, "\n");
    assert_int_equal(load(y, &d, &m, &err), VSE_EMACHINE);
    assert_true(has_diag(&d, 1, 14, "'description' is 200000 bytes long"));
    free(y);
}

/* Random bytes and random YAML-ish text: always a clean refusal. */
static void test_junk_random(void **state)
{
    static const char alphabet[] = "ab:-[]{}&*!|>'\"#\n \t,?%@`~\\0";
    uint32_t x = 12345;
    char buf[512];

    (void)state;
    for (int round = 0; round < 2000; round++) {
        struct vse_error err;
        vse_machine *m = NULL;
        size_t n = (size_t)(round % 500) + 1;
        int rc;

        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = round % 2 ? (char)(x >> 16)
                               : alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
        }
        rc = vse_machine_load_buffer("j.yaml", buf, n, NULL, NULL, &m, &err);
        assert_int_equal(rc, VSE_EMACHINE);
        assert_null(m);
        assert_memory_equal(err.msg, "j.yaml:", 7);
    }
}

/* Every prefix of a valid file either loads or is refused cleanly. */
static void test_junk_truncations(void **state)
{
    const char *y = mini;

    (void)state;
    for (size_t n = 0; n <= strlen(y); n++) {
        struct vse_error err;
        vse_machine *m = NULL;
        int rc = vse_machine_load_buffer("p.yaml", y, n, NULL, NULL, &m,
                                         &err);

        assert_true(rc == 0 || rc == VSE_EMACHINE);
        assert_true((rc == 0) == (m != NULL));
        vse_machine_free(m);
    }
}

/* ---- holds --------------------------------------------------------- */

/* MINI with `extra` appended to operation make (line 14 on). */
#define HOLDING(extra) MINI extra

static void test_holds_load(void **state)
{
    vse_machine *m = must_load(
        HOLDING("    holds: {machine: disk, mode: "
                "shared}\n"
                "    refused_while_held: exclusive\n"));
    const struct vse__op *o = op(m, "make");

    (void)state;
    assert_string_equal(o->hold_machine, "disk");
    assert_int_equal(o->hold_mode, VSE_HOLD_SHARED);
    assert_int_equal(o->refused_while_held, VSE_HOLD_EXCLUSIVE);
    assert_non_null(strstr(vse__machine_canonical(m),
                           "\"holds\":{\"machine\":\"disk\",\"mode\":"
                           "\"shared\"}"));
    assert_non_null(strstr(vse__machine_canonical(m),
                           "\"refused_while_held\":[\"exclusive\"]"));
    vse_machine_free(m);
    m = must_load(HOLDING("    refused_while_held: [exclusive, shared]\n"));
    assert_int_equal(op(m, "make")->refused_while_held,
                     VSE_HOLD_SHARED | VSE_HOLD_EXCLUSIVE);
    vse_machine_free(m);
}

/* A machine without holds keeps the canonical form, and so the hash,
 * that stores pinned before holds existed. */
static void test_holds_absent_keep_hash(void **state)
{
    static const struct {
        const char *name, *hash;
    } pinned[] = {{"volume", "f8510952907d5e42"},
                  {"snapshot", "4132067e1f914178"},
                  {"service", "399506249f463d9c"}};
    vse_machine *a = must_load(mini);
    vse_machine *b = must_load(HOLDING("    holds: {machine: disk, mode: "
                                       "exclusive}\n"));

    (void)state;
    assert_null(strstr(vse__machine_canonical(a), "holds"));
    assert_null(strstr(vse__machine_canonical(a), "refused_while_held"));
    assert_string_not_equal(vse_machine_hash(a), vse_machine_hash(b));
    for (size_t i = 0; i < sizeof(pinned) / sizeof(*pinned); i++) {
        vse_machine *m = strcmp(pinned[i].name, "service") == 0
                             ? must_builtin(pinned[i].name)
                             : must_v1(pinned[i].name);

        assert_string_equal(vse_machine_hash(m), pinned[i].hash);
        vse_machine_free(m);
    }
    vse_machine_free(a);
    vse_machine_free(b);
}

static void test_err_holds_not_mapping(void **state)
{
    (void)state;
    expect_error(HOLDING("    holds: disk\n"), 14, 12,
                 "'holds' of operation 'make' must be a mapping "
                 "{machine: NAME, mode: shared or exclusive}");
}

static void test_err_holds_missing_key(void **state)
{
    (void)state;
    expect_error(HOLDING("    holds: {machine: disk}\n"), 14, 5,
                 "'holds' of operation 'make' has no 'mode'");
}

static void test_err_holds_unknown_key(void **state)
{
    (void)state;
    expect_error(HOLDING("    holds: {machine: disk, mode: shared, "
                         "for: ever}\n"),
                 14, 42, "unknown key 'for' in 'holds' of operation 'make'");
}

static void test_err_holds_bad_machine_name(void **state)
{
    (void)state;
    expect_error(HOLDING("    holds: {machine: Disk, mode: shared}\n"), 14,
                 22, "invalid held machine name 'Disk'");
}

static void test_err_holds_unknown_mode(void **state)
{
    (void)state;
    expect_error(HOLDING("    holds: {machine: disk, mode: shred}\n"), 14, 34,
                 "unknown hold mode 'shred' in 'holds' of operation 'make': "
                 "expected shared or exclusive");
}

static void test_err_refused_unknown_mode(void **state)
{
    (void)state;
    expect_error(HOLDING("    refused_while_held: [shared, locked]\n"), 14,
                 34,
                 "unknown hold mode 'locked' in 'refused_while_held' of "
                 "operation 'make'");
}

static void test_err_refused_repeated(void **state)
{
    (void)state;
    expect_error(HOLDING("    refused_while_held: [shared, shared]\n"), 14,
                 34,
                 "hold mode 'shared' repeated in 'refused_while_held' of "
                 "operation 'make'");
}

static void test_err_refused_empty(void **state)
{
    (void)state;
    expect_error(HOLDING("    refused_while_held: []\n"), 14, 5,
                 "'refused_while_held' of operation 'make' is empty");
}

static void test_err_refused_not_list(void **state)
{
    (void)state;
    expect_error(HOLDING("    refused_while_held: {shared: 1}\n"), 14, 26,
                 "'refused_while_held' of operation 'make' must be a hold "
                 "mode or a list of them");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_names),
        cmocka_unit_test(test_builtin_unknown),
        cmocka_unit_test(test_volume_states),
        cmocka_unit_test(test_volume_create_transitions),
        cmocka_unit_test(test_volume_other_transitions),
        cmocka_unit_test(test_snapshot_transitions),
        cmocka_unit_test(test_op_index),
        cmocka_unit_test(test_volume_json),
        cmocka_unit_test(test_render_table),
        cmocka_unit_test(test_render_mermaid),
        cmocka_unit_test(test_render_dot_shapes),
        cmocka_unit_test(test_render_dot_accepted_by_dot),
        cmocka_unit_test(test_render_bad_format),
        cmocka_unit_test(test_mini_loads),
        cmocka_unit_test(test_hash_stable),
        cmocka_unit_test(test_hash_ignores_presentation),
        cmocka_unit_test(test_hash_changes_with_state),
        cmocka_unit_test(test_canonical_has_no_hash_or_description),
        cmocka_unit_test(test_diff_identical),
        cmocka_unit_test(test_diff_version_and_state),
        cmocka_unit_test(test_diff_operation_changed),
        cmocka_unit_test(test_diff_state_removed_and_changed),
        cmocka_unit_test(test_diff_unreadable_pin),
        cmocka_unit_test(test_diff_small_buffer),
        cmocka_unit_test(test_err_yaml_syntax),
        cmocka_unit_test(test_err_unclosed_flow_sequence),
        cmocka_unit_test(test_err_unclosed_flow_mapping),
        cmocka_unit_test(test_err_empty),
        cmocka_unit_test(test_err_only_comments),
        cmocka_unit_test(test_err_two_documents),
        cmocka_unit_test(test_err_top_not_mapping),
        cmocka_unit_test(test_err_not_utf8),
        cmocka_unit_test(test_err_nul_byte),
        cmocka_unit_test(test_err_too_big_buffer),
        cmocka_unit_test(test_err_too_big_file),
        cmocka_unit_test(test_err_unreadable_file),
        cmocka_unit_test(test_load_file_ok),
        cmocka_unit_test(test_err_missing_key),
        cmocka_unit_test(test_err_unknown_top_key),
        cmocka_unit_test(test_err_unknown_state_key),
        cmocka_unit_test(test_err_unknown_op_key),
        cmocka_unit_test(test_err_duplicate_key),
        cmocka_unit_test(test_err_version_type),
        cmocka_unit_test(test_err_wrong_type),
        cmocka_unit_test(test_err_bad_names),
        cmocka_unit_test(test_err_reserved_new),
        cmocka_unit_test(test_err_long_name),
        cmocka_unit_test(test_err_duplicate_state),
        cmocka_unit_test(test_err_duplicate_operation),
        cmocka_unit_test(test_err_bad_kind),
        cmocka_unit_test(test_err_missing_status),
        cmocka_unit_test(test_err_status_not_in_vocabulary),
        cmocka_unit_test(test_err_unknown_state_reference),
        cmocka_unit_test(test_err_from_busy),
        cmocka_unit_test(test_err_step_not_busy),
        cmocka_unit_test(test_err_step_repeated),
        cmocka_unit_test(test_err_success_not_rest),
        cmocka_unit_test(test_err_failure_not_rest),
        cmocka_unit_test(test_err_edge_from_non_step),
        cmocka_unit_test(test_err_self_edge),
        cmocka_unit_test(test_err_edge_target),
        cmocka_unit_test(test_retry_builtin_defaults_keep_hash),
        cmocka_unit_test(test_builtin_v2_holds),
        cmocka_unit_test(test_retry_declared),
        cmocka_unit_test(test_retry_partial),
        cmocka_unit_test(test_retry_default_written_keeps_hash),
        cmocka_unit_test(test_retry_diff),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_err_retry_not_mapping),
        cmocka_unit_test(test_err_retry_unknown_key),
        cmocka_unit_test(test_err_retry_duplicate_key),
        cmocka_unit_test(test_err_retry_attempts_type),
        cmocka_unit_test(test_err_retry_attempts_range),
        cmocka_unit_test(test_err_retry_unclaimed_form),
        cmocka_unit_test(test_err_retry_unclaimed_range),
        cmocka_unit_test(test_err_retry_without_retry_step),
        cmocka_unit_test(test_err_revert_from_new),
        cmocka_unit_test(test_err_bad_policy),
        cmocka_unit_test(test_err_expiry_names_non_step),
        cmocka_unit_test(test_err_no_expiry_policy),
        cmocka_unit_test(test_holds_load),
        cmocka_unit_test(test_holds_absent_keep_hash),
        cmocka_unit_test(test_err_holds_not_mapping),
        cmocka_unit_test(test_err_holds_missing_key),
        cmocka_unit_test(test_err_holds_unknown_key),
        cmocka_unit_test(test_err_holds_bad_machine_name),
        cmocka_unit_test(test_err_holds_unknown_mode),
        cmocka_unit_test(test_err_refused_unknown_mode),
        cmocka_unit_test(test_err_refused_repeated),
        cmocka_unit_test(test_err_refused_empty),
        cmocka_unit_test(test_err_refused_not_list),
        cmocka_unit_test(test_err_unreachable_state),
        cmocka_unit_test(test_err_cannot_reach_rest),
        cmocka_unit_test(test_err_too_many_states),
        cmocka_unit_test(test_err_too_many_ops),
        cmocka_unit_test(test_errors_in_file_order),
        cmocka_unit_test(test_diag_callback_optional),
        cmocka_unit_test(test_junk_alias),
        cmocka_unit_test(test_junk_billion_laughs),
        cmocka_unit_test(test_junk_tag),
        cmocka_unit_test(test_junk_deep_nesting),
        cmocka_unit_test(test_junk_huge_scalars),
        cmocka_unit_test(test_junk_random),
        cmocka_unit_test(test_junk_truncations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
