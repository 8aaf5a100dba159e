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
 * - openCryptoki's software token needs its slot daemon, pkcsslotd, and
 *   both read fixed paths compiled in (/etc/opencryptoki/opencryptoki.conf,
 *   /var/lib/opencryptoki/swtok, /run/pkcsslotd.socket, /run/lock; no
 *   environment variable moves them). ock_start gives the test process a
 *   private mount and IPC namespace (root only: unshare(2)) with the test's
 *   folders bound over those paths and fresh tmpfs on /run and /dev/shm,
 *   starts pkcsslotd there and ock_stop kills it: the machine's own
 *   openCryptoki state is never seen nor touched. PINs are 4 to 8 bytes.
 * - tpm2-pkcs11 talks to a TPM through a TCTI: tpm_start runs swtpm on
 *   loopback ports of its own with its state in the world's folder, and
 *   sets TPM2_PKCS11_TCTI=swtpm:port=P and TPM2_PKCS11_STORE (the
 *   module's SQLite store) for the process and its children; tpm_stop
 *   kills it. Tokens are made through PKCS#11 (C_InitToken on the
 *   module's empty slot), no tpm2_ptool needed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_BACKENDS_WORLD_H
#define STRATA_TEST_BACKENDS_WORLD_H

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
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

/* Reads a pid file (0 when absent or empty). */
static inline pid_t backends_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;

    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1) {
            pid = 0;
        }
        fclose(f);
    }
    return (pid_t)pid;
}

/* Kills a daemon the test started (by its pid) and waits, at most 5 s,
 * until it is gone. */
static inline void backends_kill(pid_t pid)
{
    struct timespec tick = {0, 20 * 1000 * 1000};

    if (pid <= 0 || kill(pid, SIGTERM) != 0) {
        return;
    }
    for (int i = 0; i < 250 && kill(pid, 0) == 0; i++) {
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
}

/* ---- openCryptoki ----------------------------------------------------- */

#define OCK_LIB_DIR "/usr/lib/x86_64-linux-gnu/opencryptoki"
#define OCK_SO_PIN  "87654321" /* the software token's factory SO PIN */

typedef struct {
    char module[PATH_MAX]; /* libopencryptoki.so */
    pid_t slotd;           /* pkcsslotd */
    bool sandboxed;        /* this process has its private namespace */
} ock_sandbox;

/* Starts pkcsslotd on private state (see the file comment) with the one
 * software-token slot. Skips the test, saying why, when that is
 * impossible here. */
static inline void ock_start(const world *wd, ock_sandbox *o)
{
    char state[PATH_MAX + 64];

    memset(o, 0, sizeof(*o));
    snprintf(o->module, sizeof(o->module), "%s/libopencryptoki.so.0", OCK_LIB_DIR);
    if (access(o->module, R_OK) != 0 || access("/usr/sbin/pkcsslotd", X_OK) != 0) {
        cr_skip_test("openCryptoki is not installed (package opencryptoki, scripts/deps.sh)");
    }
    if (geteuid() != 0) {
        cr_skip_test("openCryptoki reads only its compiled-in paths (/etc/opencryptoki, "
                     "/var/lib/opencryptoki, /run); giving it private ones takes a mount "
                     "namespace, which takes root (CI runs as root)");
    }
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0) {
        cr_skip_test("openCryptoki needs a private mount namespace here, and unshare(2) "
                     "failed: %s (a container without CAP_SYS_ADMIN?)",
                     strerror(errno));
    }
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
    o->sandboxed = true;
    snprintf(state, sizeof(state), "%s/ock", wd->dir);
    cr_assert_eq(
        world_sh(
            "set -e; S='%s'; mkdir -p \"$S/etc\" \"$S/lib/swtok/TOK_OBJ\"; "
            "printf 'version opencryptoki-3.1\\n\\nslot 3\\n{\\nstdll = libpkcs11_sw.so\\n}\\n' "
            "> \"$S/etc/opencryptoki.conf\"; chgrp -R pkcs11 \"$S\"; chmod -R g+rwx \"$S\"; "
            "mount --bind \"$S/etc\" /etc/opencryptoki; "
            "mount --bind \"$S/lib\" /var/lib/opencryptoki; "
            "mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /dev/shm; "
            "mkdir -p /run/lock/opencryptoki; chgrp pkcs11 /run/lock/opencryptoki; "
            "chmod 770 /run/lock/opencryptoki; /usr/sbin/pkcsslotd",
            state),
        0, "the openCryptoki sandbox did not start");
    /* pkcsslotd forks into the background before it writes its pid file
     * and opens its socket. */
    for (int i = 0; i < 250 && (o->slotd == 0 || access("/run/pkcsslotd.socket", F_OK) != 0); i++) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
        o->slotd = backends_pid_file("/run/pkcsslotd.pid");
    }
    cr_assert_gt(o->slotd, 0, "pkcsslotd wrote no pid file");
    cr_assert_eq(access("/run/pkcsslotd.socket", F_OK), 0, "pkcsslotd opened no socket");
}

