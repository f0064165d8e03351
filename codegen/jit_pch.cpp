/* codegen/jit_pch.cpp — the JIT's precompiled header (see jit_pch.h). Clang parses <math.h>,
 * <stddef.h>, <stdint.h> and <string.h> for every model's C; a PCH made once with the same cc1
 * arguments holds them parsed, and each compile includes it first (-include-pch, from memory):
 * the generated C's own #includes of them are then skipped by their include guards. The PCH is
 * an entry of the JIT's cache (jit-pch/, the usual header, size and hash, so a corrupt or
 * truncated file is never handed to Clang), keyed by the cc1 arguments, the prelude, LLVM's and
 * lathe's versions (codegen/jit.cpp). The headers come first instead of after the model's
 * header; that header only includes <stddef.h> and <stdint.h> itself and defines no macro a
 * standard header reads, so the C means the same.
 */
#include "codegen/jit_pch.h"

#include <clang/Basic/DiagnosticOptions.h>
#include <clang/Frontend/CompilerInstance.h>
#include <clang/Frontend/CompilerInvocation.h>
#include <clang/Frontend/FrontendActions.h>
#include <clang/Frontend/TextDiagnosticPrinter.h>
#include <clang/Lex/PreprocessorOptions.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/VirtualFileSystem.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

const char jit_pch_prelude[] =
    "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n";
static const char prelude_name[] = "/lathe-jit/lathe-prelude.h";
static const char pch_name[] = "/lathe-jit/lathe-prelude.pch";

static void remap_prelude(clang::CompilerInstance &ci) {
  ci.getInvocation().getPreprocessorOpts().addRemappedFile(
      prelude_name, llvm::MemoryBuffer::getMemBufferCopy(jit_pch_prelude, prelude_name).release());
}

/* Run Clang's GeneratePCHAction on the prelude with args, writing the PCH to out. */
static bool generate(const std::vector<std::string> &args, const std::string &out) {
  std::vector<std::string> a(args.begin(), args.end() - 3);
  for (const char *s : {"-emit-pch", "-x", "c-header", prelude_name, "-o"})
    a.push_back(s);
  a.push_back(out);
  std::vector<const char *> argv;
  for (const std::string &s : a)
    argv.push_back(s.c_str());
  clang::CompilerInstance ci;
  ci.createDiagnostics(
      new clang::TextDiagnosticPrinter(llvm::nulls(), new clang::DiagnosticOptions()));
  ci.setVerboseOutputStream(std::make_unique<llvm::raw_null_ostream>());
  if (!clang::CompilerInvocation::CreateFromArgs(ci.getInvocation(), argv, ci.getDiagnostics()))
    return false;
  remap_prelude(ci);
  ci.getInvocation().getPreprocessorOpts().RetainRemappedFileBuffers = false;
  clang::GeneratePCHAction action;
  return ci.ExecuteAction(action);
}

std::unique_ptr<llvm::MemoryBuffer> jit_pch_get(const std::vector<std::string> &args,
                                                const std::string &dir, const std::string &path,
                                                const CacheKey &key, bool *made) {
  CacheEntry e;
  *made = false;
  if (jit_cache_read(path, key, &e) == CacheRead::OK && e.deps.empty()) {
    utimensat(AT_FDCWD, path.c_str(), nullptr, 0); /* recently used: pruned last */
    return std::move(e.obj);
  }
  if (llvm::sys::fs::create_directories(dir)) return nullptr;
  std::string tmp = dir + "/pch.tmp.XXXXXX"; /* pruned after an hour if a crash leaves it */
  int fd = mkstemp(&tmp[0]);
  if (fd < 0) return nullptr;
  close(fd);
  std::unique_ptr<llvm::MemoryBuffer> pch;
  if (generate(args, tmp)) {
    auto file = llvm::MemoryBuffer::getFile(tmp, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
    if (file) pch = std::move(*file);
  }
  unlink(tmp.c_str());
  if (pch) jit_cache_write(dir, path, key, {}, *pch), *made = true;
  return pch;
}

void jit_pch_use(clang::CompilerInstance &ci, const llvm::MemoryBuffer &pch) {
  auto mem = llvm::makeIntrusiveRefCnt<llvm::vfs::InMemoryFileSystem>();
  mem->addFile(pch_name, 0, llvm::MemoryBuffer::getMemBuffer(pch.getBuffer(), pch_name, false));
  auto fs = llvm::makeIntrusiveRefCnt<llvm::vfs::OverlayFileSystem>(llvm::vfs::getRealFileSystem());
  fs->pushOverlay(mem);
  ci.createFileManager(fs);
  ci.getInvocation().getPreprocessorOpts().ImplicitPCHInclude = pch_name;
  ci.getInvocation().getHeaderSearchOpts().ModulesValidateSystemHeaders = true;
  remap_prelude(ci);
}
