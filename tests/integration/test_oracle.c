/*
 * test_oracle.c - no PIN oracle in the work a login does (issue 12, item
 * 2): a wrong PIN and another view's PIN given to
 * C_Login(CKU_CONTEXT_SPECIFIC) or C_Login(CKU_USER) take the same code
 * path, measured with the storage counters rather than a clock: the same
 * number of Argon2id runs, of catalog transactions and of sealed values
 * opened (none). The same for C_LoginUser (PKCS#11 3.0, issue 16): a
 * username that names another view, or no view, costs and answers what a
 * wrong PIN does. This binary links the engine statically, as
 * test_isolation.c does, to read those counters.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "engine.h"
#include "identity_world.h"
#include "storage.h"
#include "v3.h"

TestSuite(oracle, .init = identity_setup, .fini = identity_teardown, .timeout = 120);

/* What one call cost: Argon2id runs, sealed values opened, catalog
 * transactions. */
typedef struct {
    unsigned long kdf, unseal, txn;
} work;

static work work_now(void)
{
    return (work){storage_kdf_calls(), storage_unseal_calls(), storage_txn_calls()};
}

/* C_Login(user, pin) on s; its answer in *rv and its cost. */
static work login_work(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_USER_TYPE user,
                       const char *pin, CK_RV *rv)
{
    work before = work_now(), after;

    *rv = p11->C_Login(s, user, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    after = work_now();
    return (work){after.kdf - before.kdf, after.unseal - before.unseal, after.txn - before.txn};
}

static void assert_same_work(work a, work b, const char *what)
{
    cr_assert_eq(a.kdf, b.kdf, "%s: %lu vs %lu Argon2id runs", what, a.kdf, b.kdf);
    cr_assert_eq(a.unseal, b.unseal, "%s: %lu vs %lu unseals", what, a.unseal, b.unseal);
    cr_assert_eq(a.txn, b.txn, "%s: %lu vs %lu catalog transactions", what, a.txn, b.txn);
}

/* Alice logged in (statically linked engine), an ECDSA signature begun
 * with the group layer's key. */
static CK_FUNCTION_LIST *alice_signing(CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "g-ec", 4}};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE key;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    *s = open_rw(p11, slot);
    cr_assert_eq(login(p11, *s, ALICE_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, *s, t, 2, &key, 1), 1);
    cr_assert_eq(p11->C_SignInit(*s, &mech, key), CKR_OK);
    return p11;
}

/* Carol's view holds a sealed credential (group), bob's none: neither is
 * opened, and both cost what a wrong PIN costs. */
Test(oracle, context_specific_wrong_pin_and_other_views_pin_same_work)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = alice_signing(&s);
    CK_RV rv_wrong, rv_carol, rv_bob;
    work wrong = login_work(p11, s, CKU_CONTEXT_SPECIFIC, "wrong-pin-1", &rv_wrong);
    work carol = login_work(p11, s, CKU_CONTEXT_SPECIFIC, CAROL_PIN, &rv_carol);
    work bob = login_work(p11, s, CKU_CONTEXT_SPECIFIC, BOB_PIN, &rv_bob);

    cr_assert_eq(rv_wrong, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_carol, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_bob, CKR_PIN_INCORRECT);
    cr_assert_eq(wrong.kdf, 1);
    cr_assert_eq(wrong.unseal, 0, "nothing is opened to compare a PIN");
    assert_same_work(wrong, carol, "wrong PIN / carol's PIN");
    assert_same_work(wrong, bob, "wrong PIN / bob's PIN");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* CKU_USER while a user is logged in: another view's PIN and a wrong PIN
 * are both refused before any work; and a wrong PIN costs one reservation
 * and one Argon2id run and opens nothing. */
Test(oracle, user_wrong_pin_and_other_views_pin_same_work)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = alice_signing(&s);
    CK_RV rv_wrong, rv_bob;
    work wrong = login_work(p11, s, CKU_USER, "wrong-pin-1", &rv_wrong);
    work bob = login_work(p11, s, CKU_USER, BOB_PIN, &rv_bob);

    cr_assert_eq(rv_wrong, CKR_USER_ALREADY_LOGGED_IN);
    cr_assert_eq(rv_bob, CKR_USER_ALREADY_LOGGED_IN);
    assert_same_work(wrong, bob, "logged in: wrong PIN / bob's PIN");
    cr_assert_eq(wrong.kdf + wrong.txn, 0);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    wrong = login_work(p11, s, CKU_USER, "wrong-pin-2", &rv_wrong);
    cr_assert_eq(rv_wrong, CKR_PIN_INCORRECT);
    cr_assert_eq(wrong.kdf, 1);
    cr_assert_eq(wrong.unseal, 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* C_LoginUser(CKU_USER, pin, name) on s (entry.c's entry point, which the
 * 3.0 list holds); its answer in *rv and its cost. */
static work login_user_work(CK_SESSION_HANDLE s, const char *pin, const char *name, CK_RV *rv)
{
    work before = work_now(), after;

    *rv = entry_login_user(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin), (CK_UTF8CHAR_PTR)name,
                           strlen(name));
    after = work_now();
    return (work){after.kdf - before.kdf, after.unseal - before.unseal, after.txn - before.txn};
}

