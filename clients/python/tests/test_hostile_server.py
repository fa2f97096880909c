"""The SDK against a server that is not what it should be (no mlaas server needed): it never
sends the token to another host, never saves a cut-off download as a file, and answers every
malformed or wrong-shaped reply with an ApiError rather than a raw exception."""
import http.server
import json
import threading

import pytest

from mlaas import ApiError, Client


class Hostile(http.server.BaseHTTPRequestHandler):
    seen = []  # (host:port, path, Authorization) of every request, both servers

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        Hostile.seen.append((self.server.server_address[1], self.path, self.headers.get("Authorization")))
        route = getattr(self.server, "route", {}).get(self.path.split("?")[0])
        if route is None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"user": "elsewhere"}')
            return
        route(self)

    do_POST = do_GET


@pytest.fixture()
def servers():
    made = []
    for _ in range(2):
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        made.append(s)
    Hostile.seen = []
    yield made
    for s in made:
        s.shutdown()
        s.server_close()


def answer(status, body=b"", headers=(), length=None):
    def send(h):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
    return send


def test_a_redirect_is_an_error_and_the_token_stays_home(servers):
    here, there = servers
    for code in (301, 302, 307, 308):
        here.route = {"/api/v1/whoami": answer(code, headers=[("Location", f"http://127.0.0.1:{there.server_address[1]}/api/v1/whoami")])}
        with pytest.raises(ApiError) as e:
            Client(f"http://127.0.0.1:{here.server_address[1]}", token="SECRET-TOKEN").whoami()
        assert e.value.status == code
    assert all(port == here.server_address[1] for port, _, _ in Hostile.seen), Hostile.seen


def test_a_cut_off_answer_is_an_error(servers):
    here, _ = servers
    here.route = {"/api/v1/whoami": answer(200, b'{"a": 1}', [("Content-Type", "application/json")], length=100)}
    with pytest.raises(ApiError) as e:
        Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5).whoami()
    assert e.value.code == "stream_ended"


def test_a_cut_off_download_leaves_no_file(servers, tmp_path):
    here, _ = servers
    here.route = {"/api/v1/objects/k": answer(200, b"0123456789", [("Content-Type", "application/octet-stream")], length=1000)}
    c = Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5)
    with pytest.raises(ApiError) as e:
        c.objects.download("k", str(tmp_path / "out.bin"))
    assert e.value.code in ("stream_ended", "stream_broken")
    assert not (tmp_path / "out.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize("body,content_type", [
    (b"<html>not an api</html>", "application/json"),
    (b"\xff\xfe{", "application/json"),
    (b"[" * 100000 + b"]" * 100000, "application/json"),
])
def test_malformed_answers_are_api_errors(servers, body, content_type):
    here, _ = servers
    here.route = {"/api/v1/whoami": answer(200, body, [("Content-Type", content_type)]),
                  "/healthz": answer(200, body, [("Content-Type", content_type)])}
    c = Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5)
    with pytest.raises(ApiError):
        c.whoami()
    assert c.health() is False


def test_an_error_with_odd_types_or_deep_nesting_is_still_an_api_error(servers):
    here, _ = servers
    for body in (json.dumps({"error": {"message": 5, "code": ["x"], "field": {"a": 1}}}).encode(),
                 b"[" * 100000 + b"]" * 100000):
        here.route = {"/api/v1/whoami": answer(400, body, [("Content-Type", "application/json")])}
        with pytest.raises(ApiError) as e:
            Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5).whoami()
        assert e.value.status == 400
        assert isinstance(e.value.message, str)


def test_a_server_that_closes_without_answering_is_an_api_error(servers):
    here, _ = servers

    def hang_up(h):
        h.close_connection = True
        h.wfile.flush()
        h.connection.shutdown(2)
    here.route = {"/api/v1/whoami": hang_up}
    with pytest.raises(ApiError) as e:
        Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5).whoami()
    assert e.value.status == 0


def json_answer(value):
    return answer(200, json.dumps(value).encode(), [("Content-Type", "application/json")])


# Each call with the route it reads and answers of the wrong shape for it.
WRONG_SHAPES = [
    ("deployments", lambda c: c.deployments.list(), "/api/v1/deployments", [{}, [], {"deployments": "x"}]),
    ("tokens", lambda c: c.tokens.list(), "/api/v1/tokens", [{"tokens": None}, 5]),
    ("tasks", lambda c: c.tasks.list(), "/api/v1/tasks", [[], {"tasks": {"a": 1}}, {"tasks": [], "next_cursor": 7}]),
    ("task status", lambda c: c.tasks.get("t1").status, "/api/v1/tasks/t1", [[], {"task_status": 3}, "x"]),
    ("answer", lambda c: c.answer("models/qa", "q?", "a context"), "/api/v1/ml/nlp/predict", [{}, {"predictions": 1}]),
    ("generate", lambda c: c.generate("models/lm", "hi"), "/api/v1/ml/nlp/predict", [{"predictions": [{}]}, {"predictions": [1]}]),
    ("train", lambda c: c.train("data.csv", "models/out"), "/api/v1/ml/nlp/train", [{}, {"task_id": 12}, []]),
    ("pull", lambda c: c.catalog.pull("m", "/nonexistent-dir-for-test"), "/api/v1/catalog/resolve", [[], {"files": [{"size": 1}]}]),
]


@pytest.mark.parametrize("name,call,path,bodies", WRONG_SHAPES, ids=[w[0] for w in WRONG_SHAPES])
def test_an_answer_of_the_wrong_shape_is_an_api_error(servers, name, call, path, bodies):
    here, _ = servers
    c = Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5)
    for body in bodies:
        here.route = {path: json_answer(body)}
        with pytest.raises(ApiError) as e:
            call(c)
        assert e.value.code == "bad_answer", (body, e.value)
        assert "mlaas server" in str(e.value) and not str(e.value).startswith("'")
        # Still a KeyError, as reading a missing field raised before.
        with pytest.raises(KeyError):
            call(c)


def test_a_page_that_repeats_its_cursor_ends_with_an_error(servers):
    here, _ = servers
    here.route = {"/api/v1/tasks": json_answer({"tasks": [{"task_id": "a"}], "next_cursor": "c1"})}
    with pytest.raises(ApiError) as e:
        Client(f"http://127.0.0.1:{here.server_address[1]}", timeout=5).tasks.list()
    assert e.value.code == "bad_answer"
