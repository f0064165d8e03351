/* codegen/jit.cpp — the LLVM/Clang JIT shim behind codegen/jit.h (built when LATHE_JIT is on).
 *
 * Compile: clang::EmitLLVMOnlyAction compiles the emitted C, held in memory buffers (the .c and
 * its header are remapped files), to an unoptimized llvm::Module with what
 * `clang -O3 -march=native` passes cc1 (jit_cc1_args, plus -disable-llvm-passes). The kernel
 * library (the GEMM/convolution/transpose routines the C marks noinline) is split out of it, a
 * module per kernel, each compiled once and cached on its own (see "the kernel library" below);
 * the model's initializer is marked optnone; then clang::EmitBackendOutput runs Clang's -O3
 * pipeline and code generation (aggressive level, host CPU and features) on each kernel's
 * module and the cheaper entry pipeline (jit_entry_pipeline) on the model's, giving relocatable
 * objects that llvm::orc::LLJIT links into this process, resolving libm/libc from the process.
 * Clang's resource headers and the system include dirs are passed explicitly (cc1 has no driver to
 * find them); the standard headers come from a precompiled header kept in the cache
 * (jit_pch.cpp). jit_phase_times says where a compile's CPU time went.
 *
 * Tiers: a compile that misses the cache links the model's module compiled at -O0 (the
 * baseline, its functions stubs that call through slots) and returns; a background thread
 * compiles the module with the entry pipeline, stores it and swaps it in by setting the slots
 * ("the tiered compile" below; docs/jit.md). LATHE_JIT_TIERED=0: one tier.
 *
 * Cache: the objects are also stored on disk (the model's in jit/, naming the kernel entries it
 * links against; each kernel's in jit-kernels/, keyed by its bitcode and the cc1 arguments) under a
 * key that hashes everything that decides its bytes — the C text and header, the model name, the
 * cc1 arguments (which name the host CPU and each of its features), the code-generation level,
 * LLVM's version and lathe's cache version — so a second compile of the same model on the same
 * machine only reads and links the object (the system headers the C includes are not hashed: clear
 * the cache after changing them). The directory is $LATHE_CACHE_DIR, else $XDG_CACHE_HOME/lathe,
 * else ~/.cache/lathe (its jit/ subdirectory); LATHE_NO_CACHE=1 turns the cache off. An entry is a
 * header (magic, format, key, object size, object hash) and the object; one whose header, size or
 * hash does not match is ignored and replaced. Entries are written to a temporary file, fsync'ed
 * and renamed into place, so concurrent compiles and crashes never leave a partial entry under a
 * valid name. After each store the least recently used entries (a hit touches its entry) are
 * removed while the directory exceeds LATHE_CACHE_MAX_MB (default 256); `rm -rf ~/.cache/lathe/jit`
 * is always safe. The cache's format, reads, writes and budget: jit_cache.cpp.
 *
 * Invariant: no exception or abort escapes to C; every failure becomes a Diag error. A cache
 * that cannot be read or written is not an error: the model is compiled as without it.
 */
extern "C" {
#include "ir/diag.h"
}
#include "codegen/jit.h"
#include "codegen/jit_cache.h"
#include "codegen/jit_pch.h"

#include <clang/Basic/DiagnosticOptions.h>
#include <clang/CodeGen/BackendUtil.h>
#include <clang/CodeGen/CodeGenAction.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <clang/Lex/PreprocessorOptions.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/OptBisect.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/VirtualFileSystem.h>
#include <llvm/Support/xxhash.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct JitTier;

struct JitModel {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  const lathe_model_info *info;
  JitCacheOutcome cache; /* what jit_compile did with the on-disk cache */
  int kernels_compiled;  /* kernel-library objects compiled by this jit_compile */
  int kernels_cached;    /* and those taken from the cache */
  JitPhaseTimes times;   /* where jit_compile spent its time */
  JitTier *tier;         /* a tiered compile's optimized tier (NULL: the code is final) */
};

/* CPU time of the calling thread, ms: a busy machine inflates it far less than wall time */
static double jit_cpu_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void jit_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
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
                                   "-disable-llvm-passes", /* run by jit_codegen, per module */
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

/* The pipeline of the model's own module — its entry points (`<model>_forward`, `_train`, ...),
 * descriptors and wrappers; the kernel library always gets -O3. FAST (the default): Clang's -O1
 * pipeline with the loop vectorizer, without the SLP vectorizer, code generation at -O1 without
 * loop strength reduction — about a fifth less compile time for the MLP's and the CNN's train
 * steps and no measurable run time (docs/jit.md, "The entry pipeline"). O3: the -O3 pipeline
 * and code generation, as for the kernels (LATHE_JIT_ENTRY_OPT=3). Part of the model's cache
 * key. */
enum class JitEntryPipeline { FAST, O3 };

static JitEntryPipeline jit_entry_pipeline() {
  const char *env = getenv("LATHE_JIT_ENTRY_OPT");
  return env && strcmp(env, "3") == 0 ? JitEntryPipeline::O3 : JitEntryPipeline::FAST;
}

static const char *jit_entry_pipeline_name(JitEntryPipeline p) {
  return p == JitEntryPipeline::O3 ? "entries -O3"
                                   : "entries -O1, loop vectorizer, no SLP, codegen -O1, no LSR";
}

/* Loop strength reduction is a pass of code generation that no cc1 option turns off (only
 * LLVM's process-wide -disable-lsr, which would reach the kernels and other threads' compiles
 * too); a gate on the model's LLVMContext skips it, and the freeze canonicalization that only
 * prepares it, for the model's module alone. On the fused elementwise loops of the entries it
 * was a fifth of code generation and bought no measurable run time. */
struct JitSkipLsr : llvm::OptPassGate {
  bool isEnabled() const override {
    return true;
  }
  bool shouldRunPass(const llvm::StringRef pass, llvm::StringRef) override {
    return pass != "Loop Strength Reduction" && pass != "Canonicalize Freeze Instructions in Loops";
  }
};

