/*
 * test_eval.c - the semantics of strata-rules(7) (SEMANTICS and EXAMPLES)
 * evaluated against hand-built objects.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lang.h"
#include "rules.h"

static const char *const layers[] = {"personal", "group", "legacy"};
static const bool read_only[] = {false, true, true};
static const rules_scope scope = {layers, read_only, 3};

static CK_OBJECT_CLASS cls_private = CKO_PRIVATE_KEY;
static CK_OBJECT_CLASS cls_cert = CKO_CERTIFICATE;
static CK_KEY_TYPE kt_rsa = CKK_RSA;
static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;
static CK_BYTE id_ab[] = {'a', 'b'};

/* An object of the given layer with class, label (NULL: absent) and id. */
typedef struct {
    CK_ATTRIBUTE attrs[8];
    rules_object obj;
} test_object;

static void make_object(test_object *t, const char *layer, CK_OBJECT_CLASS *cls, const char *label)
{
    size_t n = 0;

    memset(t, 0, sizeof(*t));
    t->attrs[n++] = (CK_ATTRIBUTE){CKA_CLASS, cls, sizeof(*cls)};
    if (label != NULL) {
        t->attrs[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    } else {
        t->attrs[n++] = (CK_ATTRIBUTE){CKA_LABEL, NULL, CK_UNAVAILABLE_INFORMATION};
    }
    t->attrs[n++] = (CK_ATTRIBUTE){CKA_ID, id_ab, sizeof(id_ab)};
    t->attrs[n++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt_rsa, sizeof(kt_rsa)};
    t->attrs[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    t->attrs[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    t->obj = (rules_object){layer, "work", "Strata", t->attrs, n};
}

static rules_program *compile_ok(const char *text)
{
    rules_diags d;
    rules_program *p;

    rules_diags_init(&d);
    p = rules_compile(text, "view.xml", 1, &scope, &d);
    cr_assert_not_null(p, "%s: %s", text, d.count ? d.items[0].message : "?");
    rules_diags_clear(&d);
    return p;
}

/* The group-shared store example of strata-rules(7). */
static const char group_example[] =
    "hide     where layer == \"group\" and class == private-key and not label ~ \"shared-*\"\n"
    "set      label = \"team/\" + label where layer == \"group\"\n"
    "readonly where layer == \"legacy\"\n"
    "deny     destroy, set-attribute, wrap where layer == \"group\"\n"
    "deny     sign where layer == \"legacy\" and mechanism in [CKM_SHA1_RSA_PKCS, CKM_RSA_PKCS]\n"
    "route    create to \"personal\" where class in [private-key, secret-key]\n"
    "shadow   by class, id\n";

typedef struct {
    const char *layer;
    CK_OBJECT_CLASS *cls;
    const char *label;
    bool hidden;
    int deciding;
    bool readonly;
    uint32_t denied;
} verdict_case;

static const verdict_case group_cases[] = {
    {"group", &cls_private, "mine", true, 0, false,
     RULES_OP_DESTROY | RULES_OP_SET_ATTRIBUTE | RULES_OP_WRAP},
    {"group", &cls_private, NULL, true, 0, false,
     RULES_OP_DESTROY | RULES_OP_SET_ATTRIBUTE | RULES_OP_WRAP},
    {"group", &cls_private, "shared-ci", false, -1, false,
     RULES_OP_DESTROY | RULES_OP_SET_ATTRIBUTE | RULES_OP_WRAP},
    {"group", &cls_cert, "mine", false, -1, false,
     RULES_OP_DESTROY | RULES_OP_SET_ATTRIBUTE | RULES_OP_WRAP},
    {"personal", &cls_private, "mine", false, -1, false, 0},
    {"legacy", &cls_private, "old", false, -1, true, 0},
};

Test(rules_eval, group_example_verdicts)
{
    rules_program *p = compile_ok(group_example);

    for (size_t i = 0; i < sizeof(group_cases) / sizeof(group_cases[0]); i++) {
        const verdict_case *vc = &group_cases[i];
        test_object t;
        rules_verdict v;
        make_object(&t, vc->layer, vc->cls, vc->label);
        cr_assert_eq(rules_eval(p, &t.obj, &v), 0);
        cr_assert_eq(v.hidden, vc->hidden, "case %zu", i);
        cr_assert_eq(v.deciding_rule, vc->deciding, "case %zu", i);
        cr_assert_eq(v.readonly, vc->readonly, "case %zu", i);
        cr_assert_eq(v.denied, vc->denied, "case %zu: %x", i, v.denied);
    }
    rules_program_free(p);
}

Test(rules_eval, first_visibility_match_wins)
{
    rules_program *p = compile_ok("show where label == \"keep\"\n"
                                  "hide where layer == \"group\"\n"
                                  "show where layer == \"group\"\n");
    test_object t;
    rules_verdict v;

    make_object(&t, "group", &cls_cert, "keep");
    rules_eval(p, &t.obj, &v);
    cr_assert(!v.hidden);
    cr_assert_eq(v.deciding_rule, 0);
    make_object(&t, "group", &cls_cert, "other");
    rules_eval(p, &t.obj, &v);
    cr_assert(v.hidden);
    cr_assert_eq(v.deciding_rule, 1);
    make_object(&t, "personal", &cls_cert, "other");
    rules_eval(p, &t.obj, &v);
    cr_assert(!v.hidden);
    cr_assert_eq(v.deciding_rule, -1);
    rules_program_free(p);
}

typedef struct {
    const char *cond;
    const char *label; /* NULL: the object has no label */
    bool hidden;
} cond_case;

/* Conditions of strata-rules(7), SEMANTICS: absent attributes, literals,
 * booleans, lists, present(). */
static const cond_case cond_cases[] = {
    {"label == \"x\"", "x", true},
    {"label == \"x\"", NULL, false},
    {"label != \"x\"", NULL, true},
    {"label != \"x\"", "y", true},
    {"not label ~ \"shared-*\"", NULL, true},
    {"label ~ \"*\"", "", true},
    {"label in [\"a\", \"b\"]", "b", true},
    {"label in [\"a\", \"b\"]", NULL, false},
    {"present(label)", NULL, false},
    {"present(label)", "", true},
    {"id == \"ab\"", NULL, true},
    {"id == 0x6162", NULL, true},
    {"id == 0x61", NULL, false},
    {"sensitive and not extractable", NULL, true},
    {"sensitive == false", NULL, false},
    {"key-type == rsa and class == CKO_PRIVATE_KEY", NULL, true},
    {"key-type in [ec, aes]", NULL, false},
    {"view == \"work\" and vtoken == \"Strata\"", NULL, true},
    {"layer == \"group\" or (label == \"a\" and label == \"b\")", "a", true},
    {"modulus-bits == 2048", NULL, false},
    {"present(modulus-bits) or modulus-bits != 2048", NULL, true},
    {"true", NULL, true},
    {"not true", NULL, false},
};

Test(rules_eval, condition_table)
{
    for (size_t i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
        char text[256];
        rules_program *p;
        test_object t;
        rules_verdict v;
        snprintf(text, sizeof(text), "hide where %s", cond_cases[i].cond);
        p = compile_ok(text);
        make_object(&t, "group", &cls_private, cond_cases[i].label);
        cr_assert_eq(rules_eval(p, &t.obj, &v), 0);
        cr_assert_eq(v.hidden, cond_cases[i].hidden, "case %s (label %s)", cond_cases[i].cond,
                     cond_cases[i].label ? cond_cases[i].label : "absent");
        rules_program_free(p);
    }
}

Test(rules_eval, malformed_objects)
{
    rules_program *p = compile_ok("hide where class == private-key");
    CK_BYTE short_class = 3;
    CK_ATTRIBUTE bad_len[] = {{CKA_CLASS, &short_class, 1}};
    CK_ATTRIBUTE null_value[] = {{CKA_CLASS, NULL, sizeof(CK_ULONG)}};
    rules_object o1 = {"group", "work", "Strata", bad_len, 1};
    rules_object o2 = {"group", "work", "Strata", null_value, 1};
    rules_object o3 = {"group", "work", "Strata", NULL, 2};
    rules_verdict v;
    size_t len;

    cr_assert_eq(rules_eval(p, &o1, &v), -1);
    cr_assert_eq(rules_eval(p, &o2, &v), -1);
    cr_assert_eq(rules_eval(p, &o3, &v), -1);
    cr_assert_eq(rules_eval(p, NULL, &v), -1);
    cr_assert(rules_denies(p, &o1, RULES_OP_SIGN, CK_UNAVAILABLE_INFORMATION));
    cr_assert_null(rules_route(p, &o1));
    cr_assert_eq(rules_rewrite(p, &o1, CKA_LABEL, NULL, 0, &len), -1);
    rules_program_free(p);
}

Test(rules_eval, null_program_has_no_rules)
{
    test_object t;
    rules_verdict v;
    size_t len = 0;
    const CK_ATTRIBUTE_TYPE *types;

    make_object(&t, "group", &cls_private, "x");
    cr_assert_eq(rules_eval(NULL, &t.obj, &v), 0);
    cr_assert(!v.hidden);
    cr_assert_eq(v.deciding_rule, -1);
    cr_assert(!rules_denies(NULL, &t.obj, RULES_OP_SIGN, CKM_RSA_PKCS));
    cr_assert_eq(rules_rewrite(NULL, &t.obj, CKA_LABEL, NULL, 0, &len), 0);
    cr_assert_null(rules_route(NULL, &t.obj));
    cr_assert_eq(rules_program_shadow(NULL, &types), 2);
    cr_assert(!rules_program_rewrites(NULL, CKA_LABEL));
}

Test(rules_denies, mechanism_and_operation)
{
    rules_program *p = compile_ok(group_example);
    rules_program *q = compile_ok("deny sign, decrypt where operation == \"sign\"\n"
                                  "deny encrypt where mechanism == CKM_AES_ECB or not "
                                  "present(label)\n");
    test_object t;
    rules_verdict v;

    make_object(&t, "legacy", &cls_private, "old");
    cr_assert(rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA1_RSA_PKCS));
    cr_assert(rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_RSA_PKCS));
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA256_RSA_PKCS));
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CK_UNAVAILABLE_INFORMATION));
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_VERIFY, CKM_RSA_PKCS));
    rules_eval(p, &t.obj, &v);
    cr_assert_eq(v.denied, 0, "a mechanism rule is not in the static mask");

    make_object(&t, "group", &cls_private, "shared-x");
    cr_assert(rules_denies(p, &t.obj, RULES_OP_WRAP, CKM_AES_KEY_WRAP));
    cr_assert(rules_denies(p, &t.obj, RULES_OP_DESTROY, CK_UNAVAILABLE_INFORMATION));
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_RSA_PKCS));

    cr_assert(rules_denies(q, &t.obj, RULES_OP_SIGN, CKM_RSA_PKCS));
    cr_assert(!rules_denies(q, &t.obj, RULES_OP_DECRYPT, CKM_RSA_PKCS));
    cr_assert(rules_denies(q, &t.obj, RULES_OP_ENCRYPT, CKM_AES_ECB));
    cr_assert(!rules_denies(q, &t.obj, RULES_OP_ENCRYPT, CKM_AES_CBC));
    make_object(&t, "group", &cls_private, NULL);
    rules_eval(q, &t.obj, &v);
    cr_assert_eq(v.denied, 0);
    cr_assert(rules_denies(q, &t.obj, RULES_OP_ENCRYPT, CKM_AES_CBC));
    rules_program_free(p);
    rules_program_free(q);
}

