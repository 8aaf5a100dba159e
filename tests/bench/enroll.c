/*
 * enroll.c - bench-enroll: enrols many views of one virtual token in one
 * process, for the benchmark's login rows (login/views=N).
 *
 *   bench-enroll --policy PATH --token LABEL --layer-pin PIN [--threads T]
 *   (standard input: one "VIEW PIN" per line)
 *
 * It stores exactly what `strata enroll --no-verify --pin-stdin` stores
 * (cli/enroll.c): the same storage_view_enroll call, with the token's
 * Argon2id cost from the policy (the catalog keeps the cost of the
 * token's first enrolment, as for the command) and one credential per
 * non-lazy layer of the view, here the same --layer-pin for every layer.
 * What it saves is the process and the policy's parsing per view; each
 * view still costs its Argon2id (two threads run two at a time, as two
 * enrolling processes would). The layer PIN is not checked by logging in
 * to the layer: the login rows do that, since every measured C_Login
 * logs in to the layer with the stored credential.
 *
 * A program of the benchmark, not a test; never registered with test().
 * PINs are kept in sodium_malloc'd memory and wiped on every path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rules.h"
#include "storage.h"

#define MAX_VIEWS   200000u /* lines of standard input */
#define LINE_BYTES  64u     /* bytes per line, on average at most */
#define MAX_THREADS 16u

/* One view to enrol: offsets into the secure buffer. */
typedef struct {
    size_t view; /* offset of the NUL-terminated view id */
    size_t pin;  /* offset of the PIN */
    size_t pin_len;
} job;

/* What every thread shares. */
typedef struct {
    storage_catalog *cat;
    const rules_policy *policy;
    const rules_token *tok;
    const char *layer_pin;
    char *text; /* sodium_malloc'd: standard input, split in place */
    job *jobs;
    size_t n_jobs;
    size_t next;        /* the next job to take (mu) */
    size_t failed_at;   /* first failing job + 1, 0 when none (mu) */
    storage_rc failure; /* its code (mu) */
    char failure_msg[256];
    pthread_mutex_t mu;
} run;

static void usage(FILE *out)
{
    fprintf(out, "usage: bench-enroll --policy PATH --token LABEL --layer-pin PIN [--threads T]\n"
                 "standard input: one \"VIEW PIN\" per line; each VIEW must be a view of\n"
                 "token LABEL in the policy; every non-lazy layer gets --layer-pin\n");
}

/*
 * Reads standard input into a sodium_malloc'd buffer of at most cap bytes
 * (*out, its length *len). Returns true; false when it is larger or memory
 * runs out (nothing left to free).
 */
static bool read_stdin(size_t cap, char **out, size_t *len)
{
    char *buf = sodium_malloc(cap + 1);
    size_t n = 0, got;

    if (buf == NULL) {
        return false;
    }
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            sodium_free(buf);
            return false;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return true;
}

/*
 * Splits the "VIEW PIN" lines of r->text in place into r->jobs. Returns
 * true; false with a message on stderr at the first malformed line.
 */
static bool split_jobs(run *r, size_t len)
{
    size_t line = 1;
    char *p = r->text, *end = r->text + len;

    r->jobs = calloc(MAX_VIEWS, sizeof(*r->jobs));
    if (r->jobs == NULL) {
        fprintf(stderr, "bench-enroll: out of memory\n");
        return false;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl != NULL ? nl : end;
        char *sp = memchr(p, ' ', (size_t)(eol - p));

        if (eol == p) {
            p = eol + 1;
            line++;
            continue;
        }
        if (sp == NULL || sp == p || sp + 1 == eol || r->n_jobs == MAX_VIEWS) {
            fprintf(stderr, "bench-enroll: line %zu is not \"VIEW PIN\"\n", line);
            return false;
        }
        *sp = '\0';
        r->jobs[r->n_jobs].view = (size_t)(p - r->text);
        r->jobs[r->n_jobs].pin = (size_t)(sp + 1 - r->text);
        r->jobs[r->n_jobs].pin_len = (size_t)(eol - sp - 1);
        r->n_jobs++;
        p = eol + 1;
        line++;
    }
    return true;
}

/*
 * Enrols one view as cli/enroll.c's store() does. Returns STORAGE_OK or
 * the failing code (STORAGE_ERR_NOT_FOUND when the policy has no such
 * view; STORAGE_ERR_EXISTS when its PIN selects another view already).
 */
