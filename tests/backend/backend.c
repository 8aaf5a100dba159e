/*
 * backend.c - strata-test-backend: a small in-memory PKCS#11 module for
 * what SoftHSM2 cannot show.
 *
 * One slot (ID 1) with one token holding data objects. Object handles and
 * session handles start at 1 and count up in the same way in every
 * instance, so two copies of this module loaded in one process collide on
 * purpose. Built several times under different names (BACKEND_NAME,
 * BACKEND_ENV set by meson); everything configurable is read at
 * C_Initialize from environment variables prefixed with BACKEND_ENV:
 *
 *   <ENV>_CONF  a file of "key = value" lines:
 *                 label = <token label>        (default strata-test-NAME)
 *                 serial = <serial>            (default TB-NAME-0001)
 *                 pin = <user PIN>             (default 1234)
 *                 so-pin = <SO PIN>            (default 12345678)
 *                 object = <label> <id hex> [private]
 *                 free-slots = <N>             (default 0)
 *                 persist = yes                (default no)
 *                 mechanism = <number> [<CKF_ flags number>] (default none)
 *                 mechanism-log = <file>
 *               Object lines replace the default objects (public data
 *               objects "data-1" id 01 and "data-2" id 02, and a private
 *               one "secret-1" id 03), in order, so their handles are 1..n.
 *               free-slots asks for N spare slots (IDs 2, 3, ...) whose
 *               tokens are present but not initialised: C_InitToken and
 *               C_InitPIN work on them, they hold no objects, they outlive
 *               C_Finalize (like tokens on disk, for the process's life),
 *               and each C_Initialize tops the uninitialised ones up to N
 *               again (as SoftHSM2 shows a free slot after a restart).
 *                 login-log = <file>           (default none)
 *               login-log appends one line per C_Login of slot 1's token
 *               to the file, "user ok" or "user incorrect" (so-... for
 *               the SO): a test counts the PINs this backend was shown,
 *               across processes.
 *               persist = yes keeps slot 1's token objects (and their
 *               handles) across C_Finalize and C_Initialize, as a device
 *               keeps them across a reconnect; the object lines are then
 *               read only once.
 *               mechanism lines make the mechanism list (C_GetMechanismInfo
 *               answers them with the flags given; C_GenerateKey* still
 *               answer CKR_FUNCTION_NOT_SUPPORTED). A C_GetMechanismInfo
 *               for a mechanism not in the list appends a line to the
 *               mechanism-log file when one is named, as a real module
 *               complains on stderr (tpm2-pkcs11 through p11-kit).
 *   <ENV>_FAIL  fault injection, "C_Name:CODE:N[,C_Name:CODE:N...]": the
 *               Nth call (counted from C_Initialize) of C_Name returns
 *               CODE (a CKR_ name or a number); N "*" fails every call.
 *   <ENV>_CONTROL a file the test rewrites while the module runs: faults
 *               counted from its change, a token that leaves and comes
 *               back, a call that blocks until released (see "control
 *               file" below).
 *
 * Supported: C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList,
 * C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList (the
 * configured mechanisms), C_GetMechanismInfo, sessions, C_Login, C_Logout,
 * C_CreateObject/C_DestroyObject for CKO_DATA, C_GetAttributeValue,
 * C_FindObjects*, and C_InitToken/C_InitPIN on spare slots. The rest return
 * CKR_FUNCTION_NOT_SUPPORTED. One lock serialises every call. It is a test tool: small over fast.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#ifndef BACKEND_NAME
#define BACKEND_NAME "test"
#endif
#ifndef BACKEND_ENV
#define BACKEND_ENV "STRATA_TEST_BACKEND"
#endif

#define SLOT_ID     1
#define MAX_FAULTS  8
#define FIELD_LABEL 32
#define MAX_ID      64
#define FIRST_SPARE 2
#define MAX_SPARES  8
#define MAX_MECHS   16

typedef struct object {
    CK_OBJECT_HANDLE handle;
    CK_BBOOL token;
    CK_BBOOL private;
    CK_SESSION_HANDLE owner; /* session of a session object */
    char label[FIELD_LABEL + 1];
    CK_BYTE id[MAX_ID];
    CK_ULONG id_len;
    CK_BYTE *value;
    CK_ULONG value_len;
    char application[FIELD_LABEL + 1];
    struct object *next;
} object;

typedef struct session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    CK_FLAGS flags;
    bool finding;
    CK_OBJECT_HANDLE *found; /* snapshot taken at C_FindObjectsInit */
    CK_ULONG n_found, pos;
    struct session *next;
} session;

typedef struct {
    char name[40];
    CK_RV rv;
    unsigned long at; /* 0: every call */
    unsigned long calls;
} fault;

typedef struct {
    bool logged_in;
    CK_USER_TYPE user;
} login_state;

/* A spare token (see free-slots above). */
typedef struct {
    bool initialized;
    bool pin_set; /* C_InitPIN done */
    login_state login;
    char label[FIELD_LABEL + 1], serial[17], so_pin[64], user_pin[64];
} spare;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool initialized;
static char token_label[FIELD_LABEL + 1], token_serial[17], user_pin[64], so_pin[64];
static char login_log[480]; /* login-log = <file>, or "" */
static object *objects;
static session *sessions;
static CK_OBJECT_HANDLE next_object;
static CK_SESSION_HANDLE next_session;
static login_state main_login; /* slot 1 */
static spare spares[MAX_SPARES];
static size_t n_spares;
static unsigned long free_wanted;
static fault faults[MAX_FAULTS];
static size_t n_faults;
static bool persist; /* "persist = yes" */
static bool kept;    /* token objects kept from an earlier C_Initialize */
static CK_MECHANISM_TYPE mechs[MAX_MECHS];
static CK_FLAGS mech_flags[MAX_MECHS];
static size_t n_mechs;
static char mech_log[256]; /* "mechanism-log"; empty: none */

/* ---- configuration ---------------------------------------------------- */

static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
    {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
};

static CK_RV parse_rv(const char *text)
{
    size_t i;

    for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
        if (strcmp(text, rv_names[i].name) == 0) {
            return rv_names[i].rv;
        }
    }
    return strtoul(text, NULL, 0);
}

