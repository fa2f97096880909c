#!/usr/bin/env node
// The reference side of the tokenizer conformance tests: Hugging Face `tokenizers` (the
// official Rust library through its Node binding) encodes, or trains, exactly like ours is
// asked to, and writes the results for the C++ tests to compare.
//
//   node oracle.js encode TOKENIZER_JSON INPUT_JSONL OUTPUT_JSONL [--no-special-tokens]
//       INPUT lines: {"text": "...", "pair": "..." (optional)}
//       OUTPUT lines: {"ids", "tokens", "offsets", "type_ids", "attention_mask",
//                      "special_tokens_mask", "overflowing" (when truncated), "decoded",
//                      "decoded_skip"}  (offsets in characters, as the bindings give; the
//                      decodings are of the ids with and without skipping special tokens)
//   node oracle.js train wordpiece|bpe PIPELINE OUTPUT_JSON CORPUS...
//       trains with the model's default trainer (the only one the Node binding exposes);
//       PIPELINE: bert-uncased | bert-cased | byte-level
//   node oracle.js decode TOKENIZER_JSON INPUT_JSONL OUTPUT_JSONL
//       INPUT lines: {"ids": [...], "skip_special_tokens": bool}; OUTPUT lines: {"text"}
'use strict';
const fs = require('fs');
const readline = require('readline');
const tk = require('tokenizers');

async function encode(tokenizerPath, input, output, addSpecial) {
  const tokenizer = tk.Tokenizer.fromFile(tokenizerPath);
  const out = fs.createWriteStream(output);
  const lines = readline.createInterface({ input: fs.createReadStream(input), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const req = JSON.parse(line);
    const e = await tokenizer.encode(req.text, req.pair ?? null, { addSpecialTokens: addSpecial });
    const view = (x) => ({
      ids: x.getIds(), tokens: x.getTokens(), offsets: x.getOffsets(), type_ids: x.getTypeIds(),
      attention_mask: x.getAttentionMask(), special_tokens_mask: x.getSpecialTokensMask(),
    });
    const result = view(e);
    const overflowing = e.getOverflowing();
    if (overflowing.length > 0) result.overflowing = overflowing.map(view);
    result.decoded = await tokenizer.decode(e.getIds(), false);
    result.decoded_skip = await tokenizer.decode(e.getIds(), true);
    out.write(JSON.stringify(result) + '\n');
  }
  await new Promise((resolve) => out.end(resolve));
}

async function decode(tokenizerPath, input, output) {
  const tokenizer = tk.Tokenizer.fromFile(tokenizerPath);
  const out = fs.createWriteStream(output);
  const lines = readline.createInterface({ input: fs.createReadStream(input), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const req = JSON.parse(line);
    out.write(JSON.stringify({ text: await tokenizer.decode(req.ids, !!req.skip_special_tokens) }) + '\n');
  }
  await new Promise((resolve) => out.end(resolve));
}

function train(model, pipeline, output, corpus) {
  const tokenizer = new tk.Tokenizer(model === 'bpe' ? tk.BPE.empty() : tk.WordPiece.empty());
  if (pipeline === 'bert-uncased' || pipeline === 'bert-cased') {
    tokenizer.setNormalizer(tk.bertNormalizer({ lowercase: pipeline === 'bert-uncased' }));
    tokenizer.setPreTokenizer(tk.bertPreTokenizer());
  } else if (pipeline === 'byte-level') {
    tokenizer.setPreTokenizer(tk.byteLevelPreTokenizer(false));
  } else {
    throw new Error(`unknown pipeline ${pipeline}`);
  }
  const t0 = process.hrtime.bigint();
  tokenizer.train(corpus);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  tokenizer.save(output, true);
  process.stdout.write(JSON.stringify({ train_ms: ms, vocab_size: tokenizer.getVocabSize() }) + '\n');
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'encode') {
    await encode(args[0], args[1], args[2], !args.includes('--no-special-tokens'));
  } else if (cmd === 'decode') {
    await decode(args[0], args[1], args[2]);
  } else if (cmd === 'train') {
    train(args[0], args[1], args[2], args.slice(3));
  } else {
    process.stderr.write('usage: oracle.js encode|decode|train ...\n');
    process.exit(2);
  }
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
