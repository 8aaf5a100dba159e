/*
 * backends_world.h - sandboxes for backends other than SoftHSM2, for
 * test_backends.c (header-only; included once). Each lives inside the
 * test's world folder (world.h) and is torn down with it.
 *
 * - p11-kit's trust module reads the certificate files under the paths
 *   its C_Initialize gets as pReserved ("paths=DIR"), which the policy
 *   passes with <module init-reserved="...">: a folder of PEM
 *   certificates made here with openssl, never the machine's CA bundle.
 *   The token's label is the folder's name ("ca-store").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_BACKENDS_WORLD_H
#define STRATA_TEST_BACKENDS_WORLD_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "world.h"

/* p11-kit's module folder (P11_MODULE_DIR, set by meson from p11-kit-1's
 * pkg-config), the Debian path otherwise. */
static inline const char *backends_module_dir(void)
{
    const char *dir = getenv("P11_MODULE_DIR");

    return dir != NULL && dir[0] != '\0' ? dir : "/usr/lib/x86_64-linux-gnu/pkcs11";
}

/* The path of p11-kit-trust.so; skips the test (printed reason) when
 * p11-kit-modules is not installed. */
static inline const char *trust_module(void)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/p11-kit-trust.so", backends_module_dir());
    if (access(path, R_OK) != 0) {
        cr_skip_test("%s is missing: install p11-kit-modules (scripts/deps.sh)", path);
    }
    return path;
}

/* <world>/ca-store: the trust store's folder (its token's label). */
static inline const char *trust_store_path(const world *wd)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/ca-store", wd->dir);
    return path;
}

/* Makes the trust store with n self-signed EC certificates whose subject
 * (and so label) is CN=strata-test-ca-<i>, i = 1..n; store gets its path. */
static inline void trust_store(const world *wd, char store[PATH_MAX + 64], int n)
{
    snprintf(store, PATH_MAX + 64, "%s", trust_store_path(wd));
    cr_assert_eq(world_sh("mkdir -p '%s'", store), 0);
    for (int i = 1; i <= n; i++) {
        cr_assert_eq(world_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                              "-nodes -keyout '%s/key-%d.pem' -out '%s/ca-%d.pem' -days 30 "
                              "-subj /CN=strata-test-ca-%d 2>/dev/null && rm '%s/key-%d.pem'",
                              store, i, store, i, i, store, i),
                     0, "openssl req");
    }
}

/* A copy of text with every from replaced by to (malloc'd). */
static inline char *backends_replace(const char *text, const char *from, const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to), n = 0;
    const char *p;
    char *out, *o;

    for (p = strstr(text, from); p != NULL; p = strstr(p + flen, from)) {
        n++;
    }
    out = malloc(strlen(text) + n * tlen + 1);
    cr_assert(out != NULL);
    for (o = out, p = text; *p != '\0';) {
        if (strncmp(p, from, flen) == 0) {
            memcpy(o, to, tlen);
            o += tlen;
            p += flen;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* Writes the policy with @TRUST@ (the trust module's path) and @STORE@
 * (its folder) replaced, then world_policy's own marks. */
static inline int backends_policy(world *wd, const char *xml, const char *trust, const char *store)
{
    char *a = backends_replace(xml, "@TRUST@", trust);
    char *b = backends_replace(a, "@STORE@", store);
    int rc = world_policy(wd, b);

    free(a);
    free(b);
    return rc;
}

#endif /* STRATA_TEST_BACKENDS_WORLD_H */
