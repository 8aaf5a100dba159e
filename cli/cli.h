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
#include <stdio.h>

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
int cli_cmd_tokens(cli_global *g, int argc, char **argv);
int cli_cmd_migrate(cli_global *g, int argc, char **argv);

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

/* The options commands share: a command takes those its mask names. */
enum {
    CLI_TAKES_TOKEN = 1 << 9,      /* --token LABEL (values above CLI_OPT_FIRST_LOCAL) */
    CLI_TAKES_VIEW = 1 << 10,      /* --view VIEW */
    CLI_TAKES_LAYER = 1 << 11,     /* --layer LAYER */
    CLI_TAKES_REMOVE = 1 << 12,    /* --remove SERIAL */
    CLI_TAKES_PIN_STDIN = 1 << 13, /* --pin-stdin */
    CLI_TAKES_JSON = 1 << 14,      /* --json */
    CLI_TAKES_SO = 1 << 15,        /* --so */
    CLI_TAKES_NO_VERIFY = 1 << 16, /* --no-verify */
};

typedef struct {
    const char *token;  /* --token, or NULL */
    const char *view;   /* --view, or NULL */
    const char *layer;  /* --layer, or NULL */
    const char *remove; /* --remove, or NULL */
    bool pin_stdin;
    bool json;
    bool so;
    bool no_verify;
} cli_opts;

/* Parses the options of cmd that takes (CLI_TAKES_* bits) names, and the
 * global ones, into o (cleared first); help prints the command's help.
 * Leaves the operands from optind. Returns 0; 1 after printing the help;
 * CLI_EXIT_USAGE (reported). */
int cli_options(cli_global *g, const char *cmd, int argc, char **argv, unsigned takes,
                void (*help)(void), cli_opts *o);

/* 0 when no operand follows the options, else CLI_EXIT_USAGE (reported). */
int cli_operands_none(const char *cmd, int argc, char **argv);

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

/* What a command has open: the policy, maybe one virtual token and one
 * of its views, and the catalog (util.c). */
typedef struct {
    rules_policy *policy;
    char *policy_path;
    char *catalog_path;
    const rules_token *token;
    const rules_view *view; /* NULL when no view was asked for */
    storage_catalog *cat;   /* NULL when not opened */
} cli_target;

/* Flags of cli_target_open beside the STORAGE_OPEN_* ones. */
enum {
    CLI_CATALOG_OPTIONAL = 1u << 8, /* no catalog file yet: t->cat stays NULL */
    CLI_CATALOG_NONE = 1u << 9,     /* only its path: the caller opens it */
};

/* Loads the policy, finds token (when non-NULL: t->token stays NULL
 * otherwise) and view (when non-NULL, with a token) and opens the catalog
 * with flags (0: read-write, no create; the catalog must exist, unless
 * CLI_CATALOG_OPTIONAL). Returns 0, or -1 (reported; t->policy is NULL
 * when the policy is invalid; cli_target_close still needed). */
int cli_target_open(cli_global *g, const char *token, const char *view, unsigned flags,
                    cli_target *t);
void cli_target_close(cli_target *t);

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
/* The slots of module id (loaded on first use) into *slots (malloc'd, n
 * of them). Returns 0, or -1 with *why set when the module cannot be
 * loaded or asked (*slots is then NULL). */
int cli_modules_slots(cli_modules *mods, const char *id, layers_slot_info **slots, size_t *n,
                      const char **why);
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
    bool json;         /* --json (ls only) */
} cli_view_opts;

/* Parses --token, --view and --pin-stdin for cmd (and --json for ls);
 * help prints its help.
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

/* ---------------------------------------------------------------------
 * JSON output (json.c): --json of status, views and ls; the shapes are
 * documented in strata(1) and kept stable (fields are only ever added)
 * ------------------------------------------------------------------ */

#define CLI_JSON_DEPTH 16

typedef struct {
    FILE *out;
    int depth;
    bool first[CLI_JSON_DEPTH]; /* no value yet at this depth: no comma before the next */
} cli_json;

