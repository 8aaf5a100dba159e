/*
 * test_module.c - layers/module.c: loading backends through p11-kit's
 * managed API, listing slots, cycling, and the test backend.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "layers.h"
#include "world.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(layers_module, .init = setup, .fini = teardown);

static const char *env_path(const char *name)
{
    const char *p = getenv(name);

    cr_assert(p != NULL && *p != '\0', "%s is not set (run through meson test)", name);
    return p;
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
    cr_assert(get != NULL);
    cr_assert_eq(get(&funcs), CKR_OK);
    cr_assert_eq(funcs->C_Initialize(&args), CKR_OK);
    return funcs;
}

static CK_SLOT_ID slot_of(CK_FUNCTION_LIST *funcs, const char *label)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, i;
    CK_TOKEN_INFO ti;
    char got[33];

    cr_assert_eq(funcs->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        if (funcs->C_GetTokenInfo(slots[i], &ti) == CKR_OK) {
            layers_field_to_string(ti.label, sizeof(ti.label), got, sizeof(got));
            if (strcmp(got, label) == 0) {
                return slots[i];
            }
        }
    }
    cr_assert_fail("no token %s", label);
    return 0;
}

/* Counts the objects a find with an empty template returns. */
static CK_ULONG count_objects(CK_FUNCTION_LIST *funcs, CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE found[64];
    CK_ULONG n = 0;

    cr_assert_eq(funcs->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(funcs->C_FindObjects(s, found, 64, &n), CKR_OK);
    cr_assert_eq(funcs->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert(f != NULL);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

Test(layers_module, layers_module_load_lists_softhsm_slots)
{
    layers_slot_info *slots = NULL;
    layers_module *m = NULL;
    size_t n = 0, i, initialized = 0, free_slots = 0;
    char err[256] = "";

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, err, sizeof(err)), CKR_OK, "%s",
                 err);
    cr_assert_str_eq(layers_module_path(m), world_softhsm_module());
    cr_assert_not_null(layers_module_functions(m));
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    cr_assert_eq(n, 2);
    for (i = 0; i < n; i++) {
        cr_assert(slots[i].token_present);
        if (slots[i].initialized) {
            initialized++;
            cr_assert_str_eq(slots[i].label, "alpha");
            cr_assert_eq(strlen(slots[i].serial), 16);
            cr_assert_str_eq(slots[i].model, "SoftHSM v2");
            cr_assert_str_eq(slots[i].manufacturer, "SoftHSM project");
            cr_assert(slots[i].token_flags & CKF_TOKEN_INITIALIZED);
        } else {
            free_slots++;
            cr_assert_str_eq(slots[i].label, "");
        }
    }
    cr_assert_eq(initialized, 1);
    cr_assert_eq(free_slots, 1);
    free(slots);
    layers_module_unload(m);
}

Test(layers_module, layers_module_load_missing_path)
{
    layers_module *m = (layers_module *)&w; /* must be reset to NULL */
    char err[256] = "";

    cr_assert_eq(layers_module_load("/nonexistent/libnope.so", &m, err, sizeof(err)),
                 CKR_GENERAL_ERROR);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err, "/nonexistent/libnope.so"), "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);
}

Test(layers_module, layers_module_load_not_a_module_text_file)
{
    layers_module *m = NULL;
    char err[256] = "";

    cr_assert_eq(layers_module_load("/etc/passwd", &m, err, sizeof(err)), CKR_GENERAL_ERROR);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err, "/etc/passwd: not a loadable PKCS#11 module"), "%s", err);
}

Test(layers_module, layers_module_load_not_a_module_library)
{
    layers_module *m = NULL;
    char err[512] = "", expected[300];
    Dl_info info;

    cr_assert(dladdr((void *)&printf, &info) != 0 && info.dli_fname != NULL);
    cr_assert_eq(layers_module_load(info.dli_fname, &m, err, sizeof(err)), CKR_GENERAL_ERROR);
    cr_assert_null(m);
    snprintf(expected, sizeof(expected), "%s: not a loadable PKCS#11 module", info.dli_fname);
    cr_assert_not_null(strstr(err, expected), "%s", err);
}

