/*
 * test_prelogin.c - the token before login (engine/session.c, find.c,
 * object.c, slot.c, login.c; strata-pkcs11(8), BEFORE LOGIN): by default
 * a token shows its first view's public objects before login, and takes
 * public objects as v2.40 allows without login; public-view="ID" names
 * another view, public-view="none" shows nothing but the session's own
 * session objects; a login into another view than the public one makes
 * the handles of objects that view does not show invalid and keeps the
 * others' numbers.
 *
 * The world is stack_world.h's: work = personal over group (first), anon
 * = other.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

TestSuite(prelogin, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

/* The stack policy with extra attributes on <token> and on the views:
 * token_attrs goes inside <token ...>, anon_attrs inside <view id="anon" ...>,
 * and anon stacks anon_layers. */
static void policy_layers(const char *token_attrs, const char *anon_layers, const char *anon_attrs)
{
    char xml[4096];

    snprintf(xml, sizeof(xml),
             "<strata version=\"1\">\n"
             "  <catalog path=\"@CATALOG@\"/>\n"
             "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
             "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
             "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
             "  <layer id=\"other\" module=\"soft\" token=\"other\"/>\n"
             "  <token label=\"Strata\" max-failed-logins=\"3\" %s>\n"
             "    <kdf ops=\"1\" mem=\"8192\"/>\n"
             "    <view id=\"work\" layers=\"personal group\" whiteout=\"allow\"/>\n"
             "    <view id=\"anon\" layers=\"%s\" %s/>\n"
             "  </token>\n"
             "</strata>\n",
             token_attrs, anon_layers, anon_attrs);
    cr_assert_eq(world_policy(&w, xml), 0);
}

/* The same with anon = other alone. */
static void policy_with(const char *token_attrs, const char *anon_attrs)
{
    policy_layers(token_attrs, "other", anon_attrs);
}

/* The sorted labels of the objects found with templ, joined by spaces. */
static void labels_found(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_ATTRIBUTE *templ,
                         CK_ULONG count, char *out, size_t size)
{
    CK_OBJECT_HANDLE objs[32];
    CK_ULONG n = find_all(p11, s, templ, count, objs, 32);
    char labels[32][64], tmp[64];

    for (CK_ULONG i = 0; i < n; i++) {
        label_of(p11, s, objs[i], labels[i], sizeof(labels[i]));
    }
    for (CK_ULONG i = 0; i < n; i++) {
        for (CK_ULONG j = i + 1; j < n; j++) {
            if (strcmp(labels[j], labels[i]) < 0) {
                memcpy(tmp, labels[i], sizeof(tmp));
                memcpy(labels[i], labels[j], sizeof(tmp));
                memcpy(labels[j], tmp, sizeof(tmp));
            }
        }
    }
    out[0] = '\0';
    for (CK_ULONG i = 0; i < n; i++) {
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i > 0 ? " " : "", labels[i]);
    }
}

/* A public data object; token says CKA_TOKEN. Returns the code. */
static CK_RV make_data(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                       CK_BBOOL token, CK_BBOOL private, CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_PRIVATE, &private, sizeof(private)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, "v", 1},
    };

    *out = CK_INVALID_HANDLE;
    return p11->C_CreateObject(s, t, 5, out);
}

static CK_SESSION_HANDLE open_ro(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    return s;
}

/* With no public attribute the first view (work) is public: its public
 * keys (shadow-g shadowed by shadow-p) are found and read before login,
 * its private keys are not, and nothing of anon (o-ec) shows. */
Test(prelogin, first_view_is_public_by_default)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_ro(p11, slot);
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE by_priv = {CKA_CLASS, &priv, sizeof(priv)};
    CK_OBJECT_HANDLE objs[8];
    CK_BYTE point[128];
    CK_ATTRIBUTE ec = {CKA_EC_POINT, point, sizeof(point)};
    CK_SESSION_INFO si;
    char labels[512];

    labels_found(p11, s, NULL, 0, labels, sizeof(labels));
    cr_assert_str_eq(labels, "g-ec g-rsa p-ec shadow-p");
    cr_assert_eq(find_all(p11, s, &by_priv, 1, objs, 8), 0, "a private key before login");
    cr_assert_neq(find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_GetAttributeValue(s, find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), &ec, 1),
                 CKR_OK);
    cr_assert_gt(ec.ulValueLen, 60);
    cr_assert_eq(p11->C_GetSessionInfo(s, &si), CKR_OK);
    cr_assert_eq(si.state, CKS_RO_PUBLIC_SESSION);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* v2.40 without login: a public session object in any session, a public
 * token object in a R/W session (routed to work's top writable layer,
 * personal), a session key generated and used; a private object is the
 * backend's CKR_USER_NOT_LOGGED_IN, a token object in a R/O session
 * CKR_SESSION_READ_ONLY. */
