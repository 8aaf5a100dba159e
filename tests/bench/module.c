/*
 * module.c - loading a PKCS#11 module by path and preparing a run: tokens
 * by label, control sessions and login, the key or object a workload uses
 * and its input, each worker's sessions, and --populate's data objects.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define LABEL_LEN 32 /* CK_TOKEN_INFO.label, blank-padded */

/* SHA-256 DigestInfo prefix: with a 32-byte digest, the 51 bytes CKM_RSA_PKCS signs. */
static const unsigned char sign_input[51] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x02, 0x01, 0x05, 0x00, 0x04, 0x20, 0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d,
    0x65, 0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15, 0xa3, 0xbf, 0x4f, 0x1b,
    0x2b, 0x0b, 0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08,
};
#define DIGEST_OFFSET 19 /* the bare 32-byte digest ECDSA signs */

void bench_fail_rv(bench_error *err, const char *call, CK_RV rv)
{
    err->call = call;
    err->rv = rv;
    err->msg[0] = '\0';
}

void bench_fail(bench_error *err, const char *fmt, ...)
{
    va_list ap;

    err->call = NULL;
    err->rv = CKR_OK;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/*
 * dlopens path, gets its function list and initialises it with OS locking.
 * Returns true on success; false with err set when the file does not load,
 * has no C_GetFunctionList, or a call fails. bench_module_close undoes it
 * either way.
 */
bool bench_module_open(bench_module *m, const char *path, bench_error *err)
{
    CK_C_INITIALIZE_ARGS args = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
    CK_C_GetFunctionList get;
    CK_RV rv;

    memset(m, 0, sizeof(*m));
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        bench_fail(err, "cannot load module %s: %s", path, dlerror());
        return false;
    }
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL) {
        bench_fail(err, "module %s has no C_GetFunctionList", path);
        return false;
    }
    rv = get(&m->f);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_GetFunctionList", rv);
        return false;
    }
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_Initialize", rv);
        return false;
    }
    m->initialized = true;
    return true;
}

/*
 * Closes the control sessions, finalises and unloads the module. Returns
 * C_Finalize's code, or CKR_OK when the module was not initialised.
 */
CK_RV bench_module_close(bench_module *m)
{
    CK_RV rv = CKR_OK;

    if (m->initialized) {
        for (size_t i = 0; i < m->ntokens; i++) {
            if (m->control[i] != CK_INVALID_HANDLE) {
                m->f->C_CloseSession(m->control[i]);
            }
        }
        rv = m->f->C_Finalize(NULL);
        m->initialized = false;
    }
    if (m->dl != NULL) {
        dlclose(m->dl);
        m->dl = NULL;
    }
    return rv;
}

/* Copies a blank-padded token label into out (LABEL_LEN + 1 bytes), trimmed. */
static void trim_label(const CK_UTF8CHAR *label, char *out)
{
    size_t n = LABEL_LEN;

    while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0')) {
        n--;
    }
    memcpy(out, label, n);
    out[n] = '\0';
}

/*
 * Gets the slots that hold a token into a malloc'd array (*slots, *count).
 * Returns true on success; false with err set when a call fails or memory
 * runs out.
 */
static bool token_slots(bench_module *m, CK_SLOT_ID **slots, CK_ULONG *count, bench_error *err)
{
    CK_RV rv;

    *slots = NULL;
    rv = m->f->C_GetSlotList(CK_TRUE, NULL, count);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_GetSlotList", rv);
        return false;
    }
    *slots = calloc(*count + 1, sizeof(**slots));
    if (*slots == NULL) {
        bench_fail(err, "out of memory");
        return false;
    }
    rv = m->f->C_GetSlotList(CK_TRUE, *slots, count);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_GetSlotList", rv);
        free(*slots);
        *slots = NULL;
        return false;
    }
    return true;
}

/*
 * Prints one line per slot with a token: slot ID, label, model,
 * manufacturer. Returns true on success; false with err set when a call
 * fails.
 */
