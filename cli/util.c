/*
 * util.c - what the strata commands share: messages, option parsing,
 * policy and catalog location, backend modules and aligned tables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("strata: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    if (cmd != NULL) {
        fprintf(stderr, "strata %s: ", cmd);
    } else {
        fputs("strata: ", stderr);
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL) {
        fprintf(stderr, " (see 'strata %s --help')\n", cmd);
    } else {
        fputs(" (see 'strata --help')\n", stderr);
    }
    return CLI_EXIT_USAGE;
}

#define MAX_OPTIONS 16

static const struct option global_options[] = {
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"policy", required_argument, NULL, CLI_OPT_POLICY},
    {"catalog", required_argument, NULL, CLI_OPT_CATALOG},
};

/* Copies the command's options and the global ones into table; returns 0,
 * or -1 when they do not fit (a programming error). */
static int merge_options(struct option *table, const struct option *local)
{
    size_t n = 0, i;

    for (i = 0; local != NULL && local[i].name != NULL; i++) {
        if (n >= MAX_OPTIONS - 1) {
            return -1;
        }
        table[n++] = local[i];
    }
    for (i = 0; i < sizeof(global_options) / sizeof(global_options[0]); i++) {
        if (n >= MAX_OPTIONS - 1) {
            return -1;
        }
        table[n++] = global_options[i];
    }
    memset(&table[n], 0, sizeof(table[n]));
    return 0;
}

int cli_getopt(cli_global *g, const char *cmd, int argc, char **argv, const struct option *longopts)
{
    static char **last_argv;
    static struct option table[MAX_OPTIONS];
    int c;

    if (argv != last_argv) {
        last_argv = argv;
        optind = 0; /* glibc: reinitialise, start at argv[1] */
        opterr = 0;
        if (merge_options(table, longopts) != 0) {
            cli_error("internal error: too many options for %s", cmd);
            return '?';
        }
    }
    c = getopt_long(argc, argv, ":h", table, NULL);
    switch (c) {
    case CLI_OPT_POLICY:
        g->policy = optarg;
        return cli_getopt(g, cmd, argc, argv, longopts);
    case CLI_OPT_CATALOG:
        g->catalog = optarg;
        return cli_getopt(g, cmd, argc, argv, longopts);
    case ':':
        cli_usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
        return '?';
    case '?':
        if (optopt != 0) {
            cli_usage_error(cmd, "unknown option '-%c'", optopt);
        } else {
            cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
        return '?';
    default:
        return c;
    }
}

/* Every option a command may take; a command's table is the ones its
 * takes mask names (cli_options). */
static const struct {
    unsigned flag;
    struct option option;
} known_options[] = {
    {CLI_TAKES_TOKEN, {"token", required_argument, NULL, CLI_TAKES_TOKEN}},
    {CLI_TAKES_VIEW, {"view", required_argument, NULL, CLI_TAKES_VIEW}},
    {CLI_TAKES_LAYER, {"layer", required_argument, NULL, CLI_TAKES_LAYER}},
    {CLI_TAKES_REMOVE, {"remove", required_argument, NULL, CLI_TAKES_REMOVE}},
    {CLI_TAKES_PIN_STDIN, {"pin-stdin", no_argument, NULL, CLI_TAKES_PIN_STDIN}},
    {CLI_TAKES_JSON, {"json", no_argument, NULL, CLI_TAKES_JSON}},
    {CLI_TAKES_SO, {"so", no_argument, NULL, CLI_TAKES_SO}},
    {CLI_TAKES_NO_VERIFY, {"no-verify", no_argument, NULL, CLI_TAKES_NO_VERIFY}},
};

#define N_KNOWN (sizeof(known_options) / sizeof(known_options[0]))

/* Stores the value of option flag into o. */
static void option_store(cli_opts *o, int flag)
{
    switch (flag) {
    case CLI_TAKES_TOKEN:
        o->token = optarg;
        break;
    case CLI_TAKES_VIEW:
        o->view = optarg;
        break;
    case CLI_TAKES_LAYER:
        o->layer = optarg;
        break;
    case CLI_TAKES_REMOVE:
        o->remove = optarg;
        break;
    case CLI_TAKES_PIN_STDIN:
        o->pin_stdin = true;
        break;
    case CLI_TAKES_JSON:
        o->json = true;
        break;
    case CLI_TAKES_SO:
        o->so = true;
        break;
    case CLI_TAKES_NO_VERIFY:
        o->no_verify = true;
        break;
    default:
        break;
    }
}

/* See cli.h. */
int cli_options(cli_global *g, const char *cmd, int argc, char **argv, unsigned takes,
                void (*help)(void), cli_opts *o)
{
    struct option table[N_KNOWN + 1];
    size_t n = 0;
    int c;

    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < N_KNOWN; i++) {
        if (takes & known_options[i].flag) {
            table[n++] = known_options[i].option;
        }
    }
    memset(&table[n], 0, sizeof(table[n]));
    while ((c = cli_getopt(g, cmd, argc, argv, table)) != -1) {
        if (c == CLI_OPT_HELP) {
            help();
            return 1;
        }
        if (c == '?') {
            return CLI_EXIT_USAGE;
        }
        option_store(o, c);
    }
    return 0;
}

