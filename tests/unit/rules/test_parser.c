/*
 * test_parser.c - the grammar of strata-rules(7): valid statements compile,
 * and every syntax error message comes back with its line and column.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"
#include "rules.h"

static const char *const layers[] = {"personal", "group", "legacy"};
static const bool read_only[] = {false, true, true};
static const rules_scope scope = {layers, read_only, 3};

/* The grammar examples of strata-rules(7), EXAMPLES and GRAMMAR. */
static const char *const valid[] = {
    "hide     where layer == \"group\" and class == private-key and not label ~ \"shared-*\"",
    "set      label = \"team/\" + label where layer == \"group\"",
    "readonly where layer == \"legacy\"",
    "deny     destroy, set-attribute, wrap where layer == \"group\"",
    "deny     sign where layer == \"legacy\" and mechanism in [CKM_SHA1_RSA_PKCS, CKM_RSA_PKCS]",
    "route    create to \"personal\" where class in [private-key, secret-key]",
    "shadow   by class, id",
    "",
    "# a comment\n\n   \n",
    "hide",
    "show where (label == \"a\" or label == \"b\") and not present(id)",
    "hide where CKA_LABEL != \"x\" and sensitive and not extractable",
    "hide where id == 0x0a1b or id == \"\\x0a\\x1b\"",
    "hide where key-type in [rsa, ec, CKK_AES] and modulus-bits == 1024",
    "hide where view == \"work\" and vtoken ~ \"Str?ta\"",
    "deny sign, verify, encrypt, decrypt, digest, wrap, unwrap, derive, destroy, copy, "
    "set-attribute, create, find where operation == \"sign\"",
    "set id = id + 0x01 where token == true",
    "hide where label ~ \"[a-c]*\\\\*\"",
    "show where class == CKO_CERTIFICATE and certificate-type == CKC_X_509",
    /* EXAMPLES: pseudonym selected by PIN */
    "# view \"anon\"\n"
    "hide where label ~ \"work-*\" or present(subject)\n"
    "set  label = \"anon/\" + label\n"
    "set  id = 0x00 + id\n"
    "deny copy, wrap\n",
    /* EXAMPLES: legacy migration */
    "readonly where layer == \"legacy\"\n"
    "deny sign, decrypt where layer == \"legacy\" and mechanism in [CKM_SHA1_RSA_PKCS, "
    "CKM_MD5_RSA_PKCS]\n"
    "deny sign where operation == \"sign\" and key-type == rsa and modulus-bits == 1024\n"
    "set  label = label + \" (legacy)\" where layer == \"legacy\"\n"
    "route create to \"personal\"\n"
    "shadow by class, id\n",
};

Test(rules_compile, grammar_examples_compile)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        rules_diags d;
        rules_diags_init(&d);
        rules_program *p = rules_compile(valid[i], "view.xml", 1, &scope, &d);
        cr_assert_not_null(p, "case %zu: %s: %s", i, valid[i], d.count ? d.items[0].message : "?");
        cr_assert_eq(d.count, 0);
        rules_program_free(p);
        rules_diags_clear(&d);
    }
}

typedef struct {
    const char *text;
    unsigned line, col;
    const char *message;
} error_case;

