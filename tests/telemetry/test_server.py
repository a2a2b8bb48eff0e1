"""The endpoint: paths, methods, health, bad clients, basic auth, TLS and client certificates."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time

import pytest

from kiosk.errors import ConfigError
from kiosk.telemetry import access as access_module
from kiosk.telemetry.metrics import KioskMetrics
from kiosk.telemetry.server import MetricsServer, load_web_config

from .conftest import Pki, request, samples, value, write_web_config


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def raw_exchange(server: MetricsServer, data: bytes, timeout: float = 5.0, half_close: bool = True) -> bytes:
    """Send bytes, read until the server closes; b'' if it closed without a word."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)  # done sending: the server need not wait for more
        except OSError:
            pass  # the server may close before reading everything
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response else 0


# --- paths and methods -----------------------------------------------------------------------------------


def test_paths_methods_and_head(metrics, serve):
    server = serve(metrics)
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    get = request(server)
    assert get.status == 200 and get.headers["Content-Type"].startswith("text/plain")
    assert b"kiosk_turns_total" in get.body
    head = request(server, method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["Content-Length"]) > 1000
    assert request(server, "/").status == 404
    assert request(server, "/metrics/../etc/passwd").status == 404
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        reply = request(server, method=method)
        assert reply.status == 405 and reply.headers["Allow"] == "GET, HEAD"
    assert request(server, "/healthz", method="POST").status == 405
    found = samples(request(server).body)
    # GET and HEAD: a scrape is counted after it is rendered
    assert value(found, "kiosk_metrics_scrapes_total", code="200") == 2
    assert value(found, "kiosk_metrics_scrapes_total", code="405") == 4


def test_healthz(metrics, serve):
    stages = {"asr": True, "tts": True}
    failed: set[str] = set()
    server = serve(metrics, health=lambda: dict(stages), failed_stages=lambda: failed)
    reply = request(server, "/healthz")
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body) == {"status": "ok", "stages": {"asr": True, "tts": True}}
    stages["tts"] = False
    reply = request(server, "/healthz")
    assert reply.status == 503 and json.loads(reply.body)["status"] == "loading"
    failed.add("tts")
    assert json.loads(request(server, "/healthz").body) == {
        "status": "degraded",
        "stages": {"asr": True, "tts": False},
    }


