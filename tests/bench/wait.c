/*
 * wait.c - bench-wait: the CPU time a thread blocked in
 * C_WaitForSlotEvent uses (issue 16: no busy loop).
 *
 * Loads the module by path (dlopen, C_GetFunctionList), C_Initialize,
 * starts --waiters threads that each call a blocking
 * C_WaitForSlotEvent, sleeps --seconds, then C_Finalize, which releases
 * them (CKR_CRYPTOKI_NOT_INITIALIZED). Each waiter reads its own CPU time
 * (getrusage RUSAGE_THREAD, user + system) before and after its call;
 * the program prints each, their sum and the share of the wall time.
 * The module's configuration comes from the environment (STRATA_CONF);
 * tests/bench/wait.sh makes a world for it.
 *
 *   bench-wait --module PATH [--seconds 60] [--waiters 1]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MAX_WAITERS 64

typedef struct {
    CK_FUNCTION_LIST *p11;
    pthread_t thread;
    CK_RV rv;
    double cpu; /* seconds of CPU the thread used inside its call */
} waiter;

static double thread_cpu(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        return 0.0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *wait_thread(void *arg)
{
    waiter *wt = arg;
    CK_SLOT_ID slot;
    double before = thread_cpu();

    wt->rv = wt->p11->C_WaitForSlotEvent(0, &slot, NULL);
    wt->cpu = thread_cpu() - before;
    return NULL;
}

static CK_FUNCTION_LIST *load(const char *path)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *list = NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (handle == NULL) {
        fprintf(stderr, "bench-wait: dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    *(void **)&get_list = dlsym(handle, "C_GetFunctionList");
    if (get_list == NULL || get_list(&list) != CKR_OK) {
        fprintf(stderr, "bench-wait: %s: no C_GetFunctionList\n", path);
        return NULL;
    }
    return list;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench-wait --module PATH [--seconds N] [--waiters N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *module = NULL;
    unsigned seconds = 60, n = 1;
    waiter waiters[MAX_WAITERS];
    CK_FUNCTION_LIST *p11;
    double total = 0.0;
    CK_RV rv;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--module") == 0) {
            module = argv[i + 1];
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--waiters") == 0) {
            n = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else {
            return usage();
        }
    }
    if (module == NULL || n == 0 || n > MAX_WAITERS || argc % 2 == 0) {
        return usage();
    }
    p11 = load(module);
    if (p11 == NULL) {
        return 1;
    }
    rv = p11->C_Initialize(NULL);
    if (rv != CKR_OK) {
        fprintf(stderr, "bench-wait: C_Initialize: %#lx\n", (unsigned long)rv);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        memset(&waiters[i], 0, sizeof(waiters[i]));
        waiters[i].p11 = p11;
        pthread_create(&waiters[i].thread, NULL, wait_thread, &waiters[i]);
    }
    sleep(seconds);
    rv = p11->C_Finalize(NULL);
    for (unsigned i = 0; i < n; i++) {
        pthread_join(waiters[i].thread, NULL);
        printf("waiter %u: %.4f s CPU in %u s, returned %#lx\n", i, waiters[i].cpu, seconds,
               (unsigned long)waiters[i].rv);
        total += waiters[i].cpu;
    }
    printf("waiters: %u, CPU %.4f s in all over %u s (%.4f%% of one core); C_Finalize %#lx\n", n,
           total, seconds, seconds > 0 ? 100.0 * total / seconds : 0.0, (unsigned long)rv);
    return rv == CKR_OK ? 0 : 1;
}
