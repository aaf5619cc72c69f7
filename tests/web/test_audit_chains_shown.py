"""The audit trail's parallel chains (issue 21) as the admin API and the console show them: each record named by its
chain and ``seq``, every chain's head, the real number of records, and every chain's first problem.

The answers are checked against the OpenAPI document's schemas, as the flow tests check real answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import lxml.html  # type: ignore[import-untyped]
import pytest
from flask import Flask
from openapi_schema_validator import OAS31Validator, validate
from sqlalchemy import Engine, text

from broker.app import close_app, create_app
from broker.config.settings import load_settings
from broker.core.audit import AuditEvent, AuditKind
from broker.core.audit_chain import AUDIT_CHAINS
from broker.core.operators import Permission, Role
from broker.instance import InstanceOptions, init_instance
from broker.journeys import console
from broker.storage import SqlAuditLog, create_engine_for, upgrade
from broker.web import console as console_views
from broker.web.admin_api import audit_trail
from broker.web.admin_api.auth import Caller
from broker.web.admin_api.openapi import document
from broker.web.admin_api.operation import Call
from broker.web.admin_api.table import OPERATIONS

#: the chains the test writes to, and how many records each gets
WRITTEN = {1: 2, 3: 3, 8: 1}


@dataclass(frozen=True)
class Instance:
    app: Flask
    engine: Engine


@pytest.fixture
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    config = init_instance(InstanceOptions(tmp_path_factory.mktemp("chains") / "instance"))
    settings = load_settings(config, environ={})
    upgrade(settings.database_url)
    app = create_app(settings)
    engine = create_engine_for(settings.database_url)
    now = datetime.now(UTC)
    for chain, count in WRITTEN.items():  # on SQLite a log appends to the chain it is given
        log = SqlAuditLog(engine, first_chain=chain)
        for n in range(count):
            log.record(AuditEvent(AuditKind.LOGIN_SUCCEEDED, now, account_id=f"account-{chain}", reason=f"n {n}"))
    yield Instance(app, engine)
    engine.dispose()
    close_app(app)


def _conforms(answer: dict[str, Any], operation_id: str) -> None:
    op = next(o for o in OPERATIONS if o.operation_id == operation_id)
    doc = document(OPERATIONS, "https://broker.test")
    validate(answer, {"$ref": f"#/components/schemas/{op.response}", "components": doc["components"]},
             cls=OAS31Validator)


def _call(**query: str) -> Call:
    return Call(Caller("client", "ci", frozenset({Permission.VIEW_AUDIT})), {}, query)


def _stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one())


def test_the_api_names_each_record_by_its_chain_and_seq(instance: Instance) -> None:
    with instance.app.test_request_context():
        answer = audit_trail.listing(_call(limit="500"))

    _conforms(answer, "list-audit")
    mine = [(r["chain"], r["seq"]) for r in answer["records"] if (r["account_id"] or "").startswith("account-")]
    assert sorted(mine) == [(chain, seq) for chain, count in WRITTEN.items() for seq in range(1, count + 1)]


def test_the_api_verify_answer_has_every_chains_head_and_the_real_count(instance: Instance) -> None:
    with instance.app.test_request_context():
        answer = audit_trail.verify(_call())

    _conforms(answer, "verify-audit")
    assert answer["intact"] is True and answer["problem"] is None and answer["problems"] == []
    assert [h["chain"] for h in answer["heads"]] == list(range(1, AUDIT_CHAINS + 1))
    assert {h["chain"]: h["seq"] for h in answer["heads"] if h["chain"] in WRITTEN} == WRITTEN
    assert answer["records"] == _stored(instance.engine) == sum(h["seq"] for h in answer["heads"])
    assert answer["head"]["seq"] == answer["records"]  # all chains as one, as the single chain's head was
    assert answer["anchor"] == ",".join(f"{h['chain']}:{h['seq']}:{h['hash']}" for h in answer["heads"])


def test_the_api_names_the_first_problem_of_every_broken_chain(instance: Instance) -> None:
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE chain = 3 AND seq = 2"))
        connection.execute(text("DELETE FROM audit_events WHERE chain = 8 AND seq = 1"))

    with instance.app.test_request_context():
        answer = audit_trail.verify(_call())

    _conforms(answer, "verify-audit")
    assert answer["intact"] is False
    assert [(p["chain"], p["kind"], p["seq"]) for p in answer["problems"]] == [(3, "edited", 2),
                                                                                (8, "tail-deleted", 1)]
    assert answer["problem"] == answer["problems"][0]


def _console_page(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The console's "Verify the whole chain" page for an auditor (the view itself: sign-in and CSRF are other
    tests' business, ``tests/flows/test_console_sign_in.py``)."""
    auditor = console.Operator("auditor-1", frozenset({Role.AUDITOR}), "handle", "sid", datetime.now(UTC))
    monkeypatch.setattr(console, "current", lambda *_: auditor)
    with instance.app.test_request_context("/console/audit/verify", method="POST"):
        response = console_views.verify_audit()
    assert response.status_code == 200
    return lxml.html.fromstring(response.get_data(as_text=True))


def test_the_console_counts_every_chains_records_and_shows_each_head(instance: Instance,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    page = _console_page(instance, monkeypatch)

    status = page.xpath("string(//*[@id='chain-check'])")
    assert f"intact: {_stored(instance.engine)} records" in " ".join(status.split())
    heads = [[cell.text_content().strip() for cell in row.xpath("td")]
             for row in page.xpath("//table[@id='chain-heads']/tbody/tr")]
    assert [(int(chain), int(seq)) for chain, seq, _ in heads if int(chain) in WRITTEN] == list(WRITTEN.items())
    assert len(heads) == AUDIT_CHAINS and all(len(digest) == 64 for _, _, digest in heads)
    anchor = page.xpath("string(//*[@id='chain-anchor'])")
    assert anchor == ",".join(":".join(row) for row in heads)
    shown = {row.xpath("string(td[1])") for row in page.xpath("//table[not(@id)]/tbody/tr")}
    assert {"1:2", "3:3", "8:1"} <= shown  # the newest records, each as <chain>:<seq>


def test_the_console_names_every_broken_chain(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE chain = 3 AND seq = 1"))
        connection.execute(text("UPDATE audit_events SET reason = 'edited' WHERE chain = 8 AND seq = 1"))

    page = _console_page(instance, monkeypatch)

    status = " ".join(page.xpath("string(//*[@id='chain-check'])").split())
    assert "intact" not in status
    assert "chain 3: record 1 was edited" in status and "chain 8: record 1 was edited" in status
