/*
 * test_handles.c - virtual object handles: unique across layers whose
 * backends' handles collide, invalid alike for everything outside the
 * view, stable across processes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stack_world.h"

#define HANDLES_BASE ((CK_OBJECT_HANDLE)0x80000000UL) /* session objects' range */

TestSuite(handles, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

static bool in(const CK_OBJECT_HANDLE *set, CK_ULONG n, CK_OBJECT_HANDLE h)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (set[i] == h) {
            return true;
        }
    }
    return false;
}

Test(handles, probe_gives_invalid_outside_the_view)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE anon[16], work[32];
    CK_ULONG n_anon, n_work;
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};

    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    n_anon = find_all(p11, s, NULL, 0, anon, 16);
    cr_assert_eq(n_anon, 2);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    n_work = find_all(p11, s, NULL, 0, work, 32);
    cr_assert_eq(n_work, 8); /* 4 key pairs; shadow-g's pair is shadowed */
    for (CK_OBJECT_HANDLE h = 0; h < 300; h++) {
        CK_RV rv = p11->C_GetAttributeValue(s, h, &a, 1);
        if (in(work, n_work, h)) {
            cr_assert_eq(rv, CKR_OK, "handle %lu", h);
        } else {
            cr_assert_eq(rv, CKR_OBJECT_HANDLE_INVALID, "handle %lu: %#lx", h, rv);
        }
    }
    for (CK_ULONG i = 0; i < n_work; i++) { /* handles are random: probe around them */
        CK_OBJECT_HANDLE near[3] = {work[i] - 1, work[i], work[i] + 1};
        for (int j = 0; j < 3; j++) {
            cr_assert_eq(p11->C_GetAttributeValue(s, near[j], &a, 1),
                         in(work, n_work, near[j]) ? CKR_OK : CKR_OBJECT_HANDLE_INVALID);
        }
    }
    for (CK_ULONG i = 0; i < n_anon; i++) {
        cr_assert_not(in(work, n_work, anon[i]), "handles of two views collide");
    }
    for (CK_OBJECT_HANDLE h = 0x80000000UL; h < 0x80000040UL; h++) {
        cr_assert_eq(p11->C_GetAttributeValue(s, h, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Runs body(ctx, out) in a new process and copies its len bytes of out
 * back into out. */
static void in_child(void (*body)(const void *ctx, void *out), const void *ctx, void *out,
                     size_t len)
{
    int fds[2], status;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        body(ctx, out);
        _exit(write(fds[1], out, len) == (ssize_t)len ? 0 : 3);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], out, len), (ssize_t)len);
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void handle_body(const void *ctx, void *out)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);

    *(CK_OBJECT_HANDLE *)out = find_one(p11, s, CKO_PRIVATE_KEY, ctx);
    p11->C_Finalize(NULL);
}

static void data_body(const void *ctx, void *out)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);

    *(CK_OBJECT_HANDLE *)out = find_one(p11, s, CKO_DATA, ctx);
    p11->C_Finalize(NULL);
}

/* The handle of the data object labelled label in another process. */
static CK_OBJECT_HANDLE data_handle_in_child(const char *label)
{
    CK_OBJECT_HANDLE h = 0;

    in_child(data_body, label, &h, sizeof(h));
    return h;
}

/* The handle of label as another process sees it. */
static CK_OBJECT_HANDLE handle_in_child(const char *label)
{
    CK_OBJECT_HANDLE h = 0;

    in_child(handle_body, label, &h, sizeof(h));
    return h;
}

Test(handles, stable_across_processes)
{
    CK_OBJECT_HANDLE g = handle_in_child("g-ec"), p = handle_in_child("p-ec");
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE data[32] = {0}, sig[128];
    CK_ULONG len = sizeof(sig);

    cr_assert_neq(g, CK_INVALID_HANDLE);
    cr_assert_neq(g, p);
    /* usable at once, before any search in this process */
    cr_assert_eq(p11->C_SignInit(s, &mech, g), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, data, sizeof(data), sig, &len), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), g);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "p-ec"), p);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static const char colliding_policy[] = "<strata version=\"1\">\n"
                                       "  <catalog path=\"@CATALOG@\"/>\n"
                                       "  <module id=\"a\" path=\"@A@\"/>\n"
                                       "  <module id=\"b\" path=\"@B@\"/>\n"
                                       "  <layer id=\"ta\" module=\"a\" token=\"strata-test-a\"/>\n"
                                       "  <layer id=\"tb\" module=\"b\" token=\"strata-test-b\"/>\n"
                                       "  <token label=\"Strata\">\n"
                                       "    <kdf ops=\"1\" mem=\"8192\"/>\n"
                                       "    <view id=\"work\" layers=\"ta tb\"/>\n"
                                       "  </token>\n"
                                       "</strata>\n";

