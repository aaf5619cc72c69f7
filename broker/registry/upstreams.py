"""Upstream identity providers, registered by JSON files in ``metadata/upstreams/`` (or ``broker
upstream add``, which writes the same file).

A file names the provider and how to reach it, never its secret::

    {"name": "google", "protocol": "oidc", "preset": "google",
     "client_id": "1234.apps.googleusercontent.com",
     "client_secret_env": "GOOGLE_CLIENT_SECRET"}

A SAML IdP is registered by its entity ID; its endpoints and certificates come from its metadata (a file in
``metadata/saml-idp/`` or a federation aggregate, ``broker.registry.metadata_refresh``)::

    {"name": "city-idp", "protocol": "saml", "entity_id": "https://idp.city.example/idp",
     "options": {"email_verified": "true", "allow_unsolicited": "false"}}

The client secret comes from ``client_secret_env`` (an environment variable) or ``client_secret_file``
(a file path, relative to the instance folder), so the metadata folder can live in git.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
UPSTREAM_FOLDER = "upstreams"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PROTOCOLS = ("oidc", "oauth2", "saml")  # plain OAuth 2.0 only through a preset that knows the provider's API
_KNOWN_KEYS = {
    "name", "protocol", "preset", "display_name", "issuer", "client_id", "client_secret_env",
    "client_secret_file", "scopes", "authorization_params", "options", "entity_id",
}
#: what ``options`` a SAML registration takes (``broker.upstream.saml_settings.UpstreamIdp``)
SAML_OPTIONS = {
    "allow_unsolicited": "accept IdP-initiated (unsolicited) Responses: true or false (default false)",
    "want_assertions_signed": "require the assertion itself to be signed: true or false (default false)",
    "email_verified": "this IdP asserts only verified e-mail addresses: true or false (default false)",
    "subject_attribute": "an attribute naming the person when the NameID is not persistent",
    "request_binding": "how AuthnRequests are sent: redirect (default) or post",
}
#: a preset's own settings (Apple team_id, Google hosted_domain, Microsoft allowed_tenants...): text or lists
OptionValue = str | tuple[str, ...]
_TEXT_KEYS = ("name", "protocol", "preset", "display_name", "issuer", "client_id", "client_secret_env",
              "client_secret_file")


class RegistrationError(ValueError):
    """A registration file or command names something invalid; the message says what."""


@dataclass(frozen=True)
class UpstreamRegistration:
    name: str
    protocol: str
    preset: str | None
    display_name: str | None
    issuer: str | None
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] | None
    authorization_params: tuple[tuple[str, str], ...]
    source: Path | None
    options: tuple[tuple[str, OptionValue], ...] = ()

    def option(self, key: str) -> OptionValue | None:
        return dict(self.options).get(key)


def _secret(raw: Mapping[str, Any], instance_dir: Path, environ: Mapping[str, str]) -> str:
    if "client_secret" in raw:
        raise RegistrationError("a client secret must not be written in the file: use client_secret_env "
                                "or client_secret_file")
    if env := raw.get("client_secret_env"):
        if env not in environ:
            raise RegistrationError(f"the environment variable {env} (client_secret_env) is not set")
        secret, origin = environ[env], f"the environment variable {env}"
    elif file := raw.get("client_secret_file"):
        path = Path(file) if Path(file).is_absolute() else instance_dir / file
        try:
            secret, origin = path.read_text().strip(), f"client_secret_file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise RegistrationError(f"cannot read client_secret_file {path}: {reason}") from exc
    else:
        # No secret given: only a preset that makes its own (Apple signs a JWT) accepts that; the adapter's
        # settings refuse it for everyone else, with a message naming both settings.
        return ""
    if not secret:
        raise RegistrationError(f"the client secret from {origin} is empty")
    return secret


def parse_registration(raw: Mapping[str, Any], instance_dir: Path, environ: Mapping[str, str] | None = None,
                       source: Path | None = None) -> UpstreamRegistration:
    """Validate one registration; ``RegistrationError`` says what is wrong."""
    env = os.environ if environ is None else environ
    unknown = set(raw) - _KNOWN_KEYS - {"client_secret"}
    if unknown:
        raise RegistrationError(f"unknown settings: {', '.join(sorted(unknown))}")
    wrong_type = sorted(k for k in _TEXT_KEYS if raw.get(k) is not None and not isinstance(raw[k], str))
    if wrong_type:
        raise RegistrationError(f"{', '.join(wrong_type)} must be text")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise RegistrationError("name must be 1-63 lowercase letters, digits, '-' or '_'")
    protocol = raw.get("protocol", "oidc")
    if protocol not in PROTOCOLS:
        raise RegistrationError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if protocol == "saml":
        return _saml_registration(raw, name, instance_dir, source)
    if "entity_id" in raw:
        raise RegistrationError("entity_id is for SAML upstreams (protocol 'saml')")
    client_id = raw.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError("client_id is required")
    issuer = raw.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or not issuer.startswith(("https://", "http://"))):
        raise RegistrationError("issuer must be an https URL")
    if not issuer and not raw.get("preset"):
        raise RegistrationError("issuer is required unless a preset provides it")
    scopes = raw.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
        raise RegistrationError("scopes must be a list of strings")
    params = raw.get("authorization_params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise RegistrationError("authorization_params must map names to strings")
    return UpstreamRegistration(
        options=_options(raw.get("options", {}), instance_dir),
        name=name, protocol=protocol, preset=raw.get("preset"), display_name=raw.get("display_name"),
        issuer=issuer, client_id=client_id, client_secret=_secret(raw, instance_dir, env),
        scopes=tuple(scopes) if scopes is not None else None,
        authorization_params=tuple(sorted(params.items())), source=source,
    )


def _saml_registration(raw: Mapping[str, Any], name: str, instance_dir: Path,
                       source: Path | None) -> UpstreamRegistration:
    entity_id = raw.get("entity_id")
    if not isinstance(entity_id, str) or not entity_id.strip() or len(entity_id) > 1024:
        raise RegistrationError("entity_id (the IdP's SAML entity ID) is required for protocol 'saml'")
    misplaced = sorted(k for k in ("preset", "issuer", "client_id", "client_secret_env", "client_secret_file",
                                   "scopes", "authorization_params") if k in raw)
    if misplaced:
        raise RegistrationError(f"{', '.join(misplaced)}: not used by SAML upstreams")
    options = _options(raw.get("options", {}), instance_dir)
    for key, value in options:
        if key not in SAML_OPTIONS:
            raise RegistrationError(f"options.{key} is not a SAML option ({', '.join(sorted(SAML_OPTIONS))})")
        if key in ("allow_unsolicited", "want_assertions_signed", "email_verified") and value not in ("true", "false"):
            raise RegistrationError(f"options.{key} must be \"true\" or \"false\"")
        if key == "request_binding" and value not in ("redirect", "post"):
            raise RegistrationError("options.request_binding must be \"redirect\" or \"post\"")
    return UpstreamRegistration(
        name=name, protocol="saml", preset=None, display_name=raw.get("display_name"), issuer=entity_id.strip(),
        client_id="", client_secret="", scopes=None, authorization_params=(), source=source, options=options,
    )


def _options(raw: object, instance_dir: Path) -> tuple[tuple[str, OptionValue], ...]:
    """Checked for shape here; what each preset accepts is checked by the preset when the adapter is built.

    An option naming a file (``*_file``, e.g. Apple's ``private_key_file``) is resolved against the instance
    folder, like ``client_secret_file``.
    """
    if not isinstance(raw, dict):
        raise RegistrationError("options must be an object")
    found: list[tuple[str, OptionValue]] = []
    for key, value in sorted(raw.items()):
        if isinstance(value, str):
            if key.endswith("_file") and value and not Path(value).is_absolute():
                value = str(instance_dir / value)
            found.append((key, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            found.append((key, tuple(value)))
        else:
            raise RegistrationError(f"options.{key} must be text or a list of text")
    return tuple(found)


def load_upstreams(metadata_dir: Path, instance_dir: Path,
                   environ: Mapping[str, str] | None = None) -> tuple[dict[str, UpstreamRegistration], list[str]]:
    """Every valid registration by name, and a problem line for each file skipped."""
    found: dict[str, UpstreamRegistration] = {}
    problems: list[str] = []
    for path in sorted((metadata_dir / UPSTREAM_FOLDER).glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict):
                raise RegistrationError("the file must hold one JSON object")
            registration = parse_registration(raw, instance_dir, environ, source=path)
            if registration.name in found:
                raise RegistrationError(f"the name {registration.name!r} is registered twice")
            found[registration.name] = registration
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, not UTF-8, or a RegistrationError
            problems.append(f"{path.name}: {exc}")
        except RecursionError:  # JSON nested deeper than the decoder can go: one bad file, not a dead registry
            problems.append(f"{path.name}: JSON nested too deeply")
    for problem in problems:
        log.warning("upstream skipped: %s", problem)
    return found, problems