/* Reads <ENV>_FAIL. Malformed entries are ignored. */
static void load_faults(void)
{
    const char *env = getenv(BACKEND_ENV "_FAIL");
    char *copy, *entry, *save = NULL, *code, *at;

    n_faults = 0;
    if (env == NULL || (copy = strdup(env)) == NULL) {
        return;
    }
    for (entry = strtok_r(copy, ",", &save); entry != NULL && n_faults < MAX_FAULTS;
         entry = strtok_r(NULL, ",", &save)) {
        code = strchr(entry, ':');
        at = code != NULL ? strchr(code + 1, ':') : NULL;
        if (at == NULL) {
            continue;
        }
        *code++ = '\0';
        *at++ = '\0';
        snprintf(faults[n_faults].name, sizeof(faults[n_faults].name), "%s", entry);
        faults[n_faults].rv = parse_rv(code);
        faults[n_faults].at = strcmp(at, "*") == 0 ? 0 : strtoul(at, NULL, 10);
        faults[n_faults].calls = 0;
        n_faults++;
    }
    free(copy);
}

/* Counts a call of fn; returns the injected code or CKR_OK. Expects the
 * lock held. */
static CK_RV injected(const char *fn)
{
    size_t i;

    for (i = 0; i < n_faults; i++) {
        if (strcmp(faults[i].name, fn) == 0) {
            faults[i].calls++;
            if (faults[i].at == 0 || faults[i].calls == faults[i].at) {
                return faults[i].rv;
            }
        }
    }
    return CKR_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static CK_RV add_object(const char *label, const CK_BYTE *id, CK_ULONG id_len, CK_BBOOL token,
                        CK_BBOOL private, CK_SESSION_HANDLE owner, object **out)
{
    object *o = calloc(1, sizeof(*o)), **tail;

    if (o == NULL) {
        return CKR_HOST_MEMORY;
    }
    o->handle = next_object++;
    o->token = token;
    o->private = private;
    o->owner = owner;
    snprintf(o->label, sizeof(o->label), "%s", label);
    o->id_len = id == NULL ? 0 : id_len > MAX_ID ? MAX_ID : id_len;
    if (o->id_len > 0) {
        memcpy(o->id, id, o->id_len);
    }
    for (tail = &objects; *tail != NULL; tail = &(*tail)->next) {
    }
    *tail = o; /* kept in creation order */
    if (out != NULL) {
        *out = o;
    }
    return CKR_OK;
}

/* Copies src into dst, cut to fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "object = <label> <id hex> [private]" */
static void config_object(const char *value)
{
    char label[FIELD_LABEL + 1], hex[2 * MAX_ID + 1], flag[16] = "";
    CK_BYTE id[MAX_ID];
    size_t i, n;

    if (sscanf(value, "%32s %128s %15s", label, hex, flag) < 2) {
        return;
    }
    n = strlen(hex) / 2;
    for (i = 0; i < n; i++) {
        id[i] = (CK_BYTE)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    }
    add_object(label, id, n, CK_TRUE, strcmp(flag, "private") == 0, 0, NULL);
}

static void load_config(void)
{
    const char *path = getenv(BACKEND_ENV "_CONF");
    char line[512], key[32], value[480];
    bool any_object = false;
    FILE *f;

    snprintf(token_label, sizeof(token_label), "strata-test-%s", BACKEND_NAME);
    snprintf(token_serial, sizeof(token_serial), "TB-%s-0001", BACKEND_NAME);
    snprintf(user_pin, sizeof(user_pin), "1234");
    snprintf(so_pin, sizeof(so_pin), "12345678");
    free_wanted = 0;
    persist = false;
    n_mechs = 0;
    mech_log[0] = '\0';
    login_log[0] = '\0';
    f = path != NULL ? fopen(path, "r") : NULL;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, " %31[a-z-] = %479[^\n]", key, value) != 2) {
            continue;
        }
        if (strcmp(key, "label") == 0) {
            copy_text(token_label, sizeof(token_label), value);
        } else if (strcmp(key, "serial") == 0) {
            copy_text(token_serial, sizeof(token_serial), value);
        } else if (strcmp(key, "pin") == 0) {
            copy_text(user_pin, sizeof(user_pin), value);
        } else if (strcmp(key, "so-pin") == 0) {
            copy_text(so_pin, sizeof(so_pin), value);
        } else if (strcmp(key, "free-slots") == 0) {
            free_wanted = strtoul(value, NULL, 10);
        } else if (strcmp(key, "login-log") == 0) {
            copy_text(login_log, sizeof(login_log), value);
        } else if (strcmp(key, "persist") == 0) {
            persist = strcmp(value, "yes") == 0;
        } else if (strcmp(key, "mechanism") == 0 && n_mechs < MAX_MECHS) {
            char *end = NULL;
            mechs[n_mechs] = strtoul(value, &end, 0);
            mech_flags[n_mechs++] = strtoul(end, NULL, 0);
        } else if (strcmp(key, "mechanism-log") == 0) {
            copy_text(mech_log, sizeof(mech_log), value);
        } else if (strcmp(key, "object") == 0) {
            if (!kept) {
                config_object(value);
            }
            any_object = true;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    if (!any_object && !kept) {
        add_object("data-1", (const CK_BYTE *)"\x01", 1, CK_TRUE, CK_FALSE, 0, NULL);
        add_object("data-2", (const CK_BYTE *)"\x02", 1, CK_TRUE, CK_FALSE, 0, NULL);
        add_object("secret-1", (const CK_BYTE *)"\x03", 1, CK_TRUE, CK_TRUE, 0, NULL);
    }
}

/* Adds uninitialised spares until free_wanted of them are free. */
static void top_up_spares(void)
{
    unsigned long free_now = 0;
    size_t i;

    for (i = 0; i < n_spares; i++) {
        free_now += !spares[i].initialized;
    }
    while (free_now < free_wanted && n_spares < MAX_SPARES) {
        memset(&spares[n_spares], 0, sizeof(spares[n_spares]));
        n_spares++;
        free_now++;
    }
}

/* ---- control file ------------------------------------------------------- */

/*
 * <ENV>_CONTROL names a file the test rewrites while the module runs. It
 * is read again by every call whose content changed since (so its state
 * outlives C_Finalize and C_Initialize, like a device would). Lines:
 *   fail = C_Name:CODE:N   as <ENV>_FAIL, N counted from this content
 *   present = no           the token is gone: its sessions are closed and
 *                          its login ends; slot calls answer
 *                          CKR_TOKEN_NOT_PRESENT, session calls
 *                          CKR_DEVICE_REMOVED, C_GetSlotInfo clears
 *                          CKF_TOKEN_PRESENT; "present = yes" brings it
 *                          back with its token objects
 *   block = C_Name DIR     a call of C_Name, before it takes the lock,
 *                          writes one byte to the FIFO DIR/entered and
 *                          waits for one byte on the FIFO DIR/release
 *                          (a slow device the test releases at will)
 */
