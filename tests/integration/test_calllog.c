/*
 * test_calllog.c - the call log (STRATA_LOG=calls, engine/calllog.c):
 * every call is logged with symbolic names and its return code, and no
 * PIN (view or layer) and no secret attribute value ever reaches it.
 *
 * The world: SoftHSM2 tokens "personal", "group" and "other" with long,
 * distinctive PINs (so that a PIN found in the log cannot be a number that
 * happens to match), the virtual token "Strata" with the views work
 * (personal over group) and anon (other). Keys: p-rsa (RSA-2048, personal),
 * g-ec (EC P-256, group), o-ec (EC P-256, other).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "world.h"

#define WORK_PIN     "ViewPinWork-81"
#define ANON_PIN     "ViewPinAnon-82"
#define PERSONAL_PIN "LayerPinPersonal-91"
#define GROUP_PIN    "LayerPinGroup-92"
#define OTHER_PIN    "LayerPinOther-94"
#define SO_PIN       "SoPinSecret-93"
#define SECRET_VALUE "SecretKeyBytes-0123456789abcdef"

static const char *const secrets[] = {WORK_PIN,  ANON_PIN,  PERSONAL_PIN,
                                      GROUP_PIN, OTHER_PIN, SO_PIN};

static world w;
static char log_path[PATH_MAX + 16];

static const char policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
    "  <layer id=\"other\" module=\"soft\" token=\"other\"/>\n"
    "  <token label=\"Strata\" max-failed-logins=\"5\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal group\"/>\n"
    "    <view id=\"anon\" layers=\"other\"/>\n"
    "  </token>\n"
    "</strata>\n";

static int enroll(const char *view, const char *pins)
{
    return world_sh("printf '%%s\\n' %s | '%s' enroll --token Strata --view %s --pin-stdin "
                    ">/dev/null",
                    pins, world_strata_cli(), view);
}

static void setup(void)
{
    world_setup(&w);
    snprintf(log_path, sizeof(log_path), "%s/calls.log", w.dir);
    cr_assert_eq(world_token(&w, "personal", SO_PIN, PERSONAL_PIN), 0);
    cr_assert_eq(world_token(&w, "group", SO_PIN, GROUP_PIN), 0);
    cr_assert_eq(world_token(&w, "other", SO_PIN, OTHER_PIN), 0);
    cr_assert_eq(world_policy(&w, policy), 0);
    cr_assert_eq(enroll("work", WORK_PIN " " PERSONAL_PIN " " GROUP_PIN), 0);
    cr_assert_eq(enroll("anon", ANON_PIN " " OTHER_PIN), 0);
    cr_assert_eq(world_keypair(&w, "personal", PERSONAL_PIN, "RSA:2048", "p-rsa", "01"), 0);
    cr_assert_eq(world_keypair(&w, "group", GROUP_PIN, "EC:prime256v1", "g-ec", "02"), 0);
    cr_assert_eq(world_keypair(&w, "other", OTHER_PIN, "EC:prime256v1", "o-ec", "09"), 0);
    unsetenv("STRATA_LOG");
    unsetenv("STRATA_LOG_FILE");
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(calllog, .init = setup, .fini = teardown, .timeout = 300);

/* The whole log file (NUL-terminated; *len without the NUL). */
static char *read_log(size_t *len)
{
    FILE *f = fopen(log_path, "rb");
    char *buf;
    long size;

    cr_assert(f != NULL, "no log file %s", log_path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    cr_assert(size >= 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    cr_assert(buf != NULL);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Fails when any PIN of the world appears anywhere in the log's bytes. */
static void assert_no_secret(const char *log, size_t len)
{
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        cr_assert_null(memmem(log, len, secrets[i], strlen(secrets[i])),
                       "the log contains the PIN %s", secrets[i]);
    }
    cr_assert_null(memmem(log, len, SECRET_VALUE, strlen(SECRET_VALUE)),
                   "the log contains a secret key value");
}

/* The first line of log containing all of the given texts, or NULL. */
static const char *line_with(const char *log, const char *a, const char *b)
{
    for (const char *p = log; *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

        if (memmem(p, n, a, strlen(a)) != NULL && (b == NULL || memmem(p, n, b, strlen(b)))) {
            return p;
        }
        p += n + (end != NULL);
    }
    return NULL;
}

static CK_FUNCTION_LIST *load_strata(void)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *list = NULL;
    void *handle = dlopen(world_strata_module(), RTLD_NOW | RTLD_LOCAL);

    cr_assert(handle != NULL, "dlopen: %s", dlerror());
    *(void **)&get_list = dlsym(handle, "C_GetFunctionList");
    cr_assert(get_list != NULL);
    cr_assert_eq(get_list(&list), CKR_OK);
    return list;
}

static CK_SESSION_HANDLE open_session(CK_FUNCTION_LIST *p11, CK_SLOT_ID *slot)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_ULONG n = 1;

    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slot, &n), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(p11->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                 CKR_OK);
    return s;
}

