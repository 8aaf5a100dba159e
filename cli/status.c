/*
 * status.c - strata status: the policy, the catalog, each backend module
 * and its slots, each layer's token, each virtual token and its views, as
 * they are now. A report: a module that fails to load is shown, not fatal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_help(void)
{
    printf("usage: strata status [--json]\n"
           "\n"
           "Show the policy and catalog in use, whether each backend module loads and\n"
           "which slots and tokens it has, whether each layer's token is there, and each\n"
           "virtual token with its slot ID and its views' enrolment. Never shows a PIN.\n"
           "The catalog is opened read-only.\n"
           "\n"
           "Then what an administrator must act on, each with the command to run:\n"
           "stale layer credentials, locked tokens, layers left out at a view's last\n"
           "login, a policy <kdf> other than the one the views were enrolled with, and\n"
           "provisioned tokens that are orphaned, foreign (initialised again outside\n"
           "this catalog), missing, half made, or kept for a view the policy dropped.\n"
           "\n"
           "options:\n"
           "  --json  print JSON instead (its shape: strata(1), JSON OUTPUT)\n"
           "\n"
           "exit status: 0 nothing needs attention, 1 something does (or the policy is\n"
           "invalid, or the catalog cannot be read), 2 usage\n");
}

/* ---------------------------------------------------------------------
 * Catalog
 * ------------------------------------------------------------------ */

/* Opens the catalog read-only and prints its line. Returns 0 with *cat
 * set (NULL when there is none yet), or -1 when it exists but cannot be
 * read (reported). */
static int show_catalog(const char *path, storage_catalog **cat)
{
    char err[PATH_MAX + 512] = "";
    storage_rc src = storage_catalog_inspect(path, err, sizeof(err));

    *cat = NULL;
    if (src == STORAGE_ERR_NEEDS_INIT) {
        printf("catalog  %s (not initialised: run 'strata init')\n", path);
        return 0;
    }
    if (src != STORAGE_OK) {
        printf("catalog  %s (refused)\n", path);
        cli_error("%s", err);
        return -1;
    }
    if (cli_catalog_open(path, STORAGE_OPEN_READ_ONLY, cat) != STORAGE_OK) {
        printf("catalog  %s (cannot be read)\n", path);
        return -1;
    }
    char id[33];

    if (storage_catalog_identity(*cat, id) != STORAGE_OK) {
        snprintf(id, sizeof(id), "none yet");
    }
    printf("catalog  %s (schema version %d, identity %s)\n", path, storage_catalog_version(*cat),
           id);
    return 0;
}

/* ---------------------------------------------------------------------
 * Modules
 * ------------------------------------------------------------------ */

static const char *slot_state(const layers_slot_info *s)
{
    if (!s->token_present) {
        return "empty";
    }
    return s->initialized ? "initialised" : "free";
}

static void show_module_slots(cli_modules *mods, const char *module_id)
{
    layers_slot_info *slots = NULL;
    const char *why = "";
    cli_table t;
    char id[32];
    size_t i, n = 0;

    if (cli_modules_slots(mods, module_id, &slots, &n, &why) != 0) {
        printf("      slots cannot be listed: %s\n", why);
        return;
    }
    if (n == 0) {
        printf("      no slots\n");
        free(slots);
        return;
    }
    cli_table_init(&t, 4);
    if (cli_table_add(&t, "SLOT", "STATE", "LABEL", "SERIAL") != 0) {
        goto out;
    }
    for (i = 0; i < n; i++) {
        const layers_slot_info *s = &slots[i];
        bool named = s->token_present && s->initialized;

        snprintf(id, sizeof(id), "%lu", (unsigned long)s->slot);
        if (cli_table_add(&t, id, slot_state(s), named ? s->label : "", named ? s->serial : "") !=
            0) {
            goto out;
        }
    }
    cli_table_print(&t, 6);
out:
    cli_table_free(&t);
    free(slots);
}

static void show_modules(const rules_policy *policy, cli_modules *mods)
{
    size_t i;

    printf("\nmodules\n");
    if (policy->n_modules == 0) {
        printf("  (none)\n");
    }
    for (i = 0; i < policy->n_modules; i++) {
        const rules_module *m = &policy->modules[i];
        const char *why = "";
        layers_module *module = cli_modules_get(mods, m->id, &why);

        if (module == NULL) {
            printf("  %s  not loadable: %s\n", m->id, why);
            continue;
        }
        printf("  %s  loaded  %s\n", m->id, m->path);
        show_module_slots(mods, m->id);
    }
}

