/*
 * test_cli.c - the strata command, run as a person would run it: the built
 * binary (STRATA_CLI) in an isolated SoftHSM2 world, its output and exit
 * status checked.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "world.h"

#define SO_PIN    "12345678"
#define ALICE_PIN "alice-layer-4821"
#define TEAM_PIN  "team-layer-9157"

/* Two SoftHSM2 tokens stacked in view "work"; "anon" shows one. The KDF
 * runs at libsodium's minimum cost so the tests stay quick. */
static const char policy_two_layers[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"alice\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"team\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\" min-pin-len=\"6\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"work\" layers=\"personal group\"/>\n"
    "    <view id=\"anon\" layers=\"personal\" public=\"true\"/>\n"
    "  </token>\n"
    "</strata>\n";

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

/* Runs "strata ARGS" (printf-style) with stderr merged into the captured
 * output; returns the exit status. */
static int strata(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int strata(char **out, const char *fmt, ...)
{
    char *args = NULL;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    cr_assert(vasprintf(&args, fmt, ap) >= 0);
    va_end(ap);
    rc = world_sh_out(out, "'%s' %s 2>&1", world_strata_cli(), args);
    free(args);
    cr_assert(*out != NULL);
    return rc;
}

/* The same with input on standard input (printf %s, so no escapes). */
static int strata_in(char **out, const char *input, const char *args)
{
    int rc = world_sh_out(out, "printf '%%s' '%s' | '%s' %s 2>&1", input, world_strata_cli(), args);

    cr_assert(*out != NULL);
    return rc;
}

/* The line of text that contains both a and b, copied into buf; false
 * when there is none. */
static bool line_with(const char *text, const char *a, const char *b, char *buf, size_t size)
{
    const char *p = text;

    while (*p != '\0') {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len < size) {
            memcpy(buf, p, len);
            buf[len] = '\0';
            if (strstr(buf, a) != NULL && (b == NULL || strstr(buf, b) != NULL)) {
                return true;
            }
        }
        p += len;
        if (*p == '\n') {
            p++;
        }
    }
    return false;
}

static void two_layer_world(void)
{
    cr_assert_eq(world_token(&w, "alice", SO_PIN, ALICE_PIN), 0);
    cr_assert_eq(world_token(&w, "team", SO_PIN, TEAM_PIN), 0);
    cr_assert_eq(world_policy(&w, policy_two_layers), 0);
}

/* Asserts whether `strata views` shows view of token Strata enrolled. */
static void assert_enrolled(const char *view, bool enrolled)
{
    char *out = NULL, line[512], needle[64];

    cr_assert_eq(strata(&out, "views --token Strata"), 0, "%s", out);
    snprintf(needle, sizeof(needle), " %s ", view);
    cr_assert(line_with(out, needle, "enrolled", line, sizeof(line)), "no row for %s:\n%s", view,
              out);
    if (enrolled) {
        cr_assert(strstr(line, "not enrolled") == NULL, "%s is not enrolled:\n%s", view, out);
    } else {
        cr_assert(strstr(line, "not enrolled") != NULL, "%s is enrolled:\n%s", view, out);
    }
    free(out);
}

/* ---------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------ */

Test(cli, version_prints_version)
{
    char *out = NULL;

    cr_assert_eq(strata(&out, "--version"), 0);
    cr_assert(strncmp(out, "strata ", 7) == 0 && strchr(out, '.') != NULL, "%s", out);
    free(out);
}

Test(cli, help_every_command_exits_0)
{
    static const char *const commands[] = {"check",  "init",   "status",    "enroll",
                                           "views",  "ls",     "explain",   "passwd",
                                           "unlock", "forget", "provision", "tokens"};
    char *out = NULL, usage[64];
    size_t i;

    cr_assert_eq(strata(&out, "--help"), 0);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        cr_assert(strstr(out, commands[i]) != NULL, "--help lacks %s:\n%s", commands[i], out);
    }
    free(out);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        cr_assert_eq(strata(&out, "%s --help", commands[i]), 0, "%s --help: %s", commands[i], out);
        snprintf(usage, sizeof(usage), "usage: strata %s", commands[i]);
        cr_assert(strstr(out, usage) != NULL, "%s", out);
        free(out);
    }
}

/* The options every command parses with the shared parser (util.c,
 * cli_options): an unknown one, an option of another command and a
 * stray operand are usage errors (exit 2) that name the command. */
