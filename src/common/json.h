/*
 * json.h - the JSON shapes of resources, history rows and errors, shared
 * by vsectl (which prints them) and vsed (which serves them), so that both
 * speak exactly one form.  Built on jansson; not part of libvse.
 */
#ifndef VSE_COMMON_JSON_H
#define VSE_COMMON_JSON_H

#include <jansson.h>

#include "vse.h"

#define VSE_STATUS_MAX 63

/* A JSON string, or null when s is empty; never fails on bad UTF-8. */
json_t *vse__jstr(const char *s);
/* RFC 3339 string, or null for 0. */
json_t *vse__jtime(int64_t us);
/* Parse what vse_time_format() prints back to microseconds; -1 if bad. */
int64_t vse__time_parse(const char *s);

/* A resource; `status` is its machine's visible status ("" unknown). */
json_t *vse__json_resource(const struct vse_resource *r, const char *status);
json_t *vse__json_event(const struct vse_event *e);
/* The inverses: 0, or VSE_EINVAL when j is not of that shape.  `status`
 * (may be NULL) receives up to VSE_STATUS_MAX bytes. */
int vse__json_to_resource(const json_t *j, struct vse_resource *r,
                          char *status);
int vse__json_to_event(const json_t *j, struct vse_event *e);
/* A hold, every field (GET /v1/holds), and back; -1 if malformed. */
json_t *vse__json_hold(const struct vse_hold *h);
int vse__json_to_hold(const json_t *j, struct vse_hold *h);
/*
 * Add to resource object res (of resource id) "holds": the holds on it
 * among v[0..n) ({holder, machine, op, op_id, mode, owner, since}), and
 * "holding": what it holds ({held, mode, since}) or null.
 */
void vse__json_attach_holds(json_t *res, const char *id,
                            const struct vse_hold *v, size_t n);

/* The API's error code for a library code ("conflict"); never NULL. */
const char *vse__err_code(int rc);
/* The inverse; 0 when the code is not one of the library's. */
int vse__err_from_code(const char *code);

#endif /* VSE_COMMON_JSON_H */