/* A parsed translation unit: Clang's instance (its options drive the -O3 pipeline and code
 * generation later) and the unoptimized module (cc1 ran with -disable-llvm-passes). */
struct JitFrontend {
  std::string messages; /* what Clang printed */
  llvm::raw_string_ostream os{messages};
  clang::CompilerInstance ci;
  JitSkipLsr skip_lsr; /* set on ctx for the model's module; declared first: outlives ctx */
  std::unique_ptr<llvm::LLVMContext> ctx = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> mod;
};

/* Compile c_text to an unoptimized LLVM module, with the precompiled header pch unless it is
 * NULL; NULL with Clang's messages in errors. */
static std::unique_ptr<JitFrontend> jit_parse(const char *c_text, const char *h_name,
                                              const char *h_text,
                                              const std::vector<std::string> &args,
                                              const llvm::MemoryBuffer *pch, std::string &errors) {
  auto fe = std::make_unique<JitFrontend>();
  clang::CompilerInstance &ci = fe->ci;
  ci.createDiagnostics(new clang::TextDiagnosticPrinter(fe->os, new clang::DiagnosticOptions()));
  /* "N warnings generated." goes to the verbose stream, stderr by default: keep it quiet */
  ci.setVerboseOutputStream(std::make_unique<llvm::raw_null_ostream>());
  std::vector<const char *> argv;
  for (const std::string &a : args)
    argv.push_back(a.c_str());
  bool ok =
      clang::CompilerInvocation::CreateFromArgs(ci.getInvocation(), argv, ci.getDiagnostics());
  if (ok) {
    const std::string &c_name = args.back();
    clang::PreprocessorOptions &pp = ci.getInvocation().getPreprocessorOpts();
    pp.addRemappedFile(c_name, llvm::MemoryBuffer::getMemBufferCopy(c_text, c_name).release());
    std::string h_path = std::string("/lathe-jit/") + h_name;
    pp.addRemappedFile(h_path, llvm::MemoryBuffer::getMemBufferCopy(h_text, h_path).release());
    if (pch) jit_pch_use(ci, *pch);
    pp.RetainRemappedFileBuffers = false;
    clang::EmitLLVMOnlyAction action(fe->ctx.get());
    ok = ci.ExecuteAction(action) && (fe->mod = action.takeModule()) != nullptr;
  }
  if (ok) return fe;
  errors += fe->messages;
  return nullptr;
}

/* One run of Clang's backend on m: its IR pipeline (unless fe's options disable the LLVM
 * passes), then what `action` asks for (an object into buf, or nothing). */
static void jit_backend(JitFrontend &fe, llvm::Module &m, clang::BackendAction action,
                        llvm::SmallVector<char, 0> &buf) {
  clang::CompilerInstance &ci = fe.ci;
  clang::EmitBackendOutput(ci.getDiagnostics(), ci.getHeaderSearchOpts(), ci.getCodeGenOpts(),
                           ci.getTargetOpts(), ci.getLangOpts(), m.getDataLayoutStr(), &m, action,
                           llvm::vfs::getRealFileSystem(),
                           std::make_unique<llvm::raw_svector_ostream>(buf));
}

/* Clang's -O3 pipeline and code generation (what cc1 would have run without
 * -disable-llvm-passes, at CodeGenOptLevel::Aggressive for the host CPU and features) on m,
 * which belongs to fe's context; the relocatable object, or NULL with the messages in errors.
 * With ms (the model's module), in two runs of the backend — the IR pipeline alone, then code
 * generation with the LLVM passes disabled: the same passes in the same order, so the same
 * object — and the CPU time of each added to ms[0] and ms[1]. */
static std::unique_ptr<llvm::MemoryBuffer> jit_codegen(JitFrontend &fe, llvm::Module &m,
                                                       std::string &errors, double *ms = nullptr) {
  clang::CompilerInstance &ci = fe.ci;
  ci.getCodeGenOpts().DisableLLVMPasses = false;
  llvm::SmallVector<char, 0> buf;
  if (ms) {
    double t0 = jit_cpu_ms();
    jit_backend(fe, m, clang::Backend_EmitNothing, buf);
    ci.getCodeGenOpts().DisableLLVMPasses = true;
    double t1 = jit_cpu_ms();
    if (!ci.getDiagnostics().hasErrorOccurred()) jit_backend(fe, m, clang::Backend_EmitObj, buf);
    ms[0] += t1 - t0, ms[1] += jit_cpu_ms() - t1;
  } else {
    jit_backend(fe, m, clang::Backend_EmitObj, buf);
  }
  if (ci.getDiagnostics().hasErrorOccurred() || buf.empty()) {
    errors += fe.messages.empty() ? std::string("code generation failed") : fe.messages;
    return nullptr;
  }
  return llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(buf.data(), buf.size()), "lathe-jit");
}

/* The host machine for the LLJIT that links the objects: PIC in the small code model, as
 * LLJIT's JITLink layer wants its objects, at the level clang -O3 uses. */
static llvm::Expected<llvm::orc::JITTargetMachineBuilder> jit_machine() {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  jtmb->setCodeModel(llvm::CodeModel::Small);
  return jtmb;
}

/* ---- the kernel library ---- */

/* The kernel library of a model: the shared routines the generated C marks noinline (GEMM,
 * packing, Winograd, convolution tiles, transposes: static functions named lathe_*). Each is
 * split out of the model's unoptimized module into a module of its own — with copies of the
 * static helpers and constant tables it uses, the other kernels it calls only declared — so
 * that it is optimized and code-generated once per distinct IR (its own cache entry in
 * jit-kernels/), however many models use it; the model's module keeps a declaration. The
 * kernels are called, never inlined, either way, so the split changes no code that runs. */
