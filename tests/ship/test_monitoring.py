"""The chart's monitoring: the PrometheusRule (templates/prometheusrule.yaml) and the Grafana
dashboard ConfigMap (templates/grafana-dashboard.yaml, dashboards/apigw-operator.json).

Every PromQL expression, the alerts' and the dashboard's, is checked by Prometheus's own parser:
`promtool check rules`. promtool is built from the Go module proxy by hack/ensure-promtool.sh into
target/tools/ (a few minutes the first time, nothing after); when it cannot be built the tests fail
and say why. `promtool test rules` runs the alerts' unit tests, tests/ship/monitoring/alerts_test.yaml.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from shiplib import CHART, HERE, REPO, docs, find, helm, helm_template, run

VALUES = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))
ENSURE_PROMTOOL = REPO / "hack" / "ensure-promtool.sh"
DASHBOARD_FILE = CHART / "dashboards" / "apigw-operator.json"
ALERTS_TEST = HERE / "monitoring" / "alerts_test.yaml"
BOTH = ["monitoring.prometheusRule.enabled=true", "monitoring.grafanaDashboard.enabled=true"]

# The contract with the operator: every metric it exports, as src/metrics.rs (Metrics::new, prefix
# apigw_) registers it, with its type and labels. The alerts and the dashboard may use these and
# nothing else; renaming a metric or a label there means changing it here, in
# templates/prometheusrule.yaml and in dashboards/apigw-operator.json.
METRICS: dict[str, tuple[str, set[str]]] = {
    "apigw_reconciles_total": ("counter", {"kind", "result"}),
    "apigw_reconcile_duration_seconds": ("histogram", {"kind"}),
    "apigw_reconcile_errors_total": ("counter", {"kind", "reason"}),
    "apigw_aws_calls_total": ("counter", {"operation", "outcome"}),
    "apigw_aws_throttles_total": ("counter", set()),
    "apigw_objects": ("gauge", {"kind", "ready", "reason"}),
    "apigw_workqueue_depth": ("gauge", {"kind"}),
    "apigw_workqueue_oldest_seconds": ("gauge", {"kind"}),
    "apigw_quota_tokens": ("gauge", {"bucket", "account", "region"}),
    "apigw_quota_rate": ("gauge", {"bucket", "account", "region"}),
    "apigw_quota_waiters": ("gauge", {"bucket", "priority"}),
    "apigw_quota_wait_seconds": ("histogram", {"bucket", "priority"}),
    "apigw_drift_oldest_observation_seconds": ("gauge", {"kind"}),
    "apigw_leader": ("gauge", set()),
}
# Labels a Prometheus Operator ServiceMonitor adds to every scraped series.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "endpoint", "container"}
ALL_LABELS = set().union(*(labels for _, labels in METRICS.values())) | TARGET_LABELS | {"le"}

ALERTS = ["ApigwAwsThrottling", "ApigwObjectsStalled", "ApigwLeaderMissing", "ApigwWorkqueueBacklog",
          "ApigwDriftChecksStarved"]
STALLED = {"InvalidSpec", "Conflict", "Forbidden", "TargetChanged", "RequiresReplacement", "DeleteFailed"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Values Grafana gives its variables, for the parser.
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
                "namespace": "apigw-system", "job": "apigw-operator-metrics"}


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool, built once by hack/ensure-promtool.sh (cached under target/tools)."""
    proc = run([str(ENSURE_PROMTOOL)], check=False, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"hack/ensure-promtool.sh failed ({proc.returncode}); promtool checks the chart's "
                    f"PromQL:\n{proc.stderr[-4000:]}", pytrace=False)
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), proc.stdout
    return path


def render(*sets: str, values: str = "default", release: str = "apigw-operator",
           namespace: str = "apigw-system", files: tuple[Path, ...] = ()) -> list[dict]:
    return docs(helm_template([HERE / "values" / f"{values}.yaml", *files], sets, release=release,
                              namespace=namespace).stdout)


def prometheus_rule(objects: list[dict]) -> dict:
    return find(objects, "PrometheusRule")


def dashboard_configmap(objects: list[dict]) -> dict:
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    return cm


def rules_of(rule: dict) -> list[dict]:
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def check_rules(promtool: str, groups: dict, path: Path, legend: str = "") -> None:
    path.write_text(yaml.safe_dump(groups, sort_keys=False))
    proc = run([promtool, "check", "rules", str(path)], check=False)
    assert proc.returncode == 0, f"promtool check rules {path}:\n{proc.stdout}\n{proc.stderr}\n{legend}"


def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row holds its panels
    return out


