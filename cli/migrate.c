/*
 * migrate.c - strata migrate --token T --view V --from LAYER --to LAYER
 * [--dry-run] [--only EXPR] [--pin-stdin] [--retire]: moves what view V
 * shows of layer LAYER (a legacy token) to another of its layers.
 *
 * The view's PIN unseals the two layers' credentials (a lazy layer's
 * generated PIN), and the command logs in to both backend tokens directly
 * through the layers library: the engine is not involved, so the read-only
 * mark of a layer, which is the engine's, does not stop reading it. For
 * each token object of the source that the view's rules show (and --only
 * selects), in the backend's order, it decides: already on the target
 * (same identity, same value or key), copy by attributes (certificates,
 * public keys, data objects), transfer wrapped (extractable private and
 * secret keys: transfer.c), or cannot move, with why and what to do.
 *
 * The journal (storage/moves.c) keys each object by its engine identity,
 * the digest engine/handles.c gives it, which is also what a whiteout
 * names. Before it creates anything on the target, the command checks the
 * target holds nothing with the object's identity and marks the row
 * "copying"; after the copy is verified, "done". A run killed anywhere in
 * between finds "copying" and destroys what answers the identity on the
 * target before copying again, so the target ends with exactly one copy.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "identity.h"

#define ID_LEN 32 /* an engine identity (HANDLES_IDENTITY_LEN) */

static void print_help(void)
{
    printf("usage: strata migrate --token LABEL --view VIEW --from LAYER --to LAYER\n"
           "                      [--dry-run] [--only EXPR] [--pin-stdin] [--retire]\n"
           "\n"
           "Move what VIEW shows of layer LAYER (a token being retired) to another layer\n"
           "of the view: certificates, public keys and data objects are copied with\n"
           "every copyable attribute; extractable private and secret keys travel wrapped\n"
           "(AES key wrap under a transient key carried by a transient RSA-OAEP key pair\n"
           "made on the target), never in clear. Each copy is verified before it counts:\n"
           "bytes equal, public key equal, a signature by the moved private key checked\n"
           "with the source's public key. A key that cannot leave its token (sensitive\n"
           "and not extractable) is reported with how to replace it. The view's PIN is\n"
           "asked (without echo): it unseals both layers' credentials.\n"
           "\n"
           "A journal in the catalog makes a second run move nothing and lets a run\n"
           "killed at any point be run again: the target ends with one copy of each.\n"
           "\n"
           "options:\n"
           "  --token LABEL  the virtual token (its label in the policy)\n"
           "  --view VIEW    the view whose objects move\n"
           "  --from LAYER   the layer to move from\n"
           "  --to LAYER     the (writable) layer to move to\n"
           "  --dry-run      print the plan and change nothing\n"
           "  --only EXPR    move only the objects EXPR matches (strata-rules(7)\n"
           "                 expression, e.g. 'class == certificate or label ~ \"vpn*\"')\n"
           "  --pin-stdin    read the view's PIN from standard input\n"
           "  --retire       white out the moved originals in the view\n"
           "\n"
           "exit status: 0 everything that can move is on the target (objects that cannot\n"
           "move are listed), 1 a move failed or was not verified, or nothing could be\n"
           "done (wrong PIN, a layer not available), 2 usage\n");
}

enum {
    OPT_TOKEN = CLI_OPT_FIRST_LOCAL,
    OPT_VIEW,
    OPT_FROM,
    OPT_TO,
    OPT_DRY_RUN,
    OPT_ONLY,
    OPT_PIN_STDIN,
    OPT_RETIRE,
};

typedef struct {
    const char *token, *view, *from, *to, *only;
    bool dry_run, pin_stdin, retire;
} migrate_opts;

/* What happened to one object. */
typedef enum {
    OUT_PLAN_COPY,
    OUT_PLAN_TRANSFER,
    OUT_PLAN_REDO,
    OUT_PRESENT,
    OUT_MOVED,
    OUT_CANNOT,
    OUT_FAILED,
} outcome;

static const char *const outcome_words[] = {
    "copy", "transfer", "redo", "present", "moved", "cannot", "failed",
};

/* One source object the view shows. */
typedef struct {
    CK_OBJECT_HANDLE handle;
    layers_attrs head;
    unsigned char identity[ID_LEN];
    bool journaled;           /* the journal has a row for it */
    storage_move_state state; /* its state, when journaled */
    outcome result;
} mig_item;

typedef struct {
    migrate_opts o;
    cli_target t;
    cli_modules mods;
    storage_login *login;
    rules_program *only;
    const rules_layer *layer[2]; /* 0: from, 1: to */
    char label[2][33];           /* the layers' labels in the policy, expanded */
    layers_token *tok[2];
    layers_side side[2];
    layers_transport tr;
    storage_cred_guard guard; /* one migration of (token, view, to) at a time */
    mig_item *items;
    size_t n_items;
    bool tty;
    unsigned counts[7]; /* per outcome */
} migrate_run;

/* ---------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------ */

