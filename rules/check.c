/*
 * check.c - the rule language's type checker (strata-rules(7), TYPES and
 * ERRORS). Runs on each statement once it is parsed: infers the type of
 * every expression node, refuses comparisons across types and number
 * domains, unknown layers and operations, set on attributes that must not
 * be rewritten, routes to layers that are missing or read-only, and
 * mechanism/operation outside deny rules.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "lang.h"

static bool byte_like(uint8_t type)
{
    return type == TY_STRING || type == TY_BYTES;
}

/* "'label'" for a leaf, "the expression" for an inner node. */
static const char *node_text(const lang_compiler *c, const lang_node *n, char *buf, size_t size)
{
    if (n->name_len == 0) {
        snprintf(buf, size, "the expression");
    } else {
        int len = n->name_len > 40 ? 40 : (int)n->name_len;
        snprintf(buf, size, "%.*s", len, c->lx.text + n->name_off);
    }
    return buf;
}

static void node_error(lang_compiler *c, const lang_node *n, const char *hint, const char *msg)
{
    lang_error(c, n->line, n->col, hint, "%s", msg);
}

/* Position of a rule-level problem, in text lines. */
static void rule_error(lang_compiler *c, const lang_rule *rule, const char *hint, const char *msg)
{
    lang_error(c, rule->line - c->first_line + 1, rule->col, hint, "%s", msg);
}

static bool scope_has_layer(const rules_scope *scope, const char *id, size_t len, bool *read_only)
{
    for (size_t i = 0; i < scope->n_layers; i++) {
        if (scope->layers[i] != NULL && strlen(scope->layers[i]) == len &&
            memcmp(scope->layers[i], id, len) == 0) {
            *read_only = scope->layer_read_only != NULL && scope->layer_read_only[i];
            return true;
        }
    }
    return false;
}

static void scope_list(const rules_scope *scope, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "the view's layers are:");

    for (size_t i = 0; i < scope->n_layers && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%s \"%s\"", i ? "," : "",
                                 scope->layers[i] ? scope->layers[i] : "");
    }
}

/* A string literal compared with layer must name a layer of the scope; one
 * compared with operation must name an operation. */
static bool check_context_literal(lang_compiler *c, const lang_node *ctx, const lang_node *lit)
{
    char msg[160], hint[512];
    const char *text;
    int len = lit->len > 60 ? 60 : (int)lit->len;
    bool read_only;

    if (ctx->kind != N_CONTEXT || lit->kind != N_LITERAL || lit->type != TY_STRING) {
        return true;
    }
    text = c->prog->pool + lit->off;
    if (ctx->num == CTX_LAYER && c->scope != NULL &&
        !scope_has_layer(c->scope, text, lit->len, &read_only)) {
        snprintf(msg, sizeof(msg), "unknown layer \"%.*s\"", len, text);
        scope_list(c->scope, hint, sizeof(hint));
        node_error(c, lit, hint, msg);
        return false;
    }
    if (ctx->num == CTX_OPERATION && lang_op_by_name(text, lit->len) == 0) {
        snprintf(msg, sizeof(msg), "unknown operation \"%.*s\"", len, text);
        node_error(c, lit,
                   "operations are sign, verify, encrypt, decrypt, digest, wrap, unwrap, "
                   "derive, destroy, copy, set-attribute, create, find",
                   msg);
        return false;
    }
    return true;
}

/* Two values may be compared when both are byte-like, or of one type and,
 * for numbers, of one domain (or one side has none). */
static bool check_comparable(lang_compiler *c, const lang_node *op, const lang_node *a,
                             const lang_node *b)
{
    char msg[256], ta[64], tb[64];

    if (!(byte_like(a->type) && byte_like(b->type)) && a->type != b->type) {
        snprintf(msg, sizeof(msg), "type mismatch: %s is %s but %s is %s",
                 node_text(c, a, ta, sizeof(ta)), lang_type_name(a->type),
                 node_text(c, b, tb, sizeof(tb)), lang_type_name(b->type));
        node_error(c, op,
                   "strings and 0x byte strings compare with each other; numbers with numbers "
                   "and constants; booleans with true and false",
                   msg);
        return false;
    }
    if (a->type == TY_NUMBER && a->domain != DOM_NONE && b->domain != DOM_NONE &&
        a->domain != b->domain) {
        snprintf(msg, sizeof(msg), "type mismatch: %s is %s but %s is %s",
                 node_text(c, a, ta, sizeof(ta)), lang_domain_name(a->domain),
                 node_text(c, b, tb, sizeof(tb)), lang_domain_name(b->domain));
        node_error(c, op,
                   "compare class with CKO_ names, key-type with CKK_ names, mechanism "
                   "with CKM_ names",
                   msg);
        return false;
    }
    return check_context_literal(c, a, b) && check_context_literal(c, b, a);
}

