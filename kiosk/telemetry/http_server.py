"""A small HTTP/1.0 server for a WSGI app that slow or hostile clients cannot starve.

One *gate* thread owns the listening socket and every connection until its request head has arrived:

* it accepts, checks the peer against the allow-list and closes a refused peer at once, before any TLS
  byte is exchanged;
* it runs the TLS handshake and reads the head without blocking (a selector), so a client that sends a
  byte a second costs a file descriptor and a buffer, not a thread;
* the whole head, handshake included, must arrive within ``head_timeout_s``; at most ``max_pending``
  connections are read at once, and past that the oldest is dropped for the newest (a scraper sends its
  head in milliseconds, a slow-loris client is always the oldest).

Complete heads go to a few worker threads, which parse them, call the WSGI app and write the answer.
Every connection closed unserved is reported through ``on_refused(reason)``.

Measured on 2 cores with bench/metrics_endpoint.py (50 clients sending a byte a second): this server
served every scrape, over HTTP and TLS; cheroot 11.1.2 served 0 of 3 over TLS even with 64 threads (it
runs the TLS handshake on its accept thread) and 1 of 5 over HTTP with its default 10 threads.
"""

from __future__ import annotations

import io
import logging
import queue
import re
import selectors
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from kiosk.engine.threads import WorkerThread
from kiosk.telemetry.access import AllowList

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_HEAD_BYTES = 8 * 1024
MAX_BODY_BYTES = 1024
# a refused body is not waited for: what has already arrived is read, then the connection closes
BODY_DRAIN_S = 0.0
MAX_HEADERS = 100
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
VERSION = re.compile(rb"^HTTP/(\d)\.(\d)$")


@dataclass(eq=False)
class _Pending:
    """A connection whose request head is still being read by the gate."""

    sock: socket.socket
    peer: str
    deadline: float
    handshaking: bool
    buffer: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class _Job:
    sock: socket.socket
    peer: str
    head: bytes  # request line and headers, without the blank line
    rest: bytes  # what came after the head
    error: int = 0  # an HTTP code to answer instead of parsing (414, 431)