static bool jit_is_kernel(const llvm::Function &f) {
  return !f.isDeclaration() && f.hasLocalLinkage() && f.getName().starts_with("lathe_") &&
         f.hasFnAttribute(llvm::Attribute::NoInline);
}

/* the globals that v refers to, through constant expressions and initializers */
static void jit_refs(const llvm::User *v, std::vector<const llvm::GlobalValue *> &out,
                     std::set<const llvm::Constant *> &seen) {
  for (const llvm::Use &u : v->operands()) {
    const llvm::Value *op = u.get();
    if (const auto *gv = llvm::dyn_cast<llvm::GlobalValue>(op))
      out.push_back(gv);
    else if (const auto *c = llvm::dyn_cast<llvm::Constant>(op))
      if (seen.insert(c).second) jit_refs(c, out, seen);
  }
}

/* What root's module must define besides root: the static helpers and constants it reaches
 * (not other kernels, which it declares). false when it reaches something a copy cannot
 * stand for (a mutable or external global, a model function): the kernel stays in the model. */
static bool jit_kernel_closure(const llvm::Function *root,
                               const std::set<const llvm::Function *> &kernels,
                               std::set<const llvm::GlobalValue *> &closure) {
  std::vector<const llvm::GlobalValue *> work = {root}, refs;
  std::set<const llvm::Constant *> seen;
  while (!work.empty()) {
    const llvm::GlobalValue *gv = work.back();
    work.pop_back();
    refs.clear();
    if (const auto *f = llvm::dyn_cast<llvm::Function>(gv))
      for (const llvm::BasicBlock &bb : *f)
        for (const llvm::Instruction &i : bb)
          jit_refs(&i, refs, seen);
    else
      jit_refs(llvm::cast<llvm::GlobalVariable>(gv), refs, seen);
    for (const llvm::GlobalValue *r : refs) {
      const auto *f = llvm::dyn_cast<llvm::Function>(r);
      const auto *var = llvm::dyn_cast<llvm::GlobalVariable>(r);
      if ((f && f->isDeclaration()) || (f && f != root && kernels.count(f))) continue;
      if (!r->hasLocalLinkage() || (!f && !(var && var->isConstant() && var->hasInitializer())))
        return false;
      if (closure.insert(r).second) work.push_back(r);
    }
  }
  return true;
}

/* The kernels of m that can be split out, each with its closure. */
static std::map<llvm::Function *, std::set<const llvm::GlobalValue *>>
jit_find_kernels(llvm::Module &m) {
  std::set<const llvm::Function *> kernels;
  for (llvm::Function &f : m)
    if (jit_is_kernel(f)) kernels.insert(&f);
  std::map<llvm::Function *, std::set<const llvm::GlobalValue *>> out;
  for (bool changed = true; changed;) { /* a kernel that stays may make its callers stay */
    changed = false;
    out.clear();
    for (llvm::Function &f : m) {
      if (!kernels.count(&f)) continue;
      std::set<const llvm::GlobalValue *> closure;
      if (jit_kernel_closure(&f, kernels, closure))
        out[&f] = std::move(closure);
      else
        kernels.erase(&f), changed = true;
    }
  }
  return out;
}

/* Erase the unused declarations and unused internal definitions of m (but not keep). */
static void jit_drop_unused(llvm::Module &m, const llvm::GlobalValue *keep) {
  for (bool again = true; again;) {
    again = false;
    std::vector<llvm::GlobalValue *> dead;
    for (llvm::Function &f : m)
      if (&f != keep && f.use_empty() && (f.isDeclaration() || f.hasLocalLinkage()))
        dead.push_back(&f);
    for (llvm::GlobalVariable &g : m.globals())
      if (g.use_empty() && (g.isDeclaration() || g.hasLocalLinkage())) dead.push_back(&g);
    for (llvm::GlobalValue *g : dead)
      g->eraseFromParent();
    again = !dead.empty();
  }
}

/* root's own module: root (external), its closure (internal copies), the rest declared;
 * functions and globals in name order, so that its text — the cache key — does not depend on
 * the order the model's C happened to use them in. */
static std::unique_ptr<llvm::Module>
jit_kernel_module(const llvm::Module &m, llvm::Function *root,
                  const std::set<const llvm::GlobalValue *> &closure) {
  llvm::ValueToValueMapTy vmap;
  std::unique_ptr<llvm::Module> k = llvm::CloneModule(
      m, vmap, [&](const llvm::GlobalValue *gv) { return gv == root || closure.count(gv) > 0; });
  auto *kr = llvm::cast<llvm::Function>(vmap[root]);
  kr->setLinkage(llvm::GlobalValue::ExternalLinkage);
  jit_drop_unused(*k, kr);
  std::vector<llvm::Function *> fs;
  for (llvm::Function &f : *k) {
    fs.push_back(&f);
    if (f.isDeclaration() && !f.isIntrinsic()) f.setDSOLocal(false); /* another object's */
  }
  std::sort(fs.begin(), fs.end(),
            [](llvm::Function *a, llvm::Function *b) { return a->getName() < b->getName(); });
  for (llvm::Function *f : fs)
    f->removeFromParent(), k->getFunctionList().push_back(f);
  std::vector<llvm::GlobalVariable *> gs;
  for (llvm::GlobalVariable &g : k->globals())
    gs.push_back(&g);
  std::sort(gs.begin(), gs.end(), [](llvm::GlobalVariable *a, llvm::GlobalVariable *b) {
    return a->getName() < b->getName();
  });
  for (llvm::GlobalVariable *g : gs)
    g->removeFromParent(), k->insertGlobalVariable(g);
  k->setModuleIdentifier("lathe-kernel");
  k->setSourceFileName("lathe-kernel");
  return k;
}

/* What a kernel's cache key hashes: its module (jit_kernel_module) as bitcode — a complete
 * serialization of the IR, deterministic for a given module, written in about 40% of the time
 * of the IR text the key hashed before (the CNN's split: 8.1 -> 3.4 ms). */
