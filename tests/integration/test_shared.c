/*
 * test_shared.c - one backend, several users (issue 14): two catalogs
 * with the same policy (a lazy layer "strata-{view}", a view "bob") on
 * one SoftHSM2 token directory each provision and use their own token,
 * neither calls the other's an orphan nor offers to delete it, and each
 * one's strata status shows its own serial (engine/provision.c,
 * storage/identity.c, cli/status.c); strata tokens lists what a catalog
 * provisioned and removes its orphans with the administrator's key
 * (cli/tokens.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <sys/wait.h>
#include <unistd.h>

#include "identity_world.h"
#include "storage.h"

TestSuite(shared, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

#define OTHER_PIN "other-bob-1"

static char other_policy[PATH_MAX + 16]; /* the second user's policy */
static char other_catalog[PATH_MAX + 16];

/* Writes the second user's policy: the same as the first's but for the
 * catalog, and enrols bob in it with OTHER_PIN. */
static void second_user(void)
{
    char *xml = NULL;

    snprintf(other_policy, sizeof(other_policy), "%s/other.xml", w.dir);
    snprintf(other_catalog, sizeof(other_catalog), "%s/other.db", w.dir);
    cr_assert_eq(world_sh_out(&xml, "sed 's|%s|%s|' '%s' > '%s' && grep -c other.db '%s'",
                              w.catalog, other_catalog, w.policy, other_policy, other_policy),
                 0);
    free(xml);
    cr_assert_eq(world_sh("printf '%%s\\n' %s | STRATA_CONF='%s' '%s' enroll --token Strata "
                          "--view bob --pin-stdin >/dev/null",
                          OTHER_PIN, other_policy, world_strata_cli()),
                 0);
}

/* Logs in to bob's view with pin under policy (a fresh process, the
 * module's log at info into log) and creates a data object labelled
 * label. Returns whether it all worked. */
