/*
 * policy_text.h - policy texts for the tests of the policy loader
 * (test_policy.c, test_index.c, test_semantics.c): the line of a marker,
 * and generated policies of many views.
 *
 * A generated policy has one module "m" (path /dev/null, which exists, so
 * that a clean policy loads with no diagnostic at all), a read-only layer
 * "base" and layers "l0", "l1", ...; tokens "T0", "T1", ... of per_token
 * views each; view i is "v<i>", stacks "l<i % n_layers>" over "base", and
 * every tenth view has a rule naming layer "base". One element per line,
 * so that a marker finds the line of any element.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_POLICY_TEXT_H
#define STRATA_TEST_POLICY_TEXT_H

#include <stddef.h>

typedef struct {
    size_t n_views;          /* views in all, at least 1 */
    size_t per_token;        /* views per token, at least 1 */
    size_t n_layers;         /* layers l0..., at least 1 */
    const char *more_layers; /* lines after the last layer, or NULL */
    const char *more_views;  /* lines after the last view of the last token, or NULL */
    const char *more_tokens; /* lines after the last token, or NULL */
} big_policy;

/* The 1-based line of the first occurrence of needle in text; fails the
 * test when there is none. */
unsigned policy_text_line(const char *text, const char *needle);

/* The generated policy (malloc'd, NUL-terminated); aborts the test on OOM. */
char *policy_text_big(const big_policy *spec);

#endif /* STRATA_TEST_POLICY_TEXT_H */
