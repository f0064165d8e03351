/* codegen/jit.cpp — the LLVM/Clang JIT shim behind codegen/jit.h (built when LATHE_JIT is on).
 *
 * Compile: clang::EmitLLVMOnlyAction compiles the emitted C, held in memory buffers (the .c and
 * its header are remapped files), to an llvm::Module with what `clang -O3 -march=native` passes
 * cc1 (jit_cc1_args); a TargetMachine for the host at the aggressive (-O3) code-generation level
 * turns it into a relocatable object; llvm::orc::LLJIT links that object into this process and
 * resolves libm/libc from the process. Clang's resource headers and the system include dirs are
 * passed explicitly (cc1 has no driver to find them).
 *
 * Cache: the object is also stored on disk under a key that hashes everything that decides its
 * bytes — the C text and header, the model name, the cc1 arguments (which name the host CPU and
 * each of its features), the code-generation level, LLVM's version and lathe's cache version —
 * so a second compile of the same model on the same machine only reads and links the object
 * (the system headers the C includes are not hashed: clear the cache after changing them).
 * The directory is $LATHE_CACHE_DIR, else $XDG_CACHE_HOME/lathe, else ~/.cache/lathe (its jit/
 * subdirectory); LATHE_NO_CACHE=1 turns the cache off. An entry is a header (magic, format,
 * key, object size, object hash) and the object; one whose header, size or hash does not match
 * is ignored and replaced. Entries are written to a temporary file, fsync'ed and renamed into
 * place, so concurrent compiles and crashes never leave a partial entry under a valid name. After
 * each store the least recently used entries (a hit touches its entry) are removed while the
 * directory exceeds LATHE_CACHE_MAX_MB (default 256); `rm -rf ~/.cache/lathe/jit` is always safe.
 *
 * Invariant: no exception or abort escapes to C; every failure becomes a Diag error. A cache
 * that cannot be read or written is not an error: the model is compiled as without it.
 */
extern "C" {
#include "ir/diag.h"
}
#include "codegen/jit.h"

#include <clang/Basic/DiagnosticOptions.h>
#include <clang/CodeGen/CodeGenAction.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <clang/Lex/PreprocessorOptions.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/xxhash.h>
#include <llvm/TargetParser/Host.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

/* part of every key: bump it when this file changes how an object is made or stored */
#define LATHE_JIT_CACHE_VERSION "lathe 0.1.0, jit cache format 2"

struct JitModel {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  const lathe_model_info *info;
  JitCacheOutcome cache; /* what jit_compile did with the on-disk cache */
};

static void jit_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::sys::DynamicLibrary::LoadLibraryPermanently("libm.so.6"); /* expf, ... */
    /* the vectorized epilogue of every loop costs compile time for little run time here */
    const char *opts[] = {"lathe", "-enable-epilogue-vectorization=false"};
    llvm::cl::ParseCommandLineOptions(2, opts);
  });
}

/* ---- compiling C to an object ---- */

/* cc1 arguments: what `clang -std=c11 -O3 -march=native -fno-math-errno -c` passes, minus the
 * driver. -fgnuc-version makes cc1 define __GNUC__ (the driver always does): without it the
 * generated C's `#if defined(__GNUC__)` blocks — the vector-extension micro-kernels, their
 * target attributes — are compiled out and the scalar C99 twins run, 3-4x slower. -march=native
 * is the host CPU's name plus each feature the host reports (a VM may mask some that the name
 * implies). Loops are not unrolled (compile time; gcc -O3 does not unroll either). */
static std::vector<std::string> jit_cc1_args(const std::string &c_name) {
  std::string res = LATHE_CLANG_RESOURCE_DIR;
  std::vector<std::string> a = {"-triple", llvm::sys::getProcessTriple(), "-target-cpu",
                                llvm::sys::getHostCPUName().str()};
  for (const auto &f : llvm::sys::getHostCPUFeatures()) {
    a.push_back("-target-feature");
    a.push_back((f.getValue() ? "+" : "-") + f.getKey().str());
  }
  std::vector<std::string> rest = {"-O3",
                                   "-vectorize-loops",
                                   "-vectorize-slp",
                                   "-fno-unroll-loops",
                                   "-ffp-contract=on",
                                   "-fgnuc-version=4.2.1",
                                   "-mrelocation-model",
                                   "pic",
                                   "-pic-level",
                                   "2",
                                   "-discard-value-names",
                                   "-std=c11",
                                   "-resource-dir",
                                   res,
                                   "-internal-isystem",
                                   res + "/include",
                                   "-internal-externc-isystem",
                                   "/usr/include/" LATHE_MULTIARCH,
                                   "-internal-externc-isystem",
                                   "/usr/include",
                                   "-w",
                                   "-x",
                                   "c",
                                   c_name};
  a.insert(a.end(), rest.begin(), rest.end());
  return a;
}

