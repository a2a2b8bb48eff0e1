"""web-config.yml: rate_limit, re-reading on change (certificate rotation), `kiosk config check`, [metrics]."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import build_config
from kiosk.errors import ConfigError
from kiosk.telemetry.access import AllowList, TokenBucket
from kiosk.telemetry.server import MetricsServer
from kiosk.telemetry.web_config import DEFAULT_RATE_LIMIT, RateLimit, load_web_config, parse_duration
from tests import certs

from .conftest import Pki, request, samples, value, write_web_config


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- rate_limit ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("0", 0.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
    ],
)
def test_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1 s", "1d", "-1s", "1s2"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_rate_limit_in_web_config(tmp_path):
    web = load_web_config(write_web_config(tmp_path, 'rate_limit:\n  interval: "1s"\n  burst: 20\n'))
    assert web.rate_limit == RateLimit(1.0, 20)
    assert (
        load_web_config(write_web_config(tmp_path, "rate_limit:\n  interval: 0\n")).rate_limit.enabled
        is False
    )
    assert load_web_config(write_web_config(tmp_path, "")).rate_limit == DEFAULT_RATE_LIMIT


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("rate_limit: 5\n", "rate_limit"),
        ("rate_limit:\n  interval: fast\n  burst: 2\n", "rate_limit.interval"),
        ("rate_limit:\n  interval: 10\n  burst: 2\n", "rate_limit.interval"),
        ("rate_limit:\n  interval: 1s\n  burst: 0\n", "rate_limit.burst"),
        ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst"),
        ("rate_limit:\n  interval: 1s\n  burst: 2\n  per_ip: true\n", "rate_limit.per_ip"),
    ],
)
def test_broken_rate_limit_is_one_line(tmp_path, text, key):
    path = write_web_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value) and key in str(caught.value)


def test_token_bucket_refills_one_token_per_interval():
    now = [100.0]
    bucket = TokenBucket(RateLimit(interval_s=2.0, burst=3), clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.9
    assert bucket.allow() is False
    now[0] += 0.2
    assert bucket.allow() is True and bucket.allow() is False
    now[0] += 100
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_allow_list():
    allow = AllowList(["10.20.1.2/32", "192.168.5.0/24", "::1"])
    assert allow.allows("10.20.1.2") and allow.allows("192.168.5.77") and allow.allows("::1")
    assert allow.allows("::ffff:10.20.1.2")  # an IPv4 peer on a dual-stack socket
    assert not allow.allows("10.20.1.3") and not allow.allows("127.0.0.1") and not allow.allows("garbage")
    assert AllowList().allows("203.0.113.9")  # empty: anyone
    with pytest.raises(ValueError, match="10.20.1.300"):
        AllowList(["10.20.1.300"])


# --- re-reading on change --------------------------------------------------------------------------------


def served_certificate(server: MetricsServer, context: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True) or b""


def der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def wait_for(condition, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def replace_text(path: Path, text: str) -> None:
    """Write beside, then rename over: how an operator's tooling replaces a file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.mark.timeout(60)
