/*
 * diag.c - diagnostics: a growable list of file:line:col messages.
 *
 * Every problem the policy loader or the rule compiler finds becomes one
 * rules_diag. Messages are kept to one line so that a caller can print
 * them as they are, one per line, in the form compilers use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

void rules_diags_init(rules_diags *diags)
{
    diags->items = NULL;
    diags->count = 0;
    diags->n_errors = 0;
}

void rules_diags_clear(rules_diags *diags)
{
    for (size_t i = 0; i < diags->count; i++) {
        free(diags->items[i].file);
        free(diags->items[i].message);
        free(diags->items[i].hint);
    }
    free(diags->items);
    rules_diags_init(diags);
}

/* Formats fmt/ap into a malloc'd string with every line break turned into
 * a space and trailing blanks removed. Returns NULL when memory ran out. */
__attribute__((format(printf, 1, 0))) static char *one_line(const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        return NULL;
    }
    for (char *p = text; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ' ') {
        text[--len] = '\0';
    }
    return text;
}

/* The capacity allocated for count items: 0, or the smallest power of two
 * that is at least count and at least 8 (the list grows by doubling). */
static size_t capacity_of(size_t count)
{
    size_t cap = 8;
    if (count == 0) {
        return 0;
    }
    while (cap < count) {
        cap *= 2;
    }
    return cap;
}

/* Makes room for one more item. Returns 0, or -1 when memory ran out. */
static int grow(rules_diags *diags)
{
    size_t cap = capacity_of(diags->count);
    if (diags->count < cap) {
        return 0;
    }
    size_t new_cap = cap == 0 ? 8 : cap * 2;
    rules_diag *items = realloc(diags->items, new_cap * sizeof(*items));
    if (items == NULL) {
        return -1;
    }
    diags->items = items;
    return 0;
}

/* Returns 0 with the diagnostic appended, or -1 when memory ran out (an
 * error still counts in n_errors so that a failed load never looks clean). */
int rules_diag_add(rules_diags *diags, rules_severity severity, const char *file, unsigned line,
                   unsigned col, const char *fmt, ...)
{
    int rc = -1;
    char *message = NULL;
    char *file_copy = NULL;
    va_list ap;

    if (severity == RULES_SEVERITY_ERROR) {
        diags->n_errors++;
    }
    va_start(ap, fmt);
    message = one_line(fmt, ap);
    va_end(ap);
    file_copy = strdup(file != NULL ? file : "<unknown>");
    if (message == NULL || file_copy == NULL || grow(diags) != 0) {
        goto out;
    }
    diags->items[diags->count++] = (rules_diag){
        .severity = severity,
        .file = file_copy,
        .line = line,
        .col = col,
        .message = message,
        .hint = NULL,
    };
    message = NULL;
    file_copy = NULL;
    rc = 0;
out:
    free(message);
    free(file_copy);
    return rc;
}

/* Returns 0 with the hint set on the last diagnostic, or -1 when there is
 * no diagnostic or memory ran out. */
int rules_diag_hint(rules_diags *diags, const char *fmt, ...)
{
    va_list ap;

    if (diags->count == 0) {
        return -1;
    }
    va_start(ap, fmt);
    char *hint = one_line(fmt, ap);
    va_end(ap);
    if (hint == NULL) {
        return -1;
    }
    rules_diag *last = &diags->items[diags->count - 1];
    free(last->hint);
    last->hint = hint;
    return 0;
}

/* Returns what snprintf returns: the length of the full text, which may be
 * more than size - 1 when buf was too small (buf is then truncated but
 * still NUL-terminated when size > 0), or a negative value on error. */
int rules_diag_format(const rules_diag *diag, char *buf, size_t size)
{
    const char *file = diag->file != NULL ? diag->file : "<unknown>";
    const char *severity = diag->severity == RULES_SEVERITY_ERROR ? "error" : "warning";
    const char *message = diag->message != NULL ? diag->message : "";
    const char *open = diag->hint != NULL ? " (" : "";
    const char *hint = diag->hint != NULL ? diag->hint : "";
    const char *close = diag->hint != NULL ? ")" : "";

    if (diag->line == 0) {
        return snprintf(buf, size, "%s: %s: %s%s%s%s", file, severity, message, open, hint, close);
    }
    if (diag->col == 0) {
        return snprintf(buf, size, "%s:%u: %s: %s%s%s%s", file, diag->line, severity, message, open,
                        hint, close);
    }
    return snprintf(buf, size, "%s:%u:%u: %s: %s%s%s%s", file, diag->line, diag->col, severity,
                    message, open, hint, close);
}
