/*
 * test_isolation.c - what one PIN's view cannot learn of another's, and
 * secret hygiene: hidden objects are unreachable by any search or handle
 * probe and answer exactly like handles that never existed; token and
 * session info do not change with another view's state; before login
 * nothing of a view but the public one shows (objects, counts, handles,
 * token info flags, mechanisms); a login costs
 * one Argon2id whatever the PIN and the number of views (this binary
 * also links the engine statically, to read storage_kdf_calls); no PIN,
 * given or generated, reaches the catalog or the debug log; the catalog
 * is 0600.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "identity_world.h"
#include "storage.h"

TestSuite(isolation, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

/* Bob's lazy layer holds an object; carol (group only) and alice (her own
 * lazy layer over group) reach it by no search and no handle, and the
 * answers are those of a handle that never existed. */
Test(isolation, other_views_objects_unreachable)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE bobs = CK_INVALID_HANDLE, found[64];
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE by_label = {CKA_LABEL, "bob-secret", 10};
    CK_ATTRIBUTE by_class = {CKA_CLASS, &data, sizeof(data)};
    const char *others[] = {CAROL_PIN, ALICE_PIN};
    char buf[64];

    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(create_data(p11, s, "bob-secret", &bobs), CKR_OK);
    cr_assert_neq(bobs, CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    for (size_t v = 0; v < 2; v++) {
        CK_ULONG n;
        cr_assert_eq(login(p11, s, others[v]), CKR_OK);
        cr_assert_eq(find_all(p11, s, &by_label, 1, found, 64), 0);
        cr_assert_eq(find_all(p11, s, &by_class, 1, found, 64), 0);
        n = find_all(p11, s, NULL, 0, found, 64);
        for (CK_ULONG i = 0; i < n; i++) {
            cr_assert_neq(found[i], bobs);
        }
        /* Small numbers, bob's handle and every neighbour of a handle
         * in use answer as a handle that never existed. */
        CK_ATTRIBUTE na = {CKA_LABEL, buf, sizeof(buf)};
        CK_ULONG nsize = 0, n_probes = 0;
        CK_OBJECT_HANDLE probes[64 + 3 * 65];
        CK_RV never_attr = p11->C_GetAttributeValue(s, 0x7ffffff0UL, &na, 1);
        CK_RV never_size = p11->C_GetObjectSize(s, 0x7ffffff0UL, &nsize);
        CK_RV never_destroy = p11->C_DestroyObject(s, 0x7ffffff0UL);
        cr_assert_eq(never_attr, CKR_OBJECT_HANDLE_INVALID);
        for (CK_OBJECT_HANDLE h = 1; h <= 64; h++) {
            probes[n_probes++] = h;
        }
        for (CK_ULONG i = 0; i <= n; i++) {
            CK_OBJECT_HANDLE at = i < n ? found[i] : bobs;
            probes[n_probes++] = at - 1;
            probes[n_probes++] = at;
            probes[n_probes++] = at + 1;
        }
        for (CK_ULONG p = 0; p < n_probes; p++) {
            CK_OBJECT_HANDLE h = probes[p];
            CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};
            CK_ULONG size = 0;
            CK_RV rv = p11->C_GetAttributeValue(s, h, &a, 1);
            bool visible = false;
            for (CK_ULONG i = 0; i < n; i++) {
                visible = visible || found[i] == h;
            }
            if (visible) {
                continue;
            }
            cr_assert_eq(rv, never_attr, "handle %lu", h);
            cr_assert_eq(p11->C_GetObjectSize(s, h, &size), never_size, "handle %lu", h);
            rv = p11->C_DestroyObject(s, h);
            cr_assert_eq(rv, never_destroy, "view %zu handle %lu", v, h);
        }
        cr_assert_eq(p11->C_Logout(s), CKR_OK);
    }
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, s, &by_label, 1, found, 64), 1, "still there for bob");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Token and session info read by carol do not change when bob's view is
 * provisioned by another process meanwhile. */
