"""Weights between a torch.nn.Module's state dict and a lathe model's params, for the layers
of lib/nn.lathe. Both directions take and return plain dicts of arrays (NumPy arrays, or
anything NumPy can view, e.g. torch tensors); torch itself is not imported.

``layers`` maps a lathe layer name (the binding in the model: ``h1`` for
``h1 = dense(x, 256)``) to the torch module's prefix (``"fc1"``), or to ``(kind, prefix)``
to name the kind. Without a kind it is read from the tensors given: torch_to_lathe looks at
the torch keys, lathe_to_torch at the lathe ones.

  kind        lathe                               torch (nn.Module)
  dense       w [I, O], b [O]                     Linear: weight [O, I] (transposed), bias
  conv2d      w [F, C, k, k], b [F]               Conv2d / ConvTranspose2d: weight, bias
  lstm        wx [I, 4H], wh [H, 4H], b [4H]      LSTM: weight_ih_l0ᵀ, weight_hh_l0ᵀ,
                                                  b = bias_ih_l0 + bias_hh_l0 (back: all
                                                  in bias_ih_l0, bias_hh_l0 = 0)
  gru         wx [I, 3H], wh [H, 3H], bx, bh      GRU: weight_ih_l0ᵀ, weight_hh_l0ᵀ, bias_ih_l0,
                                                  bias_hh_l0
  rnn         wx [I, H], wh [H, H], b [H]         RNN: as lstm
  layer_norm  gamma, beta                         LayerNorm: weight, bias
  batchnorm   gamma, beta; state running_mean,    BatchNorm1d/2d: weight, bias, running_mean,
              running_var                         running_var (num_batches_tracked dropped)
  embed       table [V, D]                        Embedding: weight
A torch LSTM/GRU/RNN with ``bidirectional=True`` maps to lathe's bilstm/bigru: the lathe
layer's ``fwd`` and ``bwd`` sub-layers take the ``_l0`` and ``_l0_reverse`` tensors.
"""

import numpy as np

from .errors import Error, UnknownNameError

KINDS = ("dense", "conv2d", "lstm", "gru", "rnn", "layer_norm", "batchnorm", "embed")


def _np(x):
    if hasattr(x, "detach"):  # a torch tensor: a view of its memory, without importing torch
        x = x.detach()
    return np.asarray(x)


def _get(d, key, where):
    try:
        return _np(d[key])
    except KeyError:
        raise UnknownNameError(f"{where}: no tensor '{key}' (has: "
                               f"{', '.join(sorted(d)) or 'none'})\n") from None


