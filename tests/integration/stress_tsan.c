/*
 * stress_tsan.c - runs the body of test_stress.c without criterion's
 * runner, for ThreadSanitizer: criterion cannot start under TSan ("Could
 * not initialize inheritable arena"), so its assertion macros are mapped
 * here to plain checks that count failures. Built only with
 * -Db_sanitize=thread (tests/integration/run-tsan.sh); prints one TAP
 * line. TSan itself makes the process exit non-zero on a race report
 * (TSAN_OPTIONS=halt_on_error=1 in run-tsan.sh).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

static void check_failed(const char *file, int line, const char *what)
{
    fprintf(stderr, "# FAILED %s:%d: %s\n", file, line, what);
    check_failures++;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_failed(__FILE__, __LINE__, #cond);                                               \
        }                                                                                          \
    } while (0)

#undef cr_assert
#undef cr_expect
#undef cr_assert_not
#undef cr_assert_eq
#undef cr_expect_eq
#undef cr_assert_neq
#undef cr_assert_gt
#undef cr_assert_geq
#undef cr_assert_lt
#undef cr_assert_leq
#undef cr_assert_null
#undef cr_assert_not_null
#undef cr_assert_str_eq
#undef cr_expect_str_eq
#undef cr_log_info
#define cr_assert(c, ...)           CHECK(c)
#define cr_expect(c, ...)           CHECK(c)
#define cr_assert_not(c, ...)       CHECK(!(c))
#define cr_assert_eq(a, b, ...)     CHECK((a) == (b))
#define cr_expect_eq(a, b, ...)     CHECK((a) == (b))
#define cr_assert_neq(a, b, ...)    CHECK((a) != (b))
#define cr_assert_gt(a, b, ...)     CHECK((a) > (b))
#define cr_assert_geq(a, b, ...)    CHECK((a) >= (b))
#define cr_assert_lt(a, b, ...)     CHECK((a) < (b))
#define cr_assert_leq(a, b, ...)    CHECK((a) <= (b))
#define cr_assert_null(p, ...)      CHECK((p) == NULL)
#define cr_assert_not_null(p, ...)  CHECK((p) != NULL)
#define cr_assert_str_eq(a, b, ...) CHECK(strcmp((a), (b)) == 0)
#define cr_expect_str_eq(a, b, ...) CHECK(strcmp((a), (b)) == 0)
#define cr_log_info(...)            (fprintf(stderr, "# " __VA_ARGS__), fputc('\n', stderr))

#include "test_stress.c"

int main(void)
{
    stack_setup();
    stress_eight_threads_sign_find_create_destroy_with_logouts_impl();
    stack_teardown();
    printf("1..1\n%s 1 - stress_tsan: eight threads under ThreadSanitizer (%d failed checks)\n",
           check_failures == 0 ? "ok" : "not ok", check_failures);
    return check_failures != 0;
}
