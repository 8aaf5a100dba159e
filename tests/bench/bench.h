/*
 * bench.h - shared types of the benchmark program (tests/bench).
 *
 * The program loads a PKCS#11 module by path with dlopen and
 * C_GetFunctionList, exactly as a client does, and times one workload on
 * one or more tokens. bench.c parses the command line, runs the threads and
 * reports; module.c finds tokens, keys and objects and fills tokens;
 * workload.c holds the timed operations and the clock; memory.c measures
 * resident memory and heap (--memory); layers_rv_name names return codes.
 * bench-ab (ab.c) reuses module.c and workload.c to time several modules
 * in one process, interleaved.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_BENCH_H
#define STRATA_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "layers.h"

#define BENCH_MAX_TOKENS 8   /* labels in one --token list */
#define BENCH_FIND_BATCH 64  /* handles per C_FindObjects call */
#define BENCH_MSG_LEN    512 /* an error message */

/* The command line. */
typedef struct {
    const char *module;                   /* path of the PKCS#11 module */
    const char *tokens[BENCH_MAX_TOKENS]; /* token labels (--token a,b,c) */
    size_t ntokens;                       /* how many labels */
    char *token_list;                     /* the split copy of --token (owned) */
    const char *pin;                      /* user PIN */
    const char *workload;                 /* workload name */
    const char *key_label;                /* key or object label; NULL: default */
    double seconds;                       /* time-bound run length */
    unsigned long iterations;             /* >0: run exactly this many ops per thread */
    unsigned long threads;                /* worker threads */
    unsigned long objects;                /* find: expected objects per find (0: unchecked) */
    unsigned long warmup;                 /* untimed ops per thread before timing */
    unsigned long populate;               /* >0: create this many data objects and exit */
    unsigned long first;                  /* populate: number of the first object */
    bool csv;                             /* also print a CSV line */
    bool list;                            /* list slots and tokens and exit */
    bool memory;                          /* measure memory at idle and per object */
    bool memory_read;                     /* --memory: also read each found object's class */
} bench_opts;

/* An error: the call that failed and its code, or a message. */
typedef struct {
    const char *call; /* "C_Sign", or NULL when msg says it all */
    CK_RV rv;         /* the call's return code */
    char msg[BENCH_MSG_LEN];
} bench_error;

/* The loaded module and what every worker shares (read-only once timing starts). */
typedef struct {
    void *dl;                                    /* dlopen handle */
    CK_FUNCTION_LIST_PTR f;                      /* the module's function list */
    bool initialized;                            /* C_Initialize succeeded */
    const char *labels[BENCH_MAX_TOKENS];        /* the --token labels */
    CK_SLOT_ID slots[BENCH_MAX_TOKENS];          /* slot of each --token label */
    CK_SESSION_HANDLE control[BENCH_MAX_TOKENS]; /* one session per token, kept open */
    size_t ntokens;                              /* how many tokens */
    bool logged_in;                              /* control sessions are logged in */
    CK_OBJECT_HANDLE object;                     /* key (sign) or object (getattr) */
    CK_MECHANISM_TYPE mechanism;                 /* sign mechanism */
    const unsigned char *data;                   /* sign input */
    CK_ULONG data_len;                           /* its length */
    const char *pin;                             /* login workload */
    unsigned long expect_objects;                /* find: 0 or the count each find must see */
} bench_module;

struct bench_worker;

/* One operation of a workload. Returns CKR_OK or the failing call's code
 * (naming the call in w->error); *items gets the objects it saw (find). */
typedef CK_RV (*bench_op_fn)(struct bench_worker *w, unsigned long *items);

/* A workload: its operation and what it needs. */
typedef struct {
    const char *name;        /* --workload */
    bench_op_fn op;          /* one timed operation */
    const char *default_key; /* default --key-label, or NULL: none used */
    CK_KEY_TYPE key_type;    /* sign: the key's type */
    CK_MECHANISM_TYPE mech;  /* sign: the mechanism */
    bool multi_token;        /* accepts several --token labels */
    bool login_op;           /* the op itself logs in (one thread, no pre-login) */
    const char *unit;        /* what ops/s counts: "ops" or "objects" */
} bench_workload;

/* One thread's state. */
typedef struct bench_worker {
    const bench_module *m;                        /* shared module state */
    const bench_workload *wl;                     /* the workload */
    CK_SESSION_HANDLE sessions[BENCH_MAX_TOKENS]; /* this thread's sessions */
    uint64_t *lat_ns;                             /* per-op latencies (preallocated) */
    size_t cap;                                   /* capacity of lat_ns */
    size_t n;                                     /* timed ops done */
    unsigned long items;                          /* objects seen by timed ops */
    double elapsed;                               /* seconds of the timed loop */
    double cpu;                                   /* CPU seconds of the timed loop */
    bench_error error;                            /* the first failure */
    bool failed;                                  /* error is set */
    pthread_t tid;                                /* the thread */
} bench_worker;

/* A memory sample, in bytes. */
typedef struct {
    long long rss;  /* resident set (/proc/self/statm) */
    long long heap; /* malloc'd and not freed (mallinfo2 uordblks + hblkhd) */
} bench_mem_sample;

/* Return-code names come from the layers library (layers/rv.c). */
static inline const char *bench_rv_name(CK_RV rv)
{
    return layers_rv_name(rv);
}

/* workload.c */
const bench_workload *bench_workload_find(const char *name);
void bench_workload_names(char *buf, size_t len);
/* CLOCK_MONOTONIC in seconds, and in nanoseconds. */
double bench_now_s(void);
uint64_t bench_now_ns(void);
/* The calling thread's CPU time (user + system) in seconds, or a negative
 * value when it cannot be read. */
double bench_thread_cpu_s(void);

/* memory.c */
bool bench_memory_sample(bench_mem_sample *s);
bool bench_memory_run(const bench_opts *o, bench_module *m, const bench_mem_sample *start,
                      bench_error *err);

/* module.c */
bool bench_module_open(bench_module *m, const char *path, bench_error *err);
CK_RV bench_module_close(bench_module *m);
bool bench_module_list(bench_module *m, bench_error *err);
bool bench_module_find_tokens(bench_module *m, const bench_opts *o, bench_error *err);
bool bench_module_login(bench_module *m, const char *pin, bench_error *err);
bool bench_module_find_object(bench_module *m, const bench_workload *wl, const char *label,
                              bench_error *err);
bool bench_module_prepare(bench_module *m, const bench_opts *o, const bench_workload *wl,
                          bench_error *err);
bool bench_module_populate(bench_module *m, unsigned long first, unsigned long count,
                           bench_error *err);
bool bench_worker_open(bench_worker *w, bench_error *err);
void bench_worker_close(bench_worker *w);

/* module.c: fills err for a failed call. */
void bench_fail_rv(bench_error *err, const char *call, CK_RV rv);
/* Fills err with a message (printf-style). */
void bench_fail(bench_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* STRATA_BENCH_H */
