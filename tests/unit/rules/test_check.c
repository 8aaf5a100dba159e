/*
 * test_check.c - the type checker of strata-rules(7), TYPES and ERRORS:
 * each compile-time error with its line, column and a hint.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lang.h"
#include "rules.h"

static const char *const layers[] = {"personal", "group", "legacy"};
static const bool read_only[] = {false, true, true};
static const rules_scope scope = {layers, read_only, 3};

typedef struct {
    const char *text;
    unsigned col;
    const char *message;
    const char *hint; /* expected hint, or NULL for "some hint" */
} check_case;

static const check_case cases[] = {
    {"hide where layer == \"nope\"", 21, "unknown layer \"nope\"",
     "the view's layers are: \"personal\", \"group\", \"legacy\""},
    {"hide where layer in [\"group\", \"nope\"]", 31, "unknown layer \"nope\"", NULL},
    {"route create to \"nope\"", 17, "route to unknown layer \"nope\"", NULL},
    {"route create to \"group\"", 17, "route to read-only layer \"group\"",
     "new objects can only go to a writable layer"},
    {"set class = \"x\"", 5, "attribute 'class' cannot be rewritten", NULL},
    {"set CKA_VALUE = 0x00", 5, "attribute 'value' cannot be rewritten", NULL},
    {"set key-type = \"x\"", 5, "attribute 'key-type' cannot be rewritten", NULL},
    {"set private = \"x\"", 5, "attribute 'private' cannot be rewritten", NULL},
    {"set sensitive = \"x\"", 5, "attribute 'sensitive' cannot be rewritten", NULL},
    {"set extractable = \"x\"", 5, "attribute 'extractable' cannot be rewritten", NULL},
    {"set token = \"x\"", 5, "attribute 'token' cannot be rewritten", NULL},
    {"set modulus = 0x00", 5, "attribute 'modulus' cannot be rewritten", NULL},
    {"set modifiable = \"x\"", 5, "attribute 'modifiable' cannot be rewritten",
     "use readonly to make objects read-only"},
    {"set sign = \"x\"", 5, "attribute 'sign' cannot be rewritten",
     "use deny to forbid an operation"},
    {"set label = 5", 13, "type mismatch: 'label' is a string but the value is a number", NULL},
    {"set label = mechanism", 13, "mechanism and operation are known only in deny rules", NULL},
    {"hide where id == CKM_RSA_PKCS", 15,
     "type mismatch: id is a byte string but CKM_RSA_PKCS is a number", NULL},
    {"hide where sensitive == \"yes\"", 22,
     "type mismatch: sensitive is a boolean but \"yes\" is a string", NULL},
    {"hide where label in [\"a\", 1]", 18, "type mismatch: label is a string but 1 is a number",
     NULL},
    {"hide where class == rsa", 18, "type mismatch: class is an object class but rsa is a key type",
     NULL},
    {"hide where label == \"a\" + \"b\"", 25, "'+' is allowed only in the value of a set statement",
     NULL},
    {"set label = \"a\" + 5", 17, "'+' joins strings and byte strings, not numbers or booleans",
     NULL},
    {"hide where class ~ \"x\"", 18, "'~' matches strings and byte strings only", NULL},
    {"hide where label ~ id", 20, "the pattern after '~' must be a string literal", NULL},
    {"hide where label ~ \"[ab\"", 20, "bad pattern: '[' without a matching ']'", NULL},
    {"hide where label ~ \"ab\\\\\"", 20, "bad pattern: trailing backslash", NULL},
    {"hide where label", 12, "label is a string, not a condition", NULL},
    {"hide where mechanism == CKM_RSA_PKCS", 12,
     "mechanism and operation are known only in deny rules", NULL},
    {"route create to \"personal\" where operation == \"create\"", 34,
     "mechanism and operation are known only in deny rules", NULL},
    {"deny sign where operation == \"fly\"", 30, "unknown operation \"fly\"", NULL},
};

Test(lang_check_rule, every_type_error_with_column_and_hint)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const check_case *cc = &cases[i];
        rules_diags d;
        rules_diags_init(&d);
        cr_assert_null(rules_compile(cc->text, "view.xml", 7, &scope, &d), "case %s", cc->text);
        cr_assert_geq(d.n_errors, 1, "case %s", cc->text);
        cr_assert_str_eq(d.items[0].message, cc->message, "case %s", cc->text);
        cr_assert_eq(d.items[0].line, 7, "case %s", cc->text);
        cr_assert_eq(d.items[0].col, cc->col, "case %s: col %u", cc->text, d.items[0].col);
        cr_assert_not_null(d.items[0].hint, "case %s", cc->text);
        if (cc->hint != NULL) {
            cr_assert_str_eq(d.items[0].hint, cc->hint, "case %s", cc->text);
        }
        rules_diags_clear(&d);
    }
}

Test(lang_check_rule, string_literal_compares_with_bytes_attribute)
{
    rules_program *p =
        rules_compile("hide where id == \"ab\" or label == 0x6162", "v", 1, &scope, NULL);

    cr_assert_not_null(p);
    rules_program_free(p);
}

Test(lang_check_rule, without_scope_layers_are_not_checked)
{
    rules_program *p =
        rules_compile("hide where layer == \"any\"\nroute create to \"any\"", "v", 1, NULL, NULL);

    cr_assert_not_null(p);
    rules_program_free(p);
}

Test(lang_check_rule, too_many_sets_of_one_attribute)
{
    char text[64 * 24 + 32];
    size_t n = 0;
    rules_diags d;

    for (int i = 0; i <= LANG_MAX_SETS; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "set label = label + \"x\"\n");
    }
    rules_diags_init(&d);
    cr_assert_null(rules_compile(text, "v", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(d.items[0].message, "too many set rules for 'label' (at most 64)");
    cr_assert_eq(d.items[0].line, LANG_MAX_SETS + 1);
    rules_diags_clear(&d);
}

Test(lang_check_rule, several_errors_in_one_text)
{
    rules_diags d;

    rules_diags_init(&d);
    cr_assert_null(rules_compile("hide where layer == \"nope\"\nset class = 1\n"
                                 "route create to \"legacy\"\n",
                                 "v", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 3);
    cr_assert_eq(d.items[0].line, 1);
    cr_assert_eq(d.items[1].line, 2);
    cr_assert_eq(d.items[2].line, 3);
    rules_diags_clear(&d);
}
