"""liblathe.so through ctypes: where it is found, and the C structs and prototypes of
include/lathe/lathe.h and include/lathe/model_info.h mirrored for ctypes.

The library is looked for in this order (the first that exists wins):
  1. the LATHE_LIBRARY environment variable (a path; an error if it does not exist);
  2. the build tree this package sits in: ``<source>/build/liblathe.so``, else the newest
     ``<source>/build*/liblathe.so``, so ``PYTHONPATH=python`` works in a checkout (a
     sanitizer build needs its runtime preloaded: python/tests/run.sh shows how);
  3. the prefix `cmake --install` put this package in (<prefix>/lib/liblathe.so);
  4. ``pkg-config --variable=shared_library lathe`` (an installed lathe);
  5. the dynamic linker's search path (``ctypes.util.find_library("lathe")``) and the usual
     install directories.

ctypes.CDLL releases the GIL around every foreign call, so other Python threads run while a
model computes. Nothing here prints.
"""

import ctypes
import ctypes.util
import glob
import os
import shutil
import subprocess

from .errors import LibraryError

MODEL_INFO_VERSION = 4  # LATHE_MODEL_INFO_VERSION of the descriptor structs below

# dtype codes of model_info.h, and their NumPy names
DTYPES = {0: "float32", 1: "float64", 2: "int32", 3: "int64", 4: "uint8", 5: "int8"}
DTYPE_CODES = {name: code for code, name in DTYPES.items()}
DTYPE_NAMES = {0: "f32", 1: "f64", 2: "i32", 3: "i64", 4: "u8", 5: "i8"}

ARG_PARAMS, ARG_STATE, ARG_INPUT, ARG_OUTPUT, ARG_WORKSPACE, ARG_BATCH = range(6)
ENTRY_KINDS = {0: "forward", 1: "train", 2: "grad"}
BACKENDS = {"auto": 0, "cc": 1, "jit": 2}


class TensorInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("offset", ctypes.c_size_t),
        ("bytes", ctypes.c_size_t),
        ("dyn", ctypes.c_int64),  # 0, or k: dim 0 is k * n for the run-time batch n
    ]


class ArgInfo(ctypes.Structure):
    _fields_ = [("role", ctypes.c_int), ("tensor", ctypes.POINTER(TensorInfo))]


class EntryInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("symbol", ctypes.c_char_p),
        ("kind", ctypes.c_int),
        ("returns_loss", ctypes.c_int),
        ("n_args", ctypes.c_int),
        ("args", ctypes.POINTER(ArgInfo)),
        ("workspace_bytes", ctypes.c_size_t),
        ("call", ctypes.c_void_p),
        ("workspace_base", ctypes.c_size_t),
        ("workspace_per_n", ctypes.c_size_t),
        ("n_replica_sums", ctypes.c_int),  # data-parallel sums a "grad" entry asks (issue 21)
        ("replica_sums", ctypes.POINTER(ctypes.c_size_t)),
        ("n_buckets", ctypes.c_int),  # "grad" compiled with --buckets: lathe_bucket_info[]
        ("buckets", ctypes.c_void_p),
    ]


class ModelInfo(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("source", ctypes.c_char_p),
        ("params_bytes", ctypes.c_size_t),
        ("state_bytes", ctypes.c_size_t),
        ("workspace_bytes", ctypes.c_size_t),
        ("n_params", ctypes.c_int),
        ("params", ctypes.POINTER(TensorInfo)),
        ("n_states", ctypes.c_int),
        ("states", ctypes.POINTER(TensorInfo)),
        ("n_entries", ctypes.c_int),
        ("entries", ctypes.POINTER(EntryInfo)),
        ("init", ctypes.c_void_p),
        ("cpu_supported", ctypes.c_void_p),  # int (*)(void): checked by the C loader
        ("target", ctypes.c_char_p),  # what the code was compiled for ("x86-64-v3", ...)
        ("dyn_max", ctypes.c_int64),  # the run-time batch's bound; 0: static
        ("dyn_name", ctypes.c_char_p),
        ("grads_bytes", ctypes.c_size_t),  # a split train step's <model>_grads; 0 otherwise
    ]


