#!/usr/bin/env python3
"""A signature-checking proxy in front of an S3 server that does not check them (s3rver).

Every request's AWS Signature Version 4 is recomputed with botocore (Debian's
python3-botocore, the signer of the AWS SDK for Python and the AWS CLI) from the request as
received: the headers it names as signed, the URI path and query re-encoded the canonical way,
the date and scope it carries, and the secret given here. A request that does not verify is
answered 403 SignatureDoesNotMatch, as S3 would, and never reaches the server; one that
verifies is forwarded unchanged. GET /__sigv4__ answers {"verified": n, "refused": [...]}.

usage: sigv4_proxy.py --upstream http://127.0.0.1:PORT --port-file FILE [--secret S] [--region R]
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

STATE = {"verified": 0, "refused": []}
LOCK = threading.Lock()


def canonical_query(query):
    """The query re-encoded as SigV4 wants it: every name and value percent-encoded once with
    only unreserved characters left, sorted. A client that encodes differently signs something
    else, and fails here as it would at AWS."""
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(name), safe="-_.~"),
                      urllib.parse.quote(urllib.parse.unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def verify(method, target, headers, body, secret, region):
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return f"no SigV4 Authorization header: {auth[:40]!r}"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    access_key, date, scope_region, service, terminator = fields["Credential"].split("/")
    if (scope_region, service, terminator) != (region, "s3", "aws4_request"):
        return f"credential scope {fields['Credential']!r}"
    amz_date = headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        return f"X-Amz-Date {amz_date!r} is not of the scope's day {date}"
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed:
            return f"{required} is not signed"
    if "X-Amz-Security-Token" in headers and "x-amz-security-token" not in signed:
        return "x-amz-security-token is sent but not signed"
    content_sha = headers.get("X-Amz-Content-SHA256", "")
    if content_sha != "UNSIGNED-PAYLOAD" and content_sha != hashlib.sha256(body).hexdigest():
        return f"x-amz-content-sha256 {content_sha!r} is not the body's"
    path, _, query = target.partition("?")
    path = urllib.parse.quote(urllib.parse.unquote(path), safe="/-_.~")
    url = f"http://{headers['Host']}{path}" + (f"?{canonical_query(query)}" if query else "")
    request = AWSRequest(method=method, url=url, data=body,
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = amz_date
    signer = S3SigV4Auth(Credentials(access_key, secret), "s3", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != fields["Signature"]:
        return (f"signature mismatch for {method} {target}; canonical request:\n{canonical}\n"
                f"headers received:\n{headers}")
    return None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    secret = None
    region = None

    def log_message(self, *args):
        pass

    def relay(self):
        if self.path == "/__sigv4__":
            with LOCK:
                payload = json.dumps(STATE).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        problem = verify(self.command, self.path, self.headers, body, self.secret, self.region)
        with LOCK:
            if problem:
                STATE["refused"].append(problem)
            else:
                STATE["verified"] += 1
        if problem:
            error = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
                     b"<Message>The request signature we calculated does not match the signature you provided."
                     b"</Message></Error>")
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(error)
            return
        up = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding", "expect")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        # A HEAD answer tells the object's length, not its own.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = relay


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--secret", default="S3RVER")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    Proxy.upstream, Proxy.secret, Proxy.region = args.upstream, args.secret, args.region
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
