"""The operator's settings of a SAML app, beside its metadata (``metadata/saml-sp/<stem>.toml``): applied to the
app the metadata describes, validated once per load, and an app whose settings do not validate is skipped rather
than served with the wrong routing or release. Metadata is real pysaml2 SP metadata; the settings are the
operator's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.registry import FileRegistry
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.sp_settings import SpSettings, SpSettingsError, parse_sp_settings, read_sp_settings
from broker.registry.upstreams import UPSTREAM_FOLDER
from broker.web.services import describe_upstream
from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import write_sp_metadata

APP = "https://permits.city.example.org/sp"
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJ"
       "RU5ErkJggg==")


@pytest.fixture
def metadata_dir(tmp_path: Path) -> Path:
    (tmp_path / SP_FOLDER).mkdir()
    return tmp_path


def _settings(metadata_dir: Path, stem: str, text: str) -> None:
    (metadata_dir / SP_FOLDER / f"{stem}.toml").write_text(text)


def test_settings_route_name_and_say_what_an_app_without_requested_attributes_receives(
        metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, requested=())
    _settings(metadata_dir, "permits", f'''
display_name = "Parking permits"
logo_uri = "{PNG}"
policy_uri = "https://permits.city.example.org/privacy"
allowed_upstreams = ["city", "https://idp.example.org/idp"]
default_upstream = "city"
required_acr = "http://eidas.europa.eu/LoA/substantial"
receive = ["email", "given_name", "family_name"]
required = ["email"]
''')

    catalog = load_sp_catalog(metadata_dir)

    assert catalog.problems == ()
    party = catalog.sps[APP].party()
    assert party.display_name == "Parking permits"
    assert party.requested_claims == {"email", "given_name", "family_name"}
    assert party.required_claims == {"email"}
    assert party.allowed_upstreams == ("city", "https://idp.example.org/idp")
    assert party.default_upstream == "city"
    assert party.required_acr == "http://eidas.europa.eu/LoA/substantial"
    assert (party.logo_uri, party.policy_uri) == (PNG, "https://permits.city.example.org/privacy")


def test_without_settings_the_metadata_decides(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, requested=())

    sp = load_sp_catalog(metadata_dir).sps[APP]

    assert sp.requested_claims == frozenset() and sp.operator_claims is False
    assert (sp.allowed_upstreams, sp.default_upstream, sp.required_acr) == ((), None, None)


def test_receive_replaces_the_requested_attributes_and_required_follows_the_metadata(
        metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "library.xml", APP, sp_keys, requested=("mail",),
                      optional=("givenName",))
    _settings(metadata_dir, "library", 'receive = ["email", "family_name"]\n')

    sp = load_sp_catalog(metadata_dir).sps[APP]

    assert sp.requested_claims == {"email", "family_name"} and sp.operator_claims is True
    assert sp.required_claims == {"email"}  # the metadata's isRequired, among what the app receives


@pytest.mark.parametrize(("text", "problem"), [
    ('default_upstream = "google"\nallowed_upstreams = ["city"]\n', "is not one of allowed_upstreams"),
    ('logo_uri = "http://permits.example.org/logo.png"\n', "logo_uri must be an https URL"),
    ('logo_uri = "javascript:alert(1)"\n', "logo_uri must be an https URL"),
    ('logo_uri = "data:image/svg+xml;base64,PHN2Zz4="\n', "logo_uri must be an https URL"),
    ('policy_uri = "ftp://permits.example.org/p"\n', "policy_uri must be an https URL"),
    ('display_name = "https://permits.example.org/sp"\n', "not a URL or entity id"),
    ('receive = ["email", "shoe_size"]\n', "unknown claims ['shoe_size']"),
    ('receive = ["email"]\nrequired = ["family_name"]\n', "does not receive: ['family_name']"),
    ('allowed_upstream = ["city"]\n', "unknown settings ['allowed_upstream']"),
    ('allowed_upstreams = "city"\n', "allowed_upstreams must be a list"),
    ('allowed_upstreams = ["ci\\u007fty"]\n', "non-empty printable texts"),  # DEL could not be written back
    ('display_name = "unterminated\n', "not valid TOML"),
    ('disabled = "yes"\n', "disabled must be true or false"),
])
def test_settings_that_do_not_validate_skip_the_app_and_say_why(
        metadata_dir: Path, sp_keys: SpKeys, text: str, problem: str) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    write_sp_metadata(metadata_dir / SP_FOLDER / "other.xml", "https://other.example.org/sp", sp_keys)
    _settings(metadata_dir, "permits", text)

    catalog = load_sp_catalog(metadata_dir)

    assert list(catalog.sps) == ["https://other.example.org/sp"]  # the others stay registered
    [line] = catalog.problems
    assert line.startswith("permits.xml: its settings are not valid, so the app is not served: permits.toml")
    assert problem in line
    assert str(metadata_dir / SP_FOLDER / "permits.xml") not in catalog.metadata.metadata  # the IdP adapter too


def test_required_beyond_the_metadatas_requests_is_refused(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, requested=("mail",))
    _settings(metadata_dir, "permits", 'required = ["family_name"]\n')

    catalog = load_sp_catalog(metadata_dir)

    assert catalog.sps == {}
    assert "does not receive: ['family_name']" in catalog.problems[0]


def test_settings_without_metadata_are_reported(metadata_dir: Path) -> None:
    _settings(metadata_dir, "gone", 'display_name = "Old app"\n')

    assert load_sp_catalog(metadata_dir).problems == ("gone.toml: settings without metadata (gone.xml); not used",)


@pytest.mark.parametrize("settings", [
    SpSettings(),
    SpSettings(display_name='Kirjasto "Helmet" \\ Ä', logo_uri=PNG, policy_uri="https://h.example.org/p",
               allowed_upstreams=("city", "https://idp.example.org/idp"), default_upstream="city",
               required_acr="http://eidas.europa.eu/LoA/low", receive=frozenset({"email", "name"}),
               required=frozenset({"email"})),
    SpSettings(display_name="Permits", disabled=True),
])
def test_the_written_file_reads_back_the_same(tmp_path: Path, settings: SpSettings) -> None:
    (tmp_path / "app.toml").write_text(settings.to_toml())

    assert read_sp_settings(tmp_path / "app.xml") == settings


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(SpSettingsError) as caught:
        parse_sp_settings({"logo_uri": "http://x.example.org/l.png", "receive": ["nope"], "colour": "red"})

    assert len(caught.value.problems) == 3


def test_an_inline_logo_may_be_longer_than_a_url() -> None:
    logo = "data:image/png;base64," + "A" * 20_000

    assert parse_sp_settings({"logo_uri": logo}).logo_uri == logo


def test_settings_are_picked_up_without_a_restart_and_name_registered_idps_by_entity_id(
        metadata_dir: Path, sp_keys: SpKeys) -> None:
    (metadata_dir / UPSTREAM_FOLDER).mkdir()
    (metadata_dir / UPSTREAM_FOLDER / "city.json").write_text(
        '{"name": "city", "protocol": "saml", "entity_id": "https://idp.city.example.org/idp"}')
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits")
    registry = FileRegistry(metadata_dir, metadata_dir.parent, describe_upstream, check_interval=0)
    before = registry.downstream(APP)
    assert before is not None and before.allowed_upstreams == ()

    _settings(metadata_dir, "permits", 'display_name = "Parking permits"\n'
                                       'allowed_upstreams = ["https://idp.city.example.org/idp"]\n')
    party = registry.downstream(APP)

    assert party is not None and party.display_name == "Parking permits"
    # the registered name beside the entity id: an SSO session records "city"
    assert party.allowed_upstreams == ("https://idp.city.example.org/idp", "city")


@pytest.mark.parametrize(("published", "settings", "name"), [
    ({"display_name": "Permits (mdui)", "service_name": "Permits service", "organization": "City"}, "",
     "Permits (mdui)"),  # SAML Metadata UI §2.1.1 first
    ({"service_name": "Permits service", "organization": "City"}, "", "Permits service"),  # §2.4.4.1 ServiceName
    ({"organization": "City of Example"}, "", "City of Example"),  # §2.3.2.1 OrganizationDisplayName
    ({}, "", "permits.city.example.org"),  # nothing published: the entity id's host, never the entity id
    ({"display_name": "Permits (mdui)"}, 'display_name = "Parking permits"\n', "Parking permits"),  # the operator
])
def test_the_name_citizens_see(metadata_dir: Path, sp_keys: SpKeys, published: dict[str, str], settings: str,
                               name: str) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, **published)
    if settings:
        _settings(metadata_dir, "permits", settings)

    assert load_sp_catalog(metadata_dir).sps[APP].display_name == name


@pytest.mark.parametrize(("logo", "shown"), [
    ("https://permits.city.example.org/logo.png", "https://permits.city.example.org/logo.png"),
    ("http://permits.city.example.org/logo.png", None),  # not over plain http
    ("javascript:alert(1)", None),
])
def test_the_metadatas_logo_and_privacy_statement(metadata_dir: Path, sp_keys: SpKeys, logo: str,
                                                  shown: str | None) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys, display_name="Permits", logo=logo,
                      privacy_url="https://permits.city.example.org/privacy")

    sp = load_sp_catalog(metadata_dir).sps[APP]

    assert (sp.logo_uri, sp.policy_uri) == (shown, "https://permits.city.example.org/privacy")


def test_a_disabled_app_is_not_served_and_that_is_no_problem(metadata_dir: Path, sp_keys: SpKeys) -> None:
    write_sp_metadata(metadata_dir / SP_FOLDER / "permits.xml", APP, sp_keys)
    write_sp_metadata(metadata_dir / SP_FOLDER / "other.xml", "https://other.example.org/sp", sp_keys)
    _settings(metadata_dir, "permits", 'display_name = "Permits"\ndisabled = true\n')

    catalog = load_sp_catalog(metadata_dir)

    assert (list(catalog.sps), catalog.problems) == (["https://other.example.org/sp"], ())
    assert str(metadata_dir / SP_FOLDER / "permits.xml") not in catalog.metadata.metadata  # the IdP adapter too
