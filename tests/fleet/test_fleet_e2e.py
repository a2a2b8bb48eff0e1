"""The whole fleet, end to end (issue #7): real ``kiosk listen`` processes, a real Prometheus and a real
Alertmanager (Debian's packages), all on free loopback ports with temporary storage.

Three headless kiosks each listen to a WAV file of spoken questions (made with the real Piper voice) and
serve ``/metrics`` on their own port; the third serves it over TLS with basic auth (a web-config.yml with
a certificate from a CA made by the test and a bcrypt hash). Prometheus scrapes them with the packaged
jobs (``docent-kiosk`` and ``docent-kiosk-basic-auth``, only the file paths and intervals changed) and
evaluates the packaged recording and alert rules every second (only KioskDown's ``for`` is shortened).
Then, through Prometheus' HTTP API: every target is up, every rule evaluates cleanly, the per-stage
recording rules have values, and every query of every dashboard panel parses and returns data (the few
that cannot have data on a CPU-only headless kiosk are listed, with the reason). Last, one kiosk is stopped
and its KioskDown alert must reach a webhook receiver through Alertmanager's packaged routes.

Every process started here is stopped here (terminate, then kill), and every wait has a deadline. The
tests share one fleet and run in file order; the last one stops a kiosk.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import numpy as np
import pytest
import yaml

from tests import certs
from tests.conftest import silence
from tests.fleet.conftest import (
    DASH,
    RULES_DIR,
    FleetLab,
    PrometheusServer,
    WebhookReceiver,
    fast_alertmanager_config,
    finite,
    free_port,
    kiosk_scrape_job,
    lab_prometheus_config,
    require_binary,
    substitute,
    unscheduled_rules,
    wait_until,
    write_targets,
)

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

SITE = "test-museum"
USER, PASSWORD = "prometheus", "kiosk-scrape-secret"
SCRAPE_INTERVAL = "2s"  # kiosks loading three models on a shared 2-core machine answer slowly at times
KIOSK_DOWN_FOR = "4s"  # two failed scrapes in a row, not one slow one

# Each kiosk hears two questions. An answer is one sentence here, and the pauses are long enough for it
# to be spoken before the next question (no barge-in) and for the visitor session to time out (2 s) while
# the kiosk still listens, so sessions end and their lengths are observed too.
QUESTIONS = {
    "columbia-1": ["Who was the commander of Apollo 11?", "Why is it called Columbia?"],
    "columbia-2": ["How did the crew get back to Earth?", "Who was the commander of Apollo 11?"],
    "eagle-tls": ["Why is it called Columbia?", "How did the crew get back to Earth?"],
}
ROOMS = {"columbia-1": "apollo-hall", "columbia-2": "apollo-hall", "eagle-tls": "lunar-gallery"}
TLS_KIOSK = "eagle-tls"
PLAIN_KIOSK_TO_STOP = "columbia-1"
TURNS_PER_KIOSK = 2
STAGES_EXPECTED = {"vad_endpoint", "asr", "retrieval", "tts_first_audio", "tts"}

# Deadlines (seconds)
METRICS_UP_S = 120  # process start to "metrics:" (imports torch etc.; three at once on two cores)
MODELS_LOADED_S = 240  # process start to /healthz 200 (every model loaded)
TURNS_S = 120  # models loaded to every turn answered and scraped
RULES_S = 30
STOP_S = 30
ALERT_S = 60

# Panel queries that cannot return data on these kiosks; each still has to parse. Everything else must
# return a finite value somewhere in the test's time range.
NO_GPU = "CPU-only kiosks: NVML reports no GPU, so the per-GPU gauges are absent and no model is on cuda"
ALLOWED_EMPTY = {
    ("GPU memory per model", "A"): NO_GPU,
    ("GPU memory per model", "B"): NO_GPU,
    ("GPU memory used", "A"): NO_GPU,
    ("GPU utilisation and temperature", "A"): NO_GPU,
    ("GPU utilisation and temperature", "B"): NO_GPU,
}


# --- audio, certificates, configs ------------------------------------------------------------------------


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def question_wav(path: Path, speak: Callable[[str], np.ndarray], questions: list[str]) -> Path:
    parts = [silence(0.5)]
    for question in questions:
        parts += [speak(question), silence(8.0)]
    # the last answer (a sentence and an offer, up to about 12 s) ends and the session times out (2 s)
    # while the kiosk still listens
    parts.append(silence(14.0))
    return write_wav(path, np.concatenate(parts))


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, kiosk.crt, kiosk.key)."""
    certs.require_openssl()
    folder.mkdir(parents=True, exist_ok=True)
    ca = certs.make_ca(folder, "ca")
    return (ca, *certs.issue(folder, "kiosk", "ca", certs.SERVER_FOR_LOOPBACK))


