/*
 * internal.h - what the files of storage/ share and nobody else sees.
 *
 * Locking: a storage_catalog has one mutex (lock) that serialises the use
 * of its SQLite connection by the threads of a process, so that a
 * transaction begun by one thread never swallows another thread's
 * statements. Functions named *_locked expect it held. Between processes,
 * SQLite's own file locks (BEGIN IMMEDIATE plus a busy timeout) do the job.
 * The lock is never held while Argon2id runs or while a caller's callback
 * runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_STORAGE_INTERNAL_H
#define STRATA_STORAGE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <sodium.h>
#include <sqlite3.h>

#include "storage.h"

struct storage_catalog {
    pthread_mutex_t lock;       /* serialises the connection (see above) */
    sqlite3 *db;                /* serialized-mode connection */
    char *path;                 /* as given to storage_catalog_open */
    bool read_only;             /* READ_ONLY flag, or the file cannot be written */
    int version;                /* schema version of the open file */
    pid_t pid;                  /* the process that opened it (see catalog.c: fork) */
    storage_catalog *next_open; /* the list of open catalogs (catalog.c) */
};

#define STRATA_APP_ID 0x53747261 /* "Stra": PRAGMA application_id of a catalog */

/* ---- catalog.c: connection, transactions, tokens ---------------------- */

void catalog_lock(storage_catalog *cat);
void catalog_unlock(storage_catalog *cat);

/* Runs one SQL text without results. Expects the lock held (or the
 * connection not yet shared). */
storage_rc catalog_exec_locked(storage_catalog *cat, const char *sql);

/* Reads the one integer sql returns (a PRAGMA or a count): STORAGE_OK,
 * STORAGE_ERR_INTERNAL when it returns no row, or the failure. Expects the
 * lock held. */
storage_rc catalog_query_int_locked(storage_catalog *cat, const char *sql, int64_t *out);

/* Test hook: raises SIGKILL when the environment variable
 * STRATA_TEST_CRASH_AT equals point, so a test can stop a transaction
 * between two of its writes. Points: "passwd-rewrap", "so-rewrap",
 * "provision-begin". */
void catalog_crash_point(const char *point);

/* Maps an SQLite result code to a storage_rc (SQLITE_OK/ROW/DONE -> OK). */
storage_rc catalog_rc(int sqlite_rc);

/* Prepares sql. STORAGE_OK and *st set, or the mapped error and *st NULL.
 * Expects the lock held. */
storage_rc catalog_prepare_locked(storage_catalog *cat, const char *sql, sqlite3_stmt **st);

/* Steps a statement that returns no row (or whose rows are ignored) to its
 * end. Expects the lock held. */
storage_rc catalog_exec_stmt_locked(sqlite3_stmt *st);

/* A transaction body: runs with the lock held inside BEGIN ... COMMIT.
 * Returning anything but STORAGE_OK rolls the transaction back. */
typedef storage_rc (*catalog_txn_fn)(storage_catalog *cat, void *ctx);

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT with the lock held, rolling back
 * when fn or the commit fails. STORAGE_ERR_READ_ONLY on a read-only catalog
 * (fn not called), STORAGE_ERR_BUSY when another process held the write
 * lock past the busy timeout, else fn's result. Takes and releases the
 * lock itself. */
storage_rc catalog_write(storage_catalog *cat, catalog_txn_fn fn, void *ctx);

/* Runs fn inside a read transaction (one consistent snapshot), with the
 * lock held; works on read-only catalogs. Takes and releases the lock. */
storage_rc catalog_read(storage_catalog *cat, catalog_txn_fn fn, void *ctx);

/* Fills item (zeroed, of the size catalog_rows_read was given) from the
 * statement's current row. STORAGE_OK, or an error that ends the read. */
typedef storage_rc (*catalog_row_fill)(sqlite3_stmt *st, void *item);

/* Reads every row sql gives with token bound to ?1, in one read
 * transaction (one snapshot), into *items: a malloc'd array of *n items
 * of size bytes, each filled by fill (the caller frees it). STORAGE_OK;
 * STORAGE_ERR_NOMEM; fill's or the read's failure (*items NULL, *n 0).
 * Takes and releases the lock (rows.c). */
storage_rc catalog_rows_read(storage_catalog *cat, const char *sql, const char *token, size_t size,
                             catalog_row_fill fill, void **items, size_t *n);