bool bench_module_list(bench_module *m, bench_error *err)
{
    CK_SLOT_ID *slots;
    CK_ULONG count;
    CK_TOKEN_INFO ti;
    char label[LABEL_LEN + 1];
    CK_RV rv;

    if (!token_slots(m, &slots, &count, err)) {
        return false;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        rv = m->f->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK) {
            bench_fail_rv(err, "C_GetTokenInfo", rv);
            free(slots);
            return false;
        }
        trim_label(ti.label, label);
        printf("slot %lu: token \"%s\" model \"%.16s\" manufacturer \"%.32s\"\n",
               (unsigned long)slots[i], label, (const char *)ti.model,
               (const char *)ti.manufacturerID);
    }
    printf("%lu token(s)\n", (unsigned long)count);
    free(slots);
    return true;
}

/*
 * Finds the slot of the token labelled label among slots. Returns true and
 * sets *slot; false with err set when no token has that label (naming the
 * labels present) or a call fails.
 */
static bool find_token(bench_module *m, const CK_SLOT_ID *slots, CK_ULONG count, const char *label,
                       CK_SLOT_ID *slot, bench_error *err)
{
    char seen[BENCH_MSG_LEN / 2] = "";
    char have[LABEL_LEN + 1];
    size_t used = 0;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    for (CK_ULONG i = 0; i < count; i++) {
        rv = m->f->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK) {
            bench_fail_rv(err, "C_GetTokenInfo", rv);
            return false;
        }
        trim_label(ti.label, have);
        if (strcmp(have, label) == 0) {
            *slot = slots[i];
            return true;
        }
        if (used < sizeof(seen)) {
            int n = snprintf(seen + used, sizeof(seen) - used, "%s\"%s\"", i > 0 ? ", " : "", have);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    bench_fail(err, "token \"%s\" not found (tokens present: %s)", label,
               count > 0 ? seen : "none");
    return false;
}

/*
 * Finds the slot of every --token label and opens one control session on
 * each (read-write when populating), kept open for the whole run so that
 * the login state survives the workers' sessions. Returns true on success;
 * false with err set when a token is missing or a call fails.
 */
bool bench_module_find_tokens(bench_module *m, const bench_opts *o, bench_error *err)
{
    CK_FLAGS flags = CKF_SERIAL_SESSION | (o->populate > 0 ? CKF_RW_SESSION : 0);
    CK_SLOT_ID *slots;
    CK_ULONG count;
    bool ok = false;
    CK_RV rv;

    if (!token_slots(m, &slots, &count, err)) {
        return false;
    }
    for (size_t i = 0; i < o->ntokens; i++) {
        m->labels[i] = o->tokens[i];
        if (!find_token(m, slots, count, o->tokens[i], &m->slots[i], err)) {
            goto out;
        }
        rv = m->f->C_OpenSession(m->slots[i], flags, NULL, NULL, &m->control[i]);
        if (rv != CKR_OK) {
            m->control[i] = CK_INVALID_HANDLE;
            bench_fail_rv(err, "C_OpenSession", rv);
            goto out;
        }
        m->ntokens = i + 1;
    }
    ok = true;
out:
    free(slots);
    return ok;
}

/*
 * Logs the user in on every control session. Returns true on success;
 * false with err set when C_Login fails (CKR_PIN_INCORRECT and the like).
 */
bool bench_module_login(bench_module *m, const char *pin, bench_error *err)
{
    CK_RV rv;

    for (size_t i = 0; i < m->ntokens; i++) {
        rv = m->f->C_Login(m->control[i], CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            bench_fail_rv(err, "C_Login", rv);
            return false;
        }
    }
    m->logged_in = true;
    return true;
}

/*
 * Finds the object the workload uses in the first token: for a sign
 * workload the private key of its key type labelled label, otherwise any
 * object labelled label. Sets m->object. Returns true on success; false
 * with err set when there is none or a call fails.
 */
bool bench_module_find_object(bench_module *m, const bench_workload *wl, const char *label,
                              bench_error *err)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = wl->key_type;
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
    };
    CK_ULONG nattrs = wl->mech != 0 ? 3 : 1;
    CK_SESSION_HANDLE s = m->control[0];
    CK_ULONG got = 0;
    CK_RV rv;

    rv = m->f->C_FindObjectsInit(s, t, nattrs);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_FindObjectsInit", rv);
        return false;
    }
    rv = m->f->C_FindObjects(s, &m->object, 1, &got);
    m->f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_FindObjects", rv);
        return false;
    }
    if (got == 0) {
        bench_fail(err, "no %s labelled \"%s\" in token \"%s\"",
                   wl->mech == 0  ? "object"
                   : kt == CKK_EC ? "EC private key"
                                  : "RSA private key",
                   label, m->labels[0]);
        return false;
    }
    return true;
}

