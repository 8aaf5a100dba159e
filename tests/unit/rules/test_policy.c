/*
 * test_policy.c - unit tests of rules/policy.c (strata.xml(5) loading).
 *
 * Policies are written into a fresh temporary folder per test (the world
 * fixture, which also points STRATA_CONF and XDG_CONFIG_HOME into it).
 * Expected lines are found by searching the policy text for a marker
 * (policy_text_line), so that a test names the line it means rather than
 * a number.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "policy_text.h"
#include "rules.h"
#include "world.h"

static world w;
static rules_diags diags;
static rules_policy *policy;

static void setup(void)
{
    world_setup(&w);
    rules_diags_init(&diags);
    policy = NULL;
}

static void teardown(void)
{
    rules_policy_free(policy);
    rules_diags_clear(&diags);
    world_teardown(&w);
}

TestSuite(rules_policy_load, .init = setup, .fini = teardown);
TestSuite(rules_policy_load_memory, .init = setup, .fini = teardown);
TestSuite(rules_policy_default_path, .init = setup, .fini = teardown);
TestSuite(rules_layer_token_label, .init = setup, .fini = teardown);
TestSuite(rules_policy_lookup, .init = setup, .fini = teardown);

/* Writes text to name inside the world folder; returns the path. */
static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", w.dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static const char *policy_path(void)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/strata.xml", w.dir);
    return path;
}

/* Writes the policy to <dir>/strata.xml and loads it. */
static int load(const char *xml)
{
    const char *path = write_file("strata.xml", xml, strlen(xml));
    return rules_policy_load(path, &policy, &diags);
}

static void dump_diags(void)
{
    for (size_t i = 0; i < diags.count; i++) {
        char buf[1024];
        rules_diag_format(&diags.items[i], buf, sizeof(buf));
        cr_log_info("%s", buf);
    }
}

/* Asserts that the load failed with exactly one error, on line, whose
 * message contains what. */
static void expect_one_error(unsigned line, const char *what)
{
    dump_diags();
    cr_assert_null(policy);
    cr_assert_eq(diags.n_errors, 1, "expected exactly one error, got %zu", diags.n_errors);
    for (size_t i = 0; i < diags.count; i++) {
        const rules_diag *d = &diags.items[i];
        if (d->severity != RULES_SEVERITY_ERROR) {
            continue;
        }
        cr_assert_eq(d->line, line, "error on line %u, expected %u: %s", d->line, line, d->message);
        cr_assert_not_null(strstr(d->message, what), "\"%s\" not in \"%s\"", what, d->message);
        cr_assert_str_eq(d->file, policy_path());
        cr_assert_null(strchr(d->message, '\n'));
        return;
    }
    cr_assert_fail("no error diagnostic");
}

/* Asserts that some error is on line and contains what. */
static void expect_error_on(unsigned line, const char *what)
{
    for (size_t i = 0; i < diags.count; i++) {
        const rules_diag *d = &diags.items[i];
        if (d->severity == RULES_SEVERITY_ERROR && d->line == line &&
            strstr(d->message, what) != NULL) {
            return;
        }
    }
    dump_diags();
    cr_assert_fail("no error on line %u containing \"%s\"", line, what);
}

static bool has_warning(const char *what)
{
    for (size_t i = 0; i < diags.count; i++) {
        if (diags.items[i].severity == RULES_SEVERITY_WARNING &&
            strstr(diags.items[i].message, what) != NULL) {
            return true;
        }
    }
    return false;
}

/* A file that stands in for a module, so no "does not exist" warning. */
static void make_fake_module(void)
{
    write_file("libfake.so", "", 0);
}

/* ---------------------------------------------------------------------
 * A valid policy
 * ------------------------------------------------------------------ */

