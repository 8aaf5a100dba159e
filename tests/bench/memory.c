/*
 * memory.c - bench --memory: what a module keeps in memory at idle and
 * per object it has indexed.
 *
 * A sample is the process's resident set (/proc/self/statm) and its heap
 * in use (mallinfo2: bytes handed out by malloc and not freed, mmapped
 * blocks included). Samples are taken at four points:
 *
 *   start  before the module is loaded (the bench program alone);
 *   idle   after dlopen, C_Initialize, one session per --token and
 *          C_Login on it: nothing searched yet;
 *   find   after one find of every data object (--workload find's
 *          operation, on the same sessions) and C_FindObjectsFinal: what
 *          the module keeps for the objects it met (Strata: its handle
 *          index, primed from the catalog; SoftHSM2: its session handles);
 *   find2  after a second identical find: should equal find (nothing
 *          grows per search).
 *
 * With --read each find also reads the CKA_CLASS of every object it finds,
 * as a client looking at its results does. The first read of an object
 * costs SoftHSM2 itself about 128 bytes of heap (measured: it keeps
 * something per object read, whichever attribute), and Strata's learning
 * reads every object: "--read" in both columns puts that backend cost on
 * both sides, so that the difference is Strata's own memory.
 *
 * Each find is also timed: the first one in a process is where Strata
 * learns every object (reads its identity attributes from the backend,
 * maps it to its catalog handle); the second one is the steady state the
 * find workload times after its warm-up.
 *
 * Per object = (find - idle) / objects found. SoftHSM2 reads every object
 * file into memory at C_Initialize, so its store is in idle, in both the
 * direct and Strata's columns alike (Strata loads the same library in the
 * same process); Strata's own cost per object is its column's per-object
 * figure minus SoftHSM2's direct one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/*
 * Reads the resident set and the heap in use into s. Returns true; false
 * when /proc/self/statm cannot be read.
 */
bool bench_memory_sample(bench_mem_sample *s)
{
    unsigned long size = 0, resident = 0;
    struct mallinfo2 mi = mallinfo2();
    FILE *f = fopen("/proc/self/statm", "r");
    bool ok;

    s->rss = 0;
    s->heap = 0;
    if (f == NULL) {
        return false;
    }
    ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    s->rss = (long long)resident * (long long)sysconf(_SC_PAGESIZE);
    s->heap = (long long)(mi.uordblks + mi.hblkhd);
    return ok;
}

/* Per-object growth from a to b in bytes, over n objects (0 when none). */
static double per_object(long long a, long long b, unsigned long n)
{
    return n > 0 ? (double)(b - a) / (double)n : 0.0;
}

/*
 * Finds every data object on session s and reads the CKA_CLASS of each
 * (--read). Adds the count to *items. Returns true, or false with err set.
 */
static bool find_read(bench_module *m, CK_SESSION_HANDLE s, unsigned long *items, bench_error *err)
{
    CK_OBJECT_CLASS cls = CKO_DATA, got_cls;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE batch[BENCH_FIND_BATCH];
    CK_ULONG got;
    CK_RV rv = m->f->C_FindObjectsInit(s, t, 1);

    if (rv != CKR_OK) {
        bench_fail_rv(err, "C_FindObjectsInit", rv);
        return false;
    }
    do {
        rv = m->f->C_FindObjects(s, batch, BENCH_FIND_BATCH, &got);
        if (rv != CKR_OK) {
            bench_fail_rv(err, "C_FindObjects", rv);
            break;
        }
        for (CK_ULONG i = 0; rv == CKR_OK && i < got; i++) {
            CK_ATTRIBUTE a = {CKA_CLASS, &got_cls, sizeof(got_cls)};
            rv = m->f->C_GetAttributeValue(s, batch[i], &a, 1);
            if (rv != CKR_OK) {
                bench_fail_rv(err, "C_GetAttributeValue", rv);
            }
        }
        *items += got;
    } while (rv == CKR_OK && got > 0);
    m->f->C_FindObjectsFinal(s);
    return rv == CKR_OK;
}

/*
 * One find of every data object on the control sessions (logged in), with
 * the find workload's operation (or, with read, find_read on each) and its
 * --objects check. Returns true with *items and *us (its duration) set;
 * false with err set when a call fails or the count differs.
 */
static bool find_once(bench_module *m, bool read, unsigned long *items, double *us,
                      bench_error *err)
{
    bench_worker w;
    double t0 = bench_now_s();

    memset(&w, 0, sizeof(w));
    w.m = m;
    w.wl = bench_workload_find("find");
    memcpy(w.sessions, m->control, sizeof(w.sessions));
    if (!read && w.wl->op(&w, items) != CKR_OK) {
        *err = w.error;
        return false;
    }
    if (read) {
        *items = 0;
        for (size_t i = 0; i < m->ntokens; i++) {
            if (!find_read(m, m->control[i], items, err)) {
                return false;
            }
        }
        if (m->expect_objects != 0 && *items != m->expect_objects) {
            bench_fail(err, "find saw %lu data objects, expected %lu (--objects)", *items,
                       m->expect_objects);
            return false;
        }
    }
    *us = (bench_now_s() - t0) * 1e6;
    return true;
}

/* bench_memory_sample with err set when it fails. */
static bool sample(bench_mem_sample *s, bench_error *err)
{
    if (!bench_memory_sample(s)) {
        bench_fail(err, "cannot read /proc/self/statm");
        return false;
    }
    return true;
}

/*
 * bench --memory, once the module is open and its tokens found: logs in,
 * samples idle, runs two finds sampling after each, and prints one line
 * (and with --csv a line "csv-memory,objects,start_rss,start_heap,
 * idle_rss,idle_heap,find_rss,find_heap,find2_rss,find2_heap,find_us,
 * find2_us": bytes, then the two finds' durations in microseconds).
 * Returns true; false with err set when login or a find fails or a sample
 * cannot be read.
 */
bool bench_memory_run(const bench_opts *o, bench_module *m, const bench_mem_sample *start,
                      bench_error *err)
{
    bench_mem_sample idle, find, find2;
    unsigned long items = 0, items2 = 0;
    double us = 0.0, us2 = 0.0;

    m->expect_objects = o->objects;
    if (!bench_module_login(m, o->pin, err)) {
        return false;
    }
    if (!sample(&idle, err)) {
        return false;
    }
    if (!find_once(m, o->memory_read, &items, &us, err)) {
        return false;
    }
    if (!sample(&find, err)) {
        return false;
    }
    if (!find_once(m, o->memory_read, &items2, &us2, err)) {
        return false;
    }
    if (!sample(&find2, err)) {
        return false;
    }
    printf("memory           objects=%lu start: rss=%lldKiB heap=%lldKiB idle: rss=%lldKiB "
           "heap=%lldKiB find: rss=%lldKiB heap=%lldKiB find2: rss=%lldKiB heap=%lldKiB "
           "per-object: rss=%.1fB heap=%.1fB first-find=%.0fus second-find=%.0fus\n",
           items, start->rss / 1024, start->heap / 1024, idle.rss / 1024, idle.heap / 1024,
           find.rss / 1024, find.heap / 1024, find2.rss / 1024, find2.heap / 1024,
           per_object(idle.rss, find.rss, items), per_object(idle.heap, find.heap, items), us, us2);
    if (o->csv) {
        printf("csv-memory,%lu,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.0f,%.0f\n", items,
               start->rss, start->heap, idle.rss, idle.heap, find.rss, find.heap, find2.rss,
               find2.heap, us, us2);
    }
    return true;
}
