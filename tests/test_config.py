"""Settings: a TOML file plus ``BROKER_*`` environment variables, validated once, every problem reported together."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from broker.config.settings import DEFAULT_RELEASE, ConfigError, Settings, load_settings
from broker.core.risk import DEFAULT_RULES, Decision, LoginSignals, decide
from broker.keys.keyring import write_private

SESSION_SECRET = "session-secret-" + "s" * 40
PAIRWISE_SECRET = "pairwise-secret-" + "p" * 40
CLAIMS_KEY = "0123456789abcdef" * 4  # 64 hex digits: 32 bytes

FULL = """
[broker]
base_url = "https://login.city.example.org/"
database_url = "sqlite:///data/broker.db"
metadata_dir = "registrations"
certs_dir = "keys"
secret_key_file = "keys/session.secret"
pairwise_secret_file = "keys/pairwise.secret"
claims_key_file = "keys/claims.key"
session_type = "redis"
redis_url = "redis://127.0.0.1:6379/0"
sso_session_hours = 10
pending_login_minutes = 20
release_claims = ["email", "given_name", "locale"]

[saml]
idp_entity_id = "https://login.city.example.org/idp"
clock_skew_seconds = 30
request_max_age_seconds = 600
want_authn_requests_signed = true
assertion_lifetime_seconds = 120
sha1_allowed_for = ["https://legacy.city.example.org/sp"]

[demo]
enabled = true
provider_port = 6001
app_port = 6002
"""

SECRET_FILES = """
[broker]
secret_key_file = "certs/session.secret"
pairwise_secret_file = "certs/pairwise.secret"
claims_key_file = "certs/claims.key"
"""


def _instance(folder: Path, text: str, *, secrets_in: str = "certs") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / secrets_in / "session.secret", f"{SESSION_SECRET}\n".encode())
    write_private(folder / secrets_in / "pairwise.secret", f"{PAIRWISE_SECRET}\n".encode())
    write_private(folder / secrets_in / "claims.key", f"{CLAIMS_KEY}\n".encode())
    config = folder / "broker.toml"
    config.write_text(text)
    return config


def _problems(config: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ or {})
    return caught.value.problems


def test_a_full_config_loads(tmp_path: Path) -> None:
    config = _instance(tmp_path / "instance", FULL, secrets_in="keys")

    settings = load_settings(config, {})

    instance = tmp_path / "instance"
    assert settings.instance_dir == instance
    assert settings.base_url == "https://login.city.example.org"  # trailing slash dropped
    assert settings.url("/saml2/idp/sso") == "https://login.city.example.org/saml2/idp/sso"
    assert settings.secure_cookies is True
    assert settings.database_url == f"sqlite:///{instance / 'data' / 'broker.db'}"
    assert settings.metadata_dir == instance / "registrations"
    assert settings.certs_dir == instance / "keys"
    assert (settings.session_type, settings.redis_url) == ("redis", "redis://127.0.0.1:6379/0")
    assert settings.sso_session_lifetime == timedelta(hours=10)
    assert settings.pending_login_lifetime == timedelta(minutes=20)
    assert settings.release_claims == {"email", "given_name", "locale"}
    assert settings.saml.idp_entity_id == "https://login.city.example.org/idp"
    assert settings.saml.clock_skew == timedelta(seconds=30)
    assert settings.saml.request_max_age == timedelta(seconds=600)
    assert settings.saml.want_authn_requests_signed is True
    assert settings.saml.assertion_lifetime == timedelta(seconds=120)
    assert settings.saml.sha1_allowed_for == frozenset({"https://legacy.city.example.org/sp"})
    assert (settings.demo.enabled, settings.demo.provider_port, settings.demo.app_port) == (True, 6001, 6002)
    assert settings.secret_key == SESSION_SECRET.encode()  # the file's trailing newline is not part of it
    assert settings.pairwise_secret == PAIRWISE_SECRET.encode()
    assert settings.claims_keys == (bytes.fromhex(CLAIMS_KEY),)  # hex decoded; no previous keys
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.base_url = "https://elsewhere.example.org"  # type: ignore[misc]


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(_instance(tmp_path, SECRET_FILES), {})

    assert settings.base_url == "http://127.0.0.1:5000"
    assert settings.secure_cookies is False
    assert settings.database_url == f"sqlite:///{tmp_path / 'broker.db'}"
    assert (settings.metadata_dir, settings.certs_dir) == (tmp_path / "metadata", tmp_path / "certs")
    assert (settings.session_type, settings.redis_url) == ("sqlalchemy", None)
    assert settings.release_claims == frozenset(DEFAULT_RELEASE)
    assert settings.saml.idp_entity_id == "http://127.0.0.1:5000/saml2/idp/metadata"
    assert settings.saml.clock_skew == timedelta(seconds=120)
    assert settings.saml.want_authn_requests_signed is False
    assert settings.demo.enabled is False


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + """base_url = "https://file.example.org"
database_url = "sqlite:///file.db"

