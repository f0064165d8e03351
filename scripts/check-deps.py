#!/usr/bin/python3
"""scripts/check-deps.py — the file-level dependency rules of lathe's layers.

    scripts/check-deps.py [SOURCE_DIR]      (default: the checkout this script is in)

Reads every `#include "..."` of the C/C++ sources under the stage directories and fails (exit
status 1, one line per violation saying which file includes what and what the rule is) when

  1. a file includes a file of a layer it may not depend on. The layers call one way:
       ir/  <-  passes/  <-  codegen/  <-  runtime/  <-  the driver layer  <-  cli/, python/
     frontend/ (the .lathe language) stands on ir/ only, and import/ (ONNX) on ir/, frontend/
     and runtime/. runtime/ is the host side only (files, datasets, metrics, trainer,
     loader): it includes nothing of frontend/, passes/ or codegen/. Public headers
     (include/lathe/*.h) and system headers are allowed everywhere.
  2. the modules of ir/, passes/, codegen/ or runtime/ include each other in a cycle. A module
     is a .c file and the .h of the same name (codegen/gemm.c + codegen/gemm.h): a header
     stands for the functions its .c defines, so `lower.c includes gemm.h` and `gemm.c
     includes lower.h` is the cycle lower <-> gemm. A header with no .c of its own
     (codegen/conv.h, passes/autodiff_internal.h) is a module with only its own includes,
     except a hook header generated from ops.def (HOOK_HEADERS below): it stands for every
     file that defines one of its hooks, as seen from the op table that calls them.

The exceptions are listed below, each with its reason; an exception that no longer matches
anything is reported too (so a fixed one is deleted, not left to hide a new problem).

Exit status: 0 when the tree keeps the rules, 1 on a violation, 2 on a usage error.
"""
import os
import re
import sys

# Which stage directories a file of each directory may include (its own always).
ALLOWED = {
    "ir": {"ir"},
    "frontend": {"ir"},
    "passes": {"ir"},
    "codegen": {"ir", "passes"},
    "runtime": {"ir"},
    "driver": {"ir", "frontend", "passes", "codegen", "runtime", "import"},
    "import": {"ir", "frontend", "runtime"},
    "cli": {"ir", "frontend", "passes", "codegen", "runtime", "driver", "import"},
    "python": {"ir", "frontend", "passes", "codegen", "runtime", "driver", "import"},
}
# The directories whose module graph must have no cycle.
ACYCLIC = ("ir", "passes", "codegen", "runtime", "driver")

# Layer exceptions: (including module, included directory) -> why it is allowed. None today:
# the compile driver (the public API and the model loader) lives in driver/, above runtime.
LAYER_EXCEPTIONS = {}

# Cycles that are the grammar's own recursion, as the set of modules in the cycle -> why.
CYCLE_EXCEPTIONS = {
    # A scan's body is a graph of any ops: lower_scan.c lowers it node by node through the
    # op table (cg_lower_node), and the op table holds lower_scan. The IR is recursive here,
    # so the lowering is too.
    frozenset({"codegen/lower", "codegen/lower_scan"}): "a scan body lowered by the op table",
}

# Private headers that are the hidden half of another module: ir/ir_internal.h declares the
# per-op hooks and helpers that ir.c and the other ir/*.c files define, for ir/ only.
MERGED = {"ir/ir_internal": "ir/ir"}

# Headers whose prototypes are generated from a hook column of ir/ops.def -> the module holding
# that column's table. Each module that includes such a header defines some of the column's
# hooks (and includes it to check them against the column); the table calls every hook. So the
# table depends on each module that includes the header, and the others' includes of it are
# no dependency (codegen/lower_hooks.h: the lower column, tabled by codegen/lower.c).
HOOK_HEADERS = {"codegen/lower_hooks": "codegen/lower"}

SOURCE_EXT = (".c", ".h", ".cpp", ".def")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    """'codegen/gemm.c' -> 'codegen/gemm' (merged private headers under their owner)"""
    stem = os.path.splitext(path)[0]
    return MERGED.get(stem, stem)


