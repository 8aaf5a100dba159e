/*
 * test_token.c - layers/token.c: finding a layer's token, login through
 * an anchor session, backend sessions, concurrency.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "layers.h"
#include "world.h"

static world w;
static layers_module *m;

static void setup(void)
{
    world_setup(&w);
    m = NULL;
}

static void teardown(void)
{
    layers_module_unload(m);
    world_teardown(&w);
}

TestSuite(layers_token, .init = setup, .fini = teardown);

/* SoftHSM2 with tokens alpha and beta (user PIN 1234), loaded. */
static void load_softhsm(void)
{
    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(world_token(&w, "beta", "12345678", "1234"), 0);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
}

static void load_test_backend(void)
{
    const char *path = getenv("STRATA_TEST_BACKEND");

    cr_assert(path != NULL, "STRATA_TEST_BACKEND is not set (run through meson test)");
    cr_assert_eq(layers_module_load(path, &m, NULL, 0), CKR_OK);
}

/* The serial of the token labelled label, read from the slot list. */
static void serial_of(const char *label, char serial[17])
{
    layers_slot_info *slots = NULL;
    size_t n = 0, i;

    serial[0] = '\0';
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        if (strcmp(slots[i].label, label) == 0) {
            memcpy(serial, slots[i].serial, 17);
        }
    }
    free(slots);
    cr_assert_neq(serial[0], '\0');
}

static CK_ULONG session_count(void)
{
    CK_TOKEN_INFO ti;

    cr_assert_eq(layers_module_functions(m)->C_GetTokenInfo(1, &ti), CKR_OK);
    return ti.ulSessionCount;
}

static CK_STATE session_state(CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;

    cr_assert_eq(layers_module_functions(m)->C_GetSessionInfo(s, &si), CKR_OK);
    return si.state;
}

Test(layers_token, layers_token_new_bad_arguments)
{
    layers_token *t = NULL;

    load_test_backend();
    cr_assert_eq(layers_token_new(m, NULL, NULL, &t), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_new(NULL, "x", NULL, &t), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_new(m, "x", NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_new(m, "123456789012345678901234567890123", NULL, &t),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_new(m, NULL, "12345678901234567", &t), CKR_ARGUMENTS_BAD);
    cr_assert_null(t);
    cr_assert_eq(layers_token_new(m, "12345678901234567890123456789012", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_module(t), m);
    layers_token_free(t);
}

Test(layers_token, layers_token_slot_by_label)
{
    layers_token *t = NULL;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot;
    char label[33];

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "beta", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_slot(t, &slot), CKR_OK);
    cr_assert_eq(layers_module_functions(m)->C_GetTokenInfo(slot, &ti), CKR_OK);
    layers_field_to_string(ti.label, sizeof(ti.label), label, sizeof(label));
    cr_assert_str_eq(label, "beta");
    memset(&ti, 0, sizeof(ti));
    cr_assert_eq(layers_token_info(t, &ti), CKR_OK);
    layers_field_to_string(ti.label, sizeof(ti.label), label, sizeof(label));
    cr_assert_str_eq(label, "beta");
    cr_assert_not(layers_token_logged_in(t));
    layers_token_free(t);
}

Test(layers_token, layers_token_slot_by_serial)
{
    layers_token *by_label = NULL, *by_serial = NULL;
    CK_SLOT_ID a, b;
    char serial[17];

    load_softhsm();
    serial_of("alpha", serial);
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &by_label), CKR_OK);
    cr_assert_eq(layers_token_new(m, NULL, serial, &by_serial), CKR_OK);
    cr_assert_eq(layers_token_slot(by_label, &a), CKR_OK);
    cr_assert_eq(layers_token_slot(by_serial, &b), CKR_OK);
    cr_assert_eq(a, b);
    layers_token_free(by_label);
    layers_token_free(by_serial);
}

