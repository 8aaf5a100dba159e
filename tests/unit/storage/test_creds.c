/*
 * test_creds.c - storage/creds.c: stale marks, sealing one credential
 * anew, the credential lock between processes, the layers a login left
 * out; and storage_view_forget (views.c), which drops them with the view.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <poll.h>

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

TestSuite(storage_creds, .init = setup, .fini = teardown);

static const storage_cred work_creds[] = {
    {"personal", "1111", 4},
    {"group", "2222", 4},
};

static storage_catalog *enrolled(void)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(helper_enroll(cat, "work", "work-pin", work_creds, 2), STORAGE_OK);
    return cat;
}

static bool stale(storage_catalog *cat, const char *layer)
{
    bool s = true;

    cr_assert_eq(storage_cred_is_stale(cat, "Strata", "work", layer, &s), STORAGE_OK);
    return s;
}

Test(storage_creds, mark_stale_then_reseal_clears_it)
{
    storage_catalog *cat = enrolled();
    storage_login *l;
    const storage_cred *c;

    cr_assert_not(stale(cat, "group"));
    cr_assert_eq(storage_cred_mark_stale(cat, "Strata", "work", "group", "CKR_PIN_INCORRECT"),
                 STORAGE_OK);
    cr_assert_eq(storage_cred_mark_stale(cat, "Strata", "work", "group", "CKR_PIN_LOCKED"),
                 STORAGE_OK);
    cr_assert(stale(cat, "group"));
    cr_assert_not(stale(cat, "personal"));
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'cred-stale'"), 1,
                 "the first mark is kept, audited once");
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM creds WHERE stale_reason = "
                                       "'CKR_PIN_INCORRECT'"),
                 1);
    l = helper_login(cat, "work-pin");
    cr_assert_eq(storage_cred_reseal(cat, l, "group", "3333", 4), STORAGE_OK);
    storage_login_free(l);
    cr_assert_not(stale(cat, "group"));
    l = helper_login(cat, "work-pin");
    c = storage_login_find(l, "group");
    cr_assert(c != NULL && c->pin_len == 4 && memcmp(c->pin, "3333", 4) == 0);
    c = storage_login_find(l, "personal");
    cr_assert(c != NULL && memcmp(c->pin, "1111", 4) == 0, "the other layer is untouched");
    storage_login_free(l);
    storage_catalog_close(cat);
}

Test(storage_creds, bad_arguments_and_unknown_rows)
{
    storage_catalog *cat = enrolled();
    bool s = false;

    cr_assert_eq(storage_cred_is_stale(cat, "Strata", "nosuch", "group", &s),
                 STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_cred_is_stale(cat, "Strata", "work", "nosuch", &s), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_cred_is_stale(NULL, "Strata", "work", "group", &s), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_cred_mark_stale(cat, "Strata", "nosuch", "group", "x"),
                 STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_cred_mark_stale(cat, "Strata", "work", "group", NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_cred_reseal(cat, NULL, "group", "1", 1), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

/* The lock excludes another process until released, and a read-only
 * catalog says so instead of locking. */
Test(storage_creds, lock_excludes_another_process)
{
    storage_catalog *cat = enrolled();
    storage_cred_guard g;
    int fds[2];
    char c = 0;
    pid_t pid;

    cr_assert_eq(storage_cred_lock(cat, "Strata", "work", "group", &g), STORAGE_OK);
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        storage_catalog *child = NULL;
        storage_cred_guard h;
        close(fds[0]);
        if (storage_catalog_open(w.catalog, 0, &child, NULL, 0) != STORAGE_OK ||
            storage_cred_lock(child, "Strata", "work", "group", &h) != STORAGE_OK) {
            _exit(2);
        }
        (void)!write(fds[1], "L", 1); /* only once the parent let go */
        storage_cred_unlock(&h);
        _exit(0);
    }
    close(fds[1]);
    cr_assert_eq(poll(&(struct pollfd){.fd = fds[0], .events = POLLIN}, 1, 300), 0,
                 "the child took the lock while it was held");
    storage_cred_unlock(&g);
    storage_cred_unlock(&g); /* harmless twice */
    cr_assert_eq(read(fds[0], &c, 1), 1);
    cr_assert_eq(c, 'L');
    close(fds[0]);
    waitpid(pid, NULL, 0);
    storage_catalog_close(cat);
}

struct left_seen {
    int n;
    char last[400];
};

static void count_left(void *ctx, const storage_left_out *item)
{
    struct left_seen *s = ctx;

    s->n++;
    snprintf(s->last, sizeof(s->last), "%s/%s: %s", item->view, item->layer, item->reason);
}

Test(storage_creds, left_out_replaced_per_view_and_quiet_when_empty)
{
    storage_catalog *cat = enrolled();
    storage_left_out one = {.layer = "group", .reason = "stale credential"};
    struct left_seen s = {0};
    long long audits = helper_int(w.catalog, "SELECT count(*) FROM audit");

    cr_assert_eq(storage_login_left_out(cat, "Strata", "work", NULL, 0), STORAGE_OK);
    cr_assert_eq(storage_login_left_out(cat, "Strata", "work", &one, 1), STORAGE_OK);
    cr_assert_eq(storage_left_out_list(cat, "Strata", count_left, &s), STORAGE_OK);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.last, "work/group: stale credential");
    cr_assert_eq(storage_login_left_out(cat, "Strata", "work", NULL, 0), STORAGE_OK);
    s.n = 0;
    cr_assert_eq(storage_left_out_list(cat, "Strata", count_left, &s), STORAGE_OK);
    cr_assert_eq(s.n, 0, "the next login replaced the rows");
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit"), audits);
    storage_catalog_close(cat);
}

/* Forget drops the view, its credentials, whiteouts and left-out rows;
 * with the token's last view its KDF salt goes too. */
Test(storage_creds, forget_drops_view_rows_and_last_salt)
{
    storage_catalog *cat = enrolled();
    storage_left_out one = {.layer = "group", .reason = "CKR_DEVICE_ERROR"};
    unsigned kept = 9;
    storage_login *l = NULL;
    storage_kdf kdf;
    bool found = false;

    cr_assert_eq(helper_enroll(cat, "anon", "anon-pin", work_creds, 1), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "Strata", "work", "group", "id", 2), STORAGE_OK);
    cr_assert_eq(storage_login_left_out(cat, "Strata", "work", &one, 1), STORAGE_OK);
    cr_assert_eq(storage_view_forget(cat, "Strata", "work", &kept), STORAGE_OK);
    cr_assert_eq(kept, 0);
    cr_assert_eq(storage_view_login(cat, "Strata", "work-pin", 8, &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM whiteouts"), 0);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM left_out"), 0);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM creds"), 1, "anon's stays");
    cr_assert_eq(storage_token_kdf(cat, "Strata", &kdf, &found), STORAGE_OK);
    cr_assert(found, "another view is enrolled: the salt stays");
    cr_assert_eq(storage_view_forget(cat, "Strata", "work", NULL), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_view_forget(cat, "Strata", "anon", NULL), STORAGE_OK);
    cr_assert_eq(storage_token_kdf(cat, "Strata", &kdf, &found), STORAGE_OK);
    cr_assert_not(found, "the last view took the salt and cost with it");
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'forget'"), 2);
    storage_catalog_close(cat);
}
