"""HTTP transport of the SDK: urllib only, JSON in and out, streamed bodies, ApiError."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple

CHUNK = 1 << 20


class ApiError(Exception):
    """An error answered by the server (or a transport failure, status 0).

    Attributes:
        status: the HTTP status (0 when the server could not be reached).
        code: the server's error code ("invalid_argument", "not_found", ...).
        field: the request field the error is about ("model_train.epochs"), or None.
        request_id: the server's id of the request (quote it when reporting a problem).
        message: what went wrong, in words.
    """

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None,
                 request_id: Optional[str] = None, retry_after: Optional[int] = None):
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after
        where = f" (field: {field})" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")


def quote(segment: str, keep_slash: bool = False) -> str:
    """Percent-encodes a path segment (keeping '/' for keys when asked)."""
    return urllib.parse.quote(segment, safe="/" if keep_slash else "")


def query(params: Dict[str, Any]) -> str:
    """'?a=1&b=x' from the entries of `params` that are not None."""
    items = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items() if v is not None]
    return "?" + urllib.parse.urlencode(items) if items else ""


class Transport:
    """Sends requests to one server with one token (never put in a URL)."""

    def __init__(self, url: str, token: Optional[str], timeout: float):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not a server URL: {url!r} (e.g. http://127.0.0.1:8080)")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, data: Any = None, headers: Optional[Dict[str, str]] = None):
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise _error_from(e.code, e.read(), e.headers) from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"cannot reach {self.url}: {e.reason}") from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call; the decoded answer (None for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._request(method, path, data, headers) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def upload(self, path: str, stream: BinaryIO, size: int,
               progress: Optional[Callable[[int, int], None]] = None) -> Any:
        """PUTs `size` bytes read from `stream`, in chunks."""
        def chunks() -> Iterator[bytes]:
            done = 0
            while True:
                block = stream.read(CHUNK)
                if not block:
                    return
                done += len(block)
                if progress:
                    progress(done, size)
                yield block
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        with self._request("PUT", path, chunks(), headers) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def download(self, path: str, dest: str, progress: Optional[Callable[[int, int], None]] = None,
                 check: Optional[Callable[[str], None]] = None) -> int:
        """GETs `path` into the file `dest`, atomically (a temporary file renamed at the end);
        `check(tmp)` may refuse the bytes (raising) before they replace `dest`."""
        directory = os.path.dirname(os.path.abspath(dest))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mlaas-", dir=directory)
        out_file = os.fdopen(fd, "wb")
        try:
            with out_file as out, self._request("GET", path) as r:
                total = int(r.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    block = r.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            if check:
                check(tmp)
            os.replace(tmp, dest)
            return done
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def bytes(self, path: str) -> bytes:
        with self._request("GET", path) as r:
            return r.read()

    def events(self, method: str, path: str, body: Any = None) -> Iterator[Tuple[str, Any]]:
        """The server-sent events of a streamed answer, as (event, decoded JSON data)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "text/event-stream"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        with self._request(method, path, data, headers) as r:
            if "text/event-stream" not in (r.headers.get("Content-Type") or ""):
                raw = r.read()  # an answer that is not a stream: the whole of it
                yield "done", json.loads(raw) if raw else None
                return
            event, lines = "message", []
            for raw_line in _lines(r, self.url):
                line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if lines:
                        yield event, json.loads("\n".join(lines))
                    event, lines = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    lines.append(line[5:].lstrip(" "))


def _lines(response: Any, url: str) -> Iterator[bytes]:
    """The lines of a streamed answer; a connection that breaks midway is an ApiError."""
    try:
        for line in response:
            yield line
    except (OSError, http.client.HTTPException) as e:
        raise ApiError(0, "stream_broken", f"the stream from {url} broke: {e}") from None


def _error_from(status: int, raw: bytes, headers: Any) -> ApiError:
    retry = headers.get("Retry-After") if headers is not None else None
    retry_after = int(retry) if retry and retry.isdigit() else None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]
        return ApiError(status, e.get("code", "error"), e.get("message", ""), e.get("field"), e.get("request_id"),
                        retry_after)
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # Open Inference Protocol errors
        return ApiError(status, "error", body["error"], None, None, retry_after)
    text = raw.decode("utf-8", "replace")[:500]
    return ApiError(status, "http_" + str(status), text or "HTTP " + str(status), None, None, retry_after)


def copy_file(src: BinaryIO, dst: BinaryIO) -> None:
    shutil.copyfileobj(src, dst, CHUNK)
