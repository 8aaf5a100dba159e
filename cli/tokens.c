/*
 * tokens.c - strata tokens [--token LABEL] [--remove SERIAL]: the backend
 * tokens this catalog provisioned for lazy layers, as the backends show
 * them now, and the removal of an orphan.
 *
 * Which tokens are this catalog's: those its provisioning rows name, by
 * their label (the policy's label with this catalog's mark, storage/
 * identity.c) and serial. A token with a row's marked label and another
 * serial is an orphan this catalog made (a crash inside the backend's
 * C_InitToken, or a token the backend lost and showed again after it was
 * made anew). A token without this catalog's mark is never listed, never
 * called an orphan and never removed: it may be another user's.
 *
 * Removing an orphan wipes it (C_InitToken with the row's SO PIN, which
 * the administrator's key recovers: the virtual token's SO PIN is asked)
 * and relabels it "strata-removed", so that it holds nothing and no
 * catalog takes it for its own; PKCS#11 cannot delete a token, so the
 * empty token stays until the backend's own tool deletes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"

#define REMOVED_LABEL "strata-removed"

static void print_help(void)
{
    printf("usage: strata tokens [--token LABEL] [--remove SERIAL [--pin-stdin]]\n"
           "\n"
           "List the backend tokens this catalog provisioned for lazy layers, per\n"
           "virtual token, view and layer, as the backends show them now: ready (the\n"
           "view's token), pending (not made yet), missing (the catalog names a token\n"
           "the backend does not show), or orphaned (a token with this catalog's mark\n"
           "that is not the view's: a crash inside the backend left it). Tokens of\n"
           "other catalogs (other users sharing the backend) are never listed.\n"
           "\n"
           "--remove SERIAL wipes the orphan with that serial: the virtual token's SO\n"
           "PIN is asked (the administrator's key recovers the SO PIN the token was\n"
           "made with), its objects are destroyed and it is relabelled '" REMOVED_LABEL "'.\n"
           "A view's own token, or a token this catalog did not make, is never removed.\n"
           "\n"
           "options:\n"
           "  --token LABEL    only this virtual token\n"
           "  --remove SERIAL  wipe this catalog's orphan with this serial\n"
           "  --pin-stdin      read the SO PIN from standard input\n"
           "\n"
           "exit status: 0 listed (or removed), 1 not removed or a problem, 2 usage\n");
}

enum {
    OPT_TOKEN = CLI_OPT_FIRST_LOCAL,
    OPT_REMOVE,
    OPT_PIN_STDIN,
};

typedef struct {
    const char *token;  /* --token, or NULL for every token */
    const char *remove; /* --remove SERIAL, or NULL */
    bool pin_stdin;
} tokens_opts;

/* What one backend token of this catalog is. */
typedef enum {
    KIND_READY,   /* the row's token */
    KIND_PENDING, /* the row has no token yet */
    KIND_MISSING, /* the row names a token the backend does not show */
    KIND_ORPHAN,  /* marked as this catalog's, not the row's token */
    KIND_UNKNOWN, /* the module cannot be asked */
} token_kind;

/* One line of the listing. */
typedef struct {
    const rules_token *token;
    storage_provision_info row;
    char serial[17]; /* the backend token's serial ("" for none) */
    token_kind kind;
    char note[160];
} listed;

typedef struct {
    listed *items;
    size_t n;
    bool failed;
} listing;

static int add(listing *l, const listed *item)
{
    listed *grown = realloc(l->items, (l->n + 1) * sizeof(*grown));

    if (grown == NULL) {
        l->failed = true;
        return -1;
    }
    l->items = grown;
    l->items[l->n++] = *item;
    return 0;
}

/* What the rows of one virtual token need. */
typedef struct {
    listing *out;
    cli_modules *mods;
    storage_catalog *cat;
    const rules_token *token;
} scan_ctx;

/* Whether the row's label carries this catalog's mark. */
static bool row_marked(storage_catalog *cat, const rules_token *tok,
                       const storage_provision_info *row)
{
    char label[33];
    bool marked = false;

    return storage_provision_label(cat, tok->label, row->view, row->layer, row->label, label,
                                   &marked) == STORAGE_OK &&
           marked;
}

