/*
 * test_rv.c - layers/rv.c: symbolic names of return values.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>

#include "layers.h"

Test(layers_rv, layers_rv_name_known_codes)
{
    cr_assert_str_eq(layers_rv_name(CKR_OK), "CKR_OK");
    cr_assert_str_eq(layers_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    cr_assert_str_eq(layers_rv_name(CKR_TOKEN_NOT_PRESENT), "CKR_TOKEN_NOT_PRESENT");
    cr_assert_str_eq(layers_rv_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED");
}

Test(layers_rv, layers_rv_name_unknown_codes)
{
    cr_assert_str_eq(layers_rv_name(CKR_VENDOR_DEFINED + 7), "CKR_VENDOR_DEFINED");
    cr_assert_str_eq(layers_rv_name(0x4), "CKR_UNKNOWN");
}
