/*
 * attention.c - what the catalog says about one virtual token without
 * any PIN (strata status and strata views): its enrolled views, its
 * failed-login count, its layer credentials and their stale marks, the
 * layers each view's last login left out, and the Argon2id cost its views
 * were enrolled with; and from these, what an administrator must act on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Appends one item of size bytes to *items (n used). 0 or -1. */
static int append(void **items, size_t *n, const void *item, size_t size)
{
    char *more = realloc(*items, (*n + 1) * size);

    if (more == NULL) {
        return -1;
    }
    memcpy(more + *n * size, item, size);
    *items = more;
    (*n)++;
    return 0;
}

static void add_view(void *ctx, const storage_view_info *info)
{
    cli_token_facts *f = ctx;

    f->failed |= append((void **)&f->views, &f->n_views, info, sizeof(*info)) != 0;
}

static void add_cred(void *ctx, const storage_cred_info *info)
{
    cli_token_facts *f = ctx;

    f->failed |= append((void **)&f->creds, &f->n_creds, info, sizeof(*info)) != 0;
}

static void add_left(void *ctx, const storage_left_out *item)
{
    cli_token_facts *f = ctx;

    f->failed |= append((void **)&f->left, &f->n_left, item, sizeof(*item)) != 0;
}

/* Reads the users' counter of f->token (expired failures off), whether it
 * locks the token, and when the lock lifts: the failures above
 * max-failed-logins - 1 expire one per failed-login-recovery seconds. */
static storage_rc load_counter(storage_catalog *cat, cli_token_facts *f)
{
    const rules_token *tok = f->token;
    storage_pin_count c;
    storage_rc rc =
        storage_pin_counter(cat, tok->label, STORAGE_PIN_USER, tok->failed_login_recovery, &c);

    if (rc != STORAGE_OK) {
        return rc;
    }
    f->failed_logins = c.failures;
    f->locked = c.failures >= tok->max_failed_logins;
    f->clock_behind = c.clock_behind;
    if (f->locked && c.next_expiry > 0) {
        f->unlocks_at = c.next_expiry + (int64_t)(c.failures - tok->max_failed_logins) *
                                            (int64_t)tok->failed_login_recovery;
    }
    return STORAGE_OK;
}

int cli_facts_load(storage_catalog *cat, const rules_token *tok, cli_token_facts *f,
                   const char **why)
{
    storage_kdf policy = {tok->kdf_ops, tok->kdf_mem};
    storage_rc rc = STORAGE_OK;

    memset(f, 0, sizeof(*f));
    f->token = tok;
    if (cat == NULL) {
        return 0;
    }
    rc = storage_views_list(cat, tok->label, add_view, f);
    if (rc == STORAGE_OK) {
        rc = storage_creds_list(cat, tok->label, add_cred, f);
    }
    if (rc == STORAGE_OK) {
        rc = storage_left_out_list(cat, tok->label, add_left, f);
    }
    if (rc == STORAGE_OK) {
        rc = load_counter(cat, f);
    }
    if (rc == STORAGE_OK) {
        rc = storage_token_kdf(cat, tok->label, &f->enrolled_kdf, &f->kdf_known);
    }
    if (rc == STORAGE_OK && f->kdf_known &&
        storage_kdf_effective(&policy, &f->policy_kdf) == STORAGE_OK) {
        f->kdf_differs =
            f->policy_kdf.ops != f->enrolled_kdf.ops || f->policy_kdf.mem != f->enrolled_kdf.mem;
    }
    if (rc != STORAGE_OK || f->failed) {
        *why = f->failed ? "out of memory" : storage_strerror(rc);
        cli_facts_free(f);
        return -1;
    }
    return 0;
}

void cli_facts_free(cli_token_facts *f)
{
    free(f->views);
    free(f->creds);
    free(f->left);
    cli_prov_list_free(&f->provisioned);
    memset(f, 0, sizeof(*f));
}

