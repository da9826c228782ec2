#!/usr/bin/env bash
# Receipts of every kind the engine writes, across a key rotation and two checkpointed days, must
# verify with the reference verifier (allowly-receipt-format 5.0.0) and with `allowly verify`, one by
# one and as exports with checkpoint evidence; tampered copies must fail with both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reference="$("$root/scripts/reference-venv.sh")/bin/allowly-receipt-verify"
allowly="$root/target/release/allowly"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT

cargo run --quiet --release --locked -p allowly-core --example interop_corpus -- "$corpus"
workspace=$(cat "$corpus/workspace_id")
trust=()
while read -r fingerprint; do trust+=(--trusted-key-fingerprint "$fingerprint"); done < "$corpus/fingerprints"
keys="$corpus/keys.json"

failures=0
expect() { # expect <exit code> <label> <command...>
  local want=$1 label=$2; shift 2
  local got=0
  "$@" > "$corpus/last.out" 2>&1 || got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL  $label: exit $got, expected $want"; sed 's/^/      /' "$corpus/last.out"; failures=$((failures + 1))
  else
    echo "ok    $label"
  fi
}

kinds=(allow deny confirm escalate budget_exceeded rate_limited unknown_authorization authorization_create
       authorization_revoke confirmation_resolve escalation_resolve budget_settle checkpoint_day1 checkpoint_day2
       escalation_approved_allow user_confirmed_allow context_field_missing)
for kind in "${kinds[@]}"; do
  receipt="$corpus/receipts/$kind.json"
  [ -f "$receipt" ] || { echo "FAIL  missing receipt kind $kind"; failures=$((failures + 1)); continue; }
  expect 0 "reference verifies $kind" "$reference" --workspace-id "$workspace" "${trust[@]}" "$receipt" "$keys"
  expect 0 "allowly verifies $kind" "$allowly" verify "$receipt" --keys "$keys" --workspace-id "$workspace" "${trust[@]}"
done

for export in export.jsonl export.jsonl.gz; do
  expect 0 "reference verifies $export with checkpoint evidence" \
    "$reference" --workspace-id "$workspace" "${trust[@]}" --export "$corpus/$export" --checkpoint-evidence "$corpus/evidence.json" "$keys"
  expect 0 "allowly verifies $export with checkpoint evidence" \
    "$allowly" verify "$corpus/$export" --keys "$keys" --workspace-id "$workspace" "${trust[@]}" --checkpoint-evidence "$corpus/evidence.json"
done

# Tampering: flip one character of a signed payload; drop a member line the evidence names.
python3 - "$corpus" <<'PY'
import json, sys, pathlib
corpus = pathlib.Path(sys.argv[1])
receipt = json.loads((corpus / "receipts/allow.json").read_text())
payload = receipt["payload"]
receipt["payload"] = payload[:40] + ("A" if payload[40] != "A" else "B") + payload[41:]
(corpus / "tampered.json").write_text(json.dumps(receipt))
lines = (corpus / "export.jsonl").read_text().splitlines()
(corpus / "missing-member.jsonl").write_text("\n".join(lines[1:]) + "\n")
PY
expect 1 "reference rejects a tampered receipt" "$reference" --workspace-id "$workspace" "${trust[@]}" "$corpus/tampered.json" "$keys"
expect 1 "allowly rejects a tampered receipt" "$allowly" verify "$corpus/tampered.json" --keys "$keys" --workspace-id "$workspace" "${trust[@]}"
expect 1 "reference rejects an export missing a checkpoint member" \
  "$reference" --workspace-id "$workspace" "${trust[@]}" --export "$corpus/missing-member.jsonl" --checkpoint-evidence "$corpus/evidence.json" "$keys"
expect 1 "allowly rejects an export missing a checkpoint member" \
  "$allowly" verify "$corpus/missing-member.jsonl" --keys "$keys" --workspace-id "$workspace" "${trust[@]}" --checkpoint-evidence "$corpus/evidence.json"
untrusted=(--trusted-key-fingerprint "sha256:$(printf '0%.0s' {1..64})")
expect 1 "reference rejects an untrusted key" "$reference" --workspace-id "$workspace" "${untrusted[@]}" "$corpus/receipts/allow.json" "$keys"
expect 1 "allowly rejects an untrusted key" "$allowly" verify "$corpus/receipts/allow.json" --keys "$keys" --workspace-id "$workspace" "${untrusted[@]}"
expect 2 "allowly verify without trust anchors is a usage error" "$allowly" verify "$corpus/receipts/allow.json" --keys "$keys" --workspace-id "$workspace"

if [ "$failures" -ne 0 ]; then
  echo "$failures interop check(s) failed"; exit 1
fi
echo "interop: all checks passed"