/* The migration example of strata-rules(7): an RSA private key has no
 * CKA_MODULUS_BITS (PKCS#11 gives it to public keys), so modulus-bits is
 * derived from CKA_MODULUS, leading zero bits left out. */
Test(rules_denies, modulus_bits_of_an_rsa_private_key_comes_from_its_modulus)
{
    rules_program *p = compile_ok("deny sign where operation == \"sign\" and key-type == rsa "
                                  "and modulus-bits == 1024\n");
    const CK_ATTRIBUTE_TYPE *types;
    size_t n = rules_program_attributes(p, &types);
    CK_BYTE m1024[128], m1020[128], m2048[257];
    CK_ULONG bits = 2048;
    test_object t;
    bool reads_modulus = false;

    for (size_t i = 0; i < n; i++) {
        reads_modulus = reads_modulus || types[i] == CKA_MODULUS;
    }
    cr_assert(reads_modulus, "the program must ask for CKA_MODULUS to derive modulus-bits");
    memset(m1024, 0xa5, sizeof(m1024));
    memset(m1020, 0xa5, sizeof(m1020));
    m1020[0] = 0x0f; /* 4 leading zero bits */
    memset(m2048, 0xa5, sizeof(m2048));
    m2048[0] = 0x00; /* a DER-style leading zero byte */

    make_object(&t, "legacy", &cls_private, "old");
    t.attrs[t.obj.n_attrs] = (CK_ATTRIBUTE){CKA_MODULUS, m1024, sizeof(m1024)};
    t.obj.n_attrs++;
    cr_assert(rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA256_RSA_PKCS));
    t.attrs[t.obj.n_attrs - 1] = (CK_ATTRIBUTE){CKA_MODULUS, m1020, sizeof(m1020)};
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA256_RSA_PKCS));
    t.attrs[t.obj.n_attrs - 1] = (CK_ATTRIBUTE){CKA_MODULUS, m2048, sizeof(m2048)};
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA256_RSA_PKCS));
    /* A CKA_MODULUS_BITS the object has is what counts. */
    t.attrs[t.obj.n_attrs - 1] = (CK_ATTRIBUTE){CKA_MODULUS, m1024, sizeof(m1024)};
    t.attrs[t.obj.n_attrs] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
    t.obj.n_attrs++;
    cr_assert(!rules_denies(p, &t.obj, RULES_OP_SIGN, CKM_SHA256_RSA_PKCS));
    rules_program_free(p);
}