static std::string jit_kernel_bitcode(const llvm::Module &k) {
  std::string bc;
  llvm::raw_string_ostream os(bc);
  llvm::WriteBitcodeToFile(k, os);
  return os.str();
}

/* The model's module once its kernels are split out: each a declaration (external, resolved
 * by the linker from the kernel's object). */
static void jit_declare_kernels(llvm::Module &m, const std::vector<llvm::Function *> &kernels) {
  for (llvm::Function *f : kernels) {
    f->deleteBody();
    f->setLinkage(llvm::GlobalValue::ExternalLinkage);
    f->setDSOLocal(false);
  }
  jit_drop_unused(m, nullptr);
}

/* The initializer (`<model>_init`, run once per model) is compiled unoptimized: optnone
 * gives it the -O0 IR pipeline and fast instruction selection. Its results are the same —
 * LLVM's optimizations do not change IEEE results, and a*b+c contracted by Clang
 * (llvm.fmuladd) becomes an FMA at -O0 as at -O3 — and it cost a tenth of the compile. */
static void jit_cold_init(llvm::Module &m, const char *model_name) {
  llvm::Function *f = m.getFunction(std::string(model_name) + "_init");
  if (!f || f->isDeclaration()) return;
  f->removeFnAttr(llvm::Attribute::AlwaysInline);
  f->addFnAttr(llvm::Attribute::NoInline);
  f->addFnAttr(llvm::Attribute::OptimizeNone);
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

static std::unique_ptr<llvm::MemoryBuffer> copy_of(const llvm::MemoryBuffer &b) {
  return llvm::MemoryBuffer::getMemBufferCopy(b.getBuffer(), b.getBufferIdentifier());
}

/* Link the model's object and its kernels' into a new LLJIT and look up `<model>_info`; NULL
 * with an error in d. */
static JitModel *jit_link(const llvm::MemoryBuffer &obj,
                          const std::vector<const llvm::MemoryBuffer *> &kernels,
                          const char *model_name, Diag *d) {
  auto jtmb = jit_machine();
  auto jit = jtmb ? llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create()
                  : llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>>(jtmb.takeError());
  llvm::Error err = jit ? (*jit)->addObjectFile(copy_of(obj)) : jit.takeError();
  for (size_t i = 0; i < kernels.size() && !err; i++)
    err = (*jit)->addObjectFile(copy_of(*kernels[i]));
  std::string sym = std::string(model_name) + "_info";
  llvm::Expected<llvm::orc::ExecutorAddr> addr =
      err ? llvm::Expected<llvm::orc::ExecutorAddr>(std::move(err)) : (*jit)->lookup(sym);
  if (!addr) {
    diag_error(d, SrcLoc{}, "JIT: cannot link '%s': %s", sym.c_str(),
               llvm::toString(addr.takeError()).c_str());
    return nullptr;
  }
  jit_fill_cpu_model(**jit);
  JitModel *j = new JitModel{
      std::move(*jit), addr->toPtr<const lathe_model_info *>(), JIT_CACHE_OFF, 0, 0, {}, nullptr};
  if (j->info->version != LATHE_MODEL_INFO_VERSION) {
    diag_error(d, SrcLoc{}, "JIT: '%s' has descriptor version %d, expected %d", sym.c_str(),
               j->info->version, LATHE_MODEL_INFO_VERSION);
    delete j;
    return nullptr;
  }
  return j;
}

/* ---- compiling a model ---- */

/* Where the cache is: model entries in models, kernel-library entries in kernels, the
 * precompiled header (jit_pch.h) in pch_dir, its entry at pch under pch_key. */
struct JitCache {
  bool on = false;
  std::string models, kernels, pch_dir, pch;
  CacheKey pch_key{};
};

/* The model's entry (key at path) and the kernel entries it names, linked; NULL when any of
 * them is missing or unusable, or they do not link (*r: MISSING when the model's entry is). */
static JitModel *jit_load(const JitCache &c, const std::string &path, const CacheKey &key,
                          const char *model_name, CacheRead *r) {
  CacheEntry e;
  *r = jit_cache_read(path, key, &e);
  if (*r != CacheRead::OK) return nullptr;
  *r = CacheRead::BAD;
  std::vector<CacheEntry> ks(e.deps.size());
  std::vector<const llvm::MemoryBuffer *> objs;
  for (size_t i = 0; i < e.deps.size(); i++) {
    if (jit_cache_read(jit_cache_path(c.kernels, e.deps[i]), e.deps[i], &ks[i]) != CacheRead::OK ||
        !ks[i].deps.empty())
      return nullptr;
    objs.push_back(ks[i].obj.get());
  }
  Diag quiet;
  diag_init(&quiet);
  JitModel *j = jit_link(*e.obj, objs, model_name, &quiet);
  diag_fini(&quiet);
  if (!j) return nullptr;
  *r = CacheRead::OK;
  utimensat(AT_FDCWD, path.c_str(), nullptr, 0); /* recently used: pruned last */
  for (const CacheKey &k : e.deps)
    utimensat(AT_FDCWD, jit_cache_path(c.kernels, k).c_str(), nullptr, 0);
  j->kernels_cached = (int)e.deps.size();
  return j;
}

/* One kernel of the library: its cache key and entry, its object, whether it was compiled. */
struct JitKernel {
  CacheKey key{};
  std::string path;
  std::unique_ptr<llvm::MemoryBuffer> obj;
  bool compiled = false;
};

/* Split the kernel library out of fe's module (which then only declares it) and get each
 * kernel's object: from the cache when it holds one, else compiled. kargs: the cc1 arguments
 * without the file name (the kernels' key does not depend on the model). */
static bool jit_kernel_objects(JitFrontend &fe, const std::vector<std::string> &kargs,
                               const JitCache &c, std::vector<JitKernel> &out, JitPhaseTimes &t,
                               std::string &errors) {
  double t0 = jit_cpu_ms(), compiling = 0;
  auto found = jit_find_kernels(*fe.mod);
  std::vector<llvm::Function *> roots;
  for (llvm::Function &f : *fe.mod)
    if (found.count(&f)) roots.push_back(&f);
  for (llvm::Function *root : roots) {
    std::unique_ptr<llvm::Module> km = jit_kernel_module(*fe.mod, root, found[root]);
    JitKernel k;
    if (c.on) {
      k.key = jit_cache_key(kargs, {"kernel bitcode", jit_kernel_bitcode(*km)});
      k.path = jit_cache_path(c.kernels, k.key);
      CacheEntry e;
      if (jit_cache_read(k.path, k.key, &e) == CacheRead::OK && e.deps.empty())
        k.obj = std::move(e.obj);
    }
    if (!k.obj) {
      double t1 = jit_cpu_ms();
      k.obj = jit_codegen(fe, *km, errors);
      k.compiled = true;
      compiling += jit_cpu_ms() - t1;
    }
    if (!k.obj) return false;
    out.push_back(std::move(k));
  }
  jit_declare_kernels(*fe.mod, roots);
  t.kernels += compiling;
  t.split += jit_cpu_ms() - t0 - compiling;
  return true;
}

/* The FAST entry pipeline (jit_entry_pipeline) for what fe compiles next: the model's module,
 * after its kernels. */
static void jit_fast_entries(JitFrontend &fe) {
  clang::CodeGenOptions &o = fe.ci.getCodeGenOpts();
  o.OptimizationLevel = 1; /* the IR pipeline and CodeGenOptLevel::Less */
  o.VectorizeLoop = true;  /* as -O3: the fused elementwise loops are where entries spend time */
  o.VectorizeSLP = false;
  fe.ctx->setOptPassGate(fe.skip_lsr);
}

/* jit_parse with the cache's precompiled header (jit_pch.h), made first when the cache has
 * none. A PCH that does not load (a system header it was made from has changed) fails the
 * parse: then the C is parsed without it and, when that works, the PCH's entry is removed, so
 * the next compile makes it again. Without the cache, no PCH. */
static std::unique_ptr<JitFrontend> jit_parse_pch(const char *c_text, const char *h_name,
                                                  const char *h_text,
                                                  const std::vector<std::string> &args,
                                                  const JitCache &c, std::string &errors) {
  bool made = false;
  std::unique_ptr<llvm::MemoryBuffer> pch =
      c.on ? jit_pch_get(args, c.pch_dir, c.pch, c.pch_key, &made) : nullptr;
  std::string ignored;
  std::unique_ptr<JitFrontend> fe;
  if (pch && (fe = jit_parse(c_text, h_name, h_text, args, pch.get(), ignored))) return fe;
  fe = jit_parse(c_text, h_name, h_text, args, nullptr, errors);
  if (fe && pch) unlink(c.pch.c_str());
  return fe;
}

/* Parse the model's C (c_text already has the CPU model appended) and get its kernel library's
 * objects (jit_kernel_objects): the model's own module is then what is left to compile (its
 * initializer marked optnone). NULL with the messages in errors. */
static std::unique_ptr<JitFrontend> jit_front(const char *c_text, const char *h_name,
                                              const char *h_text, const char *model_name,
                                              const std::vector<std::string> &args,
                                              const JitCache &c, std::vector<JitKernel> &kernels,
                                              JitPhaseTimes &t, std::string &errors) {
  double t0 = jit_cpu_ms();
  std::unique_ptr<JitFrontend> fe = jit_parse_pch(c_text, h_name, h_text, args, c, errors);
  t.parse += jit_cpu_ms() - t0;
  if (!fe) return nullptr;
  std::vector<std::string> kargs(args.begin(), args.end() - 1);
  if (!jit_kernel_objects(*fe, kargs, c, kernels, t, errors)) return nullptr;
  jit_cold_init(*fe->mod, model_name);
  return fe;
}

/* The model's own module (fe's, after jit_front) compiled with the entry pipeline: its object,
 * or NULL with the messages in errors. */
static std::unique_ptr<llvm::MemoryBuffer> jit_build(JitFrontend &fe, JitEntryPipeline entries,
                                                     JitPhaseTimes &t, std::string &errors) {
  if (entries == JitEntryPipeline::FAST) jit_fast_entries(fe);
  double ms[2] = {0, 0};
  std::unique_ptr<llvm::MemoryBuffer> obj = jit_codegen(fe, *fe.mod, errors, ms);
  t.pipeline += ms[0], t.codegen += ms[1];
  return obj;
}

/* Link what jit_build made (copies: the objects are stored only once they have linked), the
 * time into t.load; NULL with an error in d, also when there is no object (Clang's errors). */
static JitModel *jit_link_built(const llvm::MemoryBuffer *obj,
                                const std::vector<JitKernel> &kernels, const char *model_name,
                                JitPhaseTimes &t, const std::string &errors, Diag *d) {
  if (!obj) {
    diag_error(d, SrcLoc{}, "JIT: clang failed on the generated C of '%s':\n%s", model_name,
               errors.c_str());
    return nullptr;
  }
  std::vector<const llvm::MemoryBuffer *> objs;
  for (const JitKernel &k : kernels)
    objs.push_back(k.obj.get());
  double t0 = jit_cpu_ms();
  JitModel *j = jit_link(*obj, objs, model_name, d);
  t.load += jit_cpu_ms() - t0;
  for (const JitKernel &k : kernels)
    if (j) (k.compiled ? j->kernels_compiled : j->kernels_cached)++;
  return j;
}

/* Store the model's entry (after its new kernels') and prune; the outcome of the compile. */
static JitCacheOutcome jit_store(const JitCache &c, const std::string &path, const CacheKey &key,
                                 const llvm::MemoryBuffer &obj,
                                 const std::vector<JitKernel> &kernels, JitCacheOutcome outcome) {
  std::vector<CacheKey> deps;
  std::set<std::string> keep = {path, c.pch};
  bool ok = true;
  for (const JitKernel &k : kernels) {
    if (k.compiled) ok = ok && jit_cache_write(c.kernels, k.path, k.key, {}, *k.obj);
    deps.push_back(k.key);
    keep.insert(k.path);
  }
  ok = ok && jit_cache_write(c.models, path, key, deps, obj);
  if (!ok) return JIT_CACHE_UNSTORED;
  jit_cache_prune({c.models, c.kernels, c.pch_dir}, keep);
  return outcome;
}

/* ---- the tiered compile ---- */

/* A tiered compile (the default; LATHE_JIT_TIERED=0 turns it off) returns the model as soon as
 * its own module is compiled at -O0 with fast instruction selection — the baseline tier, whose
 * entry points run the cached or -O3 kernels but the model's fused loops unoptimized — and
 * compiles the optimized tier (the entry pipeline, the same object a compile without tiers
 * makes and caches) on a background thread. Each externally visible function F of the baseline
 * (the entry points, the initializer, cpu_supported) is a stub that loads the address of the
 * code to run from a slot, `__lathe_tier_slot.F` (an acquire load per call), and calls it; the
 * slot starts at the baseline body (renamed F.lathe_baseline) and is set, once, to the
 * optimized F when that is linked. The descriptor and every pointer reached from it stay the
 * baseline's: they are valid until jit_free whichever tier runs. The optimized code has its
 * own LLJIT (its own copy of the descriptor, never handed out) and lives until jit_free. */
static bool jit_tiered() {
  const char *env = getenv("LATHE_JIT_TIERED");
  return !(env && strcmp(env, "0") == 0);
}

static const char jit_slot_prefix[] = "__lathe_tier_slot.";

/* Whether m can run in two tiers: the two objects each have their own copy of every global,
 * so a model with mutable globals (none of the C lathe emits today, apart from the CPU model
 * filled in per object) is compiled in one tier. */
static bool jit_tierable(const llvm::Module &m) {
  for (const llvm::GlobalVariable &g : m.globals())
    if (!g.isDeclaration() && !g.isConstant() && g.getName() != "__cpu_model" &&
        g.getName() != "__cpu_features2")
      return false;
  return true;
}

/* Make every externally visible function of m (the baseline tier's module) a stub that calls
 * through its slot; returns their names. */
static std::vector<std::string> jit_tier_stubs(llvm::Module &m) {
  std::vector<llvm::Function *> fs;
  for (llvm::Function &f : m)
    if (!f.isDeclaration() && !f.hasLocalLinkage() && !f.isVarArg() &&
        f.getName() != "__cpu_indicator_init")
      fs.push_back(&f);
  llvm::LLVMContext &ctx = m.getContext();
  llvm::PointerType *ptr = llvm::PointerType::getUnqual(ctx);
  std::vector<std::string> names;
  for (llvm::Function *f : fs) {
    llvm::Function *stub =
        llvm::Function::Create(f->getFunctionType(), f->getLinkage(), f->getAddressSpace(), "", &m);
    stub->copyAttributesFrom(f);
    f->replaceAllUsesWith(stub); /* the descriptor, the __call wrappers */
    stub->takeName(f);
    names.push_back(stub->getName().str());
    f->setName(names.back() + ".lathe_baseline");
    f->setLinkage(llvm::GlobalValue::InternalLinkage);
    auto *slot = new llvm::GlobalVariable(m, ptr, false, llvm::GlobalValue::ExternalLinkage, f,
                                          jit_slot_prefix + names.back());
    slot->setAlignment(llvm::Align(8));
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "", stub));
    llvm::LoadInst *to = b.CreateAlignedLoad(ptr, slot, llvm::Align(8));
    to->setAtomic(llvm::AtomicOrdering::Acquire);
    std::vector<llvm::Value *> args;
    std::vector<llvm::AttributeSet> arg_attrs;
    for (llvm::Argument &a : stub->args()) {
      args.push_back(&a);
      arg_attrs.push_back(f->getAttributes().getParamAttrs(a.getArgNo()));
    }
    llvm::CallInst *call = b.CreateCall(f->getFunctionType(), to, args);
    call->setCallingConv(f->getCallingConv());
    call->setAttributes(llvm::AttributeList::get(ctx, llvm::AttributeSet(),
                                                 f->getAttributes().getRetAttrs(), arg_attrs));
    if (call->getType()->isVoidTy())
      b.CreateRetVoid();
    else
      b.CreateRet(call);
  }
  return names;
}