static int parse(cli_global *g, int argc, char **argv, migrate_opts *o)
{
    static const struct option options[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"view", required_argument, NULL, OPT_VIEW},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"only", required_argument, NULL, OPT_ONLY},
        {"pin-stdin", no_argument, NULL, OPT_PIN_STDIN},
        {"retire", no_argument, NULL, OPT_RETIRE},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = cli_getopt(g, "migrate", argc, argv, options)) != -1) {
        switch (c) {
        case CLI_OPT_HELP:
            print_help();
            return 1;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_VIEW:
            o->view = optarg;
            break;
        case OPT_FROM:
            o->from = optarg;
            break;
        case OPT_TO:
            o->to = optarg;
            break;
        case OPT_DRY_RUN:
            o->dry_run = true;
            break;
        case OPT_ONLY:
            o->only = optarg;
            break;
        case OPT_PIN_STDIN:
            o->pin_stdin = true;
            break;
        case OPT_RETIRE:
            o->retire = true;
            break;
        case '?':
            return CLI_EXIT_USAGE;
        default:
            break;
        }
    }
    if (optind < argc) {
        return cli_usage_error("migrate", "unexpected argument '%s'", argv[optind]);
    }
    if (o->token == NULL || o->view == NULL || o->from == NULL || o->to == NULL) {
        return cli_usage_error("migrate", "--token, --view, --from and --to are required");
    }
    if (strcmp(o->from, o->to) == 0) {
        return cli_usage_error("migrate", "--from and --to name the same layer");
    }
    if (o->dry_run && o->retire) {
        return cli_usage_error("migrate", "--dry-run changes nothing, so it cannot --retire");
    }
    return 0;
}

/* Checks the two layers against the view and compiles --only. Returns 0
 * or -1 (reported). */
static int check_layers(migrate_run *r)
{
    const rules_view *v = r->t.view;
    const char *ids[2] = {r->o.from, r->o.to};
    const char *layers[64];
    bool read_only[64];
    rules_scope scope = {layers, read_only, 0};
    rules_diags diags;
    char *text;

    for (int i = 0; i < 2; i++) {
        if (!cli_view_has_layer(v, ids[i], true)) {
            return -1;
        }
        r->layer[i] = rules_policy_layer(r->t.policy, ids[i]);
        if (r->layer[i] == NULL ||
            cli_layer_label(r->layer[i], v->id, r->label[i], sizeof(r->label[i])) != 0) {
            cli_error("layer '%s': its token label does not fit 32 bytes", ids[i]);
            return -1;
        }
    }
    if (r->layer[1]->access == RULES_ACCESS_READ_ONLY) {
        cli_error("layer '%s' is read-only in the policy: nothing can move to it", r->o.to);
        return -1;
    }
    if (r->o.only == NULL) {
        return 0;
    }
    for (size_t i = 0; i < v->n_layers && i < 64; i++) {
        const rules_layer *l = rules_policy_layer(r->t.policy, v->layers[i]);
        layers[i] = v->layers[i];
        read_only[i] = l != NULL && l->access == RULES_ACCESS_READ_ONLY;
        scope.n_layers++;
    }
    text = malloc(strlen(r->o.only) + 16);
    if (text == NULL) {
        cli_error("out of memory");
        return -1;
    }
    snprintf(text, strlen(r->o.only) + 16, "hide where %s", r->o.only);
    rules_diags_init(&diags);
    r->only = rules_compile(text, "--only", 1, &scope, &diags);
    if (r->only == NULL) {
        cli_diags_print(&diags, false);
    }
    rules_diags_clear(&diags);
    free(text);
    return r->only != NULL ? 0 : -1;
}

/* ---------------------------------------------------------------------
 * The view's PIN and the two layers' tokens
 * ------------------------------------------------------------------ */

/* Reads the view's PIN and unseals its credentials into r->login. A guess
 * is reserved first and given back only when the PIN opens the view.
 * Returns 0 or -1 (reported). */
static int view_login(migrate_run *r)
{
    cli_pin_source src = {false, -1};
    cli_pin pin = {NULL, 0};
    char what[200];
    storage_rc rc_s = STORAGE_ERR_INTERNAL;
    int rc = -1;

    if (cli_pin_source_open(&src, r->o.pin_stdin) != 0) {
        return -1;
    }
    snprintf(what, sizeof(what), "the PIN of view '%s'", r->o.view);
    if (cli_pin_read(&src, what, &pin) != 0 || cli_target_guess(&r->t, STORAGE_PIN_USER) != 0) {
        goto out;
    }
    /* Only the view's own tag is compared: another view's PIN does a wrong
     * PIN's work and opens nothing. */
    rc_s = storage_view_login_as(r->t.cat, r->t.token->label, r->o.view, strlen(r->o.view), pin.buf,
                                 pin.len, &r->login);
    if (rc_s == STORAGE_OK) {
        (void)storage_guess_settle(r->t.cat, r->t.token->label, STORAGE_PIN_USER, false);
        rc = 0;
    } else if (rc_s == STORAGE_ERR_PIN_INCORRECT) {
        cli_error("that is not the PIN of view '%s'; nothing moved", r->o.view);
    } else {
        cli_error("cannot check the PIN: %s", storage_strerror(rc_s));
    }
out:
    cli_pin_free(&pin);
    cli_pin_source_close(&src);
    return rc;
}

