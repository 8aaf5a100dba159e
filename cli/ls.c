/*
 * ls.c - strata ls --view V [--token T] [--pin-stdin]: what one view of a
 * virtual token shows, one object per line (layer, class, label, id,
 * handle), seen through the engine itself, loaded in-process and logged
 * in with the view's PIN, so the rules apply exactly as for a client.
 * Also the view session shared with strata explain (explain.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

/* ---------------------------------------------------------------------
 * The view session (shared with explain.c)
 * ------------------------------------------------------------------ */

const char *cli_class_name(CK_OBJECT_CLASS cls, char *buf, size_t size)
{
    switch (cls) {
    case CKO_DATA:
        return "data";
    case CKO_CERTIFICATE:
        return "certificate";
    case CKO_PUBLIC_KEY:
        return "public-key";
    case CKO_PRIVATE_KEY:
        return "private-key";
    case CKO_SECRET_KEY:
        return "secret-key";
    case CK_UNAVAILABLE_INFORMATION:
        return "?";
    default:
        snprintf(buf, size, "0x%lx", (unsigned long)cls);
        return buf;
    }
}

void cli_hex(const unsigned char *p, size_t len, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    if (len == 0) {
        snprintf(buf, size, "-");
        return;
    }
    for (size_t i = 0; i < len && used + 3 <= size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%02x", p[i]);
    }
}

/* The token the arguments name: token, else the policy's only one. */
static const rules_token *pick_token(const rules_policy *policy, const char *token)
{
    if (token != NULL) {
        return cli_token_named(policy, token);
    }
    if (policy->n_tokens != 1) {
        cli_error("%s has %zu tokens: name one with --token", policy->path, policy->n_tokens);
        return NULL;
    }
    return &policy->tokens[0];
}

/* The slot of the virtual token labelled label, found by label. Returns
 * 0 with *slot, or -1 (reported). */
static int find_slot(CK_FUNCTION_LIST *p11, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO info;
    char padded[33];

    memset(padded, ' ', 32);
    padded[32] = '\0';
    memcpy(padded, label, strlen(label) < 32 ? strlen(label) : 32);
    if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        cli_error("the engine lists no slots");
        return -1;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, padded, 32) == 0) {
            *slot = slots[i];
            return 0;
        }
    }
    cli_error("the engine shows no token '%s' (see strata status)", label);
    return -1;
}

/* Reads the view's PIN and logs in. Returns 0, or -1 (reported). */
static int log_in(cli_view_session *vs, const char *token, const char *view, bool pin_stdin)
{
    cli_pin_source src;
    cli_pin pin = {NULL, 0};
    char what[256], shown[128];
    CK_RV rv;
    int rc = -1;

    if (cli_pin_source_open(&src, pin_stdin) != 0) {
        return -1;
    }
    snprintf(what, sizeof(what), "the PIN of view '%s' of token '%s'", view, token);
    if (cli_pin_read(&src, what, &pin) != 0) {
        goto out;
    }
    rv = vs->p11->C_Login(vs->session, CKU_USER, (CK_UTF8CHAR_PTR)pin.buf, (CK_ULONG)pin.len);
    if (rv != CKR_OK) {
        cli_error("login to token '%s' failed: %s", token,
                  rv == CKR_PIN_INCORRECT ? "wrong PIN"
                  : rv == CKR_PIN_LOCKED  ? "the PIN is locked"
                                          : layers_rv_name(rv));
        goto out;
    }
    vs->logged_in = true;
    if (engine_session_view(vs->session, shown, sizeof(shown)) != CKR_OK ||
        strcmp(shown, view) != 0) {
        cli_error("that PIN does not open view '%s'", view);
        goto out;
    }
    rc = 0;
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    return rc;
}