static const char full_policy[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!-- a comment before the root is fine -->\n"
    "<strata version=\"1\">\n"
    "  <catalog path=\"catalog.db\"/>\n"
    "  <log calls=\"calls.log\"/>\n"
    "  <module id=\"soft\" path=\"libfake.so\"/>\n"
    "  <module id=\"remote\" path=\"./libfake.so\" isolate=\"process\"/>\n"
    "  <layer id=\"group\" module=\"soft\" token=\"team-keys\" access=\"read-only\"/>\n"
    "  <layer id=\"personal\" module=\"soft\" token=\"strata-{view}\" provision=\"lazy\"/>\n"
    "  <layer id=\"legacy\" module=\"remote\" token=\"old\" serial=\"ABC123\" "
    "access=\"read-write\" provision=\"none\"/>\n"
    "  <token label=\"Strata\" manufacturer=\"Example Org\" max-failed-logins=\"7\" "
    "min-pin-len=\"6\" max-pin-len=\"64\">\n"
    "    <kdf ops=\"3\" mem=\"65536\"/>\n"
    "    <view id=\"work\" layers=\"personal  group\n legacy\" public=\"false\" "
    "whiteout=\"allow\">\n"
    "      <rules>hide where layer == \"group\"\n"
    "        route create to \"personal\"\n"
    "      </rules>\n"
    "    </view>\n"
    "    <view id=\"anon\" layers=\"personal\" public=\"true\"/>\n"
    "  </token>\n"
    "  <token label=\"Second\">\n"
    "    <view id=\"other\" layers=\"legacy\" whiteout=\"deny\"/>\n"
    "  </token>\n"
    "</strata>\n";

static char expected_path[PATH_MAX + 64];

static const char *in_dir(const char *name)
{
    snprintf(expected_path, sizeof(expected_path), "%s/%s", w.dir, name);
    return expected_path;
}

Test(rules_policy_load, full_policy_every_field)
{
    make_fake_module();
    int rc = load(full_policy);
    dump_diags();
    cr_assert_eq(rc, 0);
    cr_assert_not_null(policy);
    cr_assert_eq(diags.n_errors, 0);
    cr_assert_eq(diags.count, 1, "the only warning is for isolate=\"process\"");
    cr_assert(has_warning("isolate=\"process\" is not supported yet"));

    cr_assert_str_eq(policy->path, in_dir("strata.xml"));
    cr_assert_str_eq(policy->catalog_path, in_dir("catalog.db"));
    cr_assert_str_eq(policy->log, in_dir("calls.log"));

    cr_assert_eq(policy->n_modules, 2);
    cr_assert_str_eq(policy->modules[0].id, "soft");
    cr_assert_str_eq(policy->modules[0].path, in_dir("libfake.so"));
    cr_assert_eq(policy->modules[0].isolate, RULES_ISOLATE_NONE);
    cr_assert_eq(policy->modules[0].line, policy_text_line(full_policy, "<module id=\"soft\""));
    cr_assert_str_eq(policy->modules[1].path, in_dir("libfake.so"));
    cr_assert_eq(policy->modules[1].isolate, RULES_ISOLATE_PROCESS);

    cr_assert_eq(policy->n_layers, 3);
    const rules_layer *group = &policy->layers[0];
    cr_assert_str_eq(group->id, "group");
    cr_assert_str_eq(group->module_id, "soft");
    cr_assert_str_eq(group->token, "team-keys");
    cr_assert_null(group->serial);
    cr_assert_eq(group->access, RULES_ACCESS_READ_ONLY);
    cr_assert_eq(group->provision, RULES_PROVISION_NONE);
    cr_assert_eq(group->line, policy_text_line(full_policy, "<layer id=\"group\""));
    const rules_layer *personal = &policy->layers[1];
    cr_assert_str_eq(personal->token, "strata-{view}");
    cr_assert_eq(personal->access, RULES_ACCESS_READ_WRITE);
    cr_assert_eq(personal->provision, RULES_PROVISION_LAZY);
    const rules_layer *legacy = &policy->layers[2];
    cr_assert_str_eq(legacy->module_id, "remote");
    cr_assert_str_eq(legacy->serial, "ABC123");
    cr_assert_eq(legacy->access, RULES_ACCESS_READ_WRITE);
    cr_assert_eq(legacy->provision, RULES_PROVISION_NONE);

    cr_assert_eq(policy->n_tokens, 2);
    const rules_token *token = &policy->tokens[0];
    cr_assert_str_eq(token->label, "Strata");
    cr_assert_str_eq(token->manufacturer, "Example Org");
    cr_assert_eq(token->max_failed_logins, 7);
    cr_assert_eq(token->min_pin_len, 6);
    cr_assert_eq(token->max_pin_len, 64);
    cr_assert_eq(token->kdf_ops, 3);
    cr_assert_eq(token->kdf_mem, 65536);
    cr_assert_eq(token->line, policy_text_line(full_policy, "<token label=\"Strata\""));
    cr_assert_eq(token->n_views, 2);

    const rules_view *work = &token->views[0];
    cr_assert_str_eq(work->id, "work");
    cr_assert_eq(work->n_layers, 3);
    cr_assert_str_eq(work->layers[0], "personal");
    cr_assert_str_eq(work->layers[1], "group");
    cr_assert_str_eq(work->layers[2], "legacy");
    cr_assert_not(work->is_public);
    cr_assert(work->allow_whiteout);
    cr_assert_str_eq(work->rules_text,
                     "hide where layer == \"group\"\n        route create to \"personal\"\n      ");
    cr_assert_eq(work->rules_line, policy_text_line(full_policy, "<rules>hide"));
    cr_assert_not_null(work->rules, "rules are compiled at load");
    cr_assert_eq(work->line, policy_text_line(full_policy, "<view id=\"work\""));

    const rules_view *anon = &token->views[1];
    cr_assert_str_eq(anon->id, "anon");
    cr_assert_eq(anon->n_layers, 1);
    cr_assert(anon->is_public);
    cr_assert_not(anon->allow_whiteout);
    cr_assert_null(anon->rules_text);
    cr_assert_null(anon->rules);

    const rules_token *second = &policy->tokens[1];
    cr_assert_str_eq(second->label, "Second");
    cr_assert_str_eq(second->views[0].id, "other");
    cr_assert_not(second->views[0].allow_whiteout);
}

static const char minimal_policy[] = "<strata version=\"1\">\n"
                                     "  <module id=\"m\" path=\"/nonexistent/libmissing.so\"/>\n"
                                     "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                                     "  <token label=\"T\"><view id=\"v\" layers=\"l\"/></token>\n"
                                     "</strata>\n";

Test(rules_policy_load, minimal_policy_defaults)
{
    cr_assert_eq(load(minimal_policy), 0);
    cr_assert_null(policy->catalog_path);
    cr_assert_null(policy->log);
    cr_assert_eq(policy->layers[0].access, RULES_ACCESS_READ_WRITE);
    cr_assert_eq(policy->layers[0].provision, RULES_PROVISION_NONE);
    cr_assert_eq(policy->modules[0].isolate, RULES_ISOLATE_NONE);
    const rules_token *t = &policy->tokens[0];
    cr_assert_str_eq(t->manufacturer, "Strata");
    cr_assert_eq(t->max_failed_logins, 10);
    cr_assert_eq(t->min_pin_len, 4);
    cr_assert_eq(t->max_pin_len, 255);
    cr_assert_eq(t->kdf_ops, 0);
    cr_assert_eq(t->kdf_mem, 0);
    cr_assert_not(t->views[0].is_public);
    cr_assert_not(t->views[0].allow_whiteout);
    cr_assert_null(t->views[0].rules_text);
}

Test(rules_policy_load, missing_module_file_is_a_warning)
{
    cr_assert_eq(load(minimal_policy), 0);
    cr_assert_eq(diags.n_errors, 0);
    cr_assert(has_warning("/nonexistent/libmissing.so does not exist"));
    cr_assert_eq(diags.items[0].line, policy_text_line(minimal_policy, "<module"));
}

Test(rules_policy_load, isolate_process_is_a_warning)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                              "  <module id=\"iso\" path=\"/nonexistent/b.so\" "
                              "isolate=\"process\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <layer id=\"r\" module=\"iso\" token=\"u\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l r\"/></token>\n"
                              "</strata>\n";
    cr_assert_eq(load(xml), 0, "isolate=\"process\" must not be an error");
    cr_assert_eq(diags.n_errors, 0);
    cr_assert_eq(policy->modules[1].isolate, RULES_ISOLATE_PROCESS);
    cr_assert(has_warning("module \"iso\": isolate=\"process\" is not supported yet; see "
                          "docs/hosting.md"));
    for (size_t i = 0; i < diags.count; i++) {
        if (strstr(diags.items[i].message, "isolate") != NULL) {
            cr_assert_eq(diags.items[i].line, policy_text_line(xml, "<module id=\"iso\""));
            cr_assert_eq(diags.items[i].severity, RULES_SEVERITY_WARNING);
        }
    }
    cr_assert_not(has_warning("module \"m\": isolate"), "no warning without the attribute");
}

