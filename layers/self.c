/*
 * self.c - recognising Strata itself among the modules a policy names.
 *
 * A layer whose module is strata-pkcs11.so (by its own path, a symbolic
 * or hard link, or a copy under another name) sends every call back into
 * Strata: C_Login re-enters the login lock and deadlocks. A file name
 * proves nothing, so the module carries an ELF note (engine/module.c:
 * owner LAYERS_STRATA_NOTE_NAME, type LAYERS_STRATA_NOTE_TYPE) in a
 * PT_NOTE segment, which survives copying and renaming; this file reads
 * the program headers of the file a path names and looks for it, without
 * loading it (no code of the file runs).
 *
 * Only the native ELF class and byte order are read (a module of another
 * class could not be loaded anyway). Reads are bounded: at most
 * NOTE_MAX bytes of notes per segment.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define NOTE_MAX  65536u /* bytes of one PT_NOTE segment read at most */
#define PHDRS_MAX 256u   /* program headers looked at */

/* Reads exactly len bytes at off. */
static bool read_at(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (n <= 0) {
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

static size_t align4(size_t n)
{
    return (n + 3u) & ~(size_t)3u;
}

/* Whether the notes in buf (len bytes) hold Strata's. */
static bool notes_have_strata(const unsigned char *buf, size_t len)
{
    const size_t name_len = sizeof(LAYERS_STRATA_NOTE_NAME); /* with its NUL */
    size_t off = 0;

    while (len - off >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) nh;
        size_t name_at, desc_at, next;

        memcpy(&nh, buf + off, sizeof(nh));
        name_at = off + sizeof(nh);
        if (nh.n_namesz > len || nh.n_descsz > len) {
            return false;
        }
        desc_at = name_at + align4(nh.n_namesz);
        next = desc_at + align4(nh.n_descsz);
        if (next > len || desc_at > len) {
            return false;
        }
        if (nh.n_type == LAYERS_STRATA_NOTE_TYPE && nh.n_namesz == name_len &&
            memcmp(buf + name_at, LAYERS_STRATA_NOTE_NAME, name_len) == 0) {
            return true;
        }
        off = next;
    }
    return false;
}

/* Whether one program header is a note segment holding Strata's note. */
static bool segment_has_strata(int fd, const ElfW(Phdr) * ph)
{
    unsigned char *buf;
    bool found = false;

    if (ph->p_type != PT_NOTE || ph->p_filesz == 0 || ph->p_filesz > NOTE_MAX) {
        return false;
    }
    buf = malloc(ph->p_filesz);
    if (buf != NULL && read_at(fd, buf, ph->p_filesz, (off_t)ph->p_offset)) {
        found = notes_have_strata(buf, ph->p_filesz);
    }
    free(buf);
    return found;
}

/* Whether hdr is an ELF header of this process's class and byte order. */
static bool native_elf(const ElfW(Ehdr) * hdr)
{
    return memcmp(hdr->e_ident, ELFMAG, SELFMAG) == 0 &&
           hdr->e_ident[EI_CLASS] == (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) &&
           hdr->e_ident[EI_DATA] ==
               (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB) &&
           hdr->e_phentsize == sizeof(ElfW(Phdr));
}

/* See layers.h. No lock; runs no code of the file. */
bool layers_file_is_strata(const char *path)
{
    ElfW(Ehdr) hdr;
    ElfW(Phdr) ph;
    bool found = false;
    int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC) : -1;

    if (fd < 0) {
        return false;
    }
    if (read_at(fd, &hdr, sizeof(hdr), 0) && native_elf(&hdr)) {
        for (unsigned i = 0; i < hdr.e_phnum && i < PHDRS_MAX && !found; i++) {
            off_t at = (off_t)hdr.e_phoff + (off_t)i * (off_t)sizeof(ph);
            found = read_at(fd, &ph, sizeof(ph), at) && segment_has_strata(fd, &ph);
        }
    }
    close(fd);
    return found;
}
