/*
 * test_provision.c - layers/provision.c: free slots, provisioning a token,
 * repairing a half-provisioned one, and the SoftHSM2 2.6.1 behaviour the
 * design rests on (DESIGN.md "Backend facts"), measured again here.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "layers.h"
#include "world.h"

#define SO_PIN   "so-secret-1"
#define USER_PIN "user-secret-1"

static world w;
static layers_module *m;

static void setup(void)
{
    world_setup(&w);
    m = NULL;
    unsetenv("STRATA_TEST_FAIL_AT");
}

static void teardown(void)
{
    layers_module_unload(m);
    world_teardown(&w);
}

TestSuite(layers_provision, .init = setup, .fini = teardown);

static const char *env_path(const char *name)
{
    const char *p = getenv(name);

    cr_assert(p != NULL && *p != '\0', "%s is not set (run through meson test)", name);
    return p;
}

static void load_softhsm(void)
{
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
}

/* The test backend with free_slots spare slots. */
static void configure_test_backend(int free_slots)
{
    char conf[PATH_MAX + 16];
    FILE *f;

    snprintf(conf, sizeof(conf), "%s/backend.conf", w.dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "free-slots = %d\n", free_slots);
    cr_assert_eq(fclose(f), 0);
    setenv("STRATA_TEST_BACKEND_CONF", conf, 1);
}

static void load_test_backend(int free_slots)
{
    configure_test_backend(free_slots);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND"), &m, NULL, 0), CKR_OK);
}

/* An application using the backend directly: dlopen, C_Initialize. */
static CK_FUNCTION_LIST *direct_open(const char *path, void **handle)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *funcs = NULL;

    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(*handle != NULL, "dlopen %s: %s", path, dlerror());
    get = (CK_C_GetFunctionList)dlsym(*handle, "C_GetFunctionList");
    cr_assert_not_null(get);
    cr_assert_eq(get(&funcs), CKR_OK);
    cr_assert_eq(funcs->C_Initialize(&args), CKR_OK);
    return funcs;
}

static size_t count_free_slots(void)
{
    layers_slot_info *slots = NULL;
    size_t n = 0, i, free_slots = 0;

    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        free_slots += slots[i].token_present && !slots[i].initialized;
    }
    free(slots);
    return free_slots;
}

static CK_RV provision(const char *label, char serial[17], char *err, size_t errsize)
{
    return layers_token_provision(m, label, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                  serial, err, errsize);
}

/* Provisions label, asserting success. */
static void provision_ok(const char *label, char serial[17])
{
    char err[256] = "";

    cr_assert_eq(provision(label, serial, err, sizeof(err)), CKR_OK, "%s", err);
    cr_assert_neq(serial[0], '\0');
}

/* The token named label and serial, which must be present. */
static layers_token *find_token(const char *label, const char *serial, CK_SLOT_ID *slot)
{
    layers_token *t = NULL;
    CK_SLOT_ID ignored;

    cr_assert_eq(layers_token_new(m, label, serial, &t), CKR_OK);
    cr_assert_eq(layers_token_slot(t, slot != NULL ? slot : &ignored), CKR_OK, "token %s not found",
                 label);
    return t;
}

/* Whether the token's user and SO PINs work (and a wrong one does not). */
static void assert_pins_work(layers_token *t)
{
    cr_assert_eq(layers_token_login(t, CKU_USER, "wrong-pin", 9), CKR_PIN_INCORRECT);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert_eq(layers_token_logout(t), CKR_OK);
    cr_assert_eq(layers_token_login(t, CKU_SO, SO_PIN, strlen(SO_PIN)), CKR_OK);
    cr_assert_eq(layers_token_logout(t), CKR_OK);
}

/* ---- free slots ----------------------------------------------------- */

Test(layers_provision, layers_module_free_slot_softhsm_shows_exactly_one)
{
    layers_slot_info *slots = NULL;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot = 999;
    size_t n = 0;

    load_softhsm();
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert(slots[0].token_present);
    cr_assert_not(slots[0].initialized);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK);
    cr_assert_eq(slot, slots[0].slot);
    cr_assert_eq(layers_module_functions(m)->C_GetTokenInfo(slot, &ti), CKR_OK);
    cr_assert_eq(ti.flags & CKF_TOKEN_INITIALIZED, 0);
    free(slots);
}

