/*
 * test_stress.c - many threads on one view: 8 threads, several sessions
 * each, signing with a group and a personal key, finding, creating and
 * destroying data objects in the personal layer, while thread 0 also logs
 * out, logs in and calls C_CloseAllSessions. Every return code must be one
 * the specification allows for the interleaving; at the end the personal
 * token on SoftHSM2 must hold exactly the objects created and not
 * destroyed.
 *
 * STRESS_ITERATIONS scales the run (iterations per thread, default 150);
 * use a small value under valgrind --tool=helgrind (--trace-children=yes:
 * criterion runs the test in a child). ThreadSanitizer: criterion's runner
 * cannot start under TSan, so stress_tsan.c runs this body from a plain
 * main() against a clang -fsanitize=thread module
 * (tests/integration/run-tsan.sh, a step of scripts/test.sh).
 *
 * What this test found: a use-after-free in C_OpenSession racing
 * C_CloseAllSessions (TSan), and that SoftHSM2's file store corrupts an
 * object being made while another thread searches the token (see
 * backend_store_init in engine/backend.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdint.h>

#include "stack_world.h"

/* Criterion's timeout is the deadlock detector. */
TestSuite(stress, .init = stack_setup, .fini = stack_teardown, .timeout = 600);

#define N_THREADS  8
#define N_SESSIONS 3
#define MAX_LIVE   4096

static const CK_BYTE digest[32] = "0123456789abcdef0123456789abcdef";

typedef struct {
    CK_OBJECT_HANDLE handle;
    char label[32];
} live_object;

typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE keys[2]; /* g-ec (group layer), p-ec (personal layer) */
    unsigned id;
    unsigned iterations;
    uint64_t rng;
    CK_SESSION_HANDLE s[N_SESSIONS];
    live_object live[MAX_LIVE]; /* created, not (yet) destroyed */
    size_t n_live;
    unsigned created, destroyed;
    char failure[256]; /* first unexpected result, "" when none */
} worker;

static unsigned iterations(void)
{
    const char *env = getenv("STRESS_ITERATIONS");
    long n = env != NULL ? strtol(env, NULL, 10) : 150;

    return n > 0 && n < 100000 ? (unsigned)n : 150;
}

static unsigned next_random(worker *wk)
{
    wk->rng ^= wk->rng << 13;
    wk->rng ^= wk->rng >> 7;
    wk->rng ^= wk->rng << 17;
    return (unsigned)(wk->rng >> 11);
}

/* Whether rv is one of the n allowed codes; records the first miss. */
static bool allowed(worker *wk, const char *call, CK_RV rv, size_t n, const CK_RV *ok)
{
    for (size_t i = 0; i < n; i++) {
        if (rv == ok[i]) {
            return true;
        }
    }
    if (wk->failure[0] == '\0') {
        snprintf(wk->failure, sizeof(wk->failure), "thread %u: %s returned 0x%lx", wk->id, call,
                 (unsigned long)rv);
    }
    return false;
}

#define ALLOWED(wk, call, rv, ...)                                                                 \
    allowed((wk), (call), (rv), sizeof((CK_RV[]){__VA_ARGS__}) / sizeof(CK_RV),                    \
            (CK_RV[]){__VA_ARGS__})

/*
 * Allowed codes, per call, for this interleaving. Any session may be
 * closed by thread 0's C_CloseAllSessions at any moment
 * (CKR_SESSION_HANDLE_INVALID, PKCS#11 v2.40 §5.6), and the token may be
 * logged out at any moment by thread 0's C_Logout or by the
 * C_CloseAllSessions (§5.6: closing the last session logs out), which makes
 * private objects unreachable: CKR_USER_NOT_LOGGED_IN where an operation
 * needs a login, CKR_KEY_HANDLE_INVALID / CKR_OBJECT_HANDLE_INVALID for a
 * handle of a private object that the session can no longer see. A
 * search begun before a logout ends with it (C_Logout, §5.6: operations
 * "may or may not" continue): CKR_OPERATION_NOT_INITIALIZED.
 */

