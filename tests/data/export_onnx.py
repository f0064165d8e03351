#!/usr/bin/env python3
"""tests/data/export_onnx.py OUT_DIR — two small PyTorch models exported to ONNX for
tests/data_onnx.sh (torch.onnx.export, torch 1.13's TorchScript exporter; no onnx package):

OUT_DIR/tabular.onnx  Linear(20, 32) ReLU Linear(32, 3): class logits of the 20 features of
                      tests/data/make_data.py's cls/ (input 'x', output 'logits'); the batch
                      is the dynamic dimension 'batch' (fixed with -D batch=32)
OUT_DIR/regress.onnx  Linear(8, 16) Tanh Linear(16, 1): a regressor of reg.csv's 8 features
                      (input 'x', output 'pred', batch fixed at 16 in the export)

Both are untrained (PyTorch's default init from seed 0): lathe trains them from their
initializers.
"""
import os
import sys

import torch
import torch.nn as nn

torch.manual_seed(0)


def export(model, shape, path, output, dynamic):
    model.eval()
    axes = {"x": {0: "batch"}, output: {0: "batch"}} if dynamic else None
    torch.onnx.export(model, (torch.randn(*shape),), path, input_names=["x"],
                      output_names=[output], dynamic_axes=axes, opset_version=14,
                      do_constant_folding=True)
    print("exported", path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    export(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3)), (32, 20),
           f"{out}/tabular.onnx", "logits", True)
    export(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1)), (16, 8),
           f"{out}/regress.onnx", "pred", False)


if __name__ == "__main__":
    main()