Test(cli, every_command_refuses_unknown_options_and_operands)
{
    static const char *const commands[] = {"init",   "status", "views",  "tokens",   "enroll",
                                           "forget", "unlock", "passwd", "provision"};
    char *out = NULL, want[64];

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        snprintf(want, sizeof(want), "strata %s: unknown option '--bogus'", commands[i]);
        cr_assert_eq(strata(&out, "%s --bogus", commands[i]), 2, "%s", out);
        cr_assert(strstr(out, want) != NULL, "%s", out);
        free(out);
        snprintf(want, sizeof(want), "strata %s: unexpected argument 'extra'", commands[i]);
        cr_assert_eq(strata(&out, "%s --token Strata --view work extra", commands[i]), 2, "%s",
                     out);
        cr_assert(strstr(out, want) != NULL || strstr(out, "unknown option") != NULL, "%s", out);
        free(out);
    }
    cr_assert_eq(strata(&out, "status --token Strata"), 2, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "unlock --so"), 2, "%s", out);
    cr_assert(strstr(out, "--token is required") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "tokens --json --remove 0123"), 2, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "enroll --token Strata --so --layer group"), 2, "%s", out);
    free(out);
}

Test(cli, main_unknown_command_exits_2)
{
    char *out = NULL;

    cr_assert_eq(strata(&out, "frobnicate"), 2);
    cr_assert(strstr(out, "strata: unknown command 'frobnicate'") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "%s", ""), 2);
    free(out);
    cr_assert_eq(strata(&out, "check --no-such-option"), 2);
    free(out);
    cr_assert_eq(strata(&out, "enroll --view work"), 2, "--token is required");
    free(out);
}

/* ---------------------------------------------------------------------
 * check
 * ------------------------------------------------------------------ */

Test(cli, check_valid_policy_summarises)
{
    char *out = NULL, line[512];

    cr_assert_eq(world_policy(&w, policy_two_layers), 0);
    cr_assert_eq(strata(&out, "check"), 0, "%s", out);
    cr_assert(strstr(out, "valid") != NULL, "%s", out);
    cr_assert(line_with(out, "soft", "present", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "group", "read-only", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "Strata", "work", line, sizeof(line)), "%s", out);
    cr_assert(strstr(line, "personal > group") != NULL, "layers top first: %s", line);
    cr_assert(line_with(out, "anon", "yes", line, sizeof(line)), "public view: %s", out);
    cr_assert(strstr(out, "token \"Strata\" shows view \"anon\" before login (public=\"true\")") !=
                  NULL,
              "%s", out);
    free(out);
}

/* check says which view each token shows before login, and why. */
Test(cli, check_prints_the_view_before_login)
{
    char xml[sizeof(policy_two_layers) + 64];
    char *out = NULL, *at;
    const char *cases[][2] = {
        {"", "shows view \"work\" before login (its first view)"},
        {" public-view=\"anon\"", "shows view \"anon\" before login (public-view)"},
        {" public-view=\"none\"", "shows nothing before login (public-view=\"none\")"},
    };

    for (size_t i = 0; i < 3; i++) {
        snprintf(xml, sizeof(xml), "%s", policy_two_layers);
        at = strstr(xml, " public=\"true\"");
        memmove(at, at + 14, strlen(at + 14) + 1);
        at = strstr(xml, " min-pin-len");
        memmove(at + strlen(cases[i][0]), at, strlen(at) + 1);
        memcpy(at, cases[i][0], strlen(cases[i][0]));
        cr_assert_eq(world_policy(&w, xml), 0);
        cr_assert_eq(strata(&out, "check"), 0, "%s", out);
        cr_assert(strstr(out, cases[i][1]) != NULL, "%s\n%s", xml, out);
        free(out);
    }
}

