"""The broker as an OpenID Provider for downstream apps (OpenID Connect Core 1.0, authorization code flow).

``authorize`` turns an authorization request into a ``LoginRequest``; ``grants`` issues and redeems codes and
refresh tokens; ``id_token`` builds ID tokens; ``token_endpoint``, ``resources`` (UserInfo, revocation,
introspection) and ``discovery`` serve the other endpoints. Flask stays in ``broker.web``.
"""