class Tensor(ctypes.Structure):
    """lathe_tensor: a named tensor passed to lathe_call."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("data", ctypes.c_void_p),
    ]


class Options(ctypes.Structure):
    """lathe_options, in the order of lathe.h. It is always placed at the start of a larger
    zeroed buffer (options_buffer) so a library whose struct has grown stays in bounds."""

    _fields_ = [
        ("defines", ctypes.POINTER(ctypes.c_char_p)),
        ("n_defines", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("backend", ctypes.c_int),
        ("opt_level", ctypes.c_int),
        ("lib_dir", ctypes.c_char_p),
        ("model_name", ctypes.c_char_p),
        ("want_grad", ctypes.c_int),
        ("want_train", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_int),
        ("want_eval", ctypes.c_int),
        ("prefix", ctypes.c_char_p),
        ("want_split", ctypes.c_int),
    ]


def options_buffer():
    """A zeroed buffer well beyond sizeof(lathe_options), and an Options view of its start."""
    buf = ctypes.create_string_buffer(max(1024, ctypes.sizeof(Options)))
    return buf, Options.from_buffer(buf)


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_PROTOTYPES = {
    "lathe_options_init": (None, [_P]),
    "lathe_compile_file": (_P, [_S, _P, ctypes.POINTER(_P)]),
    "lathe_compile_string": (_P, [_S, _S, _P, ctypes.POINTER(_P)]),
    "lathe_open": (_P, [_S, ctypes.c_uint64, ctypes.POINTER(_P)]),
    "lathe_free": (None, [_P]),
    "lathe_string_free": (None, [_P]),
    "lathe_info": (ctypes.POINTER(ModelInfo), [_P]),
    "lathe_backend": (_S, [_P]),
    "lathe_error": (_S, [_P]),
    "lathe_init": (None, [_P, ctypes.c_uint64]),
    "lathe_tensor_data": (_P, [_P, _S, ctypes.POINTER(ctypes.POINTER(TensorInfo))]),
    "lathe_call": (
        ctypes.c_int,
        [_P, _S, ctypes.POINTER(Tensor), ctypes.c_int, ctypes.POINTER(Tensor), ctypes.c_int,
         ctypes.POINTER(ctypes.c_double)],
    ),
    "lathe_load": (ctypes.c_int, [_P, _S]),
    "lathe_save": (ctypes.c_int, [_P, _S, ctypes.c_int]),
    "lathe_c_source": (_P, [_P]),
    "lathe_ir_text": (_P, [_P, _S]),
}


def _build_tree_candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))  # <source>/python/lathe -> <source>
    main = os.path.join(source, "build", "liblathe.so")
    others = glob.glob(os.path.join(source, "build?*", "liblathe.so"))
    return [main] + sorted(others, key=os.path.getmtime, reverse=True)


def _prefix_candidate():
    """<prefix>/lib/liblathe.so for a package that `cmake --install` put in
    <prefix>/lib/python3.X/dist-packages/lathe."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(here))), "liblathe.so")]


def _pkg_config_candidate():
    if not shutil.which("pkg-config"):
        return []
    try:
        out = subprocess.run(["pkg-config", "--variable=shared_library", "lathe"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    path = out.stdout.strip()
    return [path] if out.returncode == 0 and path else []


def _system_candidates():
    found = ctypes.util.find_library("lathe")
    names = [found] if found else []
    for d in ("/usr/local/lib", "/usr/lib", "/usr/local/lib64", "/usr/lib64"):
        names.append(os.path.join(d, "liblathe.so"))
        names.extend(sorted(glob.glob(os.path.join(d, "*-linux-*", "liblathe.so"))))
    return names


def find_library():
    """The path of liblathe.so (see the module comment for the order), or LibraryError."""
    env = os.environ.get("LATHE_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise LibraryError(f"LATHE_LIBRARY={env}: no such file (expected the path of "
                               "liblathe.so, e.g. build/liblathe.so)\n")
        return env
    tried = []
    candidates = (_build_tree_candidates() + _prefix_candidate() + _pkg_config_candidate() +
                  _system_candidates())
    for path in candidates:
        tried.append(path)
        if os.path.sep not in path or os.path.isfile(path):
            return path
    raise LibraryError("liblathe.so not found: set LATHE_LIBRARY to its path, build lathe "
                       "(cmake --build build) in the source tree, or install it "
                       "(cmake --install build); looked at:\n  " + "\n  ".join(tried) + "\n")


_lib = None


def lib():
    """The loaded liblathe.so with its prototypes set (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    path = find_library()
    try:
        handle = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryError(f"cannot load {path}: {e}\n") from None
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(handle, name, None)
        if fn is None:
            raise LibraryError(f"{path} has no function {name}: it is older than this "
                               "lathe package (rebuild or reinstall lathe)\n")
        fn.restype, fn.argtypes = restype, argtypes
    handle.path = path
    _lib = handle
    return handle


def take_string(ptr):
    """Decodes and frees a malloc'd char * returned by liblathe ("" for NULL)."""
    if not ptr:
        return ""
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib().lathe_string_free(ptr)
