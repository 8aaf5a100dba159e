/*
 * document.c - the policy as an XML document: reading, parsing, validating.
 *
 * Owns the first three steps of a load (see policy_internal.h):
 *   1. read the file (regular file, at most 1 MiB);
 *   2. parse it with libxml2, safely: no network, no DTD, no entities, no
 *      XInclude; a DOCTYPE of any kind stops the parser at once;
 *   3. validate it against the embedded RELAX NG schema (rules/strata.rng),
 *      the single description of the document's structure, after a walk of
 *      the document against a summary of that schema that reports each
 *      mistake with its line and what is expected.
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

#include "policy_internal.h"
#include "strata_rng.h"

/* libxml2 keeps the RELAX NG type library in global tables that it fills
 * on first use without a lock; schema work is serialised here. */
static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------
 * XML helpers and libxml2 callbacks
 * ------------------------------------------------------------------ */

bool loader_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool loader_is_element(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrEqual(node->name, (const xmlChar *)name);
}

unsigned loader_line(const xmlNode *node)
{
    long line = xmlGetLineNo(node);
    return line > 0 && line <= (long)UINT_MAX ? (unsigned)line : 0;
}

static int compare_lines(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a;
    unsigned y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the lines the structure check reported, once it is over, so that
 * is_flagged can bisect them. */
static void sort_flagged(loader *ld)
{
    if (ld->n_flagged > 0) {
        qsort(ld->flagged, ld->n_flagged, sizeof(unsigned), compare_lines);
    }
}

/* True when the structure check already reported line (a line-less
 * schema error counts as reported once the check found anything).
 * Expects the lines sorted (sort_flagged). */
static bool is_flagged(const loader *ld, unsigned line)
{
    if (line == 0) {
        return ld->n_flagged > 0;
    }
    return ld->n_flagged > 0 &&
           bsearch(&line, ld->flagged, ld->n_flagged, sizeof(unsigned), compare_lines) != NULL;
}

/* An error found by the structure check, remembered by line so that the
 * RELAX NG validator does not report the same mistake again. The list of
 * lines grows by doubling; a line that finds no room is not remembered. */
static void structure_error(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void structure_error(loader *ld, unsigned line, const char *fmt, ...)
{
    va_list ap;

    if (ld->n_flagged == ld->flagged_cap) {
        size_t cap = ld->flagged_cap == 0 ? 16 : ld->flagged_cap * 2;
        unsigned *grown = realloc(ld->flagged, cap * sizeof(unsigned));
        if (grown != NULL) {
            ld->flagged = grown;
            ld->flagged_cap = cap;
        }
    }
    if (ld->n_flagged < ld->flagged_cap) {
        ld->flagged[ld->n_flagged++] = line;
    }
    va_start(ap, fmt);
    loader_vreport(ld, RULES_SEVERITY_ERROR, line, fmt, ap);
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
    loader_error(ld, (unsigned)xmlSAX2GetLineNumber(ctx),
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
int loader_read_file(loader *ld, const char *path, char **buf, size_t *len)
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
        loader_error(ld, 0,
                     "cannot open the policy file: %s; expected a readable strata.xml(5) file",
                     strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        loader_error(ld, 0, "cannot stat the policy file: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        loader_error(ld, 0, "the policy is not a regular file%s; expected a strata.xml(5) file",
                     S_ISDIR(st.st_mode) ? " but a directory" : "");
        goto out;
    }
    if (st.st_size > POLICY_MAX_BYTES) {
        loader_error(ld, 0,
                     "the policy file is %lld bytes; policies are limited to %d bytes (1 MiB)",
                     (long long)st.st_size, POLICY_MAX_BYTES);
        goto out;
    }
    /* One byte more than the limit, to notice a file that grew meanwhile. */
    data = malloc(POLICY_MAX_BYTES + 1);
    if (data == NULL) {
        loader_error(ld, 0, "out of memory reading the policy file");
        goto out;
    }
    while (used <= POLICY_MAX_BYTES) {
        ssize_t n = read(fd, data + used, POLICY_MAX_BYTES + 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            loader_error(ld, 0, "cannot read the policy file: %s", strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
    }
    if (used > POLICY_MAX_BYTES) {
        loader_error(ld, 0,
                     "the policy file is over %d bytes (1 MiB); policies are limited to that",
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
xmlDocPtr loader_parse(loader *ld, const char *buf, size_t len)
{
    xmlDocPtr doc = NULL;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    /* Never NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE. The
     * encoding is forced to UTF-8 so that libxml2 never converts input
     * through its encoding layer (whose errors bypass the context). */
    const int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES |
                        XML_PARSE_IGNORE_ENC | XML_PARSE_NOXINCNODE;

    if (ctxt == NULL) {
        loader_error(ld, 0, "out of memory creating the XML parser");
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
        loader_error(ld, 0, "the policy is not well-formed XML");
    }
    if (doc != NULL && xmlDocGetRootElement(doc) == NULL) {
        loader_error(ld, 0, "the policy has no root element; expected <strata version=\"1\">");
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

/* The schema summary: every element the schema declares with its shape,
 * in document order. It is read once per validation, so that checking a
 * policy of many elements does not search the schema for each. */
typedef struct {
    const char *name;    /* element name (in the schema doc) */
    element_shape shape; /* what it allows */
} element_summary;

typedef struct {
    element_summary *elements;
    size_t n;
} schema_summary;

/* Counts the named elements of the schema from node on (its following
 * siblings and everything inside them), in document order; fills their
 * summaries too when summary->elements has room for them. */
static void summarize(xmlNodePtr root, xmlNodePtr node, schema_summary *summary)
{
    for (; node != NULL; node = node->next) {
        if (node->type != XML_ELEMENT_NODE) {
            continue;
        }
        const char *name = rng_name(node);
        if (is_rng(node, "element") && name != NULL) {
            if (summary->elements != NULL) {
                element_summary *element = &summary->elements[summary->n];
                element->name = name;
                shape_walk(root, node, false, &element->shape, 0);
            }
            summary->n++;
        }
        summarize(root, node->children, summary);
    }
}

/* Reads the summary of rng. Returns 0, or -1 on OOM (summary empty). */
static int summary_load(xmlDocPtr rng, schema_summary *summary)
{
    xmlNodePtr root = xmlDocGetRootElement(rng);
    schema_summary count = {0};

    *summary = (schema_summary){0};
    summarize(root, root, &count);
    summary->elements = calloc(count.n + 1, sizeof(element_summary));
    if (summary->elements == NULL) {
        return -1;
    }
    summarize(root, root, summary);
    return 0;
}

/* The shape of the element called name (the first the schema declares),
 * or NULL when the schema has no such element. */
static const element_shape *shape_of(const schema_summary *summary, const char *name)
{
    for (size_t i = 0; i < summary->n; i++) {
        if (strcmp(summary->elements[i].name, name) == 0) {
            return &summary->elements[i].shape;
        }
    }
    return NULL;
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

    while (len > 0 && loader_is_space(*start)) {
        start++;
        len--;
    }
    while (len > 0 && loader_is_space(start[len - 1])) {
        len--;
    }
    if (attr->n_values > 0) {
        bool ok = false;
        for (size_t i = 0; i < attr->n_values && !ok; i++) {
            ok = strlen(attr->values[i]) == len && strncmp(attr->values[i], start, len) == 0;
        }
        if (!ok) {
            join_words(words, sizeof(words), attr->values, attr->n_values, true);
            structure_error(ld, loader_line(node), "<%s %s=\"%s\"> is not allowed; expected %s",
                            (const char *)node->name, attr->name, value, words);
        }
    } else if (attr->number) {
        size_t i = start[0] == '+' ? 1 : 0;
        bool ok = len > i;
        for (; i < len && ok; i++) {
            ok = start[i] >= '0' && start[i] <= '9';
        }
        if (!ok) {
            structure_error(ld, loader_line(node),
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
            structure_error(ld, loader_line(node), "<%s> has no attribute \"%s\"; it takes %s",
                            (const char *)node->name, (const char *)a->name,
                            shape->n_attrs > 0 ? words : "none");
            continue;
        }
        check_attr_value(ld, node, a, attr);
    }
    for (size_t i = 0; i < shape->n_attrs; i++) {
        if (shape->attrs[i].required &&
            xmlHasNsProp(node, (const xmlChar *)shape->attrs[i].name, NULL) == NULL) {
            structure_error(ld, loader_line(node), "<%s> needs the attribute \"%s\"",
                            (const char *)node->name, shape->attrs[i].name);
        }
    }
}

/* Checks node and everything inside it against the schema summary. */
static void check_structure(loader *ld, const schema_summary *summary, xmlNodePtr node, int depth)
{
    const element_shape *shape = depth > 16 ? NULL : shape_of(summary, (const char *)node->name);
    char words[256];

    if (shape == NULL) {
        return; /* reported by the parent, or far too deep: the validator says */
    }
    check_attrs(ld, node, shape);
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < shape->n_children && !known; i++) {
            known = c->ns == NULL && strcmp(shape->children[i], (const char *)c->name) == 0;
        }
        if (!known) {
            join_words(words, sizeof(words), shape->children, shape->n_children, false);
            structure_error(ld, loader_line(c), "<%s> is not allowed inside <%s>; expected %s",
                            (const char *)c->name, (const char *)node->name,
                            shape->n_children > 0 ? words : "no element (it holds text)");
            continue;
        }
        check_structure(ld, summary, c, depth + 1);
    }
}

/* Parses the embedded schema into a document. Returns it, or NULL with an
 * error in ld (out of memory, or a broken build). */
static xmlDocPtr parse_schema(loader *ld)
{
    xmlDocPtr doc = NULL;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();

    if (ctxt == NULL) {
        loader_error(ld, 0, "out of memory loading the policy schema");
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
        loader_error(ld, 0, "internal error: the embedded policy schema does not parse");
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
        loader_error(ld, 0, "out of memory loading the policy schema");
        goto out;
    }
    xmlRelaxNGSetParserStructuredErrors(pctxt, on_xml_error_cb, ld);
    schema = xmlRelaxNGParse(pctxt);
    if (schema == NULL) {
        loader_error(ld, 0, "internal error: the embedded policy schema does not load");
        goto out;
    }
    vctxt = xmlRelaxNGNewValidCtxt(schema);
    if (vctxt == NULL) {
        loader_error(ld, 0, "out of memory validating the policy");
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
int loader_validate(loader *ld, xmlDocPtr doc)
{
    int rc = -1;
    xmlDocPtr rng = NULL;
    schema_summary summary = {0};
    xmlNodePtr root = xmlDocGetRootElement(doc);
    size_t errors_before = ld->diags->n_errors;

    pthread_mutex_lock(&schema_lock);
    rng = parse_schema(ld);
    if (rng == NULL) {
        goto out;
    }
    if (summary_load(rng, &summary) != 0) {
        loader_error(ld, 0, "out of memory loading the policy schema");
        goto out;
    }
    if (!loader_is_element(root, "strata") || root->ns != NULL) {
        structure_error(ld, loader_line(root),
                        "the root element is <%s>; expected <strata version=\"1\">",
                        (const char *)root->name);
        goto out;
    }
    check_structure(ld, &summary, root, 0);
    sort_flagged(ld);
    int valid = validate_rng(ld, rng, doc);
    if (valid == 0 && ld->diags->n_errors == errors_before) {
        rc = 0;
    } else if (ld->diags->n_errors == errors_before) {
        loader_error(ld, loader_line(root),
                     "the policy does not match the schema of strata.xml(5)");
    }
out:
    free(summary.elements);
    xmlFreeDoc(rng);
    pthread_mutex_unlock(&schema_lock);
    return rc;
}
