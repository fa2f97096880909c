#!/usr/bin/python3
"""The QA set of qa_set.py trained by a peer: PyTorch eager (Debian's python3-torch) running the
Hugging Face definition of BertForQuestionAnswering (tests/nn/reference/hf_reference.py), on the
same questions, with the same tokenizer and, but for the differences listed below, the recipe of
`mlaas train --objective question-answering` in run.sh. It answers whether a result of ours is the platform's or the
task's: if the peer learns what mlaas does not, the fault is ours.

  qa_peer.py MLAAS DATASETS TOKENIZER CONFIG.json EPOCHS LENGTH LR [THREADS [SEED]]

DATASETS holds qa_{train,valid,test}.jsonl; TOKENIZER is the tokenizer run.sh trained (encoded
here by `MLAAS tokenizer encode`, so the peer reads the very word pieces mlaas reads). CONFIG is a
model config.json of the shape (bench/quality/tiny-relative.json, or a preset's written by `mlaas
model init`); its vocab_size is set to the tokenizer's.

The recipe, as run.sh trains mlaas: AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01, not on
biases and LayerNorm weights), a linear warm-up over 200 steps then linear decay to 0 (rate 0 at the
first step), batch 32, gradient norm clipped at 1, the loss the mean of the start and end
cross-entropies, dropout as the config says, weights initialised as transformers does (normal, std
initializer_range), the epoch with the best valid exact match kept for the test (--load-best).
Where the peer differs:
- batches are drawn at random (mlaas: pools of 50 batches each sorted by length, then shuffled;
  QA_PEER_BATCHES=length does that), and the loss leaves the padding out of the softmax (mlaas
  keeps it, as transformers does; QA_PEER_LOSS=padded);
- one window a question, [CLS] question [SEP] context [SEP], the context cut at LENGTH; a question
  whose answer is cut off is left out of training (mlaas trains on every window of a long context,
  those without the answer pointing at [CLS]). The same when every context fits, as in the probes
  and the diagnostic (`training_windows` in the output says how many questions were kept);
- answers, valid and test alike, are the trainer's validation answers: the best start + end logit
  sum over the context, end >= start, at most 30 pieces (mlaas's test answers come from the server:
  at most 15 pieces, spans scored by the product of start and end probabilities).
Prints each epoch's loss, training span accuracy and valid exact match, then the test exact match
and F1 of the kept epoch as qa_set.py scores them, as one JSON line.
"""
import json, os, random, subprocess, sys, tempfile, time

import torch
import torch.nn as nn
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "nn", "reference"))
sys.path.insert(0, here)
import hf_reference  # noqa: E402
import qa_set  # noqa: E402

BATCH, WARMUP, WEIGHT_DECAY, MAX_ANSWER = 32, 200, 0.01, 30
# Environment switches towards what mlaas does: QA_PEER_BATCHES=length (batches of similar
# lengths, as mlaas's trainer makes them, in place of random ones), QA_PEER_LOSS=padded (the
# padding's logits left in the softmax, as transformers' BertForQuestionAnswering and mlaas do),
# QA_PEER_INIT=model.safetensors (start from these weights in place of the peer's own draw, every
# name required: e.g. those of `mlaas model init --config C --objective question-answering
# --tokenizer T --seed 42`, the weights a training task with --seed 42 starts from).
BY_LENGTH = os.environ.get("QA_PEER_BATCHES") == "length"
PADDING_IN_LOSS = os.environ.get("QA_PEER_LOSS") == "padded"


def encode(mlaas, tokenizer, texts):
    """The word pieces of each text (no special tokens), with character offsets. Newlines become
    spaces (one text a line; both are whitespace to the pre-tokenizer, and offsets stay put)."""
    with tempfile.TemporaryDirectory() as d:
        with open(f"{d}/in.txt", "w", encoding="utf-8") as f:
            for t in texts:
                f.write(t.replace("\n", " ").replace("\r", " ") + "\n")
        subprocess.run([mlaas, "tokenizer", "encode", "--tokenizer", tokenizer, "--input", f"{d}/in.txt",
                        "--output", f"{d}/out.jsonl", "--no-special-tokens"], check=True, stdout=subprocess.DEVNULL)
        return [json.loads(line) for line in open(f"{d}/out.jsonl", encoding="utf-8")]


def windows(mlaas, tokenizer, vocab, questions, length):
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    qs = encode(mlaas, tokenizer, [q["question"] for q in questions])
    cs = encode(mlaas, tokenizer, [q["context"] for q in questions])
    out = []
    for q, qe, ce in zip(questions, qs, cs):
        room = length - len(qe["ids"]) - 3
        if room < 1:  # as mlaas refuses it: no room left for the context
            sys.exit(f"{q['id']}: the question ({len(qe['ids'])} pieces) leaves no room for context in {length}")
        ids = [cls] + qe["ids"] + [sep]
        first = len(ids)
        ctx = ce["ids"][:room]
        ids += ctx + [sep]
        offsets = ce["offsets"][:room]
        a0 = q["answers"]["answer_start"][0]
        a1 = a0 + len(q["answers"]["text"][0])
        starts = [k for k, (s, e) in enumerate(offsets) if s <= a0 < e]
        ends = [k for k, (s, e) in enumerate(offsets) if s < a1 <= e]
        label = (first + starts[0], first + ends[0]) if starts and ends else None
        out.append({"ids": ids, "types": [0] * first + [1] * (len(ids) - first), "first": first,
                    "offsets": offsets, "label": label, "question": q})
    return out


