/*
 * main.c - the strata command: dispatch to subcommands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("strata %s\n", STRATA_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: strata COMMAND [ARGS]\n");
    return 2;
}
