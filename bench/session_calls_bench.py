"""Per-call CPU of the login path's SSO-session, grant and second-factor store calls (issue 21: Core, not the ORM).

A throwaway PostgreSQL schema is migrated; one account is created, then each store method runs ``--calls`` times
in process (after a warm-up) and the CPU time of this thread (``time.thread_time``) and the wall time per call are
printed. Writes create new rows each call (new sids, grant ids, tokens).

    python bench/session_calls_bench.py [--calls 400] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.store_calls_bench import run_with_arguments, timed
from broker.core.factors import Authenticators
from broker.core.grants import Grant, NewToken, TokenKind, new_token
from broker.core.model import Protocol, UpstreamIdentity
from broker.core.ports import SsoSessionRecord
from broker.core.sessions import Participant
from broker.storage import SqlAccountStore, SqlGrantStore, create_engine_for
from broker.storage.authenticators import SqlAuthenticators, new_totp_secret
from broker.storage.migrate import upgrade
from broker.storage.sealing import Sealer
from broker.storage.sso_sessions import SqlSsoSessionRegistry


def run(url: str, calls: int) -> None:
    upgrade(url)
    engine = create_engine_for(url)
    sealer = Sealer([secrets.token_bytes(32)])
    now = datetime.now(UTC)
    identity = UpstreamIdentity(upstream="op", issuer="https://op.example", subject="s1",
                                claims={"email": "a@example.org"}, acr=None, auth_time=now)
    accounts = SqlAccountStore(engine, sealer)
    account_id = accounts.create_with_identity(identity, now)[0].account_id
    # register's new sessions go to another account, so the list reads below read the same few rows each time
    churn = accounts.create_with_identity(UpstreamIdentity(upstream="op", issuer="https://op.example", subject="s2",
                                                           claims={}, acr=None, auth_time=now), now)[0].account_id
    sessions = SqlSsoSessionRegistry(engine)
    grants = SqlGrantStore(engine, sealer)
    factors: Authenticators = SqlAuthenticators(engine, sealer)
    factors.add_totp(account_id, "phone", new_totp_secret(), now)

    def record() -> SsoSessionRecord:
        return SsoSessionRecord(secrets.token_urlsafe(32), churn, "op", now, now, now + timedelta(hours=8),
                                "Mozilla/5.0", upstream_sid="up-2")

    sid = record().sid
    sessions.register(SsoSessionRecord(sid, account_id, "op", now, now, now + timedelta(hours=8), "Mozilla/5.0",
                                       upstream_sid="up-1"))
    sessions.join(sid, Participant("https://rp.example", Protocol.OIDC, "sub-1", None), now)

    def grant() -> Grant:
        return Grant(grant_id=secrets.token_urlsafe(24), client_id="rp", account_id=account_id, scope=("openid",),
                     claims=frozenset({"email"}), redirect_uri="https://rp.example/cb", nonce=None,
                     code_challenge=None, auth_time=now, acr=None, amr=("pwd",), sid=sid, upstream="op",
                     created_at=now, released={"email": "a@example.org"})

    def token(kind: TokenKind) -> NewToken:
        return NewToken(kind, new_token(), now, now + timedelta(minutes=10))

    kept = grant()
    access = new_token()
    grants.create_grant(kept, NewToken(TokenKind.ACCESS, access, now, now + timedelta(hours=1)))

    timed("sso register", lambda: sessions.register(record()), calls)
    timed("sso is_live", lambda: sessions.is_live(sid), calls)
    timed("sso touch", lambda: sessions.touch(sid, datetime.now(UTC)), calls)
    timed("sso active", lambda: sessions.active(account_id, now), calls)
    timed("sso by_upstream_sid", lambda: sessions.by_upstream_sid("op", "up-1", now), calls)
    timed("sso all_of", lambda: sessions.all_of(account_id), calls)
    timed("sso participants", lambda: sessions.participants(sid), calls)
    timed("grants create_grant (2 tok)",
          lambda: grants.create_grant(grant(), token(TokenKind.CODE), token(TokenKind.REFRESH)), calls)
    timed("grants issue", lambda: grants.issue(TokenKind.ACCESS, new_token(), kept.grant_id, now,
                                               now + timedelta(hours=1)), calls)
    timed("grants find", lambda: grants.find(TokenKind.ACCESS, access, now), calls)
    timed("authenticators of", lambda: factors.of(account_id), calls)
    engine.dispose()


def main() -> None:
    run_with_arguments(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
