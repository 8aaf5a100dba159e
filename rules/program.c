/*
 * program.c - placeholder rule programs: a program with no rules.
 * Replaced by the rule-language implementation (lexer/parser/eval).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include "rules.h"

struct rules_program {
    int unused;
};

static const CK_ATTRIBUTE_TYPE default_shadow[] = {CKA_CLASS, CKA_ID};

rules_program *rules_compile(const char *text, const char *file, unsigned first_line,
                             const rules_scope *scope, rules_diags *diags)
{
    (void)text, (void)file, (void)first_line, (void)scope, (void)diags;
    return calloc(1, sizeof(rules_program));
}

void rules_program_free(rules_program *program)
{
    free(program);
}

size_t rules_program_attributes(const rules_program *program, const CK_ATTRIBUTE_TYPE **types)
{
    (void)program;
    *types = NULL;
    return 0;
}

size_t rules_program_shadow(const rules_program *program, const CK_ATTRIBUTE_TYPE **types)
{
    (void)program;
    *types = default_shadow;
    return 2;
}

bool rules_program_rewrites(const rules_program *program, CK_ATTRIBUTE_TYPE type)
{
    (void)program, (void)type;
    return false;
}

int rules_eval(const rules_program *program, const rules_object *object, rules_verdict *verdict)
{
    (void)program, (void)object;
    verdict->hidden = false;
    verdict->readonly = false;
    verdict->denied = 0;
    verdict->deciding_rule = -1;
    return 0;
}

bool rules_denies(const rules_program *program, const rules_object *object, rules_op op,
                  CK_MECHANISM_TYPE mechanism)
{
    (void)program, (void)object, (void)op, (void)mechanism;
    return false;
}

int rules_rewrite(const rules_program *program, const rules_object *object,
                  CK_ATTRIBUTE_TYPE type, void *buf, size_t size, size_t *len)
{
    (void)program, (void)object, (void)type, (void)buf, (void)size, (void)len;
    return 0;
}

const char *rules_route(const rules_program *program, const rules_object *template_object)
{
    (void)program, (void)template_object;
    return NULL;
}

void rules_explain(const rules_program *program, const rules_object *object, rules_explain_fn fn,
                   void *ctx)
{
    (void)program, (void)object, (void)fn, (void)ctx;
}
