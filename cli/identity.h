/*
 * identity.h - the identity lifecycle commands of the strata command
 * (passwd, unlock, provision) and what they share (identity.c). Private
 * to cli/, beside cli.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_CLI_IDENTITY_H
#define STRATA_CLI_IDENTITY_H

#include "cli.h"

int cli_cmd_passwd(cli_global *g, int argc, char **argv);
int cli_cmd_unlock(cli_global *g, int argc, char **argv);
int cli_cmd_provision(cli_global *g, int argc, char **argv);
int cli_cmd_forget(cli_global *g, int argc, char **argv);
int cli_cmd_forget_layer(cli_global *g, int argc, char **argv);

/* Reserves one guess of kind on t's token before a PIN given to the
 * command is checked (storage_guess_reserve, as the module does), so that
 * a locked PIN is not tried and a guess that cannot be recorded is not
 * evaluated. Returns 0, or -1 (reported). The caller gives the guess back
 * with storage_guess_settle when the PIN proves right. */
int cli_target_guess(const cli_target *t, storage_pin_kind kind);

/* The token's Argon2id cost from the policy, for storage calls. */
storage_kdf cli_target_kdf(const cli_target *t);

/* Reads a new PIN, twice on a terminal (what names it), and checks the
 * token's length limits; a refusal ends with outcome ("nothing
 * changed"). Returns 0 with pin filled, or -1 (reported). */
int cli_new_pin_read(cli_pin_source *src, const rules_token *tok, const char *what,
                     const char *outcome, cli_pin *pin);

/* When t's token has an SO PIN, asks for it (terminal, or a line of
 * standard input) and checks it; a wrong one is audited as action
 * "refused". Returns 0 (right, or no SO PIN set), or -1 (reported). */
int cli_so_check(cli_target *t, bool from_stdin, const char *action);

#endif /* STRATA_CLI_IDENTITY_H */
