/*
 * test_session.c - virtual sessions: open/close, states, bad inputs, and
 * many threads on many sessions at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>

#include "stack_world.h"

TestSuite(session, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

Test(session, open_bad_inputs)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = CANARY;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_OpenSession(slot + 100, CKF_SERIAL_SESSION, NULL, NULL, &s),
                 CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_RW_SESSION, NULL, NULL, &s),
                 CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    cr_assert_eq(s, CANARY);
    cr_assert_eq(p11->C_CloseSession(12345), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_CloseAllSessions(slot + 100), CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_GetSessionInfo(12345, NULL), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static CK_STATE state_of(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO info;

    cr_assert_eq(p11->C_GetSessionInfo(s, &info), CKR_OK);
    return info.state;
}

Test(session, states_follow_login)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE rw = open_rw(p11, slot), ro;
    CK_SESSION_INFO info;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    cr_assert_neq(ro, rw);
    cr_assert_eq(p11->C_GetSessionInfo(rw, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetSessionInfo(rw, &info), CKR_OK);
    cr_assert_eq(info.slotID, slot);
    cr_assert_eq(info.flags, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    cr_assert_eq(state_of(p11, rw), CKS_RW_PUBLIC_SESSION);
    cr_assert_eq(state_of(p11, ro), CKS_RO_PUBLIC_SESSION);
    cr_assert_eq(login(p11, ro, WORK_PIN), CKR_OK);
    cr_assert_eq(state_of(p11, rw), CKS_RW_USER_FUNCTIONS);
    cr_assert_eq(state_of(p11, ro), CKS_RO_USER_FUNCTIONS);
    cr_assert_eq(p11->C_Logout(rw), CKR_OK);
    cr_assert_eq(state_of(p11, ro), CKS_RO_PUBLIC_SESSION);
    cr_assert_eq(p11->C_GetFunctionStatus(rw), CKR_FUNCTION_NOT_PARALLEL);
    cr_assert_eq(p11->C_CancelFunction(rw), CKR_FUNCTION_NOT_PARALLEL);
    cr_assert_eq(p11->C_GetFunctionStatus(9999), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(session, close_last_session_logs_out_and_handles_are_not_reused)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE a = open_rw(p11, slot), b = open_rw(p11, slot), c;
    CK_TOKEN_INFO info;
    CK_SESSION_INFO sinfo;

    cr_assert_eq(login(p11, a, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_CloseSession(a), CKR_OK);
    cr_assert_eq(p11->C_CloseSession(a), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(state_of(p11, b), CKS_RW_USER_FUNCTIONS);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert_eq(info.ulSessionCount, 1);
    cr_assert_eq(p11->C_CloseAllSessions(slot), CKR_OK);
    cr_assert_eq(p11->C_GetSessionInfo(b, &sinfo), CKR_SESSION_HANDLE_INVALID);
    c = open_rw(p11, slot);
    cr_assert_neq(c, a);
    cr_assert_neq(c, b);
    cr_assert_eq(state_of(p11, c), CKS_RW_PUBLIC_SESSION, "not logged out with the last session");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE key;
    int failures;
} job;

/* Each thread opens its own session and signs many times; two threads
 * also share one session (serialised by Strata). */
static void *signer(void *arg)
{
    job *j = arg;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE data[32] = {1}, sig[128];
    CK_SESSION_HANDLE s;

    if (j->p11->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
        j->failures++;
        return NULL;
    }
    for (int i = 0; i < 40; i++) {
        CK_ULONG len = sizeof(sig);
        if (j->p11->C_SignInit(s, &mech, j->key) != CKR_OK ||
            j->p11->C_Sign(s, data, sizeof(data), sig, &len) != CKR_OK) {
            j->failures++;
        }
    }
    if (j->p11->C_CloseSession(s) != CKR_OK) {
        j->failures++;
    }
    return NULL;
}

Test(session, threads_on_many_sessions)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    pthread_t threads[8];
    job jobs[8];

    for (int i = 0; i < 8; i++) {
        jobs[i] = (job){p11, slot, find_one(p11, s, CKO_PRIVATE_KEY, i % 2 ? "g-ec" : "p-ec"), 0};
        cr_assert_eq(pthread_create(&threads[i], NULL, signer, &jobs[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
        cr_assert_eq(jobs[i].failures, 0, "thread %d failed %d times", i, jobs[i].failures);
    }
    cr_assert_eq(state_of(p11, s), CKS_RW_USER_FUNCTIONS);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
