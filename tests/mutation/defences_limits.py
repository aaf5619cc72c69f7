"""The rate-limit defences of issue 15, points 3 and 4: per-address limits before shared budgets on every
sign-in entry point, the back channel's limits per address and per client, the limit on failed client
authentication, and the bounded, aggregated audit of failures anyone can cause."""

from __future__ import annotations

from tests.mutation.defence import Defence

BUDGETS = "tests/security/test_limits_shared_budgets.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="authorize-per-address-limit",
        path="broker/web/ops/limits.py",
        old='SIGN_IN_VIEWS = ("saml_idp.sso_redirect", "saml_idp.sso_post", "oidc_provider.authorize",\n',
        new='SIGN_IN_VIEWS = ("saml_idp.sso_redirect", "saml_idp.sso_post",\n',
        tests=(f"{BUDGETS}::test_one_address_hammering_authorize_does_not_lock_others_out",),
        why="/oidc/authorize is no longer limited per client address",
    ),
    Defence(
        name="per-address-limit-before-shared-budget",
        path="broker/web/ops/limits.py",
        old="""    _wrap(app, "login.oidc_callback", _spending_upstream_budget)
    for endpoint in SIGN_UP_VIEWS:  # inside the per-address limit below
        _wrap(app, endpoint, limiter.limit(settings.per_ip_sign_up, scope="sign-up"))
    for endpoint in SIGN_IN_VIEWS:
        _wrap(app, endpoint, limiter.limit(settings.per_ip))
""",
        new="""    for endpoint in SIGN_UP_VIEWS:  # inside the per-address limit below
        _wrap(app, endpoint, limiter.limit(settings.per_ip_sign_up, scope="sign-up"))
    for endpoint in SIGN_IN_VIEWS:
        _wrap(app, endpoint, limiter.limit(settings.per_ip))
    _wrap(app, "login.oidc_callback", _spending_upstream_budget)
""",
        tests=(f"{BUDGETS}::test_refused_callbacks_do_not_spend_the_upstreams_budget",),
        why="the upstream's budget is spent before the per-address limit refuses the request",
    ),
    Defence(
        name="address-share-of-shared-budget",
        path="broker/web/ops/limits.py",
        old="    _check(budgets, [(_share(item, budgets.address_share), ",
        new="    _check(budgets, [(_share(item, 1), ",
        tests=(f"{BUDGETS}::test_one_address_spends_only_its_share_of_an_apps_budget",),
        why="one address may spend the whole of an app's budget",
    ),
    Defence(
        name="back-channel-per-address-limit",
        path="broker/web/ops/limits.py",
        # the tuple's first line only (the views after it are added to over time); the mutant keeps the rest as
        # the dead branch of a conditional expression, so API_VIEWS is empty
        old='API_VIEWS = ("oidc_api.token", "oidc_api.userinfo", "oidc_api.revoke", "oidc_api.introspect",\n',
        new="API_VIEWS: tuple[str, ...] = () if True else (\n",
        tests=(f"{BUDGETS}::test_back_channel_endpoints_are_limited_per_address",),
    ),
    Defence(
        name="failed-client-auth-counted",
        path="broker/web/oidc_api.py",
        old="            limits.client_auth_failed(known)\n",
        new="            pass\n",
        tests=(f"{BUDGETS}::test_failed_client_authentication_is_limited_per_client_and_address",
               f"{BUDGETS}::test_made_up_client_ids_are_limited_and_audited_in_aggregate"),
        why="failed client authentications are never counted, so guessing secrets (scrypt) is unlimited",
    ),
    Defence(
        name="failed-client-auth-checked-before-the-secret",
        path="broker/web/oidc_api.py",
        old="    limits.check_client(known)\n",
        new="",
        tests=(f"{BUDGETS}::test_failed_client_authentication_is_limited_per_client_and_address",
               f"{BUDGETS}::test_only_a_clients_own_successes_spend_its_budget"),
    ),
    Defence(
        name="per-client-budget-of-successes",
        path="broker/web/oidc_api.py",
        old="        limits.client_succeeded(known)\n",
        new="        pass\n",
        tests=(f"{BUDGETS}::test_only_a_clients_own_successes_spend_its_budget",),
    ),
    Defence(
        name="audit-of-anyones-failures-aggregated",
        path="broker/web/http/audit.py",
        old="""    if left_out is None:
        return
""",
        new="""    if left_out is None:
        left_out = 0
""",
        tests=(f"{BUDGETS}::test_made_up_client_ids_are_limited_and_audited_in_aggregate",
               f"{BUDGETS}::test_failed_client_authentication_is_limited_per_client_and_address"),
        why="every failure and every 429 appends its own audit record again",
    ),
    Defence(
        name="audit-never-holds-a-made-up-client-id",
        path="broker/web/oidc_api.py",
        old='("client authentication failed" if known else "unknown client")',
        new='("client authentication failed" if known else str(exc.detail))',
        tests=(f"{BUDGETS}::test_made_up_client_ids_are_limited_and_audited_in_aggregate",),
        why="the caller's made-up client id is written into the audit chain",
    ),
    Defence(
        name="userinfo-spends-the-tokens-clients-budget",
        path="broker/web/oidc_api.py",
        old="svc.oidc.userinfo(access_token, svc.clock.now(), admit=_token_holder)",
        new="svc.oidc.userinfo(access_token, svc.clock.now())",
        tests=(f"{BUDGETS}::test_userinfo_spends_the_budget_of_the_tokens_client",),
    ),
)