int cli_view_session_open(cli_global *g, const char *token, const char *view, bool pin_stdin,
                          cli_view_session *vs)
{
    rules_policy *policy = NULL;
    const rules_token *tok;
    char *path = NULL;
    CK_SLOT_ID slot = 0;
    int rc = -1;

    memset(vs, 0, sizeof(*vs));
    if (g->catalog != NULL) {
        cli_error("--catalog cannot be used here: the engine uses the policy's catalog");
        return -1;
    }
    path = cli_policy_path(g, NULL);
    if (path == NULL || cli_policy_load(path, false, &policy) != 0) {
        goto out;
    }
    tok = pick_token(policy, token);
    if (tok == NULL) {
        goto out;
    }
    if (cli_view_named(policy, tok, view) == NULL) {
        goto out;
    }
    snprintf(vs->token, sizeof(vs->token), "%s", tok->label);
    snprintf(vs->view, sizeof(vs->view), "%s", view);
    vs->catalog = cli_catalog_path(g, policy);
    if (vs->catalog == NULL) {
        goto out;
    }
    if (setenv("STRATA_CONF", path, 1) != 0) {
        cli_error("cannot set STRATA_CONF");
        goto out;
    }
    vs->p11 = engine_function_list();
    if (vs->p11->C_Initialize(NULL) != CKR_OK) {
        cli_error("the engine did not start (run with STRATA_LOG=debug to see why)");
        vs->p11 = NULL;
        goto out;
    }
    if (find_slot(vs->p11, tok->label, &slot) != 0 ||
        vs->p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &vs->session) != CKR_OK) {
        goto out;
    }
    rc = log_in(vs, tok->label, view, pin_stdin);
out:
    if (rc != 0) {
        cli_view_session_close(vs);
    }
    rules_policy_free(policy);
    free(path);
    return rc;
}

void cli_view_session_close(cli_view_session *vs)
{
    if (vs->p11 != NULL) {
        if (vs->logged_in) {
            vs->p11->C_Logout(vs->session);
        }
        vs->p11->C_Finalize(NULL);
    }
    free(vs->catalog);
    memset(vs, 0, sizeof(*vs));
}

/* ---------------------------------------------------------------------
 * strata ls
 * ------------------------------------------------------------------ */

static void print_help(void)
{
    printf("usage: strata ls --view VIEW [--token LABEL] [--pin-stdin] [--json]\n"
           "\n"
           "List what view VIEW of the virtual token shows, one object per line: its\n"
           "layer, class, label and id as a client reads them (after the view's rules)\n"
           "and its handle. Asks the view's PIN on the terminal (or reads it from\n"
           "standard input with --pin-stdin) and logs in through the engine.\n"
           "\n"
           "options:\n"
           "  --view VIEW    the view to list\n"
           "  --token LABEL  the virtual token (default: the policy's only one)\n"
           "  --pin-stdin    read the PIN as one line on standard input\n"
           "  --json         print JSON instead (its shape: strata(1), JSON OUTPUT)\n"
           "\n"
           "exit status: 0 listed, 1 the policy, the login or the engine failed, or a\n"
           "layer of the view was left out at login (named on stderr: the list lacks\n"
           "its private objects), 2 usage\n");
}

/* Adds one object's row. Returns 0, or -1 when memory ran out. */
static int add_object(cli_table *t, cli_view_session *vs, CK_OBJECT_HANDLE o)
{
    CK_OBJECT_CLASS cls = CK_UNAVAILABLE_INFORMATION;
    unsigned char id[128];
    char label[256] = "", layer[128] = "?", cbuf[32], idhex[260], handle[24];
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, label, sizeof(label) - 1},
        {CKA_ID, id, sizeof(id)},
    };

    vs->p11->C_GetAttributeValue(vs->session, o, a, 3);
    if (a[0].ulValueLen != sizeof(cls)) {
        cls = CK_UNAVAILABLE_INFORMATION;
    }
    label[a[1].ulValueLen < sizeof(label) ? a[1].ulValueLen : 0] = '\0';
    cli_hex(id, a[2].ulValueLen <= sizeof(id) ? a[2].ulValueLen : 0, idhex, sizeof(idhex));
    engine_object_layer(vs->session, o, layer, sizeof(layer));
    snprintf(handle, sizeof(handle), "%lu", (unsigned long)o);
    return cli_table_add(t, layer, cli_class_name(cls, cbuf, sizeof(cbuf)), label, idhex, handle);
}

/* Lists the view into t. Returns 0, or -1 (reported). */
static int list_view(cli_view_session *vs, cli_table *t)
{
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG got = 0;
    CK_RV rv;
    int rc = 0;

    rv = vs->p11->C_FindObjectsInit(vs->session, NULL, 0);
    if (rv != CKR_OK) {
        cli_error("search failed: %s", layers_rv_name(rv));
        return -1;
    }
    do {
        rv = vs->p11->C_FindObjects(vs->session, batch, 64, &got);
        for (CK_ULONG i = 0; rv == CKR_OK && rc == 0 && i < got; i++) {
            rc = add_object(t, vs, batch[i]);
        }
    } while (rv == CKR_OK && rc == 0 && got > 0);
    vs->p11->C_FindObjectsFinal(vs->session);
    if (rv != CKR_OK || rc != 0) {
        cli_error("search failed: %s", rv != CKR_OK ? layers_rv_name(rv) : "out of memory");
        return -1;
    }
    return 0;
}

