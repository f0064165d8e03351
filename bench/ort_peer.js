// bench/ort_peer.js — the ONNX Runtime peer of bench/run.sh: times one model exported by
// bench/export_onnx.py with onnxruntime-node (npm; installed by scripts/install-deps.sh
// --bench under bench/node/, found through NODE_PATH).
//
//   node ort_peer.js MODEL.onnx --shape 64,784 [--reps R] [--min-time SECONDS]
//
// One intra-op and one inter-op thread, sequential execution, every graph optimization on
// (ORT's fusions and, for convolutions, its NCHWc layout). The input is one float32 tensor of
// the given shape, uniform in [0, 1). Timing as bench/torch_mlp.py's: three warm-up calls, a
// calibration that doubles the calls until a batch lasts min-time / 4, then the median per
// call over R runs of min-time seconds each. Each call is `await session.run(feeds)`, what a
// Node.js user of ORT pays, output tensor included. Output (stdout): `seconds <median>`,
// `calls <per run>`, `version <onnxruntime version>`. Errors: a message on stderr, exit 1.
'use strict';

function parseArgs(argv) {
  const args = { model: null, shape: null, reps: 5, minTime: 0.2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--shape') args.shape = argv[++i].split(',').map(Number);
    else if (a === '--reps') args.reps = Number(argv[++i]);
    else if (a === '--min-time') args.minTime = Number(argv[++i]);
    else if (args.model === null && !a.startsWith('--')) args.model = a;
    else throw new Error(`unexpected argument '${a}'`);
  }
  const shapeOk = args.shape && args.shape.every((d) => Number.isInteger(d) && d > 0);
  if (!args.model || !shapeOk || !(args.reps >= 1) || !(args.minTime > 0)) {
    throw new Error('usage: node ort_peer.js MODEL.onnx --shape D0,D1,... ' +
                    '[--reps R] [--min-time SECONDS]');
  }
  return args;
}

function seconds(t0) { return Number(process.hrtime.bigint() - t0) * 1e-9; }

async function timeCalls(fn, reps, minTime) {
  for (let i = 0; i < 3; i++) await fn();
  let calls = 1;
  let elapsed;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) await fn();
    elapsed = seconds(t0);
    if (elapsed >= minTime / 4) break;
    calls *= 2;
  }
  calls = Math.max(1, Math.floor(calls * minTime / elapsed));
  const perCall = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) await fn();
    perCall.push(seconds(t0) / calls);
  }
  perCall.sort((a, b) => a - b);
  const mid = perCall.length >> 1;
  const median = perCall.length % 2 ? perCall[mid] : (perCall[mid - 1] + perCall[mid]) / 2;
  return { median, calls };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const size = args.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  let state = 12345; // a fixed LCG: the same input every run
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    data[i] = state / 2147483648;
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, args.shape) };
  const { median, calls } = await timeCalls(() => session.run(feeds), args.reps, args.minTime);
  console.log(`seconds ${median}`);
  console.log(`calls ${calls}`);
  console.log(`version ${ort.env.versions.common}`);
}

main().catch((e) => {
  console.error(`ort_peer: error: ${e.message}`);
  process.exit(1);
});
