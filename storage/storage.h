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
#include <stdint.h>

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
    STORAGE_ERR_LOCKED,        /* a PIN's failure counter is at its limit */
    STORAGE_ERR_FULL,          /* the file system has no room for the write */
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

/* Opens the catalog at path. With STORAGE_OPEN_CREATE a missing file (mode
 * 0600) and its folder (0700, when missing) are created, complete, in one
 * step, or the schema of an older file migrated forward in one
 * transaction. An empty or truncated file is damage, never initialised
 * anew (STORAGE_ERR_NOT_CATALOG). A catalog whose folder others can write,
 * or whose file, -wal, -shm or -journal belongs to another user or has
 * group or other permission bits, is refused (STORAGE_ERR_IO). WAL mode, a busy timeout of a few
 * seconds, foreign keys on. A newer schema gives STORAGE_ERR_TOO_NEW and leaves the file untouched,
 * as does a file that is not a Strata catalog (STORAGE_ERR_NOT_CATALOG). A file without any write
 * permission bit, or one this process cannot write, opens read-only (even for root): reads work,
 * writes give STORAGE_ERR_READ_ONLY. On failure *out is NULL and err (if non-NULL) holds one line
 * naming the file and the reason. Fork: a catalog opened in a parent is unusable in a forked child
 * (every call gives STORAGE_ERR_INTERNAL); the child's first storage_catalog_open closes the SQLite
 * connections it inherited (see catalog.c for why that is needed and safe), and
 * storage_catalog_close on an inherited catalog only frees memory. */
storage_rc storage_catalog_open(const char *path, unsigned flags, storage_catalog **out, char *err,
                                size_t errsize);
/* What storage_catalog_open checks before it opens anything, alone
 * (strata check): STORAGE_OK; STORAGE_ERR_IO for an unsafe location (a
 * folder others can write, or a catalog, -wal, -shm or -journal file of
 * another user or with group or other permission bits) or an unreadable
 * file; STORAGE_ERR_NOT_CATALOG for an empty, truncated or foreign file;
 * STORAGE_ERR_NEEDS_INIT when there is no file. err as for open. */
storage_rc storage_catalog_inspect(const char *path, char *err, size_t errsize);
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

/* strata forget: removes a view's enrolment with its sealed credentials,
 * its whiteouts and what its last login left out, in one transaction
 * audited "forget". Its provisioning rows stay (their tokens live on
 * their backends; their PINs stay sealed under the forgotten PIN's key and
 * to the administrator): *provisioned (may be NULL) receives their
 * number. Forgetting the token's last view also clears its Argon2id salt
 * and cost, so the next enrolment takes the policy's <kdf>. STORAGE_OK; STORAGE_ERR_NOT_FOUND (not
 * enrolled); STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY. */
storage_rc storage_view_forget(storage_catalog *cat, const char *token, const char *view,
                               unsigned *provisioned);

/* C_InitPIN's enrolment: enrols (or re-enrols) view with pin and no layer
 * credential, as storage_view_enroll does, unless a provisioning row
 * names the view: then STORAGE_ERR_EXISTS with *has_tokens (may be NULL)
 * true and nothing changed (those tokens' PINs are sealed under the
 * view's current key; a new PIN would lose them). STORAGE_ERR_EXISTS with
 * *has_tokens false: the PIN selects another view. Checked in the
 * enrolment's own transaction. Audited as "init-pin". */
storage_rc storage_view_init_pin(storage_catalog *cat, const char *token, const char *view,
                                 const char *pin, size_t pin_len, const storage_kdf *kdf,
                                 bool *has_tokens);

/* A successful login: the view and its unwrapped layer credentials, held in
 * sodium_malloc'd memory and wiped by storage_login_free. */
typedef struct storage_login storage_login;

/* Runs Argon2id exactly once over pin, finds the view whose tag matches and
 * unwraps its credentials. STORAGE_ERR_PIN_INCORRECT when no view matches
 * (and when the token has no enrolment at all, after the same work). */
storage_rc storage_view_login(storage_catalog *cat, const char *token, const char *pin,
                              size_t pin_len, storage_login **out);
/* The same, when the caller names the view (view_len bytes, C_LoginUser):
 * the same one Argon2id run, then only view's tag is compared with the
 * PIN's. A PIN of
 * another view, or a view that does not exist, answers
 * STORAGE_ERR_PIN_INCORRECT after the same work as a wrong PIN. view NULL
 * is storage_view_login. */
