"""A federation and single sign-on broker for cities and public services."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from cryptography.utils import CryptographyDeprecationWarning

# pysaml2 touches cryptography's CFB mode at import time; that one deprecation is pysaml2's to fix and
# says nothing to an operator. Only it is silenced; every other warning stays visible.
warnings.filterwarnings("ignore", message="CFB has been moved", category=CryptographyDeprecationWarning)

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """See ``broker.app.create_app``; imported lazily so ``import broker`` stays light."""
    from broker.app import create_app as _create_app

    return _create_app(*args, **kwargs)