Test(rules_policy_load, unused_layer_and_module_are_warnings)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                              "  <module id=\"unused\" path=\"/nonexistent/b.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <layer id=\"spare\" module=\"m\" token=\"u\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l\"/></token>\n"
                              "</strata>\n";
    cr_assert_eq(load(xml), 0);
    cr_assert(has_warning("module \"unused\" is used by no layer"));
    cr_assert(has_warning("layer \"spare\" is used by no view"));
}

Test(rules_policy_load, rules_text_keeps_lines_across_comments)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l\">\n"
                              "    <rules>\n"
                              "      hide where label ~ \"a*\" <!-- two\n"
                              "      lines -->\n"
                              "      show where label == \"x &amp; y\"\n"
                              "    </rules>\n"
                              "  </view></token>\n"
                              "</strata>\n";
    cr_assert_eq(load(xml), 0);
    const rules_view *v = &policy->tokens[0].views[0];
    cr_assert_eq(v->rules_line, policy_text_line(xml, "<rules>"));
    cr_assert_str_eq(v->rules_text, "\n      hide where label ~ \"a*\" \n\n"
                                    "      show where label == \"x & y\"\n    ");
    cr_assert_not_null(v->rules);
}

/* ---------------------------------------------------------------------
 * Semantic errors: exactly one error each, on the right line
 * ------------------------------------------------------------------ */

/* A valid policy with one substitution applied: from -> to. */
static char *variant(const char *from, const char *to)
{
    static char buf[4096];
    const char *base = "<strata version=\"1\">\n"
                       "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                       "  <layer id=\"group\" module=\"m\" token=\"team\" access=\"read-only\"/>\n"
                       "  <layer id=\"me\" module=\"m\" token=\"strata-{view}\" "
                       "provision=\"lazy\"/>\n"
                       "  <token label=\"Strata\">\n"
                       "    <view id=\"work\" layers=\"me group\"/>\n"
                       "    <view id=\"anon\" layers=\"me\"/>\n"
                       "  </token>\n"
                       "  <!--EXTRA-->\n"
                       "</strata>\n";
    const char *at = strstr(base, from);
    cr_assert_not_null(at, "\"%s\" not in the base policy", from);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return buf;
}

static void load_variant(const char *from, const char *to, const char *marker, const char *what)
{
    const char *xml = variant(from, to);
    cr_assert_eq(load(xml), -1);
    expect_one_error(policy_text_line(xml, marker), what);
}

Test(rules_policy_load, base_variant_is_valid)
{
    cr_assert_eq(load(variant("<!--EXTRA-->", "")), 0);
    cr_assert_eq(diags.n_errors, 0);
}

Test(rules_policy_load, duplicate_module_id)
{
    load_variant("<layer id=\"group\"", "<module id=\"m\" path=\"/x.so\"/><layer id=\"group\"",
                 "<module id=\"m\" path=\"/x", "module id \"m\" is already used on line 2");
}

Test(rules_policy_load, duplicate_layer_id)
{
    load_variant("<token label", "<layer id=\"me\" module=\"m\" token=\"z\"/>\n<token label",
                 "token=\"z\"", "layer id \"me\" is already used");
}

Test(rules_policy_load, duplicate_token_label)
{
    load_variant("<!--EXTRA-->", "<token label=\"Strata\"><view id=\"x\" layers=\"me\"/></token>",
                 "<view id=\"x\"", "token label \"Strata\" is already used on line 5");
}

Test(rules_policy_load, duplicate_view_id_across_tokens)
{
    load_variant("<!--EXTRA-->", "<token label=\"B\"><view id=\"work\" layers=\"me\"/></token>",
                 "<token label=\"B\"", "view id \"work\" is already used on line 6");
}

Test(rules_policy_load, layer_names_unknown_module)
{
    load_variant("module=\"m\" token=\"team\"", "module=\"nosuch\" token=\"team\"", "nosuch",
                 "names module \"nosuch\", which is not declared");
}

Test(rules_policy_load, view_names_unknown_layer)
{
    load_variant("layers=\"me group\"", "layers=\"me grop\"", "grop",
                 "names layer \"grop\", which is not declared");
}

Test(rules_policy_load, view_names_layer_twice)
{
    load_variant("layers=\"me group\"", "layers=\"me group me\"", "me group me",
                 "names layer \"me\" twice");
}