/* Adds the lines of one row: its token (or why there is none) and the
 * orphans beside it. A storage_provisions_list callback. */
static void scan_row(void *ctx, const storage_provision_info *row)
{
    scan_ctx *c = ctx;
    const rules_layer *l = rules_policy_layer(c->mods->policy, row->layer);
    const char *why = "";
    layers_module *module = l != NULL ? cli_modules_get(c->mods, l->module_id, &why) : NULL;
    layers_slot_info *slots = NULL;
    listed item = {.token = c->token, .row = *row, .kind = KIND_PENDING};
    bool marked = row_marked(c->cat, c->token, row), seen = false;
    size_t n = 0;

    if (module == NULL || layers_module_slots(module, &slots, &n) != CKR_OK) {
        item.kind = KIND_UNKNOWN;
        snprintf(item.note, sizeof(item.note), "%s",
                 l == NULL ? "layer not in the policy" : "module cannot be asked");
        add(c->out, &item);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const layers_slot_info *s = &slots[i];
        if (!s->token_present || !s->initialized || strcmp(s->label, row->label) != 0) {
            continue;
        }
        snprintf(item.serial, sizeof(item.serial), "%s", s->serial);
        if (row->serial[0] != '\0' && strcmp(s->serial, row->serial) == 0 && !seen) {
            item.kind = row->state == STORAGE_PROV_READY ? KIND_READY : KIND_PENDING;
            seen = true;
        } else if (marked && (row->serial[0] != '\0' || row->state == STORAGE_PROV_READY)) {
            item.kind = KIND_ORPHAN;
        } else {
            continue; /* unmarked: maybe another catalog's; or the pending row's own */
        }
        add(c->out, &item);
    }
    if (!seen) {
        snprintf(item.serial, sizeof(item.serial), "%s", row->serial);
        item.kind = row->serial[0] != '\0' ? KIND_MISSING : KIND_PENDING;
        add(c->out, &item);
    }
    free(slots);
}

static const char *kind_text(const listed *item)
{
    switch (item->kind) {
    case KIND_READY:
        return "ready (the view's token)";
    case KIND_PENDING:
        return item->row.state == STORAGE_PROV_WAITING ? "pending (waiting for a free slot)"
                                                       : "pending (the next login finishes it)";
    case KIND_MISSING:
        return "missing (the backend does not show it; the next login makes it again)";
    case KIND_ORPHAN:
        return "orphaned (not the view's token; strata tokens --remove SERIAL)";
    case KIND_UNKNOWN:
        return item->note;
    }
    return "";
}

/* Lists every row of the tokens asked for into out. Returns 0 or -1
 * (reported). */
static int collect(const rules_policy *policy, const tokens_opts *o, cli_modules *mods,
                   storage_catalog *cat, listing *out)
{
    for (size_t i = 0; i < policy->n_tokens; i++) {
        scan_ctx c = {out, mods, cat, &policy->tokens[i]};

        if (o->token != NULL && strcmp(o->token, policy->tokens[i].label) != 0) {
            continue;
        }
        if (storage_provisions_list(cat, policy->tokens[i].label, scan_row, &c) != STORAGE_OK ||
            out->failed) {
            cli_error("token '%s': cannot list its provisioned tokens", policy->tokens[i].label);
            return -1;
        }
    }
    return 0;
}

static int print_listing(const listing *l)
{
    cli_table t;
    int rc = -1;

    if (l->n == 0) {
        printf("no provisioned tokens\n");
        return 0;
    }
    cli_table_init(&t, 6);
    if (cli_table_add(&t, "TOKEN", "VIEW", "LAYER", "BACKEND TOKEN", "SERIAL", "STATE") != 0) {
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        const listed *it = &l->items[i];
        if (cli_table_add(&t, it->token->label, it->row.view, it->row.layer, it->row.label,
                          it->serial[0] != '\0' ? it->serial : "-", kind_text(it)) != 0) {
            goto out;
        }
    }
    cli_table_print(&t, 0);
    rc = 0;
out:
    cli_table_free(&t);
    return rc;
}

/* ---------------------------------------------------------------------
 * Removal
 * ------------------------------------------------------------------ */

