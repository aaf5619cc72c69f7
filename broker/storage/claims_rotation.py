"""Claims keys in use: the start-up check, and re-sealing every stored value under the current key.

Rotation, for the operator: put the new key in ``claims_key_file`` and the old one in
``claims_previous_keys_file``, restart every broker instance, run ``broker keys rotate-claims`` (this module's
``reseal_claims``), and once it reports every value under the current key, drop the old key. Values are
re-sealed in short batches with a compare-and-set per row, so it runs safely while the broker serves: a row a
login rewrote meanwhile is left alone (the login sealed it under its own current key).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, case, func, select, update

from broker.storage.accounts import claims_context
from broker.storage.codec import decode_claims, encode_claims
from broker.storage.sealing import VERSION, Sealer, UnreadableValue
from broker.storage.tables import LinkedIdentityRow

PLAIN = "plain"  # the census's name for legacy values, sealed by no key


class ClaimsKeyError(RuntimeError):
    """The configured claims keys do not open what the database holds."""


@dataclass
class ResealReport:
    resealed: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # rewritten by a login between read and write: left as the login wrote it
    unreadable: int = 0
    forgotten: int = 0  # unreadable values replaced by no claims (``forget_unreadable``)
    #: every stored value by the key id that seals it (``PLAIN`` for legacy), after the run
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
    """How many stored values each key id seals (``PLAIN``: legacy values), counted in the database."""
    column = LinkedIdentityRow.last_claims
    kid = case((column.like(f"{VERSION}.%"), func.substr(column, len(VERSION) + 2, 8)), else_=PLAIN)
    with engine.connect() as connection:
        rows = connection.execute(select(kid, func.count()).group_by(kid)).all()
    return {str(name): int(count) for name, count in sorted(rows)}


def reseal_claims(engine: Engine, sealer: Sealer, *, batch_size: int = 500,
                  forget_unreadable: bool = False) -> ResealReport:
    """Re-seal every stored value that is not under the current key, ``batch_size`` rows per transaction."""
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
    report.by_key = claims_by_key(engine)
    return report
