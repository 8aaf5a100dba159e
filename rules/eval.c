/*
 * eval.c - placeholder, filled in by its issue.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rules.h"
