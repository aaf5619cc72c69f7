"""What the tests of the registration services share: an instance's metadata folder and the registry over it."""

from __future__ import annotations

from pathlib import Path

from broker.registry import FileRegistry
from broker.registry.oidc_clients import CLIENT_FOLDER
from broker.registry.saml_sps import SP_FOLDER
from broker.registry.upstreams import UPSTREAM_FOLDER
from broker.web.services import describe_upstream


def make_metadata_dir(instance: Path) -> Path:
    """``instance/metadata`` with its (empty) folders, as ``broker init`` makes them."""
    for folder in (SP_FOLDER, CLIENT_FOLDER, UPSTREAM_FOLDER):
        (instance / "metadata" / folder).mkdir(parents=True, exist_ok=True)
    return instance / "metadata"


def registry_over(metadata_dir: Path) -> FileRegistry:
    """The broker's registry over ``metadata_dir``, checking for changes on every use."""
    return FileRegistry(metadata_dir, metadata_dir.parent, describe_upstream, check_interval=0)


def files_in(metadata_dir: Path) -> dict[str, bytes]:
    """Every file below ``metadata_dir`` (temporary ones included) with its content: what a refusal must leave."""
    return {str(p.relative_to(metadata_dir)): p.read_bytes() for p in sorted(metadata_dir.rglob("*")) if p.is_file()}