/* See cli.h. */
cli_token_facts *cli_facts_load_all(const rules_policy *policy, storage_catalog *cat,
                                    const rules_token *only, cli_modules *mods)
{
    cli_token_facts *facts = calloc(policy->n_tokens + 1, sizeof(*facts));

    if (facts == NULL) {
        cli_error("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        const rules_token *tok = &policy->tokens[i];
        const char *why = NULL;

        if (only != NULL && tok != only) {
            continue;
        }
        if (cli_facts_load(cat, tok, &facts[i], &why) != 0) {
            cli_error("token '%s': the catalog cannot tell its state: %s", tok->label, why);
            goto fail;
        }
        if (mods != NULL && cli_facts_load_provisioned(&facts[i], mods, cat) != 0) {
            goto fail;
        }
    }
    return facts;
fail:
    cli_facts_free_all(policy, facts);
    return NULL;
}

void cli_facts_free_all(const rules_policy *policy, cli_token_facts *facts)
{
    for (size_t i = 0; facts != NULL && i < policy->n_tokens; i++) {
        cli_facts_free(&facts[i]);
    }
    free(facts);
}

/* See cli.h. */
int cli_facts_load_provisioned(cli_token_facts *f, cli_modules *mods, storage_catalog *cat)
{
    return cli_prov_list_load(mods, cat, f->token, &f->provisioned);
}

const storage_view_info *cli_facts_view(const cli_token_facts *f, const char *view)
{
    for (size_t i = 0; i < f->n_views; i++) {
        if (strcmp(f->views[i].view, view) == 0) {
            return &f->views[i];
        }
    }
    return NULL;
}

size_t cli_facts_stale(const cli_token_facts *f, const char *view, const storage_cred_info **out,
                       size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < f->n_creds; i++) {
        if (f->creds[i].stale && strcmp(f->creds[i].view, view) == 0) {
            if (n < max) {
                out[n] = &f->creds[i];
            }
            n++;
        }
    }
    return n;
}

/* See cli.h. */
void cli_facts_view_state(const cli_token_facts *f, const char *id, char *buf, size_t size)
{
    const storage_view_info *info = cli_facts_view(f, id);
    const storage_cred_info *stale[8];
    size_t n_stale, len;

    if (info == NULL) {
        snprintf(buf, size, "not enrolled");
        return;
    }
    snprintf(buf, size, "enrolled");
    len = strlen(buf);
    if (info->provisioned > 0 && len < size) {
        len += (size_t)snprintf(buf + len, size - len, ", provisioned (%u)", info->provisioned);
    }
    if (info->provisioning > 0 && len < size) {
        len += (size_t)snprintf(buf + len, size - len, ", provisioning (%u)", info->provisioning);
    }
    if (f->locked && len < size) {
        len += (size_t)snprintf(buf + len, size - len, ", locked");
    }
    n_stale = cli_facts_stale(f, id, stale, 8);
    for (size_t i = 0; i < n_stale && i < 8 && len < size; i++) {
        len += (size_t)snprintf(buf + len, size - len, ", layer '%s' stale", stale[i]->layer);
    }
}

/* Whether a left-out row still needs telling: a stale credential is
 * reported by its mark (gone once re-enrolled), not by the login that
 * found it. */
static bool left_counts(const storage_left_out *item)
{
    return strcmp(item->reason, "stale credential") != 0;
}

/* What a locked token's attention item says: the count, and when the next
 * login may be tried (UTC), or that only strata unlock helps. */
