/*
 * test_semantics.c - unit tests of rules/semantics.c at scale: the checks
 * that relate elements to each other (references, unique ids, unused
 * declarations) on generated policies of thousands of views and layers,
 * where each finding must still name its line and the line of the first
 * declaration. The checks of small policies are in test_policy.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "policy_text.h"
#include "rules.h"
#include "world.h"

#define MANY_VIEWS  12000 /* beyond the 11,100 views a slow loader was measured at */
#define PER_TOKEN   4000  /* a token of thousands of views */
#define MANY_LAYERS 1500

static rules_diags diags;
static rules_policy *policy;
static char *text;

static void setup(void)
{
    rules_diags_init(&diags);
    policy = NULL;
    text = NULL;
}

static void teardown(void)
{
    rules_policy_free(policy);
    rules_diags_clear(&diags);
    free(text);
    world_check_leaks();
}

TestSuite(loader_check, .init = setup, .fini = teardown);

/* Generates the big policy with the given additions and loads it. */
static int load_big(const char *more_layers, const char *more_views, const char *more_tokens)
{
    big_policy spec = {
        .n_views = MANY_VIEWS,
        .per_token = PER_TOKEN,
        .n_layers = MANY_LAYERS,
        .more_layers = more_layers,
        .more_views = more_views,
        .more_tokens = more_tokens,
    };
    text = policy_text_big(&spec);
    return rules_policy_load_memory(text, strlen(text), "big.xml", &policy, &diags);
}

static void dump_diags(void)
{
    for (size_t i = 0; i < diags.count; i++) {
        char buf[1024];
        rules_diag_format(&diags.items[i], buf, sizeof(buf));
        cr_log_info("%s", buf);
    }
}

/* Asserts that diags holds exactly one diagnostic, of severity, on line,
 * whose message is the printf-style message. */
