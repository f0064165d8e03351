"""bench/torch_gpt.py — the PyTorch peer of the GPT decode step (bench/gpt_decode.sh).

The architecture of examples/gpt.lathe at batch 1: token embedding [V, D], four Llama blocks
(RMSNorm eps 1e-6; q/k/v/out projections without bias; rotary embeddings, rotate-half, base
10000; grouped-query attention, 4 query heads over 2 key/value heads; a SwiGLU MLP of 352), a
final RMSNorm and a bias-free head. One decode step takes a token id and its position pos,
writes the token's key and value at row pos of a KV cache [L, B, KV_HEADS, TMAX, DH]
(TMAX = 64) and attends over the cache rows 0..pos: by default over all TMAX rows with the rows
after pos masked (what lathe's step does, so every shape is static; `--attention prefix` attends
over the first pos + 1 rows only).

  torch_gpt.py weights -o W.safetensors --ref REF.bin [--seed S] [--with-state]
      random weights from a fixed seed, written as safetensors with lathe's param names and
      layouts (a dense weight is [in, out]: torch's Linear weight transposed; --with-state adds
      the step's state k_cache and v_cache, zero, which `lathe compile --bake` reads), and
      REF.bin: the TMAX token ids of a random prompt (int32) and the step's logits at every
      position ([TMAX, V] float32), both little-endian. Checks first that the step fed token
      by token gives the full-sequence causal forward's logits (max |diff| <= 1e-4 * max
      |logit|).
  torch_gpt.py time -w W.safetensors [--attention masked|prefix] [--reps R] [--min-time S]
      median seconds per step, eager, under inference_mode, one thread; positions run
      0..TMAX-1 and around again (the cache's stale rows are masked), tokens from a fixed list
  torch_gpt.py export -w W.safetensors -o STEP.onnx
      the step as ONNX (opset 17): inputs tok int64 [1], pos int64 [], k_cache, v_cache;
      outputs logits [1, V], k_cache_out, v_cache_out (the caches with row pos written: a
      `where` over the cache, as the exporter has no in-place write)

Output (stdout): `seconds <median per step>` for time. Errors: a message, exit status 1.
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch

from torch_mlp import time_calls  # also sets one intra-op and one inter-op thread

torch.set_num_threads(1)

V, D, HEADS, KV_HEADS, HIDDEN, L, TMAX = 96, 128, 4, 2, 352, 4, 64
DH = D // HEADS
EPS = 1e-6


def param_shapes():
    """lathe's params of examples/gpt.lathe in its order, with lathe's shapes."""
    shapes = [("tok.table", (V, D))]
    for b in range(1, L + 1):
        p = f"b{b}."
        shapes += [(p + "norm1.gamma", (D,)), (p + "attn.query.w", (D, D)),
                   (p + "attn.key.w", (D, KV_HEADS * DH)), (p + "attn.value.w", (D, KV_HEADS * DH)),
                   (p + "attn.out.w", (D, D)), (p + "norm2.gamma", (D,)),
                   (p + "mlp.gate.w", (D, HIDDEN)), (p + "mlp.up.w", (D, HIDDEN)),
                   (p + "mlp.down.w", (HIDDEN, D))]
    return shapes + [("norm.gamma", (D,)), ("logits.w", (D, V))]


def random_weights(seed):
    """Embedding N(0, 1), Glorot-uniform projections, gammas 1 + N(0, 0.1) (not all ones, so a
    gamma read from the wrong place shows)."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in param_shapes():
        if name == "tok.table":
            w = torch.randn(shape, generator=gen)
        elif name.endswith(".gamma"):
            w = 1 + 0.1 * torch.randn(shape, generator=gen)
        else:
            a = math.sqrt(6 / (shape[0] + shape[1]))
            w = (torch.rand(shape, generator=gen) * 2 - 1) * a
        weights[name] = w.float().contiguous()
    return weights


def write_atomic(path, chunks):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".torch_gpt-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_safetensors(path, weights):
    header, offset, blobs = {}, 0, []
    for name in weights:
        blob = weights[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(weights[name].shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    write_atomic(path, [struct.pack("<Q", len(text)), text] + blobs)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    weights = {}
    for name, shape in param_shapes():
        if name not in header:
            sys.exit(f"torch_gpt.py: {path}: no tensor '{name}'")
        t = header[name]
        if t["dtype"] != "F32" or tuple(t["shape"]) != shape:
            sys.exit(f"torch_gpt.py: {path}: '{name}' is {t['dtype']} {t['shape']}, "
                     f"expected F32 {list(shape)}")
        a, b = t["data_offsets"]
        weights[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], "<f4")
                                         .reshape(shape).copy())
    return weights