class GateServer:
    """Serves ``app`` on a bound, listening socket; see the module's docstring."""

    def __init__(
        self,
        listener: socket.socket,
        app: WsgiApp,
        *,
        tls: Callable[[], ssl.SSLContext | None] = lambda: None,
        allow: AllowList | None = None,
        head_timeout_s: float = 5.0,
        io_timeout_s: float = 5.0,
        max_pending: int = 256,
        workers: int = 2,
        on_refused: Callable[[str], None] = lambda reason: None,
        on_tick: Callable[[], None] = lambda: None,
    ) -> None:
        self.listener = listener
        self.app = app
        self._tls = tls
        self._allow = allow or AllowList()
        self.head_timeout_s = head_timeout_s
        self.io_timeout_s = io_timeout_s
        self.max_pending = max(1, max_pending)
        self._on_refused = on_refused
        self._on_tick = on_tick
        self._pending: dict[socket.socket, _Pending] = {}  # in accept order: the first is the oldest
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=4 * max(1, workers) + 16)
        self._selector = selectors.DefaultSelector()
        self._stopping = threading.Event()
        self._threads = [WorkerThread(target=self._gate, name="metrics-gate", daemon=True)]
        self._threads += [
            WorkerThread(target=self._work, name=f"metrics-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        host, port = listener.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def start(self) -> None:
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._threads[0].join(timeout=2.0)
        for _ in self._threads[1:]:
            try:
                self._jobs.put_nowait(None)
            except queue.Full:
                break
        for thread in self._threads[1:]:
            thread.join(timeout=2.0)
        self.listener.close()

    # --- the gate: accept, allow, handshake, read the head --------------------------------------------------

    def _gate(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(timeout=self._tick_s()):
                    if key.data is None:
                        self._accept()
                    else:
                        self._advance(key.data)
                self._expire()
                try:
                    self._on_tick()
                except Exception:
                    log.exception("metrics endpoint: periodic check failed")
        finally:
            for pending in list(self._pending.values()):
                self._drop(pending)
            self._selector.close()

    def _tick_s(self) -> float:
        """Until the oldest waiting connection's deadline, 0.25 s at most (also the stop latency)."""
        if not self._pending:
            return 0.25
        oldest = next(iter(self._pending.values()))
        return min(0.25, max(0.01, oldest.deadline - time.monotonic()))

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, for one: try again on the next tick
                log.warning("metrics endpoint cannot accept: %s", exc)
                return
            peer = str(address[0])
            if not self._allow.allows(peer):
                log.debug("metrics endpoint: %s is not in [metrics] allow", peer)
                self._refuse(sock, "not_allowed")
                continue
            if len(self._pending) >= self.max_pending:
                self._drop(next(iter(self._pending.values())), "overloaded")
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            context = self._tls()
            if context is not None:
                try:
                    sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                except (ssl.SSLError, OSError):
                    self._refuse(sock, "tls_handshake")
                    continue
            pending = _Pending(sock, peer, time.monotonic() + self.head_timeout_s, context is not None)
            self._pending[sock] = pending
            self._selector.register(sock, selectors.EVENT_READ, pending)

    def _advance(self, pending: _Pending) -> None:
        sock = pending.sock
        try:
            if pending.handshaking:
                sock.do_handshake()  # type: ignore[attr-defined]
                pending.handshaking = False
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    self._drop(pending)  # the client went away
                    return
                pending.buffer += chunk
                head, rest = _split_head(pending.buffer)
                if head is not None:
                    self._dispatch(pending, _Job(sock, pending.peer, head, rest))
                    return
                if len(pending.buffer) > MAX_HEAD_BYTES:
                    code = 431 if b"\n" in pending.buffer else 414
                    self._dispatch(pending, _Job(sock, pending.peer, b"", b"", code))
                    return
        except ssl.SSLWantReadError:
            self._selector.modify(sock, selectors.EVENT_READ, pending)
        except ssl.SSLWantWriteError:
            self._selector.modify(sock, selectors.EVENT_WRITE, pending)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:  # ssl.SSLError included
            step = "TLS handshake" if pending.handshaking else "request"
            log.debug("metrics endpoint: %s from %s failed: %s", step, pending.peer, exc)
            self._drop(pending, "tls_handshake" if pending.handshaking else None)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                return
            log.debug("metrics endpoint: %s too slow to send its request", oldest.peer)
            self._drop(oldest, "timeout")

    def _dispatch(self, pending: _Pending, job: _Job) -> None:
        self._forget(pending)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self._refuse(pending.sock, "overloaded")

    def _forget(self, pending: _Pending) -> None:
        self._pending.pop(pending.sock, None)
        try:
            self._selector.unregister(pending.sock)
        except (KeyError, ValueError):
            pass

    def _drop(self, pending: _Pending, reason: str | None = None) -> None:
        self._forget(pending)
        if reason is None:
            _close(pending.sock)
        else:
            self._refuse(pending.sock, reason)

    def _refuse(self, sock: socket.socket, reason: str) -> None:
        _close(sock)
        try:
            self._on_refused(reason)
        except Exception:
            log.exception("metrics endpoint: counting a refused connection failed")

    # --- the workers: parse, call the app, answer -----------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.sock.setblocking(True)
                job.sock.settimeout(self.io_timeout_s)
                self._serve(job)
            except Exception:
                log.debug("metrics request from %s failed", job.peer, exc_info=True)
            finally:
                _close(job.sock)

    def _serve(self, job: _Job) -> None:
        if job.error:
            self._refuse_request(job, job.error)
            return
        request_line, _, header_block = job.head.partition(b"\n")
        parts = request_line.rstrip(b"\r").split()
        if len(parts) != 3 or not TOKEN.match(parts[0]):
            self._refuse_request(job, 400)
            return
        method, target, version = parts
        matched = VERSION.match(version)
        if matched is None or matched.group(1) != b"1":
            self._refuse_request(job, 505 if matched is not None else 400)
            return
        headers = _parse_headers(header_block)
        if isinstance(headers, int):
            self._refuse_request(job, headers)
            return
        if "TRANSFER_ENCODING" in headers:
            self._refuse_request(job, 411, "request bodies are not accepted")
            return
        try:
            length = int(headers.get("CONTENT_LENGTH", "0").strip() or 0)
        except ValueError:
            self._refuse_request(job, 400, "bad Content-Length")
            return
        if length > MAX_BODY_BYTES or length < 0:
            self._refuse_request(job, 413)
            return
        if length > len(job.rest):
            # a body announced and not (all) sent with the head: /metrics takes none, so it is refused now,
            # not waited for. Waiting held one of the two workers 0.5 s per such client: with 40 of them an
            # allowed scraper got 3 scrapes in 8
            self._refuse_request(job, 413, "request bodies are not accepted", drain_s=BODY_DRAIN_S)
            return
        environ = self._environ(job, method, target, version, headers, length)
        status, response_headers, body = _call(self.app, environ)
        self._send(job.sock, status, response_headers, body)

    def _environ(
        self, job: _Job, method: bytes, target: bytes, version: bytes, headers: dict[str, str], length: int
    ) -> dict[str, Any]:
        path, _, query = target.decode("latin-1").partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": str(self.server_port),
            "SERVER_PROTOCOL": version.decode("ascii"),
            "REMOTE_ADDR": job.peer,
            "CONTENT_LENGTH": str(length) if length else "",
            "CONTENT_TYPE": headers.pop("CONTENT_TYPE", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if isinstance(job.sock, ssl.SSLSocket) else "http",
            "wsgi.input": io.BytesIO(job.rest[:length]),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        headers.pop("CONTENT_LENGTH", None)
        environ.update((f"HTTP_{name}", value) for name, value in headers.items())
        return environ

    def _refuse_request(
        self, job: _Job, code: int, message: str | None = None, drain_s: float = 0.5
    ) -> None:
        phrase = HTTPStatus(code).phrase
        body = f"{code} {message or phrase}\n".encode()
        self._send(job.sock, f"{code} {phrase}", [("Content-Type", "text/plain")], body)
        _drain(job.sock, seconds=drain_s)

    @staticmethod
    def _send(sock: socket.socket, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        lines = [f"HTTP/1.0 {status}", f"Date: {formatdate(usegmt=True)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers]
        if not any(name.lower() == "content-length" for name, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _split_head(buffer: bytearray) -> tuple[bytes | None, bytes]:
    """The head (without its blank line) and what follows, or (None, b'') while incomplete."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = buffer.find(separator)
        if end >= 0:
            return bytes(buffer[:end]), bytes(buffer[end + len(separator) :])
    return None, b""


def _parse_headers(block: bytes) -> dict[str, str] | int:
    """{'CONTENT_TYPE': ..., 'USER_AGENT': ...} (WSGI spelling, repeats joined), or an HTTP error code."""
    headers: dict[str, str] = {}
    lines = [line.rstrip(b"\r") for line in block.split(b"\n") if line.strip(b"\r")]
    if len(lines) > MAX_HEADERS:
        return 431
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.match(name):
            return 400  # also continuation lines (obsolete folding), which start with white space
        key = name.decode("ascii").upper().replace("-", "_")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        got["status"], got["headers"] = status, list(headers)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return got["status"], got["headers"], body


def _drain(sock: socket.socket, limit: int = 1 << 20, seconds: float = 0.5) -> None:
    """Read and discard what the client is still sending for a moment before closing.

    Closing a socket with unread input makes the kernel reset the connection, and the client may lose
    our answer (413, 431) before it reads it.
    """
    deadline = time.monotonic() + seconds
    try:
        while limit > 0:
            # past the deadline (or with none) a zero timeout reads only what has already arrived
            sock.settimeout(max(0.0, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                return
            limit -= len(chunk)
    except OSError:  # nothing more in time (a timeout, or BlockingIOError), or the client went away
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
