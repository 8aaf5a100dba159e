/*
 * test_creds.c - layer credentials that change behind Strata's back
 * (engine/login.c present_cred, storage/creds.c): a layer PIN changed
 * directly on the backend costs the backend one wrong try at most, across
 * logins and processes; C_Login still succeeds with the other layers; the
 * stale layer is reported and re-enrolled alone.
 *
 * Two worlds: real SoftHSM2 tokens (the PIN changed with pkcs11-tool),
 * and the test backend, whose login-log counts every PIN it is shown
 * (SoftHSM2 keeps no count a test can read).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "p11_client.h"
#include "storage.h"
#include "world.h"

#define SO_PIN    "12345678"
#define ALICE_PIN "alice-layer-4821"
#define TEAM_PIN  "team-layer-9157"
#define TEAM_NEW  "team-changed-0042"
#define WORK_PIN  "work-pin-1"
#define TB_PIN    "4321"

static world w;
static char login_log[PATH_MAX + 16], tb_conf[PATH_MAX + 16];

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(creds, .fini = teardown, .timeout = 240);

/* Writes the test backend's configuration with user PIN pin. */
static void tb_configure(const char *pin)
{
    FILE *f = fopen(tb_conf, "w");

    cr_assert(f != NULL);
    fprintf(f, "label = tb\npin = %s\nlogin-log = %s\n", pin, login_log);
    fclose(f);
}

/* Personal (alice) over group (team) over the test backend (tb), all
 * with enrolled credentials; view anon = personal alone. */
static void setup_world(void)
{
    const char *tb = getenv("STRATA_TEST_BACKEND");
    char *policy = NULL;

    world_setup(&w);
    cr_assert(tb != NULL, "STRATA_TEST_BACKEND not set");
    snprintf(login_log, sizeof(login_log), "%s/tb-logins", w.dir);
    snprintf(tb_conf, sizeof(tb_conf), "%s/tb.conf", w.dir);
    setenv("STRATA_TEST_BACKEND_CONF", tb_conf, 1);
    unsetenv("STRATA_TEST_BACKEND_FAIL");
    unsetenv("STRATA_TEST_BACKEND_CONTROL");
    tb_configure(TB_PIN);
    cr_assert_eq(world_token(&w, "alice", SO_PIN, ALICE_PIN), 0);
    cr_assert_eq(world_token(&w, "team", SO_PIN, TEAM_PIN), 0);
    cr_assert_eq(world_keypair(&w, "alice", ALICE_PIN, "EC:prime256v1", "a-key", "01"), 0);
    cr_assert_eq(world_keypair(&w, "team", TEAM_PIN, "EC:prime256v1", "t-key", "02"), 0);
    cr_assert(
        asprintf(&policy,
                 "<strata version=\"1\">\n"
                 "  <catalog path=\"@CATALOG@\"/>\n"
                 "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                 "  <module id=\"tb\" path=\"%s\"/>\n"
                 "  <layer id=\"personal\" module=\"soft\" token=\"alice\"/>\n"
                 "  <layer id=\"group\" module=\"soft\" token=\"team\" access=\"read-only\"/>\n"
                 "  <layer id=\"extra\" module=\"tb\" token=\"tb\" access=\"read-only\"/>\n"
                 "  <token label=\"Strata\" min-pin-len=\"6\">\n"
                 "    <kdf ops=\"1\" mem=\"8192\"/>\n"
                 "    <view id=\"work\" layers=\"personal group extra\"/>\n"
                 "  </token>\n"
                 "</strata>\n",
                 tb) > 0);
    cr_assert_eq(world_policy(&w, policy), 0);
    free(policy);
    cr_assert_eq(world_sh("printf '%%s\\n' %s %s %s %s | '%s' enroll --token Strata --view work "
                          "--pin-stdin >/dev/null",
                          WORK_PIN, ALICE_PIN, TEAM_PIN, TB_PIN, world_strata_cli()),
                 0);
    remove(login_log); /* enrolment's own checks are not counted */
}

/* Changes the team token's user PIN on SoftHSM2 directly, as its owner
 * would with pkcs11-tool. */
static void change_team_pin(void)
{
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label team --login --pin %s "
                          "--change-pin --new-pin %s >/dev/null 2>&1",
                          world_softhsm_module(), TEAM_PIN, TEAM_NEW),
                 0);
}

/* How many lines of the test backend's login log read "user incorrect". */
static int wrong_tries(void)
{
    char line[64];
    int n = 0;
    FILE *f = fopen(login_log, "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n += strcmp(line, "user incorrect\n") == 0;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

/* Whether a find over the whole view shows an object labelled label. */
static bool shows(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                  CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_CLASS, &cls, sizeof(cls)},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, t, 2), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, &h, 1, &n), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    return n > 0;
}

