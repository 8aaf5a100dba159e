/*
 * check.c - strata check [FILE]: validate a policy and summarise it.
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
    printf("usage: strata check [FILE]\n"
           "\n"
           "Load and validate a policy (default: the one strata uses, see strata(1)).\n"
           "Each problem prints as 'file:line:col: error|warning: message'. A clean\n"
           "policy prints a summary of its modules, layers, tokens and views.\n"
           "\n"
           "exit status: 0 valid, 1 the policy has errors or cannot be read, 2 usage\n");
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* The layer's token as the policy names it: label, serial or both. */
static void layer_token_text(const rules_layer *l, char *buf, size_t size)
{
    if (l->token != NULL && l->serial != NULL) {
        snprintf(buf, size, "%s (serial %s)", l->token, l->serial);
    } else if (l->serial != NULL) {
        snprintf(buf, size, "serial %s", l->serial);
    } else {
        snprintf(buf, size, "%s", l->token != NULL ? l->token : "");
    }
}

static int print_modules(const rules_policy *p)
{
    cli_table t;
    size_t i;
    int rc = -1;

    cli_table_init(&t, 3);
    if (cli_table_add(&t, "ID", "PATH", "FILE") != 0) {
        goto out;
    }
    for (i = 0; i < p->n_modules; i++) {
        const rules_module *m = &p->modules[i];
        const char *state = cli_file_exists(m->path) ? "present" : "missing";

        if (layers_file_is_strata(m->path)) {
            state = "Strata itself: refused";
        }

        if (cli_table_add(&t, m->id, m->path, state) != 0) {
            goto out;
        }
    }
    printf("modules\n");
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

static int print_layers(const rules_policy *p)
{
    cli_table t;
    char token[160];
    size_t i;
    int rc = -1;

    cli_table_init(&t, 5);
    if (cli_table_add(&t, "ID", "MODULE", "TOKEN", "ACCESS", "PROVISION") != 0) {
        goto out;
    }
    for (i = 0; i < p->n_layers; i++) {
        const rules_layer *l = &p->layers[i];

        layer_token_text(l, token, sizeof(token));
        if (cli_table_add(&t, l->id, l->module_id, token,
                          l->access == RULES_ACCESS_READ_ONLY ? "read-only" : "read-write",
                          l->provision == RULES_PROVISION_LAZY ? "lazy" : "existing") != 0) {
            goto out;
        }
    }
    printf("\nlayers\n");
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

/* One line per token: the view it shows before login, and why. */
static void print_before_login(const rules_token *tok)
{
    const rules_view *v = tok->public_view;

    if (v == NULL) {
        printf("  token \"%s\" shows nothing before login (public-view=\"none\")\n", tok->label);
        return;
    }
    printf("  token \"%s\" shows view \"%s\" before login (%s)\n", tok->label, v->id,
           tok->public_attr != NULL ? "public-view"
           : v->is_public           ? "public=\"true\""
                                    : "its first view");
}

static int print_tokens(const rules_policy *p)
{
    cli_table t;
    char layers[512];
    size_t i, j;
    int rc = -1;

    cli_table_init(&t, 4);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYERS (TOP FIRST)", "BEFORE LOGIN") != 0) {
        goto out;
    }
    for (i = 0; i < p->n_tokens; i++) {
        const rules_token *tok = &p->tokens[i];
        for (j = 0; j < tok->n_views; j++) {
            const rules_view *v = &tok->views[j];

            cli_view_layers_text(v, layers, sizeof(layers));
            if (cli_table_add(&t, j == 0 ? tok->label : "", v->id, layers,
                              v == tok->public_view ? "yes" : "") != 0) {
                goto out;
            }
        }
        if (tok->n_views == 0 && cli_table_add(&t, tok->label, "(no views)", "", "") != 0) {
            goto out;
        }
    }
    printf("\ntokens\n");
    cli_table_print(&t, 2);
    for (i = 0; i < p->n_tokens; i++) {
        print_before_login(&p->tokens[i]);
    }
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

static size_t count_views(const rules_policy *p)
{
    size_t i, n = 0;

    for (i = 0; i < p->n_tokens; i++) {
        n += p->tokens[i].n_views;
    }
    return n;
}

/* Prints the catalog's line; an unsafe location or a damaged file is an
 * error (reported). Returns 0 or -1. */
static int print_catalog(const char *catalog)
{
    char err[PATH_MAX + 512] = "";
    storage_rc src;

    if (catalog == NULL) {
        printf("catalog: (unknown)\n\n");
        return 0;
    }
    src = storage_catalog_inspect(catalog, err, sizeof(err));
    if (src != STORAGE_OK && src != STORAGE_ERR_NEEDS_INIT) {
        printf("catalog: %s (refused)\n\n", catalog);
        cli_error("%s", err);
        return -1;
    }
    printf("catalog: %s%s\n\n", catalog,
           src == STORAGE_ERR_NEEDS_INIT ? " (not initialised: run 'strata init')" : "");
    return 0;
}

/* Prints the one-screen summary of a valid policy. Returns 0, or -1 on
 * allocation failure or a refused catalog (reported). */
static int print_summary(const cli_global *g, const rules_policy *p)
{
    char *catalog = cli_catalog_path(g, p);
    size_t n_views = count_views(p);
    int rc;

    printf("%s: valid; %zu %s, %zu %s, %zu %s, %zu %s\n", p->path, p->n_modules,
           plural(p->n_modules, "module", "modules"), p->n_layers,
           plural(p->n_layers, "layer", "layers"), p->n_tokens,
           plural(p->n_tokens, "token", "tokens"), n_views, plural(n_views, "view", "views"));
    rc = print_catalog(catalog);
    free(catalog);
    if (print_modules(p) != 0 || print_layers(p) != 0 || print_tokens(p) != 0) {
        return -1;
    }
    return rc;
}

/* Reports every module that is Strata's own (a copy or link of
 * strata-pkcs11.so, whatever its name): a layer over it would send every
 * call back into Strata. Returns how many. */
static size_t refuse_self(const rules_policy *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->n_modules; i++) {
        const rules_module *m = &p->modules[i];

        if (layers_file_is_strata(m->path)) {
            fprintf(stderr,
                    "%s:%u: error: module '%s' (%s) is Strata itself (a copy or link of "
                    "strata-pkcs11.so, known by its ELF note, whatever its name): a layer over it "
                    "would send every call back into Strata; Strata refuses to load it\n",
                    p->path, m->line, m->id, m->path);
            n++;
        }
    }
    return n;
}

int cli_cmd_check(cli_global *g, int argc, char **argv)
{
    rules_policy *policy = NULL;
    const char *file = NULL;
    char *path = NULL;
    int c, rc = CLI_EXIT_FAIL;

    while ((c = cli_getopt(g, "check", argc, argv, NULL)) != -1) {
        if (c == CLI_OPT_HELP) {
            print_help();
            return CLI_EXIT_OK;
        }
        return CLI_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        return cli_usage_error("check", "too many arguments");
    }
    if (optind < argc) {
        file = argv[optind];
    }
    path = cli_policy_path(g, file);
    if (path == NULL) {
        goto out;
    }
    if (cli_policy_load(path, true, &policy) != 0) {
        goto out;
    }
    if (print_summary(g, policy) != 0 || refuse_self(policy) > 0) {
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    if (policy != NULL) {
        rules_policy_free(policy);
    }
    free(path);
    return rc;
}