Test(isolation, info_does_not_reveal_other_views)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_TOKEN_INFO before, after;
    CK_SESSION_INFO sb, sa;

    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &before), CKR_OK);
    cr_assert_eq(p11->C_GetSessionInfo(s, &sb), CKR_OK);
    cr_assert_eq(strata_cli(BOB_PIN, "provision --token Strata --view bob --pin-stdin"), 0);
    cr_assert_eq(tokens_labelled("strata-bob"), 1);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &after), CKR_OK);
    cr_assert_eq(p11->C_GetSessionInfo(s, &sa), CKR_OK);
    cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
    cr_assert_eq(memcmp(&sb, &sa, sizeof(sb)), 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Every PIN and generated backend PIN is absent from the catalog (and its
 * WAL) and from a debug log; the catalog is 0600. */
Test(isolation, no_pin_in_catalog_or_log)
{
    char log[PATH_MAX + 16], path[PATH_MAX + 16];
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    struct stat st;
    const char *pins[] = {ALICE_PIN, BOB_PIN, CAROL_PIN, "2222", "alice-new-1", SO_PIN};
    char *gen[2] = {NULL, NULL};

    snprintf(log, sizeof(log), "%s/strata.log", w.dir);
    setenv("STRATA_LOG", "calls", 1);
    setenv("STRATA_LOG_FILE", log, 1);
    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, "wrong-pin-9"), CKR_PIN_INCORRECT);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)ALICE_PIN, strlen(ALICE_PIN),
                               (CK_UTF8CHAR_PTR) "alice-new-1", 11),
                 CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* The generated PINs of alice's token, read the way the engine does. */
    {
        storage_catalog *cat = NULL;
        storage_login *lg = NULL;
        storage_provision *p = NULL;
        const char *so, *user;
        size_t so_len, user_len;

        cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                     STORAGE_OK);
        cr_assert_eq(storage_view_login(cat, "Strata", "alice-new-1", 11, &lg), STORAGE_OK);
        cr_assert_eq(storage_provision_read(cat, lg, "personal", &p), STORAGE_OK);
        storage_provision_pins(p, &so, &so_len, &user, &user_len);
        gen[0] = strndup(so, so_len);
        gen[1] = strndup(user, user_len);
        storage_provision_free(p);
        storage_login_free(lg);
        storage_catalog_close(cat);
    }
    cr_assert_eq(stat(w.catalog, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]) + 2; i++) {
        const char *pin =
            i < sizeof(pins) / sizeof(pins[0]) ? pins[i] : gen[i - sizeof(pins) / sizeof(pins[0])];
        cr_assert_neq(world_sh("grep -qaF -- '%s' '%s'", pin, log), 0, "PIN in the log");
        cr_assert_neq(world_sh("cat '%s'* | grep -qaF -- '%s'", w.catalog, pin), 0,
                      "PIN in the catalog");
    }
    snprintf(path, sizeof(path), "%s", log);
    cr_assert_eq(world_sh("grep -q C_Login '%s'", path), 0, "the log was written");
    free(gen[0]);
    free(gen[1]);
}

/* ---------------------------------------------------------------------
 * Before login (strata-pkcs11(8), BEFORE LOGIN): the token shows its
 * public view, alice (the first); nothing of bob's or carol's view.
 * ------------------------------------------------------------------ */

/* What a client can read of the token before login, session counts
 * left out: token info and the mechanism list. */
typedef struct {
    CK_TOKEN_INFO info;
    CK_MECHANISM_TYPE mechs[256];
    CK_ULONG n_mechs;
} public_face;

static void read_face(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot, public_face *f)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(p11->C_GetTokenInfo(slot, &f->info), CKR_OK);
    f->info.ulSessionCount = f->info.ulRwSessionCount = 0;
    memset(f->info.utcTime, 0, sizeof(f->info.utcTime));
    f->n_mechs = 256;
    cr_assert_eq(p11->C_GetMechanismList(slot, f->mechs, &f->n_mechs), CKR_OK);
}

/* Bob's view holds public objects, token and session ones; before login
 * (in this process and in a fresh one) no search, count, handle probe,
 * token info or mechanism list tells anything of them: what the public
 * state shows is the same as before bob's view had anything, and bob's
 * handles answer as handles that never existed. */
