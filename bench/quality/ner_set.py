#!/usr/bin/python3
"""A silver NER set from debian_section's descriptions, its gazetteer baseline, and a scorer.

  ner_set.py build SHARED_DATA OUT_DIR      -> OUT_DIR/ner_{train,valid,test}.jsonl + ner_test.txt
  ner_set.py baseline OUT_DIR               -> the gazetteer baseline on the test split, one JSON line
  ner_set.py score OUT_DIR PREDICTIONS.jsonl -> `mlaas predict --json` entities scored (the model's, and
                                              the model's added to the gazetteer's), one JSON line

How the set is built: each description (`text`, its split kept) is cut into pieces of at most 64
words (words as BERT's pre-tokenizer splits them: runs of letters and digits, every other
non-space character alone), each piece one example. A PKG entity is a maximal run of
[A-Za-z0-9.+-] (a trailing '.' or '-' left out) that is, letter for letter, the name of a Debian
package named in the shared data (debian_section's id and source, debian_search_corpus's doc_id),
at least 3 characters long, not an English word (a lemma of wordnet_lexname_* or a word of its
definitions and examples, where the verbs and inflected forms are) and not one of the 1,000
commonest words of the training texts, so that "file", "make", "python" or "the" stay
plain words: "libgtk-3-dev" is one entity of five words
(B-PKG I-PKG I-PKG I-PKG I-PKG). The rule is deterministic, so the labels are consistent; they are
silver (a package named in a sentence about something else is still tagged).

The baseline is CoNLL-2003's: the entities seen in the training split, tagged wherever they occur
in a test text (as whole runs, as the labels are). Its precision is 1 by construction (the rule depends on the string
only); what it cannot do is find names it has not seen, which a model can from their shape and
context. Scores are entity-level (exact character span and type), micro precision/recall/F1, also
on the test entities whose string never occurs as an entity in the training split ("unseen").
"""
import csv, json, re, sys
from collections import Counter

csv.field_size_limit(1 << 30)
WORD = re.compile(r"[^\W_]+|\S")
RUN = re.compile(r"[A-Za-z0-9.+\-]+")
MAX_WORDS = 64


def package_names(data):
    names = set()
    for split in ("train", "valid", "test"):
        for r in csv.DictReader(open(f"{data}/debian_section_{split}.csv", encoding="utf-8")):
            names.update((r["id"], r["source"]))
    for r in csv.DictReader(open(f"{data}/debian_search_corpus.csv", encoding="utf-8")):
        names.add(r["doc_id"])
    lemmas = set()
    for split in ("train", "valid", "test"):
        for r in csv.DictReader(open(f"{data}/wordnet_lexname_{split}.csv", encoding="utf-8")):
            for lemma in r["lemmas"].split(";"):
                lemma = lemma.strip().lower().replace(" ", "_")
                lemmas.add(lemma)
                lemmas.add(lemma.replace("_", "-"))
            lemmas.update(w.lower() for w in WORD.findall(r["text"] + " " + r["examples"]))
    # Function words are not WordNet lemmas: the 1,000 commonest words of the training texts join them.
    counts = Counter(w for r in csv.DictReader(open(f"{data}/debian_section_train.csv", encoding="utf-8"))
                     for w in WORD.findall(r["text"].lower()))
    common = {w for w, _ in counts.most_common(1000)}
    return {n for n in names if len(n) >= 3 and n.lower() not in lemmas and n.lower() not in common}


def entity_spans(text, names):
    spans = []
    for m in RUN.finditer(text):
        s, e = m.start(), m.end()
        while e > s and text[e - 1] in ".-":
            e -= 1
        if text[s:e] in names:
            spans.append((s, e))
    return spans


def example(text, spans):
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    tags = ["O"] * len(words)
    for s, e in spans:
        inside = [k for k, (ws, we) in enumerate(words) if ws >= s and we <= e]
        for j, k in enumerate(inside):
            tags[k] = ("B-" if j == 0 else "I-") + "PKG"
    return words, tags