Test(prelogin, public_objects_made_before_login)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE ro = open_ro(p11, slot), rw = open_rw(p11, slot);
    CK_OBJECT_HANDLE h, key = CK_INVALID_HANDLE;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, ecb = {CKM_AES_ECB, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE kt[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_TOKEN, &no, sizeof(no)},
                         {CKA_PRIVATE, &no, sizeof(no)},
                         {CKA_ENCRYPT, &yes, sizeof(yes)}};
    CK_BYTE in[16] = {0}, out[16];
    CK_ULONG out_len = sizeof(out);

    cr_assert_eq(make_data(p11, ro, "pre-session", CK_FALSE, CK_FALSE, &h), CKR_OK);
    cr_assert_neq(find_one(p11, ro, CKO_DATA, "pre-session"), CK_INVALID_HANDLE);
    cr_assert_eq(make_data(p11, ro, "pre-token-ro", CK_TRUE, CK_FALSE, &h), CKR_SESSION_READ_ONLY);
    cr_assert_eq(make_data(p11, ro, "pre-private", CK_FALSE, CK_TRUE, &h), CKR_USER_NOT_LOGGED_IN);
    cr_assert_eq(make_data(p11, rw, "pre-token", CK_TRUE, CK_FALSE, &h), CKR_OK);
    cr_assert_eq(find_one(p11, ro, CKO_DATA, "pre-token"), h);
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label personal --list-objects "
                          "--type data 2>/dev/null | grep -q pre-token",
                          world_softhsm_module()),
                 0, "the token object is in personal");
    cr_assert_eq(p11->C_GenerateKey(ro, &gen, kt, 4, &key), CKR_OK);
    cr_assert_eq(p11->C_EncryptInit(ro, &ecb, key), CKR_OK);
    cr_assert_eq(p11->C_Encrypt(ro, in, sizeof(in), out, &out_len), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* public-view names another view: before login anon's public key shows,
 * work's do not; public="true" on the view says the same. */
Test(prelogin, public_view_names_a_view)
{
    const char *ways[][2] = {{"public-view=\"anon\"", ""}, {"", "public=\"true\""}};

    for (size_t i = 0; i < 2; i++) {
        CK_SLOT_ID slot;
        CK_FUNCTION_LIST *p11;
        CK_SESSION_HANDLE s;
        char labels[512];

        policy_with(ways[i][0], ways[i][1]);
        p11 = strata(&slot);
        s = open_ro(p11, slot);
        labels_found(p11, s, NULL, 0, labels, sizeof(labels));
        cr_assert_str_eq(labels, "o-ec", "%s%s", ways[i][0], ways[i][1]);
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    }
}

/* public-view="none": nothing of any layer before login, the token is
 * write-protected (a token object: CKR_TOKEN_WRITE_PROTECTED), and the
 * session's own public session objects work: they live in work's top
 * writable layer, so a login into work still shows them and one into
 * anon does not. */
Test(prelogin, public_view_none)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h, made, objs[8];
    CK_TOKEN_INFO ti;
    CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE by_pub = {CKA_CLASS, &pub, sizeof(pub)};
    CK_ATTRIBUTE a;
    char labels[512], buf[64];

    policy_with("public-view=\"none\"", "");
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(find_all(p11, s, NULL, 0, objs, 8), 0);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
    cr_assert(ti.flags & CKF_WRITE_PROTECTED);
    cr_assert_eq(make_data(p11, s, "none-token", CK_TRUE, CK_FALSE, &h), CKR_TOKEN_WRITE_PROTECTED);
    cr_assert_eq(make_data(p11, s, "none-session", CK_FALSE, CK_FALSE, &made), CKR_OK);
    labels_found(p11, s, NULL, 0, labels, sizeof(labels));
    cr_assert_str_eq(labels, "none-session");
    cr_assert_eq(find_all(p11, s, &by_pub, 1, objs, 8), 0);
    a = (CK_ATTRIBUTE){CKA_LABEL, buf, sizeof(buf)};
    cr_assert_eq(p11->C_GetAttributeValue(s, made, &a, 1), CKR_OK);

    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &ti), CKR_OK);
    cr_assert_not(ti.flags & CKF_WRITE_PROTECTED);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "none-session"), made);
    cr_assert_neq(find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(find_all(p11, s, &by_pub, 1, objs, 8), 0, "nothing again after logout");
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    a = (CK_ATTRIBUTE){CKA_LABEL, buf, sizeof(buf)};
    cr_assert_eq(p11->C_GetAttributeValue(s, made, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A policy error: public-view naming no view of the token, or at odds
 * with a public="true" view. */
Test(prelogin, public_view_errors)
{
    char *out = NULL;

    policy_with("public-view=\"nope\"", "");
    cr_assert_neq(world_sh_out(&out, "'%s' check 2>&1", world_strata_cli()), 0);
    cr_assert(strstr(out, "public-view=\"nope\" names no view") != NULL, "%s", out);
    free(out);
    out = NULL;
    policy_with("public-view=\"work\"", "public=\"true\"");
    cr_assert_neq(world_sh_out(&out, "'%s' check 2>&1", world_strata_cli()), 0);
    cr_assert(strstr(out, "public-view=\"work\"") != NULL, "%s", out);
    free(out);
}

/* A login into another view than the public one: the handles obtained
 * before it of objects that view does not show (work's public keys, a
 * session object made in work's layer) answer CKR_OBJECT_HANDLE_INVALID,
 * a search begun before it has ended; after the logout they are valid
 * again under the same numbers. */
Test(prelogin, login_into_another_view)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE g_ec = find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), made, objs[8];
    CK_ULONG got = CANARY;
    char buf[64];
    CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};

    cr_assert_neq(g_ec, CK_INVALID_HANDLE);
    cr_assert_eq(make_data(p11, s, "pre-session", CK_FALSE, CK_FALSE, &made), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, objs, 8, &got), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_GetAttributeValue(s, g_ec, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    a.ulValueLen = sizeof(buf);
    cr_assert_eq(p11->C_GetAttributeValue(s, made, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "pre-session"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_PRIVATE_KEY, "o-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), g_ec, "the same number again");
    cr_assert_eq(find_one(p11, s, CKO_DATA, "pre-session"), made);
    a.ulValueLen = sizeof(buf);
    cr_assert_eq(p11->C_GetAttributeValue(s, made, &a, 1), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A login into the public view keeps every handle obtained before it:
 * usable at once, without a new search, under the same number; a
 * search begun before it has ended all the same. The logout keeps the
 * public objects' handles too. */
Test(prelogin, login_into_the_public_view)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE g_ec = find_one(p11, s, CKO_PUBLIC_KEY, "g-ec");
    CK_OBJECT_HANDLE p_ec = find_one(p11, s, CKO_PUBLIC_KEY, "p-ec"), made, objs[8];
    CK_ULONG got = CANARY;
    char buf[64];
    CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};

    cr_assert_eq(make_data(p11, s, "pre-session", CK_FALSE, CK_FALSE, &made), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, objs, 8, &got), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_GetAttributeValue(s, g_ec, &a, 1), CKR_OK);
    cr_assert_eq(a.ulValueLen, 4);
    a.ulValueLen = sizeof(buf);
    cr_assert_eq(p11->C_GetAttributeValue(s, made, &a, 1), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), g_ec);
    cr_assert_eq(find_one(p11, s, CKO_PUBLIC_KEY, "p-ec"), p_ec);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "pre-session"), made);
    cr_assert_neq(find_one(p11, s, CKO_PRIVATE_KEY, "p-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    a.ulValueLen = sizeof(buf);
    cr_assert_eq(p11->C_GetAttributeValue(s, p_ec, &a, 1), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PUBLIC_KEY, "p-ec"), p_ec);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Issue 13, item 3: anon stacks other over the (read-only) group layer,
 * so group's public keys show in both views. Before login (work is
 * public) a verification with work's p-ec, a digest and a search are
 * begun in three sessions; the login into anon ends all three
 * (CKR_OPERATION_NOT_INITIALIZED), p-ec's handle becomes invalid, and
 * g-ec, which anon shows too, keeps its number and is usable at once. */
