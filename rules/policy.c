/*
 * policy.c - reads strata.xml(5) into the plain data model of rules.h.
 *
 * Loading goes in four steps, each of which only runs when the one before
 * found no error:
 *   1. read the file (regular file, at most 1 MiB);
 *   2. parse it with libxml2, safely: no network, no DTD, no entities, no
 *      XInclude; a DOCTYPE of any kind stops the parser at once;
 *   3. validate it against the embedded RELAX NG schema (rules/strata.rng),
 *      the single description of the document's structure;
 *   4. build the model, check what the schema cannot say (references,
 *      uniqueness, lengths, ranges; all reported, not just the first) and
 *      compile each view's rules.
 * libxml2's messages come through structured handlers set on our own
 * contexts and become diagnostics; nothing is printed. Global libxml2
 * state is never changed and xmlCleanupParser is never called: the module
 * lives in processes that may use libxml2 themselves.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "rules.h"
#include "strata_rng.h"

#define POLICY_MAX_BYTES (1024 * 1024)    /* larger files are refused unread */
#define LABEL_MAX_BYTES  32               /* CK_TOKEN_INFO label and manufacturer */
#define PIN_LEN_LIMIT    255              /* largest min-pin-len / max-pin-len */
#define KDF_OPS_MIN      1ULL             /* crypto_pwhash_argon2id_OPSLIMIT_MIN */
#define KDF_OPS_MAX      4294967295ULL    /* crypto_pwhash_argon2id_OPSLIMIT_MAX */
#define KDF_MEM_MIN      8192ULL          /* crypto_pwhash_argon2id_MEMLIMIT_MIN */
#define KDF_MEM_MAX      4398046510080ULL /* crypto_pwhash_argon2id_MEMLIMIT_MAX (64-bit) */
#define VIEW_PLACEHOLDER "{view}"

/* What one load needs to report problems and resolve paths. */
typedef struct {
    const char *name;      /* the file named in every diagnostic */
    char *dir;             /* folder relative paths resolve against, or NULL */
    rules_diags *diags;    /* where problems go */
    bool doctype;          /* a DOCTYPE was met: the parse was stopped */
    long last_schema_line; /* line of the last schema error (one per line) */
    unsigned *flagged;     /* lines the structure check already reported */
    size_t n_flagged;
} loader;

/* libxml2 keeps the RELAX NG type library in global tables that it fills
 * on first use without a lock; schema work is serialised here. */
static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------ */

static void report(loader *ld, rules_severity severity, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void report(loader *ld, rules_severity severity, unsigned line, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        text = NULL;
    }
    /* rules_diag_add still counts the error when memory ran out. */
    rules_diag_add(ld->diags, severity, ld->name, line, 0, "%s", text != NULL ? text : fmt);
    free(text);
}

static void error_at(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(ld, RULES_SEVERITY_ERROR, line, fmt, ap);
    va_end(ap);
}

static void warning_at(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warning_at(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(ld, RULES_SEVERITY_WARNING, line, fmt, ap);
    va_end(ap);
}

static bool is_xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_element(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrEqual(node->name, (const xmlChar *)name);
}

static unsigned node_line(const xmlNode *node)
{
    long line = xmlGetLineNo(node);
    return line > 0 && line <= (long)UINT_MAX ? (unsigned)line : 0;
}

/* True when the structure check already reported line (a line-less
 * schema error counts as reported once the check found anything). */
static bool is_flagged(const loader *ld, unsigned line)
{
    if (line == 0) {
        return ld->n_flagged > 0;
    }
    for (size_t i = 0; i < ld->n_flagged; i++) {
        if (ld->flagged[i] == line) {
            return true;
        }
    }
    return false;
}

/* An error found by the structure check, remembered by line so that the
 * RELAX NG validator does not report the same mistake again. */
static void structure_error(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void structure_error(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;
    unsigned *grown = realloc(ld->flagged, (ld->n_flagged + 1) * sizeof(unsigned));

    if (grown != NULL) {
        ld->flagged = grown;
        ld->flagged[ld->n_flagged++] = line;
    }
    va_start(ap, fmt);
    report(ld, RULES_SEVERITY_ERROR, line, fmt, ap);
    va_end(ap);
}

/* Structured error handler for the parser and the RELAX NG contexts.
 * data is the loader. Turns one libxml2 error into one diagnostic, keeping
 * only the first schema error of a line (libxml2 often explains one
 * mistake twice) and nothing after a DOCTYPE stopped the parse. */
static void on_xml_error(void *data, const xmlError *error)
{
    loader *ld = data;
    long line = error->line;

    if (ld->doctype || error->level == XML_ERR_NONE) {
        return;
    }
    if (line <= 0 && error->node != NULL) {
        line = xmlGetLineNo((const xmlNode *)error->node);
    }
    if (line < 0 || line > (long)UINT_MAX) {
        line = 0;
    }
    bool schema = error->domain == XML_FROM_RELAXNGV;
    if (schema && (line == ld->last_schema_line || is_flagged(ld, (unsigned)line))) {
        return;
    }
    if (schema) {
        ld->last_schema_line = line;
    }
    const char *what = schema ? "does not match the schema: " : "not well-formed XML: ";
    const char *message = error->message != NULL ? error->message : "unknown libxml2 error";
    rules_severity severity =
        error->level == XML_ERR_WARNING ? RULES_SEVERITY_WARNING : RULES_SEVERITY_ERROR;
    rules_diag_add(ld->diags, severity, ld->name, (unsigned)line, 0, "%s%s", what, message);
    if (schema) {
        rules_diag_hint(ld->diags, "see strata.xml(5) for the elements and attributes allowed");
    }
}

/* libxml2 2.12 made the error argument of structured handlers const. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *xml_error_arg;
#else
typedef xmlErrorPtr xml_error_arg;
#endif

/* Structured handler of the RELAX NG contexts; data is the loader. */
static void on_xml_error_cb(void *data, xml_error_arg error)
{
    on_xml_error(data, error);
}

/* Structured handler of the parser context: data is the SAX user data,
 * that is the parser context, whose _private is the loader. */
static void on_parser_error(void *data, xml_error_arg error)
{
    xmlParserCtxtPtr ctxt = data;
    on_xml_error(ctxt->_private, error);
}

/* SAX callback for a start tag: libxml2's own handler, then the element's
 * line moved from where its start tag ends to where it begins (the '<'),
 * which is where a reader looks. <rules> keeps the end line: its text
 * starts there. A start tag cannot contain '<' (not even in an attribute
 * value), so the last '<' before the parser's position opens it. */
static void on_start_element(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                             const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                             int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxtPtr ctxt = ctx;
    unsigned newlines = 0;

    xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
                          nb_defaulted, attributes);
    xmlNodePtr node = ctxt->node;
    if (node == NULL || ctxt->input == NULL || xmlStrEqual(localname, (const xmlChar *)"rules")) {
        return;
    }
    for (const xmlChar *p = ctxt->input->cur; p > ctxt->input->base; p--) {
        if (p[-1] == '<') {
            if (newlines < node->line && node->line < USHRT_MAX) {
                node->line = (unsigned short)(node->line - newlines);
            }
            return;
        }
        newlines += p[-1] == '\n';
    }
}

/* SAX callback for <!DOCTYPE ...>: refuses any document type declaration
 * before libxml2 reads its internal subset, so no entity is ever declared,
 * let alone expanded. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    loader *ld = ctxt->_private;

    (void)name, (void)external_id, (void)system_id;
    error_at(ld, (unsigned)xmlSAX2GetLineNumber(ctx),
             "a DOCTYPE is not allowed in a policy (no DTD, no entities); remove it");
    ld->doctype = true;
    xmlStopParser(ctxt);
}

/* SAX callback for entity declarations; unreachable while on_doctype
 * stops the parser, kept so that no entity can ever be registered. */
static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
    xmlParserCtxtPtr ctxt = ctx;
    (void)name, (void)type, (void)public_id, (void)system_id, (void)content;
    ((loader *)ctxt->_private)->doctype = true;
    xmlStopParser(ctxt);
}

