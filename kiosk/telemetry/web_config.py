"""exporter-toolkit ``web-config.yml``: parsing, checking and watching for changes.

The format every Prometheus operator already knows: ``tls_server_config`` (certificate, key, client
certificates), ``basic_auth_users`` (bcrypt hashes), ``http_server_config.headers`` and ``rate_limit``
(``interval``, ``burst``: a token bucket). Every problem is a one-line :class:`ConfigError` naming the file
and the key. :class:`WebConfigWatcher` re-reads the file (and the certificate files it names) when one of
them changes, so certificates rotate without a restart; a broken new file keeps the old configuration.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

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
TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config", "rate_limit")
BCRYPT_HASH = re.compile(r"^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True)
class RateLimit:
    """exporter-toolkit's ``rate_limit``: one token every ``interval_s``, at most ``burst`` saved up.

    Here a token is spent only by a login that bcrypt must check (credentials not already verified):
    a scraper that has logged in once is never throttled, a password guesser is, after ``burst``.
    ``interval_s`` 0 turns the limit off.
    """

    interval_s: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0


# Used when basic auth is on and the file has no rate_limit (exporter-toolkit has none by default).
DEFAULT_RATE_LIMIT = RateLimit(interval_s=1.0, burst=10)


@dataclass(frozen=True)
class WebConfig:
    """A parsed web-config.yml: a TLS context (or None), bcrypt users, extra headers, the login limit."""

    path: Path
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT
    # the files this configuration was read from (the yml and the certificates it names)
    files: tuple[Path, ...] = ()


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
            raise ConfigError(
                _one_line(f"{path}: {key}: unknown key (expected one of {', '.join(TOP_KEYS)})")
            )

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(_one_line(f"{path}: {key}: {problem}"))

    for key in ("tls_server_config", "basic_auth_users"):
        if key in raw and not raw[key]:  # "tls_server_config:" with no value turned TLS off, silently
            raise fail(key, "has no value (remove the key to serve without it)")
    tls = raw.get("tls_server_config")
    files = [path]
    context = _tls_context(path, tls, fail, files) if tls is not None else None
    users = _users(raw.get("basic_auth_users"), fail)
    headers = _headers(raw.get("http_server_config"), fail)
    rate_limit = _rate_limit(raw.get("rate_limit"), fail)
    if users and context is None:
        log.warning("%s: basic auth without TLS sends passwords in clear text", path)
    return WebConfig(path, context, users, headers, rate_limit, tuple(files))


def _tls_context(
    path: Path, tls: object, fail: Callable[[str, str], ConfigError], files: list[Path]
) -> ssl.SSLContext:
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
        files.append(found)
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


DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("1s", "500ms", "1m30s", "0"); ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return 0.0
    total, position = 0.0, 0
    for match in DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise ValueError(text)
    return total


def _rate_limit(raw: object, fail: Callable[[str, str], ConfigError]) -> RateLimit:
    if raw is None:
        return DEFAULT_RATE_LIMIT
    if not isinstance(raw, dict):
        raise fail("rate_limit", "expected a mapping with interval and burst")
    for key in raw:
        if key not in ("interval", "burst"):
            raise fail(f"rate_limit.{key}", "unknown key (expected interval, burst)")
    interval = raw.get("interval", "0")
    try:
        if interval == 0:
            interval = "0"
        if not isinstance(interval, str):
            raise ValueError(interval)
        seconds = parse_duration(interval)
    except ValueError:
        raise fail(
            "rate_limit.interval", f'expected a duration such as "1s" or "500ms", got {interval!r}'
        ) from None
    burst = raw.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise fail("rate_limit.burst", f"expected a whole number, 0 or more, got {burst!r}")
    if seconds > 0 and burst < 1:
        raise fail("rate_limit.burst", "must be 1 or more when interval is set (0 would refuse every login)")
    return RateLimit(interval_s=seconds, burst=burst)


# --- watching for changes -------------------------------------------------------------------------------


def _signature(files: tuple[Path, ...]) -> tuple[tuple[int, int, int], ...]:
    """What changes when any of the files is rewritten or replaced (mtime, size, inode)."""
    found = []
    for path in files:
        try:
            stat = os.stat(path)
            found.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except OSError:
            found.append((0, -1, 0))
    return tuple(found)


class WebConfigWatcher:
    """Holds the current :class:`WebConfig` and re-reads it when its files change.

    ``poll`` is cheap (a few ``stat`` calls, at most once every ``interval_s``); the server calls it from
    its accept loop. A file that fails to load keeps the previous configuration, logs one line and calls
    ``on_reload(False)``; it is not read again until it changes once more.
    """

    def __init__(
        self,
        path: str | Path,
        interval_s: float = 2.0,
        on_reload: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.current = load_web_config(path)
        self.path = self.current.path
        self.interval_s = interval_s
        self._on_reload = on_reload
        self._clock = clock
        self._seen = _signature(self.current.files)
        self._next = clock() + interval_s
        self._lock = threading.Lock()

    def poll(self, force: bool = False) -> bool:
        """Re-read if a file changed; True when a new configuration was taken."""
        now = self._clock()
        if not force and now < self._next:
            return False
        with self._lock:
            self._next = now + self.interval_s
            # the files the new yml names may differ; the old list still tells whether anything changed
            seen = _signature(self.current.files)
            if seen == self._seen:
                return False
            self._seen = seen
            try:
                fresh = load_web_config(self.path)
            except ConfigError as exc:
                log.warning("web config not reloaded, keeping the previous one: %s", exc)
                if self._on_reload is not None:
                    self._on_reload(False)
                return False
            lost = weakened(self.current, fresh)
            if lost:  # an emptied or truncated file must not open /metrics to anyone
                log.error(
                    "web config %s not reloaded: it would turn %s off; restart the kiosk to serve without it",
                    self.path,
                    lost,
                )
                if self._on_reload is not None:
                    self._on_reload(False)
                return False
            self.current = fresh
            self._seen = _signature(fresh.files)
        log.info("web config %s reloaded", self.path)
        if self._on_reload is not None:
            self._on_reload(True)
        return True


def weakened(current: WebConfig, fresh: WebConfig) -> str:
    """What a reload would turn off ("TLS", "basic auth"), or '' when it keeps both as they are."""
    lost = []
    if current.ssl_context is not None and fresh.ssl_context is None:
        lost.append("TLS")
    if current.users and not fresh.users:
        lost.append("basic auth")
    return " and ".join(lost)


def _one_line(text: str) -> str:
    """An error stays one line whatever the file holds: a line break in a key is shown as \\n."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
