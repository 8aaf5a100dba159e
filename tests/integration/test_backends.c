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
#include <fcntl.h>
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

    /* A real client listing the mechanisms: the trust module (which has
     * none) is not asked about any, so p11-kit prints nothing. */
    cr_assert_eq(world_sh_out(&out,
                              "pkcs11-tool --module '%s' -M 2>&1 >/dev/null | "
                              "grep -v '^Using slot' || true",
                              world_strata_module()),
                 0);
    cr_assert_str_empty(out, "pkcs11-tool -M printed:\n%s", out);
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

/* ---------------------------------------------------------------------
 * Mechanisms across different backends: the test backend (which makes
 * no keys and lists only the mechanisms its configuration gives) as the
 * top writable layer over SoftHSM2.
 * ------------------------------------------------------------------ */

static const char mech_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <module id=\"tb\" path=\"@TRUST@\"/>\n"
    "  <layer id=\"top\" module=\"tb\" token=\"strata-test-test\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <token label=\"Strata\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"top personal\"><rules>@STORE@</rules></view>\n"
    "  </token>\n"
    "</strata>\n";

static char mech_log[PATH_MAX + 64];

/* The test backend listing only CKM_RSA_PKCS (sign), logging any question
 * about another mechanism, over SoftHSM2's "personal"; route is the
 * view's rules. Logs in and returns Strata with a R/W session in *s. */
static CK_FUNCTION_LIST *mech_setup(const char *route, CK_SESSION_HANDLE *s)
{
    const char *tb = getenv("STRATA_TEST_BACKEND");
    char conf[PATH_MAX + 64], log[PATH_MAX + 64];
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    FILE *f;

    cr_assert(tb != NULL, "STRATA_TEST_BACKEND unset (run through meson test)");
    world_setup(&w);
    snprintf(conf, sizeof(conf), "%s/tb.conf", w.dir);
    snprintf(mech_log, sizeof(mech_log), "%s/mechanisms.log", w.dir);
    snprintf(log, sizeof(log), "%s/strata.log", w.dir);
    f = fopen(conf, "w");
    cr_assert(f != NULL);
    fprintf(f, "mechanism = 0x%lx 0x%lx\nmechanism-log = %s\n", (unsigned long)CKM_RSA_PKCS,
            (unsigned long)CKF_SIGN, mech_log);
    cr_assert_eq(fclose(f), 0);
    setenv("STRATA_TEST_BACKEND_CONF", conf, 1);
    setenv("STRATA_LOG", "warning", 1);
    setenv("STRATA_LOG_FILE", log, 1);
    cr_assert_eq(world_token(&w, "personal", "12345678", "1111"), 0);
    cr_assert_eq(backends_policy(&w, mech_policy, tb, route), 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s 1234 1111 | '%s' enroll --token Strata --view work "
                          "--pin-stdin >/dev/null",
                          WORK_PIN, world_strata_cli()),
                 0);
    p11 = strata(&slot);
    *s = open_rw(p11, slot);
    cr_assert_eq(login(p11, *s, WORK_PIN), CKR_OK);
    return p11;
}

/* C_GenerateKeyPair of an EC P-256 token key pair labelled label. */
static CK_RV generate_ec(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label)
{
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_EC_PARAMS, p256, sizeof(p256)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE hpub, hpriv;

    return p11->C_GenerateKeyPair(s, &mech, pub, 3, priv, 3, &hpub, &hpriv);
}

Test(mechanisms, info_is_asked_only_of_layers_that_list_the_mechanism, .fini = teardown)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = mech_setup("", &s);
    CK_MECHANISM_INFO info;
    char *out = NULL;

    cr_assert_eq(p11->C_GetMechanismInfo(0, CKM_ECDSA, &info), CKR_SLOT_ID_INVALID);
    {
        CK_SLOT_ID slot;
        CK_ULONG n = 1;
        cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
        cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_ECDSA, &info), CKR_OK);
        cr_assert(info.flags & CKF_SIGN);
        cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info), CKR_OK);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    world_sh_out(&out, "cat '%s' 2>/dev/null", mech_log);
    cr_assert_str_empty(out, "a layer was asked about a mechanism it does not list:\n%s", out);
    free(out);
}