#define MAX_CONTROL 2048

static char control_text[MAX_CONTROL];
static fault control_faults[MAX_FAULTS];
static size_t n_control_faults;
static bool absent;
static char block_fn[40], block_dir[256];

static void control_line(const char *key, char *value)
{
    char *code, *at;

    if (strcmp(key, "present") == 0) {
        absent = strcmp(value, "no") == 0;
    } else if (strcmp(key, "block") == 0) {
        if (sscanf(value, "%39s %255s", block_fn, block_dir) != 2) {
            block_fn[0] = '\0';
        }
    } else if (strcmp(key, "fail") == 0 && n_control_faults < MAX_FAULTS) {
        code = strchr(value, ':');
        at = code != NULL ? strchr(code + 1, ':') : NULL;
        if (at == NULL) {
            return;
        }
        *code++ = '\0';
        *at++ = '\0';
        fault *f = &control_faults[n_control_faults++];
        copy_text(f->name, sizeof(f->name), value);
        f->rv = parse_rv(code);
        f->at = strcmp(at, "*") == 0 ? 0 : strtoul(at, NULL, 10);
        f->calls = 0;
    }
}

/* Re-reads the control file when its content changed. Expects the lock. */
static void load_control(void)
{
    const char *path = getenv(BACKEND_ENV "_CONTROL");
    char text[MAX_CONTROL] = "", *line, *save = NULL, key[32], value[480];
    size_t n = 0;
    FILE *f;

    if (path == NULL || (f = fopen(path, "r")) == NULL) {
        if (path == NULL || control_text[0] == '\0') {
            return;
        }
    } else {
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    if (strcmp(text, control_text) == 0) {
        return;
    }
    memcpy(control_text, text, n + 1);
    n_control_faults = 0;
    absent = false;
    block_fn[0] = '\0';
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, " %31[a-z-] = %479[^\n]", key, value) == 2) {
            control_line(key, value);
        }
    }
}

/* The control file's injected code for a call of fn, or CKR_OK. Expects
 * the lock. */
static CK_RV control_injected(const char *fn)
{
    for (size_t i = 0; i < n_control_faults; i++) {
        fault *f = &control_faults[i];
        if (strcmp(f->name, fn) == 0) {
            f->calls++;
            if (f->at == 0 || f->calls == f->at) {
                return f->rv;
            }
        }
    }
    return CKR_OK;
}

/* Blocks a call of fn as "block" asks (see above). Takes the lock
 * briefly; expects it not held. */