def rms_norm(x, gamma):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS) * gamma


def rotate(x, cos, sin):
    """Rotate-half rotary embedding of x [..., DH] by angles whose cos/sin are [..., DH/2]."""
    x1, x2 = x[..., :DH // 2], x[..., DH // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class GptStep(torch.nn.Module):
    """examples/gpt.lathe's weights; step() is one token with the KV cache, full() the causal
    forward over a whole sequence (the check of step())."""

    def __init__(self, weights, functional=False, attention="masked"):
        super().__init__()
        self.functional, self.attention = functional, attention
        self.table = torch.nn.Parameter(weights["tok.table"], requires_grad=False)

        def linear(name):
            lin = torch.nn.Linear(*weights[name].shape, bias=False)
            lin.weight = torch.nn.Parameter(weights[name].t().contiguous(), requires_grad=False)
            return lin

        def gamma(name):
            return torch.nn.Parameter(weights[name], requires_grad=False)

        self.g1 = torch.nn.ParameterList([gamma(f"b{b}.norm1.gamma") for b in range(1, L + 1)])
        self.g2 = torch.nn.ParameterList([gamma(f"b{b}.norm2.gamma") for b in range(1, L + 1)])
        names = ["attn.query", "attn.key", "attn.value", "attn.out", "mlp.gate", "mlp.up",
                 "mlp.down"]
        self.lins = torch.nn.ModuleList(
            torch.nn.ModuleList(linear(f"b{b}.{n}.w") for n in names) for b in range(1, L + 1))
        self.gn = gamma("norm.gamma")
        self.head = linear("logits.w")
        inv_freq = 1.0 / 10000 ** (torch.arange(0, DH, 2, dtype=torch.float64) / DH)
        angles = torch.arange(TMAX, dtype=torch.float64)[:, None] * inv_freq[None, :]
        self.register_buffer("cos", angles.cos().float())
        self.register_buffer("sin", angles.sin().float())
        self.register_buffer("rows", torch.arange(TMAX))

    def mlp(self, lins, h):
        gate = lins[4](h)
        return lins[6](gate * torch.sigmoid(gate) * lins[5](h))

    def write(self, cache, new, pos):
        """cache [B, KV, TMAX, DH] with row pos set to new [B, KV, DH]."""
        if self.functional:
            sel = (self.rows == pos).view(1, 1, TMAX, 1)
            return torch.where(sel, new.unsqueeze(2), cache)
        cache[:, :, pos] = new
        return cache

    def attend(self, q, kc, vc, pos):
        """q [B, HEADS, DH] over cache rows 0..pos: [B, D]."""
        qg = q.view(1, KV_HEADS, HEADS // KV_HEADS, DH)
        if self.attention == "prefix":
            n = int(pos) + 1
            p = torch.softmax(qg @ kc[:, :, :n].transpose(-1, -2) / math.sqrt(DH), -1)
            return (p @ vc[:, :, :n]).reshape(1, D)
        scores = (qg @ kc.transpose(-1, -2) / math.sqrt(DH)).masked_fill(self.rows > pos,
                                                                         float("-inf"))
        p = torch.softmax(scores, -1)
        return (p @ vc).reshape(1, D)

    def forward(self, tok, pos, k_cache, v_cache):
        """One token: tok int64 [1], pos int64 []; returns logits [1, V] and the caches."""
        x = self.table[tok]
        cos, sin = self.cos[pos], self.sin[pos]
        ks, vs = [], []
        for b in range(L):
            lins = self.lins[b]
            h = rms_norm(x, self.g1[b])
            q = rotate(lins[0](h).view(1, HEADS, DH), cos, sin)
            k = rotate(lins[1](h).view(1, KV_HEADS, DH), cos, sin)
            kc = self.write(k_cache[b], k, pos)
            vc = self.write(v_cache[b], lins[2](h).view(1, KV_HEADS, DH), pos)
            ks.append(kc)
            vs.append(vc)
            x = x + lins[3](self.attend(q, kc, vc, pos))
            x = x + self.mlp(lins, rms_norm(x, self.g2[b]))
        logits = self.head(rms_norm(x, self.gn))
        if self.functional:
            return logits, torch.stack(ks), torch.stack(vs)
        return logits, k_cache, v_cache

    def full(self, tokens):
        """The causal forward over tokens [T]: logits [T, V] (the training model's math)."""
        t = tokens.shape[0]
        x = self.table[tokens]
        cos, sin = self.cos[:t, None, :], self.sin[:t, None, :]
        causal = torch.triu(torch.full((t, t), float("-inf")), 1)
        for b in range(L):
            lins = self.lins[b]
            h = rms_norm(x, self.g1[b])
            q = rotate(lins[0](h).view(t, HEADS, DH), cos, sin).transpose(0, 1)
            k = rotate(lins[1](h).view(t, KV_HEADS, DH), cos, sin).transpose(0, 1)
            v = lins[2](h).view(t, KV_HEADS, DH).transpose(0, 1)
            group = HEADS // KV_HEADS
            k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DH) + causal, -1)
            x = x + lins[3]((p @ v).transpose(0, 1).reshape(t, D))
            x = x + self.mlp(lins, rms_norm(x, self.g2[b]))
        return self.head(rms_norm(x, self.gn))


