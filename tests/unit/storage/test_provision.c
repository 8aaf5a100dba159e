/*
 * test_provision.c - storage/provision.c: provisioning rows, their PINs,
 * states, claims, listing, and two processes racing to begin one row.
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

TestSuite(storage_provision, .init = setup, .fini = teardown);

#define PIN "111111"

static storage_catalog *open_enrolled(void)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(helper_enroll(cat, "work", PIN, NULL, 0), STORAGE_OK);
    return cat;
}

static storage_rc begin(storage_catalog *cat, const char *layer, storage_provision **out)
{
    storage_login *l = helper_login(cat, PIN);
    storage_rc rc = storage_provision_begin(cat, l, layer, "/usr/lib/softhsm/libsofthsm2.so",
                                            "strata-work", out);

    storage_login_free(l);
    return rc;
}

/* Both PINs as one string "so/user". */
static void pins_text(const storage_provision *p, char *out, size_t size)
{
    const char *so, *user;
    size_t so_len, user_len;

    storage_provision_pins(p, &so, &so_len, &user, &user_len);
    snprintf(out, size, "%.*s/%.*s", (int)so_len, so, (int)user_len, user);
}

Test(storage_provision, storage_provision_begin_generates_pending_row)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    const storage_provision_info *info;
    const char *so, *user;
    size_t so_len, user_len;

    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    info = storage_provision_info_get(p);
    cr_assert_str_eq(info->view, "work");
    cr_assert_str_eq(info->layer, "personal");
    cr_assert_str_eq(info->label, "strata-work");
    cr_assert_str_eq(info->serial, "");
    cr_assert_eq(info->state, STORAGE_PROV_PENDING);
    storage_provision_pins(p, &so, &so_len, &user, &user_len);
    cr_assert_eq(so_len, STORAGE_GENERATED_PIN_LEN);
    cr_assert_eq(user_len, STORAGE_GENERATED_PIN_LEN);
    cr_assert_neq(memcmp(so, user, so_len), 0);
    for (size_t i = 0; i < so_len; i++) {
        cr_assert(so[i] > ' ' && so[i] < 0x7f && user[i] > ' ' && user[i] < 0x7f);
    }
    storage_provision_free(p);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action ="
                                       " 'provision-begin'"),
                 1);
}

Test(storage_provision, storage_provision_begin_idempotent)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL, *q = NULL;
    char a[64], b[64];

    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    cr_assert_eq(begin(cat, "personal", &q), STORAGE_OK);
    pins_text(p, a, sizeof(a));
    pins_text(q, b, sizeof(b));
    cr_assert_str_eq(a, b);
    storage_provision_free(q);
    cr_assert_eq(storage_provision_advance(cat, "Strata", "work", "personal",
                                           STORAGE_PROV_INITIALISED, "0123456789abcdef"),
                 STORAGE_OK);
    cr_assert_eq(begin(cat, "personal", &q), STORAGE_OK);
    cr_assert_eq(storage_provision_info_get(q)->state, STORAGE_PROV_INITIALISED);
    pins_text(q, b, sizeof(b));
    cr_assert_str_eq(a, b);
    storage_provision_free(p);
    storage_provision_free(q);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned"), 1);
}

Test(storage_provision, storage_provision_read_unwraps_with_view_key_only)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL, *q = NULL;
    storage_login *other;
    char a[64], b[64];

    cr_assert_eq(helper_enroll(cat, "anon", "222222", NULL, 0), STORAGE_OK);
    other = helper_login(cat, "222222");
    cr_assert_eq(storage_provision_read(cat, other, "personal", &q), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    cr_assert_eq(storage_provision_read(cat, other, "personal", &q), STORAGE_ERR_NOT_FOUND,
                 "another view's row is not this view's");
    storage_login_free(other);
    other = helper_login(cat, PIN);
    cr_assert_eq(storage_provision_read(cat, other, "personal", &q), STORAGE_OK);
    pins_text(p, a, sizeof(a));
    pins_text(q, b, sizeof(b));
    cr_assert_str_eq(a, b);
    storage_provision_free(p);
    storage_provision_free(q);
    storage_login_free(other);
    storage_catalog_close(cat);
}

