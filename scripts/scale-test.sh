#!/usr/bin/env bash
# A 1,000,000-receipt export, end to end: made by the engine (core/examples/export_corpus.rs),
# verified entirely by `allowly verify` in bounded memory (peak RSS under 100 MB, whatever the
# size: lines are printed as they are verified, receipt ids kept as 16-byte digests that spill to
# temporary files past 18 MB, with ~1.3 bytes an id left in memory), and a sample
# of it (every 1,000th line) by the reference verifier allowly-receipt-format 5.0.0. A copy with
# one receipt tampered deep in the file must fail. Takes about a minute and 1.6 GB of temporary
# disk. Usage: scripts/scale-test.sh [RECEIPTS=1000000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
count=${1:-1000000}
max_rss_kb=$((100 * 1024))
reference="$(scripts/reference-venv.sh)/bin/allowly-receipt-verify"
cargo build --release --locked --quiet -p allowly-cli -p allowly-core --example export_corpus
allowly=target/release/allowly
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

echo "==> $count receipts (export_corpus)"
target/release/examples/export_corpus "$work" "$count" >/dev/null
workspace=$(cat "$work/workspace_id")
trust=()
while read -r fingerprint; do trust+=(--trusted-key-fingerprint "$fingerprint"); done < "$work/fingerprints"
verify=("$allowly" verify --keys "$work/keys.json" --workspace-id "$workspace" "${trust[@]}")

echo "==> allowly verify, the whole export, with its peak memory"
start=$(date +%s%N)
status=0
/usr/bin/time -f '%M' -o "$work/rss" "${verify[@]}" "$work/export.jsonl" > "$work/verified.txt" || status=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
rss_kb=$(tail -1 "$work/rss")
summary=$(tail -1 "$work/verified.txt")
echo "     $summary in ${elapsed_ms} ms, peak RSS $((rss_kb / 1024)) MB"
[ "$status" = 0 ] || { echo "FAIL  allowly verify exited $status"; exit 1; }
[ "$summary" = "$count ok, 0 invalid ($count checked)" ] || { echo "FAIL  unexpected summary"; exit 1; }
[ "$(grep -c '^OK  rcp_' "$work/verified.txt")" = "$count" ] || { echo "FAIL  not one OK line per receipt"; exit 1; }
[ "$rss_kb" -lt "$max_rss_kb" ] || { echo "FAIL  peak RSS $rss_kb kB is over $max_rss_kb kB"; exit 1; }

echo "==> the reference verifier, every 1,000th line"
awk 'NR % 1000 == 1' "$work/export.jsonl" > "$work/sample.jsonl"
sampled=$(wc -l < "$work/sample.jsonl")
"$reference" --workspace-id "$workspace" "${trust[@]}" --export "$work/sample.jsonl" "$work/keys.json" > "$work/reference.txt" \
  || { tail -3 "$work/reference.txt"; echo "FAIL  the reference verifier refused the sample"; exit 1; }
echo "     $(tail -1 "$work/reference.txt") ($sampled lines)"

echo "==> one receipt tampered near the end: invalid, and named"
line=$((count - 7))
python3 - "$work/export.jsonl" "$work/tampered.jsonl" "$line" <<'PY'
import json, sys
source, target, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(source, "rb") as inp, open(target, "wb") as out:
    for number, raw in enumerate(inp, 1):
        if number == wanted:
            wrapper = json.loads(raw)
            signature = wrapper["receipt"]["signature"]
            wrapper["receipt"]["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
            raw = (json.dumps(wrapper, separators=(",", ":")) + "\n").encode()
        out.write(raw)
PY
status=0
"${verify[@]}" "$work/tampered.jsonl" > "$work/tampered.txt" || status=$?
[ "$status" = 1 ] || { echo "FAIL  a tampered export exited $status"; exit 1; }
grep -q "^INVALID  line $line " "$work/tampered.txt" || { echo "FAIL  the tampered line is not named"; exit 1; }
echo "     $(tail -1 "$work/tampered.txt")"
echo "scale test passed"