Test(layers_token, layers_token_slot_by_label_and_serial)
{
    layers_token *both = NULL, *mismatch = NULL, *absent = NULL;
    char alpha_serial[17];
    CK_SLOT_ID slot;

    load_softhsm();
    serial_of("alpha", alpha_serial);
    cr_assert_eq(layers_token_new(m, "alpha", alpha_serial, &both), CKR_OK);
    cr_assert_eq(layers_token_new(m, "beta", alpha_serial, &mismatch), CKR_OK);
    cr_assert_eq(layers_token_new(m, "gamma", NULL, &absent), CKR_OK);
    cr_assert_eq(layers_token_slot(both, &slot), CKR_OK);
    cr_assert_eq(layers_token_slot(mismatch, &slot), CKR_TOKEN_NOT_PRESENT);
    cr_assert_eq(layers_token_slot(absent, &slot), CKR_TOKEN_NOT_PRESENT);
    cr_assert_eq(layers_token_open_session(absent, 0, &slot), CKR_TOKEN_NOT_PRESENT);
    cr_assert_eq(layers_token_login(absent, CKU_USER, "1234", 4), CKR_TOKEN_NOT_PRESENT);
    layers_token_free(both);
    layers_token_free(mismatch);
    layers_token_free(absent);
}

/* The cached slot shows another label after the token was
 * re-initialised: the old name is gone, the new one is found there. */
Test(layers_token, layers_token_slot_rescans_after_label_change)
{
    layers_token *alpha = NULL, *gamma = NULL;
    CK_UTF8CHAR label[32];
    CK_SLOT_ID slot, again;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &alpha), CKR_OK);
    cr_assert_eq(layers_token_new(m, "gamma", NULL, &gamma), CKR_OK);
    cr_assert_eq(layers_token_slot(alpha, &slot), CKR_OK);
    memset(label, ' ', sizeof(label));
    memcpy(label, "gamma", 5);
    cr_assert_eq(
        layers_module_functions(m)->C_InitToken(slot, (CK_UTF8CHAR_PTR) "12345678", 8, label),
        CKR_OK);
    cr_assert_eq(layers_token_slot(alpha, &again), CKR_TOKEN_NOT_PRESENT);
    cr_assert_eq(layers_token_slot(gamma, &again), CKR_OK);
    cr_assert_eq(again, slot);
    layers_token_free(alpha);
    layers_token_free(gamma);
}

/* SoftHSM2 moves a token it saw initialised on its free slot to a slot
 * derived from its serial once it is restarted: the token follows. */
Test(layers_token, layers_token_slot_follows_token_after_cycle)
{
    layers_slot_info *slots = NULL;
    layers_token *delta = NULL;
    CK_UTF8CHAR label[32];
    CK_SLOT_ID free_slot = 0, before, after;
    size_t n = 0, i;

    load_softhsm();
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        if (!slots[i].initialized) {
            free_slot = slots[i].slot;
        }
    }
    free(slots);
    memset(label, ' ', sizeof(label));
    memcpy(label, "delta", 5);
    cr_assert_eq(
        layers_module_functions(m)->C_InitToken(free_slot, (CK_UTF8CHAR_PTR) "12345678", 8, label),
        CKR_OK);
    cr_assert_eq(layers_token_new(m, "delta", NULL, &delta), CKR_OK);
    cr_assert_eq(layers_token_slot(delta, &before), CKR_OK);
    cr_assert_eq(before, free_slot);
    cr_assert_eq(layers_module_cycle(m, NULL), CKR_OK);
    cr_assert_eq(layers_token_slot(delta, &after), CKR_OK);
    cr_assert_neq(after, before);
    layers_token_free(delta);
}

/* The backend answers CKR_SLOT_ID_INVALID for the cached slot once: the
 * token is found again by a rescan. */
Test(layers_token, layers_token_slot_rescans_after_slot_id_invalid)
{
    layers_token *t = NULL;
    CK_SLOT_ID slot;

    setenv("STRATA_TEST_BACKEND_FAIL", "C_GetTokenInfo:CKR_SLOT_ID_INVALID:2", 1);
    load_test_backend();
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_slot(t, &slot), CKR_OK); /* call 1: scan */
    cr_assert_eq(layers_token_slot(t, &slot), CKR_OK); /* call 2 fails, 3: rescan */
    cr_assert_eq(slot, 1);
    layers_token_free(t);
}