[saml]
clock_skew_seconds = 30
""")
    environ = {
        "BROKER_BASE_URL": "https://env.example.org",
        "BROKER_DATABASE_URL": "postgresql+psycopg://broker@127.0.0.1:5432/broker",
        "BROKER_SAML_CLOCK_SKEW_SECONDS": "45",
        "BROKER_SAML_WANT_AUTHN_REQUESTS_SIGNED": "on",
    }

    settings = load_settings(config, environ)

    assert settings.base_url == "https://env.example.org"
    assert settings.saml.idp_entity_id == "https://env.example.org/saml2/idp/metadata"
    assert settings.database_url == "postgresql+psycopg://broker@127.0.0.1:5432/broker"
    assert settings.saml.clock_skew == timedelta(seconds=45)
    assert settings.saml.want_authn_requests_signed is True
    # and without the environment, the file's values
    from_file = load_settings(config, {})
    assert (from_file.base_url, from_file.saml.clock_skew) == ("https://file.example.org", timedelta(seconds=30))


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _instance(tmp_path / "srv" / "broker", SECRET_FILES + """database_url = "sqlite:///var/broker.db"
metadata_dir = "parties"
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # the config named relatively to the working directory, and through BROKER_CONFIG
    for settings in (load_settings(Path("../srv/broker/broker.toml"), {}),
                     load_settings(None, {"BROKER_CONFIG": "../srv/broker/broker.toml"})):
        instance = tmp_path / "srv" / "broker"
        assert settings.instance_dir == instance
        assert settings.database_url == f"sqlite:///{instance / 'var' / 'broker.db'}"
        assert settings.metadata_dir == instance / "parties"
        assert settings.certs_dir == instance / "certs"
        assert settings.secret_key == SESSION_SECRET.encode()  # certs/session.secret of the instance


@pytest.mark.parametrize("url", [
    "sqlite:////var/lib/broker/broker.db",  # absolute
    "sqlite://",  # in memory
    "sqlite:///:memory:",  # in memory, the other spelling
    "postgresql+psycopg://broker:pw@127.0.0.1:5432/broker",
])
def test_database_urls_that_are_not_relative_paths_are_kept(tmp_path: Path, url: str) -> None:
    settings = load_settings(_instance(tmp_path, SECRET_FILES + f'database_url = "{url}"\n'), {})

    assert settings.database_url == url


def test_a_relative_sqlite_url_with_a_driver_resolves_too(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + 'database_url = "sqlite+pysqlite:///broker.db"\n')

    assert load_settings(config, {}).database_url == f"sqlite+pysqlite:///{tmp_path / 'broker.db'}"


def test_secrets_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text("[broker]\n")  # no secret files named at all
    environ = {"BROKER_SECRET_KEY": "k" * 32, "BROKER_PAIRWISE_SECRET": "p" * 32, "BROKER_CLAIMS_KEY": "ab" * 32,
               "BROKER_CLAIMS_PREVIOUS_KEYS": f"{'cd' * 32} {'EF' * 32}"}

    settings = load_settings(config, environ)

    assert (settings.secret_key, settings.pairwise_secret) == (b"k" * 32, b"p" * 32)
    assert settings.claims_keys == (b"\xab" * 32, b"\xcd" * 32, b"\xef" * 32)


