"""The endpoint under attack (issue 15): slow-loris, password guessing, peers outside the allow-list.

Each test here failed against the previous server (a thread per connection, 16 at most, wsgiref), which
let 1 of 17 scrapes through 50 slow clients, never rate-limited logins and counted no refusal.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time

import pytest

from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.server import MetricsServer

from .conftest import Pki, request, samples, value, write_web_config

SLOW_CLIENTS = 50


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def refused(server: MetricsServer, reason: str, **kwargs) -> float:
    return value(
        samples(request(server, **kwargs).body), "kiosk_metrics_connections_refused_total", reason=reason
    )


class SlowLoris:
    """``count`` connections that each send one byte of a request head (or a TLS ClientHello) every
    ``interval_s``, reconnecting whenever the server closes one: the attack of issue 15, on one thread."""

    def __init__(self, port: int, count: int = SLOW_CLIENTS, interval_s: float = 1.0, tls: bool = False):
        self.port, self.count, self.interval_s = port, count, interval_s
        head = b"GET /metrics HTTP/1.1\r\nHost: kiosk\r\n" + b"X-Slow: yes\r\n" * 300
        self.data = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 600 if tls else head
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-loris", daemon=True)

    def __enter__(self) -> SlowLoris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _connect(self) -> list | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        except OSError:
            return None
        sock.setblocking(False)
        self.connections += 1
        return [sock, 0]

    def _run(self) -> None:
        slots = [self._connect() for _ in range(self.count)]
        try:
            while not self._stop.wait(self.interval_s):
                for i, slot in enumerate(slots):
                    if slot is None:
                        slots[i] = self._connect()
                        continue
                    sock, sent = slot
                    try:
                        sock.send(self.data[sent : sent + 1])
                        slot[1] = (sent + 1) % len(self.data)
                    except BlockingIOError:
                        pass
                    except OSError:  # closed by the server: come back, as an attacker would
                        sock.close()
                        slots[i] = self._connect()
        finally:
            for slot in slots:
                if slot is not None:
                    slot[0].close()


def scrape_for(server: MetricsServer, seconds: float, every_s: float, **kwargs) -> tuple[int, int]:
    """(successful scrapes, scrapes) by a scraper that gives each scrape 3 s, as Prometheus would."""
    ok = total = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        total += 1
        try:
            ok += request(server, timeout=3.0, **kwargs).status == 200
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(every_s)
    return ok, total


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_slow_loris_of_50_connections_does_not_starve_the_scraper(metrics, serve, pki, tls):
    web = None
    if tls:
        web = write_web_config(
            pki.folder,
            f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n",
            "slow-loris-tls.yml",
        )
    server = serve(metrics, web_config=web, timeout_s=2.0, allow=["127.0.0.1/32"])
    context = pki.client_context() if tls else None
    with SlowLoris(server.port, tls=tls, interval_s=0.5) as attack:
        time.sleep(0.5)  # all 50 connected and dribbling
        ok, total = scrape_for(server, seconds=8.0, every_s=0.25, context=context)
    assert attack.connections >= 2 * SLOW_CLIENTS  # each was cut at the deadline and came back
    assert total >= 20 and ok / total >= 0.99, f"{ok} of {total} scrapes succeeded"
    assert refused(server, "timeout", context=context) >= SLOW_CLIENTS


class BodyHolders:
    """``count`` clients that each send a whole request head announcing a body (Content-Length: 100) and
    then never send it, coming back whenever the server closes them."""

    HEAD = b"GET /metrics HTTP/1.1\r\nHost: kiosk\r\nContent-Length: 100\r\n\r\n"

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="body-holders", daemon=True)

    def __enter__(self) -> BodyHolders:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            sock.sendall(self.HEAD)
        except OSError:
            return None
        sock.setblocking(False)
        self.connections += 1
        return sock

    def _run(self) -> None:
        socks = [self._connect() for _ in range(self.count)]
        try:
            while not self._stop.wait(0.5):  # the slow loris's pace: each comes back within 0.5 s
                for i, sock in enumerate(socks):
                    if sock is None:
                        socks[i] = self._connect()
                        continue
                    try:
                        if sock.recv(4096) == b"":  # answered and closed: come back
                            raise OSError
                    except BlockingIOError:
                        pass
                    except OSError:
                        sock.close()
                        socks[i] = self._connect()
        finally:
            for sock in socks:
                if sock is not None:
                    sock.close()


@pytest.mark.timeout(60)
def test_clients_that_announce_a_body_and_never_send_it_do_not_starve_the_scraper(metrics, serve):
    """/metrics takes no body: one announced and not sent is refused at once, not waited for (each held
    a worker 0.5 s: with 40 such clients an allowed scraper got 3 scrapes in 8)."""
    server = serve(metrics, timeout_s=2.0, allow=["127.0.0.1/32"])
    with BodyHolders(server.port, SLOW_CLIENTS) as attack:
        time.sleep(0.5)
        ok, total = scrape_for(server, seconds=6.0, every_s=0.2)
    assert attack.connections >= 2 * SLOW_CLIENTS  # each was answered and came back
    assert total >= 20 and ok / total >= 0.99, f"{ok} of {total} scrapes succeeded"


def test_a_peer_outside_the_allow_list_is_closed_before_tls_and_counted(metrics, serve, pki):
    yml = write_web_config(
        pki.folder,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n",
        "allow-tls.yml",
    )
    server = serve(metrics, web_config=yml, allow=["127.0.0.1/32"])
    context = pki.client_context()
    # Linux routes all of 127/8 to loopback: 127.0.0.2 is another peer on this machine
    for _ in range(3):
        start = time.monotonic()
        with socket.create_connection(
            ("127.0.0.1", server.port), timeout=5, source_address=("127.0.0.2", 0)
        ) as s:
            with pytest.raises((ssl.SSLError, OSError)):  # closed without a ServerHello
                context.wrap_socket(s, server_hostname="127.0.0.1")
        assert time.monotonic() - start < 1.0  # at accept, not after a timeout
    found = samples(request(server, context=context).body)
    assert value(found, "kiosk_metrics_connections_refused_total", reason="not_allowed") == 3
    assert value(found, "kiosk_metrics_connections_refused_total", reason="tls_handshake") == 0


def test_allow_list_networks_and_plain_http(metrics, serve):
    server = serve(metrics, allow=["10.20.1.2/32", "127.0.0.0/30"])
    assert request(server).status == 200
    with socket.create_connection(
        ("127.0.0.1", server.port), timeout=5, source_address=("127.0.0.9", 0)
    ) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        try:
            assert s.recv(100) == b""  # closed without a word
        except ConnectionResetError:
            pass  # or reset, as the request was never read
    assert refused(server, "not_allowed") == 1


def test_a_thousand_wrong_passwords_are_rate_limited_after_the_burst_and_counted(
    metrics, serve, tmp_path, password_hash
):
    yml = write_web_config(
        tmp_path,
        f"basic_auth_users:\n  prometheus: '{password_hash}'\nrate_limit:\n  interval: 1h\n  burst: 20\n",
    )
    server = serve(metrics, web_config=yml)
    # the scraper logged in before (bcrypt checked it once: one token of the burst of 20)
    assert request(server, headers=basic("prometheus", "secret")).status == 200
    codes: list[int] = []
    lock = threading.Lock()

    def guess(thread: int) -> None:
        for attempt in range(125):
            reply = request(server, headers=basic("prometheus", f"guess-{thread}-{attempt}"), timeout=10)
            with lock:
                codes.append(reply.status)
            if attempt == 60 and thread == 0:  # mid-attack, the real scraper is not throttled
                assert request(server, headers=basic("prometheus", "secret")).status == 200

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(codes) == 1000
    assert codes.count(401) == 19 and codes.count(429) == 981
    limited = request(server, headers=basic("prometheus", "one-more"))
    assert limited.status == 429 and int(limited.headers["Retry-After"]) == 3600
    found = samples(request(server, headers=basic("prometheus", "secret")).body)
    assert value(found, "kiosk_metrics_auth_failures_total") == 19
    assert value(found, "kiosk_metrics_connections_refused_total", reason="rate_limited") == 982
    assert value(found, "kiosk_metrics_scrapes_total", code="401") == 19
    assert value(found, "kiosk_metrics_scrapes_total", code="429") == 982


def test_wrong_passwords_are_held_to_the_configured_rate(metrics, serve, tmp_path, password_hash):
    yml = write_web_config(
        tmp_path,
        f"basic_auth_users:\n  prometheus: '{password_hash}'\nrate_limit:\n  interval: 200ms\n  burst: 2\n",
    )
    server = serve(metrics, web_config=yml)
    start = time.monotonic()
    codes = [request(server, headers=basic("prometheus", "wrong")).status for _ in range(30)]
    for _ in range(5):  # slower than the bucket refills: some get checked again
        time.sleep(0.1)
        codes.append(request(server, headers=basic("prometheus", "wrong")).status)
    elapsed = time.monotonic() - start
    checked = codes.count(401)
    assert codes[:2] == [401, 401] and codes.count(429) == len(codes) - checked
    assert 3 <= checked <= 2 + elapsed / 0.2 + 1  # the burst, then one every 200 ms


def test_without_rate_limit_in_the_file_logins_get_the_kiosk_default(metrics, serve, tmp_path, password_hash):
    yml = write_web_config(tmp_path, f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    server = serve(metrics, web_config=yml)
    codes = [request(server, headers=basic("prometheus", "wrong")).status for _ in range(15)]
    assert codes[:10] == [401] * 10 and codes.count(429) >= 3  # burst 10, then one a second
    off = write_web_config(
        tmp_path,
        f"basic_auth_users:\n  prometheus: '{password_hash}'\nrate_limit:\n  interval: 0\n",
        "off.yml",
    )
    unlimited = serve(KioskMetrics(), web_config=off)
    assert {request(unlimited, headers=basic("prometheus", "wrong")).status for _ in range(15)} == {401}


def test_tls_clients_that_never_finish_the_handshake_are_cut_at_the_deadline(metrics, serve, pki: Pki):
    yml = write_web_config(
        pki.folder,
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n",
        "deadline-tls.yml",
    )
    server = serve(metrics, web_config=yml, timeout_s=0.5)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        start = time.monotonic()
        assert request(server, context=pki.client_context()).status == 200  # not queued behind it
        assert silent.recv(100) == b""
        assert time.monotonic() - start < 2.0
    finally:
        silent.close()
    assert refused(server, "timeout", context=pki.client_context()) == 1
