"""Changes go live (issue 13): ApiGatewayStage deploys what its selected integrations say, one
coalesced CreateDeployment per rollout, within CreateDeployment's own quota. The binary, the
real API server, the emulator (which snapshots the draft on CreateDeployment and tells what a
stage serves) and kubectl."""

from __future__ import annotations

import time

import requests

from conftest import delta, manifest, wait_for

HTTP = {"type": "HTTP", "integrationHttpMethod": "POST", "uri": "https://backend.example.com/v1"}
# The operator and the emulator share a faster deployment quota, so the tests take seconds; the
# benchmark runs AWS's real one (1 every 5 s).
INTERVAL = "0.5"
STAGES = "apigatewaystages.apigw.dev"


def stage(name: str, ids: dict, **spec) -> dict:
    body = {"restApiId": ids["restApiId"], "stageName": "prod", "settleSeconds": 2}
    body.update(spec)
    return {"apiVersion": "apigw.dev/v1alpha1", "kind": "ApiGatewayStage", "metadata": {"name": name}, "spec": body}


def get_stage(kube, name: str) -> dict:
    import json
    return json.loads(kube.run("get", STAGES, name, "-o", "json").stdout)


def ready(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def wait_stage(kube, name: str, reason: str, timeout: float = 60, check=lambda obj: True) -> dict:
    seen: list[dict] = []

    def settled():
        obj = get_stage(kube, name)
        seen[:] = [obj.get("status") or {}]
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"]["generation"] or not status.get("conditions"):
            return None
        return obj if ready(obj)["reason"] == reason and check(obj) else None
    try:
        return wait_for(f"stage {name} {reason}", settled, timeout)
    except BaseException as e:  # pytest.fail raises an OutcomeException
        raise AssertionError(f"{e}; stage status: {seen}") from None


def served(emulator, ids: dict, stage_name: str = "prod") -> dict:
    out = requests.get(f"{emulator.admin}/_emulator/served/{ids['restApiId']}/{stage_name}", timeout=10)
    out.raise_for_status()
    return out.json()


def add_method(emulator, ids: dict, path: str, **integration) -> dict:
    """Another resource with a POST method and an HTTP integration in the same REST API."""
    aws = emulator.aws
    root = next(r for r in aws.get_resources(restApiId=ids["restApiId"])["items"] if r["path"] == "/")
    resource = aws.create_resource(restApiId=ids["restApiId"], parentId=root["id"], pathPart=path)
    aws.put_method(restApiId=ids["restApiId"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE")
    more = {**ids, "resourceId": resource["id"], "path": "/" + path}
    emulator.put_integration(more, **{**HTTP, **integration})
    return more


def deploy_outside(emulator, ids: dict, stage_name: str = "prod", **extra) -> str:
    """A deployment made by someone else (set-up, or an incident), outside the quota the
    operator is measured against."""
    emulator.faults(deployment_interval=0)
    return emulator.aws.create_deployment(restApiId=ids["restApiId"], stageName=stage_name, **extra)["id"]


def start(emulator, operators, *extra, **kw):
    emulator.faults(deployment_interval=float(INTERVAL))
    return operators("--deployment-interval", INTERVAL, *extra, **kw)


def test_fifty_changes_in_one_api_are_one_deployment_and_all_are_served(kube, emulator, operators):
    first = emulator.api_with_method(integration=HTTP, path="r00")
    members = [first] + [add_method(emulator, first, f"r{i:02}") for i in range(1, 50)]
    deploy_outside(emulator, first)
    start(emulator, operators)
    for i, ids in enumerate(members):
        kube.apply(manifest(f"m{i:02}", ids, uri=HTTP["uri"]))
    for i in range(50):
        kube.wait_ready(f"m{i:02}")
    kube.apply(stage("prod", first))
    wait_stage(kube, "prod", "Synced")
    before = emulator.calls()
    for i, ids in enumerate(members):
        kube.apply(manifest(f"m{i:02}", ids, uri=f"https://backend.example.com/v2/{i}"))
    obj = wait_stage(kube, "prod", "Synced", timeout=120,
                     check=lambda o: o["status"].get("deploymentId") and delta(before, emulator.calls(), "CreateDeployment") >= 1)
    after = emulator.calls()
    assert delta(before, after, "UpdateIntegration") == 50
    assert delta(before, after, "CreateDeployment") == 1, "one deployment for the whole rollout"
    live = served(emulator, first)
    assert live["deploymentId"] == obj["status"]["deploymentId"]
    uris = sorted(v["uri"] for v in live["integrations"].values())
    assert uris == sorted(f"https://backend.example.com/v2/{i}" for i in range(50))
    assert obj["status"]["published"]["integrations"] == 50
    assert obj["status"]["pending"] == 0


def test_a_change_outside_the_selector_deploys_nothing(kube, emulator, operators):
    mine = emulator.api_with_method(integration=HTTP, path="mine")
    other = add_method(emulator, mine, "other")
    deploy_outside(emulator, mine)
    start(emulator, operators)
    picked = manifest("picked", mine)
    picked["metadata"]["labels"] = {"app": "shop"}
    kube.apply(picked)
    kube.apply(manifest("ignored", other))
    kube.wait_ready("picked")
    kube.wait_ready("ignored")
    kube.apply(stage("prod", mine, integrationSelector={"matchLabels": {"app": "shop"}}))
    wait_stage(kube, "prod", "Synced")
    before = emulator.calls()
    kube.apply(manifest("ignored", other, uri="https://elsewhere.example.com"))
    wait_for("the unselected change written", lambda: emulator.integration(other)["uri"] == "https://elsewhere.example.com")
    # Were it selected, the stage would be Pending during the 2 s quiet time and deploy after
    # it: watch a window longer than that.
    deadline = time.monotonic() + 2 + 3
    while time.monotonic() < deadline:
        obj = get_stage(kube, "prod")
        assert ready(obj)["reason"] == "Synced" and obj["status"]["pending"] == 0, obj["status"]
        assert delta(before, emulator.calls(), "CreateDeployment") == 0
        time.sleep(0.2)
    # A selected change does deploy.
    picked["spec"]["uri"] = "https://picked.example.com"
    kube.apply(picked)
    wait_for("one deployment", lambda: delta(before, emulator.calls(), "CreateDeployment") == 1, timeout=30)
    wait_stage(kube, "prod", "Synced")
    assert [v["uri"] for k, v in served(emulator, mine)["integrations"].items() if k.startswith("/mine")] == ["https://picked.example.com"]


def test_a_stuck_integration_does_not_block_the_others_and_is_listed(kube, emulator, operators):
    good = emulator.api_with_method(integration=HTTP, path="good")
    bad = add_method(emulator, good, "bad")
    deploy_outside(emulator, good)
    start(emulator, operators)
    kube.apply(manifest("good", good))
    kube.apply(manifest("bad", bad))
    kube.wait_ready("good")
    kube.wait_ready("bad")
    kube.apply(stage("prod", good))
    wait_stage(kube, "prod", "Synced")
    before = emulator.calls()
    # "bad" asks for a type change under Update: RequiresReplacement, which only a person clears.
    kube.apply(manifest("bad", bad, type="MOCK"))
    kube.apply(manifest("good", good, uri="https://good.example.com"))
    kube.wait_reason("bad", "RequiresReplacement")
    obj = wait_stage(kube, "prod", "Synced", timeout=60,
                     check=lambda o: delta(before, emulator.calls(), "CreateDeployment") == 1)
    assert any(b.startswith(f"{kube.namespace}/bad") for b in obj["status"]["blockedIntegrations"]), obj["status"]
    assert "bad" in ready(obj)["message"]
    good_live = [v for k, v in served(emulator, good)["integrations"].items() if k.startswith("/good")]
    assert good_live[0]["uri"] == "https://good.example.com"


def test_a_rollback_made_outside_is_drifted_not_fought_until_the_next_change(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP, path="rb")
    old = deploy_outside(emulator, ids)
    start(emulator, operators)
    kube.apply(manifest("rb", ids))
    kube.wait_ready("rb")
    kube.apply(stage("prod", ids))
    wait_stage(kube, "prod", "Synced")
    kube.apply(manifest("rb", ids, uri="https://new.example.com"))
    obj = wait_stage(kube, "prod", "Synced", check=lambda o: o["status"].get("deploymentId") not in (None, old))
    ours = obj["status"]["deploymentId"]
    # An incident: someone rolls the stage back to the old deployment.
    emulator.aws.update_stage(restApiId=ids["restApiId"], stageName="prod",
                              patchOperations=[{"op": "replace", "path": "/deploymentId", "value": old}])
    before = emulator.calls()
    # The next drift check (the stage's status copy is fresh for a resync period) is forced by
    # a touch of the stage's spec.
    kube.apply(stage("prod", ids, description="touched"))
    obj = wait_stage(kube, "prod", "Drifted")
    message = ready(obj)["message"]
    assert old in message and ours in message, message
    assert delta(before, emulator.calls(), "CreateDeployment") == 0
    assert served(emulator, ids)["deploymentId"] == old
    # The next change of a selected integration deploys again.
    kube.apply(manifest("rb", ids, uri="https://newer.example.com"))
    wait_stage(kube, "prod", "Synced", check=lambda o: o["status"]["deploymentId"] not in (old, ours))
    assert delta(before, emulator.calls(), "CreateDeployment") == 1
    assert next(iter(served(emulator, ids)["integrations"].values()))["uri"] == "https://newer.example.com"


def test_stage_variables_are_managed(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP, path="vars")
    deploy_outside(emulator, ids, variables={"stray": "x", "keep": "1"})
    start(emulator, operators)
    before = emulator.calls()
    kube.apply(stage("prod", ids, variables={"keep": "2", "fresh": "y"}))
    obj = wait_stage(kube, "prod", "Synced")
    live = emulator.aws.get_stage(restApiId=ids["restApiId"], stageName="prod")
    assert live["variables"] == {"keep": "2", "fresh": "y"}
    assert obj["status"]["stage"]["variables"] == {"keep": "2", "fresh": "y"}
    assert delta(before, emulator.calls(), "UpdateStage") == 1, "one call for every variable change"
    assert delta(before, emulator.calls(), "CreateDeployment") == 0
    # Drift of a variable is corrected (the spec touch makes the stage read at once).
    emulator.aws.update_stage(restApiId=ids["restApiId"], stageName="prod",
                              patchOperations=[{"op": "replace", "path": "/variables/keep", "value": "tampered"}])
    before = emulator.calls()
    kube.apply(stage("prod", ids, variables={"keep": "2", "fresh": "y"}, description="touched"))
    wait_for("the variable corrected",
             lambda: emulator.aws.get_stage(restApiId=ids["restApiId"], stageName="prod")["variables"] == {"keep": "2", "fresh": "y"})
    assert delta(before, emulator.calls(), "UpdateStage") == 1


def test_twenty_stages_due_at_once_are_all_deployed_with_zero_429s(kube, emulator, operators):
    apis = [emulator.api_with_method(integration=HTTP, path="s") for _ in range(20)]
    for ids in apis:
        deploy_outside(emulator, ids)
    start(emulator, operators)
    for i, ids in enumerate(apis):
        kube.apply(manifest(f"s{i:02}", ids))
        kube.apply(stage(f"st{i:02}", ids, settleSeconds=1))
    for i in range(20):
        wait_stage(kube, f"st{i:02}", "Synced")
    before_codes = emulator.responses().get("CreateDeployment", {})
    before = emulator.calls()
    started = time.monotonic()
    for i, ids in enumerate(apis):
        kube.apply(manifest(f"s{i:02}", ids, uri=f"https://s{i}.example.com"))
    for i, ids in enumerate(apis):
        wait_for(f"stage {i} serves its change",
                 lambda ids=ids, i=i: next(iter(served(emulator, ids)["integrations"].values()))["uri"] == f"https://s{i}.example.com",
                 timeout=90)
    took = time.monotonic() - started
    after_codes = emulator.responses().get("CreateDeployment", {})
    assert after_codes.get("429", 0) - before_codes.get("429", 0) == 0
    assert delta(before, emulator.calls(), "CreateDeployment") == 20
    # 20 tokens at 0.5 s each, after a 1 s quiet time: none starved, none waits a whole round.
    assert took < 60, took


def test_update_with_a_missing_stage_is_target_not_found_and_create_or_update_creates_it(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP, path="new")
    start(emulator, operators)
    kube.apply(manifest("new", ids))
    kube.wait_ready("new")
    kube.apply(stage("prod", ids))
    obj = wait_stage(kube, "prod", "TargetNotFound")
    assert "CreateOrUpdate" in ready(obj)["message"]
    before = emulator.calls()
    kube.apply(stage("prod", ids, managementPolicy="CreateOrUpdate", variables={"v": "1"}))
    obj = wait_stage(kube, "prod", "Synced")
    assert delta(before, emulator.calls(), "CreateDeployment") == 1
    live = emulator.aws.get_stage(restApiId=ids["restApiId"], stageName="prod")
    assert live["deploymentId"] == obj["status"]["deploymentId"]
    assert live["variables"] == {"v": "1"}


def test_deletion_policies(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP, path="del")
    deploy_outside(emulator, ids, "kept")
    deploy_outside(emulator, ids, "gone")
    start(emulator, operators)
    kube.apply(stage("kept", ids, stageName="kept"))
    kube.apply(stage("gone", ids, stageName="gone", deletionPolicy="Delete"))
    wait_stage(kube, "kept", "Synced")
    wait_stage(kube, "gone", "Synced")
    kube.run("delete", STAGES, "kept", "--timeout=60s")
    kube.run("delete", STAGES, "gone", "--timeout=60s")
    emulator.aws.get_stage(restApiId=ids["restApiId"], stageName="kept")
    try:
        emulator.aws.get_stage(restApiId=ids["restApiId"], stageName="gone")
        raise AssertionError("the Delete-policy stage still exists")
    except emulator.aws.exceptions.NotFoundException:
        pass


def test_a_failing_create_deployment_is_reported_and_retried_until_it_lands(kube, emulator, operators):
    ids = emulator.api_with_method(integration=HTTP, path="flaky")
    deploy_outside(emulator, ids)
    start(emulator, operators)
    kube.apply(manifest("flaky", ids))
    kube.wait_ready("flaky")
    kube.apply(stage("prod", ids))
    wait_stage(kube, "prod", "Synced")
    emulator.faults(deployment_interval=float(INTERVAL), error_5xx=1.0, error_5xx_status=503, operations=["CreateDeployment"])
    before = emulator.calls()
    kube.apply(manifest("flaky", ids, uri="https://flaky.example.com"))
    obj = wait_stage(kube, "prod", "AwsError")
    assert "CreateDeployment" in ready(obj)["message"]
    assert next(iter(served(emulator, ids)["integrations"].values()))["uri"] == HTTP["uri"]
    emulator.faults(deployment_interval=float(INTERVAL))
    wait_stage(kube, "prod", "Synced", check=lambda o: o["status"]["pending"] == 0)
    assert next(iter(served(emulator, ids)["integrations"].values()))["uri"] == "https://flaky.example.com"
    # Retried with backoff (base 0.5 s, cap 5 s), not in a loop.
    attempts = delta(before, emulator.calls(), "CreateDeployment")
    assert 2 <= attempts <= 30, attempts


def stage_objects(op) -> int:
    """How many stages the operator's cache holds (the apigw_objects gauge, every reason)."""
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in op.metrics().splitlines()
               if line.startswith('apigw_objects{kind="stage"'))


def test_a_shard_manages_only_the_stages_its_selector_selects(kube, emulator, operators):
    """--selector applies to stages as to integrations: the shard that sees a stage's members
    manages it, and no other shard writes it (every shard managed every stage before)."""
    a_ids = emulator.api_with_method(integration=HTTP, path="a")
    b_ids = emulator.api_with_method(integration=HTTP, path="b")
    deploy_outside(emulator, a_ids)
    deploy_outside(emulator, b_ids)
    shard_b = start(emulator, operators, "--selector", "shard=b", name="shard-b")
    for shard, ids in (("a", a_ids), ("b", b_ids)):
        member = manifest(f"member-{shard}", ids)
        member["metadata"]["labels"] = {"shard": shard}
        kube.apply(member)
        body = stage(f"stage-{shard}", ids)
        body["metadata"]["labels"] = {"shard": shard}
        kube.apply(body)
    wait_stage(kube, "stage-b", "Synced")
    assert stage_objects(shard_b) == 1, shard_b.metrics()
    assert "status" not in get_stage(kube, "stage-a"), "shard b wrote a stage of shard a"
    start(emulator, operators, "--selector", "shard=a", name="shard-a")
    kube.wait_ready("member-a")
    obj = wait_stage(kube, "stage-a", "Synced")
    assert "with every selected integration (1)" in ready(obj)["message"], obj["status"]