def test_oversized_and_malformed_requests_are_refused(metrics, serve):
    server = serve(metrics)
    assert status_of(raw_exchange(server, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")) == 414
    many = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100) for i in range(200))
    oversized_head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
    assert status_of(raw_exchange(server, oversized_head)) == 431
    # a client that keeps its side open still reads the answer (the server drains before closing)
    assert status_of(raw_exchange(server, oversized_head, half_close=False)) == 431
    big_body = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"z" * 1000
    assert status_of(raw_exchange(server, big_body)) == 413
    chunked = (
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert status_of(raw_exchange(server, chunked)) == 411
    assert status_of(raw_exchange(server, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")) == 400
    assert status_of(raw_exchange(server, b"GET /metrics HTTP/1.1\r\nContent-Length: -5\r\n\r\n")) == 413
    assert request(server).status == 200  # still serving


def test_request_line_headers_and_query_reach_the_app(metrics, serve):
    server = serve(metrics)
    only = request(server, "/metrics?name[]=kiosk_metrics_auth_failures_total")  # prometheus_client's filter
    assert only.status == 200 and samples(only.body) == {("kiosk_metrics_auth_failures_total", ()): 0.0}
    assert request(server, "/%6Detrics").status == 200  # percent-decoded like any WSGI server
    assert status_of(raw_exchange(server, b"GET /metrics HTTP/2.0\r\n\r\n")) == 505
    assert status_of(raw_exchange(server, b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n")) == 400
    assert status_of(raw_exchange(server, b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n")) == 400
    many = b"".join(b"X-%d: y\r\n" % i for i in range(101))
    assert status_of(raw_exchange(server, b"GET /metrics HTTP/1.1\r\n" + many + b"\r\n")) == 431
    reply = raw_exchange(server, b"GET /metrics HTTP/1.0\n\n")  # bare newlines are accepted
    assert status_of(reply) == 200 and b"\r\nConnection: close\r\n" in reply


def test_slow_and_silent_clients_are_dropped_without_blocking_scrapes(metrics, serve):
    server = serve(metrics, timeout_s=0.3)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    trickle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        start = time.monotonic()
        assert request(server).status == 200  # a silent client holds no one up
        # one byte every 0.1 s: within each read's timeout, past the deadline for the whole head
        for byte in b"GET /metrics HTTP/1.1\r\n":
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        assert silent.recv(100) == b""  # closed by the server
        assert trickle.recv(100) == b""
        assert time.monotonic() - start < 4.0
    finally:
        silent.close()
        trickle.close()
    assert request(server).status == 200


def test_past_max_connections_the_oldest_waiting_one_is_dropped_and_counted(metrics, serve):
    server = serve(metrics, max_connections=2, timeout_s=5.0)
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)
        # the scraper's connection is the newest: it is served, the oldest idle one is closed for it
        assert request(server, timeout=2).status == 200
        assert idle[0].recv(100) == b""
        found = samples(request(server).body)  # one waiting and this one: two, nobody dropped
    finally:
        for sock in idle:
            sock.close()
    assert value(found, "kiosk_metrics_connections_refused_total", reason="overloaded") == 1
    assert value(found, "kiosk_metrics_connections_refused_total", reason="timeout") == 0


def test_port_in_use_is_a_one_line_error(metrics, serve):
    first = serve(metrics)
    second = MetricsServer(metrics, lambda: {}, "127.0.0.1", first.port)
    with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{first.port}"):
        second.start()


# --- basic auth ------------------------------------------------------------------------------------------


def test_basic_auth_right_wrong_missing(metrics, serve, tmp_path, password_hash, monkeypatch):
    config = write_web_config(tmp_path, f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    server = serve(metrics, web_config=config)
    calls = []
    real_checkpw = access_module.bcrypt.checkpw
    monkeypatch.setattr(access_module.bcrypt, "checkpw", lambda p, h: calls.append(p) or real_checkpw(p, h))

    missing = request(server)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert request(server, headers=basic("prometheus", "wrong")).status == 401
    assert request(server, headers=basic("nobody", "secret")).status == 401
    assert request(server, headers={"Authorization": "Basic !!!notbase64"}).status == 401
    assert request(server, headers={"Authorization": "Bearer abc"}).status == 401
    assert request(server, "/healthz").status == 401
    assert request(server, headers=basic("prometheus", "x" * 100)).status == 401  # over bcrypt's 72 bytes
    wrong_checks = len(calls)
    assert wrong_checks == 3  # wrong password, unknown user (checked against a dummy), too long

    for _ in range(5):
        assert request(server, headers=basic("prometheus", "secret")).status == 200
    assert len(calls) == wrong_checks + 1  # bcrypt once, then the cache
    assert request(server, headers=basic("prometheus", "wrong")).status == 401
    assert len(calls) == wrong_checks + 2  # failures are never cached

    found = samples(request(server, headers=basic("prometheus", "secret")).body)
    assert value(found, "kiosk_metrics_auth_failures_total") == 8
    assert value(found, "kiosk_metrics_scrapes_total", code="401") == 7
    assert value(found, "kiosk_metrics_scrapes_total", code="200") == 5


# --- TLS -------------------------------------------------------------------------------------------------


def tls_config(pki: Pki, folder, extra: str = "", auth: str = "NoClientCert") -> str:
    ca = f"  client_ca_file: {pki.ca}\n" if auth != "NoClientCert" else ""
    return (
        "tls_server_config:\n"
        f"  cert_file: {pki.server_cert.name}\n"  # relative to the yml file
        f"  key_file: {pki.server_key.name}\n"
        f"  client_auth_type: {auth}\n" + ca + extra
    )


def test_tls_with_basic_auth_and_plain_http_refused(metrics, serve, pki, password_hash):
    yml = write_web_config(
        pki.folder,
        tls_config(pki, pki.folder) + f"basic_auth_users:\n  ops: {password_hash}\n",
        "tls-auth.yml",
    )
    server = serve(metrics, web_config=yml)
    assert server.tls and server.url.startswith("https://")
    context = pki.client_context()
    assert request(server, context=context).status == 401
    assert request(server, context=context, headers=basic("ops", "secret")).status == 200
    # plain HTTP to the TLS port fails in the handshake, and the server carries on
    answer = raw_exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not answer.startswith(b"HTTP/")
    found = samples(request(server, context=context, headers=basic("ops", "secret")).body)
    assert value(found, "kiosk_metrics_connections_refused_total", reason="tls_handshake") == 1
    # a client that does not trust our CA refuses us
    with pytest.raises(ssl.SSLError):
        request(server, context=ssl.create_default_context())


def test_client_certificates_required(metrics, serve, pki):
    yml = write_web_config(
        pki.folder, tls_config(pki, pki.folder, auth="RequireAndVerifyClientCert"), "mtls.yml"
    )
    server = serve(metrics, web_config=yml)
    good = pki.client_context(pki.client_cert, pki.client_key)
    assert request(server, context=good).status == 200
    with pytest.raises(OSError):  # no certificate
        request(server, context=pki.client_context())
    with pytest.raises(OSError):  # a certificate from another CA
        request(server, context=pki.client_context(pki.rogue_cert, pki.rogue_key))
    assert request(server, "/healthz", context=good).status == 200


def test_client_certificates_verified_if_given(metrics, serve, pki):
    yml = write_web_config(
        pki.folder, tls_config(pki, pki.folder, auth="VerifyClientCertIfGiven"), "optional.yml"
    )
    server = serve(metrics, web_config=yml)
    assert request(server, context=pki.client_context()).status == 200
    assert request(server, context=pki.client_context(pki.client_cert, pki.client_key)).status == 200
    with pytest.raises(OSError):
        request(server, context=pki.client_context(pki.rogue_cert, pki.rogue_key))


# --- broken web configs -------------------------------------------------------------------------------------


TLS = "tls_server_config:\n  cert_file: SERVER_CRT\n  key_file: SERVER_KEY\n"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "tls_server_config.cert_file"),
        ("tls_server_config:\n  cert_file: SERVER_CRT\n", "tls_server_config.key_file"),
        (TLS + "  client_auth_type: Maybe\n", "tls_server_config.client_auth_type"),
        (TLS + "  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file"),
        (TLS + "  client_ca_file: SERVER_CRT\n", "tls_server_config.client_ca_file"),  # with NoClientCert
        (TLS.replace("key_file: SERVER_KEY", "key_file: CLIENT_KEY"), "tls_server_config.key_file"),
        (TLS.replace("cert_file: SERVER_CRT", "cert_file: SERVER_KEY"), "tls_server_config.cert_file"),
        (TLS + "  cipher_suites: [x]\n", "tls_server_config.cipher_suites"),
        (TLS + "  min_version: TLS99\n", "tls_server_config.min_version"),
        ("basic_auth_users:\n  alice: plaintext-password\n", "basic_auth_users.alice"),
        ("basic_auth_users: [alice]\n", "basic_auth_users"),
        ("basic_auth: {}\n", "basic_auth"),
        ("tls_server_config: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_broken_web_config_is_one_line_naming_file_and_key(pki, tmp_path, text, key):
    text = (
        text.replace("SERVER_CRT", str(pki.server_cert))
        .replace("SERVER_KEY", str(pki.server_key))
        .replace("CLIENT_KEY", str(pki.client_key))
    )
    path = write_web_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        MetricsServer(KioskMetrics(), lambda: {}, web_config=path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and key in message, message


def test_missing_web_config_file(tmp_path):
    with pytest.raises(ConfigError, match="web config file not found"):
        load_web_config(tmp_path / "nope.yml")


def test_empty_web_config_means_plain_http(tmp_path):
    web = load_web_config(write_web_config(tmp_path, ""))
    assert web.ssl_context is None and not web.users
