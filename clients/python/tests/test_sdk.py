"""The SDK against the real server: every helper, the documented contract, the notebook example."""
import hashlib
import io
import time
import os
import re
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr

import pytest

import mlaas
from mlaas import ApiError, Client, TaskFailed


def test_the_contract_client_list_models_and_api_error(server, client, monkeypatch):
    monkeypatch.setenv("MLAAS_SERVER", server["url"])
    monkeypatch.setenv("MLAAS_TOKEN", server["token"])
    from_env = Client()
    assert from_env.url == server["url"]
    assert from_env.whoami()["user"] == "sam"
    models = client.catalog.list_models()
    assert isinstance(models, list)
    assert all("name" in m for m in models)
    with pytest.raises(ApiError) as e:
        client.catalog.create("Not A Slug")
    assert e.value.status == 400
    assert e.value.code == "invalid_argument"
    assert e.value.field == "name"
    assert e.value.request_id
    with pytest.raises(ApiError) as unauthorized:
        Client(server["url"], token="").whoami()
    assert unauthorized.value.status == 401
    with pytest.raises(ApiError) as unreachable:
        Client("http://127.0.0.1:9", token="x", timeout=2).whoami()
    assert unreachable.value.status == 0
    with pytest.raises(ValueError):
        Client("not a url")
    assert "Client(" in (Client.__doc__ or "") and mlaas.Client.train.__doc__


def test_objects_files_and_directories(client, uploaded, tmp_path):
    keys = [o["key"] for o in client.objects.list("models/cls/")]
    assert "models/cls/config.json" in keys and "models/cls/model.safetensors" in keys
    client.objects.write("notes/a.txt", "hello")
    assert client.objects.read("notes/a.txt") == b"hello"
    client.objects.download("notes/a.txt", str(tmp_path / "a.txt"))
    assert (tmp_path / "a.txt").read_text() == "hello"
    written = client.objects.download("models/cls", str(tmp_path / "cls"))
    assert sorted(os.path.basename(p) for p in written) == sorted(os.listdir(os.path.join(uploaded, "cls")))
    with open(os.path.join(uploaded, "cls", "config.json"), "rb") as a, open(tmp_path / "cls" / "config.json", "rb") as b:
        assert a.read() == b.read()
    assert client.objects.delete("notes", recursive=True) == 1
    with pytest.raises(ApiError) as e:
        client.objects.read("notes/a.txt")
    assert e.value.status == 404
    with pytest.raises(ApiError):
        client.objects.download("no/such/thing", str(tmp_path / "x"))


def test_import_model_and_bucket_listing(client, uploaded):
    done = client.import_model("models/cls", "models/cls-imported").wait()
    assert done["task_status"] == "succeeded", done
    assert "config.json" in done["model"]["files"] and "model.safetensors" in done["model"]["files"]
    keys = [o["key"] for o in client.objects.list("models/cls-imported/")]
    assert "models/cls-imported/config.json" in keys
    with pytest.raises(ValueError):
        client.import_model("hf://org/name@v1", "m", revision="v2")
    with pytest.raises(ApiError) as e:  # this server has no S3 configured
        client.objects.list(bucket="lab")
    assert e.value.status in (403, 501)


def test_tokens_and_whoami(server, admin):
    made = admin.tokens.create("tia", ["read"], description="sdk test")
    assert made["token"].startswith("mlaas_")
    tia = Client(server["url"], token=made["token"])
    me = tia.whoami()
    assert (me["user"], me["scopes"], me["auth"]) == ("tia", ["read"], "on")
    assert any(t["id"] == made["id"] for t in admin.tokens.list())
    assert [t["id"] for t in tia.tokens.list()] == [made["id"]]
    with pytest.raises(ApiError) as e:
        tia.objects.write("x.txt", "no write scope")
    assert e.value.status == 403
    admin.tokens.revoke(made["id"])
    with pytest.raises(ApiError) as revoked:
        tia.whoami()
    assert revoked.value.status == 401