/* The backend label, serial and PIN of layer i for the view: a lazy
 * layer's from its provisioning row, another's from the policy and the
 * view's sealed credential. *p receives the row to free (lazy). Returns 0
 * or -1 (reported). */
static int layer_secret(migrate_run *r, int i, char label[33], char serial[17], const char **pin,
                        size_t *pin_len, storage_provision **p)
{
    const rules_layer *l = r->layer[i];
    const storage_cred *cred;
    const char *so;
    size_t so_len;
    bool stale = false;

    *pin = NULL;
    *pin_len = 0;
    snprintf(label, 33, "%s", r->label[i]);
    snprintf(serial, 17, "%s", l->serial != NULL ? l->serial : "");
    if (l->provision == RULES_PROVISION_LAZY) {
        if (storage_provision_read(r->t.cat, r->login, l->id, p) != STORAGE_OK ||
            storage_provision_info_get(*p)->state != STORAGE_PROV_READY) {
            cli_error("layer '%s' of view '%s' is not provisioned yet: run 'strata provision "
                      "--token %s --view %s'",
                      l->id, r->o.view, r->t.token->label, r->o.view);
            return -1;
        }
        snprintf(label, 33, "%s", storage_provision_info_get(*p)->label);
        snprintf(serial, 17, "%s", storage_provision_info_get(*p)->serial);
        storage_provision_pins(*p, &so, &so_len, pin, pin_len);
        return 0;
    }
    if (storage_cred_is_stale(r->t.cat, r->t.token->label, r->o.view, l->id, &stale) ==
            STORAGE_OK &&
        stale) {
        cli_error("the credential of layer '%s' is stale: run 'strata enroll --token %s --view "
                  "%s --layer %s'",
                  l->id, r->t.token->label, r->o.view, l->id);
        return -1;
    }
    cred = storage_login_find(r->login, l->id);
    if (cred != NULL) {
        *pin = cred->pin;
        *pin_len = cred->pin_len;
    }
    return 0;
}

/* Logs in to layer i's token and opens a session on it (read-write on the
 * target). Returns 0 or -1 (reported). */
static int open_side(migrate_run *r, int i)
{
    const rules_layer *l = r->layer[i];
    storage_provision *p = NULL;
    layers_module *module;
    char label[33], serial[17];
    const char *pin = NULL, *why = NULL;
    size_t pin_len = 0;
    bool required = true;
    CK_RV rv = CKR_GENERAL_ERROR;
    int rc = -1;

    module = cli_modules_get(&r->mods, l->module_id, &why);
    if (module == NULL) {
        cli_error("layer '%s': %s", l->id, why);
        return -1;
    }
    if (layer_secret(r, i, label, serial, &pin, &pin_len, &p) != 0) {
        goto out;
    }
    rv = layers_token_new(module, label[0] != '\0' ? label : NULL,
                          serial[0] != '\0' ? serial : NULL, &r->tok[i]);
    if (rv == CKR_OK) {
        rv = layers_token_login_required(r->tok[i], &required);
    }
    if (rv == CKR_OK && required && pin == NULL) {
        cli_error("view '%s' holds no credential for layer '%s'", r->o.view, l->id);
        goto out;
    }
    if (rv == CKR_OK && required) {
        rv = layers_token_login(r->tok[i], CKU_USER, pin, pin_len);
    }
    if (rv == CKR_OK) {
        rv = layers_token_open_session(r->tok[i], i == 1 ? CKF_RW_SESSION : 0, &r->side[i].session);
    }
    if (rv != CKR_OK) {
        cli_error("layer '%s' (token '%s'): %s", l->id, label, layers_rv_name(rv));
        goto out;
    }
    r->side[i].p11 = layers_module_functions(module);
    rc = 0;
out:
    storage_provision_free(p);
    return rc;
}

static void close_sides(migrate_run *r)
{
    if (r->side[0].p11 != NULL && r->side[1].p11 != NULL) {
        layers_transport_close(&r->tr, &r->side[0], &r->side[1]);
    }
    for (int i = 0; i < 2; i++) {
        if (r->tok[i] != NULL) {
            if (r->side[i].p11 != NULL) {
                layers_token_close_session(r->tok[i], r->side[i].session);
            }
            layers_token_free(r->tok[i]);
            r->tok[i] = NULL;
        }
    }
}

/* ---------------------------------------------------------------------
 * The source's objects
 * ------------------------------------------------------------------ */

/* The engine identity of an object of layer i without its ordinal
 * (engine/handles.c, read_object and hash_attr: the same digest, so that
 * a whiteout recorded here hides what the engine shows). */
