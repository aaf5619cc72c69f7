"""Where identity-provider metadata comes from: operator files and federation sources.

- ``metadata/saml-idp/<name>.xml``: a file the operator dropped in (one IdP or an aggregate). If a sidecar
  ``<name>.pem`` pins a certificate, the file must carry a valid signature by it; without a sidecar, the
  operator vouches for the file (noted in the status). ``validUntil`` is enforced either way.
- ``metadata/federations/<name>.toml``: one federation feed each::

      url = "https://mds.example.org/aggregate.xml"        # or: file = "path/relative/to/instance"
      signing_cert_file = "certs/federations/example.pem"  # pinned; REQUIRED for url sources
      refresh_interval = 3600                               # seconds, default 3600; capped by cacheDuration
      max_entities = 50000                                  # optional safety cap

  A URL must be https. Plain http is accepted only to a loopback host (127.0.0.1, ::1, localhost), which
  serves the tests; it is never a way to reach a real federation.

:func:`compile_document` turns a fetched document into a compiled index once it passed the source's checks.

A source whose file is wrong is skipped with a problem line naming the file and the setting; the others load.
Fetching (:func:`fetch`) is bounded: timeouts, a size cap, conditional GET (ETag / If-Modified-Since, RFC 9110
§13.1), and redirects only to the same scheme and host.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from urllib.parse import urljoin, urlsplit

import requests

from broker.registry.idp_index import write_index
from broker.registry.idp_metadata import duplicate_problems, iter_idps, parse_document
from broker.registry.metadata_signature import MetadataRefused, Validity, document_validity, is_signed, verify_signature
from broker.registry.upstreams import NAME_RE, RegistrationError

__all__ = ["FEDERATION_FOLDER", "IDP_FOLDER", "FetchError", "Fetched", "MetadataSourceError", "SourceSpec",
           "check_local", "check_url", "compile_document", "fetch", "load_sources"]

log = logging.getLogger(__name__)
IDP_FOLDER: Final = "saml-idp"
FEDERATION_FOLDER: Final = "federations"
DEFAULT_REFRESH: Final = 3600
MIN_REFRESH: Final = 60
MAX_BYTES: Final = 256 * 1024 * 1024
TIMEOUT: Final = (10.0, 60.0)  # connect, read (per chunk)
_MAX_REDIRECTS: Final = 3
_KEYS: Final = {"url", "file", "signing_cert_file", "refresh_interval", "max_entities"}
_LOOPBACK_NAMES: Final = {"localhost"}


class MetadataSourceError(RegistrationError):
    """A source file names something invalid; the message names the file and the setting."""


class FetchError(OSError):
    """The document could not be fetched or read (network, HTTP status, size cap)."""


@dataclass(frozen=True)
class SourceSpec:
    """One configured source. ``location`` is an https URL or an absolute file path."""

    name: str  # "federation/<name>" or "saml-idp/<name>"
    kind: str  # "url" or "file"
    location: str
    signing_cert_file: Path | None
    refresh_interval: int
    max_entities: int | None
    config_file: Path

    @property
    def require_signature(self) -> bool:
        """URL sources always; files when a certificate is pinned for them."""
        return self.kind == "url" or self.signing_cert_file is not None

    def fingerprint(self) -> str:
        """Changes when the configuration or the pinned certificate changes (the cached copy is then rebuilt)."""
        digest = hashlib.sha256(repr((self.kind, self.location, self.max_entities)).encode())
        if self.signing_cert_file is not None:
            try:
                digest.update(self.signing_cert_file.read_bytes())
            except OSError:
                digest.update(b"unreadable")
        return digest.hexdigest()


def check_url(url: str, where: str) -> str:
    """https, or http to a loopback address (tests only); no credentials in the URL."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise MetadataSourceError(f"{where}: the URL must not carry a user name or password")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise MetadataSourceError(f"{where}: must be an https URL (plain http only to 127.0.0.1/localhost), got {url!r}")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _federation(path: Path, instance_dir: Path) -> SourceSpec:
    where = f"{FEDERATION_FOLDER}/{path.name}"
    if not NAME_RE.fullmatch(path.stem):
        raise MetadataSourceError(f"{where}: the file name must be 1-63 lowercase letters, digits, '-' or '_'")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MetadataSourceError(f"{where}: not readable TOML ({exc})") from exc
    unknown = set(raw) - _KEYS
    if unknown:
        raise MetadataSourceError(f"{where}: unknown settings {sorted(unknown)}")
    url, file = raw.get("url"), raw.get("file")
    if (url is None) == (file is None):
        raise MetadataSourceError(f"{where}: set exactly one of url and file")
    for key in ("url", "file", "signing_cert_file"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            raise MetadataSourceError(f"{where}: {key} must be non-empty text")
    cert = raw.get("signing_cert_file")
    if url is not None and cert is None:
        raise MetadataSourceError(f"{where}: signing_cert_file is required for a url source (the pinned "
                                  "certificate the aggregate must be signed with)")
    cert_path = None if cert is None else (instance_dir / cert if not Path(cert).is_absolute() else Path(cert))
    if cert_path is not None and not cert_path.is_file():
        raise MetadataSourceError(f"{where}: signing_cert_file {cert_path} does not exist")
    interval = raw.get("refresh_interval", DEFAULT_REFRESH)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < MIN_REFRESH:
        raise MetadataSourceError(f"{where}: refresh_interval must be a whole number of seconds >= {MIN_REFRESH}")
    cap = raw.get("max_entities")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise MetadataSourceError(f"{where}: max_entities must be a positive whole number")
    if isinstance(url, str):
        location = check_url(url, f"{where}: url")
    else:
        location = str(Path(str(file)) if Path(str(file)).is_absolute() else instance_dir / str(file))
    return SourceSpec(name=f"federation/{path.stem}", kind="url" if url else "file", location=location,
                      signing_cert_file=cert_path, refresh_interval=interval, max_entities=cap, config_file=path)


def load_sources(metadata_dir: Path, instance_dir: Path) -> tuple[list[SourceSpec], list[str]]:
    """Every valid source (operator files first, then federations, each by name) and a line per skipped one."""
    specs: list[SourceSpec] = []
    problems: list[str] = []
    for xml in sorted((metadata_dir / IDP_FOLDER).glob("*.xml")):
        sidecar = xml.with_suffix(".pem")
        specs.append(SourceSpec(name=f"{IDP_FOLDER}/{xml.stem}", kind="file", location=str(xml),
                                signing_cert_file=sidecar if sidecar.is_file() else None,
                                refresh_interval=MIN_REFRESH, max_entities=None, config_file=xml))
    for toml in sorted((metadata_dir / FEDERATION_FOLDER).glob("*.toml")):
        try:
            specs.append(_federation(toml, instance_dir))
        except MetadataSourceError as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{FEDERATION_FOLDER}/{toml.name}: cannot read ({exc.strerror})")
    for problem in problems:
        log.warning("metadata source skipped: %s", problem)
    return specs, problems


@dataclass(frozen=True)
class Fetched:
    """``modified`` is False when the server answered 304 Not Modified (nothing was written)."""

    modified: bool
    etag: str | None
    last_modified: str | None


def check_local(spec: SourceSpec) -> Path:
    path = Path(spec.location)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror}") from exc
    if size > MAX_BYTES:
        raise FetchError(f"{path} is larger than {MAX_BYTES} bytes")
    return path