/* Compile c_text to an LLVM module; compiler messages are appended to errors. */
static std::unique_ptr<llvm::Module> jit_compile_module(const char *c_text, const char *h_name,
                                                        const char *h_text,
                                                        const std::vector<std::string> &args,
                                                        llvm::LLVMContext *ctx,
                                                        std::string &errors) {
  llvm::raw_string_ostream os(errors);
  clang::CompilerInstance ci;
  ci.createDiagnostics(new clang::TextDiagnosticPrinter(os, new clang::DiagnosticOptions()));
  /* "N warnings generated." goes to the verbose stream, stderr by default: keep it quiet */
  ci.setVerboseOutputStream(std::make_unique<llvm::raw_null_ostream>());
  std::vector<const char *> argv;
  for (const std::string &a : args)
    argv.push_back(a.c_str());
  if (!clang::CompilerInvocation::CreateFromArgs(ci.getInvocation(), argv, ci.getDiagnostics()))
    return nullptr;
  const std::string &c_name = args.back();
  clang::PreprocessorOptions &pp = ci.getInvocation().getPreprocessorOpts();
  pp.addRemappedFile(c_name, llvm::MemoryBuffer::getMemBufferCopy(c_text, c_name).release());
  std::string h_path = std::string("/lathe-jit/") + h_name;
  pp.addRemappedFile(h_path, llvm::MemoryBuffer::getMemBufferCopy(h_text, h_path).release());
  pp.RetainRemappedFileBuffers = false;
  clang::EmitLLVMOnlyAction action(ctx);
  if (!ci.ExecuteAction(action)) return nullptr;
  return action.takeModule();
}

/* The host machine: PIC in the small code model, as LLJIT's JITLink layer wants its objects,
 * generated at the level clang -O3 uses. The same builder configures the LLJIT. */
static llvm::Expected<llvm::orc::JITTargetMachineBuilder> jit_machine() {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  jtmb->setCodeModel(llvm::CodeModel::Small);
  return jtmb;
}

/* C text -> relocatable object in memory; NULL with the messages in errors. */
static std::unique_ptr<llvm::MemoryBuffer>
jit_compile_object(const char *c_text, const char *h_name, const char *h_text,
                   const std::vector<std::string> &args, std::string &errors) {
  llvm::LLVMContext ctx;
  std::unique_ptr<llvm::Module> mod =
      jit_compile_module(c_text, h_name, h_text, args, &ctx, errors);
  if (!mod) return nullptr;
  auto jtmb = jit_machine();
  auto tm = jtmb ? jtmb->createTargetMachine()
                 : llvm::Expected<std::unique_ptr<llvm::TargetMachine>>(jtmb.takeError());
  if (!tm) {
    errors += llvm::toString(tm.takeError());
    return nullptr;
  }
  llvm::orc::SimpleCompiler compile(**tm);
  auto obj = compile(*mod);
  if (!obj) {
    errors += llvm::toString(obj.takeError());
    return nullptr;
  }
  return std::move(*obj);
}

/* ---- the on-disk cache ---- */

/* entry layout: magic[8], format u32, reserved u32, key[16], object size u64, object hash[16] */
static const char cache_magic[8] = {'L', 'A', 'T', 'H', 'E', 'J', 'I', 'T'};
enum : uint32_t { CACHE_FORMAT = 1 };
enum : size_t { CACHE_KEY = 16, CACHE_HEADER = 8 + 4 + 4 + CACHE_KEY + 8 + 16 };

struct CacheKey {
  uint8_t bytes[CACHE_KEY];
};

/* $LATHE_CACHE_DIR/jit, $XDG_CACHE_HOME/lathe/jit or ~/.cache/lathe/jit; false when the cache
 * is off (LATHE_NO_CACHE set and not "0") or there is no place for it. */