Test(layers_provision, layers_module_free_slot_skips_initialised_tokens)
{
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    load_softhsm();
    cr_assert_eq(count_free_slots(), 1);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK);
    cr_assert_eq(layers_module_functions(m)->C_GetTokenInfo(slot, &ti), CKR_OK);
    cr_assert_eq(ti.flags & CKF_TOKEN_INITIALIZED, 0);
}

Test(layers_provision, layers_module_free_slot_none)
{
    CK_SLOT_ID slot;

    load_test_backend(0);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_TOKEN_NOT_PRESENT);
}

Test(layers_provision, layers_module_free_slot_bad_arguments)
{
    CK_SLOT_ID slot;

    load_test_backend(1);
    cr_assert_eq(layers_module_free_slot(NULL, &slot), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_module_free_slot(m, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK);
    cr_assert_eq(slot, 2);
}

/* ---- provisioning on SoftHSM2 ----------------------------------------- */

Test(layers_provision, layers_token_provision_creates_token)
{
    char serial[17] = "", label[33], shown_serial[64], *out = NULL;
    layers_token *t;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID before, after;

    load_softhsm();
    cr_assert_eq(layers_module_free_slot(m, &before), CKR_OK);
    provision_ok("strata-work", serial);
    cr_assert_eq(strlen(serial), 16);

    /* Another process (softhsm2-util) sees the token with this serial. */
    cr_assert_eq(world_sh_out(&out, "softhsm2-util --show-slots"), 0);
    snprintf(shown_serial, sizeof(shown_serial), "Serial number:    %s", serial);
    cr_assert_not_null(strstr(out, shown_serial), "%s", out);
    cr_assert_not_null(strstr(out, "Label:            strata-work"), "%s", out);
    free(out);

    t = find_token("strata-work", serial, &after);
    cr_assert_eq(after, before); /* the token stays on the free slot's ID */
    cr_assert_eq(layers_token_info(t, &ti), CKR_OK);
    layers_field_to_string(ti.label, sizeof(ti.label), label, sizeof(label));
    cr_assert_str_eq(label, "strata-work");
    cr_assert(ti.flags & CKF_TOKEN_INITIALIZED);
    cr_assert(ti.flags & CKF_USER_PIN_INITIALIZED);
    assert_pins_work(t);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert(layers_token_logged_in(t));
    cr_assert_eq(layers_module_generation(m), 1); /* no cycle was needed */
    layers_token_free(t);
}

Test(layers_provision, layers_token_provision_label_of_32_bytes)
{
    const char *label = "12345678901234567890123456789012";
    char serial[17] = "";
    layers_token *t;

    load_softhsm();
    provision_ok(label, serial);
    t = find_token(label, serial, NULL);
    layers_token_free(t);
}

Test(layers_provision, layers_token_provision_bad_arguments)
{
    char serial[17] = "x", err[256] = "";
    CK_SLOT_ID slot;

    load_softhsm();
    cr_assert_eq(
        layers_token_provision(NULL, "a", "so-pin", 6, "pin1", 4, serial, err, sizeof(err)),
        CKR_ARGUMENTS_BAD);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(layers_token_provision(m, NULL, "so-pin", 6, "pin1", 4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "", "so-pin", 6, "pin1", 4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "123456789012345678901234567890123", "so-pin", 6, "pin1",
                                        4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "trailing ", "so-pin", 6, "pin1", 4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "a", NULL, 0, "pin1", 4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "a", "so-pin", 0, "pin1", 4, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "a", "so-pin", 6, NULL, 0, serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_provision(m, "a", "so-pin", 6, "pin1", 4, NULL, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(count_free_slots(), 1);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK); /* nothing was initialised */
}

/* A failing step returns the backend's code and names the step; the PINs
 * never appear in the message. */
Test(layers_provision, layers_token_provision_initpin_failure_names_step)
{
    char serial[17] = "x", err[256] = "";
    layers_token *t;
    CK_TOKEN_INFO ti;

    load_softhsm();
    cr_assert_eq(layers_token_provision(m, "short-pin", SO_PIN, strlen(SO_PIN), "12", 2, serial,
                                        err, sizeof(err)),
                 CKR_PIN_LEN_RANGE);
    cr_assert_str_eq(serial, "");
    cr_assert_not_null(strstr(err, "C_InitPIN failed with CKR_PIN_LEN_RANGE"), "%s", err);
    cr_assert_not_null(strstr(err, "short-pin"), "%s", err);
    cr_assert_null(strstr(err, SO_PIN), "%s", err);
    /* C_InitToken had run: the token is there without a user PIN. */
    t = find_token("short-pin", NULL, NULL);
    cr_assert_eq(layers_token_info(t, &ti), CKR_OK);
    cr_assert_eq(ti.flags & CKF_USER_PIN_INITIALIZED, 0);
    layers_token_free(t);
}

Test(layers_provision, layers_token_provision_inittoken_failure_leaves_slot_free)
{
    char serial[17] = "", err[256] = "";
    CK_SLOT_ID slot;

    load_softhsm();
    /* SoftHSM2 refuses an SO PIN under 4 bytes with CKR_PIN_INCORRECT. */
    cr_assert_eq(layers_token_provision(m, "short-so", "123", 3, USER_PIN, strlen(USER_PIN), serial,
                                        err, sizeof(err)),
                 CKR_PIN_INCORRECT);
    cr_assert_not_null(strstr(err, "C_InitToken failed with CKR_PIN_INCORRECT"), "%s", err);
    cr_assert_eq(count_free_slots(), 1);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK);
}

Test(layers_provision, layers_token_provision_so_login_failure_names_step)
{
    char serial[17] = "", err[256] = "";

    setenv("STRATA_TEST_BACKEND_FAIL", "C_Login:CKR_DEVICE_ERROR:1", 1);
    load_test_backend(1);
    cr_assert_eq(provision("tb-login", serial, err, sizeof(err)), CKR_DEVICE_ERROR);
    cr_assert_not_null(strstr(err, "C_Login as SO failed with CKR_DEVICE_ERROR"), "%s", err);
    cr_assert_not_null(strstr(err, "slot 2"), "%s", err);
}

/* Two lazy views in one process: on SoftHSM2 the second finds a free
 * slot without a restart, because a C_GetSlotList size query adds one. */
Test(layers_provision, layers_token_provision_second_in_one_process)
{
    char s1[17] = "", s2[17] = "";
    layers_token *t1, *t2;
    CK_SLOT_ID a, b;

    load_softhsm();
    provision_ok("strata-one", s1);
    provision_ok("strata-two", s2);
    cr_assert_str_neq(s1, s2);
    cr_assert_eq(layers_module_generation(m), 1);
    t1 = find_token("strata-one", s1, &a);
    t2 = find_token("strata-two", s2, &b);
    cr_assert_neq(a, b);
    cr_assert_eq(layers_token_login(t1, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert_eq(layers_token_login(t2, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    layers_token_free(t1);
    layers_token_free(t2);
}

Test(layers_provision, layers_token_provision_label_taken)
{
    char serial[17] = "", again[17] = "", err[256] = "";

    load_softhsm();
    provision_ok("strata-dup", serial);
    cr_assert_eq(provision("strata-dup", again, err, sizeof(err)), LAYERS_CKR_LABEL_TAKEN);
    cr_assert_not_null(strstr(err, "exists already"), "%s", err);
    cr_assert_eq(count_free_slots(), 1); /* no second token */
}

/* ---- the backend facts ------------------------------------------------ */

/*
 * SoftHSM2 2.6.1, measured: after C_InitToken the token stays on the free
 * slot's ID, and a slot list read straight into a buffer shows no new
 * free slot; a size query (NULL list) makes SoftHSM2 add one. After a
 * restart the token sits on a new slot ID (derived from its serial) and a
 * fresh free slot is there.
 */
Test(layers_provision, layers_token_provision_softhsm_slot_behaviour)
{
    CK_SLOT_ID ids[16], free_before, slot, after_cycle;
    CK_ULONG n = 16, count = 0, i, uninitialised = 0;
    CK_FUNCTION_LIST *f;
    char serial[17] = "";
    layers_token *t;
    bool restarted = false;
    CK_TOKEN_INFO ti;

    load_softhsm();
    f = layers_module_functions(m);
    cr_assert_eq(layers_module_free_slot(m, &free_before), CKR_OK);
    provision_ok("strata-fact", serial);

    cr_assert_eq(f->C_GetSlotList(CK_TRUE, ids, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], free_before);
    cr_assert_eq(f->C_GetTokenInfo(ids[0], &ti), CKR_OK);
    cr_assert(ti.flags & CKF_TOKEN_INITIALIZED);

    cr_assert_eq(f->C_GetSlotList(CK_TRUE, NULL, &count), CKR_OK);
    cr_assert_eq(count, 2);
    n = 16;
    cr_assert_eq(f->C_GetSlotList(CK_TRUE, ids, &n), CKR_OK);
    cr_assert_eq(n, 2);
    for (i = 0; i < n; i++) {
        cr_assert_eq(f->C_GetTokenInfo(ids[i], &ti), CKR_OK);
        uninitialised += (ti.flags & CKF_TOKEN_INITIALIZED) == 0;
    }
    cr_assert_eq(uninitialised, 1);

    t = find_token("strata-fact", serial, &slot);
    cr_assert_eq(slot, free_before);
    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert(restarted);
    cr_assert_eq(layers_token_slot(t, &after_cycle), CKR_OK);
    cr_assert_neq(after_cycle, free_before);
    cr_assert_eq(count_free_slots(), 1);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    layers_token_free(t);
}

/* A token another process makes shows only after a restart; our own free
 * slot stays free meanwhile. */
Test(layers_provision, layers_module_free_slot_other_process_token_after_cycle)
{
    layers_token *other = NULL;
    bool restarted = false;
    CK_SLOT_ID slot;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "other", NULL, &other), CKR_OK);
    cr_assert_eq(world_token(&w, "other", "12345678", "1234"), 0);
    cr_assert_eq(layers_token_slot(other, &slot), CKR_TOKEN_NOT_PRESENT);
    cr_assert_eq(layers_module_free_slot(m, &slot), CKR_OK);
    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert(restarted);
    cr_assert_eq(layers_token_slot(other, &slot), CKR_OK);
    cr_assert_eq(layers_token_login(other, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(count_free_slots(), 1);
    layers_token_free(other);
}

/* ---- the cycle path (test backend: no free slot until a restart) ------- */

Test(layers_provision, layers_token_provision_second_needs_cycle)
{
    char s1[17] = "", s2[17] = "", err[256] = "";
    layers_token *t1, *t2;
    CK_SLOT_ID a, b;

    load_test_backend(1);
    provision_ok("tb-one", s1);
    cr_assert_eq(layers_module_generation(m), 1);
    t1 = find_token("tb-one", s1, &a);
    cr_assert_eq(a, 2);
    cr_assert_eq(layers_token_login(t1, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert_eq(layers_module_free_slot(m, &b), CKR_TOKEN_NOT_PRESENT);

    cr_assert_eq(provision("tb-two", s2, err, sizeof(err)), CKR_OK, "%s", err);
    cr_assert_eq(layers_module_generation(m), 2); /* the module was cycled */
    cr_assert_not(layers_token_logged_in(t1));    /* ... so t1's login is gone */
    t2 = find_token("tb-two", s2, &b);
    cr_assert_eq(b, 3);
    cr_assert_str_neq(s1, s2);
    assert_pins_work(t2);
    cr_assert_eq(layers_token_login(t1, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    layers_token_free(t1);
    layers_token_free(t2);
}

Test(layers_provision, layers_token_provision_cycle_refused_by_other_user)
{
    char s1[17] = "", s2[17] = "x", err[256] = "";
    CK_FUNCTION_LIST *direct;
    layers_token *t2;
    CK_SLOT_ID slot;
    void *handle;

    configure_test_backend(1);
    direct = direct_open(env_path("STRATA_TEST_BACKEND"), &handle);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND"), &m, NULL, 0), CKR_OK);
    provision_ok("tb-one", s1);
    cr_assert_eq(provision("tb-two", s2, err, sizeof(err)), CKR_DEVICE_MEMORY);
    cr_assert_str_eq(s2, "");
    cr_assert_not_null(strstr(err, "no free slot"), "%s", err);
    cr_assert_not_null(strstr(err, "another user in this process keeps it initialised"), "%s", err);
    cr_assert_not_null(strstr(err, env_path("STRATA_TEST_BACKEND")), "%s", err);
    cr_assert_eq(layers_module_generation(m), 2); /* the cycle was tried */
    cr_assert_eq(layers_token_new(m, "tb-two", NULL, &t2), CKR_OK);
    cr_assert_eq(layers_token_slot(t2, &slot), CKR_TOKEN_NOT_PRESENT);
    layers_token_free(t2);
    layers_module_unload(m);
    m = NULL;
    cr_assert_eq(direct->C_Finalize(NULL), CKR_OK);
    dlclose(handle);
}

Test(layers_provision, layers_token_provision_no_free_slot_even_after_cycle)
{
    char serial[17] = "x", err[256] = "";

    load_test_backend(0);
    cr_assert_eq(provision("tb-none", serial, err, sizeof(err)), CKR_DEVICE_MEMORY);
    cr_assert_str_eq(serial, "");
    cr_assert_not_null(strstr(err, "no free slot, even after restarting the backend"), "%s", err);
    cr_assert_eq(layers_module_generation(m), 2);
}

Test(layers_provision, layers_token_provision_cycle_failure_passes_code)
{
    char serial[17] = "", err[256] = "";

    load_test_backend(0);
    /* The backend reads its faults at each C_Initialize: the cycle's fails. */
    setenv("STRATA_TEST_BACKEND_FAIL", "C_Initialize:CKR_DEVICE_ERROR:1", 1);
    cr_assert_eq(provision("tb-none", serial, err, sizeof(err)), CKR_DEVICE_ERROR);
    cr_assert_not_null(strstr(err, "restarting the backend failed with CKR_DEVICE_ERROR"), "%s",
                       err);
}

/* ---- crashes and repair ----------------------------------------------- */

/*
 * A crash right after C_InitToken leaves an initialised token without a
 * user PIN. Provisioning again refuses to make a second token with the
 * label; layers_token_reinit with the recorded SO PIN finishes it.
 */
Test(layers_provision, layers_token_reinit_repairs_crash_after_inittoken)
{
    char serial[17] = "x", fixed[17] = "", again[17] = "", err[256] = "";
    layers_token *t;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot;

    load_softhsm();
    setenv("STRATA_TEST_FAIL_AT", "provision-after-inittoken", 1);
    cr_assert_eq(provision("strata-half", serial, err, sizeof(err)), CKR_FUNCTION_FAILED);
    cr_assert_str_eq(serial, "");
    cr_assert_not_null(strstr(err, "provision-after-inittoken"), "%s", err);
    unsetenv("STRATA_TEST_FAIL_AT");

    t = find_token("strata-half", NULL, &slot);
    cr_assert_eq(layers_token_info(t, &ti), CKR_OK);
    cr_assert(ti.flags & CKF_TOKEN_INITIALIZED);
    cr_assert_eq(ti.flags & CKF_USER_PIN_INITIALIZED, 0);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)),
                 CKR_USER_PIN_NOT_INITIALIZED);
    cr_assert_eq(provision("strata-half", again, err, sizeof(err)), LAYERS_CKR_LABEL_TAKEN);

    cr_assert_eq(layers_token_reinit(t, NULL, "wrong-so-pin", 12, USER_PIN, strlen(USER_PIN), fixed,
                                     err, sizeof(err)),
                 CKR_PIN_INCORRECT);
    cr_assert_not_null(strstr(err, "C_InitToken failed with CKR_PIN_INCORRECT"), "%s", err);
    cr_assert_eq(layers_token_reinit(t, NULL, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                     fixed, err, sizeof(err)),
                 CKR_OK, "%s", err);
    layers_field_to_string(ti.serialNumber, sizeof(ti.serialNumber), again, sizeof(again));
    cr_assert_str_eq(fixed, again); /* SoftHSM2 keeps the serial */
    assert_pins_work(t);
    layers_token_free(t);
}

/* Every fault point stops the sequence there; the state left is what a
 * crash at that point leaves. */
Test(layers_provision, layers_token_provision_fault_points)
{
    static const struct {
        const char *point;
        const char *label;
        bool token_made;
        bool user_pin_set;
    } cases[] = {
        {"provision-before-inittoken", "fp-before", false, false},
        {"provision-after-inittoken", "fp-init", true, false},
        {"provision-after-so-login", "fp-so", true, false},
        {"provision-after-initpin", "fp-pin", true, true},
    };
    char serial[17], err[256];
    layers_token *t;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot;
    size_t i;

    load_softhsm();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("STRATA_TEST_FAIL_AT", cases[i].point, 1);
        err[0] = '\0';
        cr_assert_eq(provision(cases[i].label, serial, err, sizeof(err)), CKR_FUNCTION_FAILED, "%s",
                     cases[i].point);
        cr_assert_not_null(strstr(err, cases[i].point), "%s", err);
        unsetenv("STRATA_TEST_FAIL_AT");
        cr_assert_eq(layers_token_new(m, cases[i].label, NULL, &t), CKR_OK);
        cr_assert_eq(layers_token_slot(t, &slot),
                     cases[i].token_made ? CKR_OK : CKR_TOKEN_NOT_PRESENT, "%s", cases[i].point);
        if (cases[i].token_made) {
            cr_assert_eq(layers_token_info(t, &ti), CKR_OK);
            cr_assert_eq((ti.flags & CKF_USER_PIN_INITIALIZED) != 0, cases[i].user_pin_set, "%s",
                         cases[i].point);
        }
        layers_token_free(t);
    }
    /* After the before-inittoken stop the slot is still free, and used. */
    provision_ok("fp-before", serial);
}

/* Initialising again wipes the token: an object made before is gone. */
Test(layers_provision, layers_token_reinit_wipes_objects)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, sizeof(yes)}, {CKA_LABEL, "note", 4}};
    CK_OBJECT_HANDLE obj, found[4];
    CK_SESSION_HANDLE s;
    CK_ULONG n = 0;
    char serial[17] = "", fixed[17] = "", err[256] = "";
    CK_FUNCTION_LIST *f;
    layers_token *t;

    load_softhsm();
    f = layers_module_functions(m);
    provision_ok("strata-wipe", serial);
    t = find_token("strata-wipe", serial, NULL);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, CKF_RW_SESSION, &s), CKR_OK);
    cr_assert_eq(f->C_CreateObject(s, tmpl, 3, &obj), CKR_OK);

    /* reinit logs out and closes the token's own sessions first. */
    cr_assert_eq(layers_token_reinit(t, "strata-wipe", SO_PIN, strlen(SO_PIN), USER_PIN,
                                     strlen(USER_PIN), fixed, err, sizeof(err)),
                 CKR_OK, "%s", err);
    cr_assert_str_eq(fixed, serial);
    cr_assert_not(layers_token_logged_in(t));
    cr_assert_eq(layers_token_close_session(t, s), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(layers_token_login(t, CKU_USER, USER_PIN, strlen(USER_PIN)), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, 0, &s), CKR_OK);
    cr_assert_eq(f->C_FindObjectsInit(s, tmpl, 3), CKR_OK);
    cr_assert_eq(f->C_FindObjects(s, found, 4, &n), CKR_OK);
    cr_assert_eq(f->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(n, 0);
    layers_token_free(t);
}

Test(layers_provision, layers_token_reinit_absent_token)
{
    char serial[17] = "x", err[256] = "";
    layers_token *t = NULL;

    load_softhsm();
    cr_assert_eq(layers_token_new(m, "nowhere", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_reinit(t, NULL, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                     serial, err, sizeof(err)),
                 CKR_TOKEN_NOT_PRESENT);
    cr_assert_str_eq(serial, "");
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(layers_token_reinit(NULL, NULL, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                     serial, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_token_reinit(t, NULL, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                     NULL, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    layers_token_free(t);
}

/* A session another user holds on the token makes the backend refuse. */
Test(layers_provision, layers_token_reinit_refused_while_other_session_open)
{
    char serial[17] = "", fixed[17] = "", err[256] = "";
    CK_SESSION_HANDLE other;
    layers_token *owner, *t;
    CK_SLOT_ID slot;

    load_softhsm();
    provision_ok("strata-busy", serial);
    owner = find_token("strata-busy", serial, &slot);
    t = find_token("strata-busy", serial, NULL);
    cr_assert_eq(layers_token_open_session(owner, 0, &other), CKR_OK);
    cr_assert_eq(layers_token_reinit(t, NULL, SO_PIN, strlen(SO_PIN), USER_PIN, strlen(USER_PIN),
                                     fixed, err, sizeof(err)),
                 CKR_SESSION_EXISTS);
    cr_assert_not_null(strstr(err, "C_InitToken failed with CKR_SESSION_EXISTS"), "%s", err);
    layers_token_free(owner);
    layers_token_free(t);
}
