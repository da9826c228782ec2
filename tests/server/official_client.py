"""The official Python client `allowly` 0.8.0, unchanged, against `allowly serve`.

Usage: official_client.py BASE_URL SETUP_KEY RUNTIME_KEY [OTHER_WORKSPACE_RUNTIME_KEY]

Walks every call the client makes to the wire-compatible subset (docs/http-api.md), asserts each decision
and reason, and verifies every receipt it saw with `allowly.verify.verify_receipt` against the key
document from GET /v1/workspaces/{id}/keys. Exits 1 on the first run with any mismatch, listing
them all.
"""
from __future__ import annotations

import asyncio
import sys
import traceback
import uuid
from typing import Any

import httpx
from allowly import (
    Allowly,
    AllowlyAPIError,
    ReceiptEnvelopePending,
    ReceiptEnvelopeSigned,
)
from allowly.verify import decode_receipt, fetch_keys_doc, load_keys_from_json, verify_receipt

FAILURES: list[str] = []
PASSED = 0


def expect(condition: bool, label: str, detail: Any = None) -> None:
    global PASSED
    if condition:
        PASSED += 1
        print(f"ok    {label}")
    else:
        FAILURES.append(f"{label}: {detail!r}")
        print(f"FAIL  {label}: {detail!r}")


def expect_eq(actual: Any, wanted: Any, label: str) -> None:
    expect(actual == wanted, label, f"got {actual!r}, wanted {wanted!r}")


async def expect_api_error(awaitable, status: int, code: str | None, label: str) -> None:
    try:
        await awaitable
    except AllowlyAPIError as exc:
        ok = exc.status == status and (code is None or exc.code == code)
        expect(ok, label, f"got HTTP {exc.status} {exc.code}, wanted {status} {code}")
        return
    except Exception as exc:  # noqa: BLE001 - any other failure is a mismatch too
        expect(False, label, f"raised {type(exc).__name__}: {exc}")
        return
    expect(False, label, f"no error, wanted HTTP {status} {code}")


def action(name: str, decision: str, target: str | None = None, fields=None, rules=None, guards=None) -> dict:
    return {
        "policy": {
            "profile": "allowly.basic.v1",
            "action": name,
            "decision": decision,
            "target": target,
            "fields": fields or {},
            "rules": rules or [],
        },
        "guards": guards or {},
        "executable_operations": [],
    }


DEFINITION = {
    "profile": "allowly.policy.v1",
    "agent_id": "support_agent",
    "actions": [
        action("email.read", "allow"),
        action("email.send", "confirm", "agent_owner"),
        action("refund.issue", "escalate", "member:finance_lead"),
        action("account.delete", "deny"),
        action("api.call", "allow"),
        action(
            "web.search",
            "allow",
            fields={"risk": "integer"},
            rules=[{
                "id": "review-high-risk",
                "decision": "confirm",
                "target": "agent_owner",
                "conditions": [{"field": "risk", "op": "gte", "value": 2}],
            }],
        ),
    ],
    "default_expiry_days": 30,
}

OPS_DEFINITION = {
    "profile": "allowly.policy.v1",
    "agent_id": "ops_agent",
    "actions": [action("deploy.run", "escalate", "member:oncall")],
    "default_expiry_days": 7,
}


# Only the keys that have no default: the client requires every key, so this goes over raw HTTP.
MINIMAL_DEFINITION = {
    "agent_id": "minimal_agent",
    "actions": [
        {"policy": {"action": "email.read", "decision": "allow"}},
        {"policy": {"action": "email.send", "decision": "confirm"}},
    ],
}