typedef struct {
    const cli_view_session *vs;
    cli_json *json; /* --json: the open "left_out" array, else NULL */
    unsigned n;     /* layers of the view left out */
} left_ctx;

static void report_left_out(void *ctx, const storage_left_out *item)
{
    left_ctx *c = ctx;

    if (strcmp(item->view, c->vs->view) != 0) {
        return;
    }
    c->n++;
    if (strcmp(item->reason, "stale credential") == 0) {
        cli_error("layer '%s' is left out: the backend refused its credential (its PIN changed); "
                  "run 'strata enroll --token %s --view %s --layer %s'",
                  item->layer, c->vs->token, c->vs->view, item->layer);
    } else {
        cli_error("layer '%s' is left out: %s (see strata status)", item->layer, item->reason);
    }
    if (c->json != NULL) {
        cli_json_open(c->json, NULL, '{');
        cli_json_str(c->json, "layer", item->layer);
        cli_json_str(c->json, "reason", item->reason);
        cli_json_close(c->json, '}');
    }
}

/* Reports on stderr (and into json's open array when non-NULL) the layers
 * the login left out, as the engine recorded them in the catalog. Returns
 * how many (0 when the catalog cannot tell). */
static unsigned left_out(const cli_view_session *vs, cli_json *json)
{
    storage_catalog *cat = NULL;
    left_ctx c = {vs, json, 0};

    if (storage_catalog_open(vs->catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0) != STORAGE_OK) {
        return 0;
    }
    storage_left_out_list(cat, vs->token, report_left_out, &c);
    storage_catalog_close(cat);
    return c.n;
}

/* Prints the listed objects (t's rows after the header) and the layers
 * left out as JSON (strata(1), JSON OUTPUT). Returns how many layers
 * were left out. */
static unsigned print_json(const cli_view_session *vs, const cli_table *t)
{
    static const char *const keys[] = {"layer", "class", "label", "id", "handle"};
    unsigned n;
    cli_json j;

    cli_json_init(&j, stdout);
    cli_json_open(&j, NULL, '{');
    cli_json_str(&j, "token", vs->token);
    cli_json_str(&j, "view", vs->view);
    cli_json_open(&j, "objects", '[');
    for (size_t r = 1; r < t->n_rows; r++) {
        char *const *row = &t->cells[r * t->n_cols];
        cli_json_open(&j, NULL, '{');
        for (size_t c = 0; c < 4; c++) {
            cli_json_str(&j, keys[c], c == 3 && strcmp(row[c], "-") == 0 ? "" : row[c]);
        }
        cli_json_int(&j, keys[4], strtoll(row[4], NULL, 10));
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_open(&j, "left_out", '[');
    n = left_out(vs, &j);
    cli_json_close(&j, ']');
    cli_json_bool(&j, "complete", n == 0);
    cli_json_close(&j, '}');
    return n;
}

int cli_cmd_ls(cli_global *g, int argc, char **argv)
{
    cli_view_opts o;
    cli_view_session vs;
    cli_table t;
    unsigned dropped;
    int rc = cli_view_args(g, "ls", argc, argv, &o, print_help);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    if (optind < argc) {
        return cli_usage_error("ls", "unexpected argument '%s'", argv[optind]);
    }
    if (cli_view_session_open(g, o.token, o.view, o.pin_stdin, &vs) != 0) {
        return CLI_EXIT_FAIL;
    }
    cli_table_init(&t, 5);
    rc =
        cli_table_add(&t, "LAYER", "CLASS", "LABEL", "ID", "HANDLE") == 0 && list_view(&vs, &t) == 0
            ? CLI_EXIT_OK
            : CLI_EXIT_FAIL;
    if (rc == CLI_EXIT_OK) {
        if (o.json) {
            dropped = print_json(&vs, &t);
        } else {
            cli_table_print(&t, 0);
            dropped = left_out(&vs, NULL);
        }
        if (dropped > 0) {
            rc = CLI_EXIT_FAIL; /* the list lacks what those layers hold */
        }
    }
    cli_table_free(&t);
    cli_view_session_close(&vs);
    return rc;
}
