"""Roles for apps in the core (issue 19; ``broker.core.app_roles``, ``broker.core.claims``): role names every
protocol carries unchanged, the groups of the identity used for this sign-in, the multi-valued ``groups`` and
``roles`` claims, bounded, and never asserted by an upstream."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.core.app_roles import group_problem, groups_of, role_problem, with_roles
from broker.core.claims import (
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    ClaimValue,
    claim,
    claims_for_scopes,
    coerce,
    from_saml_name,
    from_upstream_oidc_name,
    from_upstream_saml_name,
)
from broker.core.model import LinkedIdentity, utcnow
from broker.core.profile import IdentityClaims, MergeRules, merge
from broker.core.release import release


@pytest.mark.parametrize(("name", "ok"), [
    ("clerk", True), ("app:admin", True), ("a.b_c-d", True), ("x" * 64, True),
    ("", False), ("has space", False), ("-lead", False), ("x" * 65, False), ("rôle", False), ("a\u202eb", False),
])
def test_role_names(name: str, ok: bool) -> None:
    assert (role_problem(name) is None) is ok


def test_a_group_must_be_printable_and_no_longer_than_the_broker_keeps() -> None:
    assert group_problem("op", "g-1") is None
    assert group_problem("op", "g" * (MAX_VALUE_LENGTH + 1)) is not None
    assert group_problem("op", " g") is not None and group_problem("", "g") is not None


def test_groups_are_a_bounded_list_of_texts() -> None:
    groups = claim("groups")
    assert coerce(groups, ["a", "b", "a", " c ", 7, "", "x" * (MAX_VALUE_LENGTH + 1)]) == ("a", "b", "c")
    assert coerce(groups, "one") == ("one",)
    assert coerce(groups, {"not": "a list"}) is None and coerce(groups, []) is None
    many = coerce(groups, [f"g{i}" for i in range(MAX_VALUES + 50)])
    assert isinstance(many, tuple) and len(many) == MAX_VALUES


def test_group_attributes_of_saml_idps_and_ad_fs_are_groups_but_entitlements_are_not() -> None:
    for name in ("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf", "memberOf",
                 "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"):
        found = from_upstream_saml_name(name)
        assert found is not None and found.name == "groups", name
    assert from_saml_name("urn:oid:1.3.6.1.4.1.5923.1.1.1.7") is None  # eduPersonEntitlement


def test_an_upstream_never_asserts_roles() -> None:
    assert from_upstream_oidc_name("roles") is None
    assert from_upstream_saml_name("urn:civic-broker:attribute:roles", "roles") is None
    assert from_upstream_oidc_name("groups") is not None
    found = from_saml_name("urn:civic-broker:attribute:roles")  # an SP's RequestedAttribute still names it
    assert found is not None and found.name == "roles"


def test_the_roles_scope_asks_for_roles_and_no_scope_asks_for_groups() -> None:
    assert claims_for_scopes(["openid", "roles"]) == {"roles"}
    assert "groups" not in claims_for_scopes(["openid", "profile", "email", "address", "phone", "roles"])


def _identity(upstream: str, minutes: int, claims: dict[str, ClaimValue]) -> IdentityClaims:
    at = utcnow() - timedelta(minutes=minutes)
    return IdentityClaims(LinkedIdentity("acc", f"https://{upstream}", f"s-{minutes}", upstream, at, at),
                          claims, None)


def test_the_groups_are_those_of_the_sign_ins_upstream_its_latest_identity() -> None:
    identities = [_identity("op", 30, {"groups": ("old",)}), _identity("op", 1, {"groups": ("new",)}),
                  _identity("entra", 0, {"groups": ("entra-group",)})]
    assert groups_of(identities, "op") == {"new"}
    assert groups_of(identities, "github") == frozenset()


def test_roles_never_come_from_a_profile_and_an_empty_list_is_no_claim() -> None:
    profile = merge([_identity("op", 1, {"roles": ("admin",), "email": "a@example.org"})], MergeRules()).claims()
    assert "roles" not in profile
    assert "roles" not in with_roles({"roles": ("stale",)}, ())
    assert with_roles(profile, ("clerk",))["roles"] == ("clerk",)


def test_a_released_list_is_normalised_value_by_value() -> None:
    released = release({"roles": ("clerk", "bad\u202eone", "clerk")}, frozenset({"roles"}))
    assert released["roles"] == ("clerk", "badone")