static const char chained_sets[] = "set label = \"team/\" + label where layer == \"group\"\n"
                                   "set label = label + \"!\" where class == private-key\n"
                                   "set id = 0x01 + id + layer where layer == \"personal\"\n";

Test(rules_rewrite, sets_apply_in_order)
{
    rules_program *p = compile_ok(chained_sets);
    test_object t;
    char buf[64];
    size_t len = 0;

    make_object(&t, "group", &cls_private, "k");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, sizeof(buf), &len), 1);
    cr_assert_eq(len, 7);
    cr_assert_eq(memcmp(buf, "team/k!", 7), 0);

    make_object(&t, "group", &cls_cert, "c");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, sizeof(buf), &len), 1);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(buf, "team/c", 6), 0);

    make_object(&t, "personal", &cls_private, "p");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, sizeof(buf), &len), 1);
    cr_assert_eq(len, 2);
    cr_assert_eq(memcmp(buf, "p!", 2), 0);
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_ID, buf, sizeof(buf), &len), 1);
    cr_assert_eq(len, 11);
    cr_assert_eq(memcmp(buf,
                        "\x01"
                        "abpersonal",
                        11),
                 0);

    make_object(&t, "legacy", &cls_cert, "l");
    len = 99;
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, sizeof(buf), &len), 0);
    cr_assert_eq(len, 99);
    rules_program_free(p);
}

