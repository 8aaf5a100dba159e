/*
 * stack_world.h - the stacked-token world shared by test_session.c,
 * test_login.c, test_objects.c, test_find.c, test_crypto.c and
 * test_handles.c (header-only; each test binary includes it once).
 *
 * Three SoftHSM2 tokens: "personal" (user PIN 1111), "group" (2222, a
 * read-only layer) and "other" (3333). The virtual token "Strata" has the
 * view work = personal over group (whiteouts allowed) and the view anon =
 * other. Keys (pkcs11-tool on SoftHSM2 directly):
 *   personal: p-ec  EC P-256 id 01;  shadow-p EC id 05
 *   group:    g-ec  EC P-256 id 02;  g-rsa RSA-2048 id 03;  shadow-g EC id 05
 *   other:    o-ec  EC P-256 id 09
 * The work PIN is WORK_PIN, the anon PIN ANON_PIN (enrolled with the CLI).
 * Loading the module, sessions and login are p11_client.h's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_STACK_WORLD_H
#define STRATA_TEST_STACK_WORLD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "p11_client.h"
#include "world.h"

#define WORK_PIN "work-pin-1"
#define ANON_PIN "anon-pin-1"
#define CANARY   ((CK_ULONG)0xC0FFEE)

static world w;

static const char stack_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
    "  <layer id=\"other\" module=\"soft\" token=\"other\"/>\n"
    "  <token label=\"Strata\" max-failed-logins=\"3\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal group\" whiteout=\"allow\"/>\n"
    "    <view id=\"anon\" layers=\"other\"/>\n"
    "  </token>\n"
    "</strata>\n";

static inline int enroll(const char *view, const char *pins)
{
    return world_sh("printf '%%s\\n' %s | '%s' enroll --token Strata --view %s --pin-stdin "
                    ">/dev/null",
                    pins, world_strata_cli(), view);
}

/* The world without keys (tokens, policy, enrolment). */
static inline void stack_setup_bare(void)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "personal", "12345678", "1111"), 0);
    cr_assert_eq(world_token(&w, "group", "12345678", "2222"), 0);
    cr_assert_eq(world_token(&w, "other", "12345678", "3333"), 0);
    cr_assert_eq(world_policy(&w, stack_policy), 0);
    cr_assert_eq(enroll("work", WORK_PIN " 1111 2222"), 0, "strata enroll work");
    cr_assert_eq(enroll("anon", ANON_PIN " 3333"), 0, "strata enroll anon");
}

static inline void stack_setup(void)
{
    stack_setup_bare();
    cr_assert_eq(world_keypair(&w, "personal", "1111", "EC:prime256v1", "p-ec", "01"), 0);
    cr_assert_eq(world_keypair(&w, "personal", "1111", "EC:prime256v1", "shadow-p", "05"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "EC:prime256v1", "g-ec", "02"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "RSA:2048", "g-rsa", "03"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "EC:prime256v1", "shadow-g", "05"), 0);
    cr_assert_eq(world_keypair(&w, "other", "3333", "EC:prime256v1", "o-ec", "09"), 0);
}

static inline void stack_teardown(void)
{
    world_teardown(&w);
}

/* All handles a search with templ finds (up to max). */
static inline CK_ULONG find_all(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_ATTRIBUTE *templ,
                                CK_ULONG count, CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_ULONG n = 0, got = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, templ, count), CKR_OK);
    do {
        cr_assert_eq(p11->C_FindObjects(s, out + n, max - n > 3 ? 3 : max - n, &got), CKR_OK);
        n += got;
    } while (got > 0 && n < max);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

/* The label of object into buf. */
static inline void label_of(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                            char *buf, size_t size)
{
    CK_ATTRIBUTE a = {CKA_LABEL, buf, size - 1};

    cr_assert_eq(p11->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
    buf[a.ulValueLen] = '\0';
}

/* The object of class with label, or CK_INVALID_HANDLE. */
static inline CK_OBJECT_HANDLE find_one(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s,
                                        CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n = find_all(p11, s, t, 2, found, 4);

    cr_assert_leq(n, 1, "%lu objects labelled %s", n, label);
    return n == 1 ? found[0] : CK_INVALID_HANDLE;
}

/* Strata logged in to the work view with a RW session. */
static inline CK_FUNCTION_LIST *work_session(CK_SLOT_ID *slot, CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST *p11 = strata(slot);

    *s = open_rw(p11, *slot);
    cr_assert_eq(login(p11, *s, WORK_PIN), CKR_OK);
    return p11;
}

#endif /* STRATA_TEST_STACK_WORLD_H */
