#!/usr/bin/python3
"""Makes tests/fixtures/qat_grouped/: PyTorch's quantization-aware training of
tests/int8/qat_grouped.lathe (a depthwise and a grouped convolution, issue 19).

Run with Debian's python3-torch:  /usr/bin/python3 tests/int8/make_qat_grouped_fixture.py
The rules are tests/fixtures/make_qat_fixture.py's (its fake quantization, moving-average
ranges, SGD step and files): the grouped convolutions are torch's F.conv2d with `groups`, their
weights fake-quantized per output channel (axis 0 of [O, C / groups, kh, kw]) like any conv's.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import make_qat_fixture as qat  # noqa: E402


def forward_grouped(p, x, label, ranges):
    def act(name, t):
        return qat.fq_act(t, qat.observe(ranges, name, t))

    def conv(t, name, groups):
        return F.conv2d(t, qat.fq_weight(p[name + ".w"], 0), p[name + ".b"], padding=1,
                        groups=groups)

    xq = act("c1.qat_in", x)
    c1 = act("c1.qat_out", torch.relu(conv(xq, "c1", 1)))
    dw = act("dw.qat_out", torch.relu(conv(c1, "dw", 4)))  # depthwise, 2 outputs per channel
    g = act("g.qat_out", conv(dw, "g", 2))
    r = act("r.qat_add", torch.relu(c1 + g))  # a qadd with its ReLU fused
    pool = F.max_pool2d(r, 2)
    h = act("h.qat_out", torch.relu(torch.flatten(pool, 1) @ qat.fq_weight(p["h.w"], 1) + p["h.b"]))
    logits = h @ p["logits.w"] + p["logits.b"]
    return F.cross_entropy(logits, label.long())


def params_grouped():
    return {
        "c1.w": torch.randn(4, 2, 3, 3) * 0.4, "c1.b": torch.randn(4) * 0.1,
        "dw.w": torch.randn(8, 1, 3, 3) * 0.5, "dw.b": torch.randn(8) * 0.1,
        "g.w": torch.randn(4, 4, 3, 3) * 0.3, "g.b": torch.randn(4) * 0.1,
        "h.w": torch.randn(36, 12) * 0.3, "h.b": torch.randn(12) * 0.1,
        "logits.w": torch.randn(12, 5) * 0.3, "logits.b": torch.randn(5) * 0.1,
    }


if __name__ == "__main__":
    qat.MODELS["grouped"] = ("qat_grouped", params_grouped, forward_grouped, (8, 2, 6, 6), 29)
    qat.make("grouped")