Test(rules_policy_load, view_with_empty_layers)
{
    load_variant("layers=\"me\"", "layers=\" \"", "layers=\" \"", "empty layers list");
}

Test(rules_policy_load, token_label_over_32_bytes)
{
    load_variant("label=\"Strata\"", "label=\"0123456789abcdef0123456789abcdefX\"", "<token label",
                 "is 33 bytes; expected 1 to 32 bytes");
}

Test(rules_policy_load, token_label_of_32_bytes_is_fine)
{
    cr_assert_eq(load(variant("label=\"Strata\"", "label=\"0123456789abcdef0123456789abcdef\"")),
                 0);
}

Test(rules_policy_load, lazy_layer_without_view_placeholder)
{
    load_variant("token=\"strata-{view}\"", "token=\"strata\"", "token=\"strata\"",
                 "needs \"{view}\" in its token label");
}

Test(rules_policy_load, view_placeholder_on_plain_layer_is_fine)
{
    cr_assert_eq(load(variant("token=\"team\"", "token=\"team-{view}\"")), 0);
}

Test(rules_policy_load, lazy_layer_with_serial)
{
    load_variant("provision=\"lazy\"", "provision=\"lazy\" serial=\"1234\"", "serial=\"1234\"",
                 "cannot name a serial");
}

Test(rules_policy_load, template_label_too_long_for_view)
{
    load_variant("<view id=\"anon\"", "<view id=\"a-very-long-view-name-indeed-x\"",
                 "a-very-long-view", "is over 32 bytes for view");
}

Test(rules_policy_load, two_public_views)
{
    const char *xml = variant("<view id=\"work\" layers=\"me group\"/>\n    <view id=\"anon\" "
                              "layers=\"me\"/>",
                              "<view id=\"work\" layers=\"me group\" public=\"true\"/>\n    "
                              "<view id=\"anon\" layers=\"me\" public=\"true\"/>");
    cr_assert_eq(load(xml), -1);
    expect_one_error(policy_text_line(xml, "<view id=\"anon\""), "at most one public view");
}

/* load, after freeing the policy an earlier load made. */
static int reload(const char *xml)
{
    rules_policy_free(policy);
    policy = NULL;
    return load(xml);
}

/* The view shown before login: public-view, else public="true", else
 * the first view; "none" for none. */
Test(rules_policy_load, public_view_resolution)
{
    const rules_token *t;

    cr_assert_eq(reload(variant("<!--EXTRA-->", "")), 0);
    t = &policy->tokens[0];
    cr_assert_eq(t->public_view, &t->views[0], "the first view by default");
    cr_assert_null(t->public_attr);
    cr_assert_eq(reload(variant("<token label=\"Strata\">", "<token label=\"Strata\" "
                                                            "public-view=\"anon\">")),
                 0);
    t = &policy->tokens[0];
    cr_assert_eq(t->public_view, &t->views[1]);
    cr_assert_str_eq(t->public_attr, "anon");
    cr_assert_eq(reload(variant("<token label=\"Strata\">", "<token label=\"Strata\" "
                                                            "public-view=\"none\">")),
                 0);
    cr_assert_null(policy->tokens[0].public_view);
    cr_assert_eq(reload(variant("layers=\"me\"/>", "layers=\"me\" public=\"true\"/>")), 0);
    t = &policy->tokens[0];
    cr_assert_eq(t->public_view, &t->views[1], "public=\"true\" still names it");
}

Test(rules_policy_load, public_view_naming_no_view)
{
    load_variant("<token label=\"Strata\">", "<token label=\"Strata\" public-view=\"bob\">",
                 "<token label", "public-view=\"bob\" names no view of token \"Strata\"");
}

Test(rules_policy_load, public_view_against_public_true)
{
    const char *xml =
        variant("<token label=\"Strata\">\n    <view id=\"work\" layers=\"me group\"/>",
                "<token label=\"Strata\" public-view=\"none\">\n    <view "
                "id=\"work\" layers=\"me group\" public=\"true\"/>");
    cr_assert_eq(load(xml), -1);
    expect_one_error(policy_text_line(xml, "<view id=\"work\""),
                     "is public=\"true\" but its token says public-view=\"none\"");
}

Test(rules_policy_load, version_other_than_1)
{
    load_variant("version=\"1\"", "version=\"2\"", "<strata", "unsupported policy version \"2\"");
}

Test(rules_policy_load, min_pin_len_over_max)
{
    load_variant("<token label=\"Strata\"",
                 "<token label=\"Strata\" min-pin-len=\"9\" max-pin-len=\"8\"", "<token",
                 "min-pin-len (9) is greater than max-pin-len (8)");
}

Test(rules_policy_load, view_id_not_simple_name)
{
    load_variant("<view id=\"anon\"", "<view id=\"an on/x\"", "an on",
                 "view id \"an on/x\" is not a simple name");
}

Test(rules_policy_load, kdf_below_libsodium_minimum)
{
    load_variant("<token label=\"Strata\">",
                 "<token label=\"Strata\">\n<kdf ops=\"1\" mem=\"4096\"/>", "<kdf",
                 "kdf mem=\"4096\" is below libsodium's Argon2id minimum of 8192 bytes");
}

Test(rules_policy_load, kdf_ops_zero)
{
    load_variant("<token label=\"Strata\">", "<token label=\"Strata\">\n<kdf ops=\"0\"/>", "<kdf",
                 "kdf ops=\"0\" is below libsodium's Argon2id minimum of 1");
}

