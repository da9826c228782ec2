"""A script written for the official `allowly` 0.8.0 client, run unchanged against this package.

Usage: official_script.py BASE_URL SETUP_KEY RUNTIME_KEY
Only the official client's public API is used (check, authorizations, confirmations, escalations,
receipts, allowly.verify). Prints one JSON line of observations; exits 1 on a failed expectation.
"""

import asyncio
import json
import sys
import uuid

from allowly import Allowly, AllowlyAPIError, ReceiptEnvelopePending, ReceiptEnvelopeSigned
from allowly.verify import decode_receipt, fetch_keys_doc, load_keys_from_json, verify_receipt


def rule_action(name, decision, target=None):
    return {
        "policy": {"profile": "allowly.basic.v1", "action": name, "decision": decision, "target": target,
                   "fields": {"amount": "integer"},
                   "rules": [] if name != "payment.send" else [
                       {"id": "big", "decision": "escalate", "target": "member:cfo",
                        "conditions": [{"field": "amount", "op": "gt", "value": 1000}]}]},
        "guards": {},
        "executable_operations": [],
    }


DEFINITION = {
    "profile": "allowly.policy.v1",
    "agent_id": "script_agent",
    "actions": [rule_action("notes.read", "allow"), rule_action("email.send", "confirm", "agent_owner"),
                rule_action("payment.send", "allow"), rule_action("db.drop", "deny")],
    "default_expiry_days": 7,
}


async def main(base_url, setup_key, runtime_key):
    seen = []
    setup = Allowly(setup_key, base_url=base_url, dangerously_allow_insecure_base_url=True)
    async with Allowly(runtime_key, base_url=base_url, dangerously_allow_insecure_base_url=True) as client:
        policy_id = "script-" + uuid.uuid4().hex[:8]
        await setup.policies.create(policy_id=policy_id, definition=DEFINITION)
        auth = await client.authorizations.create(user_id="user_script", policy_id=policy_id, policy_version=1,
                                                  budget_limit_micros=5_000_000, idempotency_key=str(uuid.uuid4()))
        assert isinstance(auth.receipt, ReceiptEnvelopePending)
        aid = auth.authorization_id
        signed = []

        async def check(actions, **kw):
            response = await client.check(authorization_id=aid, actions=actions, **kw)
            out = {}
            for action, result in response.results.items():
                assert not result.is_fallback, result.reason
                if isinstance(result.receipt, ReceiptEnvelopeSigned):
                    signed.append(result.receipt.receipt)
                out[action] = (result.decision, result.reason)
            seen.append(out)
            return response.results

        await check(["notes.read"])
        r = (await check(["email.send"], resource="mailbox:1"))["email.send"]
        assert r.decision == "confirm" and r.confirm_nonce and r.confirmation_id
        status = await client.confirmations.get_status(r.confirmation_id)
        assert status.status == "pending"
        approved = await client.confirmations.approve(r.confirm_nonce, approved=True, ttl_seconds=120)
        assert approved.decision == "approved"
        assert (await check(["email.send"], resource="mailbox:1"))["email.send"].decision == "allow"
        try:
            await client.confirmations.approve(r.confirm_nonce, approved=True)
            raise AssertionError("a nonce resolves once")
        except AllowlyAPIError as exc:
            seen.append({"second_approve": [exc.status, exc.code]})

        r = (await check(["payment.send"], context={"amount": 5000}))["payment.send"]
        assert r.decision == "escalate" and r.escalation_id
        resolved = await client.escalations.approve(r.escalation_id, resolved_by="cfo", note="ok")
        assert resolved.status == "approved"
        assert (await check(["payment.send"], context={"amount": 5000}))["payment.send"].reason == "escalation_approved"
        status = await client.escalations.get_status(r.escalation_id)
        seen.append({"escalation_authority": status.authority_status})
        r = (await check(["payment.send"], context={"amount": 5000}))["payment.send"]
        rejected = await client.escalations.reject(r.escalation_id, resolved_by="cfo")
        assert rejected.status == "rejected"
        await check(["payment.send"], context={"amount": 5000})

        await check(["db.drop", "notes.read"])
        r = (await check(["notes.read"], estimated_cost_micros=4_000_000))["notes.read"]
        settled = await client.settle_budget(check_receipt_id=decode_receipt(r.receipt.receipt)["receipt_id"],
                                             actual_cost_micros=1_000_000)
        seen.append({"settled": [settled.delta_micros, settled.spent_after_micros]})
        await check(["notes.read"], estimated_cost_micros=4_000_000)
        await check(["notes.read"], estimated_cost_micros=4_000_000)

        envelope = await client.receipts.get(auth.receipt.receipt_id)
        fetched = await client.receipts.fetch_signed(auth.receipt.receipt_id, poll_interval=0.1, timeout=10)
        assert isinstance(envelope, ReceiptEnvelopeSigned) and envelope.receipt == fetched
        signed.append(fetched)
        revoked = await client.authorizations.revoke(aid)
        signed.append(await client.receipts.fetch_signed(revoked.receipt.receipt_id, poll_interval=0.1, timeout=10))
        await check(["notes.read"])

        workspace_id = setup_key.split(".")[2]
        keys = load_keys_from_json(fetch_keys_doc(workspace_id, base_url=base_url,
                                                  dangerously_allow_insecure_base_url=True))
        for receipt in signed:
            verify_receipt(receipt, keys, expected_workspace_id=workspace_id)
        seen.append({"verified": len(signed)})
        await setup.aclose()
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
