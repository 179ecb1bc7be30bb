/*
 * test-driver.c - the file-backed volume driver (src/driver/): sparse
 * volumes, idempotent create/extend/delete (a resumed step is safe),
 * snapshots that stay sparse, pool usage, and the sweep of temporary
 * files a killed step leaves.  One behaviour per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "driver.h"

struct fx {
    char dir[64];
    char pool[128];
    struct vsed_driver d;
    struct vse_error err;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/vse-driver.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->pool, sizeof(f->pool), "%s/pool", f->dir);
    if (vsed_driver_open(&f->d, f->pool, 10, &f->err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static off_t size_of(struct fx *f, const char *kind, const char *id,
                     blkcnt_t *blocks)
{
    char path[PATH_MAX + 300];
    struct stat st;

    vsed_driver_path(&f->d, kind, id, path, sizeof(path));
    if (stat(path, &st) != 0)
        return -1;
    if (blocks != NULL)
        *blocks = st.st_blocks;
    return st.st_size;
}

static void create_is_sparse_and_sized(void **state)
{
    struct fx *f = *state;
    blkcnt_t blocks;

    assert_int_equal(vsed_driver_create(&f->d, "v1", 2, &f->err), 0);
    assert_true(size_of(f, "volume", "v1", &blocks) == 2 * VSED_GIB);
    assert_true(blocks < 64); /* nothing written */
}

static void create_again_is_done(void **state)
{
    struct fx *f = *state;

    assert_int_equal(vsed_driver_create(&f->d, "v1", 1, &f->err), 0);
    assert_int_equal(vsed_driver_create(&f->d, "v1", 1, &f->err), 0);
    assert_true(size_of(f, "volume", "v1", NULL) == VSED_GIB);
}

static void extend_grows_and_never_shrinks(void **state)
{
    struct fx *f = *state;

    vsed_driver_create(&f->d, "v1", 1, &f->err);
    assert_int_equal(vsed_driver_extend(&f->d, "v1", 3, &f->err), 0);
    assert_true(size_of(f, "volume", "v1", NULL) == 3 * VSED_GIB);
    /* A resumed extend to the same size, or a stale smaller one: done. */
    assert_int_equal(vsed_driver_extend(&f->d, "v1", 2, &f->err), 0);
    assert_true(size_of(f, "volume", "v1", NULL) == 3 * VSED_GIB);
}

static void extend_of_a_missing_volume_fails(void **state)
{
    struct fx *f = *state;

    assert_int_equal(vsed_driver_extend(&f->d, "nope", 3, &f->err), VSE_EIO);
    assert_int_equal(f->err.code, VSE_EIO);
    assert_non_null(strstr(f->err.msg, "cannot open '"));
    assert_non_null(strstr(f->err.msg, "/volume-nope'"));
    assert_string_equal(f->err.detail, "No such file or directory");
}

static void delete_is_idempotent(void **state)
{
    struct fx *f = *state;

    vsed_driver_create(&f->d, "v1", 1, &f->err);
    assert_int_equal(vsed_driver_delete(&f->d, "volume", "v1", &f->err), 0);
    assert_true(size_of(f, "volume", "v1", NULL) == -1);
    assert_int_equal(vsed_driver_delete(&f->d, "volume", "v1", &f->err), 0);
}

static void snapshot_copies_data_and_stays_sparse(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 300], buf[6] = "";
    blkcnt_t blocks;
    int reflinked = -1;
    FILE *fp;

    vsed_driver_create(&f->d, "v1", 1, &f->err);
    vsed_driver_path(&f->d, "volume", "v1", path, sizeof(path));
    fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, 12345678, SEEK_SET);
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(
        vsed_driver_snapshot(&f->d, "v1", "s1", &reflinked, &f->err), 0);
    assert_true(reflinked == 0 || reflinked == 1);
    assert_true(size_of(f, "snapshot", "s1", &blocks) == VSED_GIB);
    assert_true(blocks < 1024);
    vsed_driver_path(&f->d, "snapshot", "s1", path, sizeof(path));
    fp = fopen(path, "r");
    assert_non_null(fp);
    fseek(fp, 12345678, SEEK_SET);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, "hello");
    /* Again (a resumed step): done, nothing changes. */
    assert_int_equal(
        vsed_driver_snapshot(&f->d, "v1", "s1", &reflinked, &f->err), 0);
}

