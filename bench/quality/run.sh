#!/usr/bin/env bash
# Quality runs on the public data of ../shared/data (on demand, not in the test command):
#   sections  masked-LM pre-training on debian_mlm_train, then fine-tuning on debian_section_train
#             (held out: debian_section_valid); test accuracy / macro-F1 on debian_section_test,
#             against the TF-IDF + logistic-regression floor of the data README.
#   typos     ieee_country classifiers trained without and with typo augmentation, scored on the
#             clean test split and on a typo-corrupted copy.
#   search    query -> package search (debian_search_*): masked-LM pre-training on debian_mlm_train,
#             then sentence-embedding training on the train split's (query, package description)
#             pairs; the corpus indexed with `mlaas index`; test queries searched dense, lexical
#             (BM25) and hybrid (reciprocal-rank and linear fusion, their dense weights chosen on
#             the valid split); recall@1/@10, MRR@10.
#   clm       causal-LM (GPT-2) trained from scratch on debian_mlm_train with a byte-level BPE
#             tokenizer; perplexity on debian_mlm_valid against an interpolated Kneser-Ney trigram
#             over the same token ids and targets (ngram_ppl.py).
#   sweep     hyperparameter search on debian_section's short descriptions (`short`): a SWEEP_MODEL
#             classifier from scratch trained with the platform's defaults (learning rate 2e-5, batch
#             32, no warm-up) against the best of a sweep (`mlaas sweep`: random search over the
#             learning rate, batch size and warm-up, ASHA pruning) given SWEEP_SECONDS of CPU, both for
#             SWEEP_EPOCHS epochs and chosen on debian_section_valid; accuracy / macro-F1 on
#             debian_section_test (short only) against the TF-IDF floor of the data README.
#   ner       token classification (NER) on a silver set built from debian_section's descriptions by
#             bench/quality/ner_set.py (package names mentioned in the texts, B-/I-PKG; how it is built is
#             in that file): a NER_MODEL from scratch with a cased WordPiece tokenizer, entities predicted
#             on the test split with `mlaas predict` (aggregation first) and scored at entity level
#             (exact character spans), all and unseen-in-training names, against the gazetteer baseline
#             of CoNLL-2003 (the training split's entities, tagged wherever they occur).
#   qa        extractive question answering on a SQuAD-layout set built from debian_section by
#             bench/quality/qa_set.py ("Which package is: <synopsis>?" over three descriptions of one
#             section): a QA_MODEL from scratch or pre-trained on Packages stanzas of the training split,
#             the test questions answered through the server (the
#             Python SDK's client.answer), exact match / F1 against a TF-IDF retrieval baseline, and which
#             stanza's name the answers are.
#   fashion   Fashion-MNIST image classification (Debian's dataset-fashion-mnist, IDX): a preset
#             (cnn-small) trained from scratch on the 60,000 train images for FASHION_EPOCHS epochs,
#             scored after every epoch on the 10,000 t10k images (no choice is made on them: the
#             epochs are fixed), against the logistic-regression floor of the data README.
# Everything goes through the real server (`mlaas serve`) and the CLI (`mlaas train --follow`,
# `mlaas predict`), as a user would run it. Figures go to docs/benchmarks.md by hand.
#
#   bench/quality/run.sh [sections|typos|search|clm|sweep|ner|qa|fashion|all]
#   env: MLAAS (binary), SHARED (../shared), WORK (/tmp/mlaas-quality), THREADS (2),
#        MODEL (bert-mini), MAX_LENGTH (128), MLM_EPOCHS (1), CLS_EPOCHS (2), TYPO_EPOCHS (3),
#        MLM_LR (5e-4), CLS_LR (3e-4), CLS_POOLING (mean: what the section classifier reads, cls or
#        mean); search: SEARCH_MODEL (bert-tiny; a preset, a config.json file, or "static": a static
#        embedding model of SEARCH_STATIC_DIM (4096) dimensions, trained on the pairs from scratch without
#        masked-LM pre-training, texts not truncated, no whitening), SEARCH_MLM_EPOCHS (3),
#        SEARCH_MLM_LR (1e-3),
#        PAIR_EPOCHS (4), PAIR_LR (1e-3), PAIR_BATCH (64), SEARCH_HARD (0; 1: train with BM25-mined
#        hard negatives, mined through the server's lexical search over the train split's documents),
#        PAIR_SCALE (20: the similarity scale, 1/temperature, of the pair training), PAIR_SIMILARITY (cosine;
#        dot: inner product, which the index then uses),
#        SEARCH_WHITENING (0.4: model_train.whitening of the pair training, chosen on the valid split;
#        0: none), SEARCH_MLM_MODEL (a masked-LM model directory from an earlier run, e.g.
#        $WORK/data/objects/models/search_mlm copied aside: pair training starts from it, no pre-training);
#        sweep: SWEEP_MODEL (bert-tiny), SWEEP_EPOCHS (4), SWEEP_SECONDS (900), SWEEP_TRIALS (12),
#        ner: NER_MODEL (bert-tiny), NER_EPOCHS (3), NER_LR (1e-3), NER_MLM_EPOCHS (0: from scratch; else
#        masked-LM pre-training epochs on the training split's texts, labels unseen, before fine-tuning),
#        NER_VOCAB (16000: the cased WordPiece vocabulary trained on the training pieces);
#        qa: QA_MODEL (bert-tiny; a preset or a config.json file, e.g. bench/quality/deep4x128.json), QA_EPOCHS (4), QA_LR (1e-3), QA_LENGTH (192), QA_TRAIN (12000 questions),
#        QA_WORDS (20: the words of a description in a stanza), QA_MLM_EPOCHS (0: from scratch; else
#        masked-LM pre-training epochs on `qa_set.py corpus`: the training split's packages as Packages
#        stanzas with their synopses, three a text, each package in three texts), QA_NAMES (real; random:
#        the training questions' stanzas carry random names, see qa_set.py), QA_MLM_MODEL (a masked-LM
#        model directory from an earlier run, e.g. $WORK/data/objects/models/qa_mlm copied aside:
#        fine-tuning starts from it, no pre-training), QA_NSP_EPOCHS (0; else next-sentence-prediction
#        epochs between the masked-LM model, or the model from scratch, and the fine-tuning, on
#        `qa_set.py pairs`: a question beside its package's description or another of its section),
#        QA_NSP_LR (2e-4), QA_COPY (0; else that many copy questions added to the training split: a run
#        of 4-8 words of the package's own description asked in place of its synopsis, see qa_set.py),
#        QA_SET (debian; diagnostic: `qa_set.py diagnostic`, five-word descriptions, one word asked;
#        probe-word / probe-next: `qa_set.py probe`, 15 words, the asked word or the one after it),
#        QA_SEED (42: initialisation and shuffling, ours and the peer's), QA_PEER (0; 1: after mlaas,
#        the same set, tokenizer and shape trained from scratch by PyTorch eager, `qa_peer.py`,
#        its scores printed beside ours: compare with a run from scratch);
#        clm: CLM_MODEL (gpt2-tiny), CLM_EPOCHS (4), CLM_LR (2e-3), CLM_BLOCK (128), CLM_VOCAB (8000)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
MLAAS="${MLAAS:-$root/build/release/src/cli/mlaas}"
[ -x "$MLAAS" ] || MLAAS="$root/build/test/src/cli/mlaas"
SHARED="${SHARED:-$root/../shared}"
WORK="${WORK:-/tmp/mlaas-quality}"
THREADS="${THREADS:-2}"
MODEL="${MODEL:-bert-mini}"
MAX_LENGTH="${MAX_LENGTH:-128}"
MLM_EPOCHS="${MLM_EPOCHS:-1}"
CLS_EPOCHS="${CLS_EPOCHS:-2}"
TYPO_EPOCHS="${TYPO_EPOCHS:-3}"
MLM_LR="${MLM_LR:-5e-4}"
CLS_LR="${CLS_LR:-3e-4}"
CLS_POOLING="${CLS_POOLING:-mean}"
SEARCH_MODEL="${SEARCH_MODEL:-bert-tiny}"
SEARCH_MLM_EPOCHS="${SEARCH_MLM_EPOCHS:-3}"
SEARCH_MLM_LR="${SEARCH_MLM_LR:-1e-3}"
PAIR_EPOCHS="${PAIR_EPOCHS:-4}"
PAIR_LR="${PAIR_LR:-1e-3}"
PAIR_BATCH="${PAIR_BATCH:-64}"
SEARCH_HARD="${SEARCH_HARD:-0}"
SEARCH_WHITENING="${SEARCH_WHITENING:-0.4}"
PAIR_SCALE="${PAIR_SCALE:-20}"
PAIR_SIMILARITY="${PAIR_SIMILARITY:-cosine}"
SEARCH_MLM_MODEL="${SEARCH_MLM_MODEL:-}"
SEARCH_STATIC_DIM="${SEARCH_STATIC_DIM:-4096}"
CLM_MODEL="${CLM_MODEL:-gpt2-tiny}"
CLM_EPOCHS="${CLM_EPOCHS:-4}"
CLM_LR="${CLM_LR:-2e-3}"
CLM_BLOCK="${CLM_BLOCK:-128}"
CLM_VOCAB="${CLM_VOCAB:-8000}"
SWEEP_MODEL="${SWEEP_MODEL:-bert-tiny}"
SWEEP_EPOCHS="${SWEEP_EPOCHS:-4}"
SWEEP_SECONDS="${SWEEP_SECONDS:-900}"
SWEEP_TRIALS="${SWEEP_TRIALS:-12}"
NER_MODEL="${NER_MODEL:-bert-tiny}"
NER_EPOCHS="${NER_EPOCHS:-3}"
NER_LR="${NER_LR:-1e-3}"
NER_MLM_EPOCHS="${NER_MLM_EPOCHS:-0}"
NER_VOCAB="${NER_VOCAB:-16000}"
QA_MODEL="${QA_MODEL:-bert-tiny}"
QA_EPOCHS="${QA_EPOCHS:-4}"
QA_LR="${QA_LR:-1e-3}"
QA_LENGTH="${QA_LENGTH:-192}"
QA_WORDS="${QA_WORDS:-20}"
QA_TRAIN="${QA_TRAIN:-12000}"
QA_NAMES="${QA_NAMES:-real}"
QA_COPY="${QA_COPY:-0}"
QA_SET="${QA_SET:-debian}"
QA_MLM_MODEL="${QA_MLM_MODEL:-}"
QA_MLM_EPOCHS="${QA_MLM_EPOCHS:-0}"
QA_NSP_EPOCHS="${QA_NSP_EPOCHS:-0}"
QA_NSP_LR="${QA_NSP_LR:-2e-4}"
QA_PEER="${QA_PEER:-0}"
QA_SEED="${QA_SEED:-42}"
FASHION_MODEL="${FASHION_MODEL:-cnn-small}"
FASHION_EPOCHS="${FASHION_EPOCHS:-5}"
FASHION_LR="${FASHION_LR:-2e-3}"
FASHION_BATCH="${FASHION_BATCH:-64}"
FASHION_DIR="${FASHION_DIR:-/usr/share/datasets/fashion-mnist}"
what="${1:-all}"
py=/usr/bin/python3