/* Seconds since the epoch, for the *_at columns. */
int64_t catalog_now(void);

/* The id of token's row in tokens: STORAGE_OK, STORAGE_ERR_NOT_FOUND when
 * there is none. Expects the lock held. */
storage_rc catalog_token_id_locked(storage_catalog *cat, const char *token, int64_t *id);

/* The same, creating the row when missing (inside a write transaction). */
storage_rc catalog_token_ensure_locked(storage_catalog *cat, const char *token, int64_t *id);

/* Appends an audit row inside the caller's write transaction. */
storage_rc catalog_audit_locked(storage_catalog *cat, const char *action, const char *subject,
                                const char *outcome);

/* ---- schema.c: migration steps ---------------------------------------- */

/* A write-transaction body that brings the file to storage_schema_version()
 * (ctx unused); STORAGE_ERR_TOO_NEW for a newer file. */
storage_rc catalog_migrate_txn(storage_catalog *cat, void *ctx);

/* ---- secrets.c: keys, sealing ------------------------------------------- */

#define SECRETS_KEY_BYTES   32u                     /* K, wrap, per-row keys */
#define SECRETS_TAG_BYTES   32u                     /* view tag */
#define SECRETS_SALT_BYTES  crypto_pwhash_SALTBYTES /* per-token Argon2id salt */
#define SECRETS_NONCE_BYTES crypto_secretbox_NONCEBYTES
#define SECRETS_MAC_BYTES   crypto_secretbox_MACBYTES

/* The keys one PIN derives. Always in sodium_malloc'd memory. */
typedef struct {
    unsigned char k[SECRETS_KEY_BYTES];    /* Argon2id(PIN) */
    unsigned char wrap[SECRETS_KEY_BYTES]; /* BLAKE2b-keyed(K, "strata-wrap") */
    unsigned char tag[SECRETS_TAG_BYTES];  /* BLAKE2b-keyed(K, "strata-tag") */
} secrets_keys;

/* Argon2id cost resolved from a storage_kdf (0 = interactive). STORAGE_OK,
 * or STORAGE_ERR_ARGS when outside libsodium's limits. */
storage_rc secrets_kdf_resolve(const storage_kdf *kdf, unsigned long long *ops, size_t *mem);

/* Fills salt from randombytes_buf. */
void secrets_salt_new(unsigned char salt[SECRETS_SALT_BYTES]);

/* A fixed salt used when a token has no enrolment, so that a login costs
 * the same work either way. */
const unsigned char *secrets_dummy_salt(void);

/* Allocates keys (sodium_malloc) and derives K, tag and wrap from pin with
 * one Argon2id run (counted by storage_kdf_calls). STORAGE_OK and *out
 * set; STORAGE_ERR_NOMEM; STORAGE_ERR_ARGS for a bad cost. Free with
 * secrets_keys_free, which wipes. */
storage_rc secrets_keys_derive(const char *pin, size_t pin_len,
                               const unsigned char salt[SECRETS_SALT_BYTES], unsigned long long ops,
                               size_t mem, secrets_keys **out);
void secrets_keys_free(secrets_keys *keys);

/* Seals plain under a key bound to (purpose, token, view, layer): a fresh
 * random nonce into nonce, and plain_len + SECRETS_MAC_BYTES bytes into
 * sealed. STORAGE_OK, STORAGE_ERR_NOMEM. */
storage_rc secrets_seal(const unsigned char wrap[SECRETS_KEY_BYTES], const char *purpose,
                        const char *token, const char *view, const char *layer, const void *plain,
                        size_t plain_len, unsigned char nonce[SECRETS_NONCE_BYTES],
                        unsigned char *sealed);

/* Opens what secrets_seal sealed with the same binding into plain
 * (sealed_len - SECRETS_MAC_BYTES bytes, caller's secure memory).
 * STORAGE_OK; STORAGE_ERR_CRYPTO when tampered, moved or under another key;
 * STORAGE_ERR_NOMEM. */
storage_rc secrets_open(const unsigned char wrap[SECRETS_KEY_BYTES], const char *purpose,
                        const char *token, const char *view, const char *layer,
                        const unsigned char nonce[SECRETS_NONCE_BYTES], const unsigned char *sealed,
                        size_t sealed_len, void *plain);

/* Fills out with len printable characters from randombytes_buf (a 32
 * letter alphabet: 5 bits each). */