storage_rc storage_view_login_as(storage_catalog *cat, const char *token, const char *view,
                                 size_t view_len, const char *pin, size_t pin_len,
                                 storage_login **out);

/* Whether the policy still has the view named view (ctx: the caller's). */
typedef bool (*storage_view_known_fn)(const char *view, void *ctx);

/* storage_view_login_as for the views known() accepts: a PIN that selects
 * a view known() refuses (enrolled, since removed from the policy) answers
 * STORAGE_ERR_PIN_INCORRECT after exactly the work of a wrong PIN (one
 * Argon2id run, the same catalog reads, nothing unsealed). known NULL:
 * every enrolled view. */
storage_rc storage_view_login_known(storage_catalog *cat, const char *token, const char *view,
                                    size_t view_len, const char *pin, size_t pin_len,
                                    storage_view_known_fn known, void *ctx, storage_login **out);
const char *storage_login_view(const storage_login *login);
/* Whether pin selects the view of login (*match), at a cost that does not
 * depend on the answer: one read of the token's KDF parameters, one
 * Argon2id run, one constant-time comparison with the login's view tag;
 * no view is looked up and nothing is unsealed. So a wrong PIN and another
 * view's PIN do exactly the same work. STORAGE_OK; STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM; or the read's failure. */
storage_rc storage_login_matches(storage_catalog *cat, const storage_login *login, const char *pin,
                                 size_t pin_len, bool *match);
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
    /* Since issue 5 (state for strata views; a listed view is enrolled): */
    unsigned failed_logins; /* the token's counter, the same in every row: the caller
                               compares it with the policy's max-failed-logins (locked) */
    unsigned provisioned;   /* provisioned tokens of the view in state ready */
    unsigned provisioning;  /* provisioning rows of the view not ready yet */
} storage_view_info;

/* Whether token has at least one enrolled view (*any), at a cost that does
 * not grow with the number of views. */
storage_rc storage_views_any(storage_catalog *cat, const char *token, bool *any);

/* Calls fn for each enrolled view of token, in name order. */
storage_rc storage_views_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_view_info *info), void *ctx);

/* The Argon2id cost token's views were enrolled with (*found false, and
 * *out zeros, when the token has no enrolment yet). STORAGE_OK;
 * STORAGE_ERR_ARGS; or the read's failure. */
storage_rc storage_token_kdf(storage_catalog *cat, const char *token, storage_kdf *out,
                             bool *found);

/* kdf (NULL or zeros: libsodium's interactive cost) as the cost an
 * enrolment would use, into *out. STORAGE_OK; STORAGE_ERR_ARGS when
 * outside Argon2id's limits. */
storage_rc storage_kdf_effective(const storage_kdf *kdf, storage_kdf *out);

/* Failed-login counters of a virtual token: one for the user PINs (shared
 * by every view) and one for the security officer's, kept apart so that
 * neither lockout locks the other out. */
typedef enum {
    STORAGE_PIN_USER = 0, /* the views' PINs: C_Login(CKU_USER, CKU_CONTEXT_SPECIFIC), C_SetPIN */
    STORAGE_PIN_SO,       /* the SO PIN: C_Login(CKU_SO) */
} storage_pin_kind;

/* Reserves one guess of kind before a PIN is evaluated: in ONE write
 * transaction (BEGIN IMMEDIATE) reads the counter, takes off the failures
 * that expired (one per recovery seconds since the counter's stamp; none
 * when recovery is 0 or the clock reads earlier than the stamp) and, when
 * it is below max (>= 1), adds one; *count (may be NULL) receives the
 * value read or written. Processes racing each other therefore never
 * evaluate more than max wrong PINs per recovery interval. The
 * reservation stays a failure unless the caller gives it back with
 * storage_guess_settle once the PIN proved right (a right PIN clears
 * nothing else).
 *   STORAGE_OK;
 *   STORAGE_ERR_LOCKED     the counter is at max; nothing written;
 *   STORAGE_ERR_READ_ONLY, STORAGE_ERR_IO (full disk), STORAGE_ERR_BUSY:
 *                          the guess could not be recorded: the caller
 *                          must not evaluate the PIN (fail closed);
 *   STORAGE_ERR_ARGS, STORAGE_ERR_NOMEM. */