Test(mechanisms, key_generation_goes_to_the_top_layer_that_offers_it, .fini = teardown)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = mech_setup("", &s);

    cr_assert_eq(generate_ec(p11, s, "gen-ec"), CKR_OK,
                 "EC key generation was sent to the top layer, which cannot do it");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label personal --login --pin 1111 -O "
                          "2>/dev/null | grep -q gen-ec",
                          world_softhsm_module()),
                 0, "the new key is not in the SoftHSM2 layer");
}

Test(mechanisms, a_route_to_a_layer_without_the_mechanism_is_mechanism_invalid, .fini = teardown)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = mech_setup("route create to \"top\"", &s);
    char *out = NULL;

    cr_assert_eq(generate_ec(p11, s, "gen-ec"), CKR_MECHANISM_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    world_sh_out(&out, "cat '%s/strata.log'", w.dir);
    cr_assert(strstr(out, "layer \"top\"") != NULL && strstr(out, "CKM_EC_KEY_PAIR_GEN") != NULL,
              "the log does not name the layer:\n%s", out);
    free(out);
}

/* ---------------------------------------------------------------------
 * One view over four backends: SoftHSM2 over a TPM (tpm2-pkcs11 over
 * swtpm) over openCryptoki's software token over p11-kit's trust store;
 * and a view with openCryptoki (no EC key generation) on top.
 * ------------------------------------------------------------------ */

#define LEGACY_PIN "legacy-pin-1"
#define SOFT_PIN   "1111"
#define TPM_PIN    "6666"
#define OCK_PIN    "5555"

static const char stack_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <module id=\"tpm\" path=\"" TPM_MODULE "\"/>\n"
    "  <module id=\"ock\" path=\"" OCK_LIB_DIR "/libopencryptoki.so.0\"/>\n"
    "  <module id=\"trust\" path=\"@TRUST@\" init-reserved=\"paths=@STORE@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <layer id=\"tpm\" module=\"tpm\" token=\"tpm-keys\"/>\n"
    "  <layer id=\"ock\" module=\"ock\" token=\"ock-keys\"/>\n"
    "  <layer id=\"ca\" module=\"trust\" token=\"ca-store\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal tpm ock ca\" public=\"true\"/>\n"
    "    <view id=\"legacy\" layers=\"ock tpm ca\"/>\n"
    "  </token>\n"
    "</strata>\n";

static ock_sandbox ock;
static tpm_sandbox tpm;

static void stack_teardown(void)
{
    ock_stop(&ock);
    tpm_stop(&tpm);
    world_teardown(&w);
}

/* The four backends, a 2048-bit RSA key pair on each of the three that
 * make keys (labels p-rsa, t-rsa, o-rsa), two certificates in the trust
 * store, and both views enrolled. */
static void stack_setup(void)
{
    char store[PATH_MAX + 64];

    world_setup(&w);
    ock_start(&w, &ock);
    tpm_start(&w, &tpm);
    cr_assert_eq(world_token(&w, "personal", "12345678", SOFT_PIN), 0);
    tpm_token(&tpm, "tpm-keys", TPM_PIN);
    ock_token(&ock, "ock-keys", OCK_PIN);
    backends_keypair(world_softhsm_module(), "personal", SOFT_PIN, "RSA:2048", "p-rsa", "01");
    backends_keypair(tpm.module, "tpm-keys", TPM_PIN, "RSA:2048", "t-rsa", "02");
    backends_keypair(ock.module, "ock-keys", OCK_PIN, "RSA:2048", "o-rsa", "03");
    trust_store(&w, store, 2);
    cr_assert_eq(backends_policy(&w, stack_policy, trust_module(), store), 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s %s %s %s | '%s' enroll --token Strata --view work "
                          "--pin-stdin >/dev/null",
                          WORK_PIN, SOFT_PIN, TPM_PIN, OCK_PIN, world_strata_cli()),
                 0, "strata enroll work");
    cr_assert_eq(world_sh("printf '%%s\\n' %s %s %s | '%s' enroll --token Strata --view legacy "
                          "--pin-stdin >/dev/null",
                          LEGACY_PIN, OCK_PIN, TPM_PIN, world_strata_cli()),
                 0, "strata enroll legacy");
}