static storage_rc enroll_one(const run *r, const job *j)
{
    const rules_view *view = rules_token_view(r->tok, r->text + j->view);
    storage_kdf kdf = {r->tok->kdf_ops, r->tok->kdf_mem};
    storage_cred *creds;
    size_t n = 0;
    storage_rc rc;

    if (view == NULL) {
        return STORAGE_ERR_NOT_FOUND;
    }
    creds = calloc(view->n_layers + 1, sizeof(*creds));
    if (creds == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    for (size_t i = 0; i < view->n_layers; i++) {
        const rules_layer *l = rules_policy_layer(r->policy, view->layers[i]);
        if (l == NULL || l->provision == RULES_PROVISION_LAZY) {
            continue;
        }
        creds[n].layer = l->id;
        creds[n].pin = r->layer_pin;
        creds[n].pin_len = strlen(r->layer_pin);
        n++;
    }
    rc = storage_view_enroll(r->cat, r->tok->label, view->id, r->text + j->pin, j->pin_len, creds,
                             n, &kdf);
    storage_wipe(creds, (view->n_layers + 1) * sizeof(*creds));
    free(creds);
    return rc;
}

/* A thread: takes jobs until none is left or one failed. Returns NULL. */
static void *worker(void *arg)
{
    run *r = arg;

    for (;;) {
        size_t i;
        storage_rc rc;

        pthread_mutex_lock(&r->mu);
        i = r->next++;
        bool stop = i >= r->n_jobs || r->failed_at != 0;
        pthread_mutex_unlock(&r->mu);
        if (stop) {
            return NULL;
        }
        rc = enroll_one(r, &r->jobs[i]);
        if (rc != STORAGE_OK) {
            pthread_mutex_lock(&r->mu);
            if (r->failed_at == 0 || i + 1 < r->failed_at) {
                r->failed_at = i + 1;
                r->failure = rc;
            }
            pthread_mutex_unlock(&r->mu);
            return NULL;
        }
    }
}

/* Runs the jobs on threads threads. Returns true when every view was
 * enrolled; false with a message on stderr. */
static bool enroll_all(run *r, unsigned long threads)
{
    pthread_t tids[MAX_THREADS];
    unsigned long started = 0;

    for (; started < threads; started++) {
        if (pthread_create(&tids[started], NULL, worker, r) != 0) {
            break;
        }
    }
    if (started == 0) {
        fprintf(stderr, "bench-enroll: cannot start a thread\n");
        return false;
    }
    for (unsigned long t = 0; t < started; t++) {
        pthread_join(tids[t], NULL);
    }
    if (r->failed_at != 0) {
        fprintf(stderr, "bench-enroll: cannot enrol view '%s' of token '%s': %s\n",
                r->text + r->jobs[r->failed_at - 1].view, r->tok->label,
                r->failure == STORAGE_ERR_NOT_FOUND ? "no such view in the policy"
                : r->failure == STORAGE_ERR_EXISTS  ? "its PIN already selects another view"
                                                    : storage_strerror(r->failure));
        return false;
    }
    return true;
}

/* Loads the policy and opens its catalog. Returns true; false with a
 * message on stderr. */
static bool open_policy(run *r, const char *path, const char *token, rules_policy **policy)
{
    rules_diags diags;
    char err[512] = "";
    char *cat_path;
    storage_rc rc;

    rules_diags_init(&diags);
    if (rules_policy_load(path, policy, &diags) != 0) {
        fprintf(stderr, "bench-enroll: %s: %s\n", path,
                diags.count > 0 ? diags.items[0].message : "cannot be loaded");
        rules_diags_clear(&diags);
        return false;
    }
    rules_diags_clear(&diags);
    r->policy = *policy;
    r->tok = rules_policy_token(*policy, token);
    if (r->tok == NULL) {
        fprintf(stderr, "bench-enroll: no token '%s' in %s\n", token, path);
        return false;
    }
    cat_path =
        (*policy)->catalog_path != NULL ? strdup((*policy)->catalog_path) : storage_default_path();
    if (cat_path == NULL) {
        fprintf(stderr, "bench-enroll: no catalog location\n");
        return false;
    }
    rc = storage_catalog_open(cat_path, STORAGE_OPEN_CREATE, &r->cat, err, sizeof(err));
    if (rc != STORAGE_OK) {
        fprintf(stderr, "bench-enroll: %s\n", err[0] != '\0' ? err : storage_strerror(rc));
    }
    free(cat_path);
    return rc == STORAGE_OK;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"policy", required_argument, NULL, 'p'},
        {"token", required_argument, NULL, 't'},
        {"layer-pin", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *policy_path = NULL, *token = NULL;
    rules_policy *policy = NULL;
    unsigned long threads = 1;
    run r;
    size_t len = 0;
    char *end;
    int c, status = 1;

    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'p':
            policy_path = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'l':
            r.layer_pin = optarg;
            break;
        case 'j':
            errno = 0;
            threads = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || threads == 0 || threads > MAX_THREADS) {
                fprintf(stderr, "bench-enroll: bad --threads \"%s\" (1 to %u)\n", optarg,
                        MAX_THREADS);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (policy_path == NULL || token == NULL || r.layer_pin == NULL || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (storage_crypto_init() != STORAGE_OK) {
        fprintf(stderr, "bench-enroll: libsodium cannot be initialised\n");
        return 1;
    }
    if (!read_stdin((size_t)MAX_VIEWS * LINE_BYTES, &r.text, &len)) {
        fprintf(stderr, "bench-enroll: standard input too large, or out of memory\n");
        return 1;
    }
    if (!split_jobs(&r, len) || !open_policy(&r, policy_path, token, &policy)) {
        goto out;
    }
    if (!enroll_all(&r, threads)) {
        goto out;
    }
    printf("enrolled %zu views of token %s (%lu threads; policy Argon2id cost ops=%llu "
           "mem=%zu, 0 = libsodium interactive)\n",
           r.n_jobs, r.tok->label, threads, r.tok->kdf_ops, r.tok->kdf_mem);
    status = 0;
out:
    if (r.cat != NULL) {
        storage_catalog_close(r.cat);
    }
    if (policy != NULL) {
        rules_policy_free(policy);
    }
    sodium_free(r.text); /* wipes */
    free(r.jobs);
    pthread_mutex_destroy(&r.mu);
    return status;
}
