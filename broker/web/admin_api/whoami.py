"""``GET /whoami``: who the caller is and what it may do (any operator or automation client)."""

from __future__ import annotations

from typing import Any

from flask_wtf.csrf import generate_csrf

from broker.web.admin_api.operation import Call, Operation


def whoami(call: Call) -> dict[str, Any]:
    """The caller; a console session also gets its CSRF token, which calls that change something must send."""
    caller = call.caller
    answer: dict[str, Any] = {
        "kind": caller.kind,
        "id": caller.id,
        "roles": sorted(r.value for r in caller.operator.roles) if caller.operator is not None else [],
        "permissions": sorted(p.value for p in caller.permissions),
    }
    if caller.operator is not None:
        answer["csrf_token"] = generate_csrf()
    return answer


OPERATIONS = (
    Operation("GET", "/whoami", "whoami", "Who is calling", whoami, "WhoAmI",
              description="The operator (account id and roles) or the automation client (client_id), and the "
                          "permissions the call holds. A console session's answer carries its CSRF token."),
)