static void expect_only(rules_severity severity, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void expect_only(rules_severity severity, unsigned line, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    dump_diags();
    cr_assert_eq(diags.count, 1, "expected one diagnostic, got %zu", diags.count);
    cr_assert_eq(diags.items[0].severity, severity);
    cr_assert_eq(diags.items[0].line, line, "on line %u, expected %u", diags.items[0].line, line);
    cr_assert_str_eq(diags.items[0].message, message);
    cr_assert_str_eq(diags.items[0].file, "big.xml");
}

/* A view "long" whose layers list names every layer once, then extra. */
static char *long_view(const char *extra)
{
    size_t size = MANY_LAYERS * 8 + strlen(extra) + 64;
    char *view = malloc(size);
    size_t used = 0;

    cr_assert_not_null(view);
    used += (size_t)snprintf(view, size, "<view id=\"long\" layers=\"");
    for (size_t l = 0; l < MANY_LAYERS; l++) {
        used += (size_t)snprintf(view + used, size - used, "l%zu ", l);
    }
    snprintf(view + used, size - used, "%s\"/><!--long-->", extra);
    return view;
}

Test(loader_check, many_views_load_with_every_layer_resolved)
{
    size_t seen = 0;

    cr_assert_eq(load_big(NULL, NULL, NULL), 0);
    dump_diags();
    cr_assert_eq(diags.count, 0);
    cr_assert_eq(policy->n_tokens, MANY_VIEWS / PER_TOKEN);
    for (size_t t = 0; t < policy->n_tokens; t++) {
        const rules_token *token = &policy->tokens[t];
        cr_assert_eq(token->n_views, PER_TOKEN);
        for (size_t v = 0; v < token->n_views; v++, seen++) {
            const rules_view *view = &token->views[v];
            char id[32];
            snprintf(id, sizeof(id), "l%zu", seen % MANY_LAYERS);
            cr_assert_eq(view->n_layers, 2);
            cr_assert_str_eq(view->layers[0], id);
            cr_assert_eq(rules_policy_layer(policy, id), &policy->layers[1 + seen % MANY_LAYERS]);
            cr_assert_eq(rules_policy_layer(policy, view->layers[1]), &policy->layers[0]);
            cr_assert_eq(view->rules != NULL, seen % 10 == 0, "view %s", view->id);
        }
    }
    cr_assert_eq(seen, MANY_VIEWS);
}

Test(loader_check, duplicate_view_id_after_many_views_in_another_token)
{
    cr_assert_neq(load_big(NULL, "<view id=\"v5\" layers=\"l1\"/><!--dup-->", NULL), 0);
    cr_assert_null(policy);
    expect_only(RULES_SEVERITY_ERROR, policy_text_line(text, "<!--dup-->"),
                "view id \"v5\" is already used on line %u; view ids must be unique in the "
                "policy",
                policy_text_line(text, "\"v5\""));
}

Test(loader_check, duplicate_view_id_at_the_end_of_its_token)
{
    cr_assert_neq(load_big(NULL, "<view id=\"v11997\" layers=\"l1\"/><!--dup-->", NULL), 0);
    expect_only(RULES_SEVERITY_ERROR, policy_text_line(text, "<!--dup-->"),
                "view id \"v11997\" is already used on line %u; view ids must be unique in the "
                "policy",
                policy_text_line(text, "\"v11997\""));
}

Test(loader_check, duplicate_layer_id_after_many_layers)
{
    cr_assert_neq(load_big("<layer id=\"l7\" module=\"m\" token=\"again\"/>", NULL, NULL), 0);
    /* The second "l7" is named by views as much as the first: no warning. */
    expect_only(RULES_SEVERITY_ERROR, policy_text_line(text, "token=\"again\""),
                "layer id \"l7\" is already used on line %u; ids must be unique",
                policy_text_line(text, "\"l7\""));
}

Test(loader_check, duplicate_token_label_after_many_tokens)
{
    cr_assert_neq(
        load_big(NULL, NULL, "<token label=\"T1\"><view id=\"w\" layers=\"l1\"/></token>"), 0);
    expect_only(RULES_SEVERITY_ERROR, policy_text_line(text, "<view id=\"w\""),
                "token label \"T1\" is already used on line %u; labels must be unique",
                policy_text_line(text, "\"T1\""));
}

Test(loader_check, unused_layer_among_many_is_a_warning)
{
    cr_assert_eq(load_big("<layer id=\"lonely\" module=\"m\" token=\"z\"/>", NULL, NULL), 0);
    expect_only(RULES_SEVERITY_WARNING, policy_text_line(text, "\"lonely\""),
                "layer \"lonely\" is used by no view");
}

Test(loader_check, view_of_every_layer_loads)
{
    char *view = long_view("base");

    cr_assert_eq(load_big(NULL, view, NULL), 0);
    free(view);
    dump_diags();
    cr_assert_eq(diags.count, 0);
    const rules_view *found = rules_token_view(&policy->tokens[policy->n_tokens - 1], "long");
    cr_assert_not_null(found);
    cr_assert_eq(found->n_layers, MANY_LAYERS + 1);
    for (size_t k = 0; k < found->n_layers; k++) {
        cr_assert_str_eq(rules_policy_layer(policy, found->layers[k])->id, found->layers[k]);
    }
}

Test(loader_check, layer_named_twice_at_the_end_of_a_long_list)
{
    char *view = long_view("l1234");

    cr_assert_neq(load_big(NULL, view, NULL), 0);
    free(view);
    expect_only(RULES_SEVERITY_ERROR, policy_text_line(text, "<!--long-->"),
                "view \"long\" names layer \"l1234\" twice; a layer stacks once");
}

Test(loader_check, undeclared_layers_in_a_long_list_once_and_twice)
{
    char *view = long_view("nosuch nosuch");
    unsigned line = 0;

    cr_assert_neq(load_big(NULL, view, NULL), 0);
    free(view);
    dump_diags();
    line = policy_text_line(text, "<!--long-->");
    cr_assert_eq(diags.count, 2);
    cr_assert_eq(diags.items[0].line, line);
    cr_assert_str_eq(diags.items[0].message,
                     "view \"long\" names layer \"nosuch\", which is not declared");
    cr_assert_eq(diags.items[1].line, line);
    cr_assert_str_eq(diags.items[1].message,
                     "view \"long\" names layer \"nosuch\" twice; a layer stacks once");
}
