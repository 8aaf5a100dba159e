/*
 * passwd.c - strata passwd --token T --view V: changes the PIN of a view,
 * as C_SetPIN does (storage_view_passwd: every sealed value of the view is
 * re-sealed under the new PIN in one transaction, audited "passwd").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "identity.h"

static void print_help(void)
{
    printf("usage: strata passwd --token LABEL --view VIEW [--pin-stdin]\n"
           "\n"
           "Change the PIN that selects VIEW of virtual token LABEL. The current PIN is\n"
           "asked once, the new one twice, without echo. The new PIN must satisfy the\n"
           "token's length limits and must not select another view. Like C_SetPIN, every\n"
           "change costs one counted failed login, success included (the new PIN is\n"
           "compared with the other views'; see strata unlock). The view's layer credentials\n"
           "and its provisioned tokens' PINs are re-sealed under the new PIN in one\n"
           "transaction; a crash leaves either PIN working, never a mix. When the token\n"
           "has this one view enrolled, the new PIN also takes the policy's <kdf> cost\n"
           "(with several views the cost changes only by enrolling them all again).\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --view VIEW    the view whose PIN changes\n"
           "  --pin-stdin    read the current PIN, then the new PIN, one per line, from\n"
           "                 standard input\n"
           "\n"
           "exit status: 0 changed, 1 nothing changed (wrong PIN, locked, refused), 2 usage\n");
}

/* Checks that old selects view (one Argon2id, after a guess is reserved:
 * a wrong PIN stays counted as a failed login). Only the view's own tag
 * is compared (storage_view_login_as): another view's PIN does a wrong
 * PIN's work. Returns 0, or -1 (reported). */
static int check_old(cli_target *t, const cli_pin *old)
{
    storage_login *login = NULL;
    storage_rc src;
    int rc = -1;

    if (cli_target_guess(t, STORAGE_PIN_USER) != 0) {
        return -1;
    }
    src = storage_view_login_as(t->cat, t->token->label, t->view->id, strlen(t->view->id), old->buf,
                                old->len, &login);
    if (src == STORAGE_OK) {
        rc = 0;
    } else if (src == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("that is not the PIN of view '%s'; nothing changed", t->view->id);
    } else {
        cli_error("cannot check the PIN: %s", storage_strerror(src));
    }
    storage_login_free(login);
    return rc;
}

int cli_cmd_passwd(cli_global *g, int argc, char **argv)
{
    const char *token = NULL, *view = NULL;
    cli_pin_source src = {false, -1};
    cli_pin old = {NULL, 0}, new_pin = {NULL, 0};
    bool from_stdin = false;
    cli_target t;
    char what[256];
    storage_kdf kdf;
    bool kdf_applied = false;
    storage_rc rc_s;
    int rc = cli_token_args(g, "passwd", argc, argv, print_help, &token, &view, &from_stdin);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, token, view, 0, &t) != 0 || cli_pin_source_open(&src, from_stdin) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the current PIN of view '%s'", view);
    if (cli_pin_read(&src, what, &old) != 0 || check_old(&t, &old) != 0) {
        goto out;
    }
    snprintf(what, sizeof(what), "the new PIN of view '%s'", view);
    if (cli_new_pin_read(&src, t.token, what, "nothing changed", &new_pin) != 0) {
        goto out;
    }
    kdf = cli_target_kdf(&t);
    rc_s = storage_view_passwd_kdf(t.cat, t.token->label, old.buf, old.len, new_pin.buf,
                                   new_pin.len, &kdf, &kdf_applied);
    if (rc_s == STORAGE_ERR_EXISTS) {
        cli_error("the new PIN selects another view; nothing changed");
        goto out;
    }
    if (rc_s != STORAGE_OK) {
        cli_error("the PIN was not changed: %s", storage_strerror(rc_s));
        goto out;
    }
    /* The guess is kept, success included, as C_SetPIN keeps it: the new
     * PIN was compared with every other view's, and a success answers
     * "not another view's PIN" as surely as a refusal answers "is". */
    printf("PIN of view '%s' of token '%s' changed%s\n", view, t.token->label,
           kdf_applied ? "; the policy's <kdf> now applies to the token" : "");
    rc = CLI_EXIT_OK;
out:
    cli_pin_free(&old);
    cli_pin_free(&new_pin);
    cli_pin_source_close(&src);
    cli_target_close(&t);
    return rc;
}
