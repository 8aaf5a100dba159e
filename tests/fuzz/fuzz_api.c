/*
 * fuzz_api.c - libFuzzer target for the PKCS#11 surface: the engine,
 * compiled into the target (coverage), over a SoftHSM2-backed view made
 * once in LLVMFuzzerInitialize (a temporary folder with its own
 * softhsm2.conf, two tokens, a policy, a view enrolled with the strata
 * command, an EC key in each layer).
 *
 * The input is a program: each step is one C_* call, chosen by a byte,
 * whose arguments come from the next bytes: known handles, 0, wild and
 * huge handles; NULL pointers; templates with NULL values and any
 * claimed length, or real buffers of exactly the claimed length (never a
 * buffer shorter than claimed: a correct module could not detect that).
 * Every return code is checked against the specification's list for the
 * function (PKCS#11 v2.40, chapter 5); a code outside it aborts. Each
 * input ends with C_CloseAllSessions, so inputs do not depend on each
 * other. Token objects are never made or destroyed (CKA_TOKEN is not among
 * the template types, a wild type that happens to be CKA_TOKEN is moved to
 * the vendor range, and C_DestroyObject / C_SetAttributeValue are not
 * called on token object handles), so the world stays the same: nothing
 * an input does outlives it (see README, "Memory"). A normal exit
 * finalizes the library and removes the world's folder; a crash leaves it.
 *
 * Environment: STRATA_CLI (the strata command; default: cli/strata of the
 * build folder holding this target).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PIN         "fuzz-pin-1"
#define SOFTHSM     "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_SAVED   16
#define MAX_BUF     4096
#define SESSION_OBJ ((CK_OBJECT_HANDLE)0x80000000UL)

static CK_FUNCTION_LIST *p11;
static CK_SLOT_ID slot;
static char dir[] = "/tmp/strata-fuzz-api.XXXXXX";

/* ---------------------------------------------------------------------
 * The world
 * ------------------------------------------------------------------ */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_api: setup failed: %s\n", what);
    abort();
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        die(cmd);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        die(path);
    }
}

