/*
 * test_wrap.c - layers/wrap.c: which mechanisms carry a key between two
 * tokens, chosen over the mechanism lists measured on Debian 12's
 * backends, and the fallbacks run on real tokens: a carry a backend
 * rejects (SoftHSM2 with RSA-OAEP refused by a filter over its function
 * table), and AES-CBC-PAD on openCryptoki's software token (root only:
 * its sandbox, tests/integration/backends_world.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../../integration/backends_world.h"
#include "layers.h"
#include "world.h"

/* ---- the lists, as pkcs11-tool -M and a C_WrapKey/C_UnwrapKey probe
 * measured them (only what a transfer looks at) -------------------- */

#define W  CKF_WRAP
#define U  CKF_UNWRAP
#define WU (CKF_WRAP | CKF_UNWRAP)

/* SoftHSM2 2.6.1: AES-CBC-PAD encrypts and decrypts only. */
static layers_mech softhsm[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR},
    {CKM_RSA_PKCS, WU | CKF_SIGN},
    {CKM_RSA_PKCS_OAEP, WU | CKF_ENCRYPT},
    {CKM_AES_KEY_GEN, CKF_GENERATE},
    {CKM_AES_CBC, W | CKF_ENCRYPT},
    {CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT},
    {CKM_AES_KEY_WRAP, WU},
    {CKM_AES_KEY_WRAP_PAD, WU},
};
/* openCryptoki 3.8.1's software token: no AES key wrap. */
static layers_mech ock[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR},
    {CKM_RSA_PKCS, WU},
    {CKM_RSA_X_509, WU},
    {CKM_RSA_PKCS_OAEP, WU},
    {CKM_AES_KEY_GEN, CKF_GENERATE},
    {CKM_AES_ECB, WU},
    {CKM_AES_CBC, WU},
    {CKM_AES_CBC_PAD, WU},
    {CKM_DES3_CBC_PAD, WU},
};
/* tpm2-pkcs11 1.9: nothing wraps or unwraps. */
static layers_mech tpm[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR}, {CKM_RSA_PKCS, CKF_ENCRYPT | CKF_DECRYPT},
    {CKM_RSA_PKCS_OAEP, CKF_ENCRYPT | CKF_DECRYPT},     {CKM_AES_KEY_GEN, CKF_GENERATE},
    {CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT},
};
/* A token that makes no RSA key pair and wraps with RSA-PKCS only. */
static layers_mech pkcs_only[] = {
    {CKM_RSA_PKCS, WU},
    {CKM_AES_KEY_GEN, CKF_GENERATE},
    {CKM_AES_KEY_WRAP_PAD, WU},
};

#define LIST(a) ((layers_mechs){a, sizeof(a) / sizeof(a[0])})

static bool choose(layers_mechs from, layers_mechs to, CK_OBJECT_CLASS cls, layers_wrap_plan *plan,
                   const char **why)
{
    return layers_wrap_choose(&from, &to, cls, plan, why);
}

Test(layers_wrap, layers_wrap_choose_softhsm_to_softhsm_is_kwp_under_oaep)
{
    layers_wrap_plan plan;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;
    const char *why = "x";

    cr_assert(choose(LIST(softhsm), LIST(softhsm), CKO_PRIVATE_KEY, &plan, &why));
    cr_expect_null(why);
    cr_expect_eq(plan.wrap, CKM_AES_KEY_WRAP_PAD);
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_PRIVATE_KEY), "AES-KEY-WRAP-PAD");
    layers_wrap_carry(&plan, &mech, &oaep);
    cr_expect_eq(mech.mechanism, CKM_RSA_PKCS_OAEP);
    cr_expect_eq(oaep.hashAlg, CKM_SHA_1);
    cr_expect_eq(oaep.mgf, CKG_MGF1_SHA1);
    /* Then OAEP with SHA-256, then RSA-PKCS, then nothing. */
    cr_assert(layers_wrap_next_carry(&plan));
    layers_wrap_carry(&plan, &mech, &oaep);
    cr_expect_eq(mech.mechanism, CKM_RSA_PKCS_OAEP);
    cr_expect_eq(oaep.hashAlg, CKM_SHA256);
    cr_expect_eq(oaep.mgf, CKG_MGF1_SHA256);
    cr_assert(layers_wrap_next_carry(&plan));
    layers_wrap_carry(&plan, &mech, &oaep);
    cr_expect_eq(mech.mechanism, CKM_RSA_PKCS);
    cr_expect_null(mech.pParameter);
    cr_expect_not(layers_wrap_next_carry(&plan));
}