def test_environment_secrets_win_over_files(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES)

    settings = load_settings(config, {"BROKER_PAIRWISE_SECRET": "e" * 40})

    assert settings.pairwise_secret == b"e" * 40
    assert settings.secret_key == SESSION_SECRET.encode()


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    write_private(tmp_path / "short.secret", b"too short\n")
    config.write_text("""
[broker]
base_url = "http://login.city.example.org"
secret_key_file = "short.secret"
sso_session_hours = "many"
pending_login_minutes = 500
release_claims = ["email", "shoe_size"]
session_type = "memcached"

[saml]
clock_skew_seconds = 1.5
want_authn_requests_signed = "maybe"
""")

    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})

    problems = caught.value.problems
    assert problems == [
        "[broker] base_url must use https (plain http is allowed only on localhost)",
        "[broker] session_type must be 'sqlalchemy' or 'redis', got 'memcached'",
        "[broker] release_claims has unknown claims: shoe_size",
        "[saml] clock_skew_seconds must be a whole number, got 1.5",
        "[saml] want_authn_requests_signed must be true or false, got 'maybe'",
        "[broker] sso_session_hours must be a whole number, got 'many'",
        "[broker] pending_login_minutes must be between 1 and 120, got 500",
        f"the secret from {tmp_path / 'short.secret'} is shorter than 32 bytes",
        "no pairwise_secret: set BROKER_PAIRWISE_SECRET or [broker] pairwise_secret_file",
        "no claims_key: set BROKER_CLAIMS_KEY or [broker] claims_key_file; create one with "
        f"'broker keys generate-claims-key {tmp_path / 'certs' / 'claims.key'}' and add "
        'claims_key_file = "certs/claims.key" to [broker]',
    ]
    message = str(caught.value)
    assert message.startswith(f"invalid broker configuration ({config}):")
    assert all(f"  - {problem}" in message for problem in problems)
    assert "too short" not in message  # the secret itself is never shown


@pytest.mark.parametrize(("environ", "problem"), [
    ({"BROKER_SAML_CLOCK_SKEW_SECONDS": "12x"}, "[saml] clock_skew_seconds must be a whole number, got '12x'"),
    ({"BROKER_SAML_CLOCK_SKEW_SECONDS": "601"}, "[saml] clock_skew_seconds must be between 0 and 600, got 601"),
    ({"BROKER_DEMO_APP_PORT": "80"}, "[demo] app_port must be between 1024 and 65535, got 80"),
    ({"BROKER_SECRET_KEY": "x" * 31},
     "the secret from environment variable BROKER_SECRET_KEY is shorter than 32 bytes"),
    ({"BROKER_SESSION_TYPE": "redis"}, "[broker] session_type 'redis' needs redis_url (or BROKER_REDIS_URL)"),
    ({"BROKER_BASE_URL": "ftp://127.0.0.1"}, "[broker] base_url must be an http(s) URL, got 'ftp://127.0.0.1'"),
    ({"BROKER_BASE_URL": "http://[::1"}, "[broker] base_url must be an http(s) URL, got 'http://[::1'"),
])
def test_bad_values_from_the_environment(tmp_path: Path, environ: dict[str, str], problem: str) -> None:
    assert _problems(_instance(tmp_path, SECRET_FILES), environ) == [problem]


@pytest.mark.parametrize(("line", "problem"), [
    ("clock_skew_seconds = true", "[saml] clock_skew_seconds must be a whole number, got True"),
    ("clock_skew_seconds = inf", "[saml] clock_skew_seconds must be a whole number, got inf"),
    ("clock_skew_seconds = -1", "[saml] clock_skew_seconds must be between 0 and 600, got -1"),
    ("idp_entity_id = 5", "[saml] idp_entity_id must be a string"),
])
def test_bad_values_in_the_file(tmp_path: Path, line: str, problem: str) -> None:
    assert _problems(_instance(tmp_path, SECRET_FILES + f"\n[saml]\n{line}\n")) == [problem]


@pytest.mark.parametrize("release", ['"email"', '["email", 5]', '["email", {a = 1}]'])
def test_release_claims_must_be_a_list_of_known_claims(tmp_path: Path, release: str) -> None:
    problems = _problems(_instance(tmp_path, SECRET_FILES + f"release_claims = {release}\n"))

    assert len(problems) == 1
    assert problems[0].startswith("[broker] release_claims has unknown claims: ")


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:5000", "http://localhost:8080", "http://[::1]:5000",
                                      "https://login.city.example.org"])
def test_plain_http_only_on_localhost(tmp_path: Path, base_url: str) -> None:
    settings = load_settings(_instance(tmp_path, SECRET_FILES), {"BROKER_BASE_URL": base_url})

    assert settings.base_url == base_url


