/*
 * policy_text.c - generated policies of many views (see policy_text.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "policy_text.h"

typedef struct {
    char *text;
    size_t len;
    size_t cap;
} text_buf;

/* Appends a printf-style line (a newline is added); aborts on OOM. */
static void add_line(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_line(text_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    while (b->len + (size_t)n + 2 > b->cap) {
        b->cap = b->cap == 0 ? 4096 : b->cap * 2;
        b->text = realloc(b->text, b->cap);
        cr_assert_not_null(b->text);
    }
    va_start(ap, fmt);
    vsnprintf(b->text + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    b->text[b->len++] = '\n';
    b->text[b->len] = '\0';
}

static void add_views(text_buf *b, const big_policy *spec)
{
    for (size_t v = 0; v < spec->n_views; v++) {
        if (v % spec->per_token == 0) {
            add_line(b, "%s<token label=\"T%zu\">", v == 0 ? "" : "</token>\n",
                     v / spec->per_token);
        }
        if (v % 10 == 0) {
            add_line(b,
                     "<view id=\"v%zu\" layers=\"l%zu base\"><rules>hide where layer == "
                     "\"base\"</rules></view>",
                     v, v % spec->n_layers);
        } else {
            add_line(b, "<view id=\"v%zu\" layers=\"l%zu base\"/>", v, v % spec->n_layers);
        }
    }
}

char *policy_text_big(const big_policy *spec)
{
    text_buf b = {0};

    add_line(&b, "<strata version=\"1\">");
    add_line(&b, "<module id=\"m\" path=\"/dev/null\"/>");
    add_line(&b, "<layer id=\"base\" module=\"m\" token=\"base\" access=\"read-only\"/>");
    for (size_t l = 0; l < spec->n_layers; l++) {
        add_line(&b, "<layer id=\"l%zu\" module=\"m\" token=\"t%zu\"/>", l, l);
    }
    add_line(&b, "%s", spec->more_layers != NULL ? spec->more_layers : "");
    add_views(&b, spec);
    add_line(&b, "%s</token>", spec->more_views != NULL ? spec->more_views : "");
    add_line(&b, "%s</strata>", spec->more_tokens != NULL ? spec->more_tokens : "");
    return b.text;
}

unsigned policy_text_line(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    unsigned line = 1;

    cr_assert_not_null(at, "marker \"%s\" not in the policy", needle);
    for (const char *p = text; p < at; p++) {
        line += *p == '\n';
    }
    return line;
}
