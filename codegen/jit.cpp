/* codegen/jit.cpp — the LLVM/Clang JIT shim behind codegen/jit.h (built when LATHE_JIT is on).
 *
 * clang::EmitLLVMOnlyAction compiles the emitted C, held in memory buffers (the .c and its
 * header are remapped files), to an llvm::Module at -O3 for the host CPU; llvm::orc::LLJIT
 * links it into this process and resolves libm/libc from the process. Clang's resource headers
 * and the system include dirs are passed explicitly (cc1 has no driver to find them).
 * Invariant: no exception or abort escapes to C; every failure becomes a Diag error.
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
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>

#include <mutex>
#include <string>
#include <vector>

struct JitModel {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  const lathe_model_info *info;
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

/* cc1 arguments: what `clang -O3 -march=native -c` passes, minus the driver */
static std::vector<std::string> jit_cc1_args(const std::string &c_name) {
  std::string res = LATHE_CLANG_RESOURCE_DIR;
  std::string cpu = llvm::sys::getHostCPUName().str();
  return {"-triple", llvm::sys::getProcessTriple(), "-target-cpu", cpu, "-O3",
          "-vectorize-loops", "-vectorize-slp", "-fno-unroll-loops", "-ffp-contract=on", "-std=c11",
          "-resource-dir", res, "-internal-isystem", res + "/include",
          "-internal-externc-isystem", "/usr/include/" LATHE_MULTIARCH,
          "-internal-externc-isystem", "/usr/include", "-w", "-x", "c", c_name};
}

/* Compile c_text to an LLVM module; compiler messages are appended to errors. */
static std::unique_ptr<llvm::Module> jit_compile_module(const char *c_text, const char *h_name,
                                                        const char *h_text, const char *model,
                                                        llvm::LLVMContext *ctx,
                                                        std::string &errors) {
  llvm::raw_string_ostream os(errors);
  clang::CompilerInstance ci;
  ci.createDiagnostics(new clang::TextDiagnosticPrinter(os, new clang::DiagnosticOptions()));
  /* "N warnings generated." goes to the verbose stream, stderr by default: keep it quiet */
  ci.setVerboseOutputStream(std::make_unique<llvm::raw_null_ostream>());
  std::string c_name = std::string("/lathe-jit/") + model + ".c";
  std::vector<std::string> args = jit_cc1_args(c_name);
  std::vector<const char *> argv;
  for (const std::string &a : args) argv.push_back(a.c_str());
  if (!clang::CompilerInvocation::CreateFromArgs(ci.getInvocation(), argv, ci.getDiagnostics()))
    return nullptr;
  clang::PreprocessorOptions &pp = ci.getInvocation().getPreprocessorOpts();
  pp.addRemappedFile(c_name, llvm::MemoryBuffer::getMemBufferCopy(c_text, c_name).release());
  std::string h_path = std::string("/lathe-jit/") + h_name;
  pp.addRemappedFile(h_path, llvm::MemoryBuffer::getMemBufferCopy(h_text, h_path).release());
  pp.RetainRemappedFileBuffers = false;
  clang::EmitLLVMOnlyAction action(ctx);
  if (!ci.ExecuteAction(action)) return nullptr;
  return action.takeModule();
}

extern "C" bool jit_available(void) { return true; }

extern "C" JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                                 const char *model_name, Diag *d) {
  jit_init_once();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  std::string errors;
  std::unique_ptr<llvm::Module> mod = jit_compile_module(c_text, h_name, h_text, model_name,
                                                          ctx.get(), errors);
  if (!mod) {
    diag_error(d, SrcLoc{}, "JIT: clang failed on the generated C of '%s':\n%s", model_name,
               errors.c_str());
    return nullptr;
  }
  auto jit = llvm::orc::LLJITBuilder().create();
  llvm::Error err = jit ? (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(mod),
                                                                          std::move(ctx)))
                        : jit.takeError();
  std::string sym = std::string(model_name) + "_info";
  llvm::Expected<llvm::orc::ExecutorAddr> addr =
      err ? llvm::Expected<llvm::orc::ExecutorAddr>(std::move(err)) : (*jit)->lookup(sym);
  if (!addr) {
    diag_error(d, SrcLoc{}, "JIT: cannot link '%s': %s", sym.c_str(),
               llvm::toString(addr.takeError()).c_str());
    return nullptr;
  }
  JitModel *j = new JitModel{std::move(*jit), addr->toPtr<const lathe_model_info *>()};
  if (j->info->version != LATHE_MODEL_INFO_VERSION) {
    diag_error(d, SrcLoc{}, "JIT: '%s' has descriptor version %d, expected %d", sym.c_str(),
               j->info->version, LATHE_MODEL_INFO_VERSION);
    delete j;
    return nullptr;
  }
  return j;
}

extern "C" const lathe_model_info *jit_info(const JitModel *j) { return j->info; }

extern "C" void *jit_symbol(const JitModel *j, const char *name) {
  llvm::Expected<llvm::orc::ExecutorAddr> addr = j->jit->lookup(name);
  if (!addr) {
    llvm::consumeError(addr.takeError());
    return nullptr;
  }
  return addr->toPtr<void *>();
}

extern "C" void jit_free(JitModel *j) { delete j; }
