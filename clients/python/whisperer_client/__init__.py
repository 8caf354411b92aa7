"""Publish events to a Whisperer server from a Python (Django) application.

The call is dj-whisperer's::

    from whisperer_client import deliver_event

    deliver_event(order, 'order-created', serializer=OrderSerializer)

Standard library only (Python >= 3.9). It POSTs to Whisperer's
``/whisperer/events/`` with Token auth and an ``Idempotency-Key``, retrying
connection failures, 429 and 5xx answers with exponential backoff; every
retry of one call carries the same key, so a publish whose answer was lost
is never fanned out twice.

Configuration, first found wins: ``configure(...)``; Django settings
``WHISPERER_URL``, ``WHISPERER_TOKEN`` (and the optional keys of
``_SETTINGS``) when Django is importable and configured; the environment
variables of the same names.
"""

import base64
import concurrent.futures
import dataclasses
import datetime
import decimal
import enum
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib

__all__ = [
    "deliver_event", "configure", "serialize", "Published",
    "WhispererError", "ConfigurationError", "ValidationError",
    "AuthenticationError", "PublishError", "UnavailableError", "QueueFull",
]

log = logging.getLogger("whisperer_client")
log.addHandler(logging.NullHandler())  # a library: the application configures logging

# The server's bounds (docs/API.md): names are 1-255 characters without
# whitespace, the Idempotency-Key at most 255 printable characters, the
# request body at most server.max_body_bytes (1 MiB by default).
MAX_EVENT_TYPE = 255
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_MAX_BODY_BYTES = 1 << 20

