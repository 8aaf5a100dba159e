/*
 * search.c - C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal: the
 * search of the session's view runs whole at Init (view/find.c) and its
 * results are handed out from the session's buffer.
 *
 * One search per session: a second Init while one is active gets
 * CKR_OPERATION_ACTIVE. A login or logout ends a search begun before it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ops.h"

/*
 * C_FindObjectsInit. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD (NULL template with a count);
 * CKR_ATTRIBUTE_VALUE_INVALID (a NULL value with a length);
 * CKR_OPERATION_ACTIVE; CKR_HOST_MEMORY.
 */
CK_RV object_find_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    session_view_state st;
    engine_session *s;
    CK_OBJECT_HANDLE *found = NULL;
    size_t n = 0;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = object_check_template(templ, count);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_OPERATION_ACTIVE;
    if (s->find.active) {
        goto out;
    }
    session_view(s, &st);
    rv = find_collect(s, &st, templ, count, &found, &n);
    if (rv != CKR_OK) {
        goto out;
    }
    s->find.active = true;
    s->find.epoch = st.epoch;
    s->find.results = found;
    s->find.n_results = n;
    s->find.next = 0;
out:
    session_release(s);
    return rv;
}

/* True when the session's search began before the current login state. */
static bool find_stale(engine_session *s)
{
    session_view_state st;

    session_view(s, &st);
    return st.epoch != s->find.epoch;
}

/*
 * C_FindObjects. Returns CKR_OK with up to max handles; CKR_ARGUMENTS_BAD
 * (NULL objects or count); CKR_OPERATION_NOT_INITIALIZED (no search, or it
 * was ended by a login or logout); CKR_SESSION_HANDLE_INVALID.
 */
CK_RV object_find(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
                  CK_ULONG_PTR count)
{
    engine_session *s;
    CK_ULONG n = 0;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (objects == NULL || count == NULL) {
        goto out;
    }
    rv = CKR_OPERATION_NOT_INITIALIZED;
    if (!s->find.active) {
        goto out;
    }
    if (find_stale(s)) {
        find_end(s);
        goto out;
    }
    while (n < max && s->find.next < s->find.n_results) {
        objects[n++] = s->find.results[s->find.next++];
    }
    *count = n;
    rv = CKR_OK;
out:
    session_release(s);
    return rv;
}

/* C_FindObjectsFinal. Returns CKR_OK; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_SESSION_HANDLE_INVALID. */
CK_RV object_find_final(CK_SESSION_HANDLE session)
{
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_OPERATION_NOT_INITIALIZED;
    if (s->find.active) {
        find_end(s);
        rv = CKR_OK;
    }
    session_release(s);
    return rv;
}
