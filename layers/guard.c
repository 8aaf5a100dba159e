/*
 * guard.c - the backend guard: one file lock shared by every process that
 * uses the same catalog, around the backend calls that read or write a
 * token's own state.
 *
 * Why: SoftHSM2 2.6.1's file store rewrites a token's state file at every
 * C_Login (its PIN-count flags) and re-reads it in other processes at
 * C_Initialize, C_GetTokenInfo, C_OpenSession and C_Login. A process that
 * reads it while another rewrites it sees the token absent or without a
 * user PIN (CKR_TOKEN_NOT_PRESENT, CKR_USER_PIN_NOT_INITIALIZED,
 * CKR_GENERAL_ERROR), and its C_Initialize can even abort on an assertion
 * (SlotManager::insertToken). Inside one process the layer state locks
 * (engine/backend/backend.c) keep logins apart from other calls; between
 * processes, and `p11-kit server` runs one process per client, only a
 * lock on a file can. Measured: 32 clients of one `p11-kit server`
 * logging in at once lost 1 to 13 logins' layers without the guard, none
 * with it (tests/hosted/many.sh; docs/hosting.md).
 *
 * Backend logins, logouts and token (re)initialisations hold the guard
 * exclusively; module initialisation and cycles (which read every
 * token), token lookups (C_GetTokenInfo) and session opening share it.
 * Signatures, searches and attribute calls do not take it: they read
 * object files, not the token's state, and are the hot path.
 *
 * Each hold opens its own descriptor, so threads of one process exclude
 * each other as processes do (a flock lock belongs to the open file
 * description). A thread that already holds the guard takes it again as
 * a no-op (reinit logs out, provisioning cycles the module). With no path
 * set, or a lock file that cannot be opened, the guard does nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

static char *guard_path;                   /* set while no other thread uses layers */
static _Thread_local unsigned guard_depth; /* holds by this thread */

/*
 * Names the guard's lock file (NULL: no guard). Returns CKR_OK or
 * CKR_HOST_MEMORY (the guard then off). Call while no other thread uses
 * this library (C_Initialize, C_Finalize).
 */
CK_RV layers_guard_set(const char *path)
{
    free(guard_path);
    guard_path = NULL;
    if (path == NULL) {
        return CKR_OK;
    }
    guard_path = strdup(path);
    return guard_path != NULL ? CKR_OK : CKR_HOST_MEMORY;
}

/* Opens the lock file, creating it 0600 when it can. -1 when it cannot. */
static int open_lock(void)
{
    int fd = open(guard_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        fd = open(guard_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    return fd;
}

/*
 * Takes the guard, exclusively or shared, waiting for it. Returns what
 * layers_guard_drop needs: a descriptor, or -1 when nothing was taken
 * (no guard, a nested hold, or the file cannot be opened or locked).
 */
int layers_guard_take(bool exclusive)
{
    int fd;
    int rc;

    if (guard_path == NULL || guard_depth++ > 0) {
        return -1;
    }
    fd = open_lock();
    if (fd < 0) {
        return -1;
    }
    do {
        rc = flock(fd, exclusive ? LOCK_EX : LOCK_SH);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Releases what layers_guard_take returned (closing the descriptor
 * releases the lock). */
void layers_guard_drop(int held)
{
    if (guard_path != NULL && guard_depth > 0) {
        guard_depth--;
    }
    if (held >= 0) {
        close(held);
    }
}
