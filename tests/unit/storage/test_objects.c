/*
 * test_objects.c - storage/objects.c: stable virtual handles (single and
 * batch, across reopen and across processes), loading, forgetting,
 * whiteouts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "storage.h"
#include "world.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_objects, .init = setup, .fini = teardown);

static storage_catalog *open_cat(unsigned flags)
{
    storage_catalog *cat = NULL;
    char err[512];
    storage_rc rc = storage_catalog_open(w.catalog, flags, &cat, err, sizeof(err));

    cr_assert_eq(rc, STORAGE_OK, "%s", err);
    return cat;
}

static CK_OBJECT_HANDLE handle(storage_catalog *cat, const char *token, const char *layer,
                               const char *id)
{
    CK_OBJECT_HANDLE h = 12345;
    storage_rc rc = storage_object_handle(cat, token, layer, id, strlen(id), &h);

    cr_assert_eq(rc, STORAGE_OK, "%s/%s/%s: %s", token, layer, id, storage_strerror(rc));
    return h;
}

/* A fresh handle: in [1, 0x7fffffff]. */
static CK_OBJECT_HANDLE fresh(storage_catalog *cat, const char *token, const char *layer,
                              const char *id)
{
    CK_OBJECT_HANDLE h = handle(cat, token, layer, id);

    cr_assert(h >= 1 && h <= 0x7fffffffUL, "%s/%s/%s: %#lx", token, layer, id, h);
    return h;
}

Test(storage_objects, storage_object_handle_random_and_kept)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    CK_OBJECT_HANDLE k1 = fresh(cat, "T", "personal", "key-1");
    CK_OBJECT_HANDLE k2 = fresh(cat, "T", "personal", "key-2");
    CK_OBJECT_HANDLE g1 = fresh(cat, "T", "group", "key-1");
    CK_OBJECT_HANDLE u1 = fresh(cat, "U", "personal", "key-1");

    cr_assert(k1 != k2 && k1 != g1 && k2 != g1, "same identity, other layer: another handle");
    cr_assert(k2 != k1 + 1 || g1 != k2 + 1, "handles counted up");
    cr_assert_neq(u1, k1, "each token draws on its own");
    cr_assert_eq(handle(cat, "T", "personal", "key-1"), k1);
    storage_catalog_close(cat);

    cat = open_cat(0);
    cr_assert_eq(handle(cat, "T", "group", "key-1"), g1);
    cr_assert_eq(handle(cat, "T", "personal", "key-2"), k2);
    cr_assert_eq(handle(cat, "U", "personal", "key-1"), u1);
    storage_catalog_close(cat);
}

/* A catalog that counted handles from 1 (tokens.next_handle) never has a
 * number below its counter drawn again: those were bound before. */
