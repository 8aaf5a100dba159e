/*
 * rules.h - Strata's policy document and rule language.
 *
 * A leaf library: it reads the policy file (XML via libxml2, validated
 * against the schema in rules/strata.rng) into a plain data model, and
 * compiles the rule text inside each view into a compact program that the
 * engine evaluates against objects. It includes nothing of layers/,
 * storage/ or engine/, never logs and never exits: errors come back as
 * diagnostics with file, line and column.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_RULES_H
#define STRATA_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

/* ---------------------------------------------------------------------
 * Diagnostics
 * ------------------------------------------------------------------ */

typedef enum {
    RULES_SEVERITY_ERROR = 0,
    RULES_SEVERITY_WARNING = 1,
} rules_severity;

typedef struct {
    rules_severity severity;
    char *file;    /* file the problem is in (owned) */
    unsigned line; /* 1-based; 0 when unknown */
    unsigned col;  /* 1-based; 0 when unknown */
    char *message; /* one line, no trailing newline (owned) */
    char *hint;    /* optional suggestion, or NULL (owned) */
} rules_diag;

typedef struct {
    rules_diag *items;
    size_t count;
    size_t n_errors;
} rules_diags;

void rules_diags_init(rules_diags *diags);
void rules_diags_clear(rules_diags *diags);
/* Formats one diagnostic as "file:line:col: error: message" (col omitted
 * when 0, line too when 0; "warning" for warnings; " (hint)" appended when
 * there is a hint) into buf; returns the length snprintf would have written. */
int rules_diag_format(const rules_diag *diag, char *buf, size_t size);

/* Appends a diagnostic; message is printf-style, and any newline in the
 * result becomes a space so the message stays one line. file may be NULL
 * ("<unknown>" is used). Returns 0, or -1 when memory ran out (the
 * diagnostic is then lost, but n_errors still counts an error). */