def test_train_registers_predicts_and_reports_progress(client, uploaded):
    task = client.train(dataset="data/reviews.csv", save="models/sentiment", objective="text-classification",
                        model="models/cls", split=0.2, epochs=3, batch_size=8, lr=3e-3, seed=1,
                        register="sentiment", alias="champion")
    err = io.StringIO()
    with redirect_stderr(err):
        result = task.wait(progress=True, timeout=300)
    assert result["task_status"] == "succeeded"
    assert "succeeded" in err.getvalue()
    assert len(result["history"]["loss"]) == 3
    assert "accuracy" in result["evaluation"]
    assert result["catalog"]["reference"] == "catalog://sentiment/1"
    assert result["catalog"]["alias"] == "champion"
    assert any(t["task_id"] == task.id for t in client.tasks.list(type="nlp_train_model"))
    assert client.tasks.get(task.id).status == "succeeded"
    assert isinstance(task.logs(), list)
    # Predict with the registered model, objective read from its config.
    p = client.predict("catalog://sentiment@champion", ["a wonderful movie", "a boring plot"])
    assert [x["label"] for x in p["predictions"]] == ["pos", "neg"]
    assert p["catalog"]["model"]["version"] == 1
    # A failing task raises TaskFailed with its view.
    bad = client.train(dataset="data/reviews.csv", save="models/bad", objective="text-classification",
                       model="models/cls", epochs=1, label_column="text")
    with pytest.raises((TaskFailed, ApiError)):
        bad.wait(timeout=300)


def test_sweep_runs_trials_as_tasks_and_registers_the_best(client, uploaded):
    task = client.sweep(dataset="data/reviews.csv", save="models/swept", objective="text-classification",
                        model="models/cls", split=0.2, epochs=2, batch_size=8, seed=1,
                        parameters={"optimizer.init_lr": {"type": "choice", "values": [3e-3, 1e-2]}},
                        algorithm="grid", metric="eval_accuracy", scheduler={"type": "asha", "reduction_factor": 2},
                        register="swept", alias="best")
    result = task.wait(timeout=600)
    assert result["task_status"] == "succeeded", result
    assert result["task_type"] == "nlp_sweep"
    assert [t["params"]["optimizer.init_lr"] for t in result["trials"]] == [3e-3, 1e-2]
    assert result["metric"] == "eval_accuracy" and result["direction"] == "maximize"
    assert result["scheduler"]["rungs"] == [1]
    best = result["best"]
    assert best["metric"] == max(t["metric"] for t in result["trials"] if t["state"] == "succeeded")
    assert best["model"]["path"].endswith("models/swept/trial-%d" % best["trial"])
    assert result["table"]["columns"] == ["trial", "optimizer.init_lr", "eval_accuracy", "epochs", "state"]
    assert result["catalog"]["reference"] == "catalog://swept/1"
    for t in result["trials"]:
        trial = client.tasks.get(t["task_id"]).get()
        assert trial["task_type"] == "nlp_train_model"
        assert trial["request"]["model_train"]["optimizer"]["init_lr"] == t["params"]["optimizer.init_lr"]
    assert any(t["task_id"] == task.id for t in client.tasks.list(type="nlp_sweep"))
    with pytest.raises(ApiError) as bad:
        client.sweep(dataset="data/reviews.csv", save="models/bad-sweep", model="models/cls",
                     objective="text-classification",
                     parameters={"optimizer.init_lr": {"type": "log_uniform", "min": 0, "max": 1}})
    assert bad.value.status == 400
    assert bad.value.field == "sweep.parameters.optimizer.init_lr.min"


def test_resources_send_a_task_only_to_a_worker_that_offers_them(client, uploaded):
    # This server's worker has no GPU and only the label "cpu": the task waits for another worker.
    task = client.train(dataset="data/reviews.csv", save="models/gpu-only", objective="text-classification",
                        model="models/cls", epochs=1, gpus=1, labels=["a100"], workers=2)
    time.sleep(1.5)
    view = task.get()
    assert view["task_status"] == "queued"
    assert view["request"]["resources"] == {"gpus": 1, "labels": ["a100"], "workers": 2}
    task.cancel()
    assert task.status == "cancelled"
    with pytest.raises(ApiError) as bad:
        client.train(dataset="data/reviews.csv", save="models/x", objective="text-classification", model="models/cls",
                     labels=["not a label"])
    assert bad.value.status == 400
    assert "resources.labels" in str(bad.value)