/* The baseline tier's object: m at -O0 (Clang's -O0 pipeline, fast instruction selection);
 * fe's code-generation options are left as they were. */
static std::unique_ptr<llvm::MemoryBuffer> jit_codegen_baseline(JitFrontend &fe, llvm::Module &m,
                                                                std::string &errors) {
  clang::CodeGenOptions &o = fe.ci.getCodeGenOpts();
  unsigned level = o.OptimizationLevel;
  bool loop = o.VectorizeLoop, slp = o.VectorizeSLP;
  o.OptimizationLevel = 0;
  o.VectorizeLoop = o.VectorizeSLP = false;
  std::unique_ptr<llvm::MemoryBuffer> obj = jit_codegen(fe, m, errors);
  o.OptimizationLevel = level;
  o.VectorizeLoop = loop, o.VectorizeSLP = slp;
  return obj;
}

/* The background compile of the optimized tier and what it reports. Everything it reads is its
 * own (moved here by jit_compile) until done; mu guards done and what it reports. */
struct JitTier {
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;      /* the background compile has finished (swapped in or failed) */
  bool optimized = false; /* the optimized code was swapped in */
  std::string errors;     /* why not, when it failed (the baseline then stays) */
  JitCacheOutcome cache = JIT_CACHE_OFF; /* what the store did */
  JitPhaseTimes times = {};              /* the background thread's CPU time, per phase */
  JitModel *opt = nullptr;               /* the optimized code (its LLJIT), once linked */
  /* the background compile's inputs */
  std::unique_ptr<JitFrontend> fe; /* the parsed C, kernels split out: the model's module */
  std::vector<JitKernel> kernels;  /* their objects (already linked into the baseline) */
  JitCache c;
  std::string path, model_name;
  CacheKey key{};
  JitCacheOutcome outcome = JIT_CACHE_OFF; /* STORED or REPLACED, when the cache is on */
  JitEntryPipeline entries = JitEntryPipeline::FAST;
  std::vector<std::pair<std::string, void **>> slots; /* function name, its baseline slot */
  bool released = false; /* jit_free or exit waits for it: jit_tier_hold no longer holds it */
  pid_t pid = 0;         /* the process whose thread it is: a fork's child has no such thread */
};

