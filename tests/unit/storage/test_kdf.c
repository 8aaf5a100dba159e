/*
 * test_kdf.c - storage/kdf.c: at most storage_kdf_limit() Argon2id
 * derivations at once, between the threads of a process and between
 * processes sharing a slot file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "internal.h"

#define THREADS      12
#define CHILDREN_MAX 64

static const unsigned char salt[SECRETS_SALT_BYTES] = "0123456789abcde";
static pthread_barrier_t start;

/* One login's derivation at 8 MiB, after every thread is ready. */
static void *derive_one(void *arg)
{
    secrets_keys *keys = NULL;

    (void)arg;
    pthread_barrier_wait(&start);
    cr_assert_eq(secrets_keys_derive("1234", 4, salt, 1, 8u << 20, &keys), STORAGE_OK);
    secrets_keys_free(keys);
    return NULL;
}

Test(storage_kdf, storage_kdf_limit_is_small_and_positive)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    cr_assert_geq(storage_kdf_limit(), 1);
    cr_assert_leq(storage_kdf_limit(), cores < 1 ? 1 : (unsigned)cores);
}

Test(storage_kdf, secrets_keys_derive_many_threads_run_at_most_the_limit)
{
    pthread_t t[THREADS];

    cr_assert_eq(storage_kdf_peak(), 0);
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, derive_one, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    pthread_barrier_destroy(&start);
    cr_assert_geq(storage_kdf_peak(), 1);
    cr_assert_leq(storage_kdf_peak(), storage_kdf_limit(), "%u derivations ran at once, limit %u",
                  storage_kdf_peak(), storage_kdf_limit());
}

/* [enter, leave] of each child's derivation place, in shared memory. */
typedef struct {
    double from[CHILDREN_MAX];
    double to[CHILDREN_MAX];
} spans;

/* More processes than the limit, so that an unbounded run overlaps. */
static int children(void)
{
    unsigned n = storage_kdf_limit() + 3;

    return n > CHILDREN_MAX ? CHILDREN_MAX : (int)n;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The most spans open at one instant. */
static unsigned most_at_once(const spans *s)
{
    unsigned most = 0;

    for (int i = 0; i < children(); i++) {
        unsigned open = 0;
        for (int j = 0; j < children(); j++) {
            open += s->from[j] <= s->from[i] && s->from[i] < s->to[j];
        }
        most = open > most ? open : most;
    }
    return most;
}

/* children() processes each hold a place for 150 ms, all released by one
 * pipe at once; returns the most that held one at the same time. */
static unsigned children_at_once(void)
{
    spans *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int go[2];
    unsigned most;

    cr_assert_neq(s, MAP_FAILED);
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < children(); i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            char c;
            int held;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) {
                _exit(2);
            }
            held = storage_kdf_enter();
            s->from[i] = now();
            usleep(150000);
            s->to[i] = now();
            storage_kdf_leave(held);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]); /* every child reads end of file at once */
    for (int i = 0; i < children(); i++) {
        int status;
        cr_assert_gt(wait(&status), 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    most = most_at_once(s);
    munmap(s, sizeof(*s));
    return most;
}

Test(storage_kdf, kdf_enter_bounds_processes_sharing_a_file)
{
    char dir[] = "/tmp/strata-kdf.XXXXXX", path[64];
    unsigned most;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/catalog.db.kdf", dir);
    cr_assert_eq(storage_kdf_share(path), STORAGE_OK);
    most = children_at_once();
    cr_assert_geq(most, 1);
    cr_assert_leq(most, storage_kdf_limit(), "%u processes derived at once, limit %u", most,
                  storage_kdf_limit());
    storage_kdf_share(NULL);
    unlink(path);
    rmdir(dir);
}

Test(storage_kdf, kdf_enter_without_a_file_bounds_only_the_process)
{
    /* The control: the children above would overlap without the file. */
    cr_assert_gt(children_at_once(), storage_kdf_limit());
}