/* ---------------------------------------------------------------------
 * Layers
 * ------------------------------------------------------------------ */

/* Describes where the layer's token (label, and serial when not NULL) is
 * into state; absent says what its absence means. */
static void find_layer_token(cli_modules *mods, const rules_layer *l, const char *label,
                             const char *serial_want, const char *absent, char *state, size_t size)
{
    layers_token *tok = NULL;
    const char *why = "";
    layers_module *module = cli_modules_get(mods, l->module_id, &why);
    CK_TOKEN_INFO info;
    CK_SLOT_ID slot = 0;
    char serial[17];
    CK_RV rv;

    if (module == NULL) {
        snprintf(state, size, "unavailable: module '%s' not loadable", l->module_id);
        return;
    }
    rv = layers_token_new(module, label[0] != '\0' ? label : NULL, serial_want, &tok);
    if (rv != CKR_OK) {
        snprintf(state, size, "unavailable: %s", layers_rv_name(rv));
        return;
    }
    rv = layers_token_slot(tok, &slot);
    if (rv == CKR_TOKEN_NOT_PRESENT) {
        snprintf(state, size, "%s", absent);
    } else if (rv != CKR_OK) {
        snprintf(state, size, "unavailable: %s", layers_rv_name(rv));
    } else if (layers_token_info(tok, &info) == CKR_OK) {
        layers_field_to_string(info.serialNumber, sizeof(info.serialNumber), serial,
                               sizeof(serial));
        snprintf(state, size, "found: slot %lu, serial %s", (unsigned long)slot, serial);
    } else {
        snprintf(state, size, "found: slot %lu", (unsigned long)slot);
    }
    layers_token_free(tok);
}

static bool view_has_layer(const rules_view *v, const char *layer)
{
    size_t i;

    for (i = 0; i < v->n_layers; i++) {
        if (strcmp(v->layers[i], layer) == 0) {
            return true;
        }
    }
    return false;
}

/* The provisioning row of (view, layer) found by storage_provisions_list. */
typedef struct {
    const char *view, *layer;
    storage_provision_info info;
    bool found;
} row_find;

static void row_match(void *ctx, const storage_provision_info *info)
{
    row_find *f = ctx;

    if (strcmp(info->view, f->view) == 0 && strcmp(info->layer, f->layer) == 0) {
        f->info = *info;
        f->found = true;
    }
}

/* A lazy layer's token for view v of token tok: the one its catalog row
 * names (label with this catalog's mark, and serial), never a token of
 * another catalog with the policy's label. label becomes the backend
 * label. */
static void find_provisioned(cli_modules *mods, storage_catalog *cat, const rules_token *tok,
                             const rules_view *v, const rules_layer *l, char *label,
                             size_t label_size, char *state, size_t size)
{
    row_find f = {.view = v->id, .layer = l->id};
    char backend[33];
    bool marked = false;

    if (cat == NULL ||
        storage_provision_label(cat, tok->label, v->id, l->id, label, backend, &marked) !=
            STORAGE_OK ||
        storage_provisions_list(cat, tok->label, row_match, &f) != STORAGE_OK || !f.found) {
        snprintf(state, size, "not yet provisioned (lazy)");
        return;
    }
    snprintf(label, label_size, "%s", backend);
    find_layer_token(mods, l, label, f.info.serial[0] != '\0' ? f.info.serial : NULL,
                     f.info.state == STORAGE_PROV_READY ? "absent: its provisioned token is gone"
                                                        : "not yet provisioned (lazy)",
                     state, size);
}

/* Adds the rows of a layer whose token label depends on the view: one per
 * view that stacks it. Returns 0 or -1. */
static int add_template_rows(cli_table *t, cli_modules *mods, storage_catalog *cat,
                             const rules_layer *l)
{
    const rules_policy *p = mods->policy;
    char label[160], state[200];
    bool any = false;
    size_t i, j;

    for (i = 0; i < p->n_tokens; i++) {
        for (j = 0; j < p->tokens[i].n_views; j++) {
            const rules_view *v = &p->tokens[i].views[j];

            if (!view_has_layer(v, l->id)) {
                continue;
            }
            if (cli_layer_label(l, v->id, label, sizeof(label)) != 0) {
                snprintf(state, sizeof(state), "label too long for view '%s'", v->id);
            } else if (l->provision == RULES_PROVISION_LAZY) {
                find_provisioned(mods, cat, &p->tokens[i], v, l, label, sizeof(label), state,
                                 sizeof(state));
            } else {
                find_layer_token(mods, l, label, l->serial, "absent: no such token", state,
                                 sizeof(state));
            }
            if (cli_table_add(t, any ? "" : l->id, any ? "" : l->module_id, label, state) != 0) {
                return -1;
            }
            any = true;
        }
    }
    if (!any) {
        return cli_table_add(t, l->id, l->module_id, l->token, "used by no view");
    }
    return 0;
}

