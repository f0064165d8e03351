#!/usr/bin/env bash
# A batch of 1 never trains a batch norm that sees one value per channel per sample
# (docs/dynamic-batch.md; PyTorch raises "Expected more than 1 value per channel when
# training"): tests/fixtures/cnn_bn.lathe (batchnorm1d over [N, 6]) with a run-time batch
# bounded at 64. `lathe train` on 65 samples evens the epoch's last batch of 1 into 63 + 2
# (65/65 trained, every running statistic finite); one training sample in all is an error;
# `lathe grad` on one row is refused with the reason and writes nothing, on two rows it runs;
# `lathe run` (inference, running statistics) takes one row.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
MODEL=$ROOT/tests/fixtures/cnn_bn.lathe
DYN='N=dynamic(max=64)'
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
mkdir data
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(3)
np.save("data/x.npy", rng.random((65, 1, 12, 12), dtype=np.float32))
np.save("data/label.npy", rng.integers(0, 3, 65).astype(np.int32))
np.save("x1.npy", rng.random((1, 1, 12, 12), dtype=np.float32))
np.save("l1.npy", np.array([2], dtype=np.int32))
np.save("x2.npy", rng.random((2, 1, 12, 12), dtype=np.float32))
np.save("l2.npy", np.array([2, 0], dtype=np.int32))
PY

"$LATHE" train "$MODEL" -D "$DYN" --data data --epochs 2 --checkpoint ck.safetensors \
  > train.txt 2>&1 || { cat train.txt; exit 1; }
grep -q "65/65" train.txt ||
  { echo "FAIL: the epoch did not cover 65 samples:"; cat train.txt; exit 1; }
ROOT=$ROOT /usr/bin/python3 - <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests", "fixtures"))
import safetensors_py
ck = safetensors_py.load("ck.safetensors")
for name in ("b1.running_mean", "b1.running_var", "f.running_mean", "f.running_var"):
    assert np.all(np.isfinite(ck[name])), (name, ck[name])
print("ok: 65 samples trained as 63 + 2, running statistics finite:", ck["f.running_var"])
PY

expect_error() { # expect_error WHAT TEXT COMMAND...: exit status 1 and TEXT in the message
  local what=$1 text=$2 status=0
  shift 2
  "$@" > err.txt 2>&1 || status=$?
  if [[ $status -ne 1 ]] || ! grep -qF "$text" err.txt; then
    echo "FAIL: $what: exit $status, expected 1 and '$text':"; cat err.txt; exit 1
  fi
  echo "ok: $what: $(grep -o 'error: .*' err.txt | head -1)"
}
expect_error "one training sample" "1 training sample: a batch of 1 cannot train this model" \
  "$LATHE" train "$MODEL" -D "$DYN" --data data --limit 1
expect_error "lathe grad on one row" "Expected more than 1 value per channel when training" \
  "$LATHE" grad "$MODEL" -D "$DYN" -i x=x1.npy -i label=l1.npy -o g1
grep -qF "batch norm 'f'" err.txt || { echo "FAIL: the message does not name 'f'"; exit 1; }
[[ ! -e g1 ]] || { echo "FAIL: a refused lathe grad wrote g1/"; exit 1; }
"$LATHE" grad "$MODEL" -D "$DYN" -i x=x2.npy -i label=l2.npy -o g2 > /dev/null 2>&1
[[ -s g2/grads.safetensors ]] || { echo "FAIL: lathe grad on two rows wrote nothing"; exit 1; }
"$LATHE" run "$MODEL" -D "$DYN" --weights ck.safetensors -i x=x1.npy -o run1 > /dev/null
/usr/bin/python3 -c "
import numpy as np
p = np.load('run1/probs.npy')
assert p.shape == (1, 3) and np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-5, p
print('ok: lathe run on one row (inference):', p)"
echo "batch_norm_one: ok"
