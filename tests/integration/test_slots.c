/*
 * test_slots.c - virtual slots, token information and mechanisms of the
 * built module (dlopen'ed like a real client) over real SoftHSM2 layers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "p11_client.h"
#include "world.h"

#define CANARY ((CK_ULONG)0xC0FFEE)

static world w;

static void setup(void)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "layer-a", "12345678", "1234"), 0);
    cr_assert_eq(world_token(&w, "layer-b", "12345678", "1234"), 0);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(slots, .init = setup, .fini = teardown, .timeout = 120);

static CK_FUNCTION_LIST *init_strata(void)
{
    CK_FUNCTION_LIST *p11 = load_module(world_strata_module());

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    return p11;
}

/* The slot whose token has label (blank-padded compare), or fails. */
static CK_SLOT_ID slot_of(CK_FUNCTION_LIST *p11, const char *label)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO info;
    CK_UTF8CHAR padded[32];

    memset(padded, ' ', sizeof(padded));
    memcpy(padded, label, strlen(label));
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        cr_assert_eq(p11->C_GetTokenInfo(slots[i], &info), CKR_OK);
        if (memcmp(info.label, padded, 32) == 0) {
            return slots[i];
        }
    }
    cr_assert_fail("no token labelled %s", label);
    return 0;
}

/* The slot ID of label as a separate process sees it (fork before the
 * module is loaded here; the child loads it itself). */
static CK_SLOT_ID slot_in_child(const char *label)
{
    CK_SLOT_ID id = 0;
    int fds[2], status;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
        CK_SLOT_ID slots[16];
        CK_ULONG n = 16;
        CK_TOKEN_INFO info;

        close(fds[0]);
        if (p11->C_Initialize(NULL) != CKR_OK || p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
            _exit(2);
        }
        for (CK_ULONG i = 0; i < n; i++) {
            if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
                memcmp(info.label, label, strlen(label)) == 0 && info.label[strlen(label)] == ' ') {
                id = slots[i];
            }
        }
        p11->C_Finalize(NULL);
        _exit(write(fds[1], &id, sizeof(id)) == sizeof(id) ? 0 : 3);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &id, sizeof(id)), (ssize_t)sizeof(id));
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return id;
}

static const char two_token_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"a\" module=\"soft\" token=\"layer-a\"/>\n"
    "  <layer id=\"b\" module=\"soft\" token=\"layer-b\" access=\"read-only\"/>\n"
    "  <token label=\"Alpha\" min-pin-len=\"6\" max-pin-len=\"64\">\n"
    "    <view id=\"work\" layers=\"a b\"/>\n"
    "  </token>\n"
    "  <token label=\"Beta\" manufacturer=\"Example Corp\">\n"
    "    <view id=\"ro\" layers=\"b\"/>\n"
    "  </token>\n"
    "</strata>\n";

Test(slots, C_GetSlotList_query_and_fill)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slots[4] = {CANARY, CANARY, CANARY, CANARY};
    CK_ULONG count = 0;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    cr_assert_eq(p11->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetSlotList(CK_FALSE, NULL, &count), CKR_OK);
    cr_assert_eq(count, 2);
    count = 4;
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slots, &count), CKR_OK);
    cr_assert_eq(count, 2);
    cr_assert_lt(slots[0], slots[1], "not in slot ID order");
    cr_assert_eq(slots[2], CANARY);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(slots, C_GetSlotList_buffer_too_small)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slots[2] = {CANARY, CANARY};
    CK_ULONG count = 1;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    cr_assert_eq(p11->C_GetSlotList(CK_FALSE, slots, &count), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(count, 2);
    cr_assert_eq(slots[0], CANARY);
    cr_assert_eq(slots[1], CANARY);
    count = 0;
    cr_assert_eq(p11->C_GetSlotList(CK_FALSE, slots, &count), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(count, 2);
    cr_assert_eq(slots[0], CANARY);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Slot IDs come from the catalog, keyed by label: the same in another
 * process, and the same after the policy lists its tokens in another order
 * (a new token gets a new ID). */
Test(slots, slot_ids_stable)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID alpha, beta, gamma;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    alpha = slot_in_child("Alpha");
    beta = slot_in_child("Beta");
    cr_assert_neq(alpha, 0);
    cr_assert_neq(beta, 0);
    cr_assert_neq(alpha, beta);

    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n"
                                  "  <catalog path=\"@CATALOG@\"/>\n"
                                  "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                  "  <layer id=\"b\" module=\"soft\" token=\"layer-b\"/>\n"
                                  "  <token label=\"Gamma\"><view id=\"g\" layers=\"b\"/></token>\n"
                                  "  <token label=\"Beta\"><view id=\"b\" layers=\"b\"/></token>\n"
                                  "  <token label=\"Alpha\"><view id=\"a\" layers=\"b\"/></token>\n"
                                  "</strata>\n"),
                 0);
    p11 = init_strata();
    cr_assert_eq(slot_of(p11, "Alpha"), alpha);
    cr_assert_eq(slot_of(p11, "Beta"), beta);
    gamma = slot_of(p11, "Gamma");
    cr_assert_neq(gamma, alpha);
    cr_assert_neq(gamma, beta);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(slot_in_child("Gamma"), gamma);
}

