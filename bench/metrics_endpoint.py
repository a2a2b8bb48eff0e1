"""The metrics endpoint under issue 15's attacks: slow-loris and password guessing.

.venv/bin/python bench/metrics_endpoint.py [--seconds 20] [--cheroot]

Slow-loris: 50 loopback connections each send one byte of a request head (or of a TLS ClientHello) a
second, reconnecting when closed, while a scraper asks for /metrics every 0.5 s with a 3 s timeout; then
the same beside 50 clients that send a whole head announcing a body and never send the body.
Passwords: 1,000 wrong basic-auth passwords from 8 threads (bcrypt cost 10, the default rate_limit).
--cheroot runs the slow-loris against cheroot's WSGI server too (pip install cheroot first); it is not
a dependency: on 2 cores it served 0 of 3 scrapes over TLS even with 64 threads.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bcrypt  # noqa: E402

from bench.machine import describe  # noqa: E402
from kiosk.telemetry.metrics import KioskMetrics  # noqa: E402
from kiosk.telemetry.server import MetricsServer  # noqa: E402
from tests import certs  # noqa: E402
from tests.telemetry.test_server_hardening import SLOW_CLIENTS, BodyHolders, SlowLoris  # noqa: E402


def scrape_loop(port: int, seconds: float, context: ssl.SSLContext | None) -> tuple[int, int]:
    ok = total = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        total += 1
        try:
            if context is None:
                conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            else:
                conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=3, context=context)
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            response.read()
            conn.close()
            ok += response.status == 200
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    return ok, total


def slow_loris(port: int, seconds: float, context: ssl.SSLContext | None) -> str:
    with SlowLoris(port, tls=context is not None, interval_s=1.0):
        time.sleep(1.0)
        ok, total = scrape_loop(port, seconds, context)
    return f"{ok}/{total} scrapes ok ({100 * ok / max(total, 1):.0f} %; target >= 99 %)"


def slow_loris_and_body_holders(port: int, seconds: float) -> str:
    """50 slow-loris connections and 50 that announce a body and never send it, at once (plain HTTP)."""
    with SlowLoris(port, interval_s=1.0), BodyHolders(port, SLOW_CLIENTS):
        time.sleep(1.0)
        ok, total = scrape_loop(port, seconds, None)
    return f"{ok}/{total} scrapes ok ({100 * ok / max(total, 1):.0f} %; target >= 99 %)"


def passwords(folder: Path) -> str:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=10)).decode()
    yml = folder / "auth.yml"
    yml.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    server = MetricsServer(KioskMetrics(), lambda: {}, port=0, web_config=yml)
    server.start()
    codes: list[int] = []

    def guess(thread: int) -> None:
        for attempt in range(125):
            token = base64.b64encode(f"prometheus:x{thread}-{attempt}".encode()).decode()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
            response = conn.getresponse()
            response.read()
            conn.close()
            codes.append(response.status)

    start = time.monotonic()
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    server.stop()
    return (
        f"{len(codes)} in {elapsed:.1f} s: {codes.count(401)} checked (401), {codes.count(429)} refused (429)"
    )


def cheroot_slow_loris(folder: Path, seconds: float, tls: bool, threads: int) -> str:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter
    from prometheus_client import make_wsgi_app

    server = wsgi.Server(("127.0.0.1", 0), make_wsgi_app(KioskMetrics().registry), numthreads=threads)
    context = None
    if tls:
        server.ssl_adapter = BuiltinSSLAdapter(str(folder / "server.crt"), str(folder / "server.key"))
        context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        return slow_loris(server.bind_addr[1], seconds, context)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cheroot", action="store_true")
    args = parser.parse_args()
    print(describe(), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="docent-endpoint-"))
    certs.make_ca(folder, "ca")
    certs.issue(folder, "server", "ca", certs.SERVER_FOR_LOOPBACK)
    yml = folder / "tls.yml"
    yml.write_text(
        f"tls_server_config:\n  cert_file: {folder / 'server.crt'}\n  key_file: {folder / 'server.key'}\n"
    )
    for tls in (False, True):
        server = MetricsServer(KioskMetrics(), lambda: {}, port=0, web_config=yml if tls else None)
        server.start()
        context = ssl.create_default_context(cafile=str(folder / "ca.crt")) if tls else None
        print(f"slow-loris, {'https' if tls else 'http'}: {slow_loris(server.port, args.seconds, context)}")
        if not tls:
            result = slow_loris_and_body_holders(server.port, args.seconds)
            print(f"slow-loris and body holders, 50 of each, http: {result}")
        server.stop()
    print(f"wrong passwords: {passwords(folder)}")
    if args.cheroot:
        for tls, threads in ((False, 10), (False, 64), (True, 64)):
            result = cheroot_slow_loris(folder, args.seconds, tls, threads)
            print(f"cheroot, {'https' if tls else 'http'}, {threads} threads: {result}")


if __name__ == "__main__":
    main()
