/*
 * http.c - vse-load's one HTTP client (libcurl): a handle per thread that
 * speaks to one API server as the real Cinder client does (noauth token
 * USER:PROJECT, the API microversion, JSON), and the clock every part of
 * vse-load measures with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "load.h"

void load_oom(void)
{
    fprintf(stderr, "vse-load: out of memory\n");
    exit(1);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct load_http *h = arg;

    if (vse__grow(h->body, h->cap, h->len + size * n + 1) < 0)
        load_oom();
    memcpy(h->body + h->len, data, size * n);
    h->len += size * n;
    h->body[h->len] = '\0';
    return size * n;
}

int64_t load_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t load_parse_time(const char *s)
{
    struct tm tm;
    int us = 0, n = 0;
    char frac[8] = "";

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    if (s[n] == '.') {
        int k = 0;

        for (n++; s[n] >= '0' && s[n] <= '9'; n++)
            if (k < 6)
                frac[k++] = s[n];
        while (k < 6)
            frac[k++] = '0';
        us = atoi(frac);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + us;
}

void load_http_init(struct load_http *h, const char *url, const char *project)
{
    char tok[200];

    memset(h, 0, sizeof(*h));
    h->url = url;
    h->c = curl_easy_init();
    if (h->c == NULL) {
        fprintf(stderr, "vse-load: cannot make a curl handle\n");
        exit(1);
    }
    /* noauth as the real client sends it: USER:PROJECT (and, noauth
     * being admin for everyone, good for /v1 too). */
    snprintf(tok, sizeof(tok), "X-Auth-Token: load:%s", project);
    h->hdrs = curl_slist_append(NULL, tok);
    h->hdrs = curl_slist_append(h->hdrs,
                                "OpenStack-API-Version: volume 3.70");
    h->hdrs = curl_slist_append(h->hdrs, "Content-Type: application/json");
    h->hdrs = curl_slist_append(h->hdrs, "Accept: application/json");
    curl_easy_setopt(h->c, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(h->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h->c, CURLOPT_NOSIGNAL, 1L);
}

void load_http_free(struct load_http *h)
{
    curl_easy_cleanup(h->c);
    curl_slist_free_all(h->hdrs);
    free(h->body);
}

int load_http_do(struct load_http *h, const char *method, const char *path,
                 const char *payload)
{
    char url[1200];
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", h->url, path);
    h->len = 0;
    if (h->body != NULL)
        h->body[0] = '\0';
    curl_easy_setopt(h->c, CURLOPT_URL, url);
    if (payload != NULL)
        curl_easy_setopt(h->c, CURLOPT_POSTFIELDS, payload);
    else
        curl_easy_setopt(h->c, CURLOPT_HTTPGET, 1L);
    /* After the two above, which reset the method. */
    curl_easy_setopt(h->c, CURLOPT_CUSTOMREQUEST, method);
    if (curl_easy_perform(h->c) != CURLE_OK)
        return 0;
    curl_easy_getinfo(h->c, CURLINFO_RESPONSE_CODE, &status);
    return (int)status;
}

int load_history_each(struct load_http *h, const char *id,
                      int (*cb)(void *ctx, json_t *row), void *ctx)
{
    long long since = 0;

    for (;;) {
        char path[300];
        json_t *j, *v, *next;
        size_t i;

        snprintf(path, sizeof(path),
                 "/v1/resources/%s/history?since=%lld&limit=10000", id,
                 since);
        if (load_http_do(h, "GET", path, NULL) != 200 ||
            (j = json_loads(h->body, 0, NULL)) == NULL)
            return -1;
        json_array_foreach(json_object_get(j, "history"), i, v) {
            if (cb(ctx, v) != 0) {
                json_decref(j);
                return 1;
            }
        }
        next = json_object_get(j, "next");
        since = json_is_integer(next) ? (long long)json_integer_value(next)
                                      : -1;
        json_decref(j);
        if (since < 0)
            return 0;
    }
}
