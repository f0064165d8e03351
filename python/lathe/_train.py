"""model.fit / model.evaluate / model.predict: the runtime trainer of include/lathe/train.h
(lathe_fit, lathe_evaluate, lathe_predict) through ctypes, on the model's own params and
state (lathe_params / lathe_state of lathe.h), so Python trains exactly as `lathe train`.

Data is a dict of NumPy arrays (axis 0 = samples), bound to the model's inputs by name and
wrapped zero-copy with lathe_dataset_wrap (made C-contiguous only when needed; the arrays are
kept alive for the whole call), or a spec string for lathe_dataset_open: the same specs as
`lathe train --data` (x.npy,label.npy, a directory of .npy, .npz, .csv, fashion-mnist, ...).
The structs below mirror train.h field for field. Nothing here prints unless progress is on.
"""

import ctypes
import os
import sys

import numpy as np

from . import _lib
from .errors import CallError, DataError, DTypeError, MissingInputError, ShapeError

_P, _S, _D, _I, _I64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double, ctypes.c_int, \
    ctypes.c_int64

METRICS = ("loss", "accuracy", "precision", "recall", "f1", "mse", "rmse", "mae", "r2")


class DataOptions(ctypes.Structure):
    _fields_ = [("features", _S), ("target", _S), ("x_name", _S), ("test_split", _I),
                ("seed", ctypes.c_uint64), ("image_channels", _I), ("image_h", _I64),
                ("image_w", _I64), ("seq_len", _I64), ("vocab_max", _I64)]


class ArrayInfo(ctypes.Structure):
    _fields_ = [("name", _S), ("dtype", _I), ("rank", _I), ("shape", ctypes.POINTER(_I64)),
                ("per", _I64)]


class Metrics(ctypes.Structure):
    _fields_ = [("task", _I), ("n", _I64)] + [(k, _D) for k in METRICS]


class ClassMetrics(ctypes.Structure):
    _fields_ = [("precision", _D), ("recall", _D), ("f1", _D), ("support", _I64)]


class Classification(ctypes.Structure):
    _fields_ = [("n_classes", _I), ("n", _I64), ("accuracy", _D),
                ("classes", ctypes.POINTER(ClassMetrics)),
                ("present", ctypes.POINTER(ctypes.c_ubyte)), ("macro", ClassMetrics),
                ("weighted", ClassMetrics), ("confusion", ctypes.POINTER(_I64))]


class Evaluation(ctypes.Structure):
    _fields_ = [("m", Metrics), ("report", Classification), ("label_f1", ctypes.POINTER(_D)),
                ("n_labels", _I)]


class EpochResult(ctypes.Structure):
    _fields_ = [("epoch", _I), ("train_loss", _D), ("step_loss", ctypes.POINTER(_D)),
                ("steps", ctypes.POINTER(_S)), ("n_steps", _I), ("has_val", _I),
                ("val", Metrics), ("lr_scale", _D), ("seconds", _D), ("data_seconds", _D)]


ON_EPOCH = ctypes.CFUNCTYPE(_I, _P, ctypes.POINTER(EpochResult), ctypes.POINTER(_P))


class FitOptions(ctypes.Structure):
    _fields_ = [("epochs", _I), ("start_epoch", _I), ("seed", ctypes.c_uint64), ("limit", _I64),
                ("task", _I), ("early_stop", _I), ("monitor", _S), ("min_delta", _D),
                ("restore_best", _I), ("checkpoint", _S), ("best_checkpoint", _S),
                ("log_path", _S), ("val_name", _S), ("reduce_lr_patience", _I),
                ("reduce_lr_factor", _D), ("reduce_lr", _P), ("augment_flip", _I),
                ("augment_crop_pad", _I), ("progress", _P), ("on_epoch", ON_EPOCH),
                ("ctx", _P), ("dist", _P),  # dist: data-parallel transport, NULL here
                ("global_batch", _I64)]


class FitResult(ctypes.Structure):
    _fields_ = [("epochs", _I), ("best_epoch", _I), ("stopped_early", _I),
                ("last", EpochResult), ("best", EpochResult), ("info", _P), ("params", _P),
                ("state", _P)]