Test(layers_module, layers_module_load_initialize_failure_names_code)
{
    layers_module *m = NULL;
    char err[256] = "";
    const char *path = env_path("STRATA_TEST_BACKEND");

    setenv("STRATA_TEST_BACKEND_FAIL", "C_Initialize:CKR_DEVICE_ERROR:1", 1);
    cr_assert_eq(layers_module_load(path, &m, err, sizeof(err)), CKR_DEVICE_ERROR);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err, path), "%s", err);
    cr_assert_not_null(strstr(err, "C_Initialize failed with CKR_DEVICE_ERROR"), "%s", err);
}

Test(layers_module, layers_module_load_null_arguments)
{
    layers_module *m = NULL;

    cr_assert_eq(layers_module_load(NULL, &m, NULL, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(layers_module_load(world_softhsm_module(), NULL, NULL, 0), CKR_ARGUMENTS_BAD);
}

Test(layers_module, layers_module_generation_starts_at_one)
{
    layers_module *m = NULL;

    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_module_generation(m), 1);
    layers_module_unload(m);
}

/*
 * The point of managed loading: an application that initialised SoftHSM2
 * itself and holds a session keeps it through our load and unload
 * (p11-kit sees CKR_CRYPTOKI_ALREADY_INITIALIZED, so it never calls the
 * real C_Finalize, and closes only the sessions it opened).
 */
Test(layers_module, layers_module_unload_leaves_direct_session_working)
{
    CK_SESSION_HANDLE direct, ours;
    CK_SESSION_INFO si;
    CK_FUNCTION_LIST *funcs;
    layers_token *token = NULL;
    layers_module *m = NULL;
    void *handle;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(world_keypair(&w, "alpha", "1234", "EC:prime256v1", "k1", "01"), 0);
    funcs = direct_open(world_softhsm_module(), &handle);
    cr_assert_eq(
        funcs->C_OpenSession(slot_of(funcs, "alpha"), CKF_SERIAL_SESSION, NULL, NULL, &direct),
        CKR_OK);
    cr_assert_eq(count_objects(funcs, direct), 1); /* the public key */

    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_token_new(m, "alpha", NULL, &token), CKR_OK);
    cr_assert_eq(layers_token_login(token, CKU_USER, "1234", 4), CKR_OK);
    cr_assert_eq(layers_token_open_session(token, 0, &ours), CKR_OK);
    cr_assert_neq(ours, direct);
    layers_token_free(token);
    layers_module_unload(m);

    cr_assert_eq(funcs->C_GetSessionInfo(direct, &si), CKR_OK);
    cr_assert_eq(si.state, CKS_RO_PUBLIC_SESSION); /* our logout reached it, as PKCS#11 says */
    cr_assert_eq(count_objects(funcs, direct), 1);
    cr_assert_eq(funcs->C_Login(direct, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
    cr_assert_eq(count_objects(funcs, direct), 2);
    cr_assert_eq(funcs->C_CloseSession(direct), CKR_OK);
    cr_assert_eq(funcs->C_Finalize(NULL), CKR_OK);
    dlclose(handle);
}

/*
 * The limit of managed loading, measured: when p11-kit initialised the
 * backend first, an application that initialises it directly afterwards
 * (and gets CKR_CRYPTOKI_ALREADY_INITIALIZED) is not counted, so our
 * unload runs the real C_Finalize under it.
 */
Test(layers_module, layers_module_unload_finalises_backend_initialised_first_by_us)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *funcs = NULL;
    CK_SESSION_HANDLE direct;
    CK_SESSION_INFO si;
    layers_module *m = NULL;
    void *handle;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
    handle = dlopen(world_softhsm_module(), RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(handle);
    get = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    cr_assert_eq(get(&funcs), CKR_OK);
    cr_assert_eq(funcs->C_Initialize(&args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    cr_assert_eq(
        funcs->C_OpenSession(slot_of(funcs, "alpha"), CKF_SERIAL_SESSION, NULL, NULL, &direct),
        CKR_OK);
    layers_module_unload(m);
    cr_assert_eq(funcs->C_GetSessionInfo(direct, &si), CKR_CRYPTOKI_NOT_INITIALIZED);
    dlclose(handle);
}

Test(layers_module, layers_module_unload_one_of_two_loads_keeps_other)
{
    layers_token *t1 = NULL, *t2 = NULL;
    layers_module *m1 = NULL, *m2 = NULL;
    CK_SESSION_HANDLE s1, s2, s3;
    CK_SESSION_INFO si;
    CK_FUNCTION_LIST *f2;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(world_keypair(&w, "alpha", "1234", "EC:prime256v1", "k1", "01"), 0);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m1, NULL, 0), CKR_OK);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m2, NULL, 0), CKR_OK);
    cr_assert_eq(layers_token_new(m1, "alpha", NULL, &t1), CKR_OK);
    cr_assert_eq(layers_token_new(m2, "alpha", NULL, &t2), CKR_OK);
    cr_assert_eq(layers_token_open_session(t1, 0, &s1), CKR_OK);
    cr_assert_eq(layers_token_open_session(t2, 0, &s2), CKR_OK);

    layers_token_free(t1);
    layers_module_unload(m1);

    f2 = layers_module_functions(m2);
    cr_assert_eq(f2->C_GetSessionInfo(s2, &si), CKR_OK);
    cr_assert_eq(count_objects(f2, s2), 1);
    cr_assert_eq(layers_token_open_session(t2, CKF_RW_SESSION, &s3), CKR_OK);
    cr_assert_eq(layers_token_close_session(t2, s3), CKR_OK);
    layers_token_free(t2);
    layers_module_unload(m2);
}

