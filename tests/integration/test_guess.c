/*
 * test_guess.c - every PIN guess is counted and bounded (engine/guess.c,
 * engine/login.c, storage/failures.c; issue 12, items 1-6): C_SetPIN
 * collisions, CKU_CONTEXT_SPECIFIC under the lockout, 32 processes in
 * lock-step, an unwritable catalog (read-only file; a full or read-only
 * tmpfs when run as root), NULL PINs, the SO's own counter; a right login
 * clears no failure, so wrong and right PINs alternated from many
 * processes stay bounded; failures expire one per failed-login-recovery
 * seconds, and a clock set back expires nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identity_world.h"

TestSuite(guess, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

#define LIMIT 3 /* max-failed-logins of identity_policy */

static CK_RV set_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *old, const char *new)
{
    return p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)old, strlen(old), (CK_UTF8CHAR_PTR) new, strlen(new));
}

static CK_RV so_login(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_RV context_login(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_FLAGS flags_of(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot)
{
    CK_TOKEN_INFO info;

    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    return info.flags;
}

/* The catalog's counter column (failed_logins or so_failed_logins), read
 * with the sqlite3 command. */
static unsigned counter(const char *column)
{
    char *out = NULL;
    unsigned n;

    cr_assert_eq(world_sh_out(&out, "sqlite3 '%s' 'SELECT %s FROM tokens WHERE label = \"Strata\"'",
                              w.catalog, column),
                 0);
    n = (unsigned)strtoul(out, NULL, 10);
    free(out);
    return n;
}

/* Item 5: a NULL PIN is CKR_ARGUMENTS_BAD whatever its length, for every
 * call that takes a PIN, and counts nothing (ten of them used to lock the
 * token for everyone). */
Test(guess, null_pin_is_arguments_bad_and_not_counted)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    for (int i = 0; i < 10; i++) {
        cr_assert_eq(p11->C_Login(s, CKU_USER, NULL, 0), CKR_ARGUMENTS_BAD);
        cr_assert_eq(p11->C_Login(s, CKU_USER, NULL, 8), CKR_ARGUMENTS_BAD);
        cr_assert_eq(p11->C_Login(s, CKU_SO, NULL, 0), CKR_ARGUMENTS_BAD);
        cr_assert_eq(p11->C_Login(s, CKU_CONTEXT_SPECIFIC, NULL, 0), CKR_ARGUMENTS_BAD);
        cr_assert_eq(p11->C_SetPIN(s, NULL, 0, (CK_UTF8CHAR_PTR) "new-pin-12", 10),
                     CKR_ARGUMENTS_BAD);
        cr_assert_eq(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)BOB_PIN, strlen(BOB_PIN), NULL, 0),
                     CKR_ARGUMENTS_BAD);
    }
    cr_assert_eq(flags_of(p11, slot) & (CKF_USER_PIN_COUNT_LOW | CKF_SO_PIN_COUNT_LOW), 0);
    cr_assert_eq(counter("failed_logins"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Item 1: C_SetPIN's new PIN is compared with every other view's, so each
 * change is a counted guess; a collision answers CKR_PIN_INCORRECT (not
 * CKR_PIN_INVALID, which v2.40 keeps for invalid characters) and the
 * token locks like after wrong logins. Logged in as the pseudonym (bob),
 * at most LIMIT candidates are ever evaluated. */
Test(guess, set_pin_collisions_are_counted_and_lock)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    const char *candidates[] = {"guess-pin-1", ALICE_PIN,     "guess-pin-2", CAROL_PIN,
                                "guess-pin-3", "guess-pin-4", "guess-pin-5", "guess-pin-6"};
    const char *current = BOB_PIN;
    int evaluated = 1; /* the first collision below: a right login clears nothing */

    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(set_pin(p11, s, BOB_PIN, ALICE_PIN), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, "a collision counts");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        CK_RV rv = set_pin(p11, s, current, candidates[i]);
        cr_assert(rv == CKR_OK || rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED,
                  "candidate %zu: 0x%lx", i, rv);
        if (rv != CKR_PIN_LOCKED) {
            evaluated++;
        }
        if (rv == CKR_OK) {
            current = candidates[i];
        }
    }
    cr_assert_eq(evaluated, LIMIT, "%d candidates evaluated", evaluated);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_LOCKED);
    cr_assert_eq(counter("failed_logins"), LIMIT);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, current), CKR_PIN_LOCKED);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "alice's PIN was not changed");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK, "carol's PIN was not changed");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Alice logged in with an ECDSA signature begun with the group's key. */
static CK_FUNCTION_LIST *alice_signing(CK_SLOT_ID *slot, CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST *p11 = strata(slot);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "g-ec", 4}};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE key;

    *s = open_rw(p11, *slot);
    cr_assert_eq(login(p11, *s, ALICE_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, *s, t, 2, &key, 1), 1);
    cr_assert_eq(p11->C_SignInit(*s, &mech, key), CKR_OK);
    return p11;
}

/* Item 2: CKU_CONTEXT_SPECIFIC counts its wrong PINs and honours the
 * lockout: once locked, every login answers CKR_PIN_LOCKED, the right PIN
 * included, and no further PIN is evaluated. */
