/*
 * semantics.c - the checks the schema cannot express, and rule compiling.
 *
 * Owns step 4b of a load (see policy_internal.h): on the built model,
 * references between elements (a layer's module, a view's layers), unique
 * ids and labels, label lengths and templates, lazy provisioning, one
 * public view per token, and warnings for what is declared but unused.
 * Every problem is reported, not just the first. Then the rules of each
 * view whose layers are sound are compiled against that view's scope.
 * References and duplicates are found through the lookup tables of
 * index.c, so that the checks take time in proportion to the size of the
 * policy (times a logarithm), however many views it has.
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

/* Sets used[j] for each module j that some layer names. A module id
 * declared twice counts at its first declaration. */
static void mark_modules_used(const rules_policy *policy, bool *used)
{
    for (size_t j = 0; j < policy->n_layers; j++) {
        const rules_module *module = rules_policy_module(policy, policy->layers[j].module_id);
        if (module != NULL) {
            used[module - policy->modules] = true;
        }
    }
}

/* Checks every module; used[] is from mark_modules_used. */
static void check_modules(loader *ld, const rules_policy *policy, const bool *used)
{
    for (size_t i = 0; i < policy->n_modules; i++) {
        const rules_module *module = &policy->modules[i];
        const rules_module *first = rules_policy_module(policy, module->id);

        if (!is_simple_name(module->id)) {
            loader_error(
                ld, module->line,
                "module id \"%s\" is not a simple name; expected letters, digits, '.', '_' "
                "or '-'",
                module->id);
        }
        if (first != NULL && first != module) {
            loader_error(ld, module->line,
                         "module id \"%s\" is already used on line %u; ids must be unique",
                         module->id, first->line);
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
        if (first == NULL || !used[first - policy->modules]) {
            loader_warning(ld, module->line, "module \"%s\" is used by no layer", module->id);
        }
    }
}

/* Sets used[j] for each layer j that some view names. A layer id
 * declared twice counts at its first declaration. */
static void mark_layers_used(const rules_policy *policy, bool *used)
{
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *view = &policy->tokens[t].views[v];
            for (size_t k = 0; k < view->n_layers; k++) {
                const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
                if (layer != NULL) {
                    used[layer - policy->layers] = true;
                }
            }
        }
    }
}

/* Checks layer i; used[] is from mark_layers_used. */
static void check_layer(loader *ld, const rules_policy *policy, size_t i, const bool *used)
{
    const rules_layer *layer = &policy->layers[i];
    const rules_layer *first = rules_policy_layer(policy, layer->id);
    bool is_template = strstr(layer->token, VIEW_PLACEHOLDER) != NULL;

    if (!is_simple_name(layer->id)) {
        loader_error(
            ld, layer->line,
            "layer id \"%s\" is not a simple name; expected letters, digits, '.', '_' or '-'",
            layer->id);
    }
    if (first != NULL && first != layer) {
        loader_error(ld, layer->line,
                     "layer id \"%s\" is already used on line %u; ids must be unique", layer->id,
                     first->line);
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
    if (first == NULL || !used[first - policy->layers]) {
        loader_warning(ld, layer->line, "layer \"%s\" is used by no view", layer->id);
    }
}

static void check_token(loader *ld, const rules_policy *policy, size_t i)
{
    const rules_token *token = &policy->tokens[i];
    const rules_token *first = rules_policy_token(policy, token->label);
    size_t len = strlen(token->label);

    if (len == 0 || len > LABEL_MAX_BYTES) {
        loader_error(ld, token->line, "token label \"%s\" is %zu bytes; expected 1 to %d bytes",
                     token->label, len, LABEL_MAX_BYTES);
    }
    if (strlen(token->manufacturer) > LABEL_MAX_BYTES) {
        loader_error(ld, token->line, "token manufacturer is %zu bytes; at most %d are allowed",
                     strlen(token->manufacturer), LABEL_MAX_BYTES);
    }
    if (first != NULL && first != token) {
        loader_error(ld, token->line,
                     "token label \"%s\" is already used on line %u; labels must be unique",
                     token->label, first->line);
    }
}

/* What the checks of views share across tokens. */
typedef struct {
    rules_index *views;       /* every view of the policy by id, at its ordinal */
    const rules_view **order; /* the views by ordinal: declaration order, token by token */
    size_t next;              /* ordinal of the next view to check */
    rules_index *words;       /* the layer list of the view being checked */
} view_tables;

static void view_tables_free(view_tables *tables)
{
    loader_index_free(tables->views);
    loader_index_free(tables->words);
    free(tables->order);
}

/* Fills tables for policy: every view indexed by id and ordinal, and room
 * for the longest layer list. Returns 0, or -1 on OOM. */
static int view_tables_init(view_tables *tables, const rules_policy *policy)
{
    size_t n = 0;
    size_t widest = 0;

    for (size_t t = 0; t < policy->n_tokens; t++) {
        n += policy->tokens[t].n_views;
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            size_t n_layers = policy->tokens[t].views[v].n_layers;
            widest = n_layers > widest ? n_layers : widest;
        }
    }
    tables->views = loader_index_new(n);
    tables->order = calloc(n + 1, sizeof(rules_view *));
    tables->words = loader_index_new(widest);
    if (tables->views == NULL || tables->order == NULL || tables->words == NULL) {
        return -1;
    }
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *view = &policy->tokens[t].views[v];
            loader_index_add(tables->views, view->id, tables->next);
            tables->order[tables->next++] = view;
        }
    }
    loader_index_sort(tables->views);
    tables->next = 0;
    return 0;
}