/* SoftHSM2 does not show a token another process made until it is
 * finalised and initialised again; a cycle does that when we are its
 * only user. */
Test(layers_module, layers_module_cycle_shows_token_made_elsewhere)
{
    layers_token *beta = NULL;
    layers_module *m = NULL;
    bool restarted = false;
    CK_SLOT_ID slot;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_token_new(m, "beta", NULL, &beta), CKR_OK);
    cr_assert_eq(world_token(&w, "beta", "12345678", "1234"), 0);
    cr_assert_eq(layers_token_slot(beta, &slot), CKR_TOKEN_NOT_PRESENT);

    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert(restarted);
    cr_assert_eq(layers_module_generation(m), 2);
    cr_assert_eq(layers_token_slot(beta, &slot), CKR_OK);
    layers_token_free(beta);
    layers_module_unload(m);
}

/* A cycle cannot restart a backend the application keeps initialised,
 * and says so. */
Test(layers_module, layers_module_cycle_reports_backend_kept_alive)
{
    layers_token *beta = NULL;
    layers_module *m = NULL;
    CK_FUNCTION_LIST *funcs;
    bool restarted = true;
    CK_SLOT_ID slot;
    void *handle;

    cr_assert_eq(world_token(&w, "alpha", "12345678", "1234"), 0);
    funcs = direct_open(world_softhsm_module(), &handle);
    cr_assert_eq(layers_module_load(world_softhsm_module(), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_token_new(m, "beta", NULL, &beta), CKR_OK);
    cr_assert_eq(world_token(&w, "beta", "12345678", "1234"), 0);

    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert_not(restarted);
    cr_assert_eq(layers_module_generation(m), 2);
    cr_assert_eq(layers_token_slot(beta, &slot), CKR_TOKEN_NOT_PRESENT);
    layers_token_free(beta);
    layers_module_unload(m);
    cr_assert_eq(funcs->C_Finalize(NULL), CKR_OK);
    dlclose(handle);
}

Test(layers_module, layers_module_slots_of_test_backend)
{
    layers_slot_info *slots = NULL;
    layers_module *m = NULL;
    size_t n = 0;

    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND"), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(slots[0].slot, 1);
    cr_assert(slots[0].token_present);
    cr_assert(slots[0].initialized);
    cr_assert_str_eq(slots[0].label, "strata-test-test");
    cr_assert_str_eq(slots[0].serial, "TB-test-0001");
    cr_assert_str_eq(slots[0].model, "test backend");
    cr_assert_str_eq(slots[0].manufacturer, "Strata tests");
    free(slots);
    layers_module_unload(m);
}

/* Two copies of the test backend in one process: the same object handle
 * names a different object in each. */
Test(layers_module, layers_module_test_backends_collide_on_handles)
{
    CK_OBJECT_HANDLE found_a[8], found_b[8];
    CK_SESSION_HANDLE sa, sb;
    CK_ULONG na = 0, nb = 0;
    char label_a[32] = "", label_b[32] = "", conf_a[PATH_MAX + 8], conf_b[PATH_MAX + 8];
    CK_ATTRIBUTE get_a = {CKA_LABEL, label_a, sizeof(label_a) - 1};
    CK_ATTRIBUTE get_b = {CKA_LABEL, label_b, sizeof(label_b) - 1};
    layers_module *a = NULL, *b = NULL;
    layers_token *ta = NULL, *tb = NULL;
    CK_FUNCTION_LIST *fa, *fb;

    snprintf(conf_a, sizeof(conf_a), "%s/a.conf", w.dir);
    snprintf(conf_b, sizeof(conf_b), "%s/b.conf", w.dir);
    write_file(conf_a, "label = team\nobject = alpha-1 01\nobject = alpha-2 02\n");
    write_file(conf_b, "label = personal\nobject = beta-1 01\nobject = beta-2 02\n");
    setenv("STRATA_TEST_BACKEND_A_CONF", conf_a, 1);
    setenv("STRATA_TEST_BACKEND_B_CONF", conf_b, 1);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND_A"), &a, NULL, 0), CKR_OK);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND_B"), &b, NULL, 0), CKR_OK);
    fa = layers_module_functions(a);
    fb = layers_module_functions(b);
    cr_assert_neq(fa, fb);
    cr_assert_eq(layers_token_new(a, "team", NULL, &ta), CKR_OK);
    cr_assert_eq(layers_token_new(b, "personal", NULL, &tb), CKR_OK);
    cr_assert_eq(layers_token_open_session(ta, 0, &sa), CKR_OK);
    cr_assert_eq(layers_token_open_session(tb, 0, &sb), CKR_OK);
    cr_assert_eq(sa, sb); /* session handles collide too */

    cr_assert_eq(fa->C_FindObjectsInit(sa, NULL, 0), CKR_OK);
    cr_assert_eq(fa->C_FindObjects(sa, found_a, 8, &na), CKR_OK);
    cr_assert_eq(fa->C_FindObjectsFinal(sa), CKR_OK);
    cr_assert_eq(fb->C_FindObjectsInit(sb, NULL, 0), CKR_OK);
    cr_assert_eq(fb->C_FindObjects(sb, found_b, 8, &nb), CKR_OK);
    cr_assert_eq(fb->C_FindObjectsFinal(sb), CKR_OK);
    cr_assert_eq(na, 2);
    cr_assert_eq(nb, 2);
    cr_assert_eq(found_a[0], 1);
    cr_assert_eq(found_b[0], 1);

    cr_assert_eq(fa->C_GetAttributeValue(sa, 1, &get_a, 1), CKR_OK);
    cr_assert_eq(fb->C_GetAttributeValue(sb, 1, &get_b, 1), CKR_OK);
    cr_assert_str_eq(label_a, "alpha-1");
    cr_assert_str_eq(label_b, "beta-1");

    layers_token_free(ta);
    layers_token_free(tb);
    layers_module_unload(a);
    layers_module_unload(b);
}

