"""The page that carries a message to a party by HTTP POST (SAML HTTP-POST binding, OAuth form_post)."""

from __future__ import annotations

from flask import render_template
from werkzeug.wrappers import Response

from broker.downstream.saml_responses import PostForm


def post_form_page(form: PostForm, status: int = 200, heading: str | None = None) -> Response:
    """A page that posts ``form`` at once (with JavaScript) or when the person presses Continue."""
    html = render_template("post_form.html", form=form, heading=heading)
    return Response(html, status=status, mimetype="text/html")
