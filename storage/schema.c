/*
 * schema.c - the catalog's schema as an ordered list of migration steps.
 *
 * migrations[i] is a list of statements that brings a file from schema
 * version i to i + 1; catalog_migrate_txn applies the missing steps, their
 * history rows and the new PRAGMA user_version in the caller's one write
 * transaction (see catalog.c for how the version is read and trusted).
 * A step is never edited once released: a change is a new step.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * Schema
 * ------------------------------------------------------------------ */

/* Version 1: everything issues 2, 3 and 5 need. Tokens, views and the rows
 * below them are keyed by the token's label in the policy; whiteouts and
 * provisioned tokens name their view by name so that they outlive a
 * re-enrolment of the view. */
static const char *const schema_v1[] = {
    "CREATE TABLE migrations ("
    " version INTEGER PRIMARY KEY,"
    " applied_at INTEGER NOT NULL)",

    "CREATE TABLE slots ("
    " slot_id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused */
    " token_label TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL)",

    "CREATE TABLE tokens ("
    " id INTEGER PRIMARY KEY,"
    " label TEXT NOT NULL UNIQUE,"
    " kdf_salt BLOB," /* Argon2id salt, NULL until the first enrolment */
    " kdf_ops INTEGER,"
    " kdf_mem INTEGER,"
    " failed_logins INTEGER NOT NULL DEFAULT 0,"
    " next_handle INTEGER NOT NULL DEFAULT 1," /* virtual handles, never reused */
    " so_verifier TEXT,"                       /* crypto_pwhash_str of the SO PIN */
    " admin_public_key BLOB,"                  /* crypto_box key sealing SO PINs */
    " created_at INTEGER NOT NULL,"
    " CHECK ((kdf_salt IS NULL) = (kdf_ops IS NULL)"
    "    AND (kdf_ops IS NULL) = (kdf_mem IS NULL)))",

    "CREATE TABLE views ("
    " id INTEGER PRIMARY KEY,"
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " tag BLOB NOT NULL," /* BLAKE2b-keyed(K, \"strata-tag\") */
    " enrolled_at INTEGER NOT NULL,"
    " UNIQUE (token_id, name),"
    " UNIQUE (token_id, tag))",

    "CREATE TABLE creds ("
    " view_id INTEGER NOT NULL REFERENCES views(id) ON DELETE CASCADE,"
    " layer TEXT NOT NULL,"
    " position INTEGER NOT NULL," /* order given at enrolment */
    " nonce BLOB NOT NULL,"
    " sealed BLOB NOT NULL," /* secretbox under the per-row key */
    " PRIMARY KEY (view_id, layer))",

    "CREATE TABLE objects ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " layer TEXT NOT NULL,"
    " identity BLOB NOT NULL,"
    " handle INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, layer, identity),"
    " UNIQUE (token_id, handle))",

    "CREATE TABLE whiteouts ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " layer TEXT NOT NULL,"
    " identity BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, view, layer, identity))",

    "CREATE TABLE provisioned ("
    " id INTEGER PRIMARY KEY,"
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " layer TEXT NOT NULL,"
    " module TEXT NOT NULL,"
    " serial TEXT,"
    " label TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " user_pin_nonce BLOB," /* user PIN sealed under the view's key */
    " user_pin_sealed BLOB,"
    " so_pin_nonce BLOB," /* SO PIN sealed under the view's key */
    " so_pin_sealed BLOB,"
    " so_pin_admin BLOB," /* SO PIN crypto_box_seal'ed to the administrator */
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (token_id, view, layer))",

    "CREATE INDEX provisioned_serial ON provisioned (module, serial)",

    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " outcome TEXT NOT NULL)",

    NULL,
};

/* Version 2 (issue 5): the administrator key pair is derived from the SO
 * PIN with Argon2id over its own salt and cost (kept apart from the views'
 * salt so that an SO PIN equal to a user PIN still derives an unrelated
 * key); a provisioning row can be claimed by one process while it talks
 * to the backend (claim_pid, claimed_at: NULL when unclaimed). */
static const char *const schema_v2[] = {
    "ALTER TABLE tokens ADD COLUMN admin_salt BLOB",
    "ALTER TABLE tokens ADD COLUMN admin_ops INTEGER",
    "ALTER TABLE tokens ADD COLUMN admin_mem INTEGER",
    "ALTER TABLE provisioned ADD COLUMN claim_pid INTEGER",
    "ALTER TABLE provisioned ADD COLUMN claimed_at INTEGER",
    NULL,
};