Test(rules_rewrite, size_query_and_short_buffer)
{
    rules_program *p = compile_ok(chained_sets);
    test_object t;
    char buf[8];
    size_t len = 0;

    make_object(&t, "group", &cls_private, "key");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, NULL, 0, &len), 1);
    cr_assert_eq(len, 9);
    memset(buf, '#', sizeof(buf));
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, 3, &len), 1);
    cr_assert_eq(len, 9);
    cr_assert_eq(memcmp(buf, "tea#", 4), 0, "nothing past size is written");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, 3, NULL), -1);
    rules_program_free(p);
}

Test(rules_rewrite, absent_attribute_reads_empty)
{
    rules_program *p = compile_ok(chained_sets);
    test_object t;
    char buf[16];
    size_t len = 0;

    make_object(&t, "group", &cls_cert, NULL);
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_LABEL, buf, sizeof(buf), &len), 1);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(buf, "team/", 5), 0);
    rules_program_free(p);
}

Test(rules_rewrite, readonly_reads_modifiable_false)
{
    rules_program *p = compile_ok(group_example);
    test_object t;
    CK_BBOOL value = CK_TRUE;
    size_t len = 0;

    make_object(&t, "legacy", &cls_cert, "x");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_MODIFIABLE, &value, sizeof(value), &len), 1);
    cr_assert_eq(len, sizeof(CK_BBOOL));
    cr_assert_eq(value, CK_FALSE);
    make_object(&t, "group", &cls_cert, "x");
    cr_assert_eq(rules_rewrite(p, &t.obj, CKA_MODIFIABLE, &value, sizeof(value), &len), 0);
    rules_program_free(p);
}

