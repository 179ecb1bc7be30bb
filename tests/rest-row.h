/*
 * rest-row.h - a store-level transition for tests that drive the store
 * interface (store.h) directly: resource `id` at rest in "available" at
 * `version`, with its history row (a create at version 1, a step after).
 * Shared by the conformance suite's group tests and pgbatch.c.
 */
#ifndef VSE_TEST_REST_ROW_H
#define VSE_TEST_REST_ROW_H

#include <stdio.h>
#include <string.h>

#include "store.h"

static inline void rest_row(struct vse_resource *r, struct vse_event *e,
                            const char *id, int64_t version)
{
    memset(r, 0, sizeof(*r));
    memset(e, 0, sizeof(*e));
    snprintf(r->id, sizeof(r->id), "%s", id);
    strcpy(r->machine, "volume");
    strcpy(r->state, "available");
    r->since = r->updated = r->created = 10 * version;
    r->version = version;
    snprintf(e->resource, sizeof(e->resource), "%s", id);
    strcpy(e->machine, "volume");
    e->version = version;
    e->kind = version == 1 ? VSE_KIND_CREATE : VSE_KIND_STEP;
    strcpy(e->from, "x");
    strcpy(e->to, "available");
    e->at = 10 * version;
}

#endif /* VSE_TEST_REST_ROW_H */
