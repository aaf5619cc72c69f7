"""The link offer and portal linking (issue 15, points 1 and 6; docs/security.md "Link offer steered by an
attacker", "Linking CSRF, proof replay, trojan identifier").

The binding of every browser-bound record to its browser (``broker.journeys.handles.take_bound``) is one
defence, proven through the link offer's test. Not listed, because only a forged sealed row could reach them:
the checks that a stored offer proof was asked fresh (``max_age == 0``, ``force_authn``).
"""

from __future__ import annotations

from tests.mutation.defence import Defence

OFFER_TESTS = "tests/security/test_attack_link_offer.py"
LINK_TESTS = "tests/security/test_attack_linking.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="link-offer-new-upstream-trusted-for-email",
        path="broker/journeys/link_offer.py",
        old="""    if identity.upstream not in authoritative:
        return None  # rule 1""",
        new="""    if False:
        return None  # rule 1""",
        tests=(f"{OFFER_TESTS}::test_an_address_from_an_untrusted_provider_never_leads_to_an_offer[victim]",),
        why="an address from an upstream not trusted for e-mail leads to an offer (the oracle of point 8)",
    ),
    Defence(
        name="link-offer-earlier-upstream-trusted-for-email",
        path="broker/journeys/link_offer.py",
        old="owners = [o for o in _candidates(j, identity) if o.upstream in authoritative]",
        new="owners = _candidates(j, identity)",
        tests=(f"{OFFER_TESTS}::test_an_address_from_an_untrusted_provider_never_leads_to_an_offer[attacker]",),
    ),
    Defence(
        name="reauthentication-asks-prompt-login-max-age-0",
        path="broker/upstream/oidc.py",
        old="""        return {**downstream_wishes(login), "prompt": "login", "max_age": "0"}""",
        new="""        return downstream_wishes(login)""",
        tests=(f"{OFFER_TESTS}::test_the_victim_who_presses_link_is_not_linked_to_a_silently_signed_in_attacker",
               f"{LINK_TESTS}::test_a_provider_that_signs_in_silently_proves_nothing"),
    ),
    Defence(
        name="id-token-auth-time-within-max-age",
        path="broker/upstream/oidc_tokens.py",
        old="if expected.max_age is not None and auth_time is not None and auth_time < now - expected.max_age - skew:",
        new="if False:",
        tests=(f"{OFFER_TESTS}::test_the_victim_who_presses_link_is_not_linked_to_a_silently_signed_in_attacker",
               f"{LINK_TESTS}::test_a_provider_that_signs_in_silently_proves_nothing"),
        why="an auth_time older than the max_age asked for is accepted (OIDC Core §3.1.3.7 step 13)",
    ),
    Defence(
        name="saml-force-authn-authn-instant",
        path="broker/upstream/saml_assertion.py",
        old="if since is not None and authn_instant < since - expected.clock_skew:",
        new="if False:",
        tests=("tests/flows/test_saml_linking.py::test_an_idp_that_ignores_force_authn_links_nothing",),
        why="an AuthnInstant from before a ForceAuthn request is accepted (SAML Core §3.4.1)",
    ),
    Defence(
        name="link-offer-confirmed-before-linking",
        path="broker/journeys/link_offer.py",
        old="""    _same_sso(j, browser, offer)
    handle = put_record(j.pending, LinkOfferConfirm(""",
        new="""    _same_sso(j, browser, offer)
    j.accounts.link_identity(offer.account, offer.identity, now)
    handle = put_record(j.pending, LinkOfferConfirm(""",
        tests=(f"{OFFER_TESTS}::test_after_the_proof_nothing_is_linked_until_the_person_confirms",),
        why="the proof links at once, before the person confirms",
    ),
    Defence(
        name="link-confirmation-keep-separate-has-the-focus",
        path="broker/web/templates/link_confirm.html",
        old="""<button type="submit" autofocus>""",
        new="""<button type="submit">""",
        tests=(f"{OFFER_TESTS}::test_after_the_proof_nothing_is_linked_until_the_person_confirms",
               f"{LINK_TESTS}::test_the_confirmation_names_the_account_and_cancel_links_nothing"),
    ),
    Defence(
        name="link-offer-bound-to-the-sso-session",
        path="broker/journeys/link_offer.py",
        old="""    if offer.sso != _sso_sid(j, browser):""",
        new="""    if False:""",
        tests=(f"{OFFER_TESTS}::test_an_offer_dies_when_someone_signs_in_in_that_browser",),
    ),
    Defence(
        name="browser-bound-records-need-their-browser",
        path="broker/journeys/handles.py",
        old="""    record = take_record(j.pending, cls, handle, j.now()) if browser.unbind(handle) else None""",
        new="""    record = take_record(j.pending, cls, handle, j.now())""",
        tests=(f"{OFFER_TESTS}::test_an_offer_is_single_use_and_bound_to_its_browser",),
    ),
    Defence(
        name="portal-link-confirmed-before-linking",
        path="broker/journeys/portal_links.py",
        old="""    handle = put_record(j.pending, PortalLinkConfirm(""",
        new="""    j.accounts.link_identity(proof.account_id, identity, j.now())
    handle = put_record(j.pending, PortalLinkConfirm(""",
        tests=(f"{LINK_TESTS}::test_the_confirmation_names_the_account_and_cancel_links_nothing[sqlite]",),
        why="the upstream's answer is linked at once, before the citizen confirms",
    ),
    Defence(
        name="portal-link-confirmation-rechecks-the-proof",
        path="broker/journeys/portal_links.py",
        old="""    proof, identity = _take_confirmation(j, browser, handle)
    _check(j, browser, proof, identity.upstream)""",
        new="""    proof, identity = _take_confirmation(j, browser, handle)""",
        tests=(f"{LINK_TESTS}::test_a_confirmation_is_refused_after_the_session_changed_or_in_another_browser[sqlite]",),
    ),
)
