/*
 * model.c - builds rules_policy from the validated document tree.
 *
 * Owns step 4a of a load (see policy_internal.h): reading attribute values
 * (trimmed words, numbers, two-word choices), resolving relative paths
 * against the policy's folder, and filling modules, layers, tokens, their
 * views and limits. Values wrong in themselves (a version, a range, an
 * empty path) are reported here; the checks that relate one element to
 * another are in semantics.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "policy_internal.h"

#define PIN_LEN_LIMIT 255              /* largest min-pin-len / max-pin-len */
#define KDF_OPS_MIN   1ULL             /* crypto_pwhash_argon2id_OPSLIMIT_MIN */
#define KDF_OPS_MAX   4294967295ULL    /* crypto_pwhash_argon2id_OPSLIMIT_MAX */
#define KDF_MEM_MIN   8192ULL          /* crypto_pwhash_argon2id_MEMLIMIT_MIN */
#define KDF_MEM_MAX   4398046510080ULL /* crypto_pwhash_argon2id_MEMLIMIT_MAX (64-bit) */

/* ---------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------ */

/* The attribute name of node as a malloc'd string with surrounding XML
 * whitespace removed when trim is set. Returns 0 with *out set (NULL when
 * the attribute is absent), or -1 with an error in ld (out of memory). */
static int get_attr(loader *ld, xmlNodePtr node, const char *name, bool trim, char **out)
{
    xmlChar *value = xmlGetNoNsProp(node, (const xmlChar *)name);
    const char *start = (const char *)value;

    *out = NULL;
    if (value == NULL) {
        return xmlHasNsProp(node, (const xmlChar *)name, NULL) == NULL ? 0 : -1;
    }
    size_t len = strlen(start);
    if (trim) {
        while (len > 0 && loader_is_space(*start)) {
            start++;
            len--;
        }
        while (len > 0 && loader_is_space(start[len - 1])) {
            len--;
        }
    }
    *out = strndup(start, len);
    xmlFree(value);
    if (*out == NULL) {
        loader_error(ld, loader_line(node), "out of memory");
        return -1;
    }
    return 0;
}

/* Reads an unsigned number attribute (the schema already checked its
 * form). Returns 0 with *value set (left alone when the attribute is
 * absent), or -1 with an error in ld. */
static int get_number(loader *ld, xmlNodePtr node, const char *name, unsigned long long max,
                      unsigned long long *value)
{
    char *text = NULL;
    char *end = NULL;
    int rc = -1;

    if (get_attr(ld, node, name, true, &text) != 0) {
        goto out;
    }
    if (text == NULL) {
        rc = 0;
        goto out;
    }
    const char *digits = text[0] == '+' ? text + 1 : text;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, 10);
    if (digits[0] < '0' || digits[0] > '9' || *end != '\0' || errno != 0 || v > max) {
        loader_error(ld, loader_line(node), "%s=\"%s\" is not a number from 0 to %llu", name, text,
                     max);
        goto out;
    }
    *value = v;
    rc = 0;
out:
    free(text);
    return rc;
}

/* Reads an attribute whose value is one of two words (the schema already
 * checked which). Returns 0 with *value true when it is the second word,
 * false when it is the first or the attribute is absent; -1 on OOM. */
static int get_choice(loader *ld, xmlNodePtr node, const char *name, const char *second,
                      bool *value)
{
    char *text = NULL;
    if (get_attr(ld, node, name, true, &text) != 0) {
        return -1;
    }
    *value = text != NULL && strcmp(text, second) == 0;
    free(text);
    return 0;
}

/* Joins path to the policy's folder unless it is absolute. Returns a
 * malloc'd absolute path, or NULL when path is relative and the policy
 * has no folder (read from memory under a relative name) or memory ran
 * out; *relative tells the two apart. */
static char *resolve_path(const loader *ld, const char *path, bool *relative)
{
    char *out = NULL;

    *relative = false;
    if (path[0] == '/') {
        return strdup(path);
    }
    if (ld->dir == NULL) {
        *relative = true;
        return NULL;
    }
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
    }
    if (asprintf(&out, "%s%s%s", ld->dir, strcmp(ld->dir, "/") == 0 ? "" : "/", path) < 0) {
        return NULL;
    }
    return out;
}

