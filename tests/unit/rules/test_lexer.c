/*
 * test_lexer.c - tokens of the rule language (strata-rules(7), LEXICAL
 * STRUCTURE), table-driven.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <string.h>

#include "lang.h"

#define MAX_TOKENS 16

typedef struct {
    const char *text;
    lang_token_kind kinds[MAX_TOKENS]; /* ends with TK_EOF */
} token_case;

static const token_case token_cases[] = {
    {"hide", {TK_IDENT, TK_EOF}},
    {"  # only a comment\n", {TK_NEWLINE, TK_EOF}},
    {"set label = \"team/\" + label",
     {TK_IDENT, TK_IDENT, TK_ASSIGN, TK_STRING, TK_PLUS, TK_IDENT, TK_EOF}},
    {"a == b != c ~ d", {TK_IDENT, TK_EQ, TK_IDENT, TK_NE, TK_IDENT, TK_TILDE, TK_IDENT, TK_EOF}},
    {"in [x, y] ( )",
     {TK_IDENT, TK_LBRACKET, TK_IDENT, TK_COMMA, TK_IDENT, TK_RBRACKET, TK_LPAREN, TK_RPAREN,
      TK_EOF}},
    {"0x0a1B 42", {TK_BYTES, TK_NUMBER, TK_EOF}},
    {"set-attribute private-key CKM_SHA1_RSA_PKCS", {TK_IDENT, TK_IDENT, TK_IDENT, TK_EOF}},
    {"hide # comment\r\nshow", {TK_IDENT, TK_NEWLINE, TK_IDENT, TK_EOF}},
    {"\"a\\\"b\\\\c\\n\\t\\x41\"", {TK_STRING, TK_EOF}},
};

Test(lang_lexer_next, kinds_of_each_case)
{
    for (size_t i = 0; i < sizeof(token_cases) / sizeof(token_cases[0]); i++) {
        const token_case *tc = &token_cases[i];
        lang_lexer lx;
        lang_token tok;
        lang_lexer_init(&lx, tc->text, strlen(tc->text));
        for (size_t k = 0; k < MAX_TOKENS; k++) {
            lang_lexer_next(&lx, &tok);
            cr_assert_eq(tok.kind, tc->kinds[k], "case %zu (%s) token %zu: kind %d, expected %d", i,
                         tc->text, k, tok.kind, tc->kinds[k]);
            if (tok.kind == TK_EOF) {
                break;
            }
        }
    }
}

Test(lang_lexer_next, positions_count_lines_and_byte_columns)
{
    const char *text = "hide\n  show where";
    lang_lexer lx;
    lang_token tok;

    lang_lexer_init(&lx, text, strlen(text));
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.line, 1);
    cr_assert_eq(tok.col, 1);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.kind, TK_NEWLINE);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.line, 2);
    cr_assert_eq(tok.col, 3);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.col, 8);
}

Test(lang_lexer_next, number_value)
{
    lang_lexer lx;
    lang_token tok;

    lang_lexer_init(&lx, "4096", 4);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.kind, TK_NUMBER);
    cr_assert_eq(tok.number, 4096);
}

typedef struct {
    const char *text;
    unsigned col;
    const char *message;
} error_case;

static const error_case error_cases[] = {
    {"x \"open", 3, "unterminated string"},
    {"\"a\\qb\"", 3, "unknown escape in a string"},
    {"\"\\x4\"", 1, "\\x in a string needs two hex digits"},
    {"0x123", 1, "odd number of hex digits"},
    {"0x", 1, "expected hex digits after 0x"},
    {"0x12zz", 1, "bad character in a hex byte string"},
    {"12ab", 1, "bad character in a number"},
    {"99999999999999999999999", 1, "number too large"},
    {"a @", 3, "unexpected character"},
    {"a ! b", 3, "unexpected character"},
};

Test(lang_lexer_next, errors_name_the_problem_and_column)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const error_case *ec = &error_cases[i];
        lang_lexer lx;
        lang_token tok;
        lang_lexer_init(&lx, ec->text, strlen(ec->text));
        do {
            lang_lexer_next(&lx, &tok);
        } while (tok.kind != TK_ERROR && tok.kind != TK_EOF);
        cr_assert_eq(tok.kind, TK_ERROR, "case %s", ec->text);
        cr_assert_str_eq(tok.message, ec->message, "case %s", ec->text);
        cr_assert_eq(tok.col, ec->col, "case %s: col %u", ec->text, tok.col);
        cr_assert_not_null(tok.hint);
    }
}

Test(lang_string_decode, escapes)
{
    const char *text = "\"a\\\"b\\\\c\\n\\t\\x41\"";
    unsigned char out[32];
    lang_lexer lx;
    lang_token tok;
    size_t n;

    lang_lexer_init(&lx, text, strlen(text));
    lang_lexer_next(&lx, &tok);
    n = lang_string_decode(&tok, out);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(out, "a\"b\\c\n\tA", 8), 0);
}

Test(lang_bytes_decode, hex_pairs)
{
    unsigned char out[4];
    lang_lexer lx;
    lang_token tok;

    lang_lexer_init(&lx, "0x0a1B", 6);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(lang_bytes_decode(&tok, out), 2);
    cr_assert_eq(out[0], 0x0a);
    cr_assert_eq(out[1], 0x1b);
}

Test(lang_lexer_skip_line, resumes_after_newline)
{
    const char *text = "garbage \"x\n  show";
    lang_lexer lx;
    lang_token tok;

    lang_lexer_init(&lx, text, strlen(text));
    lang_lexer_next(&lx, &tok);
    lang_lexer_skip_line(&lx);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.kind, TK_NEWLINE);
    lang_lexer_next(&lx, &tok);
    cr_assert_eq(tok.kind, TK_IDENT);
    cr_assert_eq(tok.line, 2);
}
