/*
 * render.c - show a loaded machine as a table for people, as Graphviz DOT
 * and Mermaid diagrams, and as JSON for other tools.  Everything is read
 * from the tables machine.c built, so the pictures and the enforcer cannot
 * disagree.  `vsectl machine show` and docs/diagrams/ come from here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vse-int.h"

/* A growing NUL-terminated string; `failed` sticks after ENOMEM. */
struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = b->cap ? b->cap * 2 : 1024;
            char *p;

            while (cap - b->len <= (size_t)n)
                cap *= 2;
            p = realloc(b->p, cap);
            if (p == NULL) {
                b->failed = 1;
                return;
            }
            b->p = p;
            b->cap = cap;
        }
    }
}

/* Called for each allowed transition; from is "new" for creation. */
typedef void transition_fn(void *ctx, const char *op, const char *kind,
                           const char *from, const char *to);

/*
 * Every transition, in the order of the JSON "transitions".  They are read
 * back from the canonical form rather than derived again here, so that
 * the derivation rules live in machine.c only.
 */
static int each_transition(const vse_machine *m, transition_fn *fn, void *ctx)
{
    json_t *canon = json_loads(m->canonical ? m->canonical : "", 0, NULL);
    json_t *v;
    size_t i;

    if (canon == NULL)
        return VSE_ENOMEM;
    json_array_foreach(json_object_get(canon, "transitions"), i, v) {
        const char *op = json_string_value(json_object_get(v, "op"));
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *from = json_string_value(json_object_get(v, "from"));
        const char *to = json_string_value(json_object_get(v, "to"));

        if (op && kind && from && to)
            fn(ctx, op, kind, from, to);
    }
    json_decref(canon);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Table                                                               */
/* ------------------------------------------------------------------ */

struct table_ctx {
    struct sbuf *b;
    int wop, wstate;
};

static void table_row(void *ctx, const char *op, const char *kind,
                      const char *from, const char *to)
{
    struct table_ctx *t = ctx;

    sb_printf(t->b, "%-*s  %-6s  %-*s  %s\n", t->wop, op, kind, t->wstate,
              from, to);
}

static const char *const expiry_name[] = {"-", "retry", "fail", "revert"};

static int render_table(const vse_machine *m, struct sbuf *b)
{
    struct table_ctx t = {b, 2, 5};

    for (int s = 0; s < m->nstates; s++)
        if ((int)strlen(m->states[s].name) > t.wstate)
            t.wstate = (int)strlen(m->states[s].name);
    for (int o = 0; o < m->nops; o++)
        if ((int)strlen(m->ops[o].name) > t.wop)
            t.wop = (int)strlen(m->ops[o].name);

    sb_printf(b, "machine %s  version %d  hash %s\n", m->name, m->version,
              m->hash);
    if (m->description != NULL)
        sb_printf(b, "%s\n", m->description);

    sb_printf(b, "\n%-*s  KIND  STATUS\n", t.wstate, "STATE");
    for (int s = 0; s < m->nstates; s++)
        sb_printf(b, "%-*s  %-4s  %s%s\n", t.wstate, m->states[s].name,
                  m->states[s].busy ? "busy" : "rest", m->states[s].status,
                  vse__machine_terminal(m, s) ? "  (terminal)" : "");

    sb_printf(b, "\n%-*s  KIND    %-*s  TO\n", t.wop, "OP", t.wstate, "FROM");
    if (each_transition(m, table_row, &t) != 0)
        return VSE_ENOMEM;

    /* Expiry is per (op, step): the same busy state may sit in two ops. */
    sb_printf(b, "\n%-*s  %-*s  ON EXPIRY\n", t.wop, "OP", t.wstate, "STEP");
    for (int o = 0; o < m->nops; o++)
        for (int i = 0; i < m->ops[o].nsteps; i++) {
            int s = m->ops[o].steps[i];

            sb_printf(b, "%-*s  %-*s  %s\n", t.wop, m->ops[o].name, t.wstate,
                      m->states[s].name, expiry_name[m->ops[o].expiry[s]]);
        }

    /* The budget in force, declared or default: what the reaper does. */
    for (int o = 0, header = 0; o < m->nops; o++) {
        const struct vse__op *op = &m->ops[o];
        char d[32];

        if (!vse__op_retries(op))
            continue;
        if (!header++)
            sb_printf(b, "\n%-*s  ATTEMPTS  UNCLAIMED\n", t.wop, "OP");
        sb_printf(b, "%-*s  %-8d  %s%s\n", t.wop, op->name,
                  op->retry_attempts,
                  vse__duration_format(op->retry_unclaimed_us, d, sizeof(d)),
                  op->retry_attempts == VSE_RETRY_ATTEMPTS_DEFAULT &&
                          op->retry_unclaimed_us ==
                              VSE_RETRY_UNCLAIMED_DEFAULT_US
                      ? "  (default)"
                      : "");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* DOT and Mermaid                                                     */
/* ------------------------------------------------------------------ */

static void dot_edge(void *ctx, const char *op, const char *kind,
                     const char *from, const char *to)
{
    /* Names are [a-z][a-z0-9_]*, so quoting them is enough. */
    sb_printf(ctx, "    \"%s\" -> \"%s\" [label=\"%s\"%s];\n", from, to, op,
              strcmp(kind, "fail") == 0 ? ", style=dashed" : "");
}

static int render_dot(const vse_machine *m, struct sbuf *b)
{
    sb_printf(b, "digraph \"%s\" {\n", m->name);
    sb_printf(b, "    label=\"%s v%d (%s)\";\n    labelloc=t;\n", m->name,
              m->version, m->hash);
    sb_printf(b, "    rankdir=LR;\n");
    sb_printf(b, "    node [fontname=\"Helvetica\", fontsize=11];\n");
    sb_printf(b, "    edge [fontname=\"Helvetica\", fontsize=9];\n");
    /* `new` is reserved, so it cannot clash with a state's node. */
    sb_printf(b, "    \"%s\" [shape=point, width=0.15, label=\"\"];\n",
              VSE_STATE_NEW);
    for (int s = 0; s < m->nstates; s++)
        sb_printf(b, "    \"%s\" [shape=%s, label=\"%s\\n(%s)\"%s];\n",
                  m->states[s].name, m->states[s].busy ? "box" : "ellipse",
                  m->states[s].name, m->states[s].status,
                  vse__machine_terminal(m, s) ? ", peripheries=2" : "");
    if (each_transition(m, dot_edge, b) != 0)
        return VSE_ENOMEM;
    sb_printf(b, "}\n");
    return 0;
}

static void mermaid_edge(void *ctx, const char *op, const char *kind,
                         const char *from, const char *to)
{
    sb_printf(ctx, "    %s --> %s : %s%s\n",
              strcmp(from, VSE_STATE_NEW) == 0 ? "[*]" : from, to, op,
              strcmp(kind, "fail") == 0 ? " (fail)" : "");
}

static int render_mermaid(const vse_machine *m, struct sbuf *b)
{
    sb_printf(b, "stateDiagram-v2\n");
    for (int s = 0; s < m->nstates; s++)
        sb_printf(b, "    state \"%s (%s)\" as %s\n", m->states[s].name,
                  m->states[s].status, m->states[s].name);
    if (each_transition(m, mermaid_edge, b) != 0)
        return VSE_ENOMEM;
    for (int s = 0; s < m->nstates; s++)
        if (vse__machine_terminal(m, s))
            sb_printf(b, "    %s --> [*]\n", m->states[s].name);
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/*
 * The JSON render is the canonical form plus hash and description, so
 * that what outside tools read is exactly what the hash covers.  Keys are
 * re-ordered for people: identity first, then states, operations and
 * transitions.
 */
static const char *const top_order[] = {"machine",     "version",
                                        "hash",        "description",
                                        "states",      "operations",
                                        "transitions", NULL};
static const char *const state_order[] = {"name", "kind", "status", NULL};
static const char *const op_order[] = {"name",      "from",    "steps",
                                       "edges",     "success", "failure",
                                       "on_expiry", "retry",   NULL};
static const char *const tr_order[] = {"op", "kind", "from", "to", NULL};

/* A copy of object o with the keys in `order` first, in that order. */
static json_t *ordered(json_t *o, const char *const *order)
{
    json_t *r = json_object(), *v;
    const char *k;

    for (size_t i = 0; order[i] != NULL; i++) {
        v = json_object_get(o, order[i]);
        if (v != NULL)
            json_object_set(r, order[i], v);
    }
    json_object_foreach(o, k, v)
        if (json_object_get(r, k) == NULL)
            json_object_set(r, k, v);
    return r;
}

static void order_items(json_t *a, const char *const *order)
{
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v)
        json_array_set_new(a, i, ordered(v, order));
}

static int render_json(const vse_machine *m, struct sbuf *b)
{
    json_t *canon = json_loads(m->canonical ? m->canonical : "", 0, NULL);
    json_t *o, *v;
    char *text;
    size_t i;

    if (canon == NULL)
        return VSE_ENOMEM;
    json_object_set_new(canon, "hash", json_string(m->hash));
    if (m->description != NULL)
        json_object_set_new(canon, "description",
                            json_string(m->description));
    /* The canonical form leaves a default budget out (to keep hashes):
     * here every op that retries shows the budget in force. */
    json_array_foreach(json_object_get(canon, "operations"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        int op = name ? vse__machine_op(m, name) : -1;
        json_t *r = op >= 0 ? vse__op_retry_json(&m->ops[op]) : NULL;

        if (r != NULL)
            json_object_set_new(v, "retry", r);
    }
    order_items(json_object_get(canon, "states"), state_order);
    order_items(json_object_get(canon, "operations"), op_order);
    order_items(json_object_get(canon, "transitions"), tr_order);
    o = ordered(canon, top_order);
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    json_decref(canon);
    if (text == NULL)
        return VSE_ENOMEM;
    sb_printf(b, "%s\n", text);
    free(text);
    return 0;
}

int vse_machine_render(const vse_machine *m, enum vse_format fmt, char **out,
                       struct vse_error *err)
{
    struct sbuf b = {NULL, 0, 0, 0};
    int rc = 0;

    if (out == NULL || m == NULL)
        return vse__err(err, VSE_EINVAL, "no machine to render");
    *out = NULL;
    switch (fmt) {
    case VSE_FORMAT_TABLE: rc = render_table(m, &b); break;
    case VSE_FORMAT_DOT: rc = render_dot(m, &b); break;
    case VSE_FORMAT_MERMAID: rc = render_mermaid(m, &b); break;
    case VSE_FORMAT_JSON: rc = render_json(m, &b); break;
    default:
        return vse__err(err, VSE_EINVAL, "unknown render format %d",
                        (int)fmt);
    }
    if (rc == 0 && (b.failed || b.p == NULL))
        rc = VSE_ENOMEM;
    if (rc != 0) {
        free(b.p);
        return vse__err(err, rc, "out of memory rendering machine '%s'",
                        m->name);
    }
    /* realloc'd with the libc allocator, which vse_free() matches. */
    *out = b.p;
    return 0;
}
