"""Verify a file of signed receipts (one JWS object per line) offline.

Run: python examples/verify_receipts.py KEYS_JSON RECEIPTS_JSONL WORKSPACE_ID [TRUSTED_FINGERPRINT...]
"""

from __future__ import annotations

import json
import sys

from allowly.verify import VerificationError, load_keys_from_json, verify_receipts


def main(keys_path: str, receipts_path: str, workspace_id: str, trusted: list[str]) -> int:
    with open(keys_path) as f:
        keys = load_keys_from_json(json.load(f))
    with open(receipts_path) as f:
        receipts = [json.loads(line) for line in f if line.strip()]
    results = verify_receipts(
        receipts, keys, expected_workspace_id=workspace_id, trusted_key_fingerprints=trusted or None
    )
    bad = 0
    for i, result in enumerate(results, 1):
        if isinstance(result, VerificationError):
            bad += 1
            print(f"line {i}: {type(result).__name__}: {result}")
    print(f"{len(results) - bad} valid, {bad} invalid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