/* jit_tier_hold: while held, a background compile waits before it starts, unless its model is
 * being freed or the process exits (released). */
static std::mutex jit_hold_mu;
static std::condition_variable jit_hold_cv;
static bool jit_hold = false;

extern "C" void jit_tier_hold(bool hold) {
  std::lock_guard<std::mutex> lock(jit_hold_mu);
  jit_hold = hold;
  jit_hold_cv.notify_all();
}

static void jit_tier_release(JitTier *t) {
  std::lock_guard<std::mutex> lock(jit_hold_mu);
  t->released = true;
  jit_hold_cv.notify_all();
}

/* The background thread: the optimized tier compiled, linked, stored and swapped in. */
static void jit_tier_run(JitTier *t) {
  {
    std::unique_lock<std::mutex> lock(jit_hold_mu);
    jit_hold_cv.wait(lock, [t] { return !jit_hold || t->released; });
  }
  double t0 = jit_cpu_ms();
  std::string errors;
  JitFrontend &fe = *t->fe;
  if (t->entries == JitEntryPipeline::FAST) jit_fast_entries(fe);
  double ms[2] = {0, 0};
  std::unique_ptr<llvm::MemoryBuffer> obj = jit_codegen(fe, *fe.mod, errors, ms);
  t->times.pipeline = ms[0], t->times.codegen = ms[1];
  JitModel *opt = nullptr;
  if (obj) {
    Diag d;
    diag_init(&d);
    opt = jit_link_built(obj.get(), t->kernels, t->model_name.c_str(), t->times, errors, &d);
    if (!opt) errors += diag_text(&d);
    diag_fini(&d);
  }
  std::vector<void *> to;
  for (size_t i = 0; opt && i < t->slots.size(); i++) {
    to.push_back(jit_symbol(opt, t->slots[i].first.c_str()));
    if (!to.back()) errors += "no optimized " + t->slots[i].first, delete opt, opt = nullptr;
  }
  JitCacheOutcome cache = t->c.on ? JIT_CACHE_UNSTORED : JIT_CACHE_OFF;
  double t1 = jit_cpu_ms();
  if (opt && t->c.on) cache = jit_store(t->c, t->path, t->key, *obj, t->kernels, t->outcome);
  t->times.store = jit_cpu_ms() - t1;
  for (size_t i = 0; opt && i < t->slots.size(); i++)
    __atomic_store_n(t->slots[i].second, to[i], __ATOMIC_RELEASE);
  t->fe.reset(); /* the parsed C and its context: freed on this thread, as they were used */
  t->kernels.clear();
  std::lock_guard<std::mutex> lock(t->mu);
  t->times.background = jit_cpu_ms() - t0;
  t->opt = opt, t->optimized = opt != nullptr, t->cache = cache, t->errors = errors;
  t->done = true;
  t->cv.notify_all();
}