/* Version 3 (issue 14): the catalog's identity, 16 random bytes made once
 * (at creation, or by this step for an older file). The labels of the
 * tokens it provisions carry a mark keyed by it (identity.c), so that
 * catalogs sharing one backend never take each other's tokens for their
 * own. One row (one = 1). */
static const char *const schema_v3[] = {
    "CREATE TABLE identity ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " id BLOB NOT NULL CHECK (length(id) = 16),"
    " created_at INTEGER NOT NULL)",
    "INSERT INTO identity VALUES (1, randomblob(16), CAST(strftime('%s', 'now') AS INTEGER))",
    NULL,
};

/* Version 4 (issue 12): the security officer's failed logins are counted
 * apart from the users' (an SO lockout never locks the users out). */
static const char *const schema_v4[] = {
    "ALTER TABLE tokens ADD COLUMN so_failed_logins INTEGER NOT NULL DEFAULT 0",
    NULL,
};

/* Version 5 (issue 14): a layer credential the backend refused
 * (CKR_PIN_INCORRECT, CKR_PIN_EXPIRED, CKR_PIN_LOCKED) is marked stale
 * (stale_at, stale_reason: NULL while it is good) and never presented
 * again until it is sealed anew; left_out records, per view, the layers
 * its last login left out and why (strata status). */
static const char *const schema_v5[] = {
    "ALTER TABLE creds ADD COLUMN stale_at INTEGER",
    "ALTER TABLE creds ADD COLUMN stale_reason TEXT",
    "CREATE TABLE left_out ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " layer TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, view, layer))",
    NULL,
};

/* Version 6 (issue 15): the journal of strata migrate, one row per object
 * moved from one layer to another for one view (storage/moves.c), so that
 * a run killed at any point resumes and a second run moves nothing. */
static const char *const schema_v6[] = {
    "CREATE TABLE moves ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " from_layer TEXT NOT NULL,"
    " to_layer TEXT NOT NULL,"
    " source BLOB NOT NULL," /* digest of the source object's identifying attributes */
    " state TEXT NOT NULL,"  /* copying, done */
    " summary TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, view, from_layer, to_layer, source))",
    NULL,
};

/* Version 7 (issue 12): failed logins expire one per recovery interval
 * instead of being cleared by a correct login. failed_at / so_failed_at
 * hold the time (Unix seconds) the next expiry is counted from; a counter
 * carried over from an older file starts its interval now. */
static const char *const schema_v7[] = {
    "ALTER TABLE tokens ADD COLUMN failed_at INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tokens ADD COLUMN so_failed_at INTEGER NOT NULL DEFAULT 0",
    "UPDATE tokens SET failed_at = CAST(strftime('%s', 'now') AS INTEGER)"
    " WHERE failed_logins > 0",
    "UPDATE tokens SET so_failed_at = CAST(strftime('%s', 'now') AS INTEGER)"
    " WHERE so_failed_logins > 0",
    NULL,
};

/* migrations[i] brings a file from version i to version i + 1. */
static const char *const *const migrations[] = {
    schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6, schema_v7,
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int storage_schema_version(void)
{
    return SCHEMA_VERSION;
}

/* See internal.h: re-reads the version under the write lock (another
 * process may have migrated meanwhile) and applies the missing steps.
 * STORAGE_OK; STORAGE_ERR_TOO_NEW when a newer Strata wrote the file
 * meanwhile; or the failing statement's code (the caller rolls back). */
storage_rc catalog_migrate_txn(storage_catalog *cat, void *ctx)
{
    int64_t version = 0;
    char sql[96];
    storage_rc rc = catalog_query_int_locked(cat, "PRAGMA user_version", &version);

    (void)ctx;
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (version > SCHEMA_VERSION) {
        return STORAGE_ERR_TOO_NEW;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        for (const char *const *s = migrations[v]; *s != NULL && rc == STORAGE_OK; s++) {
            rc = catalog_exec_locked(cat, *s);
        }
        snprintf(sql, sizeof(sql), "INSERT INTO migrations VALUES (%lld, %lld)", (long long)(v + 1),
                 (long long)catalog_now());
        if (rc == STORAGE_OK) {
            rc = catalog_exec_locked(cat, sql);
        }
        if (rc != STORAGE_OK) {
            return rc;
        }
    }
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STRATA_APP_ID);
    rc = catalog_exec_locked(cat, sql);
    if (rc == STORAGE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = catalog_exec_locked(cat, sql);
    }
    return rc;
}