/* The one orphan with serial, or NULL (reported: a view's token, another
 * catalog's, several tokens with that serial). */
static const listed *pick_orphan(const listing *l, const char *serial)
{
    const listed *found = NULL;
    size_t orphans = 0, live = 0;

    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].serial, serial) != 0) {
            continue;
        }
        if (l->items[i].kind == KIND_ORPHAN) {
            found = &l->items[i];
            orphans++;
        } else {
            live++;
        }
    }
    if (orphans == 1 && live == 0) {
        return found;
    }
    if (orphans + live > 1) {
        cli_error("serial %s names %zu tokens of this catalog (the backend gives several tokens "
                  "one serial): not removed",
                  serial, orphans + live);
    } else if (live == 1) {
        cli_error("serial %s is a view's own token, not an orphan: not removed", serial);
    } else {
        cli_error("no orphan of this catalog has serial %s (a token without this catalog's "
                  "mark is never removed): not removed",
                  serial);
    }
    return NULL;
}

/* Recovers the SO PIN the orphan's row was provisioned with into so
 * (STORAGE_GENERATED_PIN_LEN bytes at least), asking the virtual token's
 * SO PIN. Returns 0, or -1 (reported). */
static int recover_so(storage_catalog *cat, const listed *it, bool pin_stdin, char *so, size_t cap,
                      size_t *so_len)
{
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    char what[160];
    storage_rc src_rc;
    int rc = -1;

    if (storage_so_check(cat, it->token->label, "", 0) == STORAGE_ERR_NOT_FOUND) {
        cli_error("token '%s' has no SO PIN (strata enroll --so): the orphan's SO PIN cannot be "
                  "recovered; not removed",
                  it->token->label);
        return -1;
    }
    if (cli_pin_source_open(&src, pin_stdin) != 0) {
        return -1;
    }
    snprintf(what, sizeof(what), "the SO PIN of token '%s'", it->token->label);
    if (cli_pin_read(&src, what, &pin) != 0) {
        goto out;
    }
    src_rc = storage_so_open(cat, it->token->label, pin.buf, pin.len, it->row.view, it->row.layer,
                             so, cap, so_len);
    if (src_rc == STORAGE_OK) {
        rc = 0;
    } else if (src_rc == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("wrong SO PIN; not removed");
    } else if (src_rc == STORAGE_ERR_CRYPTO) {
        cli_error("view '%s' was provisioned before token '%s' had an SO PIN: its SO PIN was "
                  "never sealed to the administrator; delete serial %s with the backend's own "
                  "tool (SoftHSM2: softhsm2-util --delete-token --serial %s)",
                  it->row.view, it->token->label, it->serial, it->serial);
    } else {
        cli_error("cannot recover the SO PIN: %s", storage_strerror(src_rc));
    }
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    return rc;
}

/* Wipes the orphan it with so and relabels it. Returns 0, or -1
 * (reported). */
static int wipe(cli_modules *mods, const listed *it, const char *so, size_t so_len)
{
    const rules_layer *l = rules_policy_layer(mods->policy, it->row.layer);
    const char *why = "";
    layers_module *module = cli_modules_get(mods, l->module_id, &why);
    layers_token *tok = NULL;
    char user[STORAGE_GENERATED_PIN_LEN], serial[17], err[256] = "";
    CK_RV rv = layers_token_new(module, it->row.label, it->serial, &tok);

    randombytes_buf(user, sizeof(user)); /* a user PIN nobody keeps */
    for (size_t i = 0; i < sizeof(user); i++) {
        user[i] = (char)('a' + (unsigned char)user[i] % 26);
    }
    if (rv == CKR_OK) {
        rv = layers_token_reinit(tok, REMOVED_LABEL, so, so_len, user, sizeof(user), serial, err,
                                 sizeof(err));
    }
    sodium_memzero(user, sizeof(user));
    layers_token_free(tok);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
        cli_error("serial %s: its SO PIN is not the one its view was provisioned with (a crash "
                  "inside the backend's C_InitToken left it before its SO PIN was written, so it "
                  "holds no objects): delete it with the backend's own tool (SoftHSM2: "
                  "softhsm2-util --delete-token --serial %s); not removed",
                  it->serial, it->serial);
        return -1;
    }
    if (rv != CKR_OK) {
        cli_error("serial %s: wiping failed: %s%s%s; not removed", it->serial, layers_rv_name(rv),
                  err[0] != '\0' ? ": " : "", err);
        return -1;
    }
    return 0;
}