/*
 * Fills m with what the workload's operations read (mechanism, sign input,
 * PIN, --objects), logs in on the control sessions unless the operation
 * itself logs in, and finds the workload's key or object (o->key_label, or
 * the workload's default). Returns true on success; false with err set
 * when the login fails or the key or object is missing.
 */
bool bench_module_prepare(bench_module *m, const bench_opts *o, const bench_workload *wl,
                          bench_error *err)
{
    const char *label = o->key_label != NULL ? o->key_label : wl->default_key;

    m->pin = o->pin;
    m->expect_objects = o->objects;
    m->mechanism = wl->mech;
    m->data = wl->key_type == CKK_EC ? sign_input + DIGEST_OFFSET : sign_input;
    m->data_len = wl->key_type == CKK_EC ? sizeof(sign_input) - DIGEST_OFFSET : sizeof(sign_input);
    if (!wl->login_op && !bench_module_login(m, o->pin, err)) {
        return false;
    }
    if (label != NULL && !bench_module_find_object(m, wl, label, err)) {
        return false;
    }
    return true;
}

/*
 * Creates count private data objects as token objects through the first
 * control session (logged in, read-write), labelled obj-NNNNNN from first
 * on. Data objects have no CKA_ID in PKCS#11 v2.40, so the label is what
 * tells them apart. Returns true on success; false with err set at the
 * first failing call.
 */
bool bench_module_populate(bench_module *m, unsigned long first, unsigned long count,
                           bench_error *err)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    char label[32];
    static const char app[] = "strata-bench";
    CK_BYTE value[32];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, label, 0},
        {CKA_APPLICATION, (void *)app, sizeof(app) - 1},
        {CKA_VALUE, value, sizeof(value)},
    };
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    memset(value, 0x5a, sizeof(value));
    for (unsigned long i = first; i < first + count; i++) {
        int n = snprintf(label, sizeof(label), "obj-%06lu", i);
        t[3].ulValueLen = (CK_ULONG)n;
        rv = m->f->C_CreateObject(m->control[0], t, sizeof(t) / sizeof(t[0]), &h);
        if (rv != CKR_OK) {
            bench_fail_rv(err, "C_CreateObject", rv);
            return false;
        }
    }
    return true;
}

/*
 * Opens the worker's own read-only session on every token of the run.
 * Returns true on success; false with err set when C_OpenSession fails.
 */
bool bench_worker_open(bench_worker *w, bench_error *err)
{
    CK_RV rv;

    for (size_t i = 0; i < w->m->ntokens; i++) {
        rv =
            w->m->f->C_OpenSession(w->m->slots[i], CKF_SERIAL_SESSION, NULL, NULL, &w->sessions[i]);
        if (rv != CKR_OK) {
            w->sessions[i] = CK_INVALID_HANDLE;
            bench_fail_rv(err, "C_OpenSession", rv);
            return false;
        }
    }
    return true;
}

/* Closes the worker's sessions. */
void bench_worker_close(bench_worker *w)
{
    for (size_t i = 0; i < w->m->ntokens; i++) {
        if (w->sessions[i] != CK_INVALID_HANDLE) {
            w->m->f->C_CloseSession(w->sessions[i]);
            w->sessions[i] = CK_INVALID_HANDLE;
        }
    }
}
