/*
 * names.c - the names of names.h and their start-up check against the
 * loaded machines (main.c calls it once, before the roles start).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "names.h"

#define VSED_NAME_DEF_(ident, machine, kind, name, used)                     \
    const char ident[] = name;
VSED_NAME_MAP(VSED_NAME_DEF_)
#undef VSED_NAME_DEF_

static const struct {
    const char *machine;
    enum vsed_name_kind kind;
    const char *name;
    const char *used;
} names[] = {
#define VSED_NAME_ROW_(ident, machine, kind, name, used)                     \
    {machine, VSED_NAME_##kind, name, used},
    VSED_NAME_MAP(VSED_NAME_ROW_)
#undef VSED_NAME_ROW_
};

/* 1 if machine m has the operation `op`: the public API names states,
 * not operations, so read them from m's JSON form. */
static int has_op(const vse_machine *m, const char *op)
{
    char *text = NULL;
    json_t *j, *o;
    size_t i;
    int found = 0;

    if (vse_machine_render(m, VSE_FORMAT_JSON, &text, NULL) < 0)
        return 0;
    j = json_loads(text, 0, NULL);
    vse_free(text);
    json_array_foreach(json_object_get(j, "operations"), i, o)
        found |= json_is_string(json_object_get(o, "name")) &&
                 strcmp(json_string_value(json_object_get(o, "name")), op) ==
                     0;
    json_decref(j);
    return found;
}

/* The problem with names[i], into buf; 0 if none. */
static int problem(vsed_find_machine_fn *find, void *ctx, size_t i, char *buf,
                   size_t size)
{
    const vse_machine *m = find(ctx, names[i].machine);
    int busy;

    if (m == NULL) {
        snprintf(buf, size, "machine '%s' is not loaded (needed by %s)",
                 names[i].machine, names[i].used);
        return 1;
    }
    if (names[i].kind == VSED_NAME_OP) {
        if (has_op(m, names[i].name))
            return 0;
        snprintf(buf, size,
                 "machine '%s' has no operation '%s' (needed by "
                 "%s)",
                 names[i].machine, names[i].name, names[i].used);
        return 1;
    }
    busy = vse_machine_state_busy(m, names[i].name);
    if (busy < 0) {
        snprintf(buf, size, "machine '%s' has no state '%s' (needed by %s)",
                 names[i].machine, names[i].name, names[i].used);
        return 1;
    }
    if (busy != (names[i].kind == VSED_NAME_BUSY)) {
        snprintf(buf, size,
                 "state '%s' of machine '%s' is %s, but vsed "
                 "needs it %s (used by %s)",
                 names[i].name, names[i].machine, busy ? "busy" : "rest",
                 busy ? "rest" : "busy", names[i].used);
        return 1;
    }
    return 0;
}

const vse_machine *vsed_find_in_db(void *ctx, const char *name)
{
    return vse_find_machine(ctx, name);
}

int vsed_names_check(vsed_find_machine_fn *find, void *ctx, char *msg,
                     size_t size)
{
    char buf[512];
    int n = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!problem(find, ctx, i, buf, sizeof(buf)))
            continue;
        if (n++ == 0)
            snprintf(msg, size, "%s", buf);
    }
    return n;
}