static void identity_base(const migrate_run *r, const layers_attrs *head,
                          crypto_generichash_state *st)
{
    crypto_generichash_init(st, NULL, 0, ID_LEN);
    crypto_generichash_update(st, (const unsigned char *)"strata-identity-1", 18);
    crypto_generichash_update(st, (const unsigned char *)r->layer[0]->id,
                              strlen(r->layer[0]->id) + 1);
    crypto_generichash_update(st, (const unsigned char *)r->label[0], strlen(r->label[0]) + 1);
    for (size_t i = 0; i < LAYERS_N_IDENTITY; i++) {
        const CK_ATTRIBUTE *a = &head->attrs[i];
        uint64_t type = a->type, len = a->pValue != NULL ? a->ulValueLen : UINT64_MAX;
        crypto_generichash_update(st, (const unsigned char *)&type, sizeof(type));
        crypto_generichash_update(st, (const unsigned char *)&len, sizeof(len));
        if (a->pValue != NULL && a->ulValueLen > 0) {
            crypto_generichash_update(st, a->pValue, a->ulValueLen);
        }
    }
}

/* Fills items[k].identity: the base digest and the ordinal among the
 * earlier objects with the same base, as the engine numbers duplicates. */
static void identity_of(const migrate_run *r, size_t k, unsigned char (*bases)[ID_LEN])
{
    crypto_generichash_state st;
    uint32_t ordinal = 0;

    identity_base(r, &r->items[k].head, &st);
    {
        crypto_generichash_state copy = st;
        crypto_generichash_final(&copy, bases[k], ID_LEN);
    }
    for (size_t j = 0; j < k; j++) {
        ordinal += memcmp(bases[j], bases[k], ID_LEN) == 0;
    }
    crypto_generichash_update(&st, (const unsigned char *)&ordinal, sizeof(ordinal));
    crypto_generichash_final(&st, r->items[k].identity, ID_LEN);
}

/* Whether program hides the object (a NULL program hides nothing). */
static bool hides(const migrate_run *r, const rules_program *program, const layers_attrs *a)
{
    rules_object obj = {r->o.from, r->o.view, r->t.token->label, a->attrs, a->n};
    rules_verdict verdict;

    if (program == NULL) {
        return false;
    }
    return rules_eval(program, &obj, &verdict) != 0 || verdict.hidden;
}

/* The types read from each source object: the head, then what the view's
 * rules and --only read. malloc'd into *types. */
static CK_RV read_types(const migrate_run *r, CK_ATTRIBUTE_TYPE **types, size_t *n)
{
    const rules_program *progs[2] = {r->t.view->rules, r->only};
    size_t cap = layers_n_head_types;

    for (int p = 0; p < 2; p++) {
        const CK_ATTRIBUTE_TYPE *more;
        cap += progs[p] != NULL ? rules_program_attributes(progs[p], &more) : 0;
    }
    *types = malloc(cap * sizeof(**types));
    if (*types == NULL) {
        return CKR_HOST_MEMORY;
    }
    memcpy(*types, layers_head_types, layers_n_head_types * sizeof(**types));
    *n = layers_n_head_types;
    for (int p = 0; p < 2; p++) {
        const CK_ATTRIBUTE_TYPE *more = NULL;
        size_t m = progs[p] != NULL ? rules_program_attributes(progs[p], &more) : 0;
        for (size_t i = 0; i < m; i++) {
            bool seen = false;
            for (size_t j = 0; j < *n && !seen; j++) {
                seen = (*types)[j] == more[i];
            }
            if (!seen) {
                (*types)[(*n)++] = more[i];
            }
        }
    }
    return CKR_OK;
}

/* Lists the source's token objects into *handles (malloc'd). */
static CK_RV list_source(const layers_side *src, CK_OBJECT_HANDLE **handles, size_t *n)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE templ = {CKA_TOKEN, &yes, sizeof(yes)};
    size_t cap = 0;
    CK_ULONG got = 0;
    CK_RV rv = src->p11->C_FindObjectsInit(src->session, &templ, 1);

    *handles = NULL;
    *n = 0;
    while (rv == CKR_OK) {
        if (*n == cap) {
            CK_OBJECT_HANDLE *more = realloc(*handles, (cap + 64) * sizeof(*more));
            if (more == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            *handles = more;
            cap += 64;
        }
        rv = src->p11->C_FindObjects(src->session, *handles + *n, (CK_ULONG)(cap - *n), &got);
        if (rv != CKR_OK || got == 0) {
            break;
        }
        *n += got;
    }
    src->p11->C_FindObjectsFinal(src->session);
    return rv;
}

/* Reads every source object, keeps those the view shows and --only
 * selects, with their identities. Returns 0 or -1 (reported). */