/* Initialises the token on the module's first slot as label with the
 * SO PIN so_pin (a fresh token's), then sets the user PIN, with
 * pkcs11-tool. */
static inline void backends_init_token(const char *module, const char *so_pin, const char *label,
                                       const char *user_pin)
{
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --slot-index 0 --init-token --so-pin %s "
                          "--label '%s' >/dev/null 2>&1 && pkcs11-tool --module '%s' "
                          "--token-label '%s' --login --login-type so --so-pin %s --init-pin "
                          "--pin '%s' >/dev/null 2>&1",
                          module, so_pin, label, module, label, so_pin, user_pin),
                 0, "token initialisation on %s", module);
}

/* Initialises the software token as label with the user PIN (4-8 bytes). */
static inline void ock_token(const ock_sandbox *o, const char *label, const char *user_pin)
{
    backends_init_token(o->module, OCK_SO_PIN, label, user_pin);
}

/* Stops pkcsslotd, also one whose start failed half-way (its pid file
 * is in this process's private /run). */
static inline void ock_stop(ock_sandbox *o)
{
    if (o->slotd == 0 && o->sandboxed) {
        o->slotd = backends_pid_file("/run/pkcsslotd.pid");
    }
    backends_kill(o->slotd);
    o->slotd = 0;
}

/* ---- tpm2-pkcs11 over swtpm ------------------------------------------- */

#define TPM_MODULE "/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1"
#define TPM_SO_PIN "87654321"

typedef struct {
    char module[PATH_MAX];
    pid_t swtpm;
    int port;
} tpm_sandbox;

/* Starts swtpm with its state in the world's folder on free loopback
 * ports and points tpm2-pkcs11 at it. Skips (saying why) when the
 * packages are missing. */
static inline void tpm_start(const world *wd, tpm_sandbox *t)
{
    char tcti[64], pidfile[PATH_MAX + 64], store[PATH_MAX + 64];
    int rc = -1;

    memset(t, 0, sizeof(*t));
    snprintf(t->module, sizeof(t->module), "%s", TPM_MODULE);
    if (access(t->module, R_OK) != 0 || world_sh("command -v swtpm >/dev/null") != 0) {
        cr_skip_test("tpm2-pkcs11 or swtpm is not installed (packages libtpm2-pkcs11-1, swtpm; "
                     "scripts/deps.sh)");
    }
    snprintf(pidfile, sizeof(pidfile), "%s/swtpm.pid", wd->dir);
    snprintf(store, sizeof(store), "%s/tpm-store", wd->dir);
    cr_assert_eq(world_sh("mkdir -p '%s/swtpm' '%s'", wd->dir, store), 0);
    /* A port pair from the pid, moved on when taken. */
    for (int attempt = 0; attempt < 20 && rc != 0; attempt++) {
        t->port = 20000 + (int)((getpid() * 7 + attempt * 101) % 20000) / 2 * 2;
        rc = world_sh("swtpm socket --tpm2 --server type=tcp,port=%d,bindaddr=127.0.0.1 "
                      "--ctrl type=tcp,port=%d,bindaddr=127.0.0.1 --tpmstate dir='%s/swtpm' "
                      "--flags not-need-init,startup-clear --daemon --pid file='%s' 2>/dev/null",
                      t->port, t->port + 1, wd->dir, pidfile);
    }
    cr_assert_eq(rc, 0, "swtpm did not start");
    for (int i = 0; i < 250 && (t->swtpm = backends_pid_file(pidfile)) == 0; i++) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    cr_assert_gt(t->swtpm, 0, "swtpm wrote no pid file");
    snprintf(tcti, sizeof(tcti), "swtpm:port=%d", t->port);
    setenv("TPM2_PKCS11_TCTI", tcti, 1);
    setenv("TPM2_PKCS11_STORE", store, 1);
    setenv("TSS2_LOG", "all+none", 1);
}

/* Makes a token labelled label with the user PIN on the module's free slot. */
static inline void tpm_token(const tpm_sandbox *t, const char *label, const char *user_pin)
{
    backends_init_token(t->module, TPM_SO_PIN, label, user_pin);
}

static inline void tpm_stop(tpm_sandbox *t)
{
    backends_kill(t->swtpm);
    t->swtpm = 0;
}

/* A key pair made directly on a backend with pkcs11-tool. */
static inline void backends_keypair(const char *module, const char *token, const char *pin,
                                    const char *type, const char *label, const char *id)
{
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label '%s' --login --pin '%s' "
                          "--keypairgen --key-type %s --label '%s' --id %s >/dev/null 2>&1",
                          module, token, pin, type, label, id),
                 0, "key pair %s on %s", label, token);
}

#endif /* STRATA_TEST_BACKENDS_WORLD_H */
