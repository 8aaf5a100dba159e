/*
 * layers.h - Strata's backends: PKCS#11 modules and the tokens inside them.
 *
 * A leaf library. A layers_module is one backend module loaded through
 * p11-kit's managed-module API, so an application that also uses the same
 * backend directly is never finalised out from under, and Strata never
 * calls a backend's C_CloseAllSessions. A layers_token is one layer's token
 * inside a module, found by label or serial (never by slot number: backends
 * move tokens between slots). It keeps the layer's login alive with an
 * anchor session while logged in.
 *
 * Locking: every function takes the object's own lock as needed and may
 * call into the backend; callers must not hold a library-wide lock.
 * Nothing here logs or exits; failures return CK_RV and, where a person
 * must read the reason, fill a caller's error buffer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_LAYERS_H
#define STRATA_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

/* ---------------------------------------------------------------------
 * Modules
 * ------------------------------------------------------------------ */

typedef struct layers_module layers_module;

/* Loads the module at path (managed, through p11_kit_module_load) and
 * initialises it (p11_kit_module_initialize). On failure *out is NULL, err
 * names the path and the reason, and the result is CKR_GENERAL_ERROR (not
 * a loadable PKCS#11 module, or Strata itself: layers_file_is_strata) or
 * the backend's C_Initialize code. */
CK_RV layers_module_load(const char *path, layers_module **out, char *err, size_t errsize);

/* As layers_module_load, giving the backend's C_Initialize the string
 * init_reserved (NULL: none) as pReserved, with CKF_OS_LOCKING_OK, here
 * and at every cycle: what p11-kit's x-init-reserved does for configured
 * modules (p11-kit-trust.so reads "paths=DIR:FILE" there). A backend
 * another user in the process initialised first ignores it. */
CK_RV layers_module_load_with(const char *path, const char *init_reserved, layers_module **out,
                              char *err, size_t errsize);

/* Finalises (managed: the real C_Finalize runs only for the last user) and
 * releases. Closes the sessions this module object opened, one by one.
 * Free the module's tokens first. Measured with p11-kit 0.24: an
 * application that initialised the backend itself *before* the load keeps
 * it (and its sessions) through unload; one that initialises it only
 * *after* the load gets CKR_CRYPTOKI_ALREADY_INITIALIZED, is not counted,
 * and loses the backend at unload. */
void layers_module_unload(layers_module *module);

/* Names the lock file of the backend guard (guard.c), NULL for none:
 * processes sharing it never read a token's state (initialisation,
 * C_GetTokenInfo, C_OpenSession) while another logs in to a backend or
 * initialises a token, which file-based backends (SoftHSM2) do not survive.
 * CKR_OK or CKR_HOST_MEMORY. Call while no other thread uses layers. */
CK_RV layers_guard_set(const char *path);

/* The managed function list, for forwarding calls. Valid until unload. */
CK_FUNCTION_LIST *layers_module_functions(const layers_module *module);
const char *layers_module_path(const layers_module *module);

/* Bumped each time the module is cycled (finalised and initialised again);
 * backend session handles from an older generation are dead. Starts at 1. */
unsigned layers_module_generation(const layers_module *module);

/* Finalises and initialises the module again (managed), closing this
 * object's sessions and bumping the generation, so tokens find their slot
 * again and forget their login (replay it). *restarted (may be NULL) says
 * whether the backend really restarted and so shows tokens made by other
 * processes and a new free slot: false when another user in the process
 * (an application using the backend directly) keeps it initialised.
 * Returns CKR_OK or the backend's C_Initialize code. No other thread may
 * use the module (or its tokens' sessions) during the call. */
CK_RV layers_module_cycle(layers_module *module, bool *restarted);

typedef struct {
    CK_SLOT_ID slot;
    bool token_present;
    bool initialized; /* CKF_TOKEN_INITIALIZED */
    char label[33];   /* NUL-terminated, trailing blanks removed */
    char serial[17];
    char model[17];
    char manufacturer[33];
    CK_FLAGS token_flags;
} layers_slot_info;

