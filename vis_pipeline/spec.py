"""The VIS OpenAPI contract shipped with the package, and helpers to read it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

API_BASE_PATH = "/t/vbc.prod/vis/v1"
"""Path prefix of every API operation, as in the spec's server URL."""

DEFAULT_BASE_URL = "https://api.vonage.com" + API_BASE_PATH
"""The real API's base URL."""


@cache
def load_spec() -> dict[str, Any]:
    """The OpenAPI document (parsed once)."""
    text = resources.files("vis_pipeline").joinpath("openapi/vis-openapi.json").read_text("utf-8")
    return json.loads(text)


def operations() -> dict[str, tuple[str, str]]:
    """operationId -> (HTTP method, path template) for every operation of the spec."""
    found: dict[str, tuple[str, str]] = {}
    for path, item in load_spec()["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                found[operation["operationId"]] = (method.upper(), path)
    return found


def success_schema(operation_id: str) -> tuple[int, dict[str, Any] | None]:
    """The success status of an operation and the JSON schema of its body (None: no body).

    The schema is self-contained: ``components`` is attached so ``$ref`` resolves.
    """
    method, path = operations()[operation_id]
    responses = load_spec()["paths"][path][method.lower()]["responses"]
    status = next(int(code) for code in responses if code.startswith("2"))
    content = responses[str(status)].get("content", {}).get("application/json")
    if content is None:
        return status, None
    return status, {**content["schema"], "components": load_spec()["components"]}