static bool jit_cache_dir(std::string &dir) {
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
  dir += "/jit";
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

/* every input, each preceded by its length so that no two inputs can run together */
static CacheKey jit_cache_key(const std::vector<std::string> &args, const char *c_text,
                              const char *h_name, const char *h_text, const char *model) {
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
  add(model), add(h_name), add(h_text), add(c_text);
  CacheKey k;
  put_hash(k.bytes, all);
  return k;
}

static std::string jit_cache_path(const std::string &dir, const CacheKey &k) {
  static const char hex[] = "0123456789abcdef";
  std::string name;
  for (uint8_t b : k.bytes)
    name += hex[b >> 4], name += hex[b & 15];
  return dir + "/" + name + ".o";
}

enum class CacheRead { MISSING, BAD, OK };

/* The object of a valid entry for key k at path into *obj. */
static CacheRead jit_cache_read(const std::string &path, const CacheKey &k,
                                std::unique_ptr<llvm::MemoryBuffer> *obj) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file) return CacheRead::MISSING;
  llvm::StringRef s = (*file)->getBuffer();
  uint32_t format = 0;
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
  if (memcmp(digest, s.data() + 24 + CACHE_KEY, 16) != 0) return CacheRead::BAD;
  *obj = llvm::MemoryBuffer::getMemBufferCopy(body, path);
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

