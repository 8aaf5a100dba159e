/*
 * pin.c - reading PINs: from the terminal without echo, or one per line
 * from standard input (--pin-stdin).
 *
 * PINs are read byte by byte with read(2) straight into sodium_malloc'd
 * buffers, so no copy lingers in a stdio buffer; every buffer is wiped when
 * released, on every path. A signal that ends the command while echo is
 * off restores the terminal first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

/* The terminal whose echo is off, and its settings before. */
static volatile sig_atomic_t echo_off_fd = -1;
static struct termios saved_termios;

static void restore_and_reraise(int sig)
{
    if (echo_off_fd >= 0) {
        tcsetattr(echo_off_fd, TCSAFLUSH, &saved_termios);
        (void)!write(echo_off_fd, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int cli_pin_source_open(cli_pin_source *src, bool from_stdin)
{
    src->from_stdin = from_stdin;
    src->tty = -1;
    if (from_stdin) {
        return 0;
    }
    src->tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (src->tty < 0) {
        cli_error("no terminal to ask for PINs (%s); use --pin-stdin", strerror(errno));
        return -1;
    }
    return 0;
}

void cli_pin_source_close(cli_pin_source *src)
{
    if (src->tty >= 0) {
        close(src->tty);
        src->tty = -1;
    }
}

void cli_pin_free(cli_pin *pin)
{
    if (pin->buf != NULL) {
        sodium_free(pin->buf); /* wipes before releasing */
    }
    pin->buf = NULL;
    pin->len = 0;
}

/* Reads one line from fd into pin (without the newline, a trailing CR
 * dropped). Returns 0, 1 at end of input before any byte, or -1 when the
 * line is too long or read fails (errno kept). */
static int read_line(int fd, cli_pin *pin)
{
    bool too_long = false;
    size_t len = 0;
    ssize_t n;
    char c;

    for (;;) {
        n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            if (len == 0 && !too_long) {
                return 1;
            }
            break;
        }
        if (c == '\n') {
            break;
        }
        if (len < CLI_PIN_MAX) {
            pin->buf[len++] = c;
        } else {
            too_long = true;
        }
    }
    sodium_memzero(&c, sizeof(c));
    if (len > 0 && pin->buf[len - 1] == '\r') {
        len--;
    }
    pin->buf[len] = '\0';
    pin->len = len;
    if (too_long) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Prints prompt on the terminal, turns echo off, reads a line, and
 * restores the terminal. Returns what read_line returns, or -1 when the
 * terminal cannot be set up. */
static int read_tty(int tty, const char *prompt, cli_pin *pin)
{
    struct termios noecho;
    int rc;

    if (tcgetattr(tty, &saved_termios) != 0) {
        return -1;
    }
    noecho = saved_termios;
    noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    noecho.c_lflag |= ECHONL;
    (void)!write(tty, prompt, strlen(prompt));
    echo_off_fd = tty;
    signal(SIGINT, restore_and_reraise);
    signal(SIGTERM, restore_and_reraise);
    signal(SIGHUP, restore_and_reraise);
    signal(SIGTSTP, SIG_IGN);
    if (tcsetattr(tty, TCSAFLUSH, &noecho) != 0) {
        rc = -1;
        goto out;
    }
    rc = read_line(tty, pin);
    tcsetattr(tty, TCSAFLUSH, &saved_termios);
out:
    echo_off_fd = -1;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGTSTP, SIG_DFL);
    return rc;
}

int cli_pin_read(cli_pin_source *src, const char *what, cli_pin *pin)
{
    int rc;

    pin->len = 0;
    pin->buf = sodium_malloc(CLI_PIN_MAX + 1);
    if (pin->buf == NULL) {
        cli_error("out of memory");
        return -1;
    }
    if (src->from_stdin) {
        rc = read_line(STDIN_FILENO, pin);
    } else {
        char prompt[256];

        snprintf(prompt, sizeof(prompt), "%c%s: ", toupper((unsigned char)what[0]), what + 1);
        rc = read_tty(src->tty, prompt, pin);
    }
    if (rc == 0) {
        return 0;
    }
    if (rc == 1) {
        cli_error("%s ended before %s", src->from_stdin ? "standard input" : "the terminal", what);
    } else if (errno == ENAMETOOLONG) {
        cli_error("%s is longer than %d bytes", what, CLI_PIN_MAX);
    } else {
        cli_error("cannot read %s: %s", what, strerror(errno));
    }
    cli_pin_free(pin);
    return -1;
}