Test(cli, check_named_file_overrides_default)
{
    char *out = NULL, other[PATH_MAX + 32];
    FILE *f;

    snprintf(other, sizeof(other), "%s/other.xml", w.dir);
    f = fopen(other, "w");
    cr_assert(f != NULL);
    fputs("<strata version=\"1\"><module id=\"m\" path=\"/nonexistent/libm.so\"/>"
          "<layer id=\"l\" module=\"m\" token=\"t\"/>"
          "<token label=\"Other\"><view id=\"v\" layers=\"l\"/></token></strata>\n",
          f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(strata(&out, "check '%s'", other), 0, "%s", out);
    cr_assert(strstr(out, "Other") != NULL, "%s", out);
    cr_assert(strstr(out, "missing") != NULL, "module file missing: %s", out);
    free(out);
}

Test(cli, check_invalid_policy_names_file_and_line)
{
    char *out = NULL, where[PATH_MAX + 16];

    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n"
                                  "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                  "  <layer id=\"a\" module=\"nosuch\" token=\"alice\"/>\n"
                                  "  <token label=\"Strata\">\n"
                                  "    <view id=\"work\" layers=\"a\"/>\n"
                                  "  </token>\n"
                                  "</strata>\n"),
                 0);
    cr_assert_eq(strata(&out, "check"), 1, "%s", out);
    snprintf(where, sizeof(where), "%s:3", w.policy);
    cr_assert(strstr(out, where) != NULL, "no %s in:\n%s", where, out);
    cr_assert(strstr(out, "error") != NULL, "%s", out);
    cr_assert(strstr(out, "valid;") == NULL, "no summary for a bad policy:\n%s", out);
    free(out);
}

Test(cli, check_malformed_xml_exits_1)
{
    char *out = NULL;

    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n  <module id=\"x\"\n"), 0);
    cr_assert_eq(strata(&out, "check"), 1, "%s", out);
    cr_assert(strstr(out, w.policy) != NULL, "%s", out);
    free(out);
}

Test(cli, check_missing_file_exits_1)
{
    char *out = NULL;

    cr_assert_eq(strata(&out, "check /nonexistent/strata.xml"), 1, "%s", out);
    cr_assert(strstr(out, "/nonexistent/strata.xml") != NULL, "%s", out);
    free(out);
}

/* ---------------------------------------------------------------------
 * init
 * ------------------------------------------------------------------ */