static CK_RV login(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
}

/* Occurrences of needle in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* pkcs11-tool's whole self-test through the log: it reaches the same
 * result as on the personal token directly (SoftHSM2 itself rejects the
 * OAEP label pkcs11-tool tries, so both runs end in the same error), C_Login
 * is logged with its PIN masked, no PIN of any view or layer is anywhere in
 * the file, and functions and return codes are named. */
Test(calllog, pkcs11_tool_test_logs_no_pin)
{
    char *out = NULL, *direct = NULL, *log;
    size_t len;
    int st, st_direct;

    st_direct = world_sh_out(&direct,
                             "pkcs11-tool --module '%s' --token-label personal --login --pin '%s' "
                             "--test 2>&1",
                             world_softhsm_module(), PERSONAL_PIN);
    st = world_sh_out(&out,
                      "STRATA_LOG=calls STRATA_LOG_FILE='%s' pkcs11-tool --module '%s' "
                      "--login --pin '%s' --test 2>&1",
                      log_path, world_strata_module(), WORK_PIN);
    cr_assert(out != NULL && direct != NULL);
    cr_assert_eq(st, st_direct, "pkcs11-tool --test: exit %d through Strata, %d directly:\n%s", st,
                 st_direct, out);
    cr_assert_eq(count_of(out, ": OK"), count_of(direct, ": OK"),
                 "through Strata:\n%s\ndirectly:\n%s", out, direct);
    cr_assert_gt(count_of(out, "RSA-PKCS: OK"), 0, "%s", out);
    free(out);
    free(direct);

    log = read_log(&len);
    assert_no_secret(log, len);
    cr_assert_not_null(line_with(log, "C_Login(", "pin=***"), "no masked C_Login:\n%.2000s", log);
    cr_assert_not_null(line_with(log, "C_Login(", "user=CKU_USER"));
    cr_assert_not_null(line_with(log, "C_Login -> CKR_OK", " ms)"));
    cr_assert_not_null(line_with(log, "C_Initialize(", "-> CKR_OK"));
    cr_assert_not_null(line_with(log, "C_GetSlotList(", NULL));
    cr_assert_not_null(line_with(log, "C_OpenSession(", "CKF_SERIAL_SESSION"));
    cr_assert_not_null(line_with(log, "C_GetTokenInfo -> CKR_OK", "label=\"Strata\""));
    cr_assert_not_null(line_with(log, "C_SignInit(", "mechanism=CKM_"));
    cr_assert_not_null(line_with(log, "C_FindObjectsInit(", "CKA_CLASS="));
    cr_assert_not_null(line_with(log, "C_Finalize -> CKR_OK", NULL),
                       "C_Finalize's result line is missing");
    cr_assert_null(line_with(log, "-> CKR_UNKNOWN", NULL));
    free(log);
}

/* A wrong PIN, a secret key's value in a template and in
 * C_GetAttributeValue: codes named, values masked, public values shown. */
