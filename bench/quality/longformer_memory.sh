#!/usr/bin/env bash
# Peak resident memory of one forward pass (mlaas predict, no-objective, 1 thread) of longformer-tiny
# against RoBERTa of the same shape (full attention), by input length (docs/benchmarks.md).
#   bench/quality/longformer_memory.sh   env: MLAAS (binary), WORK (/tmp/mlaas-longformer-memory)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
M="${MLAAS:-$here/../../build/test/src/cli/mlaas}"
WORK="${WORK:-/tmp/mlaas-longformer-memory}"
rm -rf "$WORK" && mkdir -p "$WORK"
cd "$WORK"
python3 - <<'PY'
import random
random.seed(1)
words = "package library data tool network system file server client python module support the of and for with".split()
open("corpus.txt","w").write("\n".join(" ".join(random.choice(words) for _ in range(40)) for _ in range(2000)))
PY
$M tokenizer train --model bpe --vocab-size 400 --special-tokens "<s>,<pad>,</s>,<unk>,<mask>" --input corpus.txt --output tok > /dev/null
echo '{"model_type":"roberta","hidden_size":128,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":512,"max_position_embeddings":4098}' > roberta.json
$M model init --preset longformer-tiny --objective no-objective --tokenizer tok --output lf > /dev/null
$M model init --config roberta.json --objective no-objective --tokenizer tok --output rb > /dev/null
for n in 1024 2048 4000; do
  python3 -c "import random; random.seed(2); w='package library data tool network system file server'.split(); print(' '.join(random.choice(w) for _ in range($n)))" > text.txt
  for m in lf rb; do
    /usr/bin/time -f "%M" -o rss.txt $M predict --model $m --input text.txt --threads 1 > /dev/null 2>err.txt || { echo "$m $n failed: $(tail -1 err.txt)"; continue; }
    echo "$m tokens~$n maxrss_kb $(cat rss.txt)"
  done
done
