/*
 * provision.c - provisioning rows of lazily provisioned layer tokens: one
 * per (token, view, layer), with generated PINs sealed under the view's
 * wrapping key (and the SO PIN also to the administrator's public key),
 * a state (see storage.h) and an advisory claim.
 *
 * storage_provision_begin runs entirely inside one BEGIN IMMEDIATE
 * transaction: the PINs are generated, sealed and inserted only when no row
 * exists, so two processes racing get one row and the same PINs (the loser
 * waits on the write lock, then finds the winner's row). The claim
 * (claim_pid, claimed_at) lets one process at a time talk to the backend
 * for a row; it dies with its process (kill(pid, 0) says ESRCH) or after
 * STORAGE_PROVISION_CLAIM_TTL seconds, so a crash never blocks a row.
 * PIDs are compared on this host only: processes sharing a catalog across
 * PID namespaces fall back on the time limit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PIN_LEN    STORAGE_GENERATED_PIN_LEN
#define PIN_MAX    64u /* longest PIN a row may hold */
#define SEALED_MAX (PIN_MAX + SECRETS_MAC_BYTES)
#define LABEL_MAX  32u
#define SERIAL_MAX 16u
#define NAME_MAX_  127u

struct storage_provision {
    storage_provision_info info;
    char *pins; /* sodium_malloc'd 2 * PIN_MAX: SO PIN, then user PIN */
    size_t so_len;
    size_t user_len;
};

static const char *const state_names[] = {"pending", "waiting", "initialised", "ready"};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *storage_prov_state_name(storage_prov_state state)
{
    return (size_t)state < N_STATES ? state_names[state] : "unknown";
}

/* The state the catalog spells name; false for an unknown spelling. */
static bool state_parse(const char *name, storage_prov_state *out)
{
    for (size_t i = 0; name != NULL && i < N_STATES; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (storage_prov_state)i;
            return true;
        }
    }
    return false;
}

/* Whether the state machine allows from -> to (see storage.h). */
static bool move_allowed(storage_prov_state from, storage_prov_state to)
{
    switch (to) {
    case STORAGE_PROV_PENDING:
    case STORAGE_PROV_WAITING:
        return from == STORAGE_PROV_PENDING || from == STORAGE_PROV_WAITING;
    case STORAGE_PROV_INITIALISED:
        return true;
    case STORAGE_PROV_READY:
        return from == STORAGE_PROV_INITIALISED || from == STORAGE_PROV_READY;
    }
    return false;
}

/* Whether a claim by pid at time `at` still holds. */
static bool claim_live(int64_t pid, int64_t at)
{
    if (pid <= 0 || catalog_now() - at > STORAGE_PROVISION_CLAIM_TTL) {
        return false;
    }
    return (pid_t)pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(dst, size, "%s", t != NULL ? (const char *)t : "");
}

/* The columns every read selects, info first, the sealed PINs last. */
#define ROW_COLUMNS                                                                                \
    "p.view, p.layer, p.module, p.label, p.serial, p.state, p.created_at, p.updated_at,"           \
    " p.so_pin_admin IS NOT NULL, p.claim_pid, p.claimed_at,"                                      \
    " p.user_pin_nonce, p.user_pin_sealed, p.so_pin_nonce, p.so_pin_sealed"

/* Fills info from columns 0-10 of ROW_COLUMNS. STORAGE_ERR_NOT_CATALOG for
 * an unknown state. */
static storage_rc info_fill(sqlite3_stmt *st, void *out)
{
    storage_provision_info *info = out;

    memset(info, 0, sizeof(*info));
    copy_text(info->view, sizeof(info->view), st, 0);
    copy_text(info->layer, sizeof(info->layer), st, 1);
    copy_text(info->module, sizeof(info->module), st, 2);
    copy_text(info->label, sizeof(info->label), st, 3);
    copy_text(info->serial, sizeof(info->serial), st, 4);
    info->created_at = sqlite3_column_int64(st, 6);
    info->updated_at = sqlite3_column_int64(st, 7);
    info->admin_recoverable = sqlite3_column_int(st, 8) != 0;
    info->claimed = sqlite3_column_type(st, 9) != SQLITE_NULL &&
                    claim_live(sqlite3_column_int64(st, 9), sqlite3_column_int64(st, 10));
    return state_parse((const char *)sqlite3_column_text(st, 5), &info->state)
               ? STORAGE_OK
               : STORAGE_ERR_NOT_CATALOG;
}

/* ---------------------------------------------------------------------
 * One row with its PINs
 * ------------------------------------------------------------------ */

