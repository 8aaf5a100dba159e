/*
 * workload.c - the timed operations of the benchmark, one per workload,
 * and the clock that times them.
 *
 * Each operation runs on the calling worker's own sessions and touches
 * nothing shared but the read-only bench_module, so workers never contend
 * inside the benchmark itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

#define SIG_MAX  1024 /* big enough for RSA-4096 and any ECDSA signature */
#define ATTR_MAX 256  /* CKA_LABEL / CKA_ID buffer */

/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CLOCK_MONOTONIC in nanoseconds: what each timed operation is measured with. */
uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_thread_cpu_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        return -1.0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * One C_SignInit + C_Sign with the workload's mechanism and key over the
 * fixed input. Returns CKR_OK or the failing call's code.
 */
static CK_RV op_sign(bench_worker *w, unsigned long *items)
{
    const bench_module *m = w->m;
    CK_MECHANISM mech = {m->mechanism, NULL, 0};
    CK_BYTE sig[SIG_MAX];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv;

    *items = 1;
    rv = m->f->C_SignInit(w->sessions[0], &mech, m->object);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_SignInit", rv);
        return rv;
    }
    rv = m->f->C_Sign(w->sessions[0], (CK_BYTE_PTR)m->data, m->data_len, sig, &sig_len);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_Sign", rv);
    }
    return rv;
}

/*
 * One C_GetAttributeValue of CKA_LABEL and CKA_ID on the chosen object.
 * Returns CKR_OK or the call's code.
 */
static CK_RV op_getattr(bench_worker *w, unsigned long *items)
{
    CK_BYTE label[ATTR_MAX], id[ATTR_MAX];
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, label, sizeof(label)},
        {CKA_ID, id, sizeof(id)},
    };
    CK_RV rv;

    *items = 1;
    rv = w->m->f->C_GetAttributeValue(w->sessions[0], w->m->object, t, 2);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_GetAttributeValue", rv);
    }
    return rv;
}

/*
 * One C_OpenSession (read-only) + C_CloseSession on the token's slot.
 * Returns CKR_OK or the failing call's code.
 */
static CK_RV op_session(bench_worker *w, unsigned long *items)
{
    CK_SESSION_HANDLE s;
    CK_RV rv;

    *items = 1;
    rv = w->m->f->C_OpenSession(w->m->slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_OpenSession", rv);
        return rv;
    }
    rv = w->m->f->C_CloseSession(s);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_CloseSession", rv);
    }
    return rv;
}

/*
 * Finds every data object on one session: C_FindObjectsInit with a
 * CKA_CLASS template, C_FindObjects in batches until it returns none,
 * C_FindObjectsFinal. Adds the count to *items. Returns CKR_OK or the
 * failing call's code.
 */
static CK_RV find_all(bench_worker *w, CK_SESSION_HANDLE s, unsigned long *items)
{
    CK_FUNCTION_LIST_PTR f = w->m->f;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE batch[BENCH_FIND_BATCH];
    CK_ULONG got;
    CK_RV rv;

    rv = f->C_FindObjectsInit(s, t, 1);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_FindObjectsInit", rv);
        return rv;
    }
    do {
        rv = f->C_FindObjects(s, batch, BENCH_FIND_BATCH, &got);
        if (rv != CKR_OK) {
            bench_fail_rv(&w->error, "C_FindObjects", rv);
            f->C_FindObjectsFinal(s);
            return rv;
        }
        *items += got;
    } while (got > 0);
    rv = f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_FindObjectsFinal", rv);
    }
    return rv;
}

/*
 * One find of all data objects over every token of the run, in order.
 * Returns CKR_OK, a failing call's code, or CKR_GENERAL_ERROR when the
 * count differs from --objects.
 */
static CK_RV op_find(bench_worker *w, unsigned long *items)
{
    CK_RV rv;

    *items = 0;
    for (size_t i = 0; i < w->m->ntokens; i++) {
        rv = find_all(w, w->sessions[i], items);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    if (w->m->expect_objects != 0 && *items != w->m->expect_objects) {
        bench_fail(&w->error, "find saw %lu data objects, expected %lu (--objects)", *items,
                   w->m->expect_objects);
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

/*
 * One C_Login(CKU_USER) + C_Logout on the worker's session.
 * Returns CKR_OK or the failing call's code.
 */
static CK_RV op_login(bench_worker *w, unsigned long *items)
{
    const char *pin = w->m->pin;
    CK_RV rv;

    *items = 1;
    rv = w->m->f->C_Login(w->sessions[0], CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_Login", rv);
        return rv;
    }
    rv = w->m->f->C_Logout(w->sessions[0]);
    if (rv != CKR_OK) {
        bench_fail_rv(&w->error, "C_Logout", rv);
    }
    return rv;
}

static const bench_workload workloads[] = {
    {"sign-ec", op_sign, "bench-ec", CKK_EC, CKM_ECDSA, false, false, "ops"},
    {"sign-rsa", op_sign, "bench-rsa", CKK_RSA, CKM_RSA_PKCS, false, false, "ops"},
    {"sign-rsa-sha256", op_sign, "bench-rsa", CKK_RSA, CKM_SHA256_RSA_PKCS, false, false, "ops"},
    {"getattr", op_getattr, "bench-ec", 0, 0, false, false, "ops"},
    {"session", op_session, NULL, 0, 0, false, false, "ops"},
    {"find", op_find, NULL, 0, 0, true, false, "objects"},
    {"login", op_login, NULL, 0, 0, false, true, "ops"},
};

/* Returns the workload called name, or NULL. */
const bench_workload *bench_workload_find(const char *name)
{
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        if (strcmp(workloads[i].name, name) == 0) {
            return &workloads[i];
        }
    }
    return NULL;
}

/* Writes the workload names, space-separated, into buf. */
void bench_workload_names(char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]) && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i > 0 ? " " : "", workloads[i].name);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}