/* ---------------------------------------------------------------------
 * Reading, parsing and validating
 * ------------------------------------------------------------------ */

/* Reads path into a malloc'd buffer. Returns 0 with *buf and *len set, or -1
 * with an error in ld (cannot open, not a regular file, over 1 MiB,
 * read error, out of memory). */
static int read_policy_file(loader *ld, const char *path, char **buf, size_t *len)
{
    int rc = -1;
    int fd = -1;
    char *data = NULL;
    struct stat st;
    size_t used = 0;

    *buf = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        error_at(ld, 0, "cannot open the policy file: %s; expected a readable strata.xml(5) file",
                 strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        error_at(ld, 0, "cannot stat the policy file: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        error_at(ld, 0, "the policy is not a regular file%s; expected a strata.xml(5) file",
                 S_ISDIR(st.st_mode) ? " but a directory" : "");
        goto out;
    }
    if (st.st_size > POLICY_MAX_BYTES) {
        error_at(ld, 0, "the policy file is %lld bytes; policies are limited to %d bytes (1 MiB)",
                 (long long)st.st_size, POLICY_MAX_BYTES);
        goto out;
    }
    /* One byte more than the limit, to notice a file that grew meanwhile. */
    data = malloc(POLICY_MAX_BYTES + 1);
    if (data == NULL) {
        error_at(ld, 0, "out of memory reading the policy file");
        goto out;
    }
    while (used <= POLICY_MAX_BYTES) {
        ssize_t n = read(fd, data + used, POLICY_MAX_BYTES + 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_at(ld, 0, "cannot read the policy file: %s", strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
    }
    if (used > POLICY_MAX_BYTES) {
        error_at(ld, 0, "the policy file is over %d bytes (1 MiB); policies are limited to that",
                 POLICY_MAX_BYTES);
        goto out;
    }
    *buf = data;
    *len = used;
    data = NULL;
    rc = 0;
out:
    free(data);
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

/* Parses buf safely. Returns the document (free with xmlFreeDoc), or NULL
 * with errors in ld: not well-formed, a DOCTYPE, out of memory. */
static xmlDocPtr parse_xml(loader *ld, const char *buf, size_t len)
{
    xmlDocPtr doc = NULL;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    /* Never NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE. The
     * encoding is forced to UTF-8 so that libxml2 never converts input
     * through its encoding layer (whose errors bypass the context). */
    const int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES |
                        XML_PARSE_IGNORE_ENC | XML_PARSE_NOXINCNODE;

    if (ctxt == NULL) {
        error_at(ld, 0, "out of memory creating the XML parser");
        goto out;
    }
    ctxt->_private = ld;
    ctxt->sax->serror = on_parser_error;
    ctxt->sax->internalSubset = on_doctype;
    ctxt->sax->externalSubset = NULL;
    ctxt->sax->entityDecl = on_entity_decl;
    ctxt->sax->startElementNs = on_start_element;
#if LIBXML_VERSION >= 21300
    xmlCtxtSetErrorHandler(ctxt, on_xml_error_cb, ld);
#endif
    doc = xmlCtxtReadMemory(ctxt, buf, (int)len, ld->name, "UTF-8", options);
    if (ld->doctype) {
        xmlFreeDoc(doc);
        doc = NULL;
        goto out;
    }
    if (doc == NULL && ld->diags->n_errors == 0) {
        error_at(ld, 0, "the policy is not well-formed XML");
    }
    if (doc != NULL && xmlDocGetRootElement(doc) == NULL) {
        error_at(ld, 0, "the policy has no root element; expected <strata version=\"1\">");
        xmlFreeDoc(doc);
        doc = NULL;
    }
out:
    xmlFreeParserCtxt(ctxt);
    return doc;
}

/* ---------------------------------------------------------------------
 * Structure check: clear messages derived from the schema itself
 *
 * libxml2's RELAX NG messages can be terse ("Element token failed to
 * validate attributes", with no line). Before running the validator, the
 * document is walked against a summary read from the embedded schema:
 * which attributes each element takes (required or not, and the words
 * allowed when the schema lists them) and which child elements it may
 * hold. Each finding names the line and what is expected. The validator
 * then runs as the authority; its messages for lines already reported are
 * dropped.
 * ------------------------------------------------------------------ */

#define SHAPE_MAX 16 /* attributes, values or children per element */

typedef struct {
    const char *name;              /* attribute name (in the schema doc) */
    bool required;                 /* not under optional/choice/zeroOrMore */
    bool number;                   /* data type unsignedLong */
    const char *values[SHAPE_MAX]; /* allowed words, when the schema lists them */
    size_t n_values;
} attr_shape;

typedef struct {
    attr_shape attrs[SHAPE_MAX];
    size_t n_attrs;
    const char *children[SHAPE_MAX]; /* element names allowed inside */
    size_t n_children;
} element_shape;

static bool is_rng(const xmlNode *node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrEqual(node->name, (const xmlChar *)name);
}

static const char *rng_name(const xmlNode *node)
{
    for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
        if (xmlStrEqual(a->name, (const xmlChar *)"name") && a->children != NULL) {
            return (const char *)a->children->content;
        }
    }
    return NULL;
}

/* The first element of the schema named kind ("element" or "define")
 * whose name attribute is name, or NULL. */
static xmlNodePtr rng_find(xmlNodePtr node, const char *kind, const char *name)
{
    for (; node != NULL; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }
        const char *n = rng_name(node);
        if (is_rng(node, kind) && n != NULL && strcmp(n, name) == 0) {
            return node;
        }
        xmlNodePtr found = rng_find(node->children, kind, name);
        if (found != NULL) {
            return found;
        }
    }
    return NULL;
}

/* Collects the words and type an attribute pattern allows. */
static void shape_values(xmlNodePtr root, xmlNodePtr pattern, attr_shape *attr, int depth)
{
    for (xmlNodePtr c = pattern->children; c != NULL && depth < 8; c = c->next) {
        if (is_rng(c, "value") && c->children != NULL && attr->n_values < SHAPE_MAX) {
            attr->values[attr->n_values++] = (const char *)c->children->content;
        } else if (is_rng(c, "data")) {
            xmlChar *type = xmlGetNoNsProp(c, (const xmlChar *)"type");
            attr->number = type != NULL && xmlStrEqual(type, (const xmlChar *)"unsignedLong");
            xmlFree(type);
        } else if (is_rng(c, "choice")) {
            shape_values(root, c, attr, depth + 1);
        } else if (is_rng(c, "ref") && rng_name(c) != NULL) {
            xmlNodePtr def = rng_find(root, "define", rng_name(c));
            if (def != NULL) {
                shape_values(root, def, attr, depth + 1);
            }
        }
    }
}

/* Adds what pattern allows (attributes and child elements) to shape,
 * following refs but not entering nested elements. */
static void shape_walk(xmlNodePtr root, xmlNodePtr pattern, bool optional, element_shape *shape,
                       int depth)
{
    for (xmlNodePtr c = pattern->children; c != NULL && depth < 8; c = c->next) {
        const char *name = rng_name(c);
        if (is_rng(c, "attribute") && name != NULL && shape->n_attrs < SHAPE_MAX) {
            attr_shape *attr = &shape->attrs[shape->n_attrs++];
            *attr = (attr_shape){.name = name, .required = !optional};
            shape_values(root, c, attr, 0);
        } else if (is_rng(c, "element") && name != NULL && shape->n_children < SHAPE_MAX) {
            shape->children[shape->n_children++] = name;
        } else if (is_rng(c, "ref") && name != NULL) {
            xmlNodePtr def = rng_find(root, "define", name);
            if (def != NULL) {
                shape_walk(root, def, optional, shape, depth + 1);
            }
        } else if (is_rng(c, "optional") || is_rng(c, "zeroOrMore") || is_rng(c, "choice")) {
            shape_walk(root, c, true, shape, depth + 1);
        } else if (is_rng(c, "oneOrMore") || is_rng(c, "group") || is_rng(c, "interleave")) {
            shape_walk(root, c, optional, shape, depth + 1);
        }
    }
}

/* Fills shape for the element called name. Returns false when the schema
 * has no such element. */
static bool shape_of(xmlDocPtr rng, const char *name, element_shape *shape)
{
    xmlNodePtr root = xmlDocGetRootElement(rng);
    xmlNodePtr element = rng_find(root, "element", name);

    memset(shape, 0, sizeof(*shape));
    if (element == NULL) {
        return false;
    }
    shape_walk(root, element, false, shape, 0);
    return true;
}

/* Writes "a, b or c" (words quoted when quote is set) into buf. */
static void join_words(char *buf, size_t size, const char *const *words, size_t n, bool quote)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == n ? " or " : ", ");
        int w = snprintf(buf + used, size - used, "%s%s%s%s", sep, quote ? "\"" : "", words[i],
                         quote ? "\"" : "");
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
}