rm -rf "$WORK"
mkdir -p "$WORK/data/objects/datasets"
objects="$WORK/data/objects"
for f in debian_mlm_train debian_mlm_valid debian_section_train debian_section_valid debian_section_test \
         ieee_country_train ieee_country_valid ieee_country_test debian_search_corpus debian_search_queries; do
  [ "$what" = fashion ] || cp "$SHARED/data/$f.csv" "$objects/datasets/"
done

"$MLAAS" serve --data-dir "$WORK/data" --port 0 --port-file "$WORK/port" --workers 1 --threads "$THREADS" \
  --log-level warn > "$WORK/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$WORK/port")"

column() {  # column CSV NAME > lines
  $py -c 'import csv,sys; [print(r[sys.argv[2]]) for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]' "$1" "$2"
}
summary() {  # summary TASK.json: the held-out metrics and the time, one line
  $py -c 'import json,sys; t=json.load(open(sys.argv[1])); e=t.get("evaluation",{}); s=t["stats"]
print(t["task_status"], {k: round(v, 4) for k, v in e.items() if isinstance(v, float)},
      "train_seconds", round(s.get("train_seconds", 0)),
      *[x for k in ("tokens_per_s", "images_per_s") if k in s for x in (k.replace("_per_s", "/s"), round(s[k]))],
      "history", {k: [round(x, 4) for x in v] for k, v in t.get("history", {}).items() if k != "learning_rate"})' "$1"
}
predict_score() {  # predict_score MODEL_DIR CSV TEXT_COLUMN LABEL_COLUMN
  column "$2" "$3" > "$WORK/texts.txt"
  "$MLAAS" predict --model "$1" --input "$WORK/texts.txt" --threads "$THREADS" --json > "$WORK/pred.jsonl" 2>/dev/null
  $py "$here/score.py" "$2" "$4" "$WORK/pred.jsonl"
}
text_csv() {  # text_csv LINES.txt OUT.csv: one text a line into a CSV with a text column
  $py -c 'import csv,sys
w = csv.writer(open(sys.argv[2], "w", newline="", encoding="utf-8")); w.writerow(["text"])
w.writerows([l.rstrip("\n")] for l in open(sys.argv[1], encoding="utf-8") if l.strip())' "$1" "$2"
}
shape() {  # shape PRESET|CONFIG.json: the train options of a model shape, into the array `model_shape`
  if [[ "$1" == *.json ]]; then model_shape=(--config "$1"); else model_shape=(--preset "$1"); fi
}
pretrain() {  # pretrain NAME TOKENIZER CSV EPOCHS LENGTH: masked-LM pre-training into models/NAME_mlm
  echo "masked-LM pre-training on $3 ($4 epochs, 15% masked):"
  shape "$MLM_PRESET"
  train "$WORK/$1_mlm.json" --objective masked-lm "${model_shape[@]}" --tokenizer "$2" --dataset "$3" \
    --save "models/$1_mlm" --epochs "$4" --batch-size 32 --lr 1e-3 --warmup 200 --max-length "$5" --split 0.02
}
train() {  # train OUT.json ARGS...: a training task, followed; its summary printed
  local out="$1"
  shift
  local t0=$SECONDS
  "$MLAAS" train --server "$url" --json --follow "$@" > "$out" || { echo "training failed:"; cat "$out"; exit 1; }
  echo "  ($((SECONDS - t0)) s) $(summary "$out")"
}

