/*
 * test_faults.c - injected faults (issue 7): a backend that fails, one
 * that is slow, one whose token leaves and comes back, and allocation
 * failure inside Strata.
 *
 * The view "work" stacks the test backend A (layer "ta", the one that
 * misbehaves, steered through its control file STRATA_TEST_BACKEND_A_CONTROL,
 * see tests/backend/backend.c) over the test backend B (layer "tb"). A
 * holds the data objects a-1, a-2 and the private a-secret, B b-1, b-2
 * and b-secret. A backend failure reaches the virtual session as
 * CKR_HOST_MEMORY when the backend ran out of memory and as
 * CKR_DEVICE_ERROR for the device codes (the virtual token and session
 * are still there: engine/backend.c); layer B stays usable throughout,
 * and A works again once its backend does. A search leaves a failing
 * layer out, except when its backend ran out of memory: then the search
 * fails with CKR_HOST_MEMORY rather than answer in part.
 *
 * The allocation-failure test overrides malloc, calloc, realloc and free in
 * this executable (the module, dlopen'ed, binds to them); it is left out
 * of sanitizer builds, whose allocator cannot be interposed that way.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend_control.h"
#include "stack_world.h"

#if defined(__SANITIZE_ADDRESS__)
#define FAULTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAULTS_SANITIZED 1
#endif
#endif

static const char faults_policy[] = "<strata version=\"1\">\n"
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

/* Copies text to out, with the first "@X@" replaced by path. */
static void put_path(char *xml, size_t size, const char *mark, const char *path)
{
    char *p = strstr(xml, mark), rest[4096];

    cr_assert_not_null(p);
    snprintf(rest, sizeof(rest), "%s", p + strlen(mark));
    snprintf(p, size - (size_t)(p - xml), "%s%s", path, rest);
}

static void faults_setup(void)
{
    const char *a = getenv("STRATA_TEST_BACKEND_A"), *b = getenv("STRATA_TEST_BACKEND_B");
    char path[PATH_MAX + 16], xml[4096];

    cr_assert(a != NULL && b != NULL, "STRATA_TEST_BACKEND_A/_B not set");
    world_setup(&w);
    snprintf(path, sizeof(path), "%s/a.conf", w.dir);
    write_file(path,
               "persist = yes\nobject = a-1 01\nobject = a-2 02\nobject = a-secret 03 private\n");
    setenv("STRATA_TEST_BACKEND_A_CONF", path, 1);
    snprintf(path, sizeof(path), "%s/b.conf", w.dir);
    write_file(path, "object = b-1 11\nobject = b-2 12\nobject = b-secret 13 private\n");
    setenv("STRATA_TEST_BACKEND_B_CONF", path, 1);
    unsetenv("STRATA_TEST_BACKEND_A_FAIL");
    unsetenv("STRATA_TEST_BACKEND_B_FAIL");
    snprintf(control_path, sizeof(control_path), "%s/a.control", w.dir);
    control("");
    setenv("STRATA_TEST_BACKEND_A_CONTROL", control_path, 1);
    snprintf(xml, sizeof(xml), "%s", faults_policy);
    put_path(xml, sizeof(xml), "@A@", a);
    put_path(xml, sizeof(xml), "@B@", b);
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(enroll("work", WORK_PIN " 1234 1234"), 0);
}

TestSuite(faults, .init = faults_setup, .fini = stack_teardown, .timeout = 120);

/* ---- helpers ----------------------------------------------------------- */

/* The labels a search for all data objects finds, sorted and joined by
 * spaces into buf; the search's first failing code, or CKR_OK. */
static CK_RV data_labels(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, char *buf, size_t size)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE found[32];
    CK_ULONG n = 0, got = 0;
    char labels[32][40];
    CK_RV rv;

    buf[0] = '\0';
    rv = p11->C_FindObjectsInit(s, &t, 1);
    if (rv != CKR_OK) {
        return rv;
    }
    do {
        rv = p11->C_FindObjects(s, found + n, 32 - n, &got);
        n += rv == CKR_OK ? got : 0;
    } while (rv == CKR_OK && got > 0 && n < 32);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    if (rv != CKR_OK) {
        return rv;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        label_of(p11, s, found[i], labels[i], sizeof(labels[i]));
    }
    qsort(labels, n, sizeof(labels[0]), (int (*)(const void *, const void *))strcmp);
    for (CK_ULONG i = 0; i < n; i++) {
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i > 0 ? " " : "", labels[i]);
    }
    return CKR_OK;
}

