#!/usr/bin/env node
// The peer side of bench/tokenizer_bench: Hugging Face tokenizers (Rust, Node binding).
//   node tokenizers_peer.js encode TOKENIZER_JSON TEXTS_FILE   -> {"tokens", "seconds"}
//   node tokenizers_peer.js train wordpiece|bpe CORPUS OUT_JSON -> {"seconds"}
// The thread count follows RAYON_NUM_THREADS (1 for the single-thread figures).
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require(path.join(__dirname, '../tests/tokenizers/oracle/node_modules/tokenizers'));

async function main() {
  const [cmd, a, b, c] = process.argv.slice(2);
  if (cmd === 'encode') {
    const tokenizer = tk.Tokenizer.fromFile(a);
    const texts = fs.readFileSync(b, 'utf8').split('\n').filter((t) => t.length > 0);
    await tokenizer.encodeBatch(texts.slice(0, 200), { addSpecialTokens: true });  // warm-up
    let best = Infinity, tokens = 0;
    for (let round = 0; round < 3; round++) {
      const t0 = process.hrtime.bigint();
      const encodings = await tokenizer.encodeBatch(texts, { addSpecialTokens: true });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      tokens = encodings.reduce((n, e) => n + e.getLength(), 0);
      best = Math.min(best, s);
    }
    process.stdout.write(JSON.stringify({ tokens, seconds: best }) + '\n');
  } else if (cmd === 'train') {
    const t = new tk.Tokenizer(a === 'bpe' ? tk.BPE.empty() : tk.WordPiece.empty());
    if (a === 'bpe') {
      t.setPreTokenizer(tk.byteLevelPreTokenizer(false));
    } else {
      t.setNormalizer(tk.bertNormalizer({ lowercase: true }));
      t.setPreTokenizer(tk.bertPreTokenizer());
    }
    const t0 = process.hrtime.bigint();
    t.train([b]);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    t.save(c, true);
    process.stdout.write(JSON.stringify({ seconds: s }) + '\n');
  }
}
main().catch((e) => { process.stderr.write(String(e) + '\n'); process.exit(1); });
