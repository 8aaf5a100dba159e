/*
 * tokens.c - strata tokens [--token LABEL] [--json] [--remove SERIAL]: the
 * backend tokens this catalog provisioned for lazy layers, as the backends
 * show them now, and the removal of an orphan (or of the token of a view
 * the policy no longer names).
 *
 * Which tokens are the catalog's, and what each one is: provisioned.c.
 *
 * Removing a token wipes it (C_InitToken with the row's SO PIN, which
 * the administrator's key recovers: the virtual token's SO PIN is asked)
 * and relabels it "strata-removed", so that it holds nothing and no
 * catalog takes it for its own; PKCS#11 cannot delete a token, so the
 * empty token stays until the backend's own tool deletes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity.h"

#define REMOVED_LABEL "strata-removed"

static void print_help(void)
{
    printf("usage: strata tokens [--token LABEL] [--json]\n"
           "       strata tokens [--token LABEL] --remove SERIAL [--pin-stdin]\n"
           "\n"
           "List the backend tokens this catalog provisioned for lazy layers, per\n"
           "virtual token, view and layer, as the backends show them now: ready (the\n"
           "view's token), pending (not made yet, or half made), missing (the catalog\n"
           "names a token the backend does not show), orphaned (a token with this\n"
           "catalog's mark that is not the view's: a crash inside the backend left it),\n"
           "or foreign (the view's token, by serial, now carries another label: it was\n"
           "initialised again outside this catalog). Tokens of other catalogs (other\n"
           "users sharing the backend) are never listed otherwise. A token whose view\n"
           "is no longer in the policy says so.\n"
           "\n"
           "--remove SERIAL wipes the orphan with that serial, or the token of a view the\n"
           "policy no longer names: the virtual token's SO PIN is asked (the\n"
           "administrator's key recovers the SO PIN the token was made with), its\n"
           "objects are destroyed and it is relabelled '" REMOVED_LABEL "'.\n"
           "A view's own token, or a token this catalog did not make, is never removed.\n"
           "\n"
           "options:\n"
           "  --token LABEL    only this virtual token\n"
           "  --json           print JSON instead (its shape: strata(1), JSON OUTPUT)\n"
           "  --remove SERIAL  wipe this catalog's orphan with this serial\n"
           "  --pin-stdin      read the SO PIN from standard input\n"
           "\n"
           "exit status: 0 listed (or removed), 1 not removed or a problem, 2 usage\n");
}

static int print_listing(const cli_prov_list *l)
{
    char state[256];
    cli_table t;
    int rc = -1;

    if (l->n == 0) {
        printf("no provisioned tokens\n");
        return 0;
    }
    cli_table_init(&t, 6);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYER", "BACKEND TOKEN", "SERIAL", "STATE") != 0) {
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        const cli_prov_item *it = &l->items[i];
        if (cli_table_add(&t, it->token->label, it->row.view, it->row.layer,
                          it->label[0] != '\0' ? it->label : it->row.label,
                          it->serial[0] != '\0' ? it->serial : "-",
                          cli_prov_text(it, state, sizeof(state))) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 0);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

/* The listing as JSON (strata(1), JSON OUTPUT). */
static void print_json(const cli_prov_list *l, const char *catalog)
{
    char state[256];
    cli_json j;

    cli_json_init(&j, stdout);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "catalog", catalog);
    cli_json_open(&j, "tokens", '[');
    for (size_t i = 0; i < l->n; i++) {
        const cli_prov_item *it = &l->items[i];

        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "token", it->token->label);
        cli_json_str(&j, "view", it->row.view);
        cli_json_str(&j, "layer", it->row.layer);
        cli_json_str(&j, "label", it->label[0] != '\0' ? it->label : it->row.label);
        cli_json_str(&j, "serial", it->serial[0] != '\0' ? it->serial : NULL);
        cli_json_str(&j, "state", cli_prov_kind_name(it->kind));
        cli_json_str(&j, "row_state", storage_prov_state_name(it->row.state));
        cli_json_bool(&j, "view_in_policy", it->view_in_policy);
        cli_json_bool(&j, "removable", cli_prov_removable(it));
        cli_json_str(&j, "attention", cli_prov_attention(it));
        cli_json_str(&j, "message", cli_prov_text(it, state, sizeof(state)));
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_close(&j, '}');
}

/* ---------------------------------------------------------------------
 * Removal
 * ------------------------------------------------------------------ */

/* The one removable token with serial (an orphan, or the token of a view
 * the policy no longer names), or NULL (reported: a view's token, another
 * catalog's, several tokens with that serial). */