storage_rc storage_guess_reserve(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                 unsigned max, unsigned recovery, unsigned *count);

/* Gives back the caller's reserved guess after its PIN proved right: takes
 * one from the counter (never below zero), or with clear sets it to zero
 * and audits "reset-failures" with the number of other failures cleared
 * (none: no audit row). STORAGE_OK; STORAGE_ERR_ARGS; or the write's
 * failure (the counter then keeps the reservation: it errs on the safe
 * side). */
storage_rc storage_guess_settle(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                bool clear);

/* The stored counter of kind (0 for a token never seen), before any
 * failure expires. */
storage_rc storage_pin_failures(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                unsigned *count);

/* A counter as the next guess would find it. */
typedef struct {
    unsigned failures;   /* expired failures taken off */
    int64_t next_expiry; /* Unix time the next failure expires; 0: none will */
    int64_t now;         /* the clock these were computed at */
    bool clock_behind;   /* the clock reads earlier than the counter's stamp
                            (set back): nothing expires until it catches up */
} storage_pin_count;

/* Reads the counter of kind with failures expiring one per recovery
 * seconds (0: never) into *out; one read transaction, nothing written.
 * STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_BUSY. */
storage_rc storage_pin_counter(storage_catalog *cat, const char *token, storage_pin_kind kind,
                               unsigned recovery, storage_pin_count *out);

/* The administrator's unlock of kind: clears that counter in one write
 * transaction and always audits it ("unlock" for the user PINs,
 * "unlock-so" for the SO PIN) with the number cleared; *cleared may be
 * NULL. STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY;
 * STORAGE_ERR_BUSY. */
storage_rc storage_pin_unlock(storage_catalog *cat, const char *token, storage_pin_kind kind,
                              unsigned *cleared);

/* Failed-login counter of the user PINs of a virtual token (0 for a token
 * never seen). storage_view_login never touches it: the caller counts
 * failures (storage_guess_reserve). */
storage_rc storage_login_failures(storage_catalog *cat, const char *token, unsigned *count);
/* Adds one failure; *count receives the new value (may be NULL). */
storage_rc storage_login_failed(storage_catalog *cat, const char *token, unsigned *count);
/* Clears the counter. A counter already at zero costs one read and no write
 * (so it may follow every successful login, also on a read-only catalog);
 * clearing a non-zero one writes an audit row. */
storage_rc storage_login_reset(storage_catalog *cat, const char *token);

/* The administrator's unlock (strata unlock): clears the counter in one
 * write transaction and always writes an audit row with action "unlock"
 * and the number cleared (also when it was zero, or for a token the
 * catalog does not know). *cleared (may be NULL) receives that number.
 * STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY.
 * storage_login_reset stays the call after a successful login (audit
 * action "reset-failures", and only when the counter was non-zero). */
storage_rc storage_token_unlock(storage_catalog *cat, const char *token, unsigned *cleared);

/* ---------------------------------------------------------------------
 * Layer credentials that drift (creds.c)
 *
 * A layer credential the backend refuses (CKR_PIN_INCORRECT,
 * CKR_PIN_EXPIRED, CKR_PIN_LOCKED: its PIN was changed or locked behind
 * Strata's back) is marked stale and must not be presented again by any
 * process until it is sealed anew (storage_cred_reseal or a new
 * enrolment of the view). The caller presents a credential only while
 * holding its lock and after reading its mark under it, so a changed PIN
 * costs the backend one wrong try at most.
 * ------------------------------------------------------------------ */

/* Whether the credential of (token, view, layer) is marked stale, read
 * afresh. STORAGE_OK and *stale; STORAGE_ERR_NOT_FOUND (no such view or
 * credential); STORAGE_ERR_ARGS; or the read's failure. */
storage_rc storage_cred_is_stale(storage_catalog *cat, const char *token, const char *view,
                                 const char *layer, bool *stale);

/* Marks it stale with reason (the backend's CKR_* name), audited
 * "cred-stale". A mark already there is kept. STORAGE_OK;
 * STORAGE_ERR_NOT_FOUND; STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY;
 * STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. */
storage_rc storage_cred_mark_stale(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, const char *reason);

