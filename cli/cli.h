/*
 * cli.h - private interface of the strata command (not installed).
 *
 * main.c parses the global options and dispatches to one cli_cmd_* per
 * command file; util.c holds what the commands share: policy and catalog
 * location, diagnostics, aligned tables and backend modules; pin.c reads
 * PINs.
 * Commands print for people on stdout and report failures on stderr as one
 * line "strata: ...". They return an exit code, never exit themselves.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "layers.h"
#include "rules.h"
#include "storage.h"

/* Exit codes (strata(1), EXIT STATUS). */
enum {
    CLI_EXIT_OK = 0,    /* done, nothing wrong */
    CLI_EXIT_FAIL = 1,  /* a problem was found or the operation failed */
    CLI_EXIT_USAGE = 2, /* bad command line */
};

/* Options every command accepts (before or after the command name). */
typedef struct {
    const char *policy;  /* --policy FILE, or NULL for the default */
    const char *catalog; /* --catalog FILE, or NULL for the policy's */
} cli_global;

/* Long option values shared by every command's option table. */
enum {
    CLI_OPT_HELP = 'h',
    CLI_OPT_POLICY = 0x100,
    CLI_OPT_CATALOG,
    CLI_OPT_FIRST_LOCAL, /* commands number their own options from here */
};

/* Commands: argv[0] is the command name. */
int cli_cmd_check(cli_global *g, int argc, char **argv);
int cli_cmd_init(cli_global *g, int argc, char **argv);
int cli_cmd_status(cli_global *g, int argc, char **argv);
int cli_cmd_enroll(cli_global *g, int argc, char **argv);
int cli_cmd_views(cli_global *g, int argc, char **argv);
int cli_cmd_ls(cli_global *g, int argc, char **argv);
int cli_cmd_explain(cli_global *g, int argc, char **argv);

/* ---------------------------------------------------------------------
 * Messages and option parsing (util.c)
 * ------------------------------------------------------------------ */

/* Prints "strata: MESSAGE" and a newline on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a usage error of cmd on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses the next option of a command with getopt_long; the first call
 * for a command must pass argv as given (it resets getopt). longopts holds
 * the command's own options (NULL-terminated, may be NULL); --help/-h,
 * --policy and --catalog are added, the last two stored into g. Reports
 * unknown options and missing arguments as usage errors. Returns the
 * option value (CLI_OPT_HELP for help), -1 at the end, or '?' after
 * reporting a usage error. */
int cli_getopt(cli_global *g, const char *cmd, int argc, char **argv,
               const struct option *longopts);

/* Parses the options of a command about one virtual token (passwd,
 * provision, unlock): --token LABEL, --view VIEW when view is non-NULL
 * (an unknown option otherwise), --pin-stdin, and no operands; --token
 * and (when asked for) --view are required. help prints the command's
 * help. Returns 0 with the options stored; 1 after printing the help;
 * CLI_EXIT_USAGE (reported). */
int cli_token_args(cli_global *g, const char *cmd, int argc, char **argv, void (*help)(void),
                   const char **token, const char **view, bool *pin_stdin);

/* ---------------------------------------------------------------------
 * Policy and catalog (util.c)
 * ------------------------------------------------------------------ */

/* The policy path to use: path when non-NULL, else g->policy, else the
 * default. malloc'd; NULL (reported) on allocation failure. */
char *cli_policy_path(const cli_global *g, const char *path);

/* Loads the policy at path, printing its errors (and its warnings too when
 * warnings is true or the policy has errors) with their hints on stderr.
 * Returns 0 with *out set, or -1 when the policy has errors. */
int cli_policy_load(const char *path, bool warnings, rules_policy **out);

/* Prints the diagnostics as "file:line:col: error|warning: message", each
 * followed by its hint line, on stderr; warnings only when asked. */
void cli_diags_print(const rules_diags *diags, bool warnings);

/* The catalog path to use: g->catalog, else the policy's, else the
 * default. malloc'd; NULL (reported) when none can be found. */
char *cli_catalog_path(const cli_global *g, const rules_policy *policy);

/* Opens the catalog at path with flags, reporting failures on stderr.
 * Returns the storage_rc; *out is NULL on failure. */
storage_rc cli_catalog_open(const char *path, unsigned flags, storage_catalog **out);

/* True when path names an existing file. */
bool cli_file_exists(const char *path);

/* The layer's token label for view (its template expanded; view may be
 * NULL for a label without "{view}") into buf. Returns 0, or -1 when it
 * does not fit. */
int cli_layer_label(const rules_layer *layer, const char *view, char *buf, size_t size);

/* "personal > group": a view's layers, top first, into buf (truncated
 * when it does not fit). */
void cli_view_layers_text(const rules_view *view, char *buf, size_t size);

/* The enrolled views of one token, as the catalog lists them. */
typedef struct {
    char (*names)[128]; /* view ids, owned */
    size_t n;
    size_t cap;
    bool failed; /* an allocation failed while listing */
} cli_enrolled;