/* Lists the module's slots (strata status). *out is malloc'd. */
CK_RV layers_module_slots(layers_module *module, layers_slot_info **out, size_t *n);

/* Copies a blank-padded PKCS#11 string field into a NUL-terminated buffer
 * without the padding. */
void layers_field_to_string(const CK_UTF8CHAR *field, size_t field_len, char *buf, size_t size);

/* Strata's own module carries an ELF note (engine/module.c) with this
 * owner and type in a PT_NOTE segment: it is how a copy or link of
 * strata-pkcs11.so is recognised, whatever its file name. */
#define LAYERS_STRATA_NOTE_NAME "Strata"
#define LAYERS_STRATA_NOTE_TYPE 0x53747261u /* "Stra" */

/* Whether the file at path (a symbolic link is followed) is Strata's own
 * module: an ELF file of this process's class whose notes hold Strata's.
 * Reads the file's headers only; runs none of its code. false when the
 * file cannot be read or is not such a file. layers_module_load refuses
 * such a module (a layer over Strata would send every call back into
 * it). */
bool layers_file_is_strata(const char *path);

/* ---------------------------------------------------------------------
 * Tokens (one per layer)
 * ------------------------------------------------------------------ */

typedef struct layers_token layers_token;

/* Creates the handle for the token with this label (and serial, when
 * non-NULL; either may be NULL but not both) in module. The token need not
 * be present: layers_token_slot() says whether it is. Never calls
 * C_Login. */
CK_RV layers_token_new(layers_module *module, const char *label, const char *serial,
                       layers_token **out);
/* Logs out, closes the sessions opened through the token, frees it. */
void layers_token_free(layers_token *token);

layers_module *layers_token_module(const layers_token *token);

/* The serial the token is named by, NULL when any. Names it by serial
 * from now on as well (NULL: any serial again, refused for a token named
 * only by serial), forgetting the cached slot: for a token whose serial
 * became known after the handle was made, when two tokens share a label.
 * CKR_OK; CKR_ARGUMENTS_BAD; CKR_HOST_MEMORY. The caller keeps other
 * threads off the token during layers_token_set_serial. */
const char *layers_token_serial(const layers_token *token);
CK_RV layers_token_set_serial(layers_token *token, const char *serial);

/* Finds the token's current slot (rescanning the module's slot list when
 * the cached slot no longer shows the token). CKR_TOKEN_NOT_PRESENT when
 * absent. */
CK_RV layers_token_slot(layers_token *token, CK_SLOT_ID *slot);
CK_RV layers_token_info(layers_token *token, CK_TOKEN_INFO *info);

/* Whether the token asks for a login before use (CKF_LOGIN_REQUIRED).
 * A token without it (p11-kit's trust module, whose C_Login answers
 * CKR_USER_TYPE_INVALID) is never logged in to: its objects are public.
 * Returns CKR_OK with *required; otherwise layers_token_info's code. */
CK_RV layers_token_login_required(layers_token *token, bool *required);

/* Logs in as user_type with pin, keeping an anchor session open so the
 * login lasts (read-only for CKU_USER, read-write for CKU_SO).
 * CKR_USER_ALREADY_LOGGED_IN from the backend counts as success. Backend
 * codes pass through (CKR_PIN_INCORRECT, ...), the anchor then closed. The
 * pin is not kept. Login and logout hold the token's lock across their
 * backend calls; every other token function holds it only briefly. */
CK_RV layers_token_login(layers_token *token, CK_USER_TYPE user_type, const char *pin,
                         size_t pin_len);
/* Logs out and closes the anchor session. CKR_OK when not logged in. */
CK_RV layers_token_logout(layers_token *token);
bool layers_token_logged_in(const layers_token *token);

/* Opens a backend session on the token (CKF_SERIAL_SESSION is added). */
CK_RV layers_token_open_session(layers_token *token, CK_FLAGS flags, CK_SESSION_HANDLE *session);
/* Closes one backend session opened by layers_token_open_session. */
CK_RV layers_token_close_session(layers_token *token, CK_SESSION_HANDLE session);

