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

#include <sodium.h>
#include <sqlite3.h>

#include "storage.h"

struct storage_catalog {
    pthread_mutex_t lock; /* serialises the connection (see above) */
    sqlite3 *db;          /* serialized-mode connection */
    char *path;           /* as given to storage_catalog_open */
    bool read_only;       /* READ_ONLY flag, or the file cannot be written */
    int version;          /* schema version of the open file */
};

/* ---- catalog.c: connection, transactions, tokens ---------------------- */

void catalog_lock(storage_catalog *cat);
void catalog_unlock(storage_catalog *cat);

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

#endif /* STRATA_STORAGE_INTERNAL_H */
