/*
 * proxy_cycles.c - one process using Strata and SoftHSM2 side by side
 * through p11-kit-proxy.so, for two C_Initialize/C_Finalize cycles.
 *
 * usage: proxy_cycles CONFDIR PROXY VIEW_PIN LAYER_PIN
 *
 * Points p11-kit at CONFDIR (pkcs11.conf, modules/) with
 * p11_kit_override_system_files() (p11-kit-proxy.so is the same library),
 * then in each cycle logs in to the tokens "Strata" (VIEW_PIN) and
 * "personal" (LAYER_PIN) and signs and verifies with the key pair
 * "work-ec" on each. Prints "cycle N TOKEN sign ok" per step; exits 0
 * when every step worked, 1 otherwise (the failing call on stderr).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#define CHECK(call)                                                                                \
    do {                                                                                           \
        CK_RV rv_ = (call);                                                                        \
        if (rv_ != CKR_OK) {                                                                       \
            fprintf(stderr, "%s: %s\n", #call, p11_kit_strerror(rv_));                             \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* The slot whose token is labelled label, or (CK_SLOT_ID)-1. */
static CK_SLOT_ID slot_of(CK_FUNCTION_LIST *p11, const char *label)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_TOKEN_INFO info;

    if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        return (CK_SLOT_ID)-1;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            p11_kit_space_strlen(info.label, sizeof(info.label)) == strlen(label) &&
            memcmp(info.label, label, strlen(label)) == 0) {
            return slots[i];
        }
    }
    return (CK_SLOT_ID)-1;
}

static CK_RV find_key(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                      CK_OBJECT_HANDLE *out)
{
    static const char label[] = "work-ec";
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_LABEL, (void *)label, sizeof(label) - 1}};
    CK_ULONG n = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, t, 2);

    if (rv == CKR_OK) {
        rv = p11->C_FindObjects(s, out, 1, &n);
        p11->C_FindObjectsFinal(s);
    }
    return rv == CKR_OK && n != 1 ? CKR_KEY_HANDLE_INVALID : rv;
}

/* Logs in to token, signs a digest with work-ec and verifies it. */
static int sign_on(CK_FUNCTION_LIST *p11, const char *token, const char *pin)
{
    CK_SLOT_ID slot = slot_of(p11, token);
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv, pub;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE digest[32], sig[256];
    CK_ULONG sig_len = sizeof(sig);

    memset(digest, 0x5a, sizeof(digest));
    if (slot == (CK_SLOT_ID)-1) {
        fprintf(stderr, "no token %s\n", token);
        return 1;
    }
    CHECK(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    CHECK(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
    CHECK(find_key(p11, s, CKO_PRIVATE_KEY, &priv));
    CHECK(find_key(p11, s, CKO_PUBLIC_KEY, &pub));
    CHECK(p11->C_SignInit(s, &mech, priv));
    CHECK(p11->C_Sign(s, digest, sizeof(digest), sig, &sig_len));
    CHECK(p11->C_VerifyInit(s, &mech, pub));
    CHECK(p11->C_Verify(s, digest, sizeof(digest), sig, sig_len));
    CHECK(p11->C_Logout(s));
    CHECK(p11->C_CloseSession(s));
    return 0;
}

int main(int argc, char **argv)
{
    static char conf[PATH_MAX], modules[PATH_MAX];
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *p11 = NULL;
    void *proxy;

    if (argc != 5) {
        fprintf(stderr, "usage: %s CONFDIR PROXY VIEW_PIN LAYER_PIN\n", argv[0]);
        return 2;
    }
    snprintf(conf, sizeof(conf), "%s/pkcs11.conf", argv[1]);
    snprintf(modules, sizeof(modules), "%s/modules", argv[1]);
    p11_kit_override_system_files(conf, "/nonexistent/pkcs11.conf", modules, "/nonexistent/modules",
                                  "/nonexistent/modules");
    proxy = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (proxy == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&get_list = dlsym(proxy, "C_GetFunctionList");
    if (get_list == NULL || get_list(&p11) != CKR_OK) {
        fprintf(stderr, "no function list\n");
        return 1;
    }
    for (int cycle = 1; cycle <= 2; cycle++) {
        CHECK(p11->C_Initialize(NULL));
        if (sign_on(p11, "Strata", argv[3]) != 0) {
            return 1;
        }
        printf("cycle %d Strata sign ok\n", cycle);
        if (sign_on(p11, "personal", argv[4]) != 0) {
            return 1;
        }
        printf("cycle %d personal sign ok\n", cycle);
        CHECK(p11->C_Finalize(NULL));
    }
    dlclose(proxy);
    return 0;
}
