"""bench/export_onnx.py — the ONNX Runtime peer's models: the MLP and the CNN of bench/run.sh
exported from their PyTorch twins (bench/torch_mlp.py, bench/torch_models.py) to ONNX.

  export_onnx.py mlp|cnn --batch N -o FILE.onnx

Same layers, shapes and initializers as the PyTorch peer, with the softmax output the lathe
`forward` entry returns (examples/mlp.lathe, examples/cnn.lathe), static shapes (batch N),
opset 13, exported by torch.onnx (no `onnx` Python package needed). The weights are random:
only the time is measured. The file is written atomically (a temporary file in the same
directory, fsync, rename), so a failed export leaves no partial model.
"""

import argparse
import os
import sys
import tempfile

import torch

from torch_mlp import make_model
from torch_models import make_cnn

INPUTS = {"mlp": lambda n: torch.rand(n, 784), "cnn": lambda n: torch.rand(n, 1, 28, 28)}
MAKERS = {"mlp": make_model, "cnn": make_cnn}


class WithSoftmax(torch.nn.Module):
    """model(x) followed by the softmax over classes, as lathe's forward entry returns."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.softmax(self.model(x), dim=1)


def export(name, batch, path):
    torch.manual_seed(0)
    model = WithSoftmax(MAKERS[name]()).eval()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=directory)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(model, INPUTS[name](batch), tmp, input_names=["x"],
                              output_names=["probs"], opset_version=13)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(MAKERS))
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    if args.batch < 1:
        sys.exit(f"export_onnx.py: --batch must be at least 1, got {args.batch}")
    export(args.model, args.batch, args.output)


if __name__ == "__main__":
    main()