Test(cli, init_creates_catalog_0600_and_is_idempotent)
{
    char *first = NULL, *second = NULL, slot1[256], slot2[256];
    struct stat st;

    cr_assert_eq(world_policy(&w, policy_two_layers), 0);
    cr_assert_eq(strata(&first, "init"), 0, "%s", first);
    cr_assert_eq(stat(w.catalog, &st), 0, "init made no catalog:\n%s", first);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
    cr_assert(strstr(first, w.catalog) != NULL, "%s", first);
    cr_assert(strstr(first, "created") != NULL, "%s", first);
    cr_assert(line_with(first, "Strata", NULL, slot1, sizeof(slot1)), "%s", first);

    cr_assert_eq(strata(&second, "init"), 0, "%s", second);
    cr_assert(strstr(second, "up to date") != NULL, "%s", second);
    cr_assert(line_with(second, "Strata", NULL, slot2, sizeof(slot2)), "%s", second);
    cr_assert_str_eq(slot1, slot2, "slot IDs changed");
    cr_assert_eq(stat(w.catalog, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    free(first);
    free(second);
}

Test(cli, init_catalog_override_and_bad_file)
{
    char *out = NULL, other[PATH_MAX + 32];
    FILE *f;

    cr_assert_eq(world_policy(&w, policy_two_layers), 0);
    snprintf(other, sizeof(other), "%s/not-a-catalog.db", w.dir);
    f = fopen(other, "w");
    cr_assert(f != NULL);
    fputs("this is not SQLite, and it must stay as it is\n", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(strata(&out, "--catalog '%s' init", other), 1, "%s", out);
    cr_assert(strncmp(out, "strata: ", 8) == 0, "%s", out);
    free(out);
    cr_assert_eq(world_sh("grep -q 'must stay as it is' '%s'", other), 0, "file damaged");
    cr_assert_eq(access(w.catalog, F_OK), -1, "the policy's catalog was used");
}

/* ---------------------------------------------------------------------
 * status
 * ------------------------------------------------------------------ */

Test(cli, status_shows_token_serial_and_unloadable_module)
{
    char *out = NULL, *serial = NULL, line[512];

    cr_assert_eq(world_token(&w, "alice", SO_PIN, ALICE_PIN), 0);
    cr_assert_eq(world_sh_out(&serial,
                              "softhsm2-util --show-slots | awk '/Serial number:/ && $3 != \"\" "
                              "{printf \"%%s\", $3; exit}'"),
                 0);
    cr_assert(strlen(serial) > 0);
    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n"
                                  "  <catalog path=\"@CATALOG@\"/>\n"
                                  "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                  "  <module id=\"gone\" path=\"/nonexistent/libgone.so\"/>\n"
                                  "  <layer id=\"personal\" module=\"soft\" token=\"alice\"/>\n"
                                  "  <layer id=\"old\" module=\"gone\" token=\"legacy\"/>\n"
                                  "  <token label=\"Strata\">\n"
                                  "    <view id=\"work\" layers=\"personal old\"/>\n"
                                  "  </token>\n"
                                  "</strata>\n"),
                 0);
    cr_assert_eq(strata(&out, "status"), 0, "%s", out);
    cr_assert(strstr(out, w.policy) != NULL, "%s", out);
    cr_assert(line_with(out, "catalog", "not initialised", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "gone", "not loadable", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "alice", serial, line, sizeof(line)), "no serial %s:\n%s", serial,
              out);
    cr_assert(line_with(out, "personal", "found", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "Strata", "work", line, sizeof(line)), "%s", out);
    cr_assert(strstr(line, "not enrolled") != NULL, "%s", line);
    free(out);

    /* After init the token has its slot ID and the schema shows. */
    cr_assert_eq(strata(&out, "init"), 0, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 0, "%s", out);
    cr_assert(line_with(out, "catalog", "schema version", line, sizeof(line)), "%s", out);
    cr_assert(line_with(out, "Strata", "work", line, sizeof(line)), "%s", out);
    cr_assert(strstr(line, "none yet") == NULL, "no slot ID after init: %s", line);
    free(out);
    free(serial);
}

Test(cli, status_invalid_policy_exits_1)
{
    char *out = NULL;

    cr_assert_eq(world_policy(&w, "<strata version=\"1\"/>\n"), 0);
    cr_assert_eq(strata(&out, "status"), 1, "%s", out);
    cr_assert(strstr(out, w.policy) != NULL, "%s", out);
    free(out);
}

/* ---------------------------------------------------------------------
 * enroll and views
 * ------------------------------------------------------------------ */

Test(cli, enroll_stdin_then_views_enrolled)
{
    char *out = NULL;

    two_layer_world();
    assert_enrolled("work", false);
    cr_assert_eq(strata_in(&out, "work-pin-1\n" ALICE_PIN "\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    cr_assert(strstr(out, "enrolled view 'work'") != NULL, "%s", out);
    cr_assert(strstr(out, "work-pin-1") == NULL && strstr(out, ALICE_PIN) == NULL &&
                  strstr(out, TEAM_PIN) == NULL,
              "a PIN was echoed:\n%s", out);
    free(out);
    assert_enrolled("work", true);
    assert_enrolled("anon", false);

    /* status tells the same, and never shows a PIN. */
    cr_assert_eq(strata(&out, "status"), 0, "%s", out);
    cr_assert(strstr(out, "work-pin-1") == NULL && strstr(out, ALICE_PIN) == NULL, "%s", out);
    free(out);
}

Test(cli, enroll_wrong_layer_pin_refused)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "work-pin-1\n" ALICE_PIN "\nnot-the-team-pin\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "strata: layer 'group'") != NULL, "%s", out);
    cr_assert(strstr(out, "PIN incorrect") != NULL, "%s", out);
    free(out);
    assert_enrolled("work", false);
}

Test(cli, enroll_no_verify_stores_without_login)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "work-pin-1\n" ALICE_PIN "\nunchecked\n",
                           "enroll --token Strata --view work --pin-stdin --no-verify"),
                 0, "%s", out);
    cr_assert(strstr(out, "not verified") != NULL, "%s", out);
    free(out);
    assert_enrolled("work", true);
}

Test(cli, enroll_same_pin_for_second_view_refused)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "shared-pin\n" ALICE_PIN "\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    free(out);
    cr_assert_eq(strata_in(&out, "shared-pin\n" ALICE_PIN "\n",
                           "enroll --token Strata --view anon --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "already selects another view") != NULL, "%s", out);
    free(out);
    assert_enrolled("anon", false);
    assert_enrolled("work", true);
}

Test(cli, enroll_short_pin_refused)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "12345\n" ALICE_PIN "\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "6 to") != NULL, "the limit is named: %s", out);
    free(out);
    assert_enrolled("work", false);
}