/* Seals pin as the credential of layer for the login's view (replacing
 * the row, or adding it), clearing its stale mark, audited
 * "enroll-layer". The other layers' credentials are untouched.
 * STORAGE_OK; STORAGE_ERR_NOT_FOUND; STORAGE_ERR_ARGS;
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. */
storage_rc storage_cred_reseal(storage_catalog *cat, const storage_login *login, const char *layer,
                               const char *pin, size_t pin_len);

typedef struct {
    char view[128];
    char layer[128];
    bool stale;         /* marked stale: not presented until sealed anew */
    char reason[40];    /* the backend's answer when it was marked ("" when not stale) */
    long long stale_at; /* seconds since the epoch (0 when not stale) */
} storage_cred_info;

/* Calls fn for each layer credential of token (never its PIN), ordered by
 * view and enrolment order. STORAGE_OK (also for an unknown token);
 * STORAGE_ERR_ARGS; STORAGE_ERR_NOMEM. */
storage_rc storage_creds_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_cred_info *info), void *ctx);

/* The lock of one credential, between processes (see creds.c). */
typedef struct {
    int fd; /* -1 when not held */
} storage_cred_guard;

/* Takes the lock of (token, view, layer), waiting for another process
 * that holds it. STORAGE_OK with *guard held; STORAGE_ERR_READ_ONLY (the
 * catalog, or its lock file, cannot be written: no mark could be kept
 * either); STORAGE_ERR_IO; STORAGE_ERR_ARGS; STORAGE_ERR_NOMEM. Release
 * with storage_cred_unlock (harmless on a guard not held). */
storage_rc storage_cred_lock(storage_catalog *cat, const char *token, const char *view,
                             const char *layer, storage_cred_guard *guard);
void storage_cred_unlock(storage_cred_guard *guard);

/* A layer a login left out, and why ("stale credential", a CKR_* name,
 * "token absent", ...). */
typedef struct {
    char view[128];
    char layer[128];
    char reason[64];
    long long at; /* seconds since the epoch */
} storage_left_out;

/* Records the layers the view's login left out (n may be 0: none),
 * replacing what its previous login recorded. No write when both are
 * empty. STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY;
 * STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. */
storage_rc storage_login_left_out(storage_catalog *cat, const char *token, const char *view,
                                  const storage_left_out *items, size_t n);

/* Calls fn for each layer the last login of each view of token left out,
 * ordered by view and layer. STORAGE_OK; STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM. */
storage_rc storage_left_out_list(storage_catalog *cat, const char *token,
                                 void (*fn)(void *ctx, const storage_left_out *item), void *ctx);

/* ---------------------------------------------------------------------
 * PIN change
 * ------------------------------------------------------------------ */

/* C_SetPIN / strata passwd: two Argon2id runs (the old PIN, found by tag
 * exactly as storage_view_login finds it; then the new one, with the
 * token's salt and cost), then ONE write transaction that re-seals every
 * sealed value of the view under the new key (its layer credentials and
 * its provisioned tokens' user and SO PINs), replaces the view's tag and
 * writes an audit row ("passwd"). A crash leaves the old PIN or the new
 * one working, never a mix.
 *   STORAGE_OK;
 *   STORAGE_ERR_PIN_INCORRECT  old_pin selects no view (also for a token
 *                              without enrolment), nothing changed;
 *   STORAGE_ERR_EXISTS         new_pin already selects another view
 *                              (the engine answers CKR_PIN_INCORRECT);
 *                              nothing changed, audited as refused;
 *   STORAGE_ERR_CRYPTO         a sealed value of the view does not open
 *                              under the old key (tampered); nothing changed;
 *   STORAGE_ERR_ARGS           NULL names, or an empty new PIN (length
 *                              policy is the caller's: CKR_PIN_LEN_RANGE);
 *   STORAGE_ERR_READ_ONLY, STORAGE_ERR_NOMEM, STORAGE_ERR_BUSY.
 * new_pin equal to old_pin re-seals under the same key and succeeds.
 *
 * The administrator, who cannot know the old PIN, uses re-enrolment
 * (storage_view_enroll with the view's name) instead: the layer
 * credentials are given again; the view's provisioned tokens keep their
 * rows, and their PINs, sealed under the old key, can be recovered by the
 * administrator with storage_so_open (SO PIN) to re-initialise the user
 * PIN on the backend (C_InitPIN) and re-provision. */