Test(rules_policy_load, kdf_at_libsodium_minimum_is_fine)
{
    cr_assert_eq(load(variant("<token label=\"Strata\">",
                              "<token label=\"Strata\"><kdf ops=\"1\" mem=\"8192\"/>")),
                 0);
    cr_assert_eq(policy->tokens[0].kdf_ops, 1);
    cr_assert_eq(policy->tokens[0].kdf_mem, 8192);
}

Test(rules_policy_load, max_failed_logins_zero)
{
    load_variant("<token label=\"Strata\"", "<token label=\"Strata\" max-failed-logins=\"0\"",
                 "<token", "max-failed-logins=\"0\" is not allowed");
}

Test(rules_policy_load, pin_len_over_limit)
{
    load_variant("<token label=\"Strata\"", "<token label=\"Strata\" max-pin-len=\"256\"", "<token",
                 "max-pin-len=\"256\" is not a number from 0 to 255");
}

Test(rules_policy_load, empty_module_path)
{
    load_variant("path=\"/nonexistent/a.so\"", "path=\"\"", "<module", "module path is empty");
}

Test(rules_policy_load, reports_every_semantic_error)
{
    const char *xml =
        variant("<layer id=\"group\"", "<module id=\"m\" path=\"/x.so\"/><layer id=\"group\"");
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", xml);
    char *v = strstr(copy, "version=\"1\"");
    v[9] = '3';
    cr_assert_eq(load(copy), -1);
    dump_diags();
    cr_assert_eq(diags.n_errors, 2);
    expect_error_on(1, "unsupported policy version \"3\"");
    expect_error_on(policy_text_line(copy, "/x.so"), "already used");
}

/* ---------------------------------------------------------------------
 * Schema violations
 * ------------------------------------------------------------------ */

Test(rules_policy_load, schema_unknown_element)
{
    const char *xml = variant("<!--EXTRA-->", "<frob/>");
    cr_assert_eq(load(xml), -1);
    dump_diags();
    cr_assert_null(policy);
    expect_error_on(policy_text_line(xml, "<frob"), "<frob> is not allowed inside <strata>");
}

Test(rules_policy_load, schema_missing_attribute)
{
    const char *xml = variant("<token label=\"Strata\">", "<token>");
    cr_assert_eq(load(xml), -1);
    expect_error_on(policy_text_line(xml, "<token>"), "<token> needs the attribute \"label\"");
}

Test(rules_policy_load, schema_bad_access_value)
{
    const char *xml = variant("access=\"read-only\"", "access=\"ro\"");
    cr_assert_eq(load(xml), -1);
    expect_error_on(
        policy_text_line(xml, "access=\"ro\""),
        "<layer access=\"ro\"> is not allowed; expected \"read-write\" or \"read-only\"");
}

Test(rules_policy_load, schema_unknown_attribute)
{
    const char *xml = variant("access=\"read-only\"", "acces=\"read-only\"");
    cr_assert_eq(load(xml), -1);
    expect_error_on(policy_text_line(xml, "acces="), "<layer> has no attribute \"acces\"");
}

Test(rules_policy_load, schema_wrong_order)
{
    const char *xml = variant("<!--EXTRA-->", "<module id=\"late\" path=\"/x.so\"/>");
    cr_assert_eq(load(xml), -1);
    dump_diags();
    cr_assert_geq(diags.n_errors, 1);
    for (size_t i = 0; i < diags.count; i++) {
        cr_assert_gt(diags.items[i].line, 0, "every diagnostic has a line");
    }
}

Test(rules_policy_load, schema_not_a_number)
{
    const char *xml =
        variant("<token label=\"Strata\"", "<token label=\"Strata\" min-pin-len=\"four\"");
    cr_assert_eq(load(xml), -1);
    expect_error_on(policy_text_line(xml, "four"), "is not a number");
}

Test(rules_policy_load, schema_wrong_root)
{
    cr_assert_eq(load("<policy version=\"1\"/>\n"), -1);
    expect_one_error(1, "the root element is <policy>; expected <strata");
}

Test(rules_policy_load, schema_root_in_namespace)
{
    cr_assert_eq(load("<strata xmlns=\"urn:x\" version=\"1\"/>\n"), -1);
    cr_assert_eq(diags.n_errors, 1);
}

/* ---------------------------------------------------------------------
 * Files that are not policies
 * ------------------------------------------------------------------ */

Test(rules_policy_load, malformed_xml)
{
    const char *xml = "<strata version=\"1\">\n<module id=\"m\" path=\"/a\"\n</strata>\n";
    cr_assert_eq(load(xml), -1);
    dump_diags();
    cr_assert_null(policy);
    cr_assert_geq(diags.n_errors, 1);
    cr_assert_eq(diags.items[0].line, 3);
    cr_assert_not_null(strstr(diags.items[0].message, "not well-formed XML"));
}

Test(rules_policy_load, unclosed_root)
{
    cr_assert_eq(load("<strata version=\"1\">\n\n"), -1);
    cr_assert_geq(diags.n_errors, 1);
    cr_assert_gt(diags.items[0].line, 0);
}

Test(rules_policy_load, empty_file)
{
    cr_assert_eq(load(""), -1);
    expect_one_error(1, "the policy is empty");
}

Test(rules_policy_load, blank_file)
{
    cr_assert_eq(load("  \n\n "), -1);
    expect_one_error(1, "the policy is empty");
}

Test(rules_policy_load, missing_file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/nope.xml", w.dir);
    cr_assert_eq(rules_policy_load(path, &policy, &diags), -1);
    cr_assert_null(policy);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_str_eq(diags.items[0].file, path);
    cr_assert_not_null(strstr(diags.items[0].message, "No such file or directory"));
}

Test(rules_policy_load, directory_instead_of_file)
{
    cr_assert_eq(rules_policy_load(w.dir, &policy, &diags), -1);
    cr_assert_null(policy);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_not_null(strstr(diags.items[0].message, "not a regular file but a directory"));
}

