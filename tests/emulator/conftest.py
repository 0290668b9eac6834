"""Fixtures of the API Gateway emulator tests.

Run with the emulator venv's python:
    PY="$(hack/emulator/setup-venv.sh)" && "$PY" -m pytest tests/emulator

By default a session fixture starts its own emulator (hack/emulator/server.py) on a free
127.0.0.1 port and stops it, by PID, at the end. With APIGW_EMULATOR_ADMIN set (as
target/testenv/env.sh does) the tests use that emulator instead; they then reset its faults
and call counters around every test.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import emulator_process
import pytest
import requests
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REGION = "us-east-1"


class Emulator:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}/_emulator/{path}", json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def set_faults(self, **faults: Any) -> Any:
        return self.admin("POST", "faults", faults)

    def clear(self) -> None:
        self.admin("POST", "faults", {})
        self.admin("POST", "calls/reset")

    def calls(self) -> dict[str, int]:
        return self.admin("GET", "calls")

    def responses(self) -> dict[str, dict[str, int]]:
        return self.admin("GET", "responses")

    def served(self, rest_api_id: str, stage_name: str) -> tuple[int, Any]:
        """GET /_emulator/served/{restApiId}/{stageName}: (HTTP status, JSON answer)."""
        r = requests.get(f"{self.url}/_emulator/served/{rest_api_id}/{stage_name}", timeout=10)
        return r.status_code, r.json()

    def client(self, region: str | None = None, access_key: str = "AKIAEMULATORTESTS000", **config: Any):
        cfg = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # no SDK retries: see every fault
            connect_timeout=5,
            read_timeout=config.pop("read_timeout", 30),
            **config,
        )
        return boto3.client(
            "apigateway",
            endpoint_url=self.url,
            region_name=region or REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key="emulator-tests-secret",
            config=cfg,
        )


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    shared = os.environ.get("APIGW_EMULATOR_ADMIN")
    if shared:
        if not emulator_process.healthy(shared.rstrip("/")):
            pytest.fail(
                f"APIGW_EMULATOR_ADMIN={shared} does not answer GET /_emulator/health. "
                "Start it with `make testenv-up` (and source target/testenv/env.sh), "
                "or unset APIGW_EMULATOR_ADMIN to let the tests start their own emulator."
            )
        yield Emulator(shared)
        return

    try:
        proc, url, _ = emulator_process.start(tmp_path_factory.mktemp("emulator"))
    except emulator_process.EmulatorDidNotStart as e:
        pytest.fail(f"{e}\nRun the tests with the venv's python: "
                    '"$(hack/emulator/setup-venv.sh)" -m pytest tests/emulator')
    try:
        yield Emulator(url)
    finally:
        emulator_process.stop(proc)


@pytest.fixture(autouse=True)
def clean_emulator(emulator: Emulator):
    emulator.clear()
    yield
    emulator.clear()


@pytest.fixture
def apigw(emulator: Emulator):
    return emulator.client()


@pytest.fixture
def rest_api(apigw):
    """A fresh REST API, deleted afterwards. Returns (api_id, root_resource_id)."""
    created = []

    def make(name: str | None = None):
        api = apigw.create_rest_api(name=name or f"emulator-test-{uuid.uuid4().hex[:8]}")
        created.append(api["id"])
        return api["id"], api["rootResourceId"]

    yield make
    for api_id in created:
        try:
            apigw.delete_rest_api(restApiId=api_id)
        except Exception:
            pass


@pytest.fixture
def method(apigw, rest_api):
    """A REST API with resource /pets and method GET. Returns a dict of ids."""

    def make(verb: str = "GET", path_part: str = "pets"):
        api_id, root = rest_api()
        res = apigw.create_resource(restApiId=api_id, parentId=root, pathPart=path_part)
        apigw.put_method(
            restApiId=api_id, resourceId=res["id"], httpMethod=verb, authorizationType="NONE"
        )
        return {"restApiId": api_id, "resourceId": res["id"], "httpMethod": verb, "root": root}

    return make


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def recorded() -> dict:
    return load_fixture("aws-recorded.json")


@pytest.fixture(scope="session")
def messages() -> dict:
    return load_fixture("patch-error-messages.json")


@pytest.fixture(scope="session")
def seed() -> dict:
    return load_fixture("seed-examples.json")


@pytest.fixture(scope="session")
def deploy_recorded() -> dict:
    return load_fixture("aws-recorded-deploy.json")