Test(layers_token, layers_token_slot_passes_other_backend_errors)
{
    layers_token *t = NULL;
    CK_SLOT_ID slot;

    setenv("STRATA_TEST_BACKEND_FAIL", "C_GetSlotList:CKR_DEVICE_ERROR:1", 1);
    load_test_backend();
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_slot(t, &slot), CKR_DEVICE_ERROR);
    cr_assert_eq(layers_token_slot(t, &slot), CKR_OK);
    layers_token_free(t);
}

Test(layers_token, layers_token_login_right_pin)
{
    layers_token *t = NULL;
    CK_SESSION_HANDLE s;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert(layers_token_logged_in(t));
    cr_assert_eq(layers_token_open_session(t, 0, &s), CKR_OK);
    cr_assert_eq(session_state(s), CKS_RO_USER_FUNCTIONS);
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_not(layers_token_logged_in(t));
    cr_assert_eq(session_state(s), CKS_RO_PUBLIC_SESSION);
    cr_assert_eq(layers_token_close_session(t, s), CKR_OK);
    layers_token_free(t);
}

Test(layers_token, layers_token_login_wrong_pin)
{
    layers_token *t = NULL;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "9999", 4), CKR_PIN_INCORRECT);
    cr_assert_not(layers_token_logged_in(t));
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert(layers_token_logged_in(t));
    layers_token_free(t);
}

Test(layers_token, layers_token_login_twice)
{
    layers_token *t = NULL;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert(layers_token_logged_in(t));
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_eq(layers_token_logout(t), CKR_OK); /* not logged in: nothing to do */
    layers_token_free(t);
}

/* The anchor is the only session a login leaves behind, and a failed
 * login leaves none; logout closes it. */
Test(layers_token, layers_token_login_anchor_session)
{
    layers_token *t = NULL;

    load_test_backend();
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "0000", 4), CKR_PIN_INCORRECT);
    cr_assert_eq(session_count(), 0);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(session_count(), 1);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(session_count(), 1);
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_eq(session_count(), 0);
    layers_token_free(t);
}

Test(layers_token, layers_token_login_so)
{
    layers_token *t = NULL;
    CK_SESSION_HANDLE s;

    load_test_backend();
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_SO, "12345678", 8), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, CKF_RW_SESSION, &s), CKR_OK);
    cr_assert_eq(session_state(s), CKS_RW_SO_FUNCTIONS);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_eq(session_state(s), CKS_RW_PUBLIC_SESSION);
    layers_token_free(t);
}

/* Login state lost by a cycle: the token no longer claims it, and a new
 * login opens a new anchor. */
Test(layers_token, layers_token_login_forgotten_after_cycle)
{
    layers_token *t = NULL;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(layers_module_cycle(m, NULL), CKR_OK);
    cr_assert_not(layers_token_logged_in(t));
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert(layers_token_logged_in(t));
    layers_token_free(t);
}

