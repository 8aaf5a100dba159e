/*
 * semantics.c - the checks the schema cannot express, and rule compiling.
 *
 * Owns step 4b of a load (see policy_internal.h): on the built model,
 * references between elements (a layer's module, a view's layers), unique
 * ids and labels, label lengths and templates, lazy provisioning, one
 * public view per token, and warnings for what is declared but unused.
 * Every problem is reported, not just the first. Then the rules of each
 * view whose layers are sound are compiled against that view's scope.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy_internal.h"

/* True for a name made only of [A-Za-z0-9._-], at least one character. */
static bool is_simple_name(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------
 * Checks the schema cannot express
 * ------------------------------------------------------------------ */

static void check_modules(loader *ld, const rules_policy *policy)
{
    for (size_t i = 0; i < policy->n_modules; i++) {
        const rules_module *module = &policy->modules[i];
        bool used = false;

        if (!is_simple_name(module->id)) {
            loader_error(
                ld, module->line,
                "module id \"%s\" is not a simple name; expected letters, digits, '.', '_' "
                "or '-'",
                module->id);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(policy->modules[j].id, module->id) == 0) {
                loader_error(ld, module->line,
                             "module id \"%s\" is already used on line %u; ids must be unique",
                             module->id, policy->modules[j].line);
                break;
            }
        }
        if (module->path != NULL && access(module->path, F_OK) != 0) {
            loader_warning(ld, module->line, "module \"%s\": %s does not exist on this machine",
                           module->id, module->path);
        }
        if (module->isolate == RULES_ISOLATE_PROCESS) {
            loader_warning(ld, module->line,
                           "module \"%s\": isolate=\"process\" is not supported yet; see "
                           "docs/hosting.md",
                           module->id);
        }
        for (size_t j = 0; j < policy->n_layers && !used; j++) {
            used = strcmp(policy->layers[j].module_id, module->id) == 0;
        }
        if (!used) {
            loader_warning(ld, module->line, "module \"%s\" is used by no layer", module->id);
        }
    }
}

static bool layer_used(const rules_policy *policy, const char *id)
{
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *view = &policy->tokens[t].views[v];
            for (size_t k = 0; k < view->n_layers; k++) {
                if (strcmp(view->layers[k], id) == 0) {
                    return true;
                }
            }
        }
    }
    return false;
}

static void check_layer(loader *ld, const rules_policy *policy, size_t i)
{
    const rules_layer *layer = &policy->layers[i];
    bool is_template = strstr(layer->token, VIEW_PLACEHOLDER) != NULL;

    if (!is_simple_name(layer->id)) {
        loader_error(
            ld, layer->line,
            "layer id \"%s\" is not a simple name; expected letters, digits, '.', '_' or '-'",
            layer->id);
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(policy->layers[j].id, layer->id) == 0) {
            loader_error(ld, layer->line,
                         "layer id \"%s\" is already used on line %u; ids must be unique",
                         layer->id, policy->layers[j].line);
            break;
        }
    }
    if (rules_policy_module(policy, layer->module_id) == NULL) {
        loader_error(ld, layer->line, "layer \"%s\" names module \"%s\", which is not declared",
                     layer->id, layer->module_id);
    }
    if (layer->token[0] == '\0') {
        loader_error(ld, layer->line, "layer \"%s\" has an empty token label", layer->id);
    } else if (!is_template && strlen(layer->token) > LABEL_MAX_BYTES) {
        loader_error(ld, layer->line,
                     "layer \"%s\" token label is %zu bytes; at most %d are allowed", layer->id,
                     strlen(layer->token), LABEL_MAX_BYTES);
    }
    if (layer->provision == RULES_PROVISION_LAZY && !is_template) {
        loader_error(ld, layer->line,
                     "lazy layer \"%s\" needs \"{view}\" in its token label so that each view gets "
                     "its own token (for example token=\"strata-{view}\")",
                     layer->id);
    }
    if (layer->provision == RULES_PROVISION_LAZY && layer->serial != NULL) {
        loader_error(ld, layer->line,
                     "lazy layer \"%s\" cannot name a serial: a token's serial is known only once "
                     "Strata has created it",
                     layer->id);
    }
    if (layer->provision == RULES_PROVISION_LAZY && layer->access == RULES_ACCESS_READ_ONLY) {
        loader_warning(ld, layer->line,
                       "lazy layer \"%s\" is read-only, so its new tokens stay empty", layer->id);
    }
    if (!layer_used(policy, layer->id)) {
        loader_warning(ld, layer->line, "layer \"%s\" is used by no view", layer->id);
    }
}

static void check_token(loader *ld, const rules_policy *policy, size_t i)
{
    const rules_token *token = &policy->tokens[i];
    size_t len = strlen(token->label);

    if (len == 0 || len > LABEL_MAX_BYTES) {
        loader_error(ld, token->line, "token label \"%s\" is %zu bytes; expected 1 to %d bytes",
                     token->label, len, LABEL_MAX_BYTES);
    }
    if (strlen(token->manufacturer) > LABEL_MAX_BYTES) {
        loader_error(ld, token->line, "token manufacturer is %zu bytes; at most %d are allowed",
                     strlen(token->manufacturer), LABEL_MAX_BYTES);
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(policy->tokens[j].label, token->label) == 0) {
            loader_error(ld, token->line,
                         "token label \"%s\" is already used on line %u; labels must be unique",
                         token->label, policy->tokens[j].line);
            break;
        }
    }
}