Test(guess, context_specific_is_counted_and_locked)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = alice_signing(&slot, &s);

    cr_assert_eq(context_login(p11, s, "wrong-pin-1"), CKR_PIN_INCORRECT);
    cr_assert_eq(context_login(p11, s, BOB_PIN), CKR_PIN_INCORRECT, "another view's PIN");
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY);
    cr_assert_eq(context_login(p11, s, CAROL_PIN), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_LOCKED);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(context_login(p11, s, "wrong-pin-x"), CKR_PIN_LOCKED, "attempt %d", i);
    }
    cr_assert_eq(context_login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(counter("failed_logins"), LIMIT, "nothing evaluated past the limit");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A right context-specific PIN gives its guess back; the count of earlier
 * failures stays (only C_Login clears it). */
Test(guess, context_specific_right_pin_gives_its_guess_back)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = alice_signing(&slot, &s);
    CK_RV rv;

    cr_assert_eq(context_login(p11, s, "wrong-pin-1"), CKR_PIN_INCORRECT);
    rv = context_login(p11, s, ALICE_PIN);
    cr_assert_neq(rv, CKR_PIN_INCORRECT, "0x%lx", rv);
    cr_assert_neq(rv, CKR_PIN_LOCKED, "0x%lx", rv);
    cr_assert_eq(counter("failed_logins"), 1);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---------------------------------------------------------------------
 * Item 3: 32 processes in lock-step
 * ------------------------------------------------------------------ */

#define RACERS 32

/* A racer's work once every racer is ready: returns its exit status. */
typedef int (*race_fn)(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id);

/* Runs n processes in lock-step: each loads its own module instance,
 * opens a session and runs setup (may be NULL; a non-zero answer ends the
 * racer with status 98), then all run fn at once. Their exit statuses
 * (each must exit normally) go to status[]. */
static void lockstep_setup(int n, race_fn setup, race_fn fn, int *status)
{
    int ready[2], go[2];
    pid_t pids[RACERS];
    char c = 'r';

    cr_assert_leq(n, RACERS);
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            CK_SLOT_ID slot;
            CK_FUNCTION_LIST *p11 = strata(&slot);
            CK_SESSION_HANDLE s = open_rw(p11, slot);
            close(go[1]);
            if (setup != NULL && setup(p11, s, i) != 0) {
                _exit(98);
            }
            if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 0) {
                _exit(99);
            }
            int rc = fn(p11, s, i);
            p11->C_Finalize(NULL);
            _exit(rc);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(read(ready[0], &c, 1), 1, "racer %d not ready", i);
    }
    close(go[1]); /* every racer's read returns: go */
    for (int i = 0; i < n; i++) {
        int st = 0;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st), "racer %d: status %d", i, st);
        status[i] = WEXITSTATUS(st);
    }
    close(ready[0]);
}

static void lockstep(int n, race_fn fn, int *status)
{
    lockstep_setup(n, NULL, fn, status);
}

/* The bits of the i-th of a racer's two answers: 1 << 2i when the PIN was
 * evaluated (CKR_PIN_INCORRECT), 1 << (2i + 1) when locked out, 16 for
 * any other answer. */
static int answer_bits(CK_RV rv, int i)
{
    return rv == CKR_PIN_INCORRECT ? 1 << (2 * i) : rv == CKR_PIN_LOCKED ? 1 << (2 * i + 1) : 16;
}

/* Two wrong PINs: bit 2i set when the i-th was evaluated
 * (CKR_PIN_INCORRECT), bit 2i+1 when locked out; 16 for any other answer. */
static int two_wrong_pins(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    char pin[32];
    int bits = 0;

    for (int i = 0; i < 2; i++) {
        snprintf(pin, sizeof(pin), "racer-%02d-%d", id, i);
        CK_RV rv = login(p11, s, pin);
        bits |= answer_bits(rv, i);
    }
    return bits;
}

/* At most max-failed-logins wrong PINs are evaluated, whatever the number
 * of processes racing: the guess is reserved before Argon2id runs. */