Test(slots, C_GetSlotInfo_content)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_INFO info;
    CK_SLOT_ID slot;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    slot = slot_of(p11, "Alpha");
    cr_assert_eq(p11->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetSlotInfo(slot + 1000, &info), CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_GetSlotInfo(slot, &info), CKR_OK);
    cr_assert_eq(info.flags, CKF_TOKEN_PRESENT);
    cr_assert(memcmp(info.manufacturerID, "Strata ", 7) == 0);
    cr_assert(memchr(info.slotDescription, '\0', sizeof(info.slotDescription)) == NULL);
    cr_assert_eq(info.slotDescription[sizeof(info.slotDescription) - 1], ' ');
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(slots, C_GetTokenInfo_content)
{
    CK_FUNCTION_LIST *p11;
    CK_TOKEN_INFO info, again;
    CK_SLOT_ID alpha, beta;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    alpha = slot_of(p11, "Alpha");
    beta = slot_of(p11, "Beta");
    cr_assert_eq(p11->C_GetTokenInfo(alpha, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetTokenInfo(alpha + beta + 1000, &info), CKR_SLOT_ID_INVALID);

    cr_assert_eq(p11->C_GetTokenInfo(alpha, &info), CKR_OK);
    cr_assert(memcmp(info.label, "Alpha                           ", 32) == 0);
    cr_assert(memcmp(info.manufacturerID, "Strata                          ", 32) == 0);
    cr_assert(memcmp(info.model, "Strata virtual  ", 16) == 0);
    for (int i = 0; i < 16; i++) {
        cr_assert(info.serialNumber[i] != ' ' && info.serialNumber[i] >= 0x21 &&
                  info.serialNumber[i] < 0x7f);
    }
    cr_assert(info.flags & CKF_TOKEN_INITIALIZED);
    cr_assert(info.flags & CKF_RNG, "SoftHSM2 layers have an RNG");
    cr_assert_eq(info.flags & CKF_WRITE_PROTECTED, 0, "layer a is writable");
    cr_assert_eq(info.ulMaxSessionCount, CK_EFFECTIVELY_INFINITE);
    cr_assert_eq(info.ulMaxRwSessionCount, CK_EFFECTIVELY_INFINITE);
    cr_assert_eq(info.ulSessionCount, 0);
    cr_assert_eq(info.ulRwSessionCount, 0);
    cr_assert_eq(info.ulMinPinLen, 6);
    cr_assert_eq(info.ulMaxPinLen, 64);
    cr_assert_eq(info.ulTotalPublicMemory, CK_UNAVAILABLE_INFORMATION);
    cr_assert_eq(info.ulFreePrivateMemory, CK_UNAVAILABLE_INFORMATION);
    cr_assert(memcmp(info.utcTime, "                ", 16) == 0);

    cr_assert_eq(p11->C_GetTokenInfo(beta, &again), CKR_OK);
    cr_assert(memcmp(again.manufacturerID, "Example Corp ", 13) == 0);
    cr_assert(again.flags & CKF_WRITE_PROTECTED, "Beta has only a read-only layer");
    cr_assert(memcmp(info.serialNumber, again.serialNumber, 16) != 0, "serials must differ");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    /* The serial is stable across initialisations. */
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetTokenInfo(alpha, &again), CKR_OK);
    cr_assert(memcmp(info.serialNumber, again.serialNumber, 16) == 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static int compare_ulong(const void *a, const void *b)
{
    CK_ULONG x = *(const CK_ULONG *)a, y = *(const CK_ULONG *)b;

    return x < y ? -1 : x > y;
}

/* SoftHSM2's own, sorted mechanism list for the token labelled label. */
static CK_MECHANISM_TYPE *softhsm_mechanisms(const char *label, CK_ULONG *n)
{
    CK_FUNCTION_LIST *soft = load_module(world_softhsm_module());
    CK_SLOT_ID slots[16];
    CK_ULONG n_slots = 16;
    CK_TOKEN_INFO info;
    CK_MECHANISM_TYPE *list = NULL;

    cr_assert_eq(soft->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(soft->C_GetSlotList(CK_TRUE, slots, &n_slots), CKR_OK);
    for (CK_ULONG i = 0; i < n_slots && list == NULL; i++) {
        cr_assert_eq(soft->C_GetTokenInfo(slots[i], &info), CKR_OK);
        if (memcmp(info.label, label, strlen(label)) != 0) {
            continue;
        }
        cr_assert_eq(soft->C_GetMechanismList(slots[i], NULL, n), CKR_OK);
        list = calloc(*n, sizeof(*list));
        cr_assert(list != NULL);
        cr_assert_eq(soft->C_GetMechanismList(slots[i], list, n), CKR_OK);
    }
    cr_assert(list != NULL, "SoftHSM2 has no token %s", label);
    cr_assert_eq(soft->C_Finalize(NULL), CKR_OK);
    qsort(list, *n, sizeof(*list), compare_ulong);
    return list;
}

/* Two SoftHSM2 layers offer the same mechanisms: their union is SoftHSM2's
 * own list, each mechanism once. */
Test(slots, C_GetMechanismList_union)
{
    CK_MECHANISM_TYPE *expected, *got;
    CK_ULONG n_expected, n = 0, small;
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;

    expected = softhsm_mechanisms("layer-a", &n_expected);
    cr_assert_gt(n_expected, 10);
    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    slot = slot_of(p11, "Alpha");
    cr_assert_eq(p11->C_GetMechanismList(slot, NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetMechanismList(slot + 1000, NULL, &n), CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_GetMechanismList(slot, NULL, &n), CKR_OK);
    cr_assert_eq(n, n_expected);
    got = calloc(n + 1, sizeof(*got));
    cr_assert(got != NULL);
    for (CK_ULONG i = 0; i <= n; i++) {
        got[i] = CANARY;
    }
    small = n - 1;
    cr_assert_eq(p11->C_GetMechanismList(slot, got, &small), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(small, n);
    for (CK_ULONG i = 0; i <= n; i++) {
        cr_assert_eq(got[i], CANARY, "written at %lu", (unsigned long)i);
    }
    cr_assert_eq(p11->C_GetMechanismList(slot, got, &n), CKR_OK);
    cr_assert_eq(n, n_expected);
    cr_assert_eq(got[n], CANARY);
    qsort(got, n, sizeof(*got), compare_ulong);
    cr_assert(memcmp(got, expected, n * sizeof(*got)) == 0, "union differs from SoftHSM2's list");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    free(got);
    free(expected);
}

Test(slots, C_GetMechanismInfo_content)
{
    CK_FUNCTION_LIST *p11, *soft;
    CK_MECHANISM_INFO info, direct;
    CK_SLOT_ID slot, slots[16];
    CK_ULONG n = 16;

    /* SoftHSM2's own answer for CKM_SHA256 and CKM_RSA_PKCS_KEY_PAIR_GEN. */
    soft = load_module(world_softhsm_module());
    cr_assert_eq(soft->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(soft->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    cr_assert_gt(n, 0);
    cr_assert_eq(soft->C_GetMechanismInfo(slots[0], CKM_RSA_PKCS_KEY_PAIR_GEN, &direct), CKR_OK);
    cr_assert_eq(soft->C_Finalize(NULL), CKR_OK);

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    slot = slot_of(p11, "Alpha");
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetMechanismInfo(slot + 1000, CKM_SHA256, &info), CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_VENDOR_DEFINED + 0x5717a, &info),
                 CKR_MECHANISM_INVALID);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_SHA256, &info), CKR_OK);
    cr_assert(info.flags & CKF_DIGEST);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_RSA_PKCS_KEY_PAIR_GEN, &info), CKR_OK);
    cr_assert_eq(info.flags, direct.flags);
    cr_assert_eq(info.ulMinKeySize, direct.ulMinKeySize);
    cr_assert_eq(info.ulMaxKeySize, direct.ulMaxKeySize);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(slots, C_WaitForSlotEvent_cases)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot = CANARY;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    cr_assert_eq(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT);
    cr_assert_eq(slot, CANARY);
    cr_assert_eq(p11->C_WaitForSlotEvent(0, &slot, &slot),
                 CKR_ARGUMENTS_BAD); /* blocking: test_wait.c */
    cr_assert_eq(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, &slot), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(slots, C_InitToken_virtual)
{
    CK_FUNCTION_LIST *p11;
    CK_UTF8CHAR label[32];
    CK_SLOT_ID slot;

    memset(label, ' ', sizeof(label));
    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    p11 = init_strata();
    slot = slot_of(p11, "Alpha");
    cr_assert_eq(p11->C_InitToken(slot + 1000, (CK_UTF8CHAR_PTR) "12345678", 8, label),
                 CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR) "12345678", 8, label),
                 CKR_FUNCTION_NOT_SUPPORTED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Environment prefix for a client run from a test: an ASan-built module
 * needs the ASan runtime loaded first into an uninstrumented client. */
static const char *client_env(void)
{
    static char env[PATH_MAX + 64];
#ifdef __SANITIZE_ADDRESS__
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "__asan_init");

    if (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL) {
        snprintf(env, sizeof(env), "LD_PRELOAD='%s' ASAN_OPTIONS=detect_leaks=0", info.dli_fname);
    }
#endif
    return env;
}

/* pkcs11-tool, a real client, lists the virtual tokens of the policy. */
Test(slots, pkcs11_tool_lists_tokens)
{
    char *out = NULL;

    cr_assert_eq(world_policy(&w, two_token_policy), 0);
    cr_assert_eq(
        world_sh_out(&out, "%s pkcs11-tool --module '%s' -L", client_env(), world_strata_module()),
        0);
    cr_assert(strstr(out, "Alpha") != NULL, "%s", out);
    cr_assert(strstr(out, "Beta") != NULL, "%s", out);
    cr_assert(strstr(out, "Strata virtual") != NULL, "%s", out);
    free(out);
}