Test(rules_route, first_match_picks_the_layer)
{
    const char *const two[] = {"a", "b"};
    const bool rw[] = {false, false};
    rules_scope s2 = {two, rw, 2};
    rules_program *p = rules_compile("route create to \"a\" where class == secret-key\n"
                                     "route create to \"b\" where class in [private-key, "
                                     "secret-key]\n",
                                     "v", 1, &s2, NULL);
    test_object t;

    cr_assert_not_null(p);
    make_object(&t, NULL, &cls_private, "x");
    cr_assert_str_eq(rules_route(p, &t.obj), "b");
    make_object(&t, NULL, &cls_cert, "x");
    cr_assert_null(rules_route(p, &t.obj));
    rules_program_free(p);
}

typedef struct {
    unsigned lines[8];
    char effects[8][128];
    size_t n;
} explained;

static void collect(void *ctx, unsigned line, const char *effect)
{
    explained *e = ctx;

    cr_assert_lt(e->n, 8);
    e->lines[e->n] = line;
    snprintf(e->effects[e->n], sizeof(e->effects[0]), "%s", effect);
    e->n++;
}

Test(rules_explain, group_example_effects)
{
    rules_program *p = compile_ok(group_example);
    test_object t;
    explained e = {0};

    make_object(&t, "group", &cls_private, "shared-x");
    rules_explain(p, &t.obj, collect, &e);
    cr_assert_eq(e.n, 3);
    cr_assert_eq(e.lines[0], 2);
    cr_assert_str_eq(e.effects[0], "label rewritten to \"team/shared-x\"");
    cr_assert_eq(e.lines[1], 4);
    cr_assert_str_eq(e.effects[1], "denies wrap, destroy, set-attribute");
    cr_assert_eq(e.lines[2], 6);
    cr_assert_str_eq(e.effects[2], "routes create to personal");

    memset(&e, 0, sizeof(e));
    make_object(&t, "group", &cls_private, "mine");
    rules_explain(p, &t.obj, collect, &e);
    cr_assert_str_eq(e.effects[0], "hidden");
    cr_assert_eq(e.lines[0], 1);

    memset(&e, 0, sizeof(e));
    make_object(&t, "legacy", &cls_cert, "old");
    rules_explain(p, &t.obj, collect, &e);
    cr_assert_eq(e.n, 2);
    cr_assert_str_eq(e.effects[0], "read-only");
    cr_assert_str_eq(e.effects[1], "denies sign depending on the mechanism or operation");
    rules_program_free(p);
}

