"""``[console]`` (``broker.config.console``; issue 19): the console's level follows the second factor level unless
named, and is never a single factor by default; the times are bounded; its party carries the staff upstreams and
the level, so the ordinary login pipeline enforces them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from broker.config.settings import load_settings
from broker.core.assurance import EIDAS_SUBSTANTIAL, REFEDS_MFA
from broker.core.model import Protocol
from broker.core.operators import CONSOLE_PARTY_ID, Role, RoleMapping, console_party, mapped_roles
from tests.config_support import instance, problems


def test_defaults_are_on_at_the_mfa_level_with_short_sessions(tmp_path: Path) -> None:
    console = load_settings(instance(tmp_path, ""), {}).console

    assert console.enabled and console.required_acr == REFEDS_MFA and console.upstreams == ()
    assert (console.idle, console.lifetime, console.reauth) == (timedelta(minutes=15), timedelta(hours=8),
                                                                timedelta(minutes=5))


def test_the_staff_upstreams_and_level_become_the_consoles_party(tmp_path: Path) -> None:
    text = f'[console]\nupstreams = ["city-idp", "entra"]\nrequired_acr = "{EIDAS_SUBSTANTIAL}"\nidle_minutes = 5\n'
    console = load_settings(instance(tmp_path, text), {}).console
    party = console_party(console)

    assert (party.party_id, party.protocol) == (CONSOLE_PARTY_ID, Protocol.PORTAL)
    assert party.allowed_upstreams == ("city-idp", "entra") and party.required_acr == EIDAS_SUBSTANTIAL
    assert party.requested_claims == frozenset() and console.idle == timedelta(minutes=5)


def test_without_a_second_factor_level_the_console_is_off_unless_a_level_is_named(tmp_path: Path) -> None:
    no_step_up = '[assurance]\nsecond_factor_level = ""\n'
    assert not load_settings(instance(tmp_path / "a", no_step_up), {}).console.enabled
    assert problems(instance(tmp_path / "b", no_step_up + "[console]\nenabled = true\n")) == [
        "[console] required_acr is needed: [assurance] names no second_factor_level"]
    named = load_settings(instance(tmp_path / "c", no_step_up + f'[console]\nrequired_acr = "{REFEDS_MFA}"\n'), {})
    assert named.console.enabled and named.console.required_acr == REFEDS_MFA


def test_an_unknown_level_and_times_out_of_bounds_are_refused(tmp_path: Path) -> None:
    found = problems(instance(tmp_path, '[console]\nrequired_acr = "loa9"\nidle_minutes = 0\nsession_hours = 48\n'))
    assert "[console] required_acr 'loa9' is not in the [assurance] order" in found
    assert any("idle_minutes" in p for p in found) and any("session_hours" in p for p in found)


def test_role_mappings_name_a_role_an_upstream_and_a_group(tmp_path: Path) -> None:
    text = ('[[console.role_mappings]]\nrole = "Support"\nupstream = "entra"\ngroup = "g-1"\n'
            '[[console.role_mappings]]\nrole = "admin"\nupstream = "city-idp"\n'
            'group = "cn=idm-admins,ou=groups,dc=city,dc=example"\n')
    console = load_settings(instance(tmp_path, text), {}).console

    assert console.role_mappings == (
        RoleMapping(Role.SUPPORT, "entra", "g-1"),
        RoleMapping(Role.ADMIN, "city-idp", "cn=idm-admins,ou=groups,dc=city,dc=example"))
    assert mapped_roles(console.role_mappings, "entra", ["g-0", "g-1"]) == {Role.SUPPORT}
    assert mapped_roles(console.role_mappings, "city-idp", ["g-1"]) == set()  # another upstream's group: no role


def test_a_role_mapping_that_does_not_validate_is_reported(tmp_path: Path) -> None:
    bad = ('[[console.role_mappings]]\nrole = "root"\nupstream = "entra"\ngroup = "g"\n'
           '[[console.role_mappings]]\nrole = "admin"\nupstream = "entra"\n'
           '[[console.role_mappings]]\nrole = "admin"\nupstream = "entra"\ngroup = "' + "x" * 300 + '"\n')
    found = problems(instance(tmp_path / "a", bad))
    assert found[0].startswith("[[console.role_mappings]] number 1: no role 'root'")
    assert found[1:] == ["[[console.role_mappings]] number 2 needs exactly role, upstream and group, each a "
                         "non-empty string",
                         "[[console.role_mappings]] number 3: group is longer than 256 characters"]
    assert problems(instance(tmp_path / "b", '[console]\nrole_mappings = "admin"\n')) == [
        "[console] role_mappings must be a list of tables ([[console.role_mappings]])"]
