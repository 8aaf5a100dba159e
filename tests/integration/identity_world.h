/*
 * identity_world.h - the world of the identity-lifecycle tests
 * (test_provision.c, test_pin.c, test_isolation.c, test_reconnect.c;
 * header-only, each binary includes it once).
 *
 * One SoftHSM2 token "group" (user PIN 2222, read-only layer) and a lazy
 * layer "personal" whose token "strata-{view}" Strata provisions. The
 * virtual token "Strata" (max-failed-logins 3, PINs 6..32 bytes) has the
 * views alice = personal over group, bob = personal, and carol = group.
 * Loading the module, sessions and login are p11_client.h's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_IDENTITY_WORLD_H
#define STRATA_TEST_IDENTITY_WORLD_H

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "p11_client.h"
#include "world.h"

#define ALICE_PIN "alice-pin-1"
#define BOB_PIN   "bob-pin-22"
#define CAROL_PIN "carol-pin-3"
#define SO_PIN    "so-pin-777"

static world w;

static const char identity_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"strata-{view}\" provision=\"lazy\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\" max-failed-logins=\"3\" min-pin-len=\"6\" max-pin-len=\"32\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"alice\" layers=\"personal group\"/>\n"
    "    <view id=\"bob\" layers=\"personal\"/>\n"
    "    <view id=\"carol\" layers=\"group\"/>\n"
    "  </token>\n"
    "</strata>\n";

/* Runs the strata command with args, feeding it input (printf '%s\n'
 * words) on stdin. Returns its exit status. */
#define strata_cli(input, args)                                                                    \
    world_sh("printf '%%s\\n' %s | '%s' %s >/dev/null 2>&1", input, world_strata_cli(), args)

static inline void identity_setup_policy(const char *policy)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "group", "12345678", "2222"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "EC:prime256v1", "g-ec", "02"), 0);
    cr_assert_eq(world_policy(&w, policy), 0);
    cr_assert_eq(strata_cli(ALICE_PIN " 2222", "enroll --token Strata --view alice --pin-stdin"),
                 0);
    cr_assert_eq(strata_cli(BOB_PIN, "enroll --token Strata --view bob --pin-stdin"), 0);
    cr_assert_eq(strata_cli(CAROL_PIN " 2222", "enroll --token Strata --view carol --pin-stdin"),
                 0);
}

static inline void identity_setup(void)
{
    identity_setup_policy(identity_policy);
}

static inline void identity_teardown(void)
{
    world_teardown(&w);
}

/* Creates a public token data object labelled label (routed to the view's
 * top writable layer). Returns the code. */
static inline CK_RV create_data(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                                CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, "v", 1},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_CreateObject(s, t, 5, &h);

    if (out != NULL) {
        *out = h;
    }
    return rv;
}

/* All handles a search with templ finds (up to max). */
static inline CK_ULONG find_all(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_ATTRIBUTE *templ,
                                CK_ULONG count, CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_ULONG n = 0, got = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, templ, count), CKR_OK);
    do {
        cr_assert_eq(p11->C_FindObjects(s, out + n, max - n, &got), CKR_OK);
        n += got;
    } while (got > 0 && n < max);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

/* Whether the backend label v (up to a blank or the end of the line) is
 * label, or label with a catalog's mark ('#' and 8 hex digits: Strata
 * marks the tokens it provisions, storage/identity.c); its length in *n. */
static inline bool label_is(const char *v, const char *label, size_t *n)
{
    size_t len = strlen(label), i;

    if (strncmp(v, label, len) != 0) {
        return false;
    }
    *n = len;
    if (v[len] == '#') {
        for (i = 1; i <= 8 && isxdigit((unsigned char)v[len + i]); i++) {
        }
        if (i != 9) {
            return false;
        }
        *n = len + 9;
    }
    return v[*n] == ' ' || v[*n] == '\n';
}

enum { LABEL_ANY, LABEL_MARKED, LABEL_UNMARKED };

/* How many SoftHSM2 tokens labelled label the token directory holds now
 * (softhsm2-util --show-slots in a fresh process), with a catalog's mark
 * or without it (which: LABEL_*); the last one's full label into full
 * (33 bytes) when not NULL. */
static inline int tokens_labelled_as(const char *label, int which, char *full)
{
    char *out = NULL;
    size_t len;
    int n = 0;

    cr_assert_eq(world_sh_out(&out, "softhsm2-util --show-slots"), 0);
    for (const char *p = out; (p = strstr(p, "Label:")) != NULL; p++) {
        const char *v = p + 6;
        while (*v == ' ') {
            v++;
        }
        if (label_is(v, label, &len) &&
            (which == LABEL_ANY || (which == LABEL_MARKED) == (len > strlen(label)))) {
            n++;
            if (full != NULL) {
                snprintf(full, 33, "%.*s", (int)len, v);
            }
        }
    }
    free(out);
    return n;
}

/* Tokens labelled label, with a catalog's mark or without. */
static inline int tokens_labelled(const char *label)
{
    return tokens_labelled_as(label, LABEL_ANY, NULL);
}

/* Tokens labelled label with a catalog's mark (Strata made them). */
static inline int tokens_marked(const char *label)
{
    return tokens_labelled_as(label, LABEL_MARKED, NULL);
}

/* Public data objects of the SoftHSM2 token labelled token (marked or
 * not) whose label is label: 1 when found, 0 when not. */
static inline int backend_has_data(const char *token, const char *label)
{
    char *out = NULL, full[33] = "";
    int found;

    if (tokens_labelled_as(token, LABEL_MARKED, full) == 0) { /* Strata's own first */
        cr_assert_geq(tokens_labelled_as(token, LABEL_ANY, full), 1, "no token labelled %s", token);
    }
    cr_assert_eq(world_sh_out(&out,
                              "pkcs11-tool --module '%s' --token-label '%s' --list-objects "
                              "--type data 2>/dev/null",
                              world_softhsm_module(), full),
                 0);
    found = strstr(out, label) != NULL;
    free(out);
    return found;
}

/* 1 when the SoftHSM2 token with serial holds a public data object
 * labelled label, seen by pkcs11-tool in a fresh process (by slot: two
 * tokens may share a label, and pkcs11-tool's --token-label matches a
 * prefix). */
static inline int serial_has_data(const char *serial, const char *label)
{
    return world_sh("slot=$(softhsm2-util --show-slots | awk '/^Slot /{s=$2} "
                    "/Serial number:/{if ($3 == \"%s\") print s}') && [ -n \"$slot\" ] && "
                    "pkcs11-tool --module '%s' --slot \"$slot\" --list-objects --type data "
                    "2>/dev/null | grep -qF '%s'",
                    serial, world_softhsm_module(), label) == 0;
}

#endif /* STRATA_TEST_IDENTITY_WORLD_H */