/* A re-enrolment with another PIN: the row's PINs no longer open. */
Test(storage_provision, storage_provision_read_after_reenrol_crypto)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    storage_login *l;

    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    storage_provision_free(p);
    cr_assert_eq(helper_enroll(cat, "work", "333333", NULL, 0), STORAGE_OK);
    l = helper_login(cat, "333333");
    cr_assert_eq(storage_provision_read(cat, l, "personal", &p), STORAGE_ERR_CRYPTO);
    cr_assert_null(p);
    cr_assert_eq(storage_provision_begin(cat, l, "personal", "/m.so", "x", &p), STORAGE_ERR_CRYPTO);
    storage_login_free(l);
    storage_catalog_close(cat);
}

Test(storage_provision, storage_provision_begin_bad_arguments)
{
    storage_catalog *cat = open_enrolled();
    storage_login *l = helper_login(cat, PIN);
    storage_provision *p = (storage_provision *)&p;
    char long_label[40];

    memset(long_label, 'x', sizeof(long_label) - 1);
    long_label[sizeof(long_label) - 1] = '\0';
    cr_assert_eq(storage_provision_begin(cat, NULL, "l", "/m.so", "x", &p), STORAGE_ERR_ARGS);
    cr_assert_null(p);
    cr_assert_eq(storage_provision_begin(cat, l, "", "/m.so", "x", &p), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_provision_begin(cat, l, "l", NULL, "x", &p), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_provision_begin(cat, l, "l", "/m.so", long_label, &p), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_provision_begin(cat, l, "l", "/m.so", "x", NULL), STORAGE_ERR_ARGS);
    storage_login_free(l);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned"), 0);
}

Test(storage_provision, storage_provision_advance_follows_state_machine)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    const char *t = "Strata", *v = "work", *l = "personal";

    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_WAITING, NULL),
                 STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(begin(cat, l, &p), STORAGE_OK);
    storage_provision_free(p);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_READY, "s1"),
                 STORAGE_ERR_ARGS, "pending -> ready skips C_InitToken");
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_INITIALISED, NULL),
                 STORAGE_ERR_ARGS, "initialised needs a serial");
    cr_assert_eq(
        storage_provision_advance(cat, t, v, l, STORAGE_PROV_INITIALISED, "01234567890123456"),
        STORAGE_ERR_ARGS, "a serial is at most 16 bytes");
    cr_assert_eq(storage_provision_advance(cat, t, v, l, (storage_prov_state)9, "s1"),
                 STORAGE_ERR_ARGS);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_WAITING, NULL), STORAGE_OK);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_WAITING, NULL), STORAGE_OK);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_PENDING, NULL), STORAGE_OK);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_INITIALISED, "s1"),
                 STORAGE_OK);
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_PENDING, NULL),
                 STORAGE_ERR_ARGS, "a token exists: no way back to pending");
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_READY, NULL), STORAGE_OK,
                 "the recorded serial stays");
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_INITIALISED, "s2"),
                 STORAGE_OK, "repair: re-initialised, new serial");
    cr_assert_eq(storage_provision_advance(cat, t, v, l, STORAGE_PROV_READY, NULL), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned WHERE state = 'ready'"
                                       " AND serial = 's2'"),
                 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'provision'"), 7);
}

struct listed {
    storage_provision_info infos[8];
    size_t n;
};

static void collect(void *ctx, const storage_provision_info *info)
{
    struct listed *l = ctx;

    if (l->n < 8) {
        l->infos[l->n++] = *info;
    }
}

/* The list shows each row's public facts; no generated PIN appears in the
 * catalog file or its WAL, in clear. */
