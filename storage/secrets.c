/*
 * secrets.c - the catalog's secrets, with libsodium.
 *
 * PIN -> Argon2id13 (per-token salt and cost) -> K (32 bytes).
 * tag  = BLAKE2b keyed with K over "strata-tag"   (stored: selects the view)
 * wrap = BLAKE2b keyed with K over "strata-wrap"  (never stored)
 * A sealed value is crypto_secretbox under a per-row key
 *   row = BLAKE2b keyed with wrap over purpose, token, view, layer
 * (each length-prefixed), with a random nonce; a sealed blob copied into
 * another row, token, view or purpose therefore fails to open.
 *
 * K, wrap and the per-row keys live in sodium_malloc'd memory and are wiped
 * on every path; the caller supplies secure memory for opened plaintext.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

static atomic_ulong kdf_calls;
static atomic_ulong unseal_calls;

static const char tag_context[] = "strata-tag";
static const char wrap_context[] = "strata-wrap";

/* Fixed, public and only ever used when a token has no enrolment. */
static const unsigned char dummy_salt[SECRETS_SALT_BYTES] = "strata-no-views";

/* sodium_init is itself thread-safe and idempotent. */
storage_rc storage_crypto_init(void)
{
    return sodium_init() < 0 ? STORAGE_ERR_CRYPTO : STORAGE_OK;
}

bool storage_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void storage_wipe(void *p, size_t len)
{
    if (p != NULL) {
        sodium_memzero(p, len);
    }
}

unsigned long storage_kdf_calls(void)
{
    return atomic_load(&kdf_calls);
}

unsigned long storage_unseal_calls(void)
{
    return atomic_load(&unseal_calls);
}

/* Resolves kdf (NULL or zero fields = libsodium's interactive limits).
 * STORAGE_OK, or STORAGE_ERR_ARGS when a value is outside Argon2id's
 * limits. */
storage_rc secrets_kdf_resolve(const storage_kdf *kdf, unsigned long long *ops, size_t *mem)
{
    *ops = kdf != NULL && kdf->ops != 0 ? kdf->ops : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    *mem = kdf != NULL && kdf->mem != 0 ? kdf->mem : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    if (*ops < crypto_pwhash_OPSLIMIT_MIN || *ops > crypto_pwhash_OPSLIMIT_MAX ||
        *mem < crypto_pwhash_MEMLIMIT_MIN || *mem > crypto_pwhash_MEMLIMIT_MAX) {
        return STORAGE_ERR_ARGS;
    }
    return STORAGE_OK;
}

void secrets_salt_new(unsigned char salt[SECRETS_SALT_BYTES])
{
    randombytes_buf(salt, SECRETS_SALT_BYTES);
}

const unsigned char *secrets_dummy_salt(void)
{
    return dummy_salt;
}

/* BLAKE2b keyed with key over context into out (32 bytes). */
static storage_rc subkey(unsigned char *out, const unsigned char key[SECRETS_KEY_BYTES],
                         const char *context)
{
    if (crypto_generichash(out, SECRETS_KEY_BYTES, (const unsigned char *)context, strlen(context),
                           key, SECRETS_KEY_BYTES) != 0) {
        return STORAGE_ERR_CRYPTO;
    }
    return STORAGE_OK;
}

/* Derives K, tag and wrap (see the top of the file). STORAGE_OK and *out
 * set; STORAGE_ERR_NOMEM; STORAGE_ERR_ARGS for a cost outside the limits;
 * STORAGE_ERR_CRYPTO when libsodium fails. Nothing is left on failure. */
storage_rc secrets_keys_derive(const char *pin, size_t pin_len,
                               const unsigned char salt[SECRETS_SALT_BYTES], unsigned long long ops,
                               size_t mem, secrets_keys **out)
{
    static const char empty[1] = "";
    storage_rc rc = STORAGE_ERR_NOMEM;
    secrets_keys *keys = NULL;
    bool failed;
    int held;

    *out = NULL;
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_MAX) {
        return STORAGE_ERR_ARGS;
    }
    if (storage_crypto_init() != STORAGE_OK) {
        return STORAGE_ERR_CRYPTO;
    }
    keys = sodium_malloc(sizeof(*keys));
    if (keys == NULL) {
        goto out;
    }
    atomic_fetch_add(&kdf_calls, 1);
    held = storage_kdf_enter();
    failed = crypto_pwhash(keys->k, sizeof(keys->k), pin != NULL ? pin : empty, pin_len, salt, ops,
                           mem, crypto_pwhash_ALG_ARGON2ID13) != 0;
    storage_kdf_leave(held);
    if (failed) {
        rc = STORAGE_ERR_NOMEM; /* libsodium's only runtime failure is memory */
        goto out;
    }
    rc = subkey(keys->tag, keys->k, tag_context);
    if (rc == STORAGE_OK) {
        rc = subkey(keys->wrap, keys->k, wrap_context);
    }
