/*
 * fuzz-api.c - libFuzzer target over vsed's request path: the input is
 * split into method, path with query, content type (and OpenStack API
 * version) and body, parsed as http.c would hand it over, and run through
 * vsed_api_handle() or, for "/" and "/v3...", vsed_cinder_handle(),
 * against a real SQLite store, so routing, query arguments, JSON bodies,
 * microversions and the library's input checks all see hostile bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names.h"
#include "vsed.h"

static vse_db *db;
static struct vsed_config cfg;

/* Query arguments as MHD hands them: key=value pairs split on '&'. */
static void split_query(char *q, struct vsed_req *r)
{
    char *save = NULL;

    for (char *kv = strtok_r(q, "&", &save); kv != NULL;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');

        if (r->nargs == VSED_ARGS_MAX) {
            r->too_many_args = 1;
            return;
        }
        if (eq != NULL)
            *eq++ = '\0';
        r->args[r->nargs].key = kv;
        r->args[r->nargs].value = eq;
        r->nargs++;
    }
}

/* The id the Cinder seeds name: an available volume of the fuzzer's
 * project, so that actions get past the read to their handlers. */
#define SEED_VOLUME "00000000-0000-4000-8000-000000000000"

static void seed_volume(void)
{
    struct vse_resource r;
    struct vse_opts o;
    struct vse_error err;

    memset(&o, 0, sizeof(o));
    o.owner = "fuzz";
    o.attrs = "{\"size\":1,\"project_id\":\"fuzz-project\","
              "\"user_id\":\"fuzz\",\"host\":\"fuzz-host\","
              "\"provider_location\":\"/nonexistent\",\"attachments\":[]}";
    if (vse_create(db, VSED_MACHINE_VOLUME, SEED_VOLUME, &o, &r, &err) < 0 ||
        vse_step(db, SEED_VOLUME, r.op_id, VOLUME_SCHEDULING, NULL, &r,
                 &err) < 0 ||
        vse_step(db, SEED_VOLUME, r.op_id, VOLUME_CREATING_VOL, NULL, &r,
                 &err) < 0 ||
        vse_finish(db, SEED_VOLUME, r.op_id, VOLUME_AVAILABLE, NULL, NULL,
                   &err) < 0) {
        fprintf(stderr, "fuzz: seed volume: %s\n", err.msg);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[64], url[80];
    struct vse_error err;

    snprintf(path, sizeof(path), "/tmp/vse-fuzz-%d.db", (int)getpid());
    unlink(path);
    snprintf(url, sizeof(url), "sqlite:%s?synchronous=normal", path);
    if (vse_open(url, &db, &err) < 0) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }
    vsed_noauth = 1;
    /* The Cinder API reads leases and the host name from the config. */
    vsed_config_init(&cfg);
    vsed_cfg = &cfg;
    if (vsed_names_check(vsed_find_in_db, db, path, sizeof(path)) != 0) {
        fprintf(stderr, "fuzz: %s\n", path);
        abort();
    }
    seed_volume();
    return 0;
}

/* Input: METHOD \n PATH?QUERY \n CONTENT-TYPE[|API-VERSION] \n BODY */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *lines[3], *p, *q;
    struct vsed_req r;
    struct vsed_resp resp;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    p = buf;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(p, '\n');

        lines[i] = p;
        if (nl == NULL) {
            free(buf);
            return 0;
        }
        *nl = '\0';
        p = nl + 1;
    }
    memset(&r, 0, sizeof(r));
    r.method = lines[0];
    q = strchr(lines[1], '?');
    if (q != NULL) {
        *q++ = '\0';
        split_query(q, &r);
    }
    r.path = lines[1];
    q = strchr(lines[2], '|');
    if (q != NULL) {
        *q++ = '\0';
        r.api_version = q;
    }
    r.content_type = lines[2][0] ? lines[2] : NULL;
    r.body = p;
    r.body_len = size - (size_t)(p - buf);
    r.request_id = "fuzz";
    r.authenticated = 1;
    r.role = ROLE_ADMIN;
    r.actor = "fuzz";
    r.project = "fuzz-project";
    r.user = "fuzz";
    r.host_header = "127.0.0.1:8776";
    r.db = db;
    if (vsed_cinder_route(r.path))
        vsed_cinder_handle(&r, &resp);
    else
        vsed_api_handle(&r, &resp);
    if (resp.status < 200 || resp.status > 599 || resp.body == NULL)
        abort();
    free(resp.body);
    free(buf);
    return 0;
}
