/*
 * fuzz_rules.c - libFuzzer target for the rule compiler and evaluator.
 *
 * The input is rule text. Whatever compiles is then evaluated against a
 * few fixed objects through every entry point (eval, denies for each
 * operation, rewrite of every attribute with and without a buffer, route,
 * explain), checking the invariants the engine relies on, and every
 * diagnostic is checked to be one line. See README.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const layers[] = {"personal", "group", "legacy"};
static const bool read_only[] = {false, true, true};
static const rules_scope scope = {layers, read_only, 3};

static void ignore_explain(void *ctx, unsigned line, const char *effect)
{
    (void)ctx;
    if (line == 0 || effect == NULL || strlen(effect) == 0) {
        abort(); /* the fuzzer's way to report a broken invariant */
    }
}

static void exercise_rewrite(const rules_program *p, const rules_object *o, CK_ATTRIBUTE_TYPE type)
{
    unsigned char buf[64];
    size_t len = 0, len2 = 0;
    int r = rules_rewrite(p, o, type, NULL, 0, &len);
    int r2 = rules_rewrite(p, o, type, buf, sizeof(buf), &len2);

    if (r != r2 || (r == 1 && len != len2)) {
        abort();
    }
}

static void exercise(const rules_program *p, const rules_object *o)
{
    const CK_ATTRIBUTE_TYPE *types;
    size_t n = rules_program_attributes(p, &types);
    rules_verdict v;

    for (size_t i = 1; i < n; i++) {
        if (types[i - 1] >= types[i]) {
            abort();
        }
    }
    if (rules_eval(p, o, &v) != 0) {
        abort();
    }
    for (uint32_t op = RULES_OP_SIGN; op <= RULES_OP_FIND; op <<= 1) {
        bool denied = rules_denies(p, o, (rules_op)op, CKM_RSA_PKCS);
        if ((v.denied & op) != 0 && !denied) {
            abort(); /* a static denial holds for every mechanism */
        }
        (void)rules_denies(p, o, (rules_op)op, CK_UNAVAILABLE_INFORMATION);
    }
    for (size_t i = 0; i < n; i++) {
        exercise_rewrite(p, o, types[i]);
    }
    exercise_rewrite(p, o, CKA_MODIFIABLE);
    (void)rules_route(p, o);
    rules_explain(p, o, ignore_explain, NULL);
}

/* Every diagnostic has a one-line message (and hint), as rules.h says. */
static void check_diags(const rules_diags *diags)
{
    for (size_t i = 0; i < diags->count; i++) {
        const rules_diag *d = &diags->items[i];
        if (d->message == NULL || strchr(d->message, '\n') != NULL ||
            (d->hint != NULL && strchr(d->hint, '\n') != NULL)) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ULONG bits = 2048;
    CK_BBOOL yes = CK_TRUE;
    CK_BYTE id[] = {0x01, 0x02, 0xff};
    CK_ATTRIBUTE full[] = {
        {CKA_CLASS, &cls, sizeof(cls)},          {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, "shared-key", 10},           {CKA_ID, id, sizeof(id)},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_TOKEN, &yes, sizeof(yes)},
    };
    CK_ATTRIBUTE sparse[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, NULL, CK_UNAVAILABLE_INFORMATION},
    };
    rules_object objects[] = {
        {"group", "work", "Strata", full, sizeof(full) / sizeof(full[0])},
        {"legacy", NULL, NULL, sparse, sizeof(sparse) / sizeof(sparse[0])},
        {NULL, NULL, NULL, NULL, 0},
    };
    rules_diags diags = {NULL, 0, 0};
    rules_program *p;
    char *text = malloc(size + 1);

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    p = rules_compile(text, "fuzz", 1, &scope, &diags);
    if ((p == NULL) != (diags.n_errors > 0)) {
        abort(); /* failure always says why, success never carries errors */
    }
    check_diags(&diags);
    for (size_t i = 0; p != NULL && i < sizeof(objects) / sizeof(objects[0]); i++) {
        exercise(p, &objects[i]);
    }
    rules_program_free(p);
    rules_diags_clear(&diags);
    free(text);
    return 0;
}
