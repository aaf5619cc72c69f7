"""Defences against subject correlation through Dynamic Client Registration (issue 15, point 5): pairwise
subjects only (OIDC Core §8.1, refused as ``invalid_client_metadata``, RFC 7591 §3.2.2), a sector per client
for loopback redirect URIs (RFC 8252 §7.3), and a registered ``client_name`` shown as the app's own claim."""

from __future__ import annotations

from tests.mutation.defence import Defence

FLOW = "tests/flows/test_registration_correlation.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="registration-pairwise-only",
        path="broker/oidc/client_metadata.py",
        old='    if policy.dynamic and subject_type == "public" and not policy.public_subjects:\n',
        new="    if False:\n",
        tests=(f"{FLOW}::test_registration_refuses_public_subjects",),
        why="a dynamically registered client may ask for the public sub every public client of the operator sees",
    ),
    Defence(
        name="registration-public-subjects-off-by-default",
        path="broker/config/settings.py",
        old='read.flag("oidc", "registration_allow_public_subjects", False)',
        new='read.flag("oidc", "registration_allow_public_subjects", True)',
        tests=(f"{FLOW}::test_registration_refuses_public_subjects",),
        why="public subjects for registered clients become the default instead of the operator's choice",
    ),
    Defence(
        name="loopback-sector-per-client",
        path="broker/oidc/client_metadata.py",
        old="    if hosts and LOOPBACK_HOSTS.issuperset(hosts):\n        return client_sector(client_id), None\n",
        new="",
        tests=(f"{FLOW}::test_two_loopback_apps_on_different_ports_get_different_subjects",
               "tests/registry/test_oidc_clients.py::test_native_app_redirect_uris_for_a_public_client"),
        why="every app on 127.0.0.1 (any port) shares the sector 127.0.0.1, so their subjects correlate",
    ),
    Defence(
        name="loopback-sector-apart-from-hosts",
        path="broker/core/identifiers.py",
        old="    return _CLIENT_SECTOR + client_id\n",
        new="    return client_id\n",
        tests=(f"{FLOW}::test_a_loopback_sector_is_never_a_host_sector",),
        why="a loopback client whose id is a host name shares the sector of the apps on that host",
    ),
    Defence(
        name="registered-name-marked-as-the-apps-own",
        path="broker/oidc/client.py",
        old="self_described=self.source == DYNAMIC_SOURCE)",
        new="self_described=False)",
        tests=(f"{FLOW}::test_the_consent_page_marks_a_registered_name_as_the_apps_own",),
        why="a registered client_name is shown on the consent page as if the city vouched for it",
    ),
    Defence(
        name="consent-page-shows-the-unverified-name-remark",
        path="broker/web/templates/consent.html",
        old="{% if self_described %}",
        new="{% if False %}",
        tests=(f"{FLOW}::test_the_consent_page_marks_a_registered_name_as_the_apps_own",),
        why="the consent page drops the remark that the app named itself",
    ),
)
