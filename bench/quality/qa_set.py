#!/usr/bin/python3
"""An extractive QA set from debian_section (SQuAD layout), its lexical baseline, and a scorer.

  qa_set.py build SHARED_DATA OUT_DIR [TRAIN_QUESTIONS [WORDS [NAMES [COPIES]]]]
                                                         -> OUT_DIR/qa_{train,valid,test}.jsonl
  qa_set.py diagnostic SHARED_DATA OUT_DIR [TRAIN_QUESTIONS]
                                                         -> a diagnostic set in the same files: five-word
                                                            descriptions, one of its words asked exactly
  qa_set.py probe SHARED_DATA OUT_DIR KIND [TRAIN_QUESTIONS]
                                                         -> a probe in the same files: 15 words, one asked;
                                                            KIND `word` answers it, `next` the word after it
  qa_set.py corpus SHARED_DATA OUT.csv [WORDS]           -> masked-LM pre-training texts in the same layout,
                                                            from the training split only
  qa_set.py pairs SHARED_DATA OUT_DIR [WORDS]            -> OUT_DIR/qa_nsp_{train,valid}.csv: next-sentence
                                                            pairs (question, description), is_next or not
  qa_set.py baseline OUT_DIR                             -> the TF-IDF baseline on the test split
  qa_set.py answer OUT_DIR URL MODEL OUT.jsonl           -> the test questions answered by the server
                                                            (the Python SDK's client.answer)
  qa_set.py score OUT_DIR ANSWERS.jsonl                  -> exact match / F1 of those answers
  qa_set.py stanzas OUT_DIR ANSWERS.jsonl                -> which stanza's name the answers are (or other spans)

How the set is built: a question asks which package a description's synopsis (`short`) is about:
"Which package is: <short>?". Its context is three stanzas of a Debian Packages file,
"Package: <package>\nDescription: <long description>" separated by blank lines (the description
without its synopsis, cut to its first WORDS words, 20 by default), one of them the package's own
and two of other packages of the same section and split (seeded draws, each split its own seed),
in random order; the answer is the package's name after its stanza's "Package:" (SQuAD's
`answers.text` and `answer_start`, character offsets). The field names mark where a name begins
and ends: newlines are whitespace to the tokenizer, and an earlier version of the set,
"<package>: <description>" paragraphs one a line, left the model unable to tell whether
"... for the web python3-djoser: ..." names djoser or python3-djoser. With 20 words a context
is ~70 words (~95 when punctuation counts as words, as BERT's pre-tokenizer splits it): with the
question, one window of run.sh's max_length 192 (a longer one is cut into windows with a
stride). Answering needs the synopsis matched to the right description: the names are rarely in
the question.

TRAIN_QUESTIONS beyond the training split's packages (29,871 with two others of their section) ask
about each package again, over two other stanzas drawn afresh. NAMES is `real` (the default) or
`random`: the training questions' stanzas then carry names drawn at random from the training
split's packages, a new draw for every question, the answer being the name its package's stanza
got. That is the entity anonymisation of reading-comprehension sets (Hermann et al., 2015, which
replaced entities by markers so that a model could not answer from what it knew of them): a
name then says nothing of its description, so a model cannot answer a training question by
remembering which name goes with which synopsis and has to match the synopsis to a description.
The valid and test questions keep their packages' own names (packages no training question or
pre-training text shows).

COPIES adds that many copy questions to the training split (valid and test unchanged): a
question about a package of the split that asks, in place of its synopsis, a run of 4 to 8
consecutive words of its own description as its stanza shows it, over stanzas drawn as above
(a run over 64 characters or with more punctuation than words is drawn again, up to 8 times,
then the package is left out).
Its words are in the context as asked, so the step the synopsis questions hide, finding the
stanza that shares the question's rarer words, is there to learn from exact copies, as the
span-selection pre-training of Splinter (Ram et al., 2021) asks a model to find a recurring span.

The baseline answers with the name of the paragraph most similar to the question (TF-IDF
cosine over lowercased words, IDF from the training contexts' paragraphs): it knows the layout,
which the model has to learn. Exact match and F1 as SQuAD's evaluation computes them (lowercase,
punctuation and articles removed, whitespace collapsed).
"""
import collections, csv, json, math, random, re, string, sys