def read_includes(root):
    """{file path: [included file paths]} for every source file of the stage directories"""
    files = {}
    for d in ALLOWED:
        top = os.path.join(root, d)
        if not os.path.isdir(top):
            continue
        for dirpath, _, names in os.walk(top):
            for name in sorted(names):
                if not name.endswith(SOURCE_EXT):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                files[path] = [resolve(root, path, inc) for inc in INCLUDE.findall(text)]
    return files


def resolve(root, path, inc):
    """the included file as a path from the root (beside the includer first, as cc does), or
    None for a file outside the stage directories (include/lathe, generated headers)"""
    for cand in (os.path.join(os.path.dirname(path), inc), inc):
        cand = os.path.normpath(cand)
        if os.path.exists(os.path.join(root, cand)) and cand.split(os.sep)[0] in ALLOWED:
            return cand
    return None


def layer_violations(files, used):
    out = []
    for path, incs in sorted(files.items()):
        d = path.split(os.sep)[0]
        for inc in incs:
            if inc is None:
                continue
            to = inc.split(os.sep)[0]
            if to == d or to in ALLOWED[d]:
                continue
            key = (module_of(path), to)
            if key in LAYER_EXCEPTIONS:
                used.add(key)
                continue
            out.append(f"{path}: includes {inc}: {d}/ may include only "
                       f"{', '.join(sorted(ALLOWED[d])) or 'itself'} (layers call one way)")
    return out


def module_graph(files):
    edges = {}
    definers = {h: set() for h in HOOK_HEADERS}
    for path, incs in files.items():
        if path.split(os.sep)[0] not in ACYCLIC:
            continue
        m = module_of(path)
        edges.setdefault(m, set())
        for inc in incs:
            if inc is None or inc.split(os.sep)[0] not in ACYCLIC or module_of(inc) == m:
                continue
            if module_of(inc) in HOOK_HEADERS:
                definers[module_of(inc)].add(m)
                continue
            edges[m].add(module_of(inc))
    for header, table in HOOK_HEADERS.items():
        edges.setdefault(table, set()).update(definers[header] - {table})
    return edges


def cycles(edges):
    """strongly connected components of more than one module (Tarjan)"""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def cycle_text(comp, edges):
    """'a -> b -> a' through the component, for the message"""
    start = min(comp)
    path, seen, v = [start], {start}, start
    while True:
        nxt = sorted(w for w in edges[v] if w in comp)
        w = next((x for x in nxt if x == start and len(path) > 1), None)
        if w is None:
            w = next((x for x in nxt if x not in seen), nxt[0])
        path.append(w)
        if w in seen:
            break
        seen.add(w)
        v = w
    return " -> ".join(path)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    here = os.path.abspath(__file__)
    root = argv[1] if len(argv) == 2 else os.path.dirname(os.path.dirname(here))
    if not os.path.isdir(os.path.join(root, "ir")):
        print(f"check-deps: {root} is not a lathe source tree (no ir/)", file=sys.stderr)
        return 2
    files = read_includes(root)
    used_layer = set()
    problems = layer_violations(files, used_layer)
    edges = module_graph(files)
    used_cycles = set()
    for comp in cycles(edges):
        if comp in CYCLE_EXCEPTIONS:
            used_cycles.add(comp)
            continue
        problems.append(f"include cycle between modules: {cycle_text(comp, edges)} "
                        "(split the helpers both need into a module below them)")
    for key in sorted(set(LAYER_EXCEPTIONS) - used_layer):
        problems.append(f"stale exception in scripts/check-deps.py: {key[0]} no longer "
                        f"includes {key[1]}/: delete it from LAYER_EXCEPTIONS")
    for comp in CYCLE_EXCEPTIONS:
        if comp not in used_cycles:
            problems.append("stale exception in scripts/check-deps.py: no cycle "
                            f"{' <-> '.join(sorted(comp))}: delete it from CYCLE_EXCEPTIONS")
    for p in problems:
        print(p)
    n = sum(len(v) for v in edges.values())
    print(f"check-deps: {len(files)} files, {len(edges)} modules, {n} module edges: "
          f"{len(problems)} problem{'s' if len(problems) != 1 else ''}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
