"""Microsoft Entra ID: tenant allow-list, per-tenant issuer, (tid, oid) identity, email never trusted.

The provider is ``tests.peers.entra``: demo providers at ``{authority}/common/v2.0`` and
``{authority}/{tenant}/v2.0`` issuing Entra-shaped ID tokens. Every refusal test checks the operator detail,
so it cannot pass because another check happened to fail first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.core import errors
from broker.core.model import EmailTrust, UpstreamIdentity
from broker.demo.oidc_provider import DemoClient, Mischief
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.microsoft import (
    MICROSOFT,
    PUBLIC_CLOUD,
    MicrosoftQuirks,
    build_microsoft_quirks,
    locate_microsoft,
    microsoft_options,
)
from broker.upstream.oidc import OidcUpstream
from broker.upstream.oidc_settings import OidcUpstreamSettings
from broker.upstream.presets import OptionValue
from tests.peers.browser import Browser
from tests.peers.entra import EntraHost, start_entra
from tests.upstream.conftest import ALICE, CLIENT_ID, CLIENT_SECRET, OidcWorld, utcnow

TENANT_A = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
TENANT_B = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
TENANT_EVIL = "eeeeeeee-6666-4666-8666-eeeeeeeeeeee"
ALICE_OID = "0a11ce00-0000-4000-8000-00000000a11c"
SECOND_APP = "second-app"


@dataclass(frozen=True)
class Registration:
    name: str = "entra"
    preset: str | None = "microsoft"
    display_name: str | None = None
    issuer: str | None = None
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    scopes: tuple[str, ...] | None = None
    authorization_params: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, OptionValue], ...] = ()


def registration(**options: OptionValue) -> Registration:
    return Registration(options=tuple(options.items()))


@dataclass
class Entra:
    """The login host and a world around its endpoints (the broker's HTTP client, browser, callback)."""

    host: EntraHost
    world: OidcWorld

    def upstream(self, options: Mapping[str, OptionValue], client_id: str = CLIENT_ID) -> OidcUpstream:
        """The adapter as the microsoft preset configures it (issuer, discovery URL, quirks from the options)."""
        reg = registration(authority=self.host.authority, **options)
        given = dict(reg.options)
        issuer, discovery_url = locate_microsoft(given, reg)
        return self.world.upstream(issuer=issuer, discovery_url=discovery_url, client_id=client_id,
                                   quirks=MICROSOFT.build_quirks(given, reg), scopes=MICROSOFT.scopes,
                                   allowed_algs=MICROSOFT.allowed_algs)

    def login(self, upstream: OidcUpstream) -> UpstreamIdentity:
        return self.world.login(upstream)


@pytest.fixture
def entra(provider_key: rsa.RSAPrivateKey, redirect_uri: str) -> Iterator[Entra]:
    clients = (DemoClient(CLIENT_ID, CLIENT_SECRET, (redirect_uri,)),
               DemoClient(SECOND_APP, CLIENT_SECRET, (redirect_uri,)))
    host = start_entra(("common", TENANT_A), clients, (ALICE,), provider_key, auto_login="alice")
    world = OidcWorld(host.endpoints["common"], host.server, redirect_uri, UpstreamHttp(), Browser())
    yield Entra(host, world)
    world.browser.close()
    world.http.close()
    host.stop()


def refused(entra: Entra, upstream: OidcUpstream, words: str) -> None:
    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        entra.login(upstream)
    assert words in (failure.value.detail or ""), failure.value.detail


COMMON_AB: dict[str, OptionValue] = {"tenant": "common", "allowed_tenants": (TENANT_A, TENANT_B)}


# -- multi-tenant issuer and tenant allow-list -----------------------------------------------------------


def test_allowed_tenant_is_accepted_with_tenant_issuer_and_oid(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_B, oid=ALICE_OID)
    upstream = entra.upstream(COMMON_AB)
    assert upstream.settings.issuer == entra.host.authority + "/{tenantid}/v2.0"

    identity = entra.login(upstream)

    assert identity.issuer == entra.host.tenant_issuer(TENANT_B)
    assert identity.subject == ALICE_OID
    assert entra.host.endpoints["common"].hits("discovery") == 1  # from discovery_url, not {issuer}/.well-known


def test_tenant_outside_the_allow_list_is_refused(entra: Entra) -> None:
    # a perfectly valid token from another tenant: right signature, right audience, its own issuer
    entra.host.sign_in_as("common", tid=TENANT_EVIL, oid=ALICE_OID, iss_param=entra.host.tenant_issuer(TENANT_A))
    refused(entra, entra.upstream(COMMON_AB), "is not an allowed tenant")


def test_iss_naming_another_tenant_than_tid_is_refused(entra: Entra) -> None:
    # both tenants are allowed: only the mismatch between iss and tid is wrong
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, iss=entra.host.tenant_issuer(TENANT_B))
    refused(entra, entra.upstream(COMMON_AB), f"is not '{entra.host.tenant_issuer(TENANT_A)}'")