/* A session for slot i (re-opened when closed). C_OpenSession: CKR_OK only. */
static CK_SESSION_HANDLE session_of(worker *wk, unsigned i)
{
    if (wk->s[i] == CK_INVALID_HANDLE) {
        CK_RV rv = wk->p11->C_OpenSession(wk->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                          &wk->s[i]);
        if (!ALLOWED(wk, "C_OpenSession", rv, CKR_OK)) {
            wk->s[i] = CK_INVALID_HANDLE;
        }
    }
    return wk->s[i];
}

/* Forgets session i when rv says it was closed under us. */
static void note_closed(worker *wk, unsigned i, CK_RV rv)
{
    if (rv == CKR_SESSION_HANDLE_INVALID) {
        wk->s[i] = CK_INVALID_HANDLE;
    }
}

/* ECDSA with one of the two keys: C_SignInit then C_Sign. */
static void do_sign(worker *wk, unsigned i)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[128];
    CK_ULONG len = sizeof(sig);
    CK_SESSION_HANDLE s = session_of(wk, i);
    CK_RV rv = wk->p11->C_SignInit(s, &mech, wk->keys[next_random(wk) % 2]);

    note_closed(wk, i, rv);
    if (!ALLOWED(wk, "C_SignInit", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN,
                 CKR_KEY_HANDLE_INVALID) ||
        rv != CKR_OK) {
        return;
    }
    rv = wk->p11->C_Sign(s, (CK_BYTE_PTR)digest, sizeof(digest), sig, &len);
    note_closed(wk, i, rv);
    /* a logout between the two ends the operation's access to the key */
    ALLOWED(wk, "C_Sign", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN,
            CKR_KEY_HANDLE_INVALID, CKR_OPERATION_NOT_INITIALIZED);
    if (rv == CKR_OK && len != 64) {
        ALLOWED(wk, "C_Sign length", len, 64);
    }
}

/* A search for data objects: init, two batches, final. */
static void do_find(worker *wk, unsigned i)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE found[16];
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s = session_of(wk, i);
    CK_RV rv = wk->p11->C_FindObjectsInit(s, t, 1);

    note_closed(wk, i, rv);
    if (!ALLOWED(wk, "C_FindObjectsInit", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID,
                 CKR_USER_NOT_LOGGED_IN) ||
        rv != CKR_OK) {
        return;
    }
    for (int batch = 0; batch < 2 && rv == CKR_OK; batch++) {
        rv = wk->p11->C_FindObjects(s, found, 16, &n);
        note_closed(wk, i, rv);
        ALLOWED(wk, "C_FindObjects", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID,
                CKR_OPERATION_NOT_INITIALIZED);
        if (rv == CKR_OK && n > 16) {
            ALLOWED(wk, "C_FindObjects count", n, 16);
        }
    }
    if (rv == CKR_OK) {
        rv = wk->p11->C_FindObjectsFinal(s);
        note_closed(wk, i, rv);
        ALLOWED(wk, "C_FindObjectsFinal", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID,
                CKR_OPERATION_NOT_INITIALIZED);
    }
}

/* A private token data object labelled st-<thread>-<n>. */
static void do_create(worker *wk, unsigned i)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    live_object o = {CK_INVALID_HANDLE, ""};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_PRIVATE, &yes, 1},
                        {CKA_LABEL, o.label, 0},
                        {CKA_VALUE, (void *)digest, sizeof(digest)}};
    CK_SESSION_HANDLE s = session_of(wk, i);
    CK_RV rv;

    if (wk->n_live == MAX_LIVE) {
        return;
    }
    snprintf(o.label, sizeof(o.label), "st-%u-%u", wk->id, wk->created);
    t[3].ulValueLen = strlen(o.label);
    rv = wk->p11->C_CreateObject(s, t, 5, &o.handle);
    note_closed(wk, i, rv);
    if (ALLOWED(wk, "C_CreateObject", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN) &&
        rv == CKR_OK) {
        wk->live[wk->n_live++] = o;
        wk->created++;
    }
}

