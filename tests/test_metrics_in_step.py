"""Prometheus and Grafana cannot run here: keep the alert rules, the dashboard and the scrape config in
step with the metrics the code exposes (observability/metrics.py) by reading them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from observability.metrics import SDK_EVENT_METRICS, SDK_METRICS, metric_names

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
# A metric name in a PromQL expression: our prefix or the SDK's, up to the selector, range or bracket.
NAME = re.compile(r"\b((?:invoiceflow|temporal)_[a-z0-9_]+)\b")


def known() -> set[str]:
    return metric_names() | set(SDK_METRICS) | set(SDK_EVENT_METRICS)


def expressions_in_alerts() -> list[str]:
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def expressions_in_dashboard() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "invoiceflow.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_alert_rules_name_only_real_metrics() -> None:
    used = {name for expr in expressions_in_alerts() for name in NAME.findall(expr)}
    assert used, "no metric in the alert rules"
    assert used <= known(), used - known()


def test_alert_rules_cover_what_the_operator_must_hear_about() -> None:
    text = " ".join(expressions_in_alerts())
    for metric in (
        "invoiceflow_accounting_sync_failures_waiting",
        "invoiceflow_outbox_oldest_pending_age_seconds",
        "invoiceflow_inbox_oldest_undispatched_age_seconds",
        "temporal_workflow_task_execution_failed",
        'invoiceflow_accounting_calls_total{outcome="rate_limited"}',
    ):
        assert metric in text, metric


def test_dashboard_names_only_real_metrics_and_shows_each_area() -> None:
    exprs = expressions_in_dashboard()
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used <= known(), used - known()
    ours = {n.removesuffix("_total").removesuffix("_bucket") for n in metric_names()}
    shown = {n.removesuffix("_total").removesuffix("_bucket") for n in used}
    missing = {n for n in ours if not n.endswith(("_sum", "_count"))} - shown
    assert not missing, f"metrics on no dashboard panel: {sorted(missing)}"
    assert {
        "temporal_worker_task_slots_available",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
    } <= used


def test_prometheus_scrapes_the_api_and_the_worker_where_compose_serves_them() -> None:
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker_env = compose["services"]["worker"]["environment"]
    assert targets["invoiceflow-worker"] == [f"worker:{worker_env['INVOICEFLOW_WORKER_METRICS_PORT']}"]
    assert worker_env["INVOICEFLOW_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert targets["invoiceflow-api"] == ["api:8000"]
    assert (
        "--port" in compose["services"]["api"]["command"] and "8000" in compose["services"]["api"]["command"]
    )
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "alerts.yml" in mounted and "/etc/prometheus/alerts.yml" in config["rule_files"]
    grafana = " ".join(compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "invoiceflow.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] in grafana