static bool check_node(lang_compiler *c, uint32_t idx, bool allow_concat);

static bool check_children(lang_compiler *c, lang_node *n, bool allow_concat)
{
    bool ok = check_node(c, n->a, allow_concat);

    if (n->b != LANG_NONE) {
        ok = check_node(c, n->b, allow_concat) && ok;
    }
    if (ok) {
        n->dynamic =
            c->prog->nodes[n->a].dynamic || (n->b != LANG_NONE && c->prog->nodes[n->b].dynamic);
    }
    return ok;
}

static bool check_concat(lang_compiler *c, lang_node *n, bool allow_concat)
{
    const lang_node *a, *b;

    if (!allow_concat) {
        node_error(c, n, "compare with a fixed string, or match with ~ \"prefix*\"",
                   "'+' is allowed only in the value of a set statement");
        return false;
    }
    if (!check_children(c, n, true)) {
        return false;
    }
    a = &c->prog->nodes[n->a];
    b = &c->prog->nodes[n->b];
    if (!byte_like(a->type) || !byte_like(b->type)) {
        node_error(c, n, "only strings and byte strings can be joined",
                   "'+' joins strings and byte strings, not numbers or booleans");
        return false;
    }
    n->type = a->type == TY_STRING && b->type == TY_STRING ? TY_STRING : TY_BYTES;
    return true;
}

static bool check_glob(lang_compiler *c, lang_node *n)
{
    const lang_node *a, *b;
    const char *problem;
    char msg[160];

    if (!check_children(c, n, false)) {
        return false;
    }
    a = &c->prog->nodes[n->a];
    b = &c->prog->nodes[n->b];
    if (!byte_like(a->type)) {
        node_error(c, n, "use == or in for numbers and booleans",
                   "'~' matches strings and byte strings only");
        return false;
    }
    if (b->kind != N_LITERAL || b->type != TY_STRING) {
        node_error(c, b, "write the pattern as a string: label ~ \"shared-*\"",
                   "the pattern after '~' must be a string literal");
        return false;
    }
    problem = lang_glob_check((const unsigned char *)c->prog->pool + b->off, b->len);
    if (problem != NULL) {
        snprintf(msg, sizeof(msg), "bad pattern: %s", problem);
        node_error(c, b, "patterns use *, ?, [abc], [a-z], [!abc] and \\ to escape", msg);
        return false;
    }
    return true;
}

static bool check_in(lang_compiler *c, lang_node *n)
{
    const lang_node *a;
    bool ok;

    if (!check_node(c, n->a, false)) {
        return false;
    }
    a = &c->prog->nodes[n->a];
    ok = true;
    n->dynamic = a->dynamic;
    for (uint32_t i = 0; i < n->len; i++) {
        uint32_t item = c->prog->lists[n->off + i];
        if (!check_node(c, item, false)) {
            ok = false;
            continue;
        }
        ok = check_comparable(c, n, a, &c->prog->nodes[item]) && ok;
        n->dynamic = n->dynamic || c->prog->nodes[item].dynamic;
    }
    return ok;
}

/*
 * Checks the subtree at idx and fills in the type and dynamic flags of its
 * inner nodes. Returns true when sound; every problem found is reported.
 */
static bool check_node(lang_compiler *c, uint32_t idx, bool allow_concat)
{
    lang_node *n = &c->prog->nodes[idx];
    char msg[160], text[64];

    switch (n->kind) {
    case N_LITERAL:
    case N_ATTR:
    case N_CONTEXT:
        return true;
    case N_CONCAT:
        return check_concat(c, n, allow_concat);
    case N_EQ:
    case N_NE:
        n->type = TY_BOOL;
        return check_children(c, n, false) &&
               check_comparable(c, n, &c->prog->nodes[n->a], &c->prog->nodes[n->b]);
    case N_GLOB:
        n->type = TY_BOOL;
        return check_glob(c, n);
    case N_IN:
        n->type = TY_BOOL;
        return check_in(c, n);
    case N_PRESENT:
        n->type = TY_BOOL;
        return true;
    case N_AND:
    case N_OR:
    case N_NOT:
        n->type = TY_BOOL;
        return check_children(c, n, false);
    case N_TRUTH:
        n->type = TY_BOOL;
        if (!check_children(c, n, false)) {
            return false;
        }
        if (c->prog->nodes[n->a].type != TY_BOOL) {
            snprintf(msg, sizeof(msg), "%s is %s, not a condition",
                     node_text(c, &c->prog->nodes[n->a], text, sizeof(text)),
                     lang_type_name(c->prog->nodes[n->a].type));
            node_error(c, n, "compare it, e.g. label == \"x\", or test present(label)", msg);
            return false;
        }
        return true;
    default:
        return false;
    }
}