static void assert_labels(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *want,
                          const char *when)
{
    char got[512];
    CK_RV rv = data_labels(p11, s, got, sizeof(got));

    cr_assert_eq(rv, CKR_OK, "%s: search: %#lx", when, rv);
    cr_assert_str_eq(got, want, "%s", when);
}

#define ALL_DATA "a-1 a-2 a-secret b-1 b-2 b-secret"
#define B_DATA   "b-1 b-2 b-secret"

static CK_RV label_rv(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                      const char *want)
{
    char buf[40];
    CK_ATTRIBUTE a = {CKA_LABEL, buf, sizeof(buf)};
    CK_RV rv = p11->C_GetAttributeValue(s, o, &a, 1);

    if (rv == CKR_OK) {
        cr_assert_eq(a.ulValueLen, strlen(want));
        cr_assert_eq(memcmp(buf, want, a.ulValueLen), 0);
    }
    return rv;
}

static CK_RV create_data(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                         CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_VALUE, "v", 1},
    };

    return p11->C_CreateObject(s, t, 5, out);
}

/* The code the virtual session reports for a backend's code. */
static CK_RV virtual_rv(CK_RV backend)
{
    return backend == CKR_HOST_MEMORY ? CKR_HOST_MEMORY : CKR_DEVICE_ERROR;
}

static const struct {
    const char *name;
    CK_RV rv;
} injected[] = {
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
};
#define N_INJECTED (sizeof(injected) / sizeof(injected[0]))

/* Makes backend A's next call of fn answer injected[i]. */
static void fail_next(const char *fn, size_t i)
{
    char text[128];

    snprintf(text, sizeof(text), "fail = %s:%s:1\n", fn, injected[i].name);
    control(text);
}

/* Makes every call of fn on backend A answer injected[i] from now on. */
static void fail_every(const char *fn, size_t i)
{
    char text[128];

    snprintf(text, sizeof(text), "fail = %s:%s:*\n", fn, injected[i].name);
    control(text);
}

/* ---- failing calls ------------------------------------------------------- */

/* A's C_GetAttributeValue fails once per code: the virtual call reports
 * the mapped code, B's object still reads, and A's reads again next. */
