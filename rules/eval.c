/*
 * eval.c - evaluates compiled rule programs against objects
 * (strata-rules(7), SEMANTICS). Nothing here allocates: attribute values
 * are looked up once per call into a fixed table on the stack, literals
 * live in the program's pool, and rewritten values are written straight
 * into the caller's buffer.
 *
 * Conditions evaluate in three-valued logic: a leaf that needs the
 * mechanism or operation when none is known (rules_eval, rules_explain)
 * is "unknown", and and/or/not follow Kleene's tables.
 *
 * Functions here take no lock: a program is immutable once compiled and
 * may be evaluated from many threads at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "lang.h"

typedef enum {
    TRI_FALSE = 0,
    TRI_TRUE = 1,
    TRI_UNKNOWN = 2,
} tri;

typedef struct {
    const rules_program *prog;
    const rules_object *obj;
    const CK_ATTRIBUTE *slot[LANG_MAX_ATTRS]; /* per program attribute, NULL = absent */
    bool know_dynamic;                        /* mechanism and operation are given */
    bool has_mech;
    CK_MECHANISM_TYPE mech;
    uint32_t op; /* rules_op, 0 = none */
} eval_state;

typedef struct {
    uint8_t type;
    bool absent;
    bool unknown;
    CK_ULONG num;
    const unsigned char *p;
    size_t len;
} value;

typedef struct {
    unsigned char *buf;
    size_t size;
    size_t len;
} sink;

/* ---- glob patterns -------------------------------------------------- */

/*
 * Matches ch against the bracket class starting at pat[*pos] == '['.
 * Advances *pos past the closing ']'. A malformed class (which the
 * checker refuses) never matches.
 */
static bool class_match(const unsigned char *pat, size_t plen, size_t *pos, unsigned char ch)
{
    size_t q = *pos + 1;
    bool negate = false, hit = false, first = true;

    if (q < plen && (pat[q] == '!' || pat[q] == '^')) {
        negate = true;
        q++;
    }
    while (q < plen && (pat[q] != ']' || first)) {
        unsigned char lo, hi;
        first = false;
        if (pat[q] == '\\' && q + 1 < plen) {
            q++;
        }
        lo = hi = pat[q++];
        if (q + 1 < plen && pat[q] == '-' && pat[q + 1] != ']') {
            q++;
            if (pat[q] == '\\' && q + 1 < plen) {
                q++;
            }
            hi = pat[q++];
        }
        hit = hit || (ch >= lo && ch <= hi);
    }
    if (q >= plen) {
        return false;
    }
    *pos = q + 1;
    return hit != negate;
}

const char *lang_glob_check(const unsigned char *pat, size_t plen)
{
    for (size_t p = 0; p < plen; p++) {
        if (pat[p] == '\\') {
            if (p + 1 == plen) {
                return "trailing backslash";
            }
            p++;
        } else if (pat[p] == '[') {
            size_t q = p + 1;
            bool first = true;
            if (q < plen && (pat[q] == '!' || pat[q] == '^')) {
                q++;
            }
            while (q < plen && (pat[q] != ']' || first)) {
                first = false;
                q += pat[q] == '\\' && q + 1 < plen ? 2 : 1;
            }
            if (q >= plen) {
                return "'[' without a matching ']'";
            }
            p = q;
        }
    }
    return NULL;
}

/* Matches s against pat: one backtracking point (the last '*') suffices
 * because every other element matches exactly one byte. */