storage_rc storage_view_passwd(storage_catalog *cat, const char *token, const char *old_pin,
                               size_t old_len, const char *new_pin, size_t new_len);

/* The same, and when kdf (the policy's <kdf>; NULL: never) resolves to a
 * cost other than the token's and the token has this one view only, the
 * new PIN is derived with that cost and a fresh salt, which become the
 * token's in the same transaction (*kdf_applied, may be NULL, says so).
 * With several views the token's cost is kept: one login runs one
 * Argon2id for all of them. STORAGE_ERR_BUSY when a view was enrolled
 * meanwhile (nothing changed). */
storage_rc storage_view_passwd_kdf(storage_catalog *cat, const char *token, const char *old_pin,
                                   size_t old_len, const char *new_pin, size_t new_len,
                                   const storage_kdf *kdf, bool *kdf_applied);

/* storage_view_passwd for the views known() accepts: an old PIN that
 * selects a view known() refuses (enrolled, since removed from the
 * policy) answers STORAGE_ERR_PIN_INCORRECT after exactly the work of a
 * wrong old PIN (the same two Argon2id runs and transactions, nothing
 * unsealed) and changes nothing. known NULL: every enrolled view. */
storage_rc storage_view_passwd_known(storage_catalog *cat, const char *token, const char *old_pin,
                                     size_t old_len, const char *new_pin, size_t new_len,
                                     storage_view_known_fn known, void *ctx);

/* ---------------------------------------------------------------------
 * Security officer of a virtual token
 *
 * The SO PIN is kept as a crypto_pwhash_str (Argon2id) verifier. It also
 * derives the administrator's crypto_box key pair: seed =
 * Argon2id(SO PIN, a per-token admin salt), crypto_box_seed_keypair; only
 * the public key is stored. Provisioning seals each generated SO PIN to
 * that public key, so the administrator recovers it without the user.
 * ------------------------------------------------------------------ */

/* Sets the SO PIN of token (creating the token's row when missing) in one
 * transaction with an audit row ("so-set"); two Argon2id runs at kdf's cost
 * (NULL or zeros: interactive). STORAGE_OK; STORAGE_ERR_EXISTS when an SO
 * PIN is already set (nothing changed: the seals made for its key would
 * not open under a new one); STORAGE_ERR_ARGS (empty PIN, bad cost);
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. */
storage_rc storage_so_set(storage_catalog *cat, const char *token, const char *so_pin, size_t len,
                          const storage_kdf *kdf);

/* One Argon2id run. STORAGE_OK when so_pin is the SO PIN;
 * STORAGE_ERR_PIN_INCORRECT; STORAGE_ERR_NOT_FOUND when the token has no
 * SO PIN (or is unknown); STORAGE_ERR_ARGS. Does not count failures. */
storage_rc storage_so_check(storage_catalog *cat, const char *token, const char *so_pin,
                            size_t len);

/* Changes the SO PIN of token from old_pin to new_pin: a new verifier,
 * admin salt and key pair at kdf's cost (NULL or zeros: interactive), and
 * every provisioned token's SO PIN sealed to the old administrator key
 * re-sealed to the new one, in one transaction with an audit row
 * ("so-passwd"). Three Argon2id runs. Does not count failures (the
 * caller does). STORAGE_OK; STORAGE_ERR_PIN_INCORRECT (old_pin does not
 * derive the token's administrator key; nothing changed);
 * STORAGE_ERR_NOT_FOUND (no SO PIN set); STORAGE_ERR_CRYPTO (a seal does
 * not open under the old key: nothing changed); STORAGE_ERR_BUSY (the SO
 * PIN changed, or a token was provisioned, meanwhile: nothing changed, try
 * again); STORAGE_ERR_ARGS (empty new PIN); STORAGE_ERR_READ_ONLY;
 * STORAGE_ERR_NOMEM. */
storage_rc storage_so_passwd(storage_catalog *cat, const char *token, const char *old_pin,
                             size_t old_len, const char *new_pin, size_t new_len,
                             const storage_kdf *kdf);

