/*
 * status.c - strata status: the policy, the catalog, each backend module
 * and its slots, each layer's token, each virtual token and its views, as
 * they are now. A report: a module that fails to load is shown, not fatal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_help(void)
{
    printf("usage: strata status\n"
           "\n"
           "Show the policy and catalog in use, whether each backend module loads and\n"
           "which slots and tokens it has, whether each layer's token is there, and each\n"
           "virtual token with its slot ID and its views' enrolment. Never shows a PIN.\n"
           "The catalog is opened read-only.\n"
           "\n"
           "exit status: 0 reported (even when a module or token is missing), 1 the\n"
           "policy is invalid or the catalog cannot be read, 2 usage\n");
}

/* ---------------------------------------------------------------------
 * Catalog
 * ------------------------------------------------------------------ */

/* Opens the catalog read-only and prints its line. Returns 0 with *cat
 * set (NULL when there is none yet), or -1 when it exists but cannot be
 * read (reported). */
static int show_catalog(const char *path, storage_catalog **cat)
{
    *cat = NULL;
    if (!cli_file_exists(path)) {
        printf("catalog  %s (not initialised: run 'strata init')\n", path);
        return 0;
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

static void show_module_slots(layers_module *module)
{
    layers_slot_info *slots = NULL;
    cli_table t;
    char id[32];
    size_t i, n = 0;
    CK_RV rv;

    rv = layers_module_slots(module, &slots, &n);
    if (rv != CKR_OK) {
        printf("      slots cannot be listed: %s\n", layers_rv_name(rv));
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
        show_module_slots(module);
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

static int add_token_rows(cli_table *t, storage_catalog *cat, const rules_token *tok)
{
    char slot_text[64], layers[512], state[128];
    cli_enrolled list;
    const char *why = NULL;
    CK_SLOT_ID slot = 0;
    storage_rc src;
    size_t j;
    int rc = -1;

    if (cat == NULL) {
        snprintf(slot_text, sizeof(slot_text), "none yet");
    } else if ((src = storage_slot_id(cat, tok->label, &slot)) == STORAGE_OK) {
        snprintf(slot_text, sizeof(slot_text), "%lu", (unsigned long)slot);
    } else {
        snprintf(slot_text, sizeof(slot_text), "%s",
                 src == STORAGE_ERR_NOT_FOUND ? "none yet" : storage_strerror(src));
    }
    cli_enrolled_load(cat, tok->label, &list, &why);
    for (j = 0; j < tok->n_views; j++) {
        const rules_view *v = &tok->views[j];
        cli_view_layers_text(v, layers, sizeof(layers));
        if (why != NULL) {
            snprintf(state, sizeof(state), "unknown (%s)", why);
        } else if (!cli_enrolled_has(&list, v->id)) {
            snprintf(state, sizeof(state), "not enrolled");
        } else {
            snprintf(state, sizeof(state), "enrolled");
        }
        if (v->is_public) {
            strncat(state, ", public", sizeof(state) - strlen(state) - 1);
        }
        if (cli_table_add(t, j == 0 ? tok->label : "", j == 0 ? slot_text : "", v->id, layers,
                          state) != 0) {
            goto out;
        }
    }
    /* Enrolments the policy no longer names. */
    for (j = 0; j < list.n; j++) {
        if (rules_token_view(tok, list.names[j]) == NULL &&
            cli_table_add(t, "", "", list.names[j], "", "enrolled, not in the policy") != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    cli_enrolled_free(&list);
    return rc;
}

/* ---------------------------------------------------------------------
 * Provisioned tokens (lazy layers)
 * ------------------------------------------------------------------ */

typedef struct {
    cli_table *t;
    const rules_policy *policy;
    const char *token; /* printed on the token's first row only */
    bool failed;
} prov_ctx;

/* The state a person reads: "waiting" is waiting for a free slot. */
static const char *prov_state_text(const storage_provision_info *info)
{
    switch (info->state) {
    case STORAGE_PROV_WAITING:
        return "waiting for a free slot";
    case STORAGE_PROV_PENDING:
        return info->claimed ? "pending (being provisioned)" : "pending";
    case STORAGE_PROV_INITIALISED:
        return "initialised (no user PIN yet: the next login repairs it)";
    default:
        return storage_prov_state_name(info->state);
    }
}

static void add_prov_row(void *ctx, const storage_provision_info *info)
{
    prov_ctx *c = ctx;
    const rules_layer *l = rules_policy_layer(c->policy, info->layer);

    if (cli_table_add(c->t, c->token, info->view, info->layer,
                      l != NULL ? l->module_id : info->module, info->label,
                      info->serial[0] != '\0' ? info->serial : "-", prov_state_text(info)) != 0) {
        c->failed = true;
    }
    c->token = "";
}

/* Lists the provisioning rows of every token, per view. Returns 0, or -1
 * (reported). */
static int show_provisioned(const rules_policy *policy, storage_catalog *cat)
{
    cli_table t;
    prov_ctx c = {&t, policy, "", false};
    int rc = -1;

    if (cat == NULL) {
        return 0;
    }
    cli_table_init(&t, 7);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYER", "MODULE", "BACKEND TOKEN", "SERIAL", "STATE") !=
        0) {
        goto out;
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        c.token = policy->tokens[i].label;
        if (storage_provisions_list(cat, policy->tokens[i].label, add_prov_row, &c) != STORAGE_OK ||
            c.failed) {
            cli_error("token '%s': cannot list its provisioned tokens", policy->tokens[i].label);
            goto out;
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

static int show_tokens(const rules_policy *policy, storage_catalog *cat)
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
        if (add_token_rows(&t, cat, &policy->tokens[i]) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

int cli_cmd_status(cli_global *g, int argc, char **argv)
{
    rules_policy *policy = NULL;
    storage_catalog *cat = NULL;
    cli_modules mods = {NULL, NULL};
    char *policy_path = NULL, *path = NULL;
    int c, rc = CLI_EXIT_FAIL;
    bool catalog_ok;

    while ((c = cli_getopt(g, "status", argc, argv, NULL)) != -1) {
        if (c == CLI_OPT_HELP) {
            print_help();
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (optind < argc) {
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    }
    policy_path = cli_policy_path(g, NULL);
    if (policy_path == NULL) {
        goto out;
    }
    if (cli_policy_load(policy_path, false, &policy) != 0) {
        printf("policy   %s (invalid)\n", policy_path);
        goto out;
    }
    printf("policy   %s\n", policy_path);
    path = cli_catalog_path(g, policy);
    if (path == NULL) {
        goto out;
    }
    catalog_ok = show_catalog(path, &cat) == 0;
    if (cli_modules_init(&mods, policy) != 0) {
        goto out;
    }
    show_modules(policy, &mods);
    if (show_layers(policy, &mods, cat) != 0 || show_tokens(policy, cat) != 0 ||
        show_provisioned(policy, cat) != 0) {
        goto out;
    }
    rc = catalog_ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    cli_modules_free(&mods);
    if (cat != NULL) {
        storage_catalog_close(cat);
    }
    if (policy != NULL) {
        rules_policy_free(policy);
    }
    free(path);
    free(policy_path);
    return rc;
}
