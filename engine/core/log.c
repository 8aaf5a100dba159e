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
 * engine_log (see core.h).
 *
 * The state changes only in C_Initialize/C_Finalize, when no other call
 * runs; calls read it through atomics. The call log (calllog.c) writes its
 * lines here too; since C_Finalize (and a failed C_Initialize) closes the
 * log inside the very call being logged, a thread may hold the destination
 * open until that call's result line is written (engine_log_hold).
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

#include "core.h"

#define LOG_OFF      (-1)
#define LINE_MAX_LEN 4096

static atomic_int log_level = LOG_OFF; /* most verbose level kept, or LOG_OFF */
static atomic_int log_fd = -1;         /* destination */
static bool log_fd_owned;              /* log_fd is a file we opened */
atomic_bool calllog_active = false;    /* log_level is ENGINE_LOG_CALLS (calllog.h) */

static _Thread_local bool hold_here; /* this thread's logged call is in progress */
static int held_fd = -1;             /* destination closed while held, still open */
static bool held_owned;              /* held_fd is a file we opened */

static const char *const level_names[] = {
    [ENGINE_LOG_ERROR] = "error", [ENGINE_LOG_WARNING] = "warning", [ENGINE_LOG_INFO] = "info",
    [ENGINE_LOG_DEBUG] = "debug", [ENGINE_LOG_CALLS] = "calls",
};

static void close_now(void);

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

    close_now();
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
        atomic_store(&calllog_active, level >= ENGINE_LOG_CALLS);
        engine_log(ENGINE_LOG_ERROR, "cannot open log file %s: %s; logging to stderr", target,
                   strerror(err));
        return;
    }
    log_fd_owned = owned;
    atomic_store(&log_fd, fd);
    atomic_store(&log_level, level);
    atomic_store(&calllog_active, level >= ENGINE_LOG_CALLS);
    if (unknown) {
        engine_log(ENGINE_LOG_WARNING,
                   "unknown STRATA_LOG value \"%s\" (error, warning, info, debug, calls)",
                   env_level);
    }
}

/* Silences the log and closes a file it opened; when keep, a destination
 * is moved to held_fd instead of being closed. */
static void silence(bool keep)
{
    int fd = atomic_exchange(&log_fd, -1);

    atomic_store(&calllog_active, false);
    atomic_store(&log_level, LOG_OFF);
    if (keep && fd >= 0) {
        if (held_owned && held_fd >= 0) {
            close(held_fd);
        }
        held_fd = fd;
        held_owned = log_fd_owned;
    } else if (log_fd_owned && fd >= 0) {
        close(fd);
    }
    log_fd_owned = false;
}

/* Closes the log for good (reopening it). */
static void close_now(void)
{
    silence(false);
}

/* Silences the log and closes a file it opened, unless this thread holds
 * the destination for a call's result line (then engine_log_release
 * closes it). Called only while no other call runs (C_Initialize,
 * C_Finalize). */
void engine_log_close(void)
{
    silence(hold_here);
}

void engine_log_hold(void)
{
    hold_here = true;
}

bool engine_log_holding(void)
{
    return hold_here && held_fd >= 0;
}

/* Writes "strata: calls: text\n" to fd with one write(). */
static void write_calls_line(int fd, const char *text, size_t len)
{
    static const char head[] = "strata: calls: ";
    char line[LINE_MAX_LEN];
    size_t n = sizeof(head) - 1;

    if (len > sizeof(line) - n - 1) {
        len = sizeof(line) - n - 1;
    }
    memcpy(line, head, n);
    memcpy(line + n, text, len);
    n += len;
    line[n++] = '\n';
    while (write(fd, line, n) < 0 && errno == EINTR) {
    }
}

void engine_log_calls_line(const char *text, size_t len)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);

    if (calllog_on() && fd >= 0) {
        write_calls_line(fd, text, len);
    }
}

/* The held destination belongs to this thread only while hold_here: the
 * log closes only in C_Initialize/C_Finalize, when no other call runs. */
void engine_log_release(const char *text, size_t len)
{
    bool held = hold_here && held_fd >= 0;

    hold_here = false;
    if (!held) {
        if (text != NULL) {
            engine_log_calls_line(text, len);
        }
        return;
    }
    if (text != NULL) {
        write_calls_line(held_fd, text, len);
    }
    if (held_owned) {
        close(held_fd);
    }
    held_fd = -1;
    held_owned = false;
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
