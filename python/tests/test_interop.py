"""PyTorch interop: CPU tensors are inputs without a copy (DLPack), and torch_to_lathe /
lathe_to_torch move the weights of lib/nn.lathe's layers both ways — dense, conv2d, batch
norm, layer norm, LSTM, GRU, bidirectional LSTM — checked by running both frameworks."""

import numpy as np
import pytest
import torch

import lathe
from lathe._arrays import as_input

CONV_NET = """
import nn
model conv_net(x: f32[2, 3, 8, 8]) {
  c = conv2d(x, 4, 3, padding = 1)
  b = batchnorm(c)
  h = dense(flatten(b), 5)
  output y = layer_norm(h)
}
"""

RNN_NET = """
import nn
model rnn_net(xs: f32[2, 5, 3]) {
  l = lstm(xs, 4)
  g = gru(l, 6)
  output y = bilstm(g, 3)
}
"""


class TorchConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 8 * 8, 5)
        self.ln = torch.nn.LayerNorm(5)

    def forward(self, x):
        return self.ln(self.fc(torch.flatten(self.bn(self.conv(x)), 1)))


class TorchRnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
        self.gru = torch.nn.GRU(4, 6, batch_first=True)
        self.bi = torch.nn.LSTM(6, 3, batch_first=True, bidirectional=True)

    def forward(self, xs):
        return self.bi(self.gru(self.lstm(xs)[0])[0])[0]


def _randomize(module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.25)


def _round_trip(source, module, layers, x_name, x):
    _randomize(module)
    module.eval()
    m = lathe.compile(source)
    m.load_state_dict(lathe.torch_to_lathe(module.state_dict(), layers))
    got = m(**{x_name: x})
    with torch.no_grad():
        want = module(x).numpy()
    assert np.max(np.abs(got - want)) <= 1e-5 * max(1.0, float(np.abs(want).max()))
    back = lathe.lathe_to_torch(m.state_dict(), layers)
    fresh = type(module)()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    fresh.eval()
    with torch.no_grad():
        assert np.max(np.abs(fresh(x).numpy() - want)) <= 1e-6


def test_conv_batchnorm_dense_layernorm_both_ways():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    _round_trip(CONV_NET, TorchConv(), {"c": "conv", "b": "bn", "h": "fc", "y": "ln"}, "x", x)


def test_lstm_gru_bilstm_both_ways():
    x = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(2))
    layers = {"l": "lstm", "g": "gru", "y": ("lstm", "bi")}
    _round_trip(RNN_NET, TorchRnn(), layers, "xs", x)


def test_torch_tensors_are_inputs_without_a_copy():
    m = lathe.compile(CONV_NET)
    x = torch.rand(2, 3, 8, 8)
    spec = m.info.inputs["x"]
    assert as_input(x, spec, "x").ctypes.data == x.data_ptr()  # DLPack: the same memory
    assert np.array_equal(m(x=x), m(x=x.numpy()))
    strided = torch.rand(2, 3, 8, 16)[..., ::2]  # not contiguous: copied, same values
    assert np.array_equal(m(x=strided), m(x=strided.contiguous().numpy()))
    with pytest.raises(lathe.DTypeError):
        m(x=x.double())