int rules_diag_add(rules_diags *diags, rules_severity severity, const char *file, unsigned line,
                   unsigned col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Sets the hint of the last diagnostic added (printf-style). Returns 0, or
 * -1 when there is none or memory ran out. */
int rules_diag_hint(rules_diags *diags, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------------
 * Policy data model (strata.xml(5))
 * ------------------------------------------------------------------ */

typedef enum {
    RULES_ACCESS_READ_WRITE = 0,
    RULES_ACCESS_READ_ONLY = 1,
} rules_access;

typedef enum {
    RULES_PROVISION_NONE = 0, /* the token must exist */
    RULES_PROVISION_LAZY = 1, /* created on a free slot when first needed */
} rules_provision;

typedef enum {
    RULES_ISOLATE_NONE = 0,    /* loaded into the process */
    RULES_ISOLATE_PROCESS = 1, /* run out of process through p11-kit remoting */
} rules_isolate;

typedef struct {
    char *id;   /* <module id=""> */
    char *path; /* absolute path of the PKCS#11 module */
    rules_isolate isolate;
    char *init_reserved; /* init-reserved: pReserved of C_Initialize, or NULL */
    unsigned line;       /* where it is declared */
} rules_module;

typedef struct {
    char *id;        /* <layer id=""> */
    char *module_id; /* a rules_module id */
    char *token;     /* token label, or label template with {view} */
    char *serial;    /* token serial, or NULL */
    rules_access access;
    rules_provision provision;
    unsigned line;
} rules_layer;

typedef struct rules_program rules_program;

/* A lookup table of the policy (names to positions), private to rules/:
 * built by the loader so that the lookups below need not scan. */
typedef struct rules_index rules_index;

typedef struct {
    char *id;      /* <view id=""> */
    char **layers; /* layer ids, top first */
    size_t n_layers;
    bool is_public;       /* public="true" as written; see rules_token.public_view */
    bool allow_whiteout;  /* destroy on a read-only layer records a whiteout */
    char *rules_text;     /* raw <rules> text, or NULL */
    unsigned rules_line;  /* line of the first character of rules_text */
    rules_program *rules; /* compiled rules_text, NULL when there is none */
    unsigned line;
} rules_view;

/* failed-login-recovery: its default (15 minutes) and largest value (a
 * year), in seconds. */
#define RULES_DEFAULT_RECOVERY 900
#define RULES_MAX_RECOVERY     31536000

typedef struct {
    char *label;                    /* token label, <= 32 bytes UTF-8 */
    char *manufacturer;             /* optional, default "Strata" */
    unsigned max_failed_logins;     /* default 10 */
    unsigned failed_login_recovery; /* seconds for one failed login to expire;
                                       default RULES_DEFAULT_RECOVERY, 0: never */
    unsigned min_pin_len;           /* default 4 */
    unsigned max_pin_len;           /* default 255 */
    unsigned long long kdf_ops;     /* Argon2id opslimit; 0 = libsodium interactive */
    size_t kdf_mem;                 /* Argon2id memlimit in bytes; 0 = interactive */
    rules_view *views;
    size_t n_views;
    char *public_attr;             /* public-view="" as written, or NULL */
    const rules_view *public_view; /* shown before login, resolved at load: public-view's
                                      view, else the public="true" one, else the first;
                                      NULL for public-view="none" */
    unsigned line;
    rules_index *views_by_id; /* private; NULL: rules_token_view scans */
} rules_token;

typedef struct {
    char *path;         /* file the policy was read from */
    char *catalog_path; /* <catalog path="">, or NULL for the default */
    char *log;          /* <log calls="..."/> target: NULL, "stderr" or a path */
    rules_module *modules;
    size_t n_modules;
    rules_layer *layers;
    size_t n_layers;
    rules_token *tokens;
    size_t n_tokens;
    rules_index *modules_by_id;   /* private; NULL: rules_policy_module scans */
    rules_index *layers_by_id;    /* private; NULL: rules_policy_layer scans */
    rules_index *tokens_by_label; /* private; NULL: rules_policy_token scans */
} rules_policy;

/* Where the policy is looked for: $STRATA_CONF when set (whether or not
 * the file exists); else the user's $XDG_CONFIG_HOME/strata/strata.xml
 * (or $HOME/.config/strata/strata.xml) when it exists; else
 * /etc/strata/strata.xml when it exists; else the user's path (or the
 * system one when there is no home), so that "not found" names the file
 * to create. Returns a malloc'd path, or NULL on allocation failure. */
char *rules_policy_default_path(void);

/* When rules_policy_default_path found no file: a malloc'd sentence
 * naming every path it looked at, in order ("no policy file: looked for
 * A (the user's), then /etc/strata/strata.xml (system-wide); STRATA_CONF
 * is not set"), for a log line or an error. NULL when STRATA_CONF is set
 * (its file is the only one looked for), when a file was found, or on
 * allocation failure. */
char *rules_policy_not_found(void);

/* Reads, validates and compiles the policy at path. On success returns 0
 * and *out holds the policy (free with rules_policy_free); every rule
 * program is compiled. On failure returns -1, *out is NULL and diags holds
 * at least one error. Warnings may be added on success. The parser never
 * touches the network, never loads external entities or DTDs, does not
 * expand entities and refuses files over 1 MiB. */
int rules_policy_load(const char *path, rules_policy **out, rules_diags *diags);

/* The same from a memory buffer; name is used in diagnostics. */
int rules_policy_load_memory(const char *buf, size_t len, const char *name, rules_policy **out,
                             rules_diags *diags);

void rules_policy_free(rules_policy *policy);

/* Lookups by id (by label for tokens): the first element declared with
 * it, or NULL when there is none or an argument is NULL. On a loaded
 * policy each takes logarithmic time (the loader builds the tables). */
const rules_module *rules_policy_module(const rules_policy *policy, const char *id);
const rules_layer *rules_policy_layer(const rules_policy *policy, const char *id);
const rules_token *rules_policy_token(const rules_policy *policy, const char *label);
const rules_view *rules_token_view(const rules_token *token, const char *id);

/* Expands a layer's token template for a view ("strata-{view}" -> "strata-work")
 * into buf; returns 0, or -1 when it does not fit. */
int rules_layer_token_label(const rules_layer *layer, const char *view, char *buf, size_t size);

/* ---------------------------------------------------------------------
 * Rule language (strata-rules(7))
 * ------------------------------------------------------------------ */

/* Operations a rule can deny. */
typedef enum {
    RULES_OP_SIGN = 1u << 0,
    RULES_OP_VERIFY = 1u << 1,
    RULES_OP_ENCRYPT = 1u << 2,
    RULES_OP_DECRYPT = 1u << 3,
    RULES_OP_DIGEST = 1u << 4,
    RULES_OP_WRAP = 1u << 5,
    RULES_OP_UNWRAP = 1u << 6,
    RULES_OP_DERIVE = 1u << 7,
    RULES_OP_DESTROY = 1u << 8,
    RULES_OP_COPY = 1u << 9,
    RULES_OP_SET_ATTRIBUTE = 1u << 10,
    RULES_OP_CREATE = 1u << 11,
    RULES_OP_FIND = 1u << 12,
} rules_op;

/* What the compiler needs to know of the view a program belongs to. */
typedef struct {
    const char *const *layers; /* layer ids of the view */
    const bool *layer_read_only;
    size_t n_layers;
} rules_scope;

/* Compiles rule text. file/first_line place diagnostics (the text's first
 * line is first_line). Returns NULL with errors in diags on failure. */
rules_program *rules_compile(const char *text, const char *file, unsigned first_line,
                             const rules_scope *scope, rules_diags *diags);
void rules_program_free(rules_program *program);

/* The attribute types the program reads from objects (sorted, unique).
 * The engine fetches them in one C_GetAttributeValue batch. */
size_t rules_program_attributes(const rules_program *program, const CK_ATTRIBUTE_TYPE **types);

/* The identity attributes for shadowing ("shadow by"); default CKA_CLASS, CKA_ID. */
size_t rules_program_shadow(const rules_program *program, const CK_ATTRIBUTE_TYPE **types);

/* True when some set rule may rewrite attribute type. */
bool rules_program_rewrites(const rules_program *program, CK_ATTRIBUTE_TYPE type);

/* An object as the evaluator sees it. attrs holds at least the attributes
 * rules_program_attributes() names; an attribute the object lacks has
 * value NULL and len CK_UNAVAILABLE_INFORMATION. */
typedef struct {
    const char *layer;
    const char *view;
    const char *token;
    const CK_ATTRIBUTE *attrs;
    size_t n_attrs;
} rules_object;

typedef struct {
    bool hidden;       /* a hide rule matched first */
    bool readonly;     /* some readonly rule matched */
    uint32_t denied;   /* rules_op mask denied whatever the mechanism */
    int deciding_rule; /* rule index that decided visibility, -1 = default */
} rules_verdict;

/* Evaluates visibility, readonly and mechanism-independent denials. Never
 * allocates. Returns 0, or -1 on a malformed object. */
int rules_eval(const rules_program *program, const rules_object *object, rules_verdict *verdict);

/* True when a deny rule forbids op on object with mechanism (pass
 * CK_UNAVAILABLE_INFORMATION as mechanism when there is none). */
bool rules_denies(const rules_program *program, const rules_object *object, rules_op op,
                  CK_MECHANISM_TYPE mechanism);

/* Computes the value a client reads for attribute type after every
 * matching set rule. Writes at most size bytes to buf (buf may be NULL for
 * a size query) and the full length to *len. Returns 1 when rewritten, 0
 * when no rule applies (the caller uses the stored value), -1 on error. */
int rules_rewrite(const rules_program *program, const rules_object *object, CK_ATTRIBUTE_TYPE type,
                  void *buf, size_t size, size_t *len);

/* The layer a new object described by template goes to: the first
 * matching route rule's layer, or NULL for the view's default. */
const char *rules_route(const rules_program *program, const rules_object *template_object);

/* Calls fn for each rule that matches object, with the rule's source line
 * and a one-line description of its effect (strata explain). */
typedef void (*rules_explain_fn)(void *ctx, unsigned line, const char *effect);
void rules_explain(const rules_program *program, const rules_object *object, rules_explain_fn fn,
                   void *ctx);

/* ---------------------------------------------------------------------
 * Names, for messages and logs
 * ------------------------------------------------------------------ */

/* The CKA_ name of an attribute type ("CKA_KEY_TYPE"), or NULL when the
 * rule language does not know it. Static storage. */
const char *rules_attribute_name(CK_ATTRIBUTE_TYPE type);

/* The CKM_ name of a mechanism ("CKM_ECDSA"), or NULL when unknown. Where
 * two names share a value the newer one is returned (CKM_EC_KEY_PAIR_GEN).
 * Static storage. */
const char *rules_mechanism_name(CK_MECHANISM_TYPE mechanism);

/* The CK name of the value of a number-valued attribute: CKO_ for
 * CKA_CLASS, CKK_ for CKA_KEY_TYPE, CKC_ for CKA_CERTIFICATE_TYPE, CKM_
 * for mechanism-valued attributes; NULL when the attribute has no named
 * values or the value is unknown. Static storage. */
const char *rules_attribute_value_name(CK_ATTRIBUTE_TYPE type, CK_ULONG value);

#endif /* STRATA_RULES_H */