def empty_caches():
    return (torch.zeros(L, 1, KV_HEADS, TMAX, DH), torch.zeros(L, 1, KV_HEADS, TMAX, DH))


def step_logits(model, tokens):
    """The step fed tokens one by one from empty caches: logits [len(tokens), V]."""
    kc, vc = empty_caches()
    rows = []
    for i, t in enumerate(tokens.tolist()):
        logits, kc, vc = model(torch.tensor([t]), torch.tensor(i), kc, vc)
        rows.append(logits[0])
    return torch.stack(rows)


def cmd_weights(args):
    weights = random_weights(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    tokens = torch.randint(0, V, (TMAX,), generator=gen)
    with torch.inference_mode():
        model = GptStep(weights)
        steps = step_logits(model, tokens)
        full = model.full(tokens)
    err = (steps - full).abs().max().item()
    scale = full.abs().max().item()
    if not err <= 1e-4 * scale:
        sys.exit(f"torch_gpt.py: the step's logits differ from the full forward's by {err:.3g} "
                 f"(max |logit| {scale:.3g}): the PyTorch peer is wrong")
    if args.with_state:  # the step's initial state, for `lathe compile --bake`
        weights["k_cache"], weights["v_cache"] = empty_caches()
    save_safetensors(args.output, weights)
    write_atomic(args.ref, [tokens.numpy().astype("<i4").tobytes(),
                            steps.numpy().astype("<f4").tobytes()])
    print(f"step_vs_full_max_abs {err:.3g}")


def cmd_time(args):
    model = GptStep(load_safetensors(args.weights), attention=args.attention)
    kc, vc = empty_caches()
    tokens = [torch.tensor([(7 * i + 3) % V]) for i in range(TMAX)]
    positions = [torch.tensor(i) for i in range(TMAX)]
    state = {"i": 0}

    def step():
        i = state["i"]
        model(tokens[i], positions[i], kc, vc)
        state["i"] = (i + 1) % TMAX

    with torch.inference_mode():
        seconds, calls = time_calls(step, args.reps, args.min_time)
    print(f"seconds {seconds:.9g}")
    print(f"calls {calls}")


def cmd_export(args):
    model = GptStep(load_safetensors(args.weights), functional=True).eval()
    kc, vc = empty_caches()
    directory = os.path.dirname(os.path.abspath(args.output))
    fd, tmp = tempfile.mkstemp(prefix=".torch_gpt-", suffix=".onnx", dir=directory)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(model, (torch.tensor([3]), torch.tensor(5), kc, vc), tmp,
                              input_names=["tok", "pos", "k_cache", "v_cache"],
                              output_names=["logits", "k_cache_out", "v_cache_out"],
                              opset_version=17)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, args.output)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("weights")
    w.add_argument("-o", "--output", required=True)
    w.add_argument("--ref", required=True)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--with-state", action="store_true")
    t = sub.add_parser("time")
    t.add_argument("-w", "--weights", required=True)
    t.add_argument("--attention", choices=["masked", "prefix"], default="masked")
    t.add_argument("--reps", type=int, default=5)
    t.add_argument("--min-time", type=float, default=0.2)
    e = sub.add_parser("export")
    e.add_argument("-w", "--weights", required=True)
    e.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    {"weights": cmd_weights, "time": cmd_time, "export": cmd_export}[args.command](args)


if __name__ == "__main__":
    main()