/* Two copies of the test backend hand out the same handles 1..3; the
 * virtual handles of their six objects are all different. */
Test(handles, unique_with_colliding_backends)
{
    const char *a = getenv("STRATA_TEST_BACKEND_A"), *b = getenv("STRATA_TEST_BACKEND_B");
    char conf[PATH_MAX + 8], xml[4096];
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11;
    CK_OBJECT_HANDLE objs[16];
    CK_ULONG n;
    FILE *f;

    cr_assert(a != NULL && b != NULL, "STRATA_TEST_BACKEND_A/_B not set");
    snprintf(conf, sizeof(conf), "%s/b.conf", w.dir);
    f = fopen(conf, "w");
    cr_assert(f != NULL);
    fprintf(f, "object = b-1 11\nobject = b-2 12\nobject = b-secret 13 private\n");
    cr_assert_eq(fclose(f), 0);
    setenv("STRATA_TEST_BACKEND_B_CONF", conf, 1);
    snprintf(xml, sizeof(xml), "%s", colliding_policy);
    {
        char *p = strstr(xml, "@A@"), rest[4096];
        snprintf(rest, sizeof(rest), "%s", p + 3);
        snprintf(p, sizeof(xml) - (size_t)(p - xml), "%s%s", a, rest);
        p = strstr(xml, "@B@");
        snprintf(rest, sizeof(rest), "%s", p + 3);
        snprintf(p, sizeof(xml) - (size_t)(p - xml), "%s%s", b, rest);
    }
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(enroll("work", WORK_PIN " 1234 1234"), 0);
    p11 = work_session(&slot, &s);
    n = find_all(p11, s, NULL, 0, objs, 16);
    cr_assert_eq(n, 6, "objects: %lu", n);
    for (CK_ULONG i = 0; i < n; i++) {
        for (CK_ULONG j = i + 1; j < n; j++) {
            cr_assert_neq(objs[i], objs[j], "virtual handles collide");
        }
    }
    cr_assert_neq(find_one(p11, s, CKO_DATA, "b-secret"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_DATA, "secret-1"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---------------------------------------------------------------------
 * Whiteouts and shadowing in a view of index 66 (issue 12, item 7): the
 * index's hidden flags once held 64 views only.
 * ------------------------------------------------------------------ */

#define FAR_VIEWS 70
#define FAR_VIEW  66
#define FAR_PIN   "far-pin-66"
#define NEAR_PIN  "near-pin-0"

/* The stack world's tokens and keys under a policy of FAR_VIEWS views:
 * v0 = group, v66 = personal over group (whiteouts allowed), the others
 * other; v0 and v66 enrolled. */
static void far_setup(void)
{
    char xml[16384];
    size_t at;

    stack_setup();
    at = (size_t)snprintf(xml, sizeof(xml),
                          "<strata version=\"1\">\n"
                          "  <catalog path=\"@CATALOG@\"/>\n"
                          "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                          "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
                          "  <layer id=\"group\" module=\"soft\" token=\"group\" "
                          "access=\"read-only\"/>\n"
                          "  <layer id=\"other\" module=\"soft\" token=\"other\"/>\n"
                          "  <token label=\"Far\">\n"
                          "    <kdf ops=\"1\" mem=\"8192\"/>\n");
    for (int v = 0; v < FAR_VIEWS; v++) {
        const char *layers = v == 0 ? "group" : v == FAR_VIEW ? "personal group" : "other";
        at += (size_t)snprintf(xml + at, sizeof(xml) - at,
                               "    <view id=\"v%d\" layers=\"%s\" whiteout=\"allow\"/>\n", v,
                               layers);
        cr_assert_lt(at, sizeof(xml));
    }
    snprintf(xml + at, sizeof(xml) - at, "  </token>\n</strata>\n");
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s | '%s' enroll --token Far --view v0 --pin-stdin "
                          ">/dev/null",
                          NEAR_PIN " 2222", world_strata_cli()),
                 0);
    cr_assert_eq(world_sh("printf '%%s\\n' %s | '%s' enroll --token Far --view v%d --pin-stdin "
                          ">/dev/null",
                          FAR_PIN " 1111 2222", world_strata_cli(), FAR_VIEW),
                 0);
}

static CK_RV class_of(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o)
{
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};

    return p11->C_GetAttributeValue(s, o, &a, 1);
}