Test(guess, racing_processes_never_pass_the_limit)
{
    int status[RACERS];
    int evaluated = 0, locked = 0;

    lockstep(RACERS, two_wrong_pins, status);
    for (int i = 0; i < RACERS; i++) {
        cr_assert_lt(status[i], 16, "racer %d: an answer other than incorrect/locked", i);
        evaluated += (status[i] & 1) + ((status[i] >> 2) & 1);
        locked += ((status[i] >> 1) & 1) + ((status[i] >> 3) & 1);
    }
    cr_assert_eq(evaluated, LIMIT, "%d wrong PINs evaluated, %d locked out", evaluated, locked);
    cr_assert_eq(counter("failed_logins"), LIMIT);

    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* C_LoginUser (PKCS#11 3.0) of the module this process loaded, reached
 * without the 3.0 headers (this file uses p11-kit's 2.40 one): the 3.0
 * function list begins with the 2.40 list, then C_GetInterfaceList,
 * C_GetInterface and C_LoginUser. */
typedef CK_RV (*login_user_fn)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG,
                               CK_UTF8CHAR_PTR, CK_ULONG);
typedef struct {
    CK_UTF8CHAR_PTR name;
    void *list;
    CK_FLAGS flags;
} interface_3_0;
typedef struct {
    CK_FUNCTION_LIST v2_40;
    void *get_interface_list, *get_interface;
    login_user_fn login_user;
} list_3_0_head;

static CK_RV login_user(CK_SESSION_HANDLE s, const char *pin, const char *view)
{
    CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, interface_3_0 **, CK_FLAGS);
    void *module = dlopen(world_strata_module(), RTLD_NOW | RTLD_LOCAL);
    CK_VERSION v = {3, 0};
    interface_3_0 *iface = NULL;

    cr_assert_not_null(module);
    *(void **)&get = dlsym(module, "C_GetInterface");
    cr_assert_not_null(get);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11", &v, &iface, 0), CKR_OK);
    return ((list_3_0_head *)iface->list)
        ->login_user(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin), (CK_UTF8CHAR_PTR)view,
                     strlen(view));
}

/* The calls that take a user PIN; racer id makes call id % USER_CALLS. */
enum {
    CALL_LOGIN,
    CALL_LOGIN_USER,
    CALL_SET_PIN_PUBLIC,
    CALL_SET_PIN_USER,
    CALL_CONTEXT,
    USER_CALLS
};

/* A racer's setup: logged in with carol's PIN (her view needs no
 * provisioning) for C_SetPIN in a user session, and a signature begun with
 * her key for a context-specific login. 0 when ready. */
static int user_call_setup(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "g-ec", 4}};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE key;
    CK_ULONG n = 0;

    if (id % USER_CALLS != CALL_SET_PIN_USER && id % USER_CALLS != CALL_CONTEXT) {
        return 0;
    }
    if (login(p11, s, CAROL_PIN) != CKR_OK) {
        return 1;
    }
    if (id % USER_CALLS == CALL_SET_PIN_USER) {
        return 0;
    }
    if (p11->C_FindObjectsInit(s, t, 2) != CKR_OK || p11->C_FindObjects(s, &key, 1, &n) != CKR_OK ||
        p11->C_FindObjectsFinal(s) != CKR_OK || n != 1) {
        return 2;
    }
    return p11->C_SignInit(s, &mech, key) == CKR_OK ? 0 : 3;
}

/* One wrong user PIN given to racer id's call. */
static CK_RV wrong_user_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id, const char *pin)
{
    switch (id % USER_CALLS) {
    case CALL_LOGIN:
        return login(p11, s, pin);
    case CALL_LOGIN_USER:
        return login_user(s, pin, "carol");
    case CALL_CONTEXT:
        return context_login(p11, s, pin);
    default: /* C_SetPIN: the old PIN is the guess */
        return set_pin(p11, s, pin, "racer-new-pin");
    }
}

/* two_wrong_pins through racer id's call. */
static int two_wrong_user_pins(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    char pin[32];
    int bits = 0;

    for (int i = 0; i < 2; i++) {
        snprintf(pin, sizeof(pin), "racer-%02d-%d", id, i);
        CK_RV rv = wrong_user_pin(p11, s, id, pin);
        bits |= answer_bits(rv, i);
    }
    return bits;
}

/* Adds up racers' statuses (two_wrong_pins' bits): how many PINs were
 * evaluated. Fails on any other answer. */
static int evaluated_of(const int *status, int n)
{
    int evaluated = 0;

    for (int i = 0; i < n; i++) {
        cr_assert_lt(status[i], 16, "racer %d: status %d (not incorrect/locked)", i, status[i]);
        evaluated += (status[i] & 1) + ((status[i] >> 2) & 1);
    }
    return evaluated;
}

/* The same limit, whatever call the processes guess through: C_Login,
 * C_LoginUser, C_SetPIN in public and user sessions and context-specific
 * logins, all at once, share the users' counter and evaluate exactly
 * max-failed-logins wrong PINs between them. */
Test(guess, racing_calls_of_every_kind_never_pass_the_limit)
{
    int status[RACERS];
    int evaluated;

    lockstep_setup(RACERS, user_call_setup, two_wrong_user_pins, status);
    evaluated = evaluated_of(status, RACERS);
    cr_assert_eq(evaluated, LIMIT, "%d wrong PINs evaluated", evaluated);
    cr_assert_eq(counter("failed_logins"), LIMIT);
}

/* ---------------------------------------------------------------------
 * Item 6: the SO PIN has its own counter
 * ------------------------------------------------------------------ */

/* An SO PIN set (strata enroll --so), then the module and a R/W session. */
static CK_FUNCTION_LIST *so_enrolled(CK_SLOT_ID *slot, CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST *p11;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    p11 = strata(slot);
    *s = open_rw(p11, *slot);
    return p11;
}