void cli_json_init(cli_json *j, FILE *out);
/* Opens an object (open '{') or an array ('['): as member key of the
 * enclosing object, or with key NULL inside an array or at the top. */
void cli_json_open(cli_json *j, const char *key, char open);
/* Closes it ('}' or ']'); the outermost close ends the line. */
void cli_json_close(cli_json *j, char close);
/* A string (NULL prints null), an integer, a boolean; key as above. */
void cli_json_str(cli_json *j, const char *key, const char *value);
void cli_json_int(cli_json *j, const char *key, long long value);
void cli_json_bool(cli_json *j, const char *key, bool value);

/* ---------------------------------------------------------------------
 * The tokens this catalog provisioned for lazy layers, as the backends
 * show them now (provisioned.c; strata tokens and strata status)
 * ------------------------------------------------------------------ */

typedef enum {
    CLI_PROV_READY,   /* the row's token, ready */
    CLI_PROV_PENDING, /* the row has no token yet, or a half-made one */
    CLI_PROV_MISSING, /* the row names a token the backend does not show */
    CLI_PROV_ORPHAN,  /* marked as this catalog's, not the row's token */
    CLI_PROV_FOREIGN, /* the row's serial now carries another label */
    CLI_PROV_UNKNOWN, /* the module cannot be asked, or the layer is gone */
} cli_prov_kind;

/* One line of the listing. */
typedef struct {
    const rules_token *token;
    storage_provision_info row; /* the catalog's row */
    char serial[17];            /* the backend token's serial ("" for none) */
    char label[33];             /* its label as the backend shows it ("" for none) */
    cli_prov_kind kind;
    bool view_in_policy; /* the row's view is still in the policy */
    char note[160];      /* why CLI_PROV_UNKNOWN */
} cli_prov_item;

typedef struct {
    cli_prov_item *items; /* malloc'd */
    size_t n;
    bool failed; /* an allocation failed */
} cli_prov_list;

/* Appends the lines of tok's provisioning rows to out: each row's token
 * (or why there is none) and the orphans beside it; a token of another
 * catalog is never listed, but for the one now at a row's serial
 * (foreign). Nothing when cat is NULL. Returns 0, or -1 (reported). */
int cli_prov_list_load(cli_modules *mods, storage_catalog *cat, const rules_token *tok,
                       cli_prov_list *out);
void cli_prov_list_free(cli_prov_list *l);
/* "ready", "pending", "missing", "orphaned", "foreign", "unknown". */
const char *cli_prov_kind_name(cli_prov_kind kind);
/* The state for people ("ready (the view's token)"), built in buf when
 * it needs to be. */
const char *cli_prov_text(const cli_prov_item *item, char *buf, size_t size);
/* Whether strata tokens --remove may wipe it: an orphan, or a token
 * whose view is no longer in the policy. */
bool cli_prov_removable(const cli_prov_item *item);
/* The attention kind it calls for ("orphaned-token", "foreign-token",
 * "missing-token", "pending-token", "viewless-token"), or NULL. */
const char *cli_prov_attention(const cli_prov_item *item);

/* ---------------------------------------------------------------------
 * What the catalog says about a virtual token without a PIN
 * (attention.c; strata status and strata views)
 * ------------------------------------------------------------------ */

typedef struct {
    const rules_token *token;
    storage_view_info *views; /* enrolled views */
    size_t n_views;
    storage_cred_info *creds; /* layer credentials, with their stale marks */
    size_t n_creds;
    storage_left_out *left; /* layers each view's last login left out */
    size_t n_left;
    unsigned failed_logins;   /* expired failures taken off */
    bool locked;              /* failed_logins reached max-failed-logins */
    int64_t unlocks_at;       /* locked: Unix time the next guess is allowed; 0: never
                                 (failed-login-recovery="0") */
    bool clock_behind;        /* the clock reads earlier than the counter's stamp */
    bool kdf_known;           /* the token has enrolled views: enrolled_kdf is set */
    storage_kdf enrolled_kdf; /* the cost its views were enrolled with */
    storage_kdf policy_kdf;   /* the policy's, defaults resolved */
    bool kdf_differs;
    cli_prov_list provisioned; /* its provisioned tokens (cli_facts_load_provisioned) */
    bool failed;               /* an allocation failed while loading */
} cli_token_facts;