def pieces(text):
    """The text cut into pieces of at most MAX_WORDS words (character ranges, whole words)."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    for k in range(0, len(words), MAX_WORDS):
        chunk = words[k:k + MAX_WORDS]
        yield chunk[0][0], chunk[-1][1]


def build(data, out):
    names = package_names(data)
    stats = {}
    for split in ("train", "valid", "test"):
        rows = list(csv.DictReader(open(f"{data}/debian_section_{split}.csv", encoding="utf-8")))
        n_entities = 0
        with open(f"{out}/ner_{split}.jsonl", "w", encoding="utf-8") as f, \
             open(f"{out}/ner_{split}.txt", "w", encoding="utf-8") as texts:
            for r in rows:
                full = " ".join(r["text"].split())  # one line per piece
                found = entity_spans(full, names)
                for s, e in pieces(full):
                    text = full[s:e]
                    # Found in the whole text: a name cut by the piece's edge is not an entity of the piece.
                    spans = [(a - s, b - s) for a, b in found if a >= s and b <= e]
                    words, tags = example(text, spans)
                    n_entities += len(spans)
                    f.write(json.dumps({"text": text, "tokens": [text[a:b] for a, b in words], "tags": tags,
                                        "entities": spans}, ensure_ascii=False) + "\n")
                    texts.write(text + "\n")
        stats[split] = {"descriptions": len(rows), "entities": n_entities}
    print(json.dumps({"package_names": len(names), **stats}))


def load(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def prf(gold, pred):
    tp = len(gold & pred)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(gold) if gold else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}


def scores(out, predicted):
    """predicted: per test example, a set of (start, end) PKG spans."""
    seen = {ex["text"][s:e] for ex in load(f"{out}/ner_train.jsonl") for s, e in ex["entities"]}
    test = load(f"{out}/ner_test.jsonl")
    assert len(predicted) == len(test), f"{len(predicted)} predictions for {len(test)} texts"
    gold, pred, gold_unseen, pred_unseen = set(), set(), set(), set()
    for i, (ex, spans) in enumerate(zip(test, predicted)):
        for s, e in ex["entities"]:
            gold.add((i, s, e))
            if ex["text"][s:e] not in seen:
                gold_unseen.add((i, s, e))
        for s, e in spans:
            pred.add((i, s, e))
            if ex["text"][s:e] not in seen:
                pred_unseen.add((i, s, e))
    return {"texts": len(test), "entities": len(gold), "unseen_entities": len(gold_unseen), **prf(gold, pred),
            "unseen": prf(gold_unseen, pred_unseen)}


def gazetteer_spans(out):
    gazetteer = {ex["text"][s:e] for ex in load(f"{out}/ner_train.jsonl") for s, e in ex["entities"]}
    return [entity_spans(ex["text"], gazetteer) for ex in load(f"{out}/ner_test.jsonl")]


def baseline(out):
    print(json.dumps(scores(out, gazetteer_spans(out))))


def score(out, predictions):
    predicted = []
    for line in open(predictions, encoding="utf-8"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        p = json.loads(line)
        ents = p.get("entities", p.get("predictions", []))
        predicted.append([(x["start"], x["end"]) for x in ents if x["entity_group"] == "PKG"])
    # The model alone, and its entities added to the gazetteer's (a name the model finds that the
    # gazetteer has not seen; where the two overlap differently, the gazetteer's wins).
    combined = []
    for model, known in zip(predicted, gazetteer_spans(out)):
        combined.append(known + [(s, e) for s, e in model if all(e <= a or s >= b for a, b in known)])
    print(json.dumps({"model": scores(out, predicted), "model_and_gazetteer": scores(out, combined)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2], sys.argv[3])
    elif cmd == "baseline":
        baseline(sys.argv[2])
    elif cmd == "score":
        score(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