Test(faults, get_attribute_fails_then_recovers)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE a1 = find_one(p11, s, CKO_DATA, "a-1");
    CK_OBJECT_HANDLE b1 = find_one(p11, s, CKO_DATA, "b-1");

    for (size_t i = 0; i < N_INJECTED; i++) {
        fail_next("C_GetAttributeValue", i);
        cr_assert_eq(label_rv(p11, s, a1, "a-1"), virtual_rv(injected[i].rv), "%s",
                     injected[i].name);
        cr_assert_eq(label_rv(p11, s, b1, "b-1"), CKR_OK, "%s: layer tb", injected[i].name);
        cr_assert_eq(label_rv(p11, s, a1, "a-1"), CKR_OK, "%s: recovered", injected[i].name);
        assert_labels(p11, s, ALL_DATA, injected[i].name);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A's C_FindObjectsInit or C_FindObjects fails once per code: the search
 * still answers with B's objects (the layer is left out), and the next
 * search sees both layers again. */
static void find_fails(const char *fn)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    char got[512];
    CK_RV rv;

    assert_labels(p11, s, ALL_DATA, "before");
    for (size_t i = 0; i < N_INJECTED; i++) {
        fail_next(fn, i);
        rv = data_labels(p11, s, got, sizeof(got));
        if (injected[i].rv == CKR_HOST_MEMORY) {
            cr_assert_eq(rv, CKR_HOST_MEMORY, "%s: %#lx", fn, rv); /* no partial answer */
        } else {
            cr_assert_eq(rv, CKR_OK, "%s, %s: %#lx", fn, injected[i].name, rv);
            cr_assert_str_eq(got, B_DATA, "%s: %s", fn, injected[i].name);
        }
        assert_labels(p11, s, ALL_DATA, injected[i].name);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(faults, find_init_fails_then_recovers)
{
    find_fails("C_FindObjectsInit");
}

Test(faults, find_fails_then_recovers)
{
    find_fails("C_FindObjects");
}

/* A's C_CreateObject and C_DestroyObject fail once per code: nothing is
 * created or destroyed, B stays readable, and the retry works. */
Test(faults, create_destroy_fail_then_recover)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE, b1 = find_one(p11, s, CKO_DATA, "b-1");
    CK_RV rv;

    for (size_t i = 0; i < N_INJECTED; i++) {
        fail_next("C_CreateObject", i);
        rv = create_data(p11, s, "made", &o);
        cr_assert_eq(rv, virtual_rv(injected[i].rv), "create, %s: %#lx", injected[i].name, rv);
        cr_assert_eq(label_rv(p11, s, b1, "b-1"), CKR_OK);
        assert_labels(p11, s, ALL_DATA, injected[i].name);
        cr_assert_eq(create_data(p11, s, "made", &o), CKR_OK, "%s: recovered", injected[i].name);
        assert_labels(p11, s, "a-1 a-2 a-secret b-1 b-2 b-secret made", injected[i].name);

        rv = label_rv(p11, s, o, "made");
        cr_assert_eq(rv, CKR_OK, "%s: made: %#lx", injected[i].name, rv);
        fail_next("C_DestroyObject", i);
        rv = p11->C_DestroyObject(s, o);
        cr_assert_eq(rv, virtual_rv(injected[i].rv), "destroy, %s: %#lx", injected[i].name, rv);
        cr_assert_eq(label_rv(p11, s, b1, "b-1"), CKR_OK);
        rv = label_rv(p11, s, o, "made");
        cr_assert_eq(rv, CKR_OK, "%s: still there: %#lx", injected[i].name, rv);
        cr_assert_eq(p11->C_DestroyObject(s, o), CKR_OK, "%s: recovered", injected[i].name);
        assert_labels(p11, s, ALL_DATA, injected[i].name);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A's C_Login fails once per code during the virtual login: the code
 * reported is one C_Login may give, B's objects are there either way,
 * and after a logout the next login sees both layers' private objects. */
Test(faults, login_fails_then_recovers)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char got[512];
    CK_RV rv;

    for (size_t i = 0; i < N_INJECTED; i++) {
        fail_next("C_Login", i);
        rv = login(p11, s, WORK_PIN);
        if (rv == CKR_OK) {
            cr_assert_eq(data_labels(p11, s, got, sizeof(got)), CKR_OK);
            cr_assert(strstr(got, B_DATA) != NULL, "%s: %s", injected[i].name, got);
            cr_assert_eq(p11->C_Logout(s), CKR_OK);
        } else {
            cr_assert_eq(rv, virtual_rv(injected[i].rv), "%s: %#lx", injected[i].name, rv);
            assert_labels(p11, s, "a-1 a-2 b-1 b-2", injected[i].name);
        }
        cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK, "%s: recovered", injected[i].name);
        assert_labels(p11, s, ALL_DATA, injected[i].name);
        cr_assert_eq(p11->C_Logout(s), CKR_OK);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A's C_OpenSession fails with each code while a new virtual session
 * first needs layer ta: that session still searches B, a read of A's
 * object reports the mapped code, the older session is unaffected, and
 * once the backend opens sessions again the new session works whole. */
Test(faults, open_session_fails_then_recovers)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s, t;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE a1 = find_one(p11, s, CKO_DATA, "a-1");
    char got[512];
    CK_RV rv;

    for (size_t i = 0; i < N_INJECTED; i++) {
        t = open_rw(p11, slot);
        fail_every("C_OpenSession", i);
        rv = data_labels(p11, t, got, sizeof(got));
        if (injected[i].rv == CKR_HOST_MEMORY) {
            cr_assert_eq(rv, CKR_HOST_MEMORY, "%#lx", rv); /* no partial answer */
        } else {
            cr_assert_eq(rv, CKR_OK, "%s: %#lx", injected[i].name, rv);
            cr_assert_str_eq(got, B_DATA, "%s: %s", injected[i].name, got);
        }
        rv = label_rv(p11, t, a1, "a-1");
        cr_assert_eq(rv, virtual_rv(injected[i].rv), "%s: %#lx", injected[i].name, rv);
        control("");
        rv = label_rv(p11, t, a1, "a-1");
        cr_assert_eq(rv, CKR_OK, "%s: recovered: %#lx", injected[i].name, rv);
        assert_labels(p11, t, ALL_DATA, injected[i].name);
        assert_labels(p11, s, ALL_DATA, injected[i].name);
        cr_assert_eq(p11->C_CloseSession(t), CKR_OK);
    }
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- a slow backend ----------------------------------------------------- */

typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE a1, b1;
    CK_RV rv;
    CK_ULONG found;
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} job;

static void job_finish(job *j, CK_RV rv)
{
    pthread_mutex_lock(&j->lock);
    j->rv = rv;
    j->done = true;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

/* A search for everything on j->s, counting into j->found. */
static void *search_job(void *arg)
{
    job *j = arg;
    CK_OBJECT_HANDLE found[32];
    CK_ULONG got = 0;
    CK_RV rv = j->p11->C_FindObjectsInit(j->s, NULL, 0);

    while (rv == CKR_OK && (rv = j->p11->C_FindObjects(j->s, found, 32, &got)) == CKR_OK &&
           got > 0) {
        j->found += got;
    }
    if (rv == CKR_OK) {
        rv = j->p11->C_FindObjectsFinal(j->s);
    }
    job_finish(j, rv);
    return NULL;
}

/* Reads b-1 (layer tb) and a-1 (layer ta, the slow backend itself) on j->s. */
static void *read_job(void *arg)
{
    job *j = arg;
    char label[16];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
    CK_RV rv = j->p11->C_GetAttributeValue(j->s, j->b1, &a, 1);

    if (rv == CKR_OK) {
        rv = j->p11->C_GetAttributeValue(j->s, j->a1, &a, 1);
    }
    job_finish(j, rv);
    return NULL;
}

static void job_init(job *j, CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s)
{
    memset(j, 0, sizeof(*j));
    j->p11 = p11;
    j->s = s;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
}

/* Waits for j to finish, for at most seconds (a hang guard, not a speed
 * check). Returns whether it finished. */
static bool job_wait(job *j, int seconds)
{
    struct timespec until;
    bool done;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&j->lock);
    while (!j->done && pthread_cond_timedwait(&j->cond, &j->lock, &until) == 0) {
    }
    done = j->done;
    pthread_mutex_unlock(&j->lock);
    return done;
}

static bool job_done(job *j)
{
    bool done;

    pthread_mutex_lock(&j->lock);
    done = j->done;
    pthread_mutex_unlock(&j->lock);
    return done;
}

/* Writes one byte to, or reads one from, the FIFO dir/name. */
static void fifo_byte(const char *dir, const char *name, bool write_it)
{
    char path[PATH_MAX + 32], byte = 'x';
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, write_it ? O_WRONLY : O_RDONLY);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write_it ? write(fd, &byte, 1) : read(fd, &byte, 1), 1);
    close(fd);
}