/* The tiers whose background thread has not been joined: process exit joins them (atexit, so
 * before LLVM's static objects are destroyed), so that an optimized object is always finished
 * and stored, never cut off mid-compile by exit(). */
static std::mutex jit_tiers_mu;
static std::set<JitTier *> jit_tiers_live;

/* Join t's thread; in a fork's child, which only has a copy of the thread's handle, forget it
 * instead (the child keeps the tier it had when it was forked). */
static void jit_tier_end(JitTier *t) {
  if (!t->thread.joinable()) return;
  if (getpid() == t->pid)
    t->thread.join();
  else
    t->thread.detach();
}

static void jit_tier_join(JitTier *t) {
  jit_tier_release(t);
  std::lock_guard<std::mutex> lock(jit_tiers_mu);
  jit_tier_end(t);
  jit_tiers_live.erase(t);
}

static void jit_tiers_join_all() {
  std::lock_guard<std::mutex> lock(jit_tiers_mu);
  for (JitTier *t : jit_tiers_live)
    jit_tier_release(t);
  for (JitTier *t : jit_tiers_live)
    jit_tier_end(t);
  jit_tiers_live.clear();
}

static void jit_tier_start(JitTier *t) {
  static std::once_flag once;
  std::call_once(once, [] { atexit(jit_tiers_join_all); });
  std::lock_guard<std::mutex> lock(jit_tiers_mu);
  jit_tiers_live.insert(t);
  t->pid = getpid();
  t->thread = std::thread(jit_tier_run, t);
}

static void jit_tier_wait(JitTier *t) {
  if (getpid() != t->pid) return; /* a fork's child: no thread to wait for */
  std::unique_lock<std::mutex> lock(t->mu);
  t->cv.wait(lock, [t] { return t->done; });
}

/* A tiered compile of fe's module (its kernels split out into kernels): the baseline linked and
 * returned, the optimized tier started on a background thread that then owns fe and kernels.
 * NULL with *fallback set when m cannot be tiered (fe and kernels untouched: compile it in one
 * tier), NULL with the error in d when the baseline fails. */