/* Loads the facts of tok (none when cat is NULL). Returns 0, or -1 with
 * *why set (f is then empty). */
int cli_facts_load(storage_catalog *cat, const rules_token *tok, cli_token_facts *f,
                   const char **why);
void cli_facts_free(cli_token_facts *f);
/* The facts of every token of policy (only of only when non-NULL; the
 * others stay empty, token NULL), with their provisioned tokens when mods
 * is non-NULL: policy->n_tokens entries, freed with cli_facts_free_all.
 * NULL (reported) when the catalog cannot tell. */
cli_token_facts *cli_facts_load_all(const rules_policy *policy, storage_catalog *cat,
                                    const rules_token *only, cli_modules *mods);
void cli_facts_free_all(const rules_policy *policy, cli_token_facts *facts);
/* Adds to f what the backends show of its provisioned tokens (which asks
 * the modules), so that cli_facts_attention reports orphaned, foreign,
 * missing, pending and viewless tokens. Returns 0, or -1 (reported). */
int cli_facts_load_provisioned(cli_token_facts *f, cli_modules *mods, storage_catalog *cat);
/* The catalog's row of an enrolled view, or NULL. */
const storage_view_info *cli_facts_view(const cli_token_facts *f, const char *view);
/* The stale credentials of view: up to max into out; returns how many. */
size_t cli_facts_stale(const cli_token_facts *f, const char *view, const storage_cred_info **out,
                       size_t max);

/* One thing an administrator must act on. */
typedef struct {
    const char *kind; /* "stale-credential", "locked", "left-out", "kdf", or a
                         provisioned token's (cli_prov_attention) */
    char view[128];   /* "" when about the whole token */
    char layer[128];  /* "" when about no one layer */
    char message[512];
    char run[512]; /* what to run */
} cli_attention;

/* Calls fn (may be NULL) for each thing about f's token an administrator
 * must act on; returns how many there are. */
size_t cli_facts_attention(const cli_token_facts *f,
                           void (*fn)(void *ctx, const cli_attention *item), void *ctx);

/* Writes the members of tok's JSON object into the object j has open
 * (label, locked, failed_logins, max_failed_logins, views: strata(1)). */
void cli_facts_json(cli_json *j, const cli_token_facts *f);

/* The state of view id as strata views and status print it: "not
 * enrolled", or "enrolled" with ", provisioned (N)", ", provisioning
 * (N)", ", locked", ", layer 'L' stale" as they apply. */
void cli_facts_view_state(const cli_token_facts *f, const char *id, char *buf, size_t size);

/* ---------------------------------------------------------------------
 * Names from the command line (util.c): unknown ones are reported with
 * the closest name of the policy ("did you mean")
 * ------------------------------------------------------------------ */

typedef struct {
    const char *word;
    const char *best; /* closest candidate so far */
    size_t distance;  /* its edit distance */
} cli_guess;

void cli_guess_init(cli_guess *g, const char *word);
void cli_guess_try(cli_guess *g, const char *candidate);
/* The closest candidate when it is close enough to be a typo, else NULL. */
const char *cli_guess_best(const cli_guess *g);

/* The token labelled label, or NULL after reporting "no token ...; did
 * you mean ...". */
const rules_token *cli_token_named(const rules_policy *policy, const char *label);
/* The view id of tok, or NULL after reporting the same way. */
const rules_view *cli_view_named(const rules_policy *policy, const rules_token *tok,
                                 const char *id);
/* Whether view stacks layer; when not and report is true, says so with
 * the closest layer of the view. */
bool cli_view_has_layer(const rules_view *view, const char *layer, bool report);

#endif /* STRATA_CLI_H */