struct stale_seen {
    const char *layer;
    bool stale, seen;
    char reason[40];
};

static void note_cred(void *ctx, const storage_cred_info *info)
{
    struct stale_seen *s = ctx;

    if (strcmp(info->view, "work") == 0 && strcmp(info->layer, s->layer) == 0) {
        s->seen = true;
        s->stale = info->stale;
        snprintf(s->reason, sizeof(s->reason), "%s", info->reason);
    }
}

/* The catalog's stale mark of work's credential for layer. */
static bool marked_stale(const char *layer, char *reason, size_t size)
{
    struct stale_seen s = {.layer = layer};
    storage_catalog *cat = NULL;

    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                 STORAGE_OK);
    cr_assert_eq(storage_creds_list(cat, "Strata", note_cred, &s), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert(s.seen, "no credential of layer %s", layer);
    if (reason != NULL) {
        snprintf(reason, size, "%s", s.reason);
    }
    return s.stale;
}

/* Logs in to work, checks what shows, logs out: logins times. */
static void login_rounds(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot, int logins, bool group_shows)
{
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    for (int i = 0; i < logins; i++) {
        cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK, "login %d", i);
        cr_assert(shows(p11, s, "a-key", CKO_PRIVATE_KEY), "the good layers stay");
        cr_assert_eq(shows(p11, s, "t-key", CKO_PRIVATE_KEY), group_shows);
        cr_assert_eq(p11->C_Logout(s), CKR_OK);
    }
    cr_assert_eq(p11->C_CloseSession(s), CKR_OK);
}

/* A SoftHSM2 layer's user PIN changed with pkcs11-tool: every C_Login
 * still succeeds, the group's private key is gone from the view, the
 * catalog marks the credential stale with the backend's answer, and a
 * second process (strata ls) logs in as well. */
Test(creds, softhsm_pin_changed_marks_stale)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    char reason[40] = "";
    char *out = NULL;

    setup_world();
    change_team_pin();
    p11 = strata(&slot);
    login_rounds(p11, slot, 3, false);
    cr_assert(marked_stale("group", reason, sizeof(reason)));
    cr_assert_str_eq(reason, "CKR_PIN_INCORRECT");
    cr_assert_not(marked_stale("personal", NULL, 0));
    cr_assert_not(marked_stale("extra", NULL, 0));
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(world_sh_out(&out, "echo %s | '%s' ls --token Strata --view work --pin-stdin 2>&1",
                              WORK_PIN, world_strata_cli()),
                 1, "a layer dropped out: ls must not succeed silently:\n%s", out);
    cr_assert(strstr(out, "a-key") != NULL, "%s", out);
    cr_assert(strstr(out, "--layer group") != NULL, "ls says what to run:\n%s", out);
    free(out);
}

/* Runs "strata ARGS" with stderr merged; returns the exit status. */
static int cli(char **out, const char *args)
{
    int rc = world_sh_out(out, "'%s' %s 2>&1", world_strata_cli(), args);

    cr_assert(*out != NULL);
    return rc;
}

/* strata status, views and ls name the stale layer and what to run, as
 * text and as JSON; status exits 1 until the layer is re-enrolled, 0
 * after. */