/* ---------------------------------------------------------------------
 * Provisioning (lazily created tokens)
 *
 * Backend facts these rely on (SoftHSM2 2.6.1, pinned down by
 * tests/unit/layers/test_provision.c): the module shows one free slot;
 * C_InitToken leaves the new token on that slot ID; a C_GetSlotList size
 * query (NULL list) then adds a new free slot, which is how a second
 * token can be provisioned without a restart; tokens made by another
 * process, and the slot IDs derived from serials, show only after the
 * backend is restarted (layers_module_cycle with *restarted true).
 * ------------------------------------------------------------------ */

/* Returned by layers_token_provision when an initialised token with the
 * label is already visible: repair it with layers_token_reinit instead of
 * making a second one. Vendor-defined; the engine maps it before it
 * reaches an application. */
#define LAYERS_CKR_LABEL_TAKEN (CKR_VENDOR_DEFINED | 0x53540001UL)

/* Finds a slot whose token is present and not initialised (CKR_OK,
 * *slot). CKR_TOKEN_NOT_PRESENT when there is none; CKR_ARGUMENTS_BAD;
 * CKR_HOST_MEMORY; or the backend's C_GetSlotList code. */
CK_RV layers_module_free_slot(layers_module *module, CK_SLOT_ID *slot);

/* Makes a token labelled label on a free slot: C_InitToken(so_pin,
 * label) -> RW session -> C_Login(CKU_SO) -> C_InitPIN(user_pin) ->
 * C_Logout -> close, then reads its serial into serial (NUL-terminated).
 * When the module shows no free slot it is cycled once (see
 * layers_module_cycle: other tokens' sessions and logins on the module
 * die, the generation says so) and looked at again. Returns CKR_OK;
 * CKR_ARGUMENTS_BAD (label empty, over 32 bytes or ending in a blank, a
 * PIN NULL or empty); LAYERS_CKR_LABEL_TAKEN; CKR_DEVICE_MEMORY when there
 * is still no free slot (chosen over CKR_TOKEN_NOT_PRESENT, which here
 * means a known token is missing and calls for a reconnect, while this
 * means "no room for a new token": err says whether the backend could be
 * restarted); the cycle's C_Initialize code; or the failing step's
 * backend code, err naming the step (a failure after C_InitToken leaves
 * an initialised token that layers_token_reinit repairs with the same SO
 * PIN). The PINs are not kept. The caller keeps every other thread off
 * the module during the call. Test fault points: env STRATA_TEST_FAIL_AT
 * = provision-before-inittoken, provision-after-inittoken,
 * provision-after-so-login or provision-after-initpin stops there as a
 * crash would and returns CKR_FUNCTION_FAILED. */
CK_RV layers_token_provision(layers_module *module, const char *label, const char *so_pin,
                             size_t so_len, const char *user_pin, size_t user_len, char serial[17],
                             char *err, size_t errsize);

/* As layers_token_provision, but makes the token even when tokens with the
 * label are visible (never LAYERS_CKR_LABEL_TAKEN): for one whose SO PIN
 * is not the caller's (an orphan a crash inside the backend left), so it
 * cannot be repaired. Name the new token by label and serial. */
CK_RV layers_token_provision_alongside(layers_module *module, const char *label, const char *so_pin,
                                       size_t so_len, const char *user_pin, size_t user_len,
                                       char serial[17], char *err, size_t errsize);

/* Repairs token (a half-provisioned one): logs it out, closes its
 * sessions, runs C_InitToken with its SO PIN (which wipes it) under label
 * (the current label when NULL; a new label no longer matches token's own
 * name), then the user PIN steps as above. Returns CKR_OK with serial;
 * CKR_ARGUMENTS_BAD; CKR_TOKEN_NOT_PRESENT; the failing step's backend
 * code (CKR_PIN_INCORRECT for a wrong SO PIN, the token untouched;
 * CKR_SESSION_EXISTS when another user has a session on it);
 * CKR_FUNCTION_FAILED at a test fault point. The caller keeps other
 * threads off the token. */