class Run:
    def __init__(self, base_url: str, setup_key: str, runtime_key: str, other_runtime_key: str | None):
        self.base_url = base_url
        self.setup_key = setup_key
        self.setup = Allowly(setup_key, base_url=base_url, dangerously_allow_insecure_base_url=True)
        self.runtime = Allowly(runtime_key, base_url=base_url, dangerously_allow_insecure_base_url=True)
        self.other = (
            Allowly(other_runtime_key, base_url=base_url, dangerously_allow_insecure_base_url=True)
            if other_runtime_key
            else None
        )
        self.workspace_id = setup_key.split(".")[2]
        # Every receipt seen, by id: signed ones from checks, pending ones (fetched later).
        self.signed: dict[str, dict] = {}
        self.pending: set[str] = set()

    async def close(self) -> None:
        for client in (self.setup, self.runtime, self.other):
            if client is not None:
                await client.aclose()

    def collect(self, envelope) -> str:
        if isinstance(envelope, ReceiptEnvelopeSigned):
            receipt_id = decode_receipt(envelope.receipt)["receipt_id"]
            self.signed[receipt_id] = envelope.receipt
            return receipt_id
        if isinstance(envelope, ReceiptEnvelopePending):
            expect(envelope.url.startswith(self.base_url + "/v1/receipts/"), "pending envelope url is absolute", envelope.url)
            self.pending.add(envelope.receipt_id)
            return envelope.receipt_id
        raise AssertionError(f"no receipt envelope: {envelope!r}")

    async def check(self, authorization_id: str, actions: list[str], **kwargs):
        response = await self.runtime.check(authorization_id=authorization_id, actions=actions, **kwargs)
        expect_eq(set(response.results), set(actions), f"check {actions} answers every action")
        for result in response.results.values():
            expect(not result.is_fallback, f"check {actions} is answered by the server", result.reason)
            if result.receipt is not None:
                self.collect(result.receipt)
        return response

    async def policies(self) -> None:
        created = await self.setup.policies.create(policy_id="support", definition=DEFINITION, description="support desk")
        expect_eq(created.policy_ref["policy_id"], "support", "policies.create returns the policy")
        expect_eq(created.policy_ref["policy_version"], 1, "policies.create makes edition 1")
        fetched = await self.setup.policies.get("support")
        expect_eq(fetched.policy_ref, created.policy_ref, "policies.get returns the newest edition")
        listed = await self.setup.policies.list(limit=10)
        expect("support" in [p.policy_ref["policy_id"] for p in listed.items], "policies.list lists it", listed)
        preview = await self.setup.policies.preview(definition=DEFINITION, action="web.search", context={"risk": 2})
        expect_eq(preview.policy_eval.result.decision, "confirm", "policies.preview evaluates a rule")
        expect_eq(preview.policy_eval.result.matched_rule_id, "review-high-risk", "policies.preview names the rule")
        published = await self.setup.policies.publish(
            policy_id="ops", definition=OPS_DEFINITION, idempotency_key=f"publish-{uuid.uuid4()}"
        )
        expect_eq(published.policy_ref["policy_id"], "ops", "policies.publish creates an edition")
        expect_eq(published.agent_id, "ops_agent", "policies.publish names the agent")
        await self.minimal_policy()
        await self.setup.policies.archive("ops")
        await expect_api_error(self.setup.policies.get("ops"), 404, "policy_not_found", "an archived policy is gone")
        await expect_api_error(self.runtime.policies.list(), 403, "forbidden", "a runtime key cannot manage policies")

    async def minimal_policy(self) -> None:
        """A policy written with only the required keys reads back through the client, which
        validates every key: the server keeps the full form, with the same digest."""
        headers = {"Authorization": f"Bearer {self.setup_key}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers) as http:
            reply = await http.post("/v1/policies", json={"policy_id": "minimal", **MINIMAL_DEFINITION})
            expect_eq(reply.status_code, 201, "a policy with only the required keys is created over HTTP")
            broken = {"policy_id": "broken", "agent_id": "", "actions": [
                {"policy": {"action": "email.read", "decision": "block"}},
                {"policy": {"action": "email.send", "decision": "confirm", "target": "member:bob"}},
            ]}
            reply = await http.post("/v1/policies", json=broken)
            fields = [f.get("field") for f in reply.json().get("error", {}).get("fields", [])]
            expect_eq(
                (reply.status_code, fields),
                (422, ["agent_id", "actions[0].policy.decision", "actions[1].policy.target"]),
                "a policy with three mistakes gets all three in one answer",
            )
        try:
            fetched = await self.setup.policies.get("minimal")
        except Exception as exc:  # noqa: BLE001 - a validation error here is the failure tested
            expect(False, "policies.get reads a minimal policy back", f"{type(exc).__name__}: {exc}")
            return
        expect_eq(
            fetched.definition,
            {
                "profile": "allowly.policy.v1",
                "agent_id": "minimal_agent",
                "actions": [action("email.read", "allow"), action("email.send", "confirm", "agent_owner")],
                "default_expiry_days": None,
            },
            "policies.get reads a minimal policy back in full",
        )
        created = await self.setup.policies.create(policy_id="minimal-full", definition=fetched.definition)
        expect_eq(
            created.policy_ref["definition_sha256"],
            fetched.policy_ref["definition_sha256"],
            "the full form through policies.create has the same digest",
        )
        listed = await self.setup.policies.list(limit=100)
        expect("minimal" in [p.policy_ref["policy_id"] for p in listed.items], "policies.list reads it too", listed)

    async def flow(self) -> None:
        auth = await self.runtime.authorizations.create(
            user_id="user_1",
            policy_id="support",
            policy_version=1,
            budget_limit_micros=100_000_000,
            metadata={"ticket": "T-1"},
            idempotency_key=f"create-{uuid.uuid4()}",
        )
        self.collect(auth.receipt)
        expect_eq(auth.policy_ref["policy_version"], 1, "authorizations.create snapshots edition 1")
        expect_eq(
            sorted(auth.actions),
            sorted(["email.read", "email.send", "refund.issue", "account.delete", "api.call", "web.search"]),
            "authorizations.create grants every action of the edition",
        )
        aid = auth.authorization_id

        # allow
        r = (await self.check(aid, ["email.read"], context={"channel": "chat"})).results["email.read"]
        expect_eq((r.decision, r.reason), ("allow", "authorization_granted_action_active"), "check allows")
        r = (await self.check(aid, ["web.search"], context={"risk": 1})).results["web.search"]
        expect_eq((r.decision, r.reason), ("allow", "authorization_granted_action_active"), "check allows below the rule")
        expect_eq(r.policy_eval.result.decision, "allow", "check reports policy_eval")

        # confirm, approve, re-check
        r = (await self.check(aid, ["email.send"], resource="mailbox:1")).results["email.send"]
        expect_eq((r.decision, r.reason), ("confirm", "action_requires_user_confirmation"), "check asks for confirmation")
        expect(bool(r.confirm_nonce) and bool(r.confirmation_id), "confirm carries a nonce and an id", r)
        status = await self.runtime.confirmations.get_status(r.confirmation_id)
        expect_eq(status.status, "pending", "confirmations.get_status: pending")
        approved = await self.runtime.confirmations.approve(r.confirm_nonce, approved=True, ttl_seconds=120)
        expect_eq(approved.decision, "approved", "confirmations.approve")
        expect_eq(approved.authorization_id, aid, "confirmations.approve names the authorization")
        if approved.receipt is not None:
            self.collect(approved.receipt)
        r2 = (await self.check(aid, ["email.send"], resource="mailbox:1")).results["email.send"]
        expect_eq((r2.decision, r2.reason), ("allow", "user_confirmed"), "re-check after approval allows")
        status = await self.runtime.confirmations.get_status(r.confirmation_id)
        expect_eq((status.status, status.authority_status), ("approved", "available"), "confirmation is approved")
        approved_confirmation = r.confirmation_id
        await expect_api_error(
            self.runtime.confirmations.approve(r.confirm_nonce, approved=True), 409, None, "a nonce resolves once"
        )
        r = (await self.check(aid, ["web.search"], context={"risk": 3})).results["web.search"]
        expect_eq((r.decision, r.reason), ("confirm", "condition_requires_user_confirmation"), "a rule asks for confirmation")

        # escalate, approve, one allowed re-check, escalate again
        r = (await self.check(aid, ["refund.issue"], estimated_cost_micros=None)).results["refund.issue"]
        expect_eq((r.decision, r.reason), ("escalate", "escalation_required"), "check escalates")
        expect_eq(r.escalation_to, "member:finance_lead", "escalation goes to the policy's target")
        first_escalation = r.escalation_id
        status = await self.runtime.escalations.get_status(first_escalation)
        expect_eq(status.status, "pending", "escalations.get_status: pending")
        resolved = await self.runtime.escalations.approve(first_escalation, resolved_by="finance_lead", note="ok")
        expect_eq(resolved.status, "approved", "escalations.approve")
        if resolved.receipt is not None:
            self.collect(resolved.receipt)
        r = (await self.check(aid, ["refund.issue"])).results["refund.issue"]
        expect_eq((r.decision, r.reason), ("allow", "escalation_approved"), "one re-check after approval allows")
        r = (await self.check(aid, ["refund.issue"])).results["refund.issue"]
        expect_eq((r.decision, r.reason), ("escalate", "escalation_required"), "the approval was used once: escalate again")
        expect(r.escalation_id != first_escalation, "a new escalation is opened", r.escalation_id)
        pending_escalation = r.escalation_id
        status = await self.runtime.escalations.get(first_escalation)
        expect_eq(status.authority_status, "consumed", "the first escalation is consumed")

        # deny
        r = (await self.check(aid, ["account.delete"])).results["account.delete"]
        expect_eq((r.decision, r.reason), ("deny", "action_denied_by_policy"), "check denies")
        r = (await self.check(aid, ["payroll.run"])).results["payroll.run"]
        expect_eq((r.decision, r.reason), ("deny", "action_not_in_authorization"), "unknown action is denied")
        r = (await self.check("auth_does_not_exist", ["email.read"])).results["email.read"]
        expect_eq((r.decision, r.reason), ("deny", "authorization_not_found"), "unknown authorization is denied")
        mixed = await self.check(aid, ["email.read", "account.delete"])
        expect_eq(
            {a: x.decision for a, x in mixed.results.items()},
            {"email.read": "allow", "account.delete": "deny"},
            "one check, several actions",
        )

        # budgets: reserve, settle, exceed
        r = (await self.check(aid, ["api.call"], estimated_cost_micros=60_000_000)).results["api.call"]
        expect_eq((r.decision, r.reason), ("allow", "authorization_granted_action_active"), "budgeted check allows")
        expect_eq(r.budget.spent_after_micros if r.budget else None, 60_000_000, "the estimate is reserved")
        check_receipt_id = decode_receipt(r.receipt.receipt)["receipt_id"]
        settled = await self.runtime.settle_budget(check_receipt_id=check_receipt_id, actual_cost_micros=50_000_000)
        expect_eq((settled.delta_micros, settled.spent_after_micros), (-10_000_000, 50_000_000), "settle_budget")
        self.collect(settled.receipt)
        again = await self.runtime.settle_budget(
            check_receipt_id=check_receipt_id, actual_cost_micros=50_000_000, idempotency_key="settle-1"
        )
        expect_eq(again.spent_after_micros, 50_000_000, "settling again with the same cost changes nothing")
        r = (await self.check(aid, ["api.call"], estimated_cost_micros=60_000_000)).results["api.call"]
        expect_eq((r.decision, r.reason), ("deny", "budget_exceeded"), "over the cap: budget_exceeded")
        r = (await self.check(aid, ["api.call"], estimated_cost_micros=50_000_000)).results["api.call"]
        expect_eq((r.decision, r.reason), ("allow", "authorization_granted_action_active"), "exactly at the cap allows")

        # idempotent checks answer once
        key = f"check-{uuid.uuid4()}"
        a = await self.check(aid, ["email.read"], idempotency_key=key)
        b = await self.check(aid, ["email.read"], idempotency_key=key)
        expect_eq(
            decode_receipt(a.results["email.read"].receipt.receipt)["receipt_id"],
            decode_receipt(b.results["email.read"].receipt.receipt)["receipt_id"],
            "a retried check with the same Idempotency-Key returns the first answer",
        )

        # receipts
        some_id = check_receipt_id
        envelope = await self.runtime.receipts.get(some_id)
        expect(isinstance(envelope, ReceiptEnvelopeSigned), "receipts.get returns a signed receipt", envelope)
        signed = await self.runtime.receipts.fetch_signed(auth.receipt.receipt_id, timeout=10)
        expect_eq(decode_receipt(signed)["event"], "authorization.create", "receipts.fetch_signed of a pending envelope")
        await expect_api_error(self.runtime.receipts.get("rcp_nope"), 404, "receipt_not_found", "unknown receipt: 404")

        # cross-workspace isolation
        if self.other is not None:
            await expect_api_error(
                self.other.receipts.get(some_id), 404, "receipt_not_found", "another workspace's receipt is not found"
            )
            r = (await self.other.check(authorization_id=aid, actions=["email.read"])).results["email.read"]
            expect_eq((r.decision, r.reason), ("deny", "authorization_not_found"), "another workspace's authorization is unknown")
            await expect_api_error(
                self.other.escalations.get(first_escalation), 404, None, "another workspace's escalation is not found"
            )

        # revoke
        revoked = await self.runtime.authorizations.revoke(aid, revoked_by="admin", notes="offboarding")
        expect_eq(revoked.authorization_id, aid, "authorizations.revoke")
        self.collect(revoked.receipt)
        r = (await self.check(aid, ["email.read"])).results["email.read"]
        expect_eq((r.decision, r.reason), ("deny", "authorization_revoked"), "a revoked authorization denies")
        await expect_api_error(self.runtime.authorizations.revoke(aid), 409, "authorization_revoked", "revoking twice: 409")
        # After it, nothing reads available or pending (the client parses the `revoked` authority).
        status = await self.runtime.confirmations.get_status(approved_confirmation)
        expect_eq((status.status, status.authority_status), ("approved", "revoked"), "an open approval reads revoked")
        status = await self.runtime.escalations.get(pending_escalation)
        expect_eq((status.status, status.authority_status), ("expired", "none"), "a pending escalation ends")
        expect_eq(status.expires_at, revoked.revoked_at, "it ends with the revocation")
        status = await self.runtime.escalations.get(first_escalation)
        expect_eq(status.authority_status, "consumed", "a used approval stays consumed")

        # credentials
        bad = Allowly("allowly.runtime." + self.workspace_id + ".ak_x.nope", base_url=self.base_url,
                      dangerously_allow_insecure_base_url=True)
        try:
            await expect_api_error(
                bad.authorizations.create(user_id="u", policy_id="support", policy_version=1),
                401, "invalid_or_revoked_api_key", "a wrong key: 401",
            )
        finally:
            await bad.aclose()

        expect(await self.runtime.readiness(), "readiness()", None)

    async def verify_all(self) -> None:
        for receipt_id in sorted(self.pending):
            envelope = await self.runtime.receipts.get(receipt_id)
            expect(isinstance(envelope, ReceiptEnvelopeSigned), f"pending {receipt_id} is signed", envelope)
            if isinstance(envelope, ReceiptEnvelopeSigned):
                self.signed[receipt_id] = envelope.receipt
        doc = fetch_keys_doc(self.workspace_id, base_url=self.base_url, dangerously_allow_insecure_base_url=True)
        keys = load_keys_from_json(doc)
        trusted = {k["public_key_fingerprint"] for k in doc["keys"]}
        verified = 0
        for receipt_id, receipt in sorted(self.signed.items()):
            try:
                payload = verify_receipt(
                    receipt, keys, expected_workspace_id=self.workspace_id, trusted_key_fingerprints=trusted
                )
                if payload["receipt_id"] != receipt_id:
                    raise AssertionError("receipt_id mismatch")
                verified += 1
            except Exception as exc:  # noqa: BLE001
                expect(False, f"receipt {receipt_id} verifies", f"{type(exc).__name__}: {exc}")
        expect(verified == len(self.signed) and verified >= 20, f"{verified} receipts verify with verify_receipt", verified)


async def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    run = Run(argv[1], argv[2], argv[3], argv[4] if len(argv) == 5 else None)
    try:
        await run.policies()
        await run.flow()
        await run.verify_all()
    except Exception:  # noqa: BLE001 - an unexpected exception is a failure, with its trace
        FAILURES.append("unexpected exception:\n" + traceback.format_exc())
        print(FAILURES[-1])
    finally:
        await run.close()
    if FAILURES:
        print(f"\n{len(FAILURES)} FAILED, {PASSED} passed")
        for failure in FAILURES:
            print(f"  - {failure}")
        return 1
    print(f"\nofficial client: all {PASSED} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
