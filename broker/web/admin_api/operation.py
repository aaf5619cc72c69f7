"""One row of the admin API's table: an HTTP method and path, the permission it needs, what it reads and
answers, and the function that answers it. The routes are registered from these rows and the OpenAPI document
(``openapi``) is written from the same rows, so neither can say what the other does not.

Errors (``ApiError``) are JSON ``{"error", "error_description"}`` as OAuth's (RFC 6749 §5.2); those of a refused
bearer token carry the RFC 6750 §3 ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broker.core.operators import Permission

if TYPE_CHECKING:
    from broker.web.admin_api.auth import Caller

#: the methods that change something: a console session's call needs the CSRF token and the broker's origin
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TEMPLATE = re.compile(r"\{([a-z_]+)\}")


class ApiError(Exception):
    """A refusal: ``status``, the error code and its description, and for bearer tokens the challenge."""

    def __init__(self, status: int, error: str, description: str, *, www_authenticate: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.status, self.error, self.description = status, error, description
        self.www_authenticate = www_authenticate
        #: for the operator's log only
        self.detail = detail or description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Param:
    """A query parameter: always text, at most ``max_length`` characters (longer is ``invalid_request``)."""

    name: str
    description: str
    max_length: int = 320
    integer: bool = False


@dataclass(frozen=True)
class Call:
    """What a handler gets: who calls, the path's parameters, the query's (declared ones only) and the JSON body."""

    caller: Caller
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    method: str
    #: the OpenAPI path template below ``/api/admin/v1``: ``/citizens/{account_id}``
    path: str
    operation_id: str
    summary: str
    handler: Callable[[Call], dict[str, Any]]
    #: the component schema of the answer (``schemas.COMPONENTS``)
    response: str
    #: None: any operator or client (``whoami``)
    permission: Permission | None = None
    #: no authentication at all (the OpenAPI document itself)
    public: bool = False
    #: never an automation client, whatever its scopes (``core.admin_scopes.PEOPLE_ONLY``)
    people_only: bool = False
    #: a person must have signed in within ``[console] reauth_minutes`` (``journeys.console.fresh``)
    fresh: bool = False
    query: tuple[Param, ...] = ()
    #: the component schema of the JSON request body, if it takes one
    body: str | None = None
    status: int = 200
    #: the error statuses besides those of authentication (400 invalid_request is always possible)
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def flask_rule(self) -> str:
        """``/citizens/<account_id>`` for ``/citizens/{account_id}``."""
        return _TEMPLATE.sub(r"<\1>", self.path)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_TEMPLATE.findall(self.path))

    @property
    def endpoint(self) -> str:
        return self.operation_id.replace("-", "_")

    @property
    def changes_state(self) -> bool:
        return self.method in STATE_CHANGING
