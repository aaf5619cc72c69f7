"""The operator console's release policy (issue 19; README "Operator console", "What each app receives: release
policy and consent"): the version in force, the default rule and each app's, the consent-exempt apps, what
``broker check`` reports about the file, and the consent answers given under each version
(``broker.journeys.policy_admin``). Read-only: the policy stays a file, and the page says which (``view-parties``).
"""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from broker.core.operators import Permission
from broker.journeys import policy_admin
from broker.web.console import operator_page, page
from broker.web.renderer import journeys

bp = Blueprint("console_policy", __name__, url_prefix="/console/policy")


@bp.get("/")
def policy() -> Response:
    return operator_page(Permission.VIEW_PARTIES, lambda op: page(
        "console_policy.html", operator=op, policy=policy_admin.view(journeys())))