/* Recovers the SO PIN of the provisioned token of (view, layer) with the
 * administrator's key derived from so_pin (one Argon2id run), into out (cap
 * bytes, the caller's secure memory; not NUL-terminated), its length in
 * *out_len. STORAGE_OK; STORAGE_ERR_PIN_INCORRECT (the key it derives is
 * not the token's administrator key); STORAGE_ERR_NOT_FOUND (no SO PIN set,
 * or no such provisioning row); STORAGE_ERR_CRYPTO (the row was begun
 * before an SO PIN existed, so nothing was sealed to the administrator, or
 * the seal is damaged); STORAGE_ERR_ARGS (also cap too small:
 * STORAGE_GENERATED_PIN_LEN suffices). Audited ("so-open"), never with
 * the PIN. */
storage_rc storage_so_open(storage_catalog *cat, const char *token, const char *so_pin,
                           size_t so_len, const char *view, const char *layer, char *out,
                           size_t cap, size_t *out_len);

/* ---------------------------------------------------------------------
 * Lazy provisioning: one row per (token, view, layer)
 *
 * States, in order:
 *   pending      PINs generated and sealed, label chosen, no backend token yet;
 *   waiting      as pending, and the last attempt found no free slot;
 *   initialised  C_InitToken done on a slot, serial recorded;
 *   ready        C_InitPIN done: the user PIN logs in.
 * Allowed moves (storage_provision_advance): pending <-> waiting;
 * pending/waiting -> initialised; initialised -> ready; ready ->
 * initialised (a repair re-initialised the token); and any state to
 * itself (a racing process did the same step; a new serial is recorded).
 * The generated PINs are sealed under the view's wrapping key (so
 * storage_login of the view is needed to begin and to read) and the SO
 * PIN also to the administrator's public key when an SO PIN is set.
 * ------------------------------------------------------------------ */

typedef enum {
    STORAGE_PROV_PENDING = 0,
    STORAGE_PROV_WAITING,
    STORAGE_PROV_INITIALISED,
    STORAGE_PROV_READY,
} storage_prov_state;

/* "pending", "waiting", "initialised", "ready" (the catalog's spelling). */
const char *storage_prov_state_name(storage_prov_state state);

#define STORAGE_GENERATED_PIN_LEN 16 /* characters of a generated PIN (80 bits) */

typedef struct {
    char view[128];
    char layer[128];
    char module[1024]; /* the layer's module path when begun */
    char label[33];    /* token label (at most 32 bytes, CK_TOKEN_INFO) */
    char serial[17];   /* empty until initialised */
    storage_prov_state state;
    long long created_at;   /* seconds since the epoch */
    long long updated_at;   /* last state change */
    bool admin_recoverable; /* the SO PIN is also sealed to the administrator */
    bool claimed;           /* a live process holds the claim (storage_provision_claim) */
} storage_provision_info;

/* The label the token of (token, view, layer) has on its backend, given
 * its policy label base (at most 32 bytes): the row's label when the
 * catalog has begun a row (a row begun before catalogs had an identity
 * keeps its unmarked label), else base cut to 23 bytes (never inside a
 * UTF-8 character) followed by this catalog's mark, '#' and 8 hex digits
 * of BLAKE2b keyed by the catalog's identity over (token, view, layer)
 * (see identity.c). *marked says whether out carries the mark, so whether
 * a token with that label can only be this catalog's. A catalog without
 * an identity (read-only, not yet migrated) gives base, unmarked.
 * STORAGE_OK; STORAGE_ERR_ARGS; the read's failure. Works read-only. */
storage_rc storage_provision_label(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, const char *base, char out[33], bool *marked);

/* The catalog's identity, 32 hex digits (made once, at creation or by the
 * migration to schema 3). STORAGE_OK; STORAGE_ERR_NOT_FOUND (a read-only
 * catalog not yet migrated); STORAGE_ERR_ARGS. */
storage_rc storage_catalog_identity(storage_catalog *cat, char hex[33]);

/* A provisioning row with its PINs unwrapped into sodium_malloc'd memory. */
typedef struct storage_provision storage_provision;

/* Inside one BEGIN IMMEDIATE transaction: returns the row of (login's
 * token, login's view, layer) if there is one (module and label are then
 * ignored), else generates an SO PIN and a user PIN
 * (STORAGE_GENERATED_PIN_LEN characters each, randombytes_buf), seals them
 * and inserts the row as pending (audit "provision-begin"). Two processes
 * racing get the same row and the same PINs. STORAGE_OK and *out;
 * STORAGE_ERR_ARGS (NULL, empty, a label over 32 bytes or a view/layer
 * name over 127); STORAGE_ERR_CRYPTO (an existing row's PINs do not open
 * under this login's key: the view was re-enrolled, see
 * storage_view_passwd); STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM;
 * STORAGE_ERR_BUSY. */