_PERR = ctypes.POINTER(_P)
_PROTOTYPES = {
    "lathe_params": (_P, [_P]),
    "lathe_state": (_P, [_P]),
    "lathe_data_options_init": (None, [ctypes.POINTER(DataOptions)]),
    "lathe_data_options_for_model": (None, [ctypes.POINTER(DataOptions), _P]),
    "lathe_dataset_open": (_P, [_S, ctypes.POINTER(DataOptions), _PERR]),
    "lathe_dataset_wrap": (_P, [ctypes.POINTER(ArrayInfo), ctypes.POINTER(_P), _I, _I64, _PERR]),
    "lathe_dataset_free": (None, [_P]),
    "lathe_dataset_split": (_I, [_P, _D, ctypes.c_uint64, _S, ctypes.POINTER(_P),
                                 ctypes.POINTER(_P), _PERR]),
    "lathe_dataset_n_arrays": (_I, [_P]),
    "lathe_dataset_array": (_I, [_P, _I, ctypes.POINTER(ArrayInfo)]),
    "lathe_task_name": (_S, [_I]),
    "lathe_task_parse": (_I, [_S]),
    "lathe_metrics_get": (_I, [ctypes.POINTER(Metrics), _S, ctypes.POINTER(_D),
                               ctypes.POINTER(_I)]),
    "lathe_fit_options_init": (None, [ctypes.POINTER(FitOptions)]),
    "lathe_fit": (_I, [_P, _P, _P, _P, _P, ctypes.POINTER(FitOptions),
                       ctypes.POINTER(FitResult), _PERR]),
    "lathe_evaluate": (_I, [_P, _P, _P, _P, _I, ctypes.POINTER(Evaluation), _PERR]),
    "lathe_evaluation_free": (None, [ctypes.POINTER(Evaluation)]),
    "lathe_predict": (_I, [_P, _P, _P, _P, _S, _PERR]),
}

_trainer = None


def trainer():
    """liblathe with the train.h prototypes set (once)."""
    global _trainer
    if _trainer is None:
        lib = _lib.lib()
        for name, (restype, argtypes) in _PROTOTYPES.items():
            fn = getattr(lib, name, None)
            if fn is None:
                raise _lib.LibraryError(f"{lib.path} has no function {name}: it is older than "
                                        "this lathe package (rebuild or reinstall lathe)\n")
            fn.restype, fn.argtypes = restype, argtypes
        _trainer = lib
    return _trainer


def _take_error(err):
    """The malloc'd message of a train.h call (freed), or a generic one."""
    return _lib.take_string(err.value) or "lathe: the call failed without a message\n"


# ---- datasets ------------------------------------------------------------------------------


class Dataset:
    """A lathe_dataset and whatever must outlive it (the wrapped arrays)."""

    def __init__(self, ptr, keep=()):
        self.ptr, self.keep, self.parts = ptr, keep, []

    def close(self):
        for p in self.parts:
            p.close()
        if self.ptr:
            trainer().lathe_dataset_free(self.ptr)
            self.ptr = None

    def split(self, fraction, seed, stratify):
        lib, err = trainer(), _P()
        train, val = _P(), _P()
        s = stratify.encode() if stratify else None
        if lib.lathe_dataset_split(self.ptr, float(fraction), int(seed), s, ctypes.byref(train),
                                   ctypes.byref(val), ctypes.byref(err)) != 0:
            raise DataError(_take_error(err))
        a, b = Dataset(train.value), Dataset(val.value)
        self.parts += [a, b]
        return a, b


def _open_spec(spec, test, seed, info):
    lib, err, o = trainer(), _P(), DataOptions()
    lib.lathe_data_options_init(ctypes.byref(o))
    if info:  # text=FILE: the window T and the vocabulary bound V of the model
        lib.lathe_data_options_for_model(ctypes.byref(o), info)
    o.test_split, o.seed = int(test), int(seed)
    ptr = lib.lathe_dataset_open(os.fsencode(spec), ctypes.byref(o), ctypes.byref(err))
    if not ptr:
        raise DataError(_take_error(err))
    return Dataset(ptr)


def _wrap_arrays(data, inputs, what, required):
    """data: name -> array; inputs: name -> Spec of the entry whose inputs they feed (all
    required when required, else checked when given)."""
    missing = [n for n in inputs if n not in data] if required else []
    if missing:
        raise MissingInputError(f"{what}: no array for input '{missing[0]}' (the data dict "
                                f"has {', '.join(map(repr, data)) or 'nothing'}; expected "
                                f"{', '.join(inputs)})\n")
    names = [n for n in inputs if n in data] + [n for n in data if n not in inputs]
    arrays, n = [], None
    for name in names:
        a = np.ascontiguousarray(np.asarray(data[name]))
        dt = _lib.DTYPE_CODES.get(a.dtype.name)
        if dt is None or a.ndim < 1:
            raise DTypeError(f"{what}: array '{name}' is {a.dtype} with shape {a.shape}; "
                             "expected samples along axis 0 of float32, float64, int32, int64 "
                             "or uint8\n")
        spec = inputs.get(name)
        if spec is not None and spec.code != dt:
            raise DTypeError(f"{what}: array '{name}' is {a.dtype}; input '{name}' is "
                             f"{spec.dtype}\n")
        if spec is not None and tuple(a.shape[1:]) != tuple(spec.shape[1:]):
            raise ShapeError(f"{what}: array '{name}' has samples of shape {a.shape[1:]}; "
                             f"input '{name}' takes {tuple(spec.shape[1:])} per sample\n")
        if n is not None and a.shape[0] != n:
            raise ShapeError(f"{what}: array '{name}' has {a.shape[0]} samples, "
                             f"'{names[0]}' has {n}\n")
        n = a.shape[0]
        arrays.append((name, a, dt))
    return _wrap(arrays, n)


