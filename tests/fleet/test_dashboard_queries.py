"""A real Prometheus scrapes two recorded kiosk endpoints with the packaged scrape job and rules (every
group evaluated each second instead of each minute); then every query of every dashboard panel must
parse and return data.

The endpoints serve tests/fleet/fixtures/kiosk_exposition.txt with growing counters. Grafana's variables
are substituted the way Grafana would for "All" ($site and $kiosk become .*).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from kiosk.emotion import Emotion
from kiosk.engine.events import STAGES
from tests.fleet.conftest import (
    DASH,
    FleetLab,
    PrometheusServer,
    finite,
    kiosk_scrape_job,
    lab_prometheus_config,
    substitute,
    unscheduled_rules,
    wait_until,
    write_targets,
)

pytestmark = pytest.mark.fleet

SITE = "test-museum"


def panel_targets() -> list[Any]:
    params = []
    for panel in DASH["panels"]:
        for target in panel.get("targets", []):
            params.append(pytest.param(panel["title"], target, id=f"{panel['title']} {target['refId']}"))
    return params


@pytest.fixture(scope="module")
def prometheus(fleet_lab_module: FleetLab) -> PrometheusServer:
    lab = fleet_lab_module
    named = lab.kiosk()
    unnamed = lab.kiosk()
    targets = write_targets(
        lab.workdir / "kiosks.yml",
        [
            (named.address, {"site": SITE, "room": "apollo-hall", "kiosk": "columbia-1"}),
            # no kiosk label: the packaged relabelling names it after its address
            (unnamed.address, {"site": SITE, "room": "lunar-gallery"}),
        ],
    )
    config = lab_prometheus_config([kiosk_scrape_job(targets)], unscheduled_rules(lab.workdir))
    prom = lab.prometheus(config)
    wait_until(
        lambda: len(prom.query('up{job="docent-kiosk"} == 1')) == 2, 30, "both kiosk targets to be scraped"
    )
    # the slowest chain: rates need two scrapes, then a rule reads another group's recorded series
    wait_until(
        lambda: (
            len(prom.query("kiosk_emotion:kiosk_turns_error:ratio_rate5m")) == 2 * len(Emotion)
            and len(prom.query("kiosk_stage:kiosk_stage_duration_seconds:p99_rate5m")) == 2 * len(STAGES)
            and len(prom.query("kiosk:kiosk_face_frames_rendered:rate1m > 0")) == 2
        ),
        30,
        "the recording rules to produce per-stage and per-emotion values",
    )
    return prom


def test_targets_are_up_with_site_room_and_kiosk(prometheus: PrometheusServer) -> None:
    targets = prometheus.targets()
    assert [t["health"] for t in targets] == ["up", "up"], [t.get("lastError") for t in targets]
    labels = sorted((t["labels"]["site"], t["labels"]["room"], t["labels"]["kiosk"]) for t in targets)
    assert labels == [(SITE, "apollo-hall", "columbia-1"), (SITE, "lunar-gallery", "127.0.0.1")]


def test_recording_rules_give_per_stage_quantiles(prometheus: PrometheusServer) -> None:
    quantiles: dict[str, dict[tuple[str, str], float]] = {}
    for q in ("p50", "p95", "p99"):
        result = prometheus.query(f"kiosk_stage:kiosk_stage_duration_seconds:{q}_rate5m")
        quantiles[q] = {(r["metric"]["kiosk"], r["metric"]["stage"]): float(r["value"][1]) for r in result}
        assert {stage for _, stage in quantiles[q]} == set(STAGES)
    for key, p50 in quantiles["p50"].items():
        assert 0 < p50 <= quantiles["p95"][key] <= quantiles["p99"][key] <= 10, key
    # the recorded kiosk: ASR about 0.45 s, a face frame about 4 ms
    assert 0.25 <= quantiles["p50"][("columbia-1", "asr")] <= 0.75
    assert quantiles["p95"][("columbia-1", "animator_frame")] <= 0.025

    ratios = prometheus.query("kiosk_stage:kiosk_stage_errors:ratio_rate5m")
    assert {r["metric"]["stage"] for r in ratios} >= set(STAGES)
    # stages that ran have a small ratio; the catalogue's "other" stage never ran: NaN, no alert
    assert all(0 <= float(r["value"][1]) < 0.3 for r in ratios if r["metric"]["stage"] in STAGES)
    first_audio = prometheus.query("kiosk:kiosk_turn_first_audio_seconds:p95_rate5m")
    assert {r["metric"]["kiosk"] for r in first_audio} == {"columbia-1", "127.0.0.1"}
    assert all(0.5 < float(r["value"][1]) < 3 for r in first_audio)
    fps = prometheus.query("kiosk:kiosk_face_frames_rendered:rate1m")
    assert all(float(r["value"][1]) > 0 for r in fps) and len(fps) == 2


def test_a_healthy_kiosk_raises_no_alert(prometheus: PrometheusServer) -> None:
    assert prometheus.query("ALERTS") == []


def test_variables_list_the_sites_and_kiosks(prometheus: PrometheusServer) -> None:
    for var in DASH["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.+),\s*([a-z_]+)\)", var.get("definition", ""))
        if not m:
            continue
        selector, label = substitute(m.group(1)), m.group(2)
        values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
        expected = {"site": [SITE], "kiosk": ["127.0.0.1", "columbia-1"]}[var["name"]]
        assert sorted(values) == expected, var["name"]


def test_annotation_queries_parse(prometheus: PrometheusServer) -> None:
    for annotation in DASH["annotations"]["list"]:
        if annotation.get("expr"):
            prometheus.query(substitute(annotation["expr"]))  # raises on a parse error


@pytest.mark.parametrize(("title", "target"), panel_targets())
def test_panel_query_returns_data(prometheus: PrometheusServer, title: str, target: dict[str, Any]) -> None:
    expr = substitute(target["expr"])

    def run() -> list[dict[str, Any]]:
        if target.get("instant"):
            return prometheus.query(expr)
        return prometheus.query_range(expr, seconds=30)

    result = run()  # a parse error fails here, at once
    deadline = time.monotonic() + 10
    while not finite(result) and time.monotonic() < deadline:
        time.sleep(0.5)
        result = run()
    assert finite(result), f"{title}: no data from {expr}\n{result[:3]}"
