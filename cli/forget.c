/*
 * forget.c - strata forget --token T --view V: the administrator removes a
 * view from the catalog (storage_view_forget): its enrolment with its
 * sealed layer credentials, its whiteouts and what its last login left
 * out, in one transaction audited "forget". When the token has an SO PIN
 * it is asked for first, as for strata unlock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "identity.h"

static void print_help(void)
{
    printf("usage: strata forget --token LABEL --view VIEW [--pin-stdin]\n"
           "\n"
           "Remove view VIEW of virtual token LABEL from the catalog: the PIN that\n"
           "selected it, its sealed layer credentials, its whiteouts and what its last\n"
           "login left out. Its PIN logs in no more. The policy is not changed. When the\n"
           "token has an SO PIN (strata enroll --so), it is asked for first.\n"
           "\n"
           "The view's provisioned tokens (lazy layers) are kept, on their backends and\n"
           "in the catalog (strata status lists them): their PINs stay sealed under the\n"
           "forgotten PIN and, when an SO PIN was set, to the administrator. While the\n"
           "token has other enrolled views, enrolling this view again with the same PIN\n"
           "opens them again. Forgetting the token's last view also drops its Argon2id\n"
           "salt and cost: the next enrolment takes the policy's <kdf>.\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --view VIEW    the view to forget (it need not be in the policy any more)\n"
           "  --pin-stdin    read the SO PIN from standard input\n"
           "\n"
           "exit status: 0 forgotten, 1 nothing changed (not enrolled, wrong SO PIN,\n"
           "catalog problem), 2 usage\n");
}

int cli_cmd_forget(cli_global *g, int argc, char **argv)
{
    const char *token = NULL, *view = NULL;
    bool from_stdin = false;
    unsigned kept = 0;
    cli_target t;
    storage_rc rc_s;
    int rc = cli_token_args(g, "forget", argc, argv, print_help, &token, &view, &from_stdin);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    /* A view the policy no longer names can be forgotten: no view lookup. */
    if (cli_target_open(g, token, NULL, 0, &t) != 0 ||
        cli_so_check(&t, from_stdin, "forget") != 0) {
        goto out;
    }
    rc_s = storage_view_forget(t.cat, t.token->label, view, &kept);
    if (rc_s == STORAGE_ERR_NOT_FOUND) {
        cli_error("view '%s' of token '%s' is not enrolled: nothing to forget", view,
                  t.token->label);
        if (rules_token_view(t.token, view) == NULL) {
            cli_view_named(t.policy, t.token, view);
        }
        goto out;
    }
    if (rc_s != STORAGE_OK) {
        cli_error("view '%s' not forgotten: %s", view, storage_strerror(rc_s));
        goto out;
    }
    printf("view '%s' of token '%s' forgotten\n", view, t.token->label);
    if (kept > 0) {
        printf("its %u provisioned token%s kept (strata status lists %s); their PINs stay "
               "sealed under the forgotten PIN\n",
               kept, kept == 1 ? " is" : "s are", kept == 1 ? "it" : "them");
    }
    rc = CLI_EXIT_OK;
out:
    cli_target_close(&t);
    return rc;
}

/* ---------------------------------------------------------------------
 * strata forget-layer --token T LAYER: the catalog's rows of a layer no
 * view of the token stacks any more (storage_layer_forget), after a
 * migration took its objects elsewhere.
 * ------------------------------------------------------------------ */

static void print_layer_help(void)
{
    printf("usage: strata forget-layer --token LABEL [--pin-stdin] LAYER\n"
           "\n"
           "Remove from the catalog what it holds about layer LAYER of virtual token\n"
           "LABEL once no view of the token stacks it any more (after 'strata migrate'\n"
           "and taking the layer out of the views in the policy): its sealed PIN in every\n"
           "view's enrolment, its objects' identities and handles, its whiteouts, the\n"
           "journal of moves out of it, and what logins recorded about it. Nothing on\n"
           "the layer's token changes. A layer some view of the policy still stacks is\n"
           "refused (run 'strata check' after editing the policy). When the token has an\n"
           "SO PIN (strata enroll --so), it is asked for first.\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --pin-stdin    read the SO PIN from standard input\n"
           "\n"
           "exit status: 0 forgotten, 1 nothing changed (a view uses it, nothing names it,\n"
           "wrong SO PIN, catalog problem), 2 usage\n");
}

/* Whether some view of tok stacks layer; reports the first one. */
static bool layer_in_use(const rules_token *tok, const char *layer)
{
    for (size_t v = 0; v < tok->n_views; v++) {
        if (cli_view_has_layer(&tok->views[v], layer, false)) {
            cli_error("view '%s' of token '%s' still stacks layer '%s': take it out of the "
                      "view's layers in the policy first, then run 'strata check'",
                      tok->views[v].id, tok->label, layer);
            return true;
        }
    }
    return false;
}

int cli_cmd_forget_layer(cli_global *g, int argc, char **argv)
{
    const char *layer;
    storage_layer_forgotten n;
    cli_target t;
    cli_opts o;
    storage_rc rc_s;
    int rc = cli_options(g, "forget-layer", argc, argv, CLI_TAKES_TOKEN | CLI_TAKES_PIN_STDIN,
                         print_layer_help, &o);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    if (o.token == NULL) {
        return cli_usage_error("forget-layer", "--token is required");
    }
    if (optind + 1 != argc) {
        return cli_usage_error("forget-layer", "name one layer");
    }
    layer = argv[optind];
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, o.token, NULL, 0, &t) != 0 || layer_in_use(t.token, layer) ||
        cli_so_check(&t, o.pin_stdin, "forget-layer") != 0) {
        goto out;
    }
    rc_s = storage_layer_forget(t.cat, t.token->label, layer, &n);
    if (rc_s == STORAGE_ERR_NOT_FOUND) {
        cli_error("the catalog holds nothing about layer '%s' of token '%s'", layer,
                  t.token->label);
        goto out;
    }
    if (rc_s != STORAGE_OK) {
        cli_error("layer '%s' not forgotten: %s", layer, storage_strerror(rc_s));
        goto out;
    }
    printf("layer '%s' of token '%s' forgotten: %u sealed credential%s, %u object "
           "identit%s, %u whiteout%s, %u journal row%s removed\n",
           layer, t.token->label, n.creds, n.creds == 1 ? "" : "s", n.objects,
           n.objects == 1 ? "y" : "ies", n.whiteouts, n.whiteouts == 1 ? "" : "s", n.moves,
           n.moves == 1 ? "" : "s");
    rc = CLI_EXIT_OK;
out:
    cli_target_close(&t);
    return rc;
}