def dashboard_exprs(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable (label_values's selector)."""
    out = []
    for p in panels(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} {p['title']!r} target {t['refId']}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q.strip())
            assert m, f"variable {v['name']}: expected label_values(<selector>, <label>), got {q!r}"
            out.append((f"variable {v['name']}", m.group(1)))
    return out


def substitute(expr: str) -> str:
    def var(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in GRAFANA_VARS, f"unknown Grafana variable ${name} in {expr!r}"
        return GRAFANA_VARS[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", var, expr)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bapigw_[a-zA-Z0-9_:]*", expr))


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and METRICS.get(base, ("",))[0] == "histogram":
            return base
    return name


def all_exprs(objects: list[dict]) -> list[tuple[str, str]]:
    rule = prometheus_rule(objects)
    dash = json.loads(dashboard_configmap(objects)["data"]["apigw-operator.json"])
    return [(f"alert {r['alert']}", r["expr"]) for r in rules_of(rule)] + \
        [(w, substitute(e)) for w, e in dashboard_exprs(dash)]


# (e) Off by default ------------------------------------------------------------------------------

@pytest.mark.parametrize("values", VALUES)
def test_neither_renders_by_default(values):
    objects = render(values=values)
    assert not [o for o in objects if o["kind"] == "PrometheusRule"]
    assert not [o for o in objects if o["kind"] == "ConfigMap"]
    objects = render(*BOTH, values=values)
    prometheus_rule(objects)
    dashboard_configmap(objects)


# (a) The PrometheusRule --------------------------------------------------------------------------

RENDERINGS = {
    "default": dict(sets=BOTH),
    "ha": dict(sets=BOTH, values="ha"),
    "other-release": dict(sets=BOTH, release="team-a", namespace="ops"),
    "selector": dict(sets=BOTH + ['monitoring.prometheusRule.selector=job=~"apigw.*"']),
    "decimals": dict(sets=BOTH + ["resyncPeriod=90.5", "monitoring.prometheusRule.alerts.awsThrottling.threshold=0.2",
                                  "monitoring.prometheusRule.alerts.driftChecksStarved.resyncPeriods=2.5"]),
}


@pytest.mark.parametrize("name", RENDERINGS)
def test_prometheus_rule_passes_promtool_check(name, promtool, tmp_path):
    spec = dict(RENDERINGS[name])
    objects = render(*spec.pop("sets"), **spec)
    rule = prometheus_rule(objects)
    assert [r["alert"] for r in rules_of(rule)] == ALERTS
    check_rules(promtool, rule["spec"], tmp_path / "rules.yaml")


def test_prometheus_rule_selects_the_servicemonitors_job():
    objects = render(*BOTH, "serviceMonitor.enabled=true", release="team-a", namespace="ops")
    rule = prometheus_rule(objects)
    assert rule["metadata"]["name"] == "team-a-apigw-operator" and rule["metadata"]["namespace"] == "ops"
    # The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes.
    service = find(objects, "Service")["metadata"]["name"]
    monitor = find(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= find(objects, "Service")["metadata"]["labels"].items()
    selector = f'job="{service}", namespace="ops"'
    for r in rules_of(rule):
        for name in metric_names(r["expr"]):
            assert re.search(rf"\b{name}\{{{re.escape(selector)}[,}}]", r["expr"]), (r["alert"], name, r["expr"])
    custom = prometheus_rule(render(*BOTH, 'monitoring.prometheusRule.selector=job="x"'))
    for r in rules_of(custom):
        assert 'job="x"' in r["expr"] and "apigw-operator-metrics" not in r["expr"], r["expr"]


def test_alerts_say_what_to_do_and_follow_the_values():
    objects = render(*BOTH, "monitoring.prometheusRule.additionalLabels.release=prometheus",
                     "monitoring.prometheusRule.alerts.leaderMissing.for=10m",
                     "monitoring.prometheusRule.alerts.awsThrottling.severity=critical",
                     "monitoring.prometheusRule.alerts.workqueueBacklog.thresholdSeconds=1200", "resyncPeriod=300")
    rule = prometheus_rule(objects)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "apigw-operator"
    by_name = {r["alert"]: r for r in rules_of(rule)}
    for name, r in by_name.items():
        assert set(r["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert r["annotations"]["runbook_url"].endswith("README.md#" + name.lower()), name
        assert len(r["annotations"]["description"]) > 200, name
        assert r["labels"]["severity"] in ("warning", "critical"), name
    assert by_name["ApigwLeaderMissing"]["for"] == "10m"
    assert by_name["ApigwLeaderMissing"]["labels"]["severity"] == "critical"
    assert "absent(apigw_leader{" in by_name["ApigwLeaderMissing"]["expr"]
    assert by_name["ApigwAwsThrottling"]["labels"]["severity"] == "critical"
    assert by_name["ApigwAwsThrottling"]["expr"].rstrip().endswith("> 0.05")
    assert by_name["ApigwWorkqueueBacklog"]["expr"].rstrip().endswith("> 1200")
    assert by_name["ApigwDriftChecksStarved"]["expr"].rstrip().endswith("> 900")  # 3 resync periods of 300 s
    stalled = re.search(r'reason=~"([^"]*)"', by_name["ApigwObjectsStalled"]["expr"]).group(1)
    assert set(stalled.split("|")) == STALLED
    assert by_name["ApigwObjectsStalled"]["for"] == "15m"
    for reason in STALLED:
        assert reason in by_name["ApigwObjectsStalled"]["annotations"]["description"], reason
    # The chart README has a runbook section for every alert (the runbook_url anchors).
    readme = (CHART / "README.md").read_text()
    for name in ALERTS:
        assert re.search(rf"^#+ {name}$", readme, re.M), f"charts/apigw-operator/README.md has no '### {name}'"
    # One alert off.
    off = prometheus_rule(render(*BOTH, "monitoring.prometheusRule.alerts.workqueueBacklog.enabled=false"))
    assert [r["alert"] for r in rules_of(off)] == [a for a in ALERTS if a != "ApigwWorkqueueBacklog"]


# (f) The alerts' unit tests ----------------------------------------------------------------------

def test_alerts_fire_when_they_should(promtool, tmp_path):
    """tests/ship/monitoring/alerts_test.yaml: ApigwLeaderMissing (standby only, metric absent) and
    ApigwAwsThrottling fire, and not when healthy; the other alerts too. Only the summary annotation
    is kept (promtool compares annotations exactly; see the file's header)."""
    rule = prometheus_rule(render(*BOTH))
    spec = rule["spec"]
    for r in rules_of(rule):
        r["annotations"] = {"summary": r["annotations"]["summary"]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yaml")
    tested = {t["alertname"] for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"] for t in case["alert_rule_test"]}
    assert tested == set(ALERTS)
    proc = run([promtool, "test", "rules", str(tmp_path / "alerts_test.yaml")], check=False)
    assert proc.returncode == 0, f"promtool test rules:\n{proc.stdout}\n{proc.stderr}"


# (b) Every expression parses ---------------------------------------------------------------------

def test_every_dashboard_expression_parses(promtool, tmp_path):
    objects = render(*BOTH)
    exprs = [(w, e) for w, e in all_exprs(objects) if not w.startswith("alert ")]
    assert len(exprs) >= 20
    # promtool parses expressions in rule files: one alert per expression.
    rules = [{"alert": f"Expr{i}", "expr": e, "annotations": {"where": w}} for i, (w, e) in enumerate(exprs)]
    legend = "\n".join(f"Expr{i}: {w}: {e}" for i, (w, e) in enumerate(exprs))
    check_rules(promtool, {"groups": [{"name": "dashboard", "rules": rules}]}, tmp_path / "dashboard.rules.yaml", legend)
    # And a broken one does not pass, so the check is real.
    broken = {"groups": [{"name": "broken", "rules": [{"alert": "Broken", "expr": "sum by (kind (apigw_objects)"}]}]}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert run([promtool, "check", "rules", str(tmp_path / "broken.yaml")], check=False).returncode != 0


# (c) Only the operator's metrics and labels ------------------------------------------------------

def test_expressions_use_only_the_operators_metrics_and_labels():
    objects = render(*BOTH)
    used = set()
    for where, expr in all_exprs(objects):
        names = metric_names(expr)
        assert names, f"{where}: no apigw_ metric in {expr!r}"
        for name in names:
            base = base_metric(name)
            assert base in METRICS, f"{where}: {name} is not one of the operator's metrics (src/metrics.rs)"
            if name != base:
                assert name.endswith("_bucket") and "histogram_quantile" in expr, f"{where}: {name}"
            used.add(base)
        # Label matchers of each selector: the metric's own labels or the scrape's.
        for name, matchers in re.findall(r"\b(apigw_[a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
            base = base_metric(name)
            allowed = METRICS[base][1] | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in allowed, f"{where}: {name} has no label {label!r}"
        # Grouping labels exist somewhere.
        grouping = set()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            grouping |= {label.strip() for label in clause.split(",") if label.strip()}
        assert grouping <= ALL_LABELS, f"{where}: unknown labels {grouping - ALL_LABELS}"
    dash = dashboard()
    dashboard_used = {base_metric(n) for _, e in dashboard_exprs(dash) for n in metric_names(e)}
    assert dashboard_used == set(METRICS), f"metrics without a panel: {set(METRICS) - dashboard_used}"


def test_legends_name_labels_the_query_keeps():
    for p in panels(dashboard()):
        for t in p.get("targets", []):
            legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))
            kept = set()
            for clause in re.findall(r"\bby\s*\(([^)]*)\)", t["expr"]):
                kept |= {label.strip() for label in clause.split(",")}
            assert legend <= kept, f"panel {p['title']!r}: legend {legend - kept} not kept by {t['expr']!r}"


# (d) The dashboard -------------------------------------------------------------------------------

def test_dashboard_is_valid_and_uses_the_datasource_variable():
    dash = dashboard()
    assert dash["uid"] == "apigw-operator" and len(dash["uid"]) <= 40
    assert dash["schemaVersion"] == 39
    assert dash["title"]
    variables = dash["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names)), names
    (ds,) = [v for v in variables if v["name"] == "datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for v in variables:
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, v["name"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    uids = [p["uid"] for p in panels(dash) if "uid" in p] + [dash["uid"]]
    assert len(uids) == len(set(uids)), uids
    cells = set()
    for p in panels(dash):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another at {(x, y)}"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p.get("datasource") == DATASOURCE, f"panel {p['title']!r}: datasource {p.get('datasource')}"
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t.get("datasource", DATASOURCE) == DATASOURCE, (p["title"], t["refId"])
            assert 'namespace=~"$namespace"' in t["expr"] and 'job=~"$job"' in t["expr"], (p["title"], t["expr"])
    titles = " / ".join(p["title"] for p in panels(dash)).lower()
    for topic in ["objects", "reconcile", "errors", "duration", "aws calls", "429", "quota tokens", "refill rate",
                  "waiters", "wait p99", "depth", "oldest", "drift", "leader"]:
        assert topic in titles, f"no panel about {topic}"


def test_dashboard_configmap_carries_the_file_for_the_sidecar():
    objects = render(*BOTH)
    cm = dashboard_configmap(objects)
    assert cm["metadata"]["name"] == "apigw-operator-dashboard"
    assert cm["metadata"]["namespace"] == "apigw-system"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in cm["metadata"]
    assert list(cm["data"]) == ["apigw-operator.json"]
    assert json.loads(cm["data"]["apigw-operator.json"]) == dashboard()
    other = dashboard_configmap(render("monitoring.grafanaDashboard.enabled=true",
                                       "monitoring.grafanaDashboard.namespace=monitoring",
                                       "monitoring.grafanaDashboard.annotations.grafana_folder=APIs",
                                       "monitoring.grafanaDashboard.labels.grafana_dashboard=null",
                                       "monitoring.grafanaDashboard.labels.dashboards=apigw",
                                       release="team-a"))
    assert other["metadata"]["name"] == "team-a-apigw-operator-dashboard"
    assert other["metadata"]["namespace"] == "monitoring"
    assert other["metadata"]["annotations"] == {"grafana_folder": "APIs"}
    assert other["metadata"]["labels"]["dashboards"] == "apigw" and "grafana_dashboard" not in other["metadata"]["labels"]
    assert not [o for o in render("monitoring.grafanaDashboard.enabled=true") if o["kind"] == "PrometheusRule"]


# Values and packaging ----------------------------------------------------------------------------

BAD = [
    "monitoring.unknown=1",
    "monitoring.prometheusRule.unknown=1",
    "monitoring.prometheusRule.alerts.awsThrottling.for=soon",
    "monitoring.prometheusRule.alerts.awsThrottling.threshold=2",
    "monitoring.prometheusRule.alerts.leaderMissing.enabled=maybe",
    "monitoring.prometheusRule.alerts.unknownAlert.enabled=true",
    "monitoring.grafanaDashboard.namespace=Not_A_Namespace",
]


@pytest.mark.parametrize("value", BAD)
def test_schema_rejects_bad_monitoring_values(value):
    out = helm("template", "x", str(CHART), "--set", value, check=False)
    assert out.returncode != 0, out.stdout
    assert "schema" in out.stderr, out.stderr


def test_schema_rejects_a_selector_with_braces(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"monitoring": {"prometheusRule": {"selector": '{job="x"}'}}}))
    out = helm("template", "x", str(CHART), "-f", str(values), check=False)
    assert out.returncode != 0 and "schema" in out.stderr, out.stderr


def test_lint_is_clean_with_monitoring():
    out = helm("lint", "--strict", str(CHART), *[a for s in BOTH for a in ("--set", s)])
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_package_holds_the_dashboard(tmp_path):
    helm("package", str(CHART), "-d", str(tmp_path))
    (archive,) = tmp_path.glob("apigw-operator-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for path in ["dashboards/apigw-operator.json", "templates/prometheusrule.yaml", "templates/grafana-dashboard.yaml"]:
        assert f"apigw-operator/{path}" in names, path