/* The view declared before view (in any token) with the same id, or NULL. */
static const rules_view *earlier_view(const rules_policy *policy, const rules_view *view)
{
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *other = &policy->tokens[t].views[v];
            if (other == view) {
                return NULL;
            }
            if (strcmp(other->id, view->id) == 0) {
                return other;
            }
        }
    }
    return NULL;
}

/* Checks a view's layer list. Returns true when every layer is known and
 * named once, so that its rules can be compiled. */
static bool check_view_layers(loader *ld, const rules_policy *policy, const rules_view *view)
{
    bool ok = view->n_layers > 0;

    if (view->n_layers == 0) {
        loader_error(ld, view->line,
                     "view \"%s\" has an empty layers list; expected layer ids, top first",
                     view->id);
    }
    for (size_t k = 0; k < view->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
        char label[LABEL_MAX_BYTES + 1];
        bool repeated = false;

        for (size_t j = 0; j < k && !repeated; j++) {
            repeated = strcmp(view->layers[j], view->layers[k]) == 0;
        }
        if (repeated) {
            loader_error(ld, view->line,
                         "view \"%s\" names layer \"%s\" twice; a layer stacks once", view->id,
                         view->layers[k]);
            ok = false;
        } else if (layer == NULL) {
            loader_error(ld, view->line, "view \"%s\" names layer \"%s\", which is not declared",
                         view->id, view->layers[k]);
            ok = false;
        } else if (strstr(layer->token, VIEW_PLACEHOLDER) != NULL && is_simple_name(view->id) &&
                   rules_layer_token_label(layer, view->id, label, sizeof(label)) != 0) {
            loader_error(ld, view->line,
                         "layer \"%s\" token label \"%s\" is over %d bytes for view \"%s\"",
                         layer->id, layer->token, LABEL_MAX_BYTES, view->id);
        }
    }
    return ok;
}

/* Checks the views of token i. compile[] (one per view of the token) is
 * set to true for each view whose rules may be compiled. */
static void check_views(loader *ld, const rules_policy *policy, size_t i, bool *compile)
{
    const rules_token *token = &policy->tokens[i];
    const rules_view *public_view = NULL;

    for (size_t v = 0; v < token->n_views; v++) {
        const rules_view *view = &token->views[v];
        const rules_view *other = NULL;

        if (!is_simple_name(view->id)) {
            loader_error(
                ld, view->line,
                "view id \"%s\" is not a simple name; expected letters, digits, '.', '_' or "
                "'-'",
                view->id);
        } else if ((other = earlier_view(policy, view)) != NULL) {
            loader_error(
                ld, view->line,
                "view id \"%s\" is already used on line %u; view ids must be unique in the "
                "policy",
                view->id, other->line);
        }
        if (view->is_public && public_view != NULL) {
            loader_error(
                ld, view->line,
                "view \"%s\" is public but view \"%s\" (line %u) already is; a token has at "
                "most one public view",
                view->id, public_view->id, public_view->line);
        } else if (view->is_public) {
            public_view = view;
        }
        compile[v] = check_view_layers(ld, policy, view);
    }
}

/* Compiles the rules of view into view->rules. Returns 0, or -1 on OOM. */
static int compile_view(loader *ld, const rules_policy *policy, rules_view *view)
{
    const char **ids = calloc(view->n_layers, sizeof(char *));
    bool *read_only = calloc(view->n_layers, sizeof(bool));
    int rc = -1;

    if (ids == NULL || read_only == NULL) {
        loader_error(ld, view->line, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < view->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
        ids[k] = layer->id;
        read_only[k] = layer->access == RULES_ACCESS_READ_ONLY;
    }
    rules_scope scope = {
        .layers = ids,
        .layer_read_only = read_only,
        .n_layers = view->n_layers,
    };
    size_t errors_before = ld->diags->n_errors;
    view->rules = rules_compile(view->rules_text, ld->name, view->rules_line, &scope, ld->diags);
    if (view->rules == NULL && ld->diags->n_errors == errors_before) {
        loader_error(ld, view->rules_line, "the rules of view \"%s\" do not compile", view->id);
    }
    rc = 0;
out:
    free(ids);
    free(read_only);
    return rc;
}

/* Runs every semantic check, then compiles the rules of each view whose
 * layers are sound. Returns 0, or -1 on OOM. */
int loader_check(loader *ld, rules_policy *policy)
{
    check_modules(ld, policy);
    for (size_t i = 0; i < policy->n_layers; i++) {
        check_layer(ld, policy, i);
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        rules_token *token = &policy->tokens[i];
        bool *compile = calloc(token->n_views + 1, sizeof(bool));
        if (compile == NULL) {
            loader_error(ld, token->line, "out of memory");
            return -1;
        }
        check_token(ld, policy, i);
        check_views(ld, policy, i, compile);
        for (size_t v = 0; v < token->n_views; v++) {
            rules_view *view = &token->views[v];
            if (compile[v] && view->rules_text != NULL && compile_view(ld, policy, view) != 0) {
                free(compile);
                return -1;
            }
        }
        free(compile);
    }
    return 0;
}
