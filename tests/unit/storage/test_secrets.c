/*
 * test_secrets.c - storage/secrets.c: Argon2id derivation, sub-keys,
 * sealing bound to its row, comparison and wiping.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <criterion/criterion.h>

#include "internal.h"

static const unsigned char salt_a[SECRETS_SALT_BYTES] = "0123456789abcde";
static const unsigned char salt_b[SECRETS_SALT_BYTES] = "fedcba987654321";

static secrets_keys *derive(const char *pin, const unsigned char *salt)
{
    secrets_keys *keys = NULL;

    cr_assert_eq(secrets_keys_derive(pin, strlen(pin), salt, crypto_pwhash_OPSLIMIT_MIN,
                                     crypto_pwhash_MEMLIMIT_MIN, &keys),
                 STORAGE_OK);
    cr_assert(keys != NULL);
    return keys;
}

Test(storage_secrets, storage_crypto_init_succeeds_twice)
{
    cr_assert_eq(storage_crypto_init(), STORAGE_OK);
    cr_assert_eq(storage_crypto_init(), STORAGE_OK);
}

Test(storage_secrets, storage_equal_compares_bytes)
{
    cr_assert(storage_equal("abcd", "abcd", 4));
    cr_assert_not(storage_equal("abcd", "abce", 4));
    cr_assert(storage_equal("abcd", "abce", 3));
}

Test(storage_secrets, storage_wipe_zeroes)
{
    char buf[16] = "secret-secret-1";

    storage_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        cr_assert_eq(buf[i], 0);
    }
    storage_wipe(NULL, 4);
}

Test(storage_secrets, secrets_keys_derive_is_deterministic_and_counted)
{
    unsigned long before = storage_kdf_calls();
    secrets_keys *a = derive("1234", salt_a);
    secrets_keys *b = derive("1234", salt_a);

    cr_assert_eq(storage_kdf_calls() - before, 2);
    cr_assert(storage_equal(a->k, b->k, sizeof(a->k)));
    cr_assert(storage_equal(a->tag, b->tag, sizeof(a->tag)));
    cr_assert(storage_equal(a->wrap, b->wrap, sizeof(a->wrap)));
    /* tag and wrap are distinct sub-keys, neither equal to K */
    cr_assert_not(storage_equal(a->tag, a->wrap, sizeof(a->tag)));
    cr_assert_not(storage_equal(a->tag, a->k, sizeof(a->tag)));
    cr_assert_not(storage_equal(a->wrap, a->k, sizeof(a->wrap)));
    secrets_keys_free(a);
    secrets_keys_free(b);
}

Test(storage_secrets, secrets_keys_derive_depends_on_pin_and_salt)
{
    secrets_keys *a = derive("1234", salt_a);
    secrets_keys *b = derive("1235", salt_a);
    secrets_keys *c = derive("1234", salt_b);

    cr_assert_not(storage_equal(a->tag, b->tag, sizeof(a->tag)));
    cr_assert_not(storage_equal(a->tag, c->tag, sizeof(a->tag)));
    cr_assert_not(storage_equal(a->wrap, b->wrap, sizeof(a->wrap)));
    secrets_keys_free(a);
    secrets_keys_free(b);
    secrets_keys_free(c);
    secrets_keys_free(NULL);
}

Test(storage_secrets, secrets_keys_derive_refuses_cost_outside_limits)
{
    secrets_keys *keys = (secrets_keys *)&keys;

    cr_assert_eq(secrets_keys_derive("1", 1, salt_a, 0, crypto_pwhash_MEMLIMIT_MIN, &keys),
                 STORAGE_ERR_ARGS);
    cr_assert_null(keys);
    cr_assert_eq(secrets_keys_derive("1", 1, salt_a, crypto_pwhash_OPSLIMIT_MIN, 1024, &keys),
                 STORAGE_ERR_ARGS);
}

