"""The kiosk's embedded HTTP endpoint: ``/metrics`` for Prometheus and ``/healthz`` for a watchdog.

prometheus_client's own ``make_wsgi_app`` renders the metrics; this module wraps it (never copies it)
with what a kiosk on a museum network needs:

* an optional exporter-toolkit ``web-config.yml`` (TLS, client certificates, bcrypt basic auth, a login
  ``rate_limit``), re-read when it or its certificates change (:mod:`kiosk.telemetry.web_config`);
* an IP allow-list checked when a connection is accepted, before TLS (:mod:`kiosk.telemetry.access`);
* a server that slow clients cannot starve: the request head, handshake included, must arrive within a
  deadline, hundreds of slow connections cost no threads, and every connection it closes unserved is
  counted (:mod:`kiosk.telemetry.http_server`).
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import make_wsgi_app

from kiosk.config import MetricsConfig
from kiosk.errors import ConfigError
from kiosk.telemetry.access import AllowList, BasicAuth, Login
from kiosk.telemetry.http_server import GateServer
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.web_config import WebConfig, WebConfigWatcher, load_web_config

__all__ = ["BasicAuth", "MetricsApp", "MetricsServer", "WebConfig", "health_status", "load_web_config"]

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Mapping[str, bool]]
REALM = "kiosk metrics"
PATHS = ("/metrics", "/healthz")


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
        self.configure(auth, headers)

    def configure(self, auth: BasicAuth | None, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Swap the credentials and extra headers (a reloaded web config); requests in flight keep theirs."""
        self._auth, self._headers = auth, list(headers)

    @property
    def auth(self) -> BasicAuth | None:
        return self._auth

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        extra = self._headers  # the list in force when the request came; a reload swaps it whole
        try:
            status, headers, body = self._respond(environ)
        except Exception:
            log.exception("metrics endpoint failed on %s", environ.get("PATH_INFO"))
            status, headers, body = "500 Internal Server Error", [("Content-Type", "text/plain")], b"error\n"
        headers = [*headers, *extra, ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def _respond(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        auth = self._auth
        login = auth.check(environ.get("HTTP_AUTHORIZATION")) if auth is not None else Login.OK
        if login is Login.LIMITED:
            self.metrics.count_refused("rate_limited")
            if path == "/metrics":
                self.metrics.count_scrape(429)
            wait = max(1, math.ceil(auth.bucket.limit.interval_s)) if auth is not None else 1
            headers = [("Content-Type", "text/plain"), ("Retry-After", str(wait))]
            return "429 Too Many Requests", headers, b"Too Many Requests: login attempts are rate-limited\n"
        if login is Login.DENIED:
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


# --- the server ------------------------------------------------------------------------------------------


def _auth_for(web: WebConfig | None, previous: BasicAuth | None = None) -> BasicAuth | None:
    """BasicAuth for a (re)loaded config; an unchanged user list and limit keep their cache and bucket."""
    if web is None or not web.users:
        return None
    if previous is not None and previous.users == dict(web.users) and previous.bucket.limit == web.rate_limit:
        return previous
    return BasicAuth(web.users, web.rate_limit)


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
        allow: Iterable[str] = (),
        timeout_s: float = 5.0,
        max_connections: int = 256,
        reload_interval_s: float = 2.0,
        workers: int = 2,
    ) -> None:
        self.metrics = metrics
        self.listen_address = listen_address
        self.requested_port = port
        try:
            self.allow = AllowList(allow)
        except ValueError as exc:
            raise ConfigError(f"[metrics] allow: {exc}") from None
        self._watcher = (
            WebConfigWatcher(web_config, reload_interval_s, self._reloaded) if web_config else None
        )
        web = self.web_config
        self.app = MetricsApp(
            metrics, health, failed_stages, _auth_for(web), web.headers if web is not None else ()
        )
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._reload_interval_s = reload_interval_s
        self._workers = workers
        self._gate: GateServer | None = None

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
        return cls(
            metrics,
            health,
            config.listen_address,
            config.port,
            resolve_web_config(config, base_dir),
            failed_stages,
            allow=config.allow,
            timeout_s=config.request_timeout_s,
            max_connections=config.max_connections,
            reload_interval_s=config.reload_interval_s,
        )

    @property
    def web_config(self) -> WebConfig | None:
        """The web config in force (the last one that loaded)."""
        return self._watcher.current if self._watcher is not None else None

    @property
    def tls(self) -> bool:
        web = self.web_config
        return web is not None and web.ssl_context is not None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._gate.server_port if self._gate is not None else self.requested_port

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
        return self._gate is not None

    def reload_web_config(self) -> bool:
        """Re-read the web config now if its files changed (the server also checks on its own)."""
        return self._watcher.poll(force=True) if self._watcher is not None else False

    def _reloaded(self, ok: bool) -> None:
        self.metrics.count_web_config_reload(ok)
        if ok and self._watcher is not None:
            web = self._watcher.current
            self.app.configure(_auth_for(web, self.app.auth), web.headers)

    def _tick(self) -> None:
        if self._watcher is not None and self._reload_interval_s > 0:
            self._watcher.poll()

    def start(self) -> None:
        if self._gate is not None:
            return
        address = self.listen_address
        try:
            info = socket.getaddrinfo(
                address or None, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, sockaddr = info[0]
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((sockaddr[0], self.requested_port, *sockaddr[2:]))
                listener.listen(128)
            except OSError:
                listener.close()
                raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"[metrics] cannot listen on {address}:{self.requested_port} ({reason})"
            ) from None
        self._gate = GateServer(
            listener,
            self.app,
            tls=lambda: self.web_config.ssl_context if self.web_config is not None else None,
            allow=self.allow,
            head_timeout_s=self._timeout_s,
            io_timeout_s=self._timeout_s,
            max_pending=self._max_connections,
            workers=self._workers,
            on_refused=self.metrics.count_refused,
            on_tick=self._tick,
        )
        self._gate.start()
        log.info("metrics on %s/metrics", self.url)

    def stop(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.stop()


def resolve_web_config(config: MetricsConfig, base_dir: str | Path | None = None) -> Path | None:
    """``[metrics] web_config`` as a path, relative to ``base_dir`` (the config file's folder) if given."""
    if not config.web_config:
        return None
    path = Path(config.web_config).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path
