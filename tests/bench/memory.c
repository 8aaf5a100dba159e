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
 * One find of every data object on the control sessions (logged in), with
 * the find workload's operation and its --objects check. Returns true with
 * *items and *us (its duration) set; false with err set when a call fails
 * or the count differs.
 */
static bool find_once(bench_module *m, unsigned long *items, double *us, bench_error *err)
{
    bench_worker w;
    double t0 = bench_now_s();

    memset(&w, 0, sizeof(w));
    w.m = m;
    w.wl = bench_workload_find("find");
    memcpy(w.sessions, m->control, sizeof(w.sessions));
    if (w.wl->op(&w, items) != CKR_OK) {
        *err = w.error;
        return false;
    }
    *us = (bench_now_s() - t0) * 1e6;
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
    if (!bench_memory_sample(&idle)) {
        bench_fail(err, "cannot read /proc/self/statm");
        return false;
    }
    if (!find_once(m, &items, &us, err)) {
        return false;
    }
    bench_memory_sample(&find);
    if (!find_once(m, &items2, &us2, err)) {
        return false;
    }
    bench_memory_sample(&find2);
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
