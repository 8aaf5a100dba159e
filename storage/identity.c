/*
 * identity.c - the catalog's identity and the mark it puts on the labels
 * of the tokens it provisions.
 *
 * Several catalogs (users) may provision tokens on one backend, with the
 * same policy and so the same label ("strata-{view}" for the view
 * "pseudonym" is "strata-pseudonym" for every user). A label alone, or a
 * serial (tpm2-pkcs11 gives every token 0000000000000000), does not say
 * whose a token is. So a provisioned token's label is the policy's label
 * (cut to STORAGE_MARK_ROOM bytes) followed by '#' and 8 hex digits of
 * BLAKE2b keyed by the catalog's identity over (token, view, layer): the
 * catalog recognises its own tokens, a token of another catalog never
 * carries its mark, and two tokens of one catalog cannot be linked to
 * each other by their labels (a pseudonym's token does not point at the
 * work identity's). The identity is 16 random bytes made by the schema
 * step that created the table (schema.c, version 3); it is not a secret
 * that protects anything but that unlinkability, and the catalog is 0600.
 *
 * Rows begun before catalogs had an identity keep their unmarked label:
 * the row's label always wins (storage_provision_label).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ID_BYTES  16u
#define TAG_BYTES 4u  /* 8 hex digits */
#define LABEL_MAX 32u /* CK_TOKEN_INFO label */
#define MARK_ROOM (LABEL_MAX - 1u - 2u * TAG_BYTES)
#define MARK_SEP  '#'

/* What one label question needs. */
struct label_ctx {
    const char *token, *view, *layer;
    unsigned char id[ID_BYTES];
    bool has_id;
    char row_label[LABEL_MAX + 1];
    bool has_row;
};

/* Reads the identity into id; *has = false when the table is empty.
 * Expects the lock held. */
static storage_rc id_read_locked(storage_catalog *cat, unsigned char id[ID_BYTES], bool *has)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, "SELECT id FROM identity WHERE one = 1", &st);
    int step;

    *has = false;
    if (rc != STORAGE_OK) {
        goto out;
    }
    step = sqlite3_step(st);
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? STORAGE_OK : catalog_rc(step);
    if (step == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)ID_BYTES) {
        memcpy(id, sqlite3_column_blob(st, 0), ID_BYTES);
        *has = true;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The identity and the row's label, in one snapshot. */
static storage_rc label_txn(storage_catalog *cat, void *ctx)
{
    struct label_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = id_read_locked(cat, c->id, &c->has_id);

    if (rc != STORAGE_OK || c->layer == NULL) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "SELECT p.label FROM provisioned p JOIN tokens t"
                                " ON t.id = p.token_id WHERE t.label = ?1"
                                " AND p.view = ?2 AND p.layer = ?3",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->layer, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(c->row_label, sizeof(c->row_label), "%s", t != NULL ? (const char *)t : "");
        c->has_row = true;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The mark of (token, view, layer): '#' and 8 hex digits, into mark. */
static void mark_make(const struct label_ctx *c, char mark[2 + 2 * TAG_BYTES])
{
    unsigned char tag[TAG_BYTES];
    crypto_generichash_state h;

    crypto_generichash_init(&h, c->id, ID_BYTES, sizeof(tag));
    crypto_generichash_update(&h, (const unsigned char *)c->token, strlen(c->token) + 1);
    crypto_generichash_update(&h, (const unsigned char *)c->view, strlen(c->view) + 1);
    crypto_generichash_update(&h, (const unsigned char *)c->layer, strlen(c->layer) + 1);
    crypto_generichash_final(&h, tag, sizeof(tag));
    mark[0] = MARK_SEP;
    sodium_bin2hex(mark + 1, 2 * TAG_BYTES + 1, tag, sizeof(tag));
}

/* Whether label ends in mark. */
static bool ends_in(const char *label, const char *mark)
{
    size_t n = strlen(label), m = strlen(mark);

    return n >= m && strcmp(label + n - m, mark) == 0;
}

/* See storage.h. */
storage_rc storage_provision_label(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, const char *base, char out[33], bool *marked)
{
    struct label_ctx c = {.token = token, .view = view, .layer = layer};
    char mark[2 + 2 * TAG_BYTES];
    size_t keep;
    storage_rc rc;

    if (cat == NULL || token == NULL || view == NULL || layer == NULL || base == NULL ||
        base[0] == '\0' || strlen(base) > LABEL_MAX || out == NULL || marked == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, label_txn, &c);
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (c.has_id) {
        mark_make(&c, mark);
    }
    if (c.has_row) {
        snprintf(out, LABEL_MAX + 1, "%s", c.row_label);
        *marked = c.has_id && ends_in(c.row_label, mark);
        return STORAGE_OK;
    }
    if (!c.has_id) {
        snprintf(out, LABEL_MAX + 1, "%s", base); /* a catalog read-only before its migration */
        *marked = false;
        return STORAGE_OK;
    }
    keep = strlen(base) < MARK_ROOM ? strlen(base) : MARK_ROOM;
    while (keep > 0 && keep < strlen(base) && ((unsigned char)base[keep] & 0xC0) == 0x80) {
        keep--; /* never cut a UTF-8 character in two */
    }
    snprintf(out, LABEL_MAX + 1, "%.*s%s", (int)keep, base, mark);
    *marked = true;
    return STORAGE_OK;
}

/* See storage.h. */
storage_rc storage_catalog_identity(storage_catalog *cat, char hex[33])
{
    struct label_ctx c = {0};
    storage_rc rc;

    if (cat == NULL || hex == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, label_txn, &c);
    if (rc == STORAGE_OK && !c.has_id) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    if (rc == STORAGE_OK) {
        sodium_bin2hex(hex, 2 * ID_BYTES + 1, c.id, ID_BYTES);
    }
    return rc;
}
