"""WebAuthn options are embedded in pages as JSON data (``broker.web.renderer.json_data``): no value, such as a
name a citizen typed, can close the ``<script type="application/json">`` element or start markup, and the data
still parses to the same object."""

from __future__ import annotations

import json

from broker.web.renderer import json_data


def test_embedded_json_cannot_close_its_element_and_parses_the_same() -> None:
    value = {"user": {"name": "</script><script>alert(1)</script>", "displayName": "A & B <c>"}}
    text = json.dumps(value)

    embedded = str(json_data(text))

    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded) == value