static void used_counts_volume_sizes(void **state)
{
    struct fx *f = *state;
    int64_t gb = -1;

    vsed_driver_create(&f->d, "a", 2, &f->err);
    vsed_driver_create(&f->d, "b", 3, &f->err);
    assert_int_equal(vsed_driver_used_gb(&f->d, &gb, &f->err), 0);
    assert_int_equal(gb, 5);
}

static void open_sweeps_temporary_files(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/.tmp-volume-dead", f->d.pool);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    vsed_driver_create(&f->d, "kept", 1, &f->err);
    assert_int_equal(vsed_driver_open(&f->d, f->pool, 10, &f->err), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_true(size_of(f, "volume", "kept", NULL) == VSED_GIB);
}

/* Two managers may share a pool: one starting leaves alone the temporary
 * files of the other, and removes those of a process that is gone. */
static void open_keeps_live_managers_files(void **state)
{
    struct fx *f = *state;
    char live[PATH_MAX + 300], dead[PATH_MAX + 300];
    pid_t child = fork();
    FILE *fp;

    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0); /* its pid now names no process */
    snprintf(live, sizeof(live), "%s/.tmp-%ld-volume-v1", f->d.pool,
             (long)getppid());
    snprintf(dead, sizeof(dead), "%s/.tmp-%ld-volume-v2", f->d.pool,
             (long)child);
    fp = fopen(live, "w");
    assert_non_null(fp);
    fclose(fp);
    fp = fopen(dead, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(vsed_driver_open(&f->d, f->pool, 10, &f->err), 0);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(dead, F_OK), -1);
}

/* vsectl check reads pool names back: parse inverts vsed_driver_path(),
 * and temporary files are nobody's. */
static void parse_inverts_path(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 300], kind[16], id[64];

    vsed_driver_path(&f->d, "snapshot", "s-1", path, sizeof(path));
    assert_int_equal(vsed_driver_parse(strrchr(path, '/') + 1, kind,
                                       sizeof(kind), id, sizeof(id)),
                     0);
    assert_string_equal(kind, "snapshot");
    assert_string_equal(id, "s-1");
    assert_int_equal(vsed_driver_parse("volume-v9", kind, sizeof(kind), id,
                                       sizeof(id)),
                     0);
    assert_string_equal(kind, "volume");
    assert_string_equal(id, "v9");
    assert_int_equal(vsed_driver_parse(".tmp-volume-v9", kind, sizeof(kind),
                                       id, sizeof(id)),
                     -1);
    assert_int_equal(
        vsed_driver_parse("volume-", kind, sizeof(kind), id, sizeof(id)), -1);
    assert_int_equal(
        vsed_driver_parse("volumes", kind, sizeof(kind), id, sizeof(id)), -1);
}

/* inspect does not touch the pool: a manager may be using it. */
static void inspect_leaves_temporary_files(void **state)
{
    struct fx *f = *state;
    struct vsed_driver d;
    char path[PATH_MAX + 300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/.tmp-volume-live", f->d.pool);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(vsed_driver_inspect(&d, f->pool, &f->err), 0);
    assert_string_equal(d.pool, f->d.pool);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(vsed_driver_inspect(&d, "/nonexistent/pool", &f->err),
                     VSE_EIO);
    assert_string_equal(f->err.msg,
                        "cannot resolve pool directory '/nonexistent/pool'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_is_sparse_and_sized, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(open_keeps_live_managers_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(create_again_is_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(extend_grows_and_never_shrinks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(extend_of_a_missing_volume_fails,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(delete_is_idempotent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(snapshot_copies_data_and_stays_sparse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(used_counts_volume_sizes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(open_sweeps_temporary_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(parse_inverts_path, setup, teardown),
        cmocka_unit_test_setup_teardown(inspect_leaves_temporary_files, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