Test(layers_token, layers_token_open_close_sessions)
{
    CK_SESSION_HANDLE ro, rw;
    CK_SESSION_INFO si;
    layers_token *t = NULL, *other = NULL;
    CK_FUNCTION_LIST *f;

    load_softhsm();
    f = layers_module_functions(m);
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_new(m, "beta", NULL, &other), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, 0, &ro), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, CKF_RW_SESSION, &rw), CKR_OK);
    cr_assert_eq(f->C_GetSessionInfo(ro, &si), CKR_OK);
    cr_assert_eq(si.flags, CKF_SERIAL_SESSION);
    cr_assert_eq(si.state, CKS_RO_PUBLIC_SESSION);
    cr_assert_eq(f->C_GetSessionInfo(rw, &si), CKR_OK);
    cr_assert_eq(si.flags, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    cr_assert_eq(si.state, CKS_RW_PUBLIC_SESSION);

    /* Only the token that opened a session closes it, and only once. */
    cr_assert_eq(layers_token_close_session(other, ro), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(layers_token_close_session(t, ro), CKR_OK);
    cr_assert_eq(layers_token_close_session(t, ro), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(f->C_GetSessionInfo(ro, &si), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(f->C_GetSessionInfo(rw, &si), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, 0, NULL), CKR_ARGUMENTS_BAD);
    layers_token_free(t); /* closes rw */
    cr_assert_eq(f->C_GetSessionInfo(rw, &si), CKR_SESSION_HANDLE_INVALID);
    layers_token_free(other);
}

#define THREADS 8
#define ROUNDS  25
#define KEEP    4

typedef struct {
    layers_token *token;
    CK_SESSION_HANDLE kept[KEEP];
    CK_RV rv;
} worker;

static pthread_barrier_t start;

/* Opens and closes sessions in a loop, keeping the last KEEP open. */
static void *work(void *arg)
{
    worker *wk = arg;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    int i;

    pthread_barrier_wait(&start);
    wk->rv = CKR_OK;
    for (i = 0; i < ROUNDS && wk->rv == CKR_OK; i++) {
        wk->rv = layers_token_open_session(wk->token, i % 2 ? CKF_RW_SESSION : 0, &s);
        if (wk->rv == CKR_OK) {
            wk->rv = layers_token_slot(wk->token, &slot);
        }
        if (wk->rv == CKR_OK && i < ROUNDS - KEEP) {
            wk->rv = layers_token_close_session(wk->token, s);
        } else if (wk->rv == CKR_OK) {
            wk->kept[i - (ROUNDS - KEEP)] = s;
        }
    }
    return NULL;
}

static int compare_handles(const void *a, const void *b)
{
    CK_SESSION_HANDLE x = *(const CK_SESSION_HANDLE *)a, y = *(const CK_SESSION_HANDLE *)b;

    return x < y ? -1 : x > y;
}

Test(layers_token, layers_token_open_session_concurrently)
{
    CK_SESSION_HANDLE all[THREADS * KEEP];
    pthread_t threads[THREADS];
    worker workers[THREADS];
    layers_token *t = NULL;
    CK_SESSION_INFO si;
    int i, k;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
    for (i = 0; i < THREADS; i++) {
        workers[i].token = t;
        cr_assert_eq(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
        cr_assert_eq(workers[i].rv, CKR_OK, "thread %d: %s", i, layers_rv_name(workers[i].rv));
        for (k = 0; k < KEEP; k++) {
            all[i * KEEP + k] = workers[i].kept[k];
            cr_assert_eq(layers_module_functions(m)->C_GetSessionInfo(workers[i].kept[k], &si),
                         CKR_OK);
        }
    }
    pthread_barrier_destroy(&start);
    qsort(all, THREADS * KEEP, sizeof(all[0]), compare_handles);
    for (i = 1; i < THREADS * KEEP; i++) {
        cr_assert_neq(all[i], all[i - 1], "session handle handed out twice");
    }
    cr_assert(layers_token_logged_in(t));
    layers_token_free(t);
    for (i = 0; i < THREADS * KEEP; i++) {
        cr_assert_eq(layers_module_functions(m)->C_GetSessionInfo(all[i], &si),
                     CKR_SESSION_HANDLE_INVALID);
    }
}

/* SoftHSM2 requires a login; p11-kit's trust module does not. */
Test(layers_token, layers_token_login_required_reads_the_token_flag)
{
    const char *trust = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so";
    layers_module *tm = NULL;
    layers_token *t = NULL;
    char err[256] = "", args[PATH_MAX + 64];
    bool required = false;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "beta", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login_required(t, &required), CKR_OK);
    cr_assert(required);
    cr_assert_eq(layers_token_login_required(t, NULL), CKR_ARGUMENTS_BAD);
    layers_token_free(t);
    cr_assert_eq(layers_token_new(m, "absent", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login_required(t, &required), CKR_TOKEN_NOT_PRESENT);
    layers_token_free(t);

    if (access(trust, R_OK) != 0) {
        cr_skip_test("%s is missing: install p11-kit-modules (scripts/deps.sh)", trust);
    }
    cr_assert_eq(world_sh("mkdir '%s/ca'", w.dir), 0);
    snprintf(args, sizeof(args), "paths=%s/ca", w.dir);
    cr_assert_eq(layers_module_load_with(trust, args, &tm, err, sizeof(err)), CKR_OK, "%s", err);
    cr_assert_eq(layers_token_new(tm, "ca", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_login_required(t, &required), CKR_OK);
    cr_assert_not(required);
    layers_token_free(t);
    layers_module_unload(tm);
}