@pytest.mark.parametrize("base_url", ["https://login.city.example.org?tenant=1", "https://login.city.example.org#top",
                                      "https://admin@login.city.example.org"])
def test_base_url_is_a_plain_issuer(tmp_path: Path, base_url: str) -> None:
    """base_url is the OpenID issuer: no query, fragment or user part (OIDC Discovery 1.0 §3)."""
    problems = _problems(_instance(tmp_path, SECRET_FILES), {"BROKER_BASE_URL": base_url})

    assert problems == ["[broker] base_url must not have a query, fragment or user name"]


def test_unreadable_secret_file(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(SECRET_FILES)

    assert _problems(config) == [
        f"cannot read secret_key_file {tmp_path / 'certs' / 'session.secret'}: No such file or directory",
        f"cannot read pairwise_secret_file {tmp_path / 'certs' / 'pairwise.secret'}: No such file or directory",
        f"cannot read claims_key_file {tmp_path / 'certs' / 'claims.key'}: No such file or directory",
    ]


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    settings = load_settings(_instance(tmp_path, SECRET_FILES), {})

    for text in (repr(settings), str(settings), repr(settings.saml)):
        assert SESSION_SECRET not in text
        assert PAIRWISE_SECRET not in text
        assert "secret_key=" not in text
        assert "pairwise_secret=" not in text
        assert "claims_keys=" not in text and bytes.fromhex(CLAIMS_KEY).hex() not in text
    assert "base_url='http://127.0.0.1:5000'" in repr(settings)
    assert [f.name for f in dataclasses.fields(Settings) if not f.repr] == ["secret_key", "pairwise_secret",
                                                                            "claims_keys", "metrics_token"]


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "broker.toml"

    with pytest.raises(ConfigError) as caught:
        load_settings(missing, {})

    assert caught.value.problems == [f"{missing} does not exist; create an instance with 'broker init'"]
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None, {"BROKER_CONFIG": str(missing)})


@pytest.mark.parametrize("content", [b"[broker\nbase_url = 1\n", b"# caf\xe9 in Latin-1\n[broker]\n"])
def test_not_toml(tmp_path: Path, content: bytes) -> None:
    config = tmp_path / "broker.toml"
    config.write_bytes(content)

    [problem] = _problems(config)
    assert problem.startswith("not valid TOML: ")


def test_utf8_is_read_as_utf8(tmp_path: Path) -> None:
    config = _instance(tmp_path, "# B\u00fcrgerportal der Stadt\n" + SECRET_FILES
                       + '[saml]\nidp_entity_id = "https://login.example.org/stra\u00dfe"\n')

    assert load_settings(config, {}).saml.idp_entity_id == "https://login.example.org/stra\u00dfe"


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('saml = "strict"\n')

    problems = _problems(config, {"BROKER_SECRET_KEY": "k" * 32, "BROKER_PAIRWISE_SECRET": "p" * 32,
                                  "BROKER_CLAIMS_KEY": CLAIMS_KEY})

    assert problems == ["[saml] must be a table"]