Test(rules_policy_load, unreadable_file)
{
    const char *path = write_file("strata.xml", minimal_policy, strlen(minimal_policy));
    cr_assert_eq(chmod(path, 0), 0);
    /* root reads a mode-000 file anyway: find out which world this is. */
    int fd = open(path, O_RDONLY);
    bool readable = fd >= 0;
    if (fd >= 0) {
        close(fd);
    }
    int rc = rules_policy_load(path, &policy, &diags);
    if (readable) {
        cr_assert_eq(geteuid(), 0, "only root reads a mode-000 file");
        cr_assert_eq(rc, 0, "what the process can read, the loader reads");
    } else {
        cr_assert_eq(rc, -1);
        cr_assert_null(policy);
        cr_assert_eq(diags.n_errors, 1);
        cr_assert_not_null(strstr(diags.items[0].message, "Permission denied"));
    }
}

Test(rules_policy_load, null_path)
{
    cr_assert_eq(rules_policy_load(NULL, &policy, &diags), -1);
    cr_assert_eq(diags.n_errors, 1);
}

/* ---------------------------------------------------------------------
 * Hostile files
 * ------------------------------------------------------------------ */

static bool any_message_contains(const char *what)
{
    for (size_t i = 0; i < diags.count; i++) {
        if (strstr(diags.items[i].message, what) != NULL) {
            return true;
        }
    }
    return false;
}

Test(rules_policy_load, billion_laughs_refused, .init = cr_redirect_stderr)
{
    static const char xml[] = "<?xml version=\"1.0\"?>\n"
                              "<!DOCTYPE strata [\n"
                              " <!ENTITY a \"lol\">\n"
                              " <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
                              " <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
                              " <!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
                              " <!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">\n"
                              " <!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">\n"
                              " <!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">\n"
                              " <!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">\n"
                              " <!ENTITY i \"&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;\">\n"
                              "]>\n"
                              "<strata version=\"1\"><module id=\"&i;\" path=\"/a\"/></strata>\n";
    cr_assert_eq(load(xml), -1);
    expect_one_error(2, "a DOCTYPE is not allowed");
    cr_assert_not(any_message_contains("lollol"));
    fflush(stderr);
    cr_assert_stderr_eq_str("", "libxml2 must print nothing");
}

Test(rules_policy_load, external_entity_refused)
{
    static const char xml[] = "<?xml version=\"1.0\"?>\n"
                              "<!DOCTYPE strata [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                              "<strata version=\"1\"><module id=\"m\" path=\"/a\"/>\n"
                              "<layer id=\"l\" module=\"m\" token=\"&x;\"/>\n"
                              "<token label=\"T\"><view id=\"v\" layers=\"l\"/></token></strata>\n";
    cr_assert_eq(load(xml), -1);
    expect_one_error(2, "a DOCTYPE is not allowed");
    cr_assert_not(any_message_contains("root:"));
}

Test(rules_policy_load, external_dtd_refused)
{
    static const char xml[] = "<?xml version=\"1.0\"?>\n"
                              "<!DOCTYPE strata SYSTEM \"http://127.0.0.1:1/strata.dtd\">\n"
                              "<strata version=\"1\"/>\n";
    cr_assert_eq(load(xml), -1);
    expect_one_error(2, "a DOCTYPE is not allowed");
}

Test(rules_policy_load, undeclared_entity_not_expanded)
{
    const char *xml = variant("token=\"team\"", "token=\"&team;\"");
    cr_assert_eq(load(xml), -1);
    cr_assert_geq(diags.n_errors, 1);
    cr_assert_eq(diags.items[0].line, policy_text_line(xml, "&team;"));
}

Test(rules_policy_load, xinclude_not_processed)
{
    const char *xml =
        variant("<!--EXTRA-->", "<xi:include xmlns:xi=\"http://www.w3.org/2001/XInclude\" "
                                "href=\"/etc/passwd\" parse=\"text\"/>");
    cr_assert_eq(load(xml), -1);
    expect_error_on(policy_text_line(xml, "<xi:include"), "is not allowed inside <strata>");
    cr_assert_not(any_message_contains("root:"));
}

Test(rules_policy_load, bad_encoding_prints_nothing, .init = cr_redirect_stderr)
{
    static const char bad_utf8[] = "<strata version=\"1\">\xff\xfe</strata>";
    static const char declared[] =
        "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?><strata version=\"1\">\x1b$B</strata>";
    cr_assert_eq(load(bad_utf8), -1);
    cr_assert_eq(diags.items[0].line, 1);
    rules_diags_clear(&diags);
    cr_assert_eq(load(declared), -1);
    cr_assert_geq(diags.n_errors, 1);
    fflush(stderr);
    cr_assert_stderr_eq_str("", "libxml2 must print nothing");
}

/* A valid policy padded with a comment to exactly size bytes. */
static char *padded_policy(size_t size)
{
    const char *head = "<strata version=\"1\">\n"
                       "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                       "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                       "  <token label=\"T\"><view id=\"v\" layers=\"l\"/></token>\n<!--";
    const char *tail = "-->\n</strata>\n";
    char *buf = malloc(size + 1);
    cr_assert_not_null(buf);
    size_t h = strlen(head), t = strlen(tail);
    memcpy(buf, head, h);
    memset(buf + h, 'x', size - h - t);
    memcpy(buf + size - t, tail, t);
    buf[size] = '\0';
    return buf;
}

Test(rules_policy_load, over_1_mib_refused)
{
    char *xml = padded_policy(1024 * 1024 + 1);
    const char *path = write_file("strata.xml", xml, strlen(xml));
    free(xml);
    cr_assert_eq(rules_policy_load(path, &policy, &diags), -1);
    cr_assert_null(policy);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_not_null(strstr(diags.items[0].message, "limited to 1048576 bytes (1 MiB)"));
}

