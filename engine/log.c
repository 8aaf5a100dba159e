/*
 * log.c - the optional log, silent by default.
 *
 * Enabled by the environment or the policy:
 *   STRATA_LOG=error|warning|info|debug|calls  the most verbose level kept
 *                                              ("calls" = debug + each call)
 *   STRATA_LOG_FILE=path                       where lines go (default stderr)
 *   <log calls="stderr|PATH"/> in the policy   "calls" to that target, unless
 *                                              the environment says otherwise
 * Each message is one line, "strata: LEVEL: text\n", written with a single
 * write() so that lines of concurrent threads never interleave. The log
 * never formats a secret: callers mask PINs and keys before calling
 * engine_log (see internal.h).
 *
 * The state changes only in C_Initialize/C_Finalize, when no other call
 * runs; calls read it through atomics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LOG_OFF      (-1)
#define LINE_MAX_LEN 1024

static atomic_int log_level = LOG_OFF; /* most verbose level kept, or LOG_OFF */
static atomic_int log_fd = -1;         /* destination */
static bool log_fd_owned;              /* log_fd is a file we opened */

static const char *const level_names[] = {
    [ENGINE_LOG_ERROR] = "error", [ENGINE_LOG_WARNING] = "warning", [ENGINE_LOG_INFO] = "info",
    [ENGINE_LOG_DEBUG] = "debug", [ENGINE_LOG_CALLS] = "calls",
};

/* The level named by text, or LOG_OFF when text names none. */
static int parse_level(const char *text)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            return (int)i;
        }
    }
    return LOG_OFF;
}

/* Opens target ("stderr" or a path) for appending; returns the descriptor
 * and sets *owned, or -1 when the file cannot be opened. */
static int open_target(const char *target, bool *owned)
{
    int fd;

    *owned = false;
    if (target == NULL || *target == '\0' || strcmp(target, "stderr") == 0) {
        return STDERR_FILENO;
    }
    fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0) {
        *owned = true;
    }
    return fd;
}

/*
 * Sets the log up for this C_Initialize from STRATA_LOG, STRATA_LOG_FILE
 * and policy_target (the policy's <log calls="..."> value, or NULL). May be
 * called again once the policy is known; the earlier destination is
 * closed. An unknown STRATA_LOG value keeps warnings and says so; a file
 * that cannot be opened falls back to stderr with an error line.
 * Called only while no other call runs (C_Initialize).
 */
void engine_log_open(const char *policy_target)
{
    const char *env_level = getenv("STRATA_LOG");
    const char *env_file = getenv("STRATA_LOG_FILE");
    const char *target = env_file != NULL && *env_file != '\0' ? env_file : policy_target;
    bool unknown = false, owned = false;
    int level = LOG_OFF, fd;

    engine_log_close();
    if (env_level != NULL && *env_level != '\0') {
        level = parse_level(env_level);
        if (level == LOG_OFF) {
            level = ENGINE_LOG_WARNING;
            unknown = true;
        }
    } else if (policy_target != NULL) {
        level = ENGINE_LOG_CALLS;
    }
    if (level == LOG_OFF) {
        return;
    }
    fd = open_target(target, &owned);
    if (fd < 0) {
        int err = errno;
        atomic_store(&log_fd, STDERR_FILENO);
        atomic_store(&log_level, level);
        engine_log(ENGINE_LOG_ERROR, "cannot open log file %s: %s; logging to stderr", target,
                   strerror(err));
        return;
    }
    log_fd_owned = owned;
    atomic_store(&log_fd, fd);
    atomic_store(&log_level, level);
    if (unknown) {
        engine_log(ENGINE_LOG_WARNING,
                   "unknown STRATA_LOG value \"%s\" (error, warning, info, debug, calls)",
                   env_level);
    }
}

/* Silences the log and closes a file it opened. Called only while no other
 * call runs (C_Initialize, C_Finalize). */
void engine_log_close(void)
{
    int fd = atomic_exchange(&log_fd, -1);

    atomic_store(&log_level, LOG_OFF);
    if (log_fd_owned && fd >= 0) {
        close(fd);
    }
    log_fd_owned = false;
}

bool engine_log_enabled(engine_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Formats one line (truncated to LINE_MAX_LEN bytes, newline kept) and
 * writes it with one write(). Never fails visibly. */
void engine_log(engine_log_level level, const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    va_list ap;
    int head, body;
    size_t len;

    if (!engine_log_enabled(level) || fd < 0) {
        return;
    }
    head = snprintf(line, sizeof(line), "strata: %s: ", level_names[level]);
    if (head < 0) {
        return;
    }
    va_start(ap, fmt);
    body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
    va_end(ap);
    if (body < 0) {
        return;
    }
    len = (size_t)head + (size_t)body;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    while (write(fd, line, len) < 0 && errno == EINTR) {
    }
}

void engine_pad(CK_UTF8CHAR *field, size_t field_len, const char *text)
{
    size_t n = text != NULL ? strlen(text) : 0;

    if (n > field_len) {
        n = field_len;
    }
    memset(field, ' ', field_len);
    if (n > 0) {
        memcpy(field, text, n);
    }
}