Test(creds, status_views_ls_report_stale)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    char *out = NULL;

    setup_world();
    cr_assert_eq(cli(&out, "status"), 0, "a fresh world needs nothing:\n%s", out);
    cr_assert(strstr(out, "nothing needs attention") != NULL, "%s", out);
    free(out);
    change_team_pin();
    p11 = strata(&slot);
    login_rounds(p11, slot, 1, false);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(cli(&out, "status"), 1, "%s", out);
    cr_assert(strstr(out, "needs attention") != NULL, "%s", out);
    cr_assert(strstr(out, "run: strata enroll --token Strata --view work --layer group") != NULL,
              "%s", out);
    cr_assert(strstr(out, "enrolled, layer 'group' stale") != NULL, "%s", out);
    free(out);
    cr_assert_eq(cli(&out, "views"), 0, "%s", out);
    cr_assert(strstr(out, "layer 'group' stale") != NULL, "%s", out);
    cr_assert(strstr(out, "strata enroll --token Strata --view work --layer group") != NULL, "%s",
              out);
    free(out);
    cr_assert(world_json_holds(&w, NULL, "status --json",
                               "d['needs_attention'] and d['attention'][0]['kind'] == "
                               "\"stale-credential\" and d['attention'][0]['layer'] == \"group\" "
                               "and d['tokens'][0]['views'][0]['stale_layers'] == [\"group\"]"));
    cr_assert(world_json_holds(&w, NULL, "views --json",
                               "d['tokens'][0]['label'] == \"Strata\" and "
                               "d['tokens'][0]['views'][0]['stale_layers'] == [\"group\"]"));
    cr_assert(world_json_holds(&w, WORK_PIN, "ls --token Strata --view work --pin-stdin --json",
                               "not d['complete'] and d['left_out'][0]['layer'] == \"group\" and "
                               "any(o['label'] == \"a-key\" for o in d['objects'])"));
    cr_assert_eq(world_sh("printf '%%s\\n' %s %s | '%s' enroll --token Strata --view work "
                          "--layer group --pin-stdin >/dev/null 2>&1",
                          WORK_PIN, TEAM_NEW, world_strata_cli()),
                 0);
    cr_assert_eq(cli(&out, "status"), 0, "fixed:\n%s", out);
    free(out);
    cr_assert(world_json_holds(&w, WORK_PIN, "ls --token Strata --view work --pin-stdin --json",
                               "d['complete'] and d['left_out'] == [] and "
                               "any(o['label'] == \"t-key\" for o in d['objects'])"));
}

/* strata enroll --layer re-seals the changed layer alone: a wrong view PIN
 * or a new layer PIN the backend refuses change nothing; the right ones
 * clear the mark, and the next login shows the layer again with the
 * other layers' credentials untouched. */
Test(creds, enroll_layer_clears_stale)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    char *out = NULL;

    setup_world();
    change_team_pin();
    p11 = strata(&slot);
    login_rounds(p11, slot, 1, false);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert(marked_stale("group", NULL, 0));
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' not-the-pin %s | '%s' enroll --token Strata "
                              "--view work --layer group --pin-stdin 2>&1",
                              TEAM_NEW, world_strata_cli()),
                 1, "%s", out);
    free(out);
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' %s %s | '%s' enroll --token Strata --view work "
                              "--layer group --pin-stdin 2>&1",
                              WORK_PIN, TEAM_PIN, world_strata_cli()),
                 1, "the old layer PIN fails the check:\n%s", out);
    free(out);
    cr_assert(marked_stale("group", NULL, 0));
    cr_assert_eq(world_sh_out(&out,
                              "printf '%%s\\n' %s %s | '%s' enroll --token Strata --view work "
                              "--layer group --pin-stdin 2>&1",
                              WORK_PIN, TEAM_NEW, world_strata_cli()),
                 0, "%s", out);
    free(out);
    cr_assert_not(marked_stale("group", NULL, 0));
    p11 = strata(&slot);
    login_rounds(p11, slot, 1, true);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The count the issue asks for: the test backend's PIN changed behind
 * Strata's back, then 3 logins in this process and 2 other processes
 * logging in at the same time (twice each): the backend saw exactly one
 * wrong PIN. */
Test(creds, one_wrong_try_across_logins_and_processes)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;

    setup_world();
    tb_configure("9999"); /* the backend's PIN changed */
    p11 = strata(&slot);
    login_rounds(p11, slot, 3, true);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(wrong_tries(), 1, "3 logins: the backend saw %d wrong PINs", wrong_tries());
    cr_assert(marked_stale("extra", NULL, 0));
    world_sh("for i in 1 2; do (echo %s | '%s' ls --token Strata --view work --pin-stdin; "
             "echo %s | '%s' ls --token Strata --view work --pin-stdin) >/dev/null 2>&1 & done; "
             "wait",
             WORK_PIN, world_strata_cli(), WORK_PIN, world_strata_cli());
    cr_assert_eq(wrong_tries(), 1, "and 2 processes: the backend saw %d wrong PINs", wrong_tries());
}

/* Processes racing on a fresh change: 8 processes log in at once right
 * after the PIN changed (8 processes); the credential lock lets one of them try. */
Test(creds, racing_processes_one_wrong_try)
{
    setup_world();
    tb_configure("8888");
    world_sh(
        "for i in 1 2 3 4 5 6 7 8; do (echo %s | '%s' ls --token Strata --view work --pin-stdin) "
        ">/dev/null 2>&1 & done; wait",
        WORK_PIN, world_strata_cli());
    cr_assert_eq(wrong_tries(), 1, "8 racing processes: the backend saw %d wrong PINs",
                 wrong_tries());
    cr_assert(marked_stale("extra", NULL, 0));
}
