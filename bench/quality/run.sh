#!/usr/bin/env bash
# Quality runs on the public data of ../shared/data (on demand, not in the test command):
#   sections  masked-LM pre-training on debian_mlm_train, then fine-tuning on debian_section_train
#             (held out: debian_section_valid); test accuracy / macro-F1 on debian_section_test,
#             against the TF-IDF + logistic-regression floor of the data README.
#   typos     ieee_country classifiers trained without and with typo augmentation, scored on the
#             clean test split and on a typo-corrupted copy.
# Everything goes through the real server (`mlaas serve`) and the CLI (`mlaas train --follow`,
# `mlaas predict`), as a user would run it. Figures go to docs/benchmarks.md by hand.
#
#   bench/quality/run.sh [sections|typos|all]
#   env: MLAAS (binary), SHARED (../shared), WORK (/tmp/mlaas-quality), THREADS (2),
#        MODEL (bert-mini), MAX_LENGTH (128), MLM_EPOCHS (1), CLS_EPOCHS (2), TYPO_EPOCHS (3),
#        MLM_LR (5e-4), CLS_LR (3e-4)
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
what="${1:-all}"
py=/usr/bin/python3

rm -rf "$WORK"
mkdir -p "$WORK/data/objects/datasets"
objects="$WORK/data/objects"
for f in debian_mlm_train debian_mlm_valid debian_section_train debian_section_valid debian_section_test \
         ieee_country_train ieee_country_valid ieee_country_test; do
  cp "$SHARED/data/$f.csv" "$objects/datasets/"
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
      "train_seconds", round(s.get("train_seconds", 0)), "tokens/s", round(s.get("tokens_per_s", 0)),
      "history", {k: [round(x, 4) for x in v] for k, v in t.get("history", {}).items() if k != "learning_rate"})' "$1"
}
predict_score() {  # predict_score MODEL_DIR CSV TEXT_COLUMN LABEL_COLUMN
  column "$2" "$3" > "$WORK/texts.txt"
  "$MLAAS" predict --model "$1" --input "$WORK/texts.txt" --threads "$THREADS" --json > "$WORK/pred.jsonl" 2>/dev/null
  $py "$here/score.py" "$2" "$4" "$WORK/pred.jsonl"
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
  echo "fine-tuning on debian_section_train ($CLS_EPOCHS epochs):"
  train "$WORK/cls.json" --objective text-classification --model models/mlm --dataset datasets/debian_section_train.csv \
    --eval-dataset datasets/debian_section_valid.csv --save models/sections --epochs "$CLS_EPOCHS" --batch-size 32 \
    --lr "$CLS_LR" --warmup 100 --max-length "$MAX_LENGTH"
  echo "training time in all: $((SECONDS - start)) s"
  echo "test (debian_section_test): $(predict_score "$objects/models/sections" "$objects/datasets/debian_section_test.csv" text label)"
  echo "floor (TF-IDF + logistic regression, data README): accuracy 0.7518, macro-F1 0.6126"
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
