"""The defences marked † in docs/security.md ("Attacks and defences"), each with the patch that removes it and the
tests of its row that must then fail; and the SAMLRequest size cap and the forms' CSRF token (issue 15).

Left to other modules: the pre-account-takeover row (``defences_linking.py``), sessions, rate limits and
registration (``defences_sessions.py``, ``defences_limits.py``, ``defences_registration.py``).
"""

from __future__ import annotations

from tests.mutation.defence import Defence

SAML_MESSAGES = "tests/security/test_attack_saml_messages.py"
UPSTREAM = "tests/security/test_attack_upstream.py"
BROWSER = "tests/security/test_attack_browser.py"
CROSS_ORIGIN = "tests/security/test_attack_cross_origin.py"
ACCOUNTS = "tests/security/test_attack_accounts.py"
RESOURCES = "tests/security/test_attack_resources.py"
LOG_INJECTION = "tests/security/test_attack_log_injection.py"
METRICS = "tests/security/test_attack_metrics.py"
DEV_SERVER = "tests/security/test_attack_dev_server.py"

DEFENCES: tuple[Defence, ...] = (
    # -- XML signature wrapping --------------------------------------------------------------------------------
    Defence(
        name="xmlsig-one-target-of-the-expected-type",
        path="broker/saml/xmlsec_backend.py",
        old="""    if len(matches) != 1:
        raise SignatureError(f"expected exactly one element with ID {node_id!r}, found {len(matches)}")
    if matches[0].tag != tag:
        raise SignatureError(f"the element with ID {node_id!r} is {matches[0].tag}, expected {tag}")
""",
        new="""    if not matches:
        raise SignatureError(f"no element with ID {node_id!r}")
""",
        tests=(f"{SAML_MESSAGES}::test_xml_signature_wrapping_moved_assertion",),
        why="_target takes the first element with the ID, of any type",
    ),
    Defence(
        name="xmlsig-reference-uri-is-the-signed-element",
        path="broker/saml/xmlsec_backend.py",
        old="""        if (uri := reference.get("URI")) != f"#{node_id}":""",
        new="""        if (uri := reference.get("URI")) is None:""",
        tests=(f"{SAML_MESSAGES}::test_xml_signature_wrapping_signature_moved_onto_an_evil_assertion",),
        why="_check_signed_info accepts a Reference to any ID",
    ),
    # -- signature exclusion -------------------------------------------------------------------------------------
    Defence(
        name="authn-request-signature-required",
        path="broker/downstream/saml_requests.py",
        old="    required = servers.settings.want_authn_requests_signed or sp.authn_requests_signed\n",
        new="    required = False\n",
        tests=(
            f"{SAML_MESSAGES}::test_signature_exclusion_redirect_signature_stripped[sqlite]",
            f"{SAML_MESSAGES}::test_signature_exclusion_post_signature_stripped[sqlite]",
        ),
    ),
    # -- XXE --------------------------------------------------------------------------------------------------------
    Defence(
        name="xmlsig-parser-refuses-doctype",
        path="broker/saml/xmlsec_backend.py",
        old="    if docinfo.doctype or docinfo.internalDTD is not None:\n",
        new="    if False:\n",
        tests=(f"{SAML_MESSAGES}::test_xxe_doctype_and_entity_declarations_are_refused_by_the_verifier",),
    ),
    # -- IdP mix-up ---------------------------------------------------------------------------------------------
    Defence(
        name="oidc-iss-parameter-must-be-the-issuer",
        path="broker/upstream/oidc.py",
        old="        if not self.settings.quirks.iss_parameter_ok(self.settings.issuer, iss):\n",
        new="        if False:\n",
        tests=(
            f"{UPSTREAM}::test_idp_mix_up_wrong_iss_parameter",
            f"{UPSTREAM}::test_forged_upstream_answer_fails_the_login_end_to_end[sqlite-wrong-iss-parameter]",
        ),
    ),
    Defence(
        name="oidc-iss-parameter-required-when-promised",
        path="broker/upstream/oidc.py",
        old="            if metadata.iss_parameter_supported:\n",
        new="            if False:\n",
        tests=(f"{UPSTREAM}::test_idp_mix_up_iss_parameter_stripped",),
    ),
    # -- PKCE downgrade -----------------------------------------------------------------------------------------
    Defence(
        name="oidc-pkce-always-s256",
        path="broker/upstream/oidc.py",
        old="""            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
""",
        new="",
        tests=(f"{UPSTREAM}::test_pkce_downgrade_discovery_without_s256_still_gets_s256[plain-only]",),
        why="OidcUpstream.start sends no PKCE challenge",
    ),
    Defence(
        name="github-pkce-always-s256",
        path="broker/upstream/github.py",
        old="""            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
""",
        new="",
        tests=(f"{UPSTREAM}::test_pkce_downgrade_github_always_gets_s256",),
    ),
    # -- redirect manipulation ----------------------------------------------------------------------------------
    Defence(
        name="saml-acs-url-only-from-metadata",
        path="broker/downstream/saml_requests.py",
        old="        if message.assertion_consumer_service_url not in sp.acs_post_urls:\n",
        new="        if False:\n",
        tests=(f"{BROWSER}::test_redirect_manipulation_acs_url_not_in_metadata[sqlite]",),
    ),
    # -- login CSRF ------------------------------------------------------------------------------------------------
    Defence(
        name="pending-state-bound-to-the-browser",
        path="broker/journeys/upstream_answers.py",
        old="""    if handle and browser.holds(handle):""",
        new="""    if handle:""",
        tests=(
            f"{BROWSER}::test_login_csrf_callback_state_from_another_browser[sqlite]",
            f"{BROWSER}::test_login_csrf_form_post_answer_posted_cross_site_into_the_victims_browser[sqlite]",
        ),
        why="an upstream's answer completes a login whose handle this browser never had",
    ),
    Defence(
        name="pending-login-bound-to-the-browser",
        path="broker/journeys/login.py",
        old=" if browser.holds(handle) else None\n",
        new="\n",
        tests=(f"{BROWSER}::test_login_csrf_pending_login_handle_from_another_browser[sqlite]",),
    ),
    # -- CSRF on forms -----------------------------------------------------------------------------------------------
    Defence(
        name="csrf-origin-check",
        path="broker/web/http/same_origin.py",
        old="""            if kind is not None:
                raise CrossOriginRequest(kind)
""",
        new="""            if False:
                raise CrossOriginRequest(kind)
""",
        tests=(
            f"{CROSS_ORIGIN}::test_a_cross_origin_post_is_refused_even_with_the_csrf_token",
            f"{CROSS_ORIGIN}::test_the_host_header_does_not_decide_the_origin",
        ),
        why="OriginCheckedCsrf.protect no longer refuses a POST from another origin",
    ),
    Defence(
        name="csrf-token-checked",
        path="broker/web/http/same_origin.py",
        old="""                return
        super().protect()
""",
        new="""                return
""",
        tests=(f"{CROSS_ORIGIN}::test_the_token_is_still_required_from_the_brokers_own_origin",),
        why="OriginCheckedCsrf.protect skips Flask-WTF's token check",
    ),
    Defence(
        name="csrf-token-in-every-form",
        path="broker/web/templates/consent.html",
        old="""  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
""",
        new="",
        tests=("tests/security/test_web_hardening.py::test_every_form_carries_a_csrf_token",),
        why="the consent form (a page the rendered-page check does not reach) loses its token",
    ),
    # -- session fixation ------------------------------------------------------------------------------------------
    Defence(
        name="new-session-id-at-sign-in",
        path="broker/web/http/journey_context.py",
        old="""        session.clear()
        session["pending"] = pending_handles
        if theme_app is not None:  # the login's pages after sign-in (consent) still wear its app's theme
            session[theme.SESSION_KEY] = theme_app
        if ui_locale:
            session[locale.SESSION_KEY] = ui_locale
        request_ids.keep_login_id()
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None:
            regenerate(session)
""",
        new="""        request_ids.keep_login_id()
""",
        tests=(f"{BROWSER}::test_session_fixation_planted_session_id_is_replaced[sqlite]",),
        why="a sign-in neither clears the browser's session nor gives it a new id",
    ),
    # -- JWT algorithm and key confusion -------------------------------------------------------------------------
    Defence(
        name="jwt-allowed-algorithms-only",
        path="broker/upstream/oidc_tokens.py",
        old="    if not isinstance(alg, str) or alg not in allowed_algs:\n",
        new="    if not isinstance(alg, str):\n",
        tests=(f"{UPSTREAM}::test_jwt_alg_none", f"{UPSTREAM}::test_jwt_hs256_signed_with_the_public_key"),
    ),
    Defence(
        name="jwt-key-only-from-the-jwks",
        path="broker/upstream/oidc_tokens.py",
        old="    key = resolve_key(kid, alg)\n",
        new="""    embedded = extract_compact(raw.encode("ascii")).headers().get("jwk")
    key = __import__("joserfc.jwk").jwk.JWKRegistry.import_key(embedded) if embedded else resolve_key(kid, alg)
""",
        tests=(
            f"{UPSTREAM}::test_jwt_key_confusion_attacker_key_named_in_the_header[embedded-jwk-header]",
            f"{UPSTREAM}::test_jwt_key_confusion_attacker_key_named_in_the_header[real-kid-with-embedded-jwk]",
        ),
        why="a jwk in the token's header is used as its key",
    ),
    # -- clickjacking ---------------------------------------------------------------------------------------------
    Defence(
        name="no-framing",
        path="broker/app.py",
        old="""                       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
    headers.setdefault("X-Frame-Options", "DENY")
""",
        new="""                       "base-uri 'none'; object-src 'none'")
""",
        tests=(f"{BROWSER}::test_clickjacking_pages_that_act_on_one_click_refuse_to_be_framed[sqlite]",),
    ),
    # -- social providers' e-mail and subjects ---------------------------------------------------------------------
    Defence(
        name="entra-email-is-mutable",
        path="broker/upstream/microsoft.py",
        old="""        return EmailTrust.MUTABLE
""",
        new="""        return EmailTrust.VERIFIED
""",
        tests=(f"{ACCOUNTS}::test_noauth_entra_account_with_the_victims_email",),
    ),
    Defence(
        name="apple-private-relay-never-linkable",
        path="broker/upstream/apple.py",
        old="""        if private is True or is_private_relay(email):
            return EmailTrust.PRIVATE_RELAY
""",
        new="",
        tests=(f"{ACCOUNTS}::test_apple_private_relay_address_never_matches_another_account",),
    ),
    Defence(
        name="github-subject-is-the-numeric-id",
        path="broker/upstream/github.py",
        old="            subject=str(user_id),\n",
        new="""            subject=str(user.get("login")),\n""",
        tests=(f"{ACCOUNTS}::test_github_login_renamed_and_taken_over_by_someone_else",),
    ),
    # -- oversized input -------------------------------------------------------------------------------------------
    Defence(
        name="saml-request-size-cap",
        path="broker/downstream/saml_requests.py",
        old="MAX_MESSAGE_BYTES = 64 * 1024\n",
        new="MAX_MESSAGE_BYTES = 64 * 1024 * 1024\n",
        tests=(f"{RESOURCES}::test_oversized_saml_request_is_refused_before_parsing[sqlite]",),
        why="the SAMLRequest cap raised from 64 KiB to 64 MiB",
    ),
    Defence(
        name="relay-state-size-cap",
        path="broker/downstream/saml_requests.py",
        old="    if incoming.relay_state is not None and len(incoming.relay_state) > MAX_RELAY_STATE:\n",
        new="    if False:\n",
        tests=(f"{RESOURCES}::test_oversized_relay_state_is_refused[sqlite]",),
    ),
    # -- audit log -------------------------------------------------------------------------------------------------
    Defence(
        name="audit-appends-serialized",
        path="broker/storage/audit.py",
        old="            taken = connection.execute(_LOCK_HEAD_SQLITE, first).one_or_none()\n",
        new="            taken = connection.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == self._first))"
            ".one_or_none()\n",
        tests=("tests/storage/test_audit_chains.py::test_concurrent_appenders_never_fork_the_chain",),
        why="the head is read before it is locked (SELECT, then UPDATE)",
    ),
    Defence(
        name="audit-chains-have-their-own-genesis",
        path="broker/core/audit_chain.py",
        old='    return hashlib.sha256(f"broker audit chain {chain}".encode("ascii")).hexdigest()\n',
        new="    return GENESIS_HASH\n",
        tests=("tests/storage/test_audit_chains.py::test_a_whole_chain_passed_off_as_another_is_found_by_its_genesis"
               "[sqlite]",),
        why="a whole chain's records and head moved to another chain verify there",
    ),
    Defence(
        name="audit-anchor-compared",
        path="broker/core/audit_chain.py",
        old="    if stored_hash != saved.hash:\n",
        new="    if False:\n",
        tests=("tests/storage/test_audit_chains.py::test_the_anchor_catches_a_consistent_rewrite_of_a_tail_and_its_head"
               "[sqlite]",),
        why="a tail and its head rewritten consistently after the operator saved the heads pass verify --anchor",
    ),
    # -- log injection ---------------------------------------------------------------------------------------------
    Defence(
        name="log-records-escaped-when-made",
        path="broker/logging_setup.py",
        old='''    """Escape the record's message, traceback and stack in place (see the module docstring)."""
''',
        new='''    """Escape the record's message, traceback and stack in place (see the module docstring)."""
    return record
''',
        tests=(
            f"{LOG_INJECTION}::test_crlf_and_rlo_in_an_issue_instant_reach_no_log_line_unescaped",
            f"{LOG_INJECTION}::test_a_claim_or_header_value_in_any_library_logger_is_escaped",
        ),
        why="escape_record escapes nothing",
    ),
    Defence(
        name="log-records-escaped-at-the-dev-server",
        path="broker/logging_setup.py",
        old='''    """Escape the record's message, traceback and stack in place (see the module docstring)."""
''',
        new='''    """Escape the record's message, traceback and stack in place (see the module docstring)."""
    return record
''',
        tests=(f"{DEV_SERVER}::test_control_characters_in_the_request_line_reach_the_access_log_escaped",),
        why="escape_record escapes nothing: werkzeug's access log of `broker run`",
    ),
    Defence(
        name="json-log-format-escapes",
        path="broker/logging_setup.py",
        old="""            "message": escape(record.getMessage()),
""",
        new="""            "message": record.getMessage(),
""",
        tests=(f"{LOG_INJECTION}::test_the_json_format_escapes_a_record_made_before_the_defence_was_installed",),
    ),
    # -- released claims ---------------------------------------------------------------------------------------------
    Defence(
        name="released-claims-made-safe",
        path="broker/core/release.py",
        old="""    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
""",
        new="""    if True:
        return value
    if isinstance(value, str):
""",
        tests=(
            "tests/security/test_attack_claims_text.py::test_a_name_with_line_breaks_or_bidi_controls_is_normalised_before_release",
            "tests/security/test_attack_claims_text.py::test_an_email_address_with_controls_is_refused_with_its_flags",
            "tests/security/test_attack_claims_text.py::test_the_address_keeps_its_line_breaks_and_loses_the_rest",
        ),
        why="releasable_value releases every value as it came",
    ),
    # -- look-alike e-mail addresses ---------------------------------------------------------------------------------
    Defence(
        name="email-compared-in-canonical-form",
        path="broker/storage/accounts.py",
        old="from broker.core.email_address import canonical_email, is_another_address\n",
        new='''from broker.core.email_address import is_another_address


def canonical_email(address: str) -> str | None:
    """The old comparison."""
    return address.strip().lower()


''',
        tests=("tests/security/test_attack_lookalike_email.py::test_a_look_alike_address_never_matches_the_victims",),
        why="SqlAccountStore compares addresses after strip().lower() again",
    ),
    # -- metrics ------------------------------------------------------------------------------------------------------
    Defence(
        name="broker-init-writes-the-metrics-token",
        path="broker/instance.py",
        old="""metrics_token_file = "certs/{METRICS_TOKEN}"
""",
        new="",
        tests=(f"{METRICS}::test_broker_init_writes_a_metrics_token_and_requires_it",),
        why="broker.toml written by broker init names no metrics token",
    ),
    Defence(
        name="metrics-loopback-only",
        path="broker/web/ops/metrics.py",
        old="""        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
""",
        new="""        loopback = True
""",
        tests=(f"{METRICS}::test_without_a_token_a_client_elsewhere_is_refused",),
    ),
    Defence(
        name="metrics-no-relayed-requests",
        path="broker/web/ops/metrics.py",
        old="""    return loopback and not any(name in request.headers for name in FORWARDING_HEADERS)
""",
        new="""    return loopback
""",
        tests=(f"{METRICS}::test_without_a_token_a_request_a_local_proxy_relayed_is_refused",),
    ),
    # -- dev server -----------------------------------------------------------------------------------------------
    Defence(
        name="dev-server-logs-a-request-without-path",
        path="broker/web/ops/access_log.py",
        old="""        raw_path = getattr(self, "path", None)
""",
        new="""        raw_path = self.path
""",
        tests=(f"{DEV_SERVER}::test_a_request_line_over_64_kib_gets_a_plain_414",),
    ),
)
