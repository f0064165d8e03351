"""Every bad input raises the right lathe.Error subclass with a message saying what was
expected: wrong dtype, wrong shape, missing input, unknown input/param/entry name, calling
after close, a model source error (file:line:col and a caret), bad checkpoints and files."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lathe
from conftest import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def small():
    return lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 2})


def _x(n=2):
    return np.zeros((n, 784), np.float32)


def test_wrong_dtype(small):
    with pytest.raises(lathe.DTypeError) as e:
        small(x=np.zeros((2, 784), np.float64))
    assert "input 'x' of entry 'forward' is f64[2, 784], but the model expects f32[2, 784]" \
        in str(e.value)
    assert isinstance(e.value, TypeError) and isinstance(e.value, lathe.Error)
    with pytest.raises(lathe.DTypeError, match="label.*is i64\\[2\\].*expects i32\\[2\\]"):
        small.train_step(x=_x(), label=np.zeros(2, np.int64))


def test_wrong_shape(small):
    with pytest.raises(lathe.ShapeError, match=r"is f32\[3, 784\], but the model expects "
                                                r"f32\[2, 784\]"):
        small(x=_x(3))
    with pytest.raises(ValueError):  # a ShapeError is a ValueError too
        small(x=np.zeros((2, 28, 28), np.float32))


def test_missing_and_unknown_inputs(small):
    with pytest.raises(lathe.MissingInputError, match=r"missing input 'label' \(i32\[2\]\)"):
        small.train_step(x=_x())
    with pytest.raises(lathe.UnknownNameError, match="no input of entry 'forward' named 'y'; "
                                                     "the model has: 'x'"):
        small(x=_x(), y=_x())
    with pytest.raises(lathe.UnknownNameError, match="no output of entry 'forward' named"):
        small.entry("forward").run({"x": _x()}, out={"logits": np.zeros((2, 10), np.float32)})


def test_unknown_names(small):
    with pytest.raises(lathe.UnknownNameError, match="no param 'h9.w'; the model has: 'h1.w'"):
        small.params["h9.w"]
    with pytest.raises(KeyError):
        small.params["nope"] = np.zeros(3, np.float32)
    with pytest.raises(lathe.UnknownNameError, match="no param or state tensor 'fc1.weight'"):
        small.load_state_dict({"fc1.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(lathe.UnknownNameError, match="no entry point 'predict'; the model "
                                                     "has: 'forward', 'train'"):
        small.entry("predict")
    with pytest.raises(lathe.UnknownNameError, match="no grad entry \\(compile with grad=True"):
        small.grad(x=_x(), label=np.zeros(2, np.int32))


def test_param_assignment_is_checked(small):
    with pytest.raises(lathe.ShapeError, match=r"param 'h1.b' is f32\[255\], but the model "
                                                r"expects f32\[256\]"):
        small.params["h1.b"] = np.zeros(255, np.float32)
    with pytest.raises(lathe.MissingInputError, match="missing params"):
        small.load_state_dict({"h1.b": np.zeros(256, np.float32)})


def test_call_after_close():
    m = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 2})
    with m:
        m(x=_x())
    for call in (lambda: m(x=_x()), lambda: m.train_step(x=_x(), label=np.zeros(2, np.int32)),
                 lambda: m.save("/tmp/never.safetensors"), lambda: m.state_dict(),
                 lambda: m.entry("forward"), lambda: m.c_source):
        with pytest.raises(lathe.ClosedError, match="model 'mlp' .* is closed"):
            call()
    assert "closed" in repr(m)


def test_source_error_has_file_line_col_and_caret():
    src = "model bad(x: f32[4]) {\n  output y = relu(x) + nosuch\n}\n"
    with pytest.raises(lathe.CompileError) as e:
        lathe.compile(src, name="bad.lathe")
    text = e.value.diagnostics
    assert "bad.lathe:2:" in text and "error" in text and "nosuch" in text and "^" in text
    assert str(e.value) == text.rstrip("\n")
    with pytest.raises(lathe.CompileError, match="/nonexistent/x.lathe"):
        lathe.compile("/nonexistent/x.lathe")


def test_bad_compile_arguments():
    with pytest.raises(ValueError, match="backend must be one of auto, cc, jit, got 'gpu'"):
        lathe.compile("x.lathe", backend="gpu")
    with pytest.raises(TypeError, match="define 'N': expected an int or"):
        lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 2.5})
    with pytest.raises(lathe.CompileError, match="unknown|no const|N2"):
        lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N2": 2})


def test_bad_checkpoints_and_shared_objects(small, tmp):
    with pytest.raises(lathe.CallError, match="nosuch.safetensors"):
        small.load_weights(tmp / "nosuch.safetensors")
    (tmp / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(lathe.CallError, match="junk.safetensors"):
        small.load_weights(tmp / "junk.safetensors")
    with pytest.raises(lathe.CompileError, match="cannot load"):
        lathe.load(tmp / "nosuch.so")
    libz = [p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
                        "/lib/aarch64-linux-gnu/libz.so.1") if os.path.exists(p)]
    assert libz, "zlib1g (a lathe dependency) not found"
    with pytest.raises(lathe.CompileError, match="no symbol 'z_info' \\(is it a lathe model"):
        lathe.load(libz[0])
    with pytest.raises(ValueError, match="expected the path of a shared object"):
        lathe.load("")


def test_torch_tensor_that_requires_grad():
    import torch  # python3-torch is a test dependency (scripts/install-deps.sh): no skipping
    m = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 2})
    with pytest.raises(lathe.InputError, match="detach"):
        m(x=torch.zeros((2, 784), requires_grad=True))


def test_library_not_found_is_a_clear_error(tmp):
    env = dict(os.environ, LATHE_LIBRARY=str(tmp / "missing.so"),
               PYTHONPATH=os.path.join(ROOT, "python"))
    code = "import lathe\ntry:\n lathe.library_path()\nexcept lathe.LibraryError as e:\n print(e)"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "LATHE_LIBRARY=" in p.stdout and "no such file" in p.stdout, p.stdout + p.stderr


def test_a_batch_of_one_cannot_train_a_batch_norm():
    """docs/dynamic-batch.md: with a run-time batch, a batch norm over [N, C] sees one value
    per channel in a batch of 1; train and grad refuse it (PyTorch's words in the message)
    and change nothing, forward runs; fit evens an epoch's last batch of 1 (9 samples at a
    bound of 8: 7 + 2), so the running statistics stay finite."""
    src = ("import nn\nconst N = 8\n"
           "model bn(x: f32[N, 4], t: f32[N, 3]) {\n"
           "  h = batchnorm1d(dense(x, 3))\n  output y = h\n  loss = mean((h - t) * (h - t))\n}\n"
           "train bn {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n")
    m = lathe.compile(src, defines={"N": "dynamic(max=8)"}, name="bn_dyn.lathe", grad=True)
    x, t = np.linspace(-1, 1, 36, dtype=np.float32).reshape(9, 4), np.ones((9, 3), np.float32)
    before = m.state_dict()
    for call in (m.train_step, m.grad):
        with pytest.raises(lathe.CallError,
                           match=r"a batch of 1 cannot train this model: batch norm "
                                 r"'h\.batchnorm1d0' .*Expected more than 1 value per "
                                 r"channel when training"):
            call(x=x[:1], t=t[:1])
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert m(x=x[:1]).shape == (1, 3)
    m.fit({"x": x, "t": t}, epochs=1, task="regression", progress=False)
    assert np.all(np.isfinite(m.state["h.batchnorm1d0.running_var"]))
    assert m.train_step(x=x[:2], t=t[:2]) >= 0
