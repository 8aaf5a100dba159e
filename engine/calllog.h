/*
 * calllog.h - the call log (STRATA_LOG=calls): one line when a PKCS#11
 * call enters Strata, with its arguments, and one when it returns, with
 * its return code, its outputs and its duration. Private to engine/:
 * entry.c wraps each family call in CALLLOG_FORWARD, calllog.c formats,
 * log.c writes.
 *
 * Arguments are described, not formatted, by entry.c: a calllog_arg says
 * what an argument is (a slot, a PIN, a template...) so that calllog.c
 * decides what may be shown before it reads anything. PINs are never
 * read (always "***"); data buffers are shown by length only; attribute
 * values only for attribute types known to be public (CKA_VALUE and key
 * components never).
 *
 * Cost when the log is off: one relaxed atomic load and a predictable
 * branch per call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_CALLLOG_H
#define STRATA_ENGINE_CALLLOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "core/core.h"

/* What an argument is, hence how (and whether) it is shown. */
typedef enum {
    CALLLOG_ULONG = 0,        /* a plain number */
    CALLLOG_SLOT,             /* CK_SLOT_ID */
    CALLLOG_HANDLE,           /* a session or object handle */
    CALLLOG_BOOL,             /* CK_BBOOL */
    CALLLOG_USER,             /* CK_USER_TYPE (CKU_) */
    CALLLOG_SESSION_FLAGS,    /* C_OpenSession flags (CKF_) */
    CALLLOG_WAIT_FLAGS,       /* C_WaitForSlotEvent flags (CKF_DONT_BLOCK) */
    CALLLOG_PRESENT,          /* a pointer shown only as set or NULL */
    CALLLOG_INIT_ARGS,        /* CK_C_INITIALIZE_ARGS_PTR */
    CALLLOG_PIN,              /* a PIN: never read, "***" */
    CALLLOG_LABEL,            /* a 32-byte blank-padded label */
    CALLLOG_DATA,             /* an input buffer: length only */
    CALLLOG_OUT,              /* an output buffer and its CK_ULONG_PTR length */
    CALLLOG_TEMPLATE,         /* an input template (values masked unless public) */
    CALLLOG_ATTRS_OUT,        /* C_GetAttributeValue's template, filled by the call */
    CALLLOG_MECHANISM,        /* CK_MECHANISM_PTR (parameter by length only) */
    CALLLOG_MECH_TYPE,        /* CK_MECHANISM_TYPE */
    CALLLOG_HANDLE_OUT,       /* CK_*_HANDLE_PTR filled by the call */
    CALLLOG_ULONG_OUT,        /* CK_ULONG_PTR filled by the call */
    CALLLOG_HANDLES_OUT,      /* C_FindObjects: handle array, max, count */
    CALLLOG_SLOTS_OUT,        /* C_GetSlotList: slot array and count */
    CALLLOG_MECHS_OUT,        /* C_GetMechanismList: mechanism array and count */
    CALLLOG_INFO_OUT,         /* CK_INFO_PTR */
    CALLLOG_SLOT_INFO_OUT,    /* CK_SLOT_INFO_PTR */
    CALLLOG_TOKEN_INFO_OUT,   /* CK_TOKEN_INFO_PTR */
    CALLLOG_SESSION_INFO_OUT, /* CK_SESSION_INFO_PTR */
    CALLLOG_MECH_INFO_OUT,    /* CK_MECHANISM_INFO_PTR */
} calllog_kind;

typedef struct {
    const char *name; /* argument name as logged */
    calllog_kind kind;
    CK_ULONG value;      /* numbers; buffer lengths; template counts; FindObjects max */
    const void *ptr;     /* buffers, templates, output pointers */
    const CK_ULONG *len; /* output length or count, or NULL */
} calllog_arg;

/* One call in progress. */
typedef struct {
    const char *fn;        /* "C_Login" */
    unsigned long seq;     /* call number, pairs the two lines */
    struct timespec start; /* when the call entered */
    bool entered;          /* the entry line was written */
} calllog_frame;

/* Argument constructors for entry.c. */
#define CL_ULONG(n, v)                                                                             \
    {                                                                                              \
        (n), CALLLOG_ULONG, (CK_ULONG)(v), NULL, NULL                                              \
    }
#define CL_SLOT(v)                                                                                 \
    {                                                                                              \
        "slot", CALLLOG_SLOT, (CK_ULONG)(v), NULL, NULL                                            \
    }
#define CL_SESSION(v)                                                                              \
    {                                                                                              \
        "session", CALLLOG_HANDLE, (CK_ULONG)(v), NULL, NULL                                       \
    }