/* Destroys one of this thread's objects (a random one). */
static void do_destroy(worker *wk, unsigned i)
{
    size_t k;
    CK_RV rv;
    CK_SESSION_HANDLE s = session_of(wk, i);

    if (wk->n_live == 0) {
        return;
    }
    k = next_random(wk) % wk->n_live;
    rv = wk->p11->C_DestroyObject(s, wk->live[k].handle);
    note_closed(wk, i, rv);
    /* a private object is out of reach while logged out */
    if (ALLOWED(wk, "C_DestroyObject", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN, CKR_OBJECT_HANDLE_INVALID) &&
        rv == CKR_OK) {
        wk->live[k] = wk->live[--wk->n_live];
        wk->destroyed++;
    }
}

/* Closes session i and opens it again. */
static void do_reopen(worker *wk, unsigned i)
{
    CK_RV rv = wk->p11->C_CloseSession(session_of(wk, i));

    ALLOWED(wk, "C_CloseSession", rv, CKR_OK, CKR_SESSION_HANDLE_INVALID);
    wk->s[i] = CK_INVALID_HANDLE;
    session_of(wk, i);
}

/* Thread 0's extra step: logout, login, close all, login, in turn. */
static void disrupt(worker *wk, unsigned step)
{
    CK_SESSION_HANDLE s = session_of(wk, 0);
    CK_RV rv;

    switch (step % 4) {
    case 0:
        rv = wk->p11->C_Logout(s);
        note_closed(wk, 0, rv);
        ALLOWED(wk, "C_Logout", rv, CKR_OK, CKR_USER_NOT_LOGGED_IN);
        break;
    case 2:
        rv = wk->p11->C_CloseAllSessions(wk->slot);
        ALLOWED(wk, "C_CloseAllSessions", rv, CKR_OK);
        for (unsigned i = 0; i < N_SESSIONS; i++) {
            wk->s[i] = CK_INVALID_HANDLE;
        }
        break;
    default:
        rv = login(wk->p11, s, WORK_PIN);
        note_closed(wk, 0, rv);
        ALLOWED(wk, "C_Login", rv, CKR_OK, CKR_USER_ALREADY_LOGGED_IN);
        break;
    }
}

static void *run(void *arg)
{
    worker *wk = arg;

    for (unsigned it = 0; it < wk->iterations && wk->failure[0] == '\0'; it++) {
        unsigned i = next_random(wk) % N_SESSIONS;

        if (wk->id == 0 && it % 8 == 7) {
            disrupt(wk, it / 8);
            continue;
        }
        switch (next_random(wk) % 8) {
        case 0:
        case 1:
            do_sign(wk, i);
            break;
        case 2:
            do_find(wk, i);
            break;
        case 3:
        case 4:
            do_create(wk, i);
            break;
        case 5:
        case 6:
            do_destroy(wk, i);
            break;
        default:
            do_reopen(wk, i);
            break;
        }
    }
    if (wk->id == 0) {
        disrupt(wk, 1); /* end logged in: the others' last steps can still write */
    }
    return NULL;
}

/* The labels st-* in the personal token, read from SoftHSM2 directly. */
static char *backend_labels(void)
{
    char *out = NULL;

    cr_assert_eq(world_sh_out(&out,
                              "pkcs11-tool --module '%s' --token-label personal --login --pin 1111 "
                              "-O --type data 2>/dev/null | sed -n \"s/^ *label: *'\\?\\(st-[0-9]*-"
                              "[0-9]*\\)'\\?$/\\1/p\" | LC_ALL=C sort",
                              world_softhsm_module()),
                 0);
    return out;
}

