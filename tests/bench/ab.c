/*
 * ab.c - bench-ab: two to six PKCS#11 modules timed in one process,
 * paired and interleaved, so that a small difference between them (Strata
 * against p11-kit-proxy is about 1%) stands out of a noisy machine's
 * drift. Not a test: it is never registered with test().
 *
 *   bench-ab --target NAME=MODULE,TOKEN,PIN --target ... --workload W
 *            [--rounds R] [--ops N] [--warmup R] [--key-label L] [--csv]
 *
 * Every target's module is loaded, initialised and logged in, in the order
 * given, through module.c as the bench program does. Each round then runs
 * --ops timed operations (workload.c) on every target in turn, round r
 * starting at target r mod T, and keeps each target's median latency of
 * the round. A load change hits every target of a round alike, so the
 * per-round ratio target/reference cancels it: a pair's figure is the
 * median of those ratios, with a 95% confidence interval by bootstrap over
 * the rounds. The same is done with the CPU time each target's operations
 * took in the round (getrusage RUSAGE_THREAD: the modules run in this
 * thread), which a loaded machine disturbs far less than the clock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define EXIT_USAGE     2
#define EXIT_HELP      (-1) /* parse_args: --help was printed */
#define MIN_TARGETS    2
#define MAX_TARGETS    6
#define NAME_MAX_LEN   32
#define DEFAULT_ROUNDS 41
#define DEFAULT_OPS    200
#define DEFAULT_WARMUP 3 /* untimed rounds */
#define MIN_ROUNDS     3 /* fewer gives no interval worth the name */
#define MAX_ROUNDS     100000
#define MAX_OPS        1000000 /* per target per round */
#define RESAMPLES      2000    /* bootstrap resamples of the rounds */
#define CI_LOW         0.025   /* the 95% percentile interval */
#define CI_HIGH        0.975
#define BOOTSTRAP_SEED UINT64_C(0x9e3779b97f4a7c15) /* fixed: reruns give the same interval */
#define PROXY_NAME     "proxy" /* the second reference, when a target has this name */

/* One --target: a module and token, and what was measured there. */
typedef struct {
    char *spec;           /* owned copy of NAME=MODULE,TOKEN,PIN, split in place */
    const char *name;     /* NAME, for the report */
    bench_opts opts;      /* module, token, PIN, workload, key label */
    bench_module m;       /* the loaded module */
    bench_worker w;       /* the session the timed operations run on */
    bool loaded;          /* m must be closed */
    double *round_ns;     /* per-op median latency of each timed round */
    double median_us;     /* median over rounds of round_ns, in microseconds */
    double *round_cpu_ns; /* per-op mean CPU time of each timed round */
    double cpu_us;        /* median over rounds of round_cpu_ns, in microseconds */
} ab_target;

/* The command line and the run. */
typedef struct {
    ab_target targets[MAX_TARGETS]; /* in --target order */
    size_t ntargets;                /* how many */
    const char *workload;           /* --workload */
    const bench_workload *wl;       /* its operation */
    const char *key_label;          /* --key-label, or NULL: the workload's default */
    unsigned long rounds;           /* timed rounds */
    unsigned long ops;              /* timed operations per target per round */
    unsigned long warmup;           /* untimed rounds */
    bool csv;                       /* also print CSV lines */
} ab_run;

/* A paired comparison: median of per-round ratios and its 95% interval. */
typedef struct {
    double ratio; /* median over rounds of a/b */
    double lo;    /* 2.5th percentile of the bootstrap medians */
    double hi;    /* 97.5th percentile */
} ab_ratio;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench-ab --target NAME=MODULE,TOKEN,PIN --target ... (%d to %d targets)\n"
            "                --workload W [--rounds R] [--ops N] [--warmup R] [--key-label L]\n"
            "                [--csv]\n"
            "workloads: sign-ec sign-rsa sign-rsa-sha256 getattr session\n"
            "  --target: a name for the report (no ',', '/', '=' or blanks), the module's\n"
            "            path, the token's label and the user PIN (the rest of the value)\n"
            "  --rounds R: timed rounds (default %d); --ops N: timed operations per target\n"
            "            per round (default %d); --warmup R: untimed rounds first (default %d)\n"
            "  Modules are loaded in --target order: give a module the others load too\n"
            "  (SoftHSM2 under p11-kit-proxy or Strata) first. Each module is loaded once:\n"
            "  two targets cannot share one (one C_Initialize and one login per token).\n"
            "  Reports each target's median per-op latency and, against the first target\n"
            "  and against a target named \"" PROXY_NAME "\", the median per-round latency\n"
            "  ratio with a 95%% bootstrap interval (below 1: faster than the reference).\n",
            MIN_TARGETS, MAX_TARGETS, DEFAULT_ROUNDS, DEFAULT_OPS, DEFAULT_WARMUP);
}