Test(layers_wrap, layers_wrap_choose_opencryptoki_to_opencryptoki_falls_back_to_cbc_pad)
{
    layers_wrap_plan plan;
    const char *why;

    cr_assert(choose(LIST(ock), LIST(ock), CKO_PRIVATE_KEY, &plan, &why));
    cr_expect_eq(plan.wrap, CKM_AES_CBC_PAD);
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_SECRET_KEY), "AES-CBC-PAD");
}

Test(layers_wrap, layers_wrap_choose_no_common_wrap_moves_secret_keys_under_the_carry)
{
    layers_wrap_plan plan;
    const char *why;

    /* openCryptoki wraps with no AES key wrap, SoftHSM2 unwraps no
     * AES-CBC-PAD: private keys cannot move, either way round. */
    cr_expect_not(choose(LIST(ock), LIST(softhsm), CKO_PRIVATE_KEY, &plan, &why));
    cr_expect_str_eq(why, "no common wrapping mechanism: the source wraps with neither "
                          "CKM_AES_KEY_WRAP_PAD nor CKM_AES_CBC_PAD what the target unwraps");
    cr_expect_not(choose(LIST(softhsm), LIST(ock), CKO_PRIVATE_KEY, &plan, &why));
    /* A secret key is short enough for the RSA carry itself. */
    cr_assert(choose(LIST(ock), LIST(softhsm), CKO_SECRET_KEY, &plan, &why));
    cr_expect_eq(plan.wrap, 0);
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_SECRET_KEY), "RSA-OAEP");
    cr_assert(choose(LIST(softhsm), LIST(ock), CKO_SECRET_KEY, &plan, &why));
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_SECRET_KEY), "RSA-OAEP");
}

Test(layers_wrap, layers_wrap_choose_tpm_wraps_nothing)
{
    layers_wrap_plan plan;
    const char *why;

    for (CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY; cls <= CKO_SECRET_KEY; cls++) {
        cr_expect_not(choose(LIST(softhsm), LIST(tpm), cls, &plan, &why));
        cr_expect_str_eq(why, "no common wrapping mechanism: the source wraps with neither "
                              "RSA-OAEP nor RSA-PKCS what the target unwraps under an RSA key "
                              "pair it makes");
        cr_expect_not(choose(LIST(tpm), LIST(softhsm), cls, &plan, &why));
        cr_expect_not(choose(LIST(tpm), LIST(tpm), cls, &plan, &why));
    }
}

Test(layers_wrap, layers_wrap_choose_needs_a_key_pair_on_the_target)
{
    layers_wrap_plan plan;
    const char *why;

    cr_expect_not(choose(LIST(softhsm), LIST(pkcs_only), CKO_SECRET_KEY, &plan, &why));
    cr_assert(choose(LIST(pkcs_only), LIST(softhsm), CKO_PRIVATE_KEY, &plan, &why));
    /* The source lists no RSA-OAEP: the carry is RSA-PKCS, and no other. */
    cr_expect_eq(plan.wrap, CKM_AES_KEY_WRAP_PAD);
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_SECRET_KEY), "AES-KEY-WRAP-PAD");
    plan.wrap = 0;
    cr_expect_str_eq(layers_wrap_name(&plan, CKO_SECRET_KEY), "RSA-PKCS");
    cr_expect_not(layers_wrap_next_carry(&plan));
}

