/*
 * policy.c - the policy loader's entry points and the policy's lifetime.
 *
 * Owns the public face of strata.xml(5) loading in rules.h: where the
 * policy is looked for, rules_policy_load and rules_policy_load_memory
 * (which run the steps of policy_internal.h in order, each only when the
 * one before found no error), freeing, the lookups by id and label
 * (through the tables of index.c), and label templates. It also owns the
 * reporting every step goes through: each problem becomes one diagnostic
 * naming the policy file and line.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "policy_internal.h"

/* ---------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------ */

/* Formats one diagnostic; a message that cannot be formatted (out of
 * memory) is reported as its format string. */
void loader_vreport(loader *ld, rules_severity severity, unsigned line, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        text = NULL;
    }
    /* rules_diag_add still counts the error when memory ran out. */
    rules_diag_add(ld->diags, severity, ld->name, line, 0, "%s", text != NULL ? text : fmt);
    free(text);
}

void loader_error(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loader_vreport(ld, RULES_SEVERITY_ERROR, line, fmt, ap);
    va_end(ap);
}

void loader_warning(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loader_vreport(ld, RULES_SEVERITY_WARNING, line, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------
 * Public interface
 * ------------------------------------------------------------------ */

static bool is_blank(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!loader_is_space(buf[i])) {
            return false;
        }
    }
    return true;
}

/* The folder of name as an absolute malloc'd path: name's dirname, made
 * absolute against the working directory when allow_cwd is set. Returns
 * NULL when there is none (relative name without allow_cwd) or on OOM. */
static char *policy_dir(const char *name, bool allow_cwd)
{
    char *dir = NULL;
    char *cwd = NULL;
    const char *slash = strrchr(name, '/');
    size_t len = slash == NULL ? 0 : (size_t)(slash - name);

    if (name[0] == '/') {
        return len == 0 ? strdup("/") : strndup(name, len);
    }
    if (!allow_cwd) {
        return NULL;
    }
    cwd = getcwd(NULL, 0);
    if (cwd == NULL) {
        return NULL;
    }
    if (len == 0) {
        return cwd;
    }
    if (asprintf(&dir, "%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", (int)len, name) < 0) {
        dir = NULL;
    }
    free(cwd);
    return dir;
}

/* Loads a policy from buf for ld. Returns 0 with *out set, or -1 with at
 * least one error in ld->diags and *out NULL. */
static int load_buffer(loader *ld, const char *buf, size_t len, rules_policy **out)
{
    int rc = -1;
    xmlDocPtr doc = NULL;
    rules_policy *policy = NULL;
    size_t errors_before = ld->diags->n_errors;

    if (len > POLICY_MAX_BYTES) {
        loader_error(ld, 0, "the policy is %zu bytes; policies are limited to %d bytes (1 MiB)",
                     len, POLICY_MAX_BYTES);
        goto out;
    }
    if (is_blank(buf, len)) {
        loader_error(ld, 1, "the policy is empty; expected a <strata version=\"1\"> document");
        goto out;
    }
    xmlInitParser();
    doc = loader_parse(ld, buf, len);
    if (doc == NULL || ld->diags->n_errors != errors_before) {
        goto out;
    }
    if (loader_validate(ld, doc) != 0) {
        goto out;
    }
    policy = calloc(1, sizeof(*policy));
    if (policy == NULL || (policy->path = strdup(ld->name)) == NULL) {
        loader_error(ld, 0, "out of memory");
        goto out;
    }
    /* Values wrong in themselves (a version, a range) are reported while
     * building; the checks still run so that one pass reports them all. */
    if (loader_build(ld, xmlDocGetRootElement(doc), policy) != 0) {
        goto out;
    }
    if (loader_index_policy(policy) != 0) {
        loader_error(ld, 0, "out of memory");
        goto out;
    }
    if (loader_check(ld, policy) != 0 || ld->diags->n_errors != errors_before) {
        goto out;
    }
    *out = policy;
    policy = NULL;
    rc = 0;
out:
    rules_policy_free(policy);
    xmlFreeDoc(doc);
    if (rc != 0 && ld->diags->n_errors == errors_before) {
        loader_error(ld, 0, "the policy could not be loaded");
    }
    return rc;
}

