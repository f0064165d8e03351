"""Model: a compiled or loaded lathe model, called with NumPy arrays.

A Model owns one lathe_model of liblathe (code, params, optimizer state, workspace). Calls go
through lathe_call with the arrays' own memory: inputs are checked here (dtype, shape, names)
so mistakes raise typed exceptions before any C runs, and lathe checks them again. ``params``
and ``state`` are zero-copy NumPy views of the model's memory: a write through them is seen by
the next call, and training updates show in them at once. The memory lives as long as the
model or any such view (closing the model stops calls; a view keeps its memory valid).

A model is not thread-safe in C; each Model serializes its calls with a lock. The GIL is
released during every call into liblathe (ctypes.CDLL does that), so other Python threads,
and other models, run meanwhile.
"""

import ctypes
import threading
from collections.abc import Mapping

import numpy as np

from . import _lib
from ._arrays import Spec, as_input, as_output
from .errors import (CallError, ClosedError, Error, MissingInputError, ShapeError,
                     UnknownNameError)


class _Handle:
    """Owns the lathe_model pointer; frees it when the model and all its views are gone."""

    __slots__ = ("ptr", "cptr", "lib", "__weakref__")

    def __init__(self, ptr):
        self.ptr = ptr
        self.cptr = ctypes.c_void_p(ptr)  # for calls without argtypes (Entry.run)
        self.lib = _lib.lib()

    def __del__(self):
        ptr, self.ptr = self.ptr, None
        if ptr and self.lib is not None:
            self.lib.lathe_free(ptr)


class _Shared:
    """What a Model and its Entries share. Nothing here refers back to the Model, so dropping
    the last reference to a Model frees the C model at once (no cycle to wait for)."""

    __slots__ = ("handle", "lock", "lib", "call", "label")

    def __init__(self, ptr, label):
        self.handle = _Handle(ptr)  # None once closed
        self.lib = self.handle.lib
        # lathe_call without ctypes' per-argument conversion: Entry.run passes ready objects
        self.call = type(self.lib.lathe_call)(("lathe_call", self.lib))
        self.call.restype = ctypes.c_int
        self.lock = threading.RLock()  # a lathe_model is not thread-safe: one call at a time
        self.label = label

    def ptr(self):
        handle = self.handle
        if handle is None:
            raise ClosedError(f"{self.label} is closed\n")
        return handle.ptr


class _Memory:
    """__array_interface__ of one param/state tensor; holds the handle so that the memory
    outlives the Model while a view of it exists."""

    __slots__ = ("__array_interface__", "_handle")

    def __init__(self, address, spec, handle):
        self.__array_interface__ = {"data": (address, False), "shape": spec.shape,
                                    "typestr": spec.dtype.str, "version": 3}
        self._handle = handle


def _spec(ti):
    return Spec(ti.name.decode(), ti.dtype, [ti.shape[k] for k in range(ti.rank)])


class TensorViews(Mapping):
    """name -> zero-copy ndarray view of a param (or state) tensor. ``views[name] = array``
    copies array into the model's memory (checked dtype and shape); ``views[name][...] = x``
    writes through the view."""

    def __init__(self, kind, views, specs):
        self._kind, self._views, self._specs = kind, views, specs

    def __getitem__(self, name):
        try:
            return self._views[name]
        except KeyError:
            raise UnknownNameError(_unknown(self._kind, name, self._views)) from None

    def __setitem__(self, name, value):
        view = self[name]
        view[...] = as_input(value, self._specs[name], f"{self._kind} '{name}'")

    def __iter__(self):
        return iter(self._views)

    def __len__(self):
        return len(self._views)

    def __repr__(self):
        items = ", ".join(f"'{n}': {self._specs[n]!r}" for n in self._views)
        return f"TensorViews({{{items}}})"


def _unknown(kind, name, known):
    names = ", ".join(f"'{n}'" for n in known) or "none"
    return f"no {kind} '{name}'; the model has: {names}\n"


