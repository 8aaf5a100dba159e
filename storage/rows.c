/*
 * rows.c - the rows one query gives for a virtual token, read into an
 * array in one snapshot: the storage_*_list functions (views, layer
 * credentials, left-out layers, provisioned tokens) read with it, then
 * call their callbacks with no lock held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct rows_ctx {
    const char *sql;
    const char *token;
    size_t size;           /* bytes of one item */
    catalog_row_fill fill; /* fills one item from the current row */
    char *items;           /* malloc'd, n used, cap allocated */
    size_t n, cap;
};

/* Makes room for one more item. STORAGE_OK or STORAGE_ERR_NOMEM (items
 * unchanged). */
static storage_rc rows_grow(struct rows_ctx *c)
{
    size_t cap = c->cap > 0 ? c->cap * 2 : 8;
    char *more;

    if (c->n < c->cap) {
        return STORAGE_OK;
    }
    more = realloc(c->items, cap * c->size);
    if (more == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    c->items = more;
    c->cap = cap;
    return STORAGE_OK;
}

static storage_rc rows_txn(storage_catalog *cat, void *ctx)
{
    struct rows_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int step = SQLITE_DONE;
    storage_rc rc = catalog_prepare_locked(cat, c->sql, &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        char *item;

        rc = rows_grow(c);
        if (rc != STORAGE_OK) {
            goto out;
        }
        item = c->items + c->n * c->size;
        memset(item, 0, c->size);
        rc = c->fill(st, item);
        if (rc != STORAGE_OK) {
            goto out;
        }
        c->n++;
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* See internal.h. */
storage_rc catalog_rows_read(storage_catalog *cat, const char *sql, const char *token, size_t size,
                             catalog_row_fill fill, void **items, size_t *n)
{
    struct rows_ctx c = {.sql = sql, .token = token, .size = size, .fill = fill};
    storage_rc rc = catalog_read(cat, rows_txn, &c);

    if (rc != STORAGE_OK) {
        free(c.items);
        c.items = NULL;
        c.n = 0;
    }
    *items = c.items;
    *n = c.n;
    return rc;
}
