/*
 * admin.c - the security officer of a virtual token: the SO PIN's
 * verifier, the administrator's key pair derived from it, and recovering
 * a provisioned token's SO PIN sealed to that key.
 *
 * tokens.so_verifier      crypto_pwhash_str (Argon2id) of the SO PIN;
 * tokens.admin_salt/_ops/_mem   the seed derivation's own salt and cost;
 * tokens.admin_public_key crypto_box public key; the secret key is
 *                         crypto_box_seed_keypair(Argon2id(SO PIN, salt))
 *                         and is only ever rebuilt in memory.
 * Argon2id runs outside the catalog's lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What the catalog holds about a token's administrator. */
typedef struct {
    const char *token;
    bool has_so; /* so_verifier and the admin key are set */
    char verifier[crypto_pwhash_STRBYTES];
    unsigned char salt[SECRETS_SALT_BYTES];
    unsigned long long ops;
    size_t mem;
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
} admin_row;

/* A catalog_txn_fn: reads ctx (an admin_row); has_so = false when the
 * token is unknown or has no SO PIN. STORAGE_ERR_NOT_CATALOG for values of
 * the wrong shape. */
static storage_rc admin_read_txn(storage_catalog *cat, void *ctx)
{
    admin_row *a = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat,
                                           "SELECT so_verifier, admin_salt, admin_ops, admin_mem,"
                                           " admin_public_key FROM tokens WHERE label = ?1",
                                           &st);
    int step;

    a->has_so = false;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, a->token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? STORAGE_OK : catalog_rc(step);
    if (step != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
        goto out;
    }
    rc = STORAGE_ERR_NOT_CATALOG;
    if (sqlite3_column_bytes(st, 0) >= (int)crypto_pwhash_STRBYTES ||
        sqlite3_column_bytes(st, 1) != (int)SECRETS_SALT_BYTES ||
        sqlite3_column_bytes(st, 4) != (int)crypto_box_PUBLICKEYBYTES) {
        goto out;
    }
    memset(a->verifier, 0, sizeof(a->verifier));
    memcpy(a->verifier, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    memcpy(a->salt, sqlite3_column_blob(st, 1), SECRETS_SALT_BYTES);
    a->ops = (unsigned long long)sqlite3_column_int64(st, 2);
    a->mem = (size_t)sqlite3_column_int64(st, 3);
    memcpy(a->pk, sqlite3_column_blob(st, 4), crypto_box_PUBLICKEYBYTES);
    a->has_so = true;
    rc = STORAGE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------
 * Setting the SO PIN
 * ------------------------------------------------------------------ */

/* Writes a's verifier and key into token's row unless one is there. */
static storage_rc so_set_txn(storage_catalog *cat, void *ctx)
{
    admin_row *a = ctx;
    admin_row now = {.token = a->token};
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, a->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = admin_read_txn(cat, &now);
    }
    if (rc == STORAGE_OK && now.has_so) {
        rc = STORAGE_ERR_EXISTS;
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(
        cat,
        "UPDATE tokens SET so_verifier = ?1, admin_salt = ?2, admin_ops = ?3,"
        " admin_mem = ?4, admin_public_key = ?5 WHERE id = ?6",
        &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, a->verifier, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->salt, SECRETS_SALT_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)a->ops);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)a->mem);
    sqlite3_bind_blob(st, 5, a->pk, crypto_box_PUBLICKEYBYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, token_id);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "so-set", a->token, "ok");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. The administrator's secret key exists only for the moment
 * crypto_box_seed_keypair needs it, in sodium_malloc'd memory. */
storage_rc storage_so_set(storage_catalog *cat, const char *token, const char *so_pin, size_t len,
                          const storage_kdf *kdf)
{
    admin_row a = {.token = token};
    unsigned char *sk = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (cat == NULL || token == NULL || token[0] == '\0' || so_pin == NULL || len == 0) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = secrets_kdf_resolve(kdf, &a.ops, &a.mem);
    if (rc == STORAGE_OK) {
        rc = storage_crypto_init();
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    if (sk == NULL) {
        goto out;
    }
    secrets_salt_new(a.salt);
    rc = secrets_verifier_make(so_pin, len, a.ops, a.mem, a.verifier);
    if (rc == STORAGE_OK) {
        rc = secrets_admin_keypair(so_pin, len, a.salt, a.ops, a.mem, a.pk, sk);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_write(cat, so_set_txn, &a);
    }
out:
    if (sk != NULL) {
        sodium_memzero(sk, crypto_box_SECRETKEYBYTES);
        sodium_free(sk);
    }
    return rc;
}

/* See storage.h. */
storage_rc storage_so_check(storage_catalog *cat, const char *token, const char *so_pin, size_t len)
{
    admin_row a = {.token = token};
    storage_rc rc;

    if (cat == NULL || token == NULL || (so_pin == NULL && len > 0)) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, admin_read_txn, &a);
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (!a.has_so) {
        return STORAGE_ERR_NOT_FOUND;
    }
    return secrets_verifier_check(a.verifier, so_pin, len);
}

