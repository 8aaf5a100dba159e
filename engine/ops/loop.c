/*
 * loop.c - modules that lead back to Strata.
 *
 * A layer's module may reach Strata again: strata-pkcs11.so itself (any
 * name: layers_file_is_strata refuses it at load), p11-kit-proxy.so (or a
 * renamed copy of it) with Strata in its configuration, a copy of
 * strata-pkcs11.so the proxy loads, or p11-kit-client.so pointing at the
 * p11-kit server that serves this very Strata, whose every connection
 * starts one more process running Strata. Unchecked, the first deadlocks
 * C_Login and the last starts processes without end. Three guards, all in
 * C_Initialize:
 *
 *  - the same object re-entered on the thread that is building it
 *    (library.c, busy_enter): the nested C_Initialize fails;
 *  - STRATA_LOADING=<pid> in the environment while this Strata loads its
 *    modules (loop_marker_set/clear): another Strata object of the process
 *    (a copy) or a process started meanwhile inherits it and its
 *    C_Initialize fails (loop_nested_check);
 *  - at most LOOP_SLOTS processes of one catalog load their modules at
 *    once (a byte-range lock each on <catalog>.loading, loop_slot_take):
 *    a loop through another process (p11-kit server) holds every slot
 *    while it waits on itself, so the next instance waits LOOP_WAIT_MS,
 *    marks the file and fails; every Strata of the chain then sees the
 *    mark move while it was loading the module that led to the loop, and
 *    leaves that module out (library.c), so the chain unwinds to the
 *    application with the looping layer offline at every level.
 *    Strata instances that start at the same moment hold a slot for the
 *    few milliseconds their modules take to load, and wait their turn.
 *
 * Each failure logs one line that names the loop. The environment is
 * changed only inside C_Initialize (setenv is not safe against other
 * threads reading the environment at that moment; PKCS#11 applications
 * initialise a module before they share it between threads).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"

#define LOOP_ENV     "STRATA_LOADING"
#define LOOP_SLOTS   6    /* processes of one catalog loading modules at once */
#define LOOP_WAIT_MS 3000 /* longest wait for a slot */
#define LOOP_POLL_MS 20
#define MARK_OFFSET  64 /* where the slots' file keeps the time a loop was last met */

static int slot_fd = -1; /* <catalog>.loading while a slot is held; C_Initialize only */
static bool marker_set;  /* this instance set LOOP_ENV */

/* See ops.h. */
CK_RV loop_nested_check(void)
{
    const char *marker = getenv(LOOP_ENV);

    if (marker == NULL || marker_set) {
        return CKR_OK;
    }
    engine_log(ENGINE_LOG_ERROR,
               "C_Initialize: this Strata was loaded by a layer's module while a Strata (process "
               "%s) loads its modules: the module leads back to Strata (p11-kit-proxy.so or a copy "
               "of strata-pkcs11.so with Strata in its configuration?); refused, so that layer "
               "fails and the others work",
               marker);
    return CKR_GENERAL_ERROR;
}

/* See ops.h. */
void loop_marker_set(void)
{
    char pid[24];

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    marker_set = getenv(LOOP_ENV) == NULL && setenv(LOOP_ENV, pid, 0) == 0;
}

/* See ops.h. */
void loop_marker_clear(void)
{
    if (marker_set) {
        unsetenv(LOOP_ENV);
        marker_set = false;
    }
}

/* Tries every slot once. True when one is now held through fd. */
static bool slot_try(int fd)
{
    for (int i = 0; i < LOOP_SLOTS; i++) {
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1};
        if (fcntl(fd, F_SETLK, &lock) == 0) {
            return true;
        }
    }
    return false;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Records in the slots' file that a loop was met (the time, at
 * MARK_OFFSET): every Strata of the chain that waits on it sees the mark
 * move while it loads the looping module (loop_mark_moved). */
