/*
 * util.h - the small helpers every part of vse may use: error filling,
 * bounded copies, allocation (libvse's util.c and error.c), one monotonic
 * clock and one growable array (header-only, so that the load harness,
 * which does not link libvse, has them too).
 *
 * This is all a store backend sees besides vse.h and store.h: it must not
 * know how machines or the db handle are represented (src/lib/vse-int.h),
 * and the build gives it no include path to them.
 */
#ifndef VSE_UTIL_H
#define VSE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "vse.h"

/* ---- errors (error.c) ---- */

/* Set err (if not NULL): code and printf-style primary message; returns
 * code, so that `return vse__err(err, VSE_EINVAL, ...)` reads as one. */
int vse__err(struct vse_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set detail / hint of err (if not NULL); returns nothing. */
void vse__err_detail(struct vse_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vse__err_hint(struct vse_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- strings and memory (util.c) ---- */

/* Bounded copy that always terminates; returns strlen(src) like strlcpy. */
size_t vse__strlcpy(char *dst, const char *src, size_t size);
/* malloc that never returns NULL on success path: NULL means ENOMEM. */
void *vse__malloc(size_t n);
void *vse__calloc(size_t n, size_t size);
char *vse__strdup(const char *s);

/* ---- time ---- */

/*
 * Monotonic microseconds, for durations, deadlines and latencies only:
 * never stored, never shown as a time of day.  The wall clock (history
 * timestamps, leases shared between hosts) is vse_now_us() in vse.h.
 */
static inline int64_t vse__now_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The same in milliseconds. */
static inline int64_t vse__now_mono_ms(void)
{
    return vse__now_mono_us() / 1000;
}

/* ---- a growable array ---- */

/*
 * VSE_ARRAY(T) is a struct { T *v; size_t n, cap; } that starts zeroed
 * ({0}) and grows by doubling:
 *
 *     VSE_ARRAY(struct vse_resource) rows = {0};
 *     if (vse__array_push(&rows, *r) < 0)
 *         return VSE_ENOMEM;
 *     ...
 *     vse__array_release(&rows);
 *
 * The elements are the caller's; v is malloc'ed (the libc allocator, so
 * vse_free() matches it) and may move on every growth.
 */
#define VSE_ARRAY(T)                                                         \
    struct {                                                                 \
        T *v;                                                                \
        size_t n, cap;                                                       \
    }

/* Make room for `need` elements of `size` bytes in v (capacity *cap):
 * the (possibly moved) storage with *cap >= need, or, out of memory, v
 * itself with *cap unchanged.  Returning the pointer (rather than writing
 * through a void **) keeps the element type's aliasing intact. */
static inline void *vse__array_grow_(void *v, size_t *cap, size_t need,
                                     size_t size)
{
    size_t c = *cap ? *cap : 16;
    void *p;

    if (need <= *cap)
        return v;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return v;
        c *= 2;
    }
    if (c > SIZE_MAX / size)
        return v;
    p = realloc(v, c * size);
    if (p == NULL)
        return v;
    *cap = c;
    return p;
}

/* Room for `need` elements in the storage v of capacity cap (lvalues,
 * for arrays whose fields have other names; need is evaluated twice): 0,
 * or VSE_ENOMEM with v and cap unchanged. */
#define vse__grow(v, cap, need)                                              \
    ((v) = vse__array_grow_((v), &(cap), (need), sizeof(*(v))),              \
     (cap) >= (size_t)(need) ? 0 : VSE_ENOMEM)

/* Room for `need` elements in array a: vse__grow() on a VSE_ARRAY. */
#define vse__array_reserve(a, need) vse__grow((a)->v, (a)->cap, (need))

/* Append one element (copied): 0, or VSE_ENOMEM with a unchanged. */
#define vse__array_push(a, elem)                                             \
    (vse__array_reserve((a), (a)->n + 1) < 0                                 \
         ? VSE_ENOMEM                                                        \
         : ((a)->v[(a)->n++] = (elem), 0))

/* Free the storage and zero a; the elements' own contents are the
 * caller's to free first. */
#define vse__array_release(a)                                                \
    do {                                                                     \
        free((a)->v);                                                        \
        (a)->v = NULL;                                                       \
        (a)->n = (a)->cap = 0;                                               \
    } while (0)

#endif /* VSE_UTIL_H */
