"""How much Prometheus does a fleet of Docent kiosks need?

Simulates N kiosk endpoints (default 50) in this process: one threaded loopback HTTP server per port,
each serving the recorded exposition tests/fleet/fixtures/kiosk_exposition.txt with counters that grow
per scrape (every third kiosk has a GPU; the others carry no GPU series). A real Prometheus scrapes them
at a short interval, first alone, then with every packaged recording and alerting rule group evaluated
at that interval too (loaded by a live reload). The script reports scrape durations, samples per scrape,
head series, Prometheus' CPU in both phases and its memory, then extrapolates to a fleet of 1,000
kiosks scraped every 15 s with the rule groups at their packaged intervals.

    .venv/bin/python bench/fleet_scale.py [--kiosks 50] [--interval 1] [--seconds 30]

Needs Debian's prometheus on PATH. Everything listens on 127.0.0.1 and is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench.machine
from bench.machine import describe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fleet" / "fixtures" / "kiosk_exposition.txt"
PROMETHEUS_DIR = REPO / "packaging" / "prometheus"
RULES = [PROMETHEUS_DIR / "rules" / "recording.yml", PROMETHEUS_DIR / "rules" / "alerts.yml"]
SAMPLE = re.compile(r"^(?P<series>[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (?P<value>\S+)$")
GROWING = ("_total", "_bucket", "_count", "_sum")
# a rule of thumb for Prometheus 2.x head memory per active series (labels, chunks, index, 2 h blocks)
BYTES_PER_SERIES_RULE = 4 * 1024
BYTES_PER_SAMPLE_ON_DISK = 1.5  # compressed TSDB blocks, typical


def cpu_only(text: str) -> str:
    """The exposition of a kiosk without a GPU: no per-GPU series, kiosk_gpu_available 0."""
    out = []
    for line in text.splitlines():
        if re.match(
            r"kiosk_gpu_(utilization_ratio|memory_used_bytes|memory_total_bytes|temperature_celsius|process_memory_bytes)\{",
            line,
        ):
            continue
        if line.startswith("kiosk_gpu_available "):
            line = "kiosk_gpu_available 0.0"
        out.append(line.replace('device="cuda:0"', 'device="cpu"'))
    return "\n".join(out) + "\n"


class Exposition:
    """A pre-parsed exposition whose counters grow by ``growth`` of their value per scrape."""

    def __init__(self, text: str, growth: float = 0.01) -> None:
        self.parts: list[tuple[str, float, bool]] = []
        self.comments: list[str] = []
        for line in text.splitlines():
            m = SAMPLE.match(line)
            if m:
                name = m.group("series").split("{")[0]
                self.parts.append((m.group("series"), float(m.group("value")), name.endswith(GROWING)))
            elif line.startswith("# "):
                self.parts.append((line, 0.0, False))
        self.series = sum(1 for p in self.parts if not p[0].startswith("#"))
        self.growth = growth
        self.scrapes = 0
        self.lock = threading.Lock()

    def render(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            factor = 1.0 + self.growth * self.scrapes
        lines = [
            series if series.startswith("#") else f"{series} {value * factor if grows else value!r}"
            for series, value, grows in self.parts
        ]
        return ("\n".join(lines) + "\n").encode()


def serve(exposition: Exposition) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = exposition.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def group_intervals(default: float) -> dict[str, float]:
    """The packaged rule groups' evaluation intervals in seconds (``default`` where a group sets none)."""
    out = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            value = str(group.get("interval", f"{default:g}s"))
            out[group["name"]] = float(value[:-1]) * {"s": 1, "m": 60, "h": 3600}[value[-1]]
    return out


def unscheduled_rules(work: Path) -> list[Path]:
    """Copies of the rule files whose groups all run at the bench's interval, to measure their cost."""
    copies = []
    for path in RULES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
        copy = work / path.name
        copy.write_text(yaml.safe_dump(document, sort_keys=False))
        copies.append(copy)
    return copies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