static const attr_shape *find_attr(const element_shape *shape, const char *name)
{
    for (size_t i = 0; i < shape->n_attrs; i++) {
        if (strcmp(shape->attrs[i].name, name) == 0) {
            return &shape->attrs[i];
        }
    }
    return NULL;
}

/* Checks one attribute value against the words or type the schema gives. */
static void check_attr_value(loader *ld, xmlNodePtr node, xmlAttrPtr a, const attr_shape *attr)
{
    char words[256];
    xmlChar *raw = xmlNodeGetContent((xmlNodePtr)a);
    char *value = raw != NULL ? (char *)raw : "";
    size_t len = strlen(value);
    const char *start = value;

    while (len > 0 && is_xml_space(*start)) {
        start++;
        len--;
    }
    while (len > 0 && is_xml_space(start[len - 1])) {
        len--;
    }
    if (attr->n_values > 0) {
        bool ok = false;
        for (size_t i = 0; i < attr->n_values && !ok; i++) {
            ok = strlen(attr->values[i]) == len && strncmp(attr->values[i], start, len) == 0;
        }
        if (!ok) {
            join_words(words, sizeof(words), attr->values, attr->n_values, true);
            structure_error(ld, node_line(node), "<%s %s=\"%s\"> is not allowed; expected %s",
                            (const char *)node->name, attr->name, value, words);
        }
    } else if (attr->number) {
        size_t i = start[0] == '+' ? 1 : 0;
        bool ok = len > i;
        for (; i < len && ok; i++) {
            ok = start[i] >= '0' && start[i] <= '9';
        }
        if (!ok) {
            structure_error(ld, node_line(node),
                            "<%s %s=\"%s\"> is not a number; expected an unsigned integer",
                            (const char *)node->name, attr->name, value);
        }
    }
    xmlFree(raw);
}

/* Checks the attributes of node against shape. */
static void check_attrs(loader *ld, xmlNodePtr node, const element_shape *shape)
{
    char words[256];
    const char *names[SHAPE_MAX];

    for (size_t i = 0; i < shape->n_attrs; i++) {
        names[i] = shape->attrs[i].name;
    }
    for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
        const attr_shape *attr = a->ns == NULL ? find_attr(shape, (const char *)a->name) : NULL;
        if (attr == NULL) {
            join_words(words, sizeof(words), names, shape->n_attrs, false);
            structure_error(ld, node_line(node), "<%s> has no attribute \"%s\"; it takes %s",
                            (const char *)node->name, (const char *)a->name,
                            shape->n_attrs > 0 ? words : "none");
            continue;
        }
        check_attr_value(ld, node, a, attr);
    }
    for (size_t i = 0; i < shape->n_attrs; i++) {
        if (shape->attrs[i].required &&
            xmlHasNsProp(node, (const xmlChar *)shape->attrs[i].name, NULL) == NULL) {
            structure_error(ld, node_line(node), "<%s> needs the attribute \"%s\"",
                            (const char *)node->name, shape->attrs[i].name);
        }
    }
}

/* Checks node and everything inside it against the schema summary. */
static void check_structure(loader *ld, xmlDocPtr rng, xmlNodePtr node, int depth)
{
    element_shape shape;
    char words[256];

    if (depth > 16 || !shape_of(rng, (const char *)node->name, &shape)) {
        return; /* reported by the parent, or far too deep: the validator says */
    }
    check_attrs(ld, node, &shape);
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < shape.n_children && !known; i++) {
            known = c->ns == NULL && strcmp(shape.children[i], (const char *)c->name) == 0;
        }
        if (!known) {
            join_words(words, sizeof(words), shape.children, shape.n_children, false);
            structure_error(ld, node_line(c), "<%s> is not allowed inside <%s>; expected %s",
                            (const char *)c->name, (const char *)node->name,
                            shape.n_children > 0 ? words : "no element (it holds text)");
            continue;
        }
        check_structure(ld, rng, c, depth + 1);
    }
}

/* Parses the embedded schema into a document. Returns it, or NULL with an
 * error in ld (out of memory, or a broken build). */