#define CL_HANDLE(n, v)                                                                            \
    {                                                                                              \
        (n), CALLLOG_HANDLE, (CK_ULONG)(v), NULL, NULL                                             \
    }
#define CL_BOOL(n, v)                                                                              \
    {                                                                                              \
        (n), CALLLOG_BOOL, (CK_ULONG)(v), NULL, NULL                                               \
    }
#define CL_USER(v)                                                                                 \
    {                                                                                              \
        "user", CALLLOG_USER, (CK_ULONG)(v), NULL, NULL                                            \
    }
#define CL_SESSION_FLAGS(v)                                                                        \
    {                                                                                              \
        "flags", CALLLOG_SESSION_FLAGS, (CK_ULONG)(v), NULL, NULL                                  \
    }
#define CL_WAIT_FLAGS(v)                                                                           \
    {                                                                                              \
        "flags", CALLLOG_WAIT_FLAGS, (CK_ULONG)(v), NULL, NULL                                     \
    }
#define CL_PRESENT(n, p)                                                                           \
    {                                                                                              \
        (n), CALLLOG_PRESENT, (p) != NULL, NULL, NULL                                              \
    }
#define CL_INIT_ARGS(p)                                                                            \
    {                                                                                              \
        "init_args", CALLLOG_INIT_ARGS, 0, (p), NULL                                               \
    }
#define CL_PIN(n, p, l)                                                                            \
    {                                                                                              \
        (n), CALLLOG_PIN, (CK_ULONG)(l), (p), NULL                                                 \
    }
#define CL_LABEL(p)                                                                                \
    {                                                                                              \
        "label", CALLLOG_LABEL, 0, (p), NULL                                                       \
    }
#define CL_DATA(n, p, l)                                                                           \
    {                                                                                              \
        (n), CALLLOG_DATA, (CK_ULONG)(l), (p), NULL                                                \
    }
#define CL_OUT(n, p, lp)                                                                           \
    {                                                                                              \
        (n), CALLLOG_OUT, 0, (p), (lp)                                                             \
    }
#define CL_TEMPLATE(n, t, c)                                                                       \
    {                                                                                              \
        (n), CALLLOG_TEMPLATE, (CK_ULONG)(c), (t), NULL                                            \
    }
#define CL_ATTRS_OUT(t, c)                                                                         \
    {                                                                                              \
        "template", CALLLOG_ATTRS_OUT, (CK_ULONG)(c), (t), NULL                                    \
    }
#define CL_MECHANISM(p)                                                                            \
    {                                                                                              \
        "mechanism", CALLLOG_MECHANISM, 0, (p), NULL                                               \
    }
#define CL_MECH_TYPE(v)                                                                            \
    {                                                                                              \
        "type", CALLLOG_MECH_TYPE, (CK_ULONG)(v), NULL, NULL                                       \
    }
#define CL_HANDLE_OUT(n, p)                                                                        \
    {                                                                                              \
        (n), CALLLOG_HANDLE_OUT, 0, (p), NULL                                                      \
    }
#define CL_ULONG_OUT(n, p)                                                                         \
    {                                                                                              \
        (n), CALLLOG_ULONG_OUT, 0, (p), NULL                                                       \
    }
#define CL_HANDLES_OUT(p, m, cp)                                                                   \
    {                                                                                              \
        "objects", CALLLOG_HANDLES_OUT, (CK_ULONG)(m), (p), (cp)                                   \
    }
#define CL_SLOTS_OUT(p, cp)                                                                        \
    {                                                                                              \
        "list", CALLLOG_SLOTS_OUT, 0, (p), (cp)                                                    \
    }
#define CL_MECHS_OUT(p, cp)                                                                        \
    {                                                                                              \
        "list", CALLLOG_MECHS_OUT, 0, (p), (cp)                                                    \
    }
#define CL_INFO_OUT(k, p)                                                                          \
    {                                                                                              \
        "info", (k), 0, (p), NULL                                                                  \
    }

/* calllog_active and calllog_on(): core/core.h (log.c sets it). */

/* Starts frame (call number, clock) and writes "#N C_Name(args)" when the
 * call log is on. Keeps the log's destination open until calllog_exit
 * should the call close the log (C_Finalize, a failed C_Initialize). */
void calllog_enter(calllog_frame *frame, const char *fn, const calllog_arg *args, size_t n);

/* Writes "#N C_Name -> CKR_... (T ms) outputs" (with the arguments too
 * when the entry line was not written: C_Initialize). */
void calllog_exit(const calllog_frame *frame, CK_RV rv, const calllog_arg *args, size_t n);

#endif /* STRATA_ENGINE_CALLLOG_H */