Test(isolation, before_login_nothing_of_other_views)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE found[64], bobs[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE by_class = {CKA_CLASS, &data, sizeof(data)};
    CK_ATTRIBUTE by_label = {CKA_LABEL, "bob-public", 10};
    public_face before, after;
    CK_ULONG n0, n1;
    char buf[64];

    read_face(p11, slot, &before);
    n0 = find_all(p11, s, NULL, 0, found, 64);
    cr_assert_gt(n0, 0, "alice's public view shows group's public key");
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(create_data(p11, s, "bob-public", &bobs[0]), CKR_OK);
    {
        CK_OBJECT_CLASS cls = CKO_DATA;
        CK_BBOOL no = CK_FALSE;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_TOKEN, &no, sizeof(no)},
                            {CKA_PRIVATE, &no, sizeof(no)},
                            {CKA_LABEL, "bob-public", 10}};
        cr_assert_eq(p11->C_CreateObject(s, t, 4, &bobs[1]), CKR_OK);
    }
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    for (int round = 0; round < 2; round++) {
        CK_ATTRIBUTE never = {CKA_LABEL, buf, sizeof(buf)};
        CK_ULONG size = 0;
        CK_RV never_attr = p11->C_GetAttributeValue(s, 0x7ffffff0UL, &never, 1);
        CK_RV never_size = p11->C_GetObjectSize(s, 0x7ffffff0UL, &size);

        read_face(p11, slot, &after);
        cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0,
                     "round %d: token info or mechanisms changed", round);
        n1 = find_all(p11, s, NULL, 0, found, 64);
        cr_assert_eq(n1, n0, "round %d: %lu objects before login, %lu before", round, n1, n0);
        cr_assert_eq(find_all(p11, s, &by_label, 1, found, 64), 0);
        cr_assert_eq(find_all(p11, s, &by_class, 1, found, 64), 0);
        for (int i = 0; i < (round == 0 ? 2 : 1); i++) { /* the session object died in round 0 */
            CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};
            cr_assert_eq(p11->C_GetAttributeValue(s, bobs[i], &a, 1), never_attr);
            cr_assert_eq(p11->C_GetObjectSize(s, bobs[i], &size), never_size);
        }
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
        p11 = strata(&slot);
        s = open_rw(p11, slot);
    }
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, s, &by_label, 1, found, 64), 1, "still there for bob");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A cover view over the test backend (no mechanism, no RNG, read-only)
 * and a hidden view over SoftHSM2: before login the token's info and
 * mechanisms are the cover's alone, with nothing of SoftHSM2's; after
 * the hidden view's login they are SoftHSM2's; after the logout the
 * cover's again. */
static const char cover_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"tb\" path=\"@TB@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"cover\" module=\"tb\" token=\"cover\" access=\"read-only\"/>\n"
    "  <layer id=\"secret\" module=\"soft\" token=\"group\"/>\n"
    "  <token label=\"Strata\" min-pin-len=\"6\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"cover\" layers=\"cover\"/>\n"
    "    <view id=\"hidden\" layers=\"secret\"/>\n"
    "  </token>\n"
    "</strata>\n";

static void cover_setup(void)
{
    char xml[sizeof(cover_policy) + PATH_MAX], conf[PATH_MAX + 16];
    const char *tb = getenv("STRATA_TEST_BACKEND");
    const char *at = strstr(cover_policy, "@TB@");
    FILE *f;

    cr_assert_not_null(tb);
    world_setup(&w);
    cr_assert_eq(world_token(&w, "group", "12345678", "2222"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "EC:prime256v1", "g-ec", "02"), 0);
    snprintf(conf, sizeof(conf), "%s/tb.conf", w.dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "label = cover\npin = 1234\n");
    cr_assert_eq(fclose(f), 0);
    setenv("STRATA_TEST_BACKEND_CONF", conf, 1);
    snprintf(xml, sizeof(xml), "%.*s%s%s", (int)(at - cover_policy), cover_policy, tb, at + 4);
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(strata_cli("cover-pin-1 1234", "enroll --token Strata --view cover --pin-stdin"),
                 0);
    cr_assert_eq(strata_cli("hidden-pin-1 2222", "enroll --token Strata --view hidden --pin-stdin"),
                 0);
}

TestSuite(isolation_cover, .init = cover_setup, .fini = identity_teardown, .timeout = 300);

