/*
 * provisioned.c - the backend tokens this catalog provisioned for lazy
 * layers, as the backends show them now (strata tokens lists them and
 * removes orphans; strata status reports those that need attention).
 *
 * Which tokens are this catalog's: those its provisioning rows name, by
 * their label (the policy's label with this catalog's mark, storage/
 * identity.c) and serial. A token with a row's marked label and another
 * serial is an orphan this catalog made (a crash inside the backend's
 * C_InitToken, or a token the backend lost and showed again after it was
 * made anew). A token without this catalog's mark is never listed as the
 * catalog's and never called an orphan: it may be another user's. The
 * one exception is the token at the row's serial: when it now carries
 * another label (another catalog's mark, or none), the view's token was
 * initialised again by someone else, and the listing says so (foreign).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MARK_LEN 9 /* '#' and 8 hex digits (storage/identity.c) */

static int add(cli_prov_list *l, const cli_prov_item *item)
{
    cli_prov_item *grown = realloc(l->items, (l->n + 1) * sizeof(*grown));

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
    cli_prov_list *out;
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

/* Whether label ends in a catalog's mark ('#' and 8 hex digits). */
static bool has_mark(const char *label)
{
    size_t n = strlen(label);

    if (n < MARK_LEN || label[n - MARK_LEN] != '#') {
        return false;
    }
    for (size_t i = n - MARK_LEN + 1; i < n; i++) {
        if (!isxdigit((unsigned char)label[i])) {
            return false;
        }
    }
    return true;
}

/* The one initialised token with serial (none when several share it: a
 * serial is then no identity, as on tpm2-pkcs11), or NULL. */
static const layers_slot_info *by_serial(const layers_slot_info *slots, size_t n,
                                         const char *serial)
{
    const layers_slot_info *found = NULL;
    size_t hits = 0;

    for (size_t i = 0; i < n; i++) {
        if (slots[i].token_present && slots[i].initialized &&
            strcmp(slots[i].serial, serial) == 0) {
            found = &slots[i];
            hits++;
        }
    }
    return hits == 1 ? found : NULL;
}

/* The row's token is not there: pending (none made yet), foreign (its
 * serial now carries another label) or missing. */
static void classify_absent(const layers_slot_info *slots, size_t n, cli_prov_item *item)
{
    const layers_slot_info *other =
        item->row.serial[0] != '\0' ? by_serial(slots, n, item->row.serial) : NULL;

    snprintf(item->serial, sizeof(item->serial), "%s", item->row.serial);
    if (item->row.serial[0] == '\0') {
        item->kind = CLI_PROV_PENDING;
    } else if (other != NULL) {
        item->kind = CLI_PROV_FOREIGN;
        snprintf(item->label, sizeof(item->label), "%s", other->label);
    } else {
        item->kind = CLI_PROV_MISSING;
    }
}

/* Adds the lines of one row: its token (or why there is none) and the
 * orphans beside it. A storage_provisions_list callback. */
static void scan_row(void *ctx, const storage_provision_info *row)
{
    scan_ctx *c = ctx;
    const rules_layer *l = rules_policy_layer(c->mods->policy, row->layer);
    const char *why = "";
    layers_slot_info *slots = NULL;
    cli_prov_item item = {.token = c->token, .row = *row, .kind = CLI_PROV_PENDING};
    bool marked = row_marked(c->cat, c->token, row), seen = false;
    size_t n = 0;

    item.view_in_policy = rules_token_view(c->token, row->view) != NULL;
    if (l == NULL || cli_modules_slots(c->mods, l->module_id, &slots, &n, &why) != 0) {
        item.kind = CLI_PROV_UNKNOWN;
        snprintf(item.note, sizeof(item.note), "%s",
                 l == NULL ? "layer not in the policy" : "module cannot be asked");
        snprintf(item.serial, sizeof(item.serial), "%s", row->serial);
        add(c->out, &item);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const layers_slot_info *s = &slots[i];
        if (!s->token_present || !s->initialized || strcmp(s->label, row->label) != 0) {
            continue;
        }
        snprintf(item.serial, sizeof(item.serial), "%s", s->serial);
        snprintf(item.label, sizeof(item.label), "%s", s->label);
        if (row->serial[0] != '\0' && strcmp(s->serial, row->serial) == 0 && !seen) {
            item.kind = row->state == STORAGE_PROV_READY ? CLI_PROV_READY : CLI_PROV_PENDING;
            seen = true;
        } else if (marked && (row->serial[0] != '\0' || row->state == STORAGE_PROV_READY)) {
            item.kind = CLI_PROV_ORPHAN;
        } else {
            continue; /* unmarked: maybe another catalog's; or the pending row's own */
        }
        add(c->out, &item);
    }
    if (!seen) {
        item.label[0] = '\0';
        classify_absent(slots, n, &item);
        add(c->out, &item);
    }
    free(slots);
}

/* See cli.h. */
int cli_prov_list_load(cli_modules *mods, storage_catalog *cat, const rules_token *tok,
                       cli_prov_list *out)
{
    scan_ctx c = {out, mods, cat, tok};

    if (cat == NULL) {
        return 0;
    }
    if (storage_provisions_list(cat, tok->label, scan_row, &c) != STORAGE_OK || out->failed) {
        cli_error("token '%s': cannot list its provisioned tokens", tok->label);
        return -1;
    }
    return 0;
}

void cli_prov_list_free(cli_prov_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

const char *cli_prov_kind_name(cli_prov_kind kind)
{
    switch (kind) {
    case CLI_PROV_READY:
        return "ready";
    case CLI_PROV_PENDING:
        return "pending";
    case CLI_PROV_MISSING:
        return "missing";
    case CLI_PROV_ORPHAN:
        return "orphaned";
    case CLI_PROV_FOREIGN:
        return "foreign";
    case CLI_PROV_UNKNOWN:
        break;
    }
    return "unknown";
}

/* See cli.h. */
const char *cli_prov_text(const cli_prov_item *item, char *buf, size_t size)
{
    const char *text = "";

    switch (item->kind) {
    case CLI_PROV_READY:
        text = "ready (the view's token)";
        break;
    case CLI_PROV_PENDING:
        text = item->row.state == STORAGE_PROV_WAITING ? "pending (waiting for a free slot)"
               : item->row.claimed                     ? "pending (being provisioned now)"
                                                       : "pending (the next login finishes it)";
        break;
    case CLI_PROV_MISSING:
        text = "missing (the backend does not show it; the next login makes it again)";
        break;
    case CLI_PROV_ORPHAN:
        text = "orphaned (not the view's token; strata tokens --remove SERIAL)";
        break;
    case CLI_PROV_FOREIGN:
        snprintf(buf, size,
                 "foreign (the view's token was initialised again: it is labelled '%s', %s)",
                 item->label, has_mark(item->label) ? "another catalog's mark" : "without a mark");
        return buf;
    case CLI_PROV_UNKNOWN:
        text = item->note;
        break;
    }
    if (!item->view_in_policy) {
        snprintf(buf, size, "%s; its view is no longer in the policy", text);
        return buf;
    }
    return text;
}

/* See cli.h. */
bool cli_prov_removable(const cli_prov_item *item)
{
    if (item->kind == CLI_PROV_ORPHAN) {
        return true;
    }
    return !item->view_in_policy && item->serial[0] != '\0' &&
           (item->kind == CLI_PROV_READY || item->kind == CLI_PROV_PENDING);
}

/* See cli.h. */
const char *cli_prov_attention(const cli_prov_item *item)
{
    if (!item->view_in_policy) { /* no login of its view repairs it */
        return item->serial[0] != '\0' && item->kind != CLI_PROV_MISSING &&
                       item->kind != CLI_PROV_FOREIGN
                   ? "viewless-token"
                   : NULL;
    }
    switch (item->kind) {
    case CLI_PROV_ORPHAN:
        return "orphaned-token";
    case CLI_PROV_FOREIGN:
        return "foreign-token";
    case CLI_PROV_MISSING:
        return "missing-token";
    case CLI_PROV_PENDING:
        return item->row.claimed ? NULL : "pending-token";
    case CLI_PROV_READY:
    case CLI_PROV_UNKNOWN:
        break;
    }
    return NULL;
}
