/*
 * test_lifecycle.c - C_GetFunctionList, C_Initialize, C_Finalize and
 * C_GetInfo of the built module, loaded with dlopen like a real client,
 * over an isolated SoftHSM2 world.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "world.h"

static world w;
static CK_FUNCTION_LIST *p11;

static const char one_token_policy[] = "<strata version=\"1\">\n"
                                       "  <catalog path=\"@CATALOG@\"/>\n"
                                       "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                       "  <layer id=\"a\" module=\"soft\" token=\"layer-a\"/>\n"
                                       "  <token label=\"Strata Work\">\n"
                                       "    <view id=\"work\" layers=\"a\"/>\n"
                                       "  </token>\n"
                                       "</strata>\n";

static void setup(void)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    void *handle;

    world_setup(&w);
    cr_assert_eq(world_token(&w, "layer-a", "12345678", "1234"), 0);
    handle = dlopen(world_strata_module(), RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "dlopen: %s", dlerror());
    *(void **)&get_list = dlsym(handle, "C_GetFunctionList");
    cr_assert(get_list != NULL);
    cr_assert_eq(get_list(&p11), CKR_OK);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(lifecycle, .init = setup, .fini = teardown, .timeout = 120);

/* Reads a whole file into a malloc'd buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    cr_assert(f != NULL, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert(buf != NULL);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    cr_assert(f != NULL);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

/* C_Initialize fails with CKR_GENERAL_ERROR and the catalog file keeps its
 * exact bytes. */
