"""``email_relay``: whether the released e-mail address is a private relay address (``core.email_relay``), in the
claim table, the unified profile (with the address it describes) and the release."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from broker.core.claims import NAMEFORMAT_URI, ClaimValue, claim, claims_for_scopes, from_oidc_name, from_saml_name
from broker.core.consent import Consent, ConsentHow, ConsentQuestion, ReleasePolicy, granted_claims, needs_asking
from broker.core.email_relay import is_relay_address, relay_flag
from broker.core.model import LinkedIdentity
from broker.core.profile import NO_CONFIGURED_RULES, IdentityClaims, MergeRules, merge
from broker.core.release import release
from tests.core.builders import NOW

RELAY = "x7k2m9qp4r@privaterelay.appleid.com"
ASKED = frozenset({"email", "email_verified", "email_relay"})


def linked(upstream: str, claims: Mapping[str, ClaimValue], used: timedelta = timedelta(0)) -> IdentityClaims:
    identity = LinkedIdentity("account-1", f"https://{upstream}.example/", "anna", upstream, NOW - timedelta(days=9),
                              NOW + used)
    return IdentityClaims(identity, claims, None)


def test_the_claim_has_its_own_names_and_no_scope() -> None:
    relay = claim("email_relay")

    assert (relay.oidc_name, relay.oidc_scope) == ("email_relay", None)  # asked for by the claims parameter only
    assert (relay.saml_uri, relay.saml_friendly) == ("urn:civic-broker:attribute:email_relay", "emailRelay")
    assert from_oidc_name("email_relay") is relay
    assert from_saml_name("urn:civic-broker:attribute:email_relay") is relay
    assert from_saml_name("unknown", "emailRelay") is relay
    assert "email_relay" not in claims_for_scopes(["openid", "email", "profile"])
    assert NAMEFORMAT_URI.endswith(":uri")


@pytest.mark.parametrize(("email", "relay"), [
    (RELAY, True),
    ("X1@PrivateRelay.AppleID.com.", True),
    ("x1@eu.privaterelay.appleid.com", True),
    ("anna@example.org", False),
    ("privaterelay.appleid.com@example.org", False),
    ("anna@notprivaterelay.appleid.com", False),
])
def test_relay_domains(email: str, relay: bool) -> None:
    assert is_relay_address(email) is relay


def test_what_the_upstream_said_or_the_domain_decides() -> None:
    assert relay_flag({"email": "anna@example.org", "email_relay": True}) is True  # Apple's is_private_email
    assert relay_flag({"email": RELAY}) is True  # stored before the claim existed
    assert relay_flag({"email": RELAY, "email_relay": False}) is True  # the domain cannot be argued away
    assert relay_flag({"email": "anna@example.org"}) is False
    assert relay_flag({"email_relay": True}) is None  # no address: nothing to describe


@pytest.mark.parametrize(("rule", "address", "relay"), [
    ("most_recent_verified", "anna@example.org", False),  # both verified: the newer Google address
    ("preferred_upstream:apple", RELAY, True),
    ("most_recent", "anna@example.org", False),
])
def test_the_flag_describes_the_address_the_profile_chose(rule: str, address: str, relay: bool) -> None:
    apple = linked("apple", {"email": RELAY, "email_verified": True, "email_relay": True}, used=-timedelta(hours=2))
    google = linked("google", {"email": "anna@example.org", "email_verified": True})

    profile = merge([apple, google], MergeRules(rules={"email": rule}))

    assert profile.claims()["email"] == address
    assert profile.claims()["email_relay"] is relay
    assert profile.values["email_relay"].upstream == profile.values["email"].upstream
    assert profile.values["email_relay"].asserted_at == profile.values["email"].asserted_at


def test_release_only_to_who_asked_and_only_with_the_address() -> None:
    verified = merge([linked("apple", {"email": RELAY, "email_verified": True, "email_relay": True})],
                     NO_CONFIGURED_RULES).claims()
    unverified = merge([linked("apple", {"email": RELAY, "email_verified": False, "email_relay": True})],
                       NO_CONFIGURED_RULES).claims()

    assert release(verified, ASKED) == {"email": RELAY, "email_verified": True, "email_relay": True}
    assert release(verified, frozenset({"email", "email_verified"})) == {"email": RELAY, "email_verified": True}
    assert release(verified, frozenset({"email_relay"})) == {}  # never without the address it describes
    assert release(unverified, ASKED) == {"email_verified": False}  # the address is held back, so is its flag
    assert release(unverified, ASKED, unverified_email=True)["email_relay"] is True


def test_consent_to_the_address_covers_the_flag_and_asks_no_one_again() -> None:
    """An app that starts asking for email_relay does not send its citizens back to the consent page: the flag
    is part of the address they agreed to (``core.claims.DESCRIBES``)."""
    before = Consent("account-1", "app", frozenset({"email", "given_name"}), frozenset(), "v1", NOW, ConsentHow.PAGE)
    now_asking = ConsentQuestion(wanted=frozenset({"email", "email_verified", "email_relay", "given_name"}),
                                 required=frozenset())
    declined_email = Consent("account-1", "app", frozenset({"given_name"}), frozenset({"email"}), "v1", NOW,
                             ConsentHow.PAGE)

    assert not needs_asking("app", before, now_asking, ReleasePolicy(version="v1"))
    assert granted_claims(before, now_asking) == {"email", "email_verified", "email_relay", "given_name"}
    assert granted_claims(declined_email, now_asking) == {"given_name"}  # no flag without its address
