/*
 * test_failures.c - storage/failures.c: the administrator's unlock and
 * its audit row.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "helpers.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_failures, .init = setup, .fini = teardown);

Test(storage_failures, storage_token_unlock_clears_and_audits_unlock)
{
    storage_catalog *cat = helper_open(&w);
    unsigned count = 0, cleared = 99;

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(storage_login_failed(cat, "Strata", &count), STORAGE_OK);
    }
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_token_unlock(cat, "Strata", &cleared), STORAGE_OK);
    cr_assert_eq(cleared, 3);
    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    /* at zero, and for an unknown token, the unlock is still audited */
    cr_assert_eq(storage_token_unlock(cat, "Strata", &cleared), STORAGE_OK);
    cr_assert_eq(cleared, 0);
    cr_assert_eq(storage_token_unlock(cat, "Other", NULL), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'unlock'"), 3);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'unlock'"
                                       " AND subject = 'Strata' AND outcome LIKE 'ok (3 %'"),
                 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action <> 'unlock'"), 0);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM tokens WHERE label = 'Other'"), 0);
}

Test(storage_failures, storage_token_unlock_bad_arguments_and_read_only)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(storage_token_unlock(NULL, "Strata", NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_token_unlock(cat, "", NULL), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                 STORAGE_OK);
    cr_assert_eq(storage_token_unlock(cat, "Strata", NULL), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}