Test(guess, so_pin_counted_and_locked_apart)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = so_enrolled(&slot, &s);

    cr_assert_eq(so_login(p11, s, "wrong-so-1"), CKR_PIN_INCORRECT);
    cr_assert_eq(flags_of(p11, slot) & (CKF_SO_PIN_COUNT_LOW | CKF_USER_PIN_COUNT_LOW),
                 CKF_SO_PIN_COUNT_LOW);
    cr_assert_eq(so_login(p11, s, "wrong-so-2"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_FINAL_TRY);
    cr_assert_eq(so_login(p11, s, "wrong-so-3"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_LOCKED);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(so_login(p11, s, "wrong-so-x"), CKR_PIN_LOCKED);
    }
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(counter("so_failed_logins"), LIMIT);
    /* The users are not locked out by the SO's lockout. */
    cr_assert_eq(flags_of(p11, slot) & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_LOCKED, "a user login does not unlock the SO");
    /* Recovery: the administrator with write access to the catalog. */
    cr_assert_eq(strata_cli("", "unlock --token Strata --so"), 0);
    cr_assert_eq(flags_of(p11, slot) & CKF_SO_PIN_COUNT_LOW, 0);
    cr_assert_eq(so_login(p11, s, "wrong-so-4"), CKR_PIN_INCORRECT);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_COUNT_LOW, "a right SO PIN clears nothing");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    /* And the users' lockout does not lock the SO out. */
    for (int i = 0; i < LIMIT; i++) {
        cr_assert_eq(login(p11, s, "wrong-pin-u"), CKR_PIN_INCORRECT);
    }
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(counter("failed_logins"), LIMIT, "the SO's login does not clear the users'");
}

/* Racer setup for the SO: even racers log in as the SO (right PIN) to
 * change the SO PIN; odd ones guess with C_Login(CKU_SO). */
static int so_call_setup(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    return id % 2 == 0 && so_login(p11, s, SO_PIN) != CKR_OK;
}

static int two_wrong_so_pins(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    char pin[32];
    int bits = 0;

    for (int i = 0; i < 2; i++) {
        snprintf(pin, sizeof(pin), "so-racer-%02d-%d", id, i);
        CK_RV rv = id % 2 == 0 ? set_pin(p11, s, pin, "new-so-pin-1") : so_login(p11, s, pin);
        bits |= answer_bits(rv, i);
    }
    return bits;
}

/* The SO counter holds across processes too: SO logins and SO C_SetPIN
 * at once evaluate exactly max-failed-logins wrong SO PINs, and the users'
 * counter is untouched. */
Test(guess, racing_so_guesses_never_pass_the_limit)
{
    int status[RACERS];
    int evaluated;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    lockstep_setup(RACERS, so_call_setup, two_wrong_so_pins, status);
    evaluated = evaluated_of(status, RACERS);
    cr_assert_eq(evaluated, LIMIT, "%d wrong SO PINs evaluated", evaluated);
    cr_assert_eq(counter("so_failed_logins"), LIMIT);
    cr_assert_eq(counter("failed_logins"), 0);
}

/* ---------------------------------------------------------------------
 * Item 4: fail closed when a guess cannot be recorded
 * ------------------------------------------------------------------ */

/* The strata commands that check a view's PIN, each with alice's right
 * PIN and words to follow it on standard input. */
static const struct {
    const char *input, *args;
} view_pin_commands[] = {
    {ALICE_PIN " alice-new-pin", "passwd --token Strata --view alice --pin-stdin"},
    {ALICE_PIN " 2222", "enroll --token Strata --view alice --layer group --pin-stdin --no-verify"},
    {ALICE_PIN, "provision --token Strata --view alice --pin-stdin"},
    {ALICE_PIN, "migrate --token Strata --view alice --from group --to personal --dry-run "
                "--pin-stdin"},
};

#define VIEW_PIN_COMMANDS (sizeof(view_pin_commands) / sizeof(view_pin_commands[0]))

/* A catalog file without write permission opens read-only: no guess can
 * be recorded, so no PIN is tried, the right one included. */
Test(guess, read_only_catalog_refuses_every_login)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;

    p11 = strata(&slot); /* the slot ID is assigned */
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(chmod(w.catalog, 0400), 0);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(login(p11, s, "wrong-pin-r"), CKR_DEVICE_ERROR);
    }
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_DEVICE_ERROR);
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)),
                 CKR_DEVICE_ERROR);
    cr_assert_eq(set_pin(p11, s, BOB_PIN, "bob-new-pin"), CKR_DEVICE_ERROR);
    cr_assert_eq(login_user(s, ALICE_PIN, "alice"), CKR_DEVICE_ERROR);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* The strata commands do not try a PIN they cannot count either. */
    for (size_t i = 0; i < VIEW_PIN_COMMANDS; i++) {
        char *out = NULL;
        int rc = world_sh_out(&out, "printf '%%s\\n' wrong-pin-r 2222 | '%s' %s 2>&1",
                              world_strata_cli(), view_pin_commands[i].args);
        cr_assert_neq(rc, 0, "strata %s: %s", view_pin_commands[i].args, out);
        cr_assert_null(strstr(out, "not the PIN"), "strata %s tried the PIN: %s",
                       view_pin_commands[i].args, out);
        free(out);
    }
    cr_assert_eq(counter("failed_logins"), 0);
    cr_assert_eq(chmod(w.catalog, 0600), 0);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static char ram[PATH_MAX]; /* the tmpfs mount point, "" when none */