/* While a search on one session sits inside backend A's C_FindObjectsInit
 * (A signals it has entered through a FIFO and waits to be released),
 * another session reads objects of layer tb and of layer ta itself: Strata
 * holds no lock across the backend call that would make them wait. */
Test(faults, slow_backend_blocks_no_other_session)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s, t;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    char dir[PATH_MAX + 16], path[PATH_MAX + 32], text[PATH_MAX + 64];
    pthread_t slow, other;
    job search, reader;
    bool read_done, search_done;

    t = open_rw(p11, slot);
    job_init(&search, p11, s);
    job_init(&reader, p11, t);
    reader.a1 = find_one(p11, t, CKO_DATA, "a-1");
    reader.b1 = find_one(p11, t, CKO_DATA, "b-1");
    snprintf(dir, sizeof(dir), "%s/slow", w.dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/entered", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/release", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    snprintf(text, sizeof(text), "block = C_FindObjectsInit %s\n", dir);
    control(text);

    cr_assert_eq(pthread_create(&slow, NULL, search_job, &search), 0);
    fifo_byte(dir, "entered", false); /* the search is inside backend A */
    cr_assert_eq(pthread_create(&other, NULL, read_job, &reader), 0);
    read_done = job_wait(&reader, 60);
    search_done = job_done(&search);
    control("");
    fifo_byte(dir, "release", true);
    cr_assert(read_done, "a read on another session waited for the slow backend");
    cr_assert_not(search_done, "the search left the slow backend early");
    cr_assert_eq(reader.rv, CKR_OK, "%#lx", reader.rv);
    pthread_join(other, NULL);
    pthread_join(slow, NULL);
    cr_assert_eq(search.rv, CKR_OK, "%#lx", search.rv);
    cr_assert_eq(search.found, 6);
    assert_labels(p11, t, ALL_DATA, "after");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- a token that leaves and comes back ---------------------------------- */

/* Backend A's token is removed: the virtual token and sessions stay, a
 * search answers layer tb's objects, A's objects report CKR_DEVICE_ERROR.
 * When the token is back, the same virtual handles work again and the
 * layer login is replayed (a-secret is visible). */
Test(faults, token_leaves_and_returns)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s, t;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE a1 = find_one(p11, s, CKO_DATA, "a-1"), b1 = find_one(p11, s, CKO_DATA, "b-1");
    CK_OBJECT_HANDLE secret = find_one(p11, s, CKO_DATA, "a-secret");
    CK_TOKEN_INFO info;
    CK_RV rv;

    control("present = no\n");
    assert_labels(p11, s, B_DATA, "token gone");
    rv = label_rv(p11, s, a1, "a-1");
    cr_assert_eq(rv, CKR_DEVICE_ERROR, "%#lx", rv);
    cr_assert_eq(label_rv(p11, s, b1, "b-1"), CKR_OK);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    t = open_rw(p11, slot);
    assert_labels(p11, t, B_DATA, "token gone, new session");
    rv = label_rv(p11, t, secret, "a-secret");
    cr_assert_eq(rv, CKR_DEVICE_ERROR, "%#lx", rv);

    control("present = yes\n");
    rv = label_rv(p11, s, a1, "a-1");
    cr_assert_eq(rv, CKR_OK, "%#lx", rv);
    cr_assert_eq(label_rv(p11, t, secret, "a-secret"), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "a-1"), a1);
    cr_assert_eq(find_one(p11, t, CKO_DATA, "a-secret"), secret);
    assert_labels(p11, s, ALL_DATA, "token back");
    assert_labels(p11, t, ALL_DATA, "token back, new session");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- allocation failure inside Strata ------------------------------------ */