class Prom:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:
        doc = get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        return doc["data"]["result"]

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else float("nan")


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="scrape interval, seconds")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measurement phase")
    parser.add_argument("--rule-interval", type=float, default=5.0, help="rule interval in phase 2, seconds")
    parser.add_argument("--fleet", type=int, default=1000, help="kiosks in the sizing estimate")
    parser.add_argument("--fleet-interval", type=float, default=15.0, help="scrape interval in the estimate")
    args = parser.parse_args()
    print(describe(), flush=True)

    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus not found: sudo apt install prometheus", file=sys.stderr)
        return 2

    recorded = FIXTURE.read_text()
    variants = {"gpu": recorded, "cpu-only": cpu_only(recorded)}
    kiosks: list[tuple[str, str, Exposition]] = []
    servers: list[ThreadingHTTPServer] = []
    work = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    proc = None
    stack = contextlib.ExitStack()
    interval = f"{args.interval:g}s"
    window = f"{int(args.seconds)}s"
    sel = 'job="docent-kiosk"'
    try:
        targets = []
        for i in range(args.kiosks):
            variant = "gpu" if i % 3 == 0 else "cpu-only"
            exposition = Exposition(variants[variant])
            httpd = serve(exposition)
            servers.append(httpd)
            name = f"sim-{i:03d}"
            kiosks.append((name, variant, exposition))
            labels = {"site": f"site-{i % 5}", "room": f"room-{i % 10}", "kiosk": name}
            targets.append({"targets": [f"127.0.0.1:{httpd.server_address[1]}"], "labels": labels})
        (work / "kiosks.yml").write_text(yaml.safe_dump(targets))
        port = free_port()

        def write_config(rules: list[Path], evaluation_interval: str) -> None:
            config = {
                "global": {
                    "scrape_interval": interval,
                    "scrape_timeout": interval,
                    "evaluation_interval": evaluation_interval,
                },
                "rule_files": [str(p) for p in rules],
                "scrape_configs": [
                    {"job_name": "docent-kiosk", "file_sd_configs": [{"files": [str(work / "kiosks.yml")]}]},
                    {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                ],
            }
            (work / "prometheus.yml").write_text(yaml.safe_dump(config))

        write_config([], interval)  # phase 1: scraping only
        log = stack.enter_context((work / "prometheus.log").open("wb"))
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={work / 'data'}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prom = Prom(f"http://127.0.0.1:{port}")
        ps = psutil.Process(proc.pid)
        wait(lambda: urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2).status == 200, 30, "Prometheus")
        baseline_rss = ps.memory_info().rss  # before the first scrapes land (file_sd takes ~5 s)
        wait(lambda: prom.scalar(f"count(up{{{sel}}} == 1)") == args.kiosks, 60, "every kiosk up")
        time.sleep(max(10.0, 10 * args.interval))  # the head settles

        def measure() -> tuple[float, float, float, float]:
            """Prometheus cores, simulator cores, scrapes and samples appended per second."""
            me = psutil.Process()
            cpu0, self0 = sum(ps.cpu_times()[:2]), sum(me.cpu_times()[:2])
            scrapes0 = sum(k[2].scrapes for k in kiosks)
            appended0 = prom.scalar("prometheus_tsdb_head_samples_appended_total")
            t0 = time.monotonic()
            time.sleep(args.seconds)
            wall = time.monotonic() - t0
            appended = prom.scalar("prometheus_tsdb_head_samples_appended_total") - appended0
            return (
                (sum(ps.cpu_times()[:2]) - cpu0) / wall,
                (sum(me.cpu_times()[:2]) - self0) / wall,
                (sum(k[2].scrapes for k in kiosks) - scrapes0) / wall,
                appended / wall,  # read through the self-scrape: one interval late at both ends
            )

        scrape_cores, sim_cores, scrapes_per_s, ingest = measure()
        dur_avg = prom.scalar(f"avg(avg_over_time(scrape_duration_seconds{{{sel}}}[{window}]))")
        dur_p99 = prom.scalar(f"quantile(0.99, max_over_time(scrape_duration_seconds{{{sel}}}[{window}]))")
        dur_max = prom.scalar(f"max(max_over_time(scrape_duration_seconds{{{sel}}}[{window}]))")
        samples = {
            r["metric"]["kiosk"]: float(r["value"][1]) for r in prom.query(f"scrape_samples_scraped{{{sel}}}")
        }

        # phase 2: the same, with every rule group evaluated each interval
        write_config(unscheduled_rules(work), f"{args.rule_interval:g}s")
        urllib.request.urlopen(urllib.request.Request(f"{prom.url}/-/reload", method="POST"), timeout=30)
        wait(lambda: prom.query("prometheus_rule_group_last_duration_seconds"), 30, "the rules to run")
        time.sleep(2 * args.rule_interval)
        missed0 = prom.scalar("sum(prometheus_rule_group_iterations_missed_total)")
        all_cores, _, _, _ = measure()
        missed = prom.scalar("sum(prometheus_rule_group_iterations_missed_total)") - missed0
        rule_cores_here = max(all_cores - scrape_cores, 0.0)
        rss = ps.memory_info().rss
        head_series = prom.scalar("prometheus_tsdb_head_series")
        recorded_series = prom.scalar('count({__name__=~".+:.+"})')
        recorded_per_kiosk = prom.scalar('count({__name__=~".+:.+", kiosk!=""})') / args.kiosks
        groups: dict[str, list[float]] = {}
        for fn in ("avg_over_time", "max_over_time"):
            for r in prom.query(f"{fn}(prometheus_rule_group_last_duration_seconds[{window}])"):
                groups.setdefault(r["metric"]["rule_group"].split(";")[-1], []).append(float(r["value"][1]))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)

    by_variant: dict[str, list[float]] = {}
    for name, variant, _ in kiosks:
        by_variant.setdefault(variant, []).append(samples.get(name, float("nan")))
    raw_per_kiosk = sum(samples.values()) / len(samples)
    # up, scrape_duration_seconds, scrape_samples_scraped, scrape_samples_post_metric_relabeling and
    # scrape_series_added: Prometheus' own series for every target
    per_target_extra = 5
    scale = args.fleet / args.kiosks
    intervals = group_intervals(args.fleet_interval)

    print(
        f"\n{args.kiosks} simulated kiosks scraped every {interval} by Prometheus 2.42 on loopback: {window} of"
    )
    print(
        f"scraping only, then {window} with every group of packaging/prometheus/rules run each {args.rule_interval:g} s.\n"
    )
    print(f"  {'kiosk kind':<12}{'kiosks':>8}{'series per kiosk':>18}")
    for variant, values in by_variant.items():
        print(f"  {variant:<12}{len(values):>8}{sum(values) / len(values):>18.0f}")
    print(f"  {'recorded':<12}{'':>8}{recorded_per_kiosk:>18.0f}   (recording-rule series per kiosk)\n")
    rows = [
        ("scrapes per second", f"{scrapes_per_s:.1f}"),
        (
            "scrape duration avg / p99 / max",
            f"{dur_avg * 1000:.1f} / {dur_p99 * 1000:.1f} / {dur_max * 1000:.1f} ms",
        ),
        ("samples appended per second", f"{ingest:,.0f} (scraping only)"),
        ("head series", f"{head_series:,.0f} (recorded: {recorded_series:,.0f})"),
        ("Prometheus CPU, scraping only", f"{scrape_cores:.3f} cores"),
        (
            "Prometheus CPU, rules added",
            f"+{rule_cores_here:.3f} cores (every group each {args.rule_interval:g} s; {missed:.0f} missed)",
        ),
        (
            "Prometheus RSS",
            f"{human_bytes(rss)} ({human_bytes(baseline_rss)} before the first scrape; "
            f"{(rss - baseline_rss) / head_series / 1024:.1f} KiB per head series above that)",
        ),
        ("simulator CPU (this process)", f"{sim_cores:.3f} cores"),
    ]
    for label, value in rows:
        print(f"  {label:<34}{value}")

    # The rule CPU measured here is shared out over the groups by their evaluation time; a group's CPU per
    # evaluation grows with the series it reads (x fleet/kiosks) and is spent once per packaged interval.
    # Scraped every 1 s, a 5-minute window holds more samples per series than at 15 s: upper bounds.
    busy = sum(avg for avg, _ in groups.values()) or 1.0
    cpu_per_busy_second = rule_cores_here * args.rule_interval / busy
    rule_cores_fleet = 0.0
    print(
        f"\n  rule group: one evaluation here (avg / max) -> {args.fleet:,} kiosks at its packaged interval"
    )
    for name, (avg, peak) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        every = intervals.get(name, args.fleet_interval)
        cores = avg * cpu_per_busy_second * scale / every
        rule_cores_fleet += cores
        print(
            f"    {name:<28}{avg * 1000:7.1f} / {peak * 1000:7.1f} ms"
            f" -> {avg * scale:6.2f} s every {every:g} s, {cores:.2f} cores"
        )

    n, every = args.fleet, args.fleet_interval
    series_fleet = n * (raw_per_kiosk + per_target_extra + recorded_per_kiosk)
    recording_every = min(intervals[g["name"]] for g in yaml.safe_load(RULES[0].read_text())["groups"])
    samples_fleet = n * (raw_per_kiosk + per_target_extra) / every + n * recorded_per_kiosk / recording_every
    cpu_per_sample = scrape_cores / ingest if ingest else float("nan")
    bytes_per_series = (rss - baseline_rss) / head_series
    print(
        f"\nSizing for {n:,} kiosks scraped every {every:g} s by one Prometheus, rules at their packaged intervals:"
    )
    estimate = [
        ("active series", f"{series_fleet:,.0f}"),
        ("samples ingested per second", f"{samples_fleet:,.0f}"),
        ("scrapes per second", f"{n / every:.1f}"),
        ("memory, ~4 KiB per active series", human_bytes(series_fleet * BYTES_PER_SERIES_RULE)),
        ("memory, bytes per series measured here", human_bytes(series_fleet * bytes_per_series)),
        (
            "CPU, scraping and ingesting",
            f"{samples_fleet * cpu_per_sample:.2f} cores (CPU per sample measured here)",
        ),
        ("CPU, rules", f"{rule_cores_fleet:.2f} cores (upper bound)"),
        (
            "disk for 15 days",
            f"{human_bytes(samples_fleet * 86400 * 15 * BYTES_PER_SAMPLE_ON_DISK)} (~{BYTES_PER_SAMPLE_ON_DISK} B per sample)",
        ),
    ]
    for label, value in estimate:
        print(f"  {label:<40}{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
