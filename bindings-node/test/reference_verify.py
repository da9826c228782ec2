"""Runs the reference verifier (allowly-receipt-format 5.0.0) on cases given as JSON on stdin:
{"keys": <key document>, "workspace_id": str, "trusted": [fp...], "cases": [{"name", "receipt"}]}
and prints {"name": "ok" | "<exception class>"} as JSON."""
import json
import sys

from allowly_receipt_format.verifier import load_keys_from_json, verify_receipt

data = json.load(sys.stdin)
out = {}
for case in data["cases"]:
    try:
        keys = load_keys_from_json(case.get("keys", data["keys"]))
        verify_receipt(
            case["receipt"],
            keys,
            expected_workspace_id=case.get("workspace_id", data["workspace_id"]),
            trusted_key_fingerprints=set(case.get("trusted", data["trusted"])),
        )
        out[case["name"]] = "ok"
    except Exception as exc:  # noqa: BLE001 - the class name is the answer
        out[case["name"]] = type(exc).__name__
print(json.dumps(out))