if [ "$what" = sections ] || [ "$what" = all ]; then
  echo "== debian_section: $MODEL, max_length $MAX_LENGTH, $THREADS threads"
  column "$objects/datasets/debian_mlm_train.csv" text > "$WORK/mlm.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 16000 --lowercase \
    --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/mlm.txt" --output "$objects/tok" > /dev/null
  start=$SECONDS
  echo "masked-LM pre-training on debian_mlm_train ($MLM_EPOCHS epochs, 15% masked):"
  train "$WORK/mlm.json" --objective masked-lm --preset "$MODEL" --tokenizer tok --dataset datasets/debian_mlm_train.csv \
    --eval-dataset datasets/debian_mlm_valid.csv --save models/mlm --epochs "$MLM_EPOCHS" --batch-size 32 \
    --lr "$MLM_LR" --warmup 200 --max-length "$MAX_LENGTH"
  echo "fine-tuning on debian_section_train ($CLS_EPOCHS epochs, classifier pooling $CLS_POOLING):"
  train "$WORK/cls.json" --objective text-classification --model models/mlm --dataset datasets/debian_section_train.csv \
    --eval-dataset datasets/debian_section_valid.csv --save models/sections --epochs "$CLS_EPOCHS" --batch-size 32 \
    --lr "$CLS_LR" --warmup 100 --max-length "$MAX_LENGTH" --load-best --best-metric eval_accuracy \
    --classifier-pooling "$CLS_POOLING"
  echo "training time in all: $((SECONDS - start)) s"
  echo "test (debian_section_test): $(predict_score "$objects/models/sections" "$objects/datasets/debian_section_test.csv" text label)"
  echo "floor (TF-IDF + logistic regression, data README): accuracy 0.7518, macro-F1 0.6126"