Test(storage_objects, storage_object_handle_above_old_counter)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);

    fresh(cat, "T", "l", "a");
    storage_catalog_close(cat);
    cr_assert_eq(world_sh("sqlite3 '%s' \"UPDATE tokens SET next_handle = 1073741824\"", w.catalog),
                 0);
    cat = open_cat(0);
    for (int i = 0; i < 32; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%d", i);
        cr_assert_geq(fresh(cat, "T", "l", id), 1073741824UL);
    }
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_handle_binary_identity)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    const unsigned char a[] = {0x00, 0x01, 0x00, 0xff};
    const unsigned char b[] = {0x00, 0x01, 0x00, 0xfe};
    CK_OBJECT_HANDLE ha, hb, again;

    cr_assert_eq(storage_object_handle(cat, "T", "l", a, sizeof(a), &ha), STORAGE_OK);
    cr_assert_eq(storage_object_handle(cat, "T", "l", b, sizeof(b), &hb), STORAGE_OK);
    cr_assert_eq(storage_object_handle(cat, "T", "l", a, sizeof(a), &again), STORAGE_OK);
    cr_assert_neq(ha, hb);
    cr_assert_eq(ha, again);
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_handles_batch_agrees_with_single)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    const char *ids[] = {"a", "b", "c", "b", "d"};
    size_t lens[] = {1, 1, 1, 1, 1};
    CK_OBJECT_HANDLE hs[5], again[5], c = fresh(cat, "T", "l", "c");

    cr_assert_eq(storage_object_handles(cat, "T", "l", (const void *const *)ids, lens, 5, hs),
                 STORAGE_OK);
    cr_assert_eq(hs[2], c, "known identity keeps its handle");
    cr_assert_eq(hs[3], hs[1], "a repeated identity gets one handle");
    cr_assert(hs[0] != hs[1] && hs[0] != hs[2] && hs[0] != hs[4] && hs[1] != hs[2] &&
              hs[1] != hs[4] && hs[2] != hs[4]);
    for (int i = 0; i < 5; i++) {
        cr_assert(hs[i] >= 1 && hs[i] <= 0x7fffffffUL);
        cr_assert_eq(handle(cat, "T", "l", ids[i]), hs[i]);
    }
    cr_assert_eq(storage_object_handles(cat, "T", "l", (const void *const *)ids, lens, 5, again),
                 STORAGE_OK);
    cr_assert_eq(memcmp(hs, again, sizeof(hs)), 0);
    cr_assert_eq(storage_object_handles(cat, "T", "l", NULL, NULL, 0, NULL), STORAGE_OK);
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_handle_bad_arguments)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    CK_OBJECT_HANDLE h;
    const char *ids[] = {"a", NULL};
    size_t lens[] = {1, 1};

    cr_assert_eq(storage_object_handle(cat, "T", "l", "", 0, &h), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_object_handle(cat, "T", "l", NULL, 1, &h), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_object_handle(cat, "T", "", "a", 1, &h), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_object_handle(cat, NULL, "l", "a", 1, &h), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_object_handle(cat, "T", "l", "a", 1, NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_object_handles(cat, "T", "l", (const void *const *)ids, lens, 2,
                                        (CK_OBJECT_HANDLE[2]){0}),
                 STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_forget_never_reuses_handle)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    CK_OBJECT_HANDLE a = fresh(cat, "T", "l", "a"), b = fresh(cat, "T", "l", "b"), b2;

    cr_assert_eq(storage_object_forget(cat, "T", "l", "b", 1), STORAGE_OK);
    cr_assert_eq(storage_object_forget(cat, "T", "l", "b", 1), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_object_forget(cat, "X", "l", "b", 1), STORAGE_ERR_NOT_FOUND);
    b2 = fresh(cat, "T", "l", "b");
    cr_assert(b2 != b && b2 != a, "a forgotten identity comes back new");
    cr_assert_eq(world_sh("test \"$(sqlite3 '%s' \"SELECT count(*) FROM objects WHERE handle ="
                          " %lu\")\" = 1",
                          w.catalog, b),
                 0, "the forgotten handle stays bound (its tombstone)");
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_rename_keeps_handle)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    CK_OBJECT_HANDLE a = fresh(cat, "T", "l", "a"), c = fresh(cat, "T", "l", "c");

    cr_assert_eq(storage_object_rename(cat, "T", "l", "a", 1, "b", 1), STORAGE_OK);
    cr_assert_eq(handle(cat, "T", "l", "b"), a);
    cr_assert_neq(fresh(cat, "T", "l", "a"), a, "the old identity no longer names it");
    cr_assert_eq(storage_object_rename(cat, "T", "l", "b", 1, "c", 1), STORAGE_ERR_EXISTS);
    cr_assert_eq(handle(cat, "T", "l", "c"), c);
    cr_assert_eq(storage_object_rename(cat, "T", "l", "zz", 2, "y", 1), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_object_rename(cat, "T", "", "b", 1, "y", 1), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

struct collected {
    char text[512];
    size_t n;
};

static void collect(void *ctx, const char *layer, const void *identity, size_t len,
                    CK_OBJECT_HANDLE h)
{
    struct collected *c = ctx;
    size_t used = strlen(c->text);

    snprintf(c->text + used, sizeof(c->text) - used, "%s/%.*s=%lu ", layer, (int)len,
             (const char *)identity, (unsigned long)h);
    c->n++;
}

Test(storage_objects, storage_objects_load_streams_all)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    struct collected c = {"", 0};

    handle(cat, "T", "personal", "k1");
    handle(cat, "T", "group", "k2");
    handle(cat, "T", "personal", "k3");
    handle(cat, "U", "personal", "other");
    storage_catalog_close(cat);

    cat = open_cat(STORAGE_OPEN_READ_ONLY);
    cr_assert_eq(storage_objects_load(cat, "T", collect, &c), STORAGE_OK);
    cr_assert_eq(c.n, 3);
    cr_assert(strstr(c.text, "personal/k1=") && strstr(c.text, "group/k2=") &&
                  strstr(c.text, "personal/k3="),
              "%s", c.text);
    c.text[0] = '\0';
    c.n = 0;
    cr_assert_eq(storage_objects_load(cat, "Nobody", collect, &c), STORAGE_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(storage_objects_load(cat, "T", NULL, &c), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

/* fn may call back into storage: no lock is held while it runs. */
static void reenter(void *ctx, const char *layer, const void *identity, size_t len,
                    CK_OBJECT_HANDLE h)
{
    storage_catalog *cat = ctx;
    CK_OBJECT_HANDLE again = 0;

    cr_assert_eq(storage_object_handle(cat, "T", layer, identity, len, &again), STORAGE_OK);
    cr_assert_eq(again, h);
    cr_assert_eq(storage_object_handle(cat, "T", "new", identity, len, &again), STORAGE_OK);
}

Test(storage_objects, storage_objects_load_callback_may_reenter)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);

    handle(cat, "T", "l", "a");
    handle(cat, "T", "l", "b");
    cr_assert_eq(storage_objects_load(cat, "T", reenter, cat), STORAGE_OK);
    cr_assert_eq(handle(cat, "T", "new", "b"), handle(cat, "T", "new", "b"));
    cr_assert_neq(handle(cat, "T", "new", "b"), handle(cat, "T", "l", "b"));
    storage_catalog_close(cat);
}

Test(storage_objects, storage_object_handle_read_only_catalog)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    CK_OBJECT_HANDLE h = 7, known = fresh(cat, "T", "l", "known");

    storage_catalog_close(cat);
    cat = open_cat(STORAGE_OPEN_READ_ONLY);
    cr_assert_eq(handle(cat, "T", "l", "known"), known);
    cr_assert_eq(storage_object_handle(cat, "T", "l", "unknown", 7, &h), STORAGE_ERR_READ_ONLY);
    cr_assert_eq(h, CK_INVALID_HANDLE);
    cr_assert_eq(storage_object_forget(cat, "T", "l", "known", 5), STORAGE_ERR_READ_ONLY);
    cr_assert_eq(storage_whiteout_add(cat, "T", "v", "l", "known", 5), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}

Test(storage_objects, storage_whiteouts_round_trip)
{
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    struct collected c = {"", 0};
    CK_OBJECT_HANDLE shared = fresh(cat, "T", "group", "shared-key");
    char want[96];
    cr_assert_eq(storage_whiteout_add(cat, "T", "work", "group", "shared-key", 10), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "T", "work", "group", "shared-key", 10), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "T", "work", "group", "unseen", 6), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "T", "anon", "group", "other", 5), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "T", "work", "group", "x", 0), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);

    cat = open_cat(0);
    cr_assert_eq(storage_whiteouts_load(cat, "T", "work", collect, &c), STORAGE_OK);
    cr_assert_eq(c.n, 2);
    snprintf(want, sizeof(want), "group/shared-key=%lu group/unseen=0 ", (unsigned long)shared);
    cr_assert_str_eq(c.text, want);
    c.text[0] = '\0';
    c.n = 0;
    cr_assert_eq(storage_whiteouts_load(cat, "T", "anon", collect, &c), STORAGE_OK);
    cr_assert_str_eq(c.text, "group/other=0 ");
    c.text[0] = '\0';
    c.n = 0;
    cr_assert_eq(storage_whiteouts_load(cat, "T", "nobody", collect, &c), STORAGE_OK);
    cr_assert_eq(c.n, 0);
    storage_catalog_close(cat);
}

