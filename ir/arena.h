/* ir/arena.h — bump allocator that owns compiler memory.
 *
 * Everything allocated from an Arena lives until arena_fini; there is no per-object free.
 * Graphs, modules and ASTs each own one; passes use a scratch arena.
 */
#ifndef LATHE_IR_ARENA_H
#define LATHE_IR_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;

typedef struct Arena {
  ArenaBlock *head; /* newest block first; NULL when empty */
} Arena;

void arena_init(Arena *a);
void arena_fini(Arena *a);
/* zero-filled, aligned to 16 bytes; aborts only on out-of-memory */
void *arena_alloc(Arena *a, size_t bytes);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
char *arena_vprintf(Arena *a, const char *fmt, va_list ap);

#endif