/* A wrong PIN for alice, alice's PIN for bob's view, alice's PIN for a
 * view that does not exist: one answer, one cost, each counted (three
 * lock the token: max-failed-logins 3). */
Test(oracle, login_user_other_or_unknown_view_same_work)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_RV rv_wrong, rv_other, rv_unknown;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    work wrong, other, unknown;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    wrong = login_user_work(s, "wrong-pin-1", "alice", &rv_wrong);
    other = login_user_work(s, ALICE_PIN, "bob", &rv_other);
    unknown = login_user_work(s, ALICE_PIN, "mallory", &rv_unknown);
    cr_assert_eq(rv_wrong, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_other, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_unknown, CKR_PIN_INCORRECT);
    cr_assert_eq(wrong.kdf, 1);
    cr_assert_eq(wrong.unseal, 0, "nothing is opened for a PIN that selects no view");
    assert_same_work(wrong, other, "wrong PIN / another view's name");
    assert_same_work(wrong, unknown, "wrong PIN / an unknown name");
    cr_assert_eq(entry_login_user(s, CKU_USER, (CK_UTF8CHAR_PTR)ALICE_PIN, strlen(ALICE_PIN),
                                  (CK_UTF8CHAR_PTR) "alice", 5),
                 CKR_PIN_LOCKED, "each of the three was counted");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A view enrolled in the catalog but since removed from the policy (carol,
 * whose group credential is sealed in the catalog): its
 * PIN does exactly a wrong PIN's work (one Argon2id run, the same catalog
 * transactions, nothing unsealed) and gets the same answer. Before, its
 * sealed credentials were opened before the engine found the view gone. */
/* Writes the identity policy without the view carol (still enrolled in
 * the catalog, her group credential sealed there). */
static void remove_carol(void)
{
    const char *carol = strstr(identity_policy, "    <view id=\"carol\"");
    const char *end = carol != NULL ? strchr(carol, '\n') : NULL;
    char policy[sizeof(identity_policy)];

    cr_assert_not_null(end);
    snprintf(policy, sizeof(policy), "%.*s%s", (int)(carol - identity_policy), identity_policy,
             end + 1);
    cr_assert_eq(world_policy(&w, policy), 0);
}

Test(oracle, removed_views_pin_same_work_as_wrong_pin)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_RV rv_wrong, rv_carol;

    remove_carol();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    work wrong = login_work(p11, s, CKU_USER, "wrong-pin-1", &rv_wrong);
    work removed = login_work(p11, s, CKU_USER, CAROL_PIN, &rv_carol);
    cr_assert_eq(rv_wrong, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_carol, CKR_PIN_INCORRECT);
    cr_assert_eq(wrong.kdf, 1);
    cr_assert_eq(removed.unseal, 0, "the removed view's credentials stay sealed");
    assert_same_work(wrong, removed, "wrong PIN / removed view's PIN");
    /* C_LoginUser naming the removed view, with its PIN: the same. */
    removed = login_user_work(s, CAROL_PIN, "carol", &rv_carol);
    cr_assert_eq(rv_carol, CKR_PIN_INCORRECT);
    cr_assert_eq(removed.unseal, 0);
    assert_same_work(wrong, removed, "wrong PIN / C_LoginUser of the removed view");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* C_SetPIN(old, new) on s; its answer in *rv and its cost. */
static work set_pin_work(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *old,
                         const char *new_pin, CK_RV *rv)
{
    work before = work_now(), after;

    *rv = p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)old, strlen(old), (CK_UTF8CHAR_PTR)new_pin,
                        strlen(new_pin));
    after = work_now();
    return (work){after.kdf - before.kdf, after.unseal - before.unseal, after.txn - before.txn};
}

/* What a PIN change could alter in the catalog: the views' tags, the
 * sealed credentials and provisioned PINs, the audit trail (malloc). */
static char *catalog_secrets(void)
{
    char *out = NULL;

    cr_assert_eq(world_sh_out(&out,
                              "sqlite3 '%s' 'SELECT name, hex(tag) FROM views ORDER BY id;"
                              " SELECT layer, hex(nonce), hex(sealed) FROM creds ORDER BY rowid;"
                              " SELECT hex(user_pin_sealed), hex(so_pin_sealed) FROM provisioned"
                              " ORDER BY id; SELECT count(*) FROM audit'",
                              w.catalog),
                 0);
    return out;
}

/* C_SetPIN in a public session with the old PIN of a removed view (carol:
 * gone from the policy, her tag and sealed group credential still in the
 * catalog) is a wrong PIN: CKR_PIN_INCORRECT after a wrong PIN's work
 * (nothing unsealed), the guess counted, the catalog unchanged. Before,
 * carol's credential was re-sealed under the new PIN and the call
 * answered CKR_OK. */