Test(storage_provision, storage_provisions_list_no_pins_anywhere)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p[3] = {NULL};
    const char *layers[3] = {"a", "b", "c"};
    const char *secrets[6];
    size_t lens[6];
    struct listed got = {0};
    char wal[PATH_MAX + 8];

    snprintf(wal, sizeof(wal), "%s-wal", w.catalog);
    cr_assert_eq(storage_so_set(cat, "Strata", "so-pin-77", 9, &cheap_kdf), STORAGE_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(begin(cat, layers[i], &p[i]), STORAGE_OK);
        storage_provision_pins(p[i], &secrets[2 * i], &lens[2 * i], &secrets[2 * i + 1],
                               &lens[2 * i + 1]);
    }
    cr_assert_eq(
        storage_provision_advance(cat, "Strata", "work", "b", STORAGE_PROV_INITIALISED, "feedface"),
        STORAGE_OK);
    cr_assert_eq(storage_provisions_list(cat, "Strata", collect, &got), STORAGE_OK);
    cr_assert_eq(got.n, 3);
    cr_assert_str_eq(got.infos[0].layer, "a");
    cr_assert_str_eq(got.infos[1].layer, "b");
    cr_assert_str_eq(got.infos[1].serial, "feedface");
    cr_assert_eq(got.infos[1].state, STORAGE_PROV_INITIALISED);
    cr_assert_str_eq(got.infos[2].module, "/usr/lib/softhsm/libsofthsm2.so");
    cr_assert(got.infos[2].admin_recoverable);
    cr_assert(got.infos[2].created_at > 0);
    for (size_t i = 0; i < got.n; i++) {
        for (size_t j = 0; j < 6; j++) {
            cr_assert_null(memmem(&got.infos[i], sizeof(got.infos[i]), secrets[j], lens[j]));
        }
    }
    helper_assert_absent(wal, secrets, lens, 6);
    helper_assert_absent(w.catalog, secrets, lens, 6);
    storage_catalog_close(cat);
    helper_assert_absent(w.catalog, secrets, lens, 6);
    for (int i = 0; i < 3; i++) {
        storage_provision_free(p[i]);
    }
    cat = helper_open(&w);
    got.n = 0;
    cr_assert_eq(storage_provisions_list(cat, "Other", collect, &got), STORAGE_OK);
    cr_assert_eq(got.n, 0);
    storage_catalog_close(cat);
}

Test(storage_provision, storage_provision_remove_forgets_row)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    storage_login *l;

    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    storage_provision_free(p);
    cr_assert_eq(storage_provision_remove(cat, "Strata", "work", "personal"), STORAGE_OK);
    cr_assert_eq(storage_provision_remove(cat, "Strata", "work", "personal"),
                 STORAGE_ERR_NOT_FOUND);
    l = helper_login(cat, PIN);
    cr_assert_eq(storage_provision_read(cat, l, "personal", &p), STORAGE_ERR_NOT_FOUND);
    storage_login_free(l);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action ="
                                       " 'provision-remove'"),
                 1);
}

static void view_info(void *ctx, const storage_view_info *info)
{
    if (strcmp(info->view, "work") == 0) {
        *(storage_view_info *)ctx = *info;
    }
}

/* Views list their provisioning state and the token's failure count. */
Test(storage_provision, storage_views_list_reports_provisioning_state)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    storage_view_info info = {0};

    cr_assert_eq(begin(cat, "a", &p), STORAGE_OK);
    storage_provision_free(p);
    cr_assert_eq(begin(cat, "b", &p), STORAGE_OK);
    storage_provision_free(p);
    cr_assert_eq(
        storage_provision_advance(cat, "Strata", "work", "a", STORAGE_PROV_INITIALISED, "s"),
        STORAGE_OK);
    cr_assert_eq(storage_provision_advance(cat, "Strata", "work", "a", STORAGE_PROV_READY, NULL),
                 STORAGE_OK);
    cr_assert_eq(storage_login_failed(cat, "Strata", NULL), STORAGE_OK);
    cr_assert_eq(storage_login_failed(cat, "Strata", NULL), STORAGE_OK);
    cr_assert_eq(storage_views_list(cat, "Strata", view_info, &info), STORAGE_OK);
    cr_assert_str_eq(info.view, "work");
    cr_assert_eq(info.provisioned, 1);
    cr_assert_eq(info.provisioning, 1);
    cr_assert_eq(info.failed_logins, 2);
    storage_catalog_close(cat);
}

/* Two processes beginning the same row at once get one row and the same
 * PINs. */
