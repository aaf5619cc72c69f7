"""Signing out reaches every app (issue 18; README "Signing out"): the ended session's grants revoked, its
back-channel apps given logout tokens, the logout token's own claims, and the outbox's one-delivery rule."""

from __future__ import annotations

from tests.mutation.defence import Defence

SESSION_END = "tests/journeys/test_session_end_journey.py"
NOTICES = "tests/downstream/test_oidc_session_notices.py"
SSF = "tests/flows/test_ssf.py"
UPSTREAM_BACKCHANNEL = "tests/journeys/test_upstream_backchannel_journey.py"
UPSTREAM_BACKCHANNEL_FLOW = "tests/flows/test_upstream_backchannel_logout.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="ended-session-grants-revoked",
        path="broker/journeys/session_end.py",
        old="""    revoked = j.grants.revoke_session(sid, now)""",
        new="""    revoked = 0""",
        tests=(f"{SESSION_END}::test_an_rp_initiated_logout_reaches_the_back_and_front_channel_apps_and_revokes"
               "_the_grants",),
        why="an app keeps refreshing tokens of a session the citizen ended",
    ),
    Defence(
        name="ended-session-back-channel-queued",
        path="broker/journeys/session_end.py",
        old="""        if message is not None and j.outbox is not None and j.outbox.enqueue(message, now):""",
        new="""        if False:""",
        tests=(f"{SESSION_END}::test_sign_out_everywhere_reaches_the_other_browsers_apps_by_the_back_channel",),
        why="a back-channel app is never told that the session ended",
    ),
    Defence(
        name="logout-token-explicitly-typed",
        path="broker/downstream/oidc/session_notices.py",
        old="""        token = sign_for(self._keys, client, claims, typ=LOGOUT_TOKEN_TYPE)""",
        new="""        token = sign_for(self._keys, client, claims, typ="JWT")""",
        tests=(f"{NOTICES}::test_the_logout_token_passes_the_relying_partys_checks",),
        why="a logout token could be taken for another kind of JWT (RFC 8725 §3.11)",
    ),
    Defence(
        name="erasure-pushes-account-purged",
        path="broker/journeys/account_data.py",
        old="""        j.security_events.emit(SecurityEvent.ACCOUNT_PURGED, account_id, now)""",
        new="""        pass""",
        tests=(f"{SSF}::test_deleting_the_account_pushes_account_purged_to_the_apps_that_subscribed",),
        why="an app that subscribed never learns that the account it holds was deleted",
    ),
    Defence(
        name="upstream-logout-token-sid-matches-one-session",
        path="broker/journeys/upstream_backchannel.py",
        old="""    matching = [r for r in from_upstream if r.upstream_sid == verified.sid]\n""",
        new="""    matching = from_upstream\n""",
        tests=(f"{UPSTREAM_BACKCHANNEL}::test_a_token_with_the_providers_sid_ends_that_session_only",
               f"{UPSTREAM_BACKCHANNEL_FLOW}::test_a_logout_token_naming_the_providers_session_ends_that_browsers"
               "_session_only"),
        why="a provider's logout of one session (sub and sid) signs the citizen out of every browser",
    ),
    Defence(
        name="upstream-logout-token-sid-alone-ends-its-session",
        path="broker/journeys/upstream_backchannel.py",
        old="""        found = j.sso_sessions.by_upstream_sid(upstream, verified.sid, now)\n""",
        new="""        found = []\n""",
        tests=(f"{UPSTREAM_BACKCHANNEL}::test_a_token_with_the_providers_sid_ends_that_session_only",
               f"{UPSTREAM_BACKCHANNEL_FLOW}::test_a_logout_token_naming_the_providers_session_ends_that_browsers"
               "_session_only"),
        why="a logout token with the provider's sid alone leaves the session it names signed in",
    ),
    Defence(
        name="upstream-session-id-recorded-at-sign-in",
        path="broker/upstream/oauth_upstreams.py",
        old="""        if isinstance(found, OidcUpstream):""",
        new="""        if False:""",
        tests=("tests/upstream/test_oidc_session_id.py::test_the_id_tokens_sid_goes_with_the_answer",
               f"{UPSTREAM_BACKCHANNEL_FLOW}::test_a_logout_token_naming_the_providers_session_ends_that_browsers"
               "_session_only"),
        why="the provider's session id never reaches the registry, so its logout tokens cannot be matched",
    ),
)