Test(cli, enroll_missing_input_refused)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "work-pin-1\n" ALICE_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "layer 'group'") != NULL, "%s", out);
    free(out);
    assert_enrolled("work", false);
}

Test(cli, enroll_unknown_view_refused)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "enroll --token Strata --view nosuch --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "no view 'nosuch'") != NULL, "%s", out);
    free(out);
}

/* Reads the whole file at path into a malloc'd buffer (NULL and *len 0
 * when it does not exist). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    cr_assert(size >= 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    cr_assert(buf != NULL);
    *len = fread(buf, 1, (size_t)size, f);
    fclose(f);
    return buf;
}

Test(cli, enroll_catalog_holds_no_pin)
{
    static const char *const suffixes[] = {"", "-wal", "-journal"};
    static const char *const pins[] = {"view-pin-secret-7391", ALICE_PIN, TEAM_PIN};
    char *out = NULL, path[PATH_MAX + 16];
    size_t i, j, len;

    two_layer_world();
    cr_assert_eq(strata_in(&out, "view-pin-secret-7391\n" ALICE_PIN "\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    free(out);
    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char *bytes;

        snprintf(path, sizeof(path), "%s%s", w.catalog, suffixes[i]);
        bytes = slurp(path, &len);
        if (i == 0) {
            cr_assert(bytes != NULL && len > 0, "no catalog");
        }
        for (j = 0; bytes != NULL && j < sizeof(pins) / sizeof(pins[0]); j++) {
            cr_assert(memmem(bytes, len, pins[j], strlen(pins[j])) == NULL, "%s holds a PIN", path);
        }
        free(bytes);
    }
}

Test(cli, enroll_lazy_layer_skipped)
{
    char *out = NULL, line[512];

    cr_assert_eq(world_token(&w, "team", SO_PIN, TEAM_PIN), 0);
    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n"
                                  "  <catalog path=\"@CATALOG@\"/>\n"
                                  "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                  "  <layer id=\"mine\" module=\"soft\" token=\"strata-{view}\" "
                                  "provision=\"lazy\"/>\n"
                                  "  <layer id=\"group\" module=\"soft\" token=\"team\"/>\n"
                                  "  <token label=\"Strata\">\n"
                                  "    <kdf ops=\"1\" mem=\"8192\"/>\n"
                                  "    <view id=\"work\" layers=\"mine group\"/>\n"
                                  "  </token>\n"
                                  "</strata>\n"),
                 0);
    /* Only the view PIN and the group PIN: the lazy layer asks for none. */
    cr_assert_eq(strata_in(&out, "work-pin-1\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    cr_assert(line_with(out, "mine", "lazily", line, sizeof(line)), "%s", out);
    cr_assert(strstr(line, "strata-work") != NULL, "%s", line);
    free(out);
    assert_enrolled("work", true);
}

Test(cli, views_unknown_token_exits_1)
{
    char *out = NULL;

    cr_assert_eq(world_policy(&w, policy_two_layers), 0);
    cr_assert_eq(strata(&out, "views --token Nosuch"), 1, "%s", out);
    cr_assert(strstr(out, "strata: no token 'Nosuch'") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "views"), 0, "%s", out);
    cr_assert(strstr(out, "not initialised") != NULL, "%s", out);
    free(out);
}

/* No policy anywhere (issue 14: a system-wide install without one): the
 * error names every path searched, the user's and /etc/strata/strata.xml,
 * not only the user's; so does the module's log. */
Test(cli, missing_policy_names_every_path_searched)
{
    char user[PATH_MAX + 32], log[PATH_MAX + 32], *out = NULL;

    if (access("/etc/strata/strata.xml", F_OK) == 0) {
        cr_skip_test("/etc/strata/strata.xml exists on this machine: it would be found");
    }
    unsetenv("STRATA_CONF");
    snprintf(user, sizeof(user), "%s/config/strata/strata.xml", w.dir);
    snprintf(log, sizeof(log), "%s/strata.log", w.dir);
    cr_assert_neq(strata(&out, "status"), 0);
    cr_assert(strstr(out, user) != NULL && strstr(out, "/etc/strata/strata.xml") != NULL, "%s",
              out);
    free(out);

    cr_assert_neq(world_sh("STRATA_LOG=error STRATA_LOG_FILE='%s' pkcs11-tool --module '%s' -L "
                           ">/dev/null 2>&1",
                           log, world_strata_module()),
                  0);
    cr_assert_eq(world_sh_out(&out, "cat '%s'", log), 0);
    cr_assert(strstr(out, user) != NULL && strstr(out, "/etc/strata/strata.xml") != NULL, "%s",
              out);
    free(out);
}

