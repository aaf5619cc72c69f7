"""The defences of issue 15, point 2 (a copy of the store is no set of live sessions nor of pending logins) and
point 3, second half (anonymous GETs open no session), each with the patch that removes it and the tests that
must then fail."""

from __future__ import annotations

from tests.mutation.defence import Defence

SESSION_STORE = "tests/security/test_attack_session_store.py"
PENDING = "tests/storage/test_pending_at_rest.py"
SQLITE_FILES = "tests/storage/test_sqlite_files.py"

DEFENCES: tuple[Defence, ...] = (
    Defence(
        name="session-ids-stored-as-keyed-hash",
        path="broker/web/http/session_ids.py",
        old="        return self.key_prefix + stored_id(self._id_key, sid)\n",
        new="        return self.key_prefix + sid\n",
        tests=(f"{SESSION_STORE}::test_the_session_store_holds_no_cookie_value[sqlite]",
               f"{SESSION_STORE}::test_a_stored_session_id_set_as_the_cookie_opens_nothing[sqlite]"),
        why="browser sessions are stored under broker:<cookie value>, as Flask-Session does by default",
    ),
    Defence(
        name="sqlite-files-created-0600",
        path="broker/storage/db.py",
        old="        private_file(engine.url.database)\n",
        new="",
        tests=(f"{SQLITE_FILES}::test_the_database_and_its_wal_and_shm_files_are_created_0600",),
        why="SQLite creates broker.db (and -wal, -shm after it) with 0666 less the umask",
    ),
    Defence(
        name="pending-state-sealed",
        path="broker/storage/pending_seal.py",
        old="        return self._sealer.seal(payload, self._context(kind, digest))\n",
        new="        return payload\n",
        tests=(f"{PENDING}::test_the_sql_row_holds_neither_the_payload_nor_the_handle[sqlite]",),
        why="pending payloads (a link offer's name and e-mail) are stored in clear",
    ),
    Defence(
        name="pending-state-bound-to-its-handle-and-kind",
        path="broker/storage/pending_seal.py",
        old='        return ("pending", self._where, kind.value, digest)\n',
        new='        return ("pending", self._where)\n',
        tests=(f"{PENDING}::test_a_sql_payload_moved_to_another_handle_or_kind_is_not_returned[sqlite]",),
        why="a sealed payload copied under another handle or kind opens there",
    ),
    Defence(
        name="pending-handles-stored-as-hash",
        path="broker/storage/pending_seal.py",
        old='    return hashlib.sha256(handle.encode("utf-8")).hexdigest()\n',
        new="    return handle\n",
        tests=(f"{PENDING}::test_the_sql_row_holds_neither_the_payload_nor_the_handle[sqlite]",),
        why="the handle that completes a pending login is stored in clear",
    ),
    Defence(
        name="pending-state-no-plain-values",
        path="broker/storage/pending_seal.py",
        old="""        if not stored.startswith(VERSION + "."):
            log.warning("pending state of kind %s is not sealed: ignored", kind)
            return None
""",
        new="",
        tests=(f"{PENDING}::test_a_plain_sql_payload_is_not_returned[sqlite]",),
        why="a plain payload written into the table (Sealer.open passes legacy plain JSON) is taken as the broker's",
    ),
    Defence(
        name="signed-out-portal-page-opens-no-session",
        path="broker/web/templates/portal_sign_in.html",
        old=("  {# no CSRF token: it would open a session for every visitor; the origin check guards this form"
             " (app._csrf) #}\n"),
        new='  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">\n',
        tests=(f"{SESSION_STORE}::test_anonymous_gets_store_no_session_and_send_no_cookie[sqlite]",),
        why="the signed-out page's CSRF token stores a session (row and cookie) for every anonymous GET",
    ),
    Defence(
        name="portal-sign-in-origin-checked",
        path="broker/app.py",
        old="    protect.origin_only(portal.sign_in)\n",
        new="    protect.exempt(portal.sign_in)\n",
        tests=(f"{SESSION_STORE}::test_the_signed_out_sign_in_form_is_refused_from_another_origin[sqlite]",),
        why="the token-free sign-in form would take a POST from any site",
    ),
)