static void locked_message(const cli_token_facts *f, char *out, size_t size)
{
    const rules_token *tok = f->token;
    char when[64] = "";
    struct tm tm;
    time_t at = (time_t)f->unlocks_at;

    if (f->unlocks_at > 0 && gmtime_r(&at, &tm) != NULL) {
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    if (when[0] != '\0') {
        snprintf(out, size,
                 "locked: %u failed logins (max-failed-logins %u); every login answers "
                 "CKR_PIN_LOCKED until %s (one failed login expires every %u s)%s",
                 f->failed_logins, tok->max_failed_logins, when, tok->failed_login_recovery,
                 f->clock_behind ? "; the clock was set back: expiry waits for it" : "");
    } else {
        snprintf(out, size,
                 "locked: %u failed logins (max-failed-logins %u); every login answers "
                 "CKR_PIN_LOCKED until unlocked (failed-login-recovery=\"0\": failures "
                 "never expire)",
                 f->failed_logins, tok->max_failed_logins);
    }
}

/* Calls fn with item filled in; counts it. */
static void emit(cli_attention *item, size_t *n, void (*fn)(void *, const cli_attention *),
                 void *ctx)
{
    (*n)++;
    if (fn != NULL) {
        fn(ctx, item);
    }
}

/* Fills a for a provisioned token that needs attention; false when it
 * needs none. */
static bool prov_attention(const cli_token_facts *f, const cli_prov_item *it, cli_attention *a)
{
    const char *label = f->token->label, *view = it->row.view, *layer = it->row.layer;
    const char *serial = it->serial[0] != '\0' ? it->serial : "none yet";
    char text[256];

    memset(a, 0, sizeof(*a));
    a->kind = cli_prov_attention(it);
    if (a->kind == NULL) {
        return false;
    }
    snprintf(a->view, sizeof(a->view), "%s", view);
    snprintf(a->layer, sizeof(a->layer), "%s", layer);
    snprintf(a->run, sizeof(a->run), "strata provision --token %s --view %s", label, view);
    switch (it->kind) {
    case CLI_PROV_ORPHAN:
        snprintf(a->message, sizeof(a->message),
                 "view '%s', layer '%s': token '%s' (serial %s) carries this catalog's mark but "
                 "is not the view's token (a crash inside the backend's C_InitToken, or a token "
                 "the backend lost and showed again)",
                 view, layer, it->label, serial);
        snprintf(a->run, sizeof(a->run), "strata tokens --token %s --remove %s", label, serial);
        break;
    case CLI_PROV_FOREIGN:
        snprintf(a->message, sizeof(a->message),
                 "view '%s', layer '%s': serial %s is %s; the view's objects on it are gone", view,
                 layer, serial, cli_prov_text(it, text, sizeof(text)));
        break;
    case CLI_PROV_MISSING:
        snprintf(a->message, sizeof(a->message),
                 "view '%s', layer '%s': the backend does not show its token '%s' (serial %s)",
                 view, layer, it->row.label, serial);
        break;
    default:
        snprintf(a->message, sizeof(a->message),
                 "view '%s', layer '%s': provisioning its token '%s' did not finish (%s)", view,
                 layer, it->row.label, storage_prov_state_name(it->row.state));
        break;
    }
    if (strcmp(a->kind, "viewless-token") == 0) {
        snprintf(a->message, sizeof(a->message),
                 "view '%s' is no longer in the policy: its token '%s' of layer '%s' (serial %s) "
                 "is kept with its objects",
                 view, it->row.label, layer, serial);
        snprintf(a->run, sizeof(a->run),
                 "strata tokens --token %s --remove %s (or put view '%s' back in the policy)",
                 label, serial, view);
    }
    return true;
}

size_t cli_facts_attention(const cli_token_facts *f,
                           void (*fn)(void *ctx, const cli_attention *item), void *ctx)
{
    const char *label = f->token->label;
    cli_attention a;
    size_t n = 0;

    for (size_t i = 0; i < f->n_creds; i++) {
        const storage_cred_info *c = &f->creds[i];
        if (!c->stale) {
            continue;
        }
        memset(&a, 0, sizeof(a));
        a.kind = "stale-credential";
        snprintf(a.view, sizeof(a.view), "%s", c->view);
        snprintf(a.layer, sizeof(a.layer), "%s", c->layer);
        snprintf(a.message, sizeof(a.message),
                 "view '%s': the backend refused layer '%s''s credential (%s): it is left out "
                 "of every login",
                 c->view, c->layer, c->reason);
        snprintf(a.run, sizeof(a.run), "strata enroll --token %s --view %s --layer %s", label,
                 c->view, c->layer);
        emit(&a, &n, fn, ctx);
    }
    if (f->locked) {
        memset(&a, 0, sizeof(a));
        a.kind = "locked";
        locked_message(f, a.message, sizeof(a.message));
        snprintf(a.run, sizeof(a.run), "strata unlock --token %s", label);
        emit(&a, &n, fn, ctx);
    }
    for (size_t i = 0; i < f->n_left; i++) {
        const storage_left_out *l = &f->left[i];
        if (!left_counts(l)) {
            continue;
        }
        memset(&a, 0, sizeof(a));
        a.kind = "left-out";
        snprintf(a.view, sizeof(a.view), "%s", l->view);
        snprintf(a.layer, sizeof(a.layer), "%s", l->layer);
        snprintf(a.message, sizeof(a.message), "view '%s': its last login left layer '%s' out (%s)",
                 l->view, l->layer, l->reason);
        snprintf(a.run, sizeof(a.run), "strata status (the layers section), then log in again");
        emit(&a, &n, fn, ctx);
    }
    for (size_t i = 0; i < f->provisioned.n; i++) {
        if (prov_attention(f, &f->provisioned.items[i], &a)) {
            emit(&a, &n, fn, ctx);
        }
    }
    if (f->kdf_differs) {
        memset(&a, 0, sizeof(a));
        a.kind = "kdf";
        snprintf(a.message, sizeof(a.message),
                 "the policy's <kdf> (ops %llu, mem %zu bytes) differs from the one its views "
                 "were enrolled with (ops %llu, mem %zu bytes); all views of a token share one "
                 "cost (a login runs one Argon2id): with one view enrolled, 'strata passwd' "
                 "applies it; with several, forget and enrol each again",
                 f->policy_kdf.ops, f->policy_kdf.mem, f->enrolled_kdf.ops, f->enrolled_kdf.mem);
        if (f->n_views == 1) {
            snprintf(a.run, sizeof(a.run), "strata passwd --token %s --view %s", label,
                     f->views[0].view);
        } else {
            snprintf(a.run, sizeof(a.run),
                     "strata forget --token %s --view VIEW, then strata enroll --token %s --view "
                     "VIEW, for each enrolled view",
                     label, label);
        }
        emit(&a, &n, fn, ctx);
    }
    return n;
}

/* One view as JSON (see strata(1), JSON OUTPUT). */
static void json_view(cli_json *j, const cli_token_facts *f, const char *id, const rules_view *v)
{
    const storage_view_info *info = cli_facts_view(f, id);
    const storage_cred_info *stale[16];
    size_t n_stale = cli_facts_stale(f, id, stale, 16);

    cli_json_open(j, NULL, '{');
    cli_json_str(j, "id", id);
    cli_json_bool(j, "in_policy", v != NULL);
    cli_json_open(j, "layers", '[');
    for (size_t i = 0; v != NULL && i < v->n_layers; i++) {
        cli_json_str(j, NULL, v->layers[i]);
    }
    cli_json_close(j, ']');
    cli_json_bool(j, "public", v != NULL && v == f->token->public_view);
    cli_json_bool(j, "enrolled", info != NULL);
    cli_json_int(j, "provisioned", info != NULL ? info->provisioned : 0);
    cli_json_int(j, "provisioning", info != NULL ? info->provisioning : 0);
    cli_json_bool(j, "locked", info != NULL && f->locked);
    cli_json_open(j, "stale_layers", '[');
    for (size_t i = 0; i < n_stale && i < 16; i++) {
        cli_json_str(j, NULL, stale[i]->layer);
    }
    cli_json_close(j, ']');
    cli_json_close(j, '}');
}

/* See cli.h: the members of a token's JSON object. */
void cli_facts_json(cli_json *j, const cli_token_facts *f)
{
    const rules_token *tok = f->token;

    cli_json_str(j, "label", tok->label);
    cli_json_bool(j, "locked", f->locked);
    cli_json_int(j, "failed_logins", f->failed_logins);
    cli_json_int(j, "max_failed_logins", tok->max_failed_logins);
    cli_json_int(j, "failed_login_recovery", tok->failed_login_recovery);
    if (f->locked) {
        cli_json_int(j, "unlocks_at", f->unlocks_at);
    }
    cli_json_open(j, "views", '[');
    for (size_t i = 0; i < tok->n_views; i++) {
        json_view(j, f, tok->views[i].id, &tok->views[i]);
    }
    for (size_t i = 0; i < f->n_views; i++) {
        if (rules_token_view(tok, f->views[i].view) == NULL) {
            json_view(j, f, f->views[i].view, NULL);
        }
    }
    cli_json_close(j, ']');
}
