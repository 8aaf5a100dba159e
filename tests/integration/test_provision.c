/*
 * test_provision.c - lazy provisioning at login (engine/provision.c,
 * login.c) over real SoftHSM2 tokens and real processes: the first login
 * makes the token, racing processes make exactly one, a process started
 * before another provisioned sees the token after a reconnect, crashes
 * between steps are repaired, and no free slot leaves the view waiting.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identity_world.h"

TestSuite(provision, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

/* The first login of a lazy view makes its token on the free slot, and
 * the view works: an object created through Strata lands on it. */
Test(provision, first_login_creates_token)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char *out = NULL;

    cr_assert_eq(tokens_labelled("strata-alice"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(tokens_labelled("strata-alice"), 1);
    cr_assert_eq(create_data(p11, s, "made-by-alice", NULL), CKR_OK);
    cr_assert_eq(backend_has_data("strata-alice", "made-by-alice"), 1);
    /* A second lazy view in the same process gets its own token. */
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    cr_assert_eq(tokens_labelled("strata-bob"), 1);
    cr_assert_eq(create_data(p11, s, "made-by-bob", NULL), CKR_OK);
    cr_assert_eq(backend_has_data("strata-bob", "made-by-bob"), 1);
    cr_assert_eq(backend_has_data("strata-alice", "made-by-bob"), 0);
    /* Back to alice: her object is there, bob's is not. */
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(create_data(p11, s, "alice-again", NULL), CKR_OK);
    cr_assert_eq(tokens_labelled("strata-alice"), 1);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* strata status lists both, ready, with their serials. */
    cr_assert_eq(world_sh_out(&out, "'%s' status", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "strata-alice"), "%s", out);
    cr_assert_not_null(strstr(out, "strata-bob"), "%s", out);
    cr_assert_not_null(strstr(out, "ready"), "%s", out);
    free(out);
    cr_assert_eq(world_sh_out(&out, "'%s' views", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "enrolled, provisioned (1)"), "%s", out);
    free(out);
}

/* A child that logs in to view with pin once the parent closes the pipe,
 * creates an object and exits 0 on success. */
static pid_t racer(const int gate[2], const char *pin, const char *label)
{
    pid_t pid = fork();
    char c;

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
        CK_SLOT_ID slot;
        CK_ULONG n = 1;
        CK_SESSION_HANDLE s;
        int ok;

        char logfile[PATH_MAX + 32];

        snprintf(logfile, sizeof(logfile), "%s/%s.log", w.dir, label);
        setenv("STRATA_LOG", "info", 1);
        setenv("STRATA_LOG_FILE", logfile, 1);
        close(gate[1]);
        (void)!read(gate[0], &c, 1);
        ok = p11->C_Initialize(NULL) == CKR_OK &&
             p11->C_GetSlotList(CK_TRUE, &slot, &n) == CKR_OK &&
             p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) ==
                 CKR_OK &&
             login(p11, s, pin) == CKR_OK && create_data(p11, s, label, NULL) == CKR_OK;
        p11->C_Finalize(NULL);
        _exit(ok ? 0 : 1);
    }
    return pid;
}

/* Two processes logging in to the same new view at the same moment make
 * exactly one token, and both work. */
Test(provision, two_processes_one_token)
{
    int fds[2], st1 = -1, st2 = -1;
    pid_t a, b;

    cr_assert_eq(pipe(fds), 0);
    a = racer(fds, ALICE_PIN, "from-a");
    b = racer(fds, ALICE_PIN, "from-b");
    close(fds[0]);
    close(fds[1]); /* both start now */
    cr_assert_eq(waitpid(a, &st1, 0), a);
    cr_assert_eq(waitpid(b, &st2, 0), b);
    if (!(WIFEXITED(st1) && WEXITSTATUS(st1) == 0 && WIFEXITED(st2) && WEXITSTATUS(st2) == 0)) {
        world_sh("cat '%s'/from-a.log '%s'/from-b.log >&2", w.dir, w.dir);
    }
    cr_assert(WIFEXITED(st1) && WEXITSTATUS(st1) == 0);
    cr_assert(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
    cr_assert_eq(tokens_labelled("strata-alice"), 1);
    cr_assert_eq(backend_has_data("strata-alice", "from-a"), 1);
    cr_assert_eq(backend_has_data("strata-alice", "from-b"), 1);
}

/* Process A is running (initialised, a session open, the backend's slot
 * list read); process B (strata provision) provisions view alice; A then
 * logs in with alice's PIN: the token is invisible to A's SoftHSM2 until
 * Strata reconnects the module, which it does, and A works. */
Test(provision, other_process_provisioned_cycle)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot), other = open_rw(p11, slot);
    CK_TOKEN_INFO info;

    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK); /* touches the backend */
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);         /* the group layer logs in */
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(strata_cli(ALICE_PIN, "provision --token Strata --view alice --pin-stdin"), 0);
    cr_assert_eq(tokens_labelled("strata-alice"), 1);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(create_data(p11, other, "a-after-cycle", NULL), CKR_OK);
    cr_assert_eq(backend_has_data("strata-alice", "a-after-cycle"), 1);
    cr_assert_eq(tokens_labelled("strata-alice"), 1, "no second token was made");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A crash at each provisioning step (the fault point stops the sequence
 * there, then the process is killed with SIGKILL) leaves a state that the
 * next login repairs: one token, working, and its row ready. */
