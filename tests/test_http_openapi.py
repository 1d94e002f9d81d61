"""The HTTP API against its own OpenAPI document: schemathesis generates requests from
/openapi.json of a registry served from a subprocess on 127.0.0.1 (the seeds' actors and a
sleeper, see http_registry.py), valid ones and invalid ones, and checks every reply: never a
5xx, always a status, content type and body the document declares. The same again with a
scoped token: every 403 is then a scope refusal, and only where the scope says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from agentos_nb.http.runtime_files import RUNTIME_DIR_VARIABLE, RegistryRuntimeInfo, list_runtime_files
from conftest import MODEL_KEYS

HERE = Path(__file__).parent
TOKEN = "openapi-test-token"
SCOPED_TOKEN = "openapi-scoped-token-0123456789"
SCOPE = {
    "routes": ["send", "wait", "actions", "read"],
    "actors": ["issue_worker/*", "sleeper"],
    "queues": ["issues"],
}
STARTUP_SECONDS = 60.0
EXAMPLES = 10
"""Requests per operation and mode; with about 110 operations, a few thousand in all."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def scope_refusals_only_where_the_scope_says(ctx: CheckContext, response, case: schemathesis.Case) -> None:
    """With the scoped token, a 403 is `http.forbidden`, and comes exactly where `x-scope` is
    not in the token's scope (actor and queue refusals are checked in test_http_scopes.py)."""
    if response.request.headers.get("Authorization") != f"Bearer {SCOPED_TOKEN}":
        assert response.status_code != 403 or response.json()["error"] != "http.forbidden"
        return
    kind = case.operation.definition.raw["x-scope"]
    if kind == "previews":  # a signed link opens it whatever the token: tests/test_previews.py
        return
    if response.status_code == 403:
        assert response.json()["error"] == "http.forbidden", response.text
    if kind not in SCOPE["routes"] and kind != "health":
        assert response.status_code in (403, 405), f"{kind} is outside the scope: {response.status_code}"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryRuntimeInfo]:
    """tests/http_registry.py serving on 127.0.0.1 in a subprocess, until the module's tests end,
    with a scoped token besides its own."""
    runtime = tmp_path_factory.mktemp("runtime")
    token_file = tmp_path_factory.mktemp("tokens") / "tokens.json"
    token_file.write_text(json.dumps({"tokens": [{"token": SCOPED_TOKEN, **SCOPE}]}))
    env = {name: value for name, value in os.environ.items() if name not in MODEL_KEYS}
    env[RUNTIME_DIR_VARIABLE] = str(runtime)
    process = subprocess.Popen(
        [sys.executable, str(HERE / "http_registry.py"), "0", TOKEN, str(token_file)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    previous = os.environ.get(RUNTIME_DIR_VARIABLE)
    os.environ[RUNTIME_DIR_VARIABLE] = str(runtime)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not list_runtime_files():
            assert process.poll() is None, "the server exited before serving"
            assert time.monotonic() < deadline, "the server did not start serving"
            time.sleep(0.05)
        [info] = list_runtime_files()
    finally:
        if previous is None:
            del os.environ[RUNTIME_DIR_VARIABLE]
        else:
            os.environ[RUNTIME_DIR_VARIABLE] = previous
    yield info
    process.terminate()
    assert process.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def api_schema(live_server: RegistryRuntimeInfo) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{live_server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )


@pytest.mark.parametrize("token", [TOKEN, SCOPED_TOKEN], ids=["full", "scoped"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_reply_is_one_the_document_declares_and_none_is_a_server_error(api_schema, mode, token):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/events":  # never ends while the registry runs: it has its own tests
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def replies_conform(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[*CHECKS, scope_refusals_only_where_the_scope_says],
                timeout=60,
            )

        try:
            replies_conform()
        except Unsatisfiable:  # nothing of this operation can be made invalid (GET /health)
            assert mode is GenerationMode.NEGATIVE
        except Exception as error:
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)


def test_the_document_is_served_only_with_the_token(live_server):
    url = f"{live_server.url}/openapi.json"
    assert httpx.get(url).status_code == 401
    document = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "/actors/issue_worker/{key}/queues/issues" in document["paths"]
    assert "/actors/sleeper/{key}/queues/naps" in document["paths"]


def test_the_document_says_which_scope_each_operation_needs(live_server):
    document = httpx.get(
        f"{live_server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    operations = [op for methods in document["paths"].values() for op in methods.values()]
    assert all(
        op["x-scope"] and f"`{op['x-scope']}`" in op["description"]
        for op in operations
        if op["x-scope"] != "health"
    )
    assert document["paths"]["/actors/issue_worker/{key}/queues/issues"]["post"]["x-scope"] == "send"
    assert document["paths"]["/actors/vm/{key}/exec"]["post"]["x-scope"] == "exec"
