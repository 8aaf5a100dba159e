/*
 * enroll.c - strata enroll --token LABEL --view VIEW [--pin-stdin]
 * [--no-verify]: enrol a view's PIN and the backend PINs of its layers.
 *
 * The view's PIN is asked twice without echo (or read once, as the first
 * line of standard input with --pin-stdin), then each layer's backend PIN
 * in the view's layer order, top first. Each layer PIN is checked by
 * logging in to the layer's token before anything is stored, so a typo
 * never lands in the catalog. Layers provisioned lazily get a generated
 * PIN when their token is created, so none is asked for them; nor for a
 * layer whose token requires no login (no CKF_LOGIN_REQUIRED, p11-kit's
 * trust module), which is never logged in to. Every PIN
 * buffer is sodium_malloc'd and wiped on every path; no PIN is printed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

static void print_help(void)
{
    printf("usage: strata enroll --token LABEL --view VIEW [--pin-stdin] [--no-verify]\n"
           "       strata enroll --token LABEL --view VIEW --layer LAYER [--pin-stdin]\n"
           "                     [--no-verify]\n"
           "       strata enroll --token LABEL --so [--pin-stdin]\n"
           "\n"
           "Enrol the PIN that selects VIEW of virtual token LABEL, with the backend PIN\n"
           "of each of the view's layers (top first). The view's PIN is asked twice,\n"
           "without echo, on the terminal; each layer PIN is checked by logging in to\n"
           "the layer's token before anything is stored. Layers with provision=\"lazy\"\n"
           "are skipped: their PIN is generated when their token is provisioned; so are\n"
           "layers whose token requires no login (p11-kit's trust module): their objects\n"
           "are public, and Strata never logs in to them.\n"
           "Enrolling a view again replaces its PIN and credentials.\n"
           "\n"
           "With --layer, seal again the backend PIN of one layer of an enrolled view\n"
           "(after it changed on the backend: strata status calls it stale), leaving\n"
           "the view's PIN and its other layers' PINs as they are: the view's current\n"
           "PIN is asked once, then the layer's PIN, which is checked once against the\n"
           "layer's token before it is stored. This clears the layer's stale mark.\n"
           "\n"
           "With --so, set the token's security officer PIN instead (asked twice): it\n"
           "logs in as CKU_SO, is needed by strata unlock, and derives the administrator\n"
           "key that provisioned tokens' SO PINs are sealed to. It is set once; tokens\n"
           "provisioned before it was set cannot be recovered with it.\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --view VIEW    the view whose PIN this is\n"
           "  --pin-stdin    read the PINs from standard input, one per line: the view's\n"
           "                 PIN, then each non-lazy layer's PIN in the view's order\n"
           "                 (with --layer: the view's PIN, then the layer's)\n"
           "  --layer LAYER  re-enrol only this layer's PIN (with --view)\n"
           "  --so           set the SO PIN of the token (no --view)\n"
           "  --no-verify    store the layer PINs without logging in to check them\n"
           "                 (e.g. for a token that is not plugged in)\n"
           "\n"
           "exit status: 0 enrolled, 1 nothing enrolled (a PIN was refused or a part\n"
           "is missing), 2 usage\n");
}

/* One layer of the view, in the view's order. */
typedef struct {
    const rules_layer *layer;
    char label[160]; /* token label, the template expanded */
    bool lazy;       /* provision="lazy": skipped */
    bool no_login;   /* the token requires no login: skipped */
    cli_pin pin;     /* backend PIN; buf NULL until read */
} enroll_layer;

