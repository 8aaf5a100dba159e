/*
 * calllog.c - formats the call log's lines (calllog.h): each PKCS#11 call
 * with its arguments under symbolic names (CKR_, CKA_, CKM_, CKO_, CKU_,
 * CKF_), and its result with outputs and duration.
 *
 * Secrets are masked before formatting: the kind of each argument decides
 * what is read. A PIN's bytes are never read; data, signatures, wrapped
 * keys, random bytes and mechanism parameters are shown by length only;
 * attribute values are shown only for attribute types in the public
 * tables below (CKA_VALUE, private key components and any attribute not
 * listed are "***").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "calllog.h"
#include "core/core.h"

#define LINE_LEN      4000 /* log.c adds its prefix; its lines hold 4096 */
#define HEX_SHOWN     32   /* bytes of a public byte string shown in hex */
#define HANDLES_SHOWN 32   /* handles of a list shown */
#define COUNT(a)      (sizeof(a) / sizeof((a)[0]))

/* v2.40 flags p11-kit's pkcs11.h lacks. */
#ifndef CKF_ERROR_STATE
#define CKF_ERROR_STATE 0x01000000UL
#endif
#ifndef CKF_EC_F_2M
#define CKF_EC_F_2M 0x00200000UL
#endif
#ifndef CKF_EC_ECPARAMETERS
#define CKF_EC_ECPARAMETERS 0x00400000UL
#endif

static atomic_ulong next_seq = 1;

typedef struct {
    char text[LINE_LEN];
    size_t len;
} line;

/* Appends to l, truncating silently at LINE_LEN. */
static void put(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (l->len >= sizeof(l->text) - 1) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    l->len += (size_t)n;
    if (l->len > sizeof(l->text) - 1) {
        l->len = sizeof(l->text) - 1;
    }
}

/* ---------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------ */

typedef struct {
    CK_FLAGS bit;
    const char *name;
} flag_name;

static const flag_name session_flags[] = {
    {CKF_RW_SESSION, "CKF_RW_SESSION"},
    {CKF_SERIAL_SESSION, "CKF_SERIAL_SESSION"},
};

static const flag_name wait_flags[] = {
    {CKF_DONT_BLOCK, "CKF_DONT_BLOCK"},
};

static const flag_name init_flags[] = {
    {CKF_LIBRARY_CANT_CREATE_OS_THREADS, "CKF_LIBRARY_CANT_CREATE_OS_THREADS"},
    {CKF_OS_LOCKING_OK, "CKF_OS_LOCKING_OK"},
};

static const flag_name slot_flags[] = {
    {CKF_TOKEN_PRESENT, "CKF_TOKEN_PRESENT"},
    {CKF_REMOVABLE_DEVICE, "CKF_REMOVABLE_DEVICE"},
    {CKF_HW_SLOT, "CKF_HW_SLOT"},
};