Test(isolation_cover, before_login_info_and_mechanisms_are_the_cover_views)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE found[16];
    public_face cover, hidden, again;
    CK_MECHANISM_INFO mi;
    CK_BYTE rnd[8];

    read_face(p11, slot, &cover);
    cr_assert_eq(cover.n_mechs, 0, "%lu mechanisms before login", cover.n_mechs);
    cr_assert(cover.info.flags & CKF_WRITE_PROTECTED);
    cr_assert_not(cover.info.flags & CKF_RNG);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_ECDSA, &mi), CKR_MECHANISM_INVALID);
    cr_assert_eq(p11->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_RANDOM_NO_RNG);
    cr_assert_eq(find_all(p11, s, NULL, 0, found, 16), 2, "the cover's public data-1, data-2");
    cr_assert_eq(login(p11, s, "hidden-pin-1"), CKR_OK);
    read_face(p11, slot, &hidden);
    cr_assert_gt(hidden.n_mechs, 10);
    cr_assert(hidden.info.flags & CKF_RNG);
    cr_assert_not(hidden.info.flags & CKF_WRITE_PROTECTED);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_ECDSA, &mi), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    read_face(p11, slot, &again);
    cr_assert_eq(memcmp(&cover, &again, sizeof(cover)), 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- one Argon2id per login, whatever the PIN and the views ----------- */

static void kdf_world(size_t n_views)
{
    char *xml = malloc(4096 + n_views * 64);
    size_t len = 0;
    storage_catalog *cat = NULL;
    storage_kdf kdf = {1, 8192};

    cr_assert_not_null(xml);
    world_setup(&w);
    cr_assert_eq(world_token(&w, "group", "12345678", "2222"), 0);
    len += (size_t)sprintf(xml + len, "<strata version=\"1\">\n  <catalog path=\"@CATALOG@\"/>\n"
                                      "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                      "  <layer id=\"group\" module=\"soft\" token=\"group\"/>\n"
                                      "  <token label=\"Strata\" max-failed-logins=\"10\">\n"
                                      "    <kdf ops=\"1\" mem=\"8192\"/>\n");
    for (size_t i = 0; i < n_views; i++) {
        len += (size_t)sprintf(xml + len, "    <view id=\"v%zu\" layers=\"group\"/>\n", i);
    }
    sprintf(xml + len, "  </token>\n</strata>\n");
    cr_assert_eq(world_policy(&w, xml), 0);
    free(xml);
    cr_assert_eq(storage_crypto_init(), STORAGE_OK);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_CREATE, &cat, NULL, 0), STORAGE_OK);
    for (size_t i = 0; i < n_views; i++) {
        char id[32], pin[40];
        snprintf(id, sizeof(id), "v%zu", i);
        snprintf(pin, sizeof(pin), "view-pin-%zu", i);
        cr_assert_eq(storage_view_enroll(cat, "Strata", id, pin, strlen(pin), NULL, 0, &kdf),
                     STORAGE_OK);
    }
    storage_catalog_close(cat);
}

static void one_kdf_per_login(size_t n_views)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_SESSION_HANDLE s;
    char last[32];
    unsigned long before;

    kdf_world(n_views);
    snprintf(last, sizeof(last), "view-pin-%zu", n_views - 1);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    before = storage_kdf_calls();
    cr_assert_eq(login(p11, s, "not-a-view-pin"), CKR_PIN_INCORRECT);
    cr_assert_eq(storage_kdf_calls() - before, 1, "a wrong PIN, %zu views", n_views);
    before = storage_kdf_calls();
    cr_assert_eq(login(p11, s, last), CKR_OK);
    cr_assert_eq(storage_kdf_calls() - before, 1, "the last view's PIN, %zu views", n_views);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    before = storage_kdf_calls();
    cr_assert_eq(login(p11, s, "view-pin-0"), CKR_OK);
    cr_assert_eq(storage_kdf_calls() - before, 1, "the first view's PIN, %zu views", n_views);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    world_teardown(&w);
}

Test(isolation_kdf, one_view)
{
    one_kdf_per_login(1);
}

Test(isolation_kdf, hundred_views, .timeout = 300)
{
    one_kdf_per_login(100);
}

/* An operation or search begun in alice's view does not finish in bob's
 * (issue 12, item 10): a logout ends every operation and search of every
 * session of the token, and the next call on it answers
 * CKR_OPERATION_NOT_INITIALIZED. */
