"""Signing-key rotation at the operator console and the admin API (issue 19; README "The ``broker`` command",
``broker keys rotate``): where the rotation stands, the next step, and the steps themselves (stage, switch,
retire), run by the same functions as the CLI (``SigningKeys``, over ``broker.keys.rotation``).

A step needs ``manage-keys`` and, for a person, a sign-in at most ``[console] reauth_minutes`` old (the web layer
checks both). Each step is an audit record (``KEY_ROTATED``, as the CLI's) naming who ran it and the active key
ids before and after. Instances read the keys at start-up: every step is followed by a restart of all of them
(``core.signing_keys.RESTART_NEEDED``).
"""

from __future__ import annotations

from broker.core.audit import AuditKind
from broker.core.signing_keys import RESTART_NEEDED as RESTART_NEEDED
from broker.core.signing_keys import KeysReport, Rotated, SigningKeys, Step
from broker.core.signing_keys import RotationRefused as RotationRefused
from broker.journeys.context import Journeys


class Unavailable(LookupError):
    """This broker has no key folder wired (no console)."""


def _port(j: Journeys) -> SigningKeys:
    if j.signing_keys is None:
        raise Unavailable("no signing keys")
    return j.signing_keys


def report(j: Journeys) -> KeysReport:
    return _port(j).report(j.now())


def rotate(j: Journeys, step: Step, by: str, *, force: bool = False) -> Rotated:
    """Run ``step``; ``RotationRefused`` (nothing changed, nothing audited) when it cannot run now."""
    done = _port(j).rotate(step, j.now(), force=force)
    j.audit(AuditKind.KEY_ROTATED,
            reason=(f"{step.value}{' (waiting period skipped)' if force else ''} by {by}: {done.said}; active keys "
                    f"{', '.join(done.before) or 'none'} -> {', '.join(done.after) or 'none'}")[:1000])
    return done

