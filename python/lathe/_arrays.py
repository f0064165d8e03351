"""Arrays in: anything NumPy can view (ndarrays, ``__array_interface__``, DLPack such as
PyTorch CPU tensors) becomes an ndarray checked against a tensor of the model. Nothing is
copied unless it must be: a C-contiguous, aligned array of the right dtype is passed as is;
a strided or misaligned one is copied to a contiguous one; a wrong dtype or shape is an error
(lathe never casts silently). Python lists and scalars, which carry no dtype, are converted
to the model's dtype.
"""

import numpy as np

from ._lib import DTYPE_NAMES, DTYPES
from .errors import DTypeError, InputError, ShapeError


class Spec:
    """dtype and shape of one tensor of the model (an input, output, param or state)."""

    __slots__ = ("name", "dtype", "shape", "code")

    def __init__(self, name, code, shape):
        self.name = name
        self.code = code
        self.dtype = np.dtype(DTYPES[code])
        self.shape = tuple(shape)

    def __repr__(self):
        dims = ", ".join(str(d) for d in self.shape)
        return f"{DTYPE_NAMES[self.code]}[{dims}]"

    def __eq__(self, other):
        return isinstance(other, Spec) and (self.name, self.code, self.shape) == (
            other.name, other.code, other.shape)

    def __hash__(self):
        return hash((self.name, self.code, self.shape))


def _view(obj, what):
    """An ndarray viewing obj's memory where obj allows it."""
    if hasattr(obj, "__array_interface__") or hasattr(obj, "__array_struct__"):
        return np.asarray(obj)
    if hasattr(obj, "__dlpack__"):
        try:
            return np.from_dlpack(obj)
        except (BufferError, RuntimeError, TypeError, ValueError) as e:
            raise InputError(f"{what}: cannot view this {type(obj).__name__} through DLPack "
                             f"({e}); expected a CPU array (for a PyTorch tensor that "
                             "requires grad, pass tensor.detach())\n") from None
    if hasattr(obj, "__array__"):
        return np.asarray(obj)
    return None


def as_input(obj, spec, what):
    """obj as a C-contiguous ndarray of spec's dtype and shape (copied only if strided or
    misaligned), or DTypeError/ShapeError naming `what`."""
    a = obj if type(obj) is np.ndarray else _view(obj, what)
    if a is None:
        try:
            a = np.asarray(obj, dtype=spec.dtype)
        except (TypeError, ValueError) as e:
            raise InputError(f"{what}: cannot convert {type(obj).__name__} to "
                             f"{spec!r} ({e})\n") from None
    if a.dtype != spec.dtype:
        raise DTypeError(f"{what} is {_describe(a)}, but the model expects {spec!r} "
                         f"(dtype {spec.dtype}; lathe does not cast: use "
                         f".astype(numpy.{spec.dtype}))\n")
    if a.shape != spec.shape:
        raise ShapeError(f"{what} is {_describe(a)}, but the model expects {spec!r}\n")
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.ascontiguousarray(a)
    return a


def as_output(obj, spec, what):
    """A caller's output array: must already be writable, C-contiguous, of spec's dtype and
    shape (an output is written in place, so it cannot be a converted copy)."""
    a = obj if type(obj) is np.ndarray else _view(obj, what)
    if a is None:
        raise InputError(f"{what}: expected a writable array, got {type(obj).__name__}\n")
    if a.dtype != spec.dtype:
        raise DTypeError(f"{what} is {_describe(a)}, but the model expects {spec!r}\n")
    if a.shape != spec.shape:
        raise ShapeError(f"{what} is {_describe(a)}, but the model expects {spec!r}\n")
    if not (a.flags.c_contiguous and a.flags.aligned and a.flags.writeable):
        raise InputError(f"{what}: an output array must be C-contiguous, aligned and "
                         "writable\n")
    return a


def _describe(a):
    code = {v: k for k, v in DTYPES.items()}.get(a.dtype.name)
    name = DTYPE_NAMES[code] if code is not None else str(a.dtype)
    return f"{name}[{', '.join(str(d) for d in a.shape)}]"