/* Parses the command line into a. Returns -1 to go on, or an exit code. */
static int parse_args(cli_global *g, int argc, char **argv, cli_opts *a)
{
    int rc = cli_options(g, "enroll", argc, argv,
                         CLI_TAKES_TOKEN | CLI_TAKES_VIEW | CLI_TAKES_PIN_STDIN |
                             CLI_TAKES_NO_VERIFY | CLI_TAKES_SO | CLI_TAKES_LAYER,
                         print_help, a);

    if (rc != 0 || (rc = cli_operands_none("enroll", argc, argv)) != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    if (a->so && a->layer != NULL) {
        return cli_usage_error("enroll", "--layer and --so do not go together");
    }
    if (a->so && (a->token == NULL || a->view != NULL)) {
        return cli_usage_error("enroll", "--so takes --token and no --view");
    }
    if (!a->so && (a->token == NULL || a->view == NULL)) {
        return cli_usage_error("enroll", "--token and --view are required");
    }
    return -1;
}

/* Fills layers (n = view->n_layers) from the policy. Returns 0, or -1
 * (reported). */
static int plan_layers(const rules_policy *policy, const rules_view *view, enroll_layer *layers)
{
    size_t i;

    for (i = 0; i < view->n_layers; i++) {
        enroll_layer *el = &layers[i];

        el->layer = rules_policy_layer(policy, view->layers[i]);
        if (el->layer == NULL) {
            cli_error("view '%s' names layer '%s', which the policy does not declare", view->id,
                      view->layers[i]);
            return -1;
        }
        el->lazy = el->layer->provision == RULES_PROVISION_LAZY;
        if (cli_layer_label(el->layer, view->id, el->label, sizeof(el->label)) != 0) {
            cli_error("layer '%s': token label too long for view '%s'", el->layer->id, view->id);
            return -1;
        }
    }
    return 0;
}

/* Whether the layer takes a PIN: neither lazy nor a token that requires
 * no login. */
static bool takes_pin(const enroll_layer *el)
{
    return !el->lazy && !el->no_login;
}

/* Marks the layers whose token says it requires no login (no
 * CKF_LOGIN_REQUIRED). A module that does not load or a token that is
 * absent is left as needing a PIN: the check (or --no-verify) decides. */
static void find_no_login(cli_modules *mods, enroll_layer *layers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enroll_layer *el = &layers[i];
        const char *why = "";
        layers_module *module;
        layers_token *tok = NULL;
        bool required = true;

        if (el->lazy || (module = cli_modules_get(mods, el->layer->module_id, &why)) == NULL) {
            continue;
        }
        if (layers_token_new(module, el->label[0] != '\0' ? el->label : NULL, el->layer->serial,
                             &tok) == CKR_OK &&
            layers_token_login_required(tok, &required) == CKR_OK) {
            el->no_login = !required;
        }
        layers_token_free(tok);
    }
}

/* Reads the PIN of every layer that takes one. Returns 0, or -1
 * (reported; the PINs read so far are freed by the caller). */
