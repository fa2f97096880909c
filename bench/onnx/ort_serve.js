// ONNX Runtime behind HTTP: the single-request peer of bench/serve/serve_bench.sh, so that both
// sides of the latency comparison pay for a request's way in and out. Answers the same Open
// Inference Protocol v2 request as mlaas (POST /v2/models/NAME/infer, one BYTES text) with the
// logits of one pass at batch 1. It does strictly less than a real server: the body is parsed
// but the text is not tokenized — every request runs on the same TOKENS random ids (the token
// count mlaas reports for the benchmark's text), so its latency is a lower bound for ORT served.
//   node ort_serve.js MODEL.onnx THREADS VOCAB TOKENS PORT
const http = require('http');
const ort = require('onnxruntime-node');

async function main() {
  const [model, threadsArg, vocabArg, tokensArg, portArg] = process.argv.slice(2);
  const threads = Number(threadsArg), vocab = Number(vocabArg), tokens = Number(tokensArg), port = Number(portArg);
  if (!model || !(threads > 0) || !(vocab > 5) || !(tokens > 0) || !(port > 0)) {
    console.error('usage: node ort_serve.js MODEL.onnx THREADS VOCAB TOKENS PORT');
    process.exit(2);
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const ids = new BigInt64Array(tokens), mask = new BigInt64Array(tokens);
  for (let i = 0; i < tokens; ++i) { ids[i] = BigInt(5 + Math.floor(Math.random() * (vocab - 5))); mask[i] = 1n; }
  const feeds = { input_ids: new ort.Tensor('int64', ids, [1, tokens]), attention_mask: new ort.Tensor('int64', mask, [1, tokens]) };
  const output = session.outputNames[0];

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') { res.end('ok'); return; }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (!Array.isArray(body.inputs) || body.inputs.length !== 1) throw new Error('one input expected');
        const logits = (await session.run(feeds))[output];
        const answer = JSON.stringify({ model_name: 'ort', outputs: [{ name: 'logits', datatype: 'FP32',
          shape: logits.dims, data: Array.from(logits.data) }] });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(answer);
      } catch (e) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: String(e.message || e) }));
      }
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, '127.0.0.1');
}
main().catch((e) => { console.error(e); process.exit(1); });