static void crash_at(const char *point)
{
    pid_t pid = fork();
    int st = -1;

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
        CK_SLOT_ID slot;
        CK_ULONG n = 1;
        CK_SESSION_HANDLE s;

        setenv("STRATA_TEST_FAIL_AT", point, 1);
        if (p11->C_Initialize(NULL) == CKR_OK && p11->C_GetSlotList(CK_TRUE, &slot, &n) == CKR_OK &&
            p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) ==
                CKR_OK &&
            login(p11, s, ALICE_PIN) == CKR_DEVICE_ERROR) {
            raise(SIGKILL); /* the crash, mid-provisioning */
        }
        _exit(3);
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: the fault point was not reached",
              point);
}

static void crash_then_repair(const char *point, int tokens_after_crash)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    char *out = NULL;

    crash_at(point);
    cr_assert_eq(tokens_labelled("strata-alice"), tokens_after_crash, "%s", point);
    /* A half-made token needs attention (issue 14, honest status). */
    cr_assert_eq(world_sh_out(&out, "'%s' status", world_strata_cli()), 1, "%s", out);
    cr_assert_not_null(strstr(out, "pending"), "%s: %s", point, out);
    cr_assert_not_null(strstr(out, "run: strata provision --token Strata --view alice"), "%s: %s",
                       point, out);
    free(out);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "%s", point);
    cr_assert_eq(create_data(p11, s, "after-repair", NULL), CKR_OK, "%s", point);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(tokens_labelled("strata-alice"), 1, "%s", point);
    cr_assert_eq(backend_has_data("strata-alice", "after-repair"), 1, "%s", point);
    cr_assert_eq(world_sh_out(&out, "'%s' status", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "ready"), "%s: %s", point, out);
    free(out);
}

Test(provision, crash_before_inittoken_repaired)
{
    crash_then_repair("provision-before-inittoken", 0);
}

Test(provision, crash_after_inittoken_repaired)
{
    crash_then_repair("provision-after-inittoken", 1);
}

Test(provision, crash_after_so_login_repaired)
{
    crash_then_repair("provision-after-so-login", 1);
}

Test(provision, crash_after_initpin_repaired)
{
    crash_then_repair("provision-after-initpin", 1);
}

/* ---- no free slot (the test backend shows none until told to) -------- */

static const char tb_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"tb\" path=\"@TB@\"/>\n"
    "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
    "  <layer id=\"personal\" module=\"tb\" token=\"strata-{view}\" provision=\"lazy\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"group\" access=\"read-only\"/>\n"
    "  <token label=\"Strata\" max-failed-logins=\"3\" min-pin-len=\"6\" max-pin-len=\"32\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"alice\" layers=\"personal group\"/>\n"
    "    <view id=\"bob\" layers=\"personal\"/>\n"
    "    <view id=\"carol\" layers=\"group\"/>\n"
    "  </token>\n"
    "</strata>\n";

static void tb_free_slots(int n)
{
    char path[PATH_MAX + 16];
    FILE *f;

    snprintf(path, sizeof(path), "%s/tb.conf", w.dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "label = tb-fixed\nfree-slots = %d\n", n);
    fclose(f);
    setenv("STRATA_TEST_BACKEND_CONF", path, 1);
}

static void tb_setup(void)
{
    char xml[sizeof(tb_policy) + PATH_MAX];
    const char *tb = getenv("STRATA_TEST_BACKEND");
    const char *at = strstr(tb_policy, "@TB@");

    cr_assert_not_null(tb);
    snprintf(xml, sizeof(xml), "%.*s%s%s", (int)(at - tb_policy), tb_policy, tb, at + 4);
    identity_setup_policy(xml);
}

Test(provision_noslot, device_memory_then_waiting_then_provisions, .init = tb_setup,
     .fini = identity_teardown, .timeout = 300)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    char *out = NULL;
    CK_SESSION_INFO si;
    CK_OBJECT_HANDLE found[8];
    CK_RV rv;

    tb_free_slots(0);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_DEVICE_MEMORY);
    cr_assert_eq(world_sh_out(&out, "'%s' status", world_strata_cli()), 1, "%s", out);
    cr_assert_not_null(strstr(out, "waiting for a free slot"), "%s", out);
    cr_assert_not_null(strstr(out, "needs attention"), "%s", out);
    free(out);
    /* Not logged in, nothing half-done; the failure did not count. */
    cr_assert_eq(p11->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    /* A slot frees up (the backend shows one at its next restart). */
    tb_free_slots(1);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_OK);
    rv = p11->C_GetSessionInfo(s, &si);
    cr_assert_eq(rv, CKR_OK);
    cr_assert_eq(si.state, CKS_RW_USER_FUNCTIONS);
    cr_assert_eq(find_all(p11, s, NULL, 0, found, 8), 0, "the new token is empty");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* The catalog's row is ready. The test backend keeps its tokens in
     * the process that made them, so strata status, another process,
     * finds the token missing and says so. */
    cr_assert_eq(world_sh_out(&out, "'%s' status", world_strata_cli()), 1, "%s", out);
    cr_assert_null(strstr(out, "waiting for a free slot"), "%s", out);
    cr_assert_not_null(strstr(out, "missing"), "%s", out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "[(p['view'], p['state']) for p in d['tokens'][0]['provisioned']] "
                               "== [('bob', 'ready')]"));
}