csv.field_size_limit(1 << 30)
MAX_WORDS = 20
NAME, DESCRIPTION, STANZAS = "Package: ", "\nDescription: ", "\n\n"
PARAGRAPHS = 3
WORDS = re.compile(r"\w+")


def sections(data, split, words):
    """debian_section's rows of one split by section, each with its synopsis (`short`) and the first
    `words` words of its description without the synopsis (`long`)."""
    by_section = collections.defaultdict(list)
    for r in csv.DictReader(open(f"{data}/debian_section_{split}.csv", encoding="utf-8")):
        text = " ".join(r["text"].split())
        r["short"] = " ".join(r["short"].split())
        long = text[len(r["short"]):].lstrip(" .") if text.startswith(r["short"]) else text
        r["long"] = " ".join(long.split()[:words])
        if r["long"] and r["short"]:
            by_section[r["label"]].append(r)
    return by_section


def questions(candidates, limit, rng):
    """`limit` of the candidates, each pass over them in a new order."""
    n = 0
    while candidates and n < limit:
        order = candidates[:]
        rng.shuffle(order)
        for r in order[:limit - n]:
            yield r
        n += min(len(order), limit - n)


def build(data, out, train_questions, words, names="real", copies=0):
    if names not in ("real", "random"):
        raise SystemExit(f"NAMES must be real or random, not {names!r}")
    stats = {}
    for split in ("train", "valid", "test"):
        rng = random.Random(f"7:{split}")  # a split's questions do not depend on another's size
        by_section = sections(data, split, words)
        candidates = [r for rs in by_section.values() if len(rs) >= PARAGRAPHS for r in rs]
        pool = sorted(r["id"] for rs in by_section.values() for r in rs)

        def item(r, asked):
            others = [o for o in by_section[r["label"]] if o["id"] != r["id"]]
            chosen = rng.sample(others, PARAGRAPHS - 1) + [r]
            rng.shuffle(chosen)
            labels = rng.sample(pool, PARAGRAPHS) if split == "train" and names == "random" else [p["id"] for p in chosen]
            context, start, answer = "", -1, ""
            for p, label in zip(chosen, labels):
                if context:
                    context += STANZAS
                if p is r:
                    start, answer = len(context) + len(NAME), label
                context += f"{NAME}{label}{DESCRIPTION}{p['long']}"
            return {"id": r["id"], "question": f"Which package is: {asked}?", "context": context,
                    "answers": {"text": [answer], "answer_start": [start]}}

        limit = {"train": train_questions, "valid": 1000, "test": 2000}[split]
        items = [item(r, r["short"]) for r in questions(candidates, limit, rng)]
        if split == "train" and copies:
            # Copy questions: a run of 4 to 8 words of the package's own description in place of its
            # synopsis, so the words to match are in the context as asked (see the module's doc).
            copy_rng = random.Random("7:copies")
            for r in questions(candidates, copies, copy_rng):
                w = r["long"].split()
                for _ in range(8):  # a run of mostly words, not of punctuation (a table, a regex)
                    n = min(len(w), copy_rng.randint(4, 8))
                    k = copy_rng.randint(0, len(w) - n)
                    asked = " ".join(w[k:k + n])
                    if len(asked) <= 64 and sum(not c.isalnum() and c != " " for c in asked) <= n:
                        items.append(item(r, asked))
                        break
            rng.shuffle(items)
        with open(f"{out}/qa_{split}.jsonl", "w", encoding="utf-8") as f:
            for q in items:
                f.write(json.dumps(q, ensure_ascii=False) + "\n")
        stats[split] = len(items)
    print(json.dumps({"questions": stats}))


def vocabulary(data):
    """The training descriptions' alphabetic words of more than three letters, lowercased."""
    return sorted({w.lower() for rs in sections(data, "train", MAX_WORDS).values() for r in rs
                   for w in r["long"].split() if w.isalpha() and len(w) > 3})