static xmlDocPtr parse_schema(loader *ld)
{
    xmlDocPtr doc = NULL;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();

    if (ctxt == NULL) {
        error_at(ld, 0, "out of memory loading the policy schema");
        return NULL;
    }
    ctxt->_private = ld;
    ctxt->sax->serror = on_parser_error;
#if LIBXML_VERSION >= 21300
    xmlCtxtSetErrorHandler(ctxt, on_xml_error_cb, ld);
#endif
    doc = xmlCtxtReadMemory(ctxt, strata_rng, (int)strata_rng_len, "strata.rng", "UTF-8",
                            XML_PARSE_NONET | XML_PARSE_NOBLANKS);
    if (doc == NULL) {
        error_at(ld, 0, "internal error: the embedded policy schema does not parse");
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

/* Runs the RELAX NG validator. Returns 0 when doc matches, -1 otherwise
 * (with its messages for lines not reported yet). Expects schema_lock. */
static int validate_rng(loader *ld, xmlDocPtr rng, xmlDocPtr doc)
{
    int rc = -1;
    xmlRelaxNGParserCtxtPtr pctxt = xmlRelaxNGNewDocParserCtxt(rng);
    xmlRelaxNGPtr schema = NULL;
    xmlRelaxNGValidCtxtPtr vctxt = NULL;

    if (pctxt == NULL) {
        error_at(ld, 0, "out of memory loading the policy schema");
        goto out;
    }
    xmlRelaxNGSetParserStructuredErrors(pctxt, on_xml_error_cb, ld);
    schema = xmlRelaxNGParse(pctxt);
    if (schema == NULL) {
        error_at(ld, 0, "internal error: the embedded policy schema does not load");
        goto out;
    }
    vctxt = xmlRelaxNGNewValidCtxt(schema);
    if (vctxt == NULL) {
        error_at(ld, 0, "out of memory validating the policy");
        goto out;
    }
    xmlRelaxNGSetValidStructuredErrors(vctxt, on_xml_error_cb, ld);
    if (xmlRelaxNGValidateDoc(vctxt, doc) == 0) {
        rc = 0;
    }
out:
    xmlRelaxNGFreeValidCtxt(vctxt);
    xmlRelaxNGFree(schema);
    xmlRelaxNGFreeParserCtxt(pctxt);
    return rc;
}

/* Validates doc against the embedded schema: the structure check, then
 * the RELAX NG validator. Returns 0 when doc matches, -1 with errors (each
 * with its line) in ld otherwise. */
static int validate_xml(loader *ld, xmlDocPtr doc)
{
    int rc = -1;
    xmlDocPtr rng = NULL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    size_t errors_before = ld->diags->n_errors;

    pthread_mutex_lock(&schema_lock);
    rng = parse_schema(ld);
    if (rng == NULL) {
        goto out;
    }
    if (!is_element(root, "strata") || root->ns != NULL) {
        structure_error(ld, node_line(root),
                        "the root element is <%s>; expected <strata version=\"1\">",
                        (const char *)root->name);
        goto out;
    }
    check_structure(ld, rng, root, 0);
    int valid = validate_rng(ld, rng, doc);
    if (valid == 0 && ld->diags->n_errors == errors_before) {
        rc = 0;
    } else if (ld->diags->n_errors == errors_before) {
        error_at(ld, node_line(root), "the policy does not match the schema of strata.xml(5)");
    }
out:
    xmlFreeDoc(rng);
    pthread_mutex_unlock(&schema_lock);
    return rc;
}

/* ---------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------ */

/* The attribute name of node as a malloc'd string with surrounding XML
 * whitespace removed when trim is set. Returns 0 with *out set (NULL when
 * the attribute is absent), or -1 with an error in ld (out of memory). */
static int get_attr(loader *ld, xmlNodePtr node, const char *name, bool trim, char **out)
{
    xmlChar *value = xmlGetNoNsProp(node, (const xmlChar *)name);
    const char *start = (const char *)value;

    *out = NULL;
    if (value == NULL) {
        return xmlHasNsProp(node, (const xmlChar *)name, NULL) == NULL ? 0 : -1;
    }
    size_t len = strlen(start);
    if (trim) {
        while (len > 0 && is_xml_space(*start)) {
            start++;
            len--;
        }
        while (len > 0 && is_xml_space(start[len - 1])) {
            len--;
        }
    }
    *out = strndup(start, len);
    xmlFree(value);
    if (*out == NULL) {
        error_at(ld, node_line(node), "out of memory");
        return -1;
    }
    return 0;
}

/* Reads an unsigned number attribute (the schema already checked its
 * form). Returns 0 with *value set (left alone when the attribute is
 * absent), or -1 with an error in ld. */
static int get_number(loader *ld, xmlNodePtr node, const char *name, unsigned long long max,
                      unsigned long long *value)
{
    char *text = NULL;
    char *end = NULL;
    int rc = -1;

    if (get_attr(ld, node, name, true, &text) != 0) {
        goto out;
    }
    if (text == NULL) {
        rc = 0;
        goto out;
    }
    const char *digits = text[0] == '+' ? text + 1 : text;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, 10);
    if (digits[0] < '0' || digits[0] > '9' || *end != '\0' || errno != 0 || v > max) {
        error_at(ld, node_line(node), "%s=\"%s\" is not a number from 0 to %llu", name, text, max);
        goto out;
    }
    *value = v;
    rc = 0;
out:
    free(text);
    return rc;
}

/* Reads an attribute whose value is one of two words (the schema already
 * checked which). Returns 0 with *value true when it is the second word,
 * false when it is the first or the attribute is absent; -1 on OOM. */
static int get_choice(loader *ld, xmlNodePtr node, const char *name, const char *second,
                      bool *value)
{
    char *text = NULL;
    if (get_attr(ld, node, name, true, &text) != 0) {
        return -1;
    }
    *value = text != NULL && strcmp(text, second) == 0;
    free(text);
    return 0;
}

/* Joins path to the policy's folder unless it is absolute. Returns a
 * malloc'd absolute path, or NULL when path is relative and the policy
 * has no folder (read from memory under a relative name) or memory ran
 * out; *relative tells the two apart. */
static char *resolve_path(const loader *ld, const char *path, bool *relative)
{
    char *out = NULL;

    *relative = false;
    if (path[0] == '/') {
        return strdup(path);
    }
    if (ld->dir == NULL) {
        *relative = true;
        return NULL;
    }
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
    }
    if (asprintf(&out, "%s%s%s", ld->dir, strcmp(ld->dir, "/") == 0 ? "" : "/", path) < 0) {
        return NULL;
    }
    return out;
}

/* The folder of name as an absolute malloc'd path: name's dirname, made
 * absolute against the working directory when allow_cwd is set. Returns
 * NULL when there is none (relative name without allow_cwd) or on OOM. */
static char *policy_dir(const char *name, bool allow_cwd)
{
    char *dir = NULL;
    char *cwd = NULL;
    const char *slash = strrchr(name, '/');
    size_t len = slash == NULL ? 0 : (size_t)(slash - name);

    if (name[0] == '/') {
        return len == 0 ? strdup("/") : strndup(name, len);
    }
    if (!allow_cwd) {
        return NULL;
    }
    cwd = getcwd(NULL, 0);
    if (cwd == NULL) {
        return NULL;
    }
    if (len == 0) {
        return cwd;
    }
    if (asprintf(&dir, "%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", (int)len, name) < 0) {
        dir = NULL;
    }
    free(cwd);
    return dir;
}

/* True for a name made only of [A-Za-z0-9._-], at least one character. */
static bool is_simple_name(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static size_t count_children(xmlNodePtr parent, const char *name)
{
    size_t n = 0;
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name)) {
            n++;
        }
    }
    return n;
}

/* ---------------------------------------------------------------------
 * Building the model (the document already matches the schema)
 * ------------------------------------------------------------------ */

/* Resolves the path attribute attr of node into *out. Returns 0 (with an
 * error in ld when the path is empty or cannot be made absolute, *out
 * then NULL), or -1 on OOM. what names the element in messages. */