/* A row as read, PINs still sealed. */
typedef struct {
    storage_provision_info info;
    unsigned char user_nonce[SECRETS_NONCE_BYTES], so_nonce[SECRETS_NONCE_BYTES];
    unsigned char user_sealed[SEALED_MAX], so_sealed[SEALED_MAX];
    size_t user_len, so_len; /* sealed lengths */
    int64_t claim_pid;       /* 0 when unclaimed */
} prov_row;

/* Copies one sealed column pair (nonce at col, blob at col + 1). */
static storage_rc sealed_copy(sqlite3_stmt *st, int col, unsigned char *nonce,
                              unsigned char *sealed, size_t *len)
{
    int n = sqlite3_column_bytes(st, col + 1);

    if (sqlite3_column_bytes(st, col) != (int)SECRETS_NONCE_BYTES || n < (int)SECRETS_MAC_BYTES ||
        n > (int)SEALED_MAX) {
        return STORAGE_ERR_CRYPTO;
    }
    memcpy(nonce, sqlite3_column_blob(st, col), SECRETS_NONCE_BYTES);
    memcpy(sealed, sqlite3_column_blob(st, col + 1), (size_t)n);
    *len = (size_t)n;
    return STORAGE_OK;
}

/* Reads the row of (token, view, layer) into r. STORAGE_OK,
 * STORAGE_ERR_NOT_FOUND, STORAGE_ERR_CRYPTO (sealed values of the wrong
 * shape), or the read's failure. Expects the lock held. */
