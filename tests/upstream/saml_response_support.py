"""Issuing and verifying upstream SAML Responses (subject, expectations, clock), shared by the upstream and attack
tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broker.upstream.saml_response import (
    ResponseExpectations,
    VerifiedAssertion,
    verify_response,
)
from tests.peers.saml_idp import (
    IdpWorld,
)

IDENTITY = {"mail": ["anna@example.org"], "givenName": ["Anna"], "urn:oid:2.5.4.4": ["Virtanen"]}
NAME_ID = "anna-7f3a9c"


def expectations(world: IdpWorld, request_id: str | None, **changes: Any) -> ResponseExpectations:
    """What the broker expects from ``world.idp`` for the AuthnRequest ``request_id``."""
    base = ResponseExpectations(
        sp_entity_id=world.sp_entity_id,
        acs_urls=frozenset({world.acs_url}),
        idp_entity_id=world.idp.entity_id,
        signing_certs=(world.cert_b64(),),
        in_response_to=request_id,
        decryption_keys=(Path(world.sp_key_file).read_bytes(),),
    )
    return replace(base, **changes)


def issue(world: IdpWorld, request_id: str | None, idp: Any = None, **kwargs: Any) -> str:
    """A real base64 SAMLResponse from ``idp`` (default ``world.idp``) for ``request_id``."""
    kwargs.setdefault("attributes", IDENTITY)
    kwargs.setdefault("name_id", NAME_ID)
    return str((idp or world.idp).respond(destination=world.acs_url, in_response_to=request_id,
                                          sp_entity_id=world.sp_entity_id, **kwargs))


def now() -> datetime:
    return datetime.now(UTC)


def verify(world: IdpWorld, request_id: str | None, response: str, **changes: Any) -> VerifiedAssertion:
    return verify_response(response, expectations(world, request_id, **changes), now())
