/*
 * lexer.c - tokens of the rule language (strata-rules(7), LEXICAL
 * STRUCTURE): identifiers with '-' and '_', "strings" with escapes, 0x hex
 * byte strings, decimal numbers, punctuation and newlines. '#' starts a
 * comment that runs to the end of the line. Columns count bytes from 1.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lang.h"

void lang_lexer_init(lang_lexer *lx, const char *text, size_t len)
{
    lx->text = text;
    lx->end = text + len;
    lx->pos = text;
    lx->line = 1;
    lx->line_start = text;
}

static bool is_ident_start(int ch)
{
    return isalpha(ch) || ch == '_';
}

static bool is_ident_char(int ch)
{
    return isalnum(ch) || ch == '_' || ch == '-';
}

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static void skip_blanks_and_comments(lang_lexer *lx)
{
    while (lx->pos < lx->end) {
        char ch = *lx->pos;
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            lx->pos++;
        } else if (ch == '#') {
            while (lx->pos < lx->end && *lx->pos != '\n') {
                lx->pos++;
            }
        } else {
            break;
        }
    }
}

static void set_error(lang_token *tok, const char *message, const char *hint)
{
    tok->kind = TK_ERROR;
    tok->message = message;
    tok->hint = hint;
}

/* Scans a "string" starting at the opening quote. Escapes: \\ \" \n \t
 * \xHH. A string ends on its line. */
static void lex_string(lang_lexer *lx, lang_token *tok)
{
    const char *p = lx->pos + 1;

    while (p < lx->end && *p != '"' && *p != '\n') {
        if (*p == '\\') {
            if (p + 1 >= lx->end || p[1] == '\n') {
                break;
            }
            if (p[1] == 'x') {
                if (p + 3 >= lx->end || hex_value((unsigned char)p[2]) < 0 ||
                    hex_value((unsigned char)p[3]) < 0) {
                    tok->len = (size_t)(p - lx->pos) + 2;
                    set_error(tok, "\\x in a string needs two hex digits",
                              "write a byte as \\x0a, or use a 0x literal");
                    lx->pos += tok->len;
                    return;
                }
                p += 4;
                continue;
            }
            if (strchr("\\\"nt", p[1]) == NULL) {
                tok->col += (unsigned)(p - lx->pos);
                tok->start = p;
                tok->len = 2;
                set_error(tok, "unknown escape in a string",
                          "the escapes are \\\\, \\\", \\n, \\t and \\xHH");
                lx->pos = p + 2;
                return;
            }
            p += 2;
            continue;
        }
        p++;
    }
    if (p >= lx->end || *p != '"') {
        tok->len = (size_t)(p - lx->pos);
        set_error(tok, "unterminated string", "close the string with \" on the same line");
        lx->pos = p;
        return;
    }
    tok->kind = TK_STRING;
    tok->len = (size_t)(p + 1 - lx->pos);
    lx->pos = p + 1;
}

/* Scans 0x... (a byte string) or a decimal number. */
static void lex_number(lang_lexer *lx, lang_token *tok)
{
    const char *p = lx->pos;

    if (p + 1 < lx->end && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        const char *q = p + 2;
        while (q < lx->end && hex_value((unsigned char)*q) >= 0) {
            q++;
        }
        tok->len = (size_t)(q - p);
        lx->pos = q;
        if (q < lx->end && is_ident_char((unsigned char)*q)) {
            set_error(tok, "bad character in a hex byte string", "hex digits are 0-9 and a-f");
        } else if (tok->len == 2) {
            set_error(tok, "expected hex digits after 0x", "write bytes as 0x0a1b");
        } else if (tok->len % 2 != 0) {
            set_error(tok, "odd number of hex digits", "a byte string has two digits per byte");
        } else {
            tok->kind = TK_BYTES;
        }
        return;
    }
    tok->number = 0;
    while (p < lx->end && isdigit((unsigned char)*p)) {
        CK_ULONG digit = (CK_ULONG)(*p - '0');
        if (tok->number > (CK_UNAVAILABLE_INFORMATION - 1 - digit) / 10) {
            tok->kind = TK_ERROR;
        }
        tok->number = tok->number * 10 + digit;
        p++;
    }
    tok->len = (size_t)(p - lx->pos);
    lx->pos = p;
    if (p < lx->end && is_ident_char((unsigned char)*p)) {
        set_error(tok, "bad character in a number", "numbers are decimal; bytes are 0x0a1b");
    } else if (tok->kind == TK_ERROR) {
        set_error(tok, "number too large", "numbers must fit in a CK_ULONG");
    } else {
        tok->kind = TK_NUMBER;
    }
}

