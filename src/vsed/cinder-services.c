/*
 * cinder-services.c - the Cinder API's os-services (the service rows
 * vsed's roles keep up with heartbeats), limits and availability zones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cinder.h"

static int service_one(void *arg, const struct vse_resource *r)
{
    struct cinder_ctx *c = ((struct cinder_listing *)arg)->c;
    json_t *arr = ((struct cinder_listing *)arg)->arr;
    json_t *a = vsed_attrs(r), *s;
    int up = r->owner[0] != '\0' && r->lease_expires >= vse_now_us();
    const char *bin = vsed_attr_str(a, "binary");

    s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:n}", "binary", bin,
                  "host", vsed_attr_str(a, "host"), "zone", "nova", "status",
                  "enabled", "state", up ? "up" : "down", "updated_at",
                  cinder_jtime(r->updated), "disabled_reason");
    if (c->mv >= 7)
        json_object_set_new(s, "cluster", json_null());
    if (c->mv >= 49 && strcmp(bin, "cinder-volume") == 0)
        json_object_set_new(s, "backend_state",
                            json_string(up ? "up" : "down"));
    json_array_append_new(arr, s);
    json_decref(a);
    return 0;
}

void cinder_services(struct cinder_ctx *c)
{
    struct cinder_listing l;
    struct vse_filter f;
    struct vse_error err;

    if (!c->admin) {
        cinder_fault(c, 403,
                     "Policy doesn't allow volume_extension:services:index "
                     "to be performed.");
        return;
    }
    memset(&l, 0, sizeof(l));
    memset(&f, 0, sizeof(f));
    l.c = c;
    l.arr = json_array();
    f.machine = VSED_SERVICE_MACHINE;
    vse_error_clear(&err);
    if (vse_list(c->q->db, &f, service_one, &l, &err) < 0) {
        json_decref(l.arr);
        cinder_lib_fault(c, "service", "list services", err.code, &err);
        return;
    }
    cinder_reply(c, 200, json_pack("{s:o}", "services", l.arr));
}

void cinder_limits(struct cinder_ctx *c)
{
    struct cinder_listing l;
    struct vse_filter f;
    struct vse_error err;
    static const char *const machines[] = {VSED_MACHINE_VOLUME,
                                           VSED_MACHINE_SNAPSHOT};

    memset(&l, 0, sizeof(l));
    l.c = c;
    for (int i = 0; i < 2; i++) {
        memset(&f, 0, sizeof(f));
        f.machine = machines[i];
        f.not_state = cinder_deleted(machines[i]);
        l.machine = machines[i];
        vse_error_clear(&err);
        if (vse_list(c->q->db, &f, cinder_count_one, &l, &err) < 0) {
            cinder_lib_fault(c, "limits", "count", err.code, &err);
            return;
        }
    }
    /* No quotas are enforced: -1 is Cinder's "unlimited". */
    cinder_reply(
        c, 200,
        json_pack(
            "{s:{s:[], s:{s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:i, "
            "s:i}}}",
            "limits", "rate", "absolute", "maxTotalVolumes", -1,
            "maxTotalSnapshots", -1, "maxTotalVolumeGigabytes", -1,
            "maxTotalBackups", -1, "maxTotalBackupGigabytes", -1,
            "totalVolumesUsed", (json_int_t)l.volumes, "totalGigabytesUsed",
            (json_int_t)(l.gigabytes + l.snap_gb), "totalSnapshotsUsed",
            (json_int_t)l.snapshots, "totalBackupsUsed", (json_int_t)0,
            "totalBackupGigabytesUsed", 0, "maxTotalGroups", -1));
}

/* One zone, "nova", as a single-zone Cinder answers. */
void cinder_zones(struct cinder_ctx *c)
{
    cinder_reply(c, 200,
                 json_pack("{s:[{s:s, s:{s:b}}]}", "availabilityZoneInfo",
                           "zoneName", "nova", "zoneState", "available", 1));
}
