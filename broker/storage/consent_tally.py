"""How many consent answers each release-policy version got, for the console's policy page (issue 19;
``broker.core.policy_report.ConsentTally``): one ``GROUP BY`` over the consent history, counts only."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, func, select

from broker.core.policy_report import ConsentTally
from broker.storage.db import reader_factory
from broker.storage.tables import ConsentRow


class SqlConsentTally:
    def __init__(self, engine: Engine) -> None:
        self._reads = reader_factory(engine)  # no transaction: one round trip per read

    def by_policy_version(self) -> Mapping[str, int]:
        query = select(ConsentRow.policy_version, func.count()).group_by(ConsentRow.policy_version)
        with self._reads() as session:
            return {str(version): int(count) for version, count in session.execute(query)}


_check: type[ConsentTally] = SqlConsentTally