def fetch(spec: SourceSpec, session: requests.Session, dest: Path, *, etag: str | None = None,
          last_modified: str | None = None, max_bytes: int = MAX_BYTES) -> Fetched:
    """GET the source's URL into ``dest`` (conditional when ``etag``/``last_modified`` are given), streamed so
    the document is never whole in memory; raise :class:`FetchError`."""
    headers = {"Accept": "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = spec.location
    origin = urlsplit(url)
    for _ in range(_MAX_REDIRECTS + 1):
        try:
            response = session.get(url, headers=headers, timeout=TIMEOUT, stream=True, allow_redirects=False)
        except requests.RequestException as exc:
            raise FetchError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        with response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("Location", ""))
                moved = urlsplit(target)
                if (moved.scheme, moved.netloc) != (origin.scheme, origin.netloc):
                    raise FetchError(f"GET {url} redirects to another host or scheme ({target}); refused")
                url = target
                continue
            if response.status_code == 304:
                return Fetched(False, etag, last_modified)
            if response.status_code != 200:
                raise FetchError(f"GET {url} answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"GET {url}: the document is larger than {max_bytes} bytes")
            size = 0
            try:
                with open(dest, "wb") as out:
                    for chunk in response.iter_content(1 << 20):
                        size += len(chunk)
                        if size > max_bytes:
                            raise FetchError(f"GET {url}: the document is larger than {max_bytes} bytes")
                        out.write(chunk)
            except requests.RequestException as exc:
                raise FetchError(f"GET {url} failed while reading: {exc}") from exc
            return Fetched(True, response.headers.get("ETag"), response.headers.get("Last-Modified"))
    raise FetchError(f"GET {spec.location}: more than {_MAX_REDIRECTS} redirects")


def compile_document(spec: SourceSpec, document: Path, now: datetime,
                     index_path: Path) -> tuple[int, list[str], Validity]:
    """Parse, check validity and signature, extract and write the index; picklable, for a child process.
    Raises :class:`MetadataError`, :class:`MetadataRefused` or ``OSError`` when the document is refused."""
    root = parse_document(document)
    validity = document_validity(root, now)
    notes = [f"{spec.name}: {note}" for note in validity.notes]
    pinned = spec.signing_cert_file
    if spec.require_signature and (pinned is None or not is_signed(root)):
        raise MetadataRefused("the document is not signed, but this source requires a signature")
    if not spec.require_signature and is_signed(root):
        notes.append(f"{spec.name}: signed, but no certificate is pinned for it: signature not checked")
    if validity.valid_until is None and spec.kind == "url":
        notes.append(f"{spec.name}: the document has no validUntil; it is trusted until the next refresh")
    problems: list[str] = []
    entities = iter_idps(root, spec.name, problems, now=now, max_entities=spec.max_entities)
    if not spec.require_signature or pinned is None:
        summary = write_index(index_path, entities, {"source": spec.name})
        return summary.count, [*notes, *problems, *duplicate_problems(spec.name, summary.duplicates)], validity
    # The signature is checked beside the extraction (python-xmlsec releases the GIL while it digests and
    # verifies; neither changes the tree), into an index that only becomes ``index_path`` once it verified.
    partial = index_path.with_name(index_path.name + ".unverified")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-verify") as pool:
        verified = pool.submit(verify_signature, root, pinned.read_bytes(), pinned_name=str(pinned))
        try:
            summary = write_index(partial, entities, {"source": spec.name})
        finally:
            error = verified.exception()
        if error is not None:
            partial.unlink(missing_ok=True)
            raise error
    os.replace(partial, index_path)
    return summary.count, [*notes, *problems, *duplicate_problems(spec.name, summary.duplicates)], validity