/* Returns 0 with *out set (warnings may be in diags), or -1 with *out NULL
 * and at least one error in diags: unreadable, too large, malformed,
 * schema-invalid or semantically wrong policy, or out of memory. */
int rules_policy_load(const char *path, rules_policy **out, rules_diags *diags)
{
    int rc = -1;
    char *buf = NULL;
    size_t len = 0;
    loader ld = {.name = path != NULL ? path : "<policy>", .diags = diags};

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        loader_error(&ld, 0, "no policy file was given");
        goto out;
    }
    if (loader_read_file(&ld, path, &buf, &len) != 0) {
        goto out;
    }
    ld.dir = policy_dir(path, true);
    rc = load_buffer(&ld, buf, len, out);
out:
    free(buf);
    free(ld.dir);
    free(ld.flagged);
    return rc;
}

/* As rules_policy_load, from memory. Relative paths in the policy resolve
 * against the folder of name when name is an absolute path; otherwise
 * they are errors. */
int rules_policy_load_memory(const char *buf, size_t len, const char *name, rules_policy **out,
                             rules_diags *diags)
{
    loader ld = {.name = name != NULL ? name : "<memory>", .diags = diags};
    int rc = -1;

    *out = NULL;
    if (buf == NULL && len != 0) {
        loader_error(&ld, 0, "no policy text was given");
        return -1;
    }
    ld.dir = policy_dir(ld.name, false);
    rc = load_buffer(&ld, buf != NULL ? buf : "", len, out);
    free(ld.dir);
    free(ld.flagged);
    return rc;
}

static void free_view(rules_view *view)
{
    free(view->id);
    for (size_t i = 0; i < view->n_layers; i++) {
        free(view->layers[i]);
    }
    free(view->layers);
    free(view->rules_text);
    if (view->rules != NULL) {
        rules_program_free(view->rules);
    }
}

void rules_policy_free(rules_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    for (size_t i = 0; policy->modules != NULL && i < policy->n_modules; i++) {
        free(policy->modules[i].id);
        free(policy->modules[i].path);
        free(policy->modules[i].init_reserved);
    }
    for (size_t i = 0; policy->layers != NULL && i < policy->n_layers; i++) {
        free(policy->layers[i].id);
        free(policy->layers[i].module_id);
        free(policy->layers[i].token);
        free(policy->layers[i].serial);
    }
    for (size_t i = 0; policy->tokens != NULL && i < policy->n_tokens; i++) {
        rules_token *token = &policy->tokens[i];
        for (size_t v = 0; token->views != NULL && v < token->n_views; v++) {
            free_view(&token->views[v]);
        }
        free(token->views);
        loader_index_free(token->views_by_id);
        free(token->label);
        free(token->manufacturer);
        free(token->public_attr);
    }
    free(policy->modules);
    free(policy->layers);
    free(policy->tokens);
    loader_index_free(policy->modules_by_id);
    loader_index_free(policy->layers_by_id);
    loader_index_free(policy->tokens_by_label);
    free(policy->path);
    free(policy->catalog_path);
    free(policy->log);
    free(policy);
}

/* The lookups return the first element bearing the name, as
 * loader_index_lookup finds it: through the table the loader built, or by
 * a scan for a policy made some other way. */
const rules_module *rules_policy_module(const rules_policy *policy, const char *id)
{
    if (policy == NULL) {
        return NULL;
    }
    size_t i = loader_index_lookup(policy->modules_by_id, policy->modules, policy->n_modules,
                                   sizeof(rules_module), offsetof(rules_module, id), id);
    return i < policy->n_modules ? &policy->modules[i] : NULL;
}

const rules_layer *rules_policy_layer(const rules_policy *policy, const char *id)
{
    if (policy == NULL) {
        return NULL;
    }
    size_t i = loader_index_lookup(policy->layers_by_id, policy->layers, policy->n_layers,
                                   sizeof(rules_layer), offsetof(rules_layer, id), id);
    return i < policy->n_layers ? &policy->layers[i] : NULL;
}

