"""Levels of assurance: one vocabulary for SAML ``AuthnContextClassRef`` and OpenID Connect ``acr``.

The broker's acr values are the well-known URIs themselves, so a SAML class reference and an OIDC ``acr``
carry the same text in both directions (an upstream SAML IdP's ``AuthnContextClassRef`` becomes the OIDC
``acr`` a downstream client receives, and an OIDC upstream's ``acr`` becomes the ``AuthnContextClassRef`` a
SAML app receives). Names that mean the same level under another spelling (an IdP's private URN, a short
name such as ``"loa3"``) are mapped by the operator's ``aliases`` to one of them.

Levels are compared by the operator's ``order`` (weakest first). The default order places the common
classes of SAML 2.0 Authentication Context (§3.4), the REFEDS assurance profiles (SFA, MFA) and the eIDAS
levels of assurance (Implementing Regulation (EU) 2015/1502: low, substantial, high) on one scale. A value
outside the order is only ever equal to itself: it satisfies a request for exactly that value and nothing
else, so an unknown class can never pass for a strong one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"  # noqa: S105 (a class name, not a secret)
PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
REFEDS_SFA = "https://refeds.org/profile/sfa"
REFEDS_MFA = "https://refeds.org/profile/mfa"
EIDAS_LOW = "http://eidas.europa.eu/LoA/low"
EIDAS_SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
EIDAS_HIGH = "http://eidas.europa.eu/LoA/high"

DEFAULT_ORDER: tuple[str, ...] = (
    UNSPECIFIED, PASSWORD, PASSWORD_PROTECTED_TRANSPORT, REFEDS_SFA, EIDAS_LOW, REFEDS_MFA,
    EIDAS_SUBSTANTIAL, EIDAS_HIGH,
)


class Comparison(Enum):
    """``RequestedAuthnContext/@Comparison`` (SAML 2.0 Core §3.3.2.2.1); ``exact`` when absent."""

    EXACT = "exact"
    MINIMUM = "minimum"
    BETTER = "better"
    MAXIMUM = "maximum"

    @classmethod
    def parse(cls, text: str | None) -> Comparison:
        """``ValueError`` for anything but the four values of the schema."""
        return cls(text) if text else cls.EXACT


@dataclass(frozen=True)
class AssurancePolicy:
    """The operator's scale of assurance (``[assurance]``): ``order`` weakest first, ``aliases`` other names."""

    order: tuple[str, ...] = DEFAULT_ORDER
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: the level an upstream sign-in reaches with a second factor enrolled at the broker (``core.factors``);
    #: None: the broker never steps a sign-in up. REFEDS MFA by default (two factors, one of them the broker's);
    #: whether that also makes eIDAS "substantial" is the operator's call (docs/security.md, "Step-up")
    second_factor_level: str | None = REFEDS_MFA
    #: an account without a second factor may add one at the step-up (``broker.journeys.step_up_enrol``): trust
    #: on first use, so off unless the operator turns it on
    enrol_at_step_up: bool = False

    def canonical(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self.aliases.get(value, value)

    def rank(self, value: str | None) -> int | None:
        """Position in ``order`` (higher is stronger); None for a value outside it (or no value)."""
        canonical = self.canonical(value)
        if canonical is None:
            return None
        try:
            return self.order.index(canonical)
        except ValueError:
            return None

    def satisfies(self, actual: str | None, requested: Sequence[str], comparison: Comparison) -> bool:
        """Whether an authentication at ``actual`` meets a request (SAML 2.0 Core §3.3.2.2.1).

        ``exact``: one of the requested classes. ``minimum``: at least as strong as one of them. ``better``:
        stronger than every one of them (the strict reading of "stronger than any one"). ``maximum``: no
        stronger than the strongest of them. No request is met by anything; no ``actual`` meets none.
        """
        if not requested:
            return True
        wanted = [self.canonical(r) for r in requested]
        got = self.canonical(actual)
        if got is None:
            return False
        if got in wanted and comparison is not Comparison.BETTER:
            return True
        if comparison is Comparison.EXACT:
            return False
        got_rank = self.rank(got)
        ranks = [r for r in (self.rank(w) for w in wanted) if r is not None]
        if got_rank is None or not ranks:
            return False
        if comparison is Comparison.MINIMUM:
            return got_rank >= min(ranks)
        if comparison is Comparison.BETTER:
            return got_rank > max(ranks)
        return got_rank <= max(ranks)

    def reported(self, actual: str | None, requested: Sequence[str], comparison: Comparison,
                 name_a_requested_value: bool) -> str | None:
        """The acr to tell the downstream about an authentication at ``actual`` that satisfies the request.

        A SAML app learns the class that was used. An OpenID Connect client that made ``acr`` essential must
        receive one of the values it asked for (OIDC Core §5.5.1.1): the strongest requested value that the
        authentication reaches, which is true of it (an eIDAS "high" sign-in also meets "substantial").
        """
        got = self.canonical(actual)
        wanted = [w for w in (self.canonical(r) for r in requested) if w is not None]
        if not name_a_requested_value or not wanted or got in wanted:
            return got
        got_rank = self.rank(got)
        reached = [(rank, w) for w in wanted if (rank := self.rank(w)) is not None
                   and got_rank is not None and rank <= got_rank]
        return max(reached)[1] if reached else got


    def with_second_factor(self, upstream: str | None) -> str | None:
        """The level a sign-in at ``upstream`` reaches once the person also verified a second factor: the
        configured ``second_factor_level``, or the upstream's own when that is stronger on the scale. A class
        outside the scale counts as weaker (only the factor's level is known to hold); with no level
        configured, the upstream's."""
        level = self.canonical(self.second_factor_level)
        if level is None:
            return self.canonical(upstream)
        have, reach = self.rank(upstream), self.rank(level)
        return self.canonical(upstream) if have is not None and reach is not None and have >= reach else level

    def step_up_helps(self, upstream: str | None, requested: Sequence[str], comparison: Comparison) -> bool:
        """Whether a request the upstream's level does not meet would be met after a second factor."""
        return (not self.satisfies(upstream, requested, comparison)
                and self.satisfies(self.with_second_factor(upstream), requested, comparison))


DEFAULT_POLICY = AssurancePolicy()


def order_problems(order: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """What is wrong with an ``[assurance]`` section; empty when it is usable."""
    problems = []
    if len(set(order)) != len(order):
        problems.append("order names a value twice")
    for alias, target in aliases.items():
        if alias in order:
            problems.append(f"alias {alias!r} is itself in the order")
        if target in aliases:
            problems.append(f"alias {alias!r} points at another alias {target!r}")
    return problems
