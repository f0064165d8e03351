// bench/int8_ort.js — runs an int8 model of bench/int8_onnx.py once under ONNX Runtime
// (onnxruntime-node, found through NODE_PATH, as bench/ort_peer.js) for bench/int8.sh's check
// against lathe's int8 outputs (issue 19).
//
//   node int8_ort.js MODEL.onnx --input X.npy --out DIR [--log]
//
// The session is bench/ort_peer.js's (one intra-op and one inter-op thread, sequential,
// every graph optimization), so what runs here is what that script times. X.npy (float32,
// C order) is the model's one input; each output is written as DIR/<name>.npy (float32,
// uint8 or int8). --log turns on ORT's verbose log (stderr), which names each QDQ group its
// optimizer fused into an integer kernel ("Matched Conv") and the node count after the
// fusions: `bench/int8_onnx.py fused` reads it (onnxruntime-node 1.20 has neither
// optimizedModelFilePath nor profiling). Errors: a message on stderr, exit 1.
'use strict';
const fs = require('fs');
const path = require('path');

const DTYPES = { '<f4': ['float32', Float32Array], '|u1': ['uint8', Uint8Array],
                 '|i1': ['int8', Int8Array] };

function parseArgs(argv) {
  const args = { model: null, input: null, out: null, log: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--input') args.input = argv[++i];
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--log') args.log = true;
    else if (args.model === null && !a.startsWith('--')) args.model = a;
    else throw new Error(`unexpected argument '${a}'`);
  }
  if (!args.model || !args.input || !args.out) {
    throw new Error('usage: node int8_ort.js MODEL.onnx --input X.npy --out DIR [--log]');
  }
  return args;
}

// A version 1.0 .npy: magic, version, header length (u16 LE), a Python dict literal, data.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY' || buf[6] !== 1) {
    throw new Error(`${file}: not a version 1 .npy file`);
  }
  const len = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + len);
  const descr = /'descr': '([^']+)'/.exec(header);
  const shape = /'shape': \(([^)]*)\)/.exec(header);
  if (!descr || descr[1] !== '<f4' || /'fortran_order': True/.test(header) || !shape) {
    throw new Error(`${file}: expected a C-order float32 array`);
  }
  const dims = shape[1].split(',').filter((s) => s.trim() !== '').map(Number);
  const data = buf.subarray(10 + len);
  const copy = new Float32Array(data.length / 4);
  new Uint8Array(copy.buffer).set(data);
  return { dims, data: copy };
}

function writeNpy(file, tensor) {
  const descr = Object.keys(DTYPES).find((k) => DTYPES[k][0] === tensor.type);
  if (!descr) throw new Error(`output of type ${tensor.type}: no .npy writer`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, Buffer.concat([head, Buffer.from(header, 'latin1'), data]));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
                    graphOptimizationLevel: 'all' };
  if (args.log) options.logSeverityLevel = 0;
  const session = await ort.InferenceSession.create(args.model, options);
  const x = readNpy(args.input);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.data, x.dims) };
  const results = await session.run(feeds);
  fs.mkdirSync(args.out, { recursive: true });
  for (const name of session.outputNames) {
    writeNpy(path.join(args.out, `${name}.npy`), results[name]);
  }
  console.log(`version ${ort.env.versions.common}`);
}

main().catch((e) => {
  console.error(`int8_ort: error: ${e.message}`);
  process.exit(1);
});
