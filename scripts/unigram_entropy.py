#!/usr/bin/env python3
"""The unigram entropy of a text, in nats: the loss of a model that knows only how often each
byte occurs, the bar a character-level model must get well below (docs/gpt.md).

    scripts/unigram_entropy.py FILE [LOG.csv]

Prints the entropy of FILE's bytes, and the cross-entropy of its validation split (the last
floor(len / 10) bytes, as `lathe train --data text=FILE` splits it) under the byte frequencies
of its training split (add-one smoothed over FILE's distinct bytes), which is what the
validation loss of a unigram model would be. With the epoch log of `lathe train --log
LOG.csv`, also prints every epoch's training and validation loss beside them.
Standard library only.
"""
import csv
import math
import sys
from collections import Counter


def entropy(data):
    counts, n = Counter(data), len(data)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def cross_entropy(train, val, vocab):
    counts, total = Counter(train), len(train) + len(vocab)
    return -sum(math.log((counts[b] + 1) / total) for b in val) / len(val)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    data = open(sys.argv[1], "rb").read()
    if not data:
        sys.exit(f"{sys.argv[1]} is empty: expected text")
    split = len(data) - len(data) // 10
    h = entropy(data)
    hv = cross_entropy(data[:split], data[split:], set(data)) if split < len(data) else h
    print(f"{sys.argv[1]}: {len(data)} bytes, {len(set(data))} distinct")
    print(f"unigram entropy {h:.4f} nats ({h / math.log(2):.4f} bits) per byte")
    print(f"unigram cross-entropy of the validation split (last 10%) {hv:.4f} nats")
    if len(sys.argv) == 3:
        print("epoch  train loss  val loss  val loss / unigram entropy")
        for row in csv.DictReader(open(sys.argv[2])):
            v = float(row["val_loss"]) if row["val_loss"] else float("nan")
            print(f"{int(row['epoch']):5d}  {float(row['train_loss']):10.4f}  {v:8.4f}  "
                  f"{v / h:.3f}")


if __name__ == "__main__":
    main()
