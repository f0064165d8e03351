// bench/gpt_ort.js — the ONNX Runtime peer of bench/gpt_decode.sh: the GPT decode step
// exported by `bench/torch_gpt.py export` (inputs tok int64 [1], pos int64 [], k_cache,
// v_cache [L, 1, KV_HEADS, TMAX, DH]; outputs logits [1, V], k_cache_out, v_cache_out), run by
// onnxruntime-node (npm; installed by scripts/install-deps.sh --bench under bench/node/, found
// through NODE_PATH).
//
//   node gpt_ort.js STEP.onnx [--cache L,B,KV_HEADS,TMAX,DH] [--ref REF.bin] [--tol 1e-4]
//                   [--reps R] [--min-time SECONDS]
//
// --cache is the caches' shape (default 4,1,2,64,32: examples/gpt.lathe at batch 1).
// One intra-op and one inter-op thread, sequential execution, every graph optimization on, as
// bench/ort_peer.js. Each step is `await session.run(feeds)`, and the caches it returns are
// the next step's inputs. --ref checks the step first: REF.bin (bench/torch_gpt.py weights)
// holds n token ids (int32) and PyTorch's logits at each position ([n, V] float32); the ids
// are fed at positions 0..n-1 from zero caches and every logit must be within
// tol * max |logit| of PyTorch's (else exit 1). Timing: positions 0..TMAX-1 and around, tokens
// from a fixed list; three warm-up steps, a calibration, the median seconds per step over R
// runs of min-time seconds each. Output (stdout): `check_max_abs E max_logit M` after a check,
// `seconds <median>`, `calls <per run>`, `version <onnxruntime version>`. Errors: a message on
// stderr, exit 1.
'use strict';

const fs = require('fs');

function parseArgs(argv) {
  const args = { model: null, ref: null, tol: 1e-4, reps: 5, minTime: 0.2,
                 cache: [4, 1, 2, 64, 32] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ref') args.ref = argv[++i];
    else if (a === '--cache') args.cache = argv[++i].split(',').map(Number);
    else if (a === '--tol') args.tol = Number(argv[++i]);
    else if (a === '--reps') args.reps = Number(argv[++i]);
    else if (a === '--min-time') args.minTime = Number(argv[++i]);
    else if (args.model === null && !a.startsWith('--')) args.model = a;
    else throw new Error(`unexpected argument '${a}'`);
  }
  const cacheOk = args.cache.length === 5 && args.cache.every((d) => Number.isInteger(d) && d > 0);
  if (!args.model || !cacheOk || !(args.reps >= 1) || !(args.minTime > 0) || !(args.tol > 0)) {
    throw new Error('usage: node gpt_ort.js STEP.onnx [--cache L,B,KV_HEADS,TMAX,DH] ' +
                    '[--ref REF.bin] [--tol T] [--reps R] [--min-time SECONDS]');
  }
  return args;
}

function seconds(t0) { return Number(process.hrtime.bigint() - t0) * 1e-9; }

// The step with its caches: run(tok, pos) returns the logits and keeps the new caches.
function makeStep(ort, session, cacheDims) {
  const size = cacheDims.reduce((a, b) => a * b, 1);
  let k = new ort.Tensor('float32', new Float32Array(size), cacheDims);
  let v = new ort.Tensor('float32', new Float32Array(size), cacheDims);
  const tok = new BigInt64Array(1);
  const pos = new BigInt64Array(1);
  const feeds = { tok: new ort.Tensor('int64', tok, [1]), pos: new ort.Tensor('int64', pos, []) };
  return async (t, p) => {
    tok[0] = BigInt(t);
    pos[0] = BigInt(p);
    feeds.k_cache = k;
    feeds.v_cache = v;
    const out = await session.run(feeds);
    k = out.k_cache_out;
    v = out.v_cache_out;
    return out.logits;
  };
}

async function check(step, args, vocab) {
  const raw = fs.readFileSync(args.ref);
  const row = 4 + 4 * vocab;
  if (raw.length % row !== 0 || raw.length === 0) {
    throw new Error(`${args.ref}: ${raw.length} bytes is not n ids and [n, ${vocab}] logits`);
  }
  const n = raw.length / row;
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length);
  const ids = new Int32Array(buf, 0, n);
  const want = new Float32Array(buf, 4 * n, n * vocab);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < n; i++) {
    const got = (await step(ids[i], i)).data;
    for (let j = 0; j < vocab; j++) {
      const w = want[i * vocab + j];
      const d = Math.abs(got[j] - w);
      if (!(d <= err)) err = d; // a NaN sticks
      scale = Math.max(scale, Math.abs(w));
    }
  }
  console.log(`check_max_abs ${err.toExponential(2)} max_logit ${scale.toPrecision(3)}`);
  if (!(err <= args.tol * scale)) {
    throw new Error(`CHECK FAILED: ONNX Runtime's step logits differ from PyTorch's by ${err} ` +
                    `(tolerance ${args.tol} x max |logit| ${scale})`);
  }
}

async function timeSteps(step, reps, minTime, vocab, tmax) {
  let p = 0;
  const run = async (calls) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) {
      await step((7 * p + 3) % vocab, p);
      p = (p + 1) % tmax;
    }
    return seconds(t0);
  };
  await run(3);
  let calls = 1;
  let elapsed;
  for (;;) {
    elapsed = await run(calls);
    if (elapsed >= minTime / 4) break;
    calls *= 2;
  }
  calls = Math.max(1, Math.floor(calls * minTime / elapsed));
  const perCall = [];
  for (let r = 0; r < reps; r++) perCall.push((await run(calls)) / calls);
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
  const cacheDims = args.cache;
  const tmax = cacheDims[3];
  const vocab = (await makeStep(ort, session, cacheDims)(0, 0)).dims[1]; // logits [1, V]
  if (args.ref) await check(makeStep(ort, session, cacheDims), args, vocab);
  const step = makeStep(ort, session, cacheDims);
  const { median, calls } = await timeSteps(step, args.reps, args.minTime, vocab, tmax);
  console.log(`seconds ${median}`);
  console.log(`calls ${calls}`);
  console.log(`version ${ort.env.versions.common}`);
}

main().catch((e) => {
  console.error(`gpt_ort: error: ${e.message}`);
  process.exit(1);
});
