/*
 * kdf.c - how many Argon2id derivations run at once.
 *
 * Each derivation takes the policy's memory cost (64 MiB by default) for
 * as long as it runs. A server logging many clients in at once would ask
 * for that much per client; instead at most storage_kdf_limit()
 * derivations run at a time (the number of online processors, at least
 * 1: more would only share the same cores) and the rest wait their turn.
 * Peak memory is then bounded by the limit times the cost, whatever the
 * number of clients; a login waits at most its share of the queue.
 *
 * Two bounds, both taken around every derivation (secrets.c):
 *   - threads of one process: a counting semaphore (mutex + condition);
 *   - processes sharing a catalog (`p11-kit server` runs one per client):
 *     one of kdf_limit() one-byte locks of the file that
 *     storage_kdf_share names (CATALOG.kdf), open-file-description
 *     locks, released by the kernel when a process dies holding one.
 * Without a shared file (the command line, unit tests) only the first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t kdf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kdf_free = PTHREAD_COND_INITIALIZER;
static unsigned kdf_running;             /* derivations running in this process */
static unsigned kdf_peak;                /* the most that ever ran at once */
static unsigned kdf_turn;                /* which file slot a waiter queues on next */
static char *kdf_path;                   /* the shared slot file, or NULL */
static _Thread_local unsigned kdf_depth; /* turns this thread holds (nested: 1 counts) */

#define KDF_NESTED (-2) /* a turn inside one this thread holds: nothing taken */
#define KDF_PLACE  (-1) /* a place in the process, no file slot */

/* The number of derivations allowed at once: online processors, >= 1. */
unsigned storage_kdf_limit(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (unsigned)n;
}

unsigned storage_kdf_peak(void)
{
    unsigned peak;

    pthread_mutex_lock(&kdf_lock);
    peak = kdf_peak;
    pthread_mutex_unlock(&kdf_lock);
    return peak;
}

/*
 * Names the file whose byte locks bound derivations across processes
 * (NULL: this process alone). STORAGE_OK or STORAGE_ERR_NOMEM (then
 * none). Takes the semaphore's lock.
 */
storage_rc storage_kdf_share(const char *path)
{
    char *copy = path != NULL ? strdup(path) : NULL;

    if (path != NULL && copy == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    pthread_mutex_lock(&kdf_lock);
    free(kdf_path);
    kdf_path = copy;
    pthread_mutex_unlock(&kdf_lock);
    return STORAGE_OK;
}

/* Locks byte slot of fd (F_OFD_SETLK, or F_OFD_SETLKW when wait).
 * Returns true when held. */
static bool lock_slot(int fd, unsigned slot, bool wait)
{
    struct flock fl;
    int rc;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)slot;
    fl.l_len = 1;
    do {
        rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    } while (rc != 0 && errno == EINTR);
    return rc == 0;
}

/* Takes a file slot: the first free one, else waits on one in turn.
 * Returns the descriptor holding it, or -1 (no file: not bounded across
 * processes). Expects the caller to hold a place in the semaphore. */
static int take_file_slot(const char *path, unsigned limit, unsigned turn)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        return -1;
    }
    for (unsigned i = 0; i < limit; i++) {
        if (lock_slot(fd, i, false)) {
            return fd;
        }
    }
    if (lock_slot(fd, turn % limit, true)) {
        return fd;
    }
    close(fd);
    return -1;
}

/*
 * Waits for a turn to run one derivation (see the file comment) and takes
 * it. A thread that holds a turn already (the engine holds one across a
 * whole PIN evaluation) takes it again as a no-op. Returns what
 * storage_kdf_leave gives back.
 */
int storage_kdf_enter(void)
{
    return storage_kdf_enter_max(0);
}

/* See storage.h. A caller with a smaller bound waits while as many turns
 * as its bound are held, whoever holds them. */
int storage_kdf_enter_max(unsigned most)
{
    unsigned limit = storage_kdf_limit(), turn;
    char *path = NULL;
    int fd;

    if (kdf_depth++ > 0) {
        return KDF_NESTED;
    }
    if (most > 0 && most < limit) {
        limit = most;
    }
    pthread_mutex_lock(&kdf_lock);
    while (kdf_running >= limit) {
        pthread_cond_wait(&kdf_free, &kdf_lock);
    }
    kdf_running++;
    if (kdf_running > kdf_peak) {
        kdf_peak = kdf_running;
    }
    turn = kdf_turn++;
    if (kdf_path != NULL) {
        path = strdup(kdf_path);
    }
    pthread_mutex_unlock(&kdf_lock);
    if (path == NULL) {
        return KDF_PLACE;
    }
    fd = take_file_slot(path, limit, turn + (unsigned)getpid());
    free(path);
    return fd >= 0 ? fd : KDF_PLACE;
}

/* See storage.h. Gives up the turn's own slot first, so that a drainer
 * waits holding no slot: two drainers, or a drainer and a process waiting
 * for a slot, never wait on each other. Then waits (F_OFD_SETLKW) until
 * no other process or thread holds any of the first `most` slots, and
 * takes them all, until storage_kdf_leave. */
bool storage_kdf_drain(int held, unsigned most)
{
    unsigned limit = storage_kdf_limit();
    struct flock fl;
    int rc;

    if (held < 0) {
        return false; /* no slot of a shared file: nothing to wait for */
    }
    if (most > 0 && most < limit) {
        limit = most;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = (off_t)limit;
    if (fcntl(held, F_OFD_SETLK, &fl) != 0) {
        return false;
    }
    fl.l_type = F_WRLCK;
    do {
        rc = fcntl(held, F_OFD_SETLKW, &fl);
    } while (rc != 0 && errno == EINTR);
    return rc == 0;
}

/* Gives back the turn storage_kdf_enter took (STORAGE_KDF_NONE: none). */
void storage_kdf_leave(int held)
{
    if (held == STORAGE_KDF_NONE) {
        return;
    }
    kdf_depth--;
    if (held == KDF_NESTED) {
        return;
    }
    if (held >= 0) {
        close(held); /* releases its byte lock */
    }
    pthread_mutex_lock(&kdf_lock);
    kdf_running--;
    pthread_cond_signal(&kdf_free);
    pthread_mutex_unlock(&kdf_lock);
}