class EntrySpec:
    """One entry point: its kind ("forward", "train", "grad"), inputs and outputs (name ->
    Spec with .dtype and .shape), whether it returns a loss, its workspace size."""

    def __init__(self, e):
        self.name = e.name.decode()
        self.kind = _lib.ENTRY_KINDS.get(e.kind, str(e.kind))
        self.returns_loss = bool(e.returns_loss)
        self.workspace_bytes = e.workspace_bytes
        args = [e.args[k] for k in range(e.n_args)]
        self.inputs = {s.name: s for s in (_spec(a.tensor[0]) for a in args
                                           if a.role == _lib.ARG_INPUT)}
        self.outputs = {s.name: s for s in (_spec(a.tensor[0]) for a in args
                                            if a.role == _lib.ARG_OUTPUT)}
        self._tensor_info = {_spec(a.tensor[0]).name: a.tensor[0] for a in args if a.tensor}

    def __repr__(self):
        ins = ", ".join(f"{n}: {s!r}" for n, s in self.inputs.items())
        outs = ", ".join(f"{n}: {s!r}" for n, s in self.outputs.items())
        loss = " -> loss" if self.returns_loss else ""
        return f"<entry {self.name} ({self.kind}) ({ins}) -> ({outs}){loss}>"


class Info:
    """What a model has: name, source file, backend, entries (name -> EntrySpec), inputs and
    outputs over all entries, params and state (name -> Spec), buffer sizes."""

    def __init__(self, mi, backend):
        self.name = mi.name.decode()
        self.source = mi.source.decode() if mi.source else ""
        self.backend = backend
        self.params_bytes, self.state_bytes = mi.params_bytes, mi.state_bytes
        self.entries = {}
        for i in range(mi.n_entries):
            spec = EntrySpec(mi.entries[i])
            self.entries[spec.name] = spec
        self.params = {s.name: s for s in (_spec(mi.params[i]) for i in range(mi.n_params))}
        self.state = {s.name: s for s in (_spec(mi.states[i]) for i in range(mi.n_states))}
        self.inputs, self.outputs = {}, {}
        for e in self.entries.values():
            self.inputs.update(e.inputs)
            self.outputs.update(e.outputs)

    def __repr__(self):
        lines = [f"model {self.name} ({self.source}, backend {self.backend})"]
        lines += [f"  {e!r}" for e in self.entries.values()]
        lines += [f"  param {n}: {s!r}" for n, s in self.params.items()]
        lines += [f"  state {n}: {s!r}" for n, s in self.state.items()]
        return "\n".join(lines)