def kiosk_toml(port: int, cache_dir: Path, web_config: Path | None) -> str:
    lines = [
        "[answer]",
        'backend = "retrieval"',  # deterministic, quick answers (the LLM has its own tests)
        "max_sentences = 1",
        "[session]",
        "idle_timeout_s = 2.0",
        "[metrics]",
        'listen_address = "127.0.0.1"',
        f"port = {port}",
    ]
    if web_config is not None:
        lines.append(f'web_config = "{web_config}"')
    lines += ["[paths]", f'cache_dir = "{cache_dir}"']
    return "\n".join(lines) + "\n"


# --- kiosk processes ---------------------------------------------------------------------------------------


def kiosk_command() -> list[str]:
    script = Path(sys.executable).with_name("kiosk")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kiosk.cli"]


class KioskProcess:
    """``kiosk listen --input FILE --keep-running`` with its stdout and stderr in files."""

    def __init__(self, name: str, workdir: Path, wav: Path, config: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        env["KIOSK_EXHIBIT__PATH"] = '"apollo11-columbia"'  # the spoken questions are about Apollo 11
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            # the TLS kiosk also animates its face, so the face panels and rules have real data
            [*kiosk_command(), "listen", "--input", str(wav), "--keep-running", "--config", str(config)]
            + (["--face"] if name == TLS_KIOSK else []),
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
        )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def tail(self, lines: int = 25) -> str:
        out = "\n".join(self.stdout().splitlines()[-lines:])
        err = "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        return f"--- kiosk {self.name} ({state}) stdout ---\n{out}\n--- kiosk {self.name} stderr ---\n{err}"

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"kiosk {self.name} exited with {self.proc.returncode}")

    def stop(self, timeout: float = STOP_S) -> int:
        """SIGTERM (the kiosk's clean shutdown), SIGKILL after ``timeout``; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()
        self._err.close()
        return self.proc.returncode


@dataclass
class Fleet:
    kiosks: dict[str, KioskProcess]
    prometheus: PrometheusServer
    hook: WebhookReceiver
    ca: Path
    started: float

    def diagnostics(self) -> str:
        parts = [kiosk.tail() for kiosk in self.kiosks.values()]
        parts.append(f"--- prometheus log ---\n{self.prometheus.log_tail()}")
        return "\n".join(parts)

    @contextmanager
    def explained(self) -> Iterator[None]:
        """Failures carry the kiosks' and Prometheus' output."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnostics()}") from None


def healthz(kiosk: KioskProcess, ca: Path | None) -> int:
    if ca is None:
        request = urllib.request.Request(f"http://{kiosk.address}/healthz")
        context = None
    else:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"https://{kiosk.address}/healthz", headers={"Authorization": f"Basic {token}"}
        )
        context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def fleet_rules(workdir: Path) -> list[Path]:
    """The packaged recording and alert rules, every group at the test's 1 s evaluation interval, with
    KioskDown's ``for`` shortened from 2 minutes."""
    recording, alerts = unscheduled_rules(workdir, [RULES_DIR / "recording.yml", RULES_DIR / "alerts.yml"])
    document = yaml.safe_load(alerts.read_text())
    (kiosk_down,) = [r for g in document["groups"] for r in g["rules"] if r.get("alert") == "KioskDown"]
    kiosk_down["for"] = KIOSK_DOWN_FOR
    alerts.write_text(yaml.safe_dump(document, sort_keys=False))
    return [recording, alerts]