def _torch_kind(sd, t):
    """The layer kind of torch prefix t, from its keys."""
    if f"{t}.weight_ih_l0" in sd:
        rows = _np(sd[f"{t}.weight_ih_l0"]).shape[0]
        hidden = _np(sd[f"{t}.weight_hh_l0"]).shape[1]
        return {4: "lstm", 3: "gru", 1: "rnn"}.get(rows // hidden, "rnn")
    if f"{t}.running_mean" in sd:
        return "batchnorm"
    if f"{t}.weight" not in sd:
        raise UnknownNameError(f"torch state dict has no layer '{t}' (no '{t}.weight' or "
                               f"'{t}.weight_ih_l0')\n")
    rank = _np(sd[f"{t}.weight"]).ndim
    if rank == 4:
        return "conv2d"
    if rank == 2:
        return "dense" if f"{t}.bias" in sd else "embed"
    return "layer_norm"


def _lathe_kind(p, name):
    """The layer kind of lathe layer `name`, from its param names and shapes."""
    has = lambda k: f"{name}.{k}" in p  # noqa: E731
    if has("fwd.wx"):
        return _lathe_kind(p, f"{name}.fwd")
    if has("wx"):
        ratio = _np(p[f"{name}.wx"]).shape[1] // _np(p[f"{name}.wh"]).shape[0]
        return "gru" if has("bx") else {4: "lstm"}.get(ratio, "rnn")
    if has("gamma"):
        return "batchnorm" if has("running_mean") else "layer_norm"
    if has("table"):
        return "embed"
    if has("w"):
        return "conv2d" if _np(p[f"{name}.w"]).ndim == 4 else "dense"
    raise UnknownNameError(f"lathe params have no layer '{name}' (no '{name}.w', '.wx', "
                           "'.gamma' or '.table')\n")


def _layer(spec):
    if isinstance(spec, tuple):
        kind, prefix = spec
        if kind not in KINDS:
            raise Error(f"unknown layer kind {kind!r}; expected one of {', '.join(KINDS)}\n")
        return kind, prefix
    return None, spec


def _rnn_from_torch(sd, t, l, kind, sfx, out):
    w = f"torch layer '{t}'"
    out[f"{l}.wx"] = _get(sd, f"{t}.weight_ih_l0{sfx}", w).T.copy()
    out[f"{l}.wh"] = _get(sd, f"{t}.weight_hh_l0{sfx}", w).T.copy()
    bi, bh = _get(sd, f"{t}.bias_ih_l0{sfx}", w), _get(sd, f"{t}.bias_hh_l0{sfx}", w)
    if kind == "gru":
        out[f"{l}.bx"], out[f"{l}.bh"] = bi.copy(), bh.copy()
    else:
        out[f"{l}.b"] = bi + bh


def _one_from_torch(sd, kind, t, l, out):
    w = f"torch layer '{t}'"
    if kind in ("lstm", "gru", "rnn"):
        if f"{t}.weight_ih_l0_reverse" in sd:
            _rnn_from_torch(sd, t, f"{l}.fwd", kind, "", out)
            _rnn_from_torch(sd, t, f"{l}.bwd", kind, "_reverse", out)
        else:
            _rnn_from_torch(sd, t, l, kind, "", out)
    elif kind == "dense":
        out[f"{l}.w"] = _get(sd, f"{t}.weight", w).T.copy()
        out[f"{l}.b"] = _get(sd, f"{t}.bias", w).copy()
    elif kind == "conv2d":
        out[f"{l}.w"] = _get(sd, f"{t}.weight", w).copy()
        out[f"{l}.b"] = _get(sd, f"{t}.bias", w).copy()
    elif kind == "embed":
        out[f"{l}.table"] = _get(sd, f"{t}.weight", w).copy()
    else:  # layer_norm, batchnorm
        out[f"{l}.gamma"] = _get(sd, f"{t}.weight", w).copy()
        out[f"{l}.beta"] = _get(sd, f"{t}.bias", w).copy()
        if kind == "batchnorm":
            out[f"{l}.running_mean"] = _get(sd, f"{t}.running_mean", w).copy()
            out[f"{l}.running_var"] = _get(sd, f"{t}.running_var", w).copy()


def torch_to_lathe(state_dict, layers):
    """{lathe name: ndarray} from a torch state dict; load it with model.load_state_dict()
    (the batchnorm running statistics are state tensors: load_state_dict takes both)."""
    out = {}
    for lname, spec in layers.items():
        kind, t = _layer(spec)
        _one_from_torch(state_dict, kind or _torch_kind(state_dict, t), t, lname, out)
    return out


def _rnn_to_torch(p, l, t, kind, sfx, out):
    w = f"lathe layer '{l}'"
    out[f"{t}.weight_ih_l0{sfx}"] = _get(p, f"{l}.wx", w).T.copy()
    out[f"{t}.weight_hh_l0{sfx}"] = _get(p, f"{l}.wh", w).T.copy()
    if kind == "gru":
        out[f"{t}.bias_ih_l0{sfx}"] = _get(p, f"{l}.bx", w).copy()
        out[f"{t}.bias_hh_l0{sfx}"] = _get(p, f"{l}.bh", w).copy()
    else:
        b = _get(p, f"{l}.b", w)
        out[f"{t}.bias_ih_l0{sfx}"], out[f"{t}.bias_hh_l0{sfx}"] = b.copy(), np.zeros_like(b)


def _one_to_torch(p, kind, l, t, out):
    w = f"lathe layer '{l}'"
    if kind in ("lstm", "gru", "rnn"):
        if f"{l}.fwd.wx" in p:
            _rnn_to_torch(p, f"{l}.fwd", t, kind, "", out)
            _rnn_to_torch(p, f"{l}.bwd", t, kind, "_reverse", out)
        else:
            _rnn_to_torch(p, l, t, kind, "", out)
    elif kind == "dense":
        out[f"{t}.weight"] = _get(p, f"{l}.w", w).T.copy()
        out[f"{t}.bias"] = _get(p, f"{l}.b", w).copy()
    elif kind == "conv2d":
        out[f"{t}.weight"] = _get(p, f"{l}.w", w).copy()
        out[f"{t}.bias"] = _get(p, f"{l}.b", w).copy()
    elif kind == "embed":
        out[f"{t}.weight"] = _get(p, f"{l}.table", w).copy()
    else:
        out[f"{t}.weight"] = _get(p, f"{l}.gamma", w).copy()
        out[f"{t}.bias"] = _get(p, f"{l}.beta", w).copy()
        if kind == "batchnorm":
            out[f"{t}.running_mean"] = _get(p, f"{l}.running_mean", w).copy()
            out[f"{t}.running_var"] = _get(p, f"{l}.running_var", w).copy()
            out[f"{t}.num_batches_tracked"] = np.zeros((), np.int64)


def lathe_to_torch(params, layers):
    """{torch key: ndarray} from lathe params (and state, for batchnorm): e.g.
    ``lathe_to_torch(model.state_dict(), {"h1": "fc1"})``; load into torch with
    ``module.load_state_dict({k: torch.from_numpy(v) for k, v in d.items()})``."""
    out = {}
    for lname, spec in layers.items():
        kind, t = _layer(spec)
        _one_to_torch(params, kind or _lathe_kind(params, lname), lname, t, out)
    return out