#define CHILDREN 4
#define SHARED   60 /* identities every child asks for */
#define OWN      40 /* identities only one child asks for */

/* One child: waits for the start signal, then asks for the shared
 * identities (in its own order) and its own ones, one call each, and
 * writes "name handle" lines to out. Exits 0, or 10 + the storage_rc. */
static void child(int index, int go, int out)
{
    storage_catalog *cat = NULL;
    char byte, id[32], line[64];
    CK_OBJECT_HANDLE h;
    storage_rc rc;

    rc = storage_catalog_open(w.catalog, 0, &cat, NULL, 0);
    if (rc != STORAGE_OK) {
        _exit(10 + rc);
    }
    if (read(go, &byte, 1) != 0) {
        _exit(2);
    }
    for (int i = 0; i < SHARED + OWN; i++) {
        if (i < SHARED) {
            snprintf(id, sizeof(id), "shared-%d", (i * (index + 1) * 7) % SHARED);
        } else {
            snprintf(id, sizeof(id), "own-%d-%d", index, i);
        }
        rc = storage_object_handle(cat, "T", "l", id, strlen(id), &h);
        if (rc != STORAGE_OK) {
            _exit(10 + rc);
        }
        int n = snprintf(line, sizeof(line), "%s %lu\n", id, (unsigned long)h);
        if (write(out, line, (size_t)n) != n) {
            _exit(3);
        }
    }
    storage_catalog_close(cat);
    _exit(0);
}