@pytest.fixture(scope="module")
def fleet(fleet_lab_module: FleetLab, cache_dir: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    lab = fleet_lab_module
    workdir = lab.workdir
    # skip before loading the voice when a binary is missing
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    ca, cert, key = make_certificates(workdir / "tls")
    web_config = workdir / "web-config.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {USER: hashed},
            }
        )
    )
    password_file = workdir / "kiosk-scrape-password"
    password_file.write_text(PASSWORD)

    speak: Callable[[str], np.ndarray] = request.getfixturevalue("speak")  # loads the voice
    wavs = {name: question_wav(workdir / f"{name}.wav", speak, qs) for name, qs in QUESTIONS.items()}

    # Alertmanager and Prometheus first, with no targets yet: a kiosk is added to its targets file once it
    # serves /metrics, so no scrape ever fails on a kiosk that is still starting.
    hook = lab.webhook()
    alertmanager = lab.alertmanager(fast_alertmanager_config(hook.url))
    plain_targets = write_targets(workdir / "kiosks.yml", [])
    tls_targets = write_targets(workdir / "kiosks-basic-auth.yml", [])
    plain_job = kiosk_scrape_job(plain_targets, interval=SCRAPE_INTERVAL)
    auth_job = kiosk_scrape_job(tls_targets, interval=SCRAPE_INTERVAL, job="docent-kiosk-basic-auth")
    auth_job["tls_config"] = {"ca_file": str(ca)}
    auth_job["basic_auth"] = {"username": USER, "password_file": str(password_file)}
    prometheus = lab.prometheus(
        lab_prometheus_config(
            [plain_job, auth_job], fleet_rules(workdir), alertmanager_port=alertmanager.port
        )
    )

    kiosks: dict[str, KioskProcess] = {}
    started = time.monotonic()
    try:
        for name in QUESTIONS:
            port = free_port()
            config = workdir / f"{name}.toml"
            config.write_text(kiosk_toml(port, cache_dir, web_config if name == TLS_KIOSK else None))
            kiosks[name] = KioskProcess(name, workdir, wavs[name], config, port)
        fleet = Fleet(kiosks, prometheus, hook, ca, started)

        with fleet.explained():
            # the endpoint comes up before the models load ("metrics: URL" is printed then)
            serving: set[str] = set()

            def endpoints_up() -> bool:
                for name, kiosk in kiosks.items():
                    kiosk.check_running()
                    if name not in serving and "metrics: http" in kiosk.stdout():
                        serving.add(name)
                        write_targets(
                            plain_targets,
                            [(kiosks[n].address, labels(n)) for n in sorted(serving) if n != TLS_KIOSK],
                        )
                        write_targets(
                            tls_targets,
                            [(kiosks[n].address, labels(n)) for n in sorted(serving) if n == TLS_KIOSK],
                        )
                return len(serving) == len(kiosks)

            wait_until(endpoints_up, METRICS_UP_S, "every kiosk to serve /metrics", interval=0.5)
            for name, kiosk in kiosks.items():
                assert f"metrics: {'https' if name == TLS_KIOSK else 'http'}://{kiosk.address}/metrics" in (
                    kiosk.stdout()
                )

            def models_loaded() -> bool:
                for name, kiosk in kiosks.items():
                    kiosk.check_running()
                    if healthz(kiosk, ca if name == TLS_KIOSK else None) != 200:
                        return False
                return True

            left = MODELS_LOADED_S - (time.monotonic() - started)
            wait_until(models_loaded, left, "every kiosk to load its models (/healthz 200)", interval=1.0)
            loaded = time.monotonic() - started

            def answered() -> bool:
                for kiosk in kiosks.values():
                    kiosk.check_running()
                turns = prometheus.query('sum by (kiosk) (kiosk_turns_total{job=~"docent-kiosk.*"})')
                done = {r["metric"]["kiosk"]: float(r["value"][1]) for r in turns}
                return len(done) == len(kiosks) and all(n >= TURNS_PER_KIOSK for n in done.values())

            wait_until(answered, TURNS_S, f"{TURNS_PER_KIOSK} turns per kiosk in Prometheus", interval=1.0)
            print(
                f"fleet: models loaded after {loaded:.0f} s, turns done after {time.monotonic() - started:.0f} s"
            )
        yield fleet
    finally:
        unclean = []
        for kiosk in kiosks.values():
            try:
                if kiosk.stop() != 0:
                    unclean.append(kiosk)
            except Exception as exc:  # keep stopping the others
                unclean.append(kiosk)
                print(f"kiosk {kiosk.name}: {exc!r}")
        # raised at teardown only when the fixture got as far as its yield: a kiosk must leave cleanly
        # on SIGTERM (exit status 0) within STOP_S
        if unclean and sys.exc_info()[0] is None:
            raise AssertionError(
                "kiosks not stopped cleanly by SIGTERM:\n" + "\n".join(k.tail() for k in unclean)
            )


