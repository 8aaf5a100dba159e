/*
 * main.c - the strata command: global options and dispatch to commands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "identity.h"

typedef struct {
    const char *name;
    int (*run)(cli_global *g, int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"check", cli_cmd_check, "validate a policy and summarise it"},
    {"init", cli_cmd_init, "create or migrate the catalog, assign slot IDs"},
    {"status", cli_cmd_status, "show modules, layers, tokens and views as they are now"},
    {"enroll", cli_cmd_enroll, "enrol a view's PIN and its layers' PINs"},
    {"views", cli_cmd_views, "list views and whether they are enrolled"},
    {"ls", cli_cmd_ls, "list what a view shows (asks its PIN)"},
    {"explain", cli_cmd_explain, "say which rules matched an object and why it is hidden"},
    {"passwd", cli_cmd_passwd, "change a view's PIN"},
    {"unlock", cli_cmd_unlock, "clear a token's failed-login count (SO PIN when set)"},
    {"provision", cli_cmd_provision, "provision a view's lazy tokens ahead of its first login"},
    {"forget", cli_cmd_forget, "remove a view's enrolment and sealed credentials"},
    {"tokens", cli_cmd_tokens, "list the tokens this catalog provisioned, remove its orphans"},
    {"migrate", cli_cmd_migrate, "move a view's objects off a layer (a legacy token)"},
    {"forget-layer", cli_cmd_forget_layer, "remove a retired layer's credentials and rows"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(void)
{
    size_t i;

    printf("usage: strata [--policy FILE] [--catalog FILE] COMMAND [ARGS]\n"
           "       strata --version | --help\n"
           "\n"
           "Manage Strata, the stacked PKCS#11 token.\n"
           "\n"
           "commands:\n");
    for (i = 0; i < N_COMMANDS; i++) {
        printf("  %-12s %s\n", commands[i].name, commands[i].summary);
    }
    printf("\n"
           "options:\n"
           "  --policy FILE   the policy (default $STRATA_CONF, then\n"
           "                  $XDG_CONFIG_HOME/strata/strata.xml, then /etc/strata/strata.xml)\n"
           "  --catalog FILE  the catalog (default the policy's, then\n"
           "                  $XDG_DATA_HOME/strata/catalog.db)\n"
           "  --version       print the version\n"
           "  --help          print this help\n"
           "\n"
           "'strata COMMAND --help' describes a command; see strata(1).\n");
}

static const command *find_command(const char *name)
{
    size_t i;

    for (i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

enum { OPT_VERSION = CLI_OPT_FIRST_LOCAL };

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, CLI_OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"policy", required_argument, NULL, CLI_OPT_POLICY},
        {"catalog", required_argument, NULL, CLI_OPT_CATALOG},
        {NULL, 0, NULL, 0},
    };
    cli_global g = {NULL, NULL};
    const command *cmd;
    int c;

    opterr = 0;
    /* "+": stop at the command name; what follows is the command's. */
    while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            print_help();
            return CLI_EXIT_OK;
        case OPT_VERSION:
            printf("strata %s\n", STRATA_VERSION);
            return CLI_EXIT_OK;
        case CLI_OPT_POLICY:
            g.policy = optarg;
            break;
        case CLI_OPT_CATALOG:
            g.catalog = optarg;
            break;
        case ':':
            return cli_usage_error(NULL, "option '%s' needs an argument", argv[optind - 1]);
        default:
            return cli_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        return cli_usage_error(NULL, "no command given");
    }
    cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
    }
    return cmd->run(&g, argc - optind, argv + optind);
}
