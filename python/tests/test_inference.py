"""Inference from Python equals the CLI bit for bit (same JIT, same weights, same input) and
PyTorch's fixture outputs to 1e-5: the MLP and the CNN; and a `lathe build` shared object
opened with lathe.load() equals `lathe run LIB.so` bit for bit."""

import os

import numpy as np
import pytest

import lathe
from conftest import EXAMPLES, FIXTURES, run_cli


def _cli_forward(model_file, fixture, tmp, n, name="probs"):
    w = os.path.join(FIXTURES, fixture, "weights.safetensors")
    x = os.path.join(FIXTURES, fixture, "x.npy")
    run_cli("run", model_file, "-D", f"N={n}", "--weights", w, "--input", f"x={x}", "--out",
            tmp)
    return np.load(os.path.join(tmp, f"{name}.npy"))


def test_mlp_forward_equals_cli_bit_for_bit(mlp, mlp_batch, tmp):
    x, _ = mlp_batch
    got = mlp(x=x)
    want = _cli_forward(os.path.join(EXAMPLES, "mlp.lathe"), "mlp", tmp, 64)
    assert got.dtype == np.float32 and got.shape == (64, 10)
    assert np.array_equal(got, want)
    torch_probs = np.load(os.path.join(FIXTURES, "mlp", "probs.npy"))
    assert np.max(np.abs(got - torch_probs)) <= 1e-5
    assert np.array_equal(mlp.forward(x=x), got)  # forward and __call__ are the same entry


def test_cnn_forward_equals_cli_bit_for_bit(tmp):
    x = np.load(os.path.join(FIXTURES, "cnn", "x.npy"))
    n = x.shape[0]
    cnn = lathe.compile(os.path.join(EXAMPLES, "cnn.lathe"), defines={"N": n})
    cnn.load_weights(os.path.join(FIXTURES, "cnn", "weights.safetensors"))
    got = cnn(x=x)
    want = _cli_forward(os.path.join(EXAMPLES, "cnn.lathe"), "cnn", tmp, n)
    assert np.array_equal(got, want)
    torch_probs = np.load(os.path.join(FIXTURES, "cnn", "probs.npy"))
    assert np.max(np.abs(got - torch_probs)) <= 1e-5


def test_source_text_and_defines():
    src = open(os.path.join(EXAMPLES, "mlp.lathe")).read()
    m = lathe.compile(src, defines={"N": 2}, name="mlp_text.lathe", seed=3)
    assert m.info.inputs["x"].shape == (2, 784)
    assert m.info.params["h1.w"].shape == (784, 256)
    assert m(x=np.zeros((2, 784), np.float32)).shape == (2, 10)
    assert "mlp_forward" in m.c_source


def test_prefix_names_the_generated_c():
    src = open(os.path.join(EXAMPLES, "mlp.lathe")).read()
    plain = lathe.compile(src, defines={"N": 2}, name="mlp_text.lathe", seed=3, train=False)
    m = lathe.compile(src, defines={"N": 2}, name="mlp_text.lathe", seed=3, train=False,
                      prefix="mlp2")
    assert m.name == "mlp2" and m.info.entries["forward"].kind == "forward"
    assert "void mlp2_forward(" in m.c_source and "mlp_forward" not in m.c_source
    x = np.linspace(-1, 1, 2 * 784, dtype=np.float32).reshape(2, 784)
    assert np.array_equal(m(x=x), plain(x=x))
    with pytest.raises(lathe.CompileError, match="invalid symbol prefix '2x'"):
        lathe.compile(src, prefix="2x")


