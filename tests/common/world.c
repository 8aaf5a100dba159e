/*
 * world.c - an isolated SoftHSM2 world for one test (see world.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "world.h"

#ifndef SOFTHSM_MODULE
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

const char *world_softhsm_module(void)
{
    const char *p = getenv("SOFTHSM_MODULE");
    return p != NULL && *p != '\0' ? p : SOFTHSM_MODULE;
}

const char *world_strata_module(void)
{
    const char *p = getenv("STRATA_MODULE");
    cr_assert(p != NULL && *p != '\0', "STRATA_MODULE is not set (run through meson test)");
    return p;
}

const char *world_strata_cli(void)
{
    const char *p = getenv("STRATA_CLI");
    cr_assert(p != NULL && *p != '\0', "STRATA_CLI is not set (run through meson test)");
    return p;
}

static void join(char *dst, const char *dir, const char *name)
{
    int n = snprintf(dst, PATH_MAX, "%s/%s", dir, name);
    cr_assert(n > 0 && n < PATH_MAX, "path too long");
}

void world_setup(world *w)
{
    const char *tmp = getenv("TMPDIR");
    char conf_home[PATH_MAX], data_home[PATH_MAX];
    FILE *f;

    memset(w, 0, sizeof(*w));
    snprintf(w->dir, sizeof(w->dir), "%s/strata-test-XXXXXX", tmp != NULL ? tmp : "/tmp");
    cr_assert(mkdtemp(w->dir) != NULL, "mkdtemp failed");
    join(w->softhsm_conf, w->dir, "softhsm2.conf");
    join(w->tokens, w->dir, "tokens");
    join(w->policy, w->dir, "strata.xml");
    join(w->catalog, w->dir, "catalog.db");
    join(conf_home, w->dir, "config");
    join(data_home, w->dir, "data");
    cr_assert(mkdir(w->tokens, 0700) == 0);

    f = fopen(w->softhsm_conf, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
            "slots.removable = false\n",
            w->tokens);
    cr_assert(fclose(f) == 0);

    setenv("SOFTHSM2_CONF", w->softhsm_conf, 1);
    setenv("STRATA_CONF", w->policy, 1);
    setenv("XDG_CONFIG_HOME", conf_home, 1);
    setenv("XDG_DATA_HOME", data_home, 1);
}

/* Present only when the test is built with LeakSanitizer (ASan). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

void world_check_leaks(void)
{
    /* Criterion workers leave through a path where LeakSanitizer's exit
     * check never runs, so leaks are looked for explicitly. */
    if (__lsan_do_recoverable_leak_check != NULL)
        cr_assert(__lsan_do_recoverable_leak_check() == 0,
                  "LeakSanitizer found leaks (report on stderr)");
}

void world_teardown(world *w)
{
    if (w->dir[0] != '\0' && getenv("STRATA_KEEP_WORLD") == NULL)
        world_sh("rm -rf '%s'", w->dir);
    world_check_leaks();
}

int world_token(world *w, const char *label, const char *so_pin, const char *user_pin)
{
    (void)w;
    return world_sh("softhsm2-util --init-token --free --label '%s' --so-pin '%s' --pin '%s' "
                    ">/dev/null",
                    label, so_pin, user_pin);
}

static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t n = 0, flen = strlen(from), tlen = strlen(to);
    const char *p;
    char *out, *q;

    for (p = strstr(text, from); p != NULL; p = strstr(p + flen, from))
        n++;
    out = malloc(strlen(text) + n * tlen + 1);
    cr_assert(out != NULL);
    for (q = out; (p = strstr(text, from)) != NULL; text = p + flen) {
        memcpy(q, text, (size_t)(p - text));
        q += p - text;
        memcpy(q, to, tlen);
        q += tlen;
    }
    strcpy(q, text);
    return out;
}

int world_policy(world *w, const char *xml)
{
    char *a = replace_all(xml, "@SOFTHSM@", world_softhsm_module());
    char *b = replace_all(a, "@CATALOG@", w->catalog);
    FILE *f = fopen(w->policy, "w");
    int rc = -1;

    if (f != NULL) {
        rc = fputs(b, f) < 0 ? -1 : 0;
        if (fclose(f) != 0)
            rc = -1;
    }
    free(a);
    free(b);
    return rc;
}

int world_keypair(world *w, const char *token, const char *user_pin, const char *type,
                  const char *label, const char *id_hex)
{
    (void)w;
    return world_sh("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
                    "--keypairgen --key-type '%s' --label '%s' --id '%s' >/dev/null",
                    world_softhsm_module(), token, user_pin, type, label, id_hex);
}

static int status_of(int st)
{
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Formats a command, prefixed under sanitizers with the runtime preload
 * that foreign programs need to load the instrumented module. */
__attribute__((format(printf, 1, 0))) static char *command(const char *fmt, va_list ap)
{
    const char *preload = getenv("STRATA_PRELOAD");
    char *cmd = NULL, *full = NULL;

    if (vasprintf(&cmd, fmt, ap) < 0)
        return NULL;
    if (preload == NULL || *preload == '\0')
        return cmd;
    if (asprintf(&full,
                 "export LD_PRELOAD='%s' ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0; %s",
                 preload, cmd) < 0)
        full = NULL;
    free(cmd);
    return full;
}

int world_sh(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    int st;

    va_start(ap, fmt);
    cmd = command(fmt, ap);
    va_end(ap);
    if (cmd == NULL)
        return -1;
    fflush(NULL);
    st = system(cmd);
    free(cmd);
    return status_of(st);
}

int world_sh_out(char **out, const char *fmt, ...)
{
    char *cmd, *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    va_list ap;
    FILE *p;

    *out = NULL;
    va_start(ap, fmt);
    cmd = command(fmt, ap);
    va_end(ap);
    if (cmd == NULL)
        return -1;
    fflush(NULL);
    p = popen(cmd, "r");
    free(cmd);
    if (p == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
            cr_assert(buf != NULL);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    if (buf == NULL)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    *out = buf;
    return status_of(pclose(p));
}

bool world_json_holds(world *w, const char *input, const char *args, const char *check)
{
    char path[PATH_MAX + 16];
    FILE *f;

    snprintf(path, sizeof(path), "%s/check.py", w->dir);
    f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(check, f);
    fclose(f);
    return world_sh("%s%s%s '%s' %s | python3 -c 'import json, sys; d = json.load(sys.stdin); "
                    "sys.exit(0 if eval(open(sys.argv[1]).read()) else 3)' '%s'",
                    input != NULL ? "echo " : "", input != NULL ? input : "",
                    input != NULL ? " |" : "", world_strata_cli(), args, path) == 0;
}