/* The first leaf under idx that uses mechanism or operation. */
static const lang_node *first_dynamic(const rules_program *p, uint32_t idx)
{
    const lang_node *n = &p->nodes[idx];

    if (!n->dynamic) {
        return NULL;
    }
    if (n->kind == N_CONTEXT) {
        return n;
    }
    if (n->a != LANG_NONE && p->nodes[n->a].dynamic) {
        return first_dynamic(p, n->a);
    }
    if (n->b != LANG_NONE && p->nodes[n->b].dynamic) {
        return first_dynamic(p, n->b);
    }
    for (uint32_t i = 0; n->kind == N_IN && i < n->len; i++) {
        if (p->nodes[p->lists[n->off + i]].dynamic) {
            return first_dynamic(p, p->lists[n->off + i]);
        }
    }
    return n;
}

static bool check_set(lang_compiler *c, lang_rule *rule)
{
    const lang_attr_info *attr = lang_attr_by_type(rule->attr);
    const lang_node *value;
    char msg[160], name[48];
    size_t count = 0;
    bool ok = true;

    lang_attr_short(attr, name, sizeof(name));
    if (!attr->settable) {
        const char *hint = "set may rewrite only descriptive attributes: label, id, "
                           "application, subject, issuer, serial-number, object-id, url, "
                           "start-date, end-date, owner, ac-issuer";
        if (rule->attr == CKA_MODIFIABLE) {
            hint = "use readonly to make objects read-only";
        } else if (attr->vtype == TY_BOOL && rule->attr >= CKA_ENCRYPT &&
                   rule->attr <= CKA_DERIVE) {
            hint = "use deny to forbid an operation";
        }
        snprintf(msg, sizeof(msg), "attribute '%s' cannot be rewritten", name);
        rule_error(c, rule, hint, msg);
        ok = false;
    }
    for (size_t i = 0; i < c->prog->n_rules; i++) {
        count += c->prog->rules[i].kind == R_SET && c->prog->rules[i].attr == rule->attr;
    }
    if (count >= LANG_MAX_SETS) {
        snprintf(msg, sizeof(msg), "too many set rules for '%s' (at most %d)", name, LANG_MAX_SETS);
        rule_error(c, rule, "combine the rewrites into fewer set rules", msg);
        ok = false;
    }
    if (!check_node(c, rule->value, true)) {
        return false;
    }
    value = &c->prog->nodes[rule->value];
    if (value->dynamic) {
        node_error(c, first_dynamic(c->prog, rule->value), "use these in deny rules",
                   "mechanism and operation are known only in deny rules");
        return false;
    }
    if (ok && !byte_like(value->type)) {
        snprintf(msg, sizeof(msg), "type mismatch: '%s' is %s but the value is %s", name,
                 lang_type_name(attr->vtype), lang_type_name(value->type));
        node_error(c, value, "give a string or a 0x byte string", msg);
        ok = false;
    }
    return ok;
}

static bool check_route(lang_compiler *c, lang_rule *rule)
{
    const char *layer = c->prog->pool + rule->layer_off;
    char msg[160], hint[512];
    bool read_only = false;

    if (c->scope == NULL) {
        return true;
    }
    if (!scope_has_layer(c->scope, layer, strlen(layer), &read_only)) {
        snprintf(msg, sizeof(msg), "route to unknown layer \"%.60s\"", layer);
        scope_list(c->scope, hint, sizeof(hint));
        rule_error(c, rule, hint, msg);
        return false;
    }
    if (read_only) {
        snprintf(msg, sizeof(msg), "route to read-only layer \"%.60s\"", layer);
        rule_error(c, rule, "new objects can only go to a writable layer", msg);
        return false;
    }
    return true;
}

/*
 * Checks one parsed rule (its condition, set value, route layer). Returns
 * true when it may join the program; otherwise every problem found has
 * been reported through lang_error.
 */
bool lang_check_rule(lang_compiler *c, lang_rule *rule)
{
    bool ok = true;

    if (rule->cond != LANG_NONE) {
        if (check_node(c, rule->cond, false)) {
            rule->dynamic = c->prog->nodes[rule->cond].dynamic;
            if (rule->dynamic && rule->kind != R_DENY) {
                node_error(c, first_dynamic(c->prog, rule->cond), "use these in deny rules",
                           "mechanism and operation are known only in deny rules");
                ok = false;
            }
        } else {
            ok = false;
        }
    }
    if (rule->kind == R_SET) {
        ok = check_set(c, rule) && ok;
    } else if (rule->kind == R_ROUTE) {
        ok = check_route(c, rule) && ok;
    }
    return ok;
}