Test(rules_policy_load, exactly_1_mib_accepted)
{
    char *xml = padded_policy(1024 * 1024);
    const char *path = write_file("strata.xml", xml, strlen(xml));
    free(xml);
    cr_assert_eq(rules_policy_load(path, &policy, &diags), 0);
    cr_assert_eq(policy->n_tokens, 1);
}

Test(rules_policy_load_memory, over_1_mib_refused)
{
    char *xml = padded_policy(1024 * 1024 + 1);
    cr_assert_eq(rules_policy_load_memory(xml, strlen(xml), "/etc/mem.xml", &policy, &diags), -1);
    free(xml);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_not_null(strstr(diags.items[0].message, "1 MiB"));
}

/* ---------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------ */

Test(rules_policy_load, relative_paths_resolve_against_policy_folder)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <catalog path=\"data/catalog.db\"/>\n"
                              "  <module id=\"m\" path=\"./libfake.so\"/>\n"
                              "  <module id=\"abs\" path=\"/nonexistent/abs.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <layer id=\"k\" module=\"abs\" token=\"t\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l k\"/></token>\n"
                              "</strata>\n";
    make_fake_module();
    cr_assert_eq(load(xml), 0);
    cr_assert_str_eq(policy->modules[0].path, in_dir("libfake.so"));
    cr_assert_str_eq(policy->modules[1].path, "/nonexistent/abs.so");
    cr_assert_str_eq(policy->catalog_path, in_dir("data/catalog.db"));
    cr_assert_not(has_warning("libfake.so"), "the resolved module file exists");
}

Test(rules_policy_load, relative_policy_path_resolves_against_cwd)
{
    make_fake_module();
    write_file("strata.xml", full_policy, strlen(full_policy));
    char *old = getcwd(NULL, 0);
    cr_assert_eq(chdir(w.dir), 0);
    int rc = rules_policy_load("strata.xml", &policy, &diags);
    cr_assert_eq(chdir(old), 0);
    free(old);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(policy->path, "strata.xml");
    char real[PATH_MAX];
    cr_assert_not_null(realpath(w.dir, real));
    char want[PATH_MAX + 16];
    snprintf(want, sizeof(want), "%s/libfake.so", real);
    cr_assert_str_eq(policy->modules[0].path, want);
}

Test(rules_policy_load, log_stderr_is_kept)
{
    cr_assert_eq(load(variant("<module", "<log calls=\"stderr\"/><module")), 0);
    cr_assert_str_eq(policy->log, "stderr");
}

Test(rules_policy_load_memory, relative_module_path_without_folder)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"lib/x.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l\"/></token>\n"
                              "</strata>\n";
    cr_assert_eq(rules_policy_load_memory(xml, strlen(xml), "inline", &policy, &diags), -1);
    dump_diags();
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_eq(diags.items[0].line, 2);
    cr_assert_str_eq(diags.items[0].file, "inline");
    cr_assert_not_null(strstr(diags.items[0].message, "is relative"));
}

Test(rules_policy_load_memory, absolute_name_gives_folder)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <catalog path=\"c.db\"/>\n"
                              "  <module id=\"m\" path=\"lib/x.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <token label=\"T\"><view id=\"v\" layers=\"l\"/></token>\n"
                              "</strata>\n";
    cr_assert_eq(rules_policy_load_memory(xml, strlen(xml), "/srv/strata/p.xml", &policy, &diags),
                 0);
    cr_assert_str_eq(policy->modules[0].path, "/srv/strata/lib/x.so");
    cr_assert_str_eq(policy->catalog_path, "/srv/strata/c.db");
    cr_assert_str_eq(policy->path, "/srv/strata/p.xml");
}

Test(rules_policy_load_memory, empty_buffer)
{
    cr_assert_eq(rules_policy_load_memory(NULL, 0, "x", &policy, &diags), -1);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_eq(diags.items[0].line, 1);
}

/* ---------------------------------------------------------------------
 * Default path
 * ------------------------------------------------------------------ */

static void expect_default(const char *want)
{
    char *path = rules_policy_default_path();
    cr_assert_not_null(path);
    cr_assert_str_eq(path, want);
    free(path);
}

Test(rules_policy_default_path, strata_conf_first)
{
    setenv("STRATA_CONF", "/some/where.xml", 1);
    setenv("XDG_CONFIG_HOME", w.dir, 1);
    write_file("strata.xml", "", 0);
    expect_default("/some/where.xml");
}

