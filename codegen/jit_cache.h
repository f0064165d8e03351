/* codegen/jit_cache.h — the JIT's on-disk cache (C++, internal to codegen/jit*.cpp): the entry
 * format, keys, atomic writes and the size budget. What the entries are and where they live:
 * codegen/jit.cpp's head comment and docs/jit.md, "The object cache".
 */
#ifndef LATHE_CODEGEN_JIT_CACHE_H
#define LATHE_CODEGEN_JIT_CACHE_H

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/MemoryBuffer.h>

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

/* part of every key: bump it when this file changes how an object is made or stored */
#define LATHE_JIT_CACHE_VERSION "lathe 0.1.0, jit cache format 3"

/* entry layout: magic[8], format u32, reserved u32, key[16], body size u64, body hash[16];
 * body: n u32, reserved u32, the keys (16 bytes each) of the n kernel-library entries the
 * object links against, then the object */
enum : uint32_t { CACHE_FORMAT = 2 };
enum : size_t { CACHE_KEY = 16, CACHE_HEADER = 8 + 4 + 4 + CACHE_KEY + 8 + 16 };

struct CacheKey {
  uint8_t bytes[CACHE_KEY];
};

/* What an entry holds: the object and the kernel entries it needs. */
struct CacheEntry {
  std::vector<CacheKey> deps;
  std::unique_ptr<llvm::MemoryBuffer> obj;
};

enum class CacheRead { MISSING, BAD, OK };

/* $LATHE_CACHE_DIR, $XDG_CACHE_HOME/lathe or ~/.cache/lathe into dir; false when the cache is
 * off (LATHE_NO_CACHE set and not "0") or there is no place for it. */
bool jit_cache_root(std::string &dir);
/* the key of a compile: LATHE_JIT_CACHE_VERSION, LLVM's version, args, then what (the model's
 * text, a kernel's bitcode, the PCH's prelude), each input preceded by its length */
CacheKey jit_cache_key(const std::vector<std::string> &args,
                       const std::vector<llvm::StringRef> &what);
/* dir/<key in hex>.o */
std::string jit_cache_path(const std::string &dir, const CacheKey &k);
/* the body of a valid entry for key k at path into *e */
CacheRead jit_cache_read(const std::string &path, const CacheKey &k, CacheEntry *e);
/* store deps and obj as the entry for k at path (temporary file, fsync, rename); false if it
 * failed */
bool jit_cache_write(const std::string &dir, const std::string &path, const CacheKey &k,
                     const std::vector<CacheKey> &deps, const llvm::MemoryBuffer &obj);
/* remove the least recently used entries of dirs while they exceed LATHE_CACHE_MAX_MB, never
 * one in keep */
void jit_cache_prune(const std::vector<std::string> &dirs, const std::set<std::string> &keep);

#endif