Test(isolation, logout_ends_operations_of_every_session)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot), other = open_rw(p11, slot);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0}, sha = {CKM_SHA256, NULL, 0};
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &priv, sizeof(priv)}, {CKA_LABEL, "g-ec", 4}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE, found[4];
    CK_BYTE data[32] = {1}, sig[128];
    CK_ULONG len = sizeof(sig), n = 0;

    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, s, t, 2, &key, 1), 1);
    cr_assert_eq(p11->C_SignInit(s, &ecdsa, key), CKR_OK);
    cr_assert_eq(p11->C_SignInit(other, &ecdsa, key), CKR_OK);
    cr_assert_eq(p11->C_DigestInit(other, &sha), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_Logout(other), CKR_OK);
    cr_assert_eq(login(p11, other, BOB_PIN), CKR_OK);

    cr_assert_eq(p11->C_Sign(s, data, sizeof(data), sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_Sign(other, data, sizeof(data), sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_FindObjects(s, found, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    /* ended, not stuck: new operations start in bob's view */
    cr_assert_eq(p11->C_DigestInit(other, &sha), CKR_OK);
    cr_assert_eq(p11->C_SignInit(s, &ecdsa, key), CKR_KEY_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The output and exit status of a strata command in this world. */
static int strata_out(char **out, const char *args)
{
    return world_sh_out(out, "'%s' %s 2>&1", world_strata_cli(), args);
}

/* Asserts that `strata cmd` fails and its output says why. */
static void refused_says(const char *cmd, const char *why)
{
    char *out = NULL;

    cr_assert_neq(strata_out(&out, cmd), 0, "strata %s accepted the catalog", cmd);
    cr_assert(strstr(out, why) != NULL, "strata %s: %s", cmd, out);
    free(out);
}

/* Whether C_Initialize of the module accepts the catalog as it is now. */
static CK_RV module_opens(void)
{
    CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
    CK_RV rv = p11->C_Initialize(NULL);

    if (rv == CKR_OK) {
        p11->C_Finalize(NULL);
    }
    return rv;
}

/* Another Unix user (nobody) plants the catalog's -wal and -shm, mode
 * 0666, in a folder everyone may write (issue 12, item 13): the module
 * and the strata commands refuse the catalog, and say why, until the
 * folder is private and the planted files are gone. Root only (it plays
 * the other user with setpriv). */
Test(isolation, catalog_files_of_another_user_refused)
{
    char wal[PATH_MAX + 8], shm[PATH_MAX + 8], *out = NULL;

    if (geteuid() != 0) {
        cr_skip_test("not root: cannot act as another Unix user (setpriv) to plant files");
    }
    snprintf(wal, sizeof(wal), "%s-wal", w.catalog);
    snprintf(shm, sizeof(shm), "%s-shm", w.catalog);
    cr_assert_eq(module_opens(), CKR_OK);
    cr_assert_eq(chmod(w.dir, 01777), 0);
    cr_assert_eq(world_sh("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "
                          "\"umask 0; touch '%s' '%s'\"",
                          wal, shm),
                 0, "nobody plants the files");
    cr_assert_eq(world_sh("test \"$(stat -c '%%U %%a' '%s')\" = 'nobody 666'", wal), 0);

    cr_assert_eq(module_opens(), CKR_GENERAL_ERROR, "a shared folder accepted");
    refused_says("status", "writable by other users");
    refused_says("check", "writable by other users");

    cr_assert_eq(chmod(w.dir, 0700), 0);
    cr_assert_eq(module_opens(), CKR_GENERAL_ERROR, "another user's -wal accepted");
    refused_says("status", "belongs to another user");
    cr_assert_neq(strata_cli(ALICE_PIN, "enroll --token Strata --view alice --pin-stdin"), 0);

    cr_assert_eq(unlink(wal), 0);
    cr_assert_eq(unlink(shm), 0);
    cr_assert_eq(module_opens(), CKR_OK);
    cr_assert_eq(strata_out(&out, "status"), 0, "%s", out);
    free(out);
}

/* An empty catalog file is damage (issue 12, item 12): the module does not
 * start on it, the commands say so, and the file is not made a new
 * catalog (which would drop every enrolment). */
Test(isolation, empty_catalog_refused)
{
    struct stat st;

    cr_assert_eq(truncate(w.catalog, 0), 0);
    cr_assert_eq(module_opens(), CKR_GENERAL_ERROR, "an empty catalog was initialised");
    cr_assert_eq(stat(w.catalog, &st), 0);
    cr_assert_eq(st.st_size, 0, "the empty catalog was written");
    refused_says("status", "empty file");
    refused_says("check", "empty file");
    refused_says("init", "empty file");
    cr_assert_eq(stat(w.catalog, &st), 0);
    cr_assert_eq(st.st_size, 0);
}
