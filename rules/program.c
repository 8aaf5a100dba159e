/*
 * program.c - rule programs: compiling text (lexer.c, parser.c, check.c)
 * into the flat form of lang.h, the program's growable arrays, the
 * diagnostics it reports, and the queries the engine makes about a
 * program (attributes read, shadow identity, rewritten attributes).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

static const CK_ATTRIBUTE_TYPE default_shadow[] = {CKA_CLASS, CKA_ID};

/*
 * Appends one diagnostic to c->diags (line is a line of the text; 0 keeps
 * it unknown). It goes through rules_diag_add like every other diagnostic:
 * diag.c alone grows the list (its capacity follows from the count, so a
 * list grown here by one item would be overrun by the next
 * rules_diag_add), and it keeps the message on one line (a decoded string
 * literal quoted in a message may hold a line break). On allocation
 * failure the diagnostic is dropped and c->oom is set, so compilation
 * still fails.
 */
void lang_error(lang_compiler *c, unsigned line, unsigned col, const char *hint, const char *fmt,
                ...)
{
    rules_diags *d = c->diags;
    char message[512];
    va_list ap;

    c->line_errors++;
    if (d == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (rules_diag_add(d, RULES_SEVERITY_ERROR, c->file != NULL ? c->file : "<rules>",
                       line != 0 ? c->first_line + line - 1 : 0, col, "%s", message) != 0 ||
        (hint != NULL && rules_diag_hint(d, "%s", hint) != 0)) {
        c->oom = true;
    }
}

static bool grow(lang_compiler *c, void **array, size_t *cap, size_t count, size_t elem)
{
    size_t ncap;
    void *p;

    if (count < *cap) {
        return true;
    }
    ncap = *cap ? *cap * 2 : 32;
    p = realloc(*array, ncap * elem);
    if (p == NULL) {
        c->oom = true;
        return false;
    }
    *array = p;
    *cap = ncap;
    return true;
}

static uint16_t child_height(const rules_program *p, uint32_t idx)
{
    return idx == LANG_NONE ? 0 : p->nodes[idx].height;
}

/*
 * Appends node (children must exist already) and returns its index, or
 * LANG_NONE when the expression grows too high or too large (an error is
 * reported) or memory runs out.
 */
uint32_t lang_node_add(lang_compiler *c, const lang_node *node)
{
    rules_program *p = c->prog;
    uint16_t h = 0;

    h = child_height(p, node->a);
    if (child_height(p, node->b) > h) {
        h = child_height(p, node->b);
    }
    for (uint32_t i = 0; node->kind == N_IN && i < node->len; i++) {
        uint16_t hi = child_height(p, p->lists[node->off + i]);
        h = hi > h ? hi : h;
    }
    if (h >= LANG_MAX_HEIGHT || p->n_nodes >= LANG_MAX_NODES) {
        lang_error(c, node->line, node->col, "split the rule into several simpler rules",
                   "expression too complex");
        return LANG_NONE;
    }
    if (!grow(c, (void **)&p->nodes, &c->cap_nodes, p->n_nodes, sizeof(*p->nodes))) {
        return LANG_NONE;
    }
    p->nodes[p->n_nodes] = *node;
    p->nodes[p->n_nodes].height = (uint16_t)(h + 1);
    return (uint32_t)p->n_nodes++;
}

uint32_t lang_pool_add(lang_compiler *c, const void *bytes, size_t len)
{
    rules_program *p = c->prog;
    size_t off = p->pool_len;

    if (len > UINT32_MAX / 2 || off > UINT32_MAX / 2) {
        c->oom = true;
        return UINT32_MAX;
    }
    while (c->cap_pool == 0 || c->cap_pool < off + len) {
        size_t ncap = c->cap_pool ? c->cap_pool * 2 : 256;
        char *np = realloc(p->pool, ncap);
        if (np == NULL) {
            c->oom = true;
            return UINT32_MAX;
        }
        p->pool = np;
        c->cap_pool = ncap;
    }
    if (len > 0) {
        memcpy(p->pool + off, bytes, len);
    }
    p->pool_len += len;
    return (uint32_t)off;
}

uint32_t lang_list_add(lang_compiler *c, uint32_t node)
{
    rules_program *p = c->prog;

    if (!grow(c, (void **)&p->lists, &c->cap_lists, p->n_lists, sizeof(*p->lists))) {
        return LANG_NONE;
    }
    p->lists[p->n_lists] = node;
    return (uint32_t)p->n_lists++;
}

static int type_cmp(const void *a, const void *b)
{
    CK_ATTRIBUTE_TYPE x = *(const CK_ATTRIBUTE_TYPE *)a, y = *(const CK_ATTRIBUTE_TYPE *)b;

    return x < y ? -1 : x > y;
}

static size_t attr_slot(const rules_program *p, CK_ATTRIBUTE_TYPE type)
{
    const CK_ATTRIBUTE_TYPE *hit =
        bsearch(&type, p->attrs, p->n_attrs, sizeof(*p->attrs), type_cmp);

    return (size_t)(hit - p->attrs);
}

/*
 * Builds the sorted unique list of attributes the program reads (every
 * attribute reference and the shadow identity) and points each attribute
 * node at its slot in it. A program that reads modulus-bits reads
 * CKA_MODULUS too: RSA private keys have no CKA_MODULUS_BITS (PKCS#11
 * gives it to public keys only), so eval.c derives it from the modulus.
 * Returns false on allocation failure.
 */
static bool collect_attributes(rules_program *p)
{
    bool modulus_bits = false;
    size_t n = 0;

    if (!p->has_shadow) {
        memcpy(p->shadow, default_shadow, sizeof(default_shadow));
        p->n_shadow = sizeof(default_shadow) / sizeof(default_shadow[0]);
    }
    p->attrs = malloc((p->n_nodes + p->n_shadow + 1) * sizeof(*p->attrs));
    if (p->attrs == NULL) {
        return false;
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i].kind == N_ATTR) {
            p->attrs[n++] = p->nodes[i].num;
            modulus_bits = modulus_bits || p->nodes[i].num == CKA_MODULUS_BITS;
        }
    }
    if (modulus_bits) {
        p->attrs[n++] = CKA_MODULUS;
    }
    for (size_t i = 0; i < p->n_shadow; i++) {
        p->attrs[n++] = p->shadow[i];
    }
    qsort(p->attrs, n, sizeof(*p->attrs), type_cmp);
    p->n_attrs = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->n_attrs == 0 || p->attrs[p->n_attrs - 1] != p->attrs[i]) {
            p->attrs[p->n_attrs++] = p->attrs[i];
        }
    }
    for (size_t i = 0; i < p->n_nodes; i++) {
        if (p->nodes[i].kind == N_ATTR) {
            p->nodes[i].slot = (uint32_t)attr_slot(p, p->nodes[i].num);
        }
    }
    p->modulus_slot = modulus_bits ? attr_slot(p, CKA_MODULUS) : SIZE_MAX;
    for (size_t i = 0; i < p->n_rules; i++) {
        p->has_readonly = p->has_readonly || p->rules[i].kind == R_READONLY;
    }
    return true;
}

