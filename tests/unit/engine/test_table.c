/*
 * test_table.c - unit tests of engine/table.c's idtable: the open-addressing
 * table of entry numbers under the handle index and the find sets. Every
 * check compares the table with a plain array of what was added and not
 * removed, under hashes made to collide and to wrap around the end of the
 * slots, where backward-shift removal is easiest to get wrong.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/core.h"

#define IDS 5000

/* The records: the hash of id i is hashes[i]. */
typedef struct {
    uint64_t hashes[IDS + 1];
    bool present[IDS + 1];
    idtable t;
} records;

static uint64_t rehash(const void *owner, uint32_t id)
{
    return ((const records *)owner)->hashes[id];
}

/* Whether id shows up in the probe walk of its hash. */
static bool found(const records *r, uint32_t id)
{
    size_t c = idtable_begin(&r->t, r->hashes[id]);
    uint32_t n;

    while ((n = idtable_next(&r->t, &c)) != 0) {
        if (n == id) {
            return true;
        }
    }
    return false;
}

static void check_all(const records *r)
{
    size_t count = 0;

    for (uint32_t id = 1; id <= IDS; id++) {
        cr_assert_eq(found(r, id), r->present[id], "id %u: found %d, present %d", id, found(r, id),
                     r->present[id]);
        count += r->present[id] ? 1 : 0;
    }
    cr_assert_eq(r->t.count, count);
    cr_assert_leq(r->t.count * 4, (r->t.mask + 1) * 3, "more than 3/4 full");
}

static records *make(uint64_t (*hash)(uint32_t))
{
    records *r = calloc(1, sizeof(*r));

    cr_assert_not_null(r);
    for (uint32_t id = 1; id <= IDS; id++) {
        r->hashes[id] = hash(id);
    }
    return r;
}

static void add(records *r, uint32_t id)
{
    cr_assert_eq(idtable_add(&r->t, id, r->hashes[id], rehash, r), CKR_OK);
    r->present[id] = true;
}

static void del(records *r, uint32_t id)
{
    idtable_remove(&r->t, id, r->hashes[id], rehash, r);
    r->present[id] = false;
}

static void finish(records *r)
{
    idtable_clear(&r->t);
    cr_assert_null(r->t.slots);
    cr_assert_eq(r->t.count, 0);
    free(r);
}

static uint64_t spread(uint32_t id)
{
    return table_hash_u64(id, 3);
}

static uint64_t crowded(uint32_t id)
{
    return id % 7; /* long runs sharing a few home slots */
}

static uint64_t at_the_end(uint32_t id)
{
    return UINT64_MAX - (id % 5); /* home slots at the end: runs wrap to slot 0 */
}

Test(idtable_add, finds_every_id_and_no_other)
{
    records *r = make(spread);

    for (uint32_t id = 1; id <= IDS; id += 2) {
        add(r, id);
    }
    check_all(r);
    cr_assert_eq(r->t.count, IDS / 2);
    finish(r);
}

Test(idtable_add, grows_to_keep_a_quarter_empty)
{
    records *r = make(spread);
    size_t last = 0;

    for (uint32_t id = 1; id <= IDS; id++) {
        add(r, id);
        cr_assert_leq(r->t.count * 4, (r->t.mask + 1) * 3);
        cr_assert_geq(r->t.mask, last, "the table shrank");
        last = r->t.mask;
    }
    cr_assert_eq(r->t.mask + 1, 8192, "5000 ids: 8192 slots, got %zu", r->t.mask + 1);
    finish(r);
}

Test(idtable_next, on_an_empty_table_ends_at_once)
{
    idtable t = {0};
    size_t c = idtable_begin(&t, 12345);

    cr_assert_eq(idtable_next(&t, &c), 0);
    idtable_remove(&t, 1, 12345, rehash, NULL); /* a no-op, not a crash */
    cr_assert_eq(t.count, 0);
}

/* Adds everything, then removes and re-adds in a pseudo-random order,
 * checking the whole table after each step. */
static void churn(uint64_t (*hash)(uint32_t))
{
    records *r = make(hash);
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    for (uint32_t id = 1; id <= 600; id++) {
        add(r, id);
    }
    check_all(r);
    for (int step = 0; step < 1500; step++) {
        uint32_t id;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id = (uint32_t)(x % 600) + 1;
        if (r->present[id]) {
            del(r, id);
        } else {
            add(r, id);
        }
        if (step % 50 == 0) {
            check_all(r);
        }
    }
    check_all(r);
    for (uint32_t id = 1; id <= 600; id++) {
        del(r, id);
    }
    check_all(r);
    cr_assert_eq(r->t.count, 0);
    for (size_t i = 0; i <= r->t.mask; i++) {
        cr_assert_eq(r->t.slots[i], 0, "slot %zu left behind", i);
    }
    finish(r);
}

Test(idtable_remove, keeps_every_other_id_reachable)
{
    churn(spread);
}

Test(idtable_remove, keeps_long_collision_runs_reachable)
{
    churn(crowded);
}

Test(idtable_remove, keeps_runs_that_wrap_around_reachable)
{
    churn(at_the_end);
}

Test(idtable_remove, of_an_absent_id_changes_nothing)
{
    records *r = make(crowded);

    for (uint32_t id = 1; id <= 100; id++) {
        add(r, id);
    }
    idtable_remove(&r->t, 4000, r->hashes[4000], rehash, r);
    check_all(r);
    cr_assert_eq(r->t.count, 100);
    finish(r);
}
