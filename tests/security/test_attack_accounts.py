"""Attacks on whose account a sign-in reaches: pre-account takeover through a shared e-mail address, nOAuth
(Microsoft Entra's mutable, unverified ``email``), Apple's private relay addresses, and GitHub login renames
(docs/security.md, the rows of the same names).

The rule under attack (``broker.core.linking.resolve_account``, ``broker.storage.accounts.SqlAccountStore``):
an account is found by the exact (issuer, subject) pair an upstream asserted, never by an e-mail address.
A second identity joins an account only through an explicit, proven link (``broker.web.linking`` from the portal,
``broker.web.link_offer`` after proving the old identity); a matching e-mail address is at most an offer.

Each test signs the victim and the attacker in end to end, through a pysaml2 SP, the broker and real or
simulated providers (the demo OpenID provider, a simulated GitHub, an Entra look-alike, an Apple-style
provider on another site), and checks that the app sees two different people.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from broker.core.model import EmailTrust
from broker.storage.tables import LinkedIdentityRow
from tests.flows.federation import saml_status
from tests.flows.saml_to_social_support import TENANT
from tests.peers.browser import Browser
from tests.peers.github_sim import GitHubEmail, GitHubUser
from tests.security.accounts_support import (
    AINO_RELAY,
    COPYCAT,
    VICTIM_EMAIL,
    World,
    world,
)
from tests.security.attack_support import (
    AUTHN_FAILED,
    OFFER,
    IdentitySpy,
    login_with_hint,
    press,
    until_app_or_offer,
)

__all__ = ["world"]  # the fixture, from tests/security/accounts_support.py


def _sign_in(world: World, upstream: str) -> Any:
    with Browser() as browser:  # each person in their own browser: no SSO session carries over
        return login_with_hint(world.federation, browser, upstream)


# -- pre-account takeover ---------------------------------------------------------------------------------------


def test_pre_account_takeover_same_verified_email_at_another_upstream(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker signs up first, at another provider, with the victim's address (verified there). When the
    victim signs in with her own provider she must get her own, new account, not the attacker's, and the
    attacker must never reach hers."""
    spy = IdentitySpy(monkeypatch)
    attacker = _sign_in(world, "other")
    provider = world.other.provider
    with Browser() as browser:  # she presses "link"; the attacker's provider answers as Mallory, silently
        _, page = until_app_or_offer(world.federation, browser, "op")
        assert OFFER in page.text and world.federation.accounts() == 1
        with monkeypatch.context() as silent:
            silent.setattr(provider, "mischief", dataclasses.replace(
                provider.mischief, claim_overrides={"auth_time": int(time.time()) - 3600}))
            refused = press(browser, page, "Sign in with Other provider to link")
        assert saml_status(browser.form_fields(refused))[1] == AUTHN_FAILED  # no fresh sign-in: no proof
        assert world.federation.count(LinkedIdentityRow) == 1
    with Browser() as browser:  # the matching verified address is only ever an offer; she declines it
        request_id, page = until_app_or_offer(world.federation, browser, "op")
        page = press(browser, page, "continue with a separate account")
        victim = world.federation.sps["sp1"].parse(browser.form_fields(page)["SAMLResponse"], request_id)
    attacker_again = _sign_in(world, "other")

    assert [i.linkable_email for i in spy.seen] == [VICTIM_EMAIL] * 3  # both addresses are verified: the bait
    assert world.federation.accounts() == 2 and world.federation.count(LinkedIdentityRow) == 2
    assert victim.get_subject().text != attacker.get_subject().text
    assert attacker_again.get_subject().text == attacker.get_subject().text
    assert victim.get_identity()["givenName"] == ["Anna"]
    assert attacker_again.get_identity()["givenName"] == ["Mallory"]


# -- nOAuth: a mutable, unverified e-mail ------------------------------------------------------------------------


def test_noauth_entra_account_with_the_victims_email(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Entra tenant admin (of an allowed tenant) sets a user's ``email`` to the victim's address, and the token
    even says ``email_verified``: the broker keys Entra people on tid+oid, reports the address as mutable and never
    verified, and the attacker lands in an account of their own."""
    spy = IdentitySpy(monkeypatch)
    victim = _sign_in(world, "op")
    provider = world.entra.provider
    world.entra.sign_in(TENANT, sub="pairwise-attacker")
    provider.mischief = dataclasses.replace(provider.mischief, claim_overrides={
        **provider.mischief.claim_overrides, "email": VICTIM_EMAIL, "email_verified": True})
    attacker = _sign_in(world, "entra")

    entra_identity = spy.seen[-1]
    assert entra_identity.upstream == "entra"
    assert entra_identity.email_trust is EmailTrust.MUTABLE
    assert entra_identity.claims.get("email_verified") is False and entra_identity.linkable_email is None
    assert attacker.get_subject().text != victim.get_subject().text
    assert "mail" not in attacker.get_identity()  # never released unverified: apps keyed on mail stay safe
    assert world.federation.accounts() == 2


# -- Apple private relay -------------------------------------------------------------------------------------------


def test_apple_private_relay_address_never_matches_another_account(world: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay address is Aino's for this team only. Another provider's account claiming that very address
    (verified) is someone else, and the relay address itself is never offered for linking."""
    spy = IdentitySpy(monkeypatch)
    aino = _sign_in(world, "apple")
    world.other.sign_in_as(COPYCAT)
    copycat = _sign_in(world, "other")

    apple_identity, other_identity = spy.seen
    assert apple_identity.claims["email"] == AINO_RELAY
    assert apple_identity.email_trust is EmailTrust.PRIVATE_RELAY and apple_identity.linkable_email is None
    assert other_identity.claims["email"] == AINO_RELAY
    assert copycat.get_subject().text != aino.get_subject().text
    assert world.federation.accounts() == 2


# -- GitHub login rename ----------------------------------------------------------------------------------------


def test_github_login_renamed_and_taken_over_by_someone_else(world: World) -> None:
    """Mona renames her GitHub login; Mallory registers the freed name "octocat" and puts Mona's address in her
    public profile (GitHub never verifies that one). Mallory must reach neither Mona's account nor her address."""
    sim = world.github.sim
    mona = _sign_in(world, "github")
    renamed = sim.users[583231]
    sim.users[583231] = dataclasses.replace(renamed, login="mona-renamed")
    sim.users[666] = GitHubUser(id=666, login="octocat", name="Mallory", email="mona@example.org", emails=(
        GitHubEmail("mallory@example.org", primary=True, verified=True),
        GitHubEmail("mona@example.org", verified=False),
    ))
    sim.signed_in = 666
    mallory = _sign_in(world, "github")
    sim.signed_in = 583231
    mona_again = _sign_in(world, "github")

    assert mona.get_identity()["mail"] == ["mona@example.org"]
    assert mallory.get_identity()["mail"] == ["mallory@example.org"]
    assert mallory.get_subject().text != mona.get_subject().text
    assert mona_again.get_subject().text == mona.get_subject().text
    assert world.federation.accounts() == 2