static const flag_name token_flags[] = {
    {CKF_RNG, "CKF_RNG"},
    {CKF_WRITE_PROTECTED, "CKF_WRITE_PROTECTED"},
    {CKF_LOGIN_REQUIRED, "CKF_LOGIN_REQUIRED"},
    {CKF_USER_PIN_INITIALIZED, "CKF_USER_PIN_INITIALIZED"},
    {CKF_RESTORE_KEY_NOT_NEEDED, "CKF_RESTORE_KEY_NOT_NEEDED"},
    {CKF_CLOCK_ON_TOKEN, "CKF_CLOCK_ON_TOKEN"},
    {CKF_PROTECTED_AUTHENTICATION_PATH, "CKF_PROTECTED_AUTHENTICATION_PATH"},
    {CKF_DUAL_CRYPTO_OPERATIONS, "CKF_DUAL_CRYPTO_OPERATIONS"},
    {CKF_TOKEN_INITIALIZED, "CKF_TOKEN_INITIALIZED"},
    {CKF_SECONDARY_AUTHENTICATION, "CKF_SECONDARY_AUTHENTICATION"},
    {CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_COUNT_LOW"},
    {CKF_USER_PIN_FINAL_TRY, "CKF_USER_PIN_FINAL_TRY"},
    {CKF_USER_PIN_LOCKED, "CKF_USER_PIN_LOCKED"},
    {CKF_USER_PIN_TO_BE_CHANGED, "CKF_USER_PIN_TO_BE_CHANGED"},
    {CKF_SO_PIN_COUNT_LOW, "CKF_SO_PIN_COUNT_LOW"},
    {CKF_SO_PIN_FINAL_TRY, "CKF_SO_PIN_FINAL_TRY"},
    {CKF_SO_PIN_LOCKED, "CKF_SO_PIN_LOCKED"},
    {CKF_SO_PIN_TO_BE_CHANGED, "CKF_SO_PIN_TO_BE_CHANGED"},
    {CKF_ERROR_STATE, "CKF_ERROR_STATE"},
};

static const flag_name mechanism_flags[] = {
    {CKF_HW, "CKF_HW"},
    {CKF_ENCRYPT, "CKF_ENCRYPT"},
    {CKF_DECRYPT, "CKF_DECRYPT"},
    {CKF_DIGEST, "CKF_DIGEST"},
    {CKF_SIGN, "CKF_SIGN"},
    {CKF_SIGN_RECOVER, "CKF_SIGN_RECOVER"},
    {CKF_VERIFY, "CKF_VERIFY"},
    {CKF_VERIFY_RECOVER, "CKF_VERIFY_RECOVER"},
    {CKF_GENERATE, "CKF_GENERATE"},
    {CKF_GENERATE_KEY_PAIR, "CKF_GENERATE_KEY_PAIR"},
    {CKF_WRAP, "CKF_WRAP"},
    {CKF_UNWRAP, "CKF_UNWRAP"},
    {CKF_DERIVE, "CKF_DERIVE"},
    {CKF_EC_F_P, "CKF_EC_F_P"},
    {CKF_EC_F_2M, "CKF_EC_F_2M"},
    {CKF_EC_ECPARAMETERS, "CKF_EC_ECPARAMETERS"},
    {CKF_EC_NAMEDCURVE, "CKF_EC_NAMEDCURVE"},
    {CKF_EC_UNCOMPRESS, "CKF_EC_UNCOMPRESS"},
    {CKF_EC_COMPRESS, "CKF_EC_COMPRESS"},
    {CKF_EXTENSION, "CKF_EXTENSION"},
};

/* flags as "CKF_A|CKF_B|0x40" ("0" when none). */
static void put_flags(line *l, CK_FLAGS flags, const flag_name *names, size_t n)
{
    const char *sep = "";

    if (flags == 0) {
        put(l, "0");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if ((flags & names[i].bit) != 0) {
            put(l, "%s%s", sep, names[i].name);
            flags &= ~names[i].bit;
            sep = "|";
        }
    }
    if (flags != 0) {
        put(l, "%s0x%lx", sep, flags);
    }
}

static void put_user(line *l, CK_USER_TYPE user)
{
    switch (user) {
    case CKU_SO:
        put(l, "CKU_SO");
        break;
    case CKU_USER:
        put(l, "CKU_USER");
        break;
    case CKU_CONTEXT_SPECIFIC:
        put(l, "CKU_CONTEXT_SPECIFIC");
        break;
    default:
        put(l, "0x%lx", user);
        break;
    }
}

static void put_state(line *l, CK_STATE state)
{
    static const char *const names[] = {
        [CKS_RO_PUBLIC_SESSION] = "CKS_RO_PUBLIC_SESSION",
        [CKS_RO_USER_FUNCTIONS] = "CKS_RO_USER_FUNCTIONS",
        [CKS_RW_PUBLIC_SESSION] = "CKS_RW_PUBLIC_SESSION",
        [CKS_RW_USER_FUNCTIONS] = "CKS_RW_USER_FUNCTIONS",
        [CKS_RW_SO_FUNCTIONS] = "CKS_RW_SO_FUNCTIONS",
    };

    if (state < COUNT(names)) {
        put(l, "%s", names[state]);
    } else {
        put(l, "0x%lx", state);
    }
}

static void put_mech_type(line *l, CK_MECHANISM_TYPE type)
{
    const char *name = rules_mechanism_name(type);

    if (name != NULL) {
        put(l, "%s", name);
    } else if (type >= CKM_VENDOR_DEFINED) {
        put(l, "CKM_VENDOR_DEFINED+0x%lx", type - CKM_VENDOR_DEFINED);
    } else {
        put(l, "0x%lx", type);
    }
}

static void put_attr_type(line *l, CK_ATTRIBUTE_TYPE type)
{
    const char *name = rules_attribute_name(type);

    if (name != NULL) {
        put(l, "%s", name);
    } else if (type >= CKA_VENDOR_DEFINED) {
        put(l, "CKA_VENDOR_DEFINED+0x%lx", type - CKA_VENDOR_DEFINED);
    } else {
        put(l, "0x%lx", type);
    }
}

/* A blank-padded or counted text field, quoted, non-printables escaped. */
static void put_text(line *l, const unsigned char *text, size_t len, bool trim)
{
    if (trim) {
        while (len > 0 && text[len - 1] == ' ') {
            len--;
        }
    }
    put(l, "\"");
    for (size_t i = 0; i < len; i++) {
        if (isprint(text[i]) && text[i] != '"' && text[i] != '\\') {
            put(l, "%c", text[i]);
        } else {
            put(l, "\\x%02x", text[i]);
        }
    }
    put(l, "\"");
}

/* ---------------------------------------------------------------------
 * Attribute values: what may be shown
 * ------------------------------------------------------------------ */

static const CK_ATTRIBUTE_TYPE bool_attrs[] = {
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_TRUSTED,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_RESET_ON_INIT,
    CKA_HAS_RESET,
};

static const CK_ATTRIBUTE_TYPE number_attrs[] = {
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_CERTIFICATE_TYPE,
    CKA_CERTIFICATE_CATEGORY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_MODULUS_BITS,
    CKA_VALUE_BITS,
    CKA_VALUE_LEN,
    CKA_PRIME_BITS,
    CKA_SUB_PRIME_BITS,
    CKA_KEY_GEN_MECHANISM,
    CKA_MECHANISM_TYPE,
    CKA_HW_FEATURE_TYPE,
    CKA_NAME_HASH_ALGORITHM,
};

static const CK_ATTRIBUTE_TYPE text_attrs[] = {
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_URL,
};

/* Byte strings that never hold secret material. Anything else that is not
 * a boolean, number or text above is masked: CKA_VALUE (of every class,
 * to be safe), CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2,
 * CKA_COEFFICIENT, vendor attributes and attributes unknown here. */
static const CK_ATTRIBUTE_TYPE public_bytes_attrs[] = {
    CKA_ID,
    CKA_SUBJECT,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_AC_ISSUER,
    CKA_OWNER,
    CKA_ATTR_TYPES,
    CKA_OBJECT_ID,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_PUBLIC_KEY_INFO,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_CHECK_VALUE,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_PRIME,
    CKA_SUBPRIME,
    CKA_BASE,
    CKA_ALLOWED_MECHANISMS,
};

static bool listed(CK_ATTRIBUTE_TYPE type, const CK_ATTRIBUTE_TYPE *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == type) {
            return true;
        }
    }
    return false;
}

