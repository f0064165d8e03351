"""No leak across 10,000 calls: Python-side allocations (tracemalloc) and the process's
resident memory (RSS) do not grow while the batch-1 MLP runs forward and train steps."""

import os
import resource
import tracemalloc

import numpy as np

import lathe
from conftest import EXAMPLES

CALLS = 10_000


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def test_no_leak_across_10000_calls():
    m = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), defines={"N": 1})
    x = np.random.default_rng(0).random((1, 784), np.float32)
    label = np.array([3], np.int32)

    def calls(n):
        for i in range(n):
            if i % 2:
                m(x=x)
            else:
                m.train_step(x=x, label=label)

    calls(1000)  # warm up: caches, allocator pools
    tracemalloc.start()
    rss0 = _rss_bytes()
    py0, _ = tracemalloc.get_traced_memory()
    calls(CALLS)
    py1, _ = tracemalloc.get_traced_memory()
    rss1 = _rss_bytes()
    tracemalloc.stop()
    assert py1 - py0 < 16 * 1024, f"Python allocations grew by {py1 - py0} bytes"
    assert rss1 - rss0 < 2 * 1024 * 1024, f"RSS grew by {rss1 - rss0} bytes"
