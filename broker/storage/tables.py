"""The broker's tables, as SQLAlchemy typed declarative models (the outbox and event streams: ``delivery_tables``).

``migrations/versions`` must create exactly this schema; ``tests/storage/test_migrations.py`` compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the offset (``timestamptz``); SQLite stores text without one, so values are converted to
    UTC before storing and marked UTC when read. Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the broker stores timezone-aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: set while the operator has the account disabled (``broker.journeys.account_status``), with the reason
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)


class LinkedIdentityRow(Base):
    __tablename__ = "linked_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_linked_identities_issuer_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    issuer: Mapped[str] = mapped_column(String(1024), nullable=False)
    subject: Mapped[str] = mapped_column(String(512), nullable=False)
    upstream: Mapped[str] = mapped_column(String(255), nullable=False)
    first_used: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_acr: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: the claims this identity last asserted: ``broker.storage.codec`` JSON sealed by ``broker.storage.sealing``
    #: (AES-256-GCM, bound to this identity); values from before sealing existed are plain JSON until rewritten
    last_claims: Mapped[str] = mapped_column(Text, nullable=False)
    #: HMAC of the verified e-mail address (``broker.storage.accounts``), NULL when none is verified: the only
    #: way to find a link candidate, since the claims themselves are sealed
    email_index: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class PendingStateRow(Base):
    __tablename__ = "pending_states"

    handle: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class AuditEventRow(Base):
    """Append-only: the broker inserts and never updates or deletes (``broker.core.audit``)."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    account_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    upstream: Mapped[str | None] = mapped_column(String(255), nullable=True)
    downstream: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: which of the parallel chains (``broker.core.audit_chain.AUDIT_CHAINS``) the record is in; records written
    #: before there were chains are chain 1
    chain: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    #: the record's place in its hash chain (``broker.core.audit_chain``): 1, 2, 3, ... without gaps
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditChainHeadRow(Base):
    """One row per chain (``id`` is the chain, 1..8) naming its newest audit record
    (``broker.core.audit_chain.ChainHead``), written in the same transaction as each record, so that deleting
    the newest records is detected too."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id BETWEEN 1 AND 8", name="ck_audit_chain_head_chains"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class OidcGrantRow(Base):
    """One sign-in released to one OpenID client (``broker.core.grants.Grant``); its tokens hang off it."""

    __tablename__ = "oidc_grants"

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    #: ``Grant.to_json()``
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: ``Grant.sid``, the SSO session it was issued in, copied out of the payload (revision 0016) so that ending a
    #: session finds its grants by index (``SqlGrantStore.revoke_session``); None for a grant without one
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class OidcTokenRow(Base):
    """A code, access or refresh token of a grant, by the SHA-256 of the token only (``core.grants.token_hash``)."""

    __tablename__ = "oidc_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    grant_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_grants.grant_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OidcClientRow(Base):
    """A dynamically registered OpenID client (``broker.core.ports.StoredClient``)."""

    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: the client metadata as JSON text; the attribute is renamed because ``metadata`` is the declarative base's
    client_metadata: Mapped[str] = mapped_column("metadata", Text, nullable=False)
    registration_token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ConsentRow(Base):
    """History of consent answers; the row with the highest id per (account, party) is in force."""

    __tablename__ = "consents"
    #: the accounts of one app (the help desk's look-up by the id an app reported): equality only, so a hash index
    #: on PostgreSQL, which takes an id of any length (a btree entry is limited to about 2.7 kB)
    __table_args__ = (Index("ix_consents_party_id", "party_id", postgresql_using="hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    party_id: Mapped[str] = mapped_column(String(1024), nullable=False)
    #: ``Consent.to_json``: granted and declined claim names
    claims: Mapped[str] = mapped_column(Text, nullable=False)
    policy_version: Mapped[str] = mapped_column(String(64), nullable=False)
    how: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SsoSessionRow(Base):
    """The server-side registry of SSO sessions (``broker.core.ports.SsoSessionRegistry``): which browsers are
    signed in to an account, so the citizen can see them and end them all ("sign out everywhere")."""

    __tablename__ = "sso_sessions"
    __table_args__ = (Index("ix_sso_sessions_upstream_upstream_sid", "upstream", "upstream_sid"),)

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    upstream: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: the browser's User-Agent, shortened: shown to the citizen to tell sessions apart
    user_agent: Mapped[str] = mapped_column(String(200), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: ``SsoSessionRecord.upstream_sid``: the upstream OpenID provider's session id, which its logout tokens name
    upstream_sid: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SsoParticipantRow(Base):
    """The apps an SSO session answered (``broker.core.ports.SsoSessionRegistry.participants``), one row per
    (session, app) with what single logout must tell it; deleted with its session (and so with the account)."""

    __tablename__ = "sso_participants"

    sid: Mapped[str] = mapped_column(
        String(64), ForeignKey("sso_sessions.sid", ondelete="CASCADE"), primary_key=True,
    )
    party_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    #: 1 + the rows the session had when the app first joined: the order logout notifies in (times can tie)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``broker.core.model.Protocol`` value: saml or oidc
    protocol: Mapped[str] = mapped_column(String(16), nullable=False)
    #: the subject the app was last given (a SAML NameID, an OpenID ``sub``)
    subject: Mapped[str] = mapped_column(String(1024), nullable=False)
    #: the SAML NameID Format it was issued in; None for OpenID
    name_id_format: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: when the session first answered the app
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    #: when it last answered the app
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class AuthenticatorRow(Base):
    """A second factor enrolled with the broker (``broker.core.factors.Authenticator``; issue 17): an
    authenticator app, or the entry that holds an account's recovery codes (``RecoveryCodeRow``)."""

    __tablename__ = "authenticators"

    authenticator_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    #: ``broker.core.factors.FactorKind`` value
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    #: the citizen's own name for it; empty for the recovery codes' entry
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: the TOTP secret (base32) sealed by ``broker.storage.sealing``, bound to this row; NULL for recovery codes
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the last TOTP time step accepted (RFC 6238 §5.2: never accepted again, nor any before it)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecoveryCodeRow(Base):
    """One recovery code of an account, as a salted HMAC only (``broker.storage.authenticators``); spent once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authenticator_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("authenticators.authenticator_id", ondelete="CASCADE"), nullable=False, index=True,
    )
    #: ``<salt>$<HMAC-SHA256(salt, code)>``, both lowercase hex
    code_hash: Mapped[str] = mapped_column(String(97), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PasskeyRow(Base):
    """The WebAuthn credential of a passkey (``broker.storage.passkeys``; issue 17); its ``AuthenticatorRow`` (kind
    ``passkey``) holds the account, name and times, and deleting that row deletes this one. Nothing here is secret:
    the public key verifies assertions, it cannot make them."""

    __tablename__ = "passkeys"

    authenticator_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("authenticators.authenticator_id", ondelete="CASCADE"), primary_key=True,
    )
    #: the credential ID the authenticator chose (WebAuthn §4: at most 1023 bytes), unique across accounts
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True, index=True)
    #: the credential public key as the authenticator gave it (COSE_Key, RFC 9052 §7)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: the last signature counter seen (WebAuthn §6.1.1: an unsigned 32-bit value, hence 64-bit here)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: the authenticator's transports (JSON list of WebAuthn ``AuthenticatorTransport`` values), as hints
    transports: Mapped[str] = mapped_column(Text, nullable=False)
    #: the account's opaque WebAuthn user handle (§14.6.1) the credential was created with
    user_handle: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class LoginHistoryRow(Base):
    """A completed login (``broker.storage.login_history``; issue 17): keyed hashes only (HMAC-SHA256 hex of the
    device id, the network prefix and the address, ``broker.core.risk.login_place``), never a raw address;
    deleted after the retention, and with the account."""

    __tablename__ = "login_history"
    __table_args__ = (
        Index("ix_login_history_account_id_at", "account_id", "at"),
        Index("ix_login_history_account_id_device", "account_id", "device"),
        Index("ix_login_history_account_id_network", "account_id", "network"),
        Index("ix_login_history_address_at", "address", "at"),
        Index("ix_login_history_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False,
    )
    #: "" when the browser had no device cookie
    device: Mapped[str] = mapped_column(String(64), nullable=False)
    network: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SecondFactorFailureRow(Base):
    """A wrong second-factor answer of an account (issue 17), for the risk signals and the back-off
    (``core.backoff``); deleted like the logins. ``in_flight``: a code entry recorded before its code was checked
    (``SqlLoginHistory.begin_code_attempt``), a wrong answer once the check failed; ``address``: the keyed hash of
    the client address (None: not known, or recorded before revision 0012)."""

    __tablename__ = "second_factor_failures"
    __table_args__ = (
        Index("ix_second_factor_failures_account_id_at", "account_id", "at"),
        Index("ix_second_factor_failures_at", "at"),
        Index("ix_second_factor_failures_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.account_id", ondelete="CASCADE"), nullable=False,
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    in_flight: Mapped[bool] = mapped_column(Boolean(), nullable=False, default=False, server_default=false())