# Setting name -> (configure() keyword, default). WHISPERER_URL is the
# server's root, scheme://host[:port][/prefix], like its server.public_url;
# WHISPERER_BASE_PATH is its server.base_path.
_SETTINGS = {
    "WHISPERER_URL": ("url", None),
    "WHISPERER_TOKEN": ("token", None),
    "WHISPERER_BASE_PATH": ("base_path", "/whisperer/"),
    "WHISPERER_CLIENT_TIMEOUT": ("timeout", 30.0),
    "WHISPERER_CLIENT_ATTEMPTS": ("attempts", 5),
    "WHISPERER_CLIENT_BACKOFF": ("backoff", 0.5),
    "WHISPERER_CLIENT_MAX_BACKOFF": ("max_backoff", 10.0),
    "WHISPERER_CLIENT_MAX_PENDING": ("max_pending", 10000),
    "WHISPERER_MAX_BODY_BYTES": ("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
}
_NUMERIC = {"timeout": float, "attempts": int, "backoff": float,
            "max_backoff": float, "max_pending": int, "max_body_bytes": int}


class WhispererError(Exception):
    """Base of every error this module raises."""


class ConfigurationError(WhispererError):
    """The URL or token is missing or malformed."""


class ValidationError(WhispererError):
    """A bad input, found here or by the server (400, 413).

    ``errors`` is the server's ``{"field": ["message"]}`` (or ``{"detail":
    ...}``) when it answered; ``status`` its status, None when found here.
    """

    def __init__(self, message, errors=None, status=None):
        super().__init__(message)
        self.errors = errors or {}
        self.status = status


class PublishError(WhispererError):
    """The server refused the publish, or kept failing until the attempts
    ran out. ``status``, ``detail`` (the answer's body, decoded when JSON)
    and ``attempts`` say what happened."""

    def __init__(self, message, status=None, detail=None, attempts=1):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.attempts = attempts


class AuthenticationError(PublishError):
    """401 (a missing, unknown or revoked token) or 403 (the token's user
    may not publish: create it with ``whisperer users create NAME
    --publisher``). Never retried."""


class UnavailableError(PublishError):
    """The server could not be reached, or answered 429/5xx, on every
    attempt. The publish may or may not have happened: call again with the
    same ``idempotency_key`` (``error.idempotency_key``) to find out without
    publishing twice."""

    def __init__(self, message, status=None, detail=None, attempts=1, idempotency_key=None):
        super().__init__(message, status, detail, attempts)
        self.idempotency_key = idempotency_key


class QueueFull(WhispererError):
    """Too many background publishes are still waiting (``max_pending``):
    the server has been unreachable for a while. Nothing was queued."""


@dataclasses.dataclass
class Published:
    """The server's answer to one publish.

    ``events`` is its list (``id``, ``uuid``, ``webhook``, ``state``, and
    with ``_async=False`` the first attempt's ``delivered``,
    ``response_http_status``, ``error``...). ``replayed`` is True when the
    server had already seen the idempotency key and answered the first
    publish's events (nothing was published again).
    """
    status: int
    events: list
    replayed: bool
    idempotency_key: str
    attempts: int
    detail: str = ""


_lock = threading.Lock()
_explicit = {}
_executor = None
_pending = 0


def configure(**options):
    """Set options explicitly; they win over Django settings and the
    environment. Keywords: url, token, base_path, timeout (seconds per
    request), attempts (requests per publish, >= 1), backoff (first wait,
    seconds; doubled per retry, with jitter), max_backoff, max_pending
    (background publishes waiting at most), max_body_bytes (the server's
    server.max_body_bytes). None removes an option. Call with no keyword
    to reset."""
    known = {kw for kw, _ in _SETTINGS.values()}
    for k in options:
        if k not in known:
            raise ConfigurationError("configure(): unknown option %r (known: %s)" % (k, ", ".join(sorted(known))))
    with _lock:
        if not options:
            _explicit.clear()
        for k, v in options.items():
            if v is None:
                _explicit.pop(k, None)
            else:
                _explicit[k] = v


def _django_setting(name):
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return None
    try:
        return getattr(settings, name, None)
    except ImproperlyConfigured:  # Django installed, but not this process's framework
        return None


def _options():
    with _lock:
        explicit = dict(_explicit)
    opts = {}
    for name, (kw, default) in _SETTINGS.items():
        v = explicit.get(kw)
        if v is None:
            v = _django_setting(name)
        if v is None:
            v = os.environ.get(name) or None
        if v is None:
            v = default
        if kw in _NUMERIC and v is not None:
            try:
                v = _NUMERIC[kw](v)
            except (TypeError, ValueError):
                raise ConfigurationError("%s must be a number, not %r" % (name, v)) from None
        opts[kw] = v
    if not opts["url"]:
        raise ConfigurationError("Whisperer's URL is not set: set WHISPERER_URL (Django setting or environment) "
                                 "or call configure(url='https://whisperer.example.com')")
    if not opts["token"]:
        raise ConfigurationError("Whisperer's API token is not set: set WHISPERER_TOKEN (Django setting or "
                                 "environment) or call configure(token=...); make one with "
                                 "`whisperer users create NAME --publisher`")
    parts = urllib.parse.urlsplit(str(opts["url"]))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError("WHISPERER_URL must be http(s)://host[:port][/prefix], not %r" % opts["url"])
    try:
        parts.port
    except ValueError:
        raise ConfigurationError("WHISPERER_URL has a bad port: %r" % opts["url"]) from None
    token = str(opts["token"])
    if not all(33 <= ord(c) < 127 for c in token):
        raise ConfigurationError("WHISPERER_TOKEN must be printable ASCII without spaces (Whisperer's tokens are 40 hex digits)")
    if opts["attempts"] < 1 or opts["timeout"] <= 0 or opts["max_pending"] < 1 or opts["max_body_bytes"] < 1:
        raise ConfigurationError("attempts, timeout, max_pending and max_body_bytes must be positive")
    base = "/" + str(opts["base_path"]).strip("/") + "/"
    opts["endpoint"] = str(opts["url"]).rstrip("/") + base.replace("//", "/") + "events/"
    return opts


# ---------------------------------------------------------------- payloads

def _encode(value, path, seen):
    """value as JSON-ready data, encoded as DRF and DjangoJSONEncoder do;
    path names the field in errors."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum or bool subclass becomes a plain number
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError("%s: %r is not a JSON number" % (path, value))
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValidationError("%s: %r is not a JSON number" % (path, value))
        return str(value)  # exact, as DRF's COERCE_DECIMAL_TO_STRING
    if isinstance(value, datetime.datetime):
        s = value.isoformat()
        if value.microsecond:
            s = s[:23] + s[26:]  # milliseconds, as DjangoJSONEncoder
        return s[:-6] + "Z" if s.endswith("+00:00") else s
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value.total_seconds())
    if isinstance(value, uuidlib.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return _encode(value.value, path, seen)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if id(value) in seen:
        raise ValidationError("%s: the value contains itself" % path)
    if isinstance(value, dict):
        seen = seen | {id(value)}
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise ValidationError("%s: key %r is not a string" % (path, k))
            out[k if isinstance(k, str) else json.dumps(k)] = _encode(v, "%s.%s" % (path, k), seen)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        seen = seen | {id(value)}
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_encode(v, "%s[%d]" % (path, i), seen) for i, v in enumerate(items)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, path, seen | {id(value)})
    if _is_lazy_string(value):
        return str(value)
    raise ValidationError("%s: cannot encode %s as JSON; pass a serializer to deliver_event" % (path, type(value).__name__))


def _is_lazy_string(value):
    try:
        from django.utils.functional import Promise
    except ImportError:
        return False
    return isinstance(value, Promise)


def serialize(instance, serializer=None):
    """The payload deliver_event publishes for instance.

    With a serializer: a DRF serializer class (``OrderSerializer(instance)
    .data``) or any callable returning the data (or an object with
    ``.data``). Without: a dict or list as is, a dataclass's fields, else
    the instance's public attributes (a Django model's field values:
    ``id``, ``name``, ``customer_id``..., never ``_state``). Dates become
    ISO 8601, Decimals and UUIDs strings, bytes base64.
    """
    if serializer is not None:
        data = serializer(instance)
        data = getattr(data, "data", data)
    elif isinstance(instance, (dict, list, tuple)) or instance is None:
        data = instance
    elif dataclasses.is_dataclass(instance) and not isinstance(instance, type):
        data = instance
    elif hasattr(instance, "__dict__"):
        data = {k: v for k, v in vars(instance).items() if not k.startswith("_")}
    else:
        data = instance
    return _encode(data, "payload", frozenset())


# ---------------------------------------------------------------- publishing

def _check_event_type(event_type):
    if not isinstance(event_type, str):
        raise ValidationError("event_type must be a string, not %s" % type(event_type).__name__)
    if not 1 <= len(event_type) <= MAX_EVENT_TYPE or any(c.isspace() for c in event_type):
        raise ValidationError("event_type must be 1-%d characters without whitespace, not %r"
                              % (MAX_EVENT_TYPE, event_type[:80]))


def _check_key(key):
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or \
            any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValidationError("idempotency_key must be 1-%d printable characters" % MAX_IDEMPOTENCY_KEY)
    try:
        key.encode("latin-1")  # HTTP header values are bytes; keep them unambiguous
    except UnicodeEncodeError:
        raise ValidationError("idempotency_key must be Latin-1 text (an ASCII key is safest)") from None


# An answer lists one event per subscribed hook (limits.hooks_per_user
# bounds them); more than this is not Whisperer's answer.
_MAX_ANSWER = 16 << 20


def _answer_detail(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return raw[:500].decode("utf-8", "replace")


class _AnswerAfterSendError:
    """HTTP connection mixin: a server may answer (413: the body is over
    its limit) and close before the whole body is sent. The broken pipe or
    reset of that send is kept and the answer already sent is read; only
    when there is none is the send's error raised (a connection failure,
    retried)."""

    _send_error = None

    def request(self, *args, **kwargs):
        try:
            super().request(*args, **kwargs)
        except (BrokenPipeError, ConnectionResetError) as e:
            self._send_error = e

    def getresponse(self):
        try:
            return super().getresponse()
        except (OSError, http.client.HTTPException, AttributeError):
            # AttributeError: the failed send closed the socket
            # (http.client's sock is None), so there is no answer to read.
            if self._send_error is not None:
                raise self._send_error from None
            raise


class _HTTPConnection(_AnswerAfterSendError, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_AnswerAfterSendError, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        kwargs = {"context": self._context}
        if hasattr(self, "_check_hostname"):  # Python < 3.12
            kwargs["check_hostname"] = self._check_hostname
        return self.do_open(_HTTPSConnection, req, **kwargs)


# urlopen's opener (environment proxies included), with connections that
# read an answer sent before the body was.
_opener = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


def _post(opts, body, key, sleep=time.sleep):
    """POSTs body with retries; returns (status, decoded answer, replayed,
    attempts)."""
    headers = {
        "Authorization": "Token " + str(opts["token"]),
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Idempotency-Key": key,
        "User-Agent": "whisperer-client-python/1",
    }
    last = None
    for attempt in range(1, opts["attempts"] + 1):
        retry_after = None
        req = urllib.request.Request(opts["endpoint"], data=body, headers=headers, method="POST")
        try:
            with _opener.open(req, timeout=opts["timeout"]) as resp:
                replayed = resp.headers.get("Idempotent-Replayed") == "true"
                return resp.status, _answer_detail(resp.read(_MAX_ANSWER)), replayed, attempt
        except urllib.error.HTTPError as e:
            status, detail = e.code, _answer_detail(e.read(_MAX_ANSWER))
            e.close()
            if status in (401, 403):
                msg = detail.get("detail") if isinstance(detail, dict) else detail
                hint = (" (check WHISPERER_TOKEN)" if status == 401
                        else " (the token's user must be a publisher: whisperer users create NAME --publisher)")
                raise AuthenticationError("Whisperer refused the token: %s %s%s" % (status, msg, hint),
                                          status, detail, attempt) from None
            if status in (400, 413):
                raise ValidationError("Whisperer refused the event (%s): %s" % (status, json.dumps(detail)),
                                      detail if isinstance(detail, dict) else {"detail": detail}, status) from None
            if status != 429 and status < 500:
                raise PublishError("Whisperer answered %s: %s" % (status, json.dumps(detail)),
                                   status, detail, attempt) from None
            last = (status, detail, "%s %s" % (status, json.dumps(detail)))
            retry_after = e.headers.get("Retry-After")
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, OSError) as e:
            reason = getattr(e, "reason", e)
            last = (None, None, "%s: %s" % (type(reason).__name__, reason))
        if attempt == opts["attempts"]:
            break
        wait = min(opts["max_backoff"], opts["backoff"] * (2 ** (attempt - 1)))
        wait = wait / 2 + random.uniform(0, wait / 2)  # jitter: many clients do not retry in step
        if retry_after and retry_after.isdigit():
            wait = min(opts["max_backoff"], max(wait, float(retry_after)))
        log.warning("whisperer publish attempt %d/%d to %s failed (%s); retrying in %.2fs",
                    attempt, opts["attempts"], opts["endpoint"], last[2], wait)
        sleep(wait)
    raise UnavailableError("Whisperer at %s failed %d attempt(s), the last with %s; the publish may not have "
                           "happened: retry with idempotency_key=%r" % (opts["endpoint"], opts["attempts"], last[2], key),
                           last[0], last[1], opts["attempts"], key)


def _publish(opts, body, key):
    status, answer, replayed, attempts = _post(opts, body, key)
    answer = answer if isinstance(answer, dict) else {}
    return Published(status=status, events=answer.get("events") or [], replayed=replayed,
                     idempotency_key=key, attempts=attempts, detail=answer.get("detail", ""))


def deliver_event(instance, event_type, event_uuid=None, _async=True, serializer=None, idempotency_key=None):
    """Publish instance as an event_type event to every hook subscribed to it.

    event_uuid: re-deliver that stored event (its stored payload; instance
    is not sent), as dj-whisperer's event_uuid does.

    _async=True (dj-whisperer's default) returns at once with a
    ``concurrent.futures.Future`` of the ``Published`` answer: a background
    thread publishes, retrying as configured; a failure is logged on the
    ``whisperer_client`` logger and is the future's exception. Pending
    publishes finish before the interpreter exits.

    _async=False publishes now and asks the server to make each hook's
    first delivery attempt inline: the ``Published`` answer's events carry
    ``delivered``, ``response_http_status`` and ``error``.

    idempotency_key: the key every retry of this call sends; generated once
    per call when not given (``redeliver-<uuid>`` with event_uuid). Pass
    your own — e.g. ``'order-created-%d' % order.pk`` — to make publishes
    from separate calls or processes count once.

    Bad inputs raise ValidationError at once, before anything is queued.
    """
    opts = _options()
    _check_event_type(event_type)
    doc = {"event_type": event_type}
    if event_uuid is not None:
        try:
            event_uuid = uuidlib.UUID(str(event_uuid)).hex
        except ValueError:
            raise ValidationError("event_uuid must be a UUID, not %r" % (str(event_uuid)[:80],)) from None
        doc["event_uuid"] = event_uuid
    else:
        doc["payload"] = serialize(instance, serializer)
    if not _async:
        doc["async"] = False
    if idempotency_key is None:
        idempotency_key = "redeliver-" + event_uuid if event_uuid else uuidlib.uuid4().hex
    _check_key(idempotency_key)
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if len(body) > opts["max_body_bytes"]:
        raise ValidationError("the event is %d bytes as JSON, more than the server accepts (%d, its "
                              "server.max_body_bytes; WHISPERER_MAX_BODY_BYTES here)" % (len(body), opts["max_body_bytes"]))
    if not _async:
        return _publish(opts, body, idempotency_key)
    return _submit(opts, body, idempotency_key)


def _submit(opts, body, key):
    global _executor, _pending
    with _lock:
        if _executor is not None and _executor[0] != os.getpid():
            # A forked worker (gunicorn --preload) inherits the parent's
            # executor without its threads, and its count: it needs its own.
            _executor, _pending = None, 0
        if _pending >= opts["max_pending"]:
            raise QueueFull("%d publishes are still waiting for Whisperer at %s (max_pending); this one was "
                            "not queued" % (_pending, opts["endpoint"]))
        _pending += 1
        if _executor is None:
            _executor = (os.getpid(), concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="whisperer-client"))
        executor = _executor[1]
    try:
        return executor.submit(_background, opts, body, key)
    except BaseException:  # the interpreter is shutting down
        _release()
        raise


def _background(opts, body, key):
    # Logged and released before the future resolves, so whoever waits on
    # it sees both done.
    try:
        return _publish(opts, body, key)
    except Exception as e:
        log.error("whisperer publish failed: %s", e)
        raise
    finally:
        _release()


def _release():
    global _pending
    with _lock:
        _pending -= 1