CK_RV layers_token_reinit(layers_token *token, const char *label, const char *so_pin, size_t so_len,
                          const char *user_pin, size_t user_len, char serial[17], char *err,
                          size_t errsize);

/* ---------------------------------------------------------------------
 * Objects moved between two tokens (transfer.c): strata migrate, and the
 * engine's copy-up. Each function talks to the two backends through the
 * sessions given (the caller holds whatever locks the backends need);
 * none prints; failures are CK_RV with, where a person must read it, a
 * reason in the caller's buffer.
 * ------------------------------------------------------------------ */

/* One side of a transfer: a backend session on a token. */
typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE session;
} layers_side;

/* A set of attributes read from one object: present ones only have a
 * value (possibly empty); absent ones have pValue NULL and ulValueLen
 * CK_UNAVAILABLE_INFORMATION. One allocation holds every value. */
typedef struct {
    CK_ATTRIBUTE *attrs;
    size_t n;
    void *values;
} layers_attrs;

/* Reads types from object (one size query, one read). A sensitive or
 * unknown attribute is absent, not an error. CKR_OK; CKR_HOST_MEMORY; the
 * backend's code. Free with layers_attrs_free. */
CK_RV layers_attrs_read(const layers_side *side, CK_OBJECT_HANDLE object,
                        const CK_ATTRIBUTE_TYPE *types, size_t n, layers_attrs *out);
void layers_attrs_free(layers_attrs *a);
/* The attribute of type, or NULL when absent. */
const CK_ATTRIBUTE *layers_attr(const layers_attrs *a, CK_ATTRIBUTE_TYPE type);
/* A CK_ULONG / CK_BBOOL attribute's value, or dflt when absent. */
CK_ULONG layers_attr_ulong(const layers_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt);
bool layers_attr_bool(const layers_attrs *a, CK_ATTRIBUTE_TYPE type, bool dflt);

/* The attributes to read first from an object to be moved: its identity
 * (the first LAYERS_N_IDENTITY: class, id, label, key type, certificate
 * type, serial number, issuer, the attributes Strata's handle index
 * identifies objects by, in that order) and what decides how it moves. */
extern const CK_ATTRIBUTE_TYPE layers_head_types[];
extern const size_t layers_n_head_types;
#define LAYERS_N_IDENTITY 7 /* the first LAYERS_N_IDENTITY of layers_head_types */

/* How an object can move. */
typedef enum {
    LAYERS_COPY,     /* by its attributes (certificate, public key, data object) */
    LAYERS_TRANSFER, /* wrapped (private and secret keys) */
    LAYERS_CANNOT,   /* why says why */
} layers_how;

/* How the object whose head attributes are head moves, with the reason
 * when it cannot (a static text) into *why. */
layers_how layers_classify(const layers_attrs *head, const char **why);

/* Finds on target the objects that answer the source object's identity
 * (class and CKA_ID and key or certificate type; a data object: its
 * application and label; CKA_LABEL too when CKA_ID is empty), up to max
 * into found (*n). CKR_OK or the backend's code. */
CK_RV layers_find_match(const layers_side *target, const layers_attrs *head,
                        CK_OBJECT_HANDLE *found, size_t max, size_t *n);

/* A token's mechanisms with their flags (layers_mechs_read). */
typedef struct {
    CK_MECHANISM_TYPE type;
    CK_FLAGS flags;
} layers_mech;
typedef struct {
    layers_mech *m;
    size_t n;
} layers_mechs;

/* Reads the mechanisms side's token lists, asking C_GetMechanismInfo
 * about listed ones only. CKR_OK (an empty list included);
 * CKR_HOST_MEMORY; the backend's code. Free with layers_mechs_free. */
CK_RV layers_mechs_read(const layers_side *side, layers_mechs *out);
void layers_mechs_free(layers_mechs *m);