static const cli_prov_item *pick_removable(const cli_prov_list *l, const char *serial)
{
    const cli_prov_item *found = NULL;
    size_t removable = 0, live = 0;

    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].serial, serial) != 0) {
            continue;
        }
        if (cli_prov_removable(&l->items[i])) {
            found = &l->items[i];
            removable++;
        } else {
            live++;
        }
    }
    if (removable == 1 && live == 0) {
        return found;
    }
    if (removable + live > 1) {
        cli_error("serial %s names %zu tokens of this catalog (the backend gives several tokens "
                  "one serial): not removed",
                  serial, removable + live);
    } else if (live == 1) {
        cli_error("serial %s is a view's own token, not an orphan: not removed", serial);
    } else {
        cli_error("no orphan of this catalog has serial %s (a token without this catalog's "
                  "mark is never removed): not removed",
                  serial);
    }
    return NULL;
}

/* Recovers the SO PIN the token's row was provisioned with into so
 * (STORAGE_GENERATED_PIN_LEN bytes at least), asking the virtual token's
 * SO PIN: a guess on the SO counter, reserved before Argon2id runs (a
 * locked SO PIN is not tried, a guess that cannot be recorded is not
 * evaluated) and given back unless the PIN proves wrong. Returns 0, or -1
 * (reported). */
static int recover_so(storage_catalog *cat, const cli_prov_item *it, bool pin_stdin, char *so,
                      size_t cap, size_t *so_len)
{
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    cli_target t = {.token = it->token, .cat = cat};
    char what[160];
    storage_rc src_rc;
    int rc = -1;

    if (storage_so_check(cat, it->token->label, "", 0) == STORAGE_ERR_NOT_FOUND) {
        cli_error("token '%s' has no SO PIN (strata enroll --so): the orphan's SO PIN cannot be "
                  "recovered; not removed",
                  it->token->label);
        return -1;
    }
    if (cli_pin_source_open(&src, pin_stdin) != 0) {
        return -1;
    }
    snprintf(what, sizeof(what), "the SO PIN of token '%s'", it->token->label);
    if (cli_pin_read(&src, what, &pin) != 0 || cli_target_guess(&t, STORAGE_PIN_SO) != 0) {
        goto out;
    }
    src_rc = storage_so_open(cat, it->token->label, pin.buf, pin.len, it->row.view, it->row.layer,
                             so, cap, so_len);
    if (src_rc != STORAGE_ERR_PIN_INCORRECT) {
        (void)storage_guess_settle(cat, it->token->label, STORAGE_PIN_SO, false);
    }
    if (src_rc == STORAGE_OK) {
        rc = 0;
    } else if (src_rc == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("wrong SO PIN; not removed");
    } else if (src_rc == STORAGE_ERR_CRYPTO) {
        cli_error("view '%s' was provisioned before token '%s' had an SO PIN: its SO PIN was "
                  "never sealed to the administrator; delete serial %s with the backend's own "
                  "tool (SoftHSM2: softhsm2-util --delete-token --serial %s)",
                  it->row.view, it->token->label, it->serial, it->serial);
    } else {
        cli_error("cannot recover the SO PIN: %s", storage_strerror(src_rc));
    }
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    return rc;
}

/* Wipes the token it with so and relabels it. Returns 0, or -1
 * (reported). */
static int wipe(cli_modules *mods, const cli_prov_item *it, const char *so, size_t so_len)
{
    const rules_layer *l = rules_policy_layer(mods->policy, it->row.layer);
    const char *why = "";
    layers_module *module = cli_modules_get(mods, l->module_id, &why);
    layers_token *tok = NULL;
    char user[STORAGE_GENERATED_PIN_LEN], serial[17], err[256] = "";
    CK_RV rv = layers_token_new(module, it->row.label, it->serial, &tok);

    randombytes_buf(user, sizeof(user)); /* a user PIN nobody keeps */
    for (size_t i = 0; i < sizeof(user); i++) {
        user[i] = (char)('a' + (unsigned char)user[i] % 26);
    }
    if (rv == CKR_OK) {
        rv = layers_token_reinit(tok, REMOVED_LABEL, so, so_len, user, sizeof(user), serial, err,
                                 sizeof(err));
    }
    sodium_memzero(user, sizeof(user));
    layers_token_free(tok);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
        cli_error("serial %s: its SO PIN is not the one its view was provisioned with (a crash "
                  "inside the backend's C_InitToken left it before its SO PIN was written, so it "
                  "holds no objects): delete it with the backend's own tool (SoftHSM2: "
                  "softhsm2-util --delete-token --serial %s); not removed",
                  it->serial, it->serial);
        return -1;
    }
    if (rv != CKR_OK) {
        cli_error("serial %s: wiping failed: %s%s%s; not removed", it->serial, layers_rv_name(rv),
                  err[0] != '\0' ? ": " : "", err);
        return -1;
    }
    return 0;
}