Test(calllog, secrets_masked_codes_named)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    char value[] = SECRET_VALUE, label[] = "calllog-secret", got[64];
    CK_ATTRIBUTE templ[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_LABEL, label, strlen(label)},
        {CKA_VALUE, value, strlen(value)},
    };
    CK_ATTRIBUTE read[] = {{CKA_VALUE, got, sizeof(got)}, {CKA_LABEL, got + 40, 20}};
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_SLOT_ID slot;
    char *log;
    size_t len;

    setenv("STRATA_LOG", "calls", 1);
    setenv("STRATA_LOG_FILE", log_path, 1);
    p11 = load_strata();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    s = open_session(p11, &slot);
    cr_assert_eq(login(p11, s, "not-the-pin"), CKR_PIN_INCORRECT);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_CreateObject(s, templ, sizeof(templ) / sizeof(templ[0]), &key), CKR_OK);
    cr_assert_eq(p11->C_GetAttributeValue(s, key, read, 2), CKR_OK);
    cr_assert_eq(read[0].ulValueLen, strlen(SECRET_VALUE));
    cr_assert_eq(memcmp(got, SECRET_VALUE, strlen(SECRET_VALUE)), 0);
    (void)p11->C_SeedRandom(s, (CK_BYTE_PTR)value, 4); /* whatever the backend says */
    cr_assert_eq(p11->C_CloseSession(999999), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    log = read_log(&len);
    assert_no_secret(log, len);
    cr_assert_null(memmem(log, len, "not-the-pin", 11), "the wrong PIN was logged");
    cr_assert_not_null(line_with(log, "C_Login -> CKR_PIN_INCORRECT", NULL), "%.3000s", log);
    cr_assert_not_null(line_with(log, "C_CloseSession(session=999999)", NULL));
    cr_assert_not_null(line_with(log, "C_CloseSession -> CKR_SESSION_HANDLE_INVALID", NULL));
    cr_assert_not_null(line_with(log, "C_CreateObject(", "CKA_CLASS=CKO_SECRET_KEY"), "%.3000s",
                       log);
    cr_assert_not_null(line_with(log, "C_CreateObject(", "CKA_KEY_TYPE=CKK_GENERIC_SECRET"));
    cr_assert_not_null(line_with(log, "C_CreateObject(", "CKA_LABEL=\"calllog-secret\""));
    cr_assert_not_null(line_with(log, "C_CreateObject(", "CKA_VALUE=*** (31 bytes)"));
    cr_assert_not_null(line_with(log, "C_CreateObject(", "CKA_TOKEN=CK_FALSE"));
    cr_assert_not_null(line_with(log, "C_GetAttributeValue -> CKR_OK", "CKA_VALUE=***"));
    cr_assert_not_null(line_with(log, "C_GetAttributeValue -> CKR_OK", "\"calllog-secret\""));
    cr_assert_not_null(line_with(log, "C_SeedRandom(", "seed=[4 bytes]"));
    free(log);
}

/* <log calls="PATH"/> in the policy turns the call log on without any
 * environment variable; without either, nothing is written. */
Test(calllog, policy_log_element_enables_calls)
{
    char xml[8192];
    const char *after_catalog = strstr(policy, "  <module");
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char *log;
    size_t len;

    cr_assert_not_null(after_catalog);
    snprintf(xml, sizeof(xml),
             "<strata version=\"1\">\n  <catalog path=\"@CATALOG@\"/>\n  <log calls=\"%s\"/>\n%s",
             log_path, after_catalog);
    cr_assert_eq(world_policy(&w, xml), 0);
    p11 = load_strata();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    s = open_session(p11, &slot);
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    log = read_log(&len);
    assert_no_secret(log, len);
    cr_assert_not_null(line_with(log, "C_Initialize(init_args=NULL) -> CKR_OK", NULL), "%s", log);
    cr_assert_not_null(line_with(log, "C_Login(", "pin=***"));
    cr_assert_not_null(line_with(log, "C_Logout -> CKR_OK", NULL));
    cr_assert_not_null(line_with(log, "C_Finalize -> CKR_OK", NULL));
    free(log);
}

Test(calllog, off_by_default)
{
    struct stat st;
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;

    setenv("STRATA_LOG_FILE", log_path, 1); /* a destination alone does not enable it */
    p11 = load_strata();
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    s = open_session(p11, &slot);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_neq(stat(log_path, &st), 0, "a log file was written with the log off");
}

/* A C_Initialize that fails (no policy) still logs its result line,
 * although the log closes inside the call. */
Test(calllog, failed_initialize_is_logged)
{
    CK_FUNCTION_LIST *p11;
    char *log;
    size_t len;

    setenv("STRATA_LOG", "calls", 1);
    setenv("STRATA_LOG_FILE", log_path, 1);
    setenv("STRATA_CONF", "/nonexistent/strata.xml", 1);
    p11 = load_strata();
    cr_assert_neq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetInfo(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

    log = read_log(&len);
    cr_assert_not_null(line_with(log, "C_Initialize(init_args=NULL) -> CKR_", NULL), "%s", log);
    cr_assert_null(line_with(log, "C_Initialize(init_args=NULL) -> CKR_OK", NULL));
    cr_assert_null(line_with(log, "C_GetInfo", NULL), "a call after the log closed was logged");
    free(log);
}
