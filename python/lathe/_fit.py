"""Model.fit, Model.evaluate and Model.predict (see model.py): argument checking, datasets and
results around the runtime trainer calls of _train.py. The model's lock is held for the whole
call (fit updates its params and state in place); the GIL is released inside each C call, and
taken back only by the per-epoch callback that records the history.
"""

import ctypes
import os

from . import _train
from ._train import _P
from .errors import CallError, DataError, UnknownNameError


def _inputs_of(model, kinds):
    """name -> Spec of every input of the model's entries of these kinds (or names)."""
    out = {}
    for e in model.info.entries.values():
        if e.kind in kinds or e.name in kinds:
            out.update((n, s) for n, s in e.inputs.items() if n not in out)
    return out


def _eval_inputs(model):
    return _inputs_of(model, ("evaluate",)) or _inputs_of(model, ("forward",))


def _stratify(model, ds):
    """As `lathe train --val-split`: the evaluate entry's integer target (an input after the
    first with one value per sample), if the dataset has an array of that name."""
    lib, ai = _train.trainer(), _train.ArrayInfo()
    names = {}
    for i in range(lib.lathe_dataset_n_arrays(ds.ptr)):
        if lib.lathe_dataset_array(ds.ptr, i, ctypes.byref(ai)) == 0:
            names[ai.name.decode()] = (ai.dtype, ai.per)
    for k, (name, spec) in enumerate(_eval_inputs(model).items()):
        if k > 0 and spec.dtype.kind in "iu" and names.get(name, (0, 0))[1] == 1:
            return name
    return None


def _task(task):
    if task is None:
        return 0
    code = _train.trainer().lathe_task_parse(str(task).encode())
    if code < 0:
        raise DataError(f"task '{task}': expected classification, sequence, multilabel, "
                        "regression or none\n")
    return code


def _fit_options(o, kw, history, errors):
    lib = _train.trainer()
    lib.lathe_fit_options_init(ctypes.byref(o))
    keep = []

    def text(v):
        b = None if v is None else str(v).encode()
        keep.append(b)
        return b

    o.epochs, o.seed, o.limit = int(kw["epochs"]), int(kw["seed"]), int(kw["limit"])
    o.task, o.early_stop = _task(kw["task"]), int(kw["early_stop"])
    o.monitor, o.min_delta = text(kw["monitor"]), float(kw["min_delta"])
    o.restore_best = int(bool(kw["restore_best"]))
    o.checkpoint, o.best_checkpoint = text(kw["checkpoint"]), text(kw["best_checkpoint"])
    o.log_path = text(kw["log"])

    def on_epoch(_ctx, r, _err):
        try:
            history.append(_train.epoch_dict(r[0]))
            return 0
        except BaseException as e:  # noqa: BLE001 -- C cannot unwind a Python exception
            errors.append(e)
            return 1

    o.on_epoch = _train.ON_EPOCH(on_epoch)
    keep.append(o.on_epoch)
    return keep


def _open_fit_data(model, data, val, val_split, seed, info):
    """(all, train, val) Datasets; all is what must be closed. info: the model's descriptor."""
    inputs = _inputs_of(model, ("train",))
    if not inputs:
        raise UnknownNameError(f"model '{model.name}' has no train entry (does it have a "
                               "train block?)\n")
    ds = _train.dataset(data, inputs, "fit data", seed=seed, info=info)
    if val_split and val is not None:
        raise DataError("fit: give val or val_split, not both\n")
    if val_split:
        train, v = ds.split(val_split, seed, _stratify(model, ds))
        return ds, train, v
    if val is None:
        return ds, ds, None
    try:
        v = _train.dataset(val, _eval_inputs(model), "fit val", test=True, seed=seed,
                           info=info)
    except BaseException:
        ds.close()
        raise
    ds.parts.append(v)
    return ds, ds, v


def fit(model, data, kw):
    """The history: one dict per epoch (epoch, loss, val_* metrics, lr_scale, seconds)."""
    history, errors, o = [], [], _train.FitOptions()
    keep = _fit_options(o, kw, history, errors)
    res, err = _train.FitResult(), _P()
    with model._lock:
        ptr = model._ptr()
        lib = _train.trainer()
        info, params, state = model._lib.lathe_info(ptr), lib.lathe_params(ptr), \
            lib.lathe_state(ptr)
        ds, train, val = _open_fit_data(model, data, kw["val"], kw["val_split"], kw["seed"],
                                        ctypes.cast(info, _P))
        progress = None
        try:
            progress = o.progress = _train.progress_file(kw["progress"])
            rc = lib.lathe_fit(ctypes.cast(info, _P), params, state, train.ptr,
                               val.ptr if val else None, ctypes.byref(o), ctypes.byref(res),
                               ctypes.byref(err))
        finally:
            _train.close_progress(progress)
            ds.close()
    del keep
    if errors:
        raise errors[0]
    if rc != 0:
        raise _data_or_call(_train._take_error(err))
    return history


def _data_or_call(text):
    """A trainer message as an exception: data problems (a file, an array, a label) are
    DataError, anything else CallError."""
    data_words = ("label", "array", "sample", ".npy", ".csv", "row", "dataset", "data")
    if any(w in text for w in data_words):
        return DataError(text)
    return CallError(text)


def evaluate(model, data, task):
    """The metrics dict of lathe_evaluate on data (classification adds confusion, per_class)."""
    ev, err, rc = _train.Evaluation(), _P(), -1
    with model._lock:
        ptr = model._ptr()
        lib = _train.trainer()
        info = ctypes.cast(model._lib.lathe_info(ptr), _P)
        ds = _train.dataset(data, _eval_inputs(model), "evaluate data", test=True, info=info)
        try:
            rc = lib.lathe_evaluate(info,
                                    lib.lathe_params(ptr), lib.lathe_state(ptr), ds.ptr,
                                    _task(task), ctypes.byref(ev), ctypes.byref(err))
            if rc != 0:
                raise _data_or_call(_train._take_error(err))
            return _train.evaluation_dict(ev)
        finally:
            if rc == 0:
                lib.lathe_evaluation_free(ctypes.byref(ev))
            ds.close()


def predict(model, data, out_path):
    """lathe_predict: the forward entry's first output for every sample, to out_path."""
    err, rc = _P(), -1
    with model._lock:
        ptr = model._ptr()
        lib = _train.trainer()
        info = ctypes.cast(model._lib.lathe_info(ptr), _P)
        ds = _train.dataset(data, _inputs_of(model, ("forward",)), "predict data", test=True,
                            required=False, info=info)
        try:
            rc = lib.lathe_predict(info,
                                   lib.lathe_params(ptr), lib.lathe_state(ptr), ds.ptr,
                                   os.fsencode(os.fspath(out_path)), ctypes.byref(err))
        finally:
            ds.close()
    if rc != 0:
        raise _data_or_call(_train._take_error(err))

