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
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple, Union

CHUNK = 1 << 20
MAX_ANSWER = 64 << 20  # the most of a JSON answer kept: a server sending more is not believed
MAX_EVENT_LINE = 16 << 20  # one line of an event stream


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


class BadAnswer(ApiError, KeyError):
    """An answer without a field the call reads, or with one of another type: the URL is not an
    mlaas server, or one of another version. An ApiError (code "bad_answer", status 0), and a
    KeyError as well, since reading a missing field raised one before."""

    def __init__(self, where: str, problem: str):
        super().__init__(0, "bad_answer", f"the server's answer {problem} at {where}: is the URL an mlaas server of this "
                                          "version?")

    def __str__(self) -> str:  # the message, not KeyError's quoted repr
        return Exception.__str__(self)


def pick(answer: Any, *path: Union[str, int], kind: Optional[type] = None) -> Any:
    """answer[path[0]][path[1]]... of a decoded answer, or BadAnswer naming the first step that is
    missing (and, given `kind`, the end's type when it is another)."""
    where, value = "answer", answer
    for step in path:
        where += f"[{step!r}]"
        if isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        else:
            raise BadAnswer(where, "lacks a field")
    if kind is not None and not isinstance(value, kind):
        raise BadAnswer(where, f"holds {type(value).__name__}, not {kind.__name__},")
    return value


def quote(segment: str, keep_slash: bool = False) -> str:
    """Percent-encodes a path segment (keeping '/' for keys when asked)."""
    return urllib.parse.quote(segment, safe="/" if keep_slash else "")


def query(params: Dict[str, Any]) -> str:
    """'?a=1&b=x' from the entries of `params` that are not None."""
    items = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items() if v is not None]
    return "?" + urllib.parse.urlencode(items) if items else ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API never redirects: a 3xx is an error, and the token is never sent to the host a
    Location names (urllib would copy the Authorization header there)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def _decode(raw: bytes, status: int) -> Any:
    """A JSON answer, or an ApiError saying it is none (not JSON, not UTF-8, nested too deep)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ApiError(status, "bad_answer", f"the server's answer is not JSON ({type(e).__name__}): "
                                              "is the URL an mlaas server?") from None


def _read_answer(r: Any, url: str) -> bytes:
    """The whole body of `r`, at most MAX_ANSWER bytes, and all that Content-Length promised."""
    try:
        raw = r.read(MAX_ANSWER + 1)
    except (OSError, http.client.HTTPException) as e:
        raise ApiError(0, "stream_broken", f"the answer from {url} broke off: {type(e).__name__}") from None
    if len(raw) > MAX_ANSWER:
        raise ApiError(getattr(r, "status", 0), "answer_too_large",
                       f"the answer from {url} is larger than {MAX_ANSWER >> 20} MiB, more than any answer of the API")
    # A read with a size returns what came before the connection closed: compare with the length.
    length = r.headers.get("Content-Length") if getattr(r, "headers", None) is not None else None
    if length and length.isdigit() and int(length) != len(raw):
        raise ApiError(0, "stream_ended", f"the answer from {url} ended after {len(raw)} of {length} bytes")
    return raw


class Transport:
    """Sends requests to one server with one token (never put in a URL, never sent elsewhere)."""

    def __init__(self, url: str, token: Optional[str], timeout: float):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not a server URL: {url!r} (e.g. http://127.0.0.1:8080)")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def _request(self, method: str, path: str, data: Any = None, headers: Optional[Dict[str, str]] = None):
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            return self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            try:
                raw = e.read(MAX_ANSWER)
            except (OSError, http.client.HTTPException):
                raw = b""
            raise _error_from(e.code, raw, e.headers) from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"cannot reach {self.url}: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # closed without an answer, a garbled status line, a stall
            raise ApiError(0, "unreachable", f"no valid answer from {self.url}: {type(e).__name__}: {e}") from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call; the decoded answer (None for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._request(method, path, data, headers) as r:
            raw = _read_answer(r, self.url)
            return _decode(raw, r.status)

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
            raw = _read_answer(r, self.url)
            return _decode(raw, r.status)

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
                length = r.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else 0
                done = 0
                while True:
                    try:
                        block = r.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise ApiError(0, "stream_broken", f"the download of {path} broke off: {type(e).__name__}") from None
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
                # A body that ended before its Content-Length is a broken download, not a file.
                if length and done != total:
                    raise ApiError(0, "stream_ended", f"the download of {path} ended after {done} of {total} bytes")
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
            try:
                data = r.read()
            except (OSError, http.client.HTTPException) as e:
                raise ApiError(0, "stream_broken", f"the answer from {self.url} broke off: {type(e).__name__}") from None
            length = r.headers.get("Content-Length")
            if length and length.isdigit() and len(data) != int(length):
                raise ApiError(0, "stream_ended", f"the answer ended after {len(data)} of {length} bytes")
            return data

    def events(self, method: str, path: str, body: Any = None) -> Iterator[Tuple[str, Any]]:
        """The server-sent events of a streamed answer, as (event, decoded JSON data)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "text/event-stream"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        with self._request(method, path, data, headers) as r:
            if "text/event-stream" not in (r.headers.get("Content-Type") or ""):
                raw = _read_answer(r, self.url)  # an answer that is not a stream: the whole of it
                yield "done", _decode(raw, r.status)
                return
            event, lines, size = "message", [], 0
            for raw_line in _lines(r, self.url):
                line = raw_line.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if lines:
                        yield event, _decode("\n".join(lines).encode(), r.status)
                    event, lines, size = "message", [], 0
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    lines.append(line[5:].lstrip(" "))
                    size += len(lines[-1])
                    if size > MAX_EVENT_LINE:
                        raise ApiError(0, "stream_broken", f"an event from {self.url} is larger than "
                                                           f"{MAX_EVENT_LINE >> 20} MiB: not an mlaas stream")


def _lines(response: Any, url: str) -> Iterator[bytes]:
    """The lines of a streamed answer; a connection that breaks midway is an ApiError."""
    try:
        while True:
            line = response.readline(MAX_EVENT_LINE + 1)
            if not line:
                return
            if len(line) > MAX_EVENT_LINE:
                raise ApiError(0, "stream_broken", f"the stream from {url} holds a line longer than "
                                                   f"{MAX_EVENT_LINE >> 20} MiB: not an mlaas stream")
            yield line
    except (OSError, http.client.HTTPException) as e:
        raise ApiError(0, "stream_broken", f"the stream from {url} broke: {e}") from None


def _error_from(status: int, raw: bytes, headers: Any) -> ApiError:
    retry = headers.get("Retry-After") if headers is not None else None
    retry_after = int(retry) if retry and retry.isdigit() else None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]

        def text(key: str, default: Optional[str]) -> Optional[str]:
            value = e.get(key, default)
            return value if isinstance(value, str) or value is None else str(value)
        return ApiError(status, text("code", "error") or "error", text("message", "") or "", text("field", None),
                        text("request_id", None), retry_after)
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # Open Inference Protocol errors
        return ApiError(status, "error", body["error"], None, None, retry_after)
    text = raw.decode("utf-8", "replace")[:500]
    return ApiError(status, "http_" + str(status), text or "HTTP " + str(status), None, None, retry_after)


def copy_file(src: BinaryIO, dst: BinaryIO) -> None:
    shutil.copyfileobj(src, dst, CHUNK)
