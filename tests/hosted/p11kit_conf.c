/*
 * p11kit_conf.c - a preload shim for the hosted tests: points the p11-kit
 * of the process it is preloaded into (p11-kit list-modules, pkcs11-tool
 * with p11-kit-proxy.so) at a private configuration, $STRATA_TEST_P11KIT/
 * pkcs11.conf and $STRATA_TEST_P11KIT/modules/, instead of the machine's.
 *
 * Why: p11-kit reads ~/.config/pkcs11/modules only for users other than
 * root, and has no environment variable for its configuration; its own
 * hook for this (p11_kit_override_system_files, the one p11-kit's test
 * suite uses) is in the library that p11-kit-proxy.so is a link to, so
 * calling it before main() reaches the proxy too. Test code only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <p11-kit/p11-kit.h>

static char conf[PATH_MAX];
static char modules[PATH_MAX];

/* A renamed copy of p11-kit-proxy.so (STRATA_TEST_P11KIT_COPY) is a
 * library of its own, with its own configuration: it is loaded here and
 * pointed at the private configuration too, and stays loaded, so the
 * module loader that opens it later gets this very copy. */
static void point_copy(const char *copy)
{
    void (*override)(const char *, const char *, const char *, const char *, const char *);
    void *lib;

    if (copy == NULL || *copy == '\0' || (lib = dlopen(copy, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        return;
    }
    *(void **)&override = dlsym(lib, "p11_kit_override_system_files");
    if (override != NULL) {
        override(conf, "/nonexistent/pkcs11.conf", modules, "/nonexistent/modules",
                 "/nonexistent/modules");
    }
}

__attribute__((constructor)) static void point_p11kit(void)
{
    const char *dir = getenv("STRATA_TEST_P11KIT");

    if (dir == NULL || *dir == '\0') {
        return;
    }
    snprintf(conf, sizeof(conf), "%s/pkcs11.conf", dir);
    snprintf(modules, sizeof(modules), "%s/modules", dir);
    /* system config, user config, package modules, system modules, user
     * modules: only the private folder counts. */
    p11_kit_override_system_files(conf, "/nonexistent/pkcs11.conf", modules, "/nonexistent/modules",
                                  "/nonexistent/modules");
    point_copy(getenv("STRATA_TEST_P11KIT_COPY"));
}
