"""A checkpoint of random weights for a model's params: tests/gpt_generate.sh.

usage: random_checkpoint.py LATHE MODEL.lathe OUT.safetensors SEED [-D NAME=VALUE ...]

The params and their shapes come from `lathe dump` (the file's trained model); matrices are
normal(0, 0.3), vectors (RMSNorm gains) 1 + normal(0, 0.1): logits far from uniform, so a
sampled text depends on the seed. Written with the standard library and NumPy only.
"""
import json
import re
import struct
import subprocess
import sys

import numpy as np


def main():
    lathe, model, out, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    dump = subprocess.run([lathe, 'dump', model] + sys.argv[5:], capture_output=True,
                          text=True, check=True).stdout
    rng = np.random.default_rng(seed)
    header, blobs, offset = {}, [], 0
    for line in dump.splitlines():
        m = re.match(r'param (\S+): f32\[([0-9, ]*)\]', line)
        if not m:
            continue
        shape = [int(x) for x in m.group(2).split(',') if x.strip()]
        if len(shape) > 1:
            a = rng.standard_normal(shape) * 0.3
        else:
            a = 1 + rng.standard_normal(shape) * 0.1
        data = a.astype('<f4').tobytes()
        header[m.group(1)] = {'dtype': 'F32', 'shape': shape,
                              'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if not header:
        sys.exit('random_checkpoint: no params in the dump of ' + model)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    with open(out, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        f.write(b''.join(blobs))


if __name__ == '__main__':
    main()
