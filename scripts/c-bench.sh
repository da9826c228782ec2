#!/usr/bin/env bash
# Embedded `check` through the C API vs the same check called from Rust, measured in the same run,
# side by side: ROUNDS alternating runs of bindings-c/bench/check_rust.rs and bindings-c/bench/check_c.c,
# each a fresh home, the same policy and request, CHECKS timed checks per loop after a 10% warm-up.
# Reports the median of the per-run medians and the ratio C / Rust (target: <= 1.10).
#   ROUNDS=5 CHECKS=2000 scripts/c-bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${ROUNDS:-5}
checks=${CHECKS:-2000}
policy="$root/bindings-c/bench/policy.json"

cargo build --release --locked --quiet -p allowly-c
cargo bench --locked --quiet -p allowly-c --bench check_rust --no-run 2>/dev/null
make -s -C "$root/bindings-c" "$root/bindings-c/build/plain/check_c" TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
value() { grep -o "^$1 median_ns=[0-9]*" | sed 's/.*=//'; }

: >"$work/r1"; : >"$work/r2"; : >"$work/cj"; : >"$work/ca"
printf '%-6s %14s %14s %14s %14s\n' round rust_check_1 c_check_json rust_check_2 c_check_action
for i in $(seq 1 "$rounds"); do
  r=$(cargo bench --locked --quiet -p allowly-c --bench check_rust -- "$policy" "$work/rust$i" "$checks" 2>/dev/null)
  c=$("$root/bindings-c/build/plain/check_c" "$policy" "$work/c$i" "$checks")
  r1=$(value rust_check_1 <<<"$r"); r2=$(value rust_check_2 <<<"$r")
  cj=$(value c_check_json <<<"$c"); ca=$(value c_check_action <<<"$c")
  echo "$r1" >>"$work/r1"; echo "$r2" >>"$work/r2"; echo "$cj" >>"$work/cj"; echo "$ca" >>"$work/ca"
  printf '%-6s %12s ns %12s ns %12s ns %12s ns\n' "$i" "$r1" "$cj" "$r2" "$ca"
done
r1=$(median <"$work/r1"); r2=$(median <"$work/r2"); cj=$(median <"$work/cj"); ca=$(median <"$work/ca")
printf '%-6s %12s ns %12s ns %12s ns %12s ns\n' median "$r1" "$cj" "$r2" "$ca"
ratio_json=$(awk -v c="$cj" -v r="$r1" 'BEGIN {printf "%.3f", c / r}')
ratio_action=$(awk -v c="$ca" -v r="$r2" 'BEGIN {printf "%.3f", c / r}')
echo
echo "C API (JSON in/out) / Rust:       $ratio_json"
echo "C API (typed check_action) / Rust: $ratio_action"
awk -v a="$ratio_json" -v b="$ratio_action" 'BEGIN {exit !(a <= 1.10 && b <= 1.10)}' \
  && echo "within 10% of Rust" || { echo "NOT within 10% of Rust"; exit 1; }
