"""The registry: every party the broker knows, from the ``metadata/`` folder.

Files are re-read when the folder changes (checked at most every few seconds, on use), so a file
dropped in by an integrator or by ``broker sp add`` (``client add``, ``upstream add``) takes effect without
a restart. A reload builds a complete new snapshot and swaps it in one assignment; requests in flight keep
the snapshot they began with. A file that fails to load is skipped and reported; the rest stay registered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISREG
from typing import Protocol

from broker.core.consent import ReleasePolicy
from broker.core.model import PORTAL_PARTY, DownstreamParty, UpstreamParty
from broker.core.model import Protocol as WireProtocol
from broker.oidc.client import OidcClient
from broker.registry.idp_entity import IdpEntity
from broker.registry.oidc_clients import CLIENT_FOLDER, drop_saml_collisions, load_oidc_clients
from broker.registry.policy import POLICY_FILE, load_policy
from broker.registry.saml_sps import SP_FOLDER, load_sp_catalog
from broker.registry.upstreams import UPSTREAM_FOLDER, UpstreamRegistration, load_upstreams
from broker.saml.catalog import SpCatalog

DescribeUpstream = Callable[[UpstreamRegistration], UpstreamParty]


class IdpLookup(Protocol):
    """The federation directory as the registry needs it (``broker.registry.metadata_refresh.IdpDirectory``)."""

    def get(self, entity_id: str) -> IdpEntity | None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Snapshot:
    fingerprint: tuple[tuple[str, int, int], ...]
    saml: SpCatalog
    upstreams: Mapping[str, UpstreamRegistration]
    upstream_parties: Mapping[str, UpstreamParty]
    problems: tuple[str, ...]
    #: OpenID Connect clients from files, by client_id (dynamically registered ones live in the database)
    oidc_clients: Mapping[str, OidcClient] = field(default_factory=dict)
    #: the operator's release policy (``metadata/release-policy.toml``)
    policy: ReleasePolicy = field(default_factory=ReleasePolicy)


def _fingerprint(metadata_dir: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for folder in (SP_FOLDER, UPSTREAM_FOLDER, CLIENT_FOLDER):
        for path in sorted((metadata_dir / folder).glob("*")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed since the listing: the next check sees it gone
                continue
            if S_ISREG(stat.st_mode):
                entries.append((f"{folder}/{path.name}", stat.st_mtime_ns, stat.st_size))
    try:
        stat = (metadata_dir / POLICY_FILE).stat()
        entries.append((POLICY_FILE, stat.st_mtime_ns, stat.st_size))
    except FileNotFoundError:
        pass
    return tuple(entries)


class FileRegistry:
    """Implements ``broker.core.ports.Registry`` over the metadata folder."""

    def __init__(self, metadata_dir: Path, instance_dir: Path, describe: DescribeUpstream,
                 check_interval: float = 2.0, on_change: Callable[[Snapshot, Snapshot], None] | None = None,
                 *, dynamic_client: Callable[[str], OidcClient | None] | None = None,
                 directory: IdpLookup | None = None, built_in: tuple[DownstreamParty, ...] = ()) -> None:
        """``on_change(before, after)`` is called after each reload that found the folder changed;
        ``dynamic_client(client_id)`` finds a dynamically registered client (RFC 7591), after the files;
        ``built_in`` are the broker's own parties besides the portal (the operator console's sign-in), found
        before any registration that could shadow them."""
        self._built_in = {party.party_id: party for party in (PORTAL_PARTY, *built_in)}
        self.metadata_dir, self.instance_dir, self._describe = metadata_dir, instance_dir, describe
        self._dynamic_client = dynamic_client
        #: SAML IdPs from metadata files and federation aggregates, usable by entity ID (discovery, hints)
        self.directory = directory
        self.on_change = on_change
        self._interval = check_interval
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._snapshot = self._load()

    def _load(self) -> Snapshot:
        fingerprint = _fingerprint(self.metadata_dir)
        saml = load_sp_catalog(self.metadata_dir)
        upstreams, problems = load_upstreams(self.metadata_dir, self.instance_dir)
        parties = {}
        for name, registration in list(upstreams.items()):
            try:
                parties[name] = self._describe(registration)
            except ValueError as exc:
                problems.append(f"{UPSTREAM_FOLDER}/{name}: {exc}")
                del upstreams[name]
        clients, client_problems = load_oidc_clients(self.metadata_dir)
        client_problems += drop_saml_collisions(clients, saml.sps)
        policy, policy_problems = load_policy(self.metadata_dir)
        return Snapshot(fingerprint, saml, upstreams, parties,
                        tuple([*saml.problems, *problems, *client_problems, *policy_problems]), clients, policy)

    @property
    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        if now - self._checked >= self._interval and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                if _fingerprint(self.metadata_dir) != self._snapshot.fingerprint:
                    self._swap(self._load())
            finally:
                self._lock.release()
        return self._snapshot

    def reload(self) -> Snapshot:
        with self._lock:
            self._swap(self._load())
            self._checked = time.monotonic()
            return self._snapshot

    def _swap(self, snapshot: Snapshot) -> None:
        before, self._snapshot = self._snapshot, snapshot
        if self.on_change is not None:
            self.on_change(before, snapshot)

    def oidc_client(self, client_id: str) -> OidcClient | None:
        """A client from the files, else a dynamically registered one."""
        client = self.snapshot.oidc_clients.get(client_id)
        if client is None and self._dynamic_client is not None:
            client = self._dynamic_client(client_id)
        return client

    # broker.core.ports.Registry
    def downstream(self, party_id: str) -> DownstreamParty | None:
        built_in = self._built_in.get(party_id)
        if built_in is not None:  # before any registration that could shadow it
            return built_in
        sp = self.snapshot.saml.sps.get(party_id)
        if sp is not None:
            return self._known_names(sp.party())
        client = self.oidc_client(party_id)
        return self._known_names(client.party()) if client else None

    def _known_names(self, party: DownstreamParty) -> DownstreamParty:
        """``party`` with the registered name added beside each IdP its allowed list names by entity id, so that
        an SSO session (which records the name) counts as one of its upstreams (``core.sessions.satisfies``)."""
        if not party.allowed_upstreams:
            return party
        names = {p.issuer: p.name for p in self.snapshot.upstream_parties.values() if p.protocol is WireProtocol.SAML}
        extra = tuple(dict.fromkeys(names[a] for a in party.allowed_upstreams
                                    if a in names and names[a] not in party.allowed_upstreams))
        return replace(party, allowed_upstreams=party.allowed_upstreams + extra) if extra else party

    def upstream(self, name: str) -> UpstreamParty | None:
        """By registered name; else a SAML IdP by entity ID: its registration when it has one (so that it is
        known by one name everywhere), else the directory's IdP under its entity ID."""
        parties = self.snapshot.upstream_parties
        found = parties.get(name)
        if found is None:
            found = next((p for p in parties.values() if p.protocol is WireProtocol.SAML and p.issuer == name), None)
        if found is None and self.directory is not None and (entity := self.directory.get(name)) is not None:
            found = UpstreamParty(entity.entity_id, WireProtocol.SAML, entity.display_name(), entity.entity_id)
        return found

    def directory_size(self) -> int:
        return len(self.directory) if self.directory is not None else 0

    def in_directory(self, entity_id: str) -> bool:
        return self.directory is not None and self.directory.get(entity_id) is not None

    def upstreams(self) -> Sequence[UpstreamParty]:
        return list(self.snapshot.upstream_parties.values())
