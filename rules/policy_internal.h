/*
 * policy_internal.h - private to the policy loader (policy.c, document.c,
 * model.c, index.c, semantics.c). Not installed; rules.h stays the one
 * public header.
 *
 * One load of strata.xml(5) is a loader: the name diagnostics carry, the
 * folder relative paths resolve against, and the diagnostics list. It
 * passes through the files in order:
 *   document.c   read the file, parse it safely, validate it (schema);
 *   model.c      build rules_policy from the validated tree;
 *   index.c      build its lookup tables (ids and labels to positions);
 *   semantics.c  check what the schema cannot say, compile the rules;
 *   policy.c     the public entry points that drive the steps, and the
 *                reporting every step uses.
 * libxml2 types appear here because the steps hand a tree to each other;
 * they never leave rules/.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_RULES_POLICY_INTERNAL_H
#define STRATA_RULES_POLICY_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "rules.h"

#define POLICY_MAX_BYTES (1024 * 1024) /* larger files are refused unread */
#define LABEL_MAX_BYTES  32            /* CK_TOKEN_INFO label and manufacturer */
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
    size_t flagged_cap; /* lines flagged has room for */
} loader;

/* ---- reporting (policy.c) --------------------------------------------- */

/* Adds one diagnostic on line (0 = unknown) of the policy. */
void loader_vreport(loader *ld, rules_severity severity, unsigned line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
void loader_error(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void loader_warning(loader *ld, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the XML document (document.c) ------------------------------------ */

bool loader_is_space(char c);
bool loader_is_element(xmlNodePtr node, const char *name);
/* The 1-based line of node, or 0 when unknown. */
unsigned loader_line(const xmlNode *node);

/* Reads path into a malloc'd buffer. Returns 0 with *buf and *len set, or
 * -1 with an error in ld (cannot open, not a regular file, over 1 MiB,
 * read error, out of memory). */
int loader_read_file(loader *ld, const char *path, char **buf, size_t *len);

/* Parses buf safely. Returns the document (free with xmlFreeDoc), or NULL
 * with errors in ld: not well-formed, a DOCTYPE, out of memory. */
xmlDocPtr loader_parse(loader *ld, const char *buf, size_t len);

/* Validates doc against the embedded schema. Returns 0 when doc matches,
 * -1 with errors (each with its line) in ld otherwise. */
int loader_validate(loader *ld, xmlDocPtr doc);

/* ---- the data model (model.c) ----------------------------------------- */

/* Builds the whole model from a document that matches the schema. Returns
 * 0 (semantic errors may have been reported on the way), or -1 on OOM. */
int loader_build(loader *ld, xmlNodePtr root, rules_policy *policy);

/* ---- lookup tables (index.c) ----------------------------------------- */

/* An empty table with room for cap entries, or NULL on OOM. */
rules_index *loader_index_new(size_t cap);
void loader_index_free(rules_index *ix);
/* Empties ix, keeping its room. */
void loader_index_clear(rules_index *ix);
/* Adds name (borrowed) at pos; a NULL name, or one beyond the room, is
 * not added. */
void loader_index_add(rules_index *ix, const char *name, size_t pos);
/* Sorts what was added; the lookups below need it. */
void loader_index_sort(rules_index *ix);
/* Returns true with *pos the smallest position added with name, or false
 * when none was (or ix or name is NULL). */
bool loader_index_find(const rules_index *ix, const char *name, size_t *pos);

/* A sorted table of the n elements of array, elements of stride bytes
 * whose name (a char *) is at offset; NULL on OOM. */
rules_index *loader_index_build(const void *array, size_t n, size_t stride, size_t offset);
/* The position of the first element of such an array named name: through
 * ix, or by a scan when ix is NULL. Returns n when there is none. */
size_t loader_index_lookup(const rules_index *ix, const void *array, size_t n, size_t stride,
                           size_t offset, const char *name);

/* Builds the tables of a built policy (modules, layers, tokens, and the
 * views of each token). Returns 0, or -1 on OOM (what was built stays for
 * rules_policy_free). */
int loader_index_policy(rules_policy *policy);

/* ---- semantic checks (semantics.c) ------------------------------------ */

/* Runs every semantic check, then compiles the rules of each view whose
 * layers are sound. Returns 0, or -1 on OOM. */
int loader_check(loader *ld, rules_policy *policy);

#endif /* STRATA_RULES_POLICY_INTERNAL_H */