def labels(name: str) -> dict[str, str]:
    return {"site": SITE, "room": ROOMS[name], "kiosk": name}


def labels_of(result: list[dict[str, Any]], *names: str) -> set[tuple[str, ...]]:
    return {tuple(r["metric"].get(n, "") for n in names) for r in result}


# --- the tests --------------------------------------------------------------------------------------------


def test_every_kiosk_is_up_with_its_labels(fleet: Fleet) -> None:
    with fleet.explained():
        targets = fleet.prometheus.targets()
        assert [t["health"] for t in targets] == ["up"] * 3, [t.get("lastError") for t in targets]
        seen = {
            (
                t["labels"]["job"],
                t["scrapeUrl"].split(":")[0],
                t["labels"]["site"],
                t["labels"]["room"],
                t["labels"]["kiosk"],
            )
            for t in targets
        }
        assert seen == {
            ("docent-kiosk", "http", SITE, "apollo-hall", "columbia-1"),
            ("docent-kiosk", "http", SITE, "apollo-hall", "columbia-2"),
            ("docent-kiosk-basic-auth", "https", SITE, "lunar-gallery", "eagle-tls"),
        }
        up = fleet.prometheus.query('up{job=~"docent-kiosk.*"}')
        assert {r["metric"]["kiosk"]: r["value"][1] for r in up} == dict.fromkeys(QUESTIONS, "1")
        # the TLS kiosk answers nobody without the password (and counts the refusal)
        token = base64.b64encode(f"{USER}:wrong".encode()).decode()
        request = urllib.request.Request(
            f"https://{fleet.kiosks[TLS_KIOSK].address}/metrics", headers={"Authorization": f"Basic {token}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                request, timeout=5, context=ssl.create_default_context(cafile=str(fleet.ca))
            )
        assert refused.value.code == 401


def test_turns_were_answered(fleet: Fleet) -> None:
    with fleet.explained():
        turns = fleet.prometheus.query("sum by (kiosk, status) (kiosk_turns_total) > 0")
        by_status = {(r["metric"]["kiosk"], r["metric"]["status"]): float(r["value"][1]) for r in turns}
        assert not [key for key in by_status if key[1] == "error"], by_status
        for name, kiosk in fleet.kiosks.items():
            assert kiosk.stdout().count("[turn ") >= TURNS_PER_KIOSK, name
        answers = fleet.prometheus.query("sum by (kiosk) (kiosk_answers_total) > 0")
        assert labels_of(answers, "kiosk") == {(n,) for n in QUESTIONS}
        # the visitor session times out (2 s) while the kiosk still listens: its length is observed
        wait_until(
            lambda: (
                labels_of(
                    fleet.prometheus.query("sum by (kiosk) (kiosk_session_duration_seconds_count) > 0"),
                    "kiosk",
                )
                == {(n,) for n in QUESTIONS}
            ),
            20,
            "every kiosk to end a visitor session",
            interval=0.5,
        )
        build = fleet.prometheus.query("kiosk_build_info")
        assert labels_of(build, "kiosk") == {(n,) for n in QUESTIONS}


def test_every_rule_evaluates_without_error(fleet: Fleet) -> None:
    with fleet.explained():
        groups = fleet.prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) > 40
        broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not broken, broken
        # a healthy fleet: no kiosk is reported down
        assert fleet.prometheus.query('ALERTS{alertname="KioskDown"}') == []


def test_recording_rules_give_per_stage_values(fleet: Fleet) -> None:
    prometheus = fleet.prometheus

    def per_stage(q: str) -> dict[tuple[str, str], float]:
        result = prometheus.query(f"kiosk_stage:kiosk_stage_duration_seconds:{q}_rate5m")
        return {(r["metric"]["kiosk"], r["metric"]["stage"]): float(r["value"][1]) for r in result}

    def complete() -> bool:
        values = per_stage("p99")
        return all(
            np.isfinite(values.get((kiosk, stage), np.nan))
            for kiosk in QUESTIONS
            for stage in STAGES_EXPECTED
        )

    with fleet.explained():
        wait_until(complete, RULES_S, "per-stage quantiles for every kiosk", interval=0.5)
        quantiles = {q: per_stage(q) for q in ("p50", "p95", "p99")}
        for kiosk in QUESTIONS:
            for stage in STAGES_EXPECTED:
                key = (kiosk, stage)
                p50, p95, p99 = (quantiles[q][key] for q in ("p50", "p95", "p99"))
                assert 0 < p50 <= p95 <= p99 <= 10, (key, p50, p95, p99)
        fleet_wide = prometheus.query("stage:kiosk_stage_duration_seconds:p95_rate5m")
        assert STAGES_EXPECTED <= {
            r["metric"]["stage"] for r in fleet_wide if np.isfinite(float(r["value"][1]))
        }
        first_audio = prometheus.query("kiosk:kiosk_turn_first_audio_seconds:p95_rate5m")
        assert {r["metric"]["kiosk"] for r in first_audio if np.isfinite(float(r["value"][1]))} == set(
            QUESTIONS
        )
        errors = prometheus.query("kiosk_stage:kiosk_stage_errors:ratio_rate5m")
        ran = [(r["metric"]["kiosk"], r["metric"]["stage"], float(r["value"][1])) for r in errors]
        assert all(value == 0 for _, stage, value in ran if stage in STAGES_EXPECTED), ran