static void ram_teardown(void)
{
    if (ram[0] != '\0') {
        (void)umount2(ram, MNT_DETACH);
    }
    identity_teardown();
}

/* Mounts a tmpfs of size KiB at <world>/ram and moves the catalog there
 * (the policy follows). Skips the test, with the reason, when it cannot. */
static void catalog_on_tmpfs(unsigned kib)
{
    char opts[64];

    if (geteuid() != 0) {
        cr_skip_test("not root: cannot mount a tmpfs (CI runs this as root)");
    }
    cr_assert_lt(snprintf(ram, sizeof(ram) - 16, "%.4000s/ram", w.dir), (int)sizeof(ram) - 16);
    cr_assert_eq(mkdir(ram, 0700), 0);
    snprintf(opts, sizeof(opts), "size=%uk,mode=0700", kib);
    if (mount("tmpfs", ram, "tmpfs", 0, opts) != 0) {
        int e = errno;
        ram[0] = '\0';
        cr_skip_test("cannot mount a tmpfs: %s", strerror(e));
    }
    cr_assert_eq(world_sh("cp '%s' '%s/catalog.db'", w.catalog, ram), 0);
    cr_assert_lt(snprintf(w.catalog, sizeof(w.catalog), "%.4000s/catalog.db", ram),
                 (int)sizeof(w.catalog));
    cr_assert_eq(world_policy(&w, identity_policy), 0);
}

/* A full filesystem: wrong PINs are either counted or refused, never
 * evaluated unrecorded, and the right PIN does not log in while no guess
 * can be written; with space back, it does. */
