/*
 * module.c - the shared module strata-pkcs11.so: the engine linked whole,
 * exporting only C_GetFunctionList (strata-pkcs11.map), and the ELF note
 * that tells Strata's own module apart from any other, whatever its file
 * name (a copy, a link): layers_file_is_strata reads it, so that a policy
 * naming Strata as a layer's module is refused instead of looping.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>

#include "engine.h"
#include "layers.h"

/* One ELF note (Elf_Nhdr, then the padded name and description) in a
 * section named .note.*, which the linker puts in a PT_NOTE segment. */
typedef struct {
    uint32_t namesz;
    uint32_t descsz;
    uint32_t type;
    char name[(sizeof(LAYERS_STRATA_NOTE_NAME) + 3) & ~3u];
    char desc[16];
} strata_note;

__attribute__((section(".note.strata"), used, aligned(4))) static const strata_note note = {
    sizeof(LAYERS_STRATA_NOTE_NAME),
    16,
    LAYERS_STRATA_NOTE_TYPE,
    LAYERS_STRATA_NOTE_NAME,
    "strata-pkcs11",
};
