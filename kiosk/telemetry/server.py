"""The kiosk's embedded HTTP endpoint: ``/metrics`` for Prometheus and ``/healthz`` for a watchdog.

prometheus_client's own ``make_wsgi_app`` renders the metrics; this module wraps it (never copies it)
with what a kiosk on a museum network needs:

* an optional exporter-toolkit ``web-config.yml`` (TLS, client certificates, bcrypt basic auth), the
  format every Prometheus operator already knows;
* a server that cannot be disturbed by a bad client: daemon threads, at most ``max_connections`` at a
  time, a deadline and a size limit for the request head, request bodies refused, and the TLS
  handshake done on the connection's own thread (plain HTTP to the TLS port fails there, quietly).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

import bcrypt
import yaml
from prometheus_client import make_wsgi_app

from kiosk.config import MetricsConfig
from kiosk.errors import ConfigError
from kiosk.telemetry.metrics import KioskMetrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Mapping[str, bool]]
REALM = "kiosk metrics"
PATHS = ("/metrics", "/healthz")

# --- web-config.yml ---------------------------------------------------------------------------------------

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    # Python's ssl cannot demand a certificate without verifying it, so this one verifies too, against
    # client_ca_file (which it therefore needs): stricter than exporter-toolkit, never looser.
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
BCRYPT_HASH = re.compile(r"^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True)
class WebConfig:
    """A parsed web-config.yml: a TLS context (or None), bcrypt users, extra response headers."""

    path: Path
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def load_web_config(path: str | Path) -> WebConfig:
    """Parse and check a web-config.yml; any problem is a ConfigError naming the file and the key."""
    path = Path(path).expanduser()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: web config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML{line} ({problem})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of {', '.join(TOP_KEYS)}")
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (expected one of {', '.join(TOP_KEYS)})")

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {problem}")

    tls = raw.get("tls_server_config")
    context = _tls_context(path, tls, fail) if tls is not None else None
    users = _users(raw.get("basic_auth_users"), fail)
    headers = _headers(raw.get("http_server_config"), fail)
    if users and context is None:
        log.warning("%s: basic auth without TLS sends passwords in clear text", path)
    return WebConfig(path=path, ssl_context=context, users=users, headers=headers)


def _tls_context(path: Path, tls: object, fail: Callable[[str, str], ConfigError]) -> ssl.SSLContext:
    if not isinstance(tls, dict):
        raise fail("tls_server_config", "expected a mapping with cert_file and key_file")
    for key in tls:
        if key not in TLS_KEYS:
            raise fail(f"tls_server_config.{key}", f"not supported here (supported: {', '.join(TLS_KEYS)})")

    def file(key: str) -> Path | None:
        value = tls.get(key)
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise fail(f"tls_server_config.{key}", f"expected a file name, got {value!r}")
        found = Path(value).expanduser()
        found = found if found.is_absolute() else path.parent / found
        if not found.is_file():
            raise fail(f"tls_server_config.{key}", f"file {found} not found")
        return found

    cert, key = file("cert_file"), file("key_file")
    if cert is None or key is None:
        raise fail(f"tls_server_config.{'cert_file' if cert is None else 'key_file'}", "missing")
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type not in CLIENT_AUTH:
        raise fail(
            "tls_server_config.client_auth_type",
            f"expected one of {', '.join(CLIENT_AUTH)}, got {auth_type!r}",
        )
    ca = file("client_ca_file")
    if ca is not None and auth_type == "NoClientCert":
        raise fail("tls_server_config.client_ca_file", "given but client_auth_type is NoClientCert")
    if ca is None and auth_type != "NoClientCert":
        raise fail("tls_server_config.client_ca_file", f"needed for client_auth_type {auth_type}")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for version_key, attribute, default in (
        ("min_version", "minimum_version", "TLS12"),
        ("max_version", "maximum_version", None),
    ):
        version = tls.get(version_key, default)
        if version is None:
            continue
        if version not in TLS_VERSIONS:
            raise fail(f"tls_server_config.{version_key}", f"expected one of {', '.join(TLS_VERSIONS)}")
        try:
            setattr(context, attribute, TLS_VERSIONS[version])
        except (ValueError, ssl.SSLError) as exc:
            raise fail(f"tls_server_config.{version_key}", f"not available here ({exc})") from None
    try:
        ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii", errors="replace").strip())
    except ValueError:
        raise fail("tls_server_config.cert_file", f"{cert} is not a PEM certificate") from None
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise fail("tls_server_config.key_file", f"{key} does not load with {cert.name} ({reason})") from None
    if ca is not None:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise fail("tls_server_config.client_ca_file", f"cannot load {ca} ({reason})") from None
    context.verify_mode = CLIENT_AUTH[auth_type]
    return context


def _users(raw: object, fail: Callable[[str, str], ConfigError]) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail("basic_auth_users", "expected a mapping of user name to bcrypt hash")
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise fail("basic_auth_users", f"{user!r} is not a valid user name")
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            raise fail(
                f"basic_auth_users.{user}", "expected a bcrypt hash ($2y$..., e.g. from htpasswd -nBC 10)"
            )
        users[user] = hashed.encode("ascii")
    return users


def _headers(raw: object, fail: Callable[[str, str], ConfigError]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise fail("http_server_config", "expected a mapping")
    for key in raw:
        if key not in ("headers", "http2"):
            raise fail(f"http_server_config.{key}", "not supported here (supported: headers, http2)")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v for k, v in headers.items()
    ):
        raise fail("http_server_config.headers", "expected a mapping of header name to text")
    return tuple(headers.items())


# --- basic auth ------------------------------------------------------------------------------------------


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching successes.

    bcrypt is slow on purpose (~0.3 s at cost 12); a scrape every 15 s must not pay it each time, so a
    verified (user, sha256(password)) pair is remembered.  Failures are never cached, and checks run
    one at a time so a password-guessing client can hold at most one core.
    """

    MAX_CACHED = 64

    def __init__(self, users: Mapping[str, bytes]) -> None:
        if not users:
            raise ValueError("BasicAuth needs at least one user")
        self._users = dict(users)
        self._dummy = next(iter(self._users.values()))  # same cost for unknown users: no timing hint
        self._verified: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        secret = password.encode("utf-8")
        key = (user, hashlib.sha256(secret).digest())
        if key in self._verified:
            return True
        hashed = self._users.get(user)
        with self._lock:
            try:
                matches = bcrypt.checkpw(secret, hashed or self._dummy)
            except ValueError:  # a password over bcrypt's 72 bytes
                return False
        if not matches or hashed is None:
            return False
        if len(self._verified) >= self.MAX_CACHED:
            self._verified.clear()
        self._verified.add(key)
        return True