out:
    if (rc == STORAGE_OK) {
        *out = keys;
    } else {
        secrets_keys_free(keys);
    }
    return rc;
}

void secrets_keys_free(secrets_keys *keys)
{
    if (keys != NULL) {
        sodium_memzero(keys, sizeof(*keys));
        sodium_free(keys);
    }
}

/* Feeds one length-prefixed field into the hash state. */
static void absorb(crypto_generichash_state *st, const char *field)
{
    unsigned char len[8];
    size_t n = field != NULL ? strlen(field) : 0;

    for (size_t i = 0; i < sizeof(len); i++) {
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    crypto_generichash_update(st, len, sizeof(len));
    if (n > 0) {
        crypto_generichash_update(st, (const unsigned char *)field, n);
    }
}

/* The per-row key of (purpose, token, view, layer) under wrap, into a
 * sodium_malloc'd buffer. NULL when out of memory. */
static unsigned char *row_key(const unsigned char wrap[SECRETS_KEY_BYTES], const char *purpose,
                              const char *token, const char *view, const char *layer)
{
    crypto_generichash_state *st = sodium_malloc(sizeof(*st));
    unsigned char *key = sodium_malloc(SECRETS_KEY_BYTES);

    if (st == NULL || key == NULL) {
        goto fail;
    }
    if (crypto_generichash_init(st, wrap, SECRETS_KEY_BYTES, SECRETS_KEY_BYTES) != 0) {
        goto fail;
    }
    absorb(st, purpose);
    absorb(st, token);
    absorb(st, view);
    absorb(st, layer);
    if (crypto_generichash_final(st, key, SECRETS_KEY_BYTES) != 0) {
        goto fail;
    }
    sodium_memzero(st, sizeof(*st));
    sodium_free(st);
    return key;
fail:
    if (st != NULL) {
        sodium_memzero(st, sizeof(*st));
        sodium_free(st);
    }
    if (key != NULL) {
        sodium_memzero(key, SECRETS_KEY_BYTES);
        sodium_free(key);
    }
    return NULL;
}

static void key_free(unsigned char *key)
{
    if (key != NULL) {
        sodium_memzero(key, SECRETS_KEY_BYTES);
        sodium_free(key);
    }
}

/* See internal.h. The per-row key is wiped on every path. */
storage_rc secrets_seal(const unsigned char wrap[SECRETS_KEY_BYTES], const char *purpose,
                        const char *token, const char *view, const char *layer, const void *plain,
                        size_t plain_len, unsigned char nonce[SECRETS_NONCE_BYTES],
                        unsigned char *sealed)
{
    static const unsigned char empty[1];
    storage_rc rc = STORAGE_ERR_NOMEM;
    unsigned char *key = row_key(wrap, purpose, token, view, layer);

    if (key == NULL) {
        goto out;
    }
    randombytes_buf(nonce, SECRETS_NONCE_BYTES);
    rc = STORAGE_ERR_CRYPTO;
    if (crypto_secretbox_easy(sealed, plain != NULL ? plain : empty, plain_len, nonce, key) == 0) {
        rc = STORAGE_OK;
    }
out:
    key_free(key);
    return rc;
}

/* See internal.h. plain is left zeroed when the seal does not open. */
storage_rc secrets_open(const unsigned char wrap[SECRETS_KEY_BYTES], const char *purpose,
                        const char *token, const char *view, const char *layer,
                        const unsigned char nonce[SECRETS_NONCE_BYTES], const unsigned char *sealed,
                        size_t sealed_len, void *plain)
{
    storage_rc rc = STORAGE_ERR_CRYPTO;
    unsigned char *key = NULL;

    atomic_fetch_add(&unseal_calls, 1);
    if (sealed_len < SECRETS_MAC_BYTES) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    key = row_key(wrap, purpose, token, view, layer);
    if (key == NULL) {
        goto out;
    }
    rc = STORAGE_ERR_CRYPTO;
    if (crypto_secretbox_open_easy(plain, sealed, sealed_len, nonce, key) == 0) {
        rc = STORAGE_OK;
    } else {
        sodium_memzero(plain, sealed_len - SECRETS_MAC_BYTES);
    }
out:
    key_free(key);
    return rc;
}

/* ---------------------------------------------------------------------
 * Generated PINs and the administrator's keys
 * ------------------------------------------------------------------ */

/* See internal.h. Lower-case letters and digits without 0, 1, l and o, so
 * a PIN read aloud from a recovery survives; 5 bits per character (a
 * uniform draw: 32 divides 256). */
void secrets_pin_generate(char *out, size_t len)
{
    static const char alphabet[32] = "abcdefghijkmnpqrstuvwxyz23456789";
    unsigned char *raw = sodium_malloc(len > 0 ? len : 1);

    if (raw == NULL) {
        /* randombytes_uniform draws one character at a time without a
         * buffer; slower, but never a weaker PIN. */
        for (size_t i = 0; i < len; i++) {
            out[i] = alphabet[randombytes_uniform(sizeof(alphabet))];
        }
        return;
    }
    randombytes_buf(raw, len);
    for (size_t i = 0; i < len; i++) {
        out[i] = alphabet[raw[i] % sizeof(alphabet)];
    }
    sodium_memzero(raw, len);
    sodium_free(raw);
}

/* See internal.h. The seed is wiped on every path. */
storage_rc secrets_admin_keypair(const char *so_pin, size_t so_len,
                                 const unsigned char salt[SECRETS_SALT_BYTES],
                                 unsigned long long ops, size_t mem,
                                 unsigned char pk[crypto_box_PUBLICKEYBYTES], unsigned char *sk)
{
    static const char empty[1] = "";
    storage_rc rc = STORAGE_ERR_ARGS;
    unsigned char *seed = NULL;
    bool failed;
    int held;

    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_MAX) {
        goto out;
    }
    rc = STORAGE_ERR_CRYPTO;
    if (storage_crypto_init() != STORAGE_OK) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    seed = sodium_malloc(crypto_box_SEEDBYTES);
    if (seed == NULL) {
        goto out;
    }
    atomic_fetch_add(&kdf_calls, 1);
    held = storage_kdf_enter();
    failed = crypto_pwhash(seed, crypto_box_SEEDBYTES, so_pin != NULL ? so_pin : empty, so_len,
                           salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0;
    storage_kdf_leave(held);
    if (failed) {
        goto out;
    }
    rc = crypto_box_seed_keypair(pk, sk, seed) == 0 ? STORAGE_OK : STORAGE_ERR_CRYPTO;
out:
    if (seed != NULL) {
        sodium_memzero(seed, crypto_box_SEEDBYTES);
        sodium_free(seed);
    }
    return rc;
}

/* See internal.h. */
storage_rc secrets_verifier_make(const char *pin, size_t len, unsigned long long ops, size_t mem,
                                 char out[crypto_pwhash_STRBYTES])
{
    static const char empty[1] = "";
    bool failed;
    int held;

    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_MAX) {
        return STORAGE_ERR_ARGS;
    }
    if (storage_crypto_init() != STORAGE_OK) {
        return STORAGE_ERR_CRYPTO;
    }
    atomic_fetch_add(&kdf_calls, 1);
    held = storage_kdf_enter();
    failed = crypto_pwhash_str_alg(out, pin != NULL ? pin : empty, len, ops, mem,
                                   crypto_pwhash_ALG_ARGON2ID13) != 0;
    storage_kdf_leave(held);
    return failed ? STORAGE_ERR_NOMEM : STORAGE_OK;
}

/* See internal.h. crypto_pwhash_str_verify compares in constant time. */
storage_rc secrets_verifier_check(const char *verifier, const char *pin, size_t len)
{
    static const char empty[1] = "";
    bool match;
    int held;

    if (storage_crypto_init() != STORAGE_OK) {
        return STORAGE_ERR_CRYPTO;
    }
    atomic_fetch_add(&kdf_calls, 1);
    held = storage_kdf_enter();
    match = crypto_pwhash_str_verify(verifier, pin != NULL ? pin : empty, len) == 0;
    storage_kdf_leave(held);
    return match ? STORAGE_OK : STORAGE_ERR_PIN_INCORRECT;
}
