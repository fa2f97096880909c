"""The mlaas client: one object per server, with a helper per endpoint (mirroring the CLI)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ._http import ApiError, BadAnswer, Transport, pick, query, quote

Json = Dict[str, Any]


def _set_resources(body: Json, gpus: Optional[int], labels: Optional[Sequence[str]],
                   workers: Optional[int] = None) -> None:
    """Puts what the task asks of its worker(s) into the request's resources block."""
    if gpus is not None or labels is not None or workers is not None:
        body.setdefault("resources", {}).update(
            _drop_none({"gpus": gpus, "labels": list(labels) if labels else None, "workers": workers}))


def _drop_none(d: Json) -> Json:
    return {k: v for k, v in d.items() if v is not None}


def _block(path: Optional[str], storage_type: Optional[str] = None, **extra: Any) -> Optional[Json]:
    if path is None:
        return None
    return _drop_none({"path": path, "storage_type": storage_type, **extra})


class TaskFailed(Exception):
    """A task ended without succeeding; `.task` is its last view (task_status, error, ...)."""

    def __init__(self, task: Json):
        self.task = task
        error = task.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"task {task.get('task_id')} {task.get('task_status')}: {message}")


class Task:
    """A server-side task (training, indexing, statistics). `wait()` returns its result."""

    def __init__(self, client: "Client", task_id: str):
        self._client = client
        self.id = task_id

    def __repr__(self) -> str:
        return f"Task({self.id!r})"

    def get(self) -> Json:
        """The task now: task_status, progress, and, once it ended, its result or error."""
        return pick(self._client._t.json("GET", "/api/v1/tasks/" + quote(self.id)), kind=dict)

    @property
    def status(self) -> str:
        return pick(self.get(), "task_status", kind=str)

    def cancel(self) -> Json:
        return self._client._t.json("POST", "/api/v1/tasks/" + quote(self.id) + "/cancel")

    def logs(self, after: int = 0, limit: int = 1000) -> List[Json]:
        r = self._client._t.json("GET", "/api/v1/tasks/" + quote(self.id) + "/logs" + query({"after": after, "limit": limit}))
        return r.get("logs", r.get("lines", [])) if isinstance(r, dict) else r

    def wait(self, progress: bool = False, timeout: Optional[float] = None, poll: float = 0.5) -> Json:
        """Waits until the task ends and returns its view (SPEC's training output for training).

        progress: print a progress line (fraction, epoch, loss, ETA) on stderr while it runs.
        timeout: give up after this many seconds (TimeoutError). Raises TaskFailed when the task
        failed or was cancelled.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last = ""
        while True:
            t = self.get()
            state = t.get("task_status")
            if progress:
                line = _progress_line(t)
                if line != last:
                    sys.stderr.write("\r" + line.ljust(len(last)))
                    sys.stderr.flush()
                    last = line
            if state in ("succeeded", "failed", "cancelled"):
                if progress:
                    sys.stderr.write("\n")
                if state != "succeeded":
                    raise TaskFailed(t)
                return t
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"task {self.id} is still {state} after {timeout} s")
            time.sleep(poll)


def _progress_line(t: Json) -> str:
    p = t.get("progress") if isinstance(t.get("progress"), dict) else {}
    parts = [f"{t.get('task_status')}"]
    if isinstance(p.get("fraction"), (int, float)):
        done = int(p["fraction"] * 30)
        parts.append("[" + "#" * done + "-" * (30 - done) + f"] {p['fraction'] * 100:3.0f}%")
    if p.get("epoch") is not None and p.get("total_epochs"):
        parts.append(f"epoch {p['epoch']}/{p['total_epochs']}")
    extra = p.get("extra") if isinstance(p.get("extra"), dict) else p
    if isinstance(extra.get("loss"), (int, float)):
        parts.append(f"loss {extra['loss']:.4f}")
    if isinstance(p.get("eta_seconds"), (int, float)):
        parts.append(f"eta {p['eta_seconds']:.0f}s")
    if p.get("message"):
        parts.append(str(p["message"]))
    return " ".join(parts)


def _pages(fetch: Callable[[Optional[str]], Json], items: str, token: str = "next_cursor") -> Iterator[Json]:
    """Every item of a paged list: `fetch(cursor)` returns one page."""
    cursor = None
    while True:
        page = pick(fetch(cursor), kind=dict)
        yield from pick(page, items, kind=list) if items in page else []
        if not page.get(token):
            return
        if pick(page, token, kind=str) == cursor:  # the same page again: it would never end
            raise BadAnswer(f"answer[{token!r}]", "repeats the cursor it was asked for")
        cursor = page[token]


class Objects:
    """The object store: files under keys ('data/train.csv'); directories are key prefixes."""

    def __init__(self, client: "Client"):
        self._t = client._t

    def list(self, prefix: str = "", delimiter: Optional[str] = None, bucket: Optional[str] = None) -> List[Json]:
        """Every object under `prefix` ({key, size, last_modified, etag}), all pages; in the S3
        bucket `bucket` when given (the server's S3 credentials; with accounts on, a bucket an
        admin shared)."""
        def fetch(token: Optional[str]) -> Json:
            return self._t.json("GET", "/api/v1/ml/utilities/s3/object" + query(
                {"bucket": bucket, "prefix": prefix or None, "delimiter": delimiter, "continuation_token": token,
                 "max_keys": 1000}))
        return list(_pages(fetch, "objects", "next_continuation_token"))

    def upload(self, local: str, key: Optional[str] = None, progress: bool = False) -> List[Json]:
        """Uploads a file, or a directory with everything in it (keys key/<relative path>), streamed.
        Returns what was stored, one entry per file."""
        key = key or os.path.basename(os.path.abspath(local))
        if os.path.isdir(local):
            out = []
            for root, _, files in sorted(os.walk(local)):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    rel = os.path.relpath(path, local).replace(os.sep, "/")
                    out += self.upload(path, key.rstrip("/") + "/" + rel, progress)
            if not out:
                raise ValueError(f"{local} holds no files")
            return out
        size = os.path.getsize(local)
        show = _printer(key) if progress else None
        with open(local, "rb") as f:
            return [self._t.upload("/api/v1/objects/" + quote(key, True), f, size, show)]

    def write(self, key: str, data: Union[bytes, str]) -> Json:
        """Stores `data` under `key`."""
        import io
        raw = data.encode() if isinstance(data, str) else data
        return self._t.upload("/api/v1/objects/" + quote(key, True), io.BytesIO(raw), len(raw))

    def read(self, key: str) -> bytes:
        return self._t.bytes("/api/v1/objects/" + quote(key, True))

    def download(self, key: str, dest: str, progress: bool = False) -> List[str]:
        """Downloads an object to the file `dest`, or every object under the directory `key` into
        the directory `dest`. Returns the files written."""
        try:
            self._t.download("/api/v1/objects/" + quote(key, True), dest, _printer(key) if progress else None)
            return [dest]
        except ApiError as e:
            if e.status != 404:
                raise
        prefix = key.rstrip("/") + "/"
        files = [o for o in self.list(prefix)]
        if not files:
            raise ApiError(404, "not_found", f"no object or directory '{key}'", "key")
        out = []
        root = os.path.abspath(dest)
        for o in files:
            key = pick(o, "key", kind=str)
            parts = key[len(prefix):].split("/")
            target = os.path.abspath(os.path.join(root, *parts))
            if any(p in ("", ".", "..") or "\\" in p or ":" in p for p in parts) or not target.startswith(root + os.sep):
                raise ValueError(f"the server listed a key that would land outside {dest}: {key}")
            self._t.download("/api/v1/objects/" + quote(key, True), target, _printer(key) if progress else None)
            out.append(target)
        return out

    def delete(self, key: str, recursive: bool = False) -> int:
        """Deletes an object (or, recursive, every object under the directory `key`); returns how many."""
        if not recursive:
            self._t.json("DELETE", "/api/v1/objects/" + quote(key, True))
            return 1
        files = self.list(key.rstrip("/") + "/")
        for o in files:
            self._t.json("DELETE", "/api/v1/objects/" + quote(pick(o, "key", kind=str), True))
        return len(files)


def _printer(name: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        pct = f"{done * 100 // total:3d}%" if total else ""
        sys.stderr.write(f"\r{name}: {pct} {done} bytes")
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


class Catalog:
    """The model and dataset registry (docs/catalog.md). Methods taking `kind` work on "model"
    (default) or "dataset"; references are catalog://<name>[/<n>|@<alias>]."""

    def __init__(self, client: "Client"):
        self._t = client._t

    @staticmethod
    def _base(kind: str) -> str:
        if kind not in ("model", "dataset"):
            raise ValueError("kind must be 'model' or 'dataset'")
        return "/api/v1/catalog/" + kind + "s"

    def list_models(self, q: Optional[str] = None, tag: Optional[str] = None, objective: Optional[str] = None,
                    owner: Optional[str] = None, visibility: Optional[str] = None, sort: str = "recent",
                    limit: Optional[int] = None) -> List[Json]:
        """Registered models you may see (public ones and your own), each a dict with name, owner,
        visibility, objective, description, latest_version, tags, popularity, updated_at. Pages
        through everything, or stops after `limit` entries."""
        return self._list("model", q, tag, objective, owner, visibility, sort, limit)

    def list_datasets(self, q: Optional[str] = None, tag: Optional[str] = None, owner: Optional[str] = None,
                      visibility: Optional[str] = None, sort: str = "recent", limit: Optional[int] = None) -> List[Json]:
        """Registered datasets you may see; as list_models."""
        return self._list("dataset", q, tag, None, owner, visibility, sort, limit)

    def _list(self, kind, q, tag, objective, owner, visibility, sort, limit) -> List[Json]:
        out: List[Json] = []
        def fetch(cursor: Optional[str]) -> Json:
            return self._t.json("GET", self._base(kind) + query({"q": q, "tag": tag, "objective": objective, "owner": owner,
                                                                 "visibility": visibility, "sort": sort, "limit": 100,
                                                                 "cursor": cursor}))
        for item in _pages(fetch, kind + "s"):
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    def get(self, name: str, kind: str = "model") -> Json:
        """The entry: owner, visibility, card, aliases {alias: version}, popularity, ..."""
        return self._t.json("GET", self._base(kind) + "/" + quote(name))

    def create(self, name: str, kind: str = "model", **fields: Any) -> Json:
        """A new entry without a version (fields: description, card, visibility, objective, license, tags)."""
        return self._t.json("POST", self._base(kind), {"name": name, **_drop_none(fields)})

    def update(self, name: str, kind: str = "model", **fields: Any) -> Json:
        """Changes description, card, visibility ("public"/"private"), objective, license or tags."""
        return self._t.json("PATCH", self._base(kind) + "/" + quote(name), _drop_none(fields))

    def publish(self, name: str, kind: str = "model") -> Json:
        """Makes the entry public (readable by everyone, without a token)."""
        return self.update(name, kind, visibility="public")

    def delete(self, name: str, kind: str = "model") -> None:
        self._t.json("DELETE", self._base(kind) + "/" + quote(name))

    def register_model(self, name: str, path: str, storage_type: Optional[str] = None, alias: Optional[str] = None,
                       **fields: Any) -> Json:
        """Copies the model directory `path` (in the server's storage) into the next version of
        `name` (created, yours, when new); points `alias` at it when given. Returns the version
        (version, reference, digest, files, facts, lineage)."""
        v = self._t.json("POST", self._base("model") + "/" + quote(name) + "/versions",
                         {"model": _block(path, storage_type), **_drop_none(fields)})
        if alias:
            self.set_alias(name, alias, pick(v, "version"))
        return v

    def register_dataset(self, name: str, path: str, format: Optional[str] = None, storage_type: Optional[str] = None,
                         alias: Optional[str] = None, **fields: Any) -> Json:
        """Copies the dataset at `path` into the next version of `name`: a file of rows (csv, tsv,
        jsonl; facts: format, columns, rows, a 20-row preview) or a folder of images (format
        "image_folder" or "idx", guessed when absent; facts: format, images, classes with their
        counts, samples). Image versions train by reference: client.train_images("catalog://datasets/NAME")."""
        v = self._t.json("POST", self._base("dataset") + "/" + quote(name) + "/versions",
                         {"dataset": _block(path, storage_type, format=format), **_drop_none(fields)})
        if alias:
            self.set_alias(name, alias, pick(v, "version"), kind="dataset")
        return v

    def versions(self, name: str, kind: str = "model") -> List[Json]:
        """The versions, newest first (every page)."""
        path = self._base(kind) + "/" + quote(name) + "/versions"
        return list(_pages(lambda c: self._t.json("GET", path + query({"limit": 1000, "cursor": c})), "versions"))

    def version(self, name: str, version: int, kind: str = "model") -> Json:
        """One version with its files (path, size, sha256), facts and lineage."""
        return self._t.json("GET", self._base(kind) + "/" + quote(name) + "/versions/" + str(int(version)))

    def set_alias(self, name: str, alias: str, version: int, kind: str = "model") -> Json:
        """Points `alias` at `version` (deployments of catalog://name@alias follow); returns the move."""
        return self._t.json("PUT", self._base(kind) + "/" + quote(name) + "/aliases/" + quote(alias), {"version": int(version)})

    def delete_alias(self, name: str, alias: str, kind: str = "model") -> Json:
        return self._t.json("DELETE", self._base(kind) + "/" + quote(name) + "/aliases/" + quote(alias))

    def alias_history(self, name: str, kind: str = "model") -> List[Json]:
        """Every alias move, oldest first: {seq, alias, from_version, to_version, by, at}."""
        path = self._base(kind) + "/" + quote(name) + "/alias-history"
        return list(_pages(lambda c: self._t.json("GET", path + query({"limit": 1000, "cursor": c})), "events"))

    def resolve(self, ref: str) -> Json:
        """The version a reference names now (verified), with its files."""
        return self._t.json("GET", "/api/v1/catalog/resolve" + query({"ref": ref}))

    def pull(self, ref: str, dest: str, progress: bool = False) -> Json:
        """Downloads the version `ref` names (catalog://..., or a model name: its latest) into the
        directory `dest`, each file checked against its SHA-256: a directory transformers loads
        as is. Returns the version."""
        if not ref.startswith("catalog://"):
            ref = "catalog://" + ref
        v = pick(self.resolve(ref), kind=dict)
        kind = v.get("kind", "model")
        root = os.path.abspath(dest)
        for f in pick(v, "files", kind=list):
            path = pick(f, "path", kind=str)
            target = os.path.abspath(os.path.join(root, *path.split("/")))
            if not target.startswith(root + os.sep):
                raise ValueError(f"the server listed a file outside the directory: {path}")
            def check(tmp: str, expected: str = pick(f, "sha256", kind=str), name: str = path) -> None:
                h = hashlib.sha256()
                with open(tmp, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                if h.hexdigest() != expected:  # the bytes never replace a good local copy
                    raise ApiError(0, "corrupt_download", f"{name} does not match its SHA-256; pull again", "path")
            self._t.download(self._base(kind) + "/" + quote(pick(v, "name", kind=str)) + "/versions/" + str(pick(v, "version")) +
                             "/files/" + quote(path, True), target, _printer(path) if progress else None, check)
        return v


class Deployments:
    """Model serving: deployments and the Open Inference Protocol v2."""

    def __init__(self, client: "Client"):
        self._t = client._t

    def deploy(self, name: str, model: str, objective: Optional[str] = None, tokenizer: Optional[str] = None,
               version: Optional[str] = None, canary_percent: Optional[int] = None, wait: bool = True,
               timeout: float = 300, gpus: Optional[int] = None, labels: Optional[Sequence[str]] = None,
               **options: Any) -> Json:
        """Deploys `model` (a storage path or catalog://name[@alias]: an alias is followed) as
        `name`; waits until it serves unless wait=False. `gpus`/`labels` pin it to the API servers
        with that many GPUs and those capability labels (the others hand its requests over).
        Options: device, dtype, batching, max_memory_bytes. Returns the deployment."""
        body = _drop_none({"name": name, "model": _block(model, objective=objective), "tokenizer": _block(tokenizer),
                           "version": version, "canary_percent": canary_percent, **options})
        _set_resources(body, gpus, labels)
        d = pick(self._t.json("POST", "/api/v1/deployments", body), kind=dict)
        if not wait:
            return d
        mine = pick(d, "versions", -1, "version") if d.get("versions") else None
        deadline = time.monotonic() + timeout
        while True:
            d = pick(self.get(name), kind=dict)
            versions = pick(d, "versions", kind=list) if "versions" in d else []
            newest = next((v for v in versions if pick(v, kind=dict).get("version") == mine), None) or \
                (versions[-1] if versions else {})
            if newest.get("status") == "failed":
                raise ApiError(0, "load_failed", newest.get("error", "the model failed to load"), "model.path")
            if newest.get("status") == "ready":
                return d
            if time.monotonic() > deadline:
                raise TimeoutError(f"deployment {name} is not ready after {timeout} s")
            time.sleep(0.2)

    def list(self) -> List[Json]:
        return pick(self._t.json("GET", "/api/v1/deployments"), "deployments", kind=list)

    def get(self, name: str) -> Json:
        return self._t.json("GET", "/api/v1/deployments/" + quote(name))

    def undeploy(self, name: str) -> Json:
        return self._t.json("DELETE", "/api/v1/deployments/" + quote(name))

    def promote(self, name: str) -> Json:
        return self._t.json("POST", "/api/v1/deployments/" + quote(name) + "/promote")

    def rollback(self, name: str) -> Json:
        return self._t.json("POST", "/api/v1/deployments/" + quote(name) + "/rollback")

    def infer(self, name: str, texts: Sequence[str], version: Optional[str] = None,
              outputs: Optional[Sequence[str]] = None, pairs: Optional[Sequence[str]] = None,
              contexts: Optional[Sequence[str]] = None) -> Json:
        """Open Inference Protocol v2 inference of `texts`; returns the protocol's answer
        ({model_name, model_version, outputs: [{name, datatype, shape, data}]}).

        `pairs`: each text's second text (next-sentence prediction: outputs is_next, score).
        `contexts`: the texts are questions about these contexts (question answering: outputs
        answer, score, start, end)."""
        path = "/v2/models/" + quote(name) + ("/versions/" + quote(version) if version else "") + "/infer"

        def tensor(input_name: str, data: Sequence[str]) -> Json:
            return {"name": input_name, "datatype": "BYTES", "shape": [len(data)], "data": list(data)}

        body: Json = {"inputs": [tensor("question" if contexts is not None else "text", texts)]}
        if pairs is not None:
            body["inputs"].append(tensor("pair_text", pairs))
        if contexts is not None:
            body["inputs"].append(tensor("context", contexts))
        if outputs:
            body["outputs"] = [{"name": o} for o in outputs]
        return self._t.json("POST", path, body)


class VectorStores:
    """Saved vector stores: their manifest, and documents added or removed without a rebuild."""

    def __init__(self, client: "Client"):
        self._t = client._t

    def get(self, path: str) -> Json:
        """The store's manifest: model, pooling, metric, dimension, count, index."""
        return self._t.json("GET", "/api/v1/vector-stores/" + quote(path, True))

    def add(self, path: str, documents: Sequence[Union[str, Json]]) -> Json:
        """Adds documents ({page_content, id?, metadata?}, or plain texts), embedded with the
        store's own model."""
        docs = [{"page_content": d} if isinstance(d, str) else d for d in documents]
        return self._t.json("POST", "/api/v1/vector-stores/" + quote(path, True) + "/documents", {"documents": docs})

    def remove(self, path: str, ids: Sequence[Union[str, int]]) -> Json:
        """Removes documents by id."""
        return self._t.json("DELETE", "/api/v1/vector-stores/" + quote(path, True) + "/documents", {"ids": list(ids)})


class Tokens:
    """API tokens (servers with auth on): create (admin), list, revoke."""

    def __init__(self, client: "Client"):
        self._t = client._t

    def create(self, user: str, scopes: Sequence[str] = ("read",), expires_in: int = 0,
               description: Optional[str] = None) -> Json:
        """A new token for `user`: {token (shown once), id, user, scopes, ...}."""
        return self._t.json("POST", "/api/v1/tokens", _drop_none(
            {"user": user, "scopes": list(scopes), "expires_in": expires_in, "description": description}))

    def list(self, user: Optional[str] = None) -> List[Json]:
        return pick(self._t.json("GET", "/api/v1/tokens" + query({"user": user})), "tokens", kind=list)

    def revoke(self, token_id: str) -> Json:
        return self._t.json("DELETE", "/api/v1/tokens/" + quote(token_id))


class Tasks:
    """Tasks: list (all pages), get, cancel."""

    def __init__(self, client: "Client"):
        self._client = client
        self._t = client._t

    def list(self, status: Optional[str] = None, type: Optional[str] = None, limit: Optional[int] = None) -> List[Json]:
        out: List[Json] = []
        def fetch(cursor: Optional[str]) -> Json:
            return self._t.json("GET", "/api/v1/tasks" + query({"status": status, "type": type, "limit": 200, "cursor": cursor}))
        for t in _pages(fetch, "tasks"):
            out.append(t)
            if limit is not None and len(out) >= limit:
                break
        return out

    def get(self, task_id: str) -> Task:
        return Task(self._client, task_id)


class Client:
    """A client of one mlaas server.

    Client(url=None, token=None, timeout=300): url defaults to $MLAAS_SERVER, else
    http://127.0.0.1:8080; token to $MLAAS_TOKEN (sent as Authorization: Bearer, never in a
    URL). Every error the server answers raises mlaas.ApiError (status, code, field,
    request_id, message).

    Parts: objects, catalog, deployments, tasks, tokens, vector_stores; and the ML calls train, predict,
    index, search, train_tokenizer, dataset_stats (each taking storage paths or catalog://
    references, as the REST API does).
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 300):
        url = url or os.environ.get("MLAAS_SERVER") or "http://127.0.0.1:8080"
        token = token if token is not None else os.environ.get("MLAAS_TOKEN") or None
        self._t = Transport(url, token, timeout)
        self.objects = Objects(self)
        self.catalog = Catalog(self)
        self.deployments = Deployments(self)
        self.tasks = Tasks(self)
        self.tokens = Tokens(self)
        self.vector_stores = VectorStores(self)

    def __repr__(self) -> str:
        return f"Client({self._t.url!r})"

    @property
    def url(self) -> str:
        return self._t.url

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Any REST call (path like "/api/v1/tasks"); the decoded JSON answer."""
        return self._t.json(method, path, body)

    def health(self) -> bool:
        try:
            return self._t.json("GET", "/healthz") is not None
        except ApiError:
            return False

    def whoami(self) -> Json:
        """{user, scopes, auth}: who the token stands for."""
        return self._t.json("GET", "/api/v1/whoami")

    # --- ML -------------------------------------------------------------------------------

    def train(self, dataset: str, save: str, objective: Optional[str] = None, model: Optional[str] = None,
              preset: Optional[str] = None, config: Optional[Json] = None, tokenizer: Optional[str] = None,
              text_column: Optional[str] = None, label_column: Optional[str] = None, split: Optional[float] = None,
              epochs: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
              seed: Optional[int] = None, register: Optional[str] = None, alias: Optional[str] = None,
              request: Optional[Json] = None, gpus: Optional[int] = None, labels: Optional[Sequence[str]] = None,
              workers: Optional[int] = None, tokens_column: Optional[str] = None, tags_column: Optional[str] = None,
              tag_names: Optional[Sequence[str]] = None, format: Optional[str] = None, **model_train: Any) -> Task:
        """Trains or fine-tunes an NLP model (POST /api/v1/ml/nlp/train/model); returns the Task.

        Start from `model` (a path or catalog:// reference), a `preset` (bert-tiny, ...) or a
        `config` dict; token-classification reads `tokens_column`/`tags_column` (JSON Lines,
        defaults tokens/tags; integer tags named by `tag_names`) or a CoNLL file
        (`format="conll"` or a .conll key); `register`/`alias` register the result in the catalog; `gpus`/`labels`
        ask for a worker with that many GPUs and those capability labels (resources); `workers`
        trains data-parallel across that many worker processes (resources.workers). Other keyword
        arguments go to model_train (max_length, load_best_model_at_end, ...). `request` is a
        whole SPEC body the arguments override. `task.wait(progress=True)` returns the result.
        """
        return self._submit("/api/v1/ml/nlp/train/model", self._train_body(dataset, save, objective=objective, model=model, preset=preset, config=config, tokenizer=tokenizer, text_column=text_column, label_column=label_column, split=split, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, register=register, alias=alias, request=request, gpus=gpus, labels=labels, workers=workers, tokens_column=tokens_column, tags_column=tags_column, tag_names=tag_names, format=format, **model_train))

    def _train_body(self, dataset: str, save: str, objective: Optional[str] = None, model: Optional[str] = None,
                    preset: Optional[str] = None, config: Optional[Json] = None, tokenizer: Optional[str] = None,
                    text_column: Optional[str] = None, label_column: Optional[str] = None, split: Optional[float] = None,
                    epochs: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
                    seed: Optional[int] = None, register: Optional[str] = None, alias: Optional[str] = None,
                    request: Optional[Json] = None, gpus: Optional[int] = None, labels: Optional[Sequence[str]] = None,
                    workers: Optional[int] = None, tokens_column: Optional[str] = None, tags_column: Optional[str] = None,
                    tag_names: Optional[Sequence[str]] = None, format: Optional[str] = None, **model_train: Any) -> Json:
        """The body of an NLP training request (train and sweep share it)."""
        body: Json = json.loads(json.dumps(request)) if request else {}
        m = body.setdefault("model", {})
        m.update(_drop_none({"path": model, "preset": preset, "config": config, "objective": objective}))
        if tokenizer:
            body["tokenizer"] = {"path": tokenizer}
        d = body.setdefault("dataset", {})
        d["path"] = dataset
        if split is not None:
            d["train_test_split"] = split
        if format:
            d["format"] = format
        columns = _drop_none({"text_column": text_column, "label_column": label_column,
                              "tokens_column": tokens_column, "tags_column": tags_column,
                              "tag_names": list(tag_names) if tag_names else None})
        if columns:
            d.setdefault("loader_kwargs", {}).update(columns)
        body["model_save"] = {"path": save}
        mt = body.setdefault("model_train", {})
        mt.update(_drop_none({"epochs": epochs, "batch_size": batch_size, "seed": seed, **model_train}))
        if lr is not None:
            mt.setdefault("optimizer", {})["init_lr"] = lr
        if register:
            body["catalog"] = _drop_none({"model": register, "alias": alias})
        _set_resources(body, gpus, labels, workers)
        return body


    def sweep(self, dataset: str, save: str, parameters: Json, metric: Optional[str] = None,
              direction: Optional[str] = None, algorithm: Optional[str] = None, max_trials: Optional[int] = None,
              max_seconds: Optional[float] = None, parallel_trials: Optional[int] = None,
              scheduler: Optional[Union[str, Json]] = None, sweep_seed: Optional[int] = None, **train: Any) -> Task:
        """Searches hyperparameters (POST /api/v1/ml/nlp/train/sweep); returns the Task.

        `parameters` maps model_train fields (dotted paths: "optimizer.init_lr", "batch_size")
        to {"type": "choice", "values": [...]}, {"type": "uniform" | "log_uniform", "min", "max"}
        or {"type": "int", "min", "max"}. Each trial is an ordinary training task saved under
        `save`/trial-N; `scheduler` is "asha" (default: prune trials at rung epochs), "none" or a
        dict {"type", "min_epochs", "reduction_factor"}; `metric`/`direction` what to optimise
        (default eval_loss, minimised); `algorithm` "random" (default, seeded by `sweep_seed`) or
        "grid"; the budget is `max_trials`, `max_seconds` and `parallel_trials`. Other keyword
        arguments are train()'s (model, preset, tokenizer, epochs, register, ...): `register`
        registers the best trial's model. The result has "trials", "best" and a "table" (columns
        and rows) for a parallel-coordinates plot.
        """
        body = self._train_body(dataset, save, **train)
        sched: Optional[Json] = {"type": scheduler} if isinstance(scheduler, str) else scheduler
        budget = _drop_none({"max_trials": max_trials, "max_seconds": max_seconds, "parallel_trials": parallel_trials})
        body["sweep"] = _drop_none({"parameters": parameters, "metric": metric, "direction": direction,
                                    "algorithm": algorithm, "seed": sweep_seed, "budget": budget or None,
                                    "scheduler": sched})
        return self._submit("/api/v1/ml/nlp/train/sweep", body)

    def train_images(self, dataset: str, save: str, format: Optional[str] = None, model: Optional[str] = None,
                     preset: Optional[str] = None, label_names: Optional[Sequence[str]] = None,
                     image_size: Optional[Union[int, Sequence[int]]] = None, num_channels: Optional[int] = None,
                     augment: Optional[Json] = None, split: Optional[float] = None, epochs: Optional[int] = None,
                     batch_size: Optional[int] = None, lr: Optional[float] = None, seed: Optional[int] = None,
                     freeze_backbone: Optional[bool] = None, register: Optional[str] = None, alias: Optional[str] = None,
                     request: Optional[Json] = None, gpus: Optional[int] = None, labels: Optional[Sequence[str]] = None,
                     workers: Optional[int] = None, **dataset_or_train: Any) -> Task:
        """Trains an image classifier (POST /api/v1/ml/cv/train/model); returns the Task.

        `dataset` is an object key: an IDX folder (format="idx"), a folder of class subfolders
        (format="image_folder") or a CSV/TSV/JSONL list of image keys and labels (its extension
        says); or an image dataset of the catalog, "catalog://datasets/NAME[/N|@ALIAS]" (its
        version knows its format). Start from a `preset` (cnn-small, mlp, resnet18, resnet34) or a saved image
        `model`; `augment` is {"crop_padding", "horizontal_flip", "rotation"}. `loader_kwargs=`
        and `eval_dataset=` go to the dataset block, other keyword arguments to model_train;
        `gpus`/`labels` ask for a worker with that many GPUs and those capability labels, `workers`
        for that many worker processes training data-parallel.
        """
        body: Json = json.loads(json.dumps(request)) if request else {}
        m = body.setdefault("model", {})
        m.update(_drop_none({"path": model, "preset": preset, "objective": "image-classification",
                             "image_size": list(image_size) if isinstance(image_size, (list, tuple)) else image_size,
                             "num_channels": num_channels}))
        d = body.setdefault("dataset", {})
        d.update(_drop_none({"path": dataset, "format": format, "train_test_split": split, "augment": augment,
                             "label_names": list(label_names) if label_names else None,
                             "loader_kwargs": dataset_or_train.pop("loader_kwargs", None),
                             "eval_dataset": _block(dataset_or_train.pop("eval_dataset", None))}))
        body["model_save"] = {"path": save}
        mt = body.setdefault("model_train", {})
        mt.update(_drop_none({"epochs": epochs, "batch_size": batch_size, "seed": seed, "freeze_backbone": freeze_backbone,
                              **dataset_or_train}))
        if lr is not None:
            mt.setdefault("optimizer", {})["init_lr"] = lr
        if register:
            body["catalog"] = _drop_none({"model": register, "alias": alias})
        _set_resources(body, gpus, labels, workers)
        return self._submit("/api/v1/ml/cv/train/model", body)

    def train_tokenizer(self, dataset: str, save: str, model: str = "wordpiece", vocab_size: Optional[int] = None,
                        text_column: Optional[str] = None, **tokenizer_train: Any) -> Task:
        """Trains a tokenizer on a dataset column (POST /api/v1/ml/nlp/train/tokenizer); the Task."""
        body = {"dataset": _drop_none({"path": dataset, "loader_kwargs": {"text_column": text_column} if text_column else None}),
                "tokenizer_train": _drop_none({"model": model, "vocab_size": vocab_size, **tokenizer_train}),
                "model_save": {"path": save}}
        return self._submit("/api/v1/ml/nlp/train/tokenizer", body)

    def import_model(self, source: str, save: str, revision: Optional[str] = None) -> Task:
        """Imports a pretrained model into the server's store (or s3://...) as a Task:
        `source` is hf://org/name[@revision] (the Hugging Face Hub), s3://bucket/key or a key
        of the server's store. PyTorch weights become model.safetensors; other frameworks'
        files are left out. The task's "model" lists what was written, converted and skipped."""
        if source.startswith("hf://"):
            repo, _, rev = source[len("hf://"):].partition("@")
            if rev and revision:
                raise ValueError("give the revision once: in the source (@rev) or as revision=")
            model = _block(repo, "hugging_face_hub", revision=rev or revision)
        elif revision:
            raise ValueError("revision is for hf:// sources")
        else:
            model = _block(source, "s3" if source.startswith("s3://") else "local")
        target = _block(save, "s3" if save.startswith("s3://") else "local")
        return self._submit("/api/v1/ml/models/import", {"model": model, "model_save": target})

    def dataset_stats(self, dataset: str, **dataset_block: Any) -> Task:
        """Statistics of a dataset (rows, column lengths, tokens, distinct values): the Task."""
        return self._submit("/api/v1/ml/utilities/dataset/stats", {"dataset": {"path": dataset, **dataset_block}})

    def predict(self, model: str, texts: Union[str, Sequence[str]], objective: Optional[str] = None,
                tokenizer: Optional[str] = None, top_k: Optional[int] = None, **predict_input: Any) -> Json:
        """Predicts with a model (a path or catalog:// reference): labels and scores, filled
        masks or embeddings, by its objective (read from the model when not given)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        body = _drop_none({"model": _block(model, objective=objective), "tokenizer": _block(tokenizer),
                           "predict_input": _drop_none({"input_text": texts, "top_k": top_k, **predict_input})})
        return self._t.json("POST", "/api/v1/ml/nlp/predict", body)

    def entities(self, model: str, texts: Union[str, Sequence[str]], aggregation_strategy: Optional[str] = None,
                 tokenizer: Optional[str] = None) -> List[List[Json]]:
        """Named entities of each text with a token-classification model: per text a list of
        {"entity_group", "score", "word", "start", "end"} (start/end: character offsets into the
        text). `aggregation_strategy`: simple (default), first, average, max, or none (every
        token, {"entity", "score", "index", "word", "start", "end"})."""
        r = self.predict(model, texts, objective="token-classification", tokenizer=tokenizer,
                         aggregation_strategy=aggregation_strategy)
        return list(pick(r, "predictions", kind=list))

    def answer(self, model: str, questions: Union[str, Sequence[str]], contexts: Union[str, Sequence[str]],
               tokenizer: Optional[str] = None) -> List[Json]:
        """Extractive question answering: per question, the best span of its context as
        {"answer", "score", "start", "end"} (start/end: character offsets into the context)."""
        questions = [questions] if isinstance(questions, str) else list(questions)
        contexts = [contexts] if isinstance(contexts, str) else list(contexts)
        body = _drop_none({"model": _block(model, objective="question-answering"), "tokenizer": _block(tokenizer),
                           "predict_input": {"question": questions, "context": contexts}})
        return list(pick(self._t.json("POST", "/api/v1/ml/nlp/predict", body), "predictions", kind=list))

    def next_sentence(self, model: str, texts: Union[str, Sequence[str]], pairs: Union[str, Sequence[str]],
                      tokenizer: Optional[str] = None) -> List[Json]:
        """Whether each of `pairs` follows its text, with a next-sentence-prediction model: per
        pair {"is_next": bool, "score": the probability that it follows}."""
        pairs = [pairs] if isinstance(pairs, str) else list(pairs)
        r = self.predict(model, texts, objective="next-sentence-prediction", tokenizer=tokenizer, pair_text=pairs)
        return list(pick(r, "predictions", kind=list))

    def generate(self, model: str, prompts: Union[str, Sequence[str]], max_new_tokens: Optional[int] = None,
                 temperature: Optional[float] = None, top_k: Optional[int] = None, top_p: Optional[float] = None,
                 seed: Optional[int] = None, stop: Union[None, str, Sequence[str]] = None,
                 do_sample: Optional[bool] = None, tokenizer: Optional[str] = None) -> List[str]:
        """Continues `prompts` with a causal-lm model: each prompt followed by its continuation.
        Greedy unless temperature (> 0), top_k, top_p or do_sample ask for sampling; the same seed
        gives the same text."""
        r = self.predict(model, prompts, tokenizer=tokenizer, **self._generation(max_new_tokens, temperature, top_k,
                                                                                  top_p, seed, stop, do_sample))
        return [pick(p, "generated_text", kind=str) for p in pick(r, "predictions", kind=list)]

    def generate_stream(self, model: str, prompts: Union[str, Sequence[str]], max_new_tokens: Optional[int] = None,
                        temperature: Optional[float] = None, top_k: Optional[int] = None,
                        top_p: Optional[float] = None, seed: Optional[int] = None,
                        stop: Union[None, str, Sequence[str]] = None, do_sample: Optional[bool] = None,
                        tokenizer: Optional[str] = None) -> Iterator[Tuple[int, str]]:
        """As generate(), streamed: yields (prompt index, piece of its continuation) as the
        server generates them (server-sent events); raises ApiError if generation fails midway."""
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        predict_input = _drop_none({"input_text": texts, "stream": True,
                                    **self._generation(max_new_tokens, temperature, top_k, top_p, seed, stop, do_sample)})
        body = _drop_none({"model": _block(model), "tokenizer": _block(tokenizer), "predict_input": predict_input})
        streamed = False
        for event, data in self._t.events("POST", "/api/v1/ml/nlp/predict", body):
            if event == "token":
                streamed = True
                yield pick(data, "index", kind=int), pick(data, "text", kind=str)
            elif event == "error":
                err = data.get("error", {})
                status = {"invalid_argument": 400, "unauthenticated": 401, "permission_denied": 403,
                          "not_found": 404, "resource_exhausted": 429, "not_implemented": 501,
                          "unavailable": 503, "deadline_exceeded": 504}.get(err.get("code"), 500)
                raise ApiError(status, err.get("code", "error"), err.get("message", "generation failed"),
                               err.get("field"), err.get("request_id"))
            elif event == "done":
                if not streamed and isinstance(data, dict):  # answered whole (not as a stream)
                    for i, p in enumerate(pick(data, "predictions", kind=list) if "predictions" in data else []):
                        yield i, pick(p, "generated_text", kind=str)[len(texts[i]):]
                return
        raise ApiError(0, "stream_ended", "the server's stream ended before the generation was done")

    @staticmethod
    def _generation(max_new_tokens: Optional[int], temperature: Optional[float], top_k: Optional[int],
                    top_p: Optional[float], seed: Optional[int], stop: Union[None, str, Sequence[str]],
                    do_sample: Optional[bool]) -> Json:
        return _drop_none({"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k,
                           "top_p": top_p, "seed": seed, "stop": [stop] if isinstance(stop, str) else
                           (list(stop) if stop is not None else None), "do_sample": do_sample})

    def predict_images(self, model: str, images: Union[str, bytes, "os.PathLike[str]", Sequence[Union[str, bytes, "os.PathLike[str]"]]] = (),
                       paths: Sequence[str] = (), top_k: Optional[int] = None, **predict_input: Any) -> Json:
        """Classifies images with an image-classification model (a path or catalog:// reference):
        `images` are local files (paths) or encoded PNG/JPEG bytes, sent as base64; `paths` are
        object keys on the server. Returns {"predictions": [{"label", "score", "top_k"?}, ...]}
        in order."""
        if isinstance(images, (str, bytes, os.PathLike)):
            images = [images]
        encoded = []
        for image in images:
            data = image if isinstance(image, bytes) else pathlib.Path(image).read_bytes()
            encoded.append(base64.b64encode(data).decode("ascii"))
        if bool(encoded) == bool(paths):
            raise ValueError("give images= (local files or bytes) or paths= (object keys), one of them")
        body = {"model": _block(model, objective="image-classification"),
                "predict_input": _drop_none({"images": encoded or None, "paths": list(paths) or None, "top_k": top_k,
                                             **predict_input})}
        return self._t.json("POST", "/api/v1/ml/cv/predict", body)

    def index(self, model: str, dataset: str, save: str, text_column: str = "text", id_column: Optional[str] = None,
              index: Optional[str] = None, objective: str = "no-objective", **vector_store_save: Any) -> Task:
        """Embeds a dataset's `text_column` and saves a vector store at `save` (a Task)."""
        body = {"model": {"path": model, "objective": objective},
                "dataset": {"path": dataset, "loader_kwargs": _drop_none({"page_content_column": text_column, "id_column": id_column})},
                "vector_store_save": _drop_none({"path": save, "format": "vector_store", "index": index, **vector_store_save})}
        return self._submit("/api/v1/ml/nlp/vector/index", body)

    def search(self, queries: Union[str, Sequence[str]], model: str, store: Optional[str] = None,
               dataset: Optional[str] = None, text_column: str = "text", top_k: int = 4, mode: Optional[str] = None,
               objective: str = "no-objective", **search_input: Any) -> List[List[Json]]:
        """Semantic search of `queries` in a saved vector `store` or a plain `dataset`: per query,
        the top_k {id, page_content, metadata, score}."""
        queries = [queries] if isinstance(queries, str) else list(queries)
        if (store is None) == (dataset is None):
            raise ValueError("give store= (a saved vector store) or dataset= (a CSV/JSONL file)")
        if store is not None:
            ds: Json = {"path": store, "format": "vector_store"}
            path = "/api/v1/ml/nlp/vector/search"
        else:
            ds = {"path": dataset, "loader_kwargs": {"page_content_column": text_column}}
            path = "/api/v1/ml/nlp/search"
        body = {"model": {"path": model, "objective": objective}, "dataset": ds,
                "search_input": _drop_none({"input_text": queries, "top_k": top_k, "mode": mode, **search_input})}
        return pick(self._t.json("POST", path, body), "results", kind=list)

    def _submit(self, path: str, body: Json) -> Task:
        r = self._t.json("POST", path, body)
        return Task(self, pick(r, "task_id", kind=str))
