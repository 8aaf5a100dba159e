/*
 * entries.h - the handle index's own representation, private to index/
 * (scripts/includes.sh keeps it there): the entries and their three
 * tables (entries.c), shared by handles.c and learn.c. Every function
 * here expects H (engine_handles.lock) unless it says otherwise.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_INDEX_ENTRIES_H
#define STRATA_ENGINE_INDEX_ENTRIES_H

#include "index.h"

/*
 * One object the index knows: 96 bytes, kept in chunks of CHUNK_ENTRIES
 * that never move (an entry's address stays valid while it is in use),
 * numbered from 1. The three tables hold entry numbers (idtable), so an
 * entry carries no table node, and no malloc header of its own.
 */
typedef struct handle_entry {
    unsigned char identity[HANDLES_IDENTITY_LEN];
    unsigned char shadow[HANDLES_SHADOW_LEN];
    CK_OBJECT_HANDLE handle;  /* virtual; 0 while the catalog is asked */
    CK_OBJECT_HANDLE backend; /* the layer backend's handle; free: next free */
    CK_SESSION_HANDLE owner;  /* session objects made through Strata */
    uint64_t hidden; /* bit v: hidden in token->views[v], v < MASK_VIEWS (else far_hidden) */
    const CK_ATTRIBUTE_TYPE *shadow_types; /* what shadow was computed over */
    uint32_t generation;                   /* of the backend module when met */
    uint16_t layer;                        /* 1 + index into token->layers; 0 until met */
    uint8_t flags;                         /* ENTRY_* */
} handle_entry;

#define ENTRY_IN_HANDLE   0x01 /* in by_handle (handle != 0) */
#define ENTRY_IN_BACKEND  0x02 /* in by_backend */
#define ENTRY_IN_IDENTITY 0x04 /* in by_identity */
#define ENTRY_TOKEN       0x08 /* a token object */
#define ENTRY_USED        0x10 /* not on the free list */
#define ENTRY_FAR_HIDDEN  0x20 /* may have pairs in far_hidden */
#define ENTRY_FAR_ALL     0x40 /* hidden in every far view (a pair could not be kept) */

/* Views below MASK_VIEWS keep their hidden flag in the entry's mask; the
 * others (a token may enrol thousands) in far_hidden, a set of (entry,
 * view) pairs that holds only the pairs hidden, so that an entry does not
 * grow with the number of views. */
#define MASK_VIEWS 64

/* One (entry, view) pair of far_hidden; entry 0: free, view links the
 * next free pair. */
typedef struct {
    uint32_t entry;
    uint32_t view;
} hidden_pair;

#define CHUNK_SHIFT   10
#define CHUNK_ENTRIES ((uint32_t)1 << CHUNK_SHIFT)
#define MAX_ENTRIES   ((uint32_t)1 << 31)

struct engine_handles {
    engine_mutex *lock;       /* H */
    engine_mutex *learn_lock; /* serialises handles_learn's slow part */
    handle_entry **chunks;    /* H: entry n is chunks[(n-1) >> CHUNK_SHIFT][(n-1) & ...] */
    size_t n_chunks;
    uint32_t n_entries;  /* H: numbers handed out so far */
    uint32_t free_first; /* H: a dropped entry to reuse, or 0 */
    idtable by_handle;
    idtable by_backend;
    idtable by_identity;
    hidden_pair *pairs; /* H: far_hidden's records, pair p at pairs[p - 1] */
    uint32_t n_pairs;   /* H: records handed out so far */
    uint32_t cap_pairs;
    uint32_t free_pair; /* H: a freed record to reuse, or 0 */
    idtable far_hidden; /* H: pair numbers by (entry, view) */
    bool primed;        /* learn lock */
};

/* ---------------------------------------------------------------------
 * entries.c
 * ------------------------------------------------------------------ */

/* Entry n (1 upwards) of the index. */
handle_entry *entry_at(const engine_handles *index, uint32_t n);
/* A zeroed entry in use (a dropped one reused first), or 0 when memory
 * or the numbering ran out. */
uint32_t entry_new(engine_handles *index);
/* The layer of an entry met in a backend. */
engine_layer *entry_layer(const engine_token *token, const handle_entry *e);
uint64_t identity_key(const unsigned char *identity);
uint64_t rehash_identity(const void *owner, uint32_t n);
/* The entry with the virtual handle, the (layer, backend handle) or the
 * identity, or 0. */
uint32_t by_handle(const engine_handles *index, CK_OBJECT_HANDLE handle);
uint32_t by_backend(const engine_handles *index, uint16_t layer, CK_OBJECT_HANDLE backend);
uint32_t by_identity(const engine_handles *index, const unsigned char *identity);
/* A random session-range handle no entry holds. */
CK_OBJECT_HANDLE session_handle_new(const engine_handles *index);
/* Puts entry n in one table. CKR_OK or CKR_HOST_MEMORY. */
CK_RV add_handle(engine_handles *index, uint32_t n);
CK_RV add_backend(engine_handles *index, uint32_t n);
CK_RV add_identity(engine_handles *index, uint32_t n);
/* Takes entry n out of by_backend (its backend handle is stale). */
void unbind(engine_handles *index, uint32_t n);
/* Marks entry n hidden (or not) in view (at least MASK_VIEWS). */
void far_set(engine_handles *index, uint32_t n, uint32_t view, bool hidden);
/* Whether entry e (number n) is hidden in view. */
bool entry_hidden(const engine_handles *index, const handle_entry *e, uint32_t n, size_t view);
/* Takes entry n out of every table and puts it on the free list. */
void drop(engine_handles *index, uint32_t n);

/* ---------------------------------------------------------------------
 * learn.c
 * ------------------------------------------------------------------ */

/* Loads the catalog's handles of token once. Expects the learn lock. */
void prime_inlearn(engine_token *token);

#endif /* STRATA_ENGINE_INDEX_ENTRIES_H */