static int collect(migrate_run *r)
{
    CK_OBJECT_HANDLE *handles = NULL;
    CK_ATTRIBUTE_TYPE *types = NULL;
    unsigned char(*bases)[ID_LEN] = NULL;
    size_t n = 0, n_types = 0;
    CK_RV rv = list_source(&r->side[0], &handles, &n);
    int rc = -1;

    if (rv == CKR_OK) {
        rv = read_types(r, &types, &n_types);
    }
    r->items = calloc(n > 0 ? n : 1, sizeof(*r->items));
    bases = calloc(n > 0 ? n : 1, sizeof(*bases));
    if (rv == CKR_OK && (r->items == NULL || bases == NULL)) {
        rv = CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < n && rv == CKR_OK; i++) {
        mig_item *it = &r->items[r->n_items];
        rv = layers_attrs_read(&r->side[0], handles[i], types, n_types, &it->head);
        if (rv != CKR_OK) {
            break;
        }
        it->handle = handles[i];
        identity_of(r, r->n_items, bases);
        r->n_items++;
    }
    if (rv != CKR_OK) {
        cli_error("cannot list layer '%s': %s", r->o.from, layers_rv_name(rv));
        goto out;
    }
    /* Identities are numbered over every object, as the engine meets
     * them; only then are hidden and unselected ones dropped. */
    n = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        mig_item *it = &r->items[i];
        if (hides(r, r->t.view->rules, &it->head) ||
            (r->only != NULL && !hides(r, r->only, &it->head))) {
            layers_attrs_free(&it->head);
            continue;
        }
        r->items[n++] = *it;
    }
    r->n_items = n;
    rc = 0;
out:
    free(bases);
    free(types);
    free(handles);
    return rc;
}

/* ---------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------ */

/* "private-key rsa 'label' id 01" of an object into buf. */
static void describe(const layers_attrs *head, bool pad, char *buf, size_t size)
{
    const CK_ATTRIBUTE *label = layers_attr(head, CKA_LABEL), *id = layers_attr(head, CKA_ID);
    CK_KEY_TYPE kt = layers_attr_ulong(head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    const char *kname =
        kt != CK_UNAVAILABLE_INFORMATION ? rules_attribute_value_name(CKA_KEY_TYPE, kt) : NULL;
    char cls[32], idhex[65], key[24] = "";
    const char *cname = cli_class_name(
        layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION), cls, sizeof(cls));

    if (kname != NULL && strncmp(kname, "CKK_", 4) == 0) {
        for (size_t i = 0; kname[4 + i] != '\0' && i + 1 < sizeof(key); i++) {
            key[i] = (char)tolower((unsigned char)kname[4 + i]);
        }
    }
    cli_hex(id != NULL ? id->pValue : NULL, id != NULL ? id->ulValueLen : 0, idhex, sizeof(idhex));
    snprintf(buf, size, pad ? "%-11s%s%-4s '%.*s' id %s" : "%s%s%s '%.*s' id %s", cname,
             pad || key[0] != '\0' ? " " : "", key, label != NULL ? (int)label->ulValueLen : 0,
             label != NULL ? (const char *)label->pValue : "", idhex);
}

/* The pkcs11-tool options that make a replacement of a key that cannot
 * move: its key type and size. */
static void rekey_hint(const layers_side *src, const mig_item *it, char *buf, size_t size)
{
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_MODULUS, CKA_EC_PARAMS, CKA_VALUE_LEN};
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    static const unsigned char p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    CK_KEY_TYPE kt = layers_attr_ulong(&it->head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    const CK_ATTRIBUTE *label = layers_attr(&it->head, CKA_LABEL), *a;
    char kind[64] = "--keypairgen --key-type TYPE";
    layers_attrs k;

    if (layers_attrs_read(src, it->handle, types, 3, &k) == CKR_OK) {
        if (kt == CKK_RSA && (a = layers_attr(&k, CKA_MODULUS)) != NULL) {
            snprintf(kind, sizeof(kind), "--keypairgen --key-type rsa:%lu",
                     (unsigned long)a->ulValueLen * 8);
        } else if (kt == CKK_EC && (a = layers_attr(&k, CKA_EC_PARAMS)) != NULL) {
            bool is256 =
                a->ulValueLen == sizeof(p256) && memcmp(a->pValue, p256, sizeof(p256)) == 0;
            bool is384 =
                a->ulValueLen == sizeof(p384) && memcmp(a->pValue, p384, sizeof(p384)) == 0;
            snprintf(kind, sizeof(kind), "--keypairgen --key-type EC:%s",
                     is256   ? "prime256v1"
                     : is384 ? "secp384r1"
                             : "CURVE");
        } else if (kt == CKK_AES) {
            snprintf(kind, sizeof(kind), "--keygen --key-type AES:%lu",
                     layers_attr_ulong(&k, CKA_VALUE_LEN, 32));
        }
        layers_attrs_free(&k);
    }
    snprintf(buf, size,
             "re-key on the target: pkcs11-tool --module strata-pkcs11.so --login %s "
             "--label '%.*s' --id NEW-ID (a new id; the view then shows both until this one is "
             "retired)%s",
             kind, label != NULL ? (int)label->ulValueLen : 0,
             label != NULL ? (const char *)label->pValue : "",
             layers_attr_ulong(&it->head, CKA_CLASS, 0) == CKO_PRIVATE_KEY
                 ? ", and have its certificate re-issued for the new key"
                 : "");
}