Test(prelogin, login_into_another_view_ends_operations_keeps_shared_handles)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s, s2, s3;
    CK_OBJECT_HANDLE g_ec, p_ec, objs[8];
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0}, sha256 = {CKM_SHA256, NULL, 0};
    CK_BYTE data[32] = {1}, sig[64] = {2}, digest[32];
    CK_ULONG got = CANARY, len = sizeof(digest);
    char buf[64];
    CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};

    policy_layers("", "other group", "");
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    s2 = open_ro(p11, slot);
    s3 = open_ro(p11, slot);
    g_ec = find_one(p11, s, CKO_PUBLIC_KEY, "g-ec");
    p_ec = find_one(p11, s, CKO_PUBLIC_KEY, "p-ec");
    cr_assert_neq(g_ec, CK_INVALID_HANDLE);
    cr_assert_neq(p_ec, CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_VerifyInit(s, &ecdsa, p_ec), CKR_OK);
    cr_assert_eq(p11->C_DigestInit(s2, &sha256), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsInit(s3, NULL, 0), CKR_OK);
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    cr_assert_eq(p11->C_Verify(s, data, sizeof(data), sig, sizeof(sig)),
                 CKR_OPERATION_NOT_INITIALIZED, "a verification begun in work ended");
    cr_assert_eq(p11->C_DigestUpdate(s2, data, sizeof(data)), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_DigestFinal(s2, digest, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_FindObjects(s3, objs, 8, &got), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_VerifyInit(s, &ecdsa, p_ec), CKR_KEY_HANDLE_INVALID);
    cr_assert_eq(p11->C_GetAttributeValue(s, p_ec, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    a.ulValueLen = sizeof(buf);
    cr_assert_eq(p11->C_GetAttributeValue(s, g_ec, &a, 1), CKR_OK, "shown by anon too");
    cr_assert_eq(a.ulValueLen, 4);
    cr_assert_eq(find_one(p11, s3, CKO_PUBLIC_KEY, "g-ec"), g_ec, "the same number");
    cr_assert_eq(p11->C_VerifyInit(s, &ecdsa, g_ec), CKR_OK, "usable at once");
    cr_assert_eq(p11->C_DigestInit(s2, &sha256), CKR_OK, "a new operation begins");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