/* The mechanisms a wrapped transfer uses (wrap.c says which and why). A
 * zeroed plan (not chosen) is the first choice of each: AES-KEY-WRAP-PAD
 * under RSA-OAEP with SHA-1. */
typedef struct {
    bool chosen;            /* by layers_wrap_choose */
    unsigned carries;       /* the RSA carries both tokens list (bits, best first) */
    unsigned carry;         /* the one in use */
    CK_MECHANISM_TYPE wrap; /* CKM_AES_KEY_WRAP_PAD, CKM_AES_CBC_PAD; 0 when chosen: none,
                               and a secret key travels under the carry itself */
} layers_wrap_plan;

/* Chooses from the source's and target's lists how a key of class cls
 * travels into *plan: true, or false with *why (a static text starting
 * "no common wrapping mechanism") when no mechanism both offer can carry
 * it. Pure: no backend call. */
bool layers_wrap_choose(const layers_mechs *source, const layers_mechs *target, CK_OBJECT_CLASS cls,
                        layers_wrap_plan *plan, const char **why);
/* Moves plan to its next carry (when a backend rejects the one in use, as
 * SoftHSM2 does OAEP parameters it lacks): true, or false when none is
 * left. */
bool layers_wrap_next_carry(layers_wrap_plan *plan);
/* The carry's mechanism, its OAEP parameters in *oaep. */
void layers_wrap_carry(const layers_wrap_plan *plan, CK_MECHANISM *mech,
                       CK_RSA_PKCS_OAEP_PARAMS *oaep);
/* Whether plan carries secret keys under the RSA carry itself (no AES
 * key: the tokens share no AES wrap). */
bool layers_wrap_direct(const layers_wrap_plan *plan);
/* The name of what wraps a key of class cls under plan ("AES-KEY-WRAP-PAD",
 * "AES-CBC-PAD", or the carry's, "RSA-OAEP"...); static. */
const char *layers_wrap_name(const layers_wrap_plan *plan, CK_OBJECT_CLASS cls);

/* A transient RSA key pair made on the target, whose public half is
 * imported on the source, to carry one transient AES key per run from the
 * source to the target (or, when the tokens share no AES wrap, each
 * secret key itself; see wrap.c). */
typedef struct {
    bool ready;
    layers_wrap_plan plan;           /* set by layers_transport_open, or the caller */
    CK_OBJECT_HANDLE target_private; /* session objects */
    CK_OBJECT_HANDLE target_public;
    CK_OBJECT_HANDLE source_public;
    CK_OBJECT_HANDLE source_aes; /* the transient AES key on the source */
    CK_OBJECT_HANDLE target_aes; /* the same key, unwrapped on the target */
} layers_transport;

/* Finds on target the shells a backend killed inside C_CreateObject or
 * C_UnwrapKey leaves (SoftHSM2 creates the object's file, then writes its
 * defaults one attribute at a time, then the template): objects whose
 * class and key type are absent, the vendor-defined default or the source
 * object's, with no label, no id and no value (a certificate's or data
 * object's CKA_VALUE, a key's modulus, EC parameters or length), which no
 * real object of these classes lacks. The keys of transport tr (NULL for
 * none) are never shells. Up to max into found (*n). CKR_OK or the
 * backend's code. */
CK_RV layers_find_shells(const layers_side *target, const layers_transport *tr,
                         const layers_attrs *head, CK_OBJECT_HANDLE *found, size_t max, size_t *n);

/* Whether target's object t holds what source's object s does: value
 * bytes for certificates and data objects, the public key for public and
 * private keys, and for keys whose value cannot be read a test of the
 * pair (layers_verify). *same; *how (a static text) says what was compared.
 * CKR_OK or a backend code. */
CK_RV layers_same(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                  CK_OBJECT_HANDLE t, const layers_attrs *head, bool *same, const char **how);

/* Whether both backends offer mechanisms that can carry a key of class
 * cls (layers_mechs_read on each, layers_wrap_choose), the choice into
 * *plan when plan is not NULL; *why says what is missing otherwise, or
 * that a token's mechanisms could not be read. */
