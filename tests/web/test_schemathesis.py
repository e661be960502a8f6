"""Property-based conformance: schemathesis drives every operation of the OpenAPI document.

Bounded examples per operation against a real `serve`, with tokens that pass every scope:
no answer may be a 5xx, every status must be documented, and every body must match its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import Api, start_api

EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, str]]]:
    """A server of its own, and headers carrying an admin token and a bouncer key."""
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    for api in start_api(directory):
        headers = {
            "Authorization": f"Bearer {api.token('fuzz-admin', 'admin')}",
            "X-Api-Key": api.token("fuzz-bouncer", "bouncer"),
        }
        yield api, headers


def test_every_operation_conforms(fuzzed: tuple[Api, dict[str, str]]) -> None:
    """No 5xx, only documented statuses, and bodies that match the document, per operation."""
    api, headers = fuzzed
    # Loaded here rather than with schemathesis.pytest.from_fixture, which does not run
    # under pytest 9 (it reads a private attribute pytest removed).
    schema = schemathesis.openapi.from_url(f"{api.base}/api/v1/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 15
    assert failures == []
