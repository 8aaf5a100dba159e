/*
 * test_moves.c - storage/moves.c: the journal of strata migrate and
 * storage_layer_forget.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

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

TestSuite(storage_moves, .init = setup, .fini = teardown);

static const unsigned char source[32] = {1, 2, 3};

static storage_move_key key_of(const char *view)
{
    storage_move_key k = {"Strata", view, "legacy", "personal", source, sizeof(source)};

    return k;
}

Test(storage_moves, get_of_an_unknown_move_is_not_found)
{
    storage_catalog *cat = helper_open(&w);
    storage_move_key k = key_of("work");
    storage_move row;

    cr_assert_eq(storage_move_get(cat, &k, &row), STORAGE_ERR_NOT_FOUND);
    storage_catalog_close(cat);
}

Test(storage_moves, set_then_get_follows_the_states_and_audits_done_once)
{
    storage_catalog *cat = helper_open(&w);
    storage_move_key k = key_of("work"), other = key_of("anon");
    storage_move row = {.state = STORAGE_MOVE_COPYING, .summary = "certificate 'c' id 01"};
    storage_move got;

    cr_assert_eq(storage_move_set(cat, &k, &row), STORAGE_OK);
    cr_assert_eq(storage_move_get(cat, &k, &got), STORAGE_OK);
    cr_assert_eq(got.state, STORAGE_MOVE_COPYING);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'migrate'"), 0);
    row.state = STORAGE_MOVE_DONE;
    cr_assert_eq(storage_move_set(cat, &k, &row), STORAGE_OK);
    cr_assert_eq(storage_move_get(cat, &k, &got), STORAGE_OK);
    cr_assert_eq(got.state, STORAGE_MOVE_DONE);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM moves"), 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'migrate'"), 1);
    /* Another view's move of the same object is its own row. */
    cr_assert_eq(storage_move_get(cat, &other, &got), STORAGE_ERR_NOT_FOUND);
    cr_assert_str_eq(storage_move_state_name(STORAGE_MOVE_DONE), "done");
    storage_catalog_close(cat);
}

Test(storage_moves, bad_arguments)
{
    storage_catalog *cat = helper_open(&w);
    storage_move_key k = key_of("work");
    storage_move row = {.state = STORAGE_MOVE_DONE};

    k.source_len = 0;
    cr_assert_eq(storage_move_set(cat, &k, &row), STORAGE_ERR_ARGS);
    k.source_len = 65;
    cr_assert_eq(storage_move_get(cat, &k, &row), STORAGE_ERR_ARGS);
    k = key_of("work");
    row.state = (storage_move_state)7;
    cr_assert_eq(storage_move_set(cat, &k, &row), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_move_set(NULL, &k, &row), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

Test(storage_moves, forget_layer_removes_its_rows_only)
{
    static const storage_cred creds[] = {{"personal", "1111", 4}, {"legacy", "2222", 4}};
    static const unsigned char id[32] = {9};
    storage_catalog *cat = helper_open(&w);
    storage_move_key k = key_of("work");
    storage_move row = {.state = STORAGE_MOVE_DONE, .summary = "s"};
    storage_layer_forgotten n;
    CK_OBJECT_HANDLE h = 0, kept = 0;
    storage_login *l;

    cr_assert_eq(helper_enroll(cat, "work", "work-pin", creds, 2), STORAGE_OK);
    cr_assert_eq(storage_move_set(cat, &k, &row), STORAGE_OK);
    cr_assert_eq(storage_object_handle(cat, "Strata", "legacy", id, sizeof(id), &h), STORAGE_OK);
    cr_assert_eq(storage_object_handle(cat, "Strata", "personal", id, sizeof(id), &kept),
                 STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "Strata", "work", "legacy", id, sizeof(id)), STORAGE_OK);
    cr_assert_eq(storage_layer_forget(cat, "Strata", "legacy", &n), STORAGE_OK);
    cr_assert_eq(n.creds, 1);
    cr_assert_eq(n.objects, 1);
    cr_assert_eq(n.whiteouts, 1);
    cr_assert_eq(n.moves, 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM objects"), 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = "
                                       "'forget-layer'"),
                 1);
    /* The view still logs in, with its other layer's credential. */
    l = helper_login(cat, "work-pin");
    cr_assert_eq(storage_login_count(l), 1);
    cr_assert_not_null(storage_login_find(l, "personal"));
    cr_assert_null(storage_login_find(l, "legacy"));
    storage_login_free(l);
    cr_assert_eq(storage_layer_forget(cat, "Strata", "legacy", &n), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_layer_forget(cat, "Strata", "", &n), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}