Test(layers_wrap, layers_wrap_choose_empty_lists)
{
    layers_mechs none = {NULL, 0};
    layers_wrap_plan plan;
    const char *why;

    cr_expect_not(layers_wrap_choose(&none, &none, CKO_SECRET_KEY, &plan, &why));
    cr_expect_not_null(why);
}

/* ---- on real tokens ------------------------------------------------- */

static world w;
static void *dl;
static CK_FUNCTION_LIST *p11;

/* Loads module and opens a logged-in read-write session on the token
 * labelled label into side (login skipped when the token is already
 * logged in by another session of this process). */
static void open_side(const char *module, const char *label, const char *pin, layers_side *side)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_RV rv;

    if (p11 == NULL) {
        CK_C_GetFunctionList get;
        dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
        cr_assert(dl != NULL, "%s", dlerror());
        get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
        cr_assert(get != NULL);
        cr_assert_eq(get(&p11), CKR_OK);
        cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    }
    side->p11 = p11;
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        cr_assert_eq(p11->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (strncmp((const char *)ti.label, label, strlen(label)) == 0 &&
            ti.label[strlen(label)] == ' ') {
            cr_assert_eq(p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                            NULL, &side->session),
                         CKR_OK);
            rv = p11->C_Login(side->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
            cr_assert(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: %#lx", rv);
            return;
        }
    }
    cr_assert_fail("no token %s", label);
}

static void close_all(void)
{
    if (p11 != NULL) {
        p11->C_Finalize(NULL);
        p11 = NULL;
    }
}

/* An extractable, sensitive RSA-2048 key pair on side's token (session
 * objects), with id 01. */
static void rsa_pair(const layers_side *side, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1}, id[] = {1};
    CK_ATTRIBUTE pt[] = {
        {CKA_TOKEN, &no, 1},         {CKA_VERIFY, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
        {CKA_PUBLIC_EXPONENT, e, 3}, {CKA_ID, id, 1},
    };
    CK_ATTRIBUTE vt[] = {
        {CKA_TOKEN, &no, 1},        {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1},
        {CKA_EXTRACTABLE, &yes, 1}, {CKA_SIGN, &yes, 1},    {CKA_ID, id, 1},
    };

    cr_assert_eq(side->p11->C_GenerateKeyPair(side->session, &gen, pt, 5, vt, 6, pub, priv),
                 CKR_OK);
}

static CK_OBJECT_HANDLE last_copy;

/* Whether the last copy's boolean attribute type is value. */
static bool copy_is(const layers_side *target, CK_ATTRIBUTE_TYPE type, CK_BBOOL value)
{
    CK_BBOOL got = !value;
    CK_ATTRIBUTE a = {type, &got, sizeof(got)};

    return target->p11->C_GetAttributeValue(target->session, last_copy, &a, 1) == CKR_OK &&
           got == value;
}

/* Moves source's private key priv to target (as a session object) through
 * tr and verifies the copy: a signature checked with the source's key. */
static void move_and_verify(const layers_side *source, CK_OBJECT_HANDLE priv,
                            const layers_side *target, layers_transport *tr)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE over = {CKA_TOKEN, &no, 1};
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    layers_attrs head;
    const char *how = "";
    char err[200] = "";

    cr_assert_eq(layers_attrs_read(source, priv, layers_head_types, layers_n_head_types, &head),
                 CKR_OK);
    cr_assert_eq(layers_transport_open(tr, source, target, err, sizeof(err)), CKR_OK, "%s", err);
    cr_assert_eq(
        layers_transfer(source, priv, target, tr, &head, &over, 1, &copy, err, sizeof(err)), CKR_OK,
        "%s", err);
    cr_assert_eq(layers_verify(source, priv, target, copy, &head, &how, err, sizeof(err)), CKR_OK,
                 "%s", err);
    cr_expect_str_eq(how, "a signature by the copy verified with the source's public key");
    last_copy = copy;
    layers_attrs_free(&head);
}

/* SoftHSM2's function list with RSA-OAEP refused by C_WrapKey, as a
 * backend that lists it but rejects Strata's parameters would. */
