/*
 * bench.c - the benchmark program: command line, worker threads, timing
 * and the report. Not a test: it is never registered with test().
 *
 *   bench --module PATH --token LABEL[,LABEL...] --pin PIN --workload W
 *         [--seconds S | --iterations N] [--threads T] [--key-label L]
 *         [--objects N] [--warmup N] [--csv]
 *   bench --populate N [--first K] --module PATH --token LABEL --pin PIN
 *   bench --memory --module PATH --token LABEL[,LABEL...] --pin PIN
 *         [--objects N] [--csv]
 *   bench --list --module PATH
 *
 * Every worker opens its own sessions before timing, runs --warmup untimed
 * operations, waits for the others at a start gate, then times each operation
 * into a preallocated array; percentiles come from the sorted union.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define EXIT_USAGE      2
#define EXIT_HELP       (-1) /* parse_args: --help was printed */
#define MAX_THREADS     256
#define RATE_GUESS      4000000.0  /* ops/s, to size the latency array of a timed run */
#define MAX_LATENCIES   (1u << 24) /* per thread, for a timed run */
#define DEFAULT_SECONDS 2.0

/* The start gate: workers check in after warm-up and wait for go. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long ready; /* workers waiting at the gate */
    bool go;             /* released */
    bool abort;          /* released without a run (a thread failed to start) */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};

static void usage(FILE *out)
{
    char names[256];

    bench_workload_names(names, sizeof(names));
    fprintf(out,
            "usage: bench --module PATH --token LABEL[,LABEL...] --pin PIN --workload W\n"
            "             [--seconds S | --iterations N] [--threads T] [--key-label L]\n"
            "             [--objects N] [--warmup N] [--csv]\n"
            "       bench --populate N [--first K] --module PATH --token LABEL --pin PIN\n"
            "       bench --memory --module PATH --token LABEL[,LABEL...] --pin PIN\n"
            "             [--objects N] [--read] [--csv]\n"
            "       bench --list --module PATH\n"
            "workloads: %s\n"
            "  --iterations N: N timed ops per thread; --seconds S (default 2): time-bound\n"
            "  --warmup N: untimed ops per thread first (default 50; find 1, login 2)\n"
            "  several --token labels: find only (one find = a find on each token in turn)\n"
            "  --objects N: find fails unless every find sees exactly N data objects\n"
            "  --memory: resident set and heap before loading, at idle (logged in, one\n"
            "            session per token) and after two finds of every data object\n"
            "  --read: (--memory) each find also reads CKA_CLASS of every object it\n"
            "          finds, as a client that looks at its results does\n",
            names);
}

