# Sourced by the wrk benchmarks of serving (auth_overhead.sh, forward_bench.sh): their settings
# (DUR from the first argument; env CONNS, ROUNDS, THREADS, MLAAS) and their model.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MLAAS=${MLAAS:-$ROOT/build/test/src/cli/mlaas}
DUR=${1:-10}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "missing wrk (scripts/install-deps.sh --bench)"; exit 1; }

# mini_model OBJECTS_DIR: a bert-mini text classifier (labels neg, pos, seed 1) with a WordPiece
# tokenizer of 8,000 trained on the words wrk_v2.lua sends, as OBJECTS_DIR/tok and models/mini.
mini_model() {
  mkdir -p "$1"
  /usr/bin/python3 -c '
import sys
base = "the quick brown fox jumps over lazy dog while platform trains small bert model on two cores".split()
with open(sys.argv[1], "w") as f:
    for _ in range(50): f.write(" ".join(w + str(d) for w in base for d in range(7)) + "\n")' "$1/corpus.txt"
  "$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase \
    --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$1/corpus.txt" --output "$1/tok" >/dev/null
  "$MLAAS" model init --preset bert-mini --objective text-classification --labels neg,pos \
    --tokenizer "$1/tok" --output "$1/models/mini" --seed 1 >/dev/null
  rm "$1/corpus.txt"
}