def batches(items, shuffle, rng, by_length=False):
    order = list(range(len(items)))
    if shuffle:
        rng.shuffle(order)
        if by_length:  # as mlaas batches: pools of 50 batches, each sorted by length, batches shuffled
            pool = BATCH * 50
            order = [i for p in range(0, len(order), pool)
                     for i in sorted(order[p:p + pool], key=lambda i: (len(items[i]["ids"]), i))]
    starts = list(range(0, len(order), BATCH))
    if shuffle and by_length:
        rng.shuffle(starts)
    for k in starts:
        chunk = [items[i] for i in order[k:k + BATCH]]
        width = max(len(w["ids"]) for w in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for r, w in enumerate(chunk):
            n = len(w["ids"])
            ids[r, :n] = torch.tensor(w["ids"])
            types[r, :n] = torch.tensor(w["types"])
            mask[r, :n] = 1
        yield chunk, ids, types, mask


def init_weights(model, std):  # transformers' BertPreTrainedModel._init_weights
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0.0, std)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.data.normal_(0.0, std)
            if m.padding_idx is not None:
                m.weight.data[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()


def answer(model, items):
    model.eval()
    texts = []
    with torch.no_grad():
        for chunk, ids, types, mask in batches(items, False, None):
            _, logits = model(ids, mask, types)
            for r, w in enumerate(chunk):
                start, end = logits[r, :, 0].tolist(), logits[r, :, 1].tolist()
                lo, hi = w["first"], w["first"] + len(w["offsets"])
                best, span = None, (lo, lo)
                for s in range(lo, hi):
                    for e in range(s, min(hi, s + MAX_ANSWER)):
                        v = start[s] + end[e]
                        if best is None or v > best:
                            best, span = v, (s, e)
                a, b = w["offsets"][span[0] - lo][0], w["offsets"][span[1] - lo][1]
                texts.append(w["question"]["context"][a:b])
    model.train()
    return texts


def main():
    mlaas, datasets, tokenizer, config_path, epochs, length, lr = sys.argv[1:8]
    epochs, length, lr = int(epochs), int(length), float(lr)
    torch.set_num_threads(int(sys.argv[8]) if len(sys.argv) > 8 else 2)
    seed = int(sys.argv[9]) if len(sys.argv) > 9 else 42
    torch.manual_seed(seed)
    rng = random.Random(seed)
    config = json.load(open(config_path, encoding="utf-8"))
    tok = json.load(open(os.path.join(tokenizer, "tokenizer.json"), encoding="utf-8"))
    config["vocab_size"] = len(tok["model"]["vocab"])
    config.setdefault("pad_token_id", 0)
    cfg = hf_reference.Cfg(config)
    model = hf_reference.BertForQuestionAnswering(cfg)
    init_weights(model, config.get("initializer_range", 0.02))
    if os.environ.get("QA_PEER_INIT"):  # start from these weights (e.g. `mlaas model init`'s) instead
        state = hf_reference.read_safetensors(os.environ["QA_PEER_INIT"])
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    split = {s: qa_set.load(f"{datasets}/qa_{s}.jsonl") for s in ("train", "valid", "test")}
    data = {s: windows(mlaas, tokenizer, tok["model"]["vocab"], qs, length) for s, qs in split.items()}
    train = [w for w in data["train"] if w["label"] is not None]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, eps=1e-8)
    total = epochs * ((len(train) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: step / WARMUP if step < WARMUP else max(0.0, (total - step) / max(1, total - WARMUP)))
    model.train()
    began = time.time()
    training_seconds, best = 0.0, None
    tokens = 0
    for epoch in range(1, epochs + 1):
        loss_sum, right, seen = 0.0, 0, 0
        epoch_began = time.time()
        for chunk, ids, types, mask in batches(train, True, rng, BY_LENGTH):
            _, logits = model(ids, mask, types)
            if not PADDING_IN_LOSS:
                logits = logits.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(logits.dtype).min)
            starts = torch.tensor([w["label"][0] for w in chunk])
            ends = torch.tensor([w["label"][1] for w in chunk])
            loss = (F.cross_entropy(logits[:, :, 0], starts) + F.cross_entropy(logits[:, :, 1], ends)) / 2
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(chunk)
            right += int(((logits[:, :, 0].argmax(1) == starts) & (logits[:, :, 1].argmax(1) == ends)).sum())
            seen += len(chunk)
            tokens += int(mask.sum())
        training_seconds += time.time() - epoch_began
        valid = qa_set.scores(split["valid"], answer(model, data["valid"]))
        if best is None or valid["exact_match"] > best[0]:  # as mlaas's --load-best keeps the best epoch
            best = (valid["exact_match"], epoch, {k: v.clone() for k, v in model.state_dict().items()})
        print(json.dumps({"epoch": epoch, "loss": round(loss_sum / seen, 4), "train_span_accuracy": round(right / seen, 4),
                          "valid_exact_match": valid["exact_match"], "seconds": round(time.time() - began),
                          "tokens_per_second": round(tokens / training_seconds)}), flush=True)
    model.load_state_dict(best[2])
    test = qa_set.scores(split["test"], answer(model, data["test"]))
    print(json.dumps({"peer": "PyTorch eager, hf_reference BertForQuestionAnswering", "torch": torch.__version__, "seed": seed, "init": os.environ.get("QA_PEER_INIT") or "own draw",
                      "epoch_kept": best[1], "batches": "length" if BY_LENGTH else "random",
                      "loss": "padded" if PADDING_IN_LOSS else "masked",
                      "training_windows": len(train), "test": test}))


if __name__ == "__main__":
    main()
