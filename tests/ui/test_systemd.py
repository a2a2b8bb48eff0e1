"""kiosk.systemd: sd_notify over NOTIFY_SOCKET, and a no-op without it."""

from __future__ import annotations

import os
import socket
import uuid

from kiosk import systemd


def _listen(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


def test_messages_reach_the_notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    with _listen(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.ready("screen up,\nloading models")
        assert sock.recv(4096) == b"READY=1\nSTATUS=screen up, loading models"
        assert systemd.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert systemd.status("ready")
        assert sock.recv(4096) == b"STATUS=ready"
        assert systemd.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_work(monkeypatch):
    name = f"docent-test-{uuid.uuid4().hex}"
    with _listen("\0" + name) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_systemd_every_call_is_a_quiet_no_op(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.ready() and not systemd.watchdog() and not systemd.status("x")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    assert not systemd.watchdog()


def test_watchdog_interval_is_half_of_what_systemd_asks():
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert systemd.watchdog_interval_s({}) == 5.0
    other = str(os.getpid() + 1)
    assert systemd.watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": other}) == 5.0
    assert (
        systemd.watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    )