class Entry:
    """A callable entry point of a model. ``entry(**inputs)`` returns, by kind: forward ->
    the output array (a dict name -> array when there are several); train -> the loss as a
    float (params and state are updated in place); grad -> dict param name -> gradient.
    ``entry.run(inputs, out=None)`` returns (dict of outputs, loss or None) for any kind and
    writes into the arrays of ``out`` (name -> array) instead of allocating."""

    def __init__(self, shared, spec):
        self._shared = shared
        self.spec = spec
        self.name, self.kind = spec.name, spec.kind
        self._bname = spec.name.encode()
        self._in_specs = list(spec.inputs.values())
        self._out_specs = list(spec.outputs.values())
        self._in = (_lib.Tensor * max(1, len(self._in_specs)))()
        self._out = (_lib.Tensor * max(1, len(self._out_specs)))()
        # a run-time batch (docs/dynamic-batch.md): name -> k of the tensors whose axis 0 is
        # k * n, and the shape each call passes (its axis 0 set per call)
        self._dyn, self._shapes = {}, {}
        for arr, specs in ((self._in, self._in_specs), (self._out, self._out_specs)):
            for i, s in enumerate(specs):
                ti = spec._tensor_info[s.name]
                shape = ti.shape
                if ti.dyn:
                    self._dyn[s.name] = ti.dyn
                    shape = (ctypes.c_int64 * ti.rank)(*[ti.shape[k] for k in range(ti.rank)])
                    self._shapes[s.name] = shape
                arr[i].name, arr[i].dtype, arr[i].rank, arr[i].shape = (
                    ti.name, ti.dtype, ti.rank, shape)
        self._loss = ctypes.c_double()
        # the arguments of lathe_call prepared once: only the data pointers change per call
        self._in_ref, self._out_ref = ctypes.byref(self._in), ctypes.byref(self._out)
        self._n_in, self._n_out = len(self._in_specs), len(self._out_specs)
        self._loss_ref = ctypes.byref(self._loss)

    def __repr__(self):
        return repr(self.spec)

    def __call__(self, **inputs):
        outputs, loss = self.run(inputs)
        if self.kind == "train":
            return loss
        if self.kind == "grad" or len(outputs) != 1:
            return outputs
        return next(iter(outputs.values()))

    def _batch(self, inputs):
        """The run-time batch n of a call: the rows of the first dynamic input over its k
        (1 <= n <= the bound), or None for a static entry."""
        for s in self._in_specs:
            k = self._dyn.get(s.name)
            if not k or s.name not in inputs:
                continue
            rows = np.shape(inputs[s.name])[0] if np.ndim(inputs[s.name]) else 0
            if rows < k or rows % k or rows > s.shape[0]:
                raise ShapeError(f"input '{s.name}' of entry '{self.name}' has {rows} rows; "
                                 f"the model takes a multiple of {k}, at most {s.shape[0]} "
                                 f"(its run-time batch)\n")
            return rows // k
        return None

    def _at(self, s, n):
        """spec s at run-time batch n (itself when static)"""
        k = self._dyn.get(s.name)
        if not k or n is None:
            return s
        return Spec(s.name, s.code, (k * n,) + tuple(s.shape[1:]))

    def _inputs(self, inputs, n=None):
        """Checked arrays in the order of the entry's inputs."""
        arrays = []
        for s in self._in_specs:
            s = self._at(s, n)
            try:
                obj = inputs[s.name]
            except KeyError:
                raise MissingInputError(f"entry '{self.name}': missing input '{s.name}' "
                                        f"({s!r})\n") from None
            if not (type(obj) is np.ndarray and obj.dtype == s.dtype and obj.shape == s.shape
                    and obj.flags.c_contiguous and obj.flags.aligned):
                obj = as_input(obj, s, f"input '{s.name}' of entry '{self.name}'")
            arrays.append(obj)
        if len(inputs) != len(arrays):
            for name in inputs:
                if name not in self.spec.inputs:
                    raise UnknownNameError(_unknown(f"input of entry '{self.name}' named",
                                                    name, self.spec.inputs))
        return arrays

    def _outputs(self, out, n=None):
        arrays = {}
        for s in self._out_specs:
            s = self._at(s, n)
            given = out.get(s.name) if out else None
            arrays[s.name] = (np.empty(s.shape, s.dtype) if given is None else
                              as_output(given, s, f"output '{s.name}' of entry '{self.name}'"))
        for name in out or ():
            if name not in self.spec.outputs:
                raise UnknownNameError(_unknown(f"output of entry '{self.name}' named", name,
                                                self.spec.outputs))
        return arrays

    def run(self, inputs, out=None):
        """(dict name -> output array, loss or None) of one call; see the class comment."""
        n = self._batch(inputs) if self._dyn else None
        ins = self._inputs(inputs, n)
        outs = self._outputs(out, n)
        sh = self._shared
        with sh.lock:
            ptr = sh.ptr()
            cptr = sh.handle.cptr
            for name, shape in self._shapes.items():  # the batch of this call (under the lock)
                shape[0] = self._dyn[name] * n
            for t, a in zip(self._in, ins):
                t.data = _address(a)
            for t, a in zip(self._out, outs.values()):
                t.data = _address(a)
            rc = sh.call(cptr, self._bname, self._in_ref, self._n_in, self._out_ref,
                             self._n_out, self._loss_ref)
            if rc != 0:
                raise CallError(sh.lib.lathe_error(ptr).decode("utf-8", "replace"))
            loss = self._loss.value if self.spec.returns_loss else None
        return outs, loss


_from_buffer, _addressof = ctypes.c_char.from_buffer, ctypes.addressof


