/* codegen/jit_cache.cpp — the JIT's on-disk cache (see jit_cache.h): entries are a header
 * (magic, format, key, body size, body hash) and a body (the keys of the kernel entries an
 * object links against, then the object), written to a temporary file, fsync'ed and renamed
 * into place; the least recently used go when the directory exceeds its budget.
 */
#include "codegen/jit_cache.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/xxhash.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

static const char cache_magic[8] = {'L', 'A', 'T', 'H', 'E', 'J', 'I', 'T'};

/* $LATHE_CACHE_DIR, $XDG_CACHE_HOME/lathe or ~/.cache/lathe (models in its jit/, the kernel
 * library in jit-kernels/); false when the cache is off (LATHE_NO_CACHE set and not "0") or
 * there is no place for it. */
bool jit_cache_root(std::string &dir) {
  const char *off = getenv("LATHE_NO_CACHE");
  if (off && *off && strcmp(off, "0") != 0) return false;
  const char *env = getenv("LATHE_CACHE_DIR");
  if (env && *env)
    dir = env;
  else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/')
    dir = std::string(env) + "/lathe";
  else if ((env = getenv("HOME")) && *env)
    dir = std::string(env) + "/.cache/lathe";
  else
    return false;
  return true;
}

static void put_u32(std::string &s, uint32_t v) {
  s.append((const char *)&v, sizeof v);
}
static void put_u64(std::string &s, uint64_t v) {
  s.append((const char *)&v, sizeof v);
}

static void put_hash(uint8_t *out, llvm::StringRef bytes) {
  llvm::XXH128_hash_t h = llvm::xxh3_128bits(llvm::arrayRefFromStringRef(bytes));
  memcpy(out, &h.low64, 8);
  memcpy(out + 8, &h.high64, 8);
}

/* every input, each preceded by its length so that no two inputs can run together; what
 * says which compile: the model's text, or a kernel's IR */
CacheKey jit_cache_key(const std::vector<std::string> &args,
                       const std::vector<llvm::StringRef> &what) {
  std::string all;
  auto add = [&all](llvm::StringRef s) {
    put_u64(all, s.size());
    all.append(s.data(), s.size());
  };
  add(LATHE_JIT_CACHE_VERSION);
  add(LLVM_VERSION_STRING);
  add("codegen -O3, pic, small code model");
  for (const std::string &a : args)
    add(a);
  for (llvm::StringRef s : what)
    add(s);
  CacheKey k;
  put_hash(k.bytes, all);
  return k;
}

std::string jit_cache_path(const std::string &dir, const CacheKey &k) {
  static const char hex[] = "0123456789abcdef";
  std::string name;
  for (uint8_t b : k.bytes)
    name += hex[b >> 4], name += hex[b & 15];
  return dir + "/" + name + ".o";
}

/* The body of a valid entry for key k at path into *e. */
CacheRead jit_cache_read(const std::string &path, const CacheKey &k, CacheEntry *e) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file) return CacheRead::MISSING;
  llvm::StringRef s = (*file)->getBuffer();
  uint32_t format = 0, n = 0;
  uint64_t size = 0;
  if (s.size() < CACHE_HEADER || memcmp(s.data(), cache_magic, 8) != 0) return CacheRead::BAD;
  memcpy(&format, s.data() + 8, 4);
  memcpy(&size, s.data() + 16 + CACHE_KEY, 8);
  if (format != CACHE_FORMAT || memcmp(s.data() + 16, k.bytes, CACHE_KEY) != 0 ||
      size != s.size() - CACHE_HEADER)
    return CacheRead::BAD;
  llvm::StringRef body = s.substr(CACHE_HEADER);
  uint8_t digest[16];
  put_hash(digest, body);
  if (memcmp(digest, s.data() + 24 + CACHE_KEY, 16) != 0 || body.size() < 8) return CacheRead::BAD;
  memcpy(&n, body.data(), 4);
  if ((body.size() - 8) / CACHE_KEY < n) return CacheRead::BAD;
  e->deps.resize(n);
  for (uint32_t i = 0; i < n; i++)
    memcpy(e->deps[i].bytes, body.data() + 8 + i * CACHE_KEY, CACHE_KEY);
  e->obj = llvm::MemoryBuffer::getMemBufferCopy(body.substr(8 + n * CACHE_KEY), path);
  return CacheRead::OK;
}

static bool write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) return false;
    p += w, n -= (size_t)w;
  }
  return true;
}

/* Store deps and obj as the entry for k at path: temporary file, fsync, rename. false if it
 * failed. */
bool jit_cache_write(const std::string &dir, const std::string &path, const CacheKey &k,
                     const std::vector<CacheKey> &deps, const llvm::MemoryBuffer &obj) {
  if (llvm::sys::fs::create_directories(dir)) return false;
  std::string body;
  put_u32(body, (uint32_t)deps.size()), put_u32(body, 0);
  for (const CacheKey &d : deps)
    body.append((const char *)d.bytes, CACHE_KEY);
  body.append(obj.getBufferStart(), obj.getBufferSize());
  std::string head(cache_magic, 8);
  put_u32(head, CACHE_FORMAT), put_u32(head, 0);
  head.append((const char *)k.bytes, CACHE_KEY);
  put_u64(head, body.size());
  uint8_t digest[16];
  put_hash(digest, body);
  head.append((const char *)digest, 16);
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(&tmp[0]);
  if (fd < 0) return false;
  bool ok = write_all(fd, head.data(), head.size()) && write_all(fd, body.data(), body.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  ok = ok && rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) unlink(tmp.c_str());
  return ok;
}

/* The cache's budget in bytes: LATHE_CACHE_MAX_MB (a decimal number), default 256 MB. */
static double jit_cache_budget() {
  const char *env = getenv("LATHE_CACHE_MAX_MB");
  char *end = nullptr;
  double mb = env && *env ? strtod(env, &end) : 256;
  if (env && *env && (*end != '\0' || !(mb >= 0))) mb = 256; /* not a number: the default */
  return mb * 1024 * 1024;
}

/* After a store: while the entries of dirs (models and kernels together) exceed the budget,
 * remove the least recently used (oldest modification time: a hit touches its entry), never
 * one in `keep` (the entries this compile wrote or used); temporary files older than an hour
 * (left by a crash) go too. Errors are ignored: pruning is best effort, and a concurrent
 * compile may remove or replace files under us. */
void jit_cache_prune(const std::vector<std::string> &dirs, const std::set<std::string> &keep) {
  namespace fs = std::filesystem;
  struct Entry {
    fs::file_time_type time;
    uintmax_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  double total = 0;
  std::error_code ec;
  auto hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const std::string &dir : dirs)
    for (const auto &f : fs::directory_iterator(dir, ec)) {
      std::error_code e1, e2;
      Entry e = {f.last_write_time(e1), f.file_size(e2), f.path()};
      if (e1 || e2 || !f.is_regular_file(e1)) continue;
      bool kept = keep.count(e.path.string()) > 0;
      if (e.path.filename().string().find(".tmp.") != std::string::npos) {
        if (e.time < hour_ago) fs::remove(e.path, e1);
      } else if (e.path.extension() == ".o" && !kept) {
        entries.push_back(e), total += (double)e.size;
      } else if (kept) {
        total += (double)e.size;
      }
    }
  double budget = jit_cache_budget();
  std::sort(entries.begin(), entries.end(),
            [](const Entry &a, const Entry &b) { return a.time < b.time; });
  for (size_t i = 0; i < entries.size() && total > budget; i++)
    if (fs::remove(entries[i].path, ec)) total -= (double)entries[i].size;
}