/* ---------------------------------------------------------------------
 * Honest status (issue 14): what needs attention, exit 1 until it is
 * dealt with; --json parsed by python3
 * ------------------------------------------------------------------ */

/* Enrols view work with WORK_PIN and both layers' PINs. */
static void enroll_work(void)
{
    char *out = NULL;

    cr_assert_eq(strata_in(&out, "work-pin-1\n" ALICE_PIN "\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    free(out);
}

/* A locked token: status said "enrolled" where views said "enrolled,
 * locked"; now both say locked, status exits 1 naming strata unlock, and
 * the JSON of both says so. */
Test(cli, status_locked_token_needs_attention)
{
    char *out = NULL;

    two_layer_world();
    enroll_work();
    cr_assert_eq(strata(&out, "status"), 0, "%s", out);
    cr_assert(strstr(out, "nothing needs attention") != NULL, "%s", out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "not d['needs_attention'] and d['attention'] == []"));
    for (int i = 0; i < 10; i++) { /* max-failed-logins defaults to 10 */
        cr_assert_eq(strata_in(&out, "wrong-pin-1\n", "ls --token Strata --view work --pin-stdin"),
                     1, "%s", out);
        free(out);
    }
    cr_assert_eq(strata(&out, "views --token Strata"), 0, "%s", out);
    cr_assert(strstr(out, "enrolled, locked") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 1, "%s", out);
    cr_assert(strstr(out, "enrolled, locked") != NULL, "%s", out);
    cr_assert(strstr(out, "run: strata unlock --token Strata") != NULL, "%s", out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "d['needs_attention'] and d['tokens'][0]['locked'] and "
                               "d['attention'][0]['kind'] == 'locked'"));
    cr_assert(world_json_holds(&w, NULL, "views --json",
                               "d['tokens'][0]['views'][0]['locked'] and "
                               "d['tokens'][0]['failed_logins'] == 10"));
    cr_assert_eq(strata(&out, "unlock --token Strata"), 0, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "unlock --token Strata"), 0, "%s", out);
    cr_assert(strstr(out, "is not locked") != NULL, "a second unlock says so:\n%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 0, "%s", out);
    free(out);
}

/* A policy <kdf> other than the one the views were enrolled with is
 * reported (exit 1); strata passwd applies it to a token with one view;
 * with two, forgetting them and enrolling again does. */
Test(cli, status_kdf_differs_then_forget_and_enroll)
{
    char *out = NULL, *xml = NULL, *p;

    two_layer_world();
    enroll_work();
    cr_assert(asprintf(&xml, "%s", policy_two_layers) > 0);
    p = strstr(xml, "ops=\"1\"");
    cr_assert(p != NULL);
    p[5] = '2'; /* ops="2" */
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(strata(&out, "status"), 1, "%s", out);
    cr_assert(strstr(out, "<kdf> (ops 2, mem 8192 bytes) differs") != NULL, "%s", out);
    cr_assert(strstr(out, "run: strata passwd --token Strata --view work") != NULL, "%s", out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "d['tokens'][0]['kdf']['differs'] and "
                               "d['tokens'][0]['kdf']['enrolled'] == {'ops': 1, 'mem': 8192} and "
                               "d['tokens'][0]['kdf']['policy'] == {'ops': 2, 'mem': 8192}"));
    /* With one view, strata passwd applies it: the new PIN takes the new
     * cost and the token's salt is renewed. */
    cr_assert_eq(strata_in(&out, "work-pin-1\nwork-pin-2\n",
                           "passwd --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    cr_assert(strstr(out, "now applies") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 0, "passwd applied the cost:\n%s", out);
    free(out);
    cr_assert_eq(strata_in(&out, "work-pin-2\n", "ls --token Strata --view work --pin-stdin"), 0,
                 "the new PIN opens the view under the new cost:\n%s", out);
    free(out);
    /* With two views, passwd keeps the cost; forget and enrol apply it. */
    p[5] = '3'; /* ops="3" */
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(strata_in(&out, "anon-pin-1\n" ALICE_PIN "\n",
                           "enroll --token Strata --view anon --pin-stdin"),
                 0, "%s", out);
    free(out);
    cr_assert_eq(strata_in(&out, "work-pin-2\nwork-pin-1\n",
                           "passwd --token Strata --view work --pin-stdin"),
                 0, "%s", out);
    cr_assert(strstr(out, "now applies") == NULL, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 1, "two views: still differs\n%s", out);
    free(out);
    cr_assert_eq(strata(&out, "forget --token Strata --view anon"), 0, "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "forget --token Strata --view work"), 0, "%s", out);
    cr_assert(strstr(out, "view 'work' of token 'Strata' forgotten") != NULL, "%s", out);
    free(out);
    assert_enrolled("work", false);
    cr_assert_eq(strata(&out, "forget --token Strata --view work"), 1, "%s", out);
    cr_assert(strstr(out, "not enrolled") != NULL, "%s", out);
    free(out);
    enroll_work();
    cr_assert_eq(strata(&out, "status"), 0, "the new cost applies:\n%s", out);
    free(out);
    free(xml);
}

/* strata forget: the forgotten view's PIN opens nothing any more. */
Test(cli, forget_view_pin_logs_in_no_more)
{
    char *out = NULL;

    two_layer_world();
    enroll_work();
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "ls --token Strata --view work --pin-stdin"), 0,
                 "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "forget --token Strata --view work"), 0, "%s", out);
    free(out);
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "ls --token Strata --view work --pin-stdin"), 1,
                 "%s", out);
    free(out);
}