static void strata_cli(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n;

    if (getenv("STRATA_CLI") != NULL) {
        snprintf(out, size, "%s", getenv("STRATA_CLI"));
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        die("/proc/self/exe");
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0'; /* <build>/tests/fuzz */
    snprintf(out, size, "%s/../../cli/strata", self);
}

static void make_world(void)
{
    char path[PATH_MAX + 64], cli[PATH_MAX], policy[8192];

    if (mkdtemp(dir) == NULL) {
        die("mkdtemp");
    }
    snprintf(path, sizeof(path), "%s/tokens", dir);
    sh("mkdir -p '%s'", path);
    snprintf(policy, sizeof(policy),
             "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
             "log.level = ERROR\n",
             dir);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
    write_file(path, policy);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(path, sizeof(path), "%s/strata.xml", dir);
    setenv("STRATA_CONF", path, 1);
    snprintf(path, sizeof(path), "%s/xdg", dir);
    setenv("XDG_CONFIG_HOME", path, 1);
    setenv("XDG_DATA_HOME", path, 1);
    snprintf(policy, sizeof(policy),
             "<strata version=\"1\">\n"
             "  <catalog path=\"%s/catalog.db\"/>\n"
             "  <module id=\"soft\" path=\"" SOFTHSM "\"/>\n"
             "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
             "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
             "  <token label=\"Strata\" max-failed-logins=\"1000000000\">\n"
             "    <kdf ops=\"1\" mem=\"8192\"/>\n"
             "    <view id=\"work\" layers=\"personal group\" whiteout=\"allow\"/>\n"
             "  </token>\n"
             "</strata>\n",
             dir);
    snprintf(path, sizeof(path), "%s/strata.xml", dir);
    write_file(path, policy);
    sh("softhsm2-util --init-token --free --label personal --so-pin 12345678 --pin 1111 "
       ">/dev/null");
    sh("softhsm2-util --init-token --free --label group --so-pin 12345678 --pin 2222 >/dev/null");
    sh("pkcs11-tool --module " SOFTHSM " --token-label personal --login --pin 1111 "
       "--keypairgen --key-type EC:prime256v1 --label p-ec --id 01 >/dev/null 2>&1");
    sh("pkcs11-tool --module " SOFTHSM " --token-label group --login --pin 2222 "
       "--keypairgen --key-type EC:prime256v1 --label g-ec --id 02 >/dev/null 2>&1");
    strata_cli(cli, sizeof(cli));
    sh("printf '%%s\\n' " PIN " 1111 2222 | '%s' enroll --token Strata --view work --pin-stdin "
       ">/dev/null",
       cli);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* At a normal exit (libFuzzer's -runs or -max_total_time, a reproduction):
 * finalizes the library, then removes the world's folder (the tokens and
 * the catalog, a few MB after a long run), so runs do not pile them up in
 * /tmp. A crash or a timeout exits without atexit handlers and leaves the
 * folder for inspection. */
static void drop_world(void)
{
    p11->C_Finalize(NULL);
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "fuzz_api: cannot remove %s\n", dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    CK_ULONG n = 1;

    (void)argc;
    (void)argv;
    make_world();
    p11 = engine_function_list();
    if (p11->C_Initialize(NULL) != CKR_OK || p11->C_GetSlotList(CK_TRUE, &slot, &n) != CKR_OK ||
        n != 1) {
        die("C_Initialize");
    }
    atexit(drop_world);
    return 0;
}

/* ---------------------------------------------------------------------
 * The input
 * ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n;
    CK_SESSION_HANDLE sessions[MAX_SAVED];
    CK_OBJECT_HANDLE objects[MAX_SAVED];
    unsigned n_sessions, n_objects;
} input;

static unsigned byte(input *in)
{
    if (in->n == 0) {
        return 0;
    }
    in->n--;
    return *in->p++;
}

static CK_ULONG word(input *in)
{
    CK_ULONG v = 0;

    for (int i = 0; i < 4; i++) {
        v = v << 8 | byte(in);
    }
    return v;
}

/* A length: small mostly, sometimes anything (only with no buffer). */
static CK_ULONG length(input *in, bool any)
{
    unsigned b = byte(in);

    if (any && b >= 0xF0) {
        return b == 0xFF ? (CK_ULONG)-1 : word(in);
    }
    return b < 0xC0 ? b % 80 : (CK_ULONG)(b * 16) % MAX_BUF;
}

static CK_SESSION_HANDLE session_arg(input *in)
{
    unsigned b = byte(in);

    if (b < 200 && in->n_sessions > 0) {
        return in->sessions[b % in->n_sessions];
    }
    return b < 220 ? CK_INVALID_HANDLE : word(in);
}

static CK_OBJECT_HANDLE object_arg(input *in)
{
    unsigned b = byte(in);

    if (b < 120 && in->n_objects > 0) {
        return in->objects[b % in->n_objects];
    }
    if (b < 200) {
        return b % 8; /* the catalog's first handles: the keys */
    }
    return b < 220 ? CK_INVALID_HANDLE : word(in);
}

static void save(CK_ULONG *list, unsigned *n, CK_ULONG v)
{
    if (*n < MAX_SAVED) {
        list[(*n)++] = v;
    } else {
        list[v % MAX_SAVED] = v;
    }
}

/* A buffer of exactly len bytes (NULL when len is 0 or too big). */
static void *buffer(CK_ULONG len)
{
    return len > 0 && len <= MAX_BUF ? calloc(1, len) : NULL;
}

static const CK_ATTRIBUTE_TYPE types[] = {
    CKA_CLASS,     CKA_LABEL,       CKA_ID,       CKA_VALUE,       CKA_KEY_TYPE,  CKA_PRIVATE,
    CKA_SIGN,      CKA_EC_PARAMS,   CKA_EC_POINT, CKA_MODIFIABLE,  CKA_SENSITIVE, CKA_APPLICATION,
    CKA_OBJECT_ID, CKA_DESTROYABLE, CKA_COPYABLE, CKA_EXTRACTABLE, 0x80000001UL,  0xFFFFFFFFUL};

static void free_template(CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; t != NULL && i < n; i++) {
        free(t[i].pValue);
    }
    free(t);
}

/* A template of up to 6 attributes: each value NULL with any length, or
 * a buffer of exactly its length filled from the input. A CKO_DATA class
 * comes first when the input asks, so that creates can succeed. */
static CK_ATTRIBUTE *template_arg(input *in, CK_ULONG *count, bool fill)
{
    CK_ULONG n = byte(in) % 7;
    CK_ATTRIBUTE *t = calloc(n + 1, sizeof(*t));

    for (CK_ULONG i = 0; t != NULL && i < n; i++) {
        unsigned b = byte(in);

        t[i].type = b < 0xF0 ? types[b % (sizeof(types) / sizeof(types[0]))] : word(in);
        if (t[i].type == CKA_TOKEN) {
            /* A token object would outlive the input: every later search
             * would meet it, so inputs would no longer be independent. */
            t[i].type |= CKA_VENDOR_DEFINED;
        }
        if (byte(in) < 0x30) {
            t[i].pValue = NULL;
            t[i].ulValueLen = length(in, true);
            continue;
        }
        t[i].ulValueLen = length(in, false);
        t[i].pValue = buffer(t[i].ulValueLen);
        if (t[i].pValue == NULL) {
            t[i].ulValueLen = 0;
        } else if (t[i].type == CKA_CLASS && t[i].ulValueLen >= sizeof(CK_OBJECT_CLASS)) {
            *(CK_OBJECT_CLASS *)t[i].pValue = byte(in) % 5;
        }
        for (CK_ULONG k = 0; fill && t[i].pValue != NULL && k < t[i].ulValueLen && k < 64; k++) {
            ((uint8_t *)t[i].pValue)[k] = (uint8_t)byte(in);
        }
    }
    *count = n;
    if (byte(in) < 0x10) {
        free_template(t, n);
        *count = length(in, true); /* NULL, with a count it does not have */
        return NULL;
    }
    return t;
}

/* ---------------------------------------------------------------------
 * Allowed codes (PKCS#11 v2.40, chapter 5: each function's list)
 * ------------------------------------------------------------------ */

#define COMMON                                                                                     \
    CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED, \
        CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR, CKR_HOST_MEMORY
#define SESSION COMMON, CKR_SESSION_CLOSED, CKR_SESSION_HANDLE_INVALID

static void check(const char *call, CK_RV rv, size_t n, const CK_RV *ok)
{
    for (size_t i = 0; i < n; i++) {
        if (rv == ok[i]) {
            return;
        }
    }
    fprintf(stderr, "fuzz_api: %s returned 0x%lx, not in the specification's list\n", call,
            (unsigned long)rv);
    abort();
}

#define CHECK(call, rv, ...)                                                                       \
    check((call), (rv), sizeof((CK_RV[]){__VA_ARGS__}) / sizeof(CK_RV), (CK_RV[]){__VA_ARGS__})

/* ---------------------------------------------------------------------
 * The calls
 * ------------------------------------------------------------------ */

static CK_SLOT_ID slot_arg(input *in)
{
    unsigned b = byte(in);

    return b < 200 ? slot : b < 230 ? b : word(in);
}

static void call_info(input *in)
{
    CK_SLOT_ID id = slot_arg(in);
    unsigned what = byte(in) % 4;
    bool null = byte(in) < 0x20;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_INFO info;
    CK_RV rv;

    switch (what) {
    case 0:
        rv = p11->C_GetInfo(null ? NULL : &info);
        CHECK("C_GetInfo", rv, COMMON, CKR_ARGUMENTS_BAD);
        break;
    case 1:
        rv = p11->C_GetSlotInfo(id, null ? NULL : &si);
        CHECK("C_GetSlotInfo", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_SLOT_ID_INVALID);
        break;
    case 2:
        rv = p11->C_GetTokenInfo(id, null ? NULL : &ti);
        CHECK("C_GetTokenInfo", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_SLOT_ID_INVALID,
              CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED);
        break;
    default: {
        CK_ULONG n = length(in, byte(in) < 0x40);
        CK_SLOT_ID *list = buffer(n * sizeof(CK_SLOT_ID));

        rv = p11->C_GetSlotList(byte(in) & 1, list, null ? NULL : &n);
        CHECK("C_GetSlotList", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL);
        free(list);
        break;
    }
    }
}

static void call_mechanisms(input *in)
{
    CK_SLOT_ID id = slot_arg(in);
    CK_ULONG n = length(in, false);
    CK_MECHANISM_TYPE *list = buffer(n * sizeof(CK_MECHANISM_TYPE));
    CK_MECHANISM_INFO mi;
    bool null = byte(in) < 0x20;
    CK_RV rv;

    if (byte(in) & 1) {
        rv = p11->C_GetMechanismList(id, list, null ? NULL : &n);
        CHECK("C_GetMechanismList", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL,
              CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED);
    } else {
        CK_MECHANISM_TYPE type = byte(in) < 0x80 ? CKM_ECDSA : word(in);
        rv = p11->C_GetMechanismInfo(id, type, null ? NULL : &mi);
        CHECK("C_GetMechanismInfo", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_MECHANISM_INVALID,
              CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED);
    }
    free(list);
}

static void call_open(input *in)
{
    CK_SLOT_ID id = slot_arg(in);
    unsigned b = byte(in);
    CK_FLAGS flags = b < 0x80   ? CKF_SERIAL_SESSION | CKF_RW_SESSION
                     : b < 0xE0 ? CKF_SERIAL_SESSION
                                : word(in);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_OpenSession(id, flags, NULL, NULL, byte(in) < 0x10 ? NULL : &s);

    CHECK("C_OpenSession", rv, COMMON, CKR_ARGUMENTS_BAD, CKR_SESSION_COUNT,
          CKR_SESSION_PARALLEL_NOT_SUPPORTED, CKR_SESSION_READ_WRITE_SO_EXISTS, CKR_SLOT_ID_INVALID,
          CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED, CKR_TOKEN_WRITE_PROTECTED);
    if (rv == CKR_OK) {
        save(in->sessions, &in->n_sessions, s);
    }
}

static void call_close(input *in)
{
    unsigned b = byte(in);
    CK_RV rv;

    if (b < 0x10) {
        rv = p11->C_CloseAllSessions(slot_arg(in));
        CHECK("C_CloseAllSessions", rv, COMMON, CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT);
        return;
    }
    rv = p11->C_CloseSession(session_arg(in));
    CHECK("C_CloseSession", rv, SESSION);
}

static void call_session_info(input *in)
{
    CK_SESSION_INFO info;
    CK_SESSION_HANDLE s = session_arg(in);
    CK_RV rv = p11->C_GetSessionInfo(s, byte(in) < 0x20 ? NULL : &info);

    CHECK("C_GetSessionInfo", rv, SESSION, CKR_ARGUMENTS_BAD);
}

static void call_login(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    unsigned b = byte(in);
    CK_USER_TYPE user = b < 0xC0 ? CKU_USER : b < 0xE0 ? CKU_SO : word(in);
    char pin[64];
    CK_ULONG len;
    CK_RV rv;

    b = byte(in);
    if (b < 0xA0) {
        len = strlen(PIN);
        memcpy(pin, PIN, len);
    } else {
        len = byte(in) % sizeof(pin);
        for (CK_ULONG i = 0; i < len; i++) {
            pin[i] = (char)byte(in);
        }
    }
    if (b >= 0xF8) {
        rv = p11->C_Login(s, user, NULL, length(in, true));
    } else {
        rv = p11->C_Login(s, user, (CK_UTF8CHAR_PTR)pin, len);
    }
    CHECK("C_Login", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED,
          CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_SESSION_READ_ONLY_EXISTS,
          CKR_USER_ALREADY_LOGGED_IN, CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
          CKR_USER_PIN_NOT_INITIALIZED, CKR_USER_TOO_MANY_TYPES, CKR_USER_TYPE_INVALID);
}

static void call_logout(input *in)
{
    CK_RV rv = p11->C_Logout(session_arg(in));

    CHECK("C_Logout", rv, SESSION, CKR_USER_NOT_LOGGED_IN);
}

/* A session object of this input, or one that cannot be a token object. */
static CK_OBJECT_HANDLE session_object_arg(input *in)
{
    CK_OBJECT_HANDLE o = object_arg(in);

    return o >= SESSION_OBJ || o == CK_INVALID_HANDLE ? o : o | SESSION_OBJ;
}

static void call_create(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    CK_ULONG n = 0;
    CK_ATTRIBUTE *t = template_arg(in, &n, true);
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    bool null = byte(in) < 0x10;
    CK_RV rv;

    if (byte(in) < 0x80 || t == NULL) {
        rv = p11->C_CreateObject(s, t, n, null ? NULL : &o);
        CHECK("C_CreateObject", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_ACTION_PROHIBITED,
              CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID,
              CKR_CURVE_NOT_SUPPORTED, CKR_DOMAIN_PARAMS_INVALID, CKR_PIN_EXPIRED,
              CKR_SESSION_READ_ONLY, CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCONSISTENT,
              CKR_TOKEN_WRITE_PROTECTED, CKR_USER_NOT_LOGGED_IN);
    } else {
        rv = p11->C_CopyObject(s, session_object_arg(in), t, n, null ? NULL : &o);
        CHECK("C_CopyObject", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_ACTION_PROHIBITED,
              CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID,
              CKR_OBJECT_HANDLE_INVALID, CKR_PIN_EXPIRED, CKR_SESSION_READ_ONLY,
              CKR_TEMPLATE_INCONSISTENT, CKR_TOKEN_WRITE_PROTECTED, CKR_USER_NOT_LOGGED_IN);
    }
    if (rv == CKR_OK) {
        save(in->objects, &in->n_objects, o);
    }
    free_template(t, t != NULL ? n : 0);
}

static void call_destroy(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    CK_RV rv = p11->C_DestroyObject(s, session_object_arg(in));

    CHECK("C_DestroyObject", rv, SESSION, CKR_ACTION_PROHIBITED, CKR_OBJECT_HANDLE_INVALID,
          CKR_PIN_EXPIRED, CKR_SESSION_READ_ONLY, CKR_TOKEN_WRITE_PROTECTED);
}

static void call_attributes(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    unsigned what = byte(in) % 3;
    CK_OBJECT_HANDLE o = what == 1 ? session_object_arg(in) : object_arg(in);
    CK_ULONG n = 0, size = 0;
    CK_ATTRIBUTE *t = template_arg(in, &n, what == 1);
    CK_RV rv;

    switch (what) {
    case 0:
        rv = p11->C_GetAttributeValue(s, o, t, n);
        CHECK("C_GetAttributeValue", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_SENSITIVE,
              CKR_ATTRIBUTE_TYPE_INVALID, CKR_BUFFER_TOO_SMALL, CKR_OBJECT_HANDLE_INVALID);
        break;
    case 1:
        rv = p11->C_SetAttributeValue(s, o, t, n);
        CHECK("C_SetAttributeValue", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_ACTION_PROHIBITED,
              CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID,
              CKR_OBJECT_HANDLE_INVALID, CKR_SESSION_READ_ONLY, CKR_TEMPLATE_INCONSISTENT,
              CKR_TOKEN_WRITE_PROTECTED, CKR_USER_NOT_LOGGED_IN);
        break;
    default:
        rv = p11->C_GetObjectSize(s, o, byte(in) < 0x20 ? NULL : &size);
        CHECK("C_GetObjectSize", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_INFORMATION_SENSITIVE,
              CKR_OBJECT_HANDLE_INVALID);
        break;
    }
    free_template(t, t != NULL ? n : 0);
}

static void call_find(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    unsigned what = byte(in) % 3;
    CK_ULONG n = 0, got = 0;
    CK_ATTRIBUTE *t;
    CK_OBJECT_HANDLE *out;
    CK_RV rv;

    switch (what) {
    case 0:
        t = template_arg(in, &n, true);
        rv = p11->C_FindObjectsInit(s, t, n);
        CHECK("C_FindObjectsInit", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_TYPE_INVALID,
              CKR_ATTRIBUTE_VALUE_INVALID, CKR_OPERATION_ACTIVE, CKR_PIN_EXPIRED);
        free_template(t, t != NULL ? n : 0);
        break;
    case 1:
        n = length(in, false) % 32;
        out = buffer(n * sizeof(*out));
        rv = p11->C_FindObjects(s, out, out == NULL && byte(in) < 0x80 ? length(in, true) : n,
                                byte(in) < 0x10 ? NULL : &got);
        CHECK("C_FindObjects", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED);
        for (CK_ULONG i = 0; rv == CKR_OK && i < got && out != NULL; i++) {
            save(in->objects, &in->n_objects, out[i]);
        }
        free(out);
        break;
    default:
        rv = p11->C_FindObjectsFinal(s);
        CHECK("C_FindObjectsFinal", rv, SESSION, CKR_OPERATION_NOT_INITIALIZED);
        break;
    }
}

static CK_MECHANISM *mechanism_arg(input *in, CK_MECHANISM *m, uint8_t *param)
{
    unsigned b = byte(in);
    static const CK_MECHANISM_TYPE known[] = {CKM_ECDSA, CKM_ECDSA_SHA256, CKM_SHA256,
                                              CKM_SHA256_RSA_PKCS, CKM_SHA_1};

    if (b < 0x08) {
        return NULL;
    }
    m->mechanism = b < 0xF0 ? known[b % 5] : word(in);
    m->pParameter = NULL;
    m->ulParameterLen = 0;
    if (byte(in) >= 0xE0) {
        m->ulParameterLen = length(in, false) % 64;
        m->pParameter = m->ulParameterLen > 0 ? param : NULL;
    }
    return m;
}

static void call_sign(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    unsigned what = byte(in) % 4;
    CK_MECHANISM m;
    uint8_t param[64] = {0}, data[256];
    CK_ULONG n = length(in, false) % sizeof(data), out_len = length(in, false);
    uint8_t *out = byte(in) < 0x40 ? NULL : buffer(out_len);
    CK_RV rv;

    memset(data, 0x5A, sizeof(data));
    if (out == NULL && byte(in) < 0x40) {
        out_len = length(in, true); /* a size query with any length */
    }
    switch (what) {
    case 0:
        rv = p11->C_SignInit(s, mechanism_arg(in, &m, param), object_arg(in));
        CHECK("C_SignInit", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_KEY_FUNCTION_NOT_PERMITTED,
              CKR_KEY_HANDLE_INVALID, CKR_KEY_SIZE_RANGE, CKR_KEY_TYPE_INCONSISTENT,
              CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE,
              CKR_PIN_EXPIRED, CKR_USER_NOT_LOGGED_IN);
        break;
    case 1:
        rv = p11->C_Sign(s, byte(in) < 0x10 ? NULL : data, n, out,
                         byte(in) < 0x10 ? NULL : &out_len);
        CHECK("C_Sign", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL, CKR_DATA_INVALID,
              CKR_DATA_LEN_RANGE, CKR_OPERATION_NOT_INITIALIZED, CKR_USER_NOT_LOGGED_IN,
              CKR_FUNCTION_REJECTED);
        break;
    case 2:
        rv = p11->C_DigestInit(s, mechanism_arg(in, &m, param));
        CHECK("C_DigestInit", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_MECHANISM_INVALID,
              CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE, CKR_PIN_EXPIRED,
              CKR_USER_NOT_LOGGED_IN);
        break;
    default:
        rv = p11->C_Digest(s, byte(in) < 0x10 ? NULL : data, n, out,
                           byte(in) < 0x10 ? NULL : &out_len);
        CHECK("C_Digest", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL, CKR_DATA_LEN_RANGE,
              CKR_OPERATION_NOT_INITIALIZED);
        break;
    }
    free(out);
}

static void call_random(input *in)
{
    CK_SESSION_HANDLE s = session_arg(in);
    CK_ULONG n = length(in, false);
    uint8_t *out = buffer(n);
    CK_RV rv = p11->C_GenerateRandom(s, out, out == NULL ? length(in, true) : n);

    CHECK("C_GenerateRandom", rv, SESSION, CKR_ARGUMENTS_BAD, CKR_OPERATION_ACTIVE,
          CKR_RANDOM_NO_RNG, CKR_USER_NOT_LOGGED_IN);
    free(out);
}

typedef void (*step_fn)(input *in);

static const step_fn steps[] = {
    call_info,  call_mechanisms, call_open,   call_open,    call_close,      call_session_info,
    call_login, call_logout,     call_create, call_destroy, call_attributes, call_attributes,
    call_find,  call_find,       call_sign,   call_sign,    call_random,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {.p = data, .n = size};
    CK_RV rv;

    for (int i = 0; i < 64 && in.n > 0; i++) {
        steps[byte(&in) % (sizeof(steps) / sizeof(steps[0]))](&in);
    }
    rv = p11->C_CloseAllSessions(slot);
    CHECK("C_CloseAllSessions", rv, CKR_OK);
    return 0;
}
