/* ir/arena.c — bump allocator: a singly linked list of blocks, newest first.
 *
 * Invariants: every returned pointer is 16-byte aligned and zero-filled; block->used never
 * exceeds block->size; nothing is freed before arena_fini, which frees every block.
 * Out of memory is the one condition that aborts (through IR_ASSERT's reporter).
 */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

#define ARENA_ALIGN 16
#define ARENA_BLOCK_SIZE (64 * 1024)

struct ArenaBlock {
  ArenaBlock *next;
  size_t size; /* usable bytes in data */
  size_t used; /* bytes handed out, multiple of ARENA_ALIGN */
  _Alignas(16) unsigned char data[];
};

void arena_init(Arena *a) { a->head = NULL; }

void arena_fini(Arena *a) {
  ArenaBlock *b = a->head;
  while (b) {
    ArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

static ArenaBlock *arena_block_new(size_t min_bytes) {
  size_t size = min_bytes > ARENA_BLOCK_SIZE ? min_bytes : ARENA_BLOCK_SIZE;
  ArenaBlock *b = calloc(1, sizeof(ArenaBlock) + size);
  if (!b) ir_assert_fail("out of memory", __FILE__, __LINE__);
  b->size = size;
  return b;
}

void *arena_alloc(Arena *a, size_t bytes) {
  size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (need == 0) need = ARENA_ALIGN;
  ArenaBlock *b = a->head;
  if (!b || b->size - b->used < need) {
    ArenaBlock *nb = arena_block_new(need);
    if (b && need > ARENA_BLOCK_SIZE / 4) {
      /* a big allocation gets its own block behind the current one, so the current block's
       * free space is not wasted */
      nb->next = b->next;
      b->next = nb;
      nb->used = need;
      return nb->data;
    }
    nb->next = b;
    a->head = nb;
    b = nb;
  }
  void *p = b->data + b->used;
  b->used += need;
  return p; /* blocks come from calloc and are never reused, so p is already zero */
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_vprintf(Arena *a, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  return p;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *p = arena_vprintf(a, fmt, ap);
  va_end(ap);
  return p;
}