#ifndef FAULTS_SANITIZED

/* This executable's malloc, calloc, realloc and free (the module binds to
 * them) forward to glibc's; armed, the Nth allocation after arming fails
 * once. Every block allocated by the module's own code (its caller's
 * address lies in strata-pkcs11.so) is tracked until freed, so that a
 * block Strata still holds after C_Finalize shows as a leak. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

/* The build hides symbols by default; these must bind for the module. */
#define EXPORTED __attribute__((visibility("default")))

static long alloc_countdown; /* > 0: armed; the call that brings it to 0 fails */
static long alloc_count;     /* allocations since arming */

static bool alloc_fails(void)
{
    if (alloc_countdown <= 0) {
        return false;
    }
    alloc_count++;
    if (--alloc_countdown == 0) {
        errno = ENOMEM;
        return true;
    }
    return false;
}

#define TRACK_SLOTS 65536 /* a power of two, far above Strata's live blocks */
#define TOMBSTONE   ((void *)1)

static uintptr_t module_lo, module_hi; /* strata-pkcs11.so's mapped range */
static void *tracked[TRACK_SLOTS];     /* open addressing; NULL = empty */
static long tracked_live;
static bool tracked_full;
static atomic_flag track_lock = ATOMIC_FLAG_INIT;

static size_t slot_of(const void *p)
{
    return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> 48 & (TRACK_SLOTS - 1);
}

static void track(void *p)
{
    size_t i = slot_of(p), n = 0;

    while (atomic_flag_test_and_set(&track_lock)) {
    }
    while (n < TRACK_SLOTS && tracked[i] != NULL && tracked[i] != TOMBSTONE) {
        i = (i + 1) & (TRACK_SLOTS - 1);
        n++;
    }
    if (n < TRACK_SLOTS) {
        tracked[i] = p;
        tracked_live++;
    } else {
        tracked_full = true; /* the test then fails rather than miss a leak */
    }
    atomic_flag_clear(&track_lock);
}

