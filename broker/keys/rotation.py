"""Rotating the broker's signing keys without breaking a relying party (``broker keys rotate``).

Three steps, each safe to run while the broker serves (instances pick the new files up when they restart, so
each step is followed by a rolling restart):

1. ``stage``: new keys in ``certs/next/`` (RSA + certificate for SAML and RS256, EC P-256 for ES256). They are
   published at once, in the JWKS (RFC 7517) and as an extra signing KeyDescriptor in the SAML IdP and SP
   metadata (SAML Metadata §2.4.1.1), but sign nothing, so relying parties can fetch them before they are used.
2. ``switch``: after at least ``min_published`` (relying parties refresh JWKS and metadata; a day by default),
   the active keys move to ``certs/previous/`` and the next keys become the active ones. The previous keys stay
   published, so ID tokens and assertions signed before the switch still verify.
3. ``retire``: after ``grace`` (longer than any token lifetime; a day by default) ``certs/previous/`` is removed.

Each folder carries a ``SINCE`` file with the time it entered its state. Files are moved with ``os.replace``
(atomic per file); a step refuses to run out of order rather than guess.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.keys.keyring import (
    ES256_KEY,
    NEXT_DIR,
    PREVIOUS_DIR,
    SIGNING_CERT,
    SIGNING_KEY,
    generate_es256_key,
    self_signed,
    write_private,
)

ROTATED = (SIGNING_KEY, SIGNING_CERT, ES256_KEY)
SINCE = "SINCE"
DEFAULT_MIN_PUBLISHED = timedelta(hours=24)
DEFAULT_GRACE = timedelta(hours=24)


class RotationError(Exception):
    """A step that cannot run now; the message says why and what to do."""


@dataclass(frozen=True)
class RotationStatus:
    next_since: datetime | None
    previous_since: datetime | None

    @property
    def phase(self) -> str:
        if self.next_since is not None:
            return "staged"
        return "grace" if self.previous_since is not None else "steady"


def _since(folder: Path) -> datetime | None:
    try:
        return datetime.fromisoformat((folder / SINCE).read_text().strip())
    except (OSError, ValueError):
        return None if not folder.is_dir() else datetime.fromtimestamp(folder.stat().st_mtime, UTC)


def status(certs_dir: Path) -> RotationStatus:
    return RotationStatus(_since(certs_dir / NEXT_DIR) if (certs_dir / NEXT_DIR / SIGNING_KEY).exists() else None,
                          _since(certs_dir / PREVIOUS_DIR) if (certs_dir / PREVIOUS_DIR).is_dir() else None)


def stage(certs_dir: Path, common_name: str, now: datetime, *, bits: int = 3072, years: int = 5) -> Path:
    """New keys in ``next/``, published from the next restart on; refused while keys are already staged."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder = certs_dir / NEXT_DIR
    if (folder / SIGNING_KEY).exists():
        raise RotationError(f"keys are already staged in {folder}; switch to them or remove the folder")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = self_signed(key, common_name, timedelta(days=365 * years))
    write_private(folder / SIGNING_KEY, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (folder / SIGNING_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    generate_es256_key(folder)
    (folder / SINCE).write_text(now.isoformat())
    return folder


def switch(certs_dir: Path, now: datetime, *, min_published: timedelta = DEFAULT_MIN_PUBLISHED,
           force: bool = False) -> None:
    """The staged keys become the active ones; the active ones stay published in ``previous/``."""
    current = status(certs_dir)
    if current.next_since is None:
        raise RotationError("no keys are staged: run 'broker keys rotate stage' first")
    if current.previous_since is not None:
        raise RotationError("the keys of the last switch are still in their grace period: run "
                            "'broker keys rotate retire' first")
    if not force and now - current.next_since < min_published:
        ready = current.next_since + min_published
        raise RotationError(f"the staged keys are published since {current.next_since.isoformat()}; relying parties "
                            f"may not have them yet: switch after {ready.isoformat()} (or --force)")
    previous = certs_dir / PREVIOUS_DIR
    staging = certs_dir / (PREVIOUS_DIR + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    for name in ROTATED:
        shutil.copy2(certs_dir / name, staging / name)
    (staging / SINCE).write_text(now.isoformat())
    os.replace(staging, previous)
    for name in ROTATED:
        os.replace(certs_dir / NEXT_DIR / name, certs_dir / name)
    shutil.rmtree(certs_dir / NEXT_DIR)


def retire(certs_dir: Path, now: datetime, *, grace: timedelta = DEFAULT_GRACE, force: bool = False) -> bool:
    """Remove ``previous/`` once its grace period has passed; False when there was nothing to retire."""
    current = status(certs_dir)
    if current.previous_since is None:
        return False
    if not force and now - current.previous_since < grace:
        until = current.previous_since + grace
        raise RotationError(f"tokens signed with the previous keys may still be in use: retire after "
                            f"{until.isoformat()} (or --force)")
    shutil.rmtree(certs_dir / PREVIOUS_DIR)
    return True
