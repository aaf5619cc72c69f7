"""``core.party_admin.PartyRegistrations`` over the registration service (``sp_registrations``,
``client_registrations``, ``upstream_registrations``): what the operator console and the admin API register apps
and upstream identity providers through (issue 19). Upstreams are ``app_upstreams``'s, a SAML app's settings
edits ``app_settings``'s.

After every write the registry is reloaded (``reload``), so the next request sees the app as registered, exactly
as if an integrator had dropped the files into ``metadata/`` and the folder watch had picked them up.

An OpenID client whose ``token_endpoint_auth_method`` needs a secret and whose document brings no
``client_secret_hash`` gets a new random secret at ``apply`` (shown once by the caller; only its hash is written),
as ``broker client add`` does. A document that replaces a registered app replaces its file; one that would take
another file's entity id or client_id is refused (remove that one first).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from broker.core.admin_scopes import is_admin_scope
from broker.core.model import UpstreamParty
from broker.core.party_admin import (
    MAX_DOCUMENT,
    AppApplied,
    AppEntry,
    AppKind,
    AppPreview,
    PartyRegistrations,
    RegistrationRefused,
)
from broker.oidc.client import OidcClient
from broker.oidc.client_metadata import SECRET_METHODS
from broker.oidc.client_secret import brought_secret_problems, generate_secret, hash_generated, hash_provided
from broker.registry import app_settings, app_upstreams, registrations
from broker.registry import client_registrations as clients
from broker.registry import sp_registrations as sps
from broker.registry.oidc_clients import load_oidc_clients
from broker.registry.saml_sps import load_sp_catalog
from broker.registry.sp_view import SpView
from broker.registry.upstreams import UpstreamRegistration, load_upstreams


class FileAppRegistrations:
    def __init__(self, metadata_dir: Path, reload: Callable[[], object], *, instance_dir: Path | None = None,
                 describe: Callable[[UpstreamRegistration], UpstreamParty] | None = None,
                 on_scale: Callable[[str], bool] | None = None) -> None:
        """``describe``: the registry's own view of an upstream (``FileRegistry``'s), the check an upstream
        document must pass (without it, upstreams are not registered here); ``instance_dir``: where
        ``client_secret_file`` paths start; ``on_scale``: whether an acr is on the ``[assurance]`` scale (notes)."""
        self.metadata_dir, self._reload = metadata_dir, reload
        self.instance_dir, self._describe = instance_dir or metadata_dir.parent, describe
        self._notes = app_settings.notes_for(self._upstream_names, on_scale)

    def _upstream_names(self) -> Sequence[str]:
        return list(load_upstreams(self.metadata_dir, self.instance_dir)[0])

    def apps(self) -> Sequence[AppEntry]:
        catalog = load_sp_catalog(self.metadata_dir)
        served = [AppEntry(AppKind.SAML, entity_id, sp.display_name, sp.source.name)
                  for entity_id, sp in catalog.sps.items()]
        stopped = [AppEntry(AppKind.SAML, v.entity_id, v.display_name, v.file, enabled=False)
                   for v in sps.disabled_sps(self.metadata_dir)]
        registered, _ = load_oidc_clients(self.metadata_dir)
        oidc = [AppEntry(AppKind.OIDC, c.client_id, c.client_name or c.client_id, Path(c.source).name)
                for c in registered.values()]
        upstreams = app_upstreams.upstream_entries(self.metadata_dir, self.instance_dir, self._describe) \
            if self._describe is not None else []
        return sorted([*served, *stopped, *oidc, *upstreams], key=lambda e: (e.kind.value, e.party_id))

    def preview(self, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppPreview:
        if len(document) > MAX_DOCUMENT:
            return AppPreview(kind, (), "", (f"the document is larger than {MAX_DOCUMENT} bytes",), ())
        if kind is AppKind.UPSTREAM:
            if settings or self._describe is None:
                return AppPreview(kind, (), "", (_upstream_refusal(settings),), ())
            return app_upstreams.preview(self.metadata_dir, self.instance_dir, self._describe, document)
        if kind is AppKind.SAML:
            return _saml(sps.preview_sp(self.metadata_dir, document, dict(settings)))
        raw, _, problems = _client_document(document)
        shown = _oidc(clients.preview_client(self.metadata_dir, raw))
        return replace(shown, problems=(*problems, *shown.problems)) if problems else shown

    def apply(self, kind: AppKind, document: bytes, settings: Mapping[str, object]) -> AppApplied:
        if len(document) > MAX_DOCUMENT:
            raise RegistrationRefused([f"the document is larger than {MAX_DOCUMENT} bytes"])
        if kind is AppKind.UPSTREAM:
            if settings or self._describe is None:
                raise RegistrationRefused([_upstream_refusal(settings)])
            applied_upstream = app_upstreams.apply(self.metadata_dir, self.instance_dir, self._describe, document)
            self._reload()
            return AppApplied(applied_upstream)
        try:
            if kind is AppKind.SAML:
                preview = sps.preview_sp(self.metadata_dir, document, dict(settings))
                _refuse(_saml(preview))
                applied = _saml(sps.apply_sp(self.metadata_dir, preview))
                self._reload()
                return AppApplied(applied)
            raw, secret, problems = _client_document(document)
            if problems:
                raise RegistrationRefused(problems)
            preview_c = clients.preview_client(self.metadata_dir, raw)
            _refuse(_oidc(preview_c))
            clients.apply_client(self.metadata_dir, preview_c, replace_file=preview_c.exists)
        except registrations.RegistrationRefused as exc:
            raise RegistrationRefused(exc.problems) from exc
        self._reload()
        return AppApplied(_oidc(preview_c), secret)

    def set_enabled(self, kind: AppKind, party_id: str, enabled: bool) -> AppPreview:
        if kind is not AppKind.SAML:  # the registry has no "disabled" for clients or upstreams
            raise RegistrationRefused([f"only SAML apps are switched off and on; remove this {kind.value} instead"])
        try:
            preview = _saml(sps.set_sp_enabled(self.metadata_dir, party_id, enabled))
        except registrations.RegistrationRefused as exc:
            raise RegistrationRefused(exc.problems) from exc
        self._reload()
        return preview

    def remove(self, kind: AppKind, party_id: str) -> None:
        try:
            if kind is AppKind.SAML:
                sps.remove_sp(self.metadata_dir, party_id)
            elif kind is AppKind.UPSTREAM:
                app_upstreams.remove(self.metadata_dir, party_id)
            else:
                clients.remove_client(self.metadata_dir, party_id)
        except registrations.RegistrationRefused as exc:
            raise RegistrationRefused(exc.problems) from exc
        self._reload()

    def settings(self, kind: AppKind, party_id: str) -> Mapping[str, object]:
        return app_settings.current(self.metadata_dir, kind, party_id)

    def preview_settings(self, kind: AppKind, party_id: str, settings: Mapping[str, object],
                         clear: Sequence[str]) -> AppPreview:
        return app_settings.preview(self.metadata_dir, kind, party_id, settings, clear, self._notes)

    def apply_settings(self, kind: AppKind, party_id: str, settings: Mapping[str, object],
                       clear: Sequence[str]) -> AppPreview:
        applied = app_settings.apply(self.metadata_dir, kind, party_id, settings, clear, self._notes)
        self._reload()
        return applied


def _upstream_refusal(settings: Mapping[str, object]) -> str:
    return "an upstream takes no settings beside its document" if settings else "upstreams are not registered here"


def _refuse(preview: AppPreview) -> None:
    if preview.problems:
        raise RegistrationRefused(preview.problems)


def _saml(preview: sps.SpPreview) -> AppPreview:
    problems = list(preview.problems)
    problems += [f"{t.entity_id} is registered by {t.file}; remove that registration first" for t in preview.taken]
    if preview.replaces_others:
        problems.append(f"{preview.file} registers other apps today; remove them first")
    return AppPreview(AppKind.SAML, tuple(v.entity_id for v in preview.sps), preview.file, tuple(problems),
                      preview.changes, tuple(fact for v in preview.sps for fact in _sp_facts(v)),
                      replaces=bool(preview.current))


def _sp_facts(view: SpView) -> list[tuple[str, str]]:
    facts = [("Entity ID", view.entity_id), ("Name", view.display_name)]
    facts += [("Assertion consumer service", f"{e.location} ({e.binding.rsplit(':', 1)[-1]})") for e in view.acs]
    for cert in view.certificates:
        expiry = cert.not_after.strftime("%Y-%m-%d") if cert.not_after else "no expiry"
        facts.append((f"Certificate ({cert.use})", f"SHA-256 {cert.sha256}, valid until {expiry}"))
    facts += [("Requested attribute", a.friendly_name or a.name) for a in view.requested_attributes]
    return facts


def _oidc(preview: clients.ClientPreview) -> AppPreview:
    problems = list(preview.problems)
    client = preview.client
    if client is not None and preview.taken_by is not None:
        problems.append(f"client_id {client.client_id} is registered by {preview.taken_by}; remove it first")
    if client is not None and preview.saml_entity:
        problems.append(f"{client.client_id} is the entity id of a registered SAML app; choose another client_id")
    return AppPreview(AppKind.OIDC, (client.client_id,) if client else (), preview.file, tuple(problems),
                      preview.changes, tuple(_client_facts(client)) if client else (), replaces=preview.exists,
                      admin_scopes=tuple(s for s in client.scope if is_admin_scope(s)) if client else ())


def _client_facts(client: OidcClient) -> list[tuple[str, str]]:
    facts = [("Client ID", client.client_id), ("Name", client.client_name or client.client_id),
             ("Client authentication", client.token_endpoint_auth_method), ("Scope", " ".join(client.scope)),
             ("Subject type", client.subject_type)]
    return facts + [("Redirect URI", uri) for uri in client.redirect_uris]


def _client_document(document: bytes) -> tuple[dict[str, object] | bytes, str | None, tuple[str, ...]]:
    """The document as it is registered, a new secret to show once, and the problems of a secret it brings.

    A client that authenticates with a secret and brings none gets a new random one (its hash is written). An app
    moving from another provider brings its ``client_secret`` (as ``broker client import`` takes it): checked for
    strength, hashed with scrypt, never written nor shown back."""
    try:
        raw = json.loads(document)
    except (ValueError, RecursionError):
        return document, None, ()  # the preview names the problem
    if not isinstance(raw, dict):
        return document, None, ()
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if "client_secret" in raw:
        brought = {k: v for k, v in raw.items() if k != "client_secret"}
        problems = brought_secret_problems(method, raw["client_secret"], SECRET_METHODS)
        if problems:
            return brought, None, tuple(problems)
        return {**brought, "client_secret_hash": hash_provided(raw["client_secret"])}, None, ()
    if raw.get("client_secret_hash") or method not in SECRET_METHODS:
        return raw, None, ()
    secret = generate_secret()
    return {**raw, "client_secret_hash": hash_generated(secret)}, secret, ()


_check: type[PartyRegistrations] = FileAppRegistrations
