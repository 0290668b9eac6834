"""Comparison helpers shared by the emulator tests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

REGION = "us-east-1"


def strip_meta(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def substitute(value: Any, subs: dict[str, str]) -> Any:
    """Replace recorded placeholders (<cache-namespace:1>, <region>, ...) inside strings."""
    if isinstance(value, dict):
        return {k: substitute(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, subs) for v in value]
    if isinstance(value, str):
        for placeholder, actual in subs.items():
            value = value.replace(placeholder, actual)
    return value


def like_recorded(actual: Any, expected: Any) -> Any:
    """The snapshot library stored JSON-string templates parsed; parse ours the same way."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: like_recorded(v, expected.get(k)) for k, v in actual.items()}
    if isinstance(expected, (dict, list)) and isinstance(actual, str):
        try:
            return json.loads(actual)
        except ValueError:
            return actual
    return actual


def assert_body(response: dict, fixture: dict, subs: dict[str, str] | None = None) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == fixture["status"]
    expected = substitute(fixture["body"], subs or {})
    assert like_recorded(strip_meta(response), expected) == expected


def assert_error(excinfo: pytest.ExceptionInfo[ClientError], fixture: dict) -> None:
    err = excinfo.value.response
    got = (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"])
    want = (fixture["status"], fixture["error"]["code"], fixture["error"]["message"])
    assert got == want


def client_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    err = excinfo.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]
