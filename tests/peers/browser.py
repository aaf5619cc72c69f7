"""A small scripted browser for tests: cookies, manual redirects, HTML forms.

It knows HTTP and HTML only, no OpenID or SAML: a protocol test drives it like a person would, following
redirects, filling a login form, and letting a self-submitting page (the SAML HTTP-POST binding) submit
itself. It refuses to go anywhere but 127.0.0.1/localhost, so a test can never reach the internet.

Like a browser, it sends ``Origin`` on a form POST and ``Referer`` on requests a page starts (forms, and the
redirects that follow them), as the page's ``Referrer-Policy`` and any redirect's policy allow
(``tests.peers.referrer``); cookies cross sites only as their SameSite attribute allows. It verifies https
against the test run's throw-away CA (``tests.peers.tls``).
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]  # lxml ships no type information
import requests

from tests.peers import referrer
from tests.peers.tls import throwaway_ca

#: a form's fields: by name, or as (name, value) pairs when a name repeats (several ticked checkboxes)
FormData = Mapping[str, str] | Sequence[tuple[str, str]]
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ALLOWED_HOSTS = ("127.0.0.1", "localhost")


class RefusedHost(ValueError):
    """The browser was asked to contact a host that is not 127.0.0.1/localhost."""


class NoForm(LookupError):
    """The page has no form that matches."""


@dataclass
class _Initiator:
    """The page that starts a request: its URL (the referrer source) and its Referrer-Policy."""

    url: str
    policy: str


class Browser:
    """A ``requests.Session`` that follows redirects itself and can submit HTML forms.

    ``history`` lists every URL requested, in order (redirect hops included), and ``sent`` the request
    actually sent for each (its ``Origin`` and ``Referer`` headers), for assertions. ``verify`` is what
    https is checked against: the test run's throw-away CA unless given.
    """

    def __init__(self, *, timeout: float = 10.0, max_redirects: int = 20, verify: str | bool | None = None) -> None:
        self.session = requests.Session()
        self.session.verify = str(throwaway_ca().ca_file) if verify is None else verify
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.history: list[str] = []
        self.sent: list[requests.PreparedRequest] = []
        #: the Referrer-Policy of each document this browser received, by URL
        self._policies: dict[str, str] = {}

    # -- plain requests ------------------------------------------------------------------------------------
    def get(
        self, url: str, params: Mapping[str, str] | None = None, *, follow: bool = True
    ) -> requests.Response:
        return self._request("GET", url, params=params, data=None, follow=follow)

    def post(self, url: str, data: FormData, *, follow: bool = True,
             initiator: str | None = None) -> requests.Response:
        """POST ``data``; ``initiator`` is the URL of the page the form was on: it decides which cookies go
        along (SameSite) and the ``Origin`` and ``Referer`` sent (its Referrer-Policy as received, or the
        default policy for a page this browser never loaded). Without it: no ``Origin``, no ``Referer``
        (a request made by hand, not by a page)."""
        page = None if initiator is None else _Initiator(initiator, self._policies.get(initiator,
                                                                                      referrer.DEFAULT_POLICY))
        return self._request("POST", url, params=None, data=data, follow=follow, initiator=page)

    # -- forms -------------------------------------------------------------------------------------------------
    def form_fields(self, page: requests.Response, form: int | str = 0) -> dict[str, str]:
        """The fields a browser would submit for the form (without any submit button)."""
        return dict(_successful_controls(self._form(page, form)))

    def submit(
        self,
        page: requests.Response,
        fields: Mapping[str, str] | None = None,
        *,
        form: int | str = 0,
        button: str | None = None,
        follow: bool = True,
    ) -> requests.Response:
        """Fill ``fields`` (by input name) into a form of ``page`` and submit it like a browser.

        ``form`` is the form's index or its ``id``/``name``. ``button`` is the name of the submit button
        pressed (its value is sent as a browser would); ``None`` presses none.
        """
        element = self._form(page, form)
        values = dict(_successful_controls(element))
        known = {control.name for control in element.inputs if control.name}
        unknown = set(fields or {}) - known
        if unknown:
            raise NoForm(f"the form has no fields named {sorted(unknown)}")
        values.update(fields or {})
        if button is not None:
            values[button] = self._button_value(element, button)
        action = element.action or page.url
        initiator = _Initiator(page.url, self._policy_of(page))
        method = (element.method or "GET").upper()
        return self._request(method, action, params=None if method == "POST" else values,
                             data=values if method == "POST" else None, follow=follow, initiator=initiator)

    def is_self_submitting(self, page: requests.Response) -> bool:
        """True for a page whose only form posts nothing but hidden inputs (an HTTP-POST binding page)."""
        forms = self._forms(page)
        if len(forms) != 1 or (forms[0].method or "GET").upper() != "POST":
            return False
        inputs = forms[0].xpath(".//input[not(@type='submit')] | .//textarea | .//select")
        return all(i.tag == "input" and (i.get("type") or "").lower() == "hidden" for i in inputs)

    def auto_submit(self, page: requests.Response, *, follow: bool = True) -> requests.Response:
        """Submit a self-submitting page (what its ``onload`` script or noscript button would do)."""
        if not self.is_self_submitting(page):
            raise NoForm(f"{page.url} is not a self-submitting form page")
        return self.submit(page, follow=follow)

    def auto_submit_all(self, page: requests.Response, *, limit: int = 5) -> requests.Response:
        """Keep auto-submitting while the answer is another self-submitting page."""
        for _ in range(limit):
            if not self.is_self_submitting(page):
                return page
            page = self.auto_submit(page)
        raise NoForm(f"more than {limit} self-submitting pages in a row")

    # -- lifecycle -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        data: FormData | None,
        follow: bool,
        initiator: _Initiator | None = None,
    ) -> requests.Response:
        source, policy = (initiator.url, initiator.policy) if initiator else (None, referrer.DEFAULT_POLICY)
        url_list: list[str] = []  # Fetch's request URL list: this request and its redirects
        for _ in range(self.max_redirects + 1):
            _check_host(url)
            self.history.append(url)
            url_list.append(requests.Request(method, url, params=params).prepare().url or url)
            source = referrer.referrer(source, policy, url_list[-1])  # a referrer dropped stays dropped
            headers = {"Referer": source} if source else {}
            if initiator is not None and (origin := referrer.origin_header(referrer.origin(initiator.url), policy,
                                                                          url_list, method)):
                headers["Origin"] = origin
            cross_site = method == "POST" and initiator is not None and not same_site(initiator.url, url)
            response = self._send(method, url, params, data, headers, cross_site=cross_site)
            if not follow or response.status_code not in REDIRECT_STATUSES or not response.headers.get("Location"):
                self._policies[response.url] = self._policy_of(response)
                return response
            url = urljoin(response.url, response.headers["Location"])
            # Fetch §4.4 (HTTP-redirect fetch): a redirect's own Referrer-Policy applies to the next hop
            policy = referrer.parse_policy(response.headers.get("Referrer-Policy")) or policy
            params = None
            if response.status_code in (301, 302, 303):
                method, data = "GET", None
            response.close()
        raise requests.TooManyRedirects(f"more than {self.max_redirects} redirects")

    def _send(self, method: str, url: str, params: Mapping[str, str] | None, data: FormData | None,
              headers: dict[str, str], *, cross_site: bool) -> requests.Response:
        """Send one request. A POST from another site's page carries only ``SameSite=None`` cookies
        (RFC 6265bis §5.7.4.1; a cookie without the attribute counts as ``Lax``, as in Chromium)."""
        prepared = self.session.prepare_request(requests.Request(method, url, params=params, data=data,
                                                                 headers=headers))
        if cross_site:
            jar = requests.cookies.RequestsCookieJar()
            for cookie in self.session.cookies:
                if _same_site_attribute(cookie) == "none":
                    jar.set_cookie(cookie)
            prepared.headers.pop("Cookie", None)
            prepared.prepare_cookies(jar)
        self.sent.append(prepared)
        # its own trust, like a browser's: REQUESTS_CA_BUNDLE would override ``session.verify`` otherwise
        settings = self.session.merge_environment_settings(prepared.url, {}, None, self.session.verify, None)
        return self.session.send(prepared, allow_redirects=False, timeout=self.timeout, **settings)

    @staticmethod
    def _policy_of(page: requests.Response) -> str:
        return referrer.parse_policy(page.headers.get("Referrer-Policy")) or referrer.DEFAULT_POLICY

    def _forms(self, page: requests.Response) -> list[lxml.html.FormElement]:
        if not page.text.strip():
            return []
        document = lxml.html.document_fromstring(page.text, base_url=page.url)
        return list(document.forms)

    def _form(self, page: requests.Response, form: int | str) -> lxml.html.FormElement:
        forms = self._forms(page)
        if isinstance(form, int):
            if form >= len(forms):
                raise NoForm(f"{page.url} has {len(forms)} form(s), wanted index {form}")
            return forms[form]
        for candidate in forms:
            if form in (candidate.get("id"), candidate.get("name")):
                return candidate
        raise NoForm(f"{page.url} has no form with id or name {form!r}")

    @staticmethod
    def _button_value(form: lxml.html.FormElement, name: str) -> str:
        for button in form.xpath(".//button | .//input[@type='submit']"):
            if button.get("name") == name:
                return str(button.get("value") or "")
        raise NoForm(f"the form has no submit button named {name!r}")


def _successful_controls(form: lxml.html.FormElement) -> list[tuple[str, str]]:
    """What a browser submits (HTML "constructing the entry list"): empty text fields included, unchecked
    boxes and buttons not (lxml's ``form_values`` leaves out empty fields)."""
    values: list[tuple[str, str]] = []
    for control in form.inputs:
        name = control.name
        if not name or control.get("disabled") is not None:
            continue
        if control.tag == "textarea":
            values.append((name, control.text or ""))
        elif control.tag == "select":
            chosen = control.value
            if control.multiple:
                values.extend((name, str(v)) for v in chosen)
            elif chosen is not None:
                values.append((name, str(chosen)))
        else:
            kind = (control.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if control.checked:
                    values.append((name, control.get("value") or "on"))
            elif kind not in ("submit", "image", "reset", "button", "file"):
                values.append((name, control.get("value") or ""))
    return values


def same_site(a: str, b: str) -> bool:
    """Same site for cookies: same scheme and host; ports do not count (RFC 6265bis "same-site").
    ``localhost`` and ``127.0.0.1`` are different sites, so tests can put a provider on another site."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname) == (pb.scheme, pb.hostname)


def _same_site_attribute(cookie: http.cookiejar.Cookie) -> str:
    """The cookie's SameSite attribute, lower-case; "lax" when absent (Chromium's default)."""
    for spelling in ("SameSite", "samesite", "Samesite"):
        value = cookie.get_nonstandard_attr(spelling)
        if value is not None:
            return str(value).lower()
    return "lax"


def _check_host(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in ALLOWED_HOSTS:
        raise RefusedHost(f"the test browser only visits 127.0.0.1/localhost, not {url!r}")
