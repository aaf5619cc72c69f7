"""Schema validation of SAML protocol messages with libxml2's C validator (lxml ``etree.XMLSchema``).

The SAML 2.0 XSDs are those shipped with pysaml2 (``saml2/data/schemas``). Imports are mapped to those local
files by name; nothing is ever fetched from the network. The schema document is parsed once per process (lazily) and
each thread gets its own validator object (lxml validators must not be shared between threads), compiled one
thread at a time.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final

import saml2
from lxml import etree  # type: ignore[import-untyped]

from broker.upstream.saml_structure import StructureError

SCHEMA_DIR: Final = os.path.join(os.path.dirname(saml2.__file__), "data", "schemas")
_ENTRY: Final = "saml-schema-protocol-2.0.xsd"


class _LocalSchemas(etree.Resolver):  # type: ignore[misc]
    """Resolve every schemaLocation (URL or relative) to the file of the same name in SCHEMA_DIR, else refuse."""

    def resolve(self, url: str, pubid: str | None, context: object) -> Any:
        name = os.path.basename(url.rstrip("/"))
        path = os.path.join(SCHEMA_DIR, name)
        if name.endswith(".xsd") and os.path.isfile(path):
            return self.resolve_filename(path, context)
        raise StructureError(f"schema resource {url!r} is not available locally; refused")


_compiled_lock = threading.Lock()
_compiled: Any = None
_local = threading.local()


def _schema_document() -> Any:
    global _compiled
    with _compiled_lock:
        if _compiled is None:
            # Trusted local files: their internal DTD subsets declare entities (&dsig;) that must be expanded,
            # but no external DTD is loaded and the network is off.
            parser = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=True)
            parser.resolvers.add(_LocalSchemas())
            _compiled = etree.parse(os.path.join(SCHEMA_DIR, _ENTRY), parser)
        return _compiled


def _validator() -> Any:
    """This thread's validator, built at its first use. Built one at a time: libxml2 resolves the schema's
    imports while it compiles them, and two threads compiling at once made one fail on an import the other was
    resolving ("The QName value '{...xmlenc#}EncryptedData' does not resolve"), a 500 for that login."""
    validator = getattr(_local, "validator", None)
    if validator is None:
        document = _schema_document()
        with _compiled_lock:
            validator = etree.XMLSchema(document)
        _local.validator = validator
    return validator


def validate(element: Any) -> None:
    """Validate ``element`` (a Response or an Assertion) against the SAML 2.0 schema (SAML core §1.1, the XSDs)."""
    validator = _validator()
    if not validator.validate(element):
        error = validator.error_log.last_error
        raise StructureError(f"the message does not follow the SAML 2.0 schema: {error.message if error else '?'}")
