"""bench/torch_models.py — PyTorch peers of the CNN, LSTM and Transformer rows of bench/run.sh.

Each model has the same shapes and math as its lathe twin, on one thread
(torch.set_num_threads(1); run.sh also sets OMP_NUM_THREADS=1):

  cnn          examples/cnn.lathe: conv 32 3x3 - relu - maxpool 2 - conv 64 3x3 - relu -
               maxpool 2 - dense 128 - relu - dense 10 on [N, 1, 28, 28]; softmax output for
               inference, cross-entropy, Adam 1e-3 (He-uniform conv weights, Glorot-uniform
               dense weights, zero biases, like lib/nn.lathe)
  lstm         bench/models/lstm.lathe: torch.nn.LSTM(64, 128, batch_first) over T = 32 steps
               at batch 32 (gates i, f, g, o like nn's lstm; PyTorch keeps two bias vectors
               where lathe sums them into one), the last hidden state to Linear(128, 10),
               cross-entropy, Adam 1e-3
  transformer  bench/models/transformer_block.lathe: torch.nn.TransformerEncoderLayer(128, 4,
               512, dropout=0, batch_first, post-norm, ReLU) on [8, 64, 128], MSE against a
               random target, Adam 1e-3

  torch_models.py MODEL infer --batch N   time per call of the forward pass under no_grad
                                          (the CNN with its softmax output)
  torch_models.py MODEL train [--batch N] time per call of one Adam step (zero_grad, forward,
                                          loss, backward, step, loss.item())
  torch_models.py ... --threads K         K intra-op threads instead of 1 (the threads row)
  torch_models.py cnn epoch [--data DIR]  one shuffled Fashion-MNIST epoch at batch 64 (full
                                          batches only, like `lathe train`), then test accuracy

Timing as in bench/torch_mlp.py (three warm-up calls, a calibration, the median of --reps
runs of --min-time seconds each). Inputs are uniform in [0, 1), labels uniform in 0..9.
Output (stdout): `seconds <median per call>`; for epoch `epoch_seconds`, `total_seconds` and
`test_accuracy`. Timings are reported, never asserted.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from torch_mlp import load_split, time_calls  # also sets one intra-op and one inter-op thread

torch.set_num_threads(1)


def init_like_lathe(model):
    """He-uniform conv weights, Glorot-uniform dense weights, zero biases (lib/nn.lathe)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    return model


def make_cnn():
    return init_like_lathe(torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(1600, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10)))


class LstmClassifier(torch.nn.Module):
    """nn.LSTM(64, 128) over the whole sequence, the last hidden state to 10 classes."""

    def __init__(self, features=64, hidden=128, classes=10):
        super().__init__()
        self.lstm = torch.nn.LSTM(features, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)
        for name, w in self.lstm.named_parameters():
            if name.startswith("weight_ih"):
                torch.nn.init.xavier_uniform_(w)
            elif name.startswith("weight_hh"):
                torch.nn.init.orthogonal_(w)
            else:
                torch.nn.init.zeros_(w)
        init_like_lathe(self.head)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def make_transformer():
    return torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
                                            activation="relu", batch_first=True,
                                            norm_first=False)


# per model: builder, default batch, input shape after the batch, how the loss is formed
MODELS = {
    "cnn": (make_cnn, 64, (1, 28, 28), "labels"),
    "lstm": (LstmClassifier, 32, (32, 64), "labels"),
    "transformer": (make_transformer, 8, (64, 128), "target"),
}


def random_batch(model_name, batch):
    _, _, shape, kind = MODELS[model_name]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch,) + shape, generator=gen)
    if kind == "labels":
        return x, torch.randint(0, 10, (batch,), generator=gen)
    return x, torch.rand((batch,) + shape, generator=gen)


def loss_of(model_name, out, y):
    if MODELS[model_name][3] == "labels":
        return F.cross_entropy(out, y)
    return F.mse_loss(out, y)


def bench_infer(args):
    model = MODELS[args.model][0]().eval()
    x, _ = random_batch(args.model, args.batch)

    def step():
        with torch.no_grad():
            out = model(x)
            return torch.softmax(out, dim=1) if args.model == "cnn" else out

    seconds, calls = time_calls(step, args.reps, args.min_time)
    print(f"seconds {seconds:.9g} calls {calls} reps {args.reps}")


def bench_train(args):
    model = MODELS[args.model][0]().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = random_batch(args.model, args.batch)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(args.model, model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    seconds, calls = time_calls(step, args.reps, args.min_time)
    print(f"seconds {seconds:.9g} calls {calls} reps {args.reps}")


def bench_epoch(args):
    if args.model != "cnn":
        raise SystemExit("torch_models: the epoch mode is for the cnn only")
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    x_train, x_test = x_train.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
    model = make_cnn().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_loop = time.perf_counter()
    order = torch.randperm(x_train.shape[0])
    steps = x_train.shape[0] // args.batch
    for s in range(steps):
        idx = order[s * args.batch:(s + 1) * args.batch]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        loss.backward()
        opt.step()
    loop_seconds = time.perf_counter() - t_loop
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, x_test.shape[0], 1000):
            out = model(x_test[s:s + 1000])
            correct += (out.argmax(dim=1) == y_test[s:s + 1000]).sum().item()
    print(f"epoch_seconds {loop_seconds:.6g}")
    print(f"total_seconds {time.perf_counter() - t_start:.6g}")
    print(f"test_accuracy {100.0 * correct / x_test.shape[0]:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("mode", choices=["infer", "train", "epoch"])
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.batch is None:
        args.batch = MODELS[args.model][1]
    {"infer": bench_infer, "train": bench_train, "epoch": bench_epoch}[args.mode](args)


if __name__ == "__main__":
    main()