def test_catalog_register_alias_publish_pull(server, client, uploaded, tmp_path):
    v = client.catalog.register_model("sdk-cls", "models/cls", alias="staging", description="tiny", tags=["sdk"])
    assert v["version"] == 1 and v["digest"].startswith("sha256:")
    v2 = client.catalog.register_model("sdk-cls", "models/cls")
    assert v2["version"] == 2
    assert [x["version"] for x in client.catalog.versions("sdk-cls")] == [2, 1]
    assert {f["path"] for f in client.catalog.version("sdk-cls", 1)["files"]} >= {"config.json", "model.safetensors"}
    assert client.catalog.set_alias("sdk-cls", "staging", 2)["from_version"] == 1
    assert client.catalog.get("sdk-cls")["aliases"] == {"staging": 2}
    assert client.catalog.resolve("catalog://sdk-cls@staging")["version"] == 2
    client.catalog.delete_alias("sdk-cls", "staging")
    assert [(e["from_version"], e["to_version"]) for e in client.catalog.alias_history("sdk-cls")] == [
        (None, 1), (1, 2), (2, None)]
    anonymous = Client(server["url"], token="")
    assert "sdk-cls" not in [m["name"] for m in anonymous.catalog.list_models()]
    client.catalog.publish("sdk-cls")
    assert "sdk-cls" in [m["name"] for m in anonymous.catalog.list_models(q="sdk", tag="sdk")]
    pulled = anonymous.catalog.pull("catalog://sdk-cls/1", str(tmp_path / "pulled"))
    for f in pulled["files"]:
        with open(tmp_path / "pulled" / f["path"], "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]
    client.catalog.update("sdk-cls", description="changed", license="mit")
    assert client.catalog.get("sdk-cls")["license"] == "mit"
    d = client.catalog.register_dataset("sdk-reviews", "data/reviews.csv", license="cc0-1.0")
    assert d["facts"]["columns"] == ["text", "label"] and d["facts"]["rows"] == 160
    assert "sdk-reviews" in [x["name"] for x in client.catalog.list_datasets()]
    assert client.catalog.get("sdk-reviews", kind="dataset")["license"] == "cc0-1.0"
    client.catalog.pull("catalog://datasets/sdk-reviews", str(tmp_path / "ds"))
    assert (tmp_path / "ds" / "reviews.csv").exists()
    client.catalog.delete("sdk-reviews", kind="dataset")
    with pytest.raises(ApiError) as gone:
        client.catalog.get("sdk-reviews", kind="dataset")
    assert gone.value.status == 404 and gone.value.field == "name"


def test_tokenizer_stats_index_and_search(client, uploaded):
    tok = client.train_tokenizer("data/reviews.csv", "tok-trained", vocab_size=100, text_column="text").wait(timeout=120)
    assert tok["task_status"] == "succeeded"
    assert any(o["key"].startswith("tok-trained/") for o in client.objects.list("tok-trained/"))
    stats = client.dataset_stats("data/reviews.csv").wait(timeout=120)
    assert stats["dataset"]["rows"] == 160
    assert [c["name"] for c in stats["dataset"]["columns"]] == ["text", "label"]
    index = client.index("models/emb", "data/reviews.csv", "stores/reviews", text_column="text").wait(timeout=120)
    assert index["task_status"] == "succeeded"
    from_store = client.search(["wonderful"], "models/emb", store="stores/reviews", top_k=3)
    assert len(from_store) == 1 and len(from_store[0]) == 3
    manifest = client.vector_stores.get("stores/reviews")
    assert manifest["count"] == 160
    client.vector_stores.add("stores/reviews", [{"id": "extra-1", "page_content": "an extraordinary film"}, "plain text doc"])
    assert client.vector_stores.get("stores/reviews")["count"] == 162
    client.vector_stores.remove("stores/reviews", ["extra-1"])
    assert client.vector_stores.get("stores/reviews")["count"] == 161
    from_dataset = client.search("boring", "models/emb", dataset="data/reviews.csv", top_k=2)
    assert len(from_dataset[0]) == 2 and "page_content" in from_dataset[0][0]
    with pytest.raises(ValueError):
        client.search("x", "models/emb")


def test_deploy_infer_and_undeploy(client, uploaded):
    d = client.deployments.deploy("sdk-dep", "models/cls")
    assert d["status"] == "ready" and d["owner"] == "sam"
    assert "sdk-dep" in [x["name"] for x in client.deployments.list()]
    out = client.deployments.infer("sdk-dep", ["a superb movie", "dull"])
    assert out["model_name"] == "sdk-dep"
    labels = next(o for o in out["outputs"] if o["name"] == "label")
    assert len(labels["data"]) == 2
    with pytest.raises(ApiError) as no_canary:
        client.deployments.promote("sdk-dep")
    assert no_canary.value.status == 409
    client.deployments.undeploy("sdk-dep")
    with pytest.raises(ApiError) as gone:
        client.deployments.get("sdk-dep")
    assert gone.value.status == 404


def test_a_deployment_pinned_to_labels_loads_only_where_they_are(client, uploaded):
    # Every server offers "cpu": a deployment asking it loads here.
    d = client.deployments.deploy("sdk-cpu", "models/cls", labels=["cpu"])
    assert d["status"] == "ready" and d["resources"] == {"labels": ["cpu"], "gpus": 0}
    # No server here has "tpu-pod": it waits for one, and says so.
    p = client.deployments.deploy("sdk-pinned", "models/cls", labels=["tpu-pod"], gpus=1, wait=False)
    assert p["status"] == "pending" and "tpu-pod" in p["message"]
    with pytest.raises(ApiError) as elsewhere:
        client.deployments.infer("sdk-pinned", ["a superb movie"])
    assert elsewhere.value.status == 503 and "tpu-pod" in str(elsewhere.value)
    with pytest.raises(ApiError) as bad:
        client.deployments.deploy("sdk-bad", "models/cls", labels=["not a label"], wait=False)
    assert bad.value.status == 400 and bad.value.field == "resources.labels[0]"
    for name in ("sdk-cpu", "sdk-pinned"):
        client.deployments.undeploy(name)


def test_the_notebook_example_of_docs_python_md_runs(server, uploaded, tmp_path):
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "python.md")).read()
    example = re.search(r"<!-- example -->\s*```python\n(.*?)```", doc, re.S).group(1)
    assert len(example.strip().splitlines()) < 15
    (tmp_path / "reviews.csv").write_text(open(os.path.join(uploaded, "reviews.csv")).read())
    env = dict(os.environ, MLAAS_SERVER=server["url"], MLAAS_TOKEN=server["token"],
               PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    r = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "'label': 'pos'" in r.stdout, r.stdout


def test_pip_installs_it_offline(tmp_path):
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if pip.returncode != 0:
        pytest.skip("no pip")
    here = os.path.join(os.path.dirname(__file__), "..")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-cache-dir", "--target",
                        str(tmp_path / "site"), here], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check = subprocess.run([sys.executable, "-c", "import mlaas; print(mlaas.Client.__name__, mlaas.__version__)"],
                           env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")), capture_output=True, text=True,
                           cwd=str(tmp_path))
    assert check.stdout.strip() == "Client 0.1.0", check.stderr