/* See cli.h. */
int cli_operands_none(const char *cmd, int argc, char **argv)
{
    return optind < argc ? cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]) : 0;
}

int cli_token_args(cli_global *g, const char *cmd, int argc, char **argv, void (*help)(void),
                   const char **token, const char **view, bool *pin_stdin)
{
    unsigned takes = CLI_TAKES_TOKEN | CLI_TAKES_PIN_STDIN | (view != NULL ? CLI_TAKES_VIEW : 0);
    cli_opts o;
    int rc = cli_options(g, cmd, argc, argv, takes, help, &o);

    *token = o.token;
    *pin_stdin = o.pin_stdin;
    if (view != NULL) {
        *view = o.view;
    }
    if (rc != 0 || (rc = cli_operands_none(cmd, argc, argv)) != 0) {
        return rc;
    }
    if (view != NULL && (*token == NULL || *view == NULL)) {
        return cli_usage_error(cmd, "--token and --view are required");
    }
    if (*token == NULL) {
        return cli_usage_error(cmd, "--token is required");
    }
    return 0;
}

/* See cli.h (ls and explain): the same options; --token may be left out,
 * operands are the command's. */
int cli_view_args(cli_global *g, const char *cmd, int argc, char **argv, cli_view_opts *o,
                  void (*help)(void))
{
    unsigned takes = CLI_TAKES_TOKEN | CLI_TAKES_VIEW | CLI_TAKES_PIN_STDIN |
                     (strcmp(cmd, "ls") == 0 ? CLI_TAKES_JSON : 0);
    cli_opts opts;
    int rc = cli_options(g, cmd, argc, argv, takes, help, &opts);

    o->token = opts.token;
    o->view = opts.view;
    o->pin_stdin = opts.pin_stdin;
    o->json = opts.json;
    if (rc == 0 && o->view == NULL) {
        return cli_usage_error(cmd, "--view is required");
    }
    return rc;
}

char *cli_policy_path(const cli_global *g, const char *path)
{
    char *p;

    if (path == NULL) {
        path = g->policy;
    }
    p = path != NULL ? strdup(path) : rules_policy_default_path();
    if (p == NULL) {
        cli_error("out of memory");
        return NULL;
    }
    if (path == NULL) {
        char *missing = rules_policy_not_found();

        if (missing != NULL) {
            cli_error("%s (or give --policy FILE)", missing);
        }
        free(missing);
    }
    return p;
}

void cli_diags_print(const rules_diags *diags, bool warnings)
{
    char line[1024];
    size_t i;

    fflush(stdout);
    for (i = 0; i < diags->count; i++) {
        rules_diag d = diags->items[i];

        if (d.severity == RULES_SEVERITY_WARNING && !warnings) {
            continue;
        }
        d.hint = NULL; /* printed on a line of its own below */
        rules_diag_format(&d, line, sizeof(line));
        fprintf(stderr, "%s\n", line);
        if (diags->items[i].hint != NULL) {
            fprintf(stderr, "    hint: %s\n", diags->items[i].hint);
        }
    }
}

int cli_policy_load(const char *path, bool warnings, rules_policy **out)
{
    rules_diags diags;
    int rc;

    rules_diags_init(&diags);
    rc = rules_policy_load(path, out, &diags);
    cli_diags_print(&diags, warnings || rc != 0);
    if (rc != 0 && diags.count == 0) {
        fprintf(stderr, "%s: error: the policy cannot be loaded\n", path);
    }
    rules_diags_clear(&diags);
    return rc == 0 ? 0 : -1;
}

