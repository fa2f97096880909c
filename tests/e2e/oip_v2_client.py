#!/usr/bin/python3
"""A client of the Open Inference Protocol v2 (KServe / Triton HTTP/REST), written from the
protocol's documentation with the standard library only, as a user's script would be.
  oip_v2_client.py BASE_URL MODEL
Checks the server and model endpoints and an inference round trip against the documented
shapes; prints what does not conform and exits 1, or exits 0."""
import json
import sys
import urllib.error
import urllib.request

BASE, MODEL = sys.argv[1].rstrip("/"), sys.argv[2]
problems = []


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def expect(cond, what):
    if not cond:
        problems.append(what)


# $metadata_server_response: name, version, extensions
status, meta = call("GET", "/v2")
expect(status == 200 and isinstance(meta.get("name"), str) and isinstance(meta.get("version"), str)
       and isinstance(meta.get("extensions"), list), f"server metadata: {status} {meta}")
expect(call("GET", "/v2/health/live")[0] == 200, "server live")
expect(call("GET", "/v2/health/ready")[0] == 200, "server ready")
# $metadata_model_response: name, versions?, platform, inputs, outputs ($metadata_tensor: name, datatype, shape)
status, model = call("GET", f"/v2/models/{MODEL}")
expect(status == 200 and model.get("name") == MODEL and isinstance(model.get("platform"), str), f"model metadata: {model}")
for t in model.get("inputs", []) + model.get("outputs", []):
    expect(isinstance(t.get("name"), str) and isinstance(t.get("datatype"), str) and isinstance(t.get("shape"), list),
           f"metadata tensor {t}")
expect(call("GET", f"/v2/models/{MODEL}/ready")[0] == 200, "model ready")
for version in model.get("versions", []):
    expect(call("GET", f"/v2/models/{MODEL}/versions/{version}/ready")[0] == 200, f"version {version} ready")

# $inference_request -> $inference_response: model_name, model_version?, id?, parameters?, outputs
texts = ["Bari INFN, Via E Orabona 4, I-70125 Bari, Italy", "INAF IASF Milano"]
request = {"id": "client-1", "inputs": [{"name": (model.get("inputs") or [{"name": "text"}])[0]["name"], "shape": [len(texts)],
                                         "datatype": "BYTES", "data": texts}]}
status, answer = call("POST", f"/v2/models/{MODEL}/infer", request)
expect(status == 200, f"infer: {status} {answer}")
if status == 200:
    expect(answer.get("model_name") == MODEL and answer.get("id") == "client-1", f"infer response header: {answer}")
    names = {o["name"] for o in model.get("outputs", [])}
    for out in answer.get("outputs", []):
        n = 1
        for d in out["shape"]:
            n *= d
        expect(out["name"] in names, f"output {out['name']} not in the model's metadata")
        expect(out["shape"][0] == len(texts) and len(out["data"]) == n, f"output {out['name']}: shape {out['shape']}")
        kind = str if out["datatype"] == "BYTES" else (int, float)
        expect(all(isinstance(x, kind) for x in out["data"]), f"output {out['name']}: data not {out['datatype']}")

# Errors: {"error": "<message>"} with a 4xx status.
status, error = call("POST", f"/v2/models/{MODEL}/infer", {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]})
expect(400 <= status < 500 and isinstance(error, dict) and isinstance(error.get("error"), str), f"error: {status} {error}")
status, error = call("GET", "/v2/models/no-such-model")
expect(status == 404 and isinstance(error.get("error"), str), f"unknown model: {status} {error}")

for p in problems:
    print("does not conform:", p)
print("ok" if not problems else f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
