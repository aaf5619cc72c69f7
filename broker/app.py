"""``create_app``: settings -> extensions -> blueprints -> error handlers (DESIGN: layout).

Production runs ``gunicorn "broker:create_app()"``, reading the same settings as ``broker run``
(``BROKER_CONFIG`` names the config file).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app, request
from flask_babel import get_locale
from flask_sqlalchemy import SQLAlchemy
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from broker.config.settings import Settings, load_settings
from broker.core.audit import AuditEvent, AuditKind
from broker.core.operators import console_party
from broker.core.ports import PendingStore
from broker.downstream.oidc.provider import OidcProvider
from broker.downstream.saml_server import IdpServers
from broker.keys.keyring import load_keyring
from broker.logging_setup import install as install_logging
from broker.registry import FileRegistry, Snapshot
from broker.registry.changes import registration_changes
from broker.registry.metadata_refresh import IdpDirectory
from broker.storage import (
    SqlAccountStore,
    SqlAuditLog,
    SqlClientStore,
    SqlConsentStore,
    SqlGrantStore,
    SqlPendingStore,
    create_engine_for,
)
from broker.storage.app_roles import SqlAppRoles
from broker.storage.authenticators import SqlAuthenticators
from broker.storage.claims_rotation import ClaimsKeyError, check_claims_keys
from broker.storage.db import engine_options, tune_engine
from broker.storage.login_history import SqlLoginHistory
from broker.storage.migrate import current_revision, head_revision
from broker.storage.operators import SqlOperatorGrants
from broker.storage.outbox import SqlOutbox
from broker.storage.passkeys import SqlPasskeys
from broker.storage.redis_pending import RedisPendingStore
from broker.storage.sealing import Sealer
from broker.storage.ssf_streams import SqlSsfStreams
from broker.storage.sso_sessions import SqlSsoSessionRegistry
from broker.upstream.http_pool import UpstreamHttp
from broker.upstream.saml_sp import SamlSp
from broker.web import (
    admin_api,
    authenticators,
    consent,
    console,
    console_analytics,
    console_apps,
    console_federations,
    console_keys,
    console_policy,
    console_roles,
    link_offer,
    linking,
    login,
    oidc_api,
    oidc_provider,
    oidc_registration,
    pages,
    portal,
    saml_idp,
    saml_logout,
    saml_sp,
    saml_sp_slo,
    ssf,
    step_up,
    upstream_backchannel,
)
from broker.web.http.device_cookie import init_device_cookie
from broker.web.http.journey_context import WebObserver, WebPlaces
from broker.web.http.same_origin import OriginCheckedCsrf
from broker.web.http.session_ids import HashedRedisSessions, HashedSqlSessions, session_id_key
from broker.web.locale import init_locale
from broker.web.ops import health, outages
from broker.web.ops.limits import init_limits
from broker.web.ops.metrics import init_metrics
from broker.web.ops.request_ids import init_request_ids
from broker.web.renderer import json_data
from broker.web.services import (
    Services,
    SystemClock,
    assertion_replay_guard,
    describe_upstream,
    dynamic_clients,
    email_indexer,
    idp_settings,
    mailer_of,
    passkey_party,
    provider_settings,
    sp_settings,
    ssf_transmitter,
)
from broker.web.theme import init_theme
from broker.web.wiring import wire_journeys

log = logging.getLogger(__name__)


class NotMigrated(RuntimeError):
    pass


#: the browser-session cookie over https. The ``__Host-`` prefix (RFC 6265bis §4.1.3.2) makes browsers accept it
#: only from this very host, Secure, for the whole path and without a Domain attribute: a page on a sibling
#: host (another app under the city's domain, or one an attacker controls there) cannot toss its own session
#: cookie into the broker's name to make a victim's browser continue the attacker's login or link journey.
SESSION_COOKIE_HTTPS = "__Host-broker_session"
#: on plain-http localhost (development), where the prefix cannot be used (it requires Secure)
SESSION_COOKIE_HTTP = "broker_session"


def _session_config(app: Flask, settings: Settings) -> None:
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE_HTTPS if settings.secure_cookies else SESSION_COOKIE_HTTP,
        # RFC 6265bis §4.1.3.2: a __Host- cookie is accepted only with Secure, Path=/ and no Domain
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # Cross-site POSTs (SAML HTTP-POST binding) carry the cookie only with SameSite=None, which
        # browsers accept only on Secure cookies; on plain-http localhost, Lax is the working choice.
        SESSION_COOKIE_SAMESITE="None" if settings.secure_cookies else "Lax",
        SESSION_PERMANENT=False,
        # The stored record is written only when the session changed (issue 21: Flask's default rewrote it on every
        # request). It then lives ``sso_session_lifetime`` after its last change; an SSO session written at sign-in
        # ends by its own ``expires_at`` at that same moment, so nothing that counts expires sooner.
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=settings.sso_session_lifetime,
        SESSION_KEY_PREFIX="broker:",
        BROKER_HTTPS=settings.secure_cookies,
        # Nothing the broker receives is large: a SAML request is refused above 64 KiB before parsing.
        MAX_CONTENT_LENGTH=512 * 1024,
    )
    if settings.session_type == "redis":
        import redis

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(settings.redis_url or "",
                                                                              **outages.REDIS_TIMEOUTS))
        # Flask-Session's own interface, keyed by the hash of the session id (broker.web.http.session_ids)
        app.session_interface = HashedRedisSessions(
            app, client=app.config["SESSION_REDIS"], key_prefix=app.config["SESSION_KEY_PREFIX"], permanent=False,
            id_key=session_id_key(settings.secret_key))
    else:
        app.config.update(
            SESSION_TYPE="sqlalchemy",
            SQLALCHEMY_DATABASE_URI=settings.database_url,
            SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
            SESSION_SQLALCHEMY_TABLE="browser_sessions",
            SESSION_CLEANUP_N_REQUESTS=200,
        )
        session_db = SQLAlchemy(app)
        app.config["SESSION_SQLALCHEMY"] = session_db
        with app.app_context():
            tune_engine(session_db.engine)  # SQLite pragmas, or the ping of rested connections
        app.session_interface = HashedSqlSessions(
            app, client=session_db, key_prefix=app.config["SESSION_KEY_PREFIX"], permanent=False,
            table="browser_sessions", cleanup_n_requests=app.config["SESSION_CLEANUP_N_REQUESTS"],
            id_key=session_id_key(settings.secret_key))


def _csrf(app: Flask, base_url: str) -> None:
    """Every POST to the broker comes from a page of the broker's own origin (``Origin``, else a same-origin
    ``Referer``, compared with ``base_url``: ``broker.web.http.same_origin``) and carries a CSRF token bound to
    the browser's session (Flask-WTF), except the
    protocol endpoints that receive cross-site POSTs by design and authenticate them otherwise: the
    SAML SSO POST binding (the request's signature and the app's registration), the OIDC callback
    with ``response_mode=form_post`` (its ``state``: unguessable, single-use, bound to this browser), the
    OpenID provider's authorization endpoint (checked exactly like its GET form) and its back-channel
    endpoints (which authenticate the calling client and read no cookie)."""
    app.config.update(WTF_CSRF_TIME_LIMIT=None)  # the token lives as long as the session it is bound to
    protect = OriginCheckedCsrf(app, base_url)
    protect.exempt(saml_idp.sso_post)
    protect.exempt(saml_logout.slo_post)  # SAML SLO POST binding: signed messages, browser-bound chain handles
    protect.exempt(login.oidc_callback)
    protect.exempt(saml_sp.acs)  # the IdP posts cross-site; the RelayState handle is bound to the browser
    protect.exempt(saml_sp_slo.slo_post)  # signed by the IdP; a LogoutResponse needs this browser's handle
    # The OpenID provider's back channel authenticates clients, not browsers; its authorization endpoint
    # accepts a cross-site POST by design (OIDC Core §3.1.2.1) and is checked like its GET form.
    protect.exempt(oidc_api.bp)
    protect.exempt(oidc_provider.authorize)
    # RP-Initiated Logout 1.0 §2: apps may POST the logout request cross-site. It ends nothing by itself
    # unless its id_token_hint proves it comes from the session's own client; otherwise the person confirms
    # on a page whose form is CSRF-protected (``logout_confirmed``).
    protect.exempt(oidc_provider.logout)
    # Dynamic Client Registration authenticates by bearer tokens (RFC 7591 §3, RFC 7592 §3), reads no cookie.
    protect.exempt(oidc_registration.bp)
    # The Shared Signals stream management API (SSF 1.0 §8.1) authenticates the calling client on every request
    # (HTTP Basic, ``broker.web.ssf``) and reads no cookie, like the provider's back channel.
    protect.exempt(ssf.bp)
    # An upstream OpenID provider's logout token (Back-Channel Logout 1.0 §2.5): posted by the provider itself, not
    # a browser; its signature authenticates it, and no cookie is read.
    protect.exempt(upstream_backchannel.bp)
    # The admin API takes bearer tokens, which no browser sends by itself; a call made with the console session's
    # cookie is checked for the broker's origin and its CSRF token in a header by the API itself
    # (``broker.web.admin_api.auth``), since the form check here would look for the token in a form field.
    protect.exempt(admin_api.bp)
    # The portal's sign-in form is on the signed-out page, which must open no session for an anonymous visitor
    # (issue 15, point 3): it carries no token, and its POST is refused unless it comes from the broker's origin.
    protect.origin_only(portal.sign_in)
    protect.origin_only(console.sign_in)  # the console's sign-in button, likewise (``broker.web.console``)


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Referrer Policy §3.4: the full Referer to the broker itself, none to any other origin (a URL of the
    # broker can carry a login handle); and a same-origin form POST carries a real Origin (Fetch §3.2.5),
    # which the origin check wants (broker.web.http.same_origin). ``no-referrer`` made both empty or ``null``.
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    if current_app.config["BROKER_HTTPS"]:
        # The public address is https (a proxy may terminate TLS in front): browsers must never use http.
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def create_app(config: Settings | str | Path | None = None, *, http: UpstreamHttp | None = None) -> Flask:
    """The broker as a WSGI app. ``config`` is Settings, a config file path, or None (``BROKER_CONFIG``)."""
    settings = config if isinstance(config, Settings) else load_settings(Path(config) if config else None)
    install_logging(settings.log_format)  # JSON lines with request and login ids (broker.logging_setup)
    keys = load_keyring(settings.certs_dir)
    engine = create_engine_for(settings.database_url)
    if current_revision(settings.database_url) != head_revision():
        raise NotMigrated(f"the database at {engine.url.render_as_string(hide_password=True)} is not at the "
                          "current schema; run 'broker migrate' (or 'broker init')")
    sealer = Sealer(settings.claims_keys)
    try:
        check_claims_keys(engine, sealer)  # a wrong claims key must not start overwriting what it cannot read
    except ClaimsKeyError:
        engine.dispose()
        raise

    # pysaml2 logs whole SAML messages (names, e-mail addresses) at DEBUG and INFO; the broker's own lines
    # say what happened without personal data, so pysaml2 may speak only about problems.
    saml2_log = logging.getLogger("saml2")
    if saml2_log.level < logging.WARNING:  # its own level, so a DEBUG root logger does not open it again
        saml2_log.setLevel(logging.WARNING)
    for entity_id in sorted(settings.saml.sha1_allowed_for):
        log.warning("SHA-1 signatures are accepted from %s ([saml] sha1_allowed_for): SHA-1 is broken for "
                    "signatures; ask the app to sign with RSA-SHA256", entity_id)
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    if settings.trusted_proxies:
        # Behind N reverse proxies, take client address, scheme and host from their X-Forwarded-* headers
        # (only from them: a client cannot spoof what the trusted proxies overwrite).
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    if settings.theme_dir is not None:
        # The city's theme: any template in THEME/templates replaces the built-in one of the same name.
        loaders: list[BaseLoader] = [FileSystemLoader(settings.theme_dir / "templates")]
        app.jinja_loader = ChoiceLoader(loaders + ([app.jinja_loader] if app.jinja_loader else []))
    _session_config(app, settings)
    init_request_ids(app)  # before every other request hook: their log lines carry this request's id
    init_locale(app, settings)  # Flask-Babel, the language switch, ui_locales (broker.web.locale)

    @app.context_processor
    def _page_globals() -> dict[str, Any]:
        return {"brand_name": settings.brand_name, "get_locale": get_locale}

    audit, clock = SqlAuditLog(engine), SystemClock()

    def registrations_changed(before: Snapshot, after: Snapshot) -> None:
        for line in registration_changes(before, after):
            audit.record(AuditEvent(AuditKind.REGISTRATION_CHANGED, clock.now(), reason=line))

    clients = SqlClientStore(engine)
    session_http = http or UpstreamHttp()
    # SAML IdPs from metadata files and federation aggregates; refreshed in the background, one compiled copy
    # per instance folder shared by all worker processes (broker.registry.metadata_refresh)
    directory = IdpDirectory(settings.metadata_dir, settings.instance_dir, settings.saml.metadata_cache_dir,
                             build_in_child=settings.saml.metadata_build_in_child)
    for problem in directory.problems():
        log.warning("SAML IdP metadata: %s", problem)
    registry = FileRegistry(settings.metadata_dir, settings.instance_dir, describe_upstream,
                            on_change=registrations_changed, dynamic_client=dynamic_clients(clients),
                            directory=directory,
                            built_in=(console_party(settings.console),) if settings.console.enabled else ())
    accounts = SqlAccountStore(engine, sealer, email_indexer(settings))
    # With browser sessions in Redis, logins in progress (and the replay caches) live there too: the short-lived
    # steps of a login then cost no database transaction, and every instance sees the same state.
    session_redis = app.config.get("SESSION_REDIS")
    pending: PendingStore = (RedisPendingStore(session_redis, f"broker:{settings.base_url}:", sealer)
                             if session_redis is not None else SqlPendingStore(engine, sealer))
    app.extensions["broker"] = Services(
        settings=settings,
        keys=keys,
        registry=registry,
        accounts=accounts,
        pending=pending,
        clients=clients,
        consents=SqlConsentStore(engine),
        audit=audit,
        sso_sessions=SqlSsoSessionRegistry(engine),
        authenticators=SqlAuthenticators(engine, sealer),
        login_history=SqlLoginHistory(engine, retention=settings.risk.retention),
        passkeys=(SqlPasskeys(engine, party[0], settings.brand_name, party[1])
                  if (party := passkey_party(settings)) is not None else None),
        clock=clock,
        mailer=mailer_of(settings),
        outbox=SqlOutbox(engine, sealer=sealer),
        operators=SqlOperatorGrants(engine),
        app_roles=(app_roles := SqlAppRoles(engine)),
        idp=IdpServers(idp_settings(settings, keys)),
        oidc=OidcProvider(provider_settings(settings), keys, SqlGrantStore(engine, sealer), accounts,
                          registry.oidc_client, assertion_replay_guard(pending), app_roles),
        http=session_http,
        engine=engine,
        saml_sp=SamlSp(sp_settings(settings, keys)),
        idp_directory=directory,
    )
    # the Shared Signals transmitter (issue 18), before the journeys, which emit security events through it
    app.extensions["broker"].ssf = ssf_transmitter(app.extensions["broker"], SqlSsfStreams(engine, sealer))
    app.extensions["broker"].journeys = wire_journeys(app.extensions["broker"], WebObserver(), WebPlaces())
    for blueprint in (pages.bp, health.bp, saml_idp.bp, login.bp, link_offer.bp, consent.bp, portal.bp, linking.bp,
                      oidc_provider.bp, oidc_api.bp, oidc_registration.bp, saml_logout.bp, saml_sp.bp, saml_sp_slo.bp,
                      step_up.bp, authenticators.bp, upstream_backchannel.bp, ssf.bp, console.bp, admin_api.bp,
                      console_apps.bp, console_analytics.bp, console_federations.bp, console_keys.bp,
                      console_policy.bp, console_roles.bp):
        app.register_blueprint(blueprint)
    app.add_template_filter(authenticators.qr_svg, "qr_svg")
    app.add_template_filter(json_data, "json_data")
    _csrf(app, settings.base_url)
    if settings.limits.storage_url.startswith(("redis://", "rediss://")):  # fail fast when Redis is down
        app.config["RATELIMIT_STORAGE_OPTIONS"] = dict(outages.REDIS_TIMEOUTS)
    init_limits(app, settings.limits, prefix=f"broker:{settings.base_url}")
    init_device_cookie(app)
    init_theme(app, settings.theme, settings.theme_dir, settings.brand_name)  # [theme] (broker.web.theme)
    init_metrics(app)  # /metrics (broker.web.ops.metrics)
    pages.register_error_handlers(app)
    outages.register(app)  # PostgreSQL or Redis unreachable: 503 in the caller's form
    app.after_request(_security_headers)
    return app


def close_app(app: Flask) -> None:
    """Dispose of the app's database connections (its own engine and the session store's)."""
    services: Services = app.extensions["broker"]
    services.close()
    session_db = app.config.get("SESSION_SQLALCHEMY")
    if session_db is not None:
        with app.app_context():
            for engine in session_db.engines.values():
                engine.dispose()