static int show_layers(const rules_policy *policy, cli_modules *mods, storage_catalog *cat)
{
    char label[160], state[200];
    cli_table t;
    size_t i;
    int rc = -1;

    printf("\nlayers\n");
    cli_table_init(&t, 4);
    if (cli_table_add(&t, "LAYER", "MODULE", "TOKEN", "STATE") != 0) {
        goto out;
    }
    for (i = 0; i < policy->n_layers; i++) {
        const rules_layer *l = &policy->layers[i];

        if (l->token != NULL && strstr(l->token, "{view}") != NULL) {
            if (add_template_rows(&t, mods, cat, l) != 0) {
                goto out;
            }
            continue;
        }
        if (cli_layer_label(l, NULL, label, sizeof(label)) != 0) {
            label[0] = '\0';
        }
        find_layer_token(mods, l, label, l->serial,
                         l->provision == RULES_PROVISION_LAZY ? "not yet provisioned (lazy)"
                                                              : "absent: no such token",
                         state, sizeof(state));
        if (cli_table_add(&t, l->id, l->module_id, label[0] != '\0' ? label : l->serial, state) !=
            0) {
            goto out;
        }
    }
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

/* ---------------------------------------------------------------------
 * Virtual tokens and views
 * ------------------------------------------------------------------ */

/* The virtual token's slot ID as text into buf. */
static void slot_text(storage_catalog *cat, const rules_token *tok, char *buf, size_t size)
{
    CK_SLOT_ID slot = 0;
    storage_rc src;

    if (cat == NULL) {
        snprintf(buf, size, "none yet");
    } else if ((src = storage_slot_id(cat, tok->label, &slot)) == STORAGE_OK) {
        snprintf(buf, size, "%lu", (unsigned long)slot);
    } else {
        snprintf(buf, size, "%s",
                 src == STORAGE_ERR_NOT_FOUND ? "none yet" : storage_strerror(src));
    }
}

static int add_token_rows(cli_table *t, storage_catalog *cat, const cli_token_facts *f)
{
    const rules_token *tok = f->token;
    char slot[64], layers[512], state[512];
    size_t j;

    slot_text(cat, tok, slot, sizeof(slot));
    for (j = 0; j < tok->n_views; j++) {
        const rules_view *v = &tok->views[j];
        cli_view_layers_text(v, layers, sizeof(layers));
        cli_facts_view_state(f, v->id, state, sizeof(state));
        if (v == tok->public_view) {
            strncat(state, ", public", sizeof(state) - strlen(state) - 1);
        }
        if (cli_table_add(t, j == 0 ? tok->label : "", j == 0 ? slot : "", v->id, layers, state) !=
            0) {
            return -1;
        }
    }
    /* Enrolments the policy no longer names. */
    for (j = 0; j < f->n_views; j++) {
        if (rules_token_view(tok, f->views[j].view) == NULL &&
            cli_table_add(t, "", "", f->views[j].view, "", "enrolled, not in the policy") != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Provisioned tokens (lazy layers)
 * ------------------------------------------------------------------ */

/* Lists the provisioned tokens of every token as the backends show them
 * (the listing strata tokens prints, with the module). Returns 0, or -1
 * (reported). */
static int show_provisioned(const rules_policy *policy, const cli_token_facts *facts)
{
    char state[256];
    cli_table t;
    int rc = -1;

    cli_table_init(&t, 7);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYER", "MODULE", "BACKEND TOKEN", "SERIAL", "STATE") !=
        0) {
        goto out;
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        for (size_t k = 0; k < facts[i].provisioned.n; k++) {
            const cli_prov_item *it = &facts[i].provisioned.items[k];
            const rules_layer *l = rules_policy_layer(policy, it->row.layer);

            if (cli_table_add(&t, k == 0 ? it->token->label : "", it->row.view, it->row.layer,
                              l != NULL ? l->module_id : it->row.module,
                              it->label[0] != '\0' ? it->label : it->row.label,
                              it->serial[0] != '\0' ? it->serial : "-",
                              cli_prov_text(it, state, sizeof(state))) != 0) {
                goto out;
            }
        }
    }
    if (t.n_rows > 1) {
        printf("\nprovisioned tokens (lazy layers)\n");
        cli_table_print(&t, 2);
    }
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

static int show_tokens(const rules_policy *policy, storage_catalog *cat,
                       const cli_token_facts *facts)
{
    cli_table t;
    size_t i;
    int rc = -1;

    printf("\ntokens\n");
    cli_table_init(&t, 5);
    if (cli_table_add(&t, "TOKEN", "SLOT", "VIEW", "LAYERS (TOP FIRST)", "STATE") != 0) {
        goto out;
    }
    for (i = 0; i < policy->n_tokens; i++) {
        if (add_token_rows(&t, cat, &facts[i]) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

/* ---------------------------------------------------------------------
 * What needs attention
 * ------------------------------------------------------------------ */

static void print_attention(void *ctx, const cli_attention *a)
{
    const rules_token *tok = ctx;

    printf("  token '%s': %s\n    run: %s\n", tok->label, a->message, a->run);
}

/* Prints what an administrator must act on; returns how many things. */
static size_t show_attention(const rules_policy *policy, const cli_token_facts *facts)
{
    size_t n = 0;

    for (size_t i = 0; i < policy->n_tokens; i++) {
        n += cli_facts_attention(&facts[i], NULL, NULL);
    }
    if (n == 0) {
        printf("\nnothing needs attention\n");
        return 0;
    }
    printf("\nneeds attention\n");
    for (size_t i = 0; i < policy->n_tokens; i++) {
        cli_facts_attention(&facts[i], print_attention, (void *)facts[i].token);
    }
    return n;
}

/* ---------------------------------------------------------------------
 * JSON (strata(1), JSON OUTPUT)
 * ------------------------------------------------------------------ */

static void json_catalog(cli_json *j, const char *path, storage_catalog *cat, bool readable)
{
    char id[33];

    cli_json_open(j, "catalog", '{');
    cli_json_str(j, "path", path);
    cli_json_bool(j, "initialised", cat != NULL || !readable);
    cli_json_bool(j, "readable", readable);
    if (cat != NULL) {
        cli_json_int(j, "schema_version", storage_catalog_version(cat));
        cli_json_str(j, "identity", storage_catalog_identity(cat, id) == STORAGE_OK ? id : NULL);
    }
    cli_json_close(j, '}');
}

static void json_modules(cli_json *j, const rules_policy *policy, cli_modules *mods)
{
    cli_json_open(j, "modules", '[');
    for (size_t i = 0; i < policy->n_modules; i++) {
        const char *why = "";
        bool loaded = cli_modules_get(mods, policy->modules[i].id, &why) != NULL;

        cli_json_open(j, NULL, '{');
        cli_json_str(j, "id", policy->modules[i].id);
        cli_json_str(j, "path", policy->modules[i].path);
        cli_json_bool(j, "loaded", loaded);
        cli_json_str(j, "error", loaded ? NULL : why);
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
}

static void json_prov_row(void *ctx, const storage_provision_info *info)
{
    cli_json *j = ctx;

    cli_json_open(j, NULL, '{');
    cli_json_str(j, "view", info->view);
    cli_json_str(j, "layer", info->layer);
    cli_json_str(j, "label", info->label);
    cli_json_str(j, "serial", info->serial[0] != '\0' ? info->serial : NULL);
    cli_json_str(j, "state", storage_prov_state_name(info->state));
    cli_json_close(j, '}');
}

static void json_kdf(cli_json *j, const char *key, const storage_kdf *kdf)
{
    cli_json_open(j, key, '{');
    cli_json_int(j, "ops", (long long)kdf->ops);
    cli_json_int(j, "mem", (long long)kdf->mem);
    cli_json_close(j, '}');
}

static void json_token(cli_json *j, storage_catalog *cat, const cli_token_facts *f)
{
    char slot[64];

    cli_json_open(j, NULL, '{');
    cli_facts_json(j, f);
    slot_text(cat, f->token, slot, sizeof(slot));
    cli_json_str(j, "slot", strcmp(slot, "none yet") == 0 ? NULL : slot);
    cli_json_open(j, "kdf", '{');
    json_kdf(j, "policy", &f->policy_kdf);
    if (f->kdf_known) {
        json_kdf(j, "enrolled", &f->enrolled_kdf);
    } else {
        cli_json_str(j, "enrolled", NULL);
    }
    cli_json_bool(j, "differs", f->kdf_differs);
    cli_json_close(j, '}');
    cli_json_open(j, "provisioned", '[');
    if (cat != NULL) {
        storage_provisions_list(cat, f->token->label, json_prov_row, j);
    }
    cli_json_close(j, ']');
    cli_json_close(j, '}');
}

typedef struct {
    cli_json *j;
    const char *token;
} attention_ctx;

static void json_attention(void *ctx, const cli_attention *a)
{
    attention_ctx *c = ctx;
    cli_json *j = c->j;

    cli_json_open(j, NULL, '{');
    cli_json_str(j, "kind", a->kind);
    cli_json_str(j, "token", c->token);
    cli_json_str(j, "view", a->view[0] != '\0' ? a->view : NULL);
    cli_json_str(j, "layer", a->layer[0] != '\0' ? a->layer : NULL);
    cli_json_str(j, "message", a->message);
    cli_json_str(j, "run", a->run);
    cli_json_close(j, '}');
}

/* Prints the whole status as JSON; returns how many things need
 * attention. */
static size_t print_json(const rules_policy *policy, const char *policy_path, const char *path,
                         storage_catalog *cat, bool readable, cli_modules *mods,
                         const cli_token_facts *facts)
{
    size_t n = 0;
    cli_json j;

    cli_json_init(&j, stdout);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "policy", policy_path);
    json_catalog(&j, path, cat, readable);
    json_modules(&j, policy, mods);
    cli_json_open(&j, "tokens", '[');
    for (size_t i = 0; i < policy->n_tokens; i++) {
        json_token(&j, cat, &facts[i]);
    }
    cli_json_close(&j, ']');
    cli_json_open(&j, "attention", '[');
    for (size_t i = 0; i < policy->n_tokens; i++) {
        attention_ctx c = {&j, facts[i].token->label};
        n += cli_facts_attention(&facts[i], json_attention, &c);
    }
    cli_json_close(&j, ']');
    cli_json_bool(&j, "needs_attention", n > 0 || !readable);
    cli_json_close(&j, '}');
    return n;
}

/* Opens the catalog read-only when it exists, quietly. Returns 0 with
 * *cat (NULL when none yet), or -1 when it cannot be read (reported on
 * stderr). */
static int open_catalog(const char *path, storage_catalog **cat)
{
    *cat = NULL;
    if (!cli_file_exists(path)) {
        return 0;
    }
    return cli_catalog_open(path, STORAGE_OPEN_READ_ONLY, cat) == STORAGE_OK ? 0 : -1;
}

int cli_cmd_status(cli_global *g, int argc, char **argv)
{
    cli_modules mods = {NULL, NULL};
    cli_token_facts *facts = NULL;
    bool catalog_ok;
    size_t attention;
    cli_target t;
    cli_opts o;
    int rc = cli_options(g, "status", argc, argv, CLI_TAKES_JSON, print_help, &o);

    if (rc != 0 || (rc = cli_operands_none("status", argc, argv)) != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, NULL, NULL, CLI_CATALOG_NONE, &t) != 0) {
        if (!o.json && t.policy_path != NULL && t.policy == NULL) {
            printf("policy   %s (invalid)\n", t.policy_path);
        }
        goto out;
    }
    if (!o.json) {
        printf("policy   %s\n", t.policy_path);
    }
    catalog_ok =
        (o.json ? open_catalog(t.catalog_path, &t.cat) : show_catalog(t.catalog_path, &t.cat)) == 0;
    if (cli_modules_init(&mods, t.policy) != 0 ||
        (facts = cli_facts_load_all(t.policy, t.cat, NULL, &mods)) == NULL) {
        goto out;
    }
    if (o.json) {
        attention =
            print_json(t.policy, t.policy_path, t.catalog_path, t.cat, catalog_ok, &mods, facts);
    } else {
        show_modules(t.policy, &mods);
        if (show_layers(t.policy, &mods, t.cat) != 0 || show_tokens(t.policy, t.cat, facts) != 0 ||
            show_provisioned(t.policy, facts) != 0) {
            goto out;
        }
        attention = show_attention(t.policy, facts);
    }
    rc = catalog_ok && attention == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    if (t.policy != NULL) {
        cli_facts_free_all(t.policy, facts);
    }
    cli_modules_free(&mods);
    cli_target_close(&t);
    return rc;
}
