/*
 * names.h - the machine, state and operation names vsed's code relies on
 * (machines/volume.yaml, snapshot.yaml, service.yaml), declared once.
 * vsed_names_check() holds them against the machines the store loaded
 * before anything is served, so that a machine that lost a state the
 * code needs stops the start-up instead of giving a wrong answer later.
 */
#ifndef VSED_NAMES_H
#define VSED_NAMES_H

#include <stddef.h>

#include "vse.h"

#define VSED_MACHINE_VOLUME "volume"
#define VSED_MACHINE_SNAPSHOT "snapshot"
/* VSED_SERVICE_MACHINE ("service") is in vsed.h. */

/* What the code assumes of a name. */
enum vsed_name_kind {
    VSED_NAME_REST, /* a state, at rest: no op in flight */
    VSED_NAME_BUSY, /* a state, a step of an op */
    VSED_NAME_OP    /* an operation */
};

/*
 * XX(IDENT, machine, kind, name, used by).  Each IDENT becomes a
 * `const char IDENT[]` holding the name; "used by" says which code would
 * go wrong without it, for the start-up error.
 */
#define VSED_NAME_MAP(XX)                                                    \
    XX(VOLUME_OP_CREATE, "volume", OP, "create", "api (volume create)")      \
    XX(VOLUME_OP_DELETE, "volume", OP, "delete", "api (volume delete)")      \
    XX(VOLUME_OP_EXTEND, "volume", OP, "extend", "api (os-extend)")          \
    XX(VOLUME_OP_EXTEND_IN_USE, "volume", OP, "extend_in_use",               \
       "api (os-extend of an in-use volume)")                                \
    XX(VOLUME_OP_CREATE_FROM_SNAPSHOT, "volume", OP, "create_from_snapshot", \
       "api (volume create with snapshot_id)")                               \
    XX(VOLUME_OP_CLONE, "volume", OP, "clone",                               \
       "api (volume create with source_volid)")                              \
    XX(VOLUME_OP_ATTACH, "volume", OP, "attach",                             \
       "api (os-reserve, os-attach, attachments)")                           \
    XX(VOLUME_OP_DETACH, "volume", OP, "detach",                             \
       "api (os-detach, os-begin_detaching, attachment delete)")             \
    XX(VOLUME_SCHEDULING, "volume", BUSY, "scheduling",                      \
       "api (volume create), scheduler role, volume role (reschedule)")      \
    XX(VOLUME_CREATING_VOL, "volume", BUSY, "creating_vol",                  \
       "scheduler role, volume role (create_volume)")                        \
    XX(VOLUME_EXTENDING, "volume", BUSY, "extending",                        \
       "scheduler role (capacity), volume role (extend_volume)")             \
    XX(VOLUME_DELETING, "volume", BUSY, "deleting",                          \
       "volume role (delete_volume)")                                        \
    XX(VOLUME_RESERVED, "volume", BUSY, "reserved",                          \
       "api (os-unreserve, os-attach, attachments)")                         \
    XX(VOLUME_ATTACHING, "volume", BUSY, "attaching",                        \
       "api (os-attach, attachments)")                                       \
    XX(VOLUME_DETACHING, "volume", BUSY, "detaching",                        \
       "api (os-detach, os-roll_detaching)")                                 \
    XX(VOLUME_AVAILABLE, "volume", REST, "available",                        \
       "api (detach, snapshot create), volume role")                         \
    XX(VOLUME_IN_USE, "volume", REST, "in_use",                              \
       "api (attach, attachments, force-delete, snapshot create)")           \
    XX(VOLUME_ERROR, "volume", REST, "error",                                \
       "api (os-force_delete), scheduler role (capacity)")                   \
    XX(VOLUME_DELETED, "volume", REST, "deleted",                            \
       "api (lists, reads, delete), scheduler role, volume role")            \
    XX(SNAPSHOT_OP_DELETE, "snapshot", OP, "delete",                         \
       "api (snapshot delete)")                                              \
    XX(SNAPSHOT_CREATING, "snapshot", BUSY, "creating",                      \
       "api (volume delete), volume role (create_snapshot)")                 \
    XX(SNAPSHOT_DELETING, "snapshot", BUSY, "deleting",                      \
       "api (volume delete), volume role (delete_snapshot)")                 \
    XX(SNAPSHOT_AVAILABLE, "snapshot", REST, "available",                    \
       "api (volume delete, snapshot progress), volume role")                \
    XX(SNAPSHOT_ERROR, "snapshot", REST, "error", "api (volume delete)")     \
    XX(SNAPSHOT_ERROR_DELETING, "snapshot", REST, "error_deleting",          \
       "api (volume delete)")                                                \
    XX(SNAPSHOT_DELETED, "snapshot", REST, "deleted",                        \
       "api (lists, reads), volume role")                                    \
    XX(SERVICE_OP_RUN, "service", OP, "run", "heartbeats")                   \
    XX(SERVICE_RUNNING, "service", BUSY, "running",                          \
       "heartbeats, scheduler role")                                         \
    XX(SERVICE_STOPPED, "service", REST, "stopped", "heartbeats")

#define VSED_NAME_DECL_(ident, machine, kind, name, used)                    \
    extern const char ident[];
VSED_NAME_MAP(VSED_NAME_DECL_)
#undef VSED_NAME_DECL_

/* The loaded machine of that name, or NULL. */
typedef const vse_machine *vsed_find_machine_fn(void *ctx, const char *name);

/* find() over a vse_db (ctx). */
const vse_machine *vsed_find_in_db(void *ctx, const char *name);

/*
 * Check every name of VSED_NAME_MAP against the machines `find` gives:
 * the machine exists, the state exists and is rest or busy as the code
 * assumes, the operation exists.  0, or the number of problems with the
 * first in msg ("machine 'volume' has no state 'in_use' (needed by ...)").
 */
int vsed_names_check(vsed_find_machine_fn *find, void *ctx, char *msg,
                     size_t size);

#endif /* VSED_NAMES_H */
