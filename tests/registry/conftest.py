"""Keys for the SPs whose metadata the registry tests write (generated once per session)."""

from __future__ import annotations

import pytest

from tests.flows.saml_peers import SpKeys
from tests.sp_metadata import make_sp_keys


@pytest.fixture(scope="session")
def sp_keys(tmp_path_factory: pytest.TempPathFactory) -> SpKeys:
    return make_sp_keys(tmp_path_factory.mktemp("sp-keys"))