static void far_body(const void *ctx, void *out)
{
    const CK_OBJECT_HANDLE *objects = ctx;
    CK_RV *rv = out;
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    rv[0] = rv[1] = CKR_GENERAL_ERROR;
    if (login(p11, s, FAR_PIN) == CKR_OK) {
        rv[0] = class_of(p11, s, objects[0]);
        rv[1] = class_of(p11, s, objects[1]);
    }
    p11->C_Finalize(NULL);
}

Test(handles, far_view_keeps_whiteouts_and_shadows, .init = far_setup)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE g, sg, all[32];
    CK_RV child[2];

    cr_assert_eq(login(p11, s, NEAR_PIN), CKR_OK);
    g = find_one(p11, s, CKO_PRIVATE_KEY, "g-ec");
    sg = find_one(p11, s, CKO_PRIVATE_KEY, "shadow-g");
    cr_assert_neq(g, CK_INVALID_HANDLE);
    cr_assert_neq(sg, CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);

    cr_assert_eq(login(p11, s, FAR_PIN), CKR_OK);
    cr_assert_eq(find_all(p11, s, NULL, 0, all, 32), 8); /* shadow-g's pair is shadowed */
    cr_assert_not(in(all, 8, sg));
    cr_assert_eq(class_of(p11, s, sg), CKR_OBJECT_HANDLE_INVALID, "shadowed object readable");
    cr_assert_eq(class_of(p11, s, g), CKR_OK);
    cr_assert_eq(p11->C_DestroyObject(s, g), CKR_OK); /* a whiteout in v66 */
    cr_assert_eq(class_of(p11, s, g), CKR_OBJECT_HANDLE_INVALID, "whited-out object readable");
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(class_of(p11, s, g), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);

    /* the group view still sees both */
    cr_assert_eq(login(p11, s, NEAR_PIN), CKR_OK);
    cr_assert_eq(class_of(p11, s, g), CKR_OK);
    cr_assert_eq(class_of(p11, s, sg), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);

    in_child(far_body, (CK_OBJECT_HANDLE[]){g, sg}, child, sizeof(child));
    cr_assert_eq(child[0], CKR_OBJECT_HANDLE_INVALID, "whited out, later process: %#lx", child[0]);
    cr_assert_eq(child[1], CKR_OBJECT_HANDLE_INVALID, "shadowed, later process: %#lx", child[1]);
}

/* ---------------------------------------------------------------------
 * Numbers that tell nothing (issue 12, item 8) and that stay with their
 * object (item 9)
 * ------------------------------------------------------------------ */

/* Creates a data object labelled label (token or session object). */
static CK_OBJECT_HANDLE make_data(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                                  CK_BBOOL token)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_CreateObject(s, t, 5, &h), CKR_OK, "create %s", label);
    cr_assert_neq(h, CK_INVALID_HANDLE);
    return h;
}

/* Whether the n numbers, in creation order, step by the same amount: a
 * counter shared with someone shows through such a run. */
static bool evenly_spaced(const CK_OBJECT_HANDLE *h, size_t n)
{
    for (size_t i = 2; i < n; i++) {
        if (h[i] - h[i - 1] != h[1] - h[0]) {
            return false;
        }
    }
    return true;
}

/* Work makes an object, anon 25, work another: work's two numbers do not
 * tell how many anon made (they were 1 and 27), for token objects and
 * for session objects alike; token objects' numbers stay below the
 * session range and the same in a later process. */
