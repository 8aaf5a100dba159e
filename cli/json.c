/*
 * json.c - the JSON the strata commands print with --json: a small
 * streaming writer (objects, arrays, strings, integers, booleans), two
 * spaces of indentation, strings escaped for JSON and made valid UTF-8
 * (a byte that does not start a valid sequence prints as U+FFFD).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_json_init(cli_json *j, FILE *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
    j->first[0] = true;
}

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;

    if (p[0] < 0x80) {
        return 1;
    }
    if (n == 0 || p[0] > 0xf4 || (n == 2 && p[0] < 0xc2)) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90)) {
        return 0; /* overlong, surrogate, or past U+10FFFF */
    }
    return n;
}

static void put_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', out);
    while (*p != '\0') {
        size_t n = utf8_len(p);

        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (n == 0) {
            fputs("\\ufffd", out);
            n = 1;
        } else {
            fwrite(p, 1, n, out);
        }
        p += n > 0 ? n : 1;
    }
    fputc('"', out);
}

/* Starts a value: the comma and indentation, then "key": when inside an
 * object. */
static void value_start(cli_json *j, const char *key)
{
    if (!j->first[j->depth]) {
        fputc(',', j->out);
    }
    if (j->depth > 0) {
        fprintf(j->out, "\n%*s", 2 * j->depth, "");
    }
    j->first[j->depth] = false;
    if (key != NULL) {
        put_string(j->out, key);
        fputs(": ", j->out);
    }
}

void cli_json_open(cli_json *j, const char *key, char open)
{
    value_start(j, key);
    fputc(open, j->out);
    if (j->depth + 1 < CLI_JSON_DEPTH) {
        j->depth++;
    }
    j->first[j->depth] = true;
}

void cli_json_close(cli_json *j, char close)
{
    bool empty = j->first[j->depth];

    if (j->depth > 0) {
        j->depth--;
    }
    if (!empty) {
        fprintf(j->out, "\n%*s", 2 * j->depth, "");
    }
    fputc(close, j->out);
    if (j->depth == 0) {
        fputc('\n', j->out);
    }
}

void cli_json_str(cli_json *j, const char *key, const char *value)
{
    value_start(j, key);
    if (value == NULL) {
        fputs("null", j->out);
    } else {
        put_string(j->out, value);
    }
}

void cli_json_int(cli_json *j, const char *key, long long value)
{
    value_start(j, key);
    fprintf(j->out, "%lld", value);
}

void cli_json_bool(cli_json *j, const char *key, bool value)
{
    value_start(j, key);
    fputs(value ? "true" : "false", j->out);
}