/* Removes the orphan with serial. Returns CLI_EXIT_OK or CLI_EXIT_FAIL
 * (reported). */
static int remove_orphan(cli_modules *mods, storage_catalog *cat, const listing *l,
                         const tokens_opts *o)
{
    const listed *it = pick_orphan(l, o->remove);
    char *so = sodium_init() >= 0 ? sodium_malloc(CLI_PIN_MAX) : NULL;
    char subject[512];
    size_t so_len = 0;
    int rc = CLI_EXIT_FAIL;

    if (it == NULL || so == NULL ||
        recover_so(cat, it, o->pin_stdin, so, CLI_PIN_MAX, &so_len) != 0) {
        goto out;
    }
    snprintf(subject, sizeof(subject), "%s/%s/%s serial %s", it->token->label, it->row.view,
             it->row.layer, it->serial);
    if (wipe(mods, it, so, so_len) != 0) {
        storage_audit(cat, "token-remove", subject, "failed");
        goto out;
    }
    storage_audit(cat, "token-remove", subject, "ok (wiped)");
    printf("orphan %s (serial %s) wiped: its objects are destroyed and it is labelled '%s'.\n"
           "PKCS#11 cannot delete a token: delete it with the backend's own tool (SoftHSM2:\n"
           "softhsm2-util --delete-token --serial %s).\n",
           it->row.label, it->serial, REMOVED_LABEL, it->serial);
    rc = CLI_EXIT_OK;
out:
    if (so != NULL) {
        sodium_memzero(so, CLI_PIN_MAX);
        sodium_free(so);
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------ */

/* Parses the options. Returns 0; 1 after printing the help;
 * CLI_EXIT_USAGE (reported). */
static int parse(cli_global *g, int argc, char **argv, tokens_opts *o)
{
    static const struct option options[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"remove", required_argument, NULL, OPT_REMOVE},
        {"pin-stdin", no_argument, NULL, OPT_PIN_STDIN},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = cli_getopt(g, "tokens", argc, argv, options)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            print_help();
            return 1;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_REMOVE:
            o->remove = optarg;
            break;
        case OPT_PIN_STDIN:
            o->pin_stdin = true;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        return cli_usage_error("tokens", "unexpected argument '%s'", argv[optind]);
    }
    if (o->pin_stdin && o->remove == NULL) {
        return cli_usage_error("tokens", "--pin-stdin goes with --remove");
    }
    return 0;
}

int cli_cmd_tokens(cli_global *g, int argc, char **argv)
{
    tokens_opts o = {NULL, NULL, false};
    rules_policy *policy = NULL;
    storage_catalog *cat = NULL;
    cli_modules mods = {NULL, NULL};
    listing l = {NULL, 0, false};
    char *policy_path = NULL, *path = NULL;
    int rc = parse(g, argc, argv, &o);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    policy_path = cli_policy_path(g, NULL);
    if (policy_path == NULL || cli_policy_load(policy_path, false, &policy) != 0) {
        goto out;
    }
    if (o.token != NULL && rules_policy_token(policy, o.token) == NULL) {
        cli_error("the policy has no token '%s'", o.token);
        goto out;
    }
    path = cli_catalog_path(g, policy);
    if (path == NULL ||
        cli_catalog_open(path, o.remove != NULL ? 0 : STORAGE_OPEN_READ_ONLY, &cat) != STORAGE_OK ||
        cli_modules_init(&mods, policy) != 0 || collect(policy, &o, &mods, cat, &l) != 0) {
        goto out;
    }
    rc = o.remove != NULL ? remove_orphan(&mods, cat, &l, &o)
                          : (print_listing(&l) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL);
out:
    free(l.items);
    cli_modules_free(&mods);
    if (cat != NULL) {
        storage_catalog_close(cat);
    }
    if (policy != NULL) {
        rules_policy_free(policy);
    }
    free(path);
    free(policy_path);
    return rc;
}