bool lang_glob_match(const unsigned char *pat, size_t plen, const unsigned char *s, size_t slen)
{
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;

    while (i < slen) {
        if (p < plen) {
            size_t np = p;
            if (pat[p] == '*') {
                star_p = ++p;
                star_i = i;
                continue;
            }
            if (pat[p] == '?') {
                p++;
                i++;
                continue;
            }
            if (pat[p] == '[') {
                if (class_match(pat, plen, &np, s[i])) {
                    p = np;
                    i++;
                    continue;
                }
            } else if (pat[p] == '\\' && p + 1 < plen) {
                if (pat[p + 1] == s[i]) {
                    p += 2;
                    i++;
                    continue;
                }
            } else if (pat[p] == s[i]) {
                p++;
                i++;
                continue;
            }
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        p = star_p;
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}

/* ---- object access -------------------------------------------------- */

/*
 * Looks up every attribute the program reads, once. Returns 0, or -1 when
 * the object is malformed (NULL attrs with a count, a NULL value with a
 * length, a CK_ULONG or CK_BBOOL attribute of the wrong size).
 */
static int state_init(eval_state *st, const rules_program *prog, const rules_object *obj)
{
    st->prog = prog;
    st->obj = obj;
    st->know_dynamic = false;
    st->has_mech = false;
    st->mech = CK_UNAVAILABLE_INFORMATION;
    st->op = 0;
    if (obj == NULL || (obj->attrs == NULL && obj->n_attrs > 0)) {
        return -1;
    }
    for (size_t i = 0; i < prog->n_attrs; i++) {
        const lang_attr_info *info = lang_attr_by_type(prog->attrs[i]);
        st->slot[i] = NULL;
        for (size_t j = 0; j < obj->n_attrs; j++) {
            const CK_ATTRIBUTE *a = &obj->attrs[j];
            if (a->type != prog->attrs[i]) {
                continue;
            }
            if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION) {
                break;
            }
            if ((a->pValue == NULL && a->ulValueLen > 0) ||
                (info->vtype == TY_NUMBER && a->ulValueLen != sizeof(CK_ULONG)) ||
                (info->vtype == TY_BOOL && a->ulValueLen != sizeof(CK_BBOOL))) {
                return -1;
            }
            st->slot[i] = a;
            break;
        }
    }
    return 0;
}

static void set_bytes(value *v, uint8_t type, const void *p, size_t len)
{
    v->type = type;
    v->p = p;
    v->len = len;
}

static void context_value(const eval_state *st, CK_ULONG ctx, value *v)
{
    const char *s = NULL;

    switch (ctx) {
    case CTX_LAYER:
        s = st->obj->layer;
        break;
    case CTX_VIEW:
        s = st->obj->view;
        break;
    case CTX_VTOKEN:
        s = st->obj->token;
        break;
    case CTX_MECHANISM:
        v->type = TY_NUMBER;
        v->unknown = !st->know_dynamic;
        v->absent = !st->has_mech;
        v->num = st->mech;
        return;
    case CTX_OPERATION:
        v->unknown = !st->know_dynamic;
        v->absent = st->op == 0;
        s = st->op != 0 ? lang_op_name(st->op) : NULL;
        break;
    default:
        break;
    }
    v->absent = v->absent || s == NULL;
    set_bytes(v, TY_STRING, s, s != NULL ? strlen(s) : 0);
}

/* CKA_MODULUS_BITS of an object that lacks it (an RSA private key) from
 * its CKA_MODULUS: the big-endian modulus's length in bits, leading zero
 * bits left out. Leaves v absent when the modulus is absent or empty. */
static void modulus_bits(const eval_state *st, value *v)
{
    const CK_ATTRIBUTE *m =
        st->prog->modulus_slot != SIZE_MAX ? st->slot[st->prog->modulus_slot] : NULL;
    const unsigned char *p = m != NULL ? m->pValue : NULL;
    size_t len = m != NULL ? m->ulValueLen : 0;

    while (len > 0 && *p == 0) {
        p++;
        len--;
    }
    if (len == 0) {
        v->absent = true;
        return;
    }
    v->num = (CK_ULONG)len * 8;
    for (unsigned char top = *p; (top & 0x80) == 0; top = (unsigned char)(top << 1)) {
        v->num--;
    }
}

/* The value of a leaf node (literal, attribute or context). */
static void leaf_value(const eval_state *st, uint32_t idx, value *v)
{
    const lang_node *n = &st->prog->nodes[idx];
    const CK_ATTRIBUTE *a;

    memset(v, 0, sizeof(*v));
    v->type = n->type;
    switch (n->kind) {
    case N_LITERAL:
        v->num = n->num;
        if (n->type == TY_STRING || n->type == TY_BYTES) {
            set_bytes(v, n->type, st->prog->pool + n->off, n->len);
        }
        break;
    case N_ATTR:
        a = st->slot[n->slot];
        if (a == NULL && n->num == CKA_MODULUS_BITS) {
            modulus_bits(st, v);
        } else if (a == NULL) {
            v->absent = true;
        } else if (n->type == TY_NUMBER) {
            memcpy(&v->num, a->pValue, sizeof(CK_ULONG));
        } else if (n->type == TY_BOOL) {
            v->num = *(const CK_BBOOL *)a->pValue != CK_FALSE;
        } else {
            set_bytes(v, n->type, a->pValue, a->ulValueLen);
        }
        break;
    case N_CONTEXT:
        context_value(st, n->num, v);
        break;
    default:
        v->absent = true;
        break;
    }
}

static bool values_equal(const value *a, const value *b)
{
    if (a->type == TY_NUMBER || a->type == TY_BOOL) {
        return a->num == b->num;
    }
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- conditions ------------------------------------------------------ */

static tri cond(const eval_state *st, uint32_t idx);

static tri compare(const eval_state *st, const lang_node *n)
{
    value a, b;

    leaf_value(st, n->a, &a);
    leaf_value(st, n->b, &b);
    if (a.unknown || b.unknown) {
        return TRI_UNKNOWN;
    }
    if (a.absent || b.absent) {
        return n->kind == N_NE ? TRI_TRUE : TRI_FALSE;
    }
    if (n->kind == N_GLOB) {
        return lang_glob_match(b.p, b.len, a.p, a.len) ? TRI_TRUE : TRI_FALSE;
    }
    return values_equal(&a, &b) == (n->kind == N_EQ) ? TRI_TRUE : TRI_FALSE;
}

static tri in_list(const eval_state *st, const lang_node *n)
{
    value a, item;
    tri result = TRI_FALSE;

    leaf_value(st, n->a, &a);
    if (a.unknown) {
        return TRI_UNKNOWN;
    }
    if (a.absent) {
        return TRI_FALSE;
    }
    for (uint32_t i = 0; i < n->len; i++) {
        leaf_value(st, st->prog->lists[n->off + i], &item);
        if (item.unknown) {
            result = TRI_UNKNOWN;
        } else if (!item.absent && values_equal(&a, &item)) {
            return TRI_TRUE;
        }
    }
    return result;
}

static tri cond(const eval_state *st, uint32_t idx)
{
    const lang_node *n = &st->prog->nodes[idx];
    value v;
    tri a, b;

    switch (n->kind) {
    case N_EQ:
    case N_NE:
    case N_GLOB:
        return compare(st, n);
    case N_IN:
        return in_list(st, n);
    case N_PRESENT:
        return st->slot[st->prog->nodes[n->a].slot] != NULL ? TRI_TRUE : TRI_FALSE;
    case N_NOT:
        a = cond(st, n->a);
        return a == TRI_UNKNOWN ? TRI_UNKNOWN : (a == TRI_TRUE ? TRI_FALSE : TRI_TRUE);
    case N_AND:
        a = cond(st, n->a);
        if (a == TRI_FALSE) {
            return TRI_FALSE;
        }
        b = cond(st, n->b);
        return b == TRI_FALSE ? TRI_FALSE
                              : (a == TRI_TRUE && b == TRI_TRUE ? TRI_TRUE : TRI_UNKNOWN);
    case N_OR:
        a = cond(st, n->a);
        if (a == TRI_TRUE) {
            return TRI_TRUE;
        }
        b = cond(st, n->b);
        return b == TRI_TRUE ? TRI_TRUE
                             : (a == TRI_FALSE && b == TRI_FALSE ? TRI_FALSE : TRI_UNKNOWN);
    case N_TRUTH:
        leaf_value(st, n->a, &v);
        if (v.unknown) {
            return TRI_UNKNOWN;
        }
        return !v.absent && v.num != 0 ? TRI_TRUE : TRI_FALSE;
    default:
        return TRI_FALSE;
    }
}

static tri rule_matches(const eval_state *st, const lang_rule *rule)
{
    return rule->cond == LANG_NONE ? TRI_TRUE : cond(st, rule->cond);
}

/* ---- set values --------------------------------------------------------- */

static void sink_put(sink *out, const void *p, size_t len)
{
    if (out->buf != NULL && out->len < out->size) {
        size_t room = out->size - out->len;
        memcpy(out->buf + out->len, p, len < room ? len : room);
    }
    out->len += len;
}

static void emit_before(const eval_state *st, CK_ATTRIBUTE_TYPE target, size_t rule_idx, sink *out);

/* Writes the value of set expression idx (of rule rule_idx) to out. */
static void emit_value(const eval_state *st, uint32_t idx, CK_ATTRIBUTE_TYPE target,
                       size_t rule_idx, sink *out)
{
    const lang_node *n = &st->prog->nodes[idx];
    value v;

    if (n->kind == N_CONCAT) {
        emit_value(st, n->a, target, rule_idx, out);
        emit_value(st, n->b, target, rule_idx, out);
        return;
    }
    if (n->kind == N_ATTR && n->num == target) {
        emit_before(st, target, rule_idx, out);
        return;
    }
    leaf_value(st, idx, &v);
    if (!v.absent && v.len > 0) {
        sink_put(out, v.p, v.len);
    }
}

/* Writes the value of target as the set rules before rule_idx leave it:
 * the last matching one's value, else the stored value. */
static void emit_before(const eval_state *st, CK_ATTRIBUTE_TYPE target, size_t rule_idx, sink *out)
{
    for (size_t j = rule_idx; j-- > 0;) {
        const lang_rule *r = &st->prog->rules[j];
        if (r->kind == R_SET && r->attr == target && rule_matches(st, r) == TRI_TRUE) {
            emit_value(st, r->value, target, j, out);
            return;
        }
    }
    for (size_t i = 0; i < st->prog->n_attrs; i++) {
        const CK_ATTRIBUTE *a = st->slot[i];
        if (st->prog->attrs[i] == target && a != NULL && a->ulValueLen > 0) {
            sink_put(out, a->pValue, a->ulValueLen);
        }
    }
}

static bool any_readonly(const eval_state *st)
{
    for (size_t i = 0; i < st->prog->n_rules; i++) {
        const lang_rule *r = &st->prog->rules[i];
        if (r->kind == R_READONLY && rule_matches(st, r) == TRI_TRUE) {
            return true;
        }
    }
    return false;
}

/* ---- public entry points --------------------------------------------- */

/*
 * Fills verdict: hide/show (first match wins, default shown), readonly
 * (any match) and the denials of deny rules that use neither mechanism
 * nor operation. Returns 0; -1 when object is malformed (verdict then
 * holds the defaults). A NULL program has no rules.
 */
int rules_eval(const rules_program *program, const rules_object *object, rules_verdict *verdict)
{
    eval_state st;

    if (verdict == NULL) {
        return -1;
    }
    verdict->hidden = false;
    verdict->readonly = false;
    verdict->denied = 0;
    verdict->deciding_rule = -1;
    if (program == NULL) {
        return 0;
    }
    if (state_init(&st, program, object) < 0) {
        return -1;
    }
    for (size_t i = 0; i < program->n_rules; i++) {
        const lang_rule *r = &program->rules[i];
        bool visibility = r->kind == R_HIDE || r->kind == R_SHOW;
        if ((visibility && verdict->deciding_rule >= 0) || (r->kind == R_DENY && r->dynamic) ||
            (r->kind == R_READONLY && verdict->readonly) ||
            (r->kind != R_DENY && r->kind != R_READONLY && !visibility) ||
            rule_matches(&st, r) != TRI_TRUE) {
            continue;
        }
        if (visibility) {
            verdict->deciding_rule = (int)i;
            verdict->hidden = r->kind == R_HIDE;
        } else if (r->kind == R_READONLY) {
            verdict->readonly = true;
        } else {
            verdict->denied |= r->ops;
        }
    }
    return 0;
}

/*
 * True when some deny rule naming op matches object with this mechanism
 * (CK_UNAVAILABLE_INFORMATION: none) and operation. A malformed object is
 * denied (fail closed); a NULL program denies nothing.
 */
bool rules_denies(const rules_program *program, const rules_object *object, rules_op op,
                  CK_MECHANISM_TYPE mechanism)
{
    eval_state st;

    if (program == NULL) {
        return false;
    }
    if (state_init(&st, program, object) < 0) {
        return true;
    }
    st.know_dynamic = true;
    st.op = (uint32_t)op;
    st.has_mech = mechanism != CK_UNAVAILABLE_INFORMATION;
    st.mech = mechanism;
    for (size_t i = 0; i < program->n_rules; i++) {
        const lang_rule *r = &program->rules[i];
        if (r->kind == R_DENY && (r->ops & (uint32_t)op) != 0 && rule_matches(&st, r) == TRI_TRUE) {
            return true;
        }
    }
    return false;
}

/*
 * Computes what a client reads for type: the value of the last matching
 * set rule (whose own references to type see the value the earlier
 * matching sets leave), or CK_FALSE for CKA_MODIFIABLE when a readonly
 * rule matches. Writes min(size, length) bytes to buf (buf may be NULL)
 * and the full length to *len. Returns 1 when rewritten, 0 when no rule
 * applies (*len untouched), -1 on a malformed object or NULL len.
 */
int rules_rewrite(const rules_program *program, const rules_object *object, CK_ATTRIBUTE_TYPE type,
                  void *buf, size_t size, size_t *len)
{
    eval_state st;
    sink out = {.buf = buf, .size = buf != NULL ? size : 0, .len = 0};

    if (len == NULL) {
        return -1;
    }
    if (program == NULL) {
        return 0;
    }
    if (state_init(&st, program, object) < 0) {
        return -1;
    }
    if (type == CKA_MODIFIABLE) {
        CK_BBOOL no = CK_FALSE;
        if (!program->has_readonly || !any_readonly(&st)) {
            return 0;
        }
        sink_put(&out, &no, sizeof(no));
        *len = out.len;
        return 1;
    }
    for (size_t j = program->n_rules; j-- > 0;) {
        const lang_rule *r = &program->rules[j];
        if (r->kind == R_SET && r->attr == type && rule_matches(&st, r) == TRI_TRUE) {
            emit_value(&st, r->value, type, j, &out);
            *len = out.len;
            return 1;
        }
    }
    return 0;
}

/*
 * The layer of the first route rule that matches the creation template
 * (its attributes, and the view's context), or NULL for the default (also
 * for a NULL program or a malformed template). The string belongs to the
 * program.
 */
const char *rules_route(const rules_program *program, const rules_object *template_object)
{
    eval_state st;

    if (program == NULL || state_init(&st, program, template_object) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < program->n_rules; i++) {
        const lang_rule *r = &program->rules[i];
        if (r->kind == R_ROUTE && rule_matches(&st, r) == TRI_TRUE) {
            return program->pool + r->layer_off;
        }
    }
    return NULL;
}

/* ---- explain --------------------------------------------------------- */

/* Appends v to buf as "text" (escaped) when it is printable, else as hex. */
static void describe_bytes(char *buf, size_t size, const unsigned char *p, size_t len,
                           bool is_string)
{
    size_t used = 0, shown = len > 64 ? 64 : len;
    bool printable = is_string;

    for (size_t i = 0; i < shown && printable; i++) {
        printable = p[i] >= 0x20 && p[i] != 0x7f;
    }
    if (printable) {
        used += (size_t)snprintf(buf + used, size - used, "\"");
        for (size_t i = 0; i < shown && used + 4 < size; i++) {
            if (p[i] == '"' || p[i] == '\\') {
                buf[used++] = '\\';
            }
            buf[used++] = (char)p[i];
        }
        buf[used] = '\0';
        used += (size_t)snprintf(buf + used, size - used, "%s\"", shown < len ? "..." : "");
        return;
    }
    used += (size_t)snprintf(buf + used, size - used, "0x");
    for (size_t i = 0; i < shown && used + 3 < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%02x", p[i]);
    }
    if (shown < len && used < size) {
        snprintf(buf + used, size - used, "...");
    }
}

static void describe_set(const eval_state *st, size_t i, char *effect, size_t size)
{
    const lang_rule *r = &st->prog->rules[i];
    const lang_attr_info *info = lang_attr_by_type(r->attr);
    unsigned char value_buf[80];
    char name[48], shown[300];
    sink out = {.buf = value_buf, .size = sizeof(value_buf), .len = 0};

    emit_value(st, r->value, r->attr, i, &out);
    describe_bytes(shown, sizeof(shown), value_buf,
                   out.len < sizeof(value_buf) ? out.len : sizeof(value_buf),
                   info->vtype == TY_STRING);
    if (out.len > sizeof(value_buf)) {
        snprintf(shown + strlen(shown), sizeof(shown) - strlen(shown), " (%zu bytes)", out.len);
    }
    snprintf(effect, size, "%s rewritten to %s", lang_attr_short(info, name, sizeof(name)), shown);
}

static void describe_ops(uint32_t ops, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (uint32_t bit = 1; bit != 0 && bit <= ops && used < size; bit <<= 1) {
        if ((ops & bit) != 0) {
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     lang_op_name(bit));
        }
    }
}

/*
 * Calls fn for every rule that matches object, in order, with the rule's
 * line and its effect: "hidden", "shown", "label rewritten to \"x\"",
 * "read-only", "denies sign, verify" ("... depending on the mechanism or
 * operation" when the rule needs them), "routes create to personal". A
 * hide/show or route rule that matches after the deciding one says it has
 * no effect. Nothing is reported for a malformed object.
 */
void rules_explain(const rules_program *program, const rules_object *object, rules_explain_fn fn,
                   void *ctx)
{
    eval_state st;
    unsigned decided_line = 0, routed_line = 0;
    char effect[512], ops[160];

    if (program == NULL || fn == NULL || state_init(&st, program, object) < 0) {
        return;
    }
    for (size_t i = 0; i < program->n_rules; i++) {
        const lang_rule *r = &program->rules[i];
        tri m = rule_matches(&st, r);
        if (m == TRI_FALSE || (m == TRI_UNKNOWN && r->kind != R_DENY)) {
            continue;
        }
        switch (r->kind) {
        case R_HIDE:
        case R_SHOW:
            if (decided_line != 0) {
                snprintf(effect, sizeof(effect), "no effect: line %u decided visibility first",
                         decided_line);
            } else {
                decided_line = r->line;
                snprintf(effect, sizeof(effect), "%s", r->kind == R_HIDE ? "hidden" : "shown");
            }
            break;
        case R_SET:
            describe_set(&st, i, effect, sizeof(effect));
            break;
        case R_READONLY:
            snprintf(effect, sizeof(effect), "read-only");
            break;
        case R_DENY:
            describe_ops(r->ops, ops, sizeof(ops));
            snprintf(effect, sizeof(effect), "denies %s%s", ops,
                     m == TRI_UNKNOWN ? " depending on the mechanism or operation" : "");
            break;
        case R_ROUTE:
            if (routed_line != 0) {
                snprintf(effect, sizeof(effect), "no effect: line %u routes first", routed_line);
            } else {
                routed_line = r->line;
                snprintf(effect, sizeof(effect), "routes create to %s",
                         program->pool + r->layer_off);
            }
            break;
        default:
            continue;
        }
        fn(ctx, r->line, effect);
    }
}
