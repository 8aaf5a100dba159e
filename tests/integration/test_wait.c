/*
 * test_wait.c - C_WaitForSlotEvent (engine/wait.c, issue 16): the virtual
 * token leaving and coming back, a lazily provisioned token becoming
 * ready, CKF_DONT_BLOCK, C_Finalize releasing a blocked waiter, and a
 * waiter that sleeps rather than spins.
 *
 * Two worlds. "backend": the view work is the test backend A alone
 * (layer ta), whose token leaves and comes back through its control file
 * (tests/backend/backend.c). "lazy": the view alice stacks a lazy layer
 * (token strata-{view}, provisioned at login on SoftHSM2) over the
 * SoftHSM2 token group, so the token stays present while the lazy one is
 * made.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend_control.h"
#include "p11_client.h"

#define ALICE_PIN "alice-pin-1"

static world w;

static const char backend_policy[] = "<strata version=\"1\">\n"
                                     "  <catalog path=\"@CATALOG@\"/>\n"
                                     "  <module id=\"a\" path=\"@A@\"/>\n"
                                     "  <layer id=\"ta\" module=\"a\" token=\"strata-test-a\"/>\n"
                                     "  <token label=\"Strata\">\n"
                                     "    <view id=\"work\" layers=\"ta\"/>\n"
                                     "  </token>\n"
                                     "</strata>\n";

static const char lazy_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"strata-{view}\" provision=\"lazy\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"alice\" layers=\"personal group\"/>\n"
    "  </token>\n"
    "</strata>\n";

static void backend_setup(void)
{
    const char *a = getenv("STRATA_TEST_BACKEND_A");
    char xml[2048], path[PATH_MAX + 16];
    const char *mark;

    cr_assert(a != NULL, "STRATA_TEST_BACKEND_A not set");
    world_setup(&w);
    snprintf(path, sizeof(path), "%s/a.conf", w.dir);
    write_file(path, "object = a-1 01\n");
    setenv("STRATA_TEST_BACKEND_A_CONF", path, 1);
    unsetenv("STRATA_TEST_BACKEND_A_FAIL");
    snprintf(control_path, sizeof(control_path), "%s/a.control", w.dir);
    control("");
    setenv("STRATA_TEST_BACKEND_A_CONTROL", control_path, 1);
    mark = strstr(backend_policy, "@A@");
    snprintf(xml, sizeof(xml), "%.*s%s%s", (int)(mark - backend_policy), backend_policy, a,
             mark + 3);
    cr_assert_eq(world_policy(&w, xml), 0);
}

static void lazy_setup(void)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "group", "12345678", "2222"), 0);
    cr_assert_eq(world_policy(&w, lazy_policy), 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s 2222 | '%s' enroll --token Strata --view alice "
                          "--pin-stdin >/dev/null",
                          ALICE_PIN, world_strata_cli()),
                 0);
}

static void wait_teardown(void)
{
    world_teardown(&w);
}

TestSuite(wait, .fini = wait_teardown, .timeout = 60);

/* One blocking C_WaitForSlotEvent on its own thread: its answer, the slot
 * it names, and the CPU time the thread used while it waited. */
typedef struct {
    CK_FUNCTION_LIST *p11;
    pthread_t thread;
    CK_RV rv;
    CK_SLOT_ID slot;
    double cpu; /* seconds, user + system, of the waiting thread */
    volatile int done;
} waiter;

static double thread_cpu(void)
{
    struct rusage ru;

    cr_assert_eq(getrusage(RUSAGE_THREAD, &ru), 0);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *wait_thread(void *arg)
{
    waiter *wt = arg;
    double before = thread_cpu();

    wt->rv = wt->p11->C_WaitForSlotEvent(0, &wt->slot, NULL);
    wt->cpu = thread_cpu() - before;
    __atomic_store_n(&wt->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void waiter_start(waiter *wt, CK_FUNCTION_LIST *p11)
{
    memset(wt, 0, sizeof(*wt));
    wt->p11 = p11;
    wt->slot = (CK_SLOT_ID)-1;
    cr_assert_eq(pthread_create(&wt->thread, NULL, wait_thread, wt), 0);
}

static bool waiter_done(waiter *wt)
{
    return __atomic_load_n(&wt->done, __ATOMIC_ACQUIRE) != 0;
}

/* Waits up to ms for the waiter to return; whether it did. */
static bool waiter_returns_within(waiter *wt, int ms)
{
    for (int i = 0; i < ms / 10 && !waiter_done(wt); i++) {
        usleep(10000);
    }
    return waiter_done(wt);
}

static CK_RV poll_event(CK_FUNCTION_LIST *p11, CK_SLOT_ID *slot)
{
    return p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, slot, NULL);
}

/* ---- the token leaves and comes back ------------------------------------ */

Test(wait, dont_block_answers_no_event, .init = backend_setup)
{
    CK_SLOT_ID slot, got;
    CK_FUNCTION_LIST *p11 = strata(&slot);

    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT);
    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT);
    cr_assert_eq(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, &got, &got), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_WaitForSlotEvent(0, &got, &got), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(poll_event(p11, &got), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Every layer of the public view gone: an event, reported once; back: an
 * event again, which a blocked waiter receives. */
Test(wait, token_leaves_and_comes_back, .init = backend_setup)
{
    CK_SLOT_ID slot, got = (CK_SLOT_ID)-1;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    waiter wt;

    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT, "the first look takes the baseline");
    control("present = no\n");
    cr_assert_eq(poll_event(p11, &got), CKR_OK, "the token left");
    cr_assert_eq(got, slot);
    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT, "reported once");
    waiter_start(&wt, p11);
    cr_assert_not(waiter_returns_within(&wt, 1500), "no event while nothing changes");
    control("present = yes\n");
    cr_assert(waiter_returns_within(&wt, 5000), "the waiter sees the token come back");
    pthread_join(wt.thread, NULL);
    cr_assert_eq(wt.rv, CKR_OK);
    cr_assert_eq(wt.slot, slot);
    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* C_Finalize releases a blocked waiter with CKR_CRYPTOKI_NOT_INITIALIZED
 * (v2.40, C_Finalize), and the waiter slept: over 3 s it used well under
 * a tenth of that in CPU time (a busy loop uses all of it). */
Test(wait, finalize_releases_a_sleeping_waiter, .init = backend_setup)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    waiter wt;

    waiter_start(&wt, p11);
    cr_assert_not(waiter_returns_within(&wt, 3000), "blocked until an event or C_Finalize");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert(waiter_returns_within(&wt, 2000), "C_Finalize released the waiter");
    pthread_join(wt.thread, NULL);
    cr_assert_eq(wt.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    cr_assert_lt(wt.cpu, 0.3, "the waiter used %.3f s of CPU in 3 s", wt.cpu);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK, "initialised again, waits work again");
    cr_assert_eq(poll_event(p11, &slot), CKR_NO_EVENT);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- a lazily provisioned token becomes ready ---------------------------- */

Test(wait, lazy_token_ready_is_an_event, .init = lazy_setup)
{
    CK_SLOT_ID slot, got = (CK_SLOT_ID)-1;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "the login provisions strata-alice");
    cr_assert_eq(poll_event(p11, &got), CKR_OK, "the new token is ready");
    cr_assert_eq(got, slot);
    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(poll_event(p11, &got), CKR_NO_EVENT, "a token made before is no event");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