static int compare_labels(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The expected labels, sorted, one a line. */
static char *expected_labels(worker *wk)
{
    size_t n = 0, size = 1;
    char **all;
    char *text;

    for (int t = 0; t < N_THREADS; t++) {
        n += wk[t].n_live;
        size += wk[t].n_live * sizeof(wk[0].live[0].label);
    }
    all = calloc(n + 1, sizeof(*all));
    text = calloc(1, size);
    cr_assert(all != NULL && text != NULL);
    n = 0;
    for (int t = 0; t < N_THREADS; t++) {
        for (size_t k = 0; k < wk[t].n_live; k++) {
            all[n++] = wk[t].live[k].label;
        }
    }
    qsort(all, n, sizeof(*all), compare_labels);
    for (size_t k = 0; k < n; k++) {
        strcat(text, all[k]);
        strcat(text, "\n");
    }
    free(all);
    return text;
}

/* Every surviving handle still names its object, as the same label. */
static void check_handles(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, worker *wk)
{
    for (int t = 0; t < N_THREADS; t++) {
        for (size_t k = 0; k < wk[t].n_live; k++) {
            char label[64];
            CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label) - 1};
            CK_RV rv = p11->C_GetAttributeValue(s, wk[t].live[k].handle, &a, 1);

            cr_expect_eq(rv, CKR_OK, "%s (handle %lu): C_GetAttributeValue 0x%lx",
                         wk[t].live[k].label, wk[t].live[k].handle, rv);
            if (rv == CKR_OK) {
                label[a.ulValueLen] = '\0';
                cr_expect_str_eq(label, wk[t].live[k].label);
            }
        }
    }
}

static CK_OBJECT_HANDLE private_key(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label)
{
    CK_OBJECT_HANDLE h = find_one(p11, s, CKO_PRIVATE_KEY, label);

    cr_assert_neq(h, CK_INVALID_HANDLE, "%s not found", label);
    return h;
}

Test(stress, eight_threads_sign_find_create_destroy_with_logouts)
{
    static worker wk[N_THREADS];
    pthread_t th[N_THREADS];
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE g = private_key(p11, s, "g-ec"), p = private_key(p11, s, "p-ec");
    unsigned created = 0, destroyed = 0;
    CK_RV rv;
    char *want, *have;

    for (unsigned t = 0; t < N_THREADS; t++) {
        wk[t] = (worker){.p11 = p11,
                         .slot = slot,
                         .keys = {g, p},
                         .id = t,
                         .iterations = iterations(),
                         .rng = 0x9E3779B97F4A7C15ULL * (t + 1)};
        for (unsigned i = 0; i < N_SESSIONS; i++) {
            wk[t].s[i] = CK_INVALID_HANDLE;
        }
    }
    for (unsigned t = 0; t < N_THREADS; t++) {
        cr_assert_eq(pthread_create(&th[t], NULL, run, &wk[t]), 0);
    }
    for (unsigned t = 0; t < N_THREADS; t++) {
        cr_assert_eq(pthread_join(th[t], NULL), 0);
    }
    for (unsigned t = 0; t < N_THREADS; t++) {
        cr_expect_str_eq(wk[t].failure, "");
        created += wk[t].created;
        destroyed += wk[t].destroyed;
    }
    cr_log_info("created %u, destroyed %u data objects", created, destroyed);
    cr_assert_gt(created, 0);
    cr_assert_gt(destroyed, 0);

    /* the virtual view: a fresh session, logged in again */
    s = open_rw(p11, slot);
    rv = login(p11, s, WORK_PIN);
    cr_assert(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: 0x%lx", rv);
    check_handles(p11, s, wk);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    /* the backend itself: no object lost, none duplicated */
    want = expected_labels(wk);
    have = backend_labels();
    cr_expect_str_eq(have, want, "personal token holds\n%s\nexpected\n%s", have, want);
    free(want);
    free(have);
}