def test_iss_that_is_the_template_itself_is_refused(entra: Entra) -> None:
    template = entra.host.authority + "/{tenantid}/v2.0"
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, iss=template,
                          iss_param=entra.host.tenant_issuer(TENANT_A))
    refused(entra, entra.upstream(COMMON_AB), "ID token: iss")


def test_missing_tid_is_refused(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=None, oid=ALICE_OID, iss=entra.host.tenant_issuer(TENANT_A))
    refused(entra, entra.upstream(COMMON_AB), "no tid claim")


def test_missing_oid_is_refused(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_A, oid=None)
    refused(entra, entra.upstream(COMMON_AB), "no oid claim")


def test_oid_that_is_not_a_guid_is_refused(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_A, oid="alice@example.org")
    refused(entra, entra.upstream(COMMON_AB), "no oid claim")


def test_iss_parameter_must_name_an_allowed_tenant(entra: Entra) -> None:
    """RFC 9207: the authorization response's iss is checked against the allowed tenants' issuers."""
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, iss_param=entra.host.tenant_issuer(TENANT_EVIL))
    refused(entra, entra.upstream(COMMON_AB), "mix-up")
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID,
                          iss_param=entra.host.authority + "/{tenantid}/v2.0")
    refused(entra, entra.upstream(COMMON_AB), "mix-up")
    assert entra.host.endpoints["common"].hits("token") == 0  # refused before the code is spent


def test_discovery_document_must_still_name_the_configured_issuer(entra: Entra) -> None:
    """OIDC Discovery §4.3 applies to the document at discovery_url: it must name the template exactly."""
    entra.host.endpoints["common"].mischief = Mischief(discovery_issuer=entra.host.tenant_issuer(TENANT_EVIL))
    with pytest.raises(errors.UpstreamVerificationFailed) as failure:
        entra.upstream(COMMON_AB).start(utcnow())
    assert "OIDC Discovery §4.3" in (failure.value.detail or "")


# -- single tenant ------------------------------------------------------------------------------------


def test_single_tenant_admits_only_itself_and_keys_like_common(entra: Entra) -> None:
    single = entra.upstream({"tenant": TENANT_A})
    assert single.settings.issuer == entra.host.tenant_issuer(TENANT_A)
    assert single.settings.discovery_url is None

    entra.host.sign_in_as(TENANT_A, tid=TENANT_A, oid=ALICE_OID)
    via_tenant = entra.login(single)
    # the tenant's own iss with another tid (a forgery, or a token minted for another tenant) is not enough
    entra.host.sign_in_as(TENANT_A, tid=TENANT_B, oid=ALICE_OID, iss=entra.host.tenant_issuer(TENANT_A))
    refused(entra, entra.upstream({"tenant": TENANT_A}), "is not an allowed tenant")

    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID)
    via_common = entra.login(entra.upstream(COMMON_AB))
    assert (via_tenant.issuer, via_tenant.subject) == (via_common.issuer, via_common.subject)


# -- identity and e-mail ---------------------------------------------------------------------------------


def test_same_oid_through_another_apps_pairwise_sub_is_the_same_identity(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, sub="pairwise-for-first-app")
    first = entra.login(entra.upstream(COMMON_AB))
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, sub="pairwise-for-second-app")
    second = entra.login(entra.upstream(COMMON_AB, client_id=SECOND_APP))

    assert (first.issuer, first.subject) == (second.issuer, second.subject) == (
        entra.host.tenant_issuer(TENANT_A), ALICE_OID)


def test_same_oid_in_another_tenant_is_another_identity(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID)
    in_a = entra.login(entra.upstream(COMMON_AB))
    entra.host.sign_in_as("common", tid=TENANT_B, oid=ALICE_OID)
    in_b = entra.login(entra.upstream(COMMON_AB))
    assert in_a.subject == in_b.subject and in_a.issuer != in_b.issuer


def test_email_is_mutable_and_never_verified(entra: Entra) -> None:
    """nOAuth: a tenant admin can set any address; the demo user's token even says email_verified true."""
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, email="ceo@victim.example", email_verified=True)
    identity = entra.login(entra.upstream(COMMON_AB))

    assert identity.email_trust is EmailTrust.MUTABLE
    assert identity.claims["email"] == "ceo@victim.example"
    assert identity.claims["email_verified"] is False
    assert identity.linkable_email is None


def test_check_claims_alone_also_enforces_the_allow_list() -> None:
    """Defence in depth: the tenant is checked again after the ID token checks, whatever the issuer hook did."""
    quirks = MicrosoftQuirks(frozenset({TENANT_A}))
    quirks.check_claims({"tid": TENANT_A, "oid": ALICE_OID})
    for claims in ({"tid": TENANT_B, "oid": ALICE_OID}, {"oid": ALICE_OID}, {"tid": [TENANT_A], "oid": ALICE_OID}):
        with pytest.raises(errors.UpstreamVerificationFailed):
            quirks.check_claims(claims)


