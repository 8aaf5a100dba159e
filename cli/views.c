/*
 * views.c - strata views [--token LABEL]: each view of each virtual token
 * and its state: enrolled or not, provisioned (its lazy tokens ready) or
 * provisioning, and locked (the token's failed logins reached
 * max-failed-logins). Never a PIN.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_help(void)
{
    printf(
        "usage: strata views [--token LABEL] [--json]\n"
        "\n"
        "List the views of each virtual token (or of token LABEL) with their layers,\n"
        "top first, and their state: enrolled or not enrolled; provisioned (N) when N\n"
        "lazily provisioned tokens are ready, provisioning (N) while N are not; locked\n"
        "when the token's failed logins reached max-failed-logins (strata unlock);\n"
        "layer 'L' stale when the backend refused that layer's credential (strata\n"
        "enroll --layer L). What to run for each follows the table.\n"
        "The catalog is opened read-only; no PIN is ever shown.\n"
        "\n"
        "options:\n"
        "  --token LABEL  only this virtual token\n"
        "  --json         print JSON instead (its shape: strata(1), JSON OUTPUT)\n"
        "\n"
        "exit status: 0 listed, 1 the policy, the token or the catalog has a problem, 2 usage\n");
}

/* Prints what to run for each stale credential and a locked token. */
static void print_hint(void *ctx, const cli_attention *a)
{
    (void)ctx;
    if (strcmp(a->kind, "locked") == 0) {
        printf("token: %s; run '%s' to unlock now\n", a->message, a->run); /* when it lifts */
    } else if (strcmp(a->kind, "stale-credential") == 0) {
        printf("%s%s%s: run '%s'\n", a->view[0] != '\0' ? "view '" : "token",
               a->view[0] != '\0' ? a->view : "", a->view[0] != '\0' ? "'" : "", a->run);
    }
}

/* Adds the rows of one token; returns 0, or -1 (reported). */
static int add_token(cli_table *t, const cli_token_facts *f)
{
    const rules_token *tok = f->token;
    char layers[512], state[512];
    size_t j;

    for (j = 0; j < tok->n_views; j++) {
        const rules_view *v = &tok->views[j];

        cli_view_layers_text(v, layers, sizeof(layers));
        cli_facts_view_state(f, v->id, state, sizeof(state));
        if (cli_table_add(t, j == 0 ? tok->label : "", v->id, layers, state) != 0) {
            return -1;
        }
    }
    for (j = 0; j < f->n_views; j++) {
        if (rules_token_view(tok, f->views[j].view) == NULL &&
            cli_table_add(t, "", f->views[j].view, "", "enrolled, not in the policy") != 0) {
            return -1;
        }
    }
    return 0;
}

/* The text output. Returns 0, or -1 (reported). */
static int print_text(const rules_policy *policy, const cli_token_facts *facts, const char *only,
                      const char *path, bool have_catalog)
{
    cli_table t;
    int rc = -1;

    cli_table_init(&t, 4);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYERS (TOP FIRST)", "STATE") != 0) {
        goto out;
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        if ((only == NULL || facts[i].token != NULL) && add_token(&t, &facts[i]) != 0) {
            goto out;
        }
    }
    if (!have_catalog) {
        printf("catalog %s not initialised: nothing is enrolled\n", path);
    }
    cli_table_print(&t, 0);
    for (size_t i = 0; i < policy->n_tokens; i++) {
        if (facts[i].token != NULL) {
            cli_facts_attention(&facts[i], print_hint, NULL);
        }
    }
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

static void print_json(const rules_policy *policy, const cli_token_facts *facts, const char *path,
                       bool have_catalog)
{
    cli_json j;

    cli_json_init(&j, stdout);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "catalog", path);
    cli_json_bool(&j, "catalog_initialised", have_catalog);
    cli_json_open(&j, "tokens", '[');
    for (size_t i = 0; i < policy->n_tokens; i++) {
        if (facts[i].token != NULL) {
            cli_json_open(&j, NULL, '{');
            cli_facts_json(&j, &facts[i]);
            cli_json_close(&j, '}');
        }
    }
    cli_json_close(&j, ']');
    cli_json_close(&j, '}');
}

int cli_cmd_views(cli_global *g, int argc, char **argv)
{
    cli_token_facts *facts = NULL;
    cli_target t;
    cli_opts o;
    int rc = cli_options(g, "views", argc, argv, CLI_TAKES_TOKEN | CLI_TAKES_JSON, print_help, &o);

    if (rc != 0 || (rc = cli_operands_none("views", argc, argv)) != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, o.token, NULL, STORAGE_OPEN_READ_ONLY | CLI_CATALOG_OPTIONAL, &t) != 0 ||
        (facts = cli_facts_load_all(t.policy, t.cat, t.token, NULL)) == NULL) {
        goto out;
    }
    if (o.json) {
        print_json(t.policy, facts, t.catalog_path, t.cat != NULL);
    } else if (print_text(t.policy, facts, o.token, t.catalog_path, t.cat != NULL) != 0) {
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    if (t.policy != NULL) {
        cli_facts_free_all(t.policy, facts);
    }
    cli_target_close(&t);
    return rc;
}