bool layers_transport_possible(const layers_side *source, const layers_side *target,
                               CK_OBJECT_CLASS cls, layers_wrap_plan *plan, const char **why);

/* Makes the transport (once; a ready one is kept): chooses tr->plan from
 * both tokens' lists, then runs the steps below, with the next carry
 * when a token refuses one. CKR_OK or the failing step's code, err
 * naming the step. */
CK_RV layers_transport_open(layers_transport *tr, const layers_side *source,
                            const layers_side *target, char *err, size_t errsize);
/* Destroys the transient objects on both sides. */
void layers_transport_close(layers_transport *tr, const layers_side *source,
                            const layers_side *target);

/* The transport's steps one side at a time, for a caller that may hold
 * only one backend's locks at once (the engine's copy-up: its per-layer
 * locks are leaves); layers_transport_open runs them back to back.
 * 1. On the target: the transport key pair, its public half into *pub
 *    (free with layers_attrs_free). CKR_OK or the backend's code.
 * 2. On the source: pub imported, the transient AES key generated and
 *    wrapped under pub with tr->plan's carry into *blob (malloc'd, *len;
 *    free with layers_blob_free; none when the plan is direct).
 *    CKR_OK, CKR_HOST_MEMORY or the backend's code.
 * 3. On the target: blob unwrapped as the transient AES key; tr ready.
 * Whatever the outcome, close both sides (each on its own side). */
CK_RV layers_transport_pair(layers_transport *tr, const layers_side *target, layers_attrs *pub);
CK_RV layers_transport_key(layers_transport *tr, const layers_side *source, const layers_attrs *pub,
                           unsigned char **blob, CK_ULONG *len);
CK_RV layers_transport_accept(layers_transport *tr, const layers_side *target,
                              const unsigned char *blob, CK_ULONG len);
void layers_transport_close_source(layers_transport *tr, const layers_side *source);
void layers_transport_close_target(layers_transport *tr, const layers_side *target);
/* Wipes and frees a wrapped key (ciphertext, wiped all the same). */
void layers_blob_free(unsigned char *blob, CK_ULONG len);

/* Reads what a copy of source object s (of class cls) carries into *a
 * and builds the template of the copy in *templ (malloc'd; its values
 * point into *a): over's attributes first (the caller's changes, as a
 * C_CopyObject template), then the source's present attributes that over
 * does not name, CKA_TOKEN true unless over sets it, and CKA_DESTROYABLE
 * only when true. Empty values are left out but for the label (an empty
 * CKA_ID or date is the default anyway). CKR_OK; CKR_HOST_MEMORY; the
 * backend's code. Free *templ, then *a. */
CK_RV layers_copy_template(const layers_side *source, CK_OBJECT_HANDLE s, CK_OBJECT_CLASS cls,
                           const CK_ATTRIBUTE *over, CK_ULONG n_over, layers_attrs *a,
                           CK_ATTRIBUTE **templ, CK_ULONG *count);

/* Copies source object s to target, with every attribute a
 * C_CreateObject template may carry for its class, over's (n_over, may
 * be NULL) replacing the source's of the same type as a C_CopyObject
 * template would; a token object unless over says otherwise.
 * CKA_DESTROYABLE false is applied by layers_finish, after a
 * verification, so that an interrupted copy can be destroyed. CKR_OK
 * with *out; the backend's code, err naming the step. */
CK_RV layers_copy(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                  const layers_attrs *head, const CK_ATTRIBUTE *over, CK_ULONG n_over,
                  CK_OBJECT_HANDLE *out, char *err, size_t errsize);

/* Transports key s wrapped (layers_transport_open first): wrapped under
 * the transient AES key on the source (a secret key: under the carry when
 * the plan is direct), unwrapped on the target with the key's copyable
 * attributes, over's replacing them as for layers_copy; a copy the target
 * left readable against the template is made sensitive or destroyed. The
 * key is never in clear outside the backends. CKR_OK with *out; the
 * backend's code, err naming the step. */
