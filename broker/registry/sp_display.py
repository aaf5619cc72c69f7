"""How a SAML app presents itself to citizens, read from its metadata (pysaml2's parsed form).

Names, best first: SAML Metadata UI §2.1.1 ``mdui:DisplayName``; SAML Metadata §2.4.4.1
``AttributeConsumingService/ServiceName``; §2.3.2.1 ``Organization/OrganizationDisplayName``. The operator's
``display_name`` (``broker.registry.sp_settings``) overrides them all; the last resort is the entity id's host
(``core.display.readable_name``), never the entity id. English is preferred, then any language.
Logo: Metadata UI §2.1.4 ``mdui:Logo`` (https or data:image only); policy: §2.1.2 ``mdui:PrivacyStatementURL``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from broker.core.display import logo_problem, policy_problem, readable_name


@dataclass(frozen=True)
class SpDisplay:
    name: str
    logo_uri: str | None
    policy_uri: str | None


def _texts(items: Any) -> list[tuple[str, str]]:
    """(lang, text) of a list of localized elements, English first."""
    found = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip():
            found.append((str(item.get("lang") or ""), item["text"].strip()))
    return sorted(found, key=lambda pair: (not pair[0].lower().startswith("en"), pair[0]))


def _first(items: Any) -> str | None:
    texts = _texts(items)
    return texts[0][1] if texts else None


def _uiinfos(descriptor: dict[str, Any]) -> Iterable[dict[str, Any]]:
    extensions = descriptor.get("extensions") or {}
    for element in extensions.get("extension_elements") or []:
        if isinstance(element, dict) and str(element.get("__class__", "")).endswith("&UIInfo"):
            yield element


def sp_display(entity: dict[str, Any], entity_id: str, file_stem: str) -> SpDisplay:
    """What the metadata of ``entity_id`` says about how to show it (untrusted: every value is checked)."""
    descriptor = (entity.get("spsso_descriptor") or [{}])[0]
    uiinfos = list(_uiinfos(descriptor))
    mdui_name = next((name for info in uiinfos if (name := _first(info.get("display_name")))), None)
    service_name = next((name for service in descriptor.get("attribute_consuming_service") or []
                         if (name := _first(service.get("service_name")))), None)
    organization = entity.get("organization") or {}
    org_name = _first(organization.get("organization_display_name"))
    logo = next((str(item["text"]).strip() for info in uiinfos for item in info.get("logo") or []
                 if isinstance(item, dict) and isinstance(item.get("text"), str)
                 and logo_problem(str(item["text"]).strip()) is None), None)
    policy = next((text for info in uiinfos for _, text in _texts(info.get("privacy_statement_url"))
                   if policy_problem(text) is None), None)
    return SpDisplay(readable_name((mdui_name, service_name, org_name), entity_id, file_stem), logo, policy)
