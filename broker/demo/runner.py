"""Start the DEMO peers next to the development server (``broker run`` with ``[demo] enabled = true``).

Both listen on 127.0.0.1 only: the DEMO OpenID provider with one test citizen, and the DEMO SAML app.
They run in daemon threads and stop with the process.
"""

from __future__ import annotations

import threading

from werkzeug.serving import make_server

from broker.config.settings import Settings
from broker.demo.oidc_provider import create_demo_provider
from broker.demo.oidc_provider_config import DemoClient, DemoProviderSettings, DemoUser
from broker.demo.saml_app import create_demo_app
from broker.instance import DEMO_CLIENT_ID, DEMO_UPSTREAM, demo_app_settings
from broker.web.ops.access_log import PathOnlyRequestHandler

DEMO_CITIZEN = DemoUser("citizen", "demo", {
    "sub": "demo-citizen-0001",
    "email": "citizen@demo.invalid",
    "email_verified": True,
    "given_name": "Demo",
    "family_name": "Citizen",
    "name": "Demo Citizen",
})


def _serve(app: object, port: int, name: str) -> None:
    server = make_server("127.0.0.1", port, app, threaded=True,  # type: ignore[arg-type]
                         request_handler=PathOnlyRequestHandler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()


def start_demo_peers(settings: Settings) -> list[str]:
    """Start both DEMO peers; returns lines telling the person where they are."""
    secret = (settings.certs_dir / "demo-client.secret").read_text().strip()
    provider_url = f"http://127.0.0.1:{settings.demo.provider_port}"
    callback = settings.url(f"/upstream/oidc/{DEMO_UPSTREAM}/callback")
    provider = create_demo_provider(DemoProviderSettings(
        issuer=provider_url,
        clients=(DemoClient(DEMO_CLIENT_ID, secret, (callback,)),),
        users=(DEMO_CITIZEN,),
    ))
    _serve(provider.app, settings.demo.provider_port, "demo-provider")
    app_settings = demo_app_settings(settings.instance_dir, settings.base_url, settings.demo.app_port)
    _serve(create_demo_app(app_settings), settings.demo.app_port, "demo-app")
    return [
        f"DEMO provider: {provider_url}  (test citizen: user 'citizen', password 'demo')",
        f"DEMO app:      {app_settings.base_url}/  <- open this and click 'Sign in'",
    ]