storage_rc storage_provision_begin(storage_catalog *cat, const storage_login *login,
                                   const char *layer, const char *module, const char *label,
                                   storage_provision **out);

/* The row of (login's token and view, layer) with both PINs unwrapped (the
 * user PIN for login replay, the SO PIN for repairs). STORAGE_OK;
 * STORAGE_ERR_NOT_FOUND; STORAGE_ERR_CRYPTO; STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM. Works on a read-only catalog. */
storage_rc storage_provision_read(storage_catalog *cat, const storage_login *login,
                                  const char *layer, storage_provision **out);

/* The row's public facts; valid until storage_provision_free. */
const storage_provision_info *storage_provision_info_get(const storage_provision *p);
/* The unwrapped PINs (not NUL-terminated); valid until storage_provision_free. */
void storage_provision_pins(const storage_provision *p, const char **so_pin, size_t *so_len,
                            const char **user_pin, size_t *user_len);
/* Wipes the PINs and frees. */
void storage_provision_free(storage_provision *p);

/* Moves the row to state `to` (see the allowed moves above) in one
 * transaction, records serial (required for initialised and ready unless
 * the row has one; at most 16 bytes), clears the claim, and audits
 * ("provision", "<state>"). STORAGE_OK; STORAGE_ERR_NOT_FOUND;
 * STORAGE_ERR_ARGS (a move not allowed, a missing or long serial);
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY. */
storage_rc storage_provision_advance(storage_catalog *cat, const char *token, const char *view,
                                     const char *layer, storage_prov_state to, const char *serial);

/* Claims the row for this process before talking to the backend (so that
 * two processes never run C_InitToken for one row). *won = true when the
 * row was unclaimed, claimed by this process already, claimed by a process
 * that no longer exists, or claimed more than STORAGE_PROVISION_CLAIM_TTL
 * seconds ago; false when another live process holds it (retry later).
 * storage_provision_advance and storage_provision_release drop the claim.
 * STORAGE_OK; STORAGE_ERR_NOT_FOUND; STORAGE_ERR_ARGS;
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY. */
#define STORAGE_PROVISION_CLAIM_TTL 120
storage_rc storage_provision_claim(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, bool *won);
storage_rc storage_provision_release(storage_catalog *cat, const char *token, const char *view,
                                     const char *layer);

/* Calls fn for each provisioning row of token (strata status), ordered by
 * view and layer, after the read and with no lock held. Never a PIN.
 * STORAGE_OK (also for an unknown token); STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM. */
storage_rc storage_provisions_list(storage_catalog *cat, const char *token,
                                   void (*fn)(void *ctx, const storage_provision_info *info),
                                   void *ctx);

/* Deletes the row (its token was wiped, or is abandoned) with an audit row
 * ("provision-remove"). STORAGE_OK; STORAGE_ERR_NOT_FOUND;
 * STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY. */
storage_rc storage_provision_remove(storage_catalog *cat, const char *token, const char *view,
                                    const char *layer);

/* ---------------------------------------------------------------------
 * Object identities and stable virtual handles
 * ------------------------------------------------------------------ */

/* Returns the virtual handle recorded for (token, layer, identity), or
 * assigns a new one: a random number in [1, 0x7fffffff] that the token's
 * catalog never bound before (never reused, even once forgotten). */
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

/* Moves the handle of (token, layer, from) to identity to (the object's
 * identifying attributes changed through Strata: it keeps its handle).
 * STORAGE_ERR_EXISTS when to is recorded already, STORAGE_ERR_NOT_FOUND
 * when from is not; nothing changes then. */
storage_rc storage_object_rename(storage_catalog *cat, const char *token, const char *layer,
                                 const void *from, size_t from_len, const void *to, size_t to_len);

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
 * The journal of strata migrate (moves.c), and forgetting a layer
 * ------------------------------------------------------------------ */

/* One object moved between two layers for one view, named by a digest of
 * the source object (at most 64 bytes; never a secret). */
typedef struct {
    const char *token; /* the virtual token's label */
    const char *view;
    const char *from; /* layer ids */
    const char *to;
    const void *source;
    size_t source_len;
} storage_move_key;