def _gray_png(width, height, value):
    """A gray PNG written with the standard library (no imaging package needed)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes([value]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_predict_images_from_files_bytes_and_keys(client, tmp_path):
    from conftest import run_cli

    run_cli("model", "init", "--preset", "cnn-small", "--objective", "image-classification", "--labels", "dark,light",
            "--output", str(tmp_path / "img"))
    client.objects.upload(str(tmp_path / "img"), "models/img")
    (tmp_path / "a.png").write_bytes(_gray_png(28, 28, 30))
    client.objects.upload(str(tmp_path / "a.png"), "images/a.png")
    by_file = client.predict_images("models/img", [tmp_path / "a.png", _gray_png(40, 20, 220)], top_k=2)
    assert [len(p["top_k"]) for p in by_file["predictions"]] == [2, 2]
    assert all(p["label"] in ("dark", "light") for p in by_file["predictions"])
    by_key = client.predict_images("models/img", paths=["images/a.png"])
    assert by_key["predictions"][0]["label"] == by_file["predictions"][0]["label"]
    assert abs(by_key["predictions"][0]["score"] - by_file["predictions"][0]["score"]) < 1e-6
    with pytest.raises(ApiError) as bad:
        client.predict_images("models/img", [b"not an image"])
    assert bad.value.status == 400 and bad.value.field == "predict_input.images"
    with pytest.raises(ValueError):
        client.predict_images("models/img")


def test_train_images_on_an_image_folder_and_predict(client, tmp_path):
    # Two classes told apart by brightness: dark and light 12x12 squares.
    for i in range(24):
        (tmp_path / "shades" / ("dark" if i % 2 == 0 else "light")).mkdir(parents=True, exist_ok=True)
        value = (20 + i) if i % 2 == 0 else (200 + i)
        (tmp_path / "shades" / ("dark" if i % 2 == 0 else "light") / f"{i}.png").write_bytes(_gray_png(12, 12, value))
    client.objects.upload(str(tmp_path / "shades"), "data/shades")
    task = client.train_images("data/shades", "models/shades", format="image_folder", preset="cnn-small", epochs=6,
                               batch_size=8, lr=3e-3, augment={"horizontal_flip": True}, split=0.25, threads=1)
    result = task.wait(timeout=300)
    assert result["task_status"] == "succeeded", result
    assert result["dataset"]["labels"] == ["dark", "light"]
    assert result["dataset"]["image_size"] == [12, 12]
    assert set(result["evaluation"]["per_class"]) == {"dark", "light"}
    assert result["evaluation"]["accuracy"] == 1.0, result["evaluation"]
    assert result["stats"]["images_per_s"] > 0
    predicted = client.predict_images("models/shades", [_gray_png(12, 12, 10), _gray_png(12, 12, 250)])
    assert [p["label"] for p in predicted["predictions"]] == ["dark", "light"]
    with pytest.raises(ApiError) as bad:
        client.train_images("data/shades", "models/x", preset="cnn-small")  # no format
    assert bad.value.status == 400 and bad.value.field == "dataset.format"


def test_an_image_folder_registered_in_the_catalog_trains_by_reference(client, tmp_path):
    for i in range(16):
        cls = "dark" if i % 2 == 0 else "light"
        (tmp_path / "faces" / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / "faces" / cls / f"{i}.png").write_bytes(_gray_png(10, 10, 30 + i if cls == "dark" else 210 + i))
    client.objects.upload(str(tmp_path / "faces"), "data/faces")
    v = client.catalog.register_dataset("sdk-faces", "data/faces", alias="gold")
    assert v["facts"]["format"] == "image_folder"
    assert v["facts"]["images"] == 16
    assert v["facts"]["classes"] == [{"name": "dark", "images": 8}, {"name": "light", "images": 8}]
    task = client.train_images("catalog://datasets/sdk-faces@gold", "models/faces", preset="cnn-small", epochs=2,
                               batch_size=8, split=0.25, threads=1)
    result = task.wait(timeout=300)
    assert result["task_status"] == "succeeded", result
    assert result["dataset"]["labels"] == ["dark", "light"]
    with pytest.raises(ApiError) as bad:  # a folder is not a file of rows
        client.catalog.register_dataset("sdk-faces", "data/faces", format="csv")
    assert bad.value.status == 400 and bad.value.field == "dataset.path"


def test_generate_greedy_seeded_and_streamed(client, server, tmp_path):
    # A GPT-2 (gpt2-tiny, random weights) behind a byte-level BPE tokenizer.
    from conftest import run_cli

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\nhéllo wörld ✓ once upon a time\n" * 20)
    run_cli("tokenizer", "train", "--model", "bpe", "--vocab-size", "300", "--special-tokens", "<|endoftext|>",
            "--input", str(corpus), "--output", str(tmp_path / "tok"))
    run_cli("model", "init", "--preset", "gpt2-tiny", "--tokenizer", str(tmp_path / "tok"), "--output",
            str(tmp_path / "gpt"), "--seed", "5")
    client.objects.upload(str(tmp_path / "gpt"), "models/gpt")

    prompts = ["the quick brown", "héllo wörld ✓"]
    greedy = client.generate("models/gpt", prompts, max_new_tokens=8)
    assert len(greedy) == 2
    assert all(text.startswith(prompt) for text, prompt in zip(greedy, prompts))
    assert client.generate("models/gpt", prompts, max_new_tokens=8) == greedy  # greedy: no randomness
    full = client.predict("models/gpt", prompts[0], max_new_tokens=8)
    assert full["model"]["objective"] == "causal-lm"
    assert full["predictions"][0]["finish_reason"] in ("length", "eos")

    sampled = client.generate("models/gpt", prompts, max_new_tokens=12, temperature=1.2, seed=11)
    assert client.generate("models/gpt", prompts, max_new_tokens=12, temperature=1.2, seed=11) == sampled

    # Streamed: the pieces of each prompt make up its continuation.
    pieces = ["", ""]
    for index, piece in client.generate_stream("models/gpt", prompts, max_new_tokens=8):
        pieces[index] += piece
    assert [p + c for p, c in zip(prompts, pieces)] == greedy

    with pytest.raises(ApiError) as too_long:
        list(client.generate_stream("models/gpt", ["the quick brown fox " * 60], max_new_tokens=1000))
    assert too_long.value.status == 400 and too_long.value.field == "predict_input.max_new_tokens"
    with pytest.raises(ApiError) as bad:
        client.generate("models/gpt", prompts, top_p=1.5)
    assert bad.value.status == 400 and bad.value.field == "predict_input.top_p"


def test_train_a_tagger_from_conll_and_find_entities(client, uploaded):
    # Sentiment words are entities (POS, NEG) in a CoNLL file; the tagger is fine-tuned from the
    # text classifier's encoder (its head replaced) and finds them with their offsets.
    import random
    from conftest import BAD, FILLER, GOOD

    rng = random.Random(3)
    lines = ["-DOCSTART- -X- O", ""]
    for i in range(160):
        words = [(rng.choice(FILLER), "O") for _ in range(rng.randint(2, 5))]
        words.insert(rng.randint(0, len(words)), (rng.choice(GOOD), "B-POS"))
        if i % 2:
            words.insert(rng.randint(0, len(words)), (rng.choice(BAD), "B-NEG"))
        lines += [f"{w}\t{t}" for w, t in words] + [""]
    client.objects.write("data/ner.conll", "\n".join(lines))
    task = client.train(dataset="data/ner.conll", save="models/ner", objective="token-classification",
                        model="models/cls", epochs=8, batch_size=8, lr=3e-3, seed=1, split=0.15)
    result = task.wait(timeout=300)
    assert result["dataset"]["labels"] == ["B-NEG", "B-POS", "O"]
    assert result["evaluation"]["f1"] > 0.8, result["evaluation"]
    assert set(result["evaluation"]["per_type"]) == {"NEG", "POS"}

    text = "the movie was superb it was dull"
    found = client.entities("models/ner", [text], aggregation_strategy="first")[0]
    assert [(e["entity_group"], e["word"]) for e in found] == [("POS", "superb"), ("NEG", "dull")]
    assert all(text[e["start"]:e["end"]] == e["word"] for e in found)
    tokens = client.entities("models/ner", text, aggregation_strategy="none")[0]
    assert tokens[0]["entity"] == "B-POS" and tokens[0]["index"] >= 1
    with pytest.raises(ApiError) as bad:
        client.entities("models/ner", text, aggregation_strategy="longest")
    assert bad.value.status == 400 and bad.value.field == "predict_input.aggregation_strategy"
    client.objects.write("data/bad.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n')
    failing = client.train(dataset="data/bad.jsonl", save="models/bad-ner", objective="token-classification",
                           model="models/cls", epochs=1)
    with pytest.raises(TaskFailed) as mismatch:  # the tags must match the tokens, one each
        failing.wait(timeout=300)
    assert "2 tokens but 1 tags" in str(mismatch.value)


def test_question_answering_and_next_sentence(client, uploaded):
    # Question answering: "good" asks for the context's good word, "bad" for its bad one.
    import json
    import random
    from conftest import BAD, FILLER, GOOD

    rng = random.Random(5)
    rows = []
    for _ in range(200):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 6))]
        g, b = rng.choice(GOOD), rng.choice(BAD)
        words.insert(rng.randint(0, len(words)), g)
        words.insert(rng.randint(0, len(words)), b)
        context = " ".join(words)
        ask = rng.choice(["good", "bad"])
        answer = g if ask == "good" else b
        start = (" " + context + " ").index(" " + answer + " ")
        rows.append(json.dumps({"question": ask, "context": context,
                                "answers": {"text": [answer], "answer_start": [start]}}))
    client.objects.write("data/qa.jsonl", "\n".join(rows) + "\n")
    task = client.train(dataset="data/qa.jsonl", save="models/qa", objective="question-answering", preset="bert-tiny",
                        tokenizer="tok", epochs=15, batch_size=8, lr=2e-3, seed=1, split=0.15)
    result = task.wait(timeout=300)
    assert result["evaluation"]["exact_match"] > 0.7, result["evaluation"]
    context = "the plot was superb it was dull"
    found = client.answer("models/qa", ["good", "bad"], [context, context])
    assert [a["answer"] for a in found] == ["superb", "dull"], found
    assert all(context[a["start"]:a["end"]] == a["answer"] for a in found)
    with pytest.raises(ApiError) as bad:
        client.predict("models/qa", "what is good?")
    assert bad.value.status == 400 and bad.value.field == "predict_input.question"

    # Next-sentence prediction: pairs drawn from documents (that it learns is checked in
    # tests/train/trainer_test.cpp); here the contract: labels, answers, the pair_text error.
    words = GOOD + BAD
    cycle = [f"{words[k]} movie was {words[(k + 1) % len(words)]}." for k in range(len(words))]
    docs = []
    for _ in range(120):
        start = rng.randrange(len(cycle))
        docs.append(" ".join(cycle[(start + k) % len(cycle)] for k in range(5)))
    client.objects.write("data/docs.csv", "text\n" + "\n".join(docs) + "\n")
    nsp = client.train(dataset="data/docs.csv", save="models/nsp", objective="next-sentence-prediction",
                       model="models/cls", epochs=2, batch_size=8, lr=3e-3, seed=1)
    result = nsp.wait(timeout=300)
    assert result["dataset"]["labels"] == ["is_next", "not_next"]
    assert result["model"]["architecture"] == "BertForNextSentencePrediction"
    assert set(result["evaluation"]) >= {"accuracy", "macro_f1", "per_class"}
    n = len(cycle)
    answers = client.next_sentence("models/nsp", cycle, [cycle[(k + 1) % n] for k in range(n)])
    assert len(answers) == n
    assert all(a["is_next"] == (a["score"] >= 0.5) and 0 <= a["score"] <= 1 for a in answers)
    with pytest.raises(ApiError) as single:
        client.predict("models/nsp", cycle[0])
    assert single.value.status == 400 and single.value.field == "predict_input.pair_text"

    # Both served as deployments (Open Inference Protocol v2): the same answers as predict's.
    client.deployments.deploy("sdk-qa", "models/qa")
    out = client.deployments.infer("sdk-qa", ["good", "bad"], contexts=[context, context])
    served = {o["name"]: o["data"] for o in out["outputs"]}
    assert served["answer"] == [a["answer"] for a in found], out
    assert served["start"] == [a["start"] for a in found] and served["end"] == [a["end"] for a in found]
    assert all(abs(s - a["score"]) < 1e-4 for s, a in zip(served["score"], found))
    with pytest.raises(ApiError) as no_context:
        client.deployments.infer("sdk-qa", ["good"])
    assert no_context.value.status == 400 and "question and context" in str(no_context.value)  # /v2: {"error"}
    client.deployments.deploy("sdk-nsp", "models/nsp")
    out = client.deployments.infer("sdk-nsp", cycle, pairs=[cycle[(k + 1) % n] for k in range(n)])
    served = {o["name"]: o for o in out["outputs"]}
    assert served["is_next"]["datatype"] == "BOOL"
    assert served["is_next"]["data"] == [a["is_next"] for a in answers]
    assert all(abs(s - a["score"]) < 1e-4 for s, a in zip(served["score"]["data"], answers))
    for name in ("sdk-qa", "sdk-nsp"):
        client.deployments.undeploy(name)