Test(storage_provision, storage_provision_begin_two_processes_race)
{
    enum { N = 4 };
    storage_catalog *cat = open_enrolled();
    int fds[N][2], go[2];
    pid_t pids[N];
    char first[64] = "", got[64];

    storage_catalog_close(cat); /* no connection crosses fork() */
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe(fds[i]), 0);
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            storage_catalog *c = NULL;
            storage_provision *p = NULL;
            storage_login *l = NULL;
            char byte, text[64];
            storage_rc rc;

            close(go[1]);
            if (read(go[0], &byte, 1) != 0) {
                _exit(2);
            }
            rc = storage_catalog_open(w.catalog, 0, &c, NULL, 0);
            if (rc == STORAGE_OK) {
                rc = storage_view_login(c, "Strata", PIN, strlen(PIN), &l);
            }
            if (rc == STORAGE_OK) {
                rc = storage_provision_begin(c, l, "personal", "/m.so", "strata-work", &p);
            }
            if (rc != STORAGE_OK) {
                _exit(10 + (int)rc);
            }
            pins_text(p, text, sizeof(text));
            if (write(fds[i][1], text, strlen(text) + 1) != (ssize_t)strlen(text) + 1) {
                _exit(3);
            }
            storage_provision_free(p);
            storage_login_free(l);
            storage_catalog_close(c);
            _exit(0);
        }
        close(fds[i][1]);
    }
    close(go[0]);
    close(go[1]); /* all children start now */
    for (int i = 0; i < N; i++) {
        ssize_t n;

        cr_assert_eq(helper_wait(pids[i]), 0, "child %d", i);
        n = read(fds[i][0], got, sizeof(got));
        close(fds[i][0]);
        cr_assert(n > 0);
        if (i == 0) {
            snprintf(first, sizeof(first), "%s", got);
        }
        cr_assert_str_eq(got, first);
    }
    cr_assert_eq(strlen(first), 2 * STORAGE_GENERATED_PIN_LEN + 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned"), 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action ="
                                       " 'provision-begin'"),
                 1);
}

/* The claim: one live process at a time; free again on release, on
 * advance, and when its holder dies. */
Test(storage_provision, storage_provision_claim_one_live_process)
{
    storage_catalog *cat = open_enrolled();
    storage_provision *p = NULL;
    bool won = false;
    pid_t pid;
    struct listed got = {0};

    cr_assert_eq(storage_provision_claim(cat, "Strata", "work", "personal", &won),
                 STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(begin(cat, "personal", &p), STORAGE_OK);
    storage_provision_free(p);
    storage_catalog_close(cat);

    /* a child claims and stays alive until told to exit */
    int hold[2], ready[2];
    cr_assert_eq(pipe(hold), 0);
    cr_assert_eq(pipe(ready), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        storage_catalog *c = NULL;
        bool w1 = false;
        char byte = 1;

        close(hold[1]);
        close(ready[0]);
        if (storage_catalog_open(w.catalog, 0, &c, NULL, 0) != STORAGE_OK ||
            storage_provision_claim(c, "Strata", "work", "personal", &w1) != STORAGE_OK || !w1) {
            _exit(2);
        }
        if (write(ready[1], &byte, 1) != 1 || read(hold[0], &byte, 1) < 0) {
            _exit(3);
        }
        storage_catalog_close(c);
        _exit(0); /* dies holding the claim */
    }
    close(hold[0]);
    close(ready[1]);
    char byte;
    cr_assert_eq(read(ready[0], &byte, 1), 1);
    cat = helper_open(&w);
    cr_assert_eq(storage_provision_claim(cat, "Strata", "work", "personal", &won), STORAGE_OK);
    cr_assert_not(won, "held by a live process");
    cr_assert_eq(storage_provisions_list(cat, "Strata", collect, &got), STORAGE_OK);
    cr_assert(got.infos[0].claimed);
    close(hold[1]);
    cr_assert_eq(helper_wait(pid), 0);
    cr_assert_eq(storage_provision_claim(cat, "Strata", "work", "personal", &won), STORAGE_OK);
    cr_assert(won, "its holder is gone");
    cr_assert_eq(storage_provision_claim(cat, "Strata", "work", "personal", &won), STORAGE_OK);
    cr_assert(won, "already ours");
    cr_assert_eq(storage_provision_release(cat, "Strata", "work", "personal"), STORAGE_OK);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned WHERE claim_pid IS NULL"),
                 1);
    cr_assert_eq(storage_provision_claim(cat, "Strata", "work", "personal", &won), STORAGE_OK);
    cr_assert_eq(
        storage_provision_advance(cat, "Strata", "work", "personal", STORAGE_PROV_WAITING, NULL),
        STORAGE_OK);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM provisioned WHERE claim_pid IS NULL"),
                 1, "advance drops the claim");
    storage_catalog_close(cat);
}