/* The states of a move, in order (see moves.c for what each promises). */
typedef enum {
    STORAGE_MOVE_COPYING = 0, /* a copy may exist on the target, unverified */
    STORAGE_MOVE_DONE,        /* the copy is in place and verified */
} storage_move_state;

typedef struct {
    storage_move_state state;
    char summary[160]; /* "certificate 'label'", for the audit row (never a secret) */
} storage_move;

/* "copying", "done". */
const char *storage_move_state_name(storage_move_state state);

/* The journal row of key into *out. STORAGE_OK; STORAGE_ERR_NOT_FOUND
 * (never moved, or an unknown token); STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOT_CATALOG (a state this code does not know); the read's
 * failure. Works read-only. */
storage_rc storage_move_get(storage_catalog *cat, const storage_move_key *key, storage_move *out);

/* Writes the row of key (adding it, or replacing its state and summary) in one transaction;
 * reaching STORAGE_MOVE_DONE also audits "migrate". STORAGE_OK; STORAGE_ERR_ARGS;
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_FULL; STORAGE_ERR_BUSY. */
storage_rc storage_move_set(storage_catalog *cat, const storage_move_key *key,
                            const storage_move *row);

/* What storage_layer_forget removed. */
typedef struct {
    unsigned creds;     /* sealed layer credentials (one per view) */
    unsigned objects;   /* object identities and their handles */
    unsigned whiteouts; /* whiteouts of the layer's objects */
    unsigned moves;     /* journal rows of moves out of it */
    unsigned other;     /* what logins recorded about it (left out) */
} storage_layer_forgotten;

/* strata forget-layer: removes every row of token that names layer (its
 * sealed credentials in every view, object identities, whiteouts, moves
 * out of it, left-out marks) in one transaction audited "forget-layer".
 * Provisioning rows (lazy layers) are kept. Whether a view of the policy
 * still uses the layer is the caller's to check. STORAGE_OK;
 * STORAGE_ERR_NOT_FOUND (nothing names it); STORAGE_ERR_ARGS;
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_BUSY. */
storage_rc storage_layer_forget(storage_catalog *cat, const char *token, const char *layer,
                                storage_layer_forgotten *counts);

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

/* At most storage_kdf_limit() Argon2id derivations run at once in this
 * process (the online processors, at least 1), and as many across the
 * processes sharing the file storage_kdf_share names (NULL: none), so a
 * server's memory stays bounded whatever the number of clients logging
 * in; the others wait their turn (kdf.c). storage_kdf_share returns
 * STORAGE_OK or STORAGE_ERR_NOMEM; call it while no derivation runs.
 * storage_kdf_peak: the most that ran at once in this process (tests). */
unsigned storage_kdf_limit(void);
storage_rc storage_kdf_share(const char *path);
unsigned storage_kdf_peak(void);

/* Waits for a turn to run Argon2id and takes it; returns what
 * storage_kdf_leave gives back (STORAGE_KDF_NONE: a value that gives back
 * nothing, for paths that took no turn). Every derivation takes one;
 * a caller may hold one across a whole PIN evaluation (the engine's
 * C_Login: guess reserved, Argon2id, guess settled), inside which the
 * derivation's own is a no-op. */
#define STORAGE_KDF_NONE (-3)
int storage_kdf_enter(void);
/* storage_kdf_enter, with at most `most` (>= 1; 0: no further bound)
 * turns taken at once: in this process, and across processes the first
 * `most` slots of the shared file only. */
int storage_kdf_enter_max(unsigned most);
/* Waits until the turn held (taken with storage_kdf_enter_max(most)) is
 * the only one held across the processes sharing the slot file, and then
 * keeps every slot until storage_kdf_leave: no other derivation starts
 * meanwhile. For a caller that found the failure counter full and must
 * tell failures recorded from the reservations of PINs still being
 * evaluated. true when drained; false for a turn without a file slot
 * (nested, or no shared file) or when the file lock failed (the turn may
 * then hold no slot: it still counts in this process). */
bool storage_kdf_drain(int held, unsigned most);
void storage_kdf_leave(int held);

/* How many sealed values this process has opened (secrets_open), and how
 * many catalog transactions (read or write) it has begun. For tests that
 * check two answers cost the same work. */
unsigned long storage_unseal_calls(void);
unsigned long storage_txn_calls(void);

#endif /* STRATA_STORAGE_H */