/* One case per message the parser (and, through it, the lexer) emits. */
static const error_case errors[] = {
    {"\"x\"", 1, 1, "expected an action, found a string"},
    {"frobnicate", 1, 1, "unknown action 'frobnicate'"},
    {"hide foo", 1, 6, "expected 'where' or the end of the line, found 'foo'"},
    {"hide where id == 0x01 label", 1, 23,
     "expected 'and', 'or' or the end of the line, found "
     "'label'"},
    {"set \"x\" = 1", 1, 5, "expected an attribute name after 'set', found a string"},
    {"set nope = \"x\"", 1, 5, "unknown attribute 'nope'"},
    {"set label \"x\"", 1, 11, "expected '=' after the attribute, found a string"},
    {"set label =", 1, 12, "expected a value, found the end of the rules"},
    {"hide where", 1, 11, "expected a value, found the end of the rules"},
    {"hide where not\n", 1, 15, "expected a value, found the end of the line"},
    {"hide where label == \"x\" and and", 1, 29, "expected a value, found 'and'"},
    {"deny sign,", 1, 11, "expected an operation name, found the end of the rules"},
    {"deny fly", 1, 6, "unknown operation 'fly'"},
    {"route make to \"x\"", 1, 7, "expected 'create' after 'route', found 'make'"},
    {"route create into \"x\"", 1, 14, "expected 'to' after 'route create', found 'into'"},
    {"route create to personal", 1, 17, "expected a layer name in quotes, found 'personal'"},
    {"route create to \"a\\x00b\"", 1, 17, "layer name contains a NUL byte"},
    {"shadow class", 1, 8, "expected 'by' after 'shadow', found 'class'"},
    {"shadow by class\nshadow by id", 2, 1, "duplicate shadow statement (the first is on line 1)"},
    {"shadow by class, id, class", 1, 22, "attribute listed twice in shadow by"},
    {"shadow by class where id == 0x01", 1, 17, "shadow takes no where clause"},
    {"shadow by 5", 1, 11, "expected an attribute name after 'shadow by', found a number"},
    {"hide where (label == \"x\"", 1, 25, "expected ')', found the end of the rules"},
    {"hide where present label", 1, 20, "expected '(' after 'present', found 'label'"},
    {"hide where present(\"x\")", 1, 20, "expected an attribute name, found a string"},
    {"hide where present(nope)", 1, 20, "unknown attribute 'nope'"},
    {"hide where present(label", 1, 25,
     "expected ')' after the attribute, found the end of the "
     "rules"},
    {"hide where label in x", 1, 21, "expected '[' after 'in', found 'x'"},
    {"hide where class in [private-key rsa]", 1, 34,
     "expected ',' or ']' in the list, found "
     "'rsa'"},
    {"hide where label = \"x\"", 1, 18, "expected '==', '!=', '~' or 'in', found '='"},
    {"hide where x == 1", 1, 12, "unknown name 'x'"},
    {"hide where label == \"x", 1, 21, "unterminated string"},
    {"hide where label == \"\\q\"", 1, 22, "unknown escape in a string"},
    {"hide where id == 0x123", 1, 18, "odd number of hex digits"},
    {"hide where label == @", 1, 21, "unexpected character"},
};

Test(rules_compile, every_syntax_error_with_line_and_column)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        const error_case *ec = &errors[i];
        rules_diags d;
        rules_diags_init(&d);
        rules_program *p = rules_compile(ec->text, "view.xml", 1, &scope, &d);
        cr_assert_null(p, "case %s compiled", ec->text);
        cr_assert_eq(d.n_errors, 1, "case %s: %zu errors, first %s", ec->text, d.n_errors,
                     d.count ? d.items[0].message : "-");
        cr_assert_str_eq(d.items[0].message, ec->message, "case %s", ec->text);
        cr_assert_eq(d.items[0].line, ec->line, "case %s: line %u", ec->text, d.items[0].line);
        cr_assert_eq(d.items[0].col, ec->col, "case %s: col %u", ec->text, d.items[0].col);
        cr_assert_str_eq(d.items[0].file, "view.xml");
        cr_assert_not_null(d.items[0].hint, "case %s has no hint", ec->text);
        cr_assert_eq(d.items[0].severity, RULES_SEVERITY_ERROR);
        rules_diags_clear(&d);
    }
}

Test(rules_compile, recovers_at_next_line_and_offsets_lines)
{
    const char *text = "hide where\n"
                       "show\n"
                       "frob\n"
                       "deny fly where layer == \"group\"\n"
                       "hide where label ~ \"ok*\"\n";
    rules_diags d;

    rules_diags_init(&d);
    cr_assert_null(rules_compile(text, "strata.xml", 40, &scope, &d));
    cr_assert_eq(d.n_errors, 3);
    cr_assert_eq(d.items[0].line, 40);
    cr_assert_eq(d.items[1].line, 42);
    cr_assert_str_eq(d.items[1].message, "unknown action 'frob'");
    cr_assert_eq(d.items[2].line, 43);
    cr_assert_eq(d.items[2].col, 6);
    rules_diags_clear(&d);
}

Test(rules_compile, expression_too_complex)
{
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), "hide where ");
    rules_diags d;

    for (int i = 0; i < 200; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "not ");
    }
    snprintf(text + n, sizeof(text) - n, "sensitive");
    rules_diags_init(&d);
    cr_assert_null(rules_compile(text, "view.xml", 1, &scope, &d));
    cr_assert_str_eq(d.items[0].message, "expression too complex");
    rules_diags_clear(&d);
}

