"""model.fit / evaluate / predict run the CLI's runtime trainer: on the tabular data of
tests/data (make_data.py), fitting from NumPy arrays reaches the same checkpoint, byte for
byte, as `lathe train` on the same arrays saved as .npy with the same seed and epochs (with
backend="cc", the code the CLI runs; the JIT contracts multiply-adds differently, so it
agrees only to float rounding); evaluate gives `lathe eval --metrics-json`'s numbers exactly;
predict gives `lathe predict`'s outputs; bad data raises lathe.Error subclasses that say what
was expected."""

import json
import os
import subprocess

import numpy as np
import pytest

import lathe
from conftest import ROOT, run_cli

MODEL = os.path.join(ROOT, "tests", "data", "tabular.lathe")
EPOCHS, SEED = 3, 3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """make_data.py's datasets in a temp dir; returns (dir, train arrays, test arrays)."""
    d = tmp_path_factory.mktemp("data")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "data", "make_data.py"),
                    str(d)], check=True)

    def arrays(name):
        return {"x": np.load(d / name / "x.npy"), "label": np.load(d / name / "label.npy")}

    return d, arrays("cls"), arrays("cls_test")


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """The CLI and Python trained the same way: (model, history, tmp dir)."""
    d, train, test = data
    t = tmp_path_factory.mktemp("fit")
    run_cli("train", MODEL, "--data", d / "cls", "--val", d / "cls_test", "--epochs", EPOCHS,
            "--seed", SEED, "--checkpoint", t / "cli.safetensors", "--log", t / "cli.csv")
    m = lathe.compile(MODEL, seed=SEED, backend="cc")
    hist = m.fit(train, epochs=EPOCHS, val=test, seed=SEED, checkpoint=t / "py.safetensors",
                 log=t / "py.csv")
    return m, hist, t


def test_fit_equals_lathe_train_bit_for_bit(fitted):
    m, hist, t = fitted
    cli = (t / "cli.safetensors").read_bytes()
    py = (t / "py.safetensors").read_bytes()
    assert len(cli) > 1000 and cli == py
    # and the model's own params are the trained ones (the checkpoint is of them)
    ref = lathe.compile(MODEL, seed=0)
    ref.load_weights(t / "cli.safetensors")
    for name, w in ref.params.items():
        assert np.array_equal(m.params[name], w), name
    fresh = lathe.compile(MODEL, seed=SEED)
    assert all(not np.array_equal(m.params[n], fresh.params[n]) for n in fresh.params)


def test_history_matches_the_cli_log(fitted):
    _, hist, t = fitted
    assert [h["epoch"] for h in hist] == list(range(1, EPOCHS + 1))
    for h in hist:
        assert {"loss", "val_loss", "val_accuracy", "val_f1", "seconds"} <= set(h)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["val_accuracy"] > 0.8
    assert (t / "py.csv").read_text().splitlines()[0] == (t / "cli.csv").read_text() \
        .splitlines()[0]


def test_evaluate_equals_lathe_eval(fitted, data):
    m, _, t = fitted
    d, _, test = data
    run_cli("eval", MODEL, "-w", t / "cli.safetensors", "--data", d / "cls_test",
            "--metrics-json", t / "eval.json")
    want = json.loads((t / "eval.json").read_text())
    for spec in (test, str(d / "cls_test")):
        got = m.evaluate(spec)
        assert got["task"] == want["task"] == "classification"
        assert got["n"] == want["n"] == 600
        for k in ("loss", "accuracy", "precision", "recall", "f1"):
            assert got[k] == want[k], k
        c = np.array(want["confusion"]).reshape(3, 3)
        assert got["confusion"].dtype == np.int64 and np.array_equal(got["confusion"], c)
        assert got["confusion"].sum() == 600
        assert [got["weighted"][k] for k in ("precision", "recall", "f1")] == want["weighted"]
        for k, p, r, f, s in want["classes"]:
            assert got["per_class"][k] == {"precision": p, "recall": r, "f1": f, "support": s}


def test_predict_equals_lathe_predict(fitted, data):
    m, _, t = fitted
    d, _, test = data
    run_cli("predict", MODEL, "-w", t / "cli.safetensors", "--data", d / "cls_test" / "x.npy",
            "--out", t / "p.npy")
    got = m.predict({"x": test["x"]})
    assert got.shape == (600, 3) and np.array_equal(got, np.load(t / "p.npy"))