static void loop_mark_write(int fd)
{
    struct timespec now;
    uint64_t stamp;

    clock_gettime(CLOCK_REALTIME, &now);
    stamp = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (pwrite(fd, &stamp, sizeof(stamp), MARK_OFFSET) != (ssize_t)sizeof(stamp)) {
        engine_log(ENGINE_LOG_DEBUG, "the loop mark could not be written: %s", strerror(errno));
    }
}

/* See ops.h. */
uint64_t loop_mark(void)
{
    uint64_t stamp = 0;

    if (slot_fd < 0 ||
        pread(slot_fd, &stamp, sizeof(stamp), MARK_OFFSET) != (ssize_t)sizeof(stamp)) {
        return 0;
    }
    return stamp;
}

/* See ops.h. */
bool loop_mark_moved(uint64_t before)
{
    return slot_fd >= 0 && loop_mark() != before;
}

/* Whether the process pid holds one of the slots of fd's file. */
static bool holds_slot(int fd, pid_t pid)
{
    for (int i = 0; i < LOOP_SLOTS; i++) {
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1};
        if (fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK && lock.l_pid == pid) {
            return true;
        }
    }
    return false;
}

/* The process at the other end of one of this process's Unix sockets that
 * holds a slot of fd's file (a Strata of this catalog loading its
 * modules), or 0. A process that serves PKCS#11 over a socket (a p11-kit
 * server's child) is then serving that Strata while it loads. */
static pid_t peer_loading(int fd)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    pid_t found = 0;

    while (dir != NULL && found == 0 && (e = readdir(dir)) != NULL) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct stat st;
        int sock = atoi(e->d_name);

        if (e->d_name[0] == '.' || sock == fd || fstat(sock, &st) != 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0 ||
            cred.pid == getpid()) {
            continue;
        }
        if (holds_slot(fd, cred.pid)) {
            found = cred.pid;
        }
    }
    if (dir != NULL) {
        closedir(dir);
    }
    return found;
}

/* See ops.h. */
CK_RV loop_slot_take(const char *catalog)
{
    char path[4096];
    pid_t peer;
    int fd;

    if (catalog == NULL ||
        snprintf(path, sizeof(path), "%s.loading", catalog) >= (int)sizeof(path)) {
        return CKR_OK;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        engine_log(ENGINE_LOG_DEBUG, "%s: %s (loops through other processes go unbounded)", path,
                   strerror(errno));
        return CKR_OK;
    }
    peer = peer_loading(fd);
    if (peer != 0) {
        close(fd);
        engine_log(ENGINE_LOG_ERROR,
                   "C_Initialize: this Strata serves process %ld over a socket, and that process "
                   "is a Strata of the same catalog (%s) loading its modules: one of its layers' "
                   "modules (p11-kit-client.so pointing at the p11-kit server that serves this "
                   "Strata?) leads back to Strata; refused, so that layer fails and the others "
                   "work",
                   (long)peer, catalog);
        return CKR_GENERAL_ERROR;
    }
    for (long waited = 0;; waited += LOOP_POLL_MS) {
        if (slot_try(fd)) {
            slot_fd = fd;
            return CKR_OK;
        }
        if (waited >= LOOP_WAIT_MS) {
            break;
        }
        sleep_ms(LOOP_POLL_MS);
    }
    loop_mark_write(fd);
    close(fd);
    engine_log(ENGINE_LOG_ERROR,
               "C_Initialize: %d Strata processes of catalog %s are loading their modules and "
               "none finished within %d ms: a layer's module leads back to Strata through another "
               "process (p11-kit-client.so pointing at the p11-kit server that serves this "
               "Strata?); refused, so that layer fails and the others work",
               LOOP_SLOTS, catalog, LOOP_WAIT_MS);
    return CKR_GENERAL_ERROR;
}

/* See ops.h. */
void loop_slot_release(void)
{
    if (slot_fd >= 0) {
        close(slot_fd); /* drops the byte lock */
        slot_fd = -1;
    }
}
