"""Runs tests/scenarios/quickstart.json (the flow every SDK runs) on any allowly.sync.Allowly and
returns every step's observed results, so embedded and remote runs can be compared."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from allowly.sync import Allowly

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = json.loads((ROOT / "tests" / "scenarios" / "quickstart.json").read_text())


def publish_policy(setup: Allowly) -> None:
    body = json.loads((ROOT / SCENARIO["policy_file"]).read_text())
    policy_id = body.pop("policy_id")
    description = body.pop("description", None)
    setup.policies.create(policy_id=policy_id, definition=body, description=description)


def run(setup: Allowly, runtime: Allowly) -> list[dict[str, Any]]:
    """Runs every step, asserting its expectation; returns comparable observations."""
    publish_policy(setup)
    spec = SCENARIO["authorization"]
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=spec["expires_in_seconds"])
    auth = runtime.authorizations.create(
        user_id=spec["user_id"],
        policy_id=spec["policy_id"],
        budget_limit_micros=spec["budget_limit_micros"],
        expires_at=expires_at,
    )
    authorization_id = auth.authorization_id
    checks: dict[str, Any] = {}
    observed: list[dict[str, Any]] = []
    for step in SCENARIO["steps"]:
        op = step["op"]
        if op == "check":
            response = runtime.check(
                authorization_id=authorization_id,
                actions=step["actions"],
                context=step.get("context"),
                estimated_cost_micros=step.get("estimated_cost_micros"),
            )
            checks[step["id"]] = response
            seen: dict[str, Any] = {}
            for action, want in step["expect"].items():
                result = response.results[action]
                got = {"decision": result.decision, "reason": result.reason}
                if "budget" in want:
                    b = result.budget
                    got["budget"] = None if b is None else {
                        "limit_micros": b.limit_micros,
                        "spent_micros": b.spent_micros,
                        "estimated_cost_micros": b.estimated_cost_micros,
                        "spent_after_micros": b.spent_after_micros,
                    }
                assert got == want, f"step {step['id']}: {action}: got {got}, wanted {want}"
                assert not result.is_fallback, f"step {step['id']}: fallback answer {result.reason}"
                assert result.receipt is not None, f"step {step['id']}: no receipt"
                seen[action] = got
            observed.append({"step": step["id"], "results": seen})
        elif op == "approve_confirmation":
            result = checks[step["of"]].results[step["action"]]
            assert result.confirm_nonce, f"step {step['of']} has no confirm_nonce"
            approved = runtime.confirmations.approve(result.confirm_nonce, approved=True, ttl_seconds=step["ttl_seconds"])
            assert approved.decision == "approved"
            observed.append({"step": step["id"], "decision": approved.decision})
        elif op == "approve_escalation":
            result = checks[step["of"]].results[step["action"]]
            assert result.escalation_id, f"step {step['of']} has no escalation_id"
            resolved = runtime.escalations.approve(result.escalation_id, resolved_by=step["resolved_by"])
            assert resolved.status == "approved"
            observed.append({"step": step["id"], "status": resolved.status})
        elif op == "settle":
            result = checks[step["of"]].results[step["action"]]
            receipt_id = result.receipt_id
            assert receipt_id
            settled = runtime.settle_budget(check_receipt_id=receipt_id, actual_cost_micros=step["actual_cost_micros"])
            observed.append({"step": step["id"], "delta_micros": settled.delta_micros,
                             "spent_after_micros": settled.spent_after_micros})
        elif op == "revoke":
            revoked = runtime.authorizations.revoke(authorization_id)
            assert revoked.authorization_id == authorization_id
            observed.append({"step": step["id"], "revoked": True})
        else:
            raise AssertionError(f"unknown op {op!r} in the scenario")
    return observed