static void control_block(const char *fn)
{
    char dir[sizeof(block_dir)] = "", path[sizeof(block_dir) + 16], byte = 'x';
    FILE *f;

    pthread_mutex_lock(&lock);
    load_control();
    if (block_fn[0] != '\0' && strcmp(block_fn, fn) == 0) {
        memcpy(dir, block_dir, sizeof(dir));
    }
    pthread_mutex_unlock(&lock);
    if (dir[0] == '\0') {
        return;
    }
    snprintf(path, sizeof(path), "%s/entered", dir);
    if ((f = fopen(path, "w")) != NULL) {
        fwrite(&byte, 1, 1, f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/release", dir);
    if ((f = fopen(path, "r")) != NULL) {
        if (fread(&byte, 1, 1, f) != 1) {
            byte = 0;
        }
        fclose(f);
    }
}

/* ---- helpers (all expect the lock held) -------------------------------- */

/* The spare token at slot, or NULL (slot 1 or no such slot). */
static spare *spare_at(CK_SLOT_ID slot)
{
    return slot >= FIRST_SPARE && slot - FIRST_SPARE < n_spares ? &spares[slot - FIRST_SPARE]
                                                                : NULL;
}

static bool slot_known(CK_SLOT_ID slot)
{
    return slot == SLOT_ID || spare_at(slot) != NULL;
}

/* The login state of the token at a known slot. */
static login_state *login_of(CK_SLOT_ID slot)
{
    spare *sp = spare_at(slot);

    return sp != NULL ? &sp->login : &main_login;
}

static bool slot_has_sessions(CK_SLOT_ID slot)
{
    const struct session *s;

    for (s = sessions; s != NULL; s = s->next) {
        if (s->slot == slot) {
            return true;
        }
    }
    return false;
}

static void pad(CK_UTF8CHAR *field, size_t len, const char *text)
{
    size_t n = strlen(text);

    memset(field, ' ', len);
    memcpy(field, text, n < len ? n : len);
}

static session *find_session(CK_SESSION_HANDLE handle)
{
    session *s;

    for (s = sessions; s != NULL; s = s->next) {
        if (s->handle == handle) {
            return s;
        }
    }
    return NULL;
}

static bool visible(const object *o)
{
    return !o->private || (main_login.logged_in && main_login.user == CKU_USER);
}

static object *find_object(CK_OBJECT_HANDLE handle)
{
    object *o;

    for (o = objects; o != NULL; o = o->next) {
        if (o->handle == handle && visible(o)) {
            return o;
        }
    }
    return NULL;
}

static void free_object(object *o)
{
    free(o->value);
    free(o);
}

/* Takes o out of the list and frees it. */
static void unlink_object(object *o)
{
    object **p;

    for (p = &objects; *p != o; p = &(*p)->next) {
    }
    *p = o->next;
    free_object(o);
}

/* Unlinks and frees objects: all when owner is 0 and everything, else the
 * session objects of owner. */
static void drop_objects(CK_SESSION_HANDLE owner, bool everything)
{
    object **p = &objects, *o;

    while ((o = *p) != NULL) {
        if (everything || (!o->token && o->owner == owner)) {
            *p = o->next;
            free_object(o);
        } else {
            p = &o->next;
        }
    }
}

static void end_find(session *s)
{
    free(s->found);
    s->found = NULL;
    s->n_found = s->pos = 0;
    s->finding = false;
}

static void close_one(session *s)
{
    CK_SLOT_ID slot = s->slot;
    session **p;

    for (p = &sessions; *p != s; p = &(*p)->next) {
    }
    *p = s->next;
    drop_objects(s->handle, false);
    end_find(s);
    free(s);
    if (!slot_has_sessions(slot)) {
        login_of(slot)->logged_in = false; /* closing the last session logs out */
    }
}

/* Calls that work while the token is absent. */
static bool needs_no_token(const char *fn)
{
    return strcmp(fn, "C_Finalize") == 0 || strcmp(fn, "C_GetInfo") == 0 ||
           strcmp(fn, "C_GetSlotList") == 0 || strcmp(fn, "C_GetSlotInfo") == 0;
}

/* Applies the control file: a token that went away takes its sessions and
 * login with it. Returns the code a call of fn gets (CKR_OK to go on).
 * Expects the lock. */
static CK_RV controlled(const char *fn, bool on_session)
{
    load_control();
    if (absent) {
        while (sessions != NULL) {
            close_one(sessions);
        }
        main_login.logged_in = false;
        if (!needs_no_token(fn)) {
            return on_session ? CKR_DEVICE_REMOVED : CKR_TOKEN_NOT_PRESENT;
        }
    }
    return control_injected(fn);
}

/* Locks and checks the library state, the control file and the fault
 * table; on CKR_OK the caller holds the lock and must unlock. */
static CK_RV enter_as(const char *fn, bool on_session)
{
    CK_RV rv;

    control_block(fn);
    pthread_mutex_lock(&lock);
    rv = initialized ? controlled(fn, on_session) : CKR_CRYPTOKI_NOT_INITIALIZED;
    if (rv == CKR_OK) {
        rv = injected(fn);
    }
    if (rv != CKR_OK) {
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

static CK_RV enter(const char *fn)
{
    return enter_as(fn, false);
}

static CK_RV enter_session(const char *fn, CK_SESSION_HANDLE handle, session **s)
{
    CK_RV rv = enter_as(fn, true);

    if (rv != CKR_OK) {
        return rv;
    }
    *s = find_session(handle);
    if (*s == NULL) {
        pthread_mutex_unlock(&lock);
        return CKR_SESSION_HANDLE_INVALID;
    }
    return CKR_OK;
}

/* As enter_session, for calls on objects, which live on slot 1 only. */
static CK_RV enter_object_session(const char *fn, CK_SESSION_HANDLE handle, session **s)
{
    CK_RV rv = enter_session(fn, handle, s);

    if (rv == CKR_OK && (*s)->slot != SLOT_ID) {
        pthread_mutex_unlock(&lock);
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
    return rv;
}

static CK_RV leave(CK_RV rv)
{
    pthread_mutex_unlock(&lock);
    return rv;
}

/* ---- general ----------------------------------------------------------- */

CK_RV C_Initialize(void *init_args)
{
    CK_C_INITIALIZE_ARGS *args = init_args;
    CK_RV rv = CKR_OK;

    if (args != NULL) {
        bool any = args->CreateMutex || args->DestroyMutex || args->LockMutex || args->UnlockMutex;
        bool all = args->CreateMutex && args->DestroyMutex && args->LockMutex && args->UnlockMutex;
        if (args->pReserved != NULL || (any && !all)) {
            return CKR_ARGUMENTS_BAD;
        }
        if (all && !(args->flags & CKF_OS_LOCKING_OK)) {
            return CKR_CANT_LOCK; /* only the OS's locks are offered */
        }
    }
    pthread_mutex_lock(&lock);
    if (initialized) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    if (!kept) {
        next_object = 1;
    }
    next_session = 1;
    main_login.logged_in = false;
    load_faults();
    rv = injected("C_Initialize");
    if (rv != CKR_OK) {
        goto out;
    }
    load_config();
    top_up_spares();
    initialized = true;
out:
    pthread_mutex_unlock(&lock);
    return rv;
}

CK_RV C_Finalize(void *reserved)
{
    CK_RV rv;

    if (reserved != NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_Finalize");
    if (rv != CKR_OK) {
        return rv;
    }
    while (sessions != NULL) {
        close_one(sessions);
    }
    kept = persist && objects != NULL;
    if (!kept) {
        drop_objects(0, true);
    }
    initialized = false;
    return leave(CKR_OK);
}

CK_RV C_GetInfo(CK_INFO *info)
{
    CK_RV rv;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetInfo");
    if (rv != CKR_OK) {
        return rv;
    }
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = 2;
    info->cryptokiVersion.minor = 40;
    pad(info->manufacturerID, sizeof(info->manufacturerID), "Strata tests");
    pad(info->libraryDescription, sizeof(info->libraryDescription),
        "strata-test-backend-" BACKEND_NAME);
    info->libraryVersion.major = 1;
    return leave(CKR_OK);
}

/* ---- slots and tokens ---------------------------------------------------- */

CK_RV C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
    size_t i, main;
    CK_RV rv;

    if (count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetSlotList");
    if (rv != CKR_OK) {
        return rv;
    }
    main = token_present && absent ? 0 : 1; /* slot 1 leaves with its token */
    if (list != NULL && *count < main + n_spares) {
        rv = CKR_BUFFER_TOO_SMALL;
    } else if (list != NULL) {
        if (main) {
            list[0] = SLOT_ID;
        }
        for (i = 0; i < n_spares; i++) {
            list[main + i] = FIRST_SPARE + i;
        }
    }
    *count = main + n_spares;
    return leave(rv);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
    CK_RV rv;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetSlotInfo");
    if (rv != CKR_OK) {
        return rv;
    }
    if (!slot_known(slot)) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    memset(info, 0, sizeof(*info));
    pad(info->slotDescription, sizeof(info->slotDescription), "strata test slot");
    pad(info->manufacturerID, sizeof(info->manufacturerID), "Strata tests");
    info->flags = slot == SLOT_ID && absent ? 0 : CKF_TOKEN_PRESENT;
    return leave(CKR_OK);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CK_ULONG n = 0, rw = 0;
    spare *sp;
    session *s;
    CK_RV rv;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetTokenInfo");
    if (rv != CKR_OK) {
        return rv;
    }
    if (!slot_known(slot)) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    sp = spare_at(slot);
    for (s = sessions; s != NULL; s = s->next) {
        n += s->slot == slot;
        rw += s->slot == slot && (s->flags & CKF_RW_SESSION) != 0;
    }
    memset(info, 0, sizeof(*info));
    pad(info->label, sizeof(info->label), sp != NULL ? sp->label : token_label);
    pad(info->manufacturerID, sizeof(info->manufacturerID), "Strata tests");
    pad(info->model, sizeof(info->model), "test backend");
    pad(info->serialNumber, sizeof(info->serialNumber), sp != NULL ? sp->serial : token_serial);
    pad(info->utcTime, sizeof(info->utcTime), "");
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
    if (sp != NULL) {
        info->flags = CKF_LOGIN_REQUIRED | (sp->initialized ? CKF_TOKEN_INITIALIZED : 0) |
                      (sp->pin_set ? CKF_USER_PIN_INITIALIZED : 0);
    }
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = n;
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulRwSessionCount = rw;
    info->ulMaxPinLen = sizeof(user_pin) - 1;
    info->ulMinPinLen = 4;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = 1;
    return leave(CKR_OK);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CK_RV rv;

    if (count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetMechanismList");
    if (rv != CKR_OK) {
        return rv;
    }
    if (slot != SLOT_ID) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    if (list != NULL && *count < n_mechs) {
        *count = n_mechs;
        return leave(CKR_BUFFER_TOO_SMALL);
    }
    if (list != NULL) {
        memcpy(list, mechs, n_mechs * sizeof(*mechs));
    }
    *count = n_mechs;
    return leave(CKR_OK);
}

/* Appends "unlisted <type>" to the mechanism log, if any. */
static void log_unlisted(CK_MECHANISM_TYPE type)
{
    FILE *f = mech_log[0] != '\0' ? fopen(mech_log, "a") : NULL;

    if (f != NULL) {
        fprintf(f, "C_GetMechanismInfo asked for unlisted mechanism 0x%lx\n", type);
        fclose(f);
    }
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    CK_RV rv;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_GetMechanismInfo");
    if (rv != CKR_OK) {
        return rv;
    }
    if (slot != SLOT_ID) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    for (size_t i = 0; i < n_mechs; i++) {
        if (mechs[i] == type) {
            memset(info, 0, sizeof(*info));
            info->flags = mech_flags[i];
            return leave(CKR_OK);
        }
    }
    log_unlisted(type);
    return leave(CKR_MECHANISM_INVALID);
}

/* ---- sessions and login -------------------------------------------------- */

CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, void *app, CK_NOTIFY notify,
                    CK_SESSION_HANDLE *handle)
{
    session *s;
    CK_RV rv;

    if (handle == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_OpenSession");
    if (rv != CKR_OK) {
        return rv;
    }
    if (!slot_known(slot)) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    if (spare_at(slot) != NULL && !spare_at(slot)->initialized) {
        return leave(CKR_TOKEN_NOT_RECOGNIZED);
    }
    if (!(flags & CKF_SERIAL_SESSION)) {
        return leave(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    }
    if (!(flags & CKF_RW_SESSION) && login_of(slot)->logged_in && login_of(slot)->user == CKU_SO) {
        return leave(CKR_SESSION_READ_WRITE_SO_EXISTS);
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return leave(CKR_HOST_MEMORY);
    }
    s->handle = next_session++;
    s->slot = slot;
    s->flags = flags;
    s->next = sessions;
    sessions = s;
    *handle = s->handle;
    return leave(CKR_OK);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE handle)
{
    session *s;
    CK_RV rv = enter_session("C_CloseSession", handle, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    close_one(s);
    return leave(CKR_OK);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slot)
{
    session *s, *next;
    CK_RV rv = enter("C_CloseAllSessions");

    if (rv != CKR_OK) {
        return rv;
    }
    if (!slot_known(slot)) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    for (s = sessions; s != NULL; s = next) {
        next = s->next;
        if (s->slot == slot) {
            close_one(s);
        }
    }
    return leave(CKR_OK);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE handle, CK_SESSION_INFO *info)
{
    login_state *ls;
    bool rw;
    session *s;
    CK_RV rv;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_session("C_GetSessionInfo", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rw = (s->flags & CKF_RW_SESSION) != 0;
    ls = login_of(s->slot);
    info->slotID = s->slot;
    info->flags = s->flags;
    info->ulDeviceError = 0;
    if (ls->logged_in && ls->user == CKU_SO) {
        info->state = CKS_RW_SO_FUNCTIONS;
    } else if (ls->logged_in) {
        info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    } else {
        info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    }
    return leave(CKR_OK);
}

/* Appends "<user> <outcome>" to the login-log file, if one is set. */
static void log_login(CK_USER_TYPE user, bool ok)
{
    FILE *f = login_log[0] != '\0' ? fopen(login_log, "a") : NULL;

    if (f != NULL) {
        fprintf(f, "%s %s\n", user == CKU_SO ? "so" : "user", ok ? "ok" : "incorrect");
        fclose(f);
    }
}

CK_RV C_Login(CK_SESSION_HANDLE handle, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    const char *expected;
    login_state *ls;
    session *s, *t;
    spare *sp;
    CK_RV rv;

    if (pin == NULL && pin_len > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_session("C_Login", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (user == CKU_CONTEXT_SPECIFIC) {
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    }
    if (user != CKU_SO && user != CKU_USER) {
        return leave(CKR_USER_TYPE_INVALID);
    }
    ls = login_of(s->slot);
    sp = spare_at(s->slot);
    if (ls->logged_in) {
        return leave(ls->user == user ? CKR_USER_ALREADY_LOGGED_IN
                                      : CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    }
    if (sp != NULL && user == CKU_USER && !sp->pin_set) {
        return leave(CKR_USER_PIN_NOT_INITIALIZED);
    }
    for (t = sessions; user == CKU_SO && t != NULL; t = t->next) {
        if (t->slot == s->slot && !(t->flags & CKF_RW_SESSION)) {
            return leave(CKR_SESSION_READ_ONLY_EXISTS);
        }
    }
    expected = user == CKU_SO ? (sp != NULL ? sp->so_pin : so_pin)
                              : (sp != NULL ? sp->user_pin : user_pin);
    if (pin_len != strlen(expected) || memcmp(pin, expected, pin_len) != 0) {
        if (sp == NULL) {
            log_login(user, false);
        }
        return leave(CKR_PIN_INCORRECT);
    }
    if (sp == NULL) {
        log_login(user, true);
    }
    ls->logged_in = true;
    ls->user = user;
    return leave(CKR_OK);
}

CK_RV C_Logout(CK_SESSION_HANDLE handle)
{
    session *s;
    CK_RV rv = enter_session("C_Logout", handle, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    if (!login_of(s->slot)->logged_in) {
        return leave(CKR_USER_NOT_LOGGED_IN);
    }
    login_of(s->slot)->logged_in = false;
    return leave(CKR_OK);
}

/* ---- objects ----------------------------------------------------------- */

/* Points *data and *len at the value of attribute type of o. Returns false
 * when data objects do not have that attribute. */
static bool attribute_of(object *o, CK_ATTRIBUTE_TYPE type, const void **data, CK_ULONG *len)
{
    static const CK_OBJECT_CLASS data_class = CKO_DATA;
    static const CK_BBOOL yes = CK_TRUE;

    switch (type) {
    case CKA_CLASS:
        *data = &data_class;
        *len = sizeof(data_class);
        return true;
    case CKA_TOKEN:
        *data = &o->token;
        *len = sizeof(o->token);
        return true;
    case CKA_PRIVATE:
        *data = &o->private;
        *len = sizeof(o->private);
        return true;
    case CKA_MODIFIABLE:
        *data = &yes;
        *len = sizeof(yes);
        return true;
    case CKA_LABEL:
        *data = o->label;
        *len = strlen(o->label);
        return true;
    case CKA_ID:
        *data = o->id;
        *len = o->id_len;
        return true;
    case CKA_APPLICATION:
        *data = o->application;
        *len = strlen(o->application);
        return true;
    case CKA_VALUE:
        *data = o->value;
        *len = o->value_len;
        return true;
    default:
        return false;
    }
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *templ,
                          CK_ULONG count)
{
    const void *data;
    CK_ULONG i, len;
    session *s;
    object *o;
    CK_RV rv;

    if (templ == NULL && count > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_object_session("C_GetAttributeValue", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    o = find_object(obj);
    if (o == NULL) {
        return leave(CKR_OBJECT_HANDLE_INVALID);
    }
    for (i = 0; i < count; i++) {
        if (!attribute_of(o, templ[i].type, &data, &len)) {
            templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (templ[i].pValue == NULL) {
            templ[i].ulValueLen = len;
        } else if (templ[i].ulValueLen < len) {
            templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            if (len > 0) {
                memcpy(templ[i].pValue, data, len);
            }
            templ[i].ulValueLen = len;
        }
    }
    return leave(rv);
}

static CK_RV bool_attribute(const CK_ATTRIBUTE *a, CK_BBOOL *out)
{
    if (a->pValue == NULL || a->ulValueLen != sizeof(CK_BBOOL)) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    *out = *(const CK_BBOOL *)a->pValue ? CK_TRUE : CK_FALSE;
    return CKR_OK;
}

static CK_RV text_attribute(const CK_ATTRIBUTE *a, char *out, size_t size)
{
    if ((a->pValue == NULL && a->ulValueLen > 0) || a->ulValueLen >= size) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (a->ulValueLen > 0) {
        memcpy(out, a->pValue, a->ulValueLen);
    }
    out[a->ulValueLen] = '\0';
    return CKR_OK;
}

/* What a C_CreateObject template asks for. */
typedef struct {
    bool have_class;
    CK_BBOOL token, private;
    char label[FIELD_LABEL + 1], application[FIELD_LABEL + 1];
    const CK_ATTRIBUTE *id, *value;
} request;

static CK_RV parse_template(const CK_ATTRIBUTE *templ, CK_ULONG count, request *req)
{
    CK_ULONG i;
    CK_RV rv = CKR_OK;

    memset(req, 0, sizeof(*req));
    for (i = 0; i < count && rv == CKR_OK; i++) {
        const CK_ATTRIBUTE *a = &templ[i];
        switch (a->type) {
        case CKA_CLASS:
            if (a->pValue == NULL || a->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
                *(const CK_OBJECT_CLASS *)a->pValue != CKO_DATA) {
                rv = CKR_ATTRIBUTE_VALUE_INVALID;
            }
            req->have_class = true;
            break;
        case CKA_TOKEN:
            rv = bool_attribute(a, &req->token);
            break;
        case CKA_PRIVATE:
            rv = bool_attribute(a, &req->private);
            break;
        case CKA_LABEL:
            rv = text_attribute(a, req->label, sizeof(req->label));
            break;
        case CKA_APPLICATION:
            rv = text_attribute(a, req->application, sizeof(req->application));
            break;
        case CKA_ID:
            rv = a->ulValueLen > MAX_ID || (a->pValue == NULL && a->ulValueLen > 0)
                     ? CKR_ATTRIBUTE_VALUE_INVALID
                     : CKR_OK;
            req->id = a;
            break;
        case CKA_VALUE:
            rv = a->pValue == NULL && a->ulValueLen > 0 ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_OK;
            req->value = a;
            break;
        default:
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        }
    }
    if (rv == CKR_OK && !req->have_class) {
        rv = CKR_TEMPLATE_INCOMPLETE;
    }
    return rv;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE handle, CK_ATTRIBUTE *templ, CK_ULONG count,
                     CK_OBJECT_HANDLE *out)
{
    request req;
    session *s;
    object *o;
    CK_RV rv;

    if ((templ == NULL && count > 0) || out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_object_session("C_CreateObject", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = parse_template(templ, count, &req);
    if (rv != CKR_OK) {
        return leave(rv);
    }
    if (req.token && !(s->flags & CKF_RW_SESSION)) {
        return leave(CKR_SESSION_READ_ONLY);
    }
    if (req.private && !(main_login.logged_in && main_login.user == CKU_USER)) {
        return leave(CKR_USER_NOT_LOGGED_IN);
    }
    rv = add_object(req.label, req.id != NULL ? req.id->pValue : NULL,
                    req.id != NULL ? req.id->ulValueLen : 0, req.token, req.private,
                    req.token ? 0 : handle, &o);
    if (rv != CKR_OK) {
        return leave(rv);
    }
    snprintf(o->application, sizeof(o->application), "%s", req.application);
    if (req.value != NULL && req.value->ulValueLen > 0) {
        o->value = malloc(req.value->ulValueLen);
        if (o->value == NULL) {
            unlink_object(o);
            return leave(CKR_HOST_MEMORY);
        }
        memcpy(o->value, req.value->pValue, req.value->ulValueLen);
        o->value_len = req.value->ulValueLen;
    }
    *out = o->handle;
    return leave(CKR_OK);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE obj)
{
    object *o;
    session *s;
    CK_RV rv = enter_object_session("C_DestroyObject", handle, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    o = find_object(obj);
    if (o == NULL) {
        return leave(CKR_OBJECT_HANDLE_INVALID);
    }
    if (o->token && !(s->flags & CKF_RW_SESSION)) {
        return leave(CKR_SESSION_READ_ONLY);
    }
    unlink_object(o);
    return leave(CKR_OK);
}

static bool template_matches(object *o, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
    const void *data;
    CK_ULONG i, len;

    for (i = 0; i < count; i++) {
        if (!attribute_of(o, templ[i].type, &data, &len) || len != templ[i].ulValueLen ||
            (len > 0 && memcmp(data, templ[i].pValue, len) != 0)) {
            return false;
        }
    }
    return true;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE handle, CK_ATTRIBUTE *templ, CK_ULONG count)
{
    CK_ULONG n = 0;
    session *s;
    object *o;
    CK_RV rv;

    if (templ == NULL && count > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_object_session("C_FindObjectsInit", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (s->finding) {
        return leave(CKR_OPERATION_ACTIVE);
    }
    for (o = objects; o != NULL; o = o->next) {
        n++;
    }
    s->found = calloc(n + 1, sizeof(*s->found));
    if (s->found == NULL) {
        return leave(CKR_HOST_MEMORY);
    }
    for (o = objects; o != NULL; o = o->next) {
        if (visible(o) && template_matches(o, templ, count)) {
            s->found[s->n_found++] = o->handle;
        }
    }
    s->pos = 0;
    s->finding = true;
    return leave(CKR_OK);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    session *s;
    CK_RV rv;

    if (out == NULL || count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_session("C_FindObjects", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (!s->finding) {
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    }
    *count = 0;
    while (*count < max && s->pos < s->n_found) {
        out[(*count)++] = s->found[s->pos++];
    }
    return leave(CKR_OK);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE handle)
{
    session *s;
    CK_RV rv = enter_session("C_FindObjectsFinal", handle, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    if (!s->finding) {
        return leave(CKR_OPERATION_NOT_INITIALIZED);
    }
    end_find(s);
    return leave(CKR_OK);
}

/* ---- spare tokens -------------------------------------------------------- */

/* Initialises the spare token at slot (wiping it when it was initialised
 * with this SO PIN). Slot 1's token cannot be initialised. */
CK_RV C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR *pin, CK_ULONG pin_len, CK_UTF8CHAR *label)
{
    char text[FIELD_LABEL + 1];
    size_t len = FIELD_LABEL;
    spare *sp;
    CK_RV rv;

    if ((pin == NULL && pin_len > 0) || label == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter("C_InitToken");
    if (rv != CKR_OK) {
        return rv;
    }
    if (!slot_known(slot)) {
        return leave(CKR_SLOT_ID_INVALID);
    }
    sp = spare_at(slot);
    if (sp == NULL) {
        return leave(CKR_FUNCTION_NOT_SUPPORTED);
    }
    if (slot_has_sessions(slot)) {
        return leave(CKR_SESSION_EXISTS);
    }
    if (pin_len < 4 || pin_len >= sizeof(sp->so_pin)) {
        return leave(CKR_PIN_LEN_RANGE);
    }
    if (sp->initialized &&
        (pin_len != strlen(sp->so_pin) || memcmp(pin, sp->so_pin, pin_len) != 0)) {
        return leave(CKR_PIN_INCORRECT);
    }
    while (len > 0 && label[len - 1] == ' ') {
        len--;
    }
    memcpy(text, label, len);
    text[len] = '\0';
    copy_text(sp->label, sizeof(sp->label), text);
    memcpy(sp->so_pin, pin, pin_len);
    sp->so_pin[pin_len] = '\0';
    if (!sp->initialized) {
        snprintf(sp->serial, sizeof(sp->serial), "TB-%s-S%03u", BACKEND_NAME,
                 (unsigned)(slot % 1000));
    }
    sp->initialized = true;
    sp->pin_set = false;
    return leave(CKR_OK);
}

/* Sets the user PIN of a spare token, in an SO read-write session. */
CK_RV C_InitPIN(CK_SESSION_HANDLE handle, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
    session *s;
    spare *sp;
    CK_RV rv;

    if (pin == NULL && pin_len > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = enter_session("C_InitPIN", handle, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    sp = spare_at(s->slot);
    if (sp == NULL) {
        return leave(CKR_FUNCTION_NOT_SUPPORTED);
    }
    if (!sp->login.logged_in || sp->login.user != CKU_SO) {
        return leave(CKR_USER_NOT_LOGGED_IN);
    }
    if (pin_len < 4 || pin_len >= sizeof(sp->user_pin)) {
        return leave(CKR_PIN_LEN_RANGE);
    }
    memcpy(sp->user_pin, pin, pin_len);
    sp->user_pin[pin_len] = '\0';
    sp->pin_set = true;
    return leave(CKR_OK);
}

/* ---- the rest ----------------------------------------------------------- */

static CK_RV unsupported(const char *fn, CK_RV rv)
{
    CK_RV entered = enter(fn);

    return entered != CKR_OK ? entered : leave(rv);
}

#define UNSUPPORTED(name, args)                                                                    \
    CK_RV name args                                                                                \
    {                                                                                              \
        return unsupported(#name, CKR_FUNCTION_NOT_SUPPORTED);                                     \
    }
UNSUPPORTED(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved))
UNSUPPORTED(C_SetPIN, (CK_SESSION_HANDLE hsession, unsigned char *old_pin, unsigned long old_len,
                       unsigned char *new_pin, unsigned long new_len))
UNSUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE hsession, unsigned char *operation_state,
                                  unsigned long *operation_state_len))
UNSUPPORTED(C_SetOperationState,
            (CK_SESSION_HANDLE hsession, unsigned char *operation_state,
             unsigned long operation_state_len, CK_OBJECT_HANDLE encryption_key,
             CK_OBJECT_HANDLE authentiation_key))
UNSUPPORTED(C_CopyObject, (CK_SESSION_HANDLE hsession, CK_OBJECT_HANDLE hobject,
                           CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *new_object))
UNSUPPORTED(C_GetObjectSize,
            (CK_SESSION_HANDLE hsession, CK_OBJECT_HANDLE hobject, unsigned long *size))
UNSUPPORTED(C_SetAttributeValue, (CK_SESSION_HANDLE hsession, CK_OBJECT_HANDLE hobject,
                                  CK_ATTRIBUTE *templ, unsigned long count))
UNSUPPORTED(C_EncryptInit,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_Encrypt, (CK_SESSION_HANDLE hsession, unsigned char *data, unsigned long data_len,
                        unsigned char *encrypted_data, unsigned long *encrypted_data_len))
UNSUPPORTED(C_EncryptUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len,
             unsigned char *encrypted_part, unsigned long *encrypted_part_len))
UNSUPPORTED(C_EncryptFinal, (CK_SESSION_HANDLE hsession, unsigned char *last_encrypted_part,
                             unsigned long *last_encrypted_part_len))
UNSUPPORTED(C_DecryptInit,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_Decrypt,
            (CK_SESSION_HANDLE hsession, unsigned char *encrypted_data,
             unsigned long encrypted_data_len, unsigned char *data, unsigned long *data_len))
UNSUPPORTED(C_DecryptUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *encrypted_part,
             unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len))
UNSUPPORTED(C_DecryptFinal,
            (CK_SESSION_HANDLE hsession, unsigned char *last_part, unsigned long *last_part_len))
UNSUPPORTED(C_DigestInit, (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism))
UNSUPPORTED(C_Digest, (CK_SESSION_HANDLE hsession, unsigned char *data, unsigned long data_len,
                       unsigned char *digest, unsigned long *digest_len))
UNSUPPORTED(C_DigestUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len))
UNSUPPORTED(C_DigestKey, (CK_SESSION_HANDLE hsession, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_DigestFinal,
            (CK_SESSION_HANDLE hsession, unsigned char *digest, unsigned long *digest_len))
UNSUPPORTED(C_SignInit, (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_Sign, (CK_SESSION_HANDLE hsession, unsigned char *data, unsigned long data_len,
                     unsigned char *signature, unsigned long *signature_len))
UNSUPPORTED(C_SignUpdate, (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len))
UNSUPPORTED(C_SignFinal,
            (CK_SESSION_HANDLE hsession, unsigned char *signature, unsigned long *signature_len))
UNSUPPORTED(C_SignRecoverInit,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_SignRecover, (CK_SESSION_HANDLE hsession, unsigned char *data, unsigned long data_len,
                            unsigned char *signature, unsigned long *signature_len))
UNSUPPORTED(C_VerifyInit,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_Verify, (CK_SESSION_HANDLE hsession, unsigned char *data, unsigned long data_len,
                       unsigned char *signature, unsigned long signature_len))
UNSUPPORTED(C_VerifyUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len))
UNSUPPORTED(C_VerifyFinal,
            (CK_SESSION_HANDLE hsession, unsigned char *signature, unsigned long signature_len))
UNSUPPORTED(C_VerifyRecoverInit,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key))
UNSUPPORTED(C_VerifyRecover,
            (CK_SESSION_HANDLE hsession, unsigned char *signature, unsigned long signature_len,
             unsigned char *data, unsigned long *data_len))
UNSUPPORTED(C_DigestEncryptUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len,
             unsigned char *encrypted_part, unsigned long *encrypted_part_len))
UNSUPPORTED(C_DecryptDigestUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *encrypted_part,
             unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len))
UNSUPPORTED(C_SignEncryptUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *part, unsigned long part_len,
             unsigned char *encrypted_part, unsigned long *encrypted_part_len))
UNSUPPORTED(C_DecryptVerifyUpdate,
            (CK_SESSION_HANDLE hsession, unsigned char *encrypted_part,
             unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len))
UNSUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism,
                            CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *key))
UNSUPPORTED(C_GenerateKeyPair,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_ATTRIBUTE *public_key_template,
             unsigned long public_key_attribute_count, CK_ATTRIBUTE *private_key_template,
             unsigned long private_key_attribute_count, CK_OBJECT_HANDLE *public_key,
             CK_OBJECT_HANDLE *private_key))
UNSUPPORTED(C_WrapKey,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE wrapping_key,
             CK_OBJECT_HANDLE key, unsigned char *wrapped_key, unsigned long *wrapped_key_len))
UNSUPPORTED(C_UnwrapKey,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE unwrapping_key,
             unsigned char *wrapped_key, unsigned long wrapped_key_len, CK_ATTRIBUTE *templ,
             unsigned long attribute_count, CK_OBJECT_HANDLE *key))
UNSUPPORTED(C_DeriveKey,
            (CK_SESSION_HANDLE hsession, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE base_key,
             CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key))
UNSUPPORTED(C_SeedRandom, (CK_SESSION_HANDLE hsession, unsigned char *seed, unsigned long seed_len))
UNSUPPORTED(C_GenerateRandom,
            (CK_SESSION_HANDLE hsession, unsigned char *random_data, unsigned long random_len))

/* Legacy parallel-function calls: the spec's answer is fixed. */
CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE handle)
{
    return unsupported("C_GetFunctionStatus", CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE handle)
{
    return unsupported("C_CancelFunction", CKR_FUNCTION_NOT_PARALLEL);
}

static CK_FUNCTION_LIST function_list = {
    {2, 40},
    C_Initialize,
    C_Finalize,
    C_GetInfo,
    C_GetFunctionList,
    C_GetSlotList,
    C_GetSlotInfo,
    C_GetTokenInfo,
    C_GetMechanismList,
    C_GetMechanismInfo,
    C_InitToken,
    C_InitPIN,
    C_SetPIN,
    C_OpenSession,
    C_CloseSession,
    C_CloseAllSessions,
    C_GetSessionInfo,
    C_GetOperationState,
    C_SetOperationState,
    C_Login,
    C_Logout,
    C_CreateObject,
    C_CopyObject,
    C_DestroyObject,
    C_GetObjectSize,
    C_GetAttributeValue,
    C_SetAttributeValue,
    C_FindObjectsInit,
    C_FindObjects,
    C_FindObjectsFinal,
    C_EncryptInit,
    C_Encrypt,
    C_EncryptUpdate,
    C_EncryptFinal,
    C_DecryptInit,
    C_Decrypt,
    C_DecryptUpdate,
    C_DecryptFinal,
    C_DigestInit,
    C_Digest,
    C_DigestUpdate,
    C_DigestKey,
    C_DigestFinal,
    C_SignInit,
    C_Sign,
    C_SignUpdate,
    C_SignFinal,
    C_SignRecoverInit,
    C_SignRecover,
    C_VerifyInit,
    C_Verify,
    C_VerifyUpdate,
    C_VerifyFinal,
    C_VerifyRecoverInit,
    C_VerifyRecover,
    C_DigestEncryptUpdate,
    C_DecryptDigestUpdate,
    C_SignEncryptUpdate,
    C_DecryptVerifyUpdate,
    C_GenerateKey,
    C_GenerateKeyPair,
    C_WrapKey,
    C_UnwrapKey,
    C_DeriveKey,
    C_SeedRandom,
    C_GenerateRandom,
    C_GetFunctionStatus,
    C_CancelFunction,
    C_WaitForSlotEvent,
};

/* The one exported symbol (see strata-test-backend.map). */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    if (list == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    *list = &function_list;
    return CKR_OK;
}
