/*
 * test_index.c - unit tests of rules/index.c: the lookup tables of the
 * policy, directly and through the lookups of rules.h on a generated
 * policy of thousands of views (where they must find exactly what a scan
 * of the arrays finds).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "policy_text.h"
#include "policy_internal.h"
#include "rules.h"
#include "world.h"

#define MANY 10000 /* elements of the generated arrays and policy */

static void teardown(void)
{
    world_check_leaks();
}

TestSuite(loader_index_find, .fini = teardown);
TestSuite(loader_index_lookup, .fini = teardown);
TestSuite(loader_index_policy, .fini = teardown);

typedef struct {
    int before; /* something ahead of the name, as in the model's structs */
    char *name; /* "n<i % modulo>", so that names repeat */
    size_t pos; /* the element's own position */
} element;

/* MANY elements whose names repeat every modulo elements. */
static element *make_elements(size_t modulo)
{
    element *elements = calloc(MANY, sizeof(element));

    cr_assert_not_null(elements);
    for (size_t i = 0; i < MANY; i++) {
        elements[i].pos = i;
        cr_assert_geq(asprintf(&elements[i].name, "n%zu", i % modulo), 0);
    }
    return elements;
}

static void free_elements(element *elements)
{
    for (size_t i = 0; i < MANY; i++) {
        free(elements[i].name);
    }
    free(elements);
}

/* A sorted table of room entries made of names[i] at positions[i]. */
static rules_index *table_of(const char *const *names, const size_t *positions, size_t n,
                             size_t room)
{
    rules_index *ix = loader_index_new(room);

    cr_assert_not_null(ix);
    for (size_t i = 0; i < n; i++) {
        loader_index_add(ix, names[i], positions[i]);
    }
    loader_index_sort(ix);
    return ix;
}

/* Asserts that ix finds name at pos (SIZE_MAX: finds no name). */
static void expect_find(const rules_index *ix, const char *name, size_t pos)
{
    size_t found = SIZE_MAX;

    cr_assert_eq(loader_index_find(ix, name, &found), pos != SIZE_MAX, "%s", name);
    cr_assert_eq(found, pos, "%s at %zu, expected %zu", name, found, pos);
}

Test(loader_index_find, first_position_of_each_name)
{
    /* Out of order, "b" three times. */
    const char *names[] = {"b", "c", "b", "a", "b"};
    const size_t positions[] = {4, 2, 1, 5, 3};
    rules_index *ix = table_of(names, positions, 5, 5);

    expect_find(ix, "b", 1);
    expect_find(ix, "a", 5);
    expect_find(ix, "c", 2);
    loader_index_free(ix);
}

Test(loader_index_find, misses)
{
    const char *names[] = {"m", "p"};
    const size_t positions[] = {0, 1};
    rules_index *ix = table_of(names, positions, 0, 2);

    expect_find(ix, "m", SIZE_MAX); /* nothing added yet */
    loader_index_free(ix);
    ix = table_of(names, positions, 2, 2);
    expect_find(ix, "a", SIZE_MAX); /* before the first */
    expect_find(ix, "n", SIZE_MAX); /* between two */
    expect_find(ix, "z", SIZE_MAX); /* after the last */
    expect_find(ix, "", SIZE_MAX);
    expect_find(ix, NULL, SIZE_MAX);
    expect_find(NULL, "m", SIZE_MAX);
    loader_index_free(ix);
}

Test(loader_index_find, null_names_and_overflow_are_not_added)
{
    const char *names[] = {NULL, "a", "b"};
    const size_t positions[] = {0, 1, 2};
    rules_index *ix = table_of(names, positions, 3, 1); /* "b" is beyond the room */

    expect_find(ix, "a", 1);
    expect_find(ix, "b", SIZE_MAX);
    loader_index_clear(ix);
    expect_find(ix, "a", SIZE_MAX);
    loader_index_add(ix, "b", 7);
    loader_index_sort(ix);
    expect_find(ix, "b", 7);
    loader_index_free(ix);
    loader_index_free(NULL);
}

/* Checks that the table and the scan agree on every name of elements,
 * and on names none bears. */
