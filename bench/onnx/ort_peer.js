// ONNX Runtime peer of the transformer benchmark: inference of an exported model at batch 1
// and batch 32 (seq 128 unless SEQ is given), one JSON line per measurement, like the PyTorch
// peer.
//   node ort_peer.js MODEL.onnx THREADS VOCAB [SEQ [BATCH,...]]
const ort = require('onnxruntime-node');

async function main() {
  const [model, threadsArg, vocabArg, seqArg, batchesArg] = process.argv.slice(2);
  const threads = Number(threadsArg || 1), vocab = Number(vocabArg || 8000), seq = Number(seqArg || 128);
  const batches = (batchesArg || '1,32').split(',').map(Number);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  for (const batch of batches) {
    const ids = new BigInt64Array(batch * seq), mask = new BigInt64Array(batch * seq);
    for (let i = 0; i < ids.length; ++i) { ids[i] = BigInt(5 + Math.floor(Math.random() * (vocab - 5))); mask[i] = 1n; }
    const feeds = { input_ids: new ort.Tensor('int64', ids, [batch, seq]), attention_mask: new ort.Tensor('int64', mask, [batch, seq]) };
    const iters = batch === 1 ? (seq < 64 ? 500 : 50) : 5;
    for (let i = 0; i < 2; ++i) await session.run(feeds);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; ++i) await session.run(feeds);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ impl: 'ort', kind: 'infer', batch, seq, threads,
                                 ms_per_batch: +(1e3 * s / iters).toFixed(2), seq_per_s: +(batch * iters / s).toFixed(1) }));
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