def test_dashboard_variables_list_the_fleet(fleet: Fleet) -> None:
    with fleet.explained():
        for annotation in DASH["annotations"]["list"]:
            if annotation.get("expr"):
                fleet.prometheus.query(substitute(annotation["expr"]))  # raises on a parse error
        kiosks = fleet.prometheus.api("label/kiosk/values", **{"match[]": 'up{job=~"docent-kiosk.*"}'})
        assert sorted(kiosks) == sorted(QUESTIONS)


def panel_targets() -> list[Any]:
    params = []
    for panel in DASH["panels"]:
        for target in panel.get("targets", []):
            params.append(pytest.param(panel["title"], target, id=f"{panel['title']} {target['refId']}"))
    return params


@pytest.mark.parametrize(("title", "target"), panel_targets())
def test_panel_query(fleet: Fleet, title: str, target: dict[str, Any]) -> None:
    expr = substitute(target["expr"])
    since_start = time.monotonic() - fleet.started + 5

    def run() -> list[dict[str, Any]]:
        if target.get("instant"):
            return fleet.prometheus.query(expr)
        return fleet.prometheus.query_range(expr, seconds=since_start, step="1s")

    result = run()  # a parse or evaluation error fails here
    if (title, target["refId"]) in ALLOWED_EMPTY:
        return
    deadline = time.monotonic() + 10
    while not finite(result) and time.monotonic() < deadline:
        time.sleep(0.5)
        result = run()
    with fleet.explained():
        assert finite(result), f"{title}: no data from {expr}\n{result[:3]}"


def test_a_stopped_kiosk_raises_kiosk_down_at_the_webhook(fleet: Fleet) -> None:
    kiosk = fleet.kiosks[PLAIN_KIOSK_TO_STOP]
    with fleet.explained():
        assert not [
            d for _, d in fleet.hook.received for a in d["alerts"] if a["labels"]["alertname"] == "KioskDown"
        ], "KioskDown before any kiosk stopped"
        stopped_at = time.time()
        assert kiosk.stop() == 0, "the kiosk did not shut down cleanly on SIGTERM"

        def kiosk_down(path: str, document: dict[str, Any]) -> bool:
            return path == "/fleet-webhook" and any(
                a["status"] == "firing"
                and a["labels"]["alertname"] == "KioskDown"
                and a["labels"]["kiosk"] == PLAIN_KIOSK_TO_STOP
                for a in document["alerts"]
            )

        _, document = fleet.hook.wait_for(
            kiosk_down, ALERT_S, "KioskDown for the stopped kiosk at the webhook"
        )
        print(f"KioskDown reached the webhook {time.time() - stopped_at:.1f} s after the stop")
        firing = [a for a in document["alerts"] if a["labels"]["alertname"] == "KioskDown"]
        assert [a["labels"]["kiosk"] for a in firing] == [PLAIN_KIOSK_TO_STOP]
        (alert,) = firing
        assert alert["labels"]["site"] == SITE and alert["labels"]["room"] == ROOMS[PLAIN_KIOSK_TO_STOP]
        assert alert["labels"]["severity"] == "critical"
        assert kiosk.address in alert["annotations"]["description"]
        # the others stay up
        up = fleet.prometheus.query('up{job=~"docent-kiosk.*"} == 1')
        assert sorted(r["metric"]["kiosk"] for r in up) == sorted(set(QUESTIONS) - {PLAIN_KIOSK_TO_STOP})
