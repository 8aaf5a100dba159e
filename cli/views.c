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
        "usage: strata views [--token LABEL]\n"
        "\n"
        "List the views of each virtual token (or of token LABEL) with their layers,\n"
        "top first, and their state: enrolled or not enrolled; provisioned (N) when N\n"
        "lazily provisioned tokens are ready, provisioning (N) while N are not; locked\n"
        "when the token's failed logins reached max-failed-logins (strata unlock).\n"
        "The catalog is opened read-only; no PIN is ever shown.\n"
        "\n"
        "options:\n"
        "  --token LABEL  only this virtual token\n"
        "\n"
        "exit status: 0 listed, 1 the policy, the token or the catalog has a problem, 2 usage\n");
}

enum { OPT_TOKEN = CLI_OPT_FIRST_LOCAL };

/* The catalog's facts about the views of one token. */
typedef struct {
    storage_view_info *items;
    size_t n;
    bool failed;
} view_infos;

static void collect_info(void *ctx, const storage_view_info *info)
{
    view_infos *v = ctx;
    storage_view_info *grown = realloc(v->items, (v->n + 1) * sizeof(*grown));

    if (grown == NULL) {
        v->failed = true;
        return;
    }
    v->items = grown;
    v->items[v->n++] = *info;
}

/* The state text of view id into buf. */
static void state_text(const rules_token *tok, const view_infos *v, const char *id, char *buf,
                       size_t size)
{
    const storage_view_info *info = NULL;
    size_t len;

    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->items[i].view, id) == 0) {
            info = &v->items[i];
        }
    }
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
    if (tok->max_failed_logins > 0 && info->failed_logins >= tok->max_failed_logins && len < size) {
        snprintf(buf + len, size - len, ", locked");
    }
}

/* Adds the rows of one token; returns 0, or -1 (reported). */
static int add_token(cli_table *t, storage_catalog *cat, const rules_token *tok)
{
    char layers[512], state[160];
    view_infos infos = {NULL, 0, false};
    cli_enrolled list;
    const char *why = NULL;
    size_t j;
    int rc = -1;

    if (cli_enrolled_load(cat, tok->label, &list, &why) != 0) {
        cli_error("token '%s': cannot list its enrolments: %s", tok->label, why);
        return -1;
    }
    if (cat != NULL &&
        (storage_views_list(cat, tok->label, collect_info, &infos) != STORAGE_OK || infos.failed)) {
        cli_error("token '%s': cannot read its views' state", tok->label);
        goto out;
    }
    for (j = 0; j < tok->n_views; j++) {
        const rules_view *v = &tok->views[j];

        cli_view_layers_text(v, layers, sizeof(layers));
        state_text(tok, &infos, v->id, state, sizeof(state));
        if (cli_table_add(t, j == 0 ? tok->label : "", v->id, layers, state) != 0) {
            goto out;
        }
    }
    for (j = 0; j < list.n; j++) {
        if (rules_token_view(tok, list.names[j]) == NULL &&
            cli_table_add(t, "", list.names[j], "", "enrolled, not in the policy") != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    free(infos.items);
    cli_enrolled_free(&list);
    return rc;
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

int cli_cmd_views(cli_global *g, int argc, char **argv)
{
    static const struct option options[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {NULL, 0, NULL, 0},
    };
    rules_policy *policy = NULL;
    storage_catalog *cat = NULL;
    const char *only = NULL;
    char *policy_path = NULL, *path = NULL;
    cli_table t;
    size_t i;
    int c, rc = CLI_EXIT_FAIL;

    while ((c = cli_getopt(g, "views", argc, argv, options)) != -1) {
        if (c == CLI_OPT_HELP) {
            print_help();
            return CLI_EXIT_OK;
        }
        if (c != OPT_TOKEN) {
            return CLI_EXIT_USAGE;
        }
        only = optarg;
    }
    if (optind < argc) {
        return cli_usage_error("views", "unexpected argument '%s'", argv[optind]);
    }
    cli_table_init(&t, 4);
    policy_path = cli_policy_path(g, NULL);
    if (policy_path == NULL || cli_policy_load(policy_path, false, &policy) != 0) {
        goto out;
    }
    if (only != NULL && rules_policy_token(policy, only) == NULL) {
        cli_error("no token '%s' in %s", only, policy_path);
        goto out;
    }
    path = cli_catalog_path(g, policy);
    if (path == NULL || open_catalog(path, &cat) != 0) {
        goto out;
    }
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYERS (TOP FIRST)", "STATE") != 0) {
        goto out;
    }
    for (i = 0; i < policy->n_tokens; i++) {
        const rules_token *tok = &policy->tokens[i];

        if ((only == NULL || tok == rules_policy_token(policy, only)) &&
            add_token(&t, cat, tok) != 0) {
            goto out;
        }
    }
    if (cat == NULL) {
        printf("catalog %s not initialised: nothing is enrolled\n", path);
    }
    cli_table_print(&t, 0);
    rc = CLI_EXIT_OK;
out:
    cli_table_free(&t);
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