static CK_FUNCTION_LIST filtered;
static CK_RV refuse_oaep_wrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wk,
                              CK_OBJECT_HANDLE k, CK_BYTE_PTR out, CK_ULONG_PTR len)
{
    if (m != NULL && m->mechanism == CKM_RSA_PKCS_OAEP) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return p11->C_WrapKey(s, m, wk, k, out, len);
}

static void softhsm_setup(void)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "from", "12345678", "1111"), 0);
    cr_assert_eq(world_token(&w, "to", "12345678", "2222"), 0);
}

static void softhsm_teardown(void)
{
    close_all();
    world_teardown(&w);
}

/* Moves an RSA key between the two SoftHSM2 tokens, C_WrapKey of the
 * source refusing RSA-OAEP when refuse_oaep; returns the carry used. */
static CK_MECHANISM_TYPE softhsm_move(bool refuse_oaep, CK_MECHANISM_TYPE *hash)
{
    layers_side source, target;
    layers_transport tr = {0};
    CK_OBJECT_HANDLE pub, priv;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;

    open_side(world_softhsm_module(), "from", "1111", &source);
    open_side(world_softhsm_module(), "to", "2222", &target);
    if (refuse_oaep) {
        filtered = *p11;
        filtered.C_WrapKey = refuse_oaep_wrap;
        source.p11 = &filtered;
    }
    rsa_pair(&source, &pub, &priv);
    move_and_verify(&source, priv, &target, &tr);
    cr_expect_eq(tr.plan.wrap, CKM_AES_KEY_WRAP_PAD);
    layers_wrap_carry(&tr.plan, &mech, &oaep);
    *hash = oaep.hashAlg;
    layers_transport_close(&tr, &source, &target);
    return mech.mechanism;
}

Test(layers_wrap, layers_transport_open_falls_back_to_rsa_pkcs_when_oaep_is_refused,
     .init = softhsm_setup, .fini = softhsm_teardown, .timeout = 120)
{
    CK_MECHANISM_TYPE hash;

    /* OAEP with SHA-1 refused by the filter, with SHA-256 by SoftHSM2
     * itself (CKR_ARGUMENTS_BAD): RSA-PKCS carried the AES key. */
    cr_expect_eq(softhsm_move(true, &hash), CKM_RSA_PKCS);
}

Test(layers_wrap, layers_transport_open_keeps_oaep_on_softhsm, .init = softhsm_setup,
     .fini = softhsm_teardown, .timeout = 120)
{
    CK_MECHANISM_TYPE hash;

    cr_expect_eq(softhsm_move(false, &hash), CKM_RSA_PKCS_OAEP);
    cr_expect_eq(hash, CKM_SHA_1);
}

/* openCryptoki: one software token, two sessions (two soft tokens in one
 * process share their login state in 3.8.1: the second C_Login answers
 * CKR_USER_ALREADY_LOGGED_IN and objects of the first turn invalid), so
 * the key is moved within the token: the same mechanisms as between two. */
static ock_sandbox sandbox;

static void ock_setup(void)
{
    world_setup(&w);
    ock_start(&w, &sandbox);
    ock_token(&sandbox, "ock", "4321");
}

static void ock_teardown(void)
{
    close_all();
    ock_stop(&sandbox);
    world_teardown(&w);
}

Test(layers_wrap, layers_transfer_with_aes_cbc_pad_on_opencryptoki, .init = ock_setup,
     .fini = ock_teardown, .timeout = 120)
{
    layers_side source, target;
    layers_transport tr = {0};
    CK_OBJECT_HANDLE pub, priv;

    open_side(sandbox.module, "ock", "4321", &source);
    open_side(sandbox.module, "ock", "4321", &target);
    rsa_pair(&source, &pub, &priv);
    move_and_verify(&source, priv, &target, &tr);
    cr_expect_eq(tr.plan.wrap, CKM_AES_CBC_PAD);
    cr_expect(copy_is(&target, CKA_EXTRACTABLE, CK_TRUE));
    cr_expect(copy_is(&target, CKA_SENSITIVE, CK_TRUE));
    layers_transport_close(&tr, &source, &target);
}