static void put_hex(line *l, const unsigned char *bytes, size_t len)
{
    size_t shown = len < HEX_SHOWN ? len : HEX_SHOWN;

    put(l, "0x");
    for (size_t i = 0; i < shown; i++) {
        put(l, "%02x", bytes[i]);
    }
    if (shown < len) {
        put(l, "... (%zu bytes)", len);
    }
}

/* One attribute's value. The attribute's type decides, before any byte is
 * read, whether the value may be shown at all. */
static void put_value(line *l, const CK_ATTRIBUTE *a)
{
    const unsigned char *v = a->pValue;
    size_t len = a->ulValueLen;

    if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        put(l, "unavailable");
        return;
    }
    if (v == NULL) {
        put(l, "(%lu bytes, no buffer)", a->ulValueLen);
        return;
    }
    if (listed(a->type, bool_attrs, COUNT(bool_attrs)) && len == sizeof(CK_BBOOL)) {
        put(l, "%s", *v ? "CK_TRUE" : "CK_FALSE");
    } else if (listed(a->type, number_attrs, COUNT(number_attrs)) && len == sizeof(CK_ULONG)) {
        CK_ULONG n;
        const char *name;

        memcpy(&n, v, sizeof(n));
        name = rules_attribute_value_name(a->type, n);
        if (name != NULL) {
            put(l, "%s", name);
        } else {
            put(l, "%lu", n);
        }
    } else if (listed(a->type, text_attrs, COUNT(text_attrs))) {
        put_text(l, v, len, false);
    } else if (listed(a->type, public_bytes_attrs, COUNT(public_bytes_attrs)) ||
               listed(a->type, bool_attrs, COUNT(bool_attrs)) ||
               listed(a->type, number_attrs, COUNT(number_attrs))) {
        put_hex(l, v, len);
    } else {
        put(l, "*** (%zu bytes)", len);
    }
}

