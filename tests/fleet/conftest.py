"""Fixtures for the fleet pack: real Prometheus and Alertmanager processes on loopback, a kiosk endpoint
serving a recorded exposition, and a webhook receiver.

Everything binds 127.0.0.1 on a free port, lives in a temporary folder, and is stopped at teardown; every
wait has a deadline. The pieces are plain classes collected by a :class:`FleetLab`, so a later end-to-end
test can point the same Prometheus at real ``kiosk listen`` processes instead of the recorded endpoint.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

FLEET_TESTS = Path(__file__).resolve().parent
REPO = FLEET_TESTS.parents[1]
PACKAGING = REPO / "packaging"
PROMETHEUS_DIR = PACKAGING / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER_CONFIG = PACKAGING / "alertmanager" / "alertmanager.yml"
DASHBOARD = PACKAGING / "grafana" / "dashboards" / "docent-fleet.json"
EXPOSITION_FIXTURE = FLEET_TESTS / "fixtures" / "kiosk_exposition.txt"

INSTALL_HINT = "install Debian's prometheus and prometheus-alertmanager (scripts/install.sh --test does)"


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found on PATH: {INSTALL_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- the kiosk endpoint ------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")
_GROWING = ("_total", "_bucket", "_count", "_sum")


class ExpositionServer:
    """Serves a recorded ``/metrics`` exposition on loopback, like a kiosk.

    Counters and histogram series grow by ``growth`` (a fraction of their recorded value) with every
    scrape, so ``rate()`` and ``histogram_quantile()`` have data; gauges stay as recorded. ``stop()``
    closes the port, which Prometheus sees as the kiosk going down.
    """

    def __init__(self, text: str, growth: float = 0.02, port: int = 0) -> None:
        self.text = text
        self.growth = growth
        self.scrapes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = server.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"kiosk-{self.port}", daemon=True
        )
        self._thread.start()

    def render(self) -> str:
        with self._lock:
            self.scrapes += 1
            factor = 1.0 + self.growth * self.scrapes
        out = []
        for line in self.text.splitlines():
            m = _SAMPLE.match(line)
            if m and m.group("name").endswith(_GROWING):
                value = float(m.group("value")) * factor
                line = f"{m.group('name')}{m.group('labels') or ''} {value!r}"
            out.append(line)
        return "\n".join(out) + "\n"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# --- the webhook receiver ----------------------------------------------------------------------------------


class WebhookReceiver:
    """A loopback HTTP server that keeps every JSON document POSTed to it, with the path it came to."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    document = json.loads(body)
                except ValueError:
                    self.send_error(400)
                    return
                with receiver._cond:
                    receiver.received.append((self.path, document))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def wait_for(
        self, match: Callable[[str, dict[str, Any]], bool], timeout: float, what: str
    ) -> tuple[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for path, document in self.received:
                    if match(path, document):
                        return path, document
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [
                        (p, [a.get("labels", {}).get("alertname") for a in d.get("alerts", [])])
                        for p, d in self.received
                    ]
                    raise AssertionError(
                        f"timed out after {timeout:.0f} s waiting for {what}; received {got}"
                    )
                self._cond.wait(left)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# --- Prometheus and Alertmanager processes --------------------------------------------------------------


class _Process:
    """A server binary run on loopback with its output in a log file; ``stop()`` always reaps it."""

    name = "process"

    def __init__(self, args: list[str], workdir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{self.name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            return http_get(f"{self.url}/-/ready", timeout=2)[0] == 200

        try:
            wait_until(ready, timeout, f"{self.name} to be ready on {self.url}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class PrometheusServer(_Process):
    name = "prometheus"

    def __init__(self, binary: str, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        args = [
            binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--storage.tsdb.retention.time=1h",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]
        super().__init__(args, workdir, port)

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        document = json.loads(body)
        if status != 200 or document.get("status") != "success":
            raise AssertionError(f"{path} {params} -> HTTP {status}: {document.get('error', body[:300])}")
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (scalars come back as one unlabelled sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, seconds: float, step: str = "1s") -> list[dict[str, Any]]:
        end = time.time()
        return self.api("query_range", query=expr, start=end - seconds, end=end, step=step)["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets", state="active")["activeTargets"]


class AlertmanagerServer(_Process):
    name = "alertmanager"

    def __init__(self, binary: str, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        args = [
            binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={workdir / 'data'}",
            "--log.level=warn",
        ]
        super().__init__(args, workdir, port)

    def alerts(self) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.url}/api/v2/alerts", timeout=5)
        assert status == 200, body[:300]
        return json.loads(body)


# --- configurations derived from the packaged files -------------------------------------------------------


def packaged_prometheus_config() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())


def kiosk_scrape_job(targets_file: Path, interval: str = "1s", job: str = "docent-kiosk") -> dict[str, Any]:
    """The packaged docent-kiosk job (its relabelling included), reading ``targets_file`` every second."""
    jobs = {j["job_name"]: j for j in packaged_prometheus_config()["scrape_configs"]}
    scrape = copy.deepcopy(jobs[job])
    scrape["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "1s"}]
    scrape["scrape_interval"] = interval
    scrape["scrape_timeout"] = interval
    return scrape


def unscheduled_rules(workdir: Path, paths: list[Path] | None = None) -> list[Path]:
    """Copies of the packaged rule files without their groups' ``interval``, so every group runs at the
    test's evaluation_interval (the packaged groups run once a minute or less often)."""
    out = []
    for path in paths or [RULES_DIR / "recording.yml", RULES_DIR / "alerts.yml"]:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
        copy = workdir / f"unscheduled-{path.name}"
        copy.write_text(yaml.safe_dump(document, sort_keys=False))
        out.append(copy)
    return out


def write_targets(path: Path, kiosks: list[tuple[str, dict[str, str]]]) -> Path:
    """A kiosks.yml in the packaged format: [(address, labels), ...]."""
    path.write_text(yaml.safe_dump([{"targets": [address], "labels": labels} for address, labels in kiosks]))
    return path


def lab_prometheus_config(
    scrape_configs: list[dict[str, Any]],
    rule_files: list[Path],
    alertmanager_port: int | None = None,
    interval: str = "1s",
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    return config


class FleetLab:
    """Starts the pieces of a fleet and stops them all, newest first, on ``close()``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._stoppers: list[Callable[[], None]] = []

    def _keep(self, thing: Any) -> Any:
        self._stoppers.append(thing.stop)
        return thing

    def kiosk(self, text: str | None = None, growth: float = 0.02) -> ExpositionServer:
        text = EXPOSITION_FIXTURE.read_text() if text is None else text
        return self._keep(ExpositionServer(text, growth=growth))

    def webhook(self) -> WebhookReceiver:
        return self._keep(WebhookReceiver())

    def prometheus(self, config: dict[str, Any], name: str = "prometheus") -> PrometheusServer:
        server = self._keep(PrometheusServer(require_binary("prometheus"), config, self.workdir / name))
        server.wait_ready()
        return server

    def alertmanager(self, config: dict[str, Any], name: str = "alertmanager") -> AlertmanagerServer:
        server = self._keep(
            AlertmanagerServer(require_binary("prometheus-alertmanager"), config, self.workdir / name)
        )
        server.wait_ready()
        return server

    def close(self) -> None:
        errors = []
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def fleet_lab(tmp_path: Path) -> Iterator[FleetLab]:
    lab = FleetLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def fleet_lab_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetLab]:
    lab = FleetLab(tmp_path_factory.mktemp("fleet"))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def webhook_receiver(fleet_lab: FleetLab) -> WebhookReceiver:
    return fleet_lab.webhook()


@pytest.fixture
def kiosk_endpoint(fleet_lab: FleetLab) -> ExpositionServer:
    return fleet_lab.kiosk()


# --- shared by the alerting, dashboard and end-to-end tests ------------------------------------------


def fast_alertmanager_config(webhook_url: str) -> dict[str, Any]:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"] = {"resolve_timeout": "1m"}  # no mail server here
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{webhook_url}/{r['name']}", "send_resolved": True}]}
        for r in config["receivers"]
    ]
    return config


DASH = json.loads(DASHBOARD.read_text())
# Grafana's built-in variables, as Grafana would fill them for a short time range and a 1 s scrape
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${datasource}": "docent-prometheus",
    "$site": ".*",
    "$kiosk": ".*",
}


def substitute(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    left = re.findall(r"\$\{?\w+", expr)
    assert not left, f"unsubstituted variables {left} in {expr}"
    return expr


def finite(result: list[dict[str, Any]]) -> bool:
    """Some sample in an instant or range result is a number (not NaN or infinite)."""
    for series in result:
        values = series.get("values") or [series.get("value")]
        for _, value in filter(None, values):
            if math.isfinite(float(value)):
                return True
    return False