/* Shows the progress of item k on a terminal. */
static void progress(const migrate_run *r, size_t k, const char *what)
{
    char d[200];

    if (!r->tty) {
        return;
    }
    describe(&r->items[k].head, true, d, sizeof(d));
    printf("\r\033[K[%zu/%zu] %s %s", k + 1, r->n_items, what, d);
    fflush(stdout);
}

/* Prints the line of item k: always off a terminal (one line per object),
 * and on a terminal for what needs attention and for a dry run. */
static void report(const migrate_run *r, size_t k, const char *note)
{
    const mig_item *it = &r->items[k];
    char d[200];

    if (r->tty && !r->o.dry_run && it->result != OUT_CANNOT && it->result != OUT_FAILED) {
        return;
    }
    describe(&it->head, true, d, sizeof(d));
    printf("%s%-8s %s%s%s\n", r->tty ? "\r\033[K" : "", outcome_words[it->result], d,
           note != NULL ? ": " : "", note != NULL ? note : "");
    fflush(stdout); /* a reader of a pipe sees each object as it is done */
}

/* ---------------------------------------------------------------------
 * Moving one object
 * ------------------------------------------------------------------ */

/* Records the item's move in state (never in a dry run). Returns 0 or -1
 * (reported: the item failed). */
static int journal(migrate_run *r, mig_item *it, storage_move_state state)
{
    storage_move_key key = {r->t.token->label, r->o.view, r->o.from, r->o.to, it->identity, ID_LEN};
    storage_move row = {.state = state};
    storage_rc rc;

    describe(&it->head, false, row.summary, sizeof(row.summary));
    rc = storage_move_set(r->t.cat, &key, &row);
    if (rc != STORAGE_OK) {
        cli_error("cannot record the move in the catalog: %s", storage_strerror(rc));
        return -1;
    }
    it->journaled = true;
    it->state = state;
    return 0;
}

/* When the journal says a copy of it was begun and not finished, destroys
 * what answers its identity on the target (the unverified copy: the
 * target held nothing with that identity when the copy began) and the
 * blank shells of its class a backend killed while creating it leaves
 * (layers_find_shells). *redo says whether that was the case. Returns CKR_OK
 * or a backend code. */
static CK_RV clean_interrupted(migrate_run *r, mig_item *it, bool *redo)
{
    storage_move_key key = {r->t.token->label, r->o.view, r->o.from, r->o.to, it->identity, ID_LEN};
    storage_move row;
    CK_OBJECT_HANDLE found[16];
    size_t n = 0;
    CK_RV rv;

    it->journaled = storage_move_get(r->t.cat, &key, &row) == STORAGE_OK;
    it->state = row.state;
    *redo = it->journaled && row.state == STORAGE_MOVE_COPYING;
    if (!*redo || r->o.dry_run) {
        return CKR_OK;
    }
    for (int pass = 0; pass < 2; pass++) {
        rv = pass == 0 ? layers_find_match(&r->side[1], &it->head, found, 16, &n)
                       : layers_find_shells(&r->side[1], &r->tr, &it->head, found, 16, &n);
        for (size_t i = 0; i < n && rv == CKR_OK; i++) {
            rv = r->side[1].p11->C_DestroyObject(r->side[1].session, found[i]);
        }
        if (rv != CKR_OK) {
            return rv;
        }
    }
    return CKR_OK;
}

/* Whether rv is a token's answer to a template it will not create, for
 * all its attributes are valid PKCS#11 (tpm2-pkcs11 1.9 creates no EC
 * public key and no public data object). */
static bool refused_template(CK_RV rv)
{
    return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_TEMPLATE_INCOMPLETE ||
           rv == CKR_ATTRIBUTE_READ_ONLY;
}

/* Creates the copy (copy or transfer), verifies it, and finishes it; a
 * copy that fails verification is destroyed. Returns the outcome, with a
 * note into note. */