def test_profile_never_reports_email_verified_true() -> None:
    quirks = MicrosoftQuirks(frozenset({TENANT_A}))
    for id_claims, userinfo in (({"email_verified": True}, {"email": "a@b.example"}),
                                ({"email": "a@b.example"}, {"email_verified": "true"}),
                                ({}, {"email_verified": True})):
        merged = quirks.profile(id_claims, userinfo, {})
        assert merged.get("email_verified", False) is False
        assert quirks.email_trust(merged) is EmailTrust.MUTABLE


# -- configuration ---------------------------------------------------------------------------------------


def test_common_or_organizations_without_allowed_tenants_refused_at_configuration() -> None:
    for tenant in ("common", "organizations"):
        with pytest.raises(ValueError, match="allowed_tenants must name"):
            build_microsoft_quirks({"tenant": tenant}, registration(tenant=tenant))
        with pytest.raises(ValueError, match="allowed_tenants must name"):
            locate_microsoft({"tenant": tenant}, registration(tenant=tenant))


@pytest.mark.parametrize(("options", "words"), [
    ({}, "option tenant is required"),
    ({"tenant": "contoso.onmicrosoft.com"}, "is not 'common'"),
    ({"tenant": "consumers"}, "is not 'common'"),
    ({"tenant": ("common",), "allowed_tenants": TENANT_A}, "option tenant is required"),
    ({"tenant": "common", "allowed_tenants": ("contoso.com",)}, "must list tenant ids"),
    ({"tenant": TENANT_A, "allowed_tenants": (TENANT_B,)}, "admits only itself"),
    ({"tenant": TENANT_A, "tennant": "x"}, "unknown option"),
    ({"tenant": TENANT_A, "authority": "http://login.example"}, "option authority"),
    ({"tenant": TENANT_A, "authority": "https://login.example/common"}, "option authority"),
])
def test_options_are_checked(options: dict[str, OptionValue], words: str) -> None:
    reg = Registration(options=tuple(options.items()))
    with pytest.raises(ValueError, match=words):
        microsoft_options(options, reg)


def test_registration_must_not_contradict_the_options() -> None:
    options: dict[str, OptionValue] = {"tenant": TENANT_A}
    with pytest.raises(ValueError, match="contradicts"):
        locate_microsoft(options, Registration(issuer="https://login.example/x/v2.0", options=(("tenant", TENANT_A),)))
    with pytest.raises(ValueError, match="'profile'"):
        locate_microsoft(options, Registration(scopes=("openid", "email"), options=(("tenant", TENANT_A),)))


def test_preset_locates_the_public_cloud() -> None:
    common = {"tenant": "common", "allowed_tenants": TENANT_A.upper()}  # one value: the CLI's single --option
    assert locate_microsoft(common, registration(**common)) == (
        f"{PUBLIC_CLOUD}/{{tenantid}}/v2.0", f"{PUBLIC_CLOUD}/common/v2.0/.well-known/openid-configuration")
    assert build_microsoft_quirks(common, registration(**common)).allowed_tenants == frozenset({TENANT_A})
    single = {"tenant": TENANT_A.upper()}
    assert locate_microsoft(single, registration(**single)) == (f"{PUBLIC_CLOUD}/{TENANT_A}/v2.0", None)
    assert build_microsoft_quirks(single, registration(**single)).allowed_tenants == frozenset({TENANT_A})
    assert (MICROSOFT.name, MICROSOFT.display_name) == ("microsoft", "Microsoft")
    assert "profile" in MICROSOFT.scopes and next(iter(MICROSOFT.options_help)) == "tenant"


def test_discovery_url_setting_must_be_https() -> None:
    base = {"name": "x", "display_name": "x", "issuer": "https://login.example/{tenantid}/v2.0",
            "client_id": "c", "client_secret": "s", "redirect_uri": "https://broker.example/cb"}
    with pytest.raises(ValueError, match="discovery_url"):
        OidcUpstreamSettings(**base, discovery_url="http://login.example/common/v2.0/.well-known/x")  # type: ignore[arg-type]
    settings = OidcUpstreamSettings(**base)  # type: ignore[arg-type]
    assert settings.discovery_url is None


def test_authorization_request_goes_to_the_common_endpoint(entra: Entra) -> None:
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID)
    url, _ = entra.upstream(COMMON_AB).start(utcnow())
    assert url.startswith(entra.host.authority + "/common/v2.0/authorize?")
    assert parse_qs(urlsplit(url).query)["scope"] == ["openid email profile"]


# -- groups (issue 19: roles for apps) ----------------------------------------------------------------------


def test_group_object_ids_become_groups_and_entras_own_app_roles_are_dropped(entra: Entra) -> None:
    """Entra's ``groups`` claim (group object ids) feeds the operator's role mappings; its ``roles`` claim names
    the tenant's app roles, which are not the broker's roles for apps and must never reach one."""
    group = "c1a2b3c4-0000-4000-8000-00000000000a"
    entra.host.sign_in_as("common", tid=TENANT_A, oid=ALICE_OID, groups=[group, group, "x" * 300],
                          roles=["Tenant.Admin"])

    identity = entra.login(entra.upstream(COMMON_AB))

    assert identity.claims["groups"] == (group,)  # each once; a value too long to be a group id dropped
    assert "roles" not in identity.claims