def _address(a):
    """The data address of a C-contiguous ndarray. A ctypes view of its buffer is ~5x
    cheaper than a.ctypes.data, which stays the way for read-only and empty arrays."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError):
        return a.ctypes.data


class Model:
    """A lathe model: made by lathe.compile() or lathe.load(), never directly.

    ``model(**inputs)`` / ``model.forward(**inputs)`` run the forward entry;
    ``model.train_step(**inputs)`` runs one training step and returns the loss;
    ``model.grad(**inputs)`` returns d loss / d param (compile with grad=True);
    ``model.entry(name)`` is any entry point; ``model.params`` / ``model.state`` are zero-copy
    views; ``state_dict``/``load_state_dict``/``save``/``load_weights`` move weights;
    ``info`` describes the model; ``c_source`` is the generated C.
    """

    def __init__(self, ptr, origin):
        self._shared = _Shared(ptr, origin)
        self._lib = self._shared.lib
        self._lock = self._shared.lock
        self._origin = origin  # the file or name it came from, for messages
        backend = self._lib.lathe_backend(ptr).decode()
        mi = self._lib.lathe_info(ptr)[0]
        if mi.version != _lib.MODEL_INFO_VERSION:
            raise Error(f"{origin}: descriptor version {mi.version}, this package reads "
                        f"version {_lib.MODEL_INFO_VERSION}\n")
        self.info = Info(mi, backend)
        self.name = self.info.name
        self._shared.label = f"model '{self.name}' ({origin})"
        self._entries = {n: Entry(self._shared, s) for n, s in self.info.entries.items()}
        self.params = TensorViews("param", self._views(self.info.params), self.info.params)
        self.state = TensorViews("state tensor", self._views(self.info.state), self.info.state)

    def _views(self, specs):
        views, ptr = {}, self._ptr()
        for name, spec in specs.items():
            address = self._lib.lathe_tensor_data(ptr, name.encode(), None)
            if not address:
                raise Error(f"model '{self.name}': no memory for '{name}'\n")
            views[name] = np.asarray(_Memory(address, spec, self._shared.handle))
        return views

    def _ptr(self):
        return self._shared.ptr()

    def __repr__(self):
        state = "closed" if self._shared.handle is None else self.info.backend
        return f"<lathe.Model {self.name} from {self._origin} ({state})>"

    # ---- calls -------------------------------------------------------------------------

    def entry(self, name):
        """The entry point `name` ("forward", "train", "grad", "train_disc", ...)."""
        self._ptr()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(_unknown("entry point", name, self._entries)) from None

    def _entry_of_kind(self, kind, hint):
        self._ptr()
        if kind in self._entries:
            return self._entries[kind]
        for e in self._entries.values():
            if e.kind == kind:
                return e
        raise UnknownNameError(f"model '{self.name}' has no {kind} entry ({hint}); it has: "
                               f"{', '.join(self._entries)}\n")

    def forward(self, **inputs):
        """The forward entry: its output array, or a dict of them when there are several."""
        return self._entry_of_kind("forward", "no output?")(**inputs)

    __call__ = forward

    def train_step(self, **inputs):
        """One step of the (first) train entry: updates params and state, returns the loss."""
        return self._entry_of_kind("train", "does the model have a train block?")(**inputs)

    def grad(self, **inputs):
        """d loss / d param for every param (dict name -> array), params left unchanged."""
        return self._entry_of_kind("grad", "compile with grad=True")(**inputs)

    # ---- training ----------------------------------------------------------------------

    def fit(self, data, *, epochs=1, val=None, val_split=0.0, early_stop=0, monitor="val_loss",
            min_delta=0.0, restore_best=True, checkpoint=None, best_checkpoint=None, log=None,
            seed=0, limit=0, task=None, progress=None):
        """Trains in place with the runtime trainer of `lathe train` (lathe_fit): data is a
        dict of arrays (name -> samples along axis 0) bound to the train entry's inputs by
        name, or a `lathe train --data` spec string; val likewise (or val_split, a seeded
        stratified hold-out). Returns the history: one dict per epoch (epoch, loss, val_loss,
        val_accuracy, ..., lr_scale, seconds). progress: None = a bar only on a terminal."""
        from . import _fit

        return _fit.fit(self, data, dict(epochs=epochs, val=val, val_split=val_split,
                                         early_stop=early_stop, monitor=monitor,
                                         min_delta=min_delta, restore_best=restore_best,
                                         checkpoint=checkpoint, best_checkpoint=best_checkpoint,
                                         log=log, seed=seed, limit=limit, task=task,
                                         progress=progress))

    def evaluate(self, data, task=None):
        """The metrics of `lathe eval` (lathe_evaluate) on data (as for fit): a dict with
        task, n, loss and the task's metrics; classification adds ``confusion`` (ndarray,
        row = true class) and ``per_class``. task: "classification", "regression", ...
        (default: inferred from the evaluate entry)."""
        from . import _fit

        return _fit.evaluate(self, data, task)

    def predict(self, data, out=None):
        """The forward entry's first output for every sample of data (lathe_predict, as
        `lathe predict`): written to out (.npy or .csv) if given, else returned as an
        ndarray [n, ...]."""
        import os
        import tempfile

        from . import _fit

        if out is not None:
            return _fit.predict(self, data, out)
        with tempfile.TemporaryDirectory(prefix="lathe-predict-") as d:
            path = os.path.join(d, "out.npy")
            _fit.predict(self, data, path)
            return np.load(path)

    # ---- weights -----------------------------------------------------------------------

    def init(self, seed=0):
        """Re-initialize params and state from a seed (the views stay valid)."""
        with self._lock:
            self._lib.lathe_init(self._ptr(), int(seed))

    def state_dict(self, with_state=True):
        """A copy of every param (and state tensor): dict name -> ndarray."""
        self._ptr()
        d = {n: v.copy() for n, v in self.params.items()}
        if with_state:
            d.update((n, v.copy()) for n, v in self.state.items())
        return d

    def load_state_dict(self, d, strict=True):
        """Copies arrays into params/state by name (checked dtype and shape). An unknown name
        is an UnknownNameError; with strict, every param must be present."""
        self._ptr()
        for name in d:
            if name not in self.params and name not in self.state:
                raise UnknownNameError(_unknown("param or state tensor", name,
                                                list(self.params) + list(self.state)))
        if strict:
            missing = [n for n in self.params if n not in d]
            if missing:
                raise MissingInputError(f"load_state_dict: missing params {missing} "
                                        "(strict=False loads a subset)\n")
        with self._lock:
            for name, value in d.items():
                views = self.params if name in self.params else self.state
                views[name] = value

    def save(self, path, with_state=True):
        """Writes params (and the optimizer state) as safetensors, atomically."""
        with self._lock:
            ptr = self._ptr()
            if self._lib.lathe_save(ptr, _path(path), int(bool(with_state))) != 0:
                raise CallError(self._lib.lathe_error(ptr).decode("utf-8", "replace"))

    def load_weights(self, path):
        """Reads a safetensors checkpoint: every param, and state tensors when present."""
        with self._lock:
            ptr = self._ptr()
            if self._lib.lathe_load(ptr, _path(path)) != 0:
                raise CallError(self._lib.lathe_error(ptr).decode("utf-8", "replace"))

    # ---- text --------------------------------------------------------------------------

    @property
    def c_source(self):
        """The generated C of a compiled model (Error for one loaded from a .so)."""
        text = _lib.take_string(self._lib.lathe_c_source(self._ptr()))
        if not text:
            raise Error(f"model '{self.name}' was loaded from {self._origin}: no C source\n")
        return text

    def ir(self, entry="forward"):
        """The IR of an entry after the pass pipeline (text)."""
        with self._lock:
            ptr = self._ptr()
            text = self._lib.lathe_ir_text(ptr, entry.encode())
            if not text:
                err = self._lib.lathe_error(ptr).decode("utf-8", "replace")
                raise UnknownNameError(err or f"model '{self.name}' has no IR "
                                       f"(loaded from {self._origin})\n")
            return _lib.take_string(text)

    # ---- lifetime ----------------------------------------------------------------------

    def close(self):
        """Releases the model: further calls raise ClosedError. Its memory is freed once no
        params/state view refers to it."""
        with self._lock:
            self._shared.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _path(path):
    import os

    return os.fsencode(os.fspath(path))
