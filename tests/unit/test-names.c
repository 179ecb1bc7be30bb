/*
 * test-names.c - vsed's start-up check of the state and operation names
 * its code relies on (src/vsed/names.c) against loaded machines: the
 * built-ins pass; a machine without a state, an operation or a machine
 * the code needs, or with a state of the wrong kind, is named exactly.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

/* The machines a test gives the check: by name, NULL = not loaded. */
struct set {
    vse_machine *m[3];
};

static const vse_machine *find(void *ctx, const char *name)
{
    struct set *s = ctx;

    for (int i = 0; i < 3; i++)
        if (s->m[i] != NULL && strcmp(vse_machine_name(s->m[i]), name) == 0)
            return s->m[i];
    return NULL;
}

static void builtins(struct set *s)
{
    static const char *const names[] = {"volume", "snapshot", "service"};

    for (int i = 0; i < 3; i++)
        assert_int_equal(vse_machine_builtin(names[i], &s->m[i], NULL), 0);
}

static void release(struct set *s)
{
    for (int i = 0; i < 3; i++)
        vse_machine_free(s->m[i]);
}

/* machines/FILE with every `from` that starts a word replaced by `to`,
 * loaded into *m (the state in_use, not the op extend_in_use). */
static void load_edited(const char *file, const char *from, const char *to,
                        vse_machine **m)
{
    char path[256], *text, *out, *p;
    size_t n = 0, cap = 1 << 20, k = 0;
    FILE *f;

    snprintf(path, sizeof(path), "machines/%s", file);
    f = fopen(path, "r");
    assert_non_null(f);
    text = calloc(1, cap);
    out = calloc(1, 2 * cap);
    assert_non_null(text);
    assert_non_null(out);
    n = fread(text, 1, cap - 1, f);
    fclose(f);
    for (p = text; p < text + n;) {
        if (strncmp(p, from, strlen(from)) == 0 &&
            (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            memcpy(out + k, to, strlen(to));
            k += strlen(to);
            p += strlen(from);
        } else {
            out[k++] = *p++;
        }
    }
    vse_machine_free(*m);
    *m = NULL;
    assert_int_equal(
        vse_machine_load_buffer(path, out, k, NULL, NULL, m, NULL), 0);
    free(text);
    free(out);
}

static void builtins_pass(void **state)
{
    struct set s = {{NULL}};
    char msg[512] = "";

    builtins(&s);
    assert_int_equal(vsed_names_check(find, &s, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "");
    release(&s);
}

static void missing_state(void **state)
{
    struct set s = {{NULL}};
    char msg[512] = "";

    builtins(&s);
    load_edited("volume.yaml", "in_use", "attached_rest", &s.m[0]);
    assert_int_equal(vsed_names_check(find, &s, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "machine 'volume' has no state 'in_use' "
                             "(needed by api (attach, attachments, "
                             "force-delete, snapshot create))");
    release(&s);
}

static void missing_op(void **state)
{
    struct set s = {{NULL}};
    char msg[512] = "";

    builtins(&s);
    load_edited("volume.yaml", "\n  extend:\n", "\n  grow:\n", &s.m[0]);
    assert_int_equal(vsed_names_check(find, &s, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "machine 'volume' has no operation 'extend' "
                             "(needed by api (os-extend))");
    release(&s);
}

static void wrong_kind(void **state)
{
    /* A service machine whose `running` is a rest state and `stopped` a
     * step: the heartbeat code would hold a lease at rest. */
    static const char yaml[] = "machine: service\n"
                               "version: 1\n"
                               "statuses: [up, down]\n"
                               "states:\n"
                               "  running: {kind: rest, status: up}\n"
                               "  stopped: {kind: busy, status: down}\n"
                               "  idle: {kind: rest, status: down}\n"
                               "operations:\n"
                               "  run:\n"
                               "    from: [new, idle]\n"
                               "    steps: [stopped]\n"
                               "    success: [running]\n"
                               "    failure: idle\n"
                               "    on_expiry: retry\n";
    struct set s = {{NULL}};
    char msg[512] = "";

    builtins(&s);
    vse_machine_free(s.m[2]);
    s.m[2] = NULL;
    assert_int_equal(vse_machine_load_buffer("t.yaml", yaml, strlen(yaml),
                                             NULL, NULL, &s.m[2], NULL),
                     0);
    assert_int_equal(vsed_names_check(find, &s, msg, sizeof(msg)), 2);
    assert_string_equal(msg, "state 'running' of machine 'service' is rest, "
                             "but vsed needs it busy (used by heartbeats, "
                             "scheduler role)");
    release(&s);
}

static void missing_machine(void **state)
{
    struct set s = {{NULL}};
    char msg[512] = "";

    builtins(&s);
    vse_machine_free(s.m[2]);
    s.m[2] = NULL;
    assert_int_equal(vsed_names_check(find, &s, msg, sizeof(msg)), 3);
    assert_string_equal(msg, "machine 'service' is not loaded (needed by "
                             "heartbeats)");
    release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtins_pass),   cmocka_unit_test(missing_state),
        cmocka_unit_test(missing_op),      cmocka_unit_test(wrong_kind),
        cmocka_unit_test(missing_machine),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