def test_certificates_rotate_without_a_restart_and_a_broken_file_keeps_the_old_one(
    metrics, serve, pki: Pki, tmp_path, password_hash, caplog
):
    for name in ("server.crt", "server.key"):
        shutil.copy(pki.folder / name, tmp_path / name)
    certs.make_ca(tmp_path, "new-ca")
    certs.issue(tmp_path, "renewed", "new-ca", certs.SERVER_FOR_LOOPBACK)
    tls = "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    yml = write_web_config(tmp_path, tls.format(cert="server.crt", key="server.key"))
    server = serve(metrics, web_config=yml, reload_interval_s=0.1)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_verify_locations(cafile=str(tmp_path / "new-ca.crt"))
    assert served_certificate(server, context) == der(pki.server_cert)

    # 1. a new certificate and key, named in a rewritten yml
    replace_text(yml, tls.format(cert="renewed.crt", key="renewed.key"))
    assert wait_for(lambda: served_certificate(server, context) == der(tmp_path / "renewed.crt"))

    # 2. the certificate files replaced in place, the yml untouched
    shutil.copy(tmp_path / "server.crt", tmp_path / "swap.crt")
    shutil.copy(tmp_path / "server.key", tmp_path / "swap.key")
    os.replace(tmp_path / "swap.key", tmp_path / "renewed.key")
    os.replace(tmp_path / "swap.crt", tmp_path / "renewed.crt")
    assert wait_for(lambda: served_certificate(server, context) == der(pki.server_cert))

    # 3. a broken file: one line in the log, counted, the previous configuration stays in force
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kiosk.telemetry.web_config"):
        replace_text(yml, tls.format(cert="renewed.crt", key="missing.key"))
        time.sleep(0.6)
    assert served_certificate(server, context) == der(pki.server_cert)
    warnings = [r.getMessage() for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(warnings) == 1 and "missing.key" in warnings[0] and "\n" not in warnings[0]

    # 4. fixed, with basic auth added: the new users apply to the next request
    replace_text(
        yml,
        tls.format(cert="renewed.crt", key="renewed.key") + f"basic_auth_users:\n  ops: '{password_hash}'\n",
    )
    assert wait_for(lambda: request(server, context=context).status == 401)
    found = samples(request(server, context=context, headers=basic("ops", "secret")).body)
    errors = value(found, "kiosk_metrics_web_config_reloads_total", result="error")
    assert errors >= 1 and value(found, "kiosk_metrics_web_config_reloads_total", result="ok") >= 3


@pytest.mark.parametrize(
    "emptied",
    ["", "tls_server_config:\n", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"],
    ids=["truncated", "tls without a value", "basic auth dropped"],
)
def test_a_reload_that_would_open_the_endpoint_is_refused(
    metrics, serve, pki: Pki, tmp_path, password_hash, caplog, emptied
):
    """TLS and basic auth are on; the file is truncated, or loses a section, while the kiosk runs: the
    previous settings stay (one ERROR line, a counted failure) until a restart with the new file."""
    for name in ("server.crt", "server.key"):
        shutil.copy(pki.folder / name, tmp_path / name)
    full = f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  ops: '{password_hash}'\n"
    yml = write_web_config(tmp_path, full)
    server = serve(metrics, web_config=yml, reload_interval_s=0.1)
    context = ssl.create_default_context(cafile=str(pki.ca))
    assert request(server, context=context).status == 401
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kiosk.telemetry.web_config"):
        if emptied:
            replace_text(yml, emptied)
        else:
            yml.write_text("")  # truncated in place
        assert server.reload_web_config() is False
    assert request(server, context=context).status == 401  # still a password, still TLS
    assert request(server, context=context, headers=basic("ops", "wrong")).status == 401
    refused = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage(), [r.getMessage() for r in refused]
    if emptied != "tls_server_config:\n":  # a key with no value is an error of the file itself
        assert refused[0].levelno == logging.ERROR and "would turn" in refused[0].getMessage()
    found = samples(request(server, context=context, headers=basic("ops", "secret")).body)
    assert value(found, "kiosk_metrics_web_config_reloads_total", result="error") >= 1
    assert served_certificate(server, context) == der(pki.server_cert)  # TLS stays on


def test_reload_interval_zero_never_rereads(metrics, serve, tmp_path, password_hash):
    yml = write_web_config(tmp_path, "")
    server = serve(metrics, web_config=yml, reload_interval_s=0)
    replace_text(yml, f"basic_auth_users:\n  ops: '{password_hash}'\n")
    time.sleep(0.3)
    assert request(server).status == 200
    assert server.reload_web_config() is True  # on demand it still reads
    assert request(server).status == 401


# --- [metrics] and `kiosk config check` -------------------------------------------------------------------


def test_metrics_section_keys_are_validated():
    config = build_config(
        {"metrics": {"allow": ["10.20.1.2/32"], "request_timeout_s": 2, "max_connections": 64}}
    )
    assert config.metrics.allow == ["10.20.1.2/32"] and config.metrics.request_timeout_s == 2.0
    for section, match in [
        ({"allow": ["10.20.1.300/32"]}, r"\[metrics\] allow: '10.20.1.300/32' is not an IP"),
        ({"allow": "10.20.1.2"}, r"\[metrics\] allow: expected a list"),
        ({"max_connections": 0}, r"\[metrics\] max_connections"),
        ({"request_timeout_s": 0}, r"\[metrics\] request_timeout_s"),
    ]:
        with pytest.raises(ConfigError, match=match):
            build_config({"metrics": section})


def test_config_check_fails_in_one_line_for_a_missing_or_broken_web_config(tmp_path, capsys):
    config = tmp_path / "kiosk.toml"
    config.write_text('[metrics]\nweb_config = "web.yml"\n')
    assert main(["config", "check", str(config)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "web.yml: web config file not found" in error
    (tmp_path / "web.yml").write_text("basic_auth_users:\n  ops: plaintext\n")
    assert main(["config", "check", str(config)]) == 2
    assert "basic_auth_users.ops" in capsys.readouterr().err
    (tmp_path / "web.yml").write_text("rate_limit:\n  interval: 1s\n  burst: 5\n")
    assert main(["config", "check", str(config)]) == 0
    assert ": OK" in capsys.readouterr().out
