"""Who may talk to the metrics endpoint: an IP allow-list, bcrypt basic auth and a login rate limit.

The allow-list is checked on the accepted socket's peer address, before any TLS handshake or byte of
HTTP; basic auth is checked by the WSGI app. bcrypt is slow on purpose, so a verified password is
remembered, and every password that bcrypt must check spends a token of a bucket (exporter-toolkit's
``rate_limit``): a guesser gets 429 after the burst, a scraper that has logged in once never waits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum

import bcrypt

from kiosk.telemetry.web_config import RateLimit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.20.1.2/32", "192.168.0.0/24", "::1"]`` as networks; ValueError names the bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network such as 10.20.1.2/32") from None
    return tuple(networks)


class AllowList:
    """Peer addresses that may connect; an empty list allows everyone."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks = parse_networks(entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, host: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.networks)


class TokenBucket:
    """One token every ``interval_s`` up to ``burst``; starts full (golang.org/x/time/rate's Allow)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        if not self.limit.enabled:
            return True
        with self._lock:
            now = self._clock()
            refill = (now - self._last) / self.limit.interval_s
            self._tokens = min(float(self.limit.burst), self._tokens + refill)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class Login(Enum):
    OK = "ok"
    DENIED = "denied"  # missing, malformed or wrong credentials: 401
    LIMITED = "limited"  # not checked, the login rate limit is spent: 429


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching successes.

    bcrypt is slow on purpose (~0.3 s at cost 12); a scrape every 15 s must not pay it each time, so a
    verified (user, sha256(password)) pair is remembered.  Failures are never cached, checks run one at
    a time, and each check spends a token of the rate limit first: a password guesser is held to the
    configured rate and can keep at most one core busy.
    """

    MAX_CACHED = 64

    def __init__(self, users: Mapping[str, bytes], rate_limit: RateLimit | None = None) -> None:
        if not users:
            raise ValueError("BasicAuth needs at least one user")
        self.users = dict(users)
        self._dummy = next(iter(self.users.values()))  # same cost for unknown users: no timing hint
        self._verified: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        self.bucket = TokenBucket(rate_limit or RateLimit(0.0, 0))

    def check(self, header: str | None) -> Login:
        if not header or header[:6].lower() != "basic ":
            return Login.DENIED
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return Login.DENIED
        user, sep, password = decoded.partition(":")
        if not sep:
            return Login.DENIED
        secret = password.encode("utf-8")
        key = (user, hashlib.sha256(secret).digest())
        if key in self._verified:
            return Login.OK
        if not self.bucket.allow():
            return Login.LIMITED
        hashed = self.users.get(user)
        with self._lock:
            try:
                matches = bcrypt.checkpw(secret, hashed or self._dummy)
            except ValueError:  # a password over bcrypt's 72 bytes
                return Login.DENIED
        if not matches or hashed is None:
            return Login.DENIED
        if len(self._verified) >= self.MAX_CACHED:
            self._verified.clear()
        self._verified.add(key)
        return Login.OK
