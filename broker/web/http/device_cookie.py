"""The long-lived device cookie (issue 17, risk signals): a random id signed with a key derived from the broker's
secret key, so a browser is recognised as a device seen before for an account; a cookie that does not verify
counts as none (a new device). It carries nothing about the person and is set only after a completed sign-in
(``Browser.remember_device``). HttpOnly, Secure over https, SameSite=Lax, 400 days (the most browsers keep,
RFC 6265bis §5.6.2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, current_app, g, request
from werkzeug.wrappers import Response

COOKIE = "broker_device"
MAX_AGE = 400 * 24 * 3600


def _key() -> bytes:
    secret: bytes = current_app.extensions["broker"].settings.secret_key
    return hmac.new(secret, b"broker device cookie", hashlib.sha256).digest()


def _signed(device_id: str) -> str:
    tag = hmac.new(_key(), device_id.encode("ascii"), hashlib.sha256).hexdigest()[:32]
    return f"{device_id}.{tag}"


def device_id() -> str:
    """This browser's device id, if its cookie verifies; else ""."""
    value = request.cookies.get(COOKIE, "")
    device, _, tag = value.partition(".")
    if not device or len(device) > 64 or not tag:
        return ""
    return device if hmac.compare_digest(_signed(device), value) else ""


def remember() -> None:
    """Set a device cookie on this response unless the browser has a valid one."""
    if not device_id():
        g.broker_new_device = secrets.token_urlsafe(24)


def _set_cookie(response: Response) -> Response:
    new = g.pop("broker_new_device", None)
    if new:
        response.set_cookie(COOKIE, _signed(new), max_age=MAX_AGE, secure=request.is_secure, httponly=True,
                            samesite="Lax", path="/")
    return response


def init_device_cookie(app: Flask) -> None:
    app.after_request(_set_cookie)
