/*
 * init.c - strata init: create or migrate the catalog the policy names and
 * assign every virtual token its slot ID. Running it again changes nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void print_help(void)
{
    printf("usage: strata init\n"
           "\n"
           "Create the catalog the policy names (mode 0600, its folder 0700) or migrate\n"
           "it to the current schema, and assign each virtual token a slot ID that stays\n"
           "the same in every process. Safe to run again.\n"
           "\n"
           "exit status: 0 done, 1 the policy or the catalog has a problem, 2 usage\n");
}

/* The schema version of an existing catalog before this run, or 0 when
 * there is none or it cannot be read without writing (a migration is
 * then reported without the old version). */
static int version_before(const char *path)
{
    storage_catalog *cat = NULL;
    int version = 0;

    if (!cli_file_exists(path)) {
        return 0;
    }
    if (storage_catalog_open(path, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0) == STORAGE_OK) {
        version = storage_catalog_version(cat);
        storage_catalog_close(cat);
    }
    return version;
}

/* Assigns and prints the slot ID of every token. Returns 0, or -1
 * (reported). */
static int assign_slots(storage_catalog *cat, const rules_policy *policy)
{
    cli_table t;
    char id[32];
    size_t i;
    int rc = -1;

    cli_table_init(&t, 2);
    if (cli_table_add(&t, "TOKEN", "SLOT") != 0) {
        goto out;
    }
    for (i = 0; i < policy->n_tokens; i++) {
        const char *label = policy->tokens[i].label;
        CK_SLOT_ID slot = 0;
        storage_rc src = storage_slot_id(cat, label, &slot);

        if (src != STORAGE_OK) {
            cli_error("token '%s': cannot assign a slot ID: %s", label, storage_strerror(src));
            goto out;
        }
        snprintf(id, sizeof(id), "%lu", (unsigned long)slot);
        if (cli_table_add(&t, label, id) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 2);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

int cli_cmd_init(cli_global *g, int argc, char **argv)
{
    bool existed;
    int before, now;
    cli_target t;
    cli_opts o;
    int rc = cli_options(g, "init", argc, argv, 0, print_help, &o);

    if (rc != 0 || (rc = cli_operands_none("init", argc, argv)) != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    if (cli_target_open(g, NULL, NULL, CLI_CATALOG_NONE, &t) != 0) {
        goto out;
    }
    existed = cli_file_exists(t.catalog_path);
    before = version_before(t.catalog_path);
    if (cli_catalog_open(t.catalog_path, STORAGE_OPEN_CREATE, &t.cat) != STORAGE_OK) {
        goto out;
    }
    now = storage_catalog_version(t.cat);
    printf("catalog  %s\n", t.catalog_path);
    if (!existed) {
        printf("schema   version %d (created)\n", now);
    } else if (before == now) {
        printf("schema   version %d (up to date)\n", now);
    } else if (before > 0) {
        printf("schema   version %d (migrated from version %d)\n", now, before);
    } else {
        printf("schema   version %d (migrated)\n", now);
    }
    if (assign_slots(t.cat, t.policy) != 0) {
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    cli_target_close(&t);
    return rc;
}