static void assert_init_fails_catalog_unchanged(void)
{
    size_t before_len, after_len;
    char *before = slurp(w.catalog, &before_len);
    char *after;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    after = slurp(w.catalog, &after_len);
    cr_assert_eq(after_len, before_len);
    cr_assert(memcmp(before, after, before_len) == 0, "catalog changed");
    free(before);
    free(after);
    /* Nothing is left initialised. */
    cr_assert_eq(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

Test(lifecycle, C_GetFunctionList_null)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR) = p11->C_GetFunctionList;

    cr_assert_eq(get_list(NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->version.major, 2);
    cr_assert_eq(p11->version.minor, 40);
}

/*
 * Every entry but C_Initialize and C_GetFunctionList answers
 * CKR_CRYPTOKI_NOT_INITIALIZED before C_Initialize. The list is walked as
 * an array of entry points and each is called with all-zero arguments
 * (which every x86-64/aarch64 ABI passes harmlessly to a function that
 * takes fewer): a new entry cannot be forgotten here.
 */
Test(lifecycle, every_function_before_initialize)
{
    typedef CK_RV (*any_fn)(CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG,
                            CK_ULONG);
    const size_t first = offsetof(CK_FUNCTION_LIST, C_Initialize);
    const size_t n = (sizeof(CK_FUNCTION_LIST) - first) / sizeof(any_fn);
    const char *base = (const char *)p11 + first;

    cr_assert_eq(n, 68);
    for (size_t i = 0; i < n; i++) {
        any_fn fn;

        memcpy(&fn, base + i * sizeof(any_fn), sizeof(fn));
        cr_assert(fn != NULL, "entry %zu is NULL", i);
        if ((void *)fn == (void *)p11->C_Initialize ||
            (void *)fn == (void *)p11->C_GetFunctionList) {
            continue;
        }
        cr_assert_eq(fn(0, 0, 0, 0, 0, 0, 0, 0), CKR_CRYPTOKI_NOT_INITIALIZED, "entry %zu", i);
    }
}

Test(lifecycle, C_Initialize_null_args)
{
    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

Test(lifecycle, C_Initialize_reserved)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK, .pReserved = &args};

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetSlotList(CK_FALSE, NULL, &(CK_ULONG){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* Application mutexes that count their calls. */
static int n_create, n_destroy, n_lock, n_unlock;

static CK_RV count_create(CK_VOID_PTR_PTR mutex)
{
    pthread_mutex_t *m = malloc(sizeof(*m));

    if (m == NULL) {
        return CKR_HOST_MEMORY;
    }
    pthread_mutex_init(m, NULL);
    *mutex = m;
    __atomic_add_fetch(&n_create, 1, __ATOMIC_SEQ_CST);
    return CKR_OK;
}

static CK_RV count_destroy(CK_VOID_PTR mutex)
{
    pthread_mutex_destroy(mutex);
    free(mutex);
    __atomic_add_fetch(&n_destroy, 1, __ATOMIC_SEQ_CST);
    return CKR_OK;
}

static CK_RV count_lock(CK_VOID_PTR mutex)
{
    __atomic_add_fetch(&n_lock, 1, __ATOMIC_SEQ_CST);
    return pthread_mutex_lock(mutex) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV count_unlock(CK_VOID_PTR mutex)
{
    __atomic_add_fetch(&n_unlock, 1, __ATOMIC_SEQ_CST);
    return pthread_mutex_unlock(mutex) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

Test(lifecycle, C_Initialize_partial_callbacks)
{
    CK_C_INITIALIZE_ARGS args;

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    /* Each proper, non-empty subset of the four callbacks. */
    for (unsigned mask = 1; mask < 15; mask++) {
        memset(&args, 0, sizeof(args));
        args.CreateMutex = (mask & 1) ? count_create : NULL;
        args.DestroyMutex = (mask & 2) ? count_destroy : NULL;
        args.LockMutex = (mask & 4) ? count_lock : NULL;
        args.UnlockMutex = (mask & 8) ? count_unlock : NULL;
        cr_assert_eq(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD, "mask %u", mask);
        args.flags = CKF_OS_LOCKING_OK;
        cr_assert_eq(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD, "mask %u + OS", mask);
    }
    cr_assert_eq(n_create, 0);
    cr_assert_eq(p11->C_GetInfo(&(CK_INFO){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
}

Test(lifecycle, C_Initialize_os_locking)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(&args), CKR_OK);
    cr_assert_eq(p11->C_Initialize(&args), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(lifecycle, C_Initialize_cant_create_threads)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS};

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(&args), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Callbacks without CKF_OS_LOCKING_OK: the engine's mutexes are the
 * application's, and every one made is destroyed by C_Finalize. */
Test(lifecycle, C_Initialize_app_callbacks)
{
    CK_C_INITIALIZE_ARGS args = {.CreateMutex = count_create,
                                 .DestroyMutex = count_destroy,
                                 .LockMutex = count_lock,
                                 .UnlockMutex = count_unlock};

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(&args), CKR_OK);
    cr_assert_gt(n_create, 0, "the application's CreateMutex was not used");
    cr_assert_eq(n_destroy, 0);
    cr_assert_eq(n_lock, n_unlock);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(n_destroy, n_create);
    cr_assert_eq(n_lock, n_unlock);
}

/* Callbacks and CKF_OS_LOCKING_OK: Strata uses OS locking. */
Test(lifecycle, C_Initialize_callbacks_and_os_locking)
{
    CK_C_INITIALIZE_ARGS args = {.CreateMutex = count_create,
                                 .DestroyMutex = count_destroy,
                                 .LockMutex = count_lock,
                                 .UnlockMutex = count_unlock,
                                 .flags = CKF_OS_LOCKING_OK};

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(&args), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(n_create, 0);
}

Test(lifecycle, C_Finalize_reserved)
{
    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(&w), CKR_ARGUMENTS_BAD);
    /* Still initialised. */
    cr_assert_eq(p11->C_GetInfo(&(CK_INFO){0}), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static void init_finalize(int times)
{
    CK_ULONG count;

    for (int i = 0; i < times; i++) {
        cr_assert_eq(p11->C_Initialize(NULL), CKR_OK, "cycle %d", i);
        cr_assert_eq(p11->C_GetSlotList(CK_TRUE, NULL, &count), CKR_OK);
        cr_assert_eq(count, 1);
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK, "cycle %d", i);
    }
}

/* Open file descriptors of this process. */
static int count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    int n = 0;

    cr_assert(dir != NULL);
    while (readdir(dir) != NULL) {
        n++;
    }
    closedir(dir);
    return n;
}

/*
 * Fifty cycles leak nothing: no file descriptor (catalog, log, backend
 * files) and, under ASan, no memory: LeakSanitizer checks the whole
 * process after the loop (it reports only memory nothing points to).
 * glibc's own heap statistics count cached free chunks as used, so the
 * memory half of the check needs the ASan build (.ci/run runs it).
 */
Test(lifecycle, C_Initialize_finalize_loop)
{
    int fds;

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    init_finalize(2);
    fds = count_fds();
    init_finalize(50);
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
#ifdef __SANITIZE_ADDRESS__
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks");
#endif
}

/* One racer of C_Initialize_concurrent: initialise, then use the library
 * at once, as pkcs11-tool --test-threads does. */
static void *init_racer(void *arg)
{
    CK_RV *result = arg;
    CK_INFO info;
    CK_RV rv = p11->C_Initialize(NULL);

    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        result[0] = rv;
        return NULL;
    }
    result[0] = rv;
    result[1] = p11->C_GetInfo(&info);
    return NULL;
}

/*
 * Threads racing into C_Initialize: exactly one initialises, the others
 * get CKR_CRYPTOKI_ALREADY_INITIALIZED only once the library is ready, so
 * every thread's next call works.
 */
Test(lifecycle, C_Initialize_concurrent)
{
    enum { RACERS = 8, ROUNDS = 5 };
    pthread_t threads[RACERS];
    CK_RV results[RACERS][2];

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    for (int round = 0; round < ROUNDS; round++) {
        int initialised = 0;
        for (int i = 0; i < RACERS; i++) {
            results[i][0] = results[i][1] = CKR_GENERAL_ERROR;
            cr_assert_eq(pthread_create(&threads[i], NULL, init_racer, results[i]), 0);
        }
        for (int i = 0; i < RACERS; i++) {
            cr_assert_eq(pthread_join(threads[i], NULL), 0);
        }
        for (int i = 0; i < RACERS; i++) {
            cr_assert(results[i][0] == CKR_OK || results[i][0] == CKR_CRYPTOKI_ALREADY_INITIALIZED,
                      "racer %d: C_Initialize 0x%lx", i, results[i][0]);
            cr_assert_eq(results[i][1], CKR_OK, "racer %d: C_GetInfo 0x%lx after 0x%lx", i,
                         results[i][1], results[i][0]);
            initialised += results[i][0] == CKR_OK;
        }
        cr_assert_eq(initialised, 1, "round %d: %d threads initialised", round, initialised);
        cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    }
}

Test(lifecycle, C_Initialize_missing_policy)
{
    /* STRATA_CONF names a file that does not exist. */
    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    cr_assert_eq(p11->C_GetInfo(&(CK_INFO){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* Fixing the policy makes the next C_Initialize work. */
    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(lifecycle, C_Initialize_malformed_policy)
{
    struct stat st;

    cr_assert_eq(world_policy(&w, "<strata version=\"1\"><module id=\"soft\" path=\"x\">"), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    cr_assert_eq(p11->C_GetInfo(&(CK_INFO){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* No catalog was created for a policy that did not load. */
    cr_assert_neq(stat(w.catalog, &st), 0);
}

Test(lifecycle, C_Initialize_invalid_policy)
{
    /* Well-formed XML the schema rejects. */
    cr_assert_eq(world_policy(&w, "<strata version=\"1\"><bogus/></strata>"), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
}

/* A module that does not exist makes its layers unavailable; the token is
 * still listed, write-protected and without mechanisms. */
Test(lifecycle, C_Initialize_missing_module)
{
    CK_TOKEN_INFO info;
    CK_SLOT_ID slot;
    CK_ULONG count = 1;

    cr_assert_eq(world_policy(&w, "<strata version=\"1\">\n"
                                  "  <catalog path=\"@CATALOG@\"/>\n"
                                  "  <module id=\"gone\" path=\"/nonexistent/libgone.so\"/>\n"
                                  "  <layer id=\"a\" module=\"gone\" token=\"layer-a\"/>\n"
                                  "  <token label=\"Strata Orphan\">\n"
                                  "    <view id=\"work\" layers=\"a\"/>\n"
                                  "  </token>\n"
                                  "</strata>\n"),
                 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &count), CKR_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(memcmp(info.label, "Strata Orphan ", 14) == 0);
    cr_assert(info.flags & CKF_WRITE_PROTECTED);
    cr_assert_eq(p11->C_GetMechanismList(slot, NULL, &count), CKR_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(lifecycle, C_Initialize_garbage_catalog)
{
    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    write_file(w.catalog, "this is not an SQLite database, and must stay as it is\n");
    assert_init_fails_catalog_unchanged();
}

Test(lifecycle, C_Initialize_catalog_too_new)
{
    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    /* A real catalog first, then a schema version from the future. */
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(world_sh("sqlite3 '%s' 'PRAGMA user_version = 9999;'", w.catalog), 0);
    assert_init_fails_catalog_unchanged();
}

/* A catalog that cannot be created (its folder would be inside a file,
 * which even root cannot do) fails C_Initialize and leaves the file be. */
Test(lifecycle, C_Initialize_unwritable_catalog)
{
    char xml[2 * PATH_MAX + 512];
    size_t before_len, after_len;
    char *before, *after;

    snprintf(xml, sizeof(xml),
             "<strata version=\"1\">\n"
             "  <catalog path=\"%s/catalog.db\"/>\n"
             "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
             "  <layer id=\"a\" module=\"soft\" token=\"layer-a\"/>\n"
             "  <token label=\"Strata Work\"><view id=\"work\" layers=\"a\"/></token>\n"
             "</strata>\n",
             w.softhsm_conf);
    cr_assert_eq(world_policy(&w, xml), 0);
    before = slurp(w.softhsm_conf, &before_len);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    after = slurp(w.softhsm_conf, &after_len);
    cr_assert_eq(after_len, before_len);
    cr_assert(memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
}

Test(lifecycle, C_Initialize_creates_catalog)
{
    struct stat st;

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_neq(stat(w.catalog, &st), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(stat(w.catalog, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(lifecycle, C_GetInfo_content)
{
    CK_INFO info;
    char version[16];

    cr_assert_eq(world_policy(&w, one_token_policy), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetInfo(&info), CKR_OK);
    cr_assert_eq(info.cryptokiVersion.major, 2);
    cr_assert_eq(info.cryptokiVersion.minor, 40);
    cr_assert(memcmp(info.manufacturerID, "Strata                          ", 32) == 0);
    cr_assert(memcmp(info.libraryDescription, "Strata layered PKCS#11 module   ", 32) == 0);
    cr_assert_eq(info.flags, 0);
    snprintf(version, sizeof(version), "%u.%u.", info.libraryVersion.major,
             info.libraryVersion.minor);
    cr_assert(strncmp(STRATA_VERSION, version, strlen(version)) == 0, "%s vs %s", version,
              STRATA_VERSION);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* STRATA_LOG=debug with STRATA_LOG_FILE: prefixed lines, one per message. */
Test(lifecycle, log_to_file)
{
    char path[PATH_MAX + 16];
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/strata.log", w.dir);
    setenv("STRATA_LOG", "debug", 1);
    setenv("STRATA_LOG_FILE", path, 1);
    /* A missing policy is an error the log must name. */
    cr_assert_eq(p11->C_Initialize(NULL), CKR_GENERAL_ERROR);
    text = slurp(path, &len);
    cr_assert(len > 0 && text[len - 1] == '\n');
    text[len] = '\0';
    cr_assert(strstr(text, "strata: error: ") != NULL, "%s", text);
    cr_assert(strstr(text, w.policy) != NULL, "log does not name the policy: %s", text);
    free(text);
}

/* The policy's <log calls="PATH"/> turns the log on without STRATA_LOG. */
Test(lifecycle, log_policy_target)
{
    char path[PATH_MAX + 16], xml[2 * PATH_MAX + 512];
    struct stat st;
    size_t len;
    char *text;

    snprintf(path, sizeof(path), "%s/calls.log", w.dir);
    snprintf(xml, sizeof(xml),
             "<strata version=\"1\">\n"
             "  <catalog path=\"@CATALOG@\"/>\n"
             "  <log calls=\"%s\"/>\n"
             "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
             "  <layer id=\"a\" module=\"soft\" token=\"layer-a\"/>\n"
             "  <token label=\"Strata Work\"><view id=\"work\" layers=\"a\"/></token>\n"
             "</strata>\n",
             path);
    unsetenv("STRATA_LOG");
    unsetenv("STRATA_LOG_FILE");
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(stat(path, &st), 0, "the policy's log file was not written");
    cr_assert_eq(st.st_mode & 0777, 0600);
    text = slurp(path, &len);
    text[len] = '\0';
    cr_assert(strstr(text, "strata: info: C_Finalize\n") != NULL, "%s", text);
    cr_assert(strstr(text, "module \"soft\" loaded") != NULL, "%s", text);
    free(text);
}

/* Environment prefix for a client run from a test: an ASan-built module
 * needs the ASan runtime loaded first into an uninstrumented client. */
static const char *client_env(void)
{
    static char env[PATH_MAX + 64];
#ifdef __SANITIZE_ADDRESS__
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "__asan_init");

    if (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL) {
        snprintf(env, sizeof(env), "LD_PRELOAD='%s' ASAN_OPTIONS=detect_leaks=0", info.dli_fname);
    }
#endif
    return env;
}

/* Silent by default: no STRATA_LOG, nothing on stderr. */
Test(lifecycle, log_silent_by_default)
{
    char *out = NULL;

    /* Run a client with stderr captured and a failing C_Initialize. */
    cr_assert_eq(world_sh_out(&out,
                              "env -u STRATA_LOG -u STRATA_LOG_FILE %s pkcs11-tool --module '%s' "
                              "-I 2>&1 >/dev/null | grep -c '^strata:'",
                              client_env(), world_strata_module()),
                 1); /* grep -c found no line: exit status 1 */
    cr_assert_str_eq(out, "0\n");
    free(out);
}
