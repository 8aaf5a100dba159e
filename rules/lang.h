/*
 * lang.h - private to the rule language (lexer.c, parser.c, check.c,
 * names.c, eval.c, program.c). Not installed; rules.h stays the one public
 * header.
 *
 * A compiled program is flat: every expression node lives in one array and
 * refers to its children by index, literal bytes live in one pool, and each
 * attribute reference names a slot in the program's sorted attribute list,
 * so evaluation needs no allocation and reads each attribute once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_RULES_LANG_H
#define STRATA_RULES_LANG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

#define LANG_MAX_RULES  4096       /* statements per program */
#define LANG_MAX_NODES  65536      /* expression nodes per program */
#define LANG_MAX_HEIGHT 128        /* height of one expression tree */
#define LANG_MAX_SETS   64         /* set rules per attribute */
#define LANG_MAX_ATTRS  128        /* >= the attribute table's size */
#define LANG_NONE       UINT32_MAX /* "no node" */

/* ---- names (names.c) -------------------------------------------------- */

typedef enum {
    TY_NONE = 0,
    TY_BOOL,
    TY_NUMBER,
    TY_STRING,
    TY_BYTES,
} lang_type;

/* What a number means, so that "class == rsa" is caught at compile time. */
typedef enum {
    DOM_NONE = 0,
    DOM_CLASS,
    DOM_KEY_TYPE,
    DOM_MECHANISM,
    DOM_CERT_TYPE,
} lang_domain;

typedef struct {
    const char *name;       /* CKA_ name */
    CK_ATTRIBUTE_TYPE type; /* CKA_ value */
    uint8_t vtype;          /* lang_type */
    uint8_t domain;         /* lang_domain for numbers */
    bool settable;          /* a set rule may rewrite it */
} lang_attr_info;

typedef struct {
    const char *name; /* CKO_/CKK_/CKM_/CKC_ name */
    CK_ULONG value;
    uint8_t domain;
} lang_const_info;

typedef enum {
    CTX_LAYER = 1,
    CTX_VIEW,
    CTX_VTOKEN,
    CTX_MECHANISM,
    CTX_OPERATION,
} lang_context;

/* Attribute by short name ("key-type") or CKA_ name; NULL when unknown. */
const lang_attr_info *lang_attr_by_name(const char *name, size_t len);
const lang_attr_info *lang_attr_by_type(CK_ATTRIBUTE_TYPE type);
/* Short name of an attribute for messages ("label", "key-type"). Writes
 * into buf and returns it. */
const char *lang_attr_short(const lang_attr_info *info, char *buf, size_t size);
size_t lang_attr_count(void);
/* Constant by CK*_ name or short class/key-type name; NULL when unknown. */
const lang_const_info *lang_const_by_name(const char *name, size_t len);
/* Context name (layer, view, vtoken, mechanism, operation), or 0. */
lang_context lang_context_by_name(const char *name, size_t len);
/* rules_op bit for an operation name, or 0. */
uint32_t lang_op_by_name(const char *name, size_t len);
/* Name of the lowest operation bit in mask. */
const char *lang_op_name(uint32_t bit);
const char *lang_type_name(lang_type type);
const char *lang_domain_name(lang_domain domain);

/* ---- lexer (lexer.c) -------------------------------------------------- */

typedef enum {
    TK_EOF = 0,
    TK_NEWLINE,
    TK_IDENT,
    TK_STRING, /* "..." (escapes not yet decoded) */
    TK_BYTES,  /* 0x0a1b */
    TK_NUMBER, /* decimal */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_COMMA,
    TK_EQ,     /* == */
    TK_NE,     /* != */
    TK_ASSIGN, /* = */
    TK_TILDE,  /* ~ */
    TK_PLUS,   /* + */
    TK_ERROR,  /* see message/hint */
} lang_token_kind;

typedef struct {
    lang_token_kind kind;
    const char *start; /* first byte in the text */
    size_t len;
    unsigned line;       /* 1-based within the text */
    unsigned col;        /* 1-based byte column */
    CK_ULONG number;     /* TK_NUMBER */
    const char *message; /* TK_ERROR */
    const char *hint;    /* TK_ERROR, or NULL */
} lang_token;

typedef struct {
    const char *text;
    const char *end;
    const char *pos;
    unsigned line;
    const char *line_start;
} lang_lexer;

void lang_lexer_init(lang_lexer *lx, const char *text, size_t len);
void lang_lexer_next(lang_lexer *lx, lang_token *tok);
/* Skips to just after the next newline (error recovery). */
void lang_lexer_skip_line(lang_lexer *lx);
/* Decodes a TK_STRING's escapes (the lexer validated them) into out, which
 * holds at least tok->len bytes; returns the decoded length. */
size_t lang_string_decode(const lang_token *tok, unsigned char *out);
/* Decodes a TK_BYTES token into out (tok->len / 2 bytes); returns length. */
size_t lang_bytes_decode(const lang_token *tok, unsigned char *out);
/* Short human description of a token for "found X" messages. */
void lang_token_describe(const lang_token *tok, char *buf, size_t size);