Test(oracle, set_pin_removed_views_pin_same_work_as_wrong_pin)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_TOKEN_INFO info;
    CK_RV rv_wrong, rv_carol;
    char *before, *after;

    remove_carol();
    before = catalog_secrets();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    work wrong = set_pin_work(p11, s, "wrong-pin-1", "carol-new-1", &rv_wrong);
    work removed = set_pin_work(p11, s, CAROL_PIN, "carol-new-2", &rv_carol);
    cr_assert_eq(rv_wrong, CKR_PIN_INCORRECT);
    cr_assert_eq(rv_carol, CKR_PIN_INCORRECT, "a removed view's PIN changed: 0x%lx", rv_carol);
    cr_assert_eq(removed.unseal, 0, "the removed view's credentials stay sealed");
    assert_same_work(wrong, removed, "wrong PIN / removed view's PIN");
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_FINAL_TRY, "both guesses counted");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    after = catalog_secrets();
    cr_assert_str_eq(after, before, "the catalog changed");
    free(before);
    free(after);
    /* carol back in the policy: her old PIN still opens her view. */
    cr_assert_eq(world_policy(&w, identity_policy), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The identity policy with public-view="bob" (only the lazy layer, so the
 * SO may C_InitPIN it) and an SO PIN set. */
static void public_bob_with_so(void)
{
    const char *at = strstr(identity_policy, "max-failed-logins=");
    char policy[sizeof(identity_policy) + 64];

    cr_assert_not_null(at);
    snprintf(policy, sizeof(policy), "%.*spublic-view=\"bob\" %s", (int)(at - identity_policy),
             identity_policy, at);
    cr_assert_eq(world_policy(&w, policy), 0);
    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
}

/* Makes call (a PIN-taking call, evaluated once) and asserts that it
 * answered CKR_PIN_LOCKED without one Argon2id run or one unseal. */
#define assert_locked_no_work(call, what)                                                          \
    do {                                                                                           \
        work before_ = work_now();                                                                 \
        CK_RV rv_ = (call);                                                                        \
        work after_ = work_now();                                                                  \
        cr_assert_eq(rv_, CKR_PIN_LOCKED, "%s: 0x%lx", what, rv_);                                 \
        cr_assert_eq(after_.kdf - before_.kdf, 0, "%s: a PIN was evaluated", what);                \
        cr_assert_eq(after_.unseal - before_.unseal, 0, "%s: something was opened", what);         \
    } while (0)

static CK_RV set_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *old,
                     const char *new_pin)
{
    return p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)old, strlen(old), (CK_UTF8CHAR_PTR)new_pin,
                         strlen(new_pin));
}

/* A locked counter stops every call that takes a PIN before Argon2id
 * runs, the right PIN included: C_Login (user, context-specific, SO),
 * C_LoginUser, C_SetPIN in a user, a public and an SO session, C_InitPIN.
 * The users' lock does not stop the SO's login, nor the SO's lock the
 * users'. */
Test(oracle, locked_counters_stop_every_pin_call_before_any_work)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "g-ec", 4}};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE key;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;

    public_bob_with_so();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, s, t, 2, &key, 1), 1);
    cr_assert_eq(p11->C_SignInit(s, &mech, key), CKR_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(p11->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR) "wrong-pin-c", 11),
                     CKR_PIN_INCORRECT);
    }
    /* The users' counter is locked: logged in, */
    assert_locked_no_work(
        p11->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)CAROL_PIN, strlen(CAROL_PIN)),
        "C_Login(CKU_CONTEXT_SPECIFIC)");
    assert_locked_no_work(set_pin(p11, s, CAROL_PIN, "carol-new-1"), "C_SetPIN (user session)");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    /* not logged in, */
    assert_locked_no_work(login(p11, s, CAROL_PIN), "C_Login(CKU_USER)");
    assert_locked_no_work(entry_login_user(s, CKU_USER, (CK_UTF8CHAR_PTR)CAROL_PIN,
                                           strlen(CAROL_PIN), (CK_UTF8CHAR_PTR) "carol", 5),
                          "C_LoginUser");
    assert_locked_no_work(set_pin(p11, s, BOB_PIN, "bob-new-pin-1"), "C_SetPIN (public session)");
    /* and as the SO, whose own counter is not locked. */
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)), CKR_OK);
    assert_locked_no_work(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "bob-new-pin-1", 13), "C_InitPIN");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(set_pin(p11, s, "wrong-so-pin", "new-so-pin-1"), CKR_PIN_INCORRECT);
    }
    /* The SO's counter is locked too. */
    assert_locked_no_work(set_pin(p11, s, SO_PIN, "new-so-pin-1"), "C_SetPIN (SO session)");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    assert_locked_no_work(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)),
                          "C_Login(CKU_SO)");
    /* C_InitToken compares no PIN, locked or not. */
    work before = work_now();
    cr_assert_eq(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN),
                                  (CK_UTF8CHAR_PTR) "Strata                          "),
                 CKR_FUNCTION_NOT_SUPPORTED);
    cr_assert_eq(work_now().kdf, before.kdf, "C_InitToken evaluated a PIN");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(strata_cli("", "unlock --token Strata --so"), 0);
    cr_assert_eq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK, "nothing changed while locked");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK, "nothing changed while locked");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
