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

enum { OPT_TOKEN = CLI_OPT_FIRST_LOCAL, OPT_JSON };

/* Prints what to run for each stale credential and a locked token. */
static void print_hint(void *ctx, const cli_attention *a)
{
    (void)ctx;
    if (strcmp(a->kind, "stale-credential") == 0 || strcmp(a->kind, "locked") == 0) {
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

/* Opens the catalog read-only when it exists. Returns 0 with *cat (NULL
 * when there is no catalog yet), or -1 (reported). */
static int open_catalog(const char *path, storage_catalog **cat)
{
    *cat = NULL;
    if (!cli_file_exists(path)) {
        return 0;
    }
    return cli_catalog_open(path, STORAGE_OPEN_READ_ONLY, cat) == STORAGE_OK ? 0 : -1;
}

/* Loads the facts of the tokens asked for (all, or only): into facts
 * (policy->n_tokens entries; unasked ones stay empty). Returns 0, or -1
 * (reported). */
static int load_facts(const rules_policy *policy, storage_catalog *cat, const char *only,
                      cli_token_facts *facts)
{
    for (size_t i = 0; i < policy->n_tokens; i++) {
        const rules_token *tok = &policy->tokens[i];
        const char *why = NULL;

        if (only != NULL && tok != rules_policy_token(policy, only)) {
            continue;
        }
        if (cli_facts_load(cat, tok, &facts[i], &why) != 0) {
            cli_error("token '%s': cannot read its views' state: %s", tok->label, why);
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
    static const struct option options[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"json", no_argument, NULL, OPT_JSON},
        {NULL, 0, NULL, 0},
    };
    rules_policy *policy = NULL;
    storage_catalog *cat = NULL;
    cli_token_facts *facts = NULL;
    const char *only = NULL;
    char *policy_path = NULL, *path = NULL;
    bool json = false;
    int c, rc = CLI_EXIT_FAIL;

    while ((c = cli_getopt(g, "views", argc, argv, options)) != -1) {
        if (c == CLI_OPT_HELP) {
            print_help();
            return CLI_EXIT_OK;
        }
        if (c == OPT_JSON) {
            json = true;
            continue;
        }
        if (c != OPT_TOKEN) {
            return CLI_EXIT_USAGE;
        }
        only = optarg;
    }
    if (optind < argc) {
        return cli_usage_error("views", "unexpected argument '%s'", argv[optind]);
    }
    policy_path = cli_policy_path(g, NULL);
    if (policy_path == NULL || cli_policy_load(policy_path, false, &policy) != 0) {
        goto out;
    }
    if (only != NULL && cli_token_named(policy, only) == NULL) {
        goto out;
    }
    path = cli_catalog_path(g, policy);
    if (path == NULL || open_catalog(path, &cat) != 0) {
        goto out;
    }
    facts = calloc(policy->n_tokens + 1, sizeof(*facts));
    if (facts == NULL || load_facts(policy, cat, only, facts) != 0) {
        goto out;
    }
    if (json) {
        print_json(policy, facts, path, cat != NULL);
    } else if (print_text(policy, facts, only, path, cat != NULL) != 0) {
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    for (size_t i = 0; facts != NULL && i < policy->n_tokens; i++) {
        cli_facts_free(&facts[i]);
    }
    free(facts);
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