void secrets_pin_generate(char *out, size_t len);

/* Derives the administrator's crypto_box key pair from the SO PIN:
 * seed = Argon2id(so_pin, salt, ops, mem), then crypto_box_seed_keypair.
 * pk is public; sk must be secure memory (crypto_box_SECRETKEYBYTES).
 * STORAGE_OK; STORAGE_ERR_ARGS for a bad cost; STORAGE_ERR_NOMEM;
 * STORAGE_ERR_CRYPTO. Counts one storage_kdf_calls. */
storage_rc secrets_admin_keypair(const char *so_pin, size_t so_len,
                                 const unsigned char salt[SECRETS_SALT_BYTES],
                                 unsigned long long ops, size_t mem,
                                 unsigned char pk[crypto_box_PUBLICKEYBYTES], unsigned char *sk);

/* crypto_pwhash_str verifier of an SO PIN, into out
 * (crypto_pwhash_STRBYTES). STORAGE_OK, STORAGE_ERR_ARGS, STORAGE_ERR_NOMEM.
 * Counts one storage_kdf_calls. */
storage_rc secrets_verifier_make(const char *pin, size_t len, unsigned long long ops, size_t mem,
                                 char out[crypto_pwhash_STRBYTES]);

/* Checks pin against a verifier: STORAGE_OK, STORAGE_ERR_PIN_INCORRECT.
 * Counts one storage_kdf_calls. */
storage_rc secrets_verifier_check(const char *verifier, const char *pin, size_t len);

/* ---- views.c: what enrolment, login and passwd share ------------------- */

#define PURPOSE_CRED     "cred"      /* binding purpose of a layer credential */
#define PURPOSE_PROV_USR "prov-user" /* a provisioned token's user PIN */
#define PURPOSE_PROV_SO  "prov-so"   /* a provisioned token's SO PIN */

/* A token's Argon2id parameters as the catalog holds them. */
typedef struct {
    const char *token;
    bool found; /* the token has a salt (an enrolment happened) */
    unsigned char salt[SECRETS_SALT_BYTES];
    unsigned long long ops;
    size_t mem;
    int64_t token_id;
} kdf_params;

/* A catalog_txn_fn: reads the KDF parameters of ctx (a kdf_params with
 * token set); found = false when the token or its salt does not exist.
 * STORAGE_ERR_NOT_CATALOG for a salt of the wrong shape. */
storage_rc views_kdf_read_txn(storage_catalog *cat, void *ctx);

/* "token/view" (or "token" when view is NULL) for audit rows; malloc'd,
 * NULL when out of memory. */
char *views_subject(const char *token, const char *view);

/* The view of token_id whose tag is tag: STORAGE_OK with *view_id and
 * *name (malloc'd; may be NULL); STORAGE_ERR_PIN_INCORRECT when none;
 * STORAGE_ERR_NOMEM; or the read's failure. Expects the lock held. */
storage_rc views_find_by_tag_locked(storage_catalog *cat, int64_t token_id,
                                    const unsigned char tag[SECRETS_TAG_BYTES], int64_t *view_id,
                                    char **name);
/* The same for the view of token_id named name (name_len bytes, not
 * terminated) only: its tag alone is
 * compared with tag (constant time); an unknown name is compared with a
 * tag no PIN derives, so it costs the same and answers the same:
 * STORAGE_ERR_PIN_INCORRECT. Expects the lock held. */
storage_rc views_find_named_locked(storage_catalog *cat, int64_t token_id, const char *name,
                                   size_t name_len, const unsigned char tag[SECRETS_TAG_BYTES],
                                   int64_t *view_id, char **name_out);

/* ---- login.c: a successful login --------------------------------------- */

struct storage_login {
    char *token;           /* token label (malloc) */
    char *view;            /* view name (malloc) */
    size_t n;              /* number of credentials */
    storage_cred *creds;   /* layer (malloc), pin -> into secret */
    unsigned char *secret; /* sodium_malloc'd: every unwrapped PIN */
    size_t secret_len;
    unsigned char *wrap; /* sodium_malloc'd SECRETS_KEY_BYTES: the view's wrapping key */
    unsigned char tag[SECRETS_TAG_BYTES]; /* the view's tag (public in the catalog) */
};

#endif /* STRATA_STORAGE_INTERNAL_H */
