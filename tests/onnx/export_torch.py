#!/usr/bin/env python3
"""tests/onnx/export_torch.py OUTDIR [NAME...] — export small PyTorch models with
torch.onnx.export (the TorchScript exporter of torch 1.13; no onnx python package needed)
and write, per model, OUTDIR/NAME.onnx, OUTDIR/NAME.x.npy (the input) and OUTDIR/NAME.y.npy
(PyTorch's output), for tests/onnx_torch.sh to compare lathe against (<= 1e-4).

Models: mlp (Linear/ReLU/Softmax), cnn (Conv/BatchNorm/MaxPool/AvgPool/Flatten/Linear),
lstm (nn.LSTM + Linear on the last step), gru, transformer (one nn.TransformerEncoderLayer,
batch first, with the attention written by the exporter as MatMul/Softmax chains).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 64), nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = torch.tanh(self.fc2(h))
        return torch.softmax(self.fc3(h), dim=1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
        h = torch.relu(self.c2(h))
        h = nn.functional.avg_pool2d(h, 2)
        return self.fc(torch.flatten(h, 1))


class LSTM(nn.Module):
    def __init__(self, cell=nn.LSTM):
        super().__init__()
        self.rnn = cell(12, 16, batch_first=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.enc(x)


def models():
    return {
        "mlp": (MLP(), (4, 784)),
        "cnn": (CNN(), (2, 1, 28, 28)),
        "lstm": (LSTM(), (3, 7, 12)),
        "gru": (LSTM(nn.GRU), (3, 7, 12)),
        "transformer": (Block(), (2, 6, 32)),
    }


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(models())
    os.makedirs(out, exist_ok=True)
    for name in names:
        model, shape = models()[name]
        randomize_bn(model)
        model.eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            y = model(x)
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"],
                          opset_version=14, do_constant_folding=True)
        np.save(os.path.join(out, name + ".x.npy"), x.numpy())
        np.save(os.path.join(out, name + ".y.npy"), y.numpy())
        print("exported", path)


if __name__ == "__main__":
    main()
