/*
 * log.c - the optional call log, silent by default.
 *
 * Placeholder until the platform issue lands: logs nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "internal.h"

void engine_log_open(const char *policy_target)
{
    (void)policy_target;
}

void engine_log_close(void)
{
}

bool engine_log_enabled(engine_log_level level)
{
    (void)level;
    return false;
}

void engine_log(engine_log_level level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

void engine_pad(CK_UTF8CHAR *field, size_t field_len, const char *text)
{
    size_t n = text != NULL ? strlen(text) : 0;

    if (n > field_len)
        n = field_len;
    memset(field, ' ', field_len);
    if (n > 0)
        memcpy(field, text, n);
}