def test_fit_from_a_spec_and_val_split(data, tmp_path):
    d, train, _ = data
    a = lathe.compile(MODEL, seed=1)
    b = lathe.compile(MODEL, seed=1)
    ha = a.fit(str(d / "cls"), epochs=2, val_split=0.2, seed=5)
    hb = b.fit(train, epochs=2, val_split=0.2, seed=5)
    assert ha == [{**h, "seconds": ha[i]["seconds"], "data_seconds": ha[i]["data_seconds"]}
                  for i, h in enumerate(hb)]
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])


def test_early_stop_restores_best(data):
    _, train, test = data
    m = lathe.compile(MODEL, seed=SEED)
    hist = m.fit(train, epochs=40, val=test, early_stop=1, monitor="val_loss", min_delta=1.0)
    assert len(hist) == 2  # no epoch improves val_loss by 1.0 on the first one


def _bad(m, data, exc, text):
    with pytest.raises(exc) as e:
        m.fit(data, epochs=1)
    assert isinstance(e.value, lathe.Error)
    assert text in str(e.value), str(e.value)


def test_bad_data_raises_clear_errors(data):
    _, train, _ = data
    m = lathe.compile(MODEL, seed=0)
    before = {n: v.copy() for n, v in m.params.items()}
    _bad(m, {"x": train["x"]}, lathe.MissingInputError, "no array for input 'label'")
    _bad(m, {"x": train["x"][:, :19], "label": train["label"]}, lathe.ShapeError,
         "input 'x' takes (20,) per sample")
    _bad(m, {"x": train["x"], "label": train["label"][:-1]}, lathe.ShapeError,
         "has 1999 samples")
    _bad(m, {"x": train["x"].astype(np.float64), "label": train["label"]}, lathe.DTypeError,
         "input 'x' is float32")
    label = train["label"].copy()
    label[7] = 3
    _bad(m, {"x": train["x"], "label": label}, lathe.DataError,
         "sample 7 of 'label' has label 3; expected a class id in [0, 3)")
    x = train["x"].copy()
    x[5, 2] = np.nan
    _bad(m, {"x": x, "label": train["label"]}, lathe.DataError, "finite")
    _bad(m, "/nonexistent/x.npy", lathe.DataError, "not found")
    _bad(m, [1, 2], lathe.DataError, "expected a dict of NumPy arrays")
    for n, v in before.items():
        assert np.array_equal(m.params[n], v), f"{n} changed by a failed fit"
    with pytest.raises(lathe.DataError, match="give val or val_split"):
        m.fit(train, val=train, val_split=0.1)
    with pytest.raises(lathe.DataError, match="task 'bogus'"):
        m.evaluate(train, task="bogus")


def test_fit_after_close_raises(data):
    _, train, _ = data
    m = lathe.compile(MODEL, seed=0)
    m.close()
    with pytest.raises(lathe.ClosedError):
        m.fit(train)


def test_progress_only_when_asked_or_on_a_terminal(data, capfd):
    _, train, _ = data
    m = lathe.compile(MODEL, seed=0)
    m.fit(train, epochs=1)  # pytest's stderr is not a terminal: silent
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    m.fit(train, epochs=1, progress=True)
    out, err = capfd.readouterr()
    assert out == "" and "epoch 1" in err, err


TEXT_MODEL = """
import nn
const B = 4
const T = 8
const V = 16
model tiny(x: i32[B, T], target: i32[B, T]) {
  tok    = embed(x, V, 8)
  logits = dense(tok, V, bias = false)
  output probs = softmax(logits)
  loss   = cross_entropy(reshape(logits, [B * T, V]), reshape(target, [B * T]))
}
train tiny {
  minimize loss
  optimizer adam(lr = 1e-2)
}
"""


def test_fit_on_text_takes_the_window_and_vocabulary_from_the_model(tmp_path):
    # text=FILE needs the model's T (windows of T + 1 bytes) and V (the vocabulary bound):
    # fit passes the model's descriptor, as `lathe train` does
    text = tmp_path / "t.txt"
    text.write_text("abcab cab abc, cabba! " * 40)
    m = lathe.compile(TEXT_MODEL, seed=0, backend="cc")
    hist = m.fit(f"text={text}", epochs=3, seed=1)
    assert len(hist) == 3 and hist[-1]["loss"] < hist[0]["loss"]
    # more distinct bytes than the model's 16 embedding rows: an error naming the bound
    wide = tmp_path / "wide.txt"
    wide.write_text("".join(chr(c) for c in range(33, 33 + 40)) * 4)
    with pytest.raises(lathe.DataError, match="16"):
        m.fit(f"text={wide}", epochs=1)