static void expect_table_matches_scan(element *elements, size_t modulo)
{
    rules_index *ix = loader_index_build(elements, MANY, sizeof(element), offsetof(element, name));

    cr_assert_not_null(ix);
    for (size_t i = 0; i < MANY; i++) {
        size_t scan = loader_index_lookup(NULL, elements, MANY, sizeof(element),
                                          offsetof(element, name), elements[i].name);
        size_t table = loader_index_lookup(ix, elements, MANY, sizeof(element),
                                           offsetof(element, name), elements[i].name);
        cr_assert_eq(scan, i % modulo, "the first bearer of %s", elements[i].name);
        cr_assert_eq(table, scan, "%s: table %zu, scan %zu", elements[i].name, table, scan);
    }
    const char *absent[] = {"n", "n-1", "m0", "o0", "", NULL};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        cr_assert_eq(loader_index_lookup(NULL, elements, MANY, sizeof(element),
                                         offsetof(element, name), absent[i]),
                     MANY);
        cr_assert_eq(loader_index_lookup(ix, elements, MANY, sizeof(element),
                                         offsetof(element, name), absent[i]),
                     MANY);
    }
    loader_index_free(ix);
}

Test(loader_index_lookup, table_and_scan_agree_on_unique_names)
{
    element *elements = make_elements(MANY);
    expect_table_matches_scan(elements, MANY);
    free_elements(elements);
}

Test(loader_index_lookup, table_and_scan_agree_on_repeated_names)
{
    element *elements = make_elements(37);
    expect_table_matches_scan(elements, 37);
    free_elements(elements);
}

Test(loader_index_lookup, skips_null_names)
{
    element *elements = make_elements(MANY);
    rules_index *ix = NULL;

    free(elements[3].name);
    elements[3].name = NULL;
    ix = loader_index_build(elements, MANY, sizeof(element), offsetof(element, name));
    cr_assert_not_null(ix);
    cr_assert_eq(
        loader_index_lookup(ix, elements, MANY, sizeof(element), offsetof(element, name), "n4"), 4);
    cr_assert_eq(
        loader_index_lookup(NULL, elements, MANY, sizeof(element), offsetof(element, name), "n4"),
        4);
    cr_assert_eq(
        loader_index_lookup(ix, elements, MANY, sizeof(element), offsetof(element, name), "n3"),
        MANY);
    loader_index_free(ix);
    free_elements(elements);
}

Test(loader_index_policy, lookups_find_every_element_of_a_large_policy)
{
    big_policy spec = {.n_views = MANY + 1000, .per_token = 2750, .n_layers = MANY / 4};
    char *text = policy_text_big(&spec);
    rules_diags diags;
    rules_policy *policy = NULL;

    rules_diags_init(&diags);
    cr_assert_eq(rules_policy_load_memory(text, strlen(text), "big.xml", &policy, &diags), 0);
    cr_assert_eq(diags.count, 0);
    cr_assert_not_null(policy->layers_by_id, "the loader builds the tables");
    cr_assert_eq(rules_policy_module(policy, "m"), &policy->modules[0]);
    for (size_t l = 0; l < policy->n_layers; l++) {
        cr_assert_eq(rules_policy_layer(policy, policy->layers[l].id), &policy->layers[l]);
    }
    for (size_t t = 0; t < policy->n_tokens; t++) {
        const rules_token *token = &policy->tokens[t];
        const rules_token *next = &policy->tokens[(t + 1) % policy->n_tokens];
        cr_assert_eq(rules_policy_token(policy, token->label), token);
        for (size_t v = 0; v < token->n_views; v++) {
            cr_assert_eq(rules_token_view(token, token->views[v].id), &token->views[v]);
            cr_assert_null(rules_token_view(next, token->views[v].id),
                           "a view belongs to its token");
        }
    }
    cr_assert_null(rules_policy_layer(policy, "l"));
    cr_assert_null(rules_policy_token(policy, "T"));
    cr_assert_null(rules_token_view(&policy->tokens[0], "v"));
    cr_assert_null(rules_policy_module(policy, NULL));
    rules_policy_free(policy);
    rules_diags_clear(&diags);
    free(text);
}

Test(loader_index_policy, lookups_scan_a_policy_made_by_hand)
{
    rules_layer layers[] = {{.id = "a"}, {.id = NULL}, {.id = "b"}, {.id = "a"}};
    rules_view views[] = {{.id = "x"}, {.id = "y"}};
    rules_token tokens[] = {{.label = "T", .views = views, .n_views = 2}};
    rules_policy policy = {.layers = layers, .n_layers = 4, .tokens = tokens, .n_tokens = 1};

    cr_assert_eq(rules_policy_layer(&policy, "a"), &layers[0]);
    cr_assert_eq(rules_policy_layer(&policy, "b"), &layers[2]);
    cr_assert_null(rules_policy_layer(&policy, "c"));
    cr_assert_null(rules_policy_module(&policy, "a"));
    cr_assert_eq(rules_policy_token(&policy, "T"), &tokens[0]);
    cr_assert_eq(rules_token_view(&tokens[0], "y"), &views[1]);
    cr_assert_null(rules_token_view(&tokens[0], "z"));
}