/* "{CKA_CLASS=CKO_PRIVATE_KEY, CKA_LABEL="k"}"; with values false, the
 * types and buffer sizes only. */
static void put_template(line *l, const CK_ATTRIBUTE *templ, CK_ULONG count, bool values)
{
    if (templ == NULL) {
        put(l, "NULL, count=%lu", count);
        return;
    }
    put(l, "{");
    for (CK_ULONG i = 0; i < count; i++) {
        put(l, "%s", i > 0 ? ", " : "");
        put_attr_type(l, templ[i].type);
        if (values) {
            put(l, "=");
            put_value(l, &templ[i]);
        } else if (templ[i].pValue == NULL) {
            put(l, "(size?)");
        } else {
            put(l, "(%lu)", templ[i].ulValueLen);
        }
    }
    put(l, "}");
}

/* ---------------------------------------------------------------------
 * Arguments on entry, outputs on return
 * ------------------------------------------------------------------ */

static void put_init_args(line *l, const CK_C_INITIALIZE_ARGS *args)
{
    if (args == NULL) {
        put(l, "NULL");
        return;
    }
    put(l, "{flags=");
    put_flags(l, args->flags, init_flags, COUNT(init_flags));
    put(l, ", mutex callbacks=%s, reserved=%s}",
        args->CreateMutex != NULL || args->DestroyMutex != NULL || args->LockMutex != NULL ||
                args->UnlockMutex != NULL
            ? "set"
            : "NULL",
        args->pReserved != NULL ? "set" : "NULL");
}

static void put_mechanism(line *l, const CK_MECHANISM *m)
{
    if (m == NULL) {
        put(l, "NULL");
        return;
    }
    put_mech_type(l, m->mechanism);
    if (m->pParameter != NULL || m->ulParameterLen != 0) {
        put(l, " (parameter %lu bytes)", m->ulParameterLen);
    }
}

/* An argument as the call receives it. */
static void put_arg(line *l, const calllog_arg *a)
{
    switch (a->kind) {
    case CALLLOG_ULONG:
    case CALLLOG_SLOT:
    case CALLLOG_HANDLE:
        put(l, "%lu", a->value);
        break;
    case CALLLOG_BOOL:
        put(l, "%s", a->value ? "CK_TRUE" : "CK_FALSE");
        break;
    case CALLLOG_USER:
        put_user(l, a->value);
        break;
    case CALLLOG_SESSION_FLAGS:
        put_flags(l, a->value, session_flags, COUNT(session_flags));
        break;
    case CALLLOG_WAIT_FLAGS:
        put_flags(l, a->value, wait_flags, COUNT(wait_flags));
        break;
    case CALLLOG_PRESENT:
        put(l, "%s", a->value ? "set" : "NULL");
        break;
    case CALLLOG_INIT_ARGS:
        put_init_args(l, a->ptr);
        break;
    case CALLLOG_PIN:
        /* Never read: a PIN is masked whatever it holds. */
        put(l, "%s", a->ptr != NULL ? "***" : "NULL");
        break;
    case CALLLOG_LABEL:
        if (a->ptr == NULL) {
            put(l, "NULL");
        } else {
            put_text(l, a->ptr, 32, true);
        }
        break;
    case CALLLOG_DATA:
        if (a->ptr == NULL) {
            put(l, "NULL (%lu bytes)", a->value);
        } else {
            put(l, "[%lu bytes]", a->value);
        }
        break;
    case CALLLOG_OUT:
        put(l, "%s", a->ptr != NULL ? "buffer" : "NULL");
        if (a->len != NULL) {
            put(l, " [%lu bytes]", *a->len);
        } else {
            put(l, ", length NULL");
        }
        break;
    case CALLLOG_TEMPLATE:
        put_template(l, a->ptr, a->value, true);
        break;
    case CALLLOG_ATTRS_OUT:
        put_template(l, a->ptr, a->value, false);
        break;
    case CALLLOG_MECHANISM:
        put_mechanism(l, a->ptr);
        break;
    case CALLLOG_MECH_TYPE:
        put_mech_type(l, a->value);
        break;
    case CALLLOG_HANDLES_OUT:
        put(l, "%s, max=%lu", a->ptr != NULL ? "buffer" : "NULL", a->value);
        break;
    case CALLLOG_SLOTS_OUT:
    case CALLLOG_MECHS_OUT:
        put(l, "%s", a->ptr != NULL ? "buffer" : "NULL");
        if (a->len != NULL) {
            put(l, " [%lu]", *a->len);
        }
        break;
    case CALLLOG_HANDLE_OUT:
    case CALLLOG_ULONG_OUT:
    case CALLLOG_INFO_OUT:
    case CALLLOG_SLOT_INFO_OUT:
    case CALLLOG_TOKEN_INFO_OUT:
    case CALLLOG_SESSION_INFO_OUT:
    case CALLLOG_MECH_INFO_OUT:
        put(l, "%s", a->ptr != NULL ? "ptr" : "NULL");
        break;
    }
}

