"""Schema-driven fuzzing (schemathesis) of the web API against its own OpenAPI document.

The real app runs on loopback in a thread; schemathesis reads ``/api/openapi.json`` from
it and, for every operation, generates valid requests (and, separately, invalid ones) and
checks each answer: no 5xx, a status the document lists, the declared content type, and a
body and headers that match the declared schema. Some requests use a real conversation
id, so the success paths are reached, not only the 404s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.support.browser import ServerThread
from tests.support.fakes import FakeRetriever, source
from tests.support.hardening import live_server, record

EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    retriever = FakeRetriever(
        answers=[
            source(
                "c-ret#1",
                "How do I return boots?",
                "Returns within 30 days, see https://shop.example.com/returns (KB-RET-01).",
                0.93,
            ),
            source("c-ship#1", "When will my order arrive?", "In 3-5 days (KB-SHP-01).", 0.31),
        ]
    )
    with live_server(tmp_path / "home", retriever) as running:
        yield running


def _known_ids(base: str) -> dict[str, str]:
    """A conversation with one answered message: real ids for the path parameters."""
    conversation = requests.post(f"{base}/api/conversations", timeout=10).json()["conversation_id"]
    reply = requests.post(
        f"{base}/api/conversations/{conversation}/messages",
        json={"text": "How do I return boots?"},
        timeout=10,
    ).json()
    return {"conversation_id": conversation, "turn_id": reply["turn_id"]}


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_conforms_to_its_schema_and_never_answers_5xx(
    server: ServerThread, mode: GenerationMode
) -> None:
    base = server.origin
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    operations = _operations(schema)
    assert len(operations) == 11  # every documented route is fuzzed
    known = _known_ids(base)
    ran = {"cases": 0, "responses_5xx": 0, "operations_without_invalid_input": 0}

    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in known.items() if k in names}
        strategies = [operation.as_strategy(generation_mode=mode)]
        if fixed:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def check(case: Any) -> None:
            ran["cases"] += 1
            response = case.call(base_url=base, timeout=30)
            ran["responses_5xx"] += response.status_code >= 500
            case.validate_response(response)

        try:
            check()
        except Unsatisfiable:
            # Nothing to negate (a GET without parameters): no invalid request exists.
            assert mode is GenerationMode.NEGATIVE
            ran["operations_without_invalid_input"] += 1
    record(
        "schemathesis",
        mode=mode.value,
        operations=len(operations),
        cases=ran["cases"],
        responses_5xx=ran["responses_5xx"],
        operations_without_invalid_input=ran["operations_without_invalid_input"],
    )
    assert ran["responses_5xx"] == 0
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