Test(guess, full_disk_fails_closed, .fini = ram_teardown)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    int evaluated = 0, refused = 0;
    CK_RV rv;

    catalog_on_tmpfs(1024);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    (void)world_sh("dd if=/dev/zero of='%s/fill' bs=4k >/dev/null 2>&1", ram);
    (void)world_sh("dd if=/dev/zero of='%s/fill2' bs=512 >/dev/null 2>&1", ram);
    for (int i = 0; i < 2 * LIMIT; i++) {
        rv = login(p11, s, "wrong-pin-f");
        cr_assert(rv == CKR_PIN_INCORRECT || rv == CKR_DEVICE_ERROR || rv == CKR_PIN_LOCKED,
                  "0x%lx", rv);
        evaluated += rv == CKR_PIN_INCORRECT;
        refused += rv == CKR_DEVICE_ERROR;
    }
    cr_assert_gt(refused, 0, "the disk was not full (%d evaluated)", evaluated);
    rv = login(p11, s, ALICE_PIN);
    cr_assert(rv == CKR_DEVICE_ERROR || rv == CKR_PIN_LOCKED, "right PIN on a full disk: 0x%lx",
              rv);
    cr_assert_eq(world_sh("rm -f '%s/fill' '%s/fill2'", ram, ram), 0);
    cr_assert_eq(counter("failed_logins"), (unsigned)evaluated, "every evaluated PIN was recorded");
    cr_assert_eq(login(p11, s, ALICE_PIN), evaluated >= LIMIT ? CKR_PIN_LOCKED : CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Adds rv, the answer to a wrong PIN on a full disk, to *evaluated
 * (CKR_PIN_INCORRECT) or *refused (CKR_DEVICE_ERROR); any other answer
 * but CKR_PIN_LOCKED fails the test. */
static void tally(CK_RV rv, const char *what, int *evaluated, int *refused)
{
    cr_assert(rv == CKR_PIN_INCORRECT || rv == CKR_DEVICE_ERROR || rv == CKR_PIN_LOCKED,
              "%s on a full disk: 0x%lx", what, rv);
    *evaluated += rv == CKR_PIN_INCORRECT;
    *refused += rv == CKR_DEVICE_ERROR;
}

/* Every call that takes a PIN, on a full filesystem: a context-specific
 * login and C_SetPIN while logged in, C_Login, C_LoginUser and C_SetPIN
 * in a public session, C_Login(CKU_SO): each wrong PIN is either counted
 * or refused unevaluated, never evaluated unrecorded; with space back,
 * each counter holds exactly the PINs evaluated. */
Test(guess, full_disk_every_pin_call_fails_closed, .fini = ram_teardown)
{
    static const int logged_in[] = {CALL_CONTEXT, CALL_SET_PIN_USER};
    static const int public[] = {CALL_LOGIN, CALL_LOGIN_USER, CALL_SET_PIN_PUBLIC};
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    int evaluated = 0, refused = 0, so_evaluated = 0;
    CK_RV rv;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    catalog_on_tmpfs(1024);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(user_call_setup(p11, s, CALL_CONTEXT), 0);
    (void)world_sh("dd if=/dev/zero of='%s/fill' bs=4k >/dev/null 2>&1", ram);
    (void)world_sh("dd if=/dev/zero of='%s/fill2' bs=512 >/dev/null 2>&1", ram);
    for (int i = 0; i < LIMIT; i++) {
        for (size_t k = 0; k < sizeof(logged_in) / sizeof(logged_in[0]); k++) {
            rv = wrong_user_pin(p11, s, logged_in[k], "wrong-pin-f");
            tally(rv, "logged in", &evaluated, &refused);
        }
    }
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    for (int i = 0; i < LIMIT; i++) {
        for (size_t k = 0; k < sizeof(public) / sizeof(public[0]); k++) {
            rv = wrong_user_pin(p11, s, public[k], "wrong-pin-f");
            tally(rv, "public", &evaluated, &refused);
        }
        tally(so_login(p11, s, "wrong-so-pin"), "C_Login(CKU_SO)", &so_evaluated, &refused);
    }
    cr_assert_gt(refused, 0, "the disk was not full (%d evaluated)", evaluated);
    rv = login(p11, s, CAROL_PIN);
    cr_assert(rv == CKR_DEVICE_ERROR || rv == CKR_PIN_LOCKED, "right PIN on a full disk: 0x%lx",
              rv);
    cr_assert_eq(world_sh("rm -f '%s/fill' '%s/fill2'", ram, ram), 0);
    cr_assert_eq(counter("failed_logins"), (unsigned)evaluated, "every evaluated PIN was recorded");
    cr_assert_eq(counter("so_failed_logins"), (unsigned)so_evaluated,
                 "every evaluated SO PIN was recorded");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A catalog on a read-only filesystem: SQLite cannot open a WAL catalog
 * there, so C_Initialize fails (CKR_GENERAL_ERROR, as for any catalog that
 * does not open); should it open, no login may get through. (A guard, not
 * a regression test: this held before issue 12 too.) */
Test(guess, read_only_filesystem_refuses_every_login, .fini = ram_teardown)
{
    CK_SLOT_ID slot, slots[2];
    CK_ULONG n = 2;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    catalog_on_tmpfs(1024);
    p11 = strata(&slot); /* the slot ID is assigned */
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(mount(NULL, ram, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0, "%s", strerror(errno));
    rv = p11->C_Initialize(NULL);
    if (rv == CKR_OK) {
        cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
        s = open_rw(p11, slots[0]);
        cr_assert_eq(login(p11, s, "wrong-pin-o"), CKR_DEVICE_ERROR);
        cr_assert_eq(login(p11, s, ALICE_PIN), CKR_DEVICE_ERROR);
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    } else {
        cr_assert_eq(rv, CKR_GENERAL_ERROR);
    }
    cr_assert_eq(mount(NULL, ram, NULL, MS_REMOUNT, NULL), 0, "%s", strerror(errno));
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* strata unlock checks the SO PIN through the same counter: a wrong one
 * counts, and a locked SO PIN is not tried until strata unlock --so. */
Test(guess, strata_unlock_counts_the_so_pin)
{
    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    for (int i = 0; i < LIMIT; i++) {
        cr_assert_neq(strata_cli("wrong-so-pin", "unlock --token Strata --pin-stdin"), 0);
    }
    cr_assert_eq(counter("so_failed_logins"), LIMIT);
    cr_assert_neq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0, "SO PIN locked");
    cr_assert_eq(counter("so_failed_logins"), LIMIT, "a locked SO PIN is not tried");
    cr_assert_eq(strata_cli("", "unlock --token Strata --so"), 0);
    cr_assert_eq(counter("so_failed_logins"), 0);
    cr_assert_eq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0);
    cr_assert_eq(counter("so_failed_logins"), 0, "a right SO PIN gives its own guess back");
}

/* ---------------------------------------------------------------------
 * A right PIN clears nothing; failures expire with time instead
 * ------------------------------------------------------------------ */

/* One round of the attack, in a fresh process: a wrong guess for another
 * view's PIN, then a login with the PIN the attacker holds (which used to
 * clear the counter). Exits with bit 0 set when the guess was evaluated
 * (CKR_PIN_INCORRECT) and bit 1 when the own login worked. */
static void alternate_round(int round)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char pin[32];
    int bits = 0;

    snprintf(pin, sizeof(pin), "guess-%02d-pin", round);
    bits |= login(p11, s, pin) == CKR_PIN_INCORRECT ? 1 : 0;
    bits |= login(p11, s, ALICE_PIN) == CKR_OK ? 2 : 0;
    p11->C_Finalize(NULL);
    _exit(bits);
}

/* Issue 12: the holder of alice's PIN alternates wrong guesses and right
 * logins, each round in its own process. Before, every right login
 * cleared the counter and all 12 guesses were evaluated; now at most
 * max-failed-logins are, and then alice is locked out too. */
Test(guess, alternating_wrong_and_right_pins_stay_bounded)
{
    int evaluated = 0, own_ok = 0;

    for (int round = 0; round < 12; round++) {
        int status = 0;
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            alternate_round(round);
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "round %d: status %d", round, status);
        evaluated += WEXITSTATUS(status) & 1;
        own_ok += (WEXITSTATUS(status) & 2) != 0;
    }
    cr_assert_eq(evaluated, LIMIT, "%d guesses evaluated in 12 rounds", evaluated);
    cr_assert_eq(own_ok, LIMIT - 1, "%d right logins worked", own_ok);
    cr_assert_eq(counter("failed_logins"), LIMIT);
}

