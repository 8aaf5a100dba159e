/*
 * identity.c - what strata passwd, unlock, provision and enroll --so
 * share: opening one virtual token's policy and catalog, and reading a
 * new PIN twice.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity.h"

storage_kdf cli_target_kdf(const cli_target *t)
{
    storage_kdf kdf = {t->token->kdf_ops, t->token->kdf_mem};

    return kdf;
}

int cli_new_pin_read(cli_pin_source *src, const rules_token *tok, const char *what,
                     const char *outcome, cli_pin *pin)
{
    unsigned min = tok->min_pin_len, max = tok->max_pin_len;
    cli_pin again = {NULL, 0};
    int rc = -1;

    if (max == 0 || max > CLI_PIN_MAX) {
        max = CLI_PIN_MAX;
    }
    if (cli_pin_read(src, what, pin) != 0) {
        return -1;
    }
    if (!src->from_stdin) {
        if (cli_pin_read(src, "the same PIN again", &again) != 0) {
            goto out;
        }
        if (again.len != pin->len || sodium_memcmp(again.buf, pin->buf, pin->len) != 0) {
            cli_error("the two PINs differ; %s", outcome);
            goto out;
        }
    }
    if (pin->len < min || pin->len > max) {
        cli_error("the PIN must be %u to %u bytes long; %s", min, max, outcome);
        goto out;
    }
    rc = 0;
out:
    cli_pin_free(&again);
    if (rc != 0) {
        cli_pin_free(pin);
    }
    return rc;
}

int cli_target_guess(const cli_target *t, storage_pin_kind kind)
{
    const char *who = kind == STORAGE_PIN_SO ? "the SO PIN of token" : "token";
    storage_rc rc =
        storage_guess_reserve(t->cat, t->token->label, kind, t->token->max_failed_logins,
                              t->token->failed_login_recovery, NULL);

    if (rc == STORAGE_OK) {
        return 0;
    }
    if (rc == STORAGE_ERR_LOCKED) {
        cli_error("%s '%s' is locked after %u failed logins (one expires every "
                  "failed-login-recovery seconds): run 'strata unlock --token %s%s'",
                  who, t->token->label, t->token->max_failed_logins, t->token->label,
                  kind == STORAGE_PIN_SO ? " --so" : "");
    } else {
        cli_error("cannot record the PIN attempt, so the PIN is not tried: %s",
                  storage_strerror(rc));
    }
    return -1;
}

/* See identity.h. */
int cli_so_check(cli_target *t, bool from_stdin, const char *action)
{
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    storage_rc rc_s;
    char what[160];
    int rc = -1;

    /* An empty candidate tells whether one is set (never right: a set SO PIN
     * is not empty). */
    rc_s = storage_so_check(t->cat, t->token->label, "", 0);
    if (rc_s == STORAGE_ERR_NOT_FOUND) {
        return 0;
    }
    if (cli_pin_source_open(&src, from_stdin) != 0) {
        return -1;
    }
    snprintf(what, sizeof(what), "the SO PIN of token '%s'", t->token->label);
    if (cli_pin_read(&src, what, &pin) != 0) {
        goto out;
    }
    if (cli_target_guess(t, STORAGE_PIN_SO) != 0) {
        goto out;
    }
    rc_s = storage_so_check(t->cat, t->token->label, pin.buf, pin.len);
    if (rc_s == STORAGE_OK) {
        (void)storage_guess_settle(t->cat, t->token->label, STORAGE_PIN_SO, false);
        rc = 0;
    } else if (rc_s == STORAGE_ERR_PIN_INCORRECT || rc_s == STORAGE_ERR_ARGS) {
        storage_audit(t->cat, action, t->token->label, "refused: wrong SO PIN");
        cli_error("wrong SO PIN; nothing changed on token '%s'", t->token->label);
    } else {
        cli_error("cannot check the SO PIN: %s", storage_strerror(rc_s));
    }
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    return rc;
}