static bool lex_punct(lang_lexer *lx, lang_token *tok)
{
    static const struct {
        const char *text;
        lang_token_kind kind;
    } puncts[] = {
        {"==", TK_EQ},    {"!=", TK_NE},    {"=", TK_ASSIGN},   {"~", TK_TILDE},    {"+", TK_PLUS},
        {"(", TK_LPAREN}, {")", TK_RPAREN}, {"[", TK_LBRACKET}, {"]", TK_RBRACKET}, {",", TK_COMMA},
    };
    size_t left = (size_t)(lx->end - lx->pos);

    for (size_t i = 0; i < sizeof(puncts) / sizeof(puncts[0]); i++) {
        size_t n = strlen(puncts[i].text);
        if (n <= left && memcmp(lx->pos, puncts[i].text, n) == 0) {
            tok->kind = puncts[i].kind;
            tok->len = n;
            lx->pos += n;
            return true;
        }
    }
    return false;
}

/*
 * Reads the next token into tok. Never fails: a lexical error is a
 * TK_ERROR token with a message and hint, after which the lexer continues
 * past the bad text.
 */
void lang_lexer_next(lang_lexer *lx, lang_token *tok)
{
    memset(tok, 0, sizeof(*tok));
    skip_blanks_and_comments(lx);
    tok->start = lx->pos;
    tok->line = lx->line;
    tok->col = (unsigned)(lx->pos - lx->line_start) + 1;
    if (lx->pos >= lx->end) {
        tok->kind = TK_EOF;
        return;
    }
    unsigned char ch = (unsigned char)*lx->pos;
    if (ch == '\n') {
        tok->kind = TK_NEWLINE;
        tok->len = 1;
        lx->pos++;
        lx->line++;
        lx->line_start = lx->pos;
    } else if (is_ident_start(ch)) {
        const char *p = lx->pos;
        while (p < lx->end && is_ident_char((unsigned char)*p)) {
            p++;
        }
        tok->kind = TK_IDENT;
        tok->len = (size_t)(p - lx->pos);
        lx->pos = p;
    } else if (ch == '"') {
        lex_string(lx, tok);
    } else if (isdigit(ch)) {
        lex_number(lx, tok);
    } else if (!lex_punct(lx, tok)) {
        tok->len = 1;
        lx->pos++;
        set_error(tok, "unexpected character",
                  ch == '!' ? "use != to compare, or not to negate"
                            : "see strata-rules(7) for the characters the language uses");
    }
}

void lang_lexer_skip_line(lang_lexer *lx)
{
    while (lx->pos < lx->end && *lx->pos != '\n') {
        lx->pos++;
    }
}

size_t lang_string_decode(const lang_token *tok, unsigned char *out)
{
    const char *p = tok->start + 1;
    const char *end = tok->start + tok->len - 1;
    size_t n = 0;

    while (p < end) {
        if (*p != '\\') {
            out[n++] = (unsigned char)*p++;
            continue;
        }
        switch (p[1]) {
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'x':
            out[n++] = (unsigned char)(hex_value((unsigned char)p[2]) * 16 +
                                       hex_value((unsigned char)p[3]));
            p += 2;
            break;
        default:
            out[n++] = (unsigned char)p[1];
            break;
        }
        p += 2;
    }
    return n;
}

size_t lang_bytes_decode(const lang_token *tok, unsigned char *out)
{
    size_t n = 0;

    for (size_t i = 2; i + 1 < tok->len; i += 2) {
        out[n++] = (unsigned char)(hex_value((unsigned char)tok->start[i]) * 16 +
                                   hex_value((unsigned char)tok->start[i + 1]));
    }
    return n;
}

void lang_token_describe(const lang_token *tok, char *buf, size_t size)
{
    switch (tok->kind) {
    case TK_EOF:
        snprintf(buf, size, "the end of the rules");
        break;
    case TK_NEWLINE:
        snprintf(buf, size, "the end of the line");
        break;
    case TK_STRING:
        snprintf(buf, size, "a string");
        break;
    case TK_BYTES:
        snprintf(buf, size, "a byte string");
        break;
    case TK_NUMBER:
        snprintf(buf, size, "a number");
        break;
    default: {
        int n = tok->len > 40 ? 40 : (int)tok->len;
        snprintf(buf, size, "'%.*s'", n, tok->start);
        break;
    }
    }
}
