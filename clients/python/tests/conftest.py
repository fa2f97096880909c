"""Starts the real mlaas server (auth on) for the SDK tests, with a user token and small files:
a WordPiece tokenizer and a tiny BERT made with the CLI, a labelled CSV."""
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the SDK from this checkout

from mlaas import Client  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BINARY = os.environ.get("MLAAS_BINARY") or os.path.join(REPO, "build", "test", "src", "cli", "mlaas")
ADMIN_TOKEN = "sdk-tests-admin-token-0123456789abcdef"

GOOD = ["great", "good", "wonderful", "nice", "superb"]
BAD = ["awful", "bad", "boring", "poor", "dull"]
FILLER = ["the", "movie", "was", "really", "plot", "a", "it"]


def reviews_csv(n=160, seed=1):
    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(n):
        pos = i % 2 == 0
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if pos else BAD))
        lines.append(" ".join(words) + "," + ("pos" if pos else "neg"))
    return "\n".join(lines) + "\n"


def run_cli(*args):
    r = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="session")
def server():
    if not os.path.exists(BINARY):
        pytest.skip(f"no mlaas binary at {BINARY} (build first, or set MLAAS_BINARY)")
    work = tempfile.TemporaryDirectory(prefix="mlaas-sdk-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MLAAS_ADMIN_TOKEN=ADMIN_TOKEN, OMP_WAIT_POLICY="PASSIVE")
    log = open(os.path.join(work.name, "server.log"), "w")
    proc = subprocess.Popen([BINARY, "serve", "--data-dir", os.path.join(work.name, "data"), "--port", str(port),
                             "--auth", "on", "--workers", "1", "--threads", "1"], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("the server did not start: " + open(log.name).read())

    # Local files the tests upload: a tokenizer and a tiny model (with the CLI), a CSV.
    files = os.path.join(work.name, "files")
    os.makedirs(files)
    corpus = os.path.join(files, "corpus.txt")
    with open(corpus, "w") as f:
        f.write(reviews_csv(400).replace(",", " ") * 2)
    run_cli("tokenizer", "train", "--model", "wordpiece", "--vocab-size", "200", "--lowercase", "--special-tokens",
            "[PAD],[UNK],[CLS],[SEP],[MASK]", "--input", corpus, "--output", os.path.join(files, "tok"))
    small = os.path.join(files, "small.json")
    with open(small, "w") as f:
        f.write('{"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, '
                '"intermediate_size": 64, "max_position_embeddings": 64}')
    run_cli("model", "init", "--config", small, "--objective", "text-classification", "--labels", "neg,pos",
            "--tokenizer", os.path.join(files, "tok"), "--output", os.path.join(files, "cls"), "--seed", "3")
    run_cli("model", "init", "--config", small, "--objective", "no-objective", "--tokenizer",
            os.path.join(files, "tok"), "--output", os.path.join(files, "emb"), "--seed", "4")
    with open(os.path.join(files, "reviews.csv"), "w") as f:
        f.write(reviews_csv())

    admin = Client(url, token=ADMIN_TOKEN)
    user_token = admin.tokens.create("sam", ["read", "write"])["token"]
    info = {"url": url, "admin_token": ADMIN_TOKEN, "token": user_token, "files": files, "work": work.name,
            "log": log.name}
    yield info
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    work.cleanup()


@pytest.fixture(scope="session")
def client(server):
    return Client(server["url"], token=server["token"])


@pytest.fixture(scope="session")
def admin(server):
    return Client(server["url"], token=server["admin_token"])


@pytest.fixture(scope="session")
def uploaded(client, server):
    """sam's tokenizer, models and CSV, uploaded once (directories included)."""
    files = server["files"]
    client.objects.upload(os.path.join(files, "tok"), "tok")
    client.objects.upload(os.path.join(files, "cls"), "models/cls")
    client.objects.upload(os.path.join(files, "emb"), "models/emb")
    client.objects.upload(os.path.join(files, "reviews.csv"), "data/reviews.csv")
    return files