/* Parses an unsigned decimal number in [min, max]; returns false when s is
 * not one. */
static bool parse_count(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    if (s[0] == '-' || s[0] == '\0') {
        return false;
    }
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

/*
 * Splits NAME=MODULE,TOKEN,PIN into t (the PIN is the rest, commas and
 * all). Returns false with a message on stderr when a part is missing or
 * the name is unfit for the report.
 */
static bool parse_target(ab_target *t, const char *arg)
{
    char *eq, *comma1, *comma2;

    t->spec = strdup(arg);
    if (t->spec == NULL) {
        fprintf(stderr, "bench-ab: out of memory\n");
        return false;
    }
    eq = strchr(t->spec, '=');
    comma1 = eq != NULL ? strchr(eq + 1, ',') : NULL;
    comma2 = comma1 != NULL ? strchr(comma1 + 1, ',') : NULL;
    if (comma2 == NULL || eq == t->spec || comma1 == eq + 1 || comma2 == comma1 + 1 ||
        comma2[1] == '\0') {
        fprintf(stderr, "bench-ab: bad --target \"%s\" (NAME=MODULE,TOKEN,PIN)\n", arg);
        return false;
    }
    *eq = *comma1 = *comma2 = '\0';
    if (strlen(t->spec) > NAME_MAX_LEN || strpbrk(t->spec, ",/ \t") != NULL) {
        fprintf(stderr,
                "bench-ab: bad target name \"%s\" (up to %d characters, no ',', '/' "
                "or blanks)\n",
                t->spec, NAME_MAX_LEN);
        return false;
    }
    t->name = t->spec;
    t->opts.module = eq + 1;
    t->opts.tokens[0] = comma1 + 1;
    t->opts.ntokens = 1;
    t->opts.pin = comma2 + 1;
    return true;
}

/*
 * Checks that the targets can share one process: distinct names, and no
 * module loaded twice (the same file by another path included). Returns
 * false with a message on stderr when they cannot.
 */
static bool check_targets(const ab_run *run)
{
    char a[PATH_MAX], b[PATH_MAX];

    for (size_t i = 0; i < run->ntargets; i++) {
        const ab_target *x = &run->targets[i];
        for (size_t j = 0; j < i; j++) {
            const ab_target *y = &run->targets[j];
            if (strcmp(x->name, y->name) == 0) {
                fprintf(stderr, "bench-ab: two targets are named \"%s\"\n", x->name);
                return false;
            }
            bool same = strcmp(x->opts.module, y->opts.module) == 0 ||
                        (realpath(x->opts.module, a) != NULL &&
                         realpath(y->opts.module, b) != NULL && strcmp(a, b) == 0);
            if (same) {
                fprintf(stderr,
                        "bench-ab: targets %s and %s load the same module %s: a process "
                        "initialises a module once and logs in to a token once, so time "
                        "them in separate runs\n",
                        y->name, x->name, x->opts.module);
                return false;
            }
        }
    }
    return true;
}

static const struct option long_opts[] = {
    {"target", required_argument, NULL, 't'},
    {"workload", required_argument, NULL, 'w'},
    {"rounds", required_argument, NULL, 'r'},
    {"ops", required_argument, NULL, 'n'},
    {"warmup", required_argument, NULL, 'W'},
    {"key-label", required_argument, NULL, 'k'},
    {"csv", no_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Applies one option to run. Returns false with a message on stderr when
 * its value is bad. */
static bool apply_opt(ab_run *run, int c, const char *arg)
{
    switch (c) {
    case 't':
        if (run->ntargets == MAX_TARGETS) {
            fprintf(stderr, "bench-ab: at most %d targets\n", MAX_TARGETS);
            return false;
        }
        return parse_target(&run->targets[run->ntargets++], arg);
    case 'w':
        run->workload = arg;
        return true;
    case 'k':
        run->key_label = arg;
        return true;
    case 'c':
        run->csv = true;
        return true;
    case 'r':
        if (!parse_count(arg, MIN_ROUNDS, MAX_ROUNDS, &run->rounds)) {
            fprintf(stderr, "bench-ab: bad --rounds \"%s\" (%d to %d)\n", arg, MIN_ROUNDS,
                    MAX_ROUNDS);
            return false;
        }
        return true;
    case 'n':
        if (!parse_count(arg, 1, MAX_OPS, &run->ops)) {
            fprintf(stderr, "bench-ab: bad --ops \"%s\" (1 to %d)\n", arg, MAX_OPS);
            return false;
        }
        return true;
    case 'W':
        if (!parse_count(arg, 0, MAX_ROUNDS, &run->warmup)) {
            fprintf(stderr, "bench-ab: bad --warmup \"%s\" (0 to %d)\n", arg, MAX_ROUNDS);
            return false;
        }
        return true;
    default:
        return false;
    }
}

/* Parses argv into run. Returns 0; EXIT_HELP after printing the usage for
 * --help; or EXIT_USAGE after printing why the arguments are wrong. */
static int parse_args(int argc, char **argv, ab_run *run)
{
    int c;

    run->rounds = DEFAULT_ROUNDS;
    run->ops = DEFAULT_OPS;
    run->warmup = DEFAULT_WARMUP;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_HELP;
        }
        if (c == '?' || !apply_opt(run, c, optarg)) {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench-ab: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (run->ntargets < MIN_TARGETS) {
        fprintf(stderr, "bench-ab: give %d to %d --target\n", MIN_TARGETS, MAX_TARGETS);
        usage(stderr);
        return EXIT_USAGE;
    }
    run->wl = run->workload != NULL ? bench_workload_find(run->workload) : NULL;
    if (run->wl == NULL || run->wl->multi_token || run->wl->login_op) {
        fprintf(stderr, "bench-ab: unknown, missing or unfit --workload \"%s\"\n",
                run->workload != NULL ? run->workload : "");
        usage(stderr);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < run->ntargets; i++) {
        run->targets[i].opts.workload = run->workload;
        run->targets[i].opts.key_label = run->key_label;
    }
    return check_targets(run) ? 0 : EXIT_USAGE;
}

/* Prints the error of target t on stderr, in one line. */
static void report_error(const ab_target *t, const bench_error *err)
{
    fprintf(stderr, "bench-ab: target %s (module %s, token %s): ", t->name, t->opts.module,
            t->opts.tokens[0]);
    if (err->call == NULL) {
        fprintf(stderr, "%s\n", err->msg);
        return;
    }
    fprintf(stderr, "%s failed: %s%s\n", err->call, bench_rv_name(err->rv),
            err->rv == CKR_CRYPTOKI_ALREADY_INITIALIZED
                ? " (another target's module initialised it first: give this one first)"
                : "");
}

/*
 * Loads t's module, finds its token, logs in on a control session, finds
 * the workload's key or object, opens the session the timed operations run
 * on and checks that one operation works. Returns true on success; false
 * with err set at the first failure. t->loaded says whether t needs
 * closing either way.
 */
static bool target_open(ab_target *t, const bench_workload *wl, bench_error *err)
{
    unsigned long items;

    t->loaded = true;
    if (!bench_module_open(&t->m, t->opts.module, err) ||
        !bench_module_find_tokens(&t->m, &t->opts, err) ||
        !bench_module_prepare(&t->m, &t->opts, wl, err)) {
        return false;
    }
    t->w.m = &t->m;
    t->w.wl = wl;
    if (!bench_worker_open(&t->w, err)) {
        return false;
    }
    if (wl->op(&t->w, &items) != CKR_OK) {
        *err = t->w.error;
        return false;
    }
    return true;
}

/*
 * Closes t's session and control sessions and finalises and unloads its
 * module. Returns true; false with err set when C_Finalize fails with
 * anything but CKR_CRYPTOKI_NOT_INITIALIZED (another target's module
 * finalised a module they share).
 */
static bool target_close(ab_target *t, bench_error *err)
{
    CK_RV rv;

    if (!t->loaded) {
        return true;
    }
    if (t->w.m != NULL) {
        bench_worker_close(&t->w);
    }
    rv = bench_module_close(&t->m);
    t->loaded = false;
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        bench_fail_rv(err, "C_Finalize", rv);
        return false;
    }
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of v[n] (n > 0), sorting v. */
static double median_sort(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* The median of v[n] (n > 0), through the scratch array tmp[n]. */
static double median_of(const double *v, size_t n, double *tmp)
{
    memcpy(tmp, v, n * sizeof(*v));
    return median_sort(tmp, n);
}

/*
 * One round: --ops timed operations on every target in turn, starting
 * with target r mod T; when timed, each target's per-op median latency
 * of the round goes into its round_ns[r] and its mean CPU time per
 * operation into round_cpu_ns[r]. lat holds --ops latencies.
 * Returns NULL, or the target whose operation failed (its w.error set).
 */
static ab_target *run_round(ab_run *run, unsigned long r, bool timed, double *lat)
{
    unsigned long items;

    for (size_t k = 0; k < run->ntargets; k++) {
        ab_target *t = &run->targets[(r + k) % run->ntargets];
        double cpu0 = bench_thread_cpu_s();
        for (unsigned long i = 0; i < run->ops; i++) {
            uint64_t a = bench_now_ns();
            if (run->wl->op(&t->w, &items) != CKR_OK) {
                return t;
            }
            lat[i] = (double)(bench_now_ns() - a);
        }
        if (timed) {
            t->round_ns[r] = median_sort(lat, run->ops);
            t->round_cpu_ns[r] = (bench_thread_cpu_s() - cpu0) * 1e9 / (double)run->ops;
        }
    }
    return NULL;
}

/* A xorshift64 step: the bootstrap's reproducible pseudo-random numbers. */
static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Index of the nearest-rank percentile p (0..1] of n sorted values. */
static size_t rank_index(double p, size_t n)
{
    size_t rank = (size_t)ceil(p * (double)n);

    return rank > 0 ? rank - 1 : 0;
}

/*
 * Pairs a[n] with b[n] (round medians of two targets): the median of the
 * per-round ratios a/b, and the 2.5th and 97.5th percentiles of the
 * medians of RESAMPLES resamples of the rounds (with replacement). Returns
 * false when memory runs out.
 */
static bool pair_ratio(const double *a, const double *b, size_t n, ab_ratio *out)
{
    double *ratios = malloc(n * sizeof(*ratios));
    double *sample = malloc(n * sizeof(*sample));
    double *medians = malloc(RESAMPLES * sizeof(*medians));
    uint64_t state = BOOTSTRAP_SEED;
    bool ok = false;

    if (ratios == NULL || sample == NULL || medians == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ratios[i] = a[i] / b[i];
    }
    out->ratio = median_of(ratios, n, sample);
    for (size_t s = 0; s < RESAMPLES; s++) {
        for (size_t i = 0; i < n; i++) {
            sample[i] = ratios[xorshift64(&state) % n];
        }
        medians[s] = median_sort(sample, n);
    }
    qsort(medians, RESAMPLES, sizeof(*medians), cmp_double);
    out->lo = medians[rank_index(CI_LOW, RESAMPLES)];
    out->hi = medians[rank_index(CI_HIGH, RESAMPLES)];
    ok = true;
out:
    free(ratios);
    free(sample);
    free(medians);
    return ok;
}

/* Prints the line of pair a/b (and its CSV line). Returns false when
 * memory runs out. */
static bool report_pair(const ab_run *run, const ab_target *a, const ab_target *b)
{
    ab_ratio r, c;

    if (!pair_ratio(a->round_ns, b->round_ns, run->rounds, &r) ||
        !pair_ratio(a->round_cpu_ns, b->round_cpu_ns, run->rounds, &c)) {
        return false;
    }
    printf("ab %s %s/%s ratio=%.3f ci95=[%.3f,%.3f] rounds=%lu %s=%.2fus %s=%.2fus\n",
           run->workload, a->name, b->name, r.ratio, r.lo, r.hi, run->rounds, a->name, a->median_us,
           b->name, b->median_us);
    printf("ab %s %s/%s cpu-ratio=%.3f ci95=[%.3f,%.3f] rounds=%lu %s=%.2fus %s=%.2fus\n",
           run->workload, a->name, b->name, c.ratio, c.lo, c.hi, run->rounds, a->name, a->cpu_us,
           b->name, b->cpu_us);
    if (run->csv) {
        printf("csv-ab,%s,%s,%s,%.4f,%.4f,%.4f,%lu,%.3f,%.3f\n", run->workload, a->name, b->name,
               r.ratio, r.lo, r.hi, run->rounds, a->median_us, b->median_us);
        printf("csv-ab-cpu,%s,%s,%s,%.4f,%.4f,%.4f,%lu,%.3f,%.3f\n", run->workload, a->name,
               b->name, c.ratio, c.lo, c.hi, run->rounds, a->cpu_us, b->cpu_us);
    }
    return true;
}

/*
 * Prints each target's median latency, then each target against the first
 * and against the target named PROXY_NAME (a pair once, never a target
 * against itself). Returns 0, or 1 when memory runs out.
 */
static int report(ab_run *run)
{
    const ab_target *first = &run->targets[0], *proxy = NULL;
    double *tmp = malloc(run->rounds * sizeof(*tmp));

    if (tmp == NULL) {
        fprintf(stderr, "bench-ab: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < run->ntargets; i++) {
        ab_target *t = &run->targets[i];
        t->median_us = median_of(t->round_ns, run->rounds, tmp) / 1e3;
        t->cpu_us = median_of(t->round_cpu_ns, run->rounds, tmp) / 1e3;
        printf("ab %s %s median=%.2fus cpu=%.2fus rounds=%lu ops/round=%lu\n", run->workload,
               t->name, t->median_us, t->cpu_us, run->rounds, run->ops);
        if (strcmp(t->name, PROXY_NAME) == 0) {
            proxy = t;
        }
    }
    free(tmp);
    for (size_t i = 1; i < run->ntargets; i++) {
        if (!report_pair(run, &run->targets[i], first)) {
            goto oom;
        }
    }
    for (size_t i = 1; proxy != NULL && proxy != first && i < run->ntargets; i++) {
        if (&run->targets[i] != proxy && !report_pair(run, &run->targets[i], proxy)) {
            goto oom;
        }
    }
    return 0;
oom:
    fprintf(stderr, "bench-ab: out of memory\n");
    return 1;
}

/*
 * Opens every target, runs the warm-up and the timed rounds and reports.
 * Returns 0 on success, 1 after printing the failure.
 */
static int run_all(ab_run *run)
{
    double *lat = malloc(run->ops * sizeof(*lat));
    bench_error err = {0};
    ab_target *failed;
    int status = 1;

    if (lat == NULL) {
        fprintf(stderr, "bench-ab: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < run->ntargets; i++) {
        ab_target *t = &run->targets[i];
        t->round_ns = malloc(run->rounds * sizeof(*t->round_ns));
        t->round_cpu_ns = malloc(run->rounds * sizeof(*t->round_cpu_ns));
        if (t->round_ns == NULL || t->round_cpu_ns == NULL) {
            fprintf(stderr, "bench-ab: out of memory\n");
            goto out;
        }
        if (!target_open(t, run->wl, &err)) {
            report_error(t, &err);
            goto out;
        }
    }
    for (unsigned long r = 0; r < run->warmup + run->rounds; r++) {
        bool timed = r >= run->warmup;
        failed = run_round(run, timed ? r - run->warmup : r, timed, lat);
        if (failed != NULL) {
            report_error(failed, &failed->w.error);
            goto out;
        }
    }
    status = report(run);
out:
    free(lat);
    return status;
}

/*
 * Closes every target, the last loaded first (so a module that the others
 * load too is finalised by the target that initialised it, after them),
 * and frees them. Returns status, or 1 when a C_Finalize failed.
 */
static int close_all(ab_run *run, int status)
{
    bench_error err = {0};

    for (size_t i = run->ntargets; i-- > 0;) {
        ab_target *t = &run->targets[i];
        if (!target_close(t, &err) && status == 0) {
            report_error(t, &err);
            status = 1;
        }
        free(t->round_ns);
        free(t->round_cpu_ns);
        free(t->spec);
    }
    return status;
}

int main(int argc, char **argv)
{
    static ab_run run; /* zeroed: the targets' handles start invalid */
    int status;

    status = parse_args(argc, argv, &run);
    if (status == 0) {
        status = run_all(&run);
    } else if (status == EXIT_HELP) {
        status = 0;
    }
    return close_all(&run, status);
}
