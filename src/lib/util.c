/*
 * util.c - small things every libvse module needs: allocation, bounded
 * copies, random op_ids, hashing, time, and the validation of ids that
 * come from outside (command lines, HTTP bodies).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vse-int.h"

void *vse__malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *vse__calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

char *vse__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void vse_free(void *p)
{
    free(p);
}

size_t vse__strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);

    if (size > 0) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int vse__uuid(char *buf, struct vse_error *err)
{
    unsigned char b[16];
    size_t got = 0;

    /* getrandom() on the urandom pool: unguessable, so an op_id is a
     * fencing token no other worker can forge. */
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            vse__err(err, VSE_EIO, "cannot make an op_id");
            vse__err_detail(err, "getrandom: %s", strerror(errno));
            return VSE_EIO;
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, VSE_OPID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int vse_uuid4(char *buf, struct vse_error *err)
{
    return vse__uuid(buf, err);
}

void vse__hash_hex(const void *data, size_t len, char out[17])
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int64_t vse_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *vse_time_format(int64_t us, char *buf, size_t size)
{
    struct tm tm;
    time_t t = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    char base[24];

    if (frac < 0) {
        frac += 1000000;
        t -= 1;
    }
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06ldZ", base, frac);
    return buf;
}

/* Length of the UTF-8 sequence at s, or 0 if it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (s[0] == 0xe0 && s[1] < 0xa0)
            return 0; /* overlong */
        if (s[0] == 0xed && s[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        if (s[0] == 0xf0 && s[1] < 0x90)
            return 0;
        if (s[0] == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

int vse_check_id(const char *what, const char *id, struct vse_error *err)
{
    const unsigned char *p = (const unsigned char *)id;
    size_t n;

    if (id == NULL || id[0] == '\0')
        return vse__err(err, VSE_EINVAL, "%s is empty", what);
    n = strlen(id);
    if (n > VSE_ID_MAX)
        return vse__err(err, VSE_EINVAL,
                        "%s is %zu bytes long, the limit is %d", what, n,
                        VSE_ID_MAX);
    for (size_t i = 0; i < n;) {
        size_t l;

        if (p[i] < 0x20 || p[i] == 0x7f)
            return vse__err(err, VSE_EINVAL,
                            "%s holds a control character (0x%02x) at byte "
                            "%zu",
                            what, p[i], i + 1);
        l = utf8_len(p + i);
        if (l == 0)
            return vse__err(err, VSE_EINVAL,
                            "%s is not valid UTF-8 at byte %zu", what, i + 1);
        i += l;
    }
    return 0;
}

static const char *const kind_names[] = {
    NULL,    "create", "begin",  "step",  "finish", "fail",
    "claim", "renew",  "expire", "reset", "update", "upgrade",
};

const char *vse_kind_name(enum vse_kind k)
{
    if ((int)k <= 0 || (size_t)k >= sizeof(kind_names) / sizeof(*kind_names))
        return NULL;
    return kind_names[k];
}

enum vse_kind vse_kind_parse(const char *s)
{
    for (size_t i = 1; i < sizeof(kind_names) / sizeof(*kind_names); i++)
        if (s != NULL && strcmp(s, kind_names[i]) == 0)
            return (enum vse_kind)i;
    return 0;
}

enum vse_format vse_format_parse(const char *s)
{
    if (s == NULL)
        return 0;
    if (strcmp(s, "table") == 0)
        return VSE_FORMAT_TABLE;
    if (strcmp(s, "dot") == 0)
        return VSE_FORMAT_DOT;
    if (strcmp(s, "mermaid") == 0)
        return VSE_FORMAT_MERMAID;
    if (strcmp(s, "json") == 0)
        return VSE_FORMAT_JSON;
    return 0;
}