fi

if [ "$what" = clm ] || [ "$what" = all ]; then
  echo "== causal-LM on debian_mlm: $CLM_MODEL, blocks of $CLM_BLOCK tokens, $CLM_EPOCHS epochs"
  # One text per line (newlines in descriptions become spaces), in CSVs the server trains on and
  # text files the n-gram baseline's ids come from: both see the same tokens.
  $py - "$objects/datasets" "$WORK" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
d, work = sys.argv[1:3]
for split in ("train", "valid"):
    rows = [" ".join(r["text"].split()) for r in csv.DictReader(open(f"{d}/debian_mlm_{split}.csv", encoding="utf-8"))]
    rows = [r for r in rows if r]
    with open(f"{d}/clm_{split}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([r] for r in rows)
    with open(f"{work}/clm_{split}.txt", "w", encoding="utf-8") as f:
        f.writelines(r + "\n" for r in rows)
PY
  "$MLAAS" tokenizer train --model bpe --vocab-size "$CLM_VOCAB" --special-tokens "<|endoftext|>" \
    --input "$WORK/clm_train.txt" --output "$objects/tok_clm" > /dev/null
  echo "causal-LM training on debian_mlm_train:"
  train "$WORK/clm.json" --objective causal-lm --preset "$CLM_MODEL" --tokenizer tok_clm --dataset datasets/clm_train.csv \
    --eval-dataset datasets/clm_valid.csv --save models/clm --epochs "$CLM_EPOCHS" --batch-size 32 --lr "$CLM_LR" \
    --warmup 200 --max-length "$CLM_BLOCK"
  for split in train valid; do
    "$MLAAS" tokenizer encode --tokenizer "$objects/tok_clm" --input "$WORK/clm_$split.txt" --no-special-tokens \
      --output "$WORK/clm_$split.ids.jsonl"
  done
  eos=$($py -c 'import json,sys; t=json.load(open(sys.argv[1])); print(next(a["id"] for a in t["added_tokens"] if a["content"]=="<|endoftext|>"))' "$objects/tok_clm/tokenizer.json")
  vocab=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$objects/models/clm/config.json")
  echo "baseline: $($py "$here/ngram_ppl.py" "$WORK/clm_train.ids.jsonl" "$WORK/clm_valid.ids.jsonl" "$eos" "$CLM_BLOCK" "$vocab")"
  echo "a greedy continuation: $("$MLAAS" predict --model "$objects/models/clm" --text "This package contains" --max-new-tokens 24 2>/dev/null)"
fi

if [ "$what" = ner ] || [ "$what" = all ]; then
  echo "== NER (package names in debian_section's descriptions): $NER_MODEL, $NER_MLM_EPOCHS pre-training epochs, $NER_EPOCHS epochs, vocabulary $NER_VOCAB"
  echo "set: $($py "$here/ner_set.py" build "$SHARED/data" "$objects/datasets")"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size "$NER_VOCAB" --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" \
    --input "$objects/datasets/ner_train.txt" --output "$objects/tok_ner" > /dev/null
  ner_start=(--preset "$NER_MODEL" --tokenizer tok_ner)
  if [ "$NER_MLM_EPOCHS" -gt 0 ]; then
    text_csv "$objects/datasets/ner_train.txt" "$objects/datasets/ner_mlm.csv"
    MLM_PRESET="$NER_MODEL" pretrain ner tok_ner datasets/ner_mlm.csv "$NER_MLM_EPOCHS" 128
    ner_start=(--model models/ner_mlm)
  fi
  train "$WORK/ner.json" --objective token-classification "${ner_start[@]}" \
    --dataset datasets/ner_train.jsonl --eval-dataset datasets/ner_valid.jsonl --save models/ner --epochs "$NER_EPOCHS" \
    --batch-size 32 --lr "$NER_LR" --warmup 200 --max-length 128 --load-best --best-metric eval_f1
  "$MLAAS" predict --model "$objects/models/ner" --input "$objects/datasets/ner_test.txt" --aggregation first \
    --threads "$THREADS" --json > "$WORK/ner_pred.jsonl" 2>/dev/null
  echo "test: $($py "$here/ner_set.py" score "$objects/datasets" "$WORK/ner_pred.jsonl")"
  echo "baseline (gazetteer of the training entities): $($py "$here/ner_set.py" baseline "$objects/datasets")"
fi

if [ "$what" = qa ] || [ "$what" = all ]; then
  echo "== QA (which package a synopsis describes): $QA_MODEL, $QA_MLM_EPOCHS pre-training epochs, $QA_NSP_EPOCHS next-sentence epochs, $QA_EPOCHS epochs, max_length $QA_LENGTH, $QA_WORDS words a description, $QA_NAMES names in training, $QA_COPY copy questions"
  if [ "$QA_SET" = diagnostic ]; then
    echo "diagnostic set: $($py "$here/qa_set.py" diagnostic "$SHARED/data" "$objects/datasets" "$QA_TRAIN")"
  elif [ "$QA_SET" = probe-word ] || [ "$QA_SET" = probe-next ]; then
    echo "probe: $($py "$here/qa_set.py" probe "$SHARED/data" "$objects/datasets" "${QA_SET#probe-}" "$QA_TRAIN")"
  else
    echo "set: $($py "$here/qa_set.py" build "$SHARED/data" "$objects/datasets" "$QA_TRAIN" "$QA_WORDS" "$QA_NAMES" "$QA_COPY")"
  fi
  echo "pre-training texts: $($py "$here/qa_set.py" corpus "$SHARED/data" "$objects/datasets/qa_mlm.csv" "$QA_WORDS")"
  { $py -c 'import json,sys; [print(json.loads(l)[k]) for l in open(sys.argv[1], encoding="utf-8") for k in ("question", "context")]' \
      "$objects/datasets/qa_train.jsonl"; column "$objects/datasets/qa_mlm.csv" text; } > "$WORK/qa.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 16000 --lowercase --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" \
    --input "$WORK/qa.txt" --output "$objects/tok_qa" > /dev/null
  shape "$QA_MODEL"
  qa_start=("${model_shape[@]}" --tokenizer tok_qa)
  if [ -n "$QA_MLM_MODEL" ]; then
    echo "masked-LM model from $QA_MLM_MODEL (no pre-training)"
    mkdir -p "$objects/models" && rm -rf "$objects/models/qa_mlm" && cp -r "$QA_MLM_MODEL" "$objects/models/qa_mlm"
    qa_start=(--model models/qa_mlm)
  elif [ "$QA_MLM_EPOCHS" -gt 0 ]; then
    MLM_PRESET="$QA_MODEL" pretrain qa tok_qa datasets/qa_mlm.csv "$QA_MLM_EPOCHS" "$QA_LENGTH"
    qa_start=(--model models/qa_mlm)
  fi
  if [ "$QA_NSP_EPOCHS" -gt 0 ]; then
    echo "next-sentence pairs: $($py "$here/qa_set.py" pairs "$SHARED/data" "$objects/datasets" "$QA_WORDS")"
    echo "next-sentence prediction ($QA_NSP_EPOCHS epochs): a question beside a description of its section"
    train "$WORK/qa_nsp.json" --objective next-sentence-prediction "${qa_start[@]}" --dataset datasets/qa_nsp_train.csv \
      --eval-dataset datasets/qa_nsp_valid.csv --pair-column pair --save models/qa_nsp --epochs "$QA_NSP_EPOCHS" \
      --batch-size 32 --lr "$QA_NSP_LR" --warmup 200 --max-length 96
    qa_start=(--model models/qa_nsp)
  fi
  train "$WORK/qa.json" --objective question-answering "${qa_start[@]}" \
    --dataset datasets/qa_train.jsonl --eval-dataset datasets/qa_valid.jsonl --save models/qa --epochs "$QA_EPOCHS" \
    --batch-size 32 --lr "$QA_LR" --warmup 200 --max-length "$QA_LENGTH" --load-best --best-metric eval_exact_match \
    --seed "$QA_SEED"
  $py "$here/qa_set.py" answer "$objects/datasets" "$url" models/qa "$WORK/qa_answers.jsonl"
  echo "test: $($py "$here/qa_set.py" score "$objects/datasets" "$WORK/qa_answers.jsonl")"
  if [[ "$QA_SET" == probe-* ]]; then
    echo "chance (one of 15 words; of 14 for probe-next): exact match 0.067 (0.071)"
  else
    echo "answers: $($py "$here/qa_set.py" stanzas "$objects/datasets" "$WORK/qa_answers.jsonl")"
    echo "baseline (TF-IDF: the name of the stanza whose description is nearest the question): $($py "$here/qa_set.py" baseline "$objects/datasets")"
    echo "chance (one of three stanzas): exact match 0.333"
  fi
  if [ "$QA_PEER" = 1 ]; then
    if [[ "$QA_MODEL" == *.json ]]; then peer_config="$QA_MODEL"; else
      rm -rf "$WORK/qa_peer_shape"
      "$MLAAS" model init --preset "$QA_MODEL" --tokenizer "$objects/tok_qa" --output "$WORK/qa_peer_shape" > /dev/null
      peer_config="$WORK/qa_peer_shape/config.json"
    fi
    echo "peer (PyTorch eager, transformers' BertForQuestionAnswering from scratch; bench/quality/qa_peer.py says where its recipe differs):"
    $py "$here/qa_peer.py" "$MLAAS" "$objects/datasets" "$objects/tok_qa" "$peer_config" "$QA_EPOCHS" "$QA_LENGTH" \
      "$QA_LR" "$THREADS" "$QA_SEED" | sed 's/^/  /'
  fi
fi

if [ "$what" = typos ] || [ "$what" = all ]; then
  echo "== ieee_country typo robustness: $MODEL from scratch, $TYPO_EPOCHS epochs"
  column "$objects/datasets/ieee_country_train.csv" text > "$WORK/ieee.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase \
    --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/ieee.txt" --output "$objects/tok_ieee" > /dev/null
  $py "$here/typos.py" "$objects/datasets/ieee_country_test.csv" text 0.05 1 "$WORK/ieee_test_typos.csv"
  # The same number of steps both ways: without augmentation, (copies + 1) times the epochs.
  for copies in 0 2; do
    epochs=$((copies == 0 ? TYPO_EPOCHS * 3 : TYPO_EPOCHS))
    echo "typo copies per example: $copies ($epochs epochs)"
    train "$WORK/ieee_$copies.json" --objective text-classification --preset "$MODEL" --tokenizer tok_ieee \
      --dataset datasets/ieee_country_train.csv --eval-dataset datasets/ieee_country_valid.csv \
      --save "models/ieee_$copies" --epochs "$epochs" --batch-size 32 --lr 5e-4 --warmup 100 \
      --max-length 64 --typo-copies "$copies"
    echo "  clean test: $(predict_score "$objects/models/ieee_$copies" "$objects/datasets/ieee_country_test.csv" text label)"
    echo "  typo test:  $(predict_score "$objects/models/ieee_$copies" "$WORK/ieee_test_typos.csv" text label)"
  done
  echo "floor (TF-IDF + logistic regression, clean test): accuracy 0.9531, macro-F1 0.9141"
fi

if [ "$what" = search ] || [ "$what" = all ]; then
  echo "== debian query -> package search: $SEARCH_MODEL, $SEARCH_MLM_EPOCHS masked-LM epochs, $PAIR_EPOCHS pair epochs"
  # (query, description) pairs of the train and valid splits, as anchor/positive columns.
  $py - "$objects/datasets" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
d = sys.argv[1]
text = {r["doc_id"]: r["text"] for r in csv.DictReader(open(f"{d}/debian_search_corpus.csv", encoding="utf-8"))}
for split in ("train", "valid"):
    with open(f"{d}/search_pairs_{split}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["anchor", "positive"])
        for r in csv.DictReader(open(f"{d}/debian_search_queries.csv", encoding="utf-8")):
            if r["split"] == split:
                w.writerow([r["text"], text[r["doc_id"]]])
PY
  column "$objects/datasets/debian_mlm_train.csv" text > "$WORK/mlm.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 16000 --lowercase \
    --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/mlm.txt" --output "$objects/tok_search" > /dev/null
  start=$SECONDS
  # The pair training's starting point: the masked-LM model, or a static embedding model's config.
  pair_start=(--model models/search_mlm --max-length "$MAX_LENGTH" --whitening "$SEARCH_WHITENING")
  if [ "$SEARCH_MODEL" = static ]; then
    echo "{\"model_type\": \"static-embedding\", \"hidden_size\": $SEARCH_STATIC_DIM}" > "$WORK/static.json"
    echo "static embedding model, $SEARCH_STATIC_DIM dimensions (no masked-LM pre-training)"
    pair_start=(--config "$WORK/static.json" --tokenizer tok_search)
  elif [ -n "$SEARCH_MLM_MODEL" ]; then
    echo "masked-LM model from $SEARCH_MLM_MODEL (no pre-training)"
    mkdir -p "$objects/models" && cp -r "$SEARCH_MLM_MODEL" "$objects/models/search_mlm"
  else
    echo "masked-LM pre-training on debian_mlm_train ($SEARCH_MLM_EPOCHS epochs, 15% masked):"
    shape "$SEARCH_MODEL"
    train "$WORK/search_mlm.json" --objective masked-lm "${model_shape[@]}" --tokenizer tok_search \
      --dataset datasets/debian_mlm_train.csv --eval-dataset datasets/debian_mlm_valid.csv --save models/search_mlm \
      --epochs "$SEARCH_MLM_EPOCHS" --batch-size 32 --lr "$SEARCH_MLM_LR" --warmup 200 --max-length "$MAX_LENGTH"
  fi
  pairs=pairs
  if [ "$SEARCH_HARD" = 1 ] && [ "$SEARCH_MODEL" = static ]; then
    echo "SEARCH_HARD mines with the masked-LM model's tokenizer: not with SEARCH_MODEL=static" >&2
    exit 2
  fi
  if [ "$SEARCH_HARD" = 1 ]; then
    # Each train query's best BM25 match among the train split's documents that is not its
    # own package becomes its hard negative (the server's lexical search over a plain dataset).
    $py - "$url" "$objects/datasets" <<'PY'
import csv, json, sys, urllib.request
csv.field_size_limit(1 << 30)
url, d = sys.argv[1:3]
text = {r["doc_id"]: r["text"] for r in csv.DictReader(open(f"{d}/debian_search_corpus.csv", encoding="utf-8"))}
rows = list(csv.DictReader(open(f"{d}/debian_search_queries.csv", encoding="utf-8")))
train = [r for r in rows if r["split"] == "train"]
with open(f"{d}/train_docs.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f); w.writerow(["doc_id", "text"])
    for r in train: w.writerow([r["doc_id"], text[r["doc_id"]]])
negative = {}
for s in range(0, len(train), 1000):
    batch = train[s:s + 1000]
    body = {"model": {"path": "models/search_mlm", "objective": "masked-lm"},
            "dataset": {"path": "datasets/train_docs.csv", "loader_kwargs": {"page_content_column": "text", "id_column": "doc_id"}},
            "search_input": {"input_text": [r["text"] for r in batch], "top_k": 3, "mode": "lexical"}}
    req = urllib.request.Request(url + "/api/v1/ml/nlp/search", json.dumps(body).encode(), {"Content-Type": "application/json"})
    for r, hits in zip(batch, json.load(urllib.request.urlopen(req, timeout=3600))["results"]):
        other = [h for h in hits if h["id"] != r["doc_id"]]
        if other: negative[r["query_id"]] = other[0]["page_content"]
for split in ("train", "valid"):
    with open(f"{d}/search_triples_{split}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f); w.writerow(["anchor", "positive", "negative"])
        for r in rows:
            if r["split"] == split: w.writerow([r["text"], text[r["doc_id"]], negative.get(r["query_id"], "")])
print(f"  {len(negative)} of {len(train)} train queries have a BM25 hard negative")
PY
    pairs=triples
  fi
  $py -c 'import json,sys; r={"model_train": {"scale": float(sys.argv[1]), "similarity": sys.argv[3]}}
if sys.argv[2] == "1": r["dataset"] = {"loader_kwargs": {"negative_column": "negative"}}
print(json.dumps(r))' "$PAIR_SCALE" "$SEARCH_HARD" "$PAIR_SIMILARITY" > "$WORK/pair_request.json"
  echo "sentence-embedding training on the train split's $pairs ($PAIR_EPOCHS epochs, batch $PAIR_BATCH, $PAIR_SIMILARITY, scale $PAIR_SCALE):"
  train "$WORK/search_emb.json" --objective sentence-embedding "${pair_start[@]}" --request "$WORK/pair_request.json" \
    --dataset "datasets/search_${pairs}_train.csv" --eval-dataset "datasets/search_${pairs}_valid.csv" \
    --save models/search_emb --epochs "$PAIR_EPOCHS" --batch-size "$PAIR_BATCH" --lr "$PAIR_LR" --warmup 100
  echo "training time in all: $((SECONDS - start)) s"
  t0=$SECONDS
  "$MLAAS" index --server "$url" --json --follow --model models/search_emb --objective sentence-embedding \
    --dataset datasets/debian_search_corpus.csv --text-column text --id-column doc_id --save stores/debian \
    > "$WORK/index.json" || { cat "$WORK/index.json"; exit 1; }
  $py -c 'import json,sys; t=json.load(open(sys.argv[1])); print("  indexed", t["documents"], "documents,", round(t["docs_per_second"]), "docs/s")' "$WORK/index.json"
  echo "  ($((SECONDS - t0)) s)"
  eval_split() { $py "$here/search_eval.py" "$url" "$objects/datasets/debian_search_queries.csv" "$@"; }
  echo "valid split: the hybrids' dense weights"
  eval_split valid stores/debian models/search_emb sentence-embedding dense lexical \
    hybrid:0.1 hybrid:0.2 hybrid:0.3 hybrid:0.5 hybrid:0.7 hybrid:0.9 \
    linear:0.1 linear:0.2 linear:0.3 linear:0.4 linear:0.5 linear:0.6 linear:0.7 linear:0.8 linear:0.9 \
    | tee "$WORK/search_valid.jsonl"
  best() {  # best MODE: its dense weight with the best valid MRR@10
    $py -c 'import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; rows=[r for r in rows if r["mode"]==sys.argv[2]]
print(max(rows, key=lambda r: r["mrr@10"])["dense_weight"])' "$WORK/search_valid.jsonl" "$1"
  }
  rrf=$(best hybrid)
  linear=$(best linear)
  echo "test split (3,501 queries against all 37,026 documents); dense weights from valid: rrf $rrf, linear $linear"
  eval_split test stores/debian models/search_emb sentence-embedding dense lexical "hybrid:$rrf" "linear:$linear"
  echo "floors (data README, test split): BM25 recall@1 0.5738, recall@10 0.8032; TF-IDF 0.4742 / 0.7549"
fi

if [ "$what" = sweep ] || [ "$what" = all ]; then
  echo "== debian_section (short descriptions): $SWEEP_MODEL from scratch, $SWEEP_EPOCHS epochs; defaults vs a sweep of $SWEEP_SECONDS s"
  column "$objects/datasets/debian_section_train.csv" short > "$WORK/short.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase \
    --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/short.txt" --output "$objects/tok_short" > /dev/null
  common=(--objective text-classification --preset "$SWEEP_MODEL" --tokenizer tok_short
          --dataset datasets/debian_section_train.csv --eval-dataset datasets/debian_section_valid.csv
          --text-column short --max-length 48 --epochs "$SWEEP_EPOCHS" --load-best --best-metric eval_accuracy)
  echo "the defaults (learning rate 2e-5, batch 32, no warm-up):"
  train "$WORK/sweep_defaults.json" "${common[@]}" --save models/short_defaults
  echo "  test: $(predict_score "$objects/models/short_defaults" "$objects/datasets/debian_section_test.csv" short label)"
  echo "a sweep: random search of $SWEEP_TRIALS trials at most, ASHA (rungs at epochs 1 and 3), $SWEEP_SECONDS s:"
  t0=$SECONDS
  "$MLAAS" sweep --server "$url" --json --wait "${common[@]}" --save models/short_sweep \
    --param optimizer.init_lr=log-uniform:1e-4,1e-2 --param batch_size=choice:16,32,64 \
    --param optimizer.num_warm_steps=int:0,300 --metric eval_accuracy --max-trials "$SWEEP_TRIALS" \
    --max-seconds "$SWEEP_SECONDS" --sweep-seed 1 > "$WORK/sweep.json" || { cat "$WORK/sweep.json"; exit 1; }
  $py -c 'import json,sys; t=json.load(open(sys.argv[1]))
for r in t["table"]["rows"]: print("  ", dict(zip(t["table"]["columns"], [round(x, 5) if isinstance(x, float) else x for x in r])))
print("  best:", t["best"]["trial"], t["best"]["params"], "valid accuracy", round(t["best"]["metric"], 4), "| stats", t["stats"])' "$WORK/sweep.json"
  echo "  ($((SECONDS - t0)) s)"
  best=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["best"]["model"]["path"])' "$WORK/sweep.json")
  echo "  test: $(predict_score "$objects/$best" "$objects/datasets/debian_section_test.csv" short label)"
  echo "floor (TF-IDF + logistic regression, short only, data README): accuracy 0.6856, macro-F1 0.5803"
fi

if [ "$what" = fashion ] || [ "$what" = all ]; then
  echo "== Fashion-MNIST: $FASHION_MODEL from scratch, $FASHION_EPOCHS epochs, $THREADS threads"
  mkdir -p "$objects/fashion/train" "$objects/fashion/t10k"
  cp "$FASHION_DIR"/train-*-ubyte.gz "$objects/fashion/train/"
  cp "$FASHION_DIR"/t10k-*-ubyte.gz "$objects/fashion/t10k/"
  cat > "$WORK/fashion.json" <<JSON
{"dataset": {"path": "fashion/train", "format": "idx", "eval_dataset": {"path": "fashion/t10k", "format": "idx"},
             "label_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
             "augment": {"crop_padding": 2, "horizontal_flip": true}},
 "model_train": {"threads": $THREADS, "optimizer": {"name": "AdamW", "init_lr": $FASHION_LR, "num_warm_steps": 200}}}
JSON
  train "$WORK/fashion_run.json" --request "$WORK/fashion.json" --objective image-classification --preset "$FASHION_MODEL" \
    --save models/fashion --epochs "$FASHION_EPOCHS" --batch-size "$FASHION_BATCH"
  $py -c 'import json,sys; t=json.load(open(sys.argv[1])); h=t["history"]
print("t10k accuracy by epoch:", [round(x, 4) for x in h["eval_accuracy"]], "macro-F1 (last):", round(t["evaluation"]["macro_f1"], 4))
print("training seconds:", round(t["stats"]["train_seconds"]), "images/s:", round(t["stats"]["images_per_s"]))' "$WORK/fashion_run.json"
  echo "floor (logistic regression on pixels, data README): t10k accuracy 0.8426"
fi
