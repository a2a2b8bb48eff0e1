"""End to end through real processes: a kiosk endpoint goes down, Prometheus fires the packaged KioskDown
rule, and Alertmanager, with the packaged route tree and inhibit rule, delivers it to a webhook.

Only the timings are shortened (KioskDown's ``for`` and Alertmanager's group waits) and the receivers
point at the test's webhook (each at its own path, so the route taken is visible). The same fixtures
will drive the end-to-end test against real ``kiosk listen`` processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fleet.conftest import (
    RULES_DIR,
    FleetLab,
    fast_alertmanager_config,
    kiosk_scrape_job,
    lab_prometheus_config,
    wait_until,
    write_targets,
)

pytestmark = pytest.mark.fleet

KIOSK = {"site": "test-museum", "room": "apollo-hall", "kiosk": "columbia-1"}


def fast_alert_rules(path: Path) -> Path:
    """The packaged KioskDown rule with for: 0s, plus a canary alert on the same kiosk that is always
    firing, to watch the inhibit rule silence it once the kiosk is down."""
    packaged = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    (kiosk_down,) = [r for g in packaged["groups"] for r in g["rules"] if r["alert"] == "KioskDown"]
    kiosk_down["for"] = "0s"
    canary = {
        "alert": "Canary",
        "expr": 'up{job=~"docent-kiosk.*"} * 0 + 1',
        "labels": {"severity": "info"},
        "annotations": {"summary": "always firing"},
    }
    path.write_text(yaml.safe_dump({"groups": [{"name": "fast", "rules": [kiosk_down, canary]}]}))
    return path


def test_kiosk_down_reaches_the_webhook_through_alertmanager(fleet_lab: FleetLab) -> None:
    hook = fleet_lab.webhook()
    kiosk = fleet_lab.kiosk()
    alertmanager = fleet_lab.alertmanager(fast_alertmanager_config(hook.url))
    targets = write_targets(fleet_lab.workdir / "kiosks.yml", [(kiosk.address, KIOSK)])
    prometheus = fleet_lab.prometheus(
        lab_prometheus_config(
            [kiosk_scrape_job(targets)],
            [fast_alert_rules(fleet_lab.workdir / "fast-alerts.yml")],
            alertmanager_port=alertmanager.port,
        )
    )
    wait_until(lambda: prometheus.query('up{job="docent-kiosk"} == 1'), 30, "the kiosk to be scraped")
    # the canary reaches Alertmanager un-inhibited while the kiosk is up
    wait_until(
        lambda: any(a["labels"]["alertname"] == "Canary" for a in alertmanager.alerts()),
        30,
        "the canary alert to reach Alertmanager",
    )

    kiosk.stop()

    def kiosk_down(path: str, document: dict[str, Any]) -> bool:
        return path == "/technicians-email" and any(
            a["status"] == "firing" and a["labels"]["alertname"] == "KioskDown" for a in document["alerts"]
        )

    _, document = hook.wait_for(kiosk_down, 30, "KioskDown at the e-mail receiver")
    assert document["groupLabels"] == {"site": "test-museum", "alertname": "KioskDown"}
    (alert,) = document["alerts"]
    assert {k: alert["labels"][k] for k in KIOSK} == KIOSK
    assert alert["labels"]["severity"] == "critical"
    assert "systemctl --user status docent-kiosk" in alert["annotations"]["runbook"]
    assert kiosk.address in alert["annotations"]["description"]
    # critical alerts continue from the e-mail route to the webhook route
    hook.wait_for(
        lambda path, doc: (
            path == "/fleet-webhook" and any(a["labels"]["alertname"] == "KioskDown" for a in doc["alerts"])
        ),
        15,
        "KioskDown at the webhook receiver",
    )

    # KioskDown inhibits the kiosk's other alerts
    def canary_state() -> str:
        states = [a["status"]["state"] for a in alertmanager.alerts() if a["labels"]["alertname"] == "Canary"]
        return states[0] if states else ""

    wait_until(lambda: canary_state() == "suppressed", 15, "KioskDown to inhibit the canary")
