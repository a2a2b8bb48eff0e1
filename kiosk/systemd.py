"""A tiny, dependency-free ``sd_notify``: tell systemd the kiosk is ready, alive, and what it is doing.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to a ``Type=notify``
service; each message is one datagram of ``KEY=value`` lines.  Without the variable every call is a
no-op that returns False, so the kiosk runs the same from a terminal.  ``WATCHDOG_USEC`` (set with
``WatchdogSec=``) says how often systemd expects ``WATCHDOG=1``; ping at half that.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "ready", "status", "stopping", "watchdog", "watchdog_interval_s"]


def _address(env: dict[str, str] | os._Environ[str]) -> str | None:
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in ("/", "@"):
        return None
    return "\0" + address[1:] if address[0] == "@" else address


def notify(*fields: str, env: dict[str, str] | None = None) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``) as one message; True when a message was sent."""
    address = _address(os.environ if env is None else env)
    if address is None or not fields:
        return False
    message = "\n".join(fields).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError:
        return False
    return True


def ready(status_text: str = "") -> bool:
    return notify("READY=1", *((f"STATUS={_one_line(status_text)}",) if status_text else ()))


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    return notify(f"STATUS={_one_line(text)}")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_interval_s(env: dict[str, str] | None = None, default: float = 5.0) -> float:
    """Half of ``WATCHDOG_USEC`` when it is set for this process, else ``default``."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return default
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return default
    return max(0.05, int(usec) / 2_000_000)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]