def test_dynamic_batch_takes_any_rows_up_to_the_bound():
    src = open(os.path.join(EXAMPLES, "mlp.lathe")).read()
    dyn = lathe.compile(src, defines={"N": "dynamic(max=8)"}, name="mlp_dyn.lathe", seed=3)
    x = np.linspace(-1, 1, 8 * 784, dtype=np.float32).reshape(8, 784)
    for n in (1, 5, 8):
        fixed = lathe.compile(src, defines={"N": n}, name="mlp_fix.lathe", seed=3)
        dyn.init(3)  # the params before the previous n's train step
        y = dyn(x=x[:n])
        assert y.shape == (n, 10)
        # the same math; a fixed batch of 1 takes another matmul kernel (rounding differs)
        np.testing.assert_allclose(y, fixed(x=x[:n]), rtol=1e-5, atol=1e-7)
        label = np.arange(n, dtype=np.int32) % 10
        loss = dyn.train_step(x=x[:n], label=label)
        assert abs(loss - fixed.train_step(x=x[:n], label=label)) <= 1e-5 * abs(loss)
    with pytest.raises(lathe.ShapeError, match="has 9 rows; the model takes a multiple of 1, "
                                               "at most 8"):
        dyn(x=np.zeros((9, 784), np.float32))


def test_info_describes_the_model(mlp):
    info = mlp.info
    assert info.name == "mlp" and info.backend in ("jit", "cc")
    assert set(info.entries) >= {"forward", "train", "grad"}
    fwd = info.entries["forward"]
    assert fwd.kind == "forward" and list(fwd.outputs) == ["probs"]
    assert fwd.inputs["x"].dtype == np.float32 and fwd.inputs["x"].shape == (64, 784)
    assert info.inputs["label"].dtype == np.int32
    assert info.entries["train"].returns_loss
    assert [(n, s.shape) for n, s in info.params.items()][:2] == [
        ("h1.w", (784, 256)), ("h1.b", (256,))]
    assert "entry forward" in repr(info) and "param h1.w: f32[784, 256]" in repr(info)


def test_preallocated_outputs(mlp, mlp_batch):
    x, _ = mlp_batch
    out = np.full((64, 10), np.nan, np.float32)
    outs, loss = mlp.entry("forward").run({"x": x}, out={"probs": out})
    assert outs["probs"] is out and loss is None
    assert np.array_equal(out, mlp(x=x))


def test_strided_and_list_inputs_are_copied_only_then(mlp, mlp_batch):
    x, _ = mlp_batch
    wide = np.zeros((64, 2 * 784), np.float32)
    wide[:, ::2] = x
    assert np.array_equal(mlp(x=wide[:, ::2]), mlp(x=x))  # strided: copied, same result
    small = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 1})
    row = x[0].tolist()
    assert np.array_equal(small(x=[row]), small(x=x[:1]))  # a list takes the model's dtype


def test_built_shared_object_equals_compiled(mlp, mlp_batch, tmp):
    so = os.path.join(tmp, "libmymlp.so")
    run_cli("build", os.path.join(EXAMPLES, "mlp.lathe"), "-o", so)
    m = lathe.load(so)
    assert m.name == "mlp" and "train" in m.info.entries
    m.load_weights(os.path.join(FIXTURES, "mlp", "weights.safetensors"))
    x, label = mlp_batch
    got = m(x=x)
    run_cli("run", so, "--weights", os.path.join(FIXTURES, "mlp", "weights.safetensors"),
            "--input", f"x={os.path.join(FIXTURES, 'mlp', 'x.npy')}", "--out", tmp / "cli")
    assert np.array_equal(got, np.load(tmp / "cli" / "probs.npy"))  # `lathe run LIB.so`
    assert np.max(np.abs(got - mlp(x=x))) <= 1e-6  # cc's build vs the JIT: contractions differ
    loss = m.train_step(x=x, label=label)
    assert 0 < loss < 10 and not np.array_equal(m.params["h1.w"], mlp.params["h1.w"])
    for name in m.params:
        assert m.params[name].shape == mlp.params[name].shape
    try:
        m.c_source
        raise AssertionError("a loaded .so has no C source")
    except lathe.Error as e:
        assert "no C source" in str(e)


def test_threads_and_ir(mlp_batch):
    x, _ = mlp_batch
    one = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), backend="cc", seed=4)
    two = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), backend="cc", seed=4, threads=2)
    assert "pragma omp" in two.c_source and "pragma omp" not in one.c_source
    assert np.max(np.abs(two(x=x) - one(x=x))) <= 1e-6
    text = one.ir("forward")
    assert "matmul" in text or "gemm" in text.lower()
    with pytest.raises(lathe.UnknownNameError, match="no entry point 'nope'"):
        one.ir("nope")
