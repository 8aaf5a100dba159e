/*
 * test_self.c - layers/self.c: Strata's own module is recognised by its
 * ELF note under any name (its path, a symbolic link, a copy), never a
 * backend module, and a module so recognised is refused at load.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "layers.h"
#include "world.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(layers_self, .init = setup, .fini = teardown);

static void in_world(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", w.dir, name);
}

Test(layers_self, layers_file_is_strata_under_any_name)
{
    char link[PATH_MAX + 64], copy[PATH_MAX + 64];

    in_world(link, sizeof(link), "link.so");
    in_world(copy, sizeof(copy), "libsomething-else.so");
    cr_assert(layers_file_is_strata(world_strata_module()), "%s", world_strata_module());
    cr_assert_eq(world_sh("ln -s '%s' '%s' && cp '%s' '%s'", world_strata_module(), link,
                          world_strata_module(), copy),
                 0);
    cr_assert(layers_file_is_strata(link));
    cr_assert(layers_file_is_strata(copy));
}

Test(layers_self, layers_file_is_strata_not_other_files)
{
    char text[PATH_MAX + 64], cut[PATH_MAX + 64];

    in_world(text, sizeof(text), "text.so");
    in_world(cut, sizeof(cut), "cut.so");
    cr_assert_not(layers_file_is_strata(world_softhsm_module()));
    cr_assert_not(layers_file_is_strata(getenv("STRATA_TEST_BACKEND")));
    cr_assert_not(layers_file_is_strata("/nonexistent/strata-pkcs11.so"));
    cr_assert_not(layers_file_is_strata(NULL));
    cr_assert_eq(world_sh("echo 'not ELF' > '%s' && head -c 100 '%s' > '%s'", text,
                          world_strata_module(), cut),
                 0);
    cr_assert_not(layers_file_is_strata(text));
    cr_assert_not(layers_file_is_strata(cut), "a truncated copy has no readable note");
    cr_assert_not(layers_file_is_strata(w.dir), "a folder");
}

Test(layers_self, layers_module_load_refuses_strata)
{
    char copy[PATH_MAX + 64], err[PATH_MAX + 512] = "";
    layers_module *m = (layers_module *)1;

    in_world(copy, sizeof(copy), "renamed.so");
    cr_assert_eq(world_sh("cp '%s' '%s'", world_strata_module(), copy), 0);
    cr_assert_eq(layers_module_load(copy, &m, err, sizeof(err)), CKR_GENERAL_ERROR);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err, "is Strata itself"), "%s", err);
    cr_assert_not_null(strstr(err, copy), "%s", err);
}