static JitModel *jit_compile_tiered(std::unique_ptr<JitFrontend> &fe,
                                    std::vector<JitKernel> &kernels, const char *model_name,
                                    const JitCache &c, const std::string &path, const CacheKey &key,
                                    JitCacheOutcome outcome, JitEntryPipeline entries,
                                    JitPhaseTimes &t, bool *fallback, Diag *d) {
  *fallback = !jit_tierable(*fe->mod);
  if (*fallback) return nullptr;
  double t0 = jit_cpu_ms();
  std::unique_ptr<llvm::Module> base = llvm::CloneModule(*fe->mod);
  std::vector<std::string> names = jit_tier_stubs(*base);
  std::string errors;
  std::unique_ptr<llvm::MemoryBuffer> obj = jit_codegen_baseline(*fe, *base, errors);
  base.reset();
  t.baseline = jit_cpu_ms() - t0;
  JitModel *j = jit_link_built(obj.get(), kernels, model_name, t, errors, d);
  if (!j) return nullptr;
  auto *tier = new JitTier;
  for (const std::string &n : names) {
    void **slot = (void **)jit_symbol(j, (jit_slot_prefix + n).c_str());
    if (!slot) {
      diag_error(d, SrcLoc{}, "JIT: the baseline of '%s' has no slot for %s", model_name,
                 n.c_str());
      delete tier;
      jit_free(j);
      return nullptr;
    }
    tier->slots.emplace_back(n, slot);
  }
  tier->fe = std::move(fe);
  tier->kernels = std::move(kernels);
  tier->c = c, tier->path = path, tier->key = key, tier->outcome = outcome;
  tier->model_name = model_name;
  tier->entries = entries;
  j->tier = tier;
  jit_tier_start(tier);
  return j;
}

/* Where the cache's entries go (c.on: false when the cache is off); the PCH's key. */
static bool jit_cache_places(const std::vector<std::string> &args, JitCache &c) {
  std::string root;
  if (!jit_cache_root(root)) return false;
  c.models = root + "/jit";
  c.kernels = root + "/jit-kernels";
  c.pch_dir = root + "/jit-pch";
  std::vector<std::string> kargs(args.begin(), args.end() - 1);
  c.pch_key = jit_cache_key(kargs, {"pch", jit_pch_prelude});
  c.pch = jit_cache_path(c.pch_dir, c.pch_key);
  return true;
}

extern "C" bool jit_available(void) {
  return true;
}

extern "C" JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                                 const char *model_name, Diag *d) {
  jit_init_once();
  std::vector<std::string> args = jit_cc1_args(std::string("/lathe-jit/") + model_name + ".c");
  JitEntryPipeline entries = jit_entry_pipeline();
  JitCache c;
  std::string path;
  CacheKey key{};
  JitCacheOutcome outcome = JIT_CACHE_OFF;
  JitPhaseTimes t = {};
  double t0 = jit_cpu_ms();
  if ((c.on = jit_cache_places(args, c))) {
    key =
        jit_cache_key(args, {model_name, h_name, h_text, c_text, jit_entry_pipeline_name(entries)});
    path = jit_cache_path(c.models, key);
    CacheRead r;
    if (JitModel *j = jit_load(c, path, key, model_name, &r)) {
      j->times.load = jit_cpu_ms() - t0;
      return j->cache = JIT_CACHE_HIT, j;
    }
    outcome = r == CacheRead::MISSING ? JIT_CACHE_STORED : JIT_CACHE_REPLACED;
  }
  t.load = jit_cpu_ms() - t0; /* the key, and the entry looked for */
  std::string errors;
  std::string source = std::string(c_text) + jit_cpu_model_c;
  std::vector<JitKernel> kernels;
  std::unique_ptr<JitFrontend> fe =
      jit_front(source.c_str(), h_name, h_text, model_name, args, c, kernels, t, errors);
  bool one_tier = !fe || !jit_tiered();
  if (!one_tier) {
    JitModel *j = jit_compile_tiered(fe, kernels, model_name, c, path, key, outcome, entries, t,
                                     &one_tier, d);
    if (j) j->times = t;
    if (!one_tier) return j;
  }
  std::unique_ptr<llvm::MemoryBuffer> obj = fe ? jit_build(*fe, entries, t, errors) : nullptr;
  JitModel *j = jit_link_built(obj.get(), kernels, model_name, t, errors, d);
  if (!j) return nullptr;
  double t1 = jit_cpu_ms();
  j->cache = c.on ? jit_store(c, path, key, *obj, kernels, outcome) : JIT_CACHE_OFF;
  t.store = jit_cpu_ms() - t1;
  j->times = t;
  return j;
}

extern "C" bool jit_wait_optimized(JitModel *j) {
  if (!j->tier) return true;
  jit_tier_wait(j->tier);
  return j->tier->optimized;
}

extern "C" bool jit_optimized(const JitModel *j) {
  if (!j->tier) return true;
  std::lock_guard<std::mutex> lock(j->tier->mu);
  return j->tier->optimized;
}

extern "C" void jit_kernel_counts(const JitModel *j, int *compiled, int *cached) {
  *compiled = j->kernels_compiled;
  *cached = j->kernels_cached;
}

extern "C" void jit_phase_times(const JitModel *j, JitPhaseTimes *t) {
  *t = j->times;
  if (!j->tier) return;
  jit_tier_wait(j->tier);
  const JitPhaseTimes &b = j->tier->times;
  t->pipeline = b.pipeline, t->codegen = b.codegen, t->store = b.store;
  t->background = b.background;
}

extern "C" JitCacheOutcome jit_cache_outcome(const JitModel *j) {
  if (!j->tier) return j->cache;
  jit_tier_wait(j->tier);
  return j->tier->cache;
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
  if (!j) return;
  if (JitTier *t = j->tier) {
    jit_tier_join(t); /* finished and stored, never cut off (docs/jit.md, "The tiered compile") */
    delete t->opt;
    delete t;
  }
  delete j;
}