static outcome move(migrate_run *r, mig_item *it, layers_how how, char *note, size_t size)
{
    const layers_side *src = &r->side[0], *dst = &r->side[1];
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    const char *checked = "";
    char err[200] = "";
    CK_RV rv;

    if (journal(r, it, STORAGE_MOVE_COPYING) != 0) {
        snprintf(note, size, "the catalog cannot record it");
        return OUT_FAILED;
    }
    if (how == LAYERS_TRANSFER) {
        rv = layers_transport_open(&r->tr, src, dst, err, sizeof(err));
        if (rv == CKR_OK) {
            rv = layers_transfer(src, it->handle, dst, &r->tr, &it->head, NULL, 0, &copy, err,
                                 sizeof(err));
        }
    } else {
        rv = layers_copy(src, it->handle, dst, &it->head, NULL, 0, &copy, err, sizeof(err));
    }
    if (rv == CKR_OK) {
        rv = layers_verify(src, it->handle, dst, copy, &it->head, &checked, err, sizeof(err));
        if (rv != CKR_OK) {
            dst->p11->C_DestroyObject(dst->session, copy);
        }
    }
    if (rv == CKR_OK && layers_finish(src, it->handle, dst, copy) != CKR_OK) {
        snprintf(err, sizeof(err), "copied, but CKA_DESTROYABLE false could not be set on it");
    }
    if (rv != CKR_OK && how == LAYERS_COPY && refused_template(rv)) {
        snprintf(note, size,
                 "layer '%s' refuses to hold it as it is (%s): its token makes no such "
                 "object",
                 r->o.to, err);
        return OUT_CANNOT;
    }
    if (rv != CKR_OK) {
        snprintf(note, size, "%s", err);
        return OUT_FAILED;
    }
    if (journal(r, it, STORAGE_MOVE_DONE) != 0) {
        snprintf(note, size, "verified, but the catalog cannot record it (run again)");
        return OUT_FAILED;
    }
    if (how == LAYERS_TRANSFER) {
        snprintf(note, size, "wrapped (%s), verified: %s%s%s",
                 layers_wrap_name(&r->tr.plan, layers_attr_ulong(&it->head, CKA_CLASS, 0)), checked,
                 err[0] != '\0' ? "; " : "", err);
    } else {
        snprintf(note, size, "copied, verified: %s%s%s", checked, err[0] != '\0' ? "; " : "", err);
    }
    return OUT_MOVED;
}

/* The target already holds objects answering the identity (n of them in
 * found): present when one holds the same value, else a conflict. */
static outcome already(migrate_run *r, mig_item *it, const CK_OBJECT_HANDLE *found, size_t n,
                       char *note, size_t size)
{
    const char *how = "";
    bool same = false;
    CK_RV rv = CKR_OK;

    for (size_t i = 0; i < n && rv == CKR_OK && !same; i++) {
        rv = layers_same(&r->side[0], it->handle, &r->side[1], found[i], &it->head, &same, &how);
    }
    if (rv != CKR_OK) {
        snprintf(note, size, "comparing it with the target's: %s", layers_rv_name(rv));
        return OUT_FAILED;
    }
    if (!same) {
        snprintf(note, size,
                 "layer '%s' holds a different object with this identity; move or rename one "
                 "of them first",
                 r->o.to);
        return OUT_CANNOT;
    }
    if (!r->o.dry_run && !(it->journaled && it->state == STORAGE_MOVE_DONE) &&
        journal(r, it, STORAGE_MOVE_DONE) != 0) {
        snprintf(note, size, "on the target, but the catalog cannot record it");
        return OUT_FAILED;
    }
    snprintf(note, size, "already on layer '%s' (%s)", r->o.to, how);
    return OUT_PRESENT;
}

/* Plans and (unless a dry run) moves item k; prints its line. */
static void process(migrate_run *r, size_t k)
{
    mig_item *it = &r->items[k];
    CK_OBJECT_HANDLE found[16];
    const char *why = NULL;
    char note[600] = "";
    size_t n = 0;
    bool redo = false;
    layers_how how = layers_classify(&it->head, &why);
    CK_RV rv;

    progress(r, k, r->o.dry_run ? "planning" : "moving");
    rv = clean_interrupted(r, it, &redo);
    if (rv == CKR_OK) {
        rv = layers_find_match(&r->side[1], &it->head, found, 16, &n);
    }
    if (rv != CKR_OK) {
        snprintf(note, sizeof(note), "on layer '%s': %s", r->o.to, layers_rv_name(rv));
        it->result = OUT_FAILED;
    } else if (n > 0 && !(redo && r->o.dry_run)) {
        it->result = already(r, it, found, n, note, sizeof(note));
    } else if (how == LAYERS_CANNOT) {
        it->result = OUT_CANNOT;
    } else if (how == LAYERS_TRANSFER &&
               !layers_transport_possible(&r->side[0], &r->side[1],
                                          layers_attr_ulong(&it->head, CKA_CLASS, 0), NULL, &why)) {
        it->result = OUT_CANNOT;
    } else if (r->o.dry_run) {
        it->result = redo                     ? OUT_PLAN_REDO
                     : how == LAYERS_TRANSFER ? OUT_PLAN_TRANSFER
                                              : OUT_PLAN_COPY;
        if (redo) {
            snprintf(note, sizeof(note), "an interrupted move is done again");
        }
    } else {
        it->result = move(r, it, how, note, sizeof(note));
    }
    if (it->result == OUT_CANNOT && note[0] == '\0') {
        char hint[400] = "";
        if (how == LAYERS_CANNOT && layers_attr_ulong(&it->head, CKA_CLASS, 0) != CKO_DATA) {
            rekey_hint(&r->side[0], it, hint, sizeof(hint));
        }
        snprintf(note, sizeof(note), "%s%s%s", why, hint[0] != '\0' ? "; " : "", hint);
    }
    r->counts[it->result]++;
    report(r, k, note[0] != '\0' ? note : NULL);
}