/* Fills list with the enrolled views of token (none when cat is NULL or
 * the token has none). Returns 0, or -1 with *why set to a reason when
 * the catalog cannot tell; list is then empty but valid. */
int cli_enrolled_load(storage_catalog *cat, const char *token, cli_enrolled *list,
                      const char **why);
bool cli_enrolled_has(const cli_enrolled *list, const char *view);
void cli_enrolled_free(cli_enrolled *list);

/* ---------------------------------------------------------------------
 * Backend modules (util.c): each policy module loaded at most once
 * ------------------------------------------------------------------ */

typedef struct {
    layers_module *module; /* NULL when it failed to load or was not tried */
    bool tried;            /* a load was attempted */
    char err[256];         /* why it failed to load */
} cli_module;

typedef struct {
    const rules_policy *policy;
    cli_module *mods; /* parallel to policy->modules */
} cli_modules;

int cli_modules_init(cli_modules *mods, const rules_policy *policy);
/* The loaded module with this id, loading it on first use; NULL with
 * *why set to a reason when it cannot be loaded. */
layers_module *cli_modules_get(cli_modules *mods, const char *id, const char **why);
void cli_modules_free(cli_modules *mods);

/* ---------------------------------------------------------------------
 * Aligned tables (util.c)
 * ------------------------------------------------------------------ */

#define CLI_TABLE_MAX_COLS 8

typedef struct {
    size_t n_cols;
    size_t n_rows;
    size_t cap;
    char **cells; /* n_rows * n_cols, owned */
} cli_table;

void cli_table_init(cli_table *t, size_t n_cols);
/* Adds a row of n_cols strings (NULL prints as ""); returns 0 or -1. */
int cli_table_add(cli_table *t, ...);
/* Prints the rows, columns padded to their widest cell, each line prefixed
 * with indent spaces; the last column is not padded. */
void cli_table_print(const cli_table *t, int indent);
void cli_table_free(cli_table *t);

/* ---------------------------------------------------------------------
 * PIN input (pin.c): buffers are sodium_malloc'd and must be
 * released with cli_pin_free, which wipes them.
 * ------------------------------------------------------------------ */

#define CLI_PIN_MAX 256

typedef struct {
    char *buf;  /* sodium_malloc'd, CLI_PIN_MAX + 1 bytes */
    size_t len; /* bytes of PIN, no newline */
} cli_pin;

typedef struct {
    bool from_stdin; /* --pin-stdin: one PIN per line on stdin */
    int tty;         /* /dev/tty when prompting, else -1 */
} cli_pin_source;

/* Opens the source: stdin, or /dev/tty. Returns 0, or -1 (reported). */
int cli_pin_source_open(cli_pin_source *src, bool from_stdin);
void cli_pin_source_close(cli_pin_source *src);

/* Reads one PIN: one line from stdin, or from the terminal without echo
 * after a prompt made of what ("the PIN of layer 'group'" prompts "The PIN
 * of layer 'group': "). Returns 0 with pin filled, or -1 (reported with
 * what: end of input, too long, I/O error); pin is wiped and released on
 * failure. */
int cli_pin_read(cli_pin_source *src, const char *what, cli_pin *pin);
void cli_pin_free(cli_pin *pin);

/* ---------------------------------------------------------------------
 * A view seen through the engine, in-process (ls.c; ls and explain)
 * ------------------------------------------------------------------ */

typedef struct {
    const char *token; /* --token, or NULL for the policy's only token */
    const char *view;  /* --view (required) */
    bool pin_stdin;    /* --pin-stdin */
} cli_view_opts;

/* Parses --token, --view and --pin-stdin for cmd; help prints its help.
 * Returns 0; 1 after printing the help; CLI_EXIT_USAGE (reported). */
int cli_view_args(cli_global *g, const char *cmd, int argc, char **argv, cli_view_opts *o,
                  void (*help)(void));

typedef struct {
    CK_FUNCTION_LIST *p11;     /* the engine's, initialised; NULL when closed */
    CK_SESSION_HANDLE session; /* read-only, logged in to the view */
    bool logged_in;
    char token[33]; /* the virtual token's label */
    char view[128]; /* the view logged in to */
    char *catalog;  /* the catalog's path (malloc'd) */
} cli_view_session;

/* Loads the engine in-process with the policy, opens a session on the
 * token's slot, reads the view's PIN (terminal, or a line of stdin) and
 * logs in, checking that the PIN opens that view. Returns 0, or -1
 * (reported; everything released). */
int cli_view_session_open(cli_global *g, const char *token, const char *view, bool pin_stdin,
                          cli_view_session *vs);
/* Logs out and finalizes the engine. */
void cli_view_session_close(cli_view_session *vs);

/* "private-key", "certificate", ... or the number in hex (into buf). */
const char *cli_class_name(CK_OBJECT_CLASS cls, char *buf, size_t size);
/* Bytes as lowercase hex into buf ("-" when len is 0), truncated to fit. */
void cli_hex(const unsigned char *p, size_t len, char *buf, size_t size);

#endif /* STRATA_CLI_H */