/* ---- compiled form ------------------------------------------------------ */

typedef enum {
    N_LITERAL = 1, /* num, or pool bytes at off/len */
    N_ATTR,        /* attribute: num = CKA, slot = index in program attrs */
    N_CONTEXT,     /* num = lang_context */
    N_CONCAT,      /* a + b */
    N_EQ,          /* a == b */
    N_NE,          /* a != b */
    N_GLOB,        /* a ~ pattern (pool off/len) */
    N_IN,          /* a in [lists[off .. off+len)] */
    N_PRESENT,     /* attribute a present */
    N_AND,
    N_OR,
    N_NOT,
    N_TRUTH, /* bool value a used as a condition */
} lang_node_kind;

typedef struct {
    uint8_t kind;                /* lang_node_kind */
    uint8_t type;                /* lang_type of the value (TY_BOOL for conditions) */
    uint8_t domain;              /* lang_domain for numbers */
    bool dynamic;                /* depends on mechanism or operation */
    uint32_t a, b;               /* children, LANG_NONE when unused */
    uint32_t off, len;           /* pool bytes or list range */
    uint32_t slot;               /* N_ATTR: index into program attrs */
    CK_ULONG num;                /* number/bool literal, CKA type, lang_context */
    uint16_t height;             /* of the subtree, bounded by LANG_MAX_HEIGHT */
    unsigned line, col;          /* source position (for diagnostics) */
    uint32_t name_off, name_len; /* source text of a leaf, for messages */
} lang_node;

typedef enum {
    R_HIDE = 1,
    R_SHOW,
    R_SET,
    R_READONLY,
    R_DENY,
    R_ROUTE,
    R_SHADOW,
} lang_rule_kind;

typedef struct {
    uint8_t kind;           /* lang_rule_kind */
    bool dynamic;           /* the condition uses mechanism or operation */
    uint32_t cond;          /* condition node, LANG_NONE = always */
    uint32_t value;         /* R_SET: value node */
    CK_ATTRIBUTE_TYPE attr; /* R_SET: target */
    uint32_t ops;           /* R_DENY: rules_op mask */
    uint32_t layer_off;     /* R_ROUTE: NUL-terminated layer id in the pool */
    unsigned line;          /* absolute source line */
    unsigned col;
} lang_rule;

struct rules_program {
    lang_node *nodes;
    size_t n_nodes;
    lang_rule *rules;
    size_t n_rules;
    uint32_t *lists; /* node indices of "in" lists */
    size_t n_lists;
    char *pool; /* literal bytes, glob patterns, layer ids */
    size_t pool_len;
    CK_ATTRIBUTE_TYPE *attrs; /* sorted unique attributes read */
    size_t n_attrs;
    CK_ATTRIBUTE_TYPE shadow[16]; /* identity attributes */
    size_t n_shadow;
    bool has_shadow;     /* a shadow statement was given */
    bool has_readonly;   /* some readonly rule exists */
    size_t modulus_slot; /* CKA_MODULUS in attrs when modulus-bits is read, else SIZE_MAX */
};

/* ---- compiler (parser.c, check.c, program.c) ---------------------------- */

typedef struct {
    const char *file;
    unsigned first_line;
    const rules_scope *scope;
    rules_diags *diags;
    lang_lexer lx;
    lang_token tok;
    rules_program *prog;
    size_t cap_nodes, cap_rules, cap_lists, cap_pool;
    bool oom;
    unsigned shadow_line; /* line of the shadow statement, 0 = none yet */
    size_t line_errors;   /* errors reported on the current statement */
    unsigned depth;       /* nesting of "not" and "(" being parsed */
} lang_compiler;

/* Appends a diagnostic at (text line, col); message and hint are printf
 * formats sharing the arguments' order: message first. */
void lang_error(lang_compiler *c, unsigned line, unsigned col, const char *hint, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* Parses the whole text into c->prog; errors go to c->diags. */
void lang_parse(lang_compiler *c);
/* Type checks one parsed rule; returns true when it is sound. */
bool lang_check_rule(lang_compiler *c, lang_rule *rule);

uint32_t lang_node_add(lang_compiler *c, const lang_node *node);
/* Appends bytes to the pool; returns the offset, or UINT32_MAX (oom). */
uint32_t lang_pool_add(lang_compiler *c, const void *bytes, size_t len);
uint32_t lang_list_add(lang_compiler *c, uint32_t node);

/* Glob match (* ? [..] [!..] and \ escapes) without allocation. */
bool lang_glob_match(const unsigned char *pat, size_t plen, const unsigned char *s, size_t slen);
/* Returns NULL when pattern is well formed, else what is wrong. */
const char *lang_glob_check(const unsigned char *pat, size_t plen);

#endif /* STRATA_RULES_LANG_H */
