"""Fixtures of the attack tests, re-exported from the suites they come from.

pytest finds fixtures per directory, so the attack tests import the ones they share with the other suites:
the whole federation of ``tests/flows`` (broker, OpenID provider, pysaml2 SPs, scripted browser), the pysaml2
IdP/SP entities and keys of ``tests/saml``, and the OpenID provider world of ``tests/upstream``.
"""

from __future__ import annotations

from tests.flows.conftest import browser, federation, key_folder  # noqa: F401
from tests.saml.conftest import (  # noqa: F401
    attacker_keys,
    idp_keys,
    idp_metadata,
    keys_dir,
    make_idp,
    make_sp,
    sp_keys,
    sp_metadata,
    xmlsec1,
)
from tests.upstream.conftest import callback_server, make_world, provider_key, redirect_uri, world  # noqa: F401