/* Forgets p; returns whether it was tracked. */
static bool untrack(void *p)
{
    size_t i = slot_of(p);
    bool found = false;

    while (atomic_flag_test_and_set(&track_lock)) {
    }
    for (size_t n = 0; n < TRACK_SLOTS && tracked[i] != NULL;
         n++, i = (i + 1) & (TRACK_SLOTS - 1)) {
        if (tracked[i] == p) {
            tracked[i] = TOMBSTONE;
            tracked_live--;
            found = true;
            break;
        }
    }
    atomic_flag_clear(&track_lock);
    return found;
}

static bool from_module(const void *caller)
{
    return (uintptr_t)caller >= module_lo && (uintptr_t)caller < module_hi;
}

EXPORTED void *malloc(size_t size)
{
    void *p = alloc_fails() ? NULL : __libc_malloc(size);

    if (p != NULL && from_module(__builtin_return_address(0))) {
        track(p);
    }
    return p;
}

EXPORTED void *calloc(size_t n, size_t size)
{
    void *p = alloc_fails() ? NULL : __libc_calloc(n, size);

    if (p != NULL && from_module(__builtin_return_address(0))) {
        track(p);
    }
    return p;
}

EXPORTED void *realloc(void *p, size_t size)
{
    bool was = false;
    void *q;

    if (alloc_fails()) {
        return NULL; /* p stays as it was */
    }
    was = p != NULL && untrack(p);
    q = __libc_realloc(p, size);
    if (q == NULL && was) {
        track(p);
    } else if (q != NULL && (was || from_module(__builtin_return_address(0)))) {
        track(q);
    }
    return q;
}

EXPORTED void free(void *p)
{
    if (p != NULL) {
        untrack(p);
    }
    __libc_free(p);
}

/* dl_iterate_phdr callback: records the mapped range of strata-pkcs11.so. */
static int find_module(struct dl_phdr_info *info, size_t size, void *data)
{
    const char *name = info->dlpi_name;
    size_t len = strlen(name), want = strlen("strata-pkcs11.so");

    (void)size;
    (void)data;
    if (len < want || strcmp(name + len - want, "strata-pkcs11.so") != 0) {
        return 0;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type != PT_LOAD) {
            continue;
        }
        module_lo = module_lo == 0 || lo < module_lo ? lo : module_lo;
        module_hi = hi > module_hi ? hi : module_hi;
    }
    return 1;
}

/* One step of the sequence: the call's name and code. */
typedef struct {
    int step;
    CK_RV rv;
    long allocations;
    long leaked; /* Strata's blocks still allocated after C_Finalize */
} alloc_report;

/* Opens a session, logs in, searches, reads a label, creates and
 * destroys a data object, logs out and closes. Stops at the first code
 * other than CKR_OK; returns it with the step number in *r. */
static void alloc_sequence(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot, alloc_report *r)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE found[16], made = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    char label[32];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
    CK_RV rv;

    r->step = 1;
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK && (r->step = 2, rv = login(p11, s, WORK_PIN)) == CKR_OK &&
        (r->step = 3, rv = p11->C_FindObjectsInit(s, NULL, 0)) == CKR_OK) {
        r->step = 4;
        rv = p11->C_FindObjects(s, found, 16, &n);
        CK_RV final = p11->C_FindObjectsFinal(s);
        if (rv == CKR_OK) {
            r->step = 5;
            rv = final;
        }
    }
    /* All six objects, or the three of one layer: an allocation failure
     * inside a layer's own login leaves that layer out until logout
     * (engine/login.c, login_layer), which the second run checks. */
    if (rv == CKR_OK &&
        (r->step = 6, rv = n == 6 || n == 3 ? CKR_OK : CKR_GENERAL_ERROR) == CKR_OK &&
        (r->step = 7, rv = p11->C_GetAttributeValue(s, found[0], &a, 1)) == CKR_OK &&
        (r->step = 8, rv = create_data(p11, s, "made", &made)) == CKR_OK &&
        (r->step = 9, rv = p11->C_DestroyObject(s, made)) == CKR_OK &&
        (r->step = 10, rv = p11->C_Logout(s)) == CKR_OK) {
        r->step = 11;
        rv = p11->C_CloseSession(s);
    }
    r->rv = rv;
}

