/*
 * world.h - an isolated SoftHSM2 world for one test.
 *
 * world_setup() makes a temporary folder with its own softhsm2.conf and
 * token directory, and points SOFTHSM2_CONF, STRATA_CONF, XDG_CONFIG_HOME
 * and XDG_DATA_HOME into it, so a test never touches the machine's own
 * tokens or configuration. Criterion runs each test in its own process, so
 * the environment it sets dies with the test. world_teardown() removes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_WORLD_H
#define STRATA_TEST_WORLD_H

#include <limits.h>
#include <stdbool.h>

typedef struct {
    char dir[PATH_MAX];          /* the temporary folder */
    char softhsm_conf[PATH_MAX]; /* <dir>/softhsm2.conf */
    char tokens[PATH_MAX];       /* <dir>/tokens */
    char policy[PATH_MAX];       /* <dir>/strata.xml (STRATA_CONF) */
    char catalog[PATH_MAX];      /* <dir>/catalog.db */
} world;

/* Path of SoftHSM2's module (libsofthsm2.so). */
const char *world_softhsm_module(void);

/* Path of the built strata-pkcs11.so (STRATA_MODULE, set by meson). */
const char *world_strata_module(void);

/* Path of the built strata command (STRATA_CLI, set by meson). */
const char *world_strata_cli(void);

/* Creates the world and sets the environment. Aborts the test on failure. */
void world_setup(world *w);

/* Removes the folder, then (in sanitizer builds) fails the test if
 * LeakSanitizer finds unreachable memory. */
void world_teardown(world *w);

/* Fails the test if LeakSanitizer (ASan builds) finds leaks now; a no-op
 * in other builds. Call at the end of tests that do not use a world. */
void world_check_leaks(void);

/* Initialises a SoftHSM2 token with softhsm2-util on the free slot.
 * Returns 0 on success. */
int world_token(world *w, const char *label, const char *so_pin, const char *user_pin);

/* Writes the policy file. In xml, "@SOFTHSM@" stands for SoftHSM2's module
 * path and "@CATALOG@" for w->catalog. Returns 0 on success. */
int world_policy(world *w, const char *xml);

/* Generates a key pair in token with pkcs11-tool: type like "EC:prime256v1"
 * or "RSA:2048", with label and hex id. Returns 0 on success. */
int world_keypair(world *w, const char *token, const char *user_pin, const char *type,
                  const char *label, const char *id_hex);

/* Runs a shell command (printf-style), output to the test's stderr.
 * Returns its exit status, or -1. */
int world_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command and captures its standard output (malloc'd,
 * NUL-terminated) into *out. Returns its exit status, or -1. */
int world_sh_out(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the strata command with args (its standard input: the line input,
 * or nothing when input is NULL), parses its standard output with
 * python3's json.load and evaluates check, a Python expression over the
 * parsed value d (kept in a file of w's folder: no shell quoting). True
 * when it parsed and check held. */
bool world_json_holds(world *w, const char *input, const char *args, const char *check);

#endif /* STRATA_TEST_WORLD_H */
