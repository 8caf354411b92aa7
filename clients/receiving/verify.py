"""A receiver that verifies Whisperer's signatures. Python 3.9+, standard library only.

Run: WHISPERER_SECRET=... PORT=8080 python3 verify.py
"""
import base64
import hashlib
import hmac
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE = 5 * 60  # seconds webhook-timestamp may be from now


def verify_whisperer(secrets, body, headers):
    """X-Whisperer-Signature (dj-whisperer's): "sha256=" + hex HMAC-SHA256(secret, body)."""
    got = headers.get("X-Whisperer-Signature", "").encode()
    for secret in secrets:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(got, want.encode()):
            return True
    return False


def verify_standard(secrets, body, headers, now=None):
    """webhook-signature (Standard Webhooks): space-separated "v1,<base64 HMAC-SHA256(
    secret, webhook-id + "." + webhook-timestamp + "." + body)>" values; one must match."""
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    if not (ts.isascii() and ts.isdigit() and len(ts) < 16):
        return False
    if abs((time.time() if now is None else now) - int(ts)) > TOLERANCE:
        return False  # stale or from the future: a replay
    signed = ("%s.%s." % (msg_id, ts)).encode() + body
    sigs = [s[3:].encode() for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    for secret in secrets:
        want = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
        if any(hmac.compare_digest(want, sig) for sig in sigs):
            return True
    return False


# The hook's secret_key, and during a rotation the previous one.
SECRETS = [s for s in (os.environ.get("WHISPERER_SECRET"), os.environ.get("WHISPERER_PREVIOUS_SECRET")) if s]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit() and int(length) <= 1 << 20):
            self.send_error(413)
            return
        length = int(length)
        body = self.rfile.read(length)  # the raw bytes: verify them before parsing
        if self.path.split("?")[0] == "/dj-whisperer":  # a receiver written for dj-whisperer
            ok = verify_whisperer(SECRETS, body, self.headers)
        else:
            ok = verify_standard(SECRETS, body, self.headers)
        # Verified: json.loads(body), and drop a webhook-id already handled (retries repeat it).
        self.send_response(204 if ok else 401)
        self.end_headers()


if __name__ == "__main__":
    if not SECRETS:
        sys.exit("set WHISPERER_SECRET to the hook's secret_key")
    HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver).serve_forever()