def _wrap(arrays, n):
    k = len(arrays)
    info, ptrs = (ArrayInfo * k)(), (_P * k)()
    keep = [arrays]
    for i, (name, a, dt) in enumerate(arrays):
        shape = (_I64 * max(1, a.ndim - 1))(*a.shape[1:])
        bname = name.encode()
        keep += [shape, bname]
        info[i] = ArrayInfo(bname, dt, a.ndim - 1, shape, int(np.prod(a.shape[1:], dtype=np.int64)))
        ptrs[i] = a.ctypes.data if a.size else None
    err = _P()
    ptr = trainer().lathe_dataset_wrap(info, ptrs, k, int(n), ctypes.byref(err))
    if not ptr:
        raise DataError(_take_error(err))
    return Dataset(ptr, keep + [info, ptrs])


def dataset(data, inputs, what, test=False, seed=0, required=True, info=None):
    """A Dataset of a dict of arrays or a spec string; inputs: the entry's input Specs (every
    one needs an array when required); test: a named dataset's test split (fashion-mnist,
    reverse, sort, text); seed: of generated ones; info: the model's lathe_model_info pointer
    (a spec's options that depend on the model: text=FILE's window and vocabulary bound)."""
    if isinstance(data, (str, bytes, os.PathLike)):
        return _open_spec(os.fsdecode(data), test, seed, info)
    if isinstance(data, Dataset):
        return data
    if not hasattr(data, "items"):
        raise DataError(f"{what}: expected a dict of NumPy arrays (name -> samples along axis "
                        f"0) or a data spec string, not {type(data).__name__}\n")
    return _wrap_arrays(dict(data), inputs, what, required)


# ---- results -------------------------------------------------------------------------------


def metrics_dict(m, prefix=""):
    """The measured metrics of a lathe_metrics as {prefix + name: value}."""
    lib, out = trainer(), {}
    v, hb = _D(), _I()
    for name in METRICS:
        if lib.lathe_metrics_get(ctypes.byref(m), name.encode(), ctypes.byref(v),
                                 ctypes.byref(hb)) == 0:
            out[prefix + name] = v.value
    return out


def epoch_dict(r):
    d = {"epoch": r.epoch, "loss": r.train_loss}
    if r.n_steps > 1:
        for i in range(r.n_steps):
            d[f"loss_{r.steps[i].decode()}"] = r.step_loss[i]
    if r.has_val:
        d.update(metrics_dict(r.val, "val_"))
    d.update(lr_scale=r.lr_scale, seconds=r.seconds, data_seconds=r.data_seconds)
    return d


def evaluation_dict(e):
    task = trainer().lathe_task_name(e.m.task)
    d = {"task": task.decode() if task else str(e.m.task), "n": e.m.n}
    d.update(metrics_dict(e.m))
    rep = e.report
    if rep.n_classes and rep.confusion:
        c = rep.n_classes
        d["weighted"] = {"precision": rep.weighted.precision, "recall": rep.weighted.recall,
                         "f1": rep.weighted.f1}
        d["confusion"] = np.ctypeslib.as_array(rep.confusion, shape=(c, c)).copy()
        d["per_class"] = {i: {"precision": rep.classes[i].precision,
                              "recall": rep.classes[i].recall, "f1": rep.classes[i].f1,
                              "support": rep.classes[i].support}
                          for i in range(c) if rep.present[i]}
    if e.label_f1:
        d["label_f1"] = [e.label_f1[i] for i in range(e.n_labels)]
    return d


# ---- progress ------------------------------------------------------------------------------


def progress_file(progress):
    """A C FILE * on a dup of stderr when progress is on (None: only when stderr is a
    terminal, so a notebook or a log stays silent); None when off."""
    on = progress if progress is not None else _isatty(sys.stderr)
    if not on:
        return None
    libc = ctypes.CDLL(None)
    libc.fdopen.restype, libc.fdopen.argtypes = _P, [_I, _S]
    sys.stderr.flush()
    fd = os.dup(2)
    f = libc.fdopen(fd, b"w")
    if not f:
        os.close(fd)
        raise CallError("cannot open stderr for the progress bar\n")
    return f


def close_progress(f):
    if f:
        libc = ctypes.CDLL(None)
        libc.fclose.argtypes = [_P]
        libc.fclose(f)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
