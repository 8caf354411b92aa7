"""Tests of whisperer_client.

The offline tests always run. The others publish to a real Whisperer
server: set WHISPERER_URL and WHISPERER_TOKEN (a publisher's token; the
server must allow deliveries to 127.0.0.1, delivery.allow_networks, as the
tests' receiver listens there) or they skip. `go test ./clients/` starts a
server and runs them so.
"""

import dataclasses
import datetime
import decimal
import hashlib
import hmac
import http.server
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import whisperer_client as wc  # noqa: E402

URL = os.environ.get("WHISPERER_URL", "")
TOKEN = os.environ.get("WHISPERER_TOKEN", "")
EVENT_TYPE = os.environ.get("WHISPERER_TEST_EVENT_TYPE", "package-created")
SECRET = "s3cret-for-the-python-client-tests"
WAIT = 20  # seconds a test waits for a background delivery before failing


def closed_port():
    """A port nothing listens on: connecting to it is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(handler):
    srv = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


class Receiver:
    """A hook's target: records every delivery's headers and body."""

    def __init__(self):
        self.cond = threading.Condition()
        self.got = []
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec.cond:
                    rec.got.append((self.headers, body))
                    rec.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.srv, self.url = serve(H)

    def wait_for(self, event_uuid):
        """The deliveries of event_uuid, once there is one."""
        deadline = time.monotonic() + WAIT
        with self.cond:
            while True:
                found = [(h, b) for h, b in self.got if h["webhook-id"] == event_uuid]
                if found or time.monotonic() > deadline:
                    return found
                self.cond.wait(0.2)


class Proxy:
    """Stands between the client and the real server. Each request takes
    the next step of plan: "forward", "503" (answered without forwarding)
    or "drop" (forwarded, then the connection is closed without an answer,
    as when a network fails after the server committed)."""

    def __init__(self, upstream, plan):
        self.plan = list(plan)
        self.keys = []
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.keys.append(self.headers.get("Idempotency-Key"))
                step = proxy.plan.pop(0) if proxy.plan else "forward"
                if step == "503":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"detail": "try again"}')
                    return
                req = urllib.request.Request(upstream + self.path, data=body, method="POST",
                                             headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    resp = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    resp = e
                with resp:
                    status, headers, answer = resp.status if hasattr(resp, "status") else resp.code, resp.headers, resp.read()
                if step == "drop":
                    self.close_connection = True
                    return
                self.send_response(status)
                for k in ("Content-Type", "Idempotent-Replayed"):
                    if headers.get(k):
                        self.send_header(k, headers[k])
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.srv, self.url = serve(H)


class Model:
    """Like a Django model instance: fields in __dict__, and _state."""

    def __init__(self, **fields):
        self._state = object()
        self.__dict__.update(fields)


@dataclasses.dataclass
class Parcel:
    id: int
    weight: decimal.Decimal


class OrderSerializer:
    """The shape of a DRF serializer: Serializer(instance).data."""

    def __init__(self, instance):
        self.data = {"order": instance.id, "kind": "serialized"}


class Offline(unittest.TestCase):
    """What needs no server."""

    def setUp(self):
        wc.configure()
        wc.configure(url="http://127.0.0.1:%d" % closed_port(), token="0" * 40,
                     attempts=3, backoff=0.001, max_backoff=0.002)
        self.addCleanup(wc.configure)

    def test_serialize_encodes_dates_decimals_uuids(self):
        u = uuid.UUID("d960acbe-4193-44b8-b254-df115cf6d2e7")
        got = wc.serialize({
            "at": datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc),
            "naive": datetime.datetime(2024, 5, 1, 12, 0),
            "day": datetime.date(2024, 5, 1),
            "price": decimal.Decimal("10.50"),
            "id": u, "tags": ("a", "b"), "blob": b"\x00\xff",
            "nested": {"n": [1, 2.5, None, True]},
        })
        self.assertEqual(got, {
            "at": "2024-05-01T12:00:00.123Z", "naive": "2024-05-01T12:00:00",
            "day": "2024-05-01", "price": "10.50", "id": str(u), "tags": ["a", "b"],
            "blob": "AP8=", "nested": {"n": [1, 2.5, None, True]},
        })

    def test_serialize_objects(self):
        self.assertEqual(wc.serialize(Model(id=7, name="box", customer_id=3)),
                         {"id": 7, "name": "box", "customer_id": 3})
        self.assertEqual(wc.serialize(Parcel(1, decimal.Decimal("2.5"))), {"id": 1, "weight": "2.5"})
        self.assertEqual(wc.serialize(Model(id=9), OrderSerializer), {"order": 9, "kind": "serialized"})
        self.assertEqual(wc.serialize(Model(id=9), lambda m: {"pk": m.id}), {"pk": 9})

    def test_serialize_refuses_what_json_cannot_carry(self):
        cyclic = {}
        cyclic["self"] = cyclic
        for value, needle in [({"x": object()}, "payload.x: cannot encode object"),
                              ({"x": float("nan")}, "payload.x"),
                              ({"d": decimal.Decimal("Infinity")}, "payload.d"),
                              (cyclic, "contains itself"),
                              ({"x": [Model(id=1)]}, "payload.x[0]")]:
            with self.assertRaises(wc.ValidationError) as cm:
                wc.deliver_event(value, EVENT_TYPE, _async=False)
            self.assertIn(needle, str(cm.exception))

    def test_bad_inputs_are_refused_before_any_request(self):
        # The URL refuses connections: an input that reached the network
        # would raise UnavailableError instead.
        for event_type in ["", "x" * 256, "two words", "tab\there", None, 7]:
            with self.assertRaises(wc.ValidationError, msg=repr(event_type)):
                wc.deliver_event({}, event_type)
        for key in ["", "k" * 256, "line\nbreak", "\x7f", "ключ"]:
            with self.assertRaises(wc.ValidationError, msg=repr(key)):
                wc.deliver_event({}, EVENT_TYPE, idempotency_key=key)
        with self.assertRaises(wc.ValidationError):
            wc.deliver_event({}, EVENT_TYPE, event_uuid="not-a-uuid")
        with self.assertRaises(wc.ValidationError) as cm:
            wc.deliver_event({"blob": "x" * (1 << 20)}, EVENT_TYPE)
        self.assertIn("max_body_bytes", str(cm.exception))

    def test_configuration_errors(self):
        wc.configure()
        saved = {k: os.environ.pop(k, None) for k in ("WHISPERER_URL", "WHISPERER_TOKEN")}
        self.addCleanup(lambda: os.environ.update({k: v for k, v in saved.items() if v is not None}))
        with self.assertRaisesRegex(wc.ConfigurationError, "WHISPERER_URL"):
            wc.deliver_event({}, EVENT_TYPE)
        os.environ["WHISPERER_URL"] = "http://127.0.0.1:1"
        with self.assertRaisesRegex(wc.ConfigurationError, "WHISPERER_TOKEN"):
            wc.deliver_event({}, EVENT_TYPE)
        os.environ["WHISPERER_TOKEN"] = "0" * 40
        os.environ.pop("WHISPERER_URL")
        for url in ["ftp://x", "127.0.0.1:8000", "http://host:port"]:
            wc.configure(url=url)
            with self.assertRaises(wc.ConfigurationError, msg=url):
                wc.deliver_event({}, EVENT_TYPE)
        wc.configure(url="http://127.0.0.1:1", token="bad token")
        with self.assertRaisesRegex(wc.ConfigurationError, "printable"):
            wc.deliver_event({}, EVENT_TYPE)
        with self.assertRaisesRegex(wc.ConfigurationError, "unknown option"):
            wc.configure(tokn="x")

    def test_django_settings(self):
        try:
            from django.conf import settings
        except ImportError:
            self.skipTest("Django is not installed")
        from django.utils.functional import lazy
        if not settings.configured:
            settings.configure()
        for name, value in [("WHISPERER_URL", "http://django.example:1/prefix"), ("WHISPERER_TOKEN", "a" * 40),
                            ("WHISPERER_CLIENT_ATTEMPTS", 2)]:
            setattr(settings, name, value)
            self.addCleanup(delattr, settings, name)
        wc.configure()
        opts = wc._options()
        self.assertEqual((opts["endpoint"], opts["token"], opts["attempts"]),
                         ("http://django.example:1/prefix/whisperer/events/", "a" * 40, 2))
        wc.configure(attempts=3)  # configure() wins over settings
        self.assertEqual(wc._options()["attempts"], 3)
        self.assertEqual(wc.serialize({"label": lazy(lambda: "box", str)()}), {"label": "box"})

    def test_connection_refused_is_retried_then_raises(self):
        with self.assertRaises(wc.UnavailableError) as cm:
            wc.deliver_event({"id": 1}, EVENT_TYPE, _async=False, idempotency_key="refused-1")
        e = cm.exception
        self.assertEqual(e.attempts, 3)
        self.assertEqual(e.idempotency_key, "refused-1")
        self.assertIn("failed 3 attempt(s)", str(e))
        self.assertIn("ConnectionRefusedError", str(e))
        # In the background the same error is the future's.
        with self.assertLogs("whisperer_client", "ERROR"):
            future = wc.deliver_event({"id": 1}, EVENT_TYPE)
            self.assertIsInstance(future.exception(timeout=WAIT), wc.UnavailableError)

    def test_answer_sent_before_the_body_is_read(self):
        # A server that answers 413 as soon as it has the headers and
        # closes without reading the body (as Whisperer's does for a body
        # over server.max_body_bytes): the client's send breaks, and the
        # 413 it was sent is reported, once, without a retry.
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(8)
        self.addCleanup(lsn.close)
        requests = []

        def answer():
            while True:
                try:
                    conn, _ = lsn.accept()
                except OSError:
                    return
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                requests.append(head)
                body = b'{"detail": "Request body exceeds server.max_body_bytes (1048576 bytes)."}'
                conn.sendall(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                conn.shutdown(socket.SHUT_WR)
                conn.close()  # unread body: the kernel resets the connection

        threading.Thread(target=answer, daemon=True).start()
        wc.configure(url="http://127.0.0.1:%d" % lsn.getsockname()[1], max_body_bytes=64 << 20)
        for _ in range(5):  # the send breaks at a different point each time
            del requests[:]
            with self.assertRaises(wc.ValidationError) as cm:
                wc.deliver_event({"blob": "x" * (8 << 20)}, EVENT_TYPE, _async=False)
            self.assertEqual(cm.exception.status, 413)
            self.assertIn("max_body_bytes", str(cm.exception))
            self.assertEqual(len(requests), 1, "a 413 is not retried")

    def test_queue_full(self):
        # A server that takes connections and never answers holds the
        # first publish until the socket is closed.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        wc.configure(url="http://127.0.0.1:%d" % silent.getsockname()[1], max_pending=1, attempts=1, timeout=WAIT)
        first = wc.deliver_event({}, EVENT_TYPE)
        with self.assertRaises(wc.QueueFull):
            wc.deliver_event({}, EVENT_TYPE)
        with self.assertLogs("whisperer_client", "ERROR"):
            silent.close()  # resets the waiting connection
            self.assertIsInstance(first.exception(timeout=WAIT), wc.UnavailableError)
        # Its place is free again.
        self.assertIsInstance(wc.deliver_event({}, EVENT_TYPE).exception(timeout=WAIT), wc.UnavailableError)


@unittest.skipUnless(URL and TOKEN, "set WHISPERER_URL and WHISPERER_TOKEN (a publisher's) to run the tests "
                     "against a real Whisperer server; `go test ./clients/` does")
class AgainstServer(unittest.TestCase):
    """Publishes to a real server, whose deliveries reach a real receiver."""

    @classmethod
    def setUpClass(cls):
        cls.receiver = Receiver()
        body = json.dumps({"event_type": EVENT_TYPE, "target_url": cls.receiver.url + "/",
                           "secret_key": SECRET,
                           "retry_countdown_config": {"choice": "fixed", "kwargs": {"seconds": 1}}}).encode()
        req = urllib.request.Request(URL.rstrip("/") + "/whisperer/hooks/", data=body, method="POST", headers={
            "Authorization": "Token " + TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            cls.hook = json.load(resp)

    @classmethod
    def tearDownClass(cls):
        req = urllib.request.Request("%s/whisperer/hooks/%d/" % (URL.rstrip("/"), cls.hook["id"]), method="DELETE",
                                     headers={"Authorization": "Token " + TOKEN})
        urllib.request.urlopen(req, timeout=10).close()
        cls.receiver.srv.shutdown()

    def setUp(self):
        wc.configure()
        wc.configure(url=URL, token=TOKEN, attempts=4, backoff=0.01, max_backoff=0.05)
        self.addCleanup(wc.configure)

    def ours(self, published):
        """The event of published that went to this test's hook."""
        mine = [e for e in published.events if e["webhook"] == self.hook["id"]]
        self.assertEqual(len(mine), 1, published)
        return mine[0]

    def test_sync_publish_delivers_inline(self):
        order = Model(id=42, total=decimal.Decimal("19.90"), placed=datetime.date(2024, 5, 1))
        pub = wc.deliver_event(order, EVENT_TYPE, _async=False)
        self.assertEqual(pub.status, 200)
        ev = self.ours(pub)
        self.assertTrue(ev["delivered"], ev)
        self.assertEqual(ev["response_http_status"], 204)
        [(headers, body)] = self.receiver.wait_for(ev["uuid"])
        self.assertEqual(json.loads(body), {"event": {"type": EVENT_TYPE, "uuid": ev["uuid"]},
                                            "payload": {"id": 42, "total": "19.90", "placed": "2024-05-01"}})
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-Whisperer-Signature"], "sha256=" + mac)

    def test_async_publish_returns_a_future(self):
        future = wc.deliver_event({"id": 43}, EVENT_TYPE, serializer=lambda d: {"wrapped": d})
        pub = future.result(timeout=WAIT)
        self.assertEqual(pub.status, 202)
        ev = self.ours(pub)
        self.assertEqual(ev["state"], "pending")
        got = self.receiver.wait_for(ev["uuid"])
        self.assertTrue(got, "the event was never delivered")
        self.assertEqual(json.loads(got[0][1])["payload"], {"wrapped": {"id": 43}})

    def test_retry_after_a_lost_answer_publishes_once(self):
        # The first answer is lost after the server committed; the retry
        # carries the same key, so the server answers the first publish.
        proxy = Proxy(URL.rstrip("/"), ["drop"])
        self.addCleanup(proxy.srv.shutdown)
        wc.configure(url=proxy.url)
        pub = wc.deliver_event({"id": 44}, EVENT_TYPE, _async=False)
        self.assertEqual(pub.attempts, 2)
        self.assertTrue(pub.replayed)
        self.assertEqual(len(proxy.keys), 2)
        self.assertEqual(proxy.keys[0], proxy.keys[1])
        self.assertEqual(proxy.keys[0], pub.idempotency_key)
        ev = self.ours(pub)
        got = self.receiver.wait_for(ev["uuid"])
        self.assertTrue(got)
        with self.receiver.cond:
            ids = {h["webhook-id"] for h, b in self.receiver.got if json.loads(b)["payload"] == {"id": 44}}
        self.assertEqual(ids, {ev["uuid"]}, "the retried publish made a second event")

    def test_503_is_retried_with_the_same_key(self):
        proxy = Proxy(URL.rstrip("/"), ["503", "503"])
        self.addCleanup(proxy.srv.shutdown)
        wc.configure(url=proxy.url)
        pub = wc.deliver_event({"id": 45}, EVENT_TYPE, _async=False, idempotency_key="order-45")
        self.assertEqual((pub.attempts, pub.replayed), (3, False))
        self.assertEqual(proxy.keys, ["order-45"] * 3)
        self.assertTrue(self.ours(pub)["delivered"])
        # A later call with the same key publishes nothing new.
        again = wc.deliver_event({"id": 45}, EVENT_TYPE, idempotency_key="order-45").result(timeout=WAIT)
        self.assertTrue(again.replayed)
        self.assertEqual(self.ours(again)["uuid"], self.ours(pub)["uuid"])

    def test_bad_token(self):
        wc.configure(token="0" * 40)
        with self.assertRaises(wc.AuthenticationError) as cm:
            wc.deliver_event({"id": 46}, EVENT_TYPE, _async=False)
        e = cm.exception
        self.assertEqual((e.status, e.attempts), (401, 1))
        self.assertIn("Invalid token.", str(e))

    def test_server_side_validation(self):
        with self.assertRaises(wc.ValidationError) as cm:
            wc.deliver_event({}, "no-such-event-type", _async=False)
        self.assertEqual(cm.exception.status, 400)
        self.assertIn("event_type", cm.exception.errors)
        # The server's own limit, when smaller than the client's setting.
        wc.configure(max_body_bytes=16 << 20)
        with self.assertRaises(wc.ValidationError) as cm:
            wc.deliver_event({"blob": "x" * (2 << 20)}, EVENT_TYPE, _async=False)
        self.assertEqual(cm.exception.status, 413)

    def test_redeliver_by_event_uuid(self):
        ev = self.ours(wc.deliver_event({"id": 47}, EVENT_TYPE, _async=False))
        with self.assertRaises(wc.PublishError) as cm:  # delivered already: 409 without force
            wc.deliver_event(None, EVENT_TYPE, event_uuid=uuid.UUID(ev["uuid"]), _async=False)
        self.assertEqual(cm.exception.status, 409)


if __name__ == "__main__":
    unittest.main()
