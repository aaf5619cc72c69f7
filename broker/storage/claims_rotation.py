"""Claims keys in use: the start-up check, and re-sealing every stored value under the current key.

The claims key seals two kinds of stored value: linked identities' claims (``linked_identities.last_claims``)
and authenticator apps' TOTP secrets (``authenticators.secret_sealed``, ``broker.storage.authenticators``).
Rotation, for the operator: put the new key in ``claims_key_file`` and the old one in
``claims_previous_keys_file``, restart every broker instance, run ``broker keys rotate-claims`` (this module's
``reseal_claims``), and once it reports every value under the current key (the census ``claims_by_key`` counts
both kinds), drop the old key. Values are re-sealed in short batches with a compare-and-set per row, so it runs
safely while the broker serves: a row a login (or a code's use) rewrote meanwhile is left alone (it was sealed
under that instance's current key). The pending store's sealed payloads need nothing: they expire in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, case, func, select, update

from broker.storage.accounts import claims_context
from broker.storage.authenticators import _secret_context as secret_context
from broker.storage.codec import decode_claims, encode_claims
from broker.storage.sealing import VERSION, Sealer, UnreadableValue, is_legacy
from broker.storage.tables import AuthenticatorRow, LinkedIdentityRow

PLAIN = "plain"  # the census's name for legacy values, sealed by no key


class ClaimsKeyError(RuntimeError):
    """The configured claims keys do not open what the database holds."""


@dataclass
class ResealReport:
    """What a run did: claim values (``resealed`` ... ``forgotten``), then authenticator secrets (``secrets_*``)."""

    resealed: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # rewritten by a login between read and write: left as the login wrote it
    unreadable: int = 0
    forgotten: int = 0  # unreadable values replaced by no claims (``forget_unreadable``)
    secrets_resealed: int = 0
    secrets_already_current: int = 0
    secrets_changed_meanwhile: int = 0  # re-sealed by a code's use, or removed, between read and write
    secrets_unreadable: int = 0  # kept as they are, never forgotten: the citizen removes and re-adds the app
    #: every stored value, claims and authenticator secrets, by the key id that seals it (``PLAIN`` for
    #: legacy or other unsealed text), after the run
    by_key: dict[str, int] = field(default_factory=dict)


def check_claims_keys(engine: Engine, sealer: Sealer) -> None:
    """``ClaimsKeyError`` unless the most recently created identity's claims open with ``sealer``.

    One row, by primary key: cheap at every start, and enough to catch a wrong or missing key before logins
    overwrite values no configured key opens. ``broker keys rotate-claims`` counts every row."""
    table = LinkedIdentityRow
    query = select(table.id, table.issuer, table.subject, table.last_claims).order_by(table.id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return
    try:
        sealer.open(row.last_claims, claims_context(row.issuer, row.subject))
    except UnreadableValue as exc:
        raise ClaimsKeyError(
            f"the stored claims of linked identity {row.id} do not open with the configured claims keys "
            f"(key ids {', '.join(sealer.key_ids)}): {exc}. Configure the key that sealed them in "
            "claims_key_file or claims_previous_keys_file; if it is lost, 'broker keys rotate-claims "
            "--forget-unreadable' clears the values no key opens (each is refilled at that person's next login)"
        ) from None


def claims_by_key(engine: Engine) -> dict[str, int]:
    """How many stored values each key id seals (``PLAIN``: legacy values), counted in the database: linked
    identities' claims and authenticator secrets together (the rows without a secret, such as recovery codes'
    and passkeys' entries, are not counted)."""
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for column in (LinkedIdentityRow.last_claims, AuthenticatorRow.secret_sealed):
            kid = case((column.like(f"{VERSION}.%"), func.substr(column, len(VERSION) + 2, 8)), else_=PLAIN)
            for name, count in connection.execute(select(kid, func.count()).where(column.is_not(None))
                                                  .group_by(kid)).all():
                counts[str(name)] = counts.get(str(name), 0) + int(count)
    return dict(sorted(counts.items()))


def reseal_claims(engine: Engine, sealer: Sealer, *, batch_size: int = 500,
                  forget_unreadable: bool = False) -> ResealReport:
    """Re-seal every stored value that is not under the current key, ``batch_size`` rows per transaction:
    linked identities' claims, then authenticator secrets.

    ``forget_unreadable`` replaces claim values no configured key opens by no claims (the next login refills
    them). It never touches an authenticator secret: an unreadable one is left as it is and counted in
    ``secrets_unreadable`` (and under its key in ``by_key``); its owner removes and re-adds the authenticator in
    the portal, or the operator configures the key that sealed it."""
    report, after = ResealReport(), 0
    table = LinkedIdentityRow
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(table.id, table.issuer, table.subject, table.last_claims)
                .where(table.id > after).order_by(table.id).limit(batch_size)
            ).all()
        if not rows:
            break
        after = rows[-1].id
        with engine.begin() as connection:
            for row in rows:
                if sealer.is_current(row.last_claims):
                    report.already_current += 1
                    continue
                context, forgetting = claims_context(row.issuer, row.subject), False
                try:
                    claims = decode_claims(sealer.open(row.last_claims, context))
                except (UnreadableValue, ValueError, RecursionError):  # ValueError: broken legacy JSON
                    report.unreadable += 1
                    if not forget_unreadable:
                        continue
                    claims, forgetting = {}, True
                written = connection.execute(
                    update(table)
                    .where(table.id == row.id, table.last_claims == row.last_claims)  # compare and set
                    .values(last_claims=sealer.seal(encode_claims(claims), context))
                ).rowcount
                if not written:
                    report.changed_meanwhile += 1
                elif forgetting:
                    report.forgotten += 1
                else:
                    report.resealed += 1
    _reseal_secrets(engine, sealer, batch_size, report)
    report.by_key = claims_by_key(engine)
    return report


def _reseal_secrets(engine: Engine, sealer: Sealer, batch_size: int, report: ResealReport) -> None:
    """Re-seal authenticator secrets not under the current key. Opened and sealed before the write transaction;
    the UPDATE applies only while the row still holds the value read (compare and set)."""
    table, after = AuthenticatorRow, ""
    column = table.secret_sealed
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(table.authenticator_id, table.account_id, column)
                .where(column.is_not(None), table.authenticator_id > after)
                .order_by(table.authenticator_id).limit(batch_size)
            ).all()
        if not rows:
            return
        after = rows[-1].authenticator_id
        writes: list[tuple[str, str, str]] = []  # (authenticator id, value read, value under the current key)
        for row in rows:
            stored: str = row.secret_sealed
            if sealer.is_current(stored):
                report.secrets_already_current += 1
                continue
            context = secret_context(row.authenticator_id, row.account_id)
            try:
                if is_legacy(stored):  # never a secret: the store does not take plain text as one
                    raise UnreadableValue("not a sealed value")
                secret = sealer.open(stored, context)
            except UnreadableValue:
                report.secrets_unreadable += 1  # kept, also with forget_unreadable
                continue
            writes.append((row.authenticator_id, stored, sealer.seal(secret, context)))
        if not writes:
            continue
        with engine.begin() as connection:
            for authenticator_id, old, new in writes:
                written = connection.execute(
                    update(table)
                    .where(table.authenticator_id == authenticator_id, column == old)  # compare and set
                    .values(secret_sealed=new)
                ).rowcount
                if written:
                    report.secrets_resealed += 1
                else:
                    report.secrets_changed_meanwhile += 1