# --- the WSGI application ----------------------------------------------------------------------------------


def health_status(stages: Mapping[str, bool], failed: Collection[str] = ()) -> str:
    """'ok' when every stage is up, 'degraded' when a down stage has failed, else 'loading'."""
    if stages and all(stages.values()):
        return "ok"
    if any(not up and stage in failed for stage, up in stages.items()):
        return "degraded"
    return "loading"


class MetricsApp:
    """WSGI app: ``/metrics`` (prometheus_client's app), ``/healthz``; 401, 404 and 405 around them."""

    def __init__(
        self,
        metrics: KioskMetrics,
        health: HealthCheck,
        failed_stages: Callable[[], Collection[str]] | None = None,
        auth: BasicAuth | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.metrics = metrics
        self._prometheus = make_wsgi_app(metrics.registry)
        self._health = health
        self._failed = failed_stages
        self._auth = auth
        self._headers = list(headers)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            status, headers, body = self._respond(environ)
        except Exception:
            log.exception("metrics endpoint failed on %s", environ.get("PATH_INFO"))
            status, headers, body = "500 Internal Server Error", [("Content-Type", "text/plain")], b"error\n"
        headers = [*headers, *self._headers, ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def _respond(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        if self._auth is not None and not self._auth.check(environ.get("HTTP_AUTHORIZATION")):
            self.metrics.auth_failures.inc()
            if path == "/metrics":
                self.metrics.count_scrape(401)
            headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", f'Basic realm="{REALM}"')]
            return "401 Unauthorized", headers, b"Unauthorized\n"
        if path not in PATHS:
            return "404 Not Found", [("Content-Type", "text/plain")], b"Not Found: try /metrics or /healthz\n"
        if method not in ("GET", "HEAD"):
            if path == "/metrics":
                self.metrics.count_scrape(405)
            headers = [("Content-Type", "text/plain"), ("Allow", "GET, HEAD")]
            return "405 Method Not Allowed", headers, b"Method Not Allowed\n"
        if path == "/metrics":
            return self._scrape(environ)
        return self._healthz()

    def _scrape(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        got: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            got["status"], got["headers"] = status, headers

        body = b"".join(self._prometheus({**environ, "REQUEST_METHOD": "GET"}, capture))
        self.metrics.count_scrape(got["status"].split(" ", 1)[0])
        return got["status"], got["headers"], body

    def _healthz(self) -> tuple[str, list[tuple[str, str]], bytes]:
        stages = {str(k): bool(v) for k, v in self._health().items()}
        failed = self._failed() if self._failed is not None else ()
        status = health_status(stages, failed)
        body = json.dumps({"status": status, "stages": stages}, sort_keys=True).encode() + b"\n"
        code = "200 OK" if status == "ok" else "503 Service Unavailable"
        return code, [("Content-Type", "application/json")], body


# --- the HTTP server ----------------------------------------------------------------------------------------


class _RequestTooLarge(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class _RequestHandler(WSGIRequestHandler):
    """One request per connection, read under a deadline and a size limit, answered by the WSGI app."""

    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # errors get a status line, even for garbage (no HTTP/0.9)
    wbufsize = 64 * 1024  # one send for the headers and body (flushed in finish)
    disable_nagle_algorithm = True
    max_head_bytes = 8 * 1024
    max_body_bytes = 1024

    server: _ThreadingServer

    def setup(self) -> None:
        self.timeout = self.server.timeout_s  # for each read and write
        self.head_deadline_s = 2 * self.server.timeout_s  # for the whole request head (slow clients)
        super().setup()

    def handle(self) -> None:
        try:
            head, rest = self._read_head()
        except _RequestTooLarge as exc:
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self._refuse(exc.code)
            return
        except (TimeoutError, OSError):
            return  # a slow, silent or vanished client: just close
        if head is None:
            return
        line, _, header_block = head.partition(b"\n")
        self.raw_requestline = line + b"\n"
        socket_file, self.rfile = self.rfile, io.BytesIO(header_block + rest)
        socket_file.close()
        if not self.parse_request():  # it has answered 400, 431 or 505
            self._drain()
            return
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "request bodies are not accepted")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._refuse(400, "bad Content-Length")
            return
        if length > self.max_body_bytes or length < 0:
            self._refuse(413)
            return
        handler = ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())

    def _refuse(self, code: int, message: str | None = None) -> None:
        self.send_error(code, message)
        self._drain()

    def _drain(self, limit: int = 1 << 20, seconds: float = 0.5) -> None:
        """Send the error now, then read and discard what the client is still sending for a moment.

        Closing a socket with unread input makes the kernel reset the connection, and the client may
        lose our answer (413, 431) before it reads it.
        """
        try:
            self.wfile.flush()
            deadline = time.monotonic() + seconds
            while limit > 0 and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                limit -= len(chunk)
        except OSError:
            pass

    def _read_head(self) -> tuple[bytes | None, bytes]:
        """Bytes up to the blank line after the headers, and whatever came after them."""
        deadline = time.monotonic() + self.head_deadline_s
        buffer = bytearray()
        try:
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    return bytes(buffer[: end + 2]), bytes(buffer[end + 4 :])
                end = buffer.find(b"\n\n")
                if end >= 0:
                    return bytes(buffer[: end + 1]), bytes(buffer[end + 2 :])
                if len(buffer) > self.max_head_bytes:
                    raise _RequestTooLarge(431 if b"\n" in buffer else 414)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("request head too slow")
                self.connection.settimeout(min(remaining, self.timeout))
                chunk = self.connection.recv(4096)
                if not chunk:
                    return None, b""
                buffer += chunk
        finally:
            self.connection.settimeout(self.timeout)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        ssl_context: ssl.SSLContext | None,
        timeout_s: float,
        max_connections: int,
    ) -> None:
        self.address_family = family
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would ask DNS for the host's full name; an offline kiosk has none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.debug("metrics endpoint busy: closing a connection from %s", client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        # The handshake runs here, on the connection's thread, under the socket timeout: a slow or
        # plain-HTTP client fails its own handshake and never blocks the accept loop.
        request.settimeout(self.timeout_s)
        try:
            secure = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        try:
            self.RequestHandlerClass(secure, client_address, self)
        finally:
            try:
                secure.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("metrics request from %s failed", client_address[0], exc_info=True)


class MetricsServer:
    """Serves a :class:`MetricsApp` on ``listen_address:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        metrics: KioskMetrics,
        health: HealthCheck,
        listen_address: str = "127.0.0.1",
        port: int = 0,
        web_config: str | Path | None = None,
        failed_stages: Callable[[], Collection[str]] | None = None,
        *,
        timeout_s: float = 5.0,
        max_connections: int = 16,
    ) -> None:
        self.listen_address = listen_address
        self.requested_port = port
        self.web_config = load_web_config(web_config) if web_config else None
        web = self.web_config
        auth = BasicAuth(web.users) if web is not None and web.users else None
        self.app = MetricsApp(metrics, health, failed_stages, auth, web.headers if web is not None else ())
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._httpd: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(
        cls,
        config: MetricsConfig,
        metrics: KioskMetrics,
        health: HealthCheck,
        failed_stages: Callable[[], Collection[str]] | None = None,
        base_dir: str | Path | None = None,
    ) -> MetricsServer:
        """``web_config`` relative to ``base_dir`` (the configuration file's folder) when given."""
        web_config: Path | None = None
        if config.web_config:
            web_config = Path(config.web_config).expanduser()
            if not web_config.is_absolute() and base_dir is not None:
                web_config = Path(base_dir) / web_config
        return cls(metrics, health, config.listen_address, config.port, web_config, failed_stages)

    @property
    def tls(self) -> bool:
        return self.web_config is not None and self.web_config.ssl_context is not None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return int(self._httpd.server_address[1]) if self._httpd is not None else self.requested_port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9464`` (wildcard addresses become loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
            self.listen_address, self.listen_address
        )
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._httpd is not None:
            return
        address = self.listen_address
        try:
            info = socket.getaddrinfo(
                address or None, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, sockaddr = info[0]
            self._httpd = _ThreadingServer(
                (sockaddr[0], self.requested_port),
                family,
                self.web_config.ssl_context if self.web_config is not None else None,
                self._timeout_s,
                self._max_connections,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"[metrics] cannot listen on {address}:{self.requested_port} ({reason})"
            ) from None
        self._httpd.set_app(self.app)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics on %s/metrics", self.url)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
