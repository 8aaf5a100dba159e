/*
 * entry.h - what the entry points (entry.c: v2.40, entry_v3.c: 3.0) share:
 * the FORWARD macros that check the library state, frame the call for the
 * call log (calllog.h) and call one family function of ops/.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_ENTRY_H
#define STRATA_ENGINE_ENTRY_H

#include "calllog.h"
#include "ops/ops.h"

/* Checks the library state and returns call; when the call log is on,
 * logs fn with the described arguments around it (calllog.h). */
#define FORWARD(fn, call, ...)                                                                     \
    do {                                                                                           \
        CK_RV rv_ = library_check();                                                               \
        if (rv_ != CKR_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
        if (calllog_on()) {                                                                        \
            const calllog_arg args_[] = {__VA_ARGS__};                                             \
            const size_t n_ = sizeof(args_) / sizeof(args_[0]);                                    \
            calllog_frame frame_;                                                                  \
            calllog_enter(&frame_, #fn, args_, n_);                                                \
            rv_ = (call);                                                                          \
            calllog_exit(&frame_, rv_, args_, n_);                                                 \
            return rv_;                                                                            \
        }                                                                                          \
        return (call);                                                                             \
    } while (0)

/* FORWARD for the functions that serve several kinds: name is logged. */
#define FORWARD_NAMED(name, call, ...)                                                             \
    do {                                                                                           \
        const calllog_arg args_[] = {__VA_ARGS__};                                                 \
        const size_t n_ = sizeof(args_) / sizeof(args_[0]);                                        \
        calllog_frame frame_;                                                                      \
        CK_RV rv_ = library_check();                                                               \
        if (rv_ != CKR_OK) {                                                                       \
            return rv_;                                                                            \
        }                                                                                          \
        calllog_enter(&frame_, (name), args_, n_);                                                 \
        rv_ = (call);                                                                              \
        calllog_exit(&frame_, rv_, args_, n_);                                                     \
        return rv_;                                                                                \
    } while (0)

#endif /* STRATA_ENGINE_ENTRY_H */