/* Removes the orphan (or viewless token) with serial; a viewless token's
 * catalog row goes with it. Returns CLI_EXIT_OK or CLI_EXIT_FAIL
 * (reported). */
static int remove_token(cli_modules *mods, storage_catalog *cat, const cli_prov_list *l,
                        const cli_opts *o)
{
    const cli_prov_item *it = pick_removable(l, o->remove);
    char *so = sodium_init() >= 0 ? sodium_malloc(CLI_PIN_MAX) : NULL;
    char subject[512];
    size_t so_len = 0;
    int rc = CLI_EXIT_FAIL;

    if (it == NULL || so == NULL ||
        recover_so(cat, it, o->pin_stdin, so, CLI_PIN_MAX, &so_len) != 0) {
        goto out;
    }
    snprintf(subject, sizeof(subject), "%s/%s/%s serial %s", it->token->label, it->row.view,
             it->row.layer, it->serial);
    if (wipe(mods, it, so, so_len) != 0) {
        storage_audit(cat, "token-remove", subject, "failed");
        goto out;
    }
    storage_audit(cat, "token-remove", subject, "ok (wiped)");
    if (it->kind != CLI_PROV_ORPHAN && storage_provision_remove(cat, it->token->label, it->row.view,
                                                                it->row.layer) != STORAGE_OK) {
        cli_error("serial %s wiped, but its catalog row stays", it->serial);
    }
    printf("%s %s (serial %s) wiped: its objects are destroyed and it is labelled '%s'.\n"
           "PKCS#11 cannot delete a token: delete it with the backend's own tool (SoftHSM2:\n"
           "softhsm2-util --delete-token --serial %s).\n",
           it->kind == CLI_PROV_ORPHAN ? "orphan" : "token", it->row.label, it->serial,
           REMOVED_LABEL, it->serial);
    rc = CLI_EXIT_OK;
out:
    if (so != NULL) {
        sodium_memzero(so, CLI_PIN_MAX);
        sodium_free(so);
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------ */

/* Parses the options. Returns 0; 1 after printing the help;
 * CLI_EXIT_USAGE (reported). */
static int parse(cli_global *g, int argc, char **argv, cli_opts *o)
{
    int rc = cli_options(g, "tokens", argc, argv,
                         CLI_TAKES_TOKEN | CLI_TAKES_REMOVE | CLI_TAKES_PIN_STDIN | CLI_TAKES_JSON,
                         print_help, o);

    if (rc != 0 || (rc = cli_operands_none("tokens", argc, argv)) != 0) {
        return rc;
    }
    if (o->pin_stdin && o->remove == NULL) {
        return cli_usage_error("tokens", "--pin-stdin goes with --remove");
    }
    if (o->json && o->remove != NULL) {
        return cli_usage_error("tokens", "--json and --remove do not go together");
    }
    return 0;
}

/* Lists the provisioned tokens of every token asked for into out.
 * Returns 0 or -1 (reported). */
static int collect(const rules_policy *policy, const char *only, cli_modules *mods,
                   storage_catalog *cat, cli_prov_list *out)
{
    for (size_t i = 0; i < policy->n_tokens; i++) {
        if (only != NULL && strcmp(only, policy->tokens[i].label) != 0) {
            continue;
        }
        if (cli_prov_list_load(mods, cat, &policy->tokens[i], out) != 0) {
            return -1;
        }
    }
    return 0;
}

int cli_cmd_tokens(cli_global *g, int argc, char **argv)
{
    cli_opts o;
    cli_target t;
    cli_modules mods = {NULL, NULL};
    cli_prov_list l = {NULL, 0, false};
    int rc = parse(g, argc, argv, &o);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, o.token, NULL, o.remove != NULL ? 0 : STORAGE_OPEN_READ_ONLY, &t) != 0 ||
        cli_modules_init(&mods, t.policy) != 0 ||
        collect(t.policy, o.token, &mods, t.cat, &l) != 0) {
        goto out;
    }
    if (o.remove != NULL) {
        rc = remove_token(&mods, t.cat, &l, &o);
    } else if (o.json) {
        print_json(&l, t.catalog_path);
        rc = CLI_EXIT_OK;
    } else {
        rc = print_listing(&l) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
out:
    cli_prov_list_free(&l);
    cli_modules_free(&mods);
    cli_target_close(&t);
    return rc;
}