/* In a child: initialises the module, fails the nth allocation of the
 * sequence (0: none, and counts them), then runs it again unharmed and
 * finalises. Exits 0 when every armed code was CKR_OK or CKR_HOST_MEMORY
 * and the second run and C_Finalize were fine; reports through fd. */
static void alloc_child(long nth, int fd)
{
    CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
    alloc_report r = {0}, again = {0};
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    int status = 0;

    dl_iterate_phdr(find_module, NULL);
    if (module_hi == 0 || p11->C_Initialize(NULL) != CKR_OK ||
        p11->C_GetSlotList(CK_TRUE, &slot, &n) != CKR_OK) {
        _exit(2);
    }
    alloc_count = 0;
    alloc_countdown = nth > 0 ? nth : LONG_MAX;
    alloc_sequence(p11, slot, &r);
    alloc_countdown = 0;
    r.allocations = alloc_count;
    if (r.rv != CKR_OK && r.rv != CKR_HOST_MEMORY) {
        status = 3;
    }
    p11->C_CloseAllSessions(slot);
    alloc_sequence(p11, slot, &again);
    if (status == 0 && again.rv != CKR_OK) {
        r = again;
        status = 4;
    }
    if (status == 0 && p11->C_Finalize(NULL) != CKR_OK) {
        status = 5;
    }
    r.leaked = tracked_live;
    if (status == 0 && (tracked_live != 0 || tracked_full)) {
        status = 7; /* Strata still holds blocks it allocated */
    }
    if (write(fd, &r, sizeof(r)) != sizeof(r)) {
        status = 6;
    }
    _exit(status);
}

/* Runs alloc_child(nth) and checks its outcome; returns its report. */
static alloc_report alloc_run(long nth)
{
    alloc_report r = {0};
    int fds[2], status = 0;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alloc_child(nth, fds[1]);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &r, sizeof(r)), (ssize_t)sizeof(r), "allocation %ld: no report", nth);
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "allocation %ld: child died (signal %d)", nth,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 0,
                 "allocation %ld: status %d, step %d answered %#lx, %ld blocks leaked", nth,
                 WEXITSTATUS(status), r.step, r.rv, r.leaked);
    return r;
}

/* Every allocation the sequence makes inside Strata (after C_Initialize)
 * fails once in its own child: each call answers CKR_OK or
 * CKR_HOST_MEMORY, the module then runs the whole sequence again and
 * finalises cleanly, and no block Strata's code allocated is left after
 * C_Finalize. It forks a child for each of up to a thousand
 * allocations, so it has its own timeout: the suite's 120 s was too
 * short on a machine loaded by other builds. */
Test(faults, allocation_failure_gives_host_memory, .timeout = 480)
{
    alloc_report all = alloc_run(0);
    long step = all.allocations > 1000 ? all.allocations / 1000 + 1 : 1;

    cr_assert_eq(all.rv, CKR_OK);
    cr_assert_gt(all.allocations, 0);
    for (long nth = 1; nth <= all.allocations; nth += step) {
        alloc_run(nth);
    }
}

/* Strata keeps no state that grows with the calls made: after the
 * sequence has run 10 times (caches warm, the catalog's handles made),
 * 100 more runs leave exactly as many of Strata's blocks allocated. */
Test(faults, repeated_calls_hold_no_more_memory)
{
    CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
    alloc_report r = {0};
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    long warm;

    dl_iterate_phdr(find_module, NULL);
    cr_assert_neq(module_hi, 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    for (int i = 0; i < 10; i++) {
        alloc_sequence(p11, slot, &r);
        cr_assert_eq(r.rv, CKR_OK, "run %d: step %d answered %#lx", i, r.step, r.rv);
    }
    warm = tracked_live;
    cr_assert_gt(warm, 0);
    for (int i = 0; i < 100; i++) {
        alloc_sequence(p11, slot, &r);
        cr_assert_eq(r.rv, CKR_OK, "run %d: step %d answered %#lx", 10 + i, r.step, r.rv);
    }
    cr_expect_eq(tracked_live, warm, "Strata's live blocks: %ld after 10 runs, %ld after 110", warm,
                 tracked_live);
    cr_assert_not(tracked_full);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_expect_eq(tracked_live, 0, "%ld blocks left after C_Finalize", tracked_live);
}

#endif /* FAULTS_SANITIZED */