def diagnostic(data, out, train_questions, words=5):
    """Whether the second hop is learnable at all: stanzas whose descriptions are `words` words
    drawn from the training descriptions' vocabulary, a question that asks one word of its
    stanza's description found in no other stanza of the context ("Which package is: <word>?"),
    names drawn at random for every question (train, valid and test alike). Matching is exact
    and one word; the answer is still the matched stanza's name."""
    vocab = vocabulary(data)
    names = sorted(r["id"] for rs in sections(data, "train", MAX_WORDS).values() for r in rs)
    stats = {}
    for split in ("train", "valid", "test"):
        rng = random.Random(f"17:{split}")
        limit = {"train": train_questions, "valid": 1000, "test": 2000}[split]
        with open(f"{out}/qa_{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(limit):
                drawn = rng.sample(vocab, PARAGRAPHS * words)
                descriptions = [drawn[k * words:(k + 1) * words] for k in range(PARAGRAPHS)]
                labels = rng.sample(names, PARAGRAPHS)
                right = rng.randrange(PARAGRAPHS)
                context, start = "", -1
                for k in range(PARAGRAPHS):
                    if context:
                        context += STANZAS
                    if k == right:
                        start = len(context) + len(NAME)
                    context += f"{NAME}{labels[k]}{DESCRIPTION}{' '.join(descriptions[k])}"
                f.write(json.dumps({"id": f"{split}-{i}", "question": f"Which package is: {rng.choice(descriptions[right])}?",
                                    "context": context, "answers": {"text": [labels[right]], "answer_start": [start]}},
                                   ensure_ascii=False) + "\n")
        stats[split] = limit
    print(json.dumps({"questions": stats, "vocabulary": len(vocab)}))


def probe(data, out, kind, train_questions, words=15):
    """Which hop a model learns, without stanzas: a context of `words` distinct words of the
    diagnostic's vocabulary, a question "Which word: <w>?" asking one of them. KIND `word`: the
    answer is <w> itself (one hop: find the question's word in the context; chance 1/15). KIND
    `next`: the answer is the word after <w> (the match, then a step to the next word, as the
    diagnostic's step from matched words to their stanza's name, but always one word away;
    chance 1/14)."""
    assert kind in ("word", "next"), kind
    vocab = vocabulary(data)
    for split in ("train", "valid", "test"):
        rng = random.Random(f"probe:{kind}:{split}")
        limit = {"train": train_questions, "valid": 1000, "test": 2000}[split]
        with open(f"{out}/qa_{split}.jsonl", "w", encoding="utf-8") as f:
            for i in range(limit):
                drawn = rng.sample(vocab, words)
                k = rng.randrange(words if kind == "word" else words - 1)
                right = k if kind == "word" else k + 1
                start = len(" ".join(drawn[:right])) + (1 if right else 0)
                f.write(json.dumps({"id": f"{split}-{i}", "question": f"Which word: {drawn[k]}?", "context": " ".join(drawn),
                                    "answers": {"text": [drawn[right]], "answer_start": [start]}}) + "\n")
    print(json.dumps({"kind": kind, "questions": train_questions, "vocabulary": len(vocab)}))


def corpus(data, path, words, passes=3):
    """Texts for masked-LM pre-training, from the training split (the packages of debian_mlm_train):
    Packages-file stanzas as in the contexts, with the synopsis where a Packages file has it
    ("Description: <synopsis>\n <description>"), three stanzas of one section a text, whitespace
    collapsed (the tokenizer splits a newline as a space). Each pass
    shuffles every section and cuts it in threes, so each package is in `passes` texts."""
    rng = random.Random(11)
    texts = []
    for rows in sections(data, "train", words).values():
        for _ in range(passes):
            rng.shuffle(rows)
            for k in range(0, len(rows) - PARAGRAPHS + 1, PARAGRAPHS):
                texts.append(" ".join(STANZAS.join(f"{NAME}{p['id']}{DESCRIPTION}{p['short']}\n {p['long']}"
                                           for p in rows[k:k + PARAGRAPHS]).split()))
    rng.shuffle(texts)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([t] for t in texts)
    print(json.dumps({"texts": len(texts)}))


def pairs(data, out, words):
    """Next-sentence-prediction pairs that ask for the match the questions need: a question as the
    set asks it beside "Description: <description>", its package's own (is_next) or that of another
    package of its section (not_next), each package of the split once each way; no names, so
    nothing to remember a name by. Train and valid splits, each its own seed."""
    stats = {}
    for split in ("train", "valid"):
        rng = random.Random(f"13:{split}")
        rows = []
        for group in sections(data, split, words).values():
            if len(group) < 2:
                continue
            for r in group:
                other = rng.choice([o for o in group if o["id"] != r["id"]])
                question = f"Which package is: {r['short']}?"
                rows += [(question, f"Description: {r['long']}", "is_next"),
                         (question, f"Description: {other['long']}", "not_next")]
        rng.shuffle(rows)
        with open(f"{out}/qa_nsp_{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "pair", "label"])
            w.writerows(rows)
        stats[split] = len(rows)
    print(json.dumps({"pairs": stats}))


def load(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def normalize(s):  # SQuAD v1.1's normalize_answer
    s = s.lower()
    s = "".join(c for c in s if c not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(prediction, truth):
    p, t = normalize(prediction).split(), normalize(truth).split()
    common = collections.Counter(p) & collections.Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def scores(test, answers):
    assert len(answers) == len(test), f"{len(answers)} answers for {len(test)} questions"
    em = sum(max(normalize(a) == normalize(t) for t in q["answers"]["text"]) for q, a in zip(test, answers))
    f = sum(max(f1(a, t) for t in q["answers"]["text"]) for q, a in zip(test, answers))
    return {"questions": len(test), "exact_match": round(em / len(test), 4), "f1": round(f / len(test), 4)}


def baseline(out):
    paragraphs = [p.split(DESCRIPTION, 1)[1] for q in load(f"{out}/qa_train.jsonl") for p in q["context"].split(STANZAS)]
    df = collections.Counter(w for p in paragraphs for w in set(WORDS.findall(p.lower())))
    idf = {w: math.log(len(paragraphs) / (1 + c)) for w, c in df.items()}
    default_idf = math.log(len(paragraphs))

    def vector(text):
        tf = collections.Counter(WORDS.findall(text.lower()))
        v = {w: c * idf.get(w, default_idf) for w, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    test = load(f"{out}/qa_test.jsonl")
    answers = []
    for q in test:
        qv = vector(q["question"].removeprefix("Which package is:"))
        best = max(q["context"].split(STANZAS),
                   key=lambda p: sum(x * qv.get(w, 0.0) for w, x in vector(p.split(DESCRIPTION, 1)[1]).items()))
        answers.append(best.split(DESCRIPTION, 1)[0].removeprefix(NAME))
    print(json.dumps(scores(test, answers)))


def answer(out, url, model, path):
    sys.path.insert(0, __file__.rsplit("/bench/", 1)[0] + "/clients/python")
    import mlaas
    client = mlaas.Client(url)
    test = load(f"{out}/qa_test.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for k in range(0, len(test), 32):
            batch = test[k:k + 32]
            for q, a in zip(batch, client.answer(model, [q["question"] for q in batch], [q["context"] for q in batch])):
                assert q["context"][a["start"]:a["end"]] == a["answer"], (q["id"], a)
                f.write(json.dumps(a, ensure_ascii=False) + "\n")


def score(out, path):
    print(json.dumps(scores(load(f"{out}/qa_test.jsonl"), [a["answer"] for a in load(path)])))


def stanzas(out, path):
    """Where the answers point: a stanza's name (the 1st, 2nd, 3rd stanza's), and how many of those
    are the right one, or another span."""
    counts = collections.Counter()
    for q, a in zip(load(f"{out}/qa_test.jsonl"), load(path)):
        names = [(m.start(1), m.group(1)) for m in re.finditer(r"(?:^|\n)Package: (\S+)\n", q["context"])]
        hit = [k for k, (start, name) in enumerate(names) if a["start"] == start and a["answer"] == name]
        if not hit:
            counts["other spans"] += 1
            continue
        counts[f"stanza {hit[0] + 1}'s name"] += 1
        counts["names right"] += names[hit[0]][0] == q["answers"]["answer_start"][0]
    print(json.dumps(dict(sorted(counts.items()))))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 12000,
              int(sys.argv[5]) if len(sys.argv) > 5 else MAX_WORDS, sys.argv[6] if len(sys.argv) > 6 else "real",
              int(sys.argv[7]) if len(sys.argv) > 7 else 0)
    elif cmd == "diagnostic":
        diagnostic(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 20000)
    elif cmd == "probe":
        probe(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 20000)
    elif cmd == "corpus":
        corpus(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else MAX_WORDS)
    elif cmd == "pairs":
        pairs(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else MAX_WORDS)
    elif cmd == "baseline":
        baseline(sys.argv[2])
    elif cmd == "answer":
        answer(*sys.argv[2:6])
    elif cmd == "score":
        score(sys.argv[2], sys.argv[3])
    elif cmd == "stanzas":
        stanzas(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