CK_RV layers_transfer(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                      const layers_transport *tr, const layers_attrs *head,
                      const CK_ATTRIBUTE *over, CK_ULONG n_over, CK_OBJECT_HANDLE *out, char *err,
                      size_t errsize);

/* Wraps key s on the source under the ready transport into *blob
 * (malloc'd, *len; AES-CBC-PAD's random IV first; free with
 * layers_blob_free): one side of layers_transfer. CKR_OK,
 * CKR_HOST_MEMORY or the backend's code. */
CK_RV layers_wrap_key(const layers_side *source, const layers_transport *tr, CK_OBJECT_HANDLE s,
                      unsigned char **blob, CK_ULONG *len);
/* Unwraps blob on the target with templ (layers_copy_template's): the
 * other side. CKR_OK with *out; CKR_WRAPPED_KEY_LEN_RANGE for a blob too
 * short to hold its IV; the backend's code. */
CK_RV layers_unwrap_key(const layers_side *target, const layers_transport *tr,
                        const unsigned char *blob, CK_ULONG len, const CK_ATTRIBUTE *templ,
                        CK_ULONG count, CK_OBJECT_HANDLE *out);

/* Verifies target's copy t of source's s: bytes equal (certificates, data
 * objects), the public key equal (public keys; RSA private keys), a
 * signature made by the copy checked with the source's public key
 * (private keys that sign), the same ciphertext of one block (secret
 * keys that encrypt). *how says what was checked. CKR_OK when it holds;
 * CKR_SIGNATURE_INVALID (or another code) when not, err saying what
 * differed. */
CK_RV layers_verify(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                    CK_OBJECT_HANDLE t, const layers_attrs *head, const char **how, char *err,
                    size_t errsize);

/* layers_verify one side at a time (as the transport's steps above):
 * 1. layers_proof_source on the source reads what the copy must show
 *    (value, public key, check value) and encrypts the probe with a
 *    secret key;
 * 2. layers_proof_target on the target compares, and has a private key
 *    that signs sign the probe;
 * 3. layers_proof_check on the source verifies that signature with a
 *    session public key made from the source (destroyed again).
 * Each returns CKR_OK while the copy holds, CKR_SIGNATURE_INVALID when it
 * differs, or a backend's code; how says what was checked. Free with
 * layers_proof_free after step 1 in every case. */
typedef struct {
    layers_attrs source;     /* what the copy must show too */
    unsigned char block[16]; /* a secret key's ciphertext of the probe */
    CK_ULONG block_len;
    CK_RV block_rv;          /* how encrypting it on the source went */
    unsigned char sig[1024]; /* the copy's signature of the probe */
    CK_ULONG sig_len;
    CK_MECHANISM_TYPE sig_mech; /* what signed it */
    bool signed_probe;
    const char *how; /* a static text */
} layers_proof;

CK_RV layers_proof_source(const layers_side *source, CK_OBJECT_HANDLE s, const layers_attrs *head,
                          layers_proof *p);
CK_RV layers_proof_target(const layers_side *target, CK_OBJECT_HANDLE t, const layers_attrs *head,
                          layers_proof *p);
CK_RV layers_proof_check(const layers_side *source, CK_OBJECT_HANDLE s, const layers_attrs *head,
                         layers_proof *p);
void layers_proof_free(layers_proof *p);

/* Applies what layers_copy left for last (CKA_DESTROYABLE false). */
CK_RV layers_finish(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                    CK_OBJECT_HANDLE t);

/* ---------------------------------------------------------------------
 * Return values
 * ------------------------------------------------------------------ */

/* The symbolic name of a PKCS#11 return value ("CKR_PIN_INCORRECT");
 * "CKR_VENDOR_DEFINED" for vendor codes and "CKR_UNKNOWN" for anything
 * else the table lacks. Never NULL; static storage. */
const char *layers_rv_name(CK_RV rv);

#endif /* STRATA_LAYERS_H */
