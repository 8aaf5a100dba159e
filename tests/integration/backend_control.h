/*
 * backend_control.h - steering the test backend A through its control
 * file (tests/backend/backend.c: faults, a token that leaves and comes
 * back, a call that blocks), shared by test_faults.c and test_wait.c
 * (header-only; each binary includes it once).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_BACKEND_CONTROL_H
#define STRATA_TEST_BACKEND_CONTROL_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

static char control_path[PATH_MAX + 16];
static unsigned control_generation;

static inline void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}

/* Replaces backend A's control file at once (a reader never sees half of
 * it); each content is new, so fault counts start again. */
static inline void control(const char *text)
{
    char tmp[PATH_MAX + 32], body[4608];

    snprintf(tmp, sizeof(tmp), "%s.tmp", control_path);
    snprintf(body, sizeof(body), "gen = %u\n%s", ++control_generation, text);
    write_file(tmp, body);
    cr_assert_eq(rename(tmp, control_path), 0);
}

#endif /* STRATA_TEST_BACKEND_CONTROL_H */
