"""Every operation of the admin API, in one table: the blueprint registers its routes from it and the OpenAPI
document is written from it (``openapi.document``)."""

from __future__ import annotations

from typing import Any

from broker.web.admin_api import (
    app_roles,
    apps,
    audit_trail,
    citizens,
    openapi,
    operations_admin,
    operators,
    source_files,
    whoami,
)
from broker.web.admin_api.operation import Call, Operation
from broker.web.services import services


def _document(call: Call) -> dict[str, Any]:
    return openapi.document(OPERATIONS, services().settings.base_url)


OPERATIONS: tuple[Operation, ...] = (
    *whoami.OPERATIONS,
    *citizens.OPERATIONS,
    *audit_trail.OPERATIONS,
    *operators.OPERATIONS,
    *apps.OPERATIONS,
    *app_roles.OPERATIONS,
    *operations_admin.OPERATIONS,
    *source_files.OPERATIONS,
    Operation("GET", "/openapi.json", "openapi", "This OpenAPI document", _document, "OpenApiDocument", public=True),
)
