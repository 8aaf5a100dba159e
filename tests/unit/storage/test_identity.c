/*
 * test_identity.c - storage/identity.c: the catalog's identity and the
 * mark on the labels of the tokens it provisions.
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

TestSuite(storage_identity, .init = setup, .fini = teardown);

/* A second catalog in the same world. */
static storage_catalog *open_other(void)
{
    storage_catalog *cat = NULL;
    char path[PATH_MAX + 16], err[256] = "";

    snprintf(path, sizeof(path), "%s/other.db", w.dir);
    cr_assert_eq(storage_catalog_open(path, STORAGE_OPEN_CREATE, &cat, err, sizeof(err)),
                 STORAGE_OK, "%s", err);
    return cat;
}

static void label_of(storage_catalog *cat, const char *view, const char *base, char out[33],
                     bool *marked)
{
    cr_assert_eq(storage_provision_label(cat, "Strata", view, "personal", base, out, marked),
                 STORAGE_OK);
}

Test(storage_identity, storage_catalog_identity_made_once_and_kept)
{
    storage_catalog *cat = helper_open(&w), *other = open_other();
    char a[33], b[33], c[33];

    cr_assert_eq(storage_catalog_identity(cat, a), STORAGE_OK);
    cr_assert_eq(strlen(a), 32);
    storage_catalog_close(cat);
    cat = helper_open(&w);
    cr_assert_eq(storage_catalog_identity(cat, b), STORAGE_OK);
    cr_assert_str_eq(a, b, "reopening keeps the identity");
    cr_assert_eq(storage_catalog_identity(other, c), STORAGE_OK);
    cr_assert_str_neq(a, c, "two catalogs, two identities");
    cr_assert_eq(storage_catalog_identity(NULL, a), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
    storage_catalog_close(other);
}

Test(storage_identity, storage_provision_label_marks_per_catalog_and_row)
{
    storage_catalog *cat = helper_open(&w), *other = open_other();
    char mine[33], again[33], theirs[33], nym[33];
    bool marked = false;

    label_of(cat, "work", "strata-work", mine, &marked);
    cr_assert(marked);
    cr_assert_eq(strlen(mine), strlen("strata-work") + 9, "%s", mine);
    cr_assert_eq(strncmp(mine, "strata-work#", 12), 0, "%s", mine);
    label_of(cat, "work", "strata-work", again, &marked);
    cr_assert_str_eq(mine, again, "the same row, the same label");
    label_of(other, "work", "strata-work", theirs, &marked);
    cr_assert(marked);
    cr_assert_str_neq(mine, theirs, "another catalog, another mark");
    label_of(cat, "nym", "strata-work", nym, &marked);
    cr_assert_str_neq(mine, nym, "another view, another mark: the labels do not link");
    storage_catalog_close(cat);
    storage_catalog_close(other);
}

Test(storage_identity, storage_provision_label_cuts_long_labels)
{
    storage_catalog *cat = helper_open(&w);
    char out[33];
    bool marked = false;

    label_of(cat, "work", "0123456789abcdefghijklmnopqrstuv", out, &marked); /* 32 bytes */
    cr_assert_eq(strlen(out), 32, "%s", out);
    cr_assert_eq(strncmp(out, "0123456789abcdefghijklm#", 24), 0, "%s", out);
    /* "é" is two bytes: never cut in the middle of one. */
    label_of(cat, "work", "0123456789abcdefghijklé-rest", out, &marked);
    cr_assert_eq(strncmp(out, "0123456789abcdefghijkl#", 23), 0, "%s", out);
    cr_assert_eq(storage_provision_label(cat, "Strata", "work", "personal",
                                         "0123456789abcdefghijklmnopqrstuvw", out, &marked),
                 STORAGE_ERR_ARGS);
    cr_assert_eq(storage_provision_label(cat, "Strata", "work", "personal", "", out, &marked),
                 STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

/* A row begun before catalogs had an identity keeps its own (unmarked)
 * label; a row begun with the marked label is recognised as marked. */
Test(storage_identity, storage_provision_label_row_label_wins)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p = NULL;
    storage_login *l;
    char out[33], marked_label[33];
    bool marked = true;

    cr_assert_eq(helper_enroll(cat, "work", "111111", NULL, 0), STORAGE_OK);
    cr_assert_eq(helper_enroll(cat, "old", "222222", NULL, 0), STORAGE_OK);
    l = helper_login(cat, "222222");
    cr_assert_eq(storage_provision_begin(cat, l, "personal", "/m.so", "strata-old", &p),
                 STORAGE_OK);
    storage_provision_free(p);
    storage_login_free(l);
    label_of(cat, "old", "strata-old", out, &marked);
    cr_assert_str_eq(out, "strata-old");
    cr_assert_not(marked);

    label_of(cat, "work", "strata-work", marked_label, &marked);
    l = helper_login(cat, "111111");
    cr_assert_eq(storage_provision_begin(cat, l, "personal", "/m.so", marked_label, &p),
                 STORAGE_OK);
    storage_provision_free(p);
    storage_login_free(l);
    label_of(cat, "work", "strata-work", out, &marked);
    cr_assert_str_eq(out, marked_label);
    cr_assert(marked);
    storage_catalog_close(cat);
}