Test(storage_secrets, secrets_kdf_resolve_defaults_and_limits)
{
    storage_kdf cheap = {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
    storage_kdf bad = {crypto_pwhash_OPSLIMIT_MIN, 1};
    unsigned long long ops;
    size_t mem;

    cr_assert_eq(secrets_kdf_resolve(NULL, &ops, &mem), STORAGE_OK);
    cr_assert_eq(ops, crypto_pwhash_OPSLIMIT_INTERACTIVE);
    cr_assert_eq(mem, crypto_pwhash_MEMLIMIT_INTERACTIVE);
    cr_assert_eq(secrets_kdf_resolve(&(storage_kdf){0, 0}, &ops, &mem), STORAGE_OK);
    cr_assert_eq(mem, crypto_pwhash_MEMLIMIT_INTERACTIVE);
    cr_assert_eq(secrets_kdf_resolve(&cheap, &ops, &mem), STORAGE_OK);
    cr_assert_eq(ops, crypto_pwhash_OPSLIMIT_MIN);
    cr_assert_eq(mem, crypto_pwhash_MEMLIMIT_MIN);
    cr_assert_eq(secrets_kdf_resolve(&bad, &ops, &mem), STORAGE_ERR_ARGS);
}

Test(storage_secrets, secrets_salt_new_is_random)
{
    unsigned char a[SECRETS_SALT_BYTES], b[SECRETS_SALT_BYTES];

    cr_assert_eq(storage_crypto_init(), STORAGE_OK);
    secrets_salt_new(a);
    secrets_salt_new(b);
    cr_assert_not(storage_equal(a, b, sizeof(a)));
    cr_assert(secrets_dummy_salt() != NULL);
}

/* Seals "backend-pin" for (T, v, layer) and returns keys + sealed value. */
struct sealed {
    secrets_keys *keys;
    unsigned char nonce[SECRETS_NONCE_BYTES];
    unsigned char blob[11 + SECRETS_MAC_BYTES];
};

static void seal(struct sealed *s)
{
    s->keys = derive("1234", salt_a);
    cr_assert_eq(secrets_seal(s->keys->wrap, "cred", "T", "v", "layer", "backend-pin", 11, s->nonce,
                              s->blob),
                 STORAGE_OK);
    cr_assert_null(memmem(s->blob, sizeof(s->blob), "backend-pin", 11));
}

Test(storage_secrets, secrets_open_round_trip)
{
    struct sealed s;
    char plain[11];

    seal(&s);
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_OK);
    cr_assert_eq(memcmp(plain, "backend-pin", 11), 0);
    secrets_keys_free(s.keys);
}

Test(storage_secrets, secrets_open_tampered_fails)
{
    struct sealed s;
    char plain[11];

    seal(&s);
    s.blob[3] ^= 0x01;
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    s.blob[3] ^= 0x01;
    s.nonce[0] ^= 0x80;
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "v", "layer", s.nonce, s.blob, 3, plain),
                 STORAGE_ERR_CRYPTO);
    secrets_keys_free(s.keys);
}

Test(storage_secrets, secrets_open_other_binding_fails)
{
    struct sealed s;
    secrets_keys *other = derive("4321", salt_a);
    char plain[11];

    seal(&s);
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "v", "layer2", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "T", "w", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "U", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    cr_assert_eq(secrets_open(s.keys->wrap, "so-pin", "T", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    /* Length prefixes keep ("T", "vl", ...) apart from ("Tv", "l", ...). */
    cr_assert_eq(secrets_open(s.keys->wrap, "cred", "Tv", "", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    cr_assert_eq(secrets_open(other->wrap, "cred", "T", "v", "layer", s.nonce, s.blob,
                              sizeof(s.blob), plain),
                 STORAGE_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof(plain); i++) {
        cr_assert_eq(plain[i], 0, "a failed open leaves no plaintext");
    }
    secrets_keys_free(other);
    secrets_keys_free(s.keys);
}

Test(storage_secrets, secrets_seal_fresh_nonce_each_time)
{
    secrets_keys *keys = derive("1234", salt_a);
    unsigned char n1[SECRETS_NONCE_BYTES], n2[SECRETS_NONCE_BYTES];
    unsigned char b1[4 + SECRETS_MAC_BYTES], b2[4 + SECRETS_MAC_BYTES];

    cr_assert_eq(secrets_seal(keys->wrap, "cred", "T", "v", "l", "abcd", 4, n1, b1), STORAGE_OK);
    cr_assert_eq(secrets_seal(keys->wrap, "cred", "T", "v", "l", "abcd", 4, n2, b2), STORAGE_OK);
    cr_assert_not(storage_equal(n1, n2, sizeof(n1)));
    cr_assert_not(storage_equal(b1, b2, sizeof(b1)));
    secrets_keys_free(keys);
}