static storage_rc row_read_locked(storage_catalog *cat, const char *token, const char *view,
                                  const char *layer, prov_row *r)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat,
                                           "SELECT " ROW_COLUMNS " FROM provisioned p JOIN tokens t"
                                           " ON t.id = p.token_id WHERE t.label = ?1"
                                           " AND p.view = ?2 AND p.layer = ?3",
                                           &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, layer, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORAGE_ERR_NOT_FOUND : catalog_rc(step);
        goto out;
    }
    rc = info_fill(st, &r->info);
    r->claim_pid = sqlite3_column_int64(st, 9);
    if (rc == STORAGE_OK) {
        rc = sealed_copy(st, 11, r->user_nonce, r->user_sealed, &r->user_len);
    }
    if (rc == STORAGE_OK) {
        rc = sealed_copy(st, 13, r->so_nonce, r->so_sealed, &r->so_len);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

void storage_provision_free(storage_provision *p)
{
    if (p == NULL) {
        return;
    }
    if (p->pins != NULL) {
        sodium_memzero(p->pins, 2 * PIN_MAX);
        sodium_free(p->pins);
    }
    free(p);
}

/* A zeroed storage_provision with room for both PINs, or NULL. */
static storage_provision *provision_new(void)
{
    storage_provision *p = storage_crypto_init() == STORAGE_OK ? calloc(1, sizeof(*p)) : NULL;

    if (p != NULL && (p->pins = sodium_malloc(2 * PIN_MAX)) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* Opens r's PINs with login's wrapping key into a new storage_provision.
 * STORAGE_OK, STORAGE_ERR_CRYPTO, STORAGE_ERR_NOMEM. */
static storage_rc row_unwrap(const storage_login *login, const prov_row *r, storage_provision **out)
{
    storage_provision *p = provision_new();
    storage_rc rc = STORAGE_ERR_NOMEM;

    if (p == NULL) {
        goto out;
    }
    p->info = r->info;
    rc = secrets_open(login->wrap, PURPOSE_PROV_SO, login->token, login->view, r->info.layer,
                      r->so_nonce, r->so_sealed, r->so_len, p->pins);
    if (rc == STORAGE_OK) {
        rc = secrets_open(login->wrap, PURPOSE_PROV_USR, login->token, login->view, r->info.layer,
                          r->user_nonce, r->user_sealed, r->user_len, p->pins + PIN_MAX);
    }
    p->so_len = r->so_len - SECRETS_MAC_BYTES;
    p->user_len = r->user_len - SECRETS_MAC_BYTES;
out:
    if (rc != STORAGE_OK) {
        storage_provision_free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

const storage_provision_info *storage_provision_info_get(const storage_provision *p)
{
    return p != NULL ? &p->info : NULL;
}

void storage_provision_pins(const storage_provision *p, const char **so_pin, size_t *so_len,
                            const char **user_pin, size_t *user_len)
{
    if (so_pin != NULL) {
        *so_pin = p != NULL ? p->pins : NULL;
    }
    if (so_len != NULL) {
        *so_len = p != NULL ? p->so_len : 0;
    }
    if (user_pin != NULL) {
        *user_pin = p != NULL ? p->pins + PIN_MAX : NULL;
    }
    if (user_len != NULL) {
        *user_len = p != NULL ? p->user_len : 0;
    }
}

/* ---------------------------------------------------------------------
 * Begin
 * ------------------------------------------------------------------ */

struct begin_ctx {
    const storage_login *login;
    const char *layer, *module, *label;
    storage_provision *out;
};

/* The token's administrator public key into pk; *has = false when none. */
static storage_rc admin_key_locked(storage_catalog *cat, int64_t token_id,
                                   unsigned char pk[crypto_box_PUBLICKEYBYTES], bool *has)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc =
        catalog_prepare_locked(cat, "SELECT admin_public_key FROM tokens WHERE id = ?1", &st);

    *has = false;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    rc = sqlite3_step(st) == SQLITE_ROW ? STORAGE_OK : STORAGE_ERR_INTERNAL;
    if (rc == STORAGE_OK && sqlite3_column_bytes(st, 0) == (int)crypto_box_PUBLICKEYBYTES) {
        memcpy(pk, sqlite3_column_blob(st, 0), crypto_box_PUBLICKEYBYTES);
        *has = true;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Generates the PINs of a new row into r's storage_provision and seals
 * them (r's sealed fields); *admin (crypto_box_SEALBYTES + PIN_LEN bytes)
 * gets the SO PIN sealed to the administrator when has_admin. */
static storage_rc begin_seal(struct begin_ctx *c, storage_provision *p, prov_row *r,
                             const unsigned char *admin_pk, bool has_admin, unsigned char *admin)
{
    const storage_login *l = c->login;
    storage_rc rc;

    secrets_pin_generate(p->pins, PIN_LEN);
    secrets_pin_generate(p->pins + PIN_MAX, PIN_LEN);
    p->so_len = p->user_len = PIN_LEN;
    r->so_len = r->user_len = PIN_LEN + SECRETS_MAC_BYTES;
    rc = secrets_seal(l->wrap, PURPOSE_PROV_SO, l->token, l->view, c->layer, p->pins, PIN_LEN,
                      r->so_nonce, r->so_sealed);
    if (rc == STORAGE_OK) {
        rc = secrets_seal(l->wrap, PURPOSE_PROV_USR, l->token, l->view, c->layer, p->pins + PIN_MAX,
                          PIN_LEN, r->user_nonce, r->user_sealed);
    }
    if (rc == STORAGE_OK && has_admin &&
        crypto_box_seal(admin, (const unsigned char *)p->pins, PIN_LEN, admin_pk) != 0) {
        rc = STORAGE_ERR_CRYPTO;
    }
    return rc;
}

/* Inserts a pending row with freshly generated, sealed PINs. */
static storage_rc begin_insert_locked(storage_catalog *cat, struct begin_ctx *c, int64_t token_id)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES], admin[crypto_box_SEALBYTES + PIN_LEN];
    storage_provision *p = provision_new();
    sqlite3_stmt *st = NULL;
    prov_row r;
    bool has_admin = false;
    int64_t now = catalog_now();
    storage_rc rc = p == NULL ? STORAGE_ERR_NOMEM : admin_key_locked(cat, token_id, pk, &has_admin);

    if (rc == STORAGE_OK) {
        rc = begin_seal(c, p, &r, pk, has_admin, admin);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_prepare_locked(
            cat,
            "INSERT INTO provisioned (token_id, view, layer, module, label, state,"
            " user_pin_nonce, user_pin_sealed, so_pin_nonce, so_pin_sealed, so_pin_admin,"
            " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9,"
            " ?10, ?11, ?11)",
            &st);
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->login->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->module, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->label, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, r.user_nonce, SECRETS_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, r.user_sealed, (int)r.user_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, r.so_nonce, SECRETS_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, r.so_sealed, (int)r.so_len, SQLITE_STATIC);
    if (has_admin) {
        sqlite3_bind_blob(st, 10, admin, sizeof(admin), SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 11, now);
    rc = catalog_exec_stmt_locked(st);
    catalog_crash_point("provision-begin");
    if (rc != STORAGE_OK) {
        goto out;
    }
    memset(&p->info, 0, sizeof(p->info));
    snprintf(p->info.view, sizeof(p->info.view), "%s", c->login->view);
    snprintf(p->info.layer, sizeof(p->info.layer), "%s", c->layer);
    snprintf(p->info.module, sizeof(p->info.module), "%s", c->module);
    snprintf(p->info.label, sizeof(p->info.label), "%s", c->label);
    p->info.state = STORAGE_PROV_PENDING;
    p->info.created_at = p->info.updated_at = now;
    p->info.admin_recoverable = has_admin;
    c->out = p;
    p = NULL;
out:
    sqlite3_finalize(st);
    storage_provision_free(p);
    return rc;
}

/* The begin transaction: the existing row, or a new one (audited). */
static storage_rc begin_txn(storage_catalog *cat, void *ctx)
{
    struct begin_ctx *c = ctx;
    const storage_login *l = c->login;
    char subject[512];
    int64_t token_id = 0;
    prov_row r;
    storage_rc rc = row_read_locked(cat, l->token, l->view, c->layer, &r);

    if (rc == STORAGE_OK) {
        return row_unwrap(l, &r, &c->out);
    }
    if (rc != STORAGE_ERR_NOT_FOUND) {
        return rc;
    }
    rc = catalog_token_ensure_locked(cat, l->token, &token_id);
    if (rc == STORAGE_OK) {
        rc = begin_insert_locked(cat, c, token_id);
    }
    if (rc == STORAGE_OK) {
        snprintf(subject, sizeof(subject), "%s/%s/%s", l->token, l->view, c->layer);
        rc = catalog_audit_locked(cat, "provision-begin", subject, "ok (pending)");
    }
    return rc;
}

static bool name_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* See storage.h. Takes and releases the catalog lock (one transaction). */
storage_rc storage_provision_begin(storage_catalog *cat, const storage_login *login,
                                   const char *layer, const char *module, const char *label,
                                   storage_provision **out)
{
    struct begin_ctx c = {login, layer, module, label, NULL};
    storage_rc rc = STORAGE_ERR_ARGS;

    if (out != NULL) {
        *out = NULL;
    }
    if (cat == NULL || login == NULL || login->wrap == NULL || out == NULL ||
        !name_ok(layer, NAME_MAX_) || !name_ok(module, sizeof(c.out->info.module) - 1) ||
        !name_ok(label, LABEL_MAX) || strlen(login->view) > NAME_MAX_) {
        return rc;
    }
    rc = catalog_write(cat, begin_txn, &c);
    if (rc == STORAGE_OK) {
        *out = c.out;
    } else {
        storage_provision_free(c.out);
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * Read
 * ------------------------------------------------------------------ */

struct read_ctx {
    const storage_login *login;
    const char *layer;
    prov_row row;
};

static storage_rc read_txn(storage_catalog *cat, void *ctx)
{
    struct read_ctx *c = ctx;

    return row_read_locked(cat, c->login->token, c->login->view, c->layer, &c->row);
}

/* See storage.h. The PINs are opened after the read, outside the lock. */
storage_rc storage_provision_read(storage_catalog *cat, const storage_login *login,
                                  const char *layer, storage_provision **out)
{
    struct read_ctx c = {.login = login, .layer = layer};
    storage_rc rc = STORAGE_ERR_ARGS;

    if (out != NULL) {
        *out = NULL;
    }
    if (cat == NULL || login == NULL || login->wrap == NULL || layer == NULL || out == NULL) {
        return rc;
    }
    rc = catalog_read(cat, read_txn, &c);
    if (rc == STORAGE_OK) {
        rc = row_unwrap(login, &c.row, out);
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * State changes, claims, removal
 * ------------------------------------------------------------------ */

struct change_ctx {
    const char *token, *view, *layer;
    storage_prov_state to;
    const char *serial;
    bool *won;
    char subject[512];
};

/* Runs one UPDATE or DELETE on the row, binding ?1 token label, ?2 view,
 * ?3 layer, ?4 now, ?5 serial, ?6 state name, ?7 this pid (a statement
 * that does not use one gets SQLITE_RANGE for it, ignored).
 * STORAGE_ERR_NOT_FOUND when no row changed. */
static storage_rc change_locked(storage_catalog *cat, struct change_ctx *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, sql, &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, catalog_now());
    sqlite3_bind_text(st, 5, c->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, storage_prov_state_name(c->to), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)getpid());
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) == 0) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

#define ROW_WHERE                                                                                  \
    " WHERE token_id = (SELECT id FROM tokens WHERE label = ?1) AND view = ?2 AND layer = ?3"

static storage_rc advance_txn(storage_catalog *cat, void *ctx)
{
    struct change_ctx *c = ctx;
    char outcome[64];
    prov_row r;
    storage_rc rc = row_read_locked(cat, c->token, c->view, c->layer, &r);

    if (rc != STORAGE_OK) {
        return rc;
    }
    if (!move_allowed(r.info.state, c->to) ||
        (c->to >= STORAGE_PROV_INITIALISED && c->serial == NULL && r.info.serial[0] == '\0')) {
        return STORAGE_ERR_ARGS;
    }
    rc = change_locked(cat, c,
                       "UPDATE provisioned SET state = ?6, serial = coalesce(?5, serial),"
                       " updated_at = ?4, claim_pid = NULL, claimed_at = NULL" ROW_WHERE);
    if (rc == STORAGE_OK) {
        snprintf(outcome, sizeof(outcome), "ok (%s)", storage_prov_state_name(c->to));
        rc = catalog_audit_locked(cat, "provision", c->subject, outcome);
    }
    return rc;
}

/* Takes the claim unless another live process holds it (*won). */
static storage_rc claim_txn(storage_catalog *cat, void *ctx)
{
    struct change_ctx *c = ctx;
    prov_row r;
    storage_rc rc = row_read_locked(cat, c->token, c->view, c->layer, &r);

    if (rc != STORAGE_OK) {
        return rc;
    }
    *c->won = !r.info.claimed || r.claim_pid == (int64_t)getpid();
    if (!*c->won) {
        return STORAGE_OK;
    }
    return change_locked(cat, c,
                         "UPDATE provisioned SET claim_pid = ?7, claimed_at = ?4" ROW_WHERE);
}

/* Drops this process's claim (a claim of another process stays). */
static storage_rc release_txn(storage_catalog *cat, void *ctx)
{
    storage_rc rc =
        change_locked(cat, ctx,
                      "UPDATE provisioned SET claim_pid = NULL, claimed_at = NULL" ROW_WHERE
                      " AND claim_pid = ?7");

    return rc == STORAGE_ERR_NOT_FOUND ? STORAGE_OK : rc;
}

static storage_rc remove_txn(storage_catalog *cat, void *ctx)
{
    struct change_ctx *c = ctx;
    storage_rc rc = change_locked(cat, c, "DELETE FROM provisioned" ROW_WHERE);

    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "provision-remove", c->subject, "ok");
    }
    return rc;
}

/* Checks the names and fills c; false on bad arguments. */
static bool change_init(struct change_ctx *c, storage_catalog *cat, const char *token,
                        const char *view, const char *layer)
{
    memset(c, 0, sizeof(*c));
    c->token = token;
    c->view = view;
    c->layer = layer;
    if (cat == NULL || token == NULL || view == NULL || layer == NULL) {
        return false;
    }
    snprintf(c->subject, sizeof(c->subject), "%s/%s/%s", token, view, layer);
    return true;
}

/* See storage.h. */
storage_rc storage_provision_advance(storage_catalog *cat, const char *token, const char *view,
                                     const char *layer, storage_prov_state to, const char *serial)
{
    struct change_ctx c;

    if (!change_init(&c, cat, token, view, layer) || (size_t)to >= N_STATES ||
        (serial != NULL && (serial[0] == '\0' || strlen(serial) > SERIAL_MAX))) {
        return STORAGE_ERR_ARGS;
    }
    c.to = to;
    c.serial = serial;
    return catalog_write(cat, advance_txn, &c);
}

/* See storage.h. */
storage_rc storage_provision_claim(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, bool *won)
{
    struct change_ctx c;
    bool got = false;
    storage_rc rc;

    if (!change_init(&c, cat, token, view, layer) || won == NULL) {
        return STORAGE_ERR_ARGS;
    }
    c.won = &got;
    rc = catalog_write(cat, claim_txn, &c);
    *won = rc == STORAGE_OK && got;
    return rc;
}

/* See storage.h. STORAGE_OK also when this process held no claim. */
storage_rc storage_provision_release(storage_catalog *cat, const char *token, const char *view,
                                     const char *layer)
{
    struct change_ctx c;

    if (!change_init(&c, cat, token, view, layer)) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, release_txn, &c);
}

/* See storage.h. */
storage_rc storage_provision_remove(storage_catalog *cat, const char *token, const char *view,
                                    const char *layer)
{
    struct change_ctx c;

    if (!change_init(&c, cat, token, view, layer)) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, remove_txn, &c);
}

/* ---------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------ */

/* See storage.h. */
storage_rc storage_provisions_list(storage_catalog *cat, const char *token,
                                   void (*fn)(void *ctx, const storage_provision_info *info),
                                   void *ctx)
{
    storage_provision_info *items = NULL;
    size_t n = 0;
    storage_rc rc;

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_rows_read(cat,
                           "SELECT " ROW_COLUMNS " FROM provisioned p JOIN tokens t"
                           " ON t.id = p.token_id WHERE t.label = ?1 ORDER BY p.view, p.layer",
                           token, sizeof(*items), info_fill, (void **)&items, &n);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        fn(ctx, &items[i]);
    }
    free(items);
    return rc;
}
