"""Shared fixtures of the Python package's tests. ctest runs them through run.sh with
LATHE_LIBRARY (the build's liblathe.so), LATHE_BIN (the lathe CLI) and LATHE_SOURCE_DIR set;
run by hand they default to the source tree's build/."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.environ.get("LATHE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import lathe  # noqa: E402

LATHE_BIN = os.environ.get("LATHE_BIN") or os.path.join(ROOT, "build", "lathe")
EXAMPLES = os.path.join(ROOT, "examples")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def run_cli(*args):
    """Runs the lathe CLI; fails the test with its stderr when it fails."""
    p = subprocess.run([LATHE_BIN, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, f"lathe {' '.join(map(str, args))} failed:\n{p.stderr}"
    return p


@pytest.fixture(scope="session")
def mlp():
    """examples/mlp.lathe (batch 64) with its grad entry, PyTorch fixture weights loaded."""
    m = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), grad=True)
    m.load_weights(os.path.join(FIXTURES, "mlp", "weights.safetensors"))
    return m


@pytest.fixture(scope="session")
def mlp_batch():
    d = os.path.join(FIXTURES, "mlp")
    return np.load(os.path.join(d, "x.npy")), np.load(os.path.join(d, "label.npy"))


@pytest.fixture
def tmp(tmp_path):
    return tmp_path