static bool login_creates(const char *policy, const char *pin, const char *log, const char *label)
{
    pid_t pid = fork();
    int st = -1;

    cr_assert_neq(pid, -1);
    if (pid == 0) {
        CK_FUNCTION_LIST *p11;
        CK_SLOT_ID slot;
        CK_ULONG n = 1;
        CK_SESSION_HANDLE s;

        setenv("STRATA_CONF", policy, 1);
        setenv("STRATA_LOG", "info", 1);
        setenv("STRATA_LOG_FILE", log, 1);
        p11 = load_module(world_strata_module());
        _exit(p11->C_Initialize(NULL) == CKR_OK &&
                      p11->C_GetSlotList(CK_TRUE, &slot, &n) == CKR_OK &&
                      p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                         &s) == CKR_OK &&
                      login(p11, s, pin) == CKR_OK && create_data(p11, s, label, NULL) == CKR_OK &&
                      p11->C_Finalize(NULL) == CKR_OK
                  ? 0
                  : 1);
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The rows of bob storage_provisions_list gives. */
typedef struct {
    storage_provision_info info;
    int rows;
} bob_seen;

static void bob_one(void *ctx, const storage_provision_info *info)
{
    bob_seen *s = ctx;

    if (strcmp(info->view, "bob") == 0) {
        s->info = *info;
        s->rows++;
    }
}

/* The serial of bob's provisioned token in the catalog at path (ready),
 * its backend label into label (33 bytes). */
static void bob_row(const char *path, char serial[17], char *label)
{
    storage_catalog *cat = NULL;
    bob_seen seen = {.rows = 0};
    char err[256] = "";

    cr_assert_eq(storage_catalog_open(path, STORAGE_OPEN_READ_ONLY, &cat, err, sizeof(err)),
                 STORAGE_OK, "%s", err);
    cr_assert_eq(storage_provisions_list(cat, "Strata", bob_one, &seen), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(seen.rows, 1);
    cr_assert_eq(seen.info.state, STORAGE_PROV_READY);
    memcpy(serial, seen.info.serial, 17);
    snprintf(label, 33, "%s", seen.info.label);
}

/* strata status under policy: the layers section's line of bob's token
 * names serial and not other. */
static void assert_status_serial(const char *policy, const char *serial, const char *other)
{
    char *out = NULL;

    cr_assert_eq(world_sh_out(&out, "STRATA_CONF='%s' '%s' status | grep 'strata-bob.*found:'",
                              policy, world_strata_cli()),
                 0);
    cr_assert_not_null(strstr(out, serial), "status under %s: %s (want %s)", policy, out, serial);
    cr_assert_null(strstr(out, other), "status under %s: %s (the other's %s)", policy, out, other);
    free(out);
}

/* Two users, one policy, one token directory: each provisions and uses
 * its own token, no log line calls the other's an orphan or offers to
 * delete it, and each one's status names its own serial. */
Test(shared, two_catalogs_one_backend)
{
    char log1[PATH_MAX + 16], log2[PATH_MAX + 16], serial1[17], serial2[17], label1[33], label2[33];

    second_user();
    snprintf(log1, sizeof(log1), "%s/one.log", w.dir);
    snprintf(log2, sizeof(log2), "%s/two.log", w.dir);
    cr_assert(login_creates(w.policy, BOB_PIN, log1, "made-by-one"));
    cr_assert(login_creates(other_policy, OTHER_PIN, log2, "made-by-two"));
    /* Each logs in again (the everyday path) after the other provisioned. */
    cr_assert(login_creates(w.policy, BOB_PIN, log1, "again-by-one"));
    cr_assert(login_creates(other_policy, OTHER_PIN, log2, "again-by-two"));
    if (world_sh("grep -iE 'orphan|delete' '%s' '%s' >&2", log1, log2) == 0) {
        cr_assert_fail("a log calls the other user's token an orphan");
    }
    bob_row(w.catalog, serial1, label1);
    bob_row(other_catalog, serial2, label2);
    cr_assert_str_neq(serial1, serial2);
    cr_assert_str_neq(label1, label2, "each catalog marks its own tokens");
    cr_assert_eq(tokens_marked("strata-bob"), 2);
    cr_assert_eq(serial_has_data(serial1, "made-by-one"), 1);
    cr_assert_eq(serial_has_data(serial1, "again-by-one"), 1);
    cr_assert_eq(serial_has_data(serial1, "made-by-two"), 0);
    cr_assert_eq(serial_has_data(serial2, "made-by-two"), 1);
    cr_assert_eq(serial_has_data(serial2, "again-by-two"), 1);
    cr_assert_eq(serial_has_data(serial2, "made-by-one"), 0);
    assert_status_serial(w.policy, serial1, serial2);
    assert_status_serial(other_policy, serial2, serial1);
}

/* The one token directory of SoftHSM2 made since before (a listing of
 * the token directory), into dir (PATH_MAX). */
static void new_token_dir(const char *before, char *dir)
{
    char *out = NULL;

    cr_assert_eq(world_sh_out(&out, "cd '%s' && ls | grep -vxF '%s'", w.tokens, before), 0);
    cr_assert_eq(sscanf(out, "%255s", dir), 1);
    free(out);
}

/* Sets the token's SO PIN (SO_PIN), then bob's first login (module log
 * into log) provisions his token and creates a data object labelled
 * data: the token's directory into dir (PATH_MAX), its serial and label
 * as bob_row gives them. */
static void bob_provisioned(const char *log, const char *data, char *dir, char serial[17],
                            char *label)
{
    char *before = NULL;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    cr_assert_eq(world_sh_out(&before, "ls '%s'", w.tokens), 0);
    cr_assert(login_creates(w.policy, BOB_PIN, log, data));
    bob_row(w.catalog, serial, label);
    new_token_dir(before, dir);
    free(before);
}

/* Runs strata tokens (args) under the first user's policy, input on
 * stdin; its output into *out. Returns its exit status. */
static int tokens_cmd(char **out, const char *input, const char *args)
{
    return world_sh_out(out, "printf '%%s\\n' %s | '%s' tokens %s 2>&1", input, world_strata_cli(),
                        args);
}

/* The line of out naming serial, or fails. */
static const char *line_of(const char *out, const char *serial)
{
    const char *at = strstr(out, serial);

    cr_assert_not_null(at, "no line names %s:\n%s", serial, out);
    while (at > out && at[-1] != '\n') {
        at--;
    }
    return at;
}

static bool line_says(const char *out, const char *serial, const char *what)
{
    const char *line = line_of(out, serial), *end = strchr(line, '\n');
    const char *hit = strstr(line, what);

    return hit != NULL && (end == NULL || hit < end);
}

/* strata status under policy; its output into *out. Returns its exit
 * status. */
static int status_of(const char *policy, char **out)
{
    return world_sh_out(out, "STRATA_CONF='%s' '%s' status 2>&1", policy, world_strata_cli());
}

/* strata status (first user) exits 1 and names kind with serial and run;
 * its JSON has the same item. */
static void assert_attention(const char *policy, const char *kind, const char *serial,
                             const char *run)
{
    char *out = NULL, check[512], args[PATH_MAX + 64];

    cr_assert_eq(status_of(policy, &out), 1, "%s", out);
    cr_assert(line_says(out, serial, ""), "%s", out);
    cr_assert_not_null(strstr(out, run), "%s", out);
    free(out);
    snprintf(check, sizeof(check),
             "d['needs_attention'] and any(a['kind'] == '%s' and '%s' in a['message'] and "
             "a['run'].startswith('%s') and a['token'] == 'Strata' and a['view'] == 'bob' and "
             "a['layer'] == 'personal' for a in d['attention'])",
             kind, serial, run);
    snprintf(args, sizeof(args), "--policy '%s' status --json", policy);
    cr_assert(world_json_holds(&w, NULL, args, check), "status --json: %s", check);
}

/* strata tokens --json lists serial with state, and never other. */
static void assert_tokens_json(const char *serial, const char *state, const char *other)
{
    char check[512];

    snprintf(check, sizeof(check),
             "d['catalog'].endswith('.db') and not any(t['serial'] == '%s' for t in d['tokens']) "
             "and [(t['token'], t['view'], t['layer'], t['state'], t['view_in_policy'], "
             "t['removable'], t['label'].startswith('strata-bob#')) for t in d['tokens'] if "
             "t['serial'] == '%s'] == [('Strata', 'bob', 'personal', '%s', True, %s, True)]",
             other, serial, state, strcmp(state, "orphaned") == 0 ? "True" : "False");
    cr_assert(world_json_holds(&w, NULL, "tokens --json", check), "tokens --json: %s", check);
}

/* The SO PINs' failure counter of token Strata in this world's catalog. */
static unsigned so_failures(void)
{
    char *out = NULL;
    unsigned n;

    cr_assert_eq(world_sh_out(&out,
                              "sqlite3 '%s' \"SELECT so_failed_logins FROM tokens"
                              " WHERE label = 'Strata'\"",
                              w.catalog),
                 0);
    n = (unsigned)strtoul(out, NULL, 10);
    free(out);
    return n;
}

/* strata tokens lists the tokens this catalog provisioned, its orphans
 * (a token the backend lost and showed again after the login made it
 * anew; a token with its mark and an unknown SO PIN) and none of another
 * catalog's; --remove wipes an orphan with the administrator's key and
 * refuses a view's token, another catalog's token and a wrong SO PIN. */
Test(shared, strata_tokens_lists_and_removes_orphans)
{
    char log[PATH_MAX + 16], *out = NULL, dir[256], s1[17], s2[17], other[17], label[33],
                             other_label[33], args[128];

    snprintf(log, sizeof(log), "%s/one.log", w.dir);
    bob_provisioned(log, "kept-by-s1", dir, s1, label);
    /* The backend loses the token for a while: the next login makes it anew. */
    cr_assert_eq(world_sh("mv '%s/%s' '%s/aside'", w.tokens, dir, w.dir), 0);
    cr_assert(login_creates(w.policy, BOB_PIN, log, "on-s2"));
    cr_assert_eq(world_sh("mv '%s/aside' '%s/%s'", w.dir, w.tokens, dir), 0);
    bob_row(w.catalog, s2, label);
    cr_assert_str_neq(s1, s2);
    /* Another user's token on the same backend. */
    second_user();
    cr_assert(login_creates(other_policy, OTHER_PIN, log, "theirs"));
    bob_row(other_catalog, other, other_label);

    cr_assert_eq(tokens_cmd(&out, "", ""), 0, "%s", out);
    cr_assert(line_says(out, s2, "ready"), "%s", out);
    cr_assert(line_says(out, s1, "orphaned"), "%s", out);
    cr_assert_null(strstr(out, other), "another catalog's token is listed:\n%s", out);
    free(out);
    assert_tokens_json(s1, "orphaned", other);
    assert_tokens_json(s2, "ready", other);
    /* strata status, no PIN: the orphan needs attention (exit 1); the
     * other user's status is not troubled by this catalog's tokens. */
    assert_attention(w.policy, "orphaned-token", s1, "strata tokens --token Strata --remove");
    cr_assert_eq(status_of(other_policy, &out), 0, "the other catalog needs nothing:\n%s", out);
    free(out);

    snprintf(args, sizeof(args), "--remove %s --pin-stdin", s2);
    cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 1, "%s", out);
    cr_assert_not_null(strstr(out, "view's own token"), "%s", out);
    free(out);
    snprintf(args, sizeof(args), "--remove %s --pin-stdin", other);
    cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 1, "%s", out);
    free(out);
    snprintf(args, sizeof(args), "--remove %s --pin-stdin", s1);
    cr_assert_eq(tokens_cmd(&out, "wrong-so-pin", args), 1, "%s", out);
    cr_assert_eq(serial_has_data(s1, "kept-by-s1"), 1, "a refused removal changes nothing");
    free(out);
    /* The SO PIN it asks is a counted SO guess (it used to be counted
     * nowhere): at max-failed-logins (3) even the right one is not tried. */
    cr_assert_eq(so_failures(), 1, "the wrong SO PIN was not counted");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tokens_cmd(&out, "wrong-so-pin", args), 1, "%s", out);
        free(out);
    }
    cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 1, "%s", out);
    cr_assert_not_null(strstr(out, "is locked"), "%s", out);
    free(out);
    cr_assert_eq(so_failures(), 3);
    cr_assert_eq(serial_has_data(s1, "kept-by-s1"), 1, "nothing wiped while locked");
    cr_assert_eq(strata_cli("", "unlock --token Strata --so"), 0);
    cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 0, "%s", out);
    free(out);
    cr_assert_eq(serial_has_data(s1, "kept-by-s1"), 0, "the orphan is wiped");
    cr_assert_eq(serial_has_data(s2, "on-s2"), 1, "the view's token is untouched");
    cr_assert_eq(serial_has_data(other, "theirs"), 1, "the other catalog's token is untouched");
    cr_assert_eq(tokens_labelled("strata-removed"), 1);
    cr_assert_eq(tokens_cmd(&out, "", ""), 0, "%s", out);
    cr_assert_null(strstr(out, "orphaned"), "%s", out);
    cr_assert_null(strstr(out, s1), "%s", out);
    free(out);
    cr_assert_eq(status_of(w.policy, &out), 0, "removed: nothing needs attention\n%s", out);
    free(out);

    /* A token with this catalog's mark and an SO PIN nobody knows (what a
     * crash inside SoftHSM2's C_InitToken leaves): listed, and not
     * removable through PKCS#11; the error names the backend's tool. */
    cr_assert_eq(world_sh("softhsm2-util --init-token --free --label '%s' --so-pin unknown-so "
                          "--pin unknown-user >/dev/null",
                          label),
                 0);
    cr_assert_eq(tokens_cmd(&out, "", ""), 0, "%s", out);
    {
        const char *line = strstr(out, "orphaned");
        char s3[17] = "";

        cr_assert_not_null(line, "%s", out);
        while (line > out && line[-1] != '\n') {
            line--;
        }
        cr_assert_eq(sscanf(line, "%*s %*s %*s %*s %16s", s3), 1, "%s", out);
        free(out);
        snprintf(args, sizeof(args), "--remove %s --pin-stdin", s3);
        cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 1, "%s", out);
        cr_assert_not_null(strstr(out, "softhsm2-util --delete-token --serial"), "%s", out);
    }
    free(out);
}

