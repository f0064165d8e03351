"""The GIL is released while a model computes (ctypes.CDLL drops it around foreign calls):
the main thread keeps running Python while another thread is inside a train step; and one
model's calls from several threads are serialized, giving the same results as in sequence."""

import os
import sys
import threading
import time

import numpy as np

import lathe
from conftest import EXAMPLES


def test_python_runs_while_a_model_computes():
    m = lathe.compile(os.path.join(EXAMPLES, "cnn.lathe"), defines={"N": 16})
    x = np.random.default_rng(0).random((16, 1, 28, 28), np.float32)
    label = np.zeros(16, np.int32)
    windows, ticks, done = [], [], threading.Event()

    def work():
        for _ in range(3):
            t0 = time.perf_counter()
            m.train_step(x=x, label=label)
            windows.append((t0, time.perf_counter()))
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # a thread holding the GIL would give it up only briefly
    try:
        worker = threading.Thread(target=work)
        worker.start()
        while not done.is_set():
            ticks.append(time.perf_counter())
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    # the middle third of a call is C only: Python runs there only if the GIL was released
    inside = [t for t in ticks for a, b in windows if a + (b - a) / 3 < t < b - (b - a) / 3]
    assert inside, "the main thread never ran during a train step: the GIL was held"


def test_calls_from_threads_are_serialized():
    m = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 4})
    xs = [np.random.default_rng(i).random((4, 784), np.float32) for i in range(8)]
    want = [m(x=x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(50):
            got[i] = m(x=xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
