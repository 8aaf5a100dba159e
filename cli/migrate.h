/*
 * migrate.h - what strata migrate (migrate.c) and the object transfers
 * between two backend tokens (transfer.c) share. Private to cli/.
 *
 * transfer.c talks PKCS#11 to the two layers' backends directly, through
 * sessions the command opened on tokens it logged in to with the layer
 * credentials the catalog holds: it reads an object's attributes, finds
 * its match on the target, copies it or transports it wrapped, and
 * verifies the copy. It never prints; failures come back as CK_RV with a
 * reason for a person in the caller's buffer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_CLI_MIGRATE_H
#define STRATA_CLI_MIGRATE_H

#include "cli.h"

int cli_cmd_migrate(cli_global *g, int argc, char **argv);

/* One side of a move: a backend session on a layer's token. */
typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE session;
    const char *layer; /* the layer's id, for messages */
} mig_side;

/* A set of attributes read from one object: present ones only have a
 * value (possibly empty); absent ones have pValue NULL and ulValueLen
 * CK_UNAVAILABLE_INFORMATION. One allocation holds every value. */
typedef struct {
    CK_ATTRIBUTE *attrs;
    size_t n;
    void *values;
} mig_attrs;

/* Reads types from object (one size query, one read). A sensitive or
 * unknown attribute is absent, not an error. CKR_OK; CKR_HOST_MEMORY; the
 * backend's code. Free with mig_attrs_free. */
CK_RV mig_attrs_read(const mig_side *side, CK_OBJECT_HANDLE object, const CK_ATTRIBUTE_TYPE *types,
                     size_t n, mig_attrs *out);
void mig_attrs_free(mig_attrs *a);
/* The attribute of type, or NULL when absent. */
const CK_ATTRIBUTE *mig_attr(const mig_attrs *a, CK_ATTRIBUTE_TYPE type);
/* A CK_ULONG / CK_BBOOL attribute's value, or dflt when absent. */
CK_ULONG mig_attr_ulong(const mig_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt);
bool mig_attr_bool(const mig_attrs *a, CK_ATTRIBUTE_TYPE type, bool dflt);

/* The attributes this code reads from every source object first: its
 * identity (engine/handles.c's identity attributes, in that order) and
 * what decides how it moves. */
extern const CK_ATTRIBUTE_TYPE mig_head_types[];
extern const size_t mig_n_head_types;
#define MIG_N_IDENTITY 7 /* the first MIG_N_IDENTITY of mig_head_types */

/* How an object can move. */
typedef enum {
    MIG_COPY,     /* by its attributes (certificate, public key, data object) */
    MIG_TRANSFER, /* wrapped (private and secret keys) */
    MIG_CANNOT,   /* why says why */
} mig_how;

/* How the object whose head attributes are head moves, with the reason
 * when it cannot (a static text) into *why. */
mig_how mig_classify(const mig_attrs *head, const char **why);

/* Finds on target the objects that answer the source object's identity
 * (class and CKA_ID and key or certificate type; a data object: its
 * application and label; CKA_LABEL too when CKA_ID is empty), up to max
 * into found (*n). CKR_OK or the backend's code. */
CK_RV mig_find_match(const mig_side *target, const mig_attrs *head, CK_OBJECT_HANDLE *found,
                     size_t max, size_t *n);

/* Finds on target the shells a backend killed inside C_CreateObject or
 * C_UnwrapKey leaves (SoftHSM2 creates the object's file before it writes
 * its attributes, in place): objects without a readable CKA_CLASS, and
 * objects of the source object's class and key type with no label, no id
 * and no value (a certificate's or data object's CKA_VALUE, a key's
 * modulus, EC parameters or length), which no real object of these
 * classes lacks. Up to max into found (*n). CKR_OK or the backend's
 * code. */
CK_RV mig_find_blank(const mig_side *target, const mig_attrs *head, CK_OBJECT_HANDLE *found,
                     size_t max, size_t *n);

/* Whether target's object t holds what source's object s does: value
 * bytes for certificates and data objects, the public key for public and
 * private keys, and for keys whose value cannot be read a test of the
 * pair (mig_verify). *same; *how (a static text) says what was compared.
 * CKR_OK or a backend code. */
CK_RV mig_same(const mig_side *source, CK_OBJECT_HANDLE s, const mig_side *target,
               CK_OBJECT_HANDLE t, const mig_attrs *head, bool *same, const char **how);

/* A transient RSA-OAEP key pair made on the target, whose public half is
 * imported on the source, to carry one transient AES key per run from the
 * source to the target (see transfer.c). */
typedef struct {
    bool ready;
    CK_OBJECT_HANDLE target_private; /* session objects */
    CK_OBJECT_HANDLE target_public;
    CK_OBJECT_HANDLE source_public;
    CK_OBJECT_HANDLE source_aes; /* the transient AES key on the source */
    CK_OBJECT_HANDLE target_aes; /* the same key, unwrapped on the target */
} mig_transport;

/* Whether both backends offer what a wrapped transfer needs; *why names
 * the missing mechanism otherwise. */
bool mig_transport_possible(const mig_side *source, const mig_side *target, const char **why);

/* Makes the transport (once; a ready one is kept). CKR_OK or the failing
 * step's code, err naming the step. */
CK_RV mig_transport_open(mig_transport *tr, const mig_side *source, const mig_side *target,
                         char *err, size_t errsize);
/* Destroys the transient objects on both sides. */
void mig_transport_close(mig_transport *tr, const mig_side *source, const mig_side *target);

/* Copies source object s to target as a token object, with every
 * copyable attribute of its class (CKA_DESTROYABLE false is applied after
 * mig_finish, so that an interrupted copy can be destroyed). CKR_OK with
 * *out; the backend's code, err naming the step. */
CK_RV mig_copy(const mig_side *source, CK_OBJECT_HANDLE s, const mig_side *target,
               const mig_attrs *head, CK_OBJECT_HANDLE *out, char *err, size_t errsize);

/* Transports key s wrapped (mig_transport_open first): wrapped under the
 * transient AES key on the source, unwrapped on the target with the key's
 * copyable attributes. The key is never in clear outside the backends.
 * CKR_OK with *out; the backend's code, err naming the step. */
CK_RV mig_transfer(const mig_side *source, CK_OBJECT_HANDLE s, const mig_side *target,
                   const mig_transport *tr, const mig_attrs *head, CK_OBJECT_HANDLE *out, char *err,
                   size_t errsize);

/* Verifies target's copy t of source's s: bytes equal (certificates, data
 * objects), the public key equal (public keys; RSA private keys), a
 * signature made by the copy checked with the source's public key
 * (private keys that sign), the same ciphertext of one block (secret
 * keys that encrypt). *how says what was checked. CKR_OK when it holds;
 * CKR_SIGNATURE_INVALID (or another code) when not, err saying what
 * differed. */
CK_RV mig_verify(const mig_side *source, CK_OBJECT_HANDLE s, const mig_side *target,
                 CK_OBJECT_HANDLE t, const mig_attrs *head, const char **how, char *err,
                 size_t errsize);

/* Applies what mig_copy left for last (CKA_DESTROYABLE false). */
CK_RV mig_finish(const mig_side *source, CK_OBJECT_HANDLE s, const mig_side *target,
                 CK_OBJECT_HANDLE t);

#endif /* STRATA_CLI_MIGRATE_H */
