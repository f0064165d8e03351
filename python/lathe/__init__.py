"""lathe from Python: compile, call and train lathe models with NumPy arrays.

    import numpy as np, lathe
    model = lathe.compile("examples/mlp.lathe", defines={"N": 1})
    probs = model(x=np.zeros((1, 784), np.float32))           # the forward entry
    loss = model.train_step(x=..., label=...)                  # one optimizer step
    model.params["h1.w"][:] = w                                # zero-copy views

Standard library + NumPy only: liblathe.so is called through ctypes (see lathe/_lib.py for
where it is found). docs/python.md describes the whole API.
"""

import ctypes
import os

from . import _lib
from .errors import (CallError, ClosedError, CompileError, DataError, DTypeError, Error,
                     InputError, LibraryError, MissingInputError, ShapeError, UnknownNameError)
from .model import Entry, EntrySpec, Info, Model, TensorViews
from .torch_names import lathe_to_torch, torch_to_lathe

__version__ = "0.1.0"
__all__ = [
    "compile", "load", "library_path", "Model", "Entry", "EntrySpec", "Info", "TensorViews",
    "Error", "LibraryError", "CompileError", "InputError", "DTypeError", "ShapeError",
    "MissingInputError", "UnknownNameError", "CallError", "ClosedError", "DataError",
    "torch_to_lathe", "lathe_to_torch",
]

_DTYPES = {"f32": 0, "float32": 0, "f64": 1, "float64": 1}


def library_path():
    """The path of the liblathe.so this package uses (loading it if not yet loaded)."""
    return _lib.lib().path


def _is_path(x):
    if isinstance(x, (os.PathLike, bytes)):
        return True
    if not isinstance(x, str):
        raise TypeError(f"lathe.compile: expected a path or lathe source text, got "
                        f"{type(x).__name__}")
    return "\n" not in x and ("{" not in x or os.path.exists(x))


def _options(defines, opt, threads, backend, dtype, grad, train, seed, model, lib_dir,
             prefix=None):
    """A filled lathe_options (and the objects its pointers refer to)."""
    if backend not in _lib.BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(_lib.BACKENDS)}, got {backend!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'f32' or 'f64', got {dtype!r}")
    if not (isinstance(opt, int) and 0 <= opt <= 3):
        raise ValueError(f"opt must be an int from 0 to 3, got {opt!r}")
    if not (isinstance(threads, int) and 1 <= threads <= 1024):
        raise ValueError(f"threads must be an int from 1 to 1024, got {threads!r}")
    buf, o = _lib.options_buffer()
    _lib.lib().lathe_options_init(buf)
    keep = [buf]
    items = []
    for name, value in (defines or {}).items():
        # an int, or "dynamic(max=M)": a run-time batch up to M (docs/dynamic-batch.md)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"define {name!r}: expected an int or 'dynamic(max=M)', "
                            f"got {value!r}")
        items.append(f"{name}={value}".encode())
    if items:
        arr = (ctypes.c_char_p * len(items))(*items)
        keep.append(arr)
        o.defines, o.n_defines = arr, len(items)
    o.opt_level, o.threads, o.backend = opt, threads, _lib.BACKENDS[backend]
    o.dtype, o.want_grad, o.want_train, o.seed = _DTYPES[dtype], int(grad), int(train), seed
    o.want_eval = int(train)  # the evaluate entry of fit's validation and evaluate()
    # the strings stay in `keep`: o (a view of buf) dies here, and with it its own references
    if model is not None:
        keep.append(model.encode())
        o.model_name = keep[-1]
    if lib_dir is not None:
        keep.append(os.fsencode(os.fspath(lib_dir)))
        o.lib_dir = keep[-1]
    if prefix is not None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix: expected a str, got {type(prefix).__name__}")
        keep.append(prefix.encode())  # checked by lathe: a CompileError names the rule
        o.prefix = keep[-1]
    return buf, keep


def compile(path_or_source, *, defines=None, opt=2, threads=1, backend="jit", dtype="f32",
            grad=False, train=True, seed=0, model=None, lib_dir=None, name="<string>",
            prefix=None):
    """Compiles a .lathe file (a path) or lathe source text (a string with a newline or a
    brace) into a Model.

    defines: {"N": 1} overrides `const`s; opt: 0..3; threads: OpenMP threads of the large
    kernels (more than 1 builds with cc -fopenmp); backend: "jit" (LLVM in-process; cc when
    this lathe has no JIT), "cc" (cc + dlopen) or "auto"; dtype: "f32" or "f64" (every f32
    compiled as f64); grad: also derive the "grad" entry; train: derive train entries;
    seed: of the params' initializers; model: which model of a file with several; lib_dir:
    where `import nn` looks; name: the file name diagnostics give source text; prefix: the
    name of every exported symbol of the generated C (`model.c_source`: <prefix>_forward,
    <prefix>_info, ...) and `model.name`, instead of the model's name.
    Raises CompileError with lathe's diagnostics (file:line:col, the line, a caret).
    """
    lib = _lib.lib()
    buf, keep = _options(defines, opt, threads, backend, dtype, grad, train, seed, model,
                         lib_dir, prefix)
    err = ctypes.c_void_p()
    if _is_path(path_or_source):
        path = os.fsencode(os.fspath(path_or_source))
        ptr = lib.lathe_compile_file(path, buf, ctypes.byref(err))
        origin = os.fsdecode(path)
    else:
        ptr = lib.lathe_compile_string(name.encode(), path_or_source.encode(), buf,
                                       ctypes.byref(err))
        origin = name
    del keep
    if not ptr:
        raise CompileError(_lib.take_string(err.value) or "out of memory\n")
    return Model(ptr, origin)


def load(path, *, seed=0):
    """Opens a shared object built by `lathe build` (libNAME.so) as a Model: its params and
    state initialized from seed (load_weights() reads a checkpoint); calls go through libffi.
    Raises CompileError when the file cannot be opened or is not a lathe model."""
    lib = _lib.lib()
    if not os.fspath(path):
        raise ValueError("lathe.load: expected the path of a shared object, got ''")
    path = os.path.abspath(os.fspath(path))
    err = ctypes.c_void_p()
    ptr = lib.lathe_open(os.fsencode(path), int(seed), ctypes.byref(err))
    if not ptr:
        raise CompileError(_lib.take_string(err.value) or "out of memory\n")
    return Model(ptr, path)