Test(handles, numbers_tell_nothing_of_other_views)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE work[2][2], anon[2][25];
    char label[32];

    for (int round = 0; round < 2; round++) {
        CK_BBOOL token = round == 0 ? CK_TRUE : CK_FALSE;
        cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
        work[round][0] = make_data(p11, s, token ? "work-1" : "work-s1", token);
        cr_assert_eq(p11->C_Logout(s), CKR_OK);
        cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
        for (int i = 0; i < 25; i++) {
            snprintf(label, sizeof(label), "anon-%d-%d", round, i);
            anon[round][i] = make_data(p11, s, label, token);
        }
        cr_assert_eq(p11->C_Logout(s), CKR_OK);
        cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
        work[round][1] = make_data(p11, s, token ? "work-2" : "work-s2", token);
        cr_assert_eq(p11->C_Logout(s), CKR_OK);

        cr_assert_neq(work[round][1], work[round][0] + 26, "work's numbers count anon's objects");
        cr_assert_neq(work[round][1], work[round][0] + 1);
        cr_assert_not(evenly_spaced(anon[round], 25), "a counter shows through");
        for (int i = 0; i < 2; i++) {
            cr_assert(token ? work[round][i] < HANDLES_BASE : work[round][i] >= HANDLES_BASE,
                      "%#lx", work[round][i]);
        }
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(data_handle_in_child("work-1"), work[0][0]);
    cr_assert_eq(data_handle_in_child("work-2"), work[0][1]);
}

/* A relabelled object keeps its number in later processes, and a new
 * object with the old label gets another one (the number was 1; the
 * catalog gave it to the newcomer). */
Test(handles, relabelled_object_keeps_its_number)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_ATTRIBUTE relabel = {CKA_LABEL, "renamed", 7};
    CK_OBJECT_HANDLE first = make_data(p11, s, "first", CK_TRUE), newcomer;

    cr_assert_eq(p11->C_SetAttributeValue(s, first, &relabel, 1), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(data_handle_in_child("renamed"), first, "the relabelled object's number moved");

    p11 = work_session(&slot, &s);
    newcomer = make_data(p11, s, "first", CK_TRUE);
    cr_assert_neq(newcomer, first, "an old number given to another object");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(data_handle_in_child("first"), newcomer);
    cr_assert_eq(data_handle_in_child("renamed"), first);
}

/* ---------------------------------------------------------------------
 * A full disk (issue 12, item 11): a token object whose catalog row
 * cannot be written is not made at all, rather than given a session-range
 * handle that changes once there is room again.
 * ------------------------------------------------------------------ */

static char small_fs[PATH_MAX];
static bool small_mounted;

/* The stack world with its catalog on a 1 MiB tmpfs of its own (root
 * only; otherwise the test skips). */
static void full_setup(void)
{
    stack_setup_bare();
    cr_assert_lt((size_t)snprintf(small_fs, sizeof(small_fs), "%s/small", w.dir), sizeof(small_fs));
    if (geteuid() != 0) {
        return;
    }
    cr_assert_eq(mkdir(small_fs, 0700), 0);
    if (world_sh("mount -t tmpfs -o size=1m,mode=0700 strata-test '%s' 2>/dev/null", small_fs) !=
        0) {
        return;
    }
    small_mounted = true;
    cr_assert_lt((size_t)snprintf(w.catalog, sizeof(w.catalog), "%s/catalog.db", small_fs),
                 sizeof(w.catalog));
    cr_assert_eq(world_policy(&w, stack_policy), 0);
    cr_assert_eq(enroll("work", WORK_PIN " 1111 2222"), 0, "strata enroll work");
}

static void full_teardown(void)
{
    if (small_mounted) {
        world_sh("umount '%s'", small_fs);
    }
    stack_teardown();
}

Test(handles, full_disk_fails_the_create, .init = full_setup, .fini = full_teardown)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, "on-full-disk", 12}};
    CK_OBJECT_HANDLE before, after, h = CK_INVALID_HANDLE;

    if (!small_mounted) {
        if (geteuid() != 0) {
            cr_skip_test("not root: cannot mount a small tmpfs for the catalog");
        }
        cr_skip_test("mount -t tmpfs failed (no CAP_SYS_ADMIN here?)");
    }
    p11 = work_session(&slot, &s);
    before = make_data(p11, s, "before-full", CK_TRUE);
    cr_assert_lt(before, HANDLES_BASE);
    world_sh("dd if=/dev/zero of='%s/fill' bs=4096 2>/dev/null", small_fs); /* until ENOSPC */

    cr_assert_eq(p11->C_CreateObject(s, t, 3, &h), CKR_DEVICE_MEMORY, "handle %#lx", h);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "on-full-disk"), CK_INVALID_HANDLE,
                 "the object was left in the backend");
    cr_assert_eq(find_one(p11, s, CKO_DATA, "before-full"), before);

    cr_assert_eq(world_sh("rm '%s/fill'", small_fs), 0);
    after = make_data(p11, s, "after-full", CK_TRUE);
    cr_assert_lt(after, HANDLES_BASE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(data_handle_in_child("after-full"), after);
}
