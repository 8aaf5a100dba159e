/*
 * unlock.c - strata unlock --token T: the administrator clears the failed
 * login counter of a virtual token's user PINs (storage_pin_unlock,
 * audited "unlock"). When the token has an SO PIN (strata enroll --so), it
 * is asked for and checked first: unlocking is the security officer's act.
 * That check is a guess like any other (storage_guess_reserve on the SO
 * counter): a locked SO PIN is not tried.
 *
 * strata unlock --token T --so clears the SO PIN's own counter (audited
 * "unlock-so"). It asks for no PIN: the SO PIN is what is locked, and the
 * authority is write access to the catalog file, which anyone who could
 * run it already has (docs/security.md).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>

#include "identity.h"

static void print_help(void)
{
    printf("usage: strata unlock --token LABEL [--pin-stdin] [--so]\n"
           "\n"
           "Clear the failed-login counter of virtual token LABEL, so that its views\n"
           "log in again after max-failed-logins wrong PINs (CKR_PIN_LOCKED). When the\n"
           "token has an SO PIN (strata enroll --so), it is asked for first, without\n"
           "echo, and the counter is cleared only if it is right (a wrong one counts\n"
           "as a failed SO login). With --so, clear the SO PIN's own counter instead;\n"
           "no PIN is asked. Every unlock is written to the catalog's audit trail.\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --pin-stdin    read the SO PIN from standard input\n"
           "  --so           unlock the SO PIN after max-failed-logins wrong SO PINs\n"
           "\n"
           "A token that has no failed login is left alone (and says so).\n"
           "\n"
           "exit status: 0 unlocked or not locked, 1 not unlocked (wrong SO PIN, catalog\n"
           "problem), 2 usage\n");
}

int cli_cmd_unlock(cli_global *g, int argc, char **argv)
{
    unsigned cleared = 0, before = 0;
    storage_pin_kind kind;
    cli_target t;
    storage_rc rc_s;
    cli_opts o;
    int rc = cli_options(g, "unlock", argc, argv,
                         CLI_TAKES_TOKEN | CLI_TAKES_PIN_STDIN | CLI_TAKES_SO, print_help, &o);
    const char *token = o.token;
    bool from_stdin = o.pin_stdin, so = o.so;

    if (rc != 0 || (rc = cli_operands_none("unlock", argc, argv)) != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    if (token == NULL) {
        return cli_usage_error("unlock", "--token is required");
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, token, NULL, 0, &t) != 0) {
        goto out;
    }
    kind = so ? STORAGE_PIN_SO : STORAGE_PIN_USER;
    if (!so && cli_so_check(&t, from_stdin, "unlock") != 0) {
        goto out;
    }
    if (storage_pin_failures(t.cat, t.token->label, kind, &before) == STORAGE_OK && before == 0) {
        printf("token '%s'%s is not locked: no failed login to clear\n", t.token->label,
               so ? ": the SO PIN" : "");
        rc = CLI_EXIT_OK;
        goto out;
    }
    rc_s = storage_pin_unlock(t.cat, t.token->label, kind, &cleared);
    if (rc_s != STORAGE_OK) {
        cli_error("token '%s' not unlocked: %s", t.token->label, storage_strerror(rc_s));
        goto out;
    }
    printf("token '%s'%s unlocked (%u failed %slogin%s cleared%s)\n", t.token->label,
           so ? ": SO PIN" : "", cleared, so ? "SO " : "", cleared == 1 ? "" : "s",
           t.token->max_failed_logins == 0 || cleared < t.token->max_failed_logins
               ? "; it was not locked"
               : "");
    rc = CLI_EXIT_OK;
out:
    cli_target_close(&t);
    return rc;
}