char *cli_catalog_path(const cli_global *g, const rules_policy *policy)
{
    char *p = NULL;

    if (g->catalog != NULL) {
        p = strdup(g->catalog);
    } else if (policy != NULL && policy->catalog_path != NULL) {
        p = strdup(policy->catalog_path);
    } else {
        p = storage_default_path();
    }
    if (p == NULL) {
        cli_error("no catalog location: set XDG_DATA_HOME or HOME, or use --catalog");
    }
    return p;
}

storage_rc cli_catalog_open(const char *path, unsigned flags, storage_catalog **out)
{
    char err[512] = "";
    storage_rc rc;

    rc = storage_catalog_open(path, flags, out, err, sizeof(err));
    if (rc != STORAGE_OK) {
        if (err[0] != '\0') {
            cli_error("%s", err);
        } else {
            cli_error("%s: %s", path, storage_strerror(rc));
        }
    }
    return rc;
}

bool cli_file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

int cli_layer_label(const rules_layer *layer, const char *view, char *buf, size_t size)
{
    if (layer->token == NULL) {
        if (size == 0) {
            return -1;
        }
        buf[0] = '\0';
        return 0;
    }
    if (view == NULL || strstr(layer->token, "{view}") == NULL) {
        int n = snprintf(buf, size, "%s", layer->token);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    return rules_layer_token_label(layer, view, buf, size);
}

void cli_view_layers_text(const rules_view *view, char *buf, size_t size)
{
    size_t i, used = 0;

    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    for (i = 0; i < view->n_layers && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i > 0 ? " > " : "", view->layers[i]);

        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

/* See cli.h. */
int cli_target_open(cli_global *g, const char *token, const char *view, unsigned flags,
                    cli_target *t)
{
    memset(t, 0, sizeof(*t));
    if (storage_crypto_init() != STORAGE_OK) {
        cli_error("libsodium cannot be initialised");
        return -1;
    }
    t->policy_path = cli_policy_path(g, NULL);
    if (t->policy_path == NULL || cli_policy_load(t->policy_path, false, &t->policy) != 0) {
        return -1;
    }
    if (token != NULL && (t->token = cli_token_named(t->policy, token)) == NULL) {
        return -1;
    }
    if (view != NULL && t->token != NULL) {
        t->view = cli_view_named(t->policy, t->token, view);
        if (t->view == NULL) {
            return -1;
        }
    }
    t->catalog_path = cli_catalog_path(g, t->policy);
    if (t->catalog_path == NULL) {
        return -1;
    }
    if (flags & CLI_CATALOG_NONE) {
        return 0;
    }
    if (!(flags & STORAGE_OPEN_CREATE) && !cli_file_exists(t->catalog_path)) {
        if (flags & CLI_CATALOG_OPTIONAL) {
            return 0;
        }
        cli_error("catalog %s not initialised: run 'strata init' and 'strata enroll'",
                  t->catalog_path);
        return -1;
    }
    flags &= ~(unsigned)(CLI_CATALOG_OPTIONAL | CLI_CATALOG_NONE);
    return cli_catalog_open(t->catalog_path, flags, &t->cat) == STORAGE_OK ? 0 : -1;
}

void cli_target_close(cli_target *t)
{
    if (t->cat != NULL) {
        storage_catalog_close(t->cat);
    }
    if (t->policy != NULL) {
        rules_policy_free(t->policy);
    }
    free(t->catalog_path);
    free(t->policy_path);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------
 * Enrolled views
 * ------------------------------------------------------------------ */

static void collect_view(void *ctx, const storage_view_info *info)
{
    cli_enrolled *list = ctx;

    if (list->failed) {
        return;
    }
    if (list->n == list->cap) {
        size_t cap = list->cap == 0 ? 8 : list->cap * 2;
        char(*names)[128] = realloc(list->names, cap * sizeof(*names));

        if (names == NULL) {
            list->failed = true;
            return;
        }
        list->names = names;
        list->cap = cap;
    }
    snprintf(list->names[list->n], sizeof(list->names[0]), "%s", info->view);
    list->n++;
}

int cli_enrolled_load(storage_catalog *cat, const char *token, cli_enrolled *list, const char **why)
{
    storage_rc rc;

    memset(list, 0, sizeof(*list));
    if (cat == NULL) {
        return 0;
    }
    rc = storage_views_list(cat, token, collect_view, list);
    if (rc == STORAGE_ERR_NOT_FOUND) {
        rc = STORAGE_OK;
    }
    if (rc != STORAGE_OK || list->failed) {
        *why = list->failed ? "out of memory" : storage_strerror(rc);
        cli_enrolled_free(list);
        return -1;
    }
    return 0;
}

bool cli_enrolled_has(const cli_enrolled *list, const char *view)
{
    size_t i;

    for (i = 0; i < list->n; i++) {
        if (strcmp(list->names[i], view) == 0) {
            return true;
        }
    }
    return false;
}

void cli_enrolled_free(cli_enrolled *list)
{
    free(list->names);
    memset(list, 0, sizeof(*list));
}

/* ---------------------------------------------------------------------
 * Backend modules
 * ------------------------------------------------------------------ */

int cli_modules_init(cli_modules *mods, const rules_policy *policy)
{
    mods->policy = policy;
    mods->mods = calloc(policy->n_modules + 1, sizeof(*mods->mods));
    if (mods->mods == NULL) {
        cli_error("out of memory");
        return -1;
    }
    return 0;
}

layers_module *cli_modules_get(cli_modules *mods, const char *id, const char **why)
{
    size_t i;

    for (i = 0; i < mods->policy->n_modules; i++) {
        const rules_module *m = &mods->policy->modules[i];
        cli_module *cm = &mods->mods[i];

        if (strcmp(m->id, id) != 0) {
            continue;
        }
        if (!cm->tried) {
            CK_RV rv;

            cm->tried = true;
            rv = layers_module_load_with(m->path, m->init_reserved, &cm->module, cm->err,
                                         sizeof(cm->err));
            if (rv != CKR_OK && cm->err[0] == '\0') {
                snprintf(cm->err, sizeof(cm->err), "%s: cannot be loaded (%s)", m->path,
                         layers_rv_name(rv));
            }
        }
        *why = cm->err;
        return cm->module;
    }
    *why = "no such module in the policy";
    return NULL;
}

int cli_modules_slots(cli_modules *mods, const char *id, layers_slot_info **slots, size_t *n,
                      const char **why)
{
    layers_module *module = cli_modules_get(mods, id, why);
    CK_RV rv;

    *slots = NULL;
    *n = 0;
    if (module == NULL) {
        return -1;
    }
    rv = layers_module_slots(module, slots, n);
    if (rv != CKR_OK) {
        *why = layers_rv_name(rv);
        *slots = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

void cli_modules_free(cli_modules *mods)
{
    size_t i;

    if (mods->mods == NULL) {
        return;
    }
    for (i = 0; i < mods->policy->n_modules; i++) {
        if (mods->mods[i].module != NULL) {
            layers_module_unload(mods->mods[i].module);
        }
    }
    free(mods->mods);
    mods->mods = NULL;
}

/* ---------------------------------------------------------------------
 * Aligned tables
 * ------------------------------------------------------------------ */

void cli_table_init(cli_table *t, size_t n_cols)
{
    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols < CLI_TABLE_MAX_COLS ? n_cols : CLI_TABLE_MAX_COLS;
}

int cli_table_add(cli_table *t, ...)
{
    va_list ap;
    size_t i, base;
    int rc = -1;

    if (t->n_rows == t->cap) {
        size_t cap = t->cap == 0 ? 8 : t->cap * 2;
        char **cells = realloc(t->cells, cap * t->n_cols * sizeof(*cells));

        if (cells == NULL) {
            cli_error("out of memory");
            return -1;
        }
        t->cells = cells;
        t->cap = cap;
    }
    base = t->n_rows * t->n_cols;
    va_start(ap, t);
    for (i = 0; i < t->n_cols; i++) {
        const char *s = va_arg(ap, const char *);

        t->cells[base + i] = strdup(s != NULL ? s : "");
        if (t->cells[base + i] == NULL) {
            cli_error("out of memory");
            goto out;
        }
    }
    t->n_rows++;
    rc = 0;
out:
    va_end(ap);
    if (rc != 0) {
        while (i-- > 0) {
            free(t->cells[base + i]);
        }
    }
    return rc;
}

void cli_table_print(const cli_table *t, int indent)
{
    size_t width[CLI_TABLE_MAX_COLS] = {0};
    size_t r, c;

    for (r = 0; r < t->n_rows; r++) {
        for (c = 0; c < t->n_cols; c++) {
            size_t len = strlen(t->cells[r * t->n_cols + c]);

            if (len > width[c]) {
                width[c] = len;
            }
        }
    }
    for (r = 0; r < t->n_rows; r++) {
        char *const *row = &t->cells[r * t->n_cols];
        size_t last = t->n_cols;

        /* Trailing empty cells print nothing, not padding. */
        while (last > 0 && row[last - 1][0] == '\0') {
            last--;
        }
        printf("%*s", indent, "");
        for (c = 0; c < last; c++) {
            if (c + 1 < last) {
                printf("%-*s  ", (int)width[c], row[c]);
            } else {
                printf("%s", row[c]);
            }
        }
        putchar('\n');
    }
}

void cli_table_free(cli_table *t)
{
    size_t i;

    for (i = 0; i < t->n_rows * t->n_cols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------
 * Names given on the command line: "did you mean"
 * ------------------------------------------------------------------ */

#define GUESS_MAX 128 /* longer names are not guessed at */

/* Levenshtein distance of a and b (each at most GUESS_MAX bytes). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[GUESS_MAX + 1];

    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

void cli_guess_init(cli_guess *g, const char *word)
{
    g->word = word;
    g->best = NULL;
    g->distance = (size_t)-1;
}

void cli_guess_try(cli_guess *g, const char *candidate)
{
    size_t d;

    if (strlen(g->word) > GUESS_MAX || strlen(candidate) > GUESS_MAX) {
        return;
    }
    d = edit_distance(g->word, candidate);
    if (d < g->distance) {
        g->distance = d;
        g->best = candidate;
    }
}

const char *cli_guess_best(const cli_guess *g)
{
    size_t len = strlen(g->word), limit = len / 3 > 2 ? len / 3 : 2;

    return g->best != NULL && g->distance <= limit ? g->best : NULL;
}

/* ", did you mean 'X'?" for guess into buf, or "". */
static const char *suggestion(const cli_guess *g, char *buf, size_t size)
{
    const char *best = cli_guess_best(g);

    if (best == NULL) {
        return "";
    }
    snprintf(buf, size, "; did you mean '%s'?", best);
    return buf;
}

const rules_token *cli_token_named(const rules_policy *policy, const char *label)
{
    const rules_token *tok = rules_policy_token(policy, label);
    char hint[200];
    cli_guess g;

    if (tok != NULL) {
        return tok;
    }
    cli_guess_init(&g, label);
    for (size_t i = 0; i < policy->n_tokens; i++) {
        cli_guess_try(&g, policy->tokens[i].label);
    }
    cli_error("no token '%s' in %s%s", label, policy->path, suggestion(&g, hint, sizeof(hint)));
    return NULL;
}

const rules_view *cli_view_named(const rules_policy *policy, const rules_token *tok, const char *id)
{
    const rules_view *view = rules_token_view(tok, id);
    char hint[200];
    cli_guess g;

    if (view != NULL) {
        return view;
    }
    cli_guess_init(&g, id);
    for (size_t i = 0; i < tok->n_views; i++) {
        cli_guess_try(&g, tok->views[i].id);
    }
    cli_error("token '%s' has no view '%s' in %s%s", tok->label, id, policy->path,
              suggestion(&g, hint, sizeof(hint)));
    return NULL;
}

bool cli_view_has_layer(const rules_view *view, const char *layer, bool report)
{
    char hint[200];
    cli_guess g;

    cli_guess_init(&g, layer);
    for (size_t i = 0; i < view->n_layers; i++) {
        if (strcmp(view->layers[i], layer) == 0) {
            return true;
        }
        cli_guess_try(&g, view->layers[i]);
    }
    if (report) {
        cli_error("view '%s' has no layer '%s'%s", view->id, layer,
                  suggestion(&g, hint, sizeof(hint)));
    }
    return false;
}