Test(rules_policy_default_path, xdg_config_home_when_file_exists)
{
    char dir[PATH_MAX + 16], want[PATH_MAX + 32];
    unsetenv("STRATA_CONF");
    setenv("XDG_CONFIG_HOME", w.dir, 1);
    setenv("HOME", "/nonexistent-home", 1);
    snprintf(dir, sizeof(dir), "%s/strata", w.dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    write_file("strata/strata.xml", "", 0);
    snprintf(want, sizeof(want), "%s/strata/strata.xml", w.dir);
    expect_default(want);
}

Test(rules_policy_default_path, empty_strata_conf_ignored)
{
    char want[PATH_MAX + 32];
    setenv("STRATA_CONF", "", 1);
    setenv("XDG_CONFIG_HOME", w.dir, 1);
    snprintf(want, sizeof(want), "%s/strata/strata.xml", w.dir);
    /* The user file is missing: the system file wins when it exists. */
    expect_default(access("/etc/strata/strata.xml", F_OK) == 0 ? "/etc/strata/strata.xml" : want);
}

Test(rules_policy_default_path, home_when_xdg_unset_or_relative)
{
    char home[PATH_MAX + 16], want[PATH_MAX + 48];
    unsetenv("STRATA_CONF");
    setenv("XDG_CONFIG_HOME", "relative/config", 1);
    snprintf(home, sizeof(home), "%s/home", w.dir);
    setenv("HOME", home, 1);
    snprintf(want, sizeof(want), "%s/.config/strata/strata.xml", home);
    expect_default(access("/etc/strata/strata.xml", F_OK) == 0 ? "/etc/strata/strata.xml" : want);
    unsetenv("XDG_CONFIG_HOME");
    expect_default(access("/etc/strata/strata.xml", F_OK) == 0 ? "/etc/strata/strata.xml" : want);
}

Test(rules_policy_default_path, system_file_without_home)
{
    unsetenv("STRATA_CONF");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    expect_default("/etc/strata/strata.xml");
}

/* ---------------------------------------------------------------------
 * Lookups and label templates
 * ------------------------------------------------------------------ */

Test(rules_policy_lookup, finds_by_id_and_label)
{
    make_fake_module();
    cr_assert_eq(load(full_policy), 0);
    cr_assert_eq(rules_policy_module(policy, "remote"), &policy->modules[1]);
    cr_assert_null(rules_policy_module(policy, "nosuch"));
    cr_assert_eq(rules_policy_layer(policy, "personal"), &policy->layers[1]);
    cr_assert_null(rules_policy_layer(policy, "soft"));
    const rules_token *t = rules_policy_token(policy, "Second");
    cr_assert_eq(t, &policy->tokens[1]);
    cr_assert_null(rules_policy_token(policy, "strata"), "labels are case-sensitive");
    cr_assert_eq(rules_token_view(&policy->tokens[0], "anon"), &policy->tokens[0].views[1]);
    cr_assert_null(rules_token_view(t, "anon"), "a view belongs to its token");
    cr_assert_null(rules_policy_layer(NULL, "x"));
    cr_assert_null(rules_token_view(NULL, "x"));
}

Test(rules_layer_token_label, expands_view)
{
    rules_layer layer = {.token = "strata-{view}"};
    char buf[33];
    cr_assert_eq(rules_layer_token_label(&layer, "work", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "strata-work");
}

Test(rules_layer_token_label, expands_every_placeholder)
{
    rules_layer layer = {.token = "{view}/{view}-{vie"};
    char buf[33];
    cr_assert_eq(rules_layer_token_label(&layer, "ab", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "ab/ab-{vie");
}

Test(rules_layer_token_label, plain_label_copied)
{
    rules_layer layer = {.token = "team-keys"};
    char buf[33];
    cr_assert_eq(rules_layer_token_label(&layer, NULL, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "team-keys");
}

Test(rules_layer_token_label, exact_fit_and_overflow)
{
    rules_layer layer = {.token = "s-{view}"};
    char buf[8];
    cr_assert_eq(rules_layer_token_label(&layer, "abcde", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "s-abcde");
    cr_assert_eq(rules_layer_token_label(&layer, "abcdef", buf, sizeof(buf)), -1);
    rules_layer plain = {.token = "12345678"};
    cr_assert_eq(rules_layer_token_label(&plain, NULL, buf, sizeof(buf)), -1);
    cr_assert_eq(rules_layer_token_label(&plain, NULL, buf, 0), -1);
}

Test(rules_layer_token_label, template_needs_view)
{
    rules_layer layer = {.token = "strata-{view}"};
    char buf[33];
    cr_assert_eq(rules_layer_token_label(&layer, NULL, buf, sizeof(buf)), -1);
}

/* ---------------------------------------------------------------------
 * Found by fuzz_policy (tests/fuzz)
 * ------------------------------------------------------------------ */

/* Rule errors in one token, then a loader error in the next: the loader's
 * diagnostic went past the end of the list the compiler had grown. */
Test(rules_policy_load_memory, rule_errors_then_policy_errors)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <token label=\"A\"><view id=\"v\" layers=\"l\"><rules>\n"
                              "b1\nb2\nb3\nb4\nb5\nb6\nb7\nb8\nb9\n"
                              "</rules></view></token>\n"
                              "  <token label=\"A\"><view id=\"w\" layers=\"l\"/></token>\n"
                              "</strata>\n";
    cr_assert_eq(rules_policy_load_memory(xml, strlen(xml), "/etc/p.xml", &policy, &diags), -1);
    dump_diags();
    cr_assert_eq(diags.n_errors, 10);
    const rules_diag *last = &diags.items[diags.count - 1];
    cr_assert_eq(last->line, policy_text_line(xml, "<token label=\"A\"><view id=\"w\""));
    cr_assert_not_null(strstr(last->message, "token label \"A\" is already used"));
}

/* A rule error quoting a string with an escaped line break stays one line. */
Test(rules_policy_load_memory, rule_error_messages_stay_one_line)
{
    static const char xml[] = "<strata version=\"1\">\n"
                              "  <module id=\"m\" path=\"/nonexistent/a.so\"/>\n"
                              "  <layer id=\"l\" module=\"m\" token=\"t\"/>\n"
                              "  <token label=\"A\"><view id=\"v\" layers=\"l\"><rules>\n"
                              "hide where layer == \"x\\ny\"\n"
                              "</rules></view></token>\n"
                              "</strata>\n";
    cr_assert_eq(rules_policy_load_memory(xml, strlen(xml), "/etc/p.xml", &policy, &diags), -1);
    cr_assert_eq(diags.n_errors, 1);
    for (size_t i = 0; i < diags.count; i++) {
        cr_assert_null(strchr(diags.items[i].message, '\n'), "%s", diags.items[i].message);
    }
}