/* ---------------------------------------------------------------------
 * Retiring and the summary
 * ------------------------------------------------------------------ */

/* Whites out, in the view, every original now on the target. Returns how
 * many, or -1 (reported). */
static int retire(migrate_run *r)
{
    int n = 0;

    for (size_t k = 0; k < r->n_items; k++) {
        const mig_item *it = &r->items[k];
        storage_rc rc;
        if (it->result != OUT_MOVED && it->result != OUT_PRESENT) {
            continue;
        }
        rc = storage_whiteout_add(r->t.cat, r->t.token->label, r->o.view, r->o.from, it->identity,
                                  ID_LEN);
        if (rc != STORAGE_OK) {
            cli_error("cannot white out the originals: %s", storage_strerror(rc));
            return -1;
        }
        n++;
    }
    return n;
}

static void summary(const migrate_run *r, int retired)
{
    const unsigned *c = r->counts;

    if (r->tty) {
        printf("\r\033[K");
    }
    if (r->o.dry_run) {
        printf("plan (dry run, nothing changed): %u to copy, %u to transfer wrapped, %u to "
               "redo, %u already on '%s', %u cannot move, %u failed\n",
               c[OUT_PLAN_COPY], c[OUT_PLAN_TRANSFER], c[OUT_PLAN_REDO], c[OUT_PRESENT], r->o.to,
               c[OUT_CANNOT], c[OUT_FAILED]);
        return;
    }
    printf("moved %u, already there %u, cannot move %u, failed %u (layer '%s' to '%s', view "
           "'%s')\n",
           c[OUT_MOVED], c[OUT_PRESENT], c[OUT_CANNOT], c[OUT_FAILED], r->o.from, r->o.to,
           r->o.view);
    if (retired > 0) {
        printf("%d original%s whited out in view '%s'\n", retired, retired == 1 ? "" : "s",
               r->o.view);
    }
    if (c[OUT_CANNOT] == 0 && c[OUT_FAILED] == 0 && r->o.only == NULL) {
        printf("everything view '%s' shows of layer '%s' is on '%s'. To drop the layer: take "
               "it out of the layers of view '%s' in %s, run 'strata check', then 'strata "
               "forget-layer --token %s %s'\n",
               r->o.view, r->o.from, r->o.to, r->o.view, r->t.policy_path, r->t.token->label,
               r->o.from);
    }
}

/* Takes the lock that keeps two runs for the same view and target apart
 * (a second run waits, then finds everything present): the catalog's lock
 * of a credential (storage_cred_lock), named for no real layer. Returns 0
 * or -1 (reported). */
static int lock_run(migrate_run *r)
{
    char name[300];
    storage_rc rc;

    snprintf(name, sizeof(name), "migrate:%s", r->o.to);
    rc = storage_cred_lock(r->t.cat, r->t.token->label, r->o.view, name, &r->guard);
    if (rc != STORAGE_OK) {
        cli_error("cannot lock the migration: %s", storage_strerror(rc));
        return -1;
    }
    return 0;
}

static void run_free(migrate_run *r)
{
    close_sides(r);
    storage_cred_unlock(&r->guard);
    for (size_t k = 0; k < r->n_items; k++) {
        layers_attrs_free(&r->items[k].head);
    }
    free(r->items);
    rules_program_free(r->only);
    storage_login_free(r->login);
    cli_modules_free(&r->mods);
    cli_target_close(&r->t);
}

int cli_cmd_migrate(cli_global *g, int argc, char **argv)
{
    migrate_run r;
    int retired = 0;
    int rc;

    memset(&r, 0, sizeof(r));
    r.guard.fd = -1;
    rc = parse(g, argc, argv, &r.o);
    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    rc = CLI_EXIT_FAIL;
    r.tty = isatty(STDOUT_FILENO) == 1;
    if (cli_target_open(g, r.o.token, r.o.view, 0, &r.t) != 0 || check_layers(&r) != 0 ||
        cli_modules_init(&r.mods, r.t.policy) != 0 || view_login(&r) != 0 ||
        (!r.o.dry_run && lock_run(&r) != 0) || open_side(&r, 0) != 0 || open_side(&r, 1) != 0 ||
        collect(&r) != 0) {
        goto out;
    }
    printf("%s %zu object%s of layer '%s' to layer '%s' (view '%s')\n",
           r.o.dry_run ? "planning" : "moving", r.n_items, r.n_items == 1 ? "" : "s", r.o.from,
           r.o.to, r.o.view);
    fflush(stdout);
    for (size_t k = 0; k < r.n_items; k++) {
        process(&r, k);
    }
    if (r.o.retire) {
        retired = retire(&r);
    }
    summary(&r, retired);
    if (r.counts[OUT_FAILED] == 0 && retired >= 0) {
        rc = CLI_EXIT_OK;
    }
out:
    run_free(&r);
    return rc;
}