/* Moves the stamp of column (failed_at, so_failed_at) by delta seconds:
 * negative, as if that much time went by; positive, as if the clock had
 * been set back by that much. */
static void shift_stamp(const char *column, long delta)
{
    cr_assert_eq(world_sh("sqlite3 '%s' 'UPDATE tokens SET %s = %s + (%ld)'", w.catalog, column,
                          column, delta),
                 0);
}

/* Locks the users' counter with LIMIT wrong PINs on s. */
static void lock_users(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s)
{
    for (int i = 0; i < LIMIT; i++) {
        cr_assert_eq(login(p11, s, "wrong-pin-l"), CKR_PIN_INCORRECT);
    }
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
}

#define RECOVERY 900 /* failed-login-recovery's default */

/* One failure expires per recovery interval (the default, 900 s, here
 * simulated by moving the stored stamp back): one more guess each time,
 * CKR_PIN_LOCKED again after it, and the token flags and strata views
 * follow. */
Test(guess, failures_expire_one_per_interval)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char *out = NULL;

    lock_users(p11, s);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_LOCKED);
    cr_assert_eq(world_sh_out(&out, "'%s' views", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "until 2"), "the lift time is shown: %s", out);
    free(out);
    shift_stamp("failed_at", -(RECOVERY - 30));
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED, "not yet");
    shift_stamp("failed_at", -60);
    cr_assert_eq(flags_of(p11, slot) & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_FINAL_TRY),
                 CKF_USER_PIN_FINAL_TRY, "one failure expired");
    cr_assert_eq(login(p11, s, "wrong-pin-m"), CKR_PIN_INCORRECT, "one guess came back");
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED, "and only one");
    shift_stamp("failed_at", -(RECOVERY + 1));
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(counter("failed_logins"), LIMIT - 1, "the right PIN cleared nothing");
    shift_stamp("failed_at", -3 * RECOVERY);
    cr_assert_eq(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, 0, "all expired");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A clock set back (the stored stamp now ahead of the clock) expires
 * nothing, however far it goes; strata unlock still clears the counter. */
Test(guess, clock_set_back_does_not_reset_the_counter)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char *out = NULL;

    lock_users(p11, s);
    shift_stamp("failed_at", 365L * 86400);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_LOCKED);
    cr_assert_eq(counter("failed_logins"), LIMIT);
    cr_assert_eq(world_sh_out(&out, "'%s' views", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "set back"), "%s", out);
    free(out);
    shift_stamp("failed_at", -(364L * 86400));
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED, "still a day ahead");
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The SO counter expires the same way, and a clock set back stops it. */
Test(guess, so_failures_expire_and_ignore_a_clock_set_back)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = so_enrolled(&slot, &s);

    for (int i = 0; i < LIMIT; i++) {
        cr_assert_eq(so_login(p11, s, "wrong-so-e"), CKR_PIN_INCORRECT);
    }
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_PIN_LOCKED);
    shift_stamp("so_failed_at", 86400);
    shift_stamp("so_failed_at", -(RECOVERY + 1));
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_PIN_LOCKED, "clock behind: nothing expires");
    shift_stamp("so_failed_at", -86400);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_FINAL_TRY);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert_eq(counter("so_failed_logins"), LIMIT - 1);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The identity policy with failed-login-recovery="1". */
static void recovery_1_setup(void)
{
    const char *at = strstr(identity_policy, "max-failed-logins=");
    char policy[sizeof(identity_policy) + 64];

    cr_assert_not_null(at);
    snprintf(policy, sizeof(policy), "%.*sfailed-login-recovery=\"1\" %s",
             (int)(at - identity_policy), identity_policy, at);
    identity_setup_policy(policy);
}

/* The real clock, with a one-second interval: after a lock, waiting two
 * seconds brings the right PIN back (before: locked until strata unlock). */
Test(guess, recovery_runs_on_the_real_clock, .init = recovery_1_setup)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_RV rv = CKR_PIN_LOCKED;

    for (int i = 0; i < LIMIT; i++) {
        (void)login(p11, s, "wrong-pin-r");
    }
    usleep(2100 * 1000);
    rv = login(p11, s, ALICE_PIN);
    cr_assert_eq(rv, CKR_OK, "0x%lx", rv);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* max-failed-logins="1": right PINs logging in together from many
 * processes hold at most one reservation at a time (guess_turn_enter), so
 * none of them finds the counter filled by the others' pending ones. */
static void limit_1_setup(void)
{
    const char *at = strstr(identity_policy, "max-failed-logins=\"3\"");
    char policy[sizeof(identity_policy) + 64];

    cr_assert_not_null(at);
    snprintf(policy, sizeof(policy), "%.*smax-failed-logins=\"1\"%s", (int)(at - identity_policy),
             identity_policy, at + strlen("max-failed-logins=\"3\""));
    identity_setup_policy(policy);
}

#define RIGHT_RACERS 8

