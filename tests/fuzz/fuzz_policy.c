/*
 * fuzz_policy.c - libFuzzer target for the policy loader (strata.xml(5)).
 *
 * The input is a policy document. It is loaded from memory under an
 * absolute name, so that relative paths resolve and the loader reaches
 * the model, the semantic checks and the rule compiler rather than
 * stopping at "relative path". The target then checks the contract of
 * rules.h on the result (see README) and aborts when it breaks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "/fuzz/strata.xml"

/* Every diagnostic names the file, has a one-line message, and the error
 * count matches the error diagnostics (no allocation fails under the
 * fuzzer, so none is lost). */
static void check_diags(const rules_diags *diags)
{
    size_t errors = 0;
    char line[512];

    for (size_t i = 0; i < diags->count; i++) {
        const rules_diag *d = &diags->items[i];
        if (d->file == NULL || strcmp(d->file, FUZZ_NAME) != 0 || d->message == NULL ||
            strchr(d->message, '\n') != NULL) {
            abort();
        }
        if (d->hint != NULL && strchr(d->hint, '\n') != NULL) {
            abort();
        }
        if (rules_diag_format(d, line, sizeof(line)) <= 0) {
            abort();
        }
        errors += d->severity == RULES_SEVERITY_ERROR;
    }
    if (errors != diags->n_errors) {
        abort();
    }
}

/* What the engine relies on in a loaded policy: every reference resolves,
 * every path is absolute, every view's layers exist. */
static void check_view(const rules_policy *p, const rules_token *t, const rules_view *v)
{
    char label[33];

    if (v->id == NULL || v->n_layers == 0 || rules_token_view(t, v->id) == NULL) {
        abort();
    }
    if ((v->rules_text == NULL) != (v->rules == NULL)) {
        abort(); /* rules are compiled at load, or the load failed */
    }
    for (size_t k = 0; k < v->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(p, v->layers[k]);
        if (layer == NULL) {
            abort();
        }
        if (rules_layer_token_label(layer, v->id, label, sizeof(label)) != 0) {
            abort(); /* the loader checked that the label fits for this view */
        }
    }
}

static void check_policy(const rules_policy *p)
{
    if (p->path == NULL || strcmp(p->path, FUZZ_NAME) != 0) {
        abort();
    }
    if ((p->catalog_path != NULL && p->catalog_path[0] != '/') ||
        (p->log != NULL && p->log[0] != '/' && strcmp(p->log, "stderr") != 0)) {
        abort();
    }
    for (size_t i = 0; i < p->n_modules; i++) {
        const rules_module *m = &p->modules[i];
        if (m->path == NULL || m->path[0] != '/' || rules_policy_module(p, m->id) != m) {
            abort(); /* ids are unique, paths absolute */
        }
    }
    for (size_t i = 0; i < p->n_layers; i++) {
        const rules_layer *l = &p->layers[i];
        if (rules_policy_layer(p, l->id) != l || rules_policy_module(p, l->module_id) == NULL) {
            abort();
        }
    }
    for (size_t i = 0; i < p->n_tokens; i++) {
        const rules_token *t = &p->tokens[i];
        if (rules_policy_token(p, t->label) != t || strlen(t->label) == 0 ||
            strlen(t->label) > 32 || t->manufacturer == NULL || strlen(t->manufacturer) > 32) {
            abort();
        }
        if (t->min_pin_len == 0 || t->min_pin_len > t->max_pin_len || t->max_failed_logins == 0) {
            abort();
        }
        for (size_t v = 0; v < t->n_views; v++) {
            check_view(p, t, &t->views[v]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_diags diags;
    rules_policy *policy = NULL;

    rules_diags_init(&diags);
    int rc = rules_policy_load_memory((const char *)data, size, FUZZ_NAME, &policy, &diags);
    if ((rc == 0) != (policy != NULL) || (rc == 0) != (diags.n_errors == 0)) {
        abort(); /* failure always says why, success never carries errors */
    }
    check_diags(&diags);
    if (policy != NULL) {
        check_policy(policy);
    }
    rules_policy_free(policy);
    rules_diags_clear(&diags);
    return 0;
}
