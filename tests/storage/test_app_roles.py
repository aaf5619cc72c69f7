"""``SqlAppRoles`` (issue 19): each app's roles, assignments and group mappings; ``roles_of`` answers one app's
roles only, assigned or mapped from a group of the sign-in's upstream; removing a role or an account removes what
hangs on it; doing a change twice changes nothing the second time."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete

from broker.core.app_roles import AppRole, AppRoleStore, GroupMapping, RoleAssignment
from broker.core.model import utcnow
from broker.storage import SqlAppRoles, session_factory
from broker.storage.tables import AccountRow

APP, OTHER = "https://permits.city.example/sp", "city-portal"


@pytest.fixture
def store(engine: Engine) -> AppRoleStore:
    with session_factory(engine).begin() as session:
        session.add_all([AccountRow(account_id="acc-1", created_at=utcnow()),
                         AccountRow(account_id="acc-2", created_at=utcnow())])
    roles: AppRoleStore = SqlAppRoles(engine)
    return roles


def _define(store: AppRoleStore, party: str, name: str) -> None:
    assert store.define(AppRole(party, name, "", "test", utcnow()))


def test_roles_of_one_app_are_never_another_apps(store: AppRoleStore) -> None:
    _define(store, APP, "clerk")
    _define(store, OTHER, "admin")
    assert store.assign(RoleAssignment(APP, "clerk", "acc-1", "test", utcnow()))
    assert store.assign(RoleAssignment(OTHER, "admin", "acc-1", "test", utcnow()))
    assert store.map_group(GroupMapping(OTHER, "admin", "op", "g-1", "test", utcnow()))

    assert store.roles_of(APP, "acc-1", "op", frozenset({"g-1"})) == {"clerk"}
    assert store.roles_of(OTHER, "acc-1", "op", frozenset()) == {"admin"}
    assert store.roles_of(APP, "acc-2", "op", frozenset({"g-1"})) == frozenset()


def test_a_mapped_role_needs_the_group_from_that_upstream(store: AppRoleStore) -> None:
    _define(store, APP, "staff")
    assert store.map_group(GroupMapping(APP, "staff", "city-idp", "cn=staff", "test", utcnow()))

    assert store.roles_of(APP, "acc-2", "city-idp", frozenset({"cn=staff", "cn=x"})) == {"staff"}
    assert store.roles_of(APP, "acc-2", "google", frozenset({"cn=staff"})) == frozenset()
    assert store.roles_of(APP, "acc-2", "city-idp", frozenset({"cn=Staff"})) == frozenset()


def test_changes_twice_change_nothing_and_unknown_roles_are_refused(store: AppRoleStore) -> None:
    _define(store, APP, "clerk")
    assert not store.define(AppRole(APP, "clerk", "", "test", utcnow()))
    assert store.define(AppRole(APP, "clerk", "front desk", "test", utcnow()))  # a new description
    assignment = RoleAssignment(APP, "clerk", "acc-1", "test", utcnow())
    assert store.assign(assignment) and not store.assign(assignment)
    with pytest.raises(LookupError):
        store.assign(RoleAssignment(APP, "nobody", "acc-1", "test", utcnow()))
    with pytest.raises(LookupError):
        store.assign(RoleAssignment(APP, "clerk", "no-such-account", "test", utcnow()))
    assert store.unassign(APP, "clerk", "acc-1") and not store.unassign(APP, "clerk", "acc-1")
    mapping = GroupMapping(APP, "clerk", "op", "g", "test", utcnow())
    assert store.map_group(mapping) and not store.map_group(mapping)
    assert store.unmap_group(APP, "clerk", "op", "g") and not store.unmap_group(APP, "clerk", "op", "g")
    assert store.of_app(APP).roles[0].description == "front desk"


def test_removing_a_role_or_an_account_removes_what_hangs_on_it(store: AppRoleStore, engine: Engine) -> None:
    _define(store, APP, "clerk")
    _define(store, APP, "staff")
    store.assign(RoleAssignment(APP, "clerk", "acc-1", "test", utcnow()))
    store.assign(RoleAssignment(APP, "staff", "acc-2", "test", utcnow()))
    store.map_group(GroupMapping(APP, "clerk", "op", "g", "test", utcnow()))

    assert store.remove(APP, "clerk") and not store.remove(APP, "clerk")
    with session_factory(engine).begin() as session:
        session.execute(delete(AccountRow).where(AccountRow.account_id == "acc-2"))

    listing = store.of_app(APP)
    assert [r.name for r in listing.roles] == ["staff"]
    assert listing.assignments == () and listing.mappings == ()
    assert store.roles_of(APP, "acc-1", "op", frozenset({"g"})) == frozenset()