/* The SO PIN bob's token was provisioned with, recovered with the
 * administrator's key (SO_PIN), into so (NUL-terminated). */
static void bob_so_pin(char *so, size_t cap)
{
    storage_catalog *cat = NULL;
    char err[256] = "";
    size_t len = 0;

    cr_assert_eq(storage_catalog_open(w.catalog, 0, &cat, err, sizeof(err)), STORAGE_OK, "%s", err);
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "bob", "personal", so,
                                 cap - 1, &len),
                 STORAGE_OK);
    so[len] = '\0';
    storage_catalog_close(cat);
}

/* strata status reports, with no PIN, a provisioned token the backend
 * does not show (missing), the view's token initialised again outside
 * the catalog (foreign) and the token of a view the policy no longer
 * names (viewless), each with what to run; once dealt with, nothing. */
Test(shared, status_reports_missing_foreign_viewless_tokens)
{
    char log[PATH_MAX + 16], *out = NULL, *xml = NULL, dir[256], serial[17], label[33], so[64],
                             args[128];

    snprintf(log, sizeof(log), "%s/one.log", w.dir);
    bob_provisioned(log, "bobs", dir, serial, label);
    cr_assert_eq(status_of(w.policy, &out), 0, "%s", out);
    free(out);

    /* Missing: the backend does not show it for a while. */
    cr_assert_eq(world_sh("mv '%s/%s' '%s/aside'", w.tokens, dir, w.dir), 0);
    assert_attention(w.policy, "missing-token", serial,
                     "strata provision --token Strata --view bob");
    cr_assert_eq(world_sh("mv '%s/aside' '%s/%s'", w.dir, w.tokens, dir), 0);
    cr_assert_eq(status_of(w.policy, &out), 0, "back: %s", out);
    free(out);

    /* Foreign: someone initialises the view's token again, unmarked. */
    bob_so_pin(so, sizeof(so));
    cr_assert_eq(world_sh("softhsm2-util --init-token --serial %s --label strata-bob --so-pin '%s' "
                          "--pin someone-else >/dev/null",
                          serial, so),
                 0);
    explicit_bzero(so, sizeof(so));
    assert_attention(w.policy, "foreign-token", serial,
                     "strata provision --token Strata --view bob");
    cr_assert_eq(tokens_cmd(&out, "", ""), 0, "%s", out);
    cr_assert(line_says(out, serial, "foreign"), "%s", out);
    cr_assert(line_says(out, serial, "without a mark"), "%s", out);
    free(out);
    cr_assert_eq(strata_cli(BOB_PIN, "provision --token Strata --view bob --pin-stdin"), 0);
    cr_assert_eq(status_of(w.policy, &out), 0, "made anew: %s", out);
    free(out);

    /* Viewless: the policy drops view bob; its token is kept until removed. */
    bob_row(w.catalog, serial, label);
    cr_assert_eq(
        world_sh_out(&xml, "sed -i '/view id=\"bob\"/d' '%s' && cat '%s'", w.policy, w.policy), 0);
    cr_assert_null(strstr(xml, "\"bob\""), "%s", xml);
    assert_attention(w.policy, "viewless-token", serial, "strata tokens --token Strata --remove");
    snprintf(args, sizeof(args), "--remove %s --pin-stdin", serial);
    cr_assert_eq(tokens_cmd(&out, SO_PIN, args), 0, "%s", out);
    free(out);
    cr_assert_eq(tokens_labelled("strata-removed"), 1);
    cr_assert_eq(status_of(w.policy, &out), 0, "removed: %s", out);
    free(out);
    free(xml);
}
