/*
 * test_guard.c - layers/guard.c: the backend guard, a file lock shared
 * between processes (and threads) using one catalog.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static char dir[] = "/tmp/strata-guard.XXXXXX";
static char path[256];

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/catalog.db.lock", dir);
}

static void teardown(void)
{
    layers_guard_set(NULL);
    unlink(path);
    rmdir(dir);
}

/* Whether another open file description can take the lock now, shared
 * or exclusive, without waiting (as another process would). */
static bool free_for(int how)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    bool got;

    cr_assert_geq(fd, 0);
    got = flock(fd, how | LOCK_NB) == 0;
    close(fd);
    return got;
}

TestSuite(layers_guard, .init = setup, .fini = teardown);

Test(layers_guard, layers_guard_take_without_path_takes_nothing)
{
    int held = layers_guard_take(true);

    cr_assert_eq(held, -1);
    layers_guard_drop(held);
}

Test(layers_guard, layers_guard_take_exclusive_keeps_others_out)
{
    struct stat st;
    int held;

    cr_assert_eq(layers_guard_set(path), CKR_OK);
    held = layers_guard_take(true);
    cr_assert_geq(held, 0);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the lock file is created 0600");
    cr_assert_not(free_for(LOCK_SH), "a reader waits for a login");
    layers_guard_drop(held);
    cr_assert(free_for(LOCK_EX), "dropped: free again");
}

Test(layers_guard, layers_guard_take_shared_admits_readers_not_writers)
{
    int held;

    cr_assert_eq(layers_guard_set(path), CKR_OK);
    held = layers_guard_take(false);
    cr_assert_geq(held, 0);
    cr_assert(free_for(LOCK_SH), "readers side by side");
    cr_assert_not(free_for(LOCK_EX), "a login waits for readers");
    layers_guard_drop(held);
}

Test(layers_guard, layers_guard_take_nested_is_a_no_op)
{
    int outer, inner;

    cr_assert_eq(layers_guard_set(path), CKR_OK);
    outer = layers_guard_take(true);
    inner = layers_guard_take(false); /* would wait forever if it locked */
    cr_assert_geq(outer, 0);
    cr_assert_eq(inner, -1);
    layers_guard_drop(inner);
    cr_assert_not(free_for(LOCK_SH), "the outer hold stays");
    layers_guard_drop(outer);
    cr_assert(free_for(LOCK_EX));
    inner = layers_guard_take(true);
    cr_assert_geq(inner, 0, "after the outer drop, a new hold locks again");
    layers_guard_drop(inner);
}