/* The handle of the one object with class and label the session finds. */
static CK_OBJECT_HANDLE find_one(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const char *label)
{
    return find_labelled(p11, s, cls, label);
}

static const char sign_data[] = "strata over four backends";

/* The signature of sign_data by key label (CKM_RSA_PKCS, deterministic),
 * made directly on its backend with pkcs11-tool, in hex (malloc'd). Run
 * before Strata loads: swtpm serves one connection at a time, and a
 * process that has tpm2-pkcs11 initialised holds it. */
static char *direct_signature(const char *module, const char *token, const char *pin,
                              const char *label)
{
    char in[PATH_MAX + 64], *hex = NULL;

    snprintf(in, sizeof(in), "%s/to-sign", w.dir);
    cr_assert_eq(world_sh("printf '%%s' '%s' > '%s'", sign_data, in), 0);
    cr_assert_eq(world_sh_out(&hex,
                              "pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
                              "--sign --mechanism RSA-PKCS --label '%s' -i '%s' 2>/dev/null | "
                              "od -An -v -tx1 | tr -d ' \\n'",
                              module, token, pin, label, in),
                 0);
    cr_assert_eq(strlen(hex), 512, "%s: no signature from the backend directly", label);
    return hex;
}

/* Signs sign_data with key label through Strata and compares the bytes
 * with direct (direct_signature's); frees direct. */
static void sign_like_backend(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                              char *direct)
{
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    CK_BYTE sig[512];
    CK_ULONG len = sizeof(sig);
    CK_OBJECT_HANDLE key = find_one(p11, s, CKO_PRIVATE_KEY, label);
    char hex[1025];

    cr_assert_eq(p11->C_SignInit(s, &mech, key), CKR_OK, "%s", label);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)sign_data, sizeof(sign_data) - 1, sig, &len), CKR_OK,
                 "%s", label);
    cr_assert_eq(len, 256);
    for (CK_ULONG i = 0; i < len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", sig[i]);
    }
    cr_assert_str_eq(hex, direct, "%s: Strata's signature differs from the backend's", label);
    free(direct);
}

/* The view's mechanism list holds what some layer offers (EC key
 * generation from SoftHSM2 and the TPM, not openCryptoki), each listed
 * mechanism has its C_GetMechanismInfo, and no backend complains on
 * stderr about a question it should not get. */
