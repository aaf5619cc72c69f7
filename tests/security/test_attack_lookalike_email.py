"""Look-alike e-mail addresses never match (issue 15, item 7): a link offer is made only for *the same* verified
address, compared in ``broker.core.email_address.canonical_email`` form, never for one that only looks like
it (UTS #39 confusables, fullwidth and compatibility characters, invisible bidirectional marks)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.core.email_address import canonical_email
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.storage import SqlAccountStore, create_engine_for, upgrade
from broker.storage.sealing import Sealer

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
VICTIM = "anna.virtanen@kaupunki.example"
KEY = secrets.token_bytes(32)

LOOK_ALIKES = [
    "\u0430nna.virtanen@kaupunki.example",  # Cyrillic U+0430 (UTS #39 confusable of Latin a)
    "anna.virtanen@k\u0430upunki.example",  # Cyrillic U+0430 in the domain (an IDN homograph)
    "\uff41nna.virtanen@kaupunki.example",  # fullwidth U+FF41 in the local part (NFKC would make it "a")
    "anna.virtanen@\uff4baupunki.example",  # fullwidth U+FF4B in the domain (IDNA 2003 nameprep would make it "k")
    "anna.virtanen@\u212aaupunki.example",  # Kelvin sign (NFC and str.lower() would make it "k")
    "anna.virtanen@kaupunki.example\u200e",  # an invisible LEFT-TO-RIGHT MARK (TR#9 §2.6)
    "anna.virtanen@\u202eelpmaxe.iknupuak",  # RIGHT-TO-LEFT OVERRIDE: displays like the victim's domain
    "anna.virtane\u0578@kaupunki.example",  # Armenian U+0578 for n
    "anna.virtanen@kaupunki.example\r\n",  # a trailing line break
    " anna.virtanen@kaupunki.example",  # a leading space, which str.strip() used to remove
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAccountStore]:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield SqlAccountStore(engine, Sealer([secrets.token_bytes(32)]),
                          lambda address: hmac.new(KEY, address.encode(), hashlib.sha256).hexdigest())
    engine.dispose()


def _identity(subject: str, email: str) -> UpstreamIdentity:
    return UpstreamIdentity(upstream="city-idp", issuer="https://idp.city.example", subject=subject,
                            claims={"email": email, "email_verified": True}, acr=None, auth_time=NOW,
                            email_trust=EmailTrust.VERIFIED)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_a_look_alike_address_never_matches_the_victims(store: SqlAccountStore, look_alike: str) -> None:
    store.create_with_identity(_identity("victim", VICTIM), NOW)
    assert [o.subject for o in store.verified_email_owners(VICTIM)] == ["victim"]  # the real one does match
    assert store.verified_email_owners(look_alike) == []
    store.create_with_identity(_identity("mallory", look_alike), NOW)  # the attacker's account, first the other way
    assert [o.subject for o in store.verified_email_owners(VICTIM)] == ["victim"]


@pytest.mark.parametrize("same", ["Anna.Virtanen@Kaupunki.Example", "ANNA.VIRTANEN@KAUPUNKI.EXAMPLE"])
def test_the_same_address_in_other_ascii_case_matches(store: SqlAccountStore, same: str) -> None:
    store.create_with_identity(_identity("victim", VICTIM), NOW)
    assert [o.subject for o in store.verified_email_owners(same)] == ["victim"]


@pytest.mark.parametrize(("address", "canonical"), [
    ("Anna@City.Example", "anna@city.example"),
    ("anna@m\u00fcnchen.de", "anna@xn--mnchen-3ya.de"),  # U-label and A-label: one domain (RFC 5890)
    ("anna@xn--mnchen-3ya.de", "anna@xn--mnchen-3ya.de"),
    ("J\u00fcrgen@stadt.example", "j\u00fcrgen@stadt.example"),  # only A-Z are folded, ü stays
    ("\u00c5sa@stadt.example", "\u00c5sa@stadt.example"),  # ... and Å is not lower-cased
    ("anne\u0301@x.example", None),  # not NFC as given: no form
    ("anna@M\u00dcNCHEN.de", None),  # nameprep would lower-case Ü: no form
    ("a@b@c.example", None), ("anna", None), ("@city.example", None), ("anna@", None), ("anna@x..example", None),
])
def test_the_canonical_form(address: str, canonical: str | None) -> None:
    assert canonical_email(address) == canonical
    for look_alike in LOOK_ALIKES:
        assert canonical_email(look_alike) != canonical_email(VICTIM)
