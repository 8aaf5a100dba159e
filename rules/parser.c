/*
 * parser.c - recursive-descent parser for the grammar in strata-rules(7).
 * It builds the flat node array of the program being compiled, resolves
 * names (attributes, context, constants) as it goes, hands each finished
 * statement to the checker (check.c) and recovers from an error at the
 * next line, so one pass reports every faulty statement.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

/* A one-line hint for the places a value is expected. */
#define VALUE_HINT                                                                                 \
    "a value is an attribute (label, id, class...), layer, view, vtoken, mechanism, operation, "   \
    "a \"string\", 0x bytes, a number, true/false or a constant (CKM_..., private-key, rsa...)"

static void advance(lang_compiler *c)
{
    lang_lexer_next(&c->lx, &c->tok);
}

static bool tok_is_word(const lang_compiler *c, const char *word)
{
    return c->tok.kind == TK_IDENT && strlen(word) == c->tok.len &&
           memcmp(c->tok.start, word, c->tok.len) == 0;
}

static bool is_reserved(const lang_token *tok)
{
    static const char *const words[] = {"and", "or", "not", "in", "where", "present"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (tok->kind == TK_IDENT && strlen(words[i]) == tok->len &&
            memcmp(tok->start, words[i], tok->len) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Reports that the current token is not what the grammar expects. A
 * lexical error token reports the lexer's own message instead. Returns
 * false, for "return syntax_error(...)".
 */
static bool syntax_error(lang_compiler *c, const char *expected, const char *hint)
{
    char found[64];

    if (c->tok.kind == TK_ERROR) {
        lang_error(c, c->tok.line, c->tok.col, c->tok.hint, "%s", c->tok.message);
        return false;
    }
    lang_token_describe(&c->tok, found, sizeof(found));
    lang_error(c, c->tok.line, c->tok.col, hint, "expected %s, found %s", expected, found);
    return false;
}

static bool expect(lang_compiler *c, lang_token_kind kind, const char *expected, const char *hint)
{
    if (c->tok.kind != kind) {
        return syntax_error(c, expected, hint);
    }
    advance(c);
    return true;
}

static bool expect_word(lang_compiler *c, const char *word, const char *expected, const char *hint)
{
    if (!tok_is_word(c, word)) {
        return syntax_error(c, expected, hint);
    }
    advance(c);
    return true;
}

static lang_node leaf_at(const lang_compiler *c, lang_node_kind kind)
{
    lang_node n = {.kind = (uint8_t)kind, .a = LANG_NONE, .b = LANG_NONE};

    n.line = c->tok.line;
    n.col = c->tok.col;
    n.name_off = (uint32_t)(c->tok.start - c->lx.text);
    n.name_len = (uint32_t)c->tok.len;
    return n;
}

/* Adds a string or byte-string literal from the current token. */
static uint32_t literal_bytes(lang_compiler *c)
{
    unsigned char buf[256];
    unsigned char *out = buf;
    lang_node n = leaf_at(c, N_LITERAL);
    size_t len;

    if (c->tok.len > sizeof(buf)) {
        out = malloc(c->tok.len);
        if (out == NULL) {
            c->oom = true;
            return LANG_NONE;
        }
    }
    if (c->tok.kind == TK_STRING) {
        n.type = TY_STRING;
        len = lang_string_decode(&c->tok, out);
    } else {
        n.type = TY_BYTES;
        len = lang_bytes_decode(&c->tok, out);
    }
    n.off = lang_pool_add(c, out, len);
    n.len = (uint32_t)len;
    if (out != buf) {
        free(out);
    }
    if (n.off == UINT32_MAX) {
        return LANG_NONE;
    }
    advance(c);
    return lang_node_add(c, &n);
}

/* Resolves an identifier used as a value: context, attribute, constant or
 * boolean, in that order (strata-rules(7), NAMES). */
static uint32_t name_value(lang_compiler *c)
{
    lang_node n = leaf_at(c, N_LITERAL);
    const lang_attr_info *attr;
    const lang_const_info *k;
    lang_context ctx;

    if (is_reserved(&c->tok)) {
        syntax_error(c, "a value", VALUE_HINT);
        return LANG_NONE;
    }
    if ((ctx = lang_context_by_name(c->tok.start, c->tok.len)) != 0) {
        n.kind = N_CONTEXT;
        n.num = ctx;
        n.type = ctx == CTX_MECHANISM ? TY_NUMBER : TY_STRING;
        n.domain = ctx == CTX_MECHANISM ? DOM_MECHANISM : DOM_NONE;
        n.dynamic = ctx == CTX_MECHANISM || ctx == CTX_OPERATION;
    } else if ((attr = lang_attr_by_name(c->tok.start, c->tok.len)) != NULL) {
        n.kind = N_ATTR;
        n.num = attr->type;
        n.type = attr->vtype;
        n.domain = attr->domain;
    } else if ((k = lang_const_by_name(c->tok.start, c->tok.len)) != NULL) {
        n.type = TY_NUMBER;
        n.num = k->value;
        n.domain = k->domain;
    } else if (tok_is_word(c, "true") || tok_is_word(c, "false")) {
        n.type = TY_BOOL;
        n.num = tok_is_word(c, "true");
    } else {
        lang_error(c, n.line, n.col,
                   "use an attribute (label, id, CKA_...), a context name (layer, view, vtoken, "
                   "mechanism, operation), a constant (CKO_..., CKM_..., private-key, rsa...) or "
                   "quote the text as a \"string\"",
                   "unknown name '%.*s'", (int)(c->tok.len > 40 ? 40 : c->tok.len), c->tok.start);
        return LANG_NONE;
    }
    advance(c);
    return lang_node_add(c, &n);
}

/* term := STRING | BYTES | NUMBER | NAME */
static uint32_t parse_term(lang_compiler *c)
{
    lang_node n;

    switch (c->tok.kind) {
    case TK_STRING:
    case TK_BYTES:
        return literal_bytes(c);
    case TK_NUMBER:
        n = leaf_at(c, N_LITERAL);
        n.type = TY_NUMBER;
        n.num = c->tok.number;
        advance(c);
        return lang_node_add(c, &n);
    case TK_IDENT:
        return name_value(c);
    default:
        syntax_error(c, "a value", VALUE_HINT);
        return LANG_NONE;
    }
}

static uint32_t binary(lang_compiler *c, lang_node_kind kind, uint32_t a, uint32_t b, unsigned line,
                       unsigned col)
{
    lang_node n = {.kind = (uint8_t)kind, .a = a, .b = b, .line = line, .col = col};

    if (a == LANG_NONE || b == LANG_NONE) {
        return LANG_NONE;
    }
    return lang_node_add(c, &n);
}

/* value := term { "+" term } */
static uint32_t parse_value(lang_compiler *c)
{
    uint32_t left = parse_term(c);

    while (left != LANG_NONE && c->tok.kind == TK_PLUS) {
        unsigned line = c->tok.line, col = c->tok.col;
        advance(c);
        left = binary(c, N_CONCAT, left, parse_term(c), line, col);
    }
    return left;
}

/* "[" value { "," value } "]" after "in"; the node holds a list range. */
static uint32_t parse_in_list(lang_compiler *c, uint32_t left, unsigned line, unsigned col)
{
    lang_node n = {.kind = N_IN, .a = left, .b = LANG_NONE, .line = line, .col = col};

    if (!expect(c, TK_LBRACKET, "'[' after 'in'", "write a list as [a, b, c]")) {
        return LANG_NONE;
    }
    n.off = (uint32_t)c->prog->n_lists;
    for (;;) {
        uint32_t item = parse_value(c);
        if (item == LANG_NONE || lang_list_add(c, item) == LANG_NONE) {
            return LANG_NONE;
        }
        n.len++;
        if (c->tok.kind != TK_COMMA) {
            break;
        }
        advance(c);
    }
    if (!expect(c, TK_RBRACKET, "',' or ']' in the list", "write a list as [a, b, c]")) {
        return LANG_NONE;
    }
    return lang_node_add(c, &n);
}

/* "present" "(" ATTR ")" */
static uint32_t parse_present(lang_compiler *c)
{
    lang_node n = leaf_at(c, N_PRESENT);
    uint32_t attr;

    advance(c);
    if (!expect(c, TK_LPAREN, "'(' after 'present'", "write present(label)")) {
        return LANG_NONE;
    }
    if (c->tok.kind != TK_IDENT || lang_attr_by_name(c->tok.start, c->tok.len) == NULL) {
        if (c->tok.kind == TK_IDENT) {
            lang_error(c, c->tok.line, c->tok.col, "present() takes an attribute name",
                       "unknown attribute '%.*s'", (int)(c->tok.len > 40 ? 40 : c->tok.len),
                       c->tok.start);
            return LANG_NONE;
        }
        syntax_error(c, "an attribute name", "present() takes an attribute name");
        return LANG_NONE;
    }
    attr = name_value(c);
    if (attr == LANG_NONE ||
        !expect(c, TK_RPAREN, "')' after the attribute", "write present(label)")) {
        return LANG_NONE;
    }
    n.a = attr;
    n.type = TY_BOOL;
    return lang_node_add(c, &n);
}

static uint32_t parse_or(lang_compiler *c);

/* cond := "(" or ")" | present | value [ ("=="|"!="|"~") value | "in" list ] */
static uint32_t parse_condition(lang_compiler *c)
{
    uint32_t left;
    unsigned line, col;

    if (c->tok.kind == TK_LPAREN) {
        advance(c);
        left = parse_or(c);
        if (left != LANG_NONE &&
            !expect(c, TK_RPAREN, "')'", "every '(' needs a matching ')' on the same line")) {
            return LANG_NONE;
        }
        return left;
    }
    if (tok_is_word(c, "present")) {
        return parse_present(c);
    }
    left = parse_value(c);
    if (left == LANG_NONE) {
        return LANG_NONE;
    }
    line = c->tok.line;
    col = c->tok.col;
    switch (c->tok.kind) {
    case TK_EQ:
        advance(c);
        return binary(c, N_EQ, left, parse_value(c), line, col);
    case TK_NE:
        advance(c);
        return binary(c, N_NE, left, parse_value(c), line, col);
    case TK_TILDE:
        advance(c);
        return binary(c, N_GLOB, left, parse_value(c), line, col);
    case TK_ASSIGN:
        syntax_error(c, "'==', '!=', '~' or 'in'", "compare with ==; = is only for set");
        return LANG_NONE;
    default:
        break;
    }
    if (tok_is_word(c, "in")) {
        advance(c);
        return parse_in_list(c, left, line, col);
    }
    {
        lang_node n = {.kind = N_TRUTH, .a = left, .b = LANG_NONE, .line = line, .col = col};
        n.line = c->prog->nodes[left].line;
        n.col = c->prog->nodes[left].col;
        return lang_node_add(c, &n);
    }
}

static uint32_t parse_unary(lang_compiler *c);

/* unary := "not" unary | cond */
static uint32_t parse_not_or_cond(lang_compiler *c)
{
    if (tok_is_word(c, "not")) {
        lang_node n = leaf_at(c, N_NOT);
        advance(c);
        n.a = parse_unary(c);
        if (n.a == LANG_NONE) {
            return LANG_NONE;
        }
        return lang_node_add(c, &n);
    }
    return parse_condition(c);
}

/*
 * Every level of "not" and "(" passes here, so that the recursion stops
 * long before the stack does: more than LANG_MAX_HEIGHT levels is
 * "expression too complex", as strata-rules(7) says. lang_node_add bounds
 * the height of the tree built, but redundant parentheses build no node,
 * and thousands of them overflowed the stack (found by fuzz_policy).
 * Returns the node, or LANG_NONE with an error.
 */
static uint32_t parse_unary(lang_compiler *c)
{
    uint32_t node;

    if (c->depth >= LANG_MAX_HEIGHT) {
        lang_error(c, c->tok.line, c->tok.col, "split the rule into several simpler rules",
                   "expression too complex");
        return LANG_NONE;
    }
    c->depth++;
    node = parse_not_or_cond(c);
    c->depth--;
    return node;
}

static uint32_t parse_and(lang_compiler *c)
{
    uint32_t left = parse_unary(c);

    while (left != LANG_NONE && tok_is_word(c, "and")) {
        unsigned line = c->tok.line, col = c->tok.col;
        advance(c);
        left = binary(c, N_AND, left, parse_unary(c), line, col);
    }
    return left;
}

static uint32_t parse_or(lang_compiler *c)
{
    uint32_t left = parse_and(c);

    while (left != LANG_NONE && tok_is_word(c, "or")) {
        unsigned line = c->tok.line, col = c->tok.col;
        advance(c);
        left = binary(c, N_OR, left, parse_and(c), line, col);
    }
    return left;
}

/* Reads an attribute name for set/shadow; reports unknown names. */
static const lang_attr_info *parse_attr_name(lang_compiler *c, const char *after)
{
    const lang_attr_info *attr;
    char expected[64];

    if (c->tok.kind != TK_IDENT) {
        snprintf(expected, sizeof(expected), "an attribute name after '%s'", after);
        syntax_error(c, expected, "attributes are named like label, id or CKA_LABEL");
        return NULL;
    }
    attr = lang_attr_by_name(c->tok.start, c->tok.len);
    if (attr == NULL) {
        lang_error(c, c->tok.line, c->tok.col,
                   "attributes are named like label, key-type or CKA_KEY_TYPE; see "
                   "strata-rules(7), ATTRIBUTES",
                   "unknown attribute '%.*s'", (int)(c->tok.len > 40 ? 40 : c->tok.len),
                   c->tok.start);
        return NULL;
    }
    advance(c);
    return attr;
}

/* set ATTR "=" value */
static bool parse_set(lang_compiler *c, lang_rule *rule)
{
    const lang_attr_info *attr;

    rule->col = c->tok.col; /* the checker reports target problems here */
    attr = parse_attr_name(c, "set");
    if (attr == NULL) {
        return false;
    }
    rule->attr = attr->type;
    if (!expect(c, TK_ASSIGN, "'=' after the attribute", "write set label = \"new\"")) {
        return false;
    }
    rule->value = parse_value(c);
    return rule->value != LANG_NONE;
}

/* deny OP { "," OP } */
static bool parse_deny(lang_compiler *c, lang_rule *rule)
{
    static const char ops_hint[] = "operations are sign, verify, encrypt, decrypt, digest, wrap, "
                                   "unwrap, derive, destroy, copy, set-attribute, create, find";

    for (;;) {
        uint32_t bit;
        if (c->tok.kind != TK_IDENT) {
            return syntax_error(c, "an operation name", ops_hint);
        }
        bit = lang_op_by_name(c->tok.start, c->tok.len);
        if (bit == 0) {
            lang_error(c, c->tok.line, c->tok.col, ops_hint, "unknown operation '%.*s'",
                       (int)(c->tok.len > 40 ? 40 : c->tok.len), c->tok.start);
            return false;
        }
        rule->ops |= bit;
        advance(c);
        if (c->tok.kind != TK_COMMA) {
            return true;
        }
        advance(c);
    }
}

/* route create to "LAYER" */
static bool parse_route(lang_compiler *c, lang_rule *rule)
{
    unsigned char buf[256];
    size_t len;

    if (!expect_word(c, "create", "'create' after 'route'", "write route create to \"layer\"") ||
        !expect_word(c, "to", "'to' after 'route create'", "write route create to \"layer\"")) {
        return false;
    }
    if (c->tok.kind != TK_STRING) {
        return syntax_error(c, "a layer name in quotes", "write route create to \"layer\"");
    }
    rule->col = c->tok.col; /* the checker reports layer problems here */
    rule->line = c->first_line + c->tok.line - 1;
    if (c->tok.len > sizeof(buf)) {
        lang_error(c, c->tok.line, c->tok.col, "layer ids are short names from the policy",
                   "layer name too long");
        return false;
    }
    len = lang_string_decode(&c->tok, buf);
    if (memchr(buf, '\0', len) != NULL) {
        lang_error(c, c->tok.line, c->tok.col, "layer ids are short names from the policy",
                   "layer name contains a NUL byte");
        return false;
    }
    buf[len] = '\0';
    rule->layer_off = lang_pool_add(c, buf, len + 1);
    advance(c);
    return rule->layer_off != UINT32_MAX;
}

/* shadow by ATTR { "," ATTR } */
static bool parse_shadow(lang_compiler *c, lang_rule *rule)
{
    rules_program *p = c->prog;
    unsigned line = c->tok.line;

    (void)rule;
    if (!expect_word(c, "by", "'by' after 'shadow'", "write shadow by class, id")) {
        return false;
    }
    if (c->shadow_line != 0) {
        lang_error(c, line, 1, "keep a single shadow statement per view",
                   "duplicate shadow statement (the first is on line %u)", c->shadow_line);
        return false;
    }
    c->shadow_line = c->first_line + line - 1;
    p->has_shadow = true;
    p->n_shadow = 0;
    for (;;) {
        unsigned col = c->tok.col;
        const lang_attr_info *attr = parse_attr_name(c, "shadow by");
        if (attr == NULL) {
            return false;
        }
        for (size_t i = 0; i < p->n_shadow; i++) {
            if (p->shadow[i] == attr->type) {
                lang_error(c, line, col, "name each identity attribute once",
                           "attribute listed twice in shadow by");
                return false;
            }
        }
        if (p->n_shadow == sizeof(p->shadow) / sizeof(p->shadow[0])) {
            lang_error(c, line, col, "identity needs only a few attributes, e.g. class, id",
                       "too many shadow attributes (at most 16)");
            return false;
        }
        p->shadow[p->n_shadow++] = attr->type;
        if (c->tok.kind != TK_COMMA) {
            return true;
        }
        advance(c);
    }
}

static bool parse_action(lang_compiler *c, lang_rule *rule)
{
    static const struct {
        const char *word;
        lang_rule_kind kind;
    } actions[] = {
        {"hide", R_HIDE}, {"show", R_SHOW},   {"set", R_SET},       {"readonly", R_READONLY},
        {"deny", R_DENY}, {"route", R_ROUTE}, {"shadow", R_SHADOW},
    };
    static const char hint[] = "a statement starts with hide, show, set, readonly, deny, route "
                               "or shadow";

    if (c->tok.kind != TK_IDENT) {
        return syntax_error(c, "an action", hint);
    }
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (tok_is_word(c, actions[i].word)) {
            rule->kind = (uint8_t)actions[i].kind;
            advance(c);
            switch (rule->kind) {
            case R_SET:
                return parse_set(c, rule);
            case R_DENY:
                return parse_deny(c, rule);
            case R_ROUTE:
                return parse_route(c, rule);
            case R_SHADOW:
                return parse_shadow(c, rule);
            default:
                return true;
            }
        }
    }
    lang_error(c, c->tok.line, c->tok.col, hint, "unknown action '%.*s'",
               (int)(c->tok.len > 40 ? 40 : c->tok.len), c->tok.start);
    return false;
}

static bool add_rule(lang_compiler *c, const lang_rule *rule)
{
    rules_program *p = c->prog;

    if (p->n_rules == LANG_MAX_RULES) {
        lang_error(c, c->tok.line, 1, "split the rules across views", "too many rules (at most %d)",
                   LANG_MAX_RULES);
        return false;
    }
    if (p->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? c->cap_rules * 2 : 16;
        lang_rule *r = realloc(p->rules, cap * sizeof(*r));
        if (r == NULL) {
            c->oom = true;
            return false;
        }
        p->rules = r;
        c->cap_rules = cap;
    }
    p->rules[p->n_rules++] = *rule;
    return true;
}

/* statement := action [ "where" or ] NEWLINE */
static bool parse_statement(lang_compiler *c)
{
    lang_rule rule = {.cond = LANG_NONE, .value = LANG_NONE};

    rule.line = c->first_line + c->tok.line - 1;
    rule.col = c->tok.col;
    if (!parse_action(c, &rule)) {
        return false;
    }
    if (tok_is_word(c, "where")) {
        if (rule.kind == R_SHADOW) {
            lang_error(c, c->tok.line, c->tok.col, "shadowing applies to every object",
                       "shadow takes no where clause");
            return false;
        }
        advance(c);
        rule.cond = parse_or(c);
        if (rule.cond == LANG_NONE) {
            return false;
        }
        if (c->tok.kind != TK_NEWLINE && c->tok.kind != TK_EOF) {
            return syntax_error(c, "'and', 'or' or the end of the line", "one statement per line");
        }
    } else if (c->tok.kind != TK_NEWLINE && c->tok.kind != TK_EOF) {
        return syntax_error(c, "'where' or the end of the line", "one statement per line");
    }
    if (rule.kind == R_SHADOW) {
        return true; /* recorded in the program, not a rule */
    }
    if (!lang_check_rule(c, &rule)) {
        return false;
    }
    return add_rule(c, &rule);
}

/*
 * Parses every statement of the text. Each faulty statement adds at least
 * one error to c->diags and parsing resumes at the next line. Stops early
 * only on allocation failure (c->oom).
 */
void lang_parse(lang_compiler *c)
{
    advance(c);
    while (c->tok.kind != TK_EOF && !c->oom) {
        if (c->tok.kind == TK_NEWLINE) {
            advance(c);
            continue;
        }
        if (!parse_statement(c) && c->tok.kind != TK_NEWLINE && c->tok.kind != TK_EOF) {
            lang_lexer_skip_line(&c->lx);
            advance(c);
        }
    }
}
