/*
 * test_diag.c - unit tests of rules/diag.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rules.h"

Test(rules_diags_init, starts_empty)
{
    rules_diags d;
    memset(&d, 0xa5, sizeof(d));
    rules_diags_init(&d);
    cr_assert_null(d.items);
    cr_assert_eq(d.count, 0);
    cr_assert_eq(d.n_errors, 0);
    rules_diags_clear(&d);
}

Test(rules_diag_add, counts_errors_not_warnings)
{
    rules_diags d;
    rules_diags_init(&d);
    cr_assert_eq(rules_diag_add(&d, RULES_SEVERITY_WARNING, "a.xml", 3, 0, "w%d", 1), 0);
    cr_assert_eq(rules_diag_add(&d, RULES_SEVERITY_ERROR, "a.xml", 4, 7, "e%s", "x"), 0);
    cr_assert_eq(d.count, 2);
    cr_assert_eq(d.n_errors, 1);
    cr_assert_eq(d.items[0].severity, RULES_SEVERITY_WARNING);
    cr_assert_str_eq(d.items[0].message, "w1");
    cr_assert_str_eq(d.items[1].file, "a.xml");
    cr_assert_eq(d.items[1].line, 4);
    cr_assert_eq(d.items[1].col, 7);
    cr_assert_str_eq(d.items[1].message, "ex");
    cr_assert_null(d.items[1].hint);
    rules_diags_clear(&d);
    cr_assert_eq(d.count, 0);
    cr_assert_eq(d.n_errors, 0);
    cr_assert_null(d.items);
}

Test(rules_diag_add, makes_message_one_line)
{
    rules_diags d;
    rules_diags_init(&d);
    rules_diag_add(&d, RULES_SEVERITY_ERROR, "f", 1, 0, "first\nsecond\r\n\t");
    cr_assert_str_eq(d.items[0].message, "first second");
    rules_diags_clear(&d);
}

Test(rules_diag_add, null_file_named_unknown)
{
    rules_diags d;
    rules_diags_init(&d);
    rules_diag_add(&d, RULES_SEVERITY_ERROR, NULL, 1, 0, "m");
    cr_assert_str_eq(d.items[0].file, "<unknown>");
    rules_diags_clear(&d);
}

Test(rules_diag_add, keeps_many_in_order)
{
    rules_diags d;
    rules_diags_init(&d);
    for (unsigned i = 0; i < 100; i++) {
        cr_assert_eq(rules_diag_add(&d, RULES_SEVERITY_ERROR, "f", i + 1, 0, "m%u", i), 0);
    }
    cr_assert_eq(d.count, 100);
    cr_assert_eq(d.n_errors, 100);
    for (unsigned i = 0; i < 100; i++) {
        char want[16];
        snprintf(want, sizeof(want), "m%u", i);
        cr_assert_str_eq(d.items[i].message, want);
        cr_assert_eq(d.items[i].line, i + 1);
    }
    rules_diags_clear(&d);
}

Test(rules_diag_hint, sets_last_and_fails_when_empty)
{
    rules_diags d;
    rules_diags_init(&d);
    cr_assert_eq(rules_diag_hint(&d, "nothing to attach to"), -1);
    rules_diag_add(&d, RULES_SEVERITY_ERROR, "f", 1, 0, "a");
    rules_diag_add(&d, RULES_SEVERITY_ERROR, "f", 2, 0, "b");
    cr_assert_eq(rules_diag_hint(&d, "try %s", "c"), 0);
    cr_assert_null(d.items[0].hint);
    cr_assert_str_eq(d.items[1].hint, "try c");
    rules_diags_clear(&d);
}

Test(rules_diag_format, file_line_col)
{
    rules_diag diag = {RULES_SEVERITY_ERROR, "p.xml", 12, 5, "bad thing", NULL};
    char buf[128];
    int n = rules_diag_format(&diag, buf, sizeof(buf));
    cr_assert_str_eq(buf, "p.xml:12:5: error: bad thing");
    cr_assert_eq(n, (int)strlen(buf));
}

Test(rules_diag_format, omits_col_when_zero)
{
    rules_diag diag = {RULES_SEVERITY_ERROR, "p.xml", 12, 0, "bad thing", NULL};
    char buf[128];
    rules_diag_format(&diag, buf, sizeof(buf));
    cr_assert_str_eq(buf, "p.xml:12: error: bad thing");
}

Test(rules_diag_format, omits_line_when_zero)
{
    rules_diag diag = {RULES_SEVERITY_ERROR, "p.xml", 0, 0, "cannot open", NULL};
    char buf[128];
    rules_diag_format(&diag, buf, sizeof(buf));
    cr_assert_str_eq(buf, "p.xml: error: cannot open");
}

Test(rules_diag_format, warning_with_hint)
{
    rules_diag diag = {RULES_SEVERITY_WARNING, "p.xml", 3, 0, "odd", "do this"};
    char buf[128];
    rules_diag_format(&diag, buf, sizeof(buf));
    cr_assert_str_eq(buf, "p.xml:3: warning: odd (do this)");
}

Test(rules_diag_format, truncates_and_returns_full_length)
{
    rules_diag diag = {RULES_SEVERITY_ERROR, "p.xml", 12, 5, "bad thing", NULL};
    char buf[8];
    int n = rules_diag_format(&diag, buf, sizeof(buf));
    cr_assert_eq(n, (int)strlen("p.xml:12:5: error: bad thing"));
    cr_assert_str_eq(buf, "p.xml:1");
    cr_assert_eq(rules_diag_format(&diag, NULL, 0), n);
}