const rules_token *rules_policy_token(const rules_policy *policy, const char *label)
{
    if (policy == NULL) {
        return NULL;
    }
    size_t i = loader_index_lookup(policy->tokens_by_label, policy->tokens, policy->n_tokens,
                                   sizeof(rules_token), offsetof(rules_token, label), label);
    return i < policy->n_tokens ? &policy->tokens[i] : NULL;
}

const rules_view *rules_token_view(const rules_token *token, const char *id)
{
    if (token == NULL) {
        return NULL;
    }
    size_t i = loader_index_lookup(token->views_by_id, token->views, token->n_views,
                                   sizeof(rules_view), offsetof(rules_view, id), id);
    return i < token->n_views ? &token->views[i] : NULL;
}

/* Returns 0 with buf holding the label (every "{view}" replaced by view),
 * or -1 when it does not fit in size bytes with its NUL, or when the
 * label needs a view and view is NULL. */
int rules_layer_token_label(const rules_layer *layer, const char *view, char *buf, size_t size)
{
    const size_t placeholder_len = strlen(VIEW_PLACEHOLDER);
    const char *p = layer != NULL ? layer->token : NULL;
    size_t used = 0;

    if (p == NULL || buf == NULL || size == 0) {
        return -1;
    }
    while (*p != '\0') {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, VIEW_PLACEHOLDER, placeholder_len) == 0) {
            if (view == NULL) {
                return -1;
            }
            piece = view;
            len = strlen(view);
            p += placeholder_len;
        } else {
            p++;
        }
        if (len >= size - used) {
            return -1;
        }
        memcpy(buf + used, piece, len);
        used += len;
    }
    buf[used] = '\0';
    return 0;
}

/* Returns getenv(name) when it is set and not empty, else NULL. */
static const char *env_value(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* The user's policy path: $XDG_CONFIG_HOME/strata/strata.xml when
 * XDG_CONFIG_HOME is an absolute path (the XDG rule), else
 * $HOME/.config/strata/strata.xml; NULL when neither applies or on OOM
 * (*oom tells). */
static char *user_policy_path(bool *oom)
{
    const char *xdg = env_value("XDG_CONFIG_HOME");
    const char *home = env_value("HOME");
    char *path = NULL;
    int n = -1;

    *oom = false;
    if (xdg != NULL && xdg[0] == '/') {
        n = asprintf(&path, "%s/strata/strata.xml", xdg);
    } else if (home != NULL) {
        n = asprintf(&path, "%s/.config/strata/strata.xml", home);
    } else {
        return NULL;
    }
    if (n < 0) {
        *oom = true;
        return NULL;
    }
    return path;
}

static const char system_policy_path[] = "/etc/strata/strata.xml";

/* See rules.h. */
char *rules_policy_not_found(void)
{
    bool oom = false;
    char *user, *text = NULL;
    int n;

    if (env_value("STRATA_CONF") != NULL || access(system_policy_path, F_OK) == 0) {
        return NULL;
    }
    user = user_policy_path(&oom);
    if (user != NULL && access(user, F_OK) == 0) {
        free(user);
        return NULL;
    }
    if (user != NULL) {
        n = asprintf(&text,
                     "no policy file: looked for %s (the user's), then %s (system-wide); "
                     "STRATA_CONF is not set",
                     user, system_policy_path);
    } else {
        n = asprintf(&text,
                     "no policy file: looked for %s (system-wide; no HOME or XDG_CONFIG_HOME for "
                     "a user's); STRATA_CONF is not set",
                     system_policy_path);
    }
    free(user);
    return n < 0 ? NULL : text;
}

/* Returns a malloc'd path: $STRATA_CONF when set (whether or not it
 * exists); else the user's file when it exists; else the system file
 * /etc/strata/strata.xml when it exists; else the user's path when there
 * is a home, or the system path. NULL on allocation failure. */
char *rules_policy_default_path(void)
{
    const char *system_path = system_policy_path;
    const char *conf = env_value("STRATA_CONF");
    bool oom = false;
    char *user = NULL;

    if (conf != NULL) {
        return strdup(conf);
    }
    user = user_policy_path(&oom);
    if (oom) {
        return NULL;
    }
    if (user != NULL && access(user, F_OK) == 0) {
        return user;
    }
    if (user == NULL || access(system_path, F_OK) == 0) {
        free(user);
        return strdup(system_path);
    }
    return user;
}
