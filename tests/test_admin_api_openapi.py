"""The admin API's OpenAPI document (issue 19) is written from the table its routes are registered from: every
route of the blueprint is in it and nothing else, each operation names the permission it needs, and the document
is valid OpenAPI 3.1 (``openapi-spec-validator``)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator

from broker.core.admin_scopes import CLIENT_SCOPES
from broker.web.admin_api import PREFIX, bp
from broker.web.admin_api.openapi import document
from broker.web.admin_api.table import OPERATIONS

BASE = "https://sso.city.example.org"
IMPLICIT = {"HEAD", "OPTIONS"}  # added by Flask to every GET rule, answered by Flask itself


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document(OPERATIONS, BASE)


def _routes() -> set[tuple[str, str]]:
    app = Flask("admin_api_routes")
    app.register_blueprint(bp)
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{bp.name}."):
            path = rule.rule.removeprefix(PREFIX).replace("<", "{").replace(">", "}")
            found |= {(method, path) for method in (rule.methods or set()) - IMPLICIT}
    return found


def test_every_route_is_in_the_document_and_every_operation_is_a_route(doc: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert _routes() == documented
    assert len(documented) == len(OPERATIONS) == len({op.operation_id for op in OPERATIONS})


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []
    assert doc["servers"] == [{"url": f"{BASE}/api/admin/v1"}]


def test_each_operation_states_its_permission_and_how_to_call_it(doc: dict[str, Any]) -> None:
    for op in OPERATIONS:
        described = doc["paths"][op.path][op.method.lower()]
        permission = op.permission.value if op.permission is not None else None
        assert described["x-permission"] == permission
        if permission is not None:
            assert f"permission {permission}" in described["description"]
        schemes = {name for requirement in described["security"] for name in requirement}
        assert schemes == (set() if op.public else {"consoleSession"} if op.people_only
                           else {"consoleSession", "clientCredentials"}), op.operation_id
        assert described["responses"][str(op.status)]["content"]["application/json"]["schema"]["$ref"] == (
            f"#/components/schemas/{op.response}")


def test_the_security_schemes_offer_the_client_scopes_and_the_console_cookie(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    flow = schemes["clientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == f"{BASE}/oidc/token" and set(flow["scopes"]) == set(CLIENT_SCOPES)
    assert schemes["consoleSession"] == {**schemes["consoleSession"], "type": "apiKey", "in": "cookie",
                                         "name": "broker_console"}
    people_only = {op.operation_id for op in OPERATIONS if op.people_only}
    assert people_only == {"list-operators", "grant-role", "revoke-role"}
