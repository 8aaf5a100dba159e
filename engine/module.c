/*
 * module.c - the shared module strata-pkcs11.so: the engine linked whole,
 * exporting only C_GetFunctionList (strata-pkcs11.map).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "engine.h"