Test(rules_explain, overridden_and_binary_values)
{
    rules_program *p = compile_ok("show where layer == \"group\"\nhide\nset id = 0x00ff + id\n"
                                  "set label = \"a\\\"b\"");
    test_object t;
    explained e = {0};

    make_object(&t, "group", &cls_cert, "x");
    rules_explain(p, &t.obj, collect, &e);
    cr_assert_eq(e.n, 4);
    cr_assert_str_eq(e.effects[0], "shown");
    cr_assert_str_eq(e.effects[1], "no effect: line 1 decided visibility first");
    cr_assert_str_eq(e.effects[2], "id rewritten to 0x00ff6162");
    cr_assert_str_eq(e.effects[3], "label rewritten to \"a\\\"b\"");
    rules_program_free(p);
}

Test(rules_program_attributes, sorted_unique_with_shadow)
{
    rules_program *p = compile_ok(group_example);
    rules_program *q = compile_ok("shadow by label\nhide where id == 0x01 and label == \"x\"");
    const CK_ATTRIBUTE_TYPE *types;

    cr_assert_eq(rules_program_attributes(p, &types), 3);
    cr_assert_eq(types[0], CKA_CLASS);
    cr_assert_eq(types[1], CKA_LABEL);
    cr_assert_eq(types[2], CKA_ID);
    cr_assert_eq(rules_program_attributes(q, &types), 2);
    cr_assert_eq(types[0], CKA_LABEL);
    cr_assert_eq(types[1], CKA_ID);
    rules_program_free(p);
    rules_program_free(q);
}

Test(rules_program_shadow, default_and_declared)
{
    rules_program *p = compile_ok("hide where false");
    rules_program *q = compile_ok("shadow by CKA_LABEL, key-type, id");
    const CK_ATTRIBUTE_TYPE *types;

    cr_assert_eq(rules_program_shadow(p, &types), 2);
    cr_assert_eq(types[0], CKA_CLASS);
    cr_assert_eq(types[1], CKA_ID);
    cr_assert_eq(rules_program_shadow(q, &types), 3);
    cr_assert_eq(types[0], CKA_LABEL);
    cr_assert_eq(types[1], CKA_KEY_TYPE);
    cr_assert_eq(types[2], CKA_ID);
    rules_program_free(p);
    rules_program_free(q);
}

Test(rules_program_rewrites, set_targets_and_readonly)
{
    rules_program *p = compile_ok(group_example);

    cr_assert(rules_program_rewrites(p, CKA_LABEL));
    cr_assert(rules_program_rewrites(p, CKA_MODIFIABLE));
    cr_assert(!rules_program_rewrites(p, CKA_ID));
    cr_assert(!rules_program_rewrites(p, CKA_CLASS));
    rules_program_free(p);
}

typedef struct {
    const char *pattern;
    const char *text;
    bool match;
} glob_case;

static const glob_case glob_cases[] = {
    {"shared-*", "shared-ci", true},
    {"shared-*", "shared-", true},
    {"shared-*", "share", false},
    {"*", "", true},
    {"", "", true},
    {"", "x", false},
    {"a?c", "abc", true},
    {"a?c", "ac", false},
    {"*b*c", "xxbyyc", true},
    {"*b*c", "xxbyy", false},
    {"[a-c]x", "bx", true},
    {"[a-c]x", "dx", false},
    {"[!a-c]x", "dx", true},
    {"[^a-c]x", "ax", false},
    {"[]]", "]", true},
    {"\\*", "*", true},
    {"\\*", "a", false},
    {"[\\]]", "]", true},
    {"*.pem", "dir/a.pem", true},
    {"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
};

Test(lang_glob_match, table)
{
    for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
        const glob_case *g = &glob_cases[i];
        cr_assert_null(lang_glob_check((const unsigned char *)g->pattern, strlen(g->pattern)));
        cr_assert_eq(lang_glob_match((const unsigned char *)g->pattern, strlen(g->pattern),
                                     (const unsigned char *)g->text, strlen(g->text)),
                     g->match, "%s ~ %s", g->text, g->pattern);
    }
}