/* Fault injection: the Nth call of a function fails with the code asked. */
Test(layers_module, layers_module_test_backend_injects_faults)
{
    layers_token *t = NULL;
    layers_module *m = NULL;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;

    setenv("STRATA_TEST_BACKEND_FAIL", "C_FindObjectsInit:CKR_DEVICE_REMOVED:2", 1);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND"), &m, NULL, 0), CKR_OK);
    f = layers_module_functions(m);
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, 0, &s), CKR_OK);
    cr_assert_eq(f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(f->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(f->C_FindObjectsInit(s, NULL, 0), CKR_DEVICE_REMOVED);
    cr_assert_eq(f->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    layers_token_free(t);
    layers_module_unload(m);
}

/* The module's own sessions are closed one by one (a cycle closes them
 * all, token_free those of its token), never with C_CloseAllSessions: a
 * session the application opened directly on the same backend survives,
 * and so does the backend itself at unload. */
Test(layers_module, layers_module_cycle_closes_only_own_sessions)
{
    CK_SESSION_HANDLE direct, s;
    CK_TOKEN_INFO ti;
    CK_FUNCTION_LIST *funcs;
    layers_token *t = NULL;
    layers_module *m = NULL;
    bool restarted = true;
    void *handle;
    int i;

    funcs = direct_open(env_path("STRATA_TEST_BACKEND"), &handle);
    cr_assert_eq(funcs->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &direct), CKR_OK);
    cr_assert_eq(layers_module_load(env_path("STRATA_TEST_BACKEND"), &m, NULL, 0), CKR_OK);
    cr_assert_eq(layers_token_new(m, "strata-test-test", NULL, &t), CKR_OK);
    for (i = 0; i < 3; i++) {
        cr_assert_eq(layers_token_open_session(t, i % 2 ? CKF_RW_SESSION : 0, &s), CKR_OK);
    }
    cr_assert_eq(funcs->C_GetTokenInfo(1, &ti), CKR_OK);
    cr_assert_eq(ti.ulSessionCount, 4);
    cr_assert_eq(ti.ulRwSessionCount, 1);

    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert_not(restarted);
    cr_assert_eq(funcs->C_GetTokenInfo(1, &ti), CKR_OK);
    cr_assert_eq(ti.ulSessionCount, 1);
    cr_assert_eq(layers_token_close_session(t, s), CKR_SESSION_HANDLE_INVALID);

    cr_assert_eq(layers_token_open_session(t, 0, &s), CKR_OK);
    cr_assert_eq(layers_token_open_session(t, 0, &s), CKR_OK);
    layers_token_free(t);
    cr_assert_eq(funcs->C_GetTokenInfo(1, &ti), CKR_OK);
    cr_assert_eq(ti.ulSessionCount, 1);
    layers_module_unload(m);
    cr_assert_eq(funcs->C_GetTokenInfo(1, &ti), CKR_OK);
    cr_assert_eq(ti.ulSessionCount, 1);
    cr_assert_eq(funcs->C_CloseSession(direct), CKR_OK);
    cr_assert_eq(funcs->C_Finalize(NULL), CKR_OK);
    dlclose(handle);
}

Test(layers_module, layers_field_to_string_trims_padding)
{
    const CK_UTF8CHAR field[8] = {'a', 'b', ' ', 'c', ' ', ' ', ' ', ' '};
    const CK_UTF8CHAR blank[4] = {' ', ' ', ' ', ' '};
    char buf[9], small[3];

    layers_field_to_string(field, sizeof(field), buf, sizeof(buf));
    cr_assert_str_eq(buf, "ab c");
    layers_field_to_string(blank, sizeof(blank), buf, sizeof(buf));
    cr_assert_str_eq(buf, "");
    layers_field_to_string(field, sizeof(field), small, sizeof(small));
    cr_assert_str_eq(small, "ab");
}

/* p11-kit's trust module takes the folder it serves from C_Initialize's
 * pReserved ("paths=DIR", its token labelled DIR's name): the string
 * reaches it at load and again after a cycle. */
Test(layers_module, layers_module_load_with_gives_init_reserved_at_load_and_cycle)
{
    const char *trust = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so";
    layers_slot_info *slots = NULL;
    layers_module *m = NULL;
    char err[256] = "", args[PATH_MAX + 64];
    bool restarted = false;
    size_t n = 0;

    if (access(trust, R_OK) != 0) {
        cr_skip_test("%s is missing: install p11-kit-modules (scripts/deps.sh)", trust);
    }
    cr_assert_eq(world_sh("mkdir '%s/my-store' && openssl req -x509 -newkey ec -pkeyopt "
                          "ec_paramgen_curve:P-256 -nodes -keyout /dev/null -out "
                          "'%s/my-store/ca.pem' -days 1 -subj /CN=unit 2>/dev/null",
                          w.dir, w.dir),
                 0);
    snprintf(args, sizeof(args), "paths=%s/my-store", w.dir);
    cr_assert_eq(layers_module_load_with(trust, args, &m, err, sizeof(err)), CKR_OK, "%s", err);
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(slots[0].label, "my-store");
    free(slots);
    cr_assert_eq(layers_module_cycle(m, &restarted), CKR_OK);
    cr_assert(restarted);
    cr_assert_eq(layers_module_slots(m, &slots, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(slots[0].label, "my-store", "the cycle forgot init-reserved");
    free(slots);
    layers_module_unload(m);
}