/* The view declared before the one at ordinal (in any token) with the
 * same id, or NULL. */
static const rules_view *earlier_view(const view_tables *tables, const rules_view *view,
                                      size_t ordinal)
{
    size_t first = ordinal;

    if (loader_index_find(tables->views, view->id, &first) && first < ordinal) {
        return tables->order[first];
    }
    return NULL;
}

/* Checks a view's layer list; words is room for it. Returns true when
 * every layer is known and named once, so that its rules can be
 * compiled. */
static bool check_view_layers(loader *ld, const rules_policy *policy, const rules_view *view,
                              rules_index *words)
{
    bool ok = view->n_layers > 0;

    if (view->n_layers == 0) {
        loader_error(ld, view->line,
                     "view \"%s\" has an empty layers list; expected layer ids, top first",
                     view->id);
    }
    loader_index_clear(words);
    for (size_t k = 0; k < view->n_layers; k++) {
        loader_index_add(words, view->layers[k], k);
    }
    loader_index_sort(words);
    for (size_t k = 0; k < view->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
        char label[LABEL_MAX_BYTES + 1];
        size_t first = k;

        if (loader_index_find(words, view->layers[k], &first) && first < k) {
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
static void check_views(loader *ld, const rules_policy *policy, size_t i, view_tables *tables,
                        bool *compile)
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
        } else if ((other = earlier_view(tables, view, tables->next)) != NULL) {
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
        compile[v] = check_view_layers(ld, policy, view, tables->words);
        tables->next++;
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

/*
 * Resolves token->public_view, the view shown before login: the view
 * public-view="" names, or none for "none"; without it the view marked
 * public="true"; else the first view. A public-view that names no view
 * of the token, or that disagrees with a public="true" view, is an
 * error (the public view is then the first one, for later checks).
 */
static void resolve_public_view(loader *ld, rules_token *token)
{
    const rules_view *marked = NULL;
    const rules_view *named = NULL;

    for (size_t v = 0; v < token->n_views && marked == NULL; v++) {
        marked = token->views[v].is_public ? &token->views[v] : NULL;
    }
    token->public_view = marked != NULL ? marked : token->n_views > 0 ? &token->views[0] : NULL;
    if (token->public_attr == NULL) {
        return;
    }
    if (strcmp(token->public_attr, "none") != 0) {
        named = rules_token_view(token, token->public_attr);
        if (named == NULL) {
            loader_error(ld, token->line, "public-view=\"%s\" names no view of token \"%s\"",
                         token->public_attr, token->label);
            rules_diag_hint(ld->diags, "give a view id of this token, or \"none\"");
            return;
        }
    }
    if (marked != NULL && marked != named) {
        loader_error(ld, marked->line,
                     "view \"%s\" is public=\"true\" but its token says public-view=\"%s\" "
                     "(line %u)",
                     marked->id, token->public_attr, token->line);
        rules_diag_hint(ld->diags, "keep one of the two: public-view on <token> is preferred");
        return;
    }
    token->public_view = named;
}

/* Checks token i and its views, then compiles the rules of each view
 * whose layers are sound. Returns 0, or -1 on OOM. */
static int check_token_views(loader *ld, rules_policy *policy, size_t i, view_tables *tables)
{
    rules_token *token = &policy->tokens[i];
    bool *compile = calloc(token->n_views + 1, sizeof(bool));
    int rc = -1;

    if (compile == NULL) {
        loader_error(ld, token->line, "out of memory");
        return -1;
    }
    check_token(ld, policy, i);
    check_views(ld, policy, i, tables, compile);
    resolve_public_view(ld, token);
    for (size_t v = 0; v < token->n_views; v++) {
        rules_view *view = &token->views[v];
        if (compile[v] && view->rules_text != NULL && compile_view(ld, policy, view) != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    free(compile);
    return rc;
}

/* Runs every semantic check, then compiles the rules of each view whose
 * layers are sound. Returns 0, or -1 on OOM. */
int loader_check(loader *ld, rules_policy *policy)
{
    bool *module_used = calloc(policy->n_modules + 1, sizeof(bool));
    bool *layer_used = calloc(policy->n_layers + 1, sizeof(bool));
    view_tables tables = {0};
    int rc = -1;

    if (module_used == NULL || layer_used == NULL || view_tables_init(&tables, policy) != 0) {
        loader_error(ld, 0, "out of memory");
        goto out;
    }
    mark_modules_used(policy, module_used);
    check_modules(ld, policy, module_used);
    mark_layers_used(policy, layer_used);
    for (size_t i = 0; i < policy->n_layers; i++) {
        check_layer(ld, policy, i, layer_used);
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        if (check_token_views(ld, policy, i, &tables) != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    free(module_used);
    free(layer_used);
    view_tables_free(&tables);
    return rc;
}
