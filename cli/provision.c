/*
 * provision.c - strata provision --token T --view V: provisions ahead of
 * time the lazily provisioned tokens of a view, exactly as the view's
 * first login would (it logs in through the engine's own PKCS#11 surface,
 * linked in, so there is one provisioning path to trust and test). The
 * view's PIN is needed: the generated backend PINs are sealed under the
 * view's key.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "identity.h"

static void print_help(void)
{
    printf("usage: strata provision --token LABEL --view VIEW [--pin-stdin]\n"
           "\n"
           "Create now the tokens of VIEW's layers that have provision=\"lazy\", as the\n"
           "view's first login would: a fresh token on a free slot of the layer's module,\n"
           "with generated SO and user PINs sealed in the catalog. The view's PIN is\n"
           "asked (without echo): the generated PINs are sealed under the view's key,\n"
           "so nothing can be provisioned without it. A token that exists already is\n"
           "left alone; a half-provisioned one is repaired. The policy's catalog is\n"
           "used (--catalog must name the same file).\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --view VIEW    the view whose tokens to provision\n"
           "  --pin-stdin    read the view's PIN from standard input\n"
           "\n"
           "exit status: 0 provisioned (or nothing to do), 1 not provisioned (wrong PIN,\n"
           "locked, no free slot: the view then waits for one), 2 usage\n");
}

/* True when the view has a lazily provisioned layer. */
static bool has_lazy(const cli_target *t)
{
    for (size_t i = 0; i < t->view->n_layers; i++) {
        const rules_layer *l = rules_policy_layer(t->policy, t->view->layers[i]);
        if (l != NULL && l->provision == RULES_PROVISION_LAZY) {
            return true;
        }
    }
    return false;
}

/* True when the view is enrolled; else says so (reported). */
static bool is_enrolled(const cli_target *t)
{
    cli_enrolled list;
    const char *why = NULL;
    bool enrolled;

    if (cli_enrolled_load(t->cat, t->token->label, &list, &why) != 0) {
        cli_error("cannot read the enrolments of token '%s': %s", t->token->label, why);
        return false;
    }
    enrolled = cli_enrolled_has(&list, t->view->id);
    cli_enrolled_free(&list);
    if (!enrolled) {
        cli_error("view '%s' of token '%s' is not enrolled: nothing can be provisioned for it "
                  "before 'strata enroll --token %s --view %s'",
                  t->view->id, t->token->label, t->token->label, t->view->id);
    }
    return enrolled;
}

/* The engine's slot of the token with label, or false. */
static bool find_slot(CK_FUNCTION_LIST *p11, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO info;
    char text[33];

    if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        return false;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
            continue;
        }
        layers_field_to_string(info.label, sizeof(info.label), text, sizeof(text));
        if (strcmp(text, label) == 0) {
            *slot = slots[i];
            return true;
        }
    }
    return false;
}

/* Explains a C_Login failure. */
static void report(const cli_target *t, CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
        cli_error("that PIN selects no view of token '%s' (or not view '%s')", t->token->label,
                  t->view->id);
        break;
    case CKR_PIN_LOCKED:
        cli_error("token '%s' is locked: run 'strata unlock'", t->token->label);
        break;
    case CKR_DEVICE_MEMORY:
        cli_error("no free slot for view '%s': it waits for one (see strata status)", t->view->id);
        break;
    default:
        cli_error("view '%s' not provisioned: %s (set STRATA_LOG=info for details)", t->view->id,
                  layers_rv_name(rv));
        break;
    }
}

/* Checks that pin selects the asked view (one Argon2id, after a guess is
 * reserved and given back only when it is right), so that another view's
 * PIN provisions nothing. Returns 0, or -1 (reported). */
static int check_view(const cli_target *t, const cli_pin *pin)
{
    storage_login *login = NULL;
    storage_rc src;
    int rc = -1;

    if (cli_target_guess(t, STORAGE_PIN_USER) != 0) {
        return -1;
    }
    /* Only the view's own tag is compared: another view's PIN does a wrong
     * PIN's work and opens nothing. */
    src = storage_view_login_as(t->cat, t->token->label, t->view->id, strlen(t->view->id), pin->buf,
                                pin->len, &login);
    if (src == STORAGE_OK) {
        (void)storage_guess_settle(t->cat, t->token->label, STORAGE_PIN_USER, false);
        rc = 0;
    } else if (src == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("that is not the PIN of view '%s'; nothing provisioned", t->view->id);
    } else {
        cli_error("cannot check the PIN: %s", storage_strerror(src));
    }
    storage_login_free(login);
    return rc;
}

/* Logs in to the view through the engine. Returns 0 or -1 (reported). */
static int provision_via_engine(const cli_target *t, const cli_pin *pin)
{
    CK_FUNCTION_LIST *p11 = engine_function_list();
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    int rc = -1;

    rv = p11->C_Initialize(NULL);
    if (rv != CKR_OK) {
        cli_error("the engine does not start: %s (try 'strata check')", layers_rv_name(rv));
        return -1;
    }
    if (!find_slot(p11, t->token->label, &slot)) {
        cli_error("the engine shows no token '%s'", t->token->label);
        goto out;
    }
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK) {
        rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin->buf, (CK_ULONG)pin->len);
    }
    if (rv != CKR_OK) {
        report(t, rv);
        goto out;
    }
    rc = 0;
out:
    if (s != CK_INVALID_HANDLE) {
        p11->C_CloseSession(s);
    }
    p11->C_Finalize(NULL);
    return rc;
}

/* Prints the view's provisioning rows. */
static void show_row(void *ctx, const storage_provision_info *info)
{
    const char *view = ctx;

    if (strcmp(info->view, view) == 0) {
        printf("  layer %-12s token %-20s serial %-16s %s\n", info->layer, info->label,
               info->serial[0] ? info->serial : "-", storage_prov_state_name(info->state));
    }
}

int cli_cmd_provision(cli_global *g, int argc, char **argv)
{
    const char *token = NULL, *view = NULL;
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    bool from_stdin = false;
    cli_target t;
    char what[256];
    int rc = cli_token_args(g, "provision", argc, argv, print_help, &token, &view, &from_stdin);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, token, view, 0, &t) != 0) {
        goto out;
    }
    if (!is_enrolled(&t)) {
        goto out;
    }
    if (!has_lazy(&t)) {
        printf("view '%s' has no layer with provision=\"lazy\": nothing to provision\n", view);
        rc = CLI_EXIT_OK;
        goto out;
    }
    if (g->catalog != NULL &&
        (t.policy->catalog_path == NULL || strcmp(g->catalog, t.policy->catalog_path) != 0)) {
        cli_error("provisioning uses the policy's catalog; --catalog names another file");
        goto out;
    }
    if (setenv("STRATA_CONF", t.policy_path, 1) != 0 ||
        cli_pin_source_open(&src, from_stdin) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the PIN of view '%s'", view);
    if (cli_pin_read(&src, what, &pin) != 0) {
        goto out;
    }
    if (check_view(&t, &pin) != 0 || provision_via_engine(&t, &pin) != 0) {
        goto out;
    }
    printf("view '%s' of token '%s' provisioned:\n", view, t.token->label);
    storage_provisions_list(t.cat, t.token->label, show_row, (void *)view);
    rc = CLI_EXIT_OK;
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    cli_target_close(&t);
    return rc;
}
