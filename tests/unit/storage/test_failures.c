/*
 * test_failures.c - storage/failures.c: the administrator's unlock and
 * its audit row.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "helpers.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_failures, .init = setup, .fini = teardown);

Test(storage_failures, storage_token_unlock_clears_and_audits_unlock)
{
    storage_catalog *cat = helper_open(&w);
    unsigned count = 0, cleared = 99;

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(storage_login_failed(cat, "Strata", &count), STORAGE_OK);
    }
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_token_unlock(cat, "Strata", &cleared), STORAGE_OK);
    cr_assert_eq(cleared, 3);
    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    /* at zero, and for an unknown token, the unlock is still audited */
    cr_assert_eq(storage_token_unlock(cat, "Strata", &cleared), STORAGE_OK);
    cr_assert_eq(cleared, 0);
    cr_assert_eq(storage_token_unlock(cat, "Other", NULL), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'unlock'"), 3);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'unlock'"
                                       " AND subject = 'Strata' AND outcome LIKE 'ok (3 %'"),
                 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action <> 'unlock'"), 0);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM tokens WHERE label = 'Other'"), 0);
}

Test(storage_failures, storage_token_unlock_bad_arguments_and_read_only)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(storage_token_unlock(NULL, "Strata", NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_token_unlock(cat, "", NULL), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                 STORAGE_OK);
    cr_assert_eq(storage_token_unlock(cat, "Strata", NULL), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}

Test(storage_failures, storage_guess_reserve_stops_at_the_limit)
{
    storage_catalog *cat = helper_open(&w);
    unsigned count = 99;

    for (unsigned i = 1; i <= 3; i++) {
        cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 0, &count),
                     STORAGE_OK);
        cr_assert_eq(count, i);
    }
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 0, &count),
                 STORAGE_ERR_LOCKED);
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_pin_failures(cat, "Strata", STORAGE_PIN_USER, &count), STORAGE_OK);
    cr_assert_eq(count, 3, "a refused reservation writes nothing");
    cr_assert_eq(storage_pin_failures(cat, "Strata", STORAGE_PIN_SO, &count), STORAGE_OK);
    cr_assert_eq(count, 0, "the SO counter is apart");
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_SO, 3, 0, &count), STORAGE_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 0, 0, NULL),
                 STORAGE_ERR_ARGS);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", (storage_pin_kind)7, 3, 0, NULL),
                 STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

Test(storage_failures, storage_guess_settle_gives_back_or_clears)
{
    storage_catalog *cat = helper_open(&w);
    unsigned count = 0;

    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 9, 0, NULL), STORAGE_OK);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 9, 0, NULL), STORAGE_OK);
    cr_assert_eq(storage_guess_settle(cat, "Strata", STORAGE_PIN_USER, false), STORAGE_OK);
    cr_assert_eq(storage_pin_failures(cat, "Strata", STORAGE_PIN_USER, &count), STORAGE_OK);
    cr_assert_eq(count, 1, "one guess given back");
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 9, 0, NULL), STORAGE_OK);
    cr_assert_eq(storage_guess_settle(cat, "Strata", STORAGE_PIN_USER, true), STORAGE_OK);
    cr_assert_eq(storage_pin_failures(cat, "Strata", STORAGE_PIN_USER, &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(storage_guess_settle(cat, "Strata", STORAGE_PIN_USER, false), STORAGE_OK);
    cr_assert_eq(storage_pin_failures(cat, "Strata", STORAGE_PIN_USER, &count), STORAGE_OK);
    cr_assert_eq(count, 0, "never below zero");
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'reset-failures'"
                                       " AND outcome LIKE 'ok (1 %'"),
                 1, "the other failure cleared is audited");
}

/* Runs sql (a change) on a fresh connection to the catalog. */
static void exec_sql(const char *sql)
{
    sqlite3 *db = NULL;

    cr_assert_eq(sqlite3_open(w.catalog, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sql);
    sqlite3_close(db);
}

/* Moves the users' counter stamp by delta seconds (negative: time went
 * by; positive: the clock now reads earlier than the stamp). */
static void shift_stamp(long long delta)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "UPDATE tokens SET failed_at = failed_at + (%lld)", delta);
    exec_sql(sql);
}

/* One failure expires per recovery interval since the stamp; the
 * reservation then finds room again, and the stamp moves on by the
 * intervals used, not to now. */
Test(storage_failures, storage_guess_reserve_failures_expire_per_interval)
{
    storage_catalog *cat = helper_open(&w);
    storage_pin_count c;
    unsigned count = 0;

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL),
                     STORAGE_OK);
    }
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL),
                 STORAGE_ERR_LOCKED);
    cr_assert_eq(storage_pin_counter(cat, "Strata", STORAGE_PIN_USER, 60, &c), STORAGE_OK);
    cr_assert_eq(c.failures, 3);
    cr_assert_geq(c.next_expiry, c.now + 59);
    cr_assert_not(c.clock_behind);
    shift_stamp(-61); /* one interval went by */
    cr_assert_eq(storage_pin_counter(cat, "Strata", STORAGE_PIN_USER, 60, &c), STORAGE_OK);
    cr_assert_eq(c.failures, 2);
    cr_assert_eq(storage_pin_counter(cat, "Strata", STORAGE_PIN_USER, 0, &c), STORAGE_OK);
    cr_assert_eq(c.failures, 3, "recovery 0: nothing expires");
    cr_assert_eq(c.next_expiry, 0);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, &count), STORAGE_OK);
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL),
                 STORAGE_ERR_LOCKED, "one guess per interval");
    shift_stamp(-10 * 60);
    cr_assert_eq(storage_pin_counter(cat, "Strata", STORAGE_PIN_USER, 60, &c), STORAGE_OK);
    cr_assert_eq(c.failures, 0, "every failure expired");
    storage_catalog_close(cat);
}

/* A clock set back (the stamp later than now) never expires anything, and
 * a new failure does not move the stamp back. */
Test(storage_failures, storage_guess_reserve_clock_set_back_expires_nothing)
{
    storage_catalog *cat = helper_open(&w);
    storage_pin_count c;

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL),
                     STORAGE_OK);
    }
    shift_stamp(86400); /* the clock now reads a day earlier than the stamp */
    cr_assert_eq(storage_pin_counter(cat, "Strata", STORAGE_PIN_USER, 60, &c), STORAGE_OK);
    cr_assert_eq(c.failures, 2);
    cr_assert(c.clock_behind);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL), STORAGE_OK);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 60, NULL),
                 STORAGE_ERR_LOCKED);
    cr_assert_geq(helper_int(w.catalog, "SELECT failed_at FROM tokens") -
                      helper_int(w.catalog, "SELECT CAST(strftime('%s', 'now') AS INTEGER)"),
                  86400 - 5, "the stamp stays ahead");
    storage_catalog_close(cat);
}

Test(storage_failures, storage_guess_reserve_read_only_is_refused)
{
    storage_catalog *cat = helper_open(&w);

    storage_catalog_close(cat);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                 STORAGE_OK);
    cr_assert_eq(storage_guess_reserve(cat, "Strata", STORAGE_PIN_USER, 3, 0, NULL),
                 STORAGE_ERR_READ_ONLY);
    cr_assert_eq(storage_pin_unlock(cat, "Strata", STORAGE_PIN_SO, NULL), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}
