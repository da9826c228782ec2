"""Quickstart: the engine in this process, async. Run: python examples/quickstart.py"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from allowly import Allowly, ReceiptEnvelopeSigned
from allowly.verify import load_keys_from_json, verify_receipt


async def main(policy_file: Path) -> None:
    body = json.loads(policy_file.read_text())
    policy_id: str = body.pop("policy_id")
    body.pop("description", None)

    with tempfile.TemporaryDirectory() as home:
        async with Allowly.embedded(home=home) as allowly:
            await allowly.policies.create(policy_id=policy_id, definition=body)
            auth = await allowly.authorizations.create(
                user_id="user_42", policy_id=policy_id, budget_limit_micros=50_000_000
            )
            check = await allowly.check(
                authorization_id=auth.authorization_id,
                actions=["email.send", "refund.issue"],
                context={"recipient_domain": "partner.org"},
            )
            for action, result in check.results.items():
                print(f"{action}: {result.decision} ({result.reason})")

            email = check.results["email.send"]
            if email.decision == "confirm" and email.confirm_nonce is not None:
                await allowly.confirmations.approve(email.confirm_nonce, approved=True, ttl_seconds=300)
                again = await allowly.check(
                    authorization_id=auth.authorization_id,
                    actions=["email.send"],
                    context={"recipient_domain": "partner.org"},
                )
                print("after approval:", again.results["email.send"].decision)

            # Every decision is signed: verify it offline against the workspace's published keys.
            keys = load_keys_from_json(await allowly.keys())
            workspace_id = allowly.workspace_id
            assert workspace_id is not None
            if isinstance(email.receipt, ReceiptEnvelopeSigned):
                payload = verify_receipt(email.receipt.receipt, keys, expected_workspace_id=workspace_id)
                print("receipt", payload["receipt_id"], "verified:", payload["decision"])


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "examples" / "policies" / "support-agent.json"
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