static void mechanisms_all_answer(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot)
{
    CK_MECHANISM_TYPE list[512];
    CK_ULONG n = 512;
    CK_MECHANISM_INFO info;
    char err[PATH_MAX + 64], *out = NULL;
    bool ec = false, rsa = false;
    int saved, fd;

    snprintf(err, sizeof(err), "%s/mechanisms.stderr", w.dir);
    cr_assert_eq(p11->C_GetMechanismList(slot, list, &n), CKR_OK);
    fflush(stderr);
    saved = dup(2);
    fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    for (CK_ULONG i = 0; i < n; i++) {
        ec = ec || list[i] == CKM_EC_KEY_PAIR_GEN;
        rsa = rsa || list[i] == CKM_RSA_PKCS;
        cr_assert_eq(p11->C_GetMechanismInfo(slot, list[i], &info), CKR_OK, "0x%lx",
                     (unsigned long)list[i]);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    cr_assert(ec && rsa, "the union lacks EC key generation or RSA PKCS#1");
    cr_assert_eq(world_sh_out(&out, "cat '%s'", err), 0);
    cr_assert_str_empty(out, "the backends complained on stderr:\n%s", out);
    free(out);
}

Test(stack, four_backends_list_sign_and_route_like_each_backend, .fini = stack_teardown,
     .timeout = 120)
{
    static const char *ca[] = {"strata-test-ca-1", "strata-test-ca-2", NULL};
    char *p_sig, *t_sig, *o_sig;
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;

    stack_setup();
    p_sig = direct_signature(world_softhsm_module(), "personal", SOFT_PIN, "p-rsa");
    t_sig = direct_signature(tpm.module, "tpm-keys", TPM_PIN, "t-rsa");
    o_sig = direct_signature(ock.module, "ock-keys", OCK_PIN, "o-rsa");
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(find_certificates(p11, s, ca), 2, "the trust store before login");
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(find_certificates(p11, s, ca), 2, "the trust store after login");
    sign_like_backend(p11, s, "p-rsa", p_sig);
    sign_like_backend(p11, s, "t-rsa", t_sig);
    sign_like_backend(p11, s, "o-rsa", o_sig);
    mechanisms_all_answer(p11, slot);

    /* A new RSA key goes to the top layer, SoftHSM2. */
    {
        CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
        CK_ULONG bits = 2048;
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                              {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                              {CKA_LABEL, "new-rsa", 7}};
        CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof(yes)}, {CKA_LABEL, "new-rsa", 7}};
        CK_OBJECT_HANDLE hpub, hpriv;

        cr_assert_eq(p11->C_GenerateKeyPair(s, &mech, pub, 3, priv, 2, &hpub, &hpriv), CKR_OK);
    }
    cr_assert_eq(p11->C_Logout(s), CKR_OK);

    /* With openCryptoki on top, an EC key goes to the TPM below it. */
    cr_assert_eq(login(p11, s, LEGACY_PIN), CKR_OK);
    cr_assert_eq(generate_ec(p11, s, "legacy-ec"), CKR_OK,
                 "EC key generation was not routed past openCryptoki");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label personal --login --pin %s -O "
                          "2>/dev/null | grep -q new-rsa",
                          world_softhsm_module(), SOFT_PIN),
                 0, "the new RSA key is not in SoftHSM2");
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label tpm-keys --login --pin %s -O "
                          "2>/dev/null | grep -q legacy-ec",
                          tpm.module, TPM_PIN),
                 0, "the new EC key is not in the TPM");
}

/* A layer PIN changed directly on openCryptoki (PINs of 4-8 bytes, three
 * wrong tries lock it): three logins through Strata present the old PIN
 * at most once (the catalog marks the credential stale), the other layers
 * keep working, the token is not locked and strata ls names the layer. */
Test(stack, a_pin_changed_on_one_backend_is_tried_once, .fini = stack_teardown, .timeout = 120)
{
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char *out = NULL;

    stack_setup();
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label ock-keys --login --pin %s "
                          "--change-pin --new-pin 5556 >/dev/null 2>&1",
                          ock.module, OCK_PIN),
                 0);
    p11 = load_module(world_strata_module());
    for (int i = 0; i < 3; i++) {
        CK_ULONG n = 1;

        cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
        cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
        s = open_rw(p11, slot);
        cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK, "login %d", i + 1);
        find_one(p11, s, CKO_PRIVATE_KEY, "p-rsa");
        find_one(p11, s, CKO_PRIVATE_KEY, "t-rsa");
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    }
    cr_assert_eq(world_sh_out(&out, "pkcs11-tool --module '%s' -L 2>/dev/null", ock.module), 0);
    cr_assert(strstr(out, "locked") == NULL && strstr(out, "final") == NULL,
              "the old PIN was presented more than once:\n%s", out);
    free(out);
    cr_assert_neq(world_sh_out(&out,
                               "printf '%%s\\n' %s | '%s' ls --token Strata --view work "
                               "--pin-stdin 2>&1",
                               WORK_PIN, world_strata_cli()),
                  0);
    cr_assert(strstr(out, "ock") != NULL, "%s", out);
    free(out);
}