def test_unknown_keys_and_sections_are_reported_with_a_hint(tmp_path: Path) -> None:
    secret = tmp_path / "s.secret"
    secret.write_text("x" * 48)
    config = tmp_path / "broker.toml"
    config.write_text(f"""
[broker]
base_url = "http://127.0.0.1:5000"
secret_key_file = "{secret}"
pairwise_secret_file = "{secret}"
sso_sesion_hours = 2
secret_key = "never-here"
[saml]
clock_skew_secs = 5
[sam]
x = 1
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})

    problems = caught.value.problems
    assert "[broker] unknown setting 'sso_sesion_hours' (did you mean 'sso_session_hours'?)" in problems
    assert any(p.startswith("[broker] unknown setting 'secret_key'") for p in problems)
    assert "[saml] unknown setting 'clock_skew_secs' (did you mean 'clock_skew_seconds'?)" in problems
    assert "unknown section [sam]" in problems


def test_previous_claims_keys_follow_the_current_one(tmp_path: Path) -> None:
    """Rotation: the current key seals, previous ones (one per line, comments allowed) still open."""
    config = _instance(tmp_path, SECRET_FILES + 'claims_previous_keys_file = "certs/claims-previous.keys"\n')
    write_private(tmp_path / "certs" / "claims-previous.keys",
                  f"# retired 2025-01\n{'11' * 32}\n\n  {'22' * 32}  # retired 2024-06\n".encode())

    settings = load_settings(config, {})

    assert settings.claims_keys == (bytes.fromhex(CLAIMS_KEY), b"\x11" * 32, b"\x22" * 32)


@pytest.mark.parametrize(("environ", "problem"), [
    ({"BROKER_CLAIMS_KEY": ""}, "the claims_key must be 64 hexadecimal digits"),  # found by the fuzz test
    ({"BROKER_CLAIMS_KEY": "ab" * 31}, "the claims_key must be 64 hexadecimal digits"),
    ({"BROKER_CLAIMS_KEY": "ab" * 33}, "the claims_key must be 64 hexadecimal digits"),
    ({"BROKER_CLAIMS_KEY": "zz" * 32}, "the claims_key must be 64 hexadecimal digits"),
    ({"BROKER_CLAIMS_KEY": "ab " * 21 + "a"}, "the claims_key must be 64 hexadecimal digits"),  # fromhex allows spaces
    ({"BROKER_CLAIMS_KEY": "\u00e9" * 64}, "the claims_key must be 64 hexadecimal digits"),
    ({"BROKER_CLAIMS_PREVIOUS_KEYS": f"{'ab' * 32} secret-words"}, "the claims previous key 2 must be 64 hexadecimal"),
])
def test_a_claims_key_that_is_not_32_bytes_in_hex_is_refused(tmp_path: Path, environ: dict[str, str],
                                                              problem: str) -> None:
    [found] = _problems(_instance(tmp_path, SECRET_FILES), environ)

    assert found.startswith(problem)
    assert found.endswith("as 'broker keys generate-claims-key' writes")
    assert "secret-words" not in found and "zz" not in found  # the value itself is never shown


# -- [profile]: merge rules of the unified profile (broker.core.profile) -------------------------------------

def test_profile_rules_and_acr_order(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + """
[profile]
acr_order = ["urn:city:loa1", "urn:city:loa2", "urn:city:loa3"]
rules = { email = "most_recent_verified", given_name = "preferred_upstream:city-idp", birthdate = "highest_assurance" }
""")

    profile = load_settings(config, {}).profile

    assert profile.acr_order == ("urn:city:loa1", "urn:city:loa2", "urn:city:loa3")
    assert dict(profile.rules) == {"email": "most_recent_verified", "given_name": "preferred_upstream:city-idp",
                                   "birthdate": "highest_assurance"}
    assert [profile.rule_for(c) for c in ("given_name", "family_name", "phone_number")] == [
        "preferred_upstream:city-idp", "most_recent", "most_recent_verified"]


def test_profile_defaults(tmp_path: Path) -> None:
    profile = load_settings(_instance(tmp_path, SECRET_FILES), {}).profile

    assert (dict(profile.rules), profile.acr_order) == ({}, ())
    assert [profile.rule_for(c) for c in ("email", "phone_number", "locale")] == [
        "most_recent_verified", "most_recent_verified", "most_recent"]


@pytest.mark.parametrize(("section", "problem"), [
    ('rules = { shoe_size = "most_recent" }', "[profile] rule for unknown claim 'shoe_size'"),
    ('rules = { email = "newest" }', "[profile] unknown rule 'newest' for 'email'"),
    ('rules = { email_verified = "most_recent" }', "[profile] 'email_verified' has no rule of its own"),
    ('rules = { birthdate = "highest_assurance" }', "[profile] 'birthdate' uses highest_assurance, which needs"),
    ('rules = "most_recent"', "[profile] rules must be a table of claim = rule"),
    ('acr_order = "loa2"', "[profile] acr_order must be a list of non-empty strings"),
    ('acr_order = ["loa1", ""]', "[profile] acr_order must be a list of non-empty strings"),
    ('acr_order = ["loa1", "loa1"]', "[profile] acr_order names an acr value twice"),
    ("acr_ordr = []", "[profile] unknown setting 'acr_ordr' (did you mean 'acr_order'?)"),
])
def test_profile_problems_are_config_errors(tmp_path: Path, section: str, problem: str) -> None:
    problems = _problems(_instance(tmp_path, SECRET_FILES + f"\n[profile]\n{section}\n"))

    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_linking_by_email_is_off_unless_configured(tmp_path: Path) -> None:
    assert load_settings(_instance(tmp_path, SECRET_FILES), {}).linking.auto_link_by_email == frozenset()
    configured = load_settings(_instance(tmp_path, SECRET_FILES + """
[linking]
auto_link_by_email = [["city-idp", "google"]]
email_authoritative = ["city-idp"]
"""), {})
    assert configured.linking.auto_link_by_email == {("city-idp", "google")}
    assert configured.linking.email_authoritative == {"city-idp"}


@pytest.mark.parametrize("pairs", ['"google"', '[["google"]]', '[["a", 1]]', '[["a", ""]]'])
def test_linking_pairs_must_be_pairs_of_names(tmp_path: Path, pairs: str) -> None:
    problems = _problems(_instance(tmp_path, SECRET_FILES + f"[linking]\nauto_link_by_email = {pairs}\n"))

    assert problems == ["[linking] auto_link_by_email must be a list of [new upstream, existing upstream] pairs"]


# -- [assurance]: the scale of acr values and their aliases (broker.core.assurance) ---------------------------

def test_assurance_order_and_aliases(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + """
[assurance]
order = ["urn:city:loa1", "http://eidas.europa.eu/LoA/substantial", "urn:city:loa4"]
aliases = { "urn:old:loa3" = "http://eidas.europa.eu/LoA/substantial" }
""")

    assurance = load_settings(config, {}).assurance

    assert assurance.order == ("urn:city:loa1", "http://eidas.europa.eu/LoA/substantial", "urn:city:loa4")
    assert assurance.rank("urn:old:loa3") == 1


def test_assurance_defaults_to_the_known_scale(tmp_path: Path) -> None:
    assurance = load_settings(_instance(tmp_path, SECRET_FILES), {}).assurance

    assert assurance.order[-1] == "http://eidas.europa.eu/LoA/high"
    assert dict(assurance.aliases) == {}
    assert assurance.second_factor_level == "https://refeds.org/profile/mfa"
    assert assurance.enrol_at_step_up is False  # trust on first use: the operator's choice


def test_enrolment_at_the_step_up_is_turned_on(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + "\n[assurance]\nenrol_at_step_up = true\n")
    assert load_settings(config, {}).assurance.enrol_at_step_up is True


def test_second_factor_level_is_set_or_turned_off(tmp_path: Path) -> None:
    higher = 'second_factor_level = "http://eidas.europa.eu/LoA/substantial"'
    raised = load_settings(_instance(tmp_path / "a", SECRET_FILES + f"\n[assurance]\n{higher}\n"), {}).assurance
    off = load_settings(_instance(tmp_path / "b", SECRET_FILES + '\n[assurance]\nsecond_factor_level = ""\n'), {})

    assert raised.second_factor_level == "http://eidas.europa.eu/LoA/substantial"
    assert off.assurance.second_factor_level is None


@pytest.mark.parametrize(("section", "problem"), [
    ('order = "loa2"', "[assurance] order must be a non-empty list of acr values"),
    ("order = []", "[assurance] order must be a non-empty list of acr values"),
    ('order = ["a", "a"]', "[assurance] order names a value twice"),
    ('aliases = { x = 1 }', "[assurance] aliases must be a table of name = acr value"),
    ('order = ["a"]\naliases = { a = "b" }', "[assurance] alias 'a' is itself in the order"),
    ('second_factor_level = "urn:nowhere"', "[assurance] second_factor_level 'urn:nowhere' is not in the order"),
    ("second_factor_level = 3", "[assurance] second_factor_level must be an acr value of the order"),
    ('enrol_at_step_up = "yes"', "[assurance] enrol_at_step_up must be true or false"),
    ('second_factor_level = ""\nenrol_at_step_up = true', "[assurance] enrol_at_step_up needs a second_factor_level"),
])
def test_assurance_problems_are_config_errors(tmp_path: Path, section: str, problem: str) -> None:
    problems = _problems(_instance(tmp_path, SECRET_FILES + f"\n[assurance]\n{section}\n"))

    assert any(p.startswith(problem) for p in problems), problems


# -- observability: [broker] log_format and metrics_token_file (broker.logging_setup, broker.web.ops.metrics) ------

def test_log_format_and_metrics_token(tmp_path: Path) -> None:
    plain = load_settings(_instance(tmp_path / "a", SECRET_FILES), {})
    assert (plain.log_format, plain.metrics_token) == ("text", b"")
    write_private(tmp_path / "b" / "certs" / "metrics.token", b"t" * 40 + b"\n")
    observed = 'log_format = "json"\nmetrics_token_file = "certs/metrics.token"\n'
    config = _instance(tmp_path / "b", SECRET_FILES + observed)
    settings = load_settings(config, {})
    assert (settings.log_format, settings.metrics_token) == ("json", b"t" * 40)
    assert "t" * 40 not in repr(settings)
    assert load_settings(config, {"BROKER_LOG_FORMAT": "text"}).log_format == "text"

    bad = _instance(tmp_path / "c", SECRET_FILES + 'log_format = "yaml"\n')
    assert _problems(bad) == ["[broker] log_format must be 'text' or 'json', got 'yaml'"]
    assert any("shorter than 32 bytes" in p for p in _problems(config, {"BROKER_METRICS_TOKEN": "short"}))


# -- [risk]: risk-based challenges (broker.core.risk) ---------------------------------------------------------------

def test_risk_rules_from_the_file(tmp_path: Path) -> None:
    config = _instance(tmp_path, SECRET_FILES + """
[risk]
window_minutes = 30
retention_days = 60
weights = { new_device = 25 }
thresholds = { logins_by_account = 10 }

[[risk.rules]]
when = ["new_device", "new_network", "not first_login"]
then = "step-up"

[[risk.rules]]
name = "account velocity"
when = ["logins_by_account > 10"]
then = "refuse"

[risk.apps."https://tax.city.example"]
default = "step-up"
""")

    risk = load_settings(config, {}).risk

    assert (risk.window, risk.retention) == (timedelta(minutes=30), timedelta(days=60))
    assert risk.weights["new_device"] == 25
    travelling = LoginSignals(new_device=True, new_network=True)
    assert decide(travelling, risk).decision is Decision.STEP_UP
    assert decide(LoginSignals(logins_by_account=11), risk).rule == "account velocity"
    assert decide(LoginSignals(), risk, "https://tax.city.example").decision is Decision.STEP_UP
    assert decide(LoginSignals(), risk, "https://other.city.example").decision is Decision.ALLOW
    assert load_settings(config, {"BROKER_RISK_WINDOW_MINUTES": "15"}).risk.window == timedelta(minutes=15)


def test_risk_defaults_allow_all_but_a_velocity_trip(tmp_path: Path) -> None:
    risk = load_settings(_instance(tmp_path, SECRET_FILES), {}).risk

    assert risk == DEFAULT_RULES
    assert (risk.window, risk.retention) == (timedelta(minutes=60), timedelta(days=90))
    assert decide(LoginSignals(new_device=True, new_network=True, first_login=True), risk).decision is Decision.ALLOW
    assert decide(LoginSignals(logins_by_account=21), risk).decision is Decision.STEP_UP


@pytest.mark.parametrize(("section", "problem"), [
    ('[[risk.rules]]\nwhen = ["new_devise"]\nthen = "allow"', "[risk] rules 1: unknown signal 'new_devise'"),
    ('[[risk.rules]]\nwhen = ["score => 5"]\nthen = "allow"', "[risk] rules 1: cannot read condition"),
    ('[[risk.rules]]\nwhen = ["new_device"]\nthen = "deny"', "[risk] rules 1 'then' must be one of allow, step-up"),
    ('[risk]\ndefault = "maybe"', "[risk] default must be one of allow, step-up, refuse"),
    ('[risk.apps."https://tax.city.example"]\ndefault = "x"', "[risk] apps.'https://tax.city.example' default"),
    ("[risk]\nweights = { new_devise = 3 }", "[risk] weights names unknown signal 'new_devise'"),
    ("[risk]\nwindow_minutes = 0", "[risk] window_minutes must be between 1 and 1440"),
    ("[risk]\nretention_days = 5000", "[risk] retention_days must be between 1 and 3650"),
    ("[risk]\nrule = []", "[risk] unknown setting 'rule' (did you mean 'rules'?)"),
])
def test_risk_problems_are_config_errors(tmp_path: Path, section: str, problem: str) -> None:
    problems = _problems(_instance(tmp_path, SECRET_FILES + f"\n{section}\n"))

    assert any(p.startswith(problem) for p in problems), problems