struct seen {
    char names[CHILDREN * (SHARED + OWN)][32];
    CK_OBJECT_HANDLE handles[CHILDREN * (SHARED + OWN)];
    size_t n;
};

static void load_seen(void *ctx, const char *layer, const void *identity, size_t len,
                      CK_OBJECT_HANDLE h)
{
    struct seen *s = ctx;

    cr_assert(s->n < CHILDREN * (SHARED + OWN));
    snprintf(s->names[s->n], sizeof(s->names[0]), "%.*s", (int)len, (const char *)identity);
    s->handles[s->n++] = h;
}

Test(storage_objects, storage_object_handle_two_processes_at_once)
{
    static struct seen seen;
    storage_catalog *cat = open_cat(STORAGE_OPEN_CREATE);
    int go[2], out[CHILDREN][2], status;
    pid_t pids[CHILDREN];

    storage_catalog_close(cat); /* no connection crosses fork() */
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < CHILDREN; i++) {
        cr_assert_eq(pipe(out[i]), 0);
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            close(go[1]);
            close(out[i][0]);
            child(i, go[0], out[i][1]);
        }
        close(out[i][1]);
    }
    close(go[0]);
    close(go[1]); /* start: every child's read returns 0 now */

    cat = open_cat(0);
    for (int i = 0; i < CHILDREN; i++) {
        char buf[8192];
        size_t used = 0;
        ssize_t got;

        while ((got = read(out[i][0], buf + used, sizeof(buf) - 1 - used)) > 0) {
            used += (size_t)got;
        }
        buf[used] = '\0';
        close(out[i][0]);
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d exit %d", i,
                  WEXITSTATUS(status));
        /* what each child was told is what the catalog says */
        for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            char name[32];
            unsigned long h;
            cr_assert_eq(sscanf(line, "%31s %lu", name, &h), 2);
            cr_assert_eq(handle(cat, "T", "l", name), h, "%s", name);
        }
    }
    cr_assert_eq(storage_objects_load(cat, "T", load_seen, &seen), STORAGE_OK);
    cr_assert_eq(seen.n, SHARED + CHILDREN * OWN);
    for (size_t i = 0; i < seen.n; i++) {
        cr_assert(seen.handles[i] >= 1 && seen.handles[i] <= 0x7fffffffUL, "handle in range");
        cr_assert(i == 0 || seen.handles[i] > seen.handles[i - 1], "handles distinct");
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(seen.handles[i], seen.handles[j], "%s and %s", seen.names[i],
                          seen.names[j]);
        }
    }
    storage_catalog_close(cat);
}
