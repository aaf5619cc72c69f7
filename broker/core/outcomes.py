"""What a step of a journey asks the web layer to do with the browser, as data (issue 16).

Adapters and journeys return these; ``broker.web.renderer`` alone turns them into HTTP responses, so a journey
never touches Flask and a page is rendered (and, later, translated) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Redirect:
    """Send the browser to ``url`` (303 See Other after a POST, RFC 9110 §15.4.4; 302 for a front-channel
    protocol message, as SAML Bindings §3.4 and OAuth 2.0 expect)."""

    url: str
    status: int = 302


@dataclass(frozen=True)
class PostForm:
    """An HTTP-POST binding message (SAML Bindings §3.5, OAuth 2.0 Form Post Response Mode): the page posts
    ``fields`` to ``url`` at once, or when the person presses Continue."""

    url: str
    fields: tuple[tuple[str, str], ...]
    #: why the browser carries it, for the page's heading: "answer" (back to the app), "signing_out"
    purpose: str = "answer"


@dataclass(frozen=True)
class Page:
    """A page of the broker's own: a template named by the journey and the data it shows."""

    template: str
    data: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200
    #: the page shows logos from registrations and metadata (https or data: only, ``core.display``), which
    #: the default Content-Security-Policy would block
    shows_logos: bool = False
    #: the page must not be cached (it carries single-use handles or personal data)
    no_store: bool = False
    #: pages of other origins the page loads in frames (front-channel logout URLs, Front-Channel Logout 1.0 §3),
    #: which the default Content-Security-Policy would block
    frames: tuple[str, ...] = ()


Outcome = Redirect | PostForm | Page