static int read_layer_pins(cli_pin_source *src, enroll_layer *layers, size_t n)
{
    char what[256];
    size_t i;

    for (i = 0; i < n; i++) {
        if (!takes_pin(&layers[i])) {
            continue;
        }
        snprintf(what, sizeof(what), "the PIN of layer '%s' (token \"%s\")", layers[i].layer->id,
                 layers[i].label);
        if (cli_pin_read(src, what, &layers[i].pin) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Logs in to the layer's token with its PIN and out again. Returns 0, or
 * -1 (reported: module not loadable, token absent, PIN refused). */
static int verify_layer(cli_modules *mods, const enroll_layer *el)
{
    const rules_layer *l = el->layer;
    layers_token *tok = NULL;
    const char *why = "";
    layers_module *module = cli_modules_get(mods, l->module_id, &why);
    CK_RV rv;
    int rc = -1;

    if (module == NULL) {
        cli_error("layer '%s': module '%s' not loadable: %s (--no-verify skips the check)", l->id,
                  l->module_id, why);
        return -1;
    }
    rv = layers_token_new(module, el->label[0] != '\0' ? el->label : NULL, l->serial, &tok);
    if (rv == CKR_OK) {
        rv = layers_token_login(tok, CKU_USER, el->pin.buf, el->pin.len);
    }
    switch (rv) {
    case CKR_OK:
        layers_token_logout(tok);
        rc = 0;
        break;
    case CKR_PIN_INCORRECT:
        cli_error("layer '%s' (token \"%s\"): PIN incorrect; nothing enrolled", l->id, el->label);
        break;
    case CKR_PIN_LOCKED:
        cli_error("layer '%s' (token \"%s\"): PIN locked; nothing enrolled", l->id, el->label);
        break;
    case CKR_TOKEN_NOT_PRESENT:
        cli_error("layer '%s': token \"%s\" not found (--no-verify skips the check)", l->id,
                  el->label);
        break;
    default:
        cli_error("layer '%s' (token \"%s\"): login failed: %s; nothing enrolled", l->id, el->label,
                  layers_rv_name(rv));
        break;
    }
    if (tok != NULL) {
        layers_token_free(tok);
    }
    return rc;
}

static int verify_layers(cli_modules *mods, const enroll_layer *layers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (takes_pin(&layers[i]) && verify_layer(mods, &layers[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Stores the enrolment. Returns 0, or -1 (reported). */
static int store(storage_catalog *cat, const rules_token *tok, const rules_view *view,
                 const cli_pin *pin, const enroll_layer *layers, size_t n)
{
    storage_cred *creds = calloc(n + 1, sizeof(*creds));
    storage_kdf kdf = {tok->kdf_ops, tok->kdf_mem};
    size_t i, n_creds = 0;
    storage_rc src;
    int rc = -1;

    if (creds == NULL) {
        cli_error("out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (takes_pin(&layers[i])) {
            creds[n_creds].layer = layers[i].layer->id;
            creds[n_creds].pin = layers[i].pin.buf;
            creds[n_creds].pin_len = layers[i].pin.len;
            n_creds++;
        }
    }
    src = storage_view_enroll(cat, tok->label, view->id, pin->buf, pin->len, creds, n_creds, &kdf);
    if (src == STORAGE_ERR_EXISTS) {
        cli_error("this PIN already selects another view of token '%s'; choose another PIN",
                  tok->label);
    } else if (src != STORAGE_OK) {
        cli_error("cannot enrol view '%s' of token '%s': %s", view->id, tok->label,
                  storage_strerror(src));
    } else {
        rc = 0;
    }
    storage_wipe(creds, (n + 1) * sizeof(*creds));
    free(creds);
    return rc;
}

static void print_result(const rules_token *tok, const rules_view *view, const enroll_layer *layers,
                         size_t n, bool verified)
{
    cli_table t;
    size_t i;

    printf("enrolled view '%s' of token '%s'\n", view->id, tok->label);
    cli_table_init(&t, 3);
    if (cli_table_add(&t, "LAYER", "TOKEN", "PIN") != 0) {
        goto out;
    }
    for (i = 0; i < n; i++) {
        const char *state = verified ? "stored, verified" : "stored, not verified";

        if (layers[i].lazy) {
            state = "none: provisioned lazily, its PIN is generated then";
        } else if (layers[i].no_login) {
            state = "none: the token requires no login";
        }
        if (cli_table_add(&t, layers[i].layer->id, layers[i].label, state) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 2);
out:
    cli_table_free(&t);
}

/* strata enroll --so: sets the token's SO PIN. Returns an exit code. */
static int enroll_so(cli_global *g, const cli_opts *a)
{
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    storage_kdf kdf;
    cli_target t;
    char what[160];
    storage_rc rc_s;
    int rc = CLI_EXIT_FAIL;

    if (cli_target_open(g, a->token, NULL, STORAGE_OPEN_CREATE, &t) != 0 ||
        cli_pin_source_open(&src, a->pin_stdin) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the new SO PIN of token '%s'", t.token->label);
    if (cli_new_pin_read(&src, t.token, what, "nothing changed", &pin) != 0) {
        goto out;
    }
    kdf = cli_target_kdf(&t);
    rc_s = storage_so_set(t.cat, t.token->label, pin.buf, pin.len, &kdf);
    if (rc_s == STORAGE_ERR_EXISTS) {
        cli_error("token '%s' has an SO PIN already; it is set once", t.token->label);
        goto out;
    }
    if (rc_s != STORAGE_OK) {
        cli_error("SO PIN not set: %s", storage_strerror(rc_s));
        goto out;
    }
    printf("SO PIN of token '%s' set\n", t.token->label);
    rc = CLI_EXIT_OK;
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    cli_target_close(&t);
    return rc;
}

/* The layer --layer names in the view, planned as enrolment plans it.
 * Returns 0, or -1 (reported). */
static int plan_one_layer(const cli_target *t, const char *id, enroll_layer *el)
{
    if (!cli_view_has_layer(t->view, id, true)) {
        return -1;
    }
    el->layer = rules_policy_layer(t->policy, id);
    if (el->layer == NULL) {
        cli_error("view '%s' names layer '%s', which the policy does not declare", t->view->id, id);
        return -1;
    }
    if (el->layer->provision == RULES_PROVISION_LAZY) {
        cli_error("layer '%s' is provisioned lazily: its PIN is generated, not enrolled", id);
        return -1;
    }
    if (cli_layer_label(el->layer, t->view->id, el->label, sizeof(el->label)) != 0) {
        cli_error("layer '%s': token label too long for view '%s'", id, t->view->id);
        return -1;
    }
    return 0;
}

/* Reads the view's current PIN and opens the view with it (one
 * Argon2id), a guess reserved first (cli_target_guess: a locked token is
 * not tried, a guess that cannot be recorded is not evaluated) and given
 * back only when the PIN opens the view. Only the view's own tag is
 * compared (storage_view_login_as), so another view's PIN does a wrong
 * PIN's work and opens nothing. Returns 0 with *login, or -1 (reported). */
static int open_view(cli_target *t, cli_pin_source *src, storage_login **login)
{
    cli_pin pin = {NULL, 0};
    char what[256];
    storage_rc src_rc;
    int rc = -1;

    snprintf(what, sizeof(what), "the PIN of view '%s' of token '%s'", t->view->id,
             t->token->label);
    if (cli_pin_read(src, what, &pin) != 0 || cli_target_guess(t, STORAGE_PIN_USER) != 0) {
        goto out;
    }
    src_rc = storage_view_login_as(t->cat, t->token->label, t->view->id, strlen(t->view->id),
                                   pin.buf, pin.len, login);
    if (src_rc == STORAGE_OK) {
        (void)storage_guess_settle(t->cat, t->token->label, STORAGE_PIN_USER, false);
        rc = 0;
    } else if (src_rc == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("that is not the PIN of view '%s'; nothing changed", t->view->id);
    } else {
        cli_error("cannot check the PIN: %s", storage_strerror(src_rc));
    }
out:
    cli_pin_free(&pin);
    if (rc != 0) {
        storage_login_free(*login);
        *login = NULL;
    }
    return rc;
}

/* strata enroll --layer: seals one layer's PIN anew. Returns an exit code. */
static int enroll_layer_only(cli_global *g, const cli_opts *a)
{
    cli_pin_source src = {false, -1};
    cli_modules mods = {NULL, NULL};
    storage_login *login = NULL;
    enroll_layer el;
    char what[256];
    cli_target t;
    storage_rc src_rc;
    int rc = CLI_EXIT_FAIL;

    memset(&el, 0, sizeof(el));
    if (cli_target_open(g, a->token, a->view, 0, &t) != 0 ||
        plan_one_layer(&t, a->layer, &el) != 0 || cli_modules_init(&mods, t.policy) != 0) {
        goto out;
    }
    find_no_login(&mods, &el, 1);
    if (el.no_login) {
        cli_error("layer '%s' requires no login: it has no PIN to enrol", el.layer->id);
        goto out;
    }
    if (cli_pin_source_open(&src, a->pin_stdin) != 0 || open_view(&t, &src, &login) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the PIN of layer '%s' (token \"%s\")", el.layer->id, el.label);
    if (cli_pin_read(&src, what, &el.pin) != 0 ||
        (!a->no_verify && verify_layers(&mods, &el, 1) != 0)) {
        goto out;
    }
    src_rc = storage_cred_reseal(t.cat, login, el.layer->id, el.pin.buf, el.pin.len);
    if (src_rc != STORAGE_OK) {
        cli_error("layer '%s' not enrolled: %s", el.layer->id, storage_strerror(src_rc));
        goto out;
    }
    printf("enrolled layer '%s' (token \"%s\") of view '%s' of token '%s': %s\n", el.layer->id,
           el.label, t.view->id, t.token->label,
           !a->no_verify ? "stored, verified" : "stored, not verified");
    rc = CLI_EXIT_OK;
out:
    cli_pin_free(&el.pin);
    storage_login_free(login);
    cli_pin_source_close(&src);
    cli_modules_free(&mods);
    cli_target_close(&t);
    return rc;
}

/* strata enroll --token T --view V: the view's PIN and its layers' PINs.
 * Returns an exit code. */
static int enroll_view(cli_global *g, const cli_opts *a)
{
    enroll_layer *layers = NULL;
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    cli_modules mods = {NULL, NULL};
    char what[256];
    cli_target t;
    size_t n = 0;
    int rc = CLI_EXIT_FAIL;

    /* The catalog is opened first: no PIN is asked for when it cannot be
     * written. */
    if (cli_target_open(g, a->token, a->view, STORAGE_OPEN_CREATE, &t) != 0) {
        goto out;
    }
    n = t.view->n_layers;
    layers = calloc(n + 1, sizeof(*layers));
    if (layers == NULL) {
        cli_error("out of memory");
        goto out;
    }
    if (plan_layers(t.policy, t.view, layers) != 0 || cli_modules_init(&mods, t.policy) != 0) {
        goto out;
    }
    find_no_login(&mods, layers, n);
    if (cli_pin_source_open(&src, a->pin_stdin) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the new PIN of view '%s' of token '%s'", t.view->id,
             t.token->label);
    if (cli_new_pin_read(&src, t.token, what, "nothing enrolled", &pin) != 0 ||
        read_layer_pins(&src, layers, n) != 0) {
        goto out;
    }
    if (!a->no_verify && verify_layers(&mods, layers, n) != 0) {
        goto out;
    }
    if (store(t.cat, t.token, t.view, &pin, layers, n) != 0) {
        goto out;
    }
    print_result(t.token, t.view, layers, n, !a->no_verify);
    rc = CLI_EXIT_OK;
out:
    cli_pin_free(&pin);
    for (size_t i = 0; layers != NULL && i < n; i++) {
        cli_pin_free(&layers[i].pin);
    }
    free(layers);
    cli_modules_free(&mods);
    cli_pin_source_close(&src);
    cli_target_close(&t);
    return rc;
}

int cli_cmd_enroll(cli_global *g, int argc, char **argv)
{
    cli_opts a;
    int rc = parse_args(g, argc, argv, &a);

    if (rc >= 0) {
        return rc;
    }
    if (a.so) {
        return enroll_so(g, &a);
    }
    if (a.layer != NULL) {
        return enroll_layer_only(g, &a);
    }
    return enroll_view(g, &a);
}