/* Store obj as the entry for k at path: temporary file, fsync, rename. false if it failed. */
static bool jit_cache_write(const std::string &dir, const std::string &path, const CacheKey &k,
                            const llvm::MemoryBuffer &obj) {
  if (llvm::sys::fs::create_directories(dir)) return false;
  std::string head(cache_magic, 8);
  put_u32(head, CACHE_FORMAT), put_u32(head, 0);
  head.append((const char *)k.bytes, CACHE_KEY);
  put_u64(head, obj.getBufferSize());
  uint8_t digest[16];
  put_hash(digest, obj.getBuffer());
  head.append((const char *)digest, 16);
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(&tmp[0]);
  if (fd < 0) return false;
  bool ok = write_all(fd, head.data(), head.size()) &&
            write_all(fd, obj.getBufferStart(), obj.getBufferSize()) && fsync(fd) == 0;
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

/* After a store: while the entries exceed the budget, remove the least recently used (oldest
 * modification time: a hit touches its entry), never `keep`, the entry just written; temporary
 * files older than an hour (left by a crash) go too. Errors are ignored: pruning is best effort,
 * and a concurrent compile may remove or replace files under us. */
static void jit_cache_prune(const std::string &dir, const std::string &keep) {
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
  for (const auto &f : fs::directory_iterator(dir, ec)) {
    std::error_code e1, e2;
    Entry e = {f.last_write_time(e1), f.file_size(e2), f.path()};
    if (e1 || e2 || !f.is_regular_file(e1)) continue;
    if (e.path.filename().string().find(".tmp.") != std::string::npos) {
      if (e.time < hour_ago) fs::remove(e.path, e1);
    } else if (e.path.extension() == ".o" && e.path.string() != keep) {
      entries.push_back(e), total += (double)e.size;
    } else if (e.path.string() == keep) {
      total += (double)e.size;
    }
  }
  double budget = jit_cache_budget();
  std::sort(entries.begin(), entries.end(),
            [](const Entry &a, const Entry &b) { return a.time < b.time; });
  for (size_t i = 0; i < entries.size() && total > budget; i++)
    if (fs::remove(entries[i].path, ec)) total -= (double)entries[i].size;
}

/* ---- the CPU model of <model>_cpu_supported() ---- */

#if defined(__x86_64__)
/* __builtin_cpu_init/__builtin_cpu_supports read libgcc's (or compiler-rt's, same layout)
 * __cpu_model. lathe has it, but an executable does not export it to the JIT, and clang
 * addresses it PC-relative (dso_local), which cannot reach the host's copy from JIT memory.
 * So the JIT'd object gets its own copy (this text is compiled after the model's C), filled
 * from the host's after linking (jit_fill_cpu_model). Only features[0] is read by the checks
 * lathe emits (avx2, fma, avx512*); __cpu_features2 (later features) stays zero. */
static const char jit_cpu_model_c[] =
    "\n/* lathe JIT: the CPU model that __builtin_cpu_supports reads, filled in by the host */\n"
    "struct { unsigned int vendor, type, subtype, features[1]; } __cpu_model;\n"
    "unsigned int __cpu_features2[3];\n"
    "int __cpu_indicator_init(void) { return 0; }\n";
struct JitCpuModel {
  unsigned int vendor, type, subtype, features[1];
};
extern "C" JitCpuModel __cpu_model; /* libgcc's struct __processor_model */

static void jit_fill_cpu_model(llvm::orc::LLJIT &jit) {
  auto addr = jit.lookup("__cpu_model");
  if (!addr) return llvm::consumeError(addr.takeError());
  __builtin_cpu_init();
  memcpy(addr->toPtr<void *>(), &__cpu_model, sizeof __cpu_model);
}
#else
static const char jit_cpu_model_c[] = "";
static void jit_fill_cpu_model(llvm::orc::LLJIT &) {}
#endif

/* ---- linking ---- */

/* Link obj into a new LLJIT and look up `<model>_info`; NULL with an error in d. */
static JitModel *jit_link(std::unique_ptr<llvm::MemoryBuffer> obj, const char *model_name,
                          Diag *d) {
  auto jtmb = jit_machine();
  auto jit = jtmb ? llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create()
                  : llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>>(jtmb.takeError());
  llvm::Error err = jit ? (*jit)->addObjectFile(std::move(obj)) : jit.takeError();
  std::string sym = std::string(model_name) + "_info";
  llvm::Expected<llvm::orc::ExecutorAddr> addr =
      err ? llvm::Expected<llvm::orc::ExecutorAddr>(std::move(err)) : (*jit)->lookup(sym);
  if (!addr) {
    diag_error(d, SrcLoc{}, "JIT: cannot link '%s': %s", sym.c_str(),
               llvm::toString(addr.takeError()).c_str());
    return nullptr;
  }
  jit_fill_cpu_model(**jit);
  JitModel *j =
      new JitModel{std::move(*jit), addr->toPtr<const lathe_model_info *>(), JIT_CACHE_OFF};
  if (j->info->version != LATHE_MODEL_INFO_VERSION) {
    diag_error(d, SrcLoc{}, "JIT: '%s' has descriptor version %d, expected %d", sym.c_str(),
               j->info->version, LATHE_MODEL_INFO_VERSION);
    delete j;
    return nullptr;
  }
  return j;
}

/* A valid-looking entry that does not link is treated like a corrupt one. */
static JitModel *jit_link_cached(std::unique_ptr<llvm::MemoryBuffer> obj, const char *model_name) {
  Diag quiet;
  diag_init(&quiet);
  JitModel *j = jit_link(std::move(obj), model_name, &quiet);
  diag_fini(&quiet);
  return j;
}

extern "C" bool jit_available(void) {
  return true;
}

extern "C" JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                                 const char *model_name, Diag *d) {
  jit_init_once();
  std::vector<std::string> args = jit_cc1_args(std::string("/lathe-jit/") + model_name + ".c");
  std::string dir, path;
  CacheKey key{};
  JitCacheOutcome outcome = JIT_CACHE_OFF;
  if (jit_cache_dir(dir)) {
    key = jit_cache_key(args, c_text, h_name, h_text, model_name);
    path = jit_cache_path(dir, key);
    std::unique_ptr<llvm::MemoryBuffer> cached;
    CacheRead r = jit_cache_read(path, key, &cached);
    JitModel *j = r == CacheRead::OK ? jit_link_cached(std::move(cached), model_name) : nullptr;
    if (j) {
      utimensat(AT_FDCWD, path.c_str(), nullptr, 0); /* recently used: pruned last */
      return j->cache = JIT_CACHE_HIT, j;
    }
    outcome = r == CacheRead::MISSING ? JIT_CACHE_STORED : JIT_CACHE_REPLACED;
  }
  std::string errors;
  std::string source = std::string(c_text) + jit_cpu_model_c;
  std::unique_ptr<llvm::MemoryBuffer> obj =
      jit_compile_object(source.c_str(), h_name, h_text, args, errors);
  if (!obj) {
    diag_error(d, SrcLoc{}, "JIT: clang failed on the generated C of '%s':\n%s", model_name,
               errors.c_str());
    return nullptr;
  }
  /* link a copy, and store the object only once it has linked */
  JitModel *j =
      jit_link(llvm::MemoryBuffer::getMemBufferCopy(obj->getBuffer(), "lathe-jit"), model_name, d);
  if (!j) return nullptr;
  if (outcome != JIT_CACHE_OFF && !jit_cache_write(dir, path, key, *obj))
    outcome = JIT_CACHE_UNSTORED;
  else if (outcome != JIT_CACHE_OFF)
    jit_cache_prune(dir, path);
  j->cache = outcome;
  return j;
}

extern "C" JitCacheOutcome jit_cache_outcome(const JitModel *j) {
  return j->cache;
}

extern "C" const lathe_model_info *jit_info(const JitModel *j) {
  return j->info;
}

extern "C" void *jit_symbol(const JitModel *j, const char *name) {
  llvm::Expected<llvm::orc::ExecutorAddr> addr = j->jit->lookup(name);
  if (!addr) {
    llvm::consumeError(addr.takeError());
    return nullptr;
  }
  return addr->toPtr<void *>();
}

extern "C" void jit_free(JitModel *j) {
  delete j;
}