static void put_ulongs(line *l, const CK_ULONG *list, CK_ULONG n, bool mechanisms)
{
    CK_ULONG shown = n < HANDLES_SHOWN || mechanisms ? n : HANDLES_SHOWN;

    put(l, " {");
    for (CK_ULONG i = 0; i < shown; i++) {
        put(l, "%s", i > 0 ? ", " : "");
        if (mechanisms) {
            put_mech_type(l, list[i]);
        } else {
            put(l, "%lu", list[i]);
        }
    }
    put(l, "%s}", shown < n ? ", ..." : "");
}

static void put_info_out(line *l, const calllog_arg *a)
{
    switch (a->kind) {
    case CALLLOG_INFO_OUT: {
        const CK_INFO *i = a->ptr;
        put(l, " cryptoki=%u.%u manufacturer=", i->cryptokiVersion.major, i->cryptokiVersion.minor);
        put_text(l, i->manufacturerID, sizeof(i->manufacturerID), true);
        break;
    }
    case CALLLOG_SLOT_INFO_OUT: {
        const CK_SLOT_INFO *i = a->ptr;
        put(l, " description=");
        put_text(l, i->slotDescription, sizeof(i->slotDescription), true);
        put(l, " flags=");
        put_flags(l, i->flags, slot_flags, COUNT(slot_flags));
        break;
    }
    case CALLLOG_TOKEN_INFO_OUT: {
        const CK_TOKEN_INFO *i = a->ptr;
        put(l, " label=");
        put_text(l, i->label, sizeof(i->label), true);
        put(l, " serial=");
        put_text(l, i->serialNumber, sizeof(i->serialNumber), true);
        put(l, " flags=");
        put_flags(l, i->flags, token_flags, COUNT(token_flags));
        put(l, " sessions=%lu/%lu", i->ulSessionCount, i->ulRwSessionCount);
        break;
    }
    case CALLLOG_SESSION_INFO_OUT: {
        const CK_SESSION_INFO *i = a->ptr;
        put(l, " slot=%lu state=", i->slotID);
        put_state(l, i->state);
        put(l, " flags=");
        put_flags(l, i->flags, session_flags, COUNT(session_flags));
        break;
    }
    case CALLLOG_MECH_INFO_OUT: {
        const CK_MECHANISM_INFO *i = a->ptr;
        put(l, " key sizes=%lu..%lu flags=", i->ulMinKeySize, i->ulMaxKeySize);
        put_flags(l, i->flags, mechanism_flags, COUNT(mechanism_flags));
        break;
    }
    default:
        break;
    }
}

/* An output the call filled, when rv says it did. CKR_BUFFER_TOO_SMALL
 * still reports lengths. */
