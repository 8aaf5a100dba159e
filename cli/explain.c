/*
 * explain.c - strata explain --view V [--token T] [--pin-stdin] OBJECT:
 * for each object of the view's layers with that label (stored or as the
 * view shows it) or, when OBJECT is a number, that handle, why the view
 * shows it or not and each rule that matched it with its effect. Objects
 * the view hides are included: the engine walks the layers directly
 * (engine_explain).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

static void print_help(void)
{
    printf("usage: strata explain --view VIEW [--token LABEL] [--pin-stdin] OBJECT\n"
           "\n"
           "Explain what view VIEW does with OBJECT, a label (as stored or as the view\n"
           "shows it) or a handle (a number, as strata ls prints it): whether the view\n"
           "shows it, and if not why (hidden by a rule, shadowed by an upper layer,\n"
           "whited out), then each rule that matched it, with its line and effect.\n"
           "Objects the view hides are explained too. Asks the view's PIN.\n"
           "\n"
           "options:\n"
           "  --view VIEW    the view\n"
           "  --token LABEL  the virtual token (default: the policy's only one)\n"
           "  --pin-stdin    read the PIN as one line on standard input\n"
           "\n"
           "exit status: 0 explained, 1 no such object or a failure, 2 usage\n");
}

typedef struct {
    size_t rules; /* rules reported for the current object */
    bool open;    /* an object was printed */
} explain_out;

static void end_object(explain_out *out)
{
    if (out->open && out->rules == 0) {
        printf("  no rule matches it\n");
    }
}

static void on_object(void *ctx, const engine_explained *e)
{
    explain_out *out = ctx;
    char cbuf[32], idhex[260];

    end_object(out);
    cli_hex(e->id, e->id_len <= 128 ? e->id_len : 128, idhex, sizeof(idhex));
    printf("%s\"%s\"", out->open ? "\n" : "", e->label);
    if (strcmp(e->label, e->shown_label) != 0) {
        printf(" (shown as \"%s\")", e->shown_label);
    }
    printf(": layer %s, %s, id %s, handle %lu\n", e->layer,
           cli_class_name(e->cls, cbuf, sizeof(cbuf)), idhex, (unsigned long)e->handle);
    printf("  %s\n", e->visibility);
    out->open = true;
    out->rules = 0;
}

static void on_rule(void *ctx, unsigned line, const char *effect)
{
    explain_out *out = ctx;

    printf("  line %u: %s\n", line, effect);
    out->rules++;
}

/* Parses OBJECT as a handle: true when it is a decimal number. */
static bool as_handle(const char *text, CK_OBJECT_HANDLE *handle)
{
    char *end = NULL;
    unsigned long long v;

    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    v = strtoull(text, &end, 10);
    if (*end != '\0' || v == 0 || v > (CK_OBJECT_HANDLE)-1) {
        return false;
    }
    *handle = (CK_OBJECT_HANDLE)v;
    return true;
}

int cli_cmd_explain(cli_global *g, int argc, char **argv)
{
    static const engine_explain_ops ops = {on_object, on_rule};
    explain_out out = {0, false};
    cli_view_opts o;
    cli_view_session vs;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    const char *object;
    size_t found = 0;
    CK_RV rv;
    int rc = cli_view_args(g, "explain", argc, argv, &o, print_help);

    if (rc != 0) {
        return rc == 1 ? CLI_EXIT_OK : rc;
    }
    if (optind != argc - 1) {
        return cli_usage_error("explain", "give one OBJECT (a label or a handle)");
    }
    object = argv[optind];
    if (cli_view_session_open(g, o.token, o.view, o.pin_stdin, &vs) != 0) {
        return CLI_EXIT_FAIL;
    }
    rv = CKR_OK;
    if (as_handle(object, &handle)) {
        rv = engine_explain(vs.session, NULL, handle, &ops, &out, &found);
    }
    if (rv == CKR_OK && found == 0) {
        rv = engine_explain(vs.session, object, CK_INVALID_HANDLE, &ops, &out, &found);
    }
    end_object(&out);
    rc = CLI_EXIT_OK;
    if (rv != CKR_OK) {
        cli_error("explain failed: %s", layers_rv_name(rv));
        rc = CLI_EXIT_FAIL;
    } else if (found == 0) {
        cli_error("no object '%s' in the layers of view '%s'", object, o.view);
        rc = CLI_EXIT_FAIL;
    }
    cli_view_session_close(&vs);
    return rc;
}
