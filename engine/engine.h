/*
 * engine.h - Strata's PKCS#11 surface, for programs linking the engine
 * statically (the strata command, tests). The shared module exports only
 * the PKCS#11 entry points; this header adds nothing to its ABI.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_H
#define STRATA_ENGINE_H

#include <p11-kit/pkcs11.h>

/* The engine's function list (what C_GetFunctionList returns). */
CK_FUNCTION_LIST *engine_function_list(void);

#endif /* STRATA_ENGINE_H */
