/*
 * builtin.c - the machines that ship with vse (the YAML files in
 * machines/), compiled into the library so that every process enforces the
 * same definitions without reading files at run time.  They are loaded,
 * and so checked, through the same loader as any other machine file.
 */
#include <string.h>

#include "vse-int.h"

/*
 * The YAML files go in byte for byte with .incbin (paths are relative to
 * the repository root, where make runs; the Makefile makes builtin.o
 * depend on them), each followed by a NUL so that the text is a string
 * too.  The symbols are hidden: they are not part of libvse's ABI.
 */
#define BUILTIN_BLOB(sym, path)                                              \
    ".pushsection .rodata\n"                                                 \
    ".balign 16\n"                                                           \
    ".globl " #sym "\n"                                                      \
    ".hidden " #sym "\n" #sym ":\n"                                          \
    ".incbin \"" path "\"\n"                                                 \
    ".byte 0\n"                                                              \
    ".globl " #sym "_end\n"                                                  \
    ".hidden " #sym "_end\n" #sym "_end:\n"                                  \
    ".popsection\n"

__asm__(BUILTIN_BLOB(vse__builtin_volume, "machines/volume.yaml")
            BUILTIN_BLOB(vse__builtin_snapshot, "machines/snapshot.yaml")
                BUILTIN_BLOB(vse__builtin_service, "machines/service.yaml"));

extern const char vse__builtin_volume[], vse__builtin_volume_end[];
extern const char vse__builtin_snapshot[], vse__builtin_snapshot_end[];
extern const char vse__builtin_service[], vse__builtin_service_end[];

struct builtin {
    const char *name;
    const char *file; /* the name diagnostics use */
    const char *text;
    const char *end; /* one past the NUL */
};

static const struct builtin builtins[] = {
    {"volume", "machines/volume.yaml", vse__builtin_volume,
     vse__builtin_volume_end},
    {"snapshot", "machines/snapshot.yaml", vse__builtin_snapshot,
     vse__builtin_snapshot_end},
    /* The volume service's heartbeats: built in, so that every tool that
     * opens a volume-service store (vsectl check) knows the machine. */
    {"service", "machines/service.yaml", vse__builtin_service,
     vse__builtin_service_end},
};

static const char *const names[] = {"volume", "snapshot", "service", NULL};

const char *const *vse_machine_builtin_names(void)
{
    return names;
}

int vse_machine_builtin(const char *name, vse_machine **out,
                        struct vse_error *err)
{
    if (out != NULL)
        *out = NULL;
    for (size_t i = 0;
         name != NULL && i < sizeof(builtins) / sizeof(*builtins); i++) {
        const struct builtin *b = &builtins[i];

        if (strcmp(b->name, name) == 0)
            return vse_machine_load_buffer(b->file, b->text,
                                           (size_t)(b->end - b->text) - 1,
                                           NULL, NULL, out, err);
    }
    return vse__err(err, VSE_ENOTFOUND, "no built-in machine '%s'",
                    name ? name : "");
}