/*
 * Compiles text (its first line is line first_line of file) for a view
 * described by scope (NULL: layer names are not checked). Returns the
 * program, or NULL when the text has errors (each one in diags, which may
 * be NULL to discard them) or memory runs out (an error is added when it
 * can be).
 */
rules_program *rules_compile(const char *text, const char *file, unsigned first_line,
                             const rules_scope *scope, rules_diags *diags)
{
    lang_compiler c;
    rules_program *prog = NULL;

    memset(&c, 0, sizeof(c));
    c.file = file;
    c.first_line = first_line != 0 ? first_line : 1;
    c.scope = scope;
    c.diags = diags;
    c.prog = calloc(1, sizeof(*c.prog));
    if (c.prog == NULL) {
        goto out;
    }
    if (text == NULL) {
        text = "";
    }
    lang_lexer_init(&c.lx, text, strlen(text));
    lang_parse(&c);
    if (c.oom || c.line_errors > 0) {
        goto out;
    }
    if (!collect_attributes(c.prog)) {
        c.oom = true;
        goto out;
    }
    prog = c.prog;
    c.prog = NULL;
out:
    if (prog == NULL && c.oom) {
        lang_error(&c, 0, 0, NULL, "out of memory compiling rules");
    }
    rules_program_free(c.prog);
    return prog;
}

void rules_program_free(rules_program *program)
{
    if (program == NULL) {
        return;
    }
    free(program->nodes);
    free(program->rules);
    free(program->lists);
    free(program->pool);
    free(program->attrs);
    free(program);
}

size_t rules_program_attributes(const rules_program *program, const CK_ATTRIBUTE_TYPE **types)
{
    if (program == NULL) {
        *types = default_shadow;
        return sizeof(default_shadow) / sizeof(default_shadow[0]);
    }
    *types = program->attrs;
    return program->n_attrs;
}

size_t rules_program_shadow(const rules_program *program, const CK_ATTRIBUTE_TYPE **types)
{
    if (program == NULL) {
        *types = default_shadow;
        return sizeof(default_shadow) / sizeof(default_shadow[0]);
    }
    *types = program->shadow;
    return program->n_shadow;
}

/* True when a set rule names type, or type is CKA_MODIFIABLE and some
 * readonly rule exists. */
bool rules_program_rewrites(const rules_program *program, CK_ATTRIBUTE_TYPE type)
{
    if (program == NULL) {
        return false;
    }
    if (type == CKA_MODIFIABLE && program->has_readonly) {
        return true;
    }
    for (size_t i = 0; i < program->n_rules; i++) {
        if (program->rules[i].kind == R_SET && program->rules[i].attr == type) {
            return true;
        }
    }
    return false;
}
