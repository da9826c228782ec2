"""Check results are read-only views over the engine's answer, converted on access: every field
reads as the same member of the HTTP API's JSON object (`to_dict`), and results survive copy and
pickle, as plain objects do."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import allowly
from allowly.sync import Allowly

from scenario import SCENARIO, publish_policy

TEXT_FIELDS = ["confirm_nonce", "confirm_expires_at", "confirm_prompt_hint", "confirmation_id", "escalation_id",
               "escalation_to", "escalation_expires_at", "superseded_by", "fallback_mode"]


def results_of_every_kind(home: str) -> list[allowly.ActionResult]:
    """allow, confirm, escalate, deny and budgeted results from the quickstart's checks."""
    client = Allowly.embedded(home)
    publish_policy(client)
    spec = SCENARIO["authorization"]
    auth = client.authorizations.create(
        user_id=spec["user_id"], policy_id=spec["policy_id"], budget_limit_micros=spec["budget_limit_micros"]
    )
    results = []
    for step in SCENARIO["steps"]:
        if step["op"] == "check":
            response = client.check(
                authorization_id=auth.authorization_id,
                actions=step["actions"],
                context=step.get("context"),
                estimated_cost_micros=step.get("estimated_cost_micros"),
            )
            results.extend(response.results.values())
    return results


def assert_matches(result: allowly.ActionResult, raw: dict[str, Any]) -> None:
    assert (result.decision, result.reason) == (raw["decision"], raw["reason"])
    assert result.is_fallback == raw.get("is_fallback", False)
    for name in TEXT_FIELDS:
        assert getattr(result, name) == raw.get(name), name
    envelope = result.receipt
    assert isinstance(envelope, allowly.ReceiptEnvelopeSigned)
    assert {"status": envelope.status, "receipt": envelope.receipt} == raw["receipt"]
    budget = result.budget
    assert (None if budget is None else dataclasses.asdict(budget)) == raw["budget"]
    escalation = result.escalation
    assert (None if escalation is None else dataclasses.asdict(escalation)) == raw["escalation"]
    evaluation = result.policy_eval
    assert (None if evaluation is None else dataclasses.asdict(evaluation)) == raw["policy_eval"]


def test_fields_read_as_the_json_object(home: str) -> None:
    results = results_of_every_kind(home)
    kinds = {(r.decision, r.budget is not None, r.escalation is not None) for r in results}
    assert {"allow", "confirm", "escalate", "deny"} <= {decision for decision, _, _ in kinds}
    assert any(budgeted for _, budgeted, _ in kinds)
    for result in results:
        assert_matches(result, result.to_dict())


def test_results_survive_copy_and_pickle(home: str) -> None:
    results = results_of_every_kind(home)
    for result in results:
        for twin in (copy.copy(result), copy.deepcopy(result), pickle.loads(pickle.dumps(result))):
            assert twin == result and twin is not result
            assert twin.to_dict() == result.to_dict()
            assert_matches(twin, result.to_dict())
    # Equality compares the answers: two different results are not equal.
    assert results[0] != results[1]
