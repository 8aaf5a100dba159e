/*
 * test_backends.c - Strata over real backends other than SoftHSM2 (issue
 * 14): p11-kit's trust module (a token that requires no login), and the
 * sandboxes of backends_world.h. Each backend runs on private state made
 * by the test and is stopped by it; a backend that cannot run here skips
 * its tests with the reason printed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "backends_world.h"
#include "p11_client.h"

#define WORK_PIN "work-pin-1"

static world w;

static void teardown(void)
{
    world_teardown(&w);
}

/* Counts the certificates the session finds and checks that each label
 * it finds is in want (n_want of them, NULL-terminated list). */
static size_t find_certificates(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char **want)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, &t, 1), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, found, 64, &n), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        char label[128] = "";
        CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label) - 1};
        bool known = false;

        cr_assert_eq(p11->C_GetAttributeValue(s, found[i], &a, 1), CKR_OK);
        label[a.ulValueLen] = '\0';
        for (size_t k = 0; want[k] != NULL; k++) {
            known = known || strcmp(want[k], label) == 0;
        }
        cr_assert(known, "unexpected certificate \"%s\"", label);
    }
    return n;
}

/* The trust store under SoftHSM2, with a rule that renames its
 * certificates and one that hides the third. */
static const char trust_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <module id=\"trust\" path=\"@TRUST@\" init-reserved=\"paths=@STORE@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <layer id=\"ca\" module=\"trust\" token=\"ca-store\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal ca\" public=\"true\">\n"
    "      <rules>\n"
    "        hide where layer == \"ca\" and label == \"strata-test-ca-3\"\n"
    "        set label = \"ca/\" + label where layer == \"ca\"\n"
    "      </rules>\n"
    "    </view>\n"
    "  </token>\n"
    "</strata>\n";

static const char *trust_labels[] = {"ca/strata-test-ca-1", "ca/strata-test-ca-2", NULL};

/* SoftHSM2's "personal" (PIN 1111), a trust store of three certificates
 * and trust_policy with the module path given. */
static void trust_setup(const char *trust_path)
{
    char store[PATH_MAX + 64];

    world_setup(&w);
    cr_assert_eq(world_token(&w, "personal", "12345678", "1111"), 0);
    trust_store(&w, store, 3);
    cr_assert_eq(backends_policy(&w, trust_policy, trust_path, store), 0);
}

Test(trust, enrols_without_a_pin_and_shows_its_certificates_before_and_after_login,
     .fini = teardown)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char *out = NULL;

    trust_setup(trust_module());
    /* Only the view's PIN and the SoftHSM2 layer's: no line for "ca". */
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' %s 1111 | '%s' enroll --token Strata --view work "
                              "--pin-stdin",
                              WORK_PIN, world_strata_cli()),
                 0, "strata enroll asked for a PIN the trust store does not take");
    cr_assert(strstr(out, "none: the token requires no login") != NULL, "%s", out);
    free(out);

    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(find_certificates(p11, s, trust_labels), 2, "before login");
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(find_certificates(p11, s, trust_labels), 2, "after login");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(find_certificates(p11, s, trust_labels), 2, "after logout");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    /* strata ls and explain see them, with the rules applied. */
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' %s | '%s' ls --token Strata --view work "
                              "--pin-stdin",
                              WORK_PIN, world_strata_cli()),
                 0);
    cr_assert(strstr(out, "ca/strata-test-ca-1") != NULL, "%s", out);
    cr_assert(strstr(out, "strata-test-ca-3") == NULL, "%s", out);
    free(out);
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' %s | '%s' explain --token Strata --view work "
                              "--pin-stdin strata-test-ca-3",
                              WORK_PIN, world_strata_cli()),
                 0);
    cr_assert(strstr(out, "hid") != NULL, "%s", out);
    free(out);
}

Test(trust, a_credential_enrolled_for_it_is_never_presented, .fini = teardown)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;

    /* Enrolled with --no-verify while the module could not be loaded, so a
     * "PIN" was stored for the trust layer; then the module appears. */
    trust_setup("/nonexistent/p11-kit-trust.so");
    cr_assert_eq(world_sh("printf '%%s\\n' %s 1111 junk | '%s' enroll --token Strata --view work "
                          "--pin-stdin --no-verify >/dev/null",
                          WORK_PIN, world_strata_cli()),
                 0);
    cr_assert_eq(backends_policy(&w, trust_policy, trust_module(), trust_store_path(&w)), 0);

    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(find_certificates(p11, s, trust_labels), 2,
                 "the trust layer was logged in to and dropped out");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The trust store as one PEM bundle (what the system store is): p11-kit
 * makes such a token write-protected, so a read-write backend session on
 * it is refused; the layer is not declared read-only. */
static const char bundle_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <module id=\"trust\" path=\"@TRUST@\" init-reserved=\"paths=@STORE@/bundle.pem\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <layer id=\"ca\" module=\"trust\" token=\"bundle.pem\"/>\n"
    "  <token label=\"Strata\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal ca\" public=\"true\"/>\n"
    "  </token>\n"
    "</strata>\n";

Test(trust, a_write_protected_store_shows_through_read_write_sessions, .fini = teardown)
{
    static const char *labels[] = {"strata-test-ca-1", "strata-test-ca-2", NULL};
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char store[PATH_MAX + 64];

    world_setup(&w);
    cr_assert_eq(world_token(&w, "personal", "12345678", "1111"), 0);
    trust_store(&w, store, 2);
    cr_assert_eq(world_sh("cat '%s'/ca-*.pem > '%s/bundle.pem'", store, store), 0);
    cr_assert_eq(backends_policy(&w, bundle_policy, trust_module(), store), 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s 1111 | '%s' enroll --token Strata --view work "
                          "--pin-stdin >/dev/null",
                          WORK_PIN, world_strata_cli()),
                 0);

    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(find_certificates(p11, s, labels), 2, "before login");
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(find_certificates(p11, s, labels), 2, "after login");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
