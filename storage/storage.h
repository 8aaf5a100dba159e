/*
 * storage.h - Strata's SQLite catalog and its secrets (libsodium).
 *
 * A leaf library: the catalog holds state, never policy and never a secret
 * in clear. Every write runs in one transaction; every statement is
 * finalized on every path. SQLite and libsodium codes never leave this
 * folder: functions return a storage_rc and, where a person must read the
 * reason, fill a caller's error buffer. Nothing here logs or exits.
 *
 * Thread safety: one storage_catalog may be used from several threads; the
 * connection is opened in serialized mode and each call is self-contained.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_STORAGE_H
#define STRATA_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

typedef enum {
    STORAGE_OK = 0,
    STORAGE_ERR_NOMEM,         /* allocation failed */
    STORAGE_ERR_IO,            /* cannot open, create or write the file */
    STORAGE_ERR_NOT_CATALOG,   /* the file is not SQLite or not a Strata catalog */
    STORAGE_ERR_TOO_NEW,       /* written by a newer Strata; nothing changed */
    STORAGE_ERR_READ_ONLY,     /* a write on a read-only file or handle */
    STORAGE_ERR_NEEDS_INIT,    /* no catalog (or an old schema) and no CREATE flag */
    STORAGE_ERR_BUSY,          /* another process held the lock past the timeout */
    STORAGE_ERR_NOT_FOUND,     /* no such row */
    STORAGE_ERR_EXISTS,        /* already there (e.g. a PIN that selects another view) */
    STORAGE_ERR_PIN_INCORRECT, /* no view of the token answers this PIN */
    STORAGE_ERR_CRYPTO,        /* a sealed value failed to open: tampered or wrong key */
    STORAGE_ERR_ARGS,          /* bad arguments */
    STORAGE_ERR_INTERNAL,      /* anything else */
} storage_rc;

const char *storage_strerror(storage_rc rc);

/* ---------------------------------------------------------------------
 * Catalog file
 * ------------------------------------------------------------------ */

typedef struct storage_catalog storage_catalog;

enum {
    STORAGE_OPEN_CREATE = 1u << 0,    /* create the file and migrate to the current schema */
    STORAGE_OPEN_READ_ONLY = 1u << 1, /* never write (strata status) */
};

/* $XDG_DATA_HOME/strata/catalog.db, or ~/.local/share/strata/catalog.db.
 * malloc'd; NULL on allocation failure or when no home is known. */
char *storage_default_path(void);

/* The schema version this code writes. */
int storage_schema_version(void);

/* Opens the catalog at path. With STORAGE_OPEN_CREATE the file (mode 0600)
 * and its folder (0700, when missing) are created and the schema migrated
 * forward in one transaction. WAL mode, a busy timeout of a few seconds,
 * foreign keys on. A newer schema gives STORAGE_ERR_TOO_NEW and leaves the
 * file untouched, as does a file that is not a Strata catalog
 * (STORAGE_ERR_NOT_CATALOG). A file without any write permission bit, or
 * one this process cannot write, opens read-only (even for root): reads
 * work, writes give STORAGE_ERR_READ_ONLY. On failure *out is NULL and err
 * (if non-NULL) holds one line naming the file and the reason. */
storage_rc storage_catalog_open(const char *path, unsigned flags, storage_catalog **out, char *err,
                                size_t errsize);
void storage_catalog_close(storage_catalog *cat);

/* Schema version of the open file. */
int storage_catalog_version(storage_catalog *cat);
const char *storage_catalog_path(const storage_catalog *cat);

/* ---------------------------------------------------------------------
 * Virtual slots: stable IDs, keyed by the token's label in the policy
 * ------------------------------------------------------------------ */

/* The slot ID of the virtual token with this label, assigned on first use
 * (small integers from 1 upwards, never reused) and the same in every
 * process afterwards. On a read-only catalog an unknown label gives
 * STORAGE_ERR_NOT_FOUND. */
storage_rc storage_slot_id(storage_catalog *cat, const char *token_label, CK_SLOT_ID *out);

/* ---------------------------------------------------------------------
 * Views: enrolment and login
 *
 * PIN -> Argon2id (per-token salt and cost kept in the catalog) -> K.
 * tag = BLAKE2b-keyed(K, "strata-tag"), wrap = BLAKE2b-keyed(K, "strata-wrap");
 * each layer credential is sealed with crypto_secretbox under wrap.
 * ------------------------------------------------------------------ */

typedef struct {
    const char *layer; /* layer id */
    const char *pin;   /* backend PIN (not NUL-terminated necessarily) */
    size_t pin_len;
} storage_cred;

typedef struct {
    unsigned long long ops; /* Argon2id opslimit; 0 = crypto_pwhash_OPSLIMIT_INTERACTIVE */
    size_t mem;             /* Argon2id memlimit; 0 = crypto_pwhash_MEMLIMIT_INTERACTIVE */
} storage_kdf;

/* Enrols (or re-enrols) view of token with pin and the layer credentials,
 * replacing any earlier enrolment of that view, in one transaction. The
 * token's salt and cost are created on the first enrolment and reused
 * afterwards (kdf is used only then). A PIN that already selects another
 * view of the token gives STORAGE_ERR_EXISTS and changes nothing. */
