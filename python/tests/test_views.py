"""params and state are zero-copy views of the model's memory: a write through NumPy is seen
by the next call, a train step shows in them without copying, and they stay valid after the
model is closed."""

import ctypes
import gc
import os
import weakref

import numpy as np

import lathe
from conftest import EXAMPLES


def _fresh():
    return lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 2}, seed=5)


def test_views_are_the_models_memory():
    m = _fresh()
    lib = lathe._lib.lib()
    for name, view in list(m.params.items()) + list(m.state.items()):
        address = lib.lathe_tensor_data(m._ptr(), name.encode(), None)
        assert view.ctypes.data == address, name
        assert view.flags.c_contiguous and view.flags.writeable
        assert view.shape == m.info.params.get(name, m.info.state.get(name)).shape


def test_a_write_through_numpy_is_seen_by_the_next_call():
    m = _fresh()
    x = np.random.default_rng(0).random((2, 784), np.float32)
    before = m(x=x)
    m.params["logits.w"][:] = 0
    m.params["logits.b"][:] = np.arange(10, dtype=np.float32)
    after = m(x=x)
    want = np.exp(np.arange(10)) / np.exp(np.arange(10)).sum()
    assert np.allclose(after, np.tile(want, (2, 1)), atol=1e-6)
    assert not np.allclose(before, after)
    m.params["logits.b"] = np.zeros(10, np.float32)  # item assignment copies into the model
    assert np.allclose(m(x=x), 0.1)


def test_training_updates_are_visible_without_copying():
    m = _fresh()
    w = m.params["h1.w"]
    step = m.state["train.step_count"]
    snapshot = w.copy()
    rng = np.random.default_rng(1)
    m.train_step(x=rng.random((2, 784), np.float32), label=np.array([1, 2], np.int32))
    assert m.params["h1.w"] is w  # the same view object, updated in place
    assert not np.array_equal(w, snapshot)
    assert float(step) == 1.0
    m.init(5)  # re-initialized in place: the view sees it
    assert np.array_equal(w, lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"),
                                           defines={"N": 2}, seed=5).params["h1.w"])


def test_a_view_outlives_the_closed_model():
    m = _fresh()
    w = m.params["h2.w"]
    want = w.copy()
    m.close()
    del m
    gc.collect()
    ctypes.memset(ctypes.create_string_buffer(1 << 20), 1, 1 << 20)  # churn the heap
    assert np.array_equal(w, want)


def test_dropping_a_model_frees_it_at_once():
    gc.disable()  # no reference cycle: freed by reference counting alone
    try:
        m = _fresh()
        handle = weakref.ref(m._shared.handle)
        del m
        assert handle() is None
        m = _fresh()
        w = m.params["h1.w"]
        handle = weakref.ref(m._shared.handle)
        del m
        assert handle() is not None  # the view keeps the memory
        del w
        assert handle() is None
    finally:
        gc.enable()