/* Misspelt ids get a suggestion; provision on a view that is not
 * enrolled says so. */
Test(cli, did_you_mean_and_provision_not_enrolled)
{
    char *out = NULL;

    two_layer_world();
    cr_assert_eq(strata(&out, "views --token Strat"), 1, "%s", out);
    cr_assert(strstr(out, "did you mean 'Strata'?") != NULL, "%s", out);
    free(out);
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "enroll --token Strata --view wrok --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "no view 'wrok'") != NULL && strstr(out, "did you mean 'work'?") != NULL,
              "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "views --token Zzzzzz"), 1, "%s", out);
    cr_assert(strstr(out, "did you mean") == NULL, "nothing close:\n%s", out);
    free(out);
    enroll_work();
    cr_assert_eq(strata_in(&out, "work-pin-1\n" TEAM_PIN "\n",
                           "enroll --token Strata --view work --layer grop --pin-stdin"),
                 1, "%s", out);
    cr_assert(strstr(out, "did you mean 'group'?") != NULL, "%s", out);
    free(out);
    cr_assert_eq(
        strata_in(&out, "work-pin-2\n", "provision --token Strata --view anon --pin-stdin"), 1,
        "%s", out);
    cr_assert(strstr(out, "view 'anon' of token 'Strata' is not enrolled") != NULL, "%s", out);
    free(out);
}

/* A layer the last login left out for a reason other than a stale
 * credential (here its token is gone) needs attention until a login
 * has it again; tokens --token with a typo gets a suggestion. */
Test(cli, status_left_out_layer_needs_attention)
{
    char *out = NULL;

    two_layer_world();
    enroll_work();
    cr_assert_eq(world_sh("softhsm2-util --delete-token --token team >/dev/null 2>&1"), 0);
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "ls --token Strata --view work --pin-stdin"), 1,
                 "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 1, "%s", out);
    cr_assert(strstr(out, "view 'work': its last login left layer 'group' out") != NULL, "%s", out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "d['needs_attention'] and [(a['kind'], a['view'], a['layer']) for a "
                               "in d['attention']] == [('left-out', 'work', 'group')]"));
    cr_assert_eq(world_token(&w, "team", SO_PIN, TEAM_PIN), 0);
    cr_assert_eq(strata_in(&out, "work-pin-1\n", "ls --token Strata --view work --pin-stdin"), 0,
                 "%s", out);
    free(out);
    cr_assert_eq(strata(&out, "status"), 0, "a login had every layer again:\n%s", out);
    free(out);
    cr_assert_eq(strata(&out, "tokens --token Strat"), 1, "%s", out);
    cr_assert(strstr(out, "did you mean 'Strata'?") != NULL, "%s", out);
    free(out);
}