storage_rc storage_view_enroll(storage_catalog *cat, const char *token, const char *view,
                               const char *pin, size_t pin_len, const storage_cred *creds,
                               size_t n_creds, const storage_kdf *kdf);

/* Removes a view's enrolment. */
storage_rc storage_view_remove(storage_catalog *cat, const char *token, const char *view);

/* A successful login: the view and its unwrapped layer credentials, held in
 * sodium_malloc'd memory and wiped by storage_login_free. */
typedef struct storage_login storage_login;

/* Runs Argon2id exactly once over pin, finds the view whose tag matches and
 * unwraps its credentials. STORAGE_ERR_PIN_INCORRECT when no view matches
 * (and when the token has no enrolment at all, after the same work). */
storage_rc storage_view_login(storage_catalog *cat, const char *token, const char *pin,
                              size_t pin_len, storage_login **out);
const char *storage_login_view(const storage_login *login);
size_t storage_login_count(const storage_login *login);
/* The i-th credential; pointers stay valid until storage_login_free. */
void storage_login_cred(const storage_login *login, size_t i, const char **layer, const char **pin,
                        size_t *pin_len);
/* The credential of layer, or NULL. */
const storage_cred *storage_login_find(const storage_login *login, const char *layer);
void storage_login_free(storage_login *login);

typedef struct {
    char view[128];
    unsigned n_creds;
} storage_view_info;

/* Calls fn for each enrolled view of token, in name order. */
storage_rc storage_views_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_view_info *info), void *ctx);

/* Failed-login counter of a virtual token (0 for a token never seen).
 * storage_view_login never touches it: the caller counts failures. */
storage_rc storage_login_failures(storage_catalog *cat, const char *token, unsigned *count);
/* Adds one failure; *count receives the new value (may be NULL). */
storage_rc storage_login_failed(storage_catalog *cat, const char *token, unsigned *count);
/* Clears the counter. A counter already at zero costs one read and no write
 * (so it may follow every successful login, also on a read-only catalog);
 * clearing a non-zero one writes an audit row. */
storage_rc storage_login_reset(storage_catalog *cat, const char *token);

/* ---------------------------------------------------------------------
 * Object identities and stable virtual handles
 * ------------------------------------------------------------------ */

/* Returns the virtual handle recorded for (token, layer, identity), or
 * assigns the next free one (from 1 upwards, per token, never reused). */
storage_rc storage_object_handle(storage_catalog *cat, const char *token, const char *layer,
                                 const void *identity, size_t identity_len, CK_OBJECT_HANDLE *out);

/* The same for n identities in one transaction; handles[i] answers
 * identities[i]. */
storage_rc storage_object_handles(storage_catalog *cat, const char *token, const char *layer,
                                  const void *const *identities, const size_t *identity_lens,
                                  size_t n, CK_OBJECT_HANDLE *handles);

/* Calls fn for each recorded identity of token (to prime an in-memory index),
 * in handle order. The rows are read in one snapshot first; fn then runs
 * with no storage lock held, so it may call back into storage. */
typedef void (*storage_object_fn)(void *ctx, const char *layer, const void *identity, size_t len,
                                  CK_OBJECT_HANDLE handle);
storage_rc storage_objects_load(storage_catalog *cat, const char *token, storage_object_fn fn,
                                void *ctx);

/* Forgets an identity (its object was destroyed); its handle is never handed
 * out again. STORAGE_ERR_NOT_FOUND when the identity was not recorded. */
storage_rc storage_object_forget(storage_catalog *cat, const char *token, const char *layer,
                                 const void *identity, size_t identity_len);

/* ---------------------------------------------------------------------
 * Whiteouts: objects of a read-only layer a view has deleted
 * ------------------------------------------------------------------ */

storage_rc storage_whiteout_add(storage_catalog *cat, const char *token, const char *view,
                                const char *layer, const void *identity, size_t identity_len);
/* fn receives the identity's handle when the catalog knows one, else
 * CK_INVALID_HANDLE; like storage_objects_load, it runs with no lock held. */
storage_rc storage_whiteouts_load(storage_catalog *cat, const char *token, const char *view,
                                  storage_object_fn fn, void *ctx);

/* ---------------------------------------------------------------------
 * Audit trail of administrative changes (never a secret)
 * ------------------------------------------------------------------ */

storage_rc storage_audit(storage_catalog *cat, const char *action, const char *subject,
                         const char *outcome);

/* ---------------------------------------------------------------------
 * Secret helpers (libsodium)
 * ------------------------------------------------------------------ */

/* sodium_init once; returns STORAGE_OK or STORAGE_ERR_CRYPTO. */
storage_rc storage_crypto_init(void);

/* Constant-time equality. */
bool storage_equal(const void *a, const void *b, size_t len);

/* Wipes len bytes. */
void storage_wipe(void *p, size_t len);

/* How many Argon2id derivations this process has run (enrolments, logins,
 * and the dummy run of a login on a token without enrolment). For tests
 * that check a login costs exactly one, whatever the number of views. */
unsigned long storage_kdf_calls(void);

#endif /* STRATA_STORAGE_H */