static int get_path(loader *ld, xmlNodePtr node, const char *attr, const char *what, char **out)
{
    char *raw = NULL;
    bool relative = false;
    int rc = -1;

    *out = NULL;
    if (get_attr(ld, node, attr, false, &raw) != 0) {
        goto out;
    }
    if (raw == NULL) {
        rc = 0;
        goto out;
    }
    if (raw[0] == '\0') {
        error_at(ld, node_line(node), "%s %s is empty; expected a file path", what, attr);
        rc = 0;
        goto out;
    }
    *out = resolve_path(ld, raw, &relative);
    if (*out == NULL && relative) {
        error_at(ld, node_line(node),
                 "%s %s \"%s\" is relative and the policy has no folder to resolve it against; "
                 "give an absolute path",
                 what, attr, raw);
        rc = 0;
        goto out;
    }
    if (*out == NULL) {
        error_at(ld, node_line(node), "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(raw);
    return rc;
}

static int build_module(loader *ld, xmlNodePtr node, rules_module *module)
{
    bool process = false;

    module->line = node_line(node);
    if (get_attr(ld, node, "id", false, &module->id) != 0 ||
        get_path(ld, node, "path", "module", &module->path) != 0 ||
        get_choice(ld, node, "isolate", "process", &process) != 0) {
        return -1;
    }
    module->isolate = process ? RULES_ISOLATE_PROCESS : RULES_ISOLATE_NONE;
    return 0;
}

static int build_layer(loader *ld, xmlNodePtr node, rules_layer *layer)
{
    bool read_only = false;
    bool lazy = false;

    layer->line = node_line(node);
    if (get_attr(ld, node, "id", false, &layer->id) != 0 ||
        get_attr(ld, node, "module", false, &layer->module_id) != 0 ||
        get_attr(ld, node, "token", false, &layer->token) != 0 ||
        get_attr(ld, node, "serial", false, &layer->serial) != 0 ||
        get_choice(ld, node, "access", "read-only", &read_only) != 0 ||
        get_choice(ld, node, "provision", "lazy", &lazy) != 0) {
        return -1;
    }
    layer->access = read_only ? RULES_ACCESS_READ_ONLY : RULES_ACCESS_READ_WRITE;
    layer->provision = lazy ? RULES_PROVISION_LAZY : RULES_PROVISION_NONE;
    return 0;
}

/* Splits a whitespace-separated list into a malloc'd array of malloc'd
 * strings. Returns 0 (possibly with *n == 0), or -1 on OOM. */
static int split_words(const char *text, char ***words, size_t *n)
{
    size_t count = 0;
    const char *p = text;

    *words = NULL;
    *n = 0;
    while (*p != '\0') {
        while (is_xml_space(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        count++;
        while (*p != '\0' && !is_xml_space(*p)) {
            p++;
        }
    }
    if (count == 0) {
        return 0;
    }
    *words = calloc(count, sizeof(char *));
    if (*words == NULL) {
        return -1;
    }
    for (p = text; *n < count;) {
        while (is_xml_space(*p)) {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && !is_xml_space(*p)) {
            p++;
        }
        (*words)[*n] = strndup(start, (size_t)(p - start));
        if ((*words)[*n] == NULL) {
            return -1; /* the caller frees what was made */
        }
        (*n)++;
    }
    return 0;
}

/* Copies the text of <rules> verbatim. A comment inside it becomes as many
 * line breaks as it spans, so that line numbers in the text still match
 * the file. Returns a malloc'd string, or NULL on OOM. */
static char *rules_text(xmlNodePtr node)
{
    xmlBufferPtr buf = xmlBufferCreate();
    char *text = NULL;

    if (buf == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            xmlBufferCat(buf, c->content);
        } else if (c->type == XML_COMMENT_NODE && c->content != NULL) {
            for (const xmlChar *p = c->content; *p != '\0'; p++) {
                if (*p == '\n') {
                    xmlBufferCCat(buf, "\n");
                }
            }
        }
    }
    text = strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    return text;
}

static int build_view(loader *ld, xmlNodePtr node, rules_view *view)
{
    char *layers = NULL;
    int rc = -1;

    view->line = node_line(node);
    if (get_attr(ld, node, "id", false, &view->id) != 0 ||
        get_attr(ld, node, "layers", false, &layers) != 0 ||
        get_choice(ld, node, "public", "true", &view->is_public) != 0 ||
        get_choice(ld, node, "whiteout", "allow", &view->allow_whiteout) != 0) {
        goto out;
    }
    if (split_words(layers != NULL ? layers : "", &view->layers, &view->n_layers) != 0) {
        error_at(ld, view->line, "out of memory");
        goto out;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (is_element(c, "rules")) {
            view->rules_text = rules_text(c);
            /* The text starts right after "<rules>", on the line libxml2
             * gives the element (the line its start tag ends on). */
            view->rules_line = node_line(c);
            if (view->rules_text == NULL) {
                error_at(ld, view->rules_line, "out of memory");
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(layers);
    return rc;
}

static int build_kdf(loader *ld, xmlNodePtr node, rules_token *token)
{
    unsigned long long ops = 0;
    unsigned long long mem = 0;
    unsigned line = node_line(node);
    bool has_ops = xmlHasNsProp(node, (const xmlChar *)"ops", NULL) != NULL;
    bool has_mem = xmlHasNsProp(node, (const xmlChar *)"mem", NULL) != NULL;

    if (get_number(ld, node, "ops", ULLONG_MAX, &ops) != 0 ||
        get_number(ld, node, "mem", ULLONG_MAX, &mem) != 0) {
        return 0; /* reported */
    }
    if (has_ops && (ops < KDF_OPS_MIN || ops > KDF_OPS_MAX)) {
        error_at(ld, line, "kdf ops=\"%llu\" is %s libsodium's Argon2id %s of %llu", ops,
                 ops < KDF_OPS_MIN ? "below" : "above", ops < KDF_OPS_MIN ? "minimum" : "maximum",
                 ops < KDF_OPS_MIN ? KDF_OPS_MIN : KDF_OPS_MAX);
    } else {
        token->kdf_ops = ops;
    }
    if (has_mem && (mem < KDF_MEM_MIN || mem > KDF_MEM_MAX || mem > SIZE_MAX)) {
        error_at(ld, line, "kdf mem=\"%llu\" is %s libsodium's Argon2id %s of %llu bytes", mem,
                 mem < KDF_MEM_MIN ? "below" : "above", mem < KDF_MEM_MIN ? "minimum" : "maximum",
                 mem < KDF_MEM_MIN ? KDF_MEM_MIN : KDF_MEM_MAX);
    } else {
        token->kdf_mem = (size_t)mem;
    }
    return 0;
}

/* Reads the pin lengths and failure limit of a token and checks them. */
static void build_token_limits(loader *ld, xmlNodePtr node, rules_token *token)
{
    unsigned long long max_failed = 10;
    unsigned long long min_pin = 4;
    unsigned long long max_pin = PIN_LEN_LIMIT;
    unsigned line = node_line(node);

    if (get_number(ld, node, "max-failed-logins", UINT_MAX, &max_failed) == 0 && max_failed == 0) {
        error_at(ld, line, "max-failed-logins=\"0\" is not allowed; expected 1 or more");
    }
    int min_ok = get_number(ld, node, "min-pin-len", PIN_LEN_LIMIT, &min_pin) == 0;
    int max_ok = get_number(ld, node, "max-pin-len", PIN_LEN_LIMIT, &max_pin) == 0;
    if (min_ok && min_pin == 0) {
        error_at(ld, line, "min-pin-len=\"0\" is not allowed; expected 1 to %d", PIN_LEN_LIMIT);
        min_ok = 0;
    }
    if (max_ok && max_pin == 0) {
        error_at(ld, line, "max-pin-len=\"0\" is not allowed; expected 1 to %d", PIN_LEN_LIMIT);
        max_ok = 0;
    }
    if (min_ok && max_ok && min_pin > max_pin) {
        error_at(ld, line, "min-pin-len (%llu) is greater than max-pin-len (%llu)", min_pin,
                 max_pin);
    }
    token->max_failed_logins = (unsigned)max_failed;
    token->min_pin_len = (unsigned)min_pin;
    token->max_pin_len = (unsigned)max_pin;
}

static int build_token(loader *ld, xmlNodePtr node, rules_token *token)
{
    size_t i = 0;

    token->line = node_line(node);
    if (get_attr(ld, node, "label", false, &token->label) != 0 ||
        get_attr(ld, node, "manufacturer", false, &token->manufacturer) != 0) {
        return -1;
    }
    if (token->manufacturer == NULL && (token->manufacturer = strdup("Strata")) == NULL) {
        error_at(ld, token->line, "out of memory");
        return -1;
    }
    build_token_limits(ld, node, token);
    token->n_views = count_children(node, "view");
    token->views = calloc(token->n_views, sizeof(rules_view));
    if (token->views == NULL && token->n_views != 0) {
        error_at(ld, token->line, "out of memory");
        return -1;
    }
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (is_element(c, "kdf") && build_kdf(ld, c, token) != 0) {
            return -1;
        }
        if (is_element(c, "view") && build_view(ld, c, &token->views[i++]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads <strata version> and the optional <catalog> and <log>. */
static int build_header(loader *ld, xmlNodePtr root, rules_policy *policy)
{
    unsigned long long version = 0;

    if (get_number(ld, root, "version", ULLONG_MAX, &version) == 0 && version != 1) {
        error_at(ld, node_line(root),
                 "unsupported policy version \"%llu\"; this Strata reads version=\"1\"", version);
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        if (is_element(c, "catalog") &&
            get_path(ld, c, "path", "catalog", &policy->catalog_path) != 0) {
            return -1;
        }
        if (!is_element(c, "log")) {
            continue;
        }
        char *calls = NULL;
        if (get_attr(ld, c, "calls", true, &calls) != 0) {
            return -1;
        }
        bool is_stderr = calls != NULL && strcmp(calls, "stderr") == 0;
        free(calls);
        if (is_stderr) {
            policy->log = strdup("stderr");
            if (policy->log == NULL) {
                error_at(ld, node_line(c), "out of memory");
                return -1;
            }
        } else if (get_path(ld, c, "calls", "log", &policy->log) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Builds the whole model from a document that matches the schema. Returns
 * 0 (semantic errors may have been reported on the way), or -1 on OOM. */
static int build_policy(loader *ld, xmlNodePtr root, rules_policy *policy)
{
    size_t m = 0, l = 0, t = 0;

    if (build_header(ld, root, policy) != 0) {
        return -1;
    }
    policy->n_modules = count_children(root, "module");
    policy->n_layers = count_children(root, "layer");
    policy->n_tokens = count_children(root, "token");
    policy->modules = calloc(policy->n_modules + 1, sizeof(rules_module));
    policy->layers = calloc(policy->n_layers + 1, sizeof(rules_layer));
    policy->tokens = calloc(policy->n_tokens + 1, sizeof(rules_token));
    if (policy->modules == NULL || policy->layers == NULL || policy->tokens == NULL) {
        error_at(ld, 0, "out of memory");
        return -1;
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        int rc = 0;
        if (is_element(c, "module")) {
            rc = build_module(ld, c, &policy->modules[m++]);
        } else if (is_element(c, "layer")) {
            rc = build_layer(ld, c, &policy->layers[l++]);
        } else if (is_element(c, "token")) {
            rc = build_token(ld, c, &policy->tokens[t++]);
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Checks the schema cannot express
 * ------------------------------------------------------------------ */

static void check_modules(loader *ld, const rules_policy *policy)
{
    for (size_t i = 0; i < policy->n_modules; i++) {
        const rules_module *module = &policy->modules[i];
        bool used = false;

        if (!is_simple_name(module->id)) {
            error_at(ld, module->line,
                     "module id \"%s\" is not a simple name; expected letters, digits, '.', '_' "
                     "or '-'",
                     module->id);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(policy->modules[j].id, module->id) == 0) {
                error_at(ld, module->line,
                         "module id \"%s\" is already used on line %u; ids must be unique",
                         module->id, policy->modules[j].line);
                break;
            }
        }
        if (module->path != NULL && access(module->path, F_OK) != 0) {
            warning_at(ld, module->line, "module \"%s\": %s does not exist on this machine",
                       module->id, module->path);
        }
        for (size_t j = 0; j < policy->n_layers && !used; j++) {
            used = strcmp(policy->layers[j].module_id, module->id) == 0;
        }
        if (!used) {
            warning_at(ld, module->line, "module \"%s\" is used by no layer", module->id);
        }
    }
}

static bool layer_used(const rules_policy *policy, const char *id)
{
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *view = &policy->tokens[t].views[v];
            for (size_t k = 0; k < view->n_layers; k++) {
                if (strcmp(view->layers[k], id) == 0) {
                    return true;
                }
            }
        }
    }
    return false;
}

static void check_layer(loader *ld, const rules_policy *policy, size_t i)
{
    const rules_layer *layer = &policy->layers[i];
    bool is_template = strstr(layer->token, VIEW_PLACEHOLDER) != NULL;

    if (!is_simple_name(layer->id)) {
        error_at(ld, layer->line,
                 "layer id \"%s\" is not a simple name; expected letters, digits, '.', '_' or '-'",
                 layer->id);
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(policy->layers[j].id, layer->id) == 0) {
            error_at(ld, layer->line,
                     "layer id \"%s\" is already used on line %u; ids must be unique", layer->id,
                     policy->layers[j].line);
            break;
        }
    }
    if (rules_policy_module(policy, layer->module_id) == NULL) {
        error_at(ld, layer->line, "layer \"%s\" names module \"%s\", which is not declared",
                 layer->id, layer->module_id);
    }
    if (layer->token[0] == '\0') {
        error_at(ld, layer->line, "layer \"%s\" has an empty token label", layer->id);
    } else if (!is_template && strlen(layer->token) > LABEL_MAX_BYTES) {
        error_at(ld, layer->line, "layer \"%s\" token label is %zu bytes; at most %d are allowed",
                 layer->id, strlen(layer->token), LABEL_MAX_BYTES);
    }
    if (layer->provision == RULES_PROVISION_LAZY && !is_template) {
        error_at(ld, layer->line,
                 "lazy layer \"%s\" needs \"{view}\" in its token label so that each view gets "
                 "its own token (for example token=\"strata-{view}\")",
                 layer->id);
    }
    if (layer->provision == RULES_PROVISION_LAZY && layer->serial != NULL) {
        error_at(ld, layer->line,
                 "lazy layer \"%s\" cannot name a serial: a token's serial is known only once "
                 "Strata has created it",
                 layer->id);
    }
    if (layer->provision == RULES_PROVISION_LAZY && layer->access == RULES_ACCESS_READ_ONLY) {
        warning_at(ld, layer->line, "lazy layer \"%s\" is read-only, so its new tokens stay empty",
                   layer->id);
    }
    if (!layer_used(policy, layer->id)) {
        warning_at(ld, layer->line, "layer \"%s\" is used by no view", layer->id);
    }
}

static void check_token(loader *ld, const rules_policy *policy, size_t i)
{
    const rules_token *token = &policy->tokens[i];
    size_t len = strlen(token->label);

    if (len == 0 || len > LABEL_MAX_BYTES) {
        error_at(ld, token->line, "token label \"%s\" is %zu bytes; expected 1 to %d bytes",
                 token->label, len, LABEL_MAX_BYTES);
    }
    if (strlen(token->manufacturer) > LABEL_MAX_BYTES) {
        error_at(ld, token->line, "token manufacturer is %zu bytes; at most %d are allowed",
                 strlen(token->manufacturer), LABEL_MAX_BYTES);
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(policy->tokens[j].label, token->label) == 0) {
            error_at(ld, token->line,
                     "token label \"%s\" is already used on line %u; labels must be unique",
                     token->label, policy->tokens[j].line);
            break;
        }
    }
}

/* The view declared before view (in any token) with the same id, or NULL. */
static const rules_view *earlier_view(const rules_policy *policy, const rules_view *view)
{
    for (size_t t = 0; t < policy->n_tokens; t++) {
        for (size_t v = 0; v < policy->tokens[t].n_views; v++) {
            const rules_view *other = &policy->tokens[t].views[v];
            if (other == view) {
                return NULL;
            }
            if (strcmp(other->id, view->id) == 0) {
                return other;
            }
        }
    }
    return NULL;
}

/* Checks a view's layer list. Returns true when every layer is known and
 * named once, so that its rules can be compiled. */
static bool check_view_layers(loader *ld, const rules_policy *policy, const rules_view *view)
{
    bool ok = view->n_layers > 0;

    if (view->n_layers == 0) {
        error_at(ld, view->line,
                 "view \"%s\" has an empty layers list; expected layer ids, top first", view->id);
    }
    for (size_t k = 0; k < view->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
        char label[LABEL_MAX_BYTES + 1];
        bool repeated = false;

        for (size_t j = 0; j < k && !repeated; j++) {
            repeated = strcmp(view->layers[j], view->layers[k]) == 0;
        }
        if (repeated) {
            error_at(ld, view->line, "view \"%s\" names layer \"%s\" twice; a layer stacks once",
                     view->id, view->layers[k]);
            ok = false;
        } else if (layer == NULL) {
            error_at(ld, view->line, "view \"%s\" names layer \"%s\", which is not declared",
                     view->id, view->layers[k]);
            ok = false;
        } else if (strstr(layer->token, VIEW_PLACEHOLDER) != NULL && is_simple_name(view->id) &&
                   rules_layer_token_label(layer, view->id, label, sizeof(label)) != 0) {
            error_at(ld, view->line,
                     "layer \"%s\" token label \"%s\" is over %d bytes for view \"%s\"", layer->id,
                     layer->token, LABEL_MAX_BYTES, view->id);
        }
    }
    return ok;
}

/* Checks the views of token i. compile[] (one per view of the token) is
 * set to true for each view whose rules may be compiled. */
static void check_views(loader *ld, const rules_policy *policy, size_t i, bool *compile)
{
    const rules_token *token = &policy->tokens[i];
    const rules_view *public_view = NULL;

    for (size_t v = 0; v < token->n_views; v++) {
        const rules_view *view = &token->views[v];
        const rules_view *other = NULL;

        if (!is_simple_name(view->id)) {
            error_at(ld, view->line,
                     "view id \"%s\" is not a simple name; expected letters, digits, '.', '_' or "
                     "'-'",
                     view->id);
        } else if ((other = earlier_view(policy, view)) != NULL) {
            error_at(ld, view->line,
                     "view id \"%s\" is already used on line %u; view ids must be unique in the "
                     "policy",
                     view->id, other->line);
        }
        if (view->is_public && public_view != NULL) {
            error_at(ld, view->line,
                     "view \"%s\" is public but view \"%s\" (line %u) already is; a token has at "
                     "most one public view",
                     view->id, public_view->id, public_view->line);
        } else if (view->is_public) {
            public_view = view;
        }
        compile[v] = check_view_layers(ld, policy, view);
    }
}

/* Compiles the rules of view into view->rules. Returns 0, or -1 on OOM. */
static int compile_view(loader *ld, const rules_policy *policy, rules_view *view)
{
    const char **ids = calloc(view->n_layers, sizeof(char *));
    bool *read_only = calloc(view->n_layers, sizeof(bool));
    int rc = -1;

    if (ids == NULL || read_only == NULL) {
        error_at(ld, view->line, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < view->n_layers; k++) {
        const rules_layer *layer = rules_policy_layer(policy, view->layers[k]);
        ids[k] = layer->id;
        read_only[k] = layer->access == RULES_ACCESS_READ_ONLY;
    }
    rules_scope scope = {
        .layers = ids,
        .layer_read_only = read_only,
        .n_layers = view->n_layers,
    };
    size_t errors_before = ld->diags->n_errors;
    view->rules = rules_compile(view->rules_text, ld->name, view->rules_line, &scope, ld->diags);
    if (view->rules == NULL && ld->diags->n_errors == errors_before) {
        error_at(ld, view->rules_line, "the rules of view \"%s\" do not compile", view->id);
    }
    rc = 0;
out:
    free(ids);
    free(read_only);
    return rc;
}

/* Runs every semantic check, then compiles the rules of each view whose
 * layers are sound. Returns 0, or -1 on OOM. */
static int check_policy(loader *ld, rules_policy *policy)
{
    check_modules(ld, policy);
    for (size_t i = 0; i < policy->n_layers; i++) {
        check_layer(ld, policy, i);
    }
    for (size_t i = 0; i < policy->n_tokens; i++) {
        rules_token *token = &policy->tokens[i];
        bool *compile = calloc(token->n_views + 1, sizeof(bool));
        if (compile == NULL) {
            error_at(ld, token->line, "out of memory");
            return -1;
        }
        check_token(ld, policy, i);
        check_views(ld, policy, i, compile);
        for (size_t v = 0; v < token->n_views; v++) {
            rules_view *view = &token->views[v];
            if (compile[v] && view->rules_text != NULL && compile_view(ld, policy, view) != 0) {
                free(compile);
                return -1;
            }
        }
        free(compile);
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Public interface
 * ------------------------------------------------------------------ */

static bool is_blank(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_xml_space(buf[i])) {
            return false;
        }
    }
    return true;
}

/* Loads a policy from buf for ld. Returns 0 with *out set, or -1 with at
 * least one error in ld->diags and *out NULL. */
static int load_buffer(loader *ld, const char *buf, size_t len, rules_policy **out)
{
    int rc = -1;
    xmlDocPtr doc = NULL;
    rules_policy *policy = NULL;
    size_t errors_before = ld->diags->n_errors;

    if (len > POLICY_MAX_BYTES) {
        error_at(ld, 0, "the policy is %zu bytes; policies are limited to %d bytes (1 MiB)", len,
                 POLICY_MAX_BYTES);
        goto out;
    }
    if (is_blank(buf, len)) {
        error_at(ld, 1, "the policy is empty; expected a <strata version=\"1\"> document");
        goto out;
    }
    xmlInitParser();
    doc = parse_xml(ld, buf, len);
    if (doc == NULL || ld->diags->n_errors != errors_before) {
        goto out;
    }
    if (validate_xml(ld, doc) != 0) {
        goto out;
    }
    policy = calloc(1, sizeof(*policy));
    if (policy == NULL || (policy->path = strdup(ld->name)) == NULL) {
        error_at(ld, 0, "out of memory");
        goto out;
    }
    /* Values wrong in themselves (a version, a range) are reported while
     * building; the checks still run so that one pass reports them all. */
    if (build_policy(ld, xmlDocGetRootElement(doc), policy) != 0) {
        goto out;
    }
    if (check_policy(ld, policy) != 0 || ld->diags->n_errors != errors_before) {
        goto out;
    }
    *out = policy;
    policy = NULL;
    rc = 0;
out:
    rules_policy_free(policy);
    xmlFreeDoc(doc);
    if (rc != 0 && ld->diags->n_errors == errors_before) {
        error_at(ld, 0, "the policy could not be loaded");
    }
    return rc;
}

/* Returns 0 with *out set (warnings may be in diags), or -1 with *out NULL
 * and at least one error in diags: unreadable, too large, malformed,
 * schema-invalid or semantically wrong policy, or out of memory. */
int rules_policy_load(const char *path, rules_policy **out, rules_diags *diags)
{
    int rc = -1;
    char *buf = NULL;
    size_t len = 0;
    loader ld = {.name = path != NULL ? path : "<policy>", .diags = diags};

    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        error_at(&ld, 0, "no policy file was given");
        goto out;
    }
    if (read_policy_file(&ld, path, &buf, &len) != 0) {
        goto out;
    }
    ld.dir = policy_dir(path, true);
    rc = load_buffer(&ld, buf, len, out);
out:
    free(buf);
    free(ld.dir);
    free(ld.flagged);
    return rc;
}

/* As rules_policy_load, from memory. Relative paths in the policy resolve
 * against the folder of name when name is an absolute path; otherwise
 * they are errors. */
int rules_policy_load_memory(const char *buf, size_t len, const char *name, rules_policy **out,
                             rules_diags *diags)
{
    loader ld = {.name = name != NULL ? name : "<memory>", .diags = diags};
    int rc = -1;

    *out = NULL;
    if (buf == NULL && len != 0) {
        error_at(&ld, 0, "no policy text was given");
        return -1;
    }
    ld.dir = policy_dir(ld.name, false);
    rc = load_buffer(&ld, buf != NULL ? buf : "", len, out);
    free(ld.dir);
    free(ld.flagged);
    return rc;
}

static void free_view(rules_view *view)
{
    free(view->id);
    for (size_t i = 0; i < view->n_layers; i++) {
        free(view->layers[i]);
    }
    free(view->layers);
    free(view->rules_text);
    if (view->rules != NULL) {
        rules_program_free(view->rules);
    }
}

void rules_policy_free(rules_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    for (size_t i = 0; policy->modules != NULL && i < policy->n_modules; i++) {
        free(policy->modules[i].id);
        free(policy->modules[i].path);
    }
    for (size_t i = 0; policy->layers != NULL && i < policy->n_layers; i++) {
        free(policy->layers[i].id);
        free(policy->layers[i].module_id);
        free(policy->layers[i].token);
        free(policy->layers[i].serial);
    }
    for (size_t i = 0; policy->tokens != NULL && i < policy->n_tokens; i++) {
        rules_token *token = &policy->tokens[i];
        for (size_t v = 0; token->views != NULL && v < token->n_views; v++) {
            free_view(&token->views[v]);
        }
        free(token->views);
        free(token->label);
        free(token->manufacturer);
    }
    free(policy->modules);
    free(policy->layers);
    free(policy->tokens);
    free(policy->path);
    free(policy->catalog_path);
    free(policy->log);
    free(policy);
}

const rules_module *rules_policy_module(const rules_policy *policy, const char *id)
{
    for (size_t i = 0; policy != NULL && id != NULL && i < policy->n_modules; i++) {
        if (policy->modules[i].id != NULL && strcmp(policy->modules[i].id, id) == 0) {
            return &policy->modules[i];
        }
    }
    return NULL;
}

const rules_layer *rules_policy_layer(const rules_policy *policy, const char *id)
{
    for (size_t i = 0; policy != NULL && id != NULL && i < policy->n_layers; i++) {
        if (policy->layers[i].id != NULL && strcmp(policy->layers[i].id, id) == 0) {
            return &policy->layers[i];
        }
    }
    return NULL;
}

const rules_token *rules_policy_token(const rules_policy *policy, const char *label)
{
    for (size_t i = 0; policy != NULL && label != NULL && i < policy->n_tokens; i++) {
        if (policy->tokens[i].label != NULL && strcmp(policy->tokens[i].label, label) == 0) {
            return &policy->tokens[i];
        }
    }
    return NULL;
}

const rules_view *rules_token_view(const rules_token *token, const char *id)
{
    for (size_t i = 0; token != NULL && id != NULL && i < token->n_views; i++) {
        if (token->views[i].id != NULL && strcmp(token->views[i].id, id) == 0) {
            return &token->views[i];
        }
    }
    return NULL;
}

/* Returns 0 with buf holding the label (every "{view}" replaced by view),
 * or -1 when it does not fit in size bytes with its NUL, or when the
 * label needs a view and view is NULL. */
int rules_layer_token_label(const rules_layer *layer, const char *view, char *buf, size_t size)
{
    const size_t placeholder_len = strlen(VIEW_PLACEHOLDER);
    const char *p = layer != NULL ? layer->token : NULL;
    size_t used = 0;

    if (p == NULL || buf == NULL || size == 0) {
        return -1;
    }
    while (*p != '\0') {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, VIEW_PLACEHOLDER, placeholder_len) == 0) {
            if (view == NULL) {
                return -1;
            }
            piece = view;
            len = strlen(view);
            p += placeholder_len;
        } else {
            p++;
        }
        if (len >= size - used) {
            return -1;
        }
        memcpy(buf + used, piece, len);
        used += len;
    }
    buf[used] = '\0';
    return 0;
}

/* Returns getenv(name) when it is set and not empty, else NULL. */
static const char *env_value(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* The user's policy path: $XDG_CONFIG_HOME/strata/strata.xml when
 * XDG_CONFIG_HOME is an absolute path (the XDG rule), else
 * $HOME/.config/strata/strata.xml; NULL when neither applies or on OOM
 * (*oom tells). */
static char *user_policy_path(bool *oom)
{
    const char *xdg = env_value("XDG_CONFIG_HOME");
    const char *home = env_value("HOME");
    char *path = NULL;
    int n = -1;

    *oom = false;
    if (xdg != NULL && xdg[0] == '/') {
        n = asprintf(&path, "%s/strata/strata.xml", xdg);
    } else if (home != NULL) {
        n = asprintf(&path, "%s/.config/strata/strata.xml", home);
    } else {
        return NULL;
    }
    if (n < 0) {
        *oom = true;
        return NULL;
    }
    return path;
}

/* Returns a malloc'd path: $STRATA_CONF when set (whether or not it
 * exists); else the user's file when it exists; else the system file
 * /etc/strata/strata.xml when it exists; else the user's path when there
 * is a home, or the system path. NULL on allocation failure. */
char *rules_policy_default_path(void)
{
    static const char system_path[] = "/etc/strata/strata.xml";
    const char *conf = env_value("STRATA_CONF");
    bool oom = false;
    char *user = NULL;

    if (conf != NULL) {
        return strdup(conf);
    }
    user = user_policy_path(&oom);
    if (oom) {
        return NULL;
    }
    if (user != NULL && access(user, F_OK) == 0) {
        return user;
    }
    if (user == NULL || access(system_path, F_OK) == 0) {
        free(user);
        return strdup(system_path);
    }
    return user;
}