/* Parses an unsigned decimal number; returns false when s is not one. */
static bool parse_ulong(const char *s, unsigned long *out)
{
    char *end;

    errno = 0;
    if (s[0] == '-' || s[0] == '\0') {
        return false;
    }
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Splits --token's comma-separated labels into o->tokens. Returns false
 * when there are too many or one is empty. */
static bool split_tokens(bench_opts *o, const char *arg)
{
    char *save = NULL;

    free(o->token_list);
    o->token_list = strdup(arg);
    o->ntokens = 0;
    if (o->token_list == NULL) {
        return false;
    }
    for (char *t = strtok_r(o->token_list, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (o->ntokens == BENCH_MAX_TOKENS) {
            return false;
        }
        o->tokens[o->ntokens++] = t;
    }
    return o->ntokens > 0;
}

static const struct option long_opts[] = {
    {"module", required_argument, NULL, 'm'},
    {"token", required_argument, NULL, 't'},
    {"pin", required_argument, NULL, 'p'},
    {"workload", required_argument, NULL, 'w'},
    {"seconds", required_argument, NULL, 's'},
    {"iterations", required_argument, NULL, 'n'},
    {"threads", required_argument, NULL, 'j'},
    {"key-label", required_argument, NULL, 'k'},
    {"objects", required_argument, NULL, 'o'},
    {"warmup", required_argument, NULL, 'W'},
    {"populate", required_argument, NULL, 'P'},
    {"first", required_argument, NULL, 'F'},
    {"csv", no_argument, NULL, 'c'},
    {"list", no_argument, NULL, 'l'},
    {"memory", no_argument, NULL, 'M'},
    {"read", no_argument, NULL, 'R'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Applies one option to o. Returns false with a message on stderr when its
 * value is bad. */
static bool apply_opt(bench_opts *o, int c, const char *arg, bool *warmup_set, bool *seconds_set)
{
    char *end;

    switch (c) {
    case 'm':
        o->module = arg;
        return true;
    case 't':
        if (!split_tokens(o, arg)) {
            fprintf(stderr, "bench: bad --token \"%s\" (1 to %d comma-separated labels)\n", arg,
                    BENCH_MAX_TOKENS);
            return false;
        }
        return true;
    case 'p':
        o->pin = arg;
        return true;
    case 'w':
        o->workload = arg;
        return true;
    case 'k':
        o->key_label = arg;
        return true;
    case 's':
        *seconds_set = true;
        o->seconds = strtod(arg, &end);
        if (*end != '\0' || !(o->seconds > 0.0) || o->seconds > 3600.0) {
            fprintf(stderr, "bench: bad --seconds \"%s\"\n", arg);
            return false;
        }
        return true;
    case 'c':
        o->csv = true;
        return true;
    case 'l':
        o->list = true;
        return true;
    case 'M':
        o->memory = true;
        return true;
    case 'R':
        o->memory_read = true;
        return true;
    case 'W':
        *warmup_set = true;
        break;
    default:
        break;
    }
    unsigned long v = 0;
    bool ok = parse_ulong(arg, &v);
    switch (c) {
    case 'n':
        o->iterations = v;
        ok = ok && v > 0;
        break;
    case 'j':
        o->threads = v;
        ok = ok && v > 0 && v <= MAX_THREADS;
        break;
    case 'o':
        o->objects = v;
        break;
    case 'W':
        o->warmup = v;
        break;
    case 'P':
        o->populate = v;
        ok = ok && v > 0;
        break;
    case 'F':
        o->first = v;
        ok = ok && v > 0;
        break;
    default:
        ok = false;
        break;
    }
    if (!ok) {
        fprintf(stderr, "bench: bad value \"%s\" for an option (threads: 1 to %d)\n", arg,
                MAX_THREADS);
    }
    return ok;
}

/* Checks that the options make one coherent run. Returns false with a
 * message on stderr when they do not. */
static bool check_opts(const bench_opts *o, const bench_workload *wl)
{
    if (o->module == NULL) {
        fprintf(stderr, "bench: --module is required\n");
        return false;
    }
    if (o->list) {
        return true;
    }
    if (o->ntokens == 0 || o->pin == NULL) {
        fprintf(stderr, "bench: --token and --pin are required\n");
        return false;
    }
    if (o->memory_read && !o->memory) {
        fprintf(stderr, "bench: --read goes with --memory\n");
        return false;
    }
    if (o->populate > 0 && o->memory) {
        fprintf(stderr, "bench: give --populate or --memory, not both\n");
        return false;
    }
    if (o->populate > 0) {
        if (o->ntokens != 1) {
            fprintf(stderr, "bench: --populate takes one --token\n");
            return false;
        }
        return true;
    }
    if (o->memory) {
        return true;
    }
    if (o->workload == NULL || wl == NULL) {
        fprintf(stderr, "bench: unknown or missing --workload \"%s\"\n",
                o->workload != NULL ? o->workload : "");
        return false;
    }
    if (o->ntokens > 1 && !wl->multi_token) {
        fprintf(stderr, "bench: workload %s takes one --token\n", wl->name);
        return false;
    }
    if (wl->login_op && o->threads > 1) {
        fprintf(stderr, "bench: workload login runs on one thread (the login state is "
                        "shared by every session of the token)\n");
        return false;
    }
    return true;
}

/* Parses argv into o. Returns 0; EXIT_HELP after printing the usage for
 * --help; or EXIT_USAGE after printing why the arguments are wrong. */
static int parse_args(int argc, char **argv, bench_opts *o, const bench_workload **wl)
{
    bool warmup_set = false, seconds_set = false;
    int c;

    memset(o, 0, sizeof(*o));
    o->seconds = DEFAULT_SECONDS;
    o->threads = 1;
    o->first = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_HELP;
        }
        if (c == '?' || !apply_opt(o, c, optarg, &warmup_set, &seconds_set)) {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (seconds_set && o->iterations > 0) {
        fprintf(stderr, "bench: give --seconds or --iterations, not both\n");
        return EXIT_USAGE;
    }
    *wl = o->workload != NULL ? bench_workload_find(o->workload) : NULL;
    if (!check_opts(o, *wl)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!warmup_set && *wl != NULL) {
        o->warmup = (*wl)->multi_token ? 1 : (*wl)->login_op ? 2 : 50;
    }
    return 0;
}

/* The run parameters every worker reads. */
static const bench_opts *run_opts;

/* Checks a worker in at the gate and waits for release. Returns false when
 * the run was aborted. */
static bool gate_wait(void)
{
    bool run;

    pthread_mutex_lock(&gate.mu);
    gate.ready++;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.go) {
        pthread_cond_wait(&gate.cv, &gate.mu);
    }
    run = !gate.abort;
    pthread_mutex_unlock(&gate.mu);
    return run;
}

/* Waits until started workers are at the gate, then releases them all at
 * once (abort: to exit without running). */
static void gate_release(unsigned long started, bool abort)
{
    pthread_mutex_lock(&gate.mu);
    while (gate.ready < started) {
        pthread_cond_wait(&gate.cv, &gate.mu);
    }
    gate.go = true;
    gate.abort = abort;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/*
 * A worker thread: warm-up, the start gate, then the timed loop until
 * --iterations ops or --seconds have passed (or its latency array is
 * full). A failing warm-up still checks in at the gate, so the others are
 * never kept waiting. Returns NULL.
 */
static void *worker_main(void *arg)
{
    bench_worker *w = arg;
    unsigned long items;
    double t0, deadline, cpu0;

    for (unsigned long i = 0; i < run_opts->warmup && !w->failed; i++) {
        w->failed = w->wl->op(w, &items) != CKR_OK;
    }
    if (!gate_wait() || w->failed) {
        return NULL;
    }
    cpu0 = bench_thread_cpu_s();
    t0 = bench_now_s();
    deadline = t0 + run_opts->seconds;
    while (w->n < w->cap) {
        uint64_t a = bench_now_ns();
        if (w->wl->op(w, &items) != CKR_OK) {
            w->failed = true;
            break;
        }
        uint64_t b = bench_now_ns();
        w->lat_ns[w->n++] = b - a;
        w->items += items;
        if (run_opts->iterations == 0 && (double)b / 1e9 >= deadline) {
            break;
        }
    }
    w->elapsed = bench_now_s() - t0;
    w->cpu = cpu0 < 0.0 ? -1.0 : bench_thread_cpu_s() - cpu0;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p (0..1] of sorted v[n], in microseconds. */
static double percentile_us(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);

    if (n == 0) {
        return 0.0;
    }
    return (double)v[rank > 0 ? rank - 1 : 0] / 1e3;
}

/* Prints the error of a failed run on stderr. */
static void report_error(const bench_opts *o, const bench_error *err)
{
    if (err->call != NULL) {
        fprintf(stderr, "bench: %s failed: %s", err->call, bench_rv_name(err->rv));
    } else {
        fprintf(stderr, "bench: %s", err->msg);
    }
    fprintf(stderr, " (module %s, token", o->module);
    for (size_t i = 0; i < o->ntokens; i++) {
        fprintf(stderr, "%c%s", i > 0 ? ',' : ' ', o->tokens[i]);
    }
    fprintf(stderr, ", workload %s)\n", o->workload != NULL ? o->workload : "-");
}

/*
 * Merges the workers' latencies, sorts them and prints the result line
 * (and the CSV line with --csv). Returns 0, or 1 when memory runs out.
 */
static int report(const bench_opts *o, const bench_workload *wl, bench_worker *ws)
{
    size_t total = 0, k = 0;
    unsigned long items = 0;
    double elapsed = 0.0, cpu = 0.0;
    uint64_t *all;

    for (unsigned long t = 0; t < o->threads; t++) {
        total += ws[t].n;
        items += ws[t].items;
        elapsed = ws[t].elapsed > elapsed ? ws[t].elapsed : elapsed;
        cpu = cpu < 0.0 || ws[t].cpu < 0.0 ? -1.0 : cpu + ws[t].cpu;
    }
    all = malloc((total > 0 ? total : 1) * sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    for (unsigned long t = 0; t < o->threads; t++) {
        memcpy(all + k, ws[t].lat_ns, ws[t].n * sizeof(*all));
        k += ws[t].n;
    }
    qsort(all, total, sizeof(*all), cmp_u64);

    double ops_s = (double)total / elapsed;
    double items_s = (double)items / elapsed;
    double p50 = percentile_us(all, total, 0.50), p99 = percentile_us(all, total, 0.99);
    printf("%-16s threads=%lu ops=%zu seconds=%.3f ops/s=%.1f p50=%.1fus p99=%.1fus", wl->name,
           o->threads, total, elapsed, ops_s, p50, p99);
    if (wl->multi_token) {
        printf(" objects/find=%.0f us/find=%.1f ns/object=%.1f objects/s=%.0f",
               total > 0 ? (double)items / (double)total : 0.0,
               elapsed * 1e6 * (double)o->threads / (double)total,
               items > 0 ? elapsed * 1e9 * (double)o->threads / (double)items : 0.0, items_s);
    }
    if (cpu >= 0.0 && total > 0) {
        /* the workers' own CPU time (getrusage RUSAGE_THREAD: the module
         * runs in the calling thread), which a loaded machine changes far
         * less than the clock */
        printf(" cpu/op=%.1fus", cpu * 1e6 / (double)total);
    }
    printf("\n");
    if (o->csv) {
        printf("csv,%s,%lu,%zu,%lu,%.6f,%.3f,%.3f,%.3f,%.3f\n", wl->name, o->threads, total, items,
               elapsed, ops_s, items_s, p50, p99);
    }
    free(all);
    return 0;
}

/*
 * Sizes, opens and starts the workers, waits for them and reports.
 * Returns 0 on success, 1 when a worker could not start or failed.
 */
static int run_workers(const bench_opts *o, const bench_workload *wl, bench_module *m)
{
    size_t cap = o->iterations > 0 ? o->iterations : (size_t)(o->seconds * RATE_GUESS) + 1024;
    bench_worker *ws = calloc(o->threads, sizeof(*ws));
    unsigned long started = 0;
    bench_error err = {0};
    int status = 1;

    cap = o->iterations == 0 && cap > MAX_LATENCIES ? MAX_LATENCIES : cap;
    if (ws == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    run_opts = o;
    for (unsigned long t = 0; t < o->threads; t++) {
        ws[t].m = m;
        ws[t].wl = wl;
        ws[t].cap = cap;
        ws[t].lat_ns = malloc(cap * sizeof(*ws[t].lat_ns));
        if (ws[t].lat_ns == NULL) {
            bench_fail(&err, "out of memory for %zu latencies", cap);
            goto out;
        }
        if (!bench_worker_open(&ws[t], &err)) {
            goto out;
        }
    }
    for (; started < o->threads; started++) {
        if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]) != 0) {
            bench_fail(&err, "cannot start thread %lu", started);
            break;
        }
    }
    gate_release(started, started < o->threads);
    for (unsigned long t = 0; t < started; t++) {
        pthread_join(ws[t].tid, NULL);
    }
    if (started < o->threads) {
        goto out;
    }
    for (unsigned long t = 0; t < o->threads; t++) {
        if (ws[t].failed) {
            err = ws[t].error;
            goto out;
        }
    }
    status = report(o, wl, ws);
out:
    if (status != 0) {
        report_error(o, &err);
    }
    for (unsigned long t = 0; t < o->threads; t++) {
        bench_worker_close(&ws[t]);
        free(ws[t].lat_ns);
    }
    free(ws);
    return status;
}

/* --populate: creates the data objects and says how long it took.
 * Returns 0 on success, 1 on failure (after printing why). */
static int populate(const bench_opts *o, bench_module *m)
{
    bench_error err = {0};
    double t0 = bench_now_s();

    if (!bench_module_login(m, o->pin, &err) ||
        !bench_module_populate(m, o->first, o->populate, &err)) {
        report_error(o, &err);
        return 1;
    }
    double dt = bench_now_s() - t0;
    printf("populated %lu data objects obj-%06lu..obj-%06lu in token %s: %.2f s (%.0f/s)\n",
           o->populate, o->first, o->first + o->populate - 1, o->tokens[0], dt,
           (double)o->populate / dt);
    return 0;
}

int main(int argc, char **argv)
{
    const bench_workload *wl = NULL;
    bench_mem_sample start = {0, 0};
    bench_module m;
    bench_error err = {0};
    bench_opts o;
    int status;

    status = parse_args(argc, argv, &o, &wl);
    if (status != 0) {
        free(o.token_list);
        return status == EXIT_HELP ? 0 : status;
    }
    status = 1;
    if (o.memory && !bench_memory_sample(&start)) {
        fprintf(stderr, "bench: cannot read /proc/self/statm\n");
        free(o.token_list);
        return 1;
    }
    if (!bench_module_open(&m, o.module, &err)) {
        report_error(&o, &err);
        goto out;
    }
    if (o.list) {
        status = bench_module_list(&m, &err) ? 0 : 1;
        if (status != 0) {
            report_error(&o, &err);
        }
        goto out;
    }
    if (!bench_module_find_tokens(&m, &o, &err)) {
        report_error(&o, &err);
        goto out;
    }
    if (o.populate > 0) {
        status = populate(&o, &m);
        goto out;
    }
    if (o.memory) {
        status = bench_memory_run(&o, &m, &start, &err) ? 0 : 1;
        if (status != 0) {
            report_error(&o, &err);
        }
        goto out;
    }
    if (!bench_module_prepare(&m, &o, wl, &err)) {
        report_error(&o, &err);
        goto out;
    }
    status = run_workers(&o, wl, &m);
out:
    bench_module_close(&m);
    free(o.token_list);
    return status;
}