static void put_out(line *l, const calllog_arg *a, CK_RV rv)
{
    bool ok = rv == CKR_OK;
    bool sized = ok || rv == CKR_BUFFER_TOO_SMALL;

    switch (a->kind) {
    case CALLLOG_OUT:
        if (sized && a->len != NULL) {
            put(l, " %s=[%lu bytes]", a->name, *a->len);
        }
        break;
    case CALLLOG_ATTRS_OUT:
        /* These codes still fill every attribute they can. */
        if (sized || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
            put(l, " template=");
            put_template(l, a->ptr, a->value, true);
        }
        break;
    case CALLLOG_HANDLE_OUT:
        if (ok && a->ptr != NULL) {
            put(l, " %s=%lu", a->name, *(const CK_ULONG *)a->ptr);
        }
        break;
    case CALLLOG_ULONG_OUT:
        if (ok && a->ptr != NULL) {
            put(l, " %s=%lu", a->name, *(const CK_ULONG *)a->ptr);
        }
        break;
    case CALLLOG_HANDLES_OUT:
        if (ok && a->len != NULL && a->ptr != NULL) {
            CK_ULONG n = *a->len <= a->value ? *a->len : a->value;
            put(l, " found=%lu", *a->len);
            put_ulongs(l, a->ptr, n, false);
        }
        break;
    case CALLLOG_SLOTS_OUT:
    case CALLLOG_MECHS_OUT:
        if (sized && a->len != NULL) {
            put(l, " count=%lu", *a->len);
            if (ok && a->ptr != NULL) {
                put_ulongs(l, a->ptr, *a->len, a->kind == CALLLOG_MECHS_OUT);
            }
        }
        break;
    case CALLLOG_INFO_OUT:
    case CALLLOG_SLOT_INFO_OUT:
    case CALLLOG_TOKEN_INFO_OUT:
    case CALLLOG_SESSION_INFO_OUT:
    case CALLLOG_MECH_INFO_OUT:
        if (ok && a->ptr != NULL) {
            put_info_out(l, a);
        }
        break;
    default:
        break;
    }
}

static void put_call(line *l, const char *fn, const calllog_arg *args, size_t n)
{
    put(l, "%s(", fn);
    for (size_t i = 0; i < n; i++) {
        put(l, "%s%s=", i > 0 ? ", " : "", args[i].name);
        put_arg(l, &args[i]);
    }
    put(l, ")");
}

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/*
 * Starts a logged call: numbers it, reads the clock, holds the log's
 * destination for the result line, and writes "#N C_Name(args)" when the
 * call log is on. Takes no lock.
 */
void calllog_enter(calllog_frame *frame, const char *fn, const calllog_arg *args, size_t n)
{
    line l = {.len = 0};

    frame->fn = fn;
    frame->seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
    frame->entered = calllog_on();
    engine_log_hold();
    if (frame->entered) {
        put(&l, "#%lu ", frame->seq);
        put_call(&l, fn, args, n);
        engine_log_calls_line(l.text, l.len);
    }
    clock_gettime(CLOCK_MONOTONIC, &frame->start);
}

/*
 * Ends a logged call: writes "#N C_Name -> CKR_X (T ms)" and the outputs
 * rv says were filled (the call with its arguments first when the entry
 * line was not written), to the log or to the destination held since
 * calllog_enter, and releases the hold. Writes nothing when the call log
 * is off and nothing was held. Takes no lock.
 */
void calllog_exit(const calllog_frame *frame, CK_RV rv, const calllog_arg *args, size_t n)
{
    double ms = elapsed_ms(&frame->start);
    line l = {.len = 0};

    if (!calllog_on() && !engine_log_holding()) {
        engine_log_release(NULL, 0);
        return;
    }
    put(&l, "#%lu ", frame->seq);
    if (frame->entered) {
        put(&l, "%s", frame->fn);
    } else {
        put_call(&l, frame->fn, args, n);
    }
    put(&l, " -> %s (%.3f ms)", layers_rv_name(rv), ms);
    for (size_t i = 0; i < n; i++) {
        put_out(&l, &args[i], rv);
    }
    engine_log_release(l.text, l.len);
}