static size_t count_children(xmlNodePtr parent, const char *name)
{
    size_t n = 0;
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name)) {
            n++;
        }
    }
    return n;
}

/* ---------------------------------------------------------------------
 * Building the model (the document already matches the schema)
 * ------------------------------------------------------------------ */

/* Resolves the path attribute attr of node into *out. Returns 0 (with an
 * error in ld when the path is empty or cannot be made absolute, *out
 * then NULL), or -1 on OOM. what names the element in messages. */
static int get_path(loader *ld, xmlNodePtr node, const char *attr, const char *what, char **out)
{
    char *raw = NULL;
    bool relative = false;
    int rc = -1;

    *out = NULL;
    if (get_attr(ld, node, attr, false, &raw) != 0) {
        goto out;
    }
    if (raw == NULL) {
        rc = 0;
        goto out;
    }
    if (raw[0] == '\0') {
        loader_error(ld, loader_line(node), "%s %s is empty; expected a file path", what, attr);
        rc = 0;
        goto out;
    }
    *out = resolve_path(ld, raw, &relative);
    if (*out == NULL && relative) {
        loader_error(ld, loader_line(node),
                     "%s %s \"%s\" is relative and the policy has no folder to resolve it against; "
                     "give an absolute path",
                     what, attr, raw);
        rc = 0;
        goto out;
    }
    if (*out == NULL) {
        loader_error(ld, loader_line(node), "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(raw);
    return rc;
}

static int build_module(loader *ld, xmlNodePtr node, rules_module *module)
{
    bool process = false;

    module->line = loader_line(node);
    if (get_attr(ld, node, "id", false, &module->id) != 0 ||
        get_path(ld, node, "path", "module", &module->path) != 0 ||
        get_choice(ld, node, "isolate", "process", &process) != 0 ||
        get_attr(ld, node, "init-reserved", false, &module->init_reserved) != 0) {
        return -1;
    }
    module->isolate = process ? RULES_ISOLATE_PROCESS : RULES_ISOLATE_NONE;
    return 0;
}

static int build_layer(loader *ld, xmlNodePtr node, rules_layer *layer)
{
    bool read_only = false;
    bool lazy = false;

    layer->line = loader_line(node);
    if (get_attr(ld, node, "id", false, &layer->id) != 0 ||
        get_attr(ld, node, "module", false, &layer->module_id) != 0 ||
        get_attr(ld, node, "token", false, &layer->token) != 0 ||
        get_attr(ld, node, "serial", false, &layer->serial) != 0 ||
        get_choice(ld, node, "access", "read-only", &read_only) != 0 ||
        get_choice(ld, node, "provision", "lazy", &lazy) != 0) {
        return -1;
    }
    layer->access = read_only ? RULES_ACCESS_READ_ONLY : RULES_ACCESS_READ_WRITE;
    layer->provision = lazy ? RULES_PROVISION_LAZY : RULES_PROVISION_NONE;
    return 0;
}

/* Splits a whitespace-separated list into a malloc'd array of malloc'd
 * strings. Returns 0 (possibly with *n == 0), or -1 on OOM. */
static int split_words(const char *text, char ***words, size_t *n)
{
    size_t count = 0;
    const char *p = text;

    *words = NULL;
    *n = 0;
    while (*p != '\0') {
        while (loader_is_space(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        count++;
        while (*p != '\0' && !loader_is_space(*p)) {
            p++;
        }
    }
    if (count == 0) {
        return 0;
    }
    *words = calloc(count, sizeof(char *));
    if (*words == NULL) {
        return -1;
    }
    for (p = text; *n < count;) {
        while (loader_is_space(*p)) {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && !loader_is_space(*p)) {
            p++;
        }
        (*words)[*n] = strndup(start, (size_t)(p - start));
        if ((*words)[*n] == NULL) {
            return -1; /* the caller frees what was made */
        }
        (*n)++;
    }
    return 0;
}

/* Copies the text of <rules> verbatim. A comment inside it becomes as many
 * line breaks as it spans, so that line numbers in the text still match
 * the file. Returns a malloc'd string, or NULL on OOM. */
static char *rules_text(xmlNodePtr node)
{
    xmlBufferPtr buf = xmlBufferCreate();
    char *text = NULL;

    if (buf == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            xmlBufferCat(buf, c->content);
        } else if (c->type == XML_COMMENT_NODE && c->content != NULL) {
            for (const xmlChar *p = c->content; *p != '\0'; p++) {
                if (*p == '\n') {
                    xmlBufferCCat(buf, "\n");
                }
            }
        }
    }
    text = strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    return text;
}

static int build_view(loader *ld, xmlNodePtr node, rules_view *view)
{
    char *layers = NULL;
    int rc = -1;

    view->line = loader_line(node);
    if (get_attr(ld, node, "id", false, &view->id) != 0 ||
        get_attr(ld, node, "layers", false, &layers) != 0 ||
        get_choice(ld, node, "public", "true", &view->is_public) != 0 ||
        get_choice(ld, node, "whiteout", "allow", &view->allow_whiteout) != 0) {
        goto out;
    }
    if (split_words(layers != NULL ? layers : "", &view->layers, &view->n_layers) != 0) {
        loader_error(ld, view->line, "out of memory");
        goto out;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (loader_is_element(c, "rules")) {
            view->rules_text = rules_text(c);
            /* The text starts right after "<rules>", on the line libxml2
             * gives the element (the line its start tag ends on). */
            view->rules_line = loader_line(c);
            if (view->rules_text == NULL) {
                loader_error(ld, view->rules_line, "out of memory");
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(layers);
    return rc;
}

static int build_kdf(loader *ld, xmlNodePtr node, rules_token *token)
{
    unsigned long long ops = 0;
    unsigned long long mem = 0;
    unsigned line = loader_line(node);
    bool has_ops = xmlHasNsProp(node, (const xmlChar *)"ops", NULL) != NULL;
    bool has_mem = xmlHasNsProp(node, (const xmlChar *)"mem", NULL) != NULL;

    if (get_number(ld, node, "ops", ULLONG_MAX, &ops) != 0 ||
        get_number(ld, node, "mem", ULLONG_MAX, &mem) != 0) {
        return 0; /* reported */
    }
    if (has_ops && (ops < KDF_OPS_MIN || ops > KDF_OPS_MAX)) {
        loader_error(ld, line, "kdf ops=\"%llu\" is %s libsodium's Argon2id %s of %llu", ops,
                     ops < KDF_OPS_MIN ? "below" : "above",
                     ops < KDF_OPS_MIN ? "minimum" : "maximum",
                     ops < KDF_OPS_MIN ? KDF_OPS_MIN : KDF_OPS_MAX);
    } else {
        token->kdf_ops = ops;
    }
    if (has_mem && (mem < KDF_MEM_MIN || mem > KDF_MEM_MAX || mem > SIZE_MAX)) {
        loader_error(ld, line, "kdf mem=\"%llu\" is %s libsodium's Argon2id %s of %llu bytes", mem,
                     mem < KDF_MEM_MIN ? "below" : "above",
                     mem < KDF_MEM_MIN ? "minimum" : "maximum",
                     mem < KDF_MEM_MIN ? KDF_MEM_MIN : KDF_MEM_MAX);
    } else {
        token->kdf_mem = (size_t)mem;
    }
    return 0;
}

/* Reads the pin lengths and failure limit of a token and checks them. */
static void build_token_limits(loader *ld, xmlNodePtr node, rules_token *token)
{
    unsigned long long max_failed = 10;
    unsigned long long recovery = RULES_DEFAULT_RECOVERY;
    unsigned long long min_pin = 4;
    unsigned long long max_pin = PIN_LEN_LIMIT;
    unsigned line = loader_line(node);

    if (get_number(ld, node, "max-failed-logins", UINT_MAX, &max_failed) == 0 && max_failed == 0) {
        loader_error(ld, line, "max-failed-logins=\"0\" is not allowed; expected 1 or more");
    }
    (void)get_number(ld, node, "failed-login-recovery", RULES_MAX_RECOVERY, &recovery);
    int min_ok = get_number(ld, node, "min-pin-len", PIN_LEN_LIMIT, &min_pin) == 0;
    int max_ok = get_number(ld, node, "max-pin-len", PIN_LEN_LIMIT, &max_pin) == 0;
    if (min_ok && min_pin == 0) {
        loader_error(ld, line, "min-pin-len=\"0\" is not allowed; expected 1 to %d", PIN_LEN_LIMIT);
        min_ok = 0;
    }
    if (max_ok && max_pin == 0) {
        loader_error(ld, line, "max-pin-len=\"0\" is not allowed; expected 1 to %d", PIN_LEN_LIMIT);
        max_ok = 0;
    }
    if (min_ok && max_ok && min_pin > max_pin) {
        loader_error(ld, line, "min-pin-len (%llu) is greater than max-pin-len (%llu)", min_pin,
                     max_pin);
    }
    token->max_failed_logins = (unsigned)max_failed;
    token->failed_login_recovery = (unsigned)recovery;
    token->min_pin_len = (unsigned)min_pin;
    token->max_pin_len = (unsigned)max_pin;
}

static int build_token(loader *ld, xmlNodePtr node, rules_token *token)
{
    size_t i = 0;

    token->line = loader_line(node);
    if (get_attr(ld, node, "label", false, &token->label) != 0 ||
        get_attr(ld, node, "manufacturer", false, &token->manufacturer) != 0 ||
        get_attr(ld, node, "public-view", true, &token->public_attr) != 0) {
        return -1;
    }
    if (token->manufacturer == NULL && (token->manufacturer = strdup("Strata")) == NULL) {
        loader_error(ld, token->line, "out of memory");
        return -1;
    }
    build_token_limits(ld, node, token);
    token->n_views = count_children(node, "view");
    token->views = calloc(token->n_views, sizeof(rules_view));
    if (token->views == NULL && token->n_views != 0) {
        loader_error(ld, token->line, "out of memory");
        return -1;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (loader_is_element(c, "kdf") && build_kdf(ld, c, token) != 0) {
            return -1;
        }
        if (loader_is_element(c, "view") && build_view(ld, c, &token->views[i++]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads <strata version> and the optional <catalog> and <log>. */
static int build_header(loader *ld, xmlNodePtr root, rules_policy *policy)
{
    unsigned long long version = 0;

    if (get_number(ld, root, "version", ULLONG_MAX, &version) == 0 && version != 1) {
        loader_error(ld, loader_line(root),
                     "unsupported policy version \"%llu\"; this Strata reads version=\"1\"",
                     version);
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        if (loader_is_element(c, "catalog") &&
            get_path(ld, c, "path", "catalog", &policy->catalog_path) != 0) {
            return -1;
        }
        if (!loader_is_element(c, "log")) {
            continue;
        }
        char *calls = NULL;
        if (get_attr(ld, c, "calls", true, &calls) != 0) {
            return -1;
        }
        bool is_stderr = calls != NULL && strcmp(calls, "stderr") == 0;
        free(calls);
        if (is_stderr) {
            policy->log = strdup("stderr");
            if (policy->log == NULL) {
                loader_error(ld, loader_line(c), "out of memory");
                return -1;
            }
        } else if (get_path(ld, c, "calls", "log", &policy->log) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Builds the whole model from a document that matches the schema. Returns
 * 0 (semantic errors may have been reported on the way), or -1 on OOM. */
int loader_build(loader *ld, xmlNodePtr root, rules_policy *policy)
{
    size_t m = 0, l = 0, t = 0;

    if (build_header(ld, root, policy) != 0) {
        return -1;
    }
    policy->n_modules = count_children(root, "module");
    policy->n_layers = count_children(root, "layer");
    policy->n_tokens = count_children(root, "token");
    policy->modules = calloc(policy->n_modules + 1, sizeof(rules_module));
    policy->layers = calloc(policy->n_layers + 1, sizeof(rules_layer));
    policy->tokens = calloc(policy->n_tokens + 1, sizeof(rules_token));
    if (policy->modules == NULL || policy->layers == NULL || policy->tokens == NULL) {
        loader_error(ld, 0, "out of memory");
        return -1;
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        int rc = 0;
        if (loader_is_element(c, "module")) {
            rc = build_module(ld, c, &policy->modules[m++]);
        } else if (loader_is_element(c, "layer")) {
            rc = build_layer(ld, c, &policy->layers[l++]);
        } else if (loader_is_element(c, "token")) {
            rc = build_token(ld, c, &policy->tokens[t++]);
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}