/* ---------------------------------------------------------------------
 * Recovering a provisioned token's SO PIN
 * ------------------------------------------------------------------ */

struct open_ctx {
    admin_row admin;
    const char *view, *layer;
    bool row_found;
    unsigned char *sealed; /* so_pin_admin (malloc; not secret), NULL when absent */
    size_t sealed_len;
};

/* Reads the administrator's row and the provisioning row's admin seal. */
static storage_rc open_read_txn(storage_catalog *cat, void *ctx)
{
    struct open_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = admin_read_txn(cat, &c->admin);
    int step;

    if (rc != STORAGE_OK || !c->admin.has_so) {
        return rc;
    }
    rc = catalog_prepare_locked(cat,
                                "SELECT p.so_pin_admin FROM provisioned p JOIN tokens t"
                                " ON t.id = p.token_id WHERE t.label = ?1 AND p.view = ?2"
                                " AND p.layer = ?3",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->admin.token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->layer, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    rc = catalog_rc(step);
    if (step != SQLITE_ROW) {
        goto out;
    }
    c->row_found = true;
    if (sqlite3_column_type(st, 0) == SQLITE_BLOB && sqlite3_column_bytes(st, 0) > 0) {
        c->sealed_len = (size_t)sqlite3_column_bytes(st, 0);
        c->sealed = malloc(c->sealed_len);
        rc = c->sealed == NULL ? STORAGE_ERR_NOMEM : STORAGE_OK;
        if (c->sealed != NULL) {
            memcpy(c->sealed, sqlite3_column_blob(st, 0), c->sealed_len);
        }
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Rebuilds the administrator's key pair from so_pin and opens c's seal into
 * out. See storage_so_open for the codes. */
static storage_rc open_seal(struct open_ctx *c, const char *so_pin, size_t so_len, char *out,
                            size_t cap, size_t *out_len)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char *sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    storage_rc rc = STORAGE_ERR_NOMEM;

    if (sk == NULL) {
        goto out;
    }
    rc = secrets_admin_keypair(so_pin, so_len, c->admin.salt, c->admin.ops, c->admin.mem, pk, sk);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = STORAGE_ERR_PIN_INCORRECT;
    if (!storage_equal(pk, c->admin.pk, sizeof(pk))) {
        goto out;
    }
    rc = STORAGE_ERR_CRYPTO;
    if (c->sealed == NULL || c->sealed_len < crypto_box_SEALBYTES) {
        goto out;
    }
    rc = STORAGE_ERR_ARGS;
    if (c->sealed_len - crypto_box_SEALBYTES > cap) {
        goto out;
    }
    rc = STORAGE_ERR_CRYPTO;
    if (crypto_box_seal_open((unsigned char *)out, c->sealed, c->sealed_len, pk, sk) == 0) {
        *out_len = c->sealed_len - crypto_box_SEALBYTES;
        rc = STORAGE_OK;
    }
out:
    if (sk != NULL) {
        sodium_memzero(sk, crypto_box_SECRETKEYBYTES);
        sodium_free(sk);
    }
    return rc;
}

/* See storage.h. The row is read first (no Argon2id for a token without
 * SO PIN or an unknown row); the audit row is best effort (skipped on a
 * read-only catalog). */
storage_rc storage_so_open(storage_catalog *cat, const char *token, const char *so_pin,
                           size_t so_len, const char *view, const char *layer, char *out,
                           size_t cap, size_t *out_len)
{
    struct open_ctx c = {.admin = {.token = token}, .view = view, .layer = layer};
    char *subject = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (cat == NULL || token == NULL || view == NULL || layer == NULL ||
        (so_pin == NULL && so_len > 0) || out == NULL || out_len == NULL) {
        goto out;
    }
    *out_len = 0;
    rc = storage_crypto_init();
    if (rc == STORAGE_OK) {
        rc = catalog_read(cat, open_read_txn, &c);
    }
    if (rc == STORAGE_OK && (!c.admin.has_so || !c.row_found)) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = open_seal(&c, so_pin, so_len, out, cap, out_len);
    if (rc == STORAGE_OK && !cat->read_only &&
        asprintf(&subject, "%s/%s/%s", token, view, layer) >= 0) {
        (void)storage_audit(cat, "so-open", subject, "ok");
    }
out:
    free(subject);
    free(c.sealed);
    return rc;
}

/* ---------------------------------------------------------------------
 * Changing the SO PIN
 * ------------------------------------------------------------------ */

/* One provisioned token's SO PIN sealed to the administrator. */
typedef struct {
    int64_t id;          /* provisioned.id */
    unsigned char *blob; /* so_pin_admin as read (malloc; not secret) */
    size_t len;
    unsigned char *fresh; /* the same SO PIN sealed to the new key (malloc) */
    size_t fresh_len;
} admin_seal;

struct so_passwd_ctx {
    admin_row old;     /* as read first; the write checks it is unchanged */
    admin_row new;     /* the new verifier, salt, cost and public key */
    admin_seal *seals; /* every so_pin_admin of the token */
    size_t n;
    size_t n_write; /* write pass: seals found again */
};

static void seals_free(admin_seal *seals, size_t n)
{
    for (size_t i = 0; seals != NULL && i < n; i++) {
        free(seals[i].blob);
        free(seals[i].fresh);
    }
    free(seals);
}

/* Reads (first pass) or checks (write pass: c->seals set) every
 * so_pin_admin of the token. In the write pass a seal not read in the
 * first (a login provisioned meanwhile, sealing to the old key) or a
 * changed one is STORAGE_ERR_BUSY: the caller tries again. */
static storage_rc seals_read_locked(storage_catalog *cat, struct so_passwd_ctx *c, bool check)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int step;
    storage_rc rc = catalog_prepare_locked(cat,
                                           "SELECT p.id, p.so_pin_admin FROM provisioned p JOIN"
                                           " tokens t ON t.id = p.token_id WHERE t.label = ?1"
                                           " AND p.so_pin_admin IS NOT NULL ORDER BY p.id",
                                           &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->old.token, -1, SQLITE_STATIC);
    c->n_write = 0;
    while (rc == STORAGE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (check) {
            admin_seal *s = c->n_write < c->n ? &c->seals[c->n_write] : NULL;
            c->n_write++;
            if (s == NULL || s->id != sqlite3_column_int64(st, 0) || s->len != len ||
                memcmp(s->blob, blob, len) != 0) {
                rc = STORAGE_ERR_BUSY;
            }
            continue;
        }
        if (c->n == cap) {
            cap = cap > 0 ? cap * 2 : 8;
            admin_seal *more = realloc(c->seals, cap * sizeof(*more));
            if (more == NULL) {
                rc = STORAGE_ERR_NOMEM;
                break;
            }
            c->seals = more;
        }
        admin_seal *s = &c->seals[c->n];
        memset(s, 0, sizeof(*s));
        c->n++;
        s->id = sqlite3_column_int64(st, 0);
        s->len = len;
        s->blob = malloc(len > 0 ? len : 1);
        if (s->blob == NULL) {
            rc = STORAGE_ERR_NOMEM;
            break;
        }
        memcpy(s->blob, blob, len);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_rc(step);
    }
    if (rc == STORAGE_OK && check && c->n_write != c->n) {
        rc = STORAGE_ERR_BUSY;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The first pass: the administrator's row and every seal. */
static storage_rc so_passwd_read_txn(storage_catalog *cat, void *ctx)
{
    struct so_passwd_ctx *c = ctx;
    storage_rc rc = admin_read_txn(cat, &c->old);

    if (rc == STORAGE_OK && c->old.has_so) {
        rc = seals_read_locked(cat, c, false);
    }
    return rc;
}

/* Opens each seal with the old key pair and seals its SO PIN to pk. */
static storage_rc seals_reseal(struct so_passwd_ctx *c, const unsigned char *old_pk,
                               const unsigned char *old_sk)
{
    char *pin = sodium_malloc(STORAGE_GENERATED_PIN_LEN + 64);
    storage_rc rc = pin != NULL ? STORAGE_OK : STORAGE_ERR_NOMEM;

    for (size_t i = 0; rc == STORAGE_OK && i < c->n; i++) {
        admin_seal *s = &c->seals[i];
        size_t len = s->len >= crypto_box_SEALBYTES ? s->len - crypto_box_SEALBYTES : 0;
        rc = STORAGE_ERR_CRYPTO;
        if (s->len < crypto_box_SEALBYTES || len > STORAGE_GENERATED_PIN_LEN + 64 ||
            crypto_box_seal_open((unsigned char *)pin, s->blob, s->len, old_pk, old_sk) != 0) {
            break;
        }
        rc = STORAGE_ERR_NOMEM;
        s->fresh_len = len + crypto_box_SEALBYTES;
        s->fresh = malloc(s->fresh_len);
        if (s->fresh != NULL) {
            rc = crypto_box_seal(s->fresh, (const unsigned char *)pin, len, c->new.pk) == 0
                     ? STORAGE_OK
                     : STORAGE_ERR_CRYPTO;
        }
        sodium_memzero(pin, STORAGE_GENERATED_PIN_LEN + 64);
    }
    if (pin != NULL) {
        sodium_free(pin);
    }
    return rc;
}

/* The write pass: nothing changed since the first; then the new verifier,
 * salt, cost and key, every seal re-made, and the audit row. */
static storage_rc so_passwd_write_txn(storage_catalog *cat, void *ctx)
{
    struct so_passwd_ctx *c = ctx;
    admin_row now = {.token = c->old.token};
    sqlite3_stmt *st = NULL;
    storage_rc rc = admin_read_txn(cat, &now);

    if (rc == STORAGE_OK && (!now.has_so || memcmp(now.pk, c->old.pk, sizeof(now.pk)) != 0)) {
        rc = STORAGE_ERR_BUSY; /* changed meanwhile: not ours to overwrite */
    }
    if (rc == STORAGE_OK) {
        rc = seals_read_locked(cat, c, true);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_prepare_locked(cat,
                                    "UPDATE tokens SET so_verifier = ?1, admin_salt = ?2,"
                                    " admin_ops = ?3, admin_mem = ?4, admin_public_key = ?5"
                                    " WHERE label = ?6",
                                    &st);
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->new.verifier, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, c->new.salt, SECRETS_SALT_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->new.ops);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)c->new.mem);
    sqlite3_bind_blob(st, 5, c->new.pk, crypto_box_PUBLICKEYBYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->old.token, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; rc == STORAGE_OK && i < c->n; i++) {
        rc = catalog_prepare_locked(cat, "UPDATE provisioned SET so_pin_admin = ?1 WHERE id = ?2",
                                    &st);
        if (rc == STORAGE_OK) {
            sqlite3_bind_blob(st, 1, c->seals[i].fresh, (int)c->seals[i].fresh_len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, c->seals[i].id);
            rc = catalog_exec_stmt_locked(st);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "so-passwd", c->old.token, "ok");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Derives the old key pair from old_pin and checks it is the token's;
 * then the new PIN's verifier and key pair at kdf's cost, and re-seals. */
static storage_rc so_passwd_derive(struct so_passwd_ctx *c, const char *old_pin, size_t old_len,
                                   const char *new_pin, size_t new_len, const storage_kdf *kdf)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char *sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    unsigned char *new_sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    storage_rc rc = STORAGE_ERR_NOMEM;

    if (sk == NULL || new_sk == NULL) {
        goto out;
    }
    rc = secrets_admin_keypair(old_pin, old_len, c->old.salt, c->old.ops, c->old.mem, pk, sk);
    if (rc == STORAGE_OK && !storage_equal(pk, c->old.pk, sizeof(pk))) {
        rc = STORAGE_ERR_PIN_INCORRECT;
    }
    if (rc == STORAGE_OK) {
        rc = secrets_kdf_resolve(kdf, &c->new.ops, &c->new.mem);
    }
    if (rc == STORAGE_OK) {
        secrets_salt_new(c->new.salt);
        rc = secrets_verifier_make(new_pin, new_len, c->new.ops, c->new.mem, c->new.verifier);
    }
    if (rc == STORAGE_OK) {
        rc = secrets_admin_keypair(new_pin, new_len, c->new.salt, c->new.ops, c->new.mem, c->new.pk,
                                   new_sk);
    }
    if (rc == STORAGE_OK) {
        rc = seals_reseal(c, pk, sk);
    }
out:
    if (sk != NULL) {
        sodium_memzero(sk, crypto_box_SECRETKEYBYTES);
        sodium_free(sk);
    }
    if (new_sk != NULL) {
        sodium_memzero(new_sk, crypto_box_SECRETKEYBYTES);
        sodium_free(new_sk);
    }
    return rc;
}

/* See storage.h. Three Argon2id runs (the old key pair; the new verifier
 * and key pair), all outside the catalog's lock. */
storage_rc storage_so_passwd(storage_catalog *cat, const char *token, const char *old_pin,
                             size_t old_len, const char *new_pin, size_t new_len,
                             const storage_kdf *kdf)
{
    struct so_passwd_ctx c = {.old = {.token = token}, .new = {.token = token}};
    storage_rc rc = STORAGE_ERR_ARGS;

    if (cat == NULL || token == NULL || token[0] == '\0' || (old_pin == NULL && old_len > 0) ||
        new_pin == NULL || new_len == 0) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = storage_crypto_init();
    if (rc == STORAGE_OK) {
        rc = catalog_read(cat, so_passwd_read_txn, &c);
    }
    if (rc == STORAGE_OK && !c.old.has_so) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    if (rc == STORAGE_OK) {
        rc = so_passwd_derive(&c, old_pin, old_len, new_pin, new_len, kdf);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_write(cat, so_passwd_write_txn, &c);
    }
out:
    seals_free(c.seals, c.n);
    return rc;
}