/* Carol's (right) PIN: 0 when the login worked, 1 when locked out, 2
 * otherwise. */
static int right_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, int id)
{
    CK_RV rv = login(p11, s, CAROL_PIN);

    (void)id;
    return rv == CKR_OK ? 0 : rv == CKR_PIN_LOCKED ? 1 : 2;
}

Test(guess, right_pins_in_flight_never_lock_each_other_out, .init = limit_1_setup)
{
    int status[RIGHT_RACERS];
    int locked = 0;

    lockstep(RIGHT_RACERS, right_pin, status);
    for (int i = 0; i < RIGHT_RACERS; i++) {
        cr_assert_leq(status[i], 1, "racer %d: status %d", i, status[i]);
        locked += status[i] == 1;
    }
    cr_assert_eq(locked, 0, "%d right PINs locked out by the others' reservations", locked);
    cr_assert_eq(counter("failed_logins"), 0);
}

/* Right PINs logging in together on a token that already holds
 * failures: the reservations of the PINs in flight fill the counter for a
 * moment, and a right PIN that then finds it full waits for them to
 * settle instead of answering CKR_PIN_LOCKED (before: with 2 failures of
 * 3 recorded, all but one of 8 right logins at once were locked out; the
 * same happened to two processes changing their PINs and logging in again
 * in crash::two_processes_share_the_catalog under load). */
Test(guess, right_pins_in_flight_with_failures_recorded_never_lock_each_other_out)
{
    int status[RIGHT_RACERS];
    int locked = 0;

    cr_assert_eq(world_sh("sqlite3 '%s' 'UPDATE tokens SET failed_logins = %d,"
                          " failed_at = strftime(\"%%s\", \"now\") WHERE label = \"Strata\"'",
                          w.catalog, LIMIT - 1),
                 0);
    lockstep(RIGHT_RACERS, right_pin, status);
    for (int i = 0; i < RIGHT_RACERS; i++) {
        cr_assert_leq(status[i], 1, "racer %d: status %d", i, status[i]);
        locked += status[i] == 1;
    }
    cr_assert_eq(locked, 0, "%d right PINs locked out by the others' reservations", locked);
    cr_assert_eq(counter("failed_logins"), LIMIT - 1, "the right PINs cleared nothing");
}

/* A locked token stops every strata command that takes a view's PIN
 * before the PIN is tried, the right one included, and none of them adds
 * to the count. (strata enroll --layer used to check the PIN first and
 * count a failure after, past the limit and without a lock: it
 * re-sealed the layer's PIN on a locked token.) */
Test(guess, cli_commands_honour_the_lockout)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    lock_users(p11, s);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    for (size_t i = 0; i < VIEW_PIN_COMMANDS; i++) {
        cr_assert_neq(strata_cli(view_pin_commands[i].input, view_pin_commands[i].args), 0,
                      "strata %s worked on a locked token", view_pin_commands[i].args);
        cr_assert_eq(counter("failed_logins"), LIMIT, "strata %s", view_pin_commands[i].args);
    }
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    /* Unlocked: a wrong PIN is one counted guess, another view's PIN too. */
    cr_assert_neq(strata_cli("wrong-pin-e 2222", view_pin_commands[1].args), 0);
    cr_assert_neq(strata_cli(BOB_PIN " 2222", view_pin_commands[1].args), 0);
    cr_assert_eq(counter("failed_logins"), 2);
    cr_assert_eq(strata_cli(view_pin_commands[1].input, view_pin_commands[1].args), 0);
    cr_assert_eq(counter("failed_logins"), 2, "a right PIN gives its own guess back");
}

/* strata processes guessing at once through every command that checks a
 * view's PIN evaluate exactly max-failed-logins PINs between them; the
 * others are told the token is locked. */
Test(guess, cli_racing_processes_never_pass_the_limit)
{
    char *out = NULL;
    int evaluated, locked;

    cr_assert_eq(
        world_sh_out(&out,
                     "cd '%s' && for i in $(seq 0 15); do"
                     " case $((i %% 4)) in"
                     " 0) a='passwd --token Strata --view alice';;"
                     " 1) a='enroll --token Strata --view alice --layer group --no-verify';;"
                     " 2) a='provision --token Strata --view alice';;"
                     " 3) a='migrate --token Strata --view alice --from group --to personal"
                     " --dry-run';;"
                     " esac;"
                     " printf 'wrong-pin-%%02d\\nnew-pin-1234\\n' $i |"
                     " '%s' $a --pin-stdin >/dev/null 2>err.$i & done; wait;"
                     " echo $(cat err.* | grep -c 'not the PIN')"
                     " $(cat err.* | grep -c 'is locked')",
                     w.dir, world_strata_cli()),
        0);
    cr_assert_eq(sscanf(out, "%d %d", &evaluated, &locked), 2, "%s", out);
    free(out);
    cr_assert_eq(evaluated, LIMIT, "%d wrong PINs evaluated, %d locked out", evaluated, locked);
    cr_assert_eq(locked, 16 - LIMIT);
    cr_assert_eq(counter("failed_logins"), LIMIT);
}