Test(rules_compile, too_many_rules)
{
    size_t size = (LANG_MAX_RULES + 1) * 5 + 1;
    char *text = malloc(size);
    rules_diags d;

    cr_assert_not_null(text);
    for (size_t i = 0; i <= LANG_MAX_RULES; i++) {
        memcpy(text + i * 5, "hide\n", 5);
    }
    text[size - 1] = '\0';
    rules_diags_init(&d);
    cr_assert_null(rules_compile(text, "view.xml", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(d.items[0].message, "too many rules (at most 4096)");
    cr_assert_eq(d.items[0].line, LANG_MAX_RULES + 1);
    rules_diags_clear(&d);
    free(text);
}

Test(rules_compile, null_diags_and_null_text)
{
    rules_program *p = rules_compile(NULL, NULL, 0, NULL, NULL);

    cr_assert_not_null(p);
    rules_program_free(p);
    cr_assert_null(rules_compile("frob", NULL, 0, NULL, NULL));
}

/* Found by fuzz_policy: a string literal may decode to a line break, and
 * the message that quotes it must still be one line (rules.h). */
Test(rules_compile, message_quoting_a_line_break_stays_one_line)
{
    rules_diags d = {NULL, 0, 0};

    cr_assert_null(rules_compile("hide where layer == \"a\\nb\\x0dc\\td\"", "f", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 1);
    cr_assert_eq(d.count, 1);
    cr_assert_str_eq(d.items[0].message, "unknown layer \"a b c d\"");
    cr_assert_null(strchr(d.items[0].hint, '\n'));
    rules_diags_clear(&d);
}

/* Found by fuzz_policy: the compiler's diagnostics share the list with
 * the policy loader's, which keeps appending after a failed compile. With
 * 9 compile errors, one more rules_diag_add wrote past the end of the
 * list (caught by AddressSanitizer). */
Test(rules_compile, diagnostics_list_keeps_growing_after_errors)
{
    rules_diags d = {NULL, 0, 0};
    char text[256] = "";

    for (int i = 0; i < 9; i++) {
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "bogus%d\n", i);
    }
    cr_assert_null(rules_compile(text, "f", 1, &scope, &d));
    cr_assert_eq(d.count, 9);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(rules_diag_add(&d, RULES_SEVERITY_WARNING, "f", 1, 0, "extra %d", i), 0);
    }
    cr_assert_eq(d.count, 29);
    cr_assert_eq(d.n_errors, 9);
    cr_assert_eq(d.items[8].line, 9);
    cr_assert_str_eq(d.items[28].message, "extra 19");
    rules_diags_clear(&d);
}

/* Found by fuzz_policy: nested parentheses build no node, so only the
 * parser's own bound stops them; 5000 of them overflowed the stack. The
 * bound is strata-rules(7)'s: at most 128 levels. */
static char *nested(size_t levels, const char *inner)
{
    size_t len = strlen("hide where ") + 2 * levels + strlen(inner) + 1;
    char *text = malloc(len);

    cr_assert_not_null(text);
    strcpy(text, "hide where ");
    memset(text + strlen(text), '(', levels);
    strcpy(text + strlen("hide where ") + levels, inner);
    memset(text + strlen(text), ')', levels);
    text[len - 1] = '\0';
    return text;
}

Test(rules_compile, deep_parentheses_too_complex)
{
    rules_diags d = {NULL, 0, 0};
    char *ok = nested(127, "sensitive");
    char *deep = nested(128, "sensitive");
    char *huge = nested(200000, "sensitive");
    rules_program *p = rules_compile(ok, "f", 1, &scope, &d);

    cr_assert_not_null(p, "127 parentheses and the expression are 128 levels");
    rules_program_free(p);
    cr_assert_null(rules_compile(deep, "f", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(d.items[0].message, "expression too complex");
    cr_assert_eq(d.items[0].col, 12 + 128);
    rules_diags_clear(&d);
    cr_assert_null(rules_compile(huge, "f", 1, &scope, &d));
    cr_assert_eq(d.n_errors, 1);
    cr_assert_str_eq(d.items[0].message, "expression too complex");
    rules_diags_clear(&d);
    free(ok);
    free(deep);
    free(huge);
}
