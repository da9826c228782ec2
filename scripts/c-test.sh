#!/usr/bin/env bash
# Tests of the C SDK (bindings-c/): builds liballowly and `allowly` once, checks that the generated
# header equals the committed one, builds the C tests with -Wall -Wextra -Werror, and runs them
# plain, under AddressSanitizer + UndefinedBehaviorSanitizer and under valgrind (no leaks, no
# errors), the remote test against a fresh `allowly serve`. Idempotent; works on a fresh clone.
#   scripts/c-test.sh          the tests
#   scripts/c-test.sh --bench  the tests, then the C-vs-Rust check benchmark (scripts/c-bench.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
unset ALLOWLY_DATABASE_URL
here="$root/bindings-c"
build="$here/build"

step() { printf '\n==> %s\n' "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; exit 1; }

# Tools: a C and a C++ compiler, make, valgrind (installed on a fresh Debian-like root machine).
missing=()
for tool in cc c++ make valgrind pkg-config; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  packages=()
  for tool in "${missing[@]}"; do
    case $tool in cc) packages+=(gcc) ;; c++) packages+=(g++) ;; *) packages+=("$tool") ;; esac
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    fail "missing ${missing[*]}: install them (apt-get install ${packages[*]})"
  fi
fi

step "build liballowly and allowly (release)"
# The whole workspace, as scripts/test.sh builds it, so that both share one set of artifacts.
cargo build --release --locked --workspace
lib="${CARGO_TARGET_DIR:-$root/target}/release"
for f in liballowly.so liballowly.a; do [ -f "$lib/$f" ] || fail "$f was not built"; done
ok "liballowly.so, liballowly.a"

step "the generated header equals the committed one"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && git ls-files --error-unmatch bindings-c/include/allowly.h >/dev/null 2>&1; then
  if ! git diff --exit-code HEAD -- bindings-c/include/allowly.h; then
    fail "bindings-c/include/allowly.h differs from the generated header: commit the regenerated file"
  fi
  ok "include/allowly.h is up to date"
else
  echo "skip  not a git checkout: cannot compare with the committed header"
fi

step "C tests and examples (-Wall -Wextra -Werror -pedantic; C11 and C++17)"
make -s -C "$here" tests TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
ok "built tests (plain, ASan+UBSan), examples, bench program"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

policy="$root/examples/policies/support-agent.json"
bench_policy="$here/bench/policy.json"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Valgrind: "definitely" and "indirectly" lost blocks and every memory error fail the run.
# ("still reachable" blocks are Rust's global statics and thread-locals; they are not leaks.)
# bindings-c/valgrind.supp lists the known false positives of compiled Rust, each with its reason.
valgrind_cmd=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
              --errors-for-leak-kinds=definite,indirect --track-origins=no --suppressions="$here/valgrind.supp")

# fresh: a new empty folder under $work, for a home (mktemp, not a counter: "$(fresh)" runs in a
# subshell, where a counter would never move and every test would share one home).
fresh() { mktemp -d "$work/home.XXXXXX"; }

step "embedded: plain, ASan+UBSan, valgrind"
for mode in plain asan valgrind; do
  case $mode in
    plain) runner=() ; dir=plain ;;
    asan) runner=() ; dir=asan ;;
    valgrind) runner=("${valgrind_cmd[@]}") ; dir=plain ;;
  esac
  echo "--- $mode"
  "${runner[@]}" "$build/$dir/test_embedded" "$policy" "$(fresh)" || fail "test_embedded ($mode)"
  "${runner[@]}" "$build/$dir/test_threads" "$bench_policy" "$(fresh)" 10000 || fail "test_threads ($mode)"
  # A forked child cannot free what the parent's other threads own: no leak check of the children.
  fork_runner=("${runner[@]}"); [ "$mode" = valgrind ] && fork_runner+=(--leak-check=no)
  "${fork_runner[@]}" "$build/$dir/test_fork" "$bench_policy" "$(fresh)" || fail "test_fork ($mode)"
done

step "examples"
out=$("$build/plain/send_email" "$(fresh)" "$policy")
echo "$out"
for line in "sendEmail(ana@example.com): allow (authorization_granted_action_active)" \
            "sendEmail(bo@partner.org): confirm (condition_requires_user_confirmation), asking the user" \
            "sendEmail(bo@partner.org): allow (user_confirmed)" \
            "sendEmail(ana@example.com): deny (authorization_revoked), not sent"; do
  grep -qF "$line" <<<"$out" || fail "send_email did not print: $line"
done
ok "send_email branches on allow / confirm / deny (escalate is in the same switch)"
"${valgrind_cmd[@]}" "$build/plain/send_email" "$(fresh)" "$policy" >/dev/null || fail "send_email under valgrind"
ok "send_email under valgrind"
"$build/plain/send_email_static" "$(fresh)" "$policy" | grep -qF "user_confirmed" || fail "send_email (static)"
ok "send_email linked against liballowly.a"
"$build/plain/check_cpp" "$(fresh)" | grep -qF "c++: deny (authorization_not_found)" || fail "check_cpp"
ok "check.cpp compiles as C++17 with -Werror and runs"

step "the README's C program, built and run as the README says, in an empty folder"
# block <name>: the fenced block between <!-- name:begin --> and <!-- name:end --> in README.md.
block() { sed -n "/<!-- $1:begin -->/,/<!-- $1:end -->/p" "$root/README.md" | sed '1,2d;$d' | sed '$d'; }
readme_app="$work/readme-app.c"
block c-sdk > "$readme_app"
[ -s "$readme_app" ] || fail "no c-sdk block in README.md"
# Its run lines, /path/to/allowly being this checkout (and its target folder, wherever cargo puts it).
# Its first line builds the library (`make -C .../bindings-c`: cargo build --release -p allowly-c);
# the step above built it already, with the whole workspace: building the one package again would
# relink liballowly.so with other features (and the next workspace build would relink it back), so
# that line is checked, not run.
block c-sdk-run > "$work/readme-run.txt"
head -n 1 "$work/readme-run.txt" | grep -q '^make -C /path/to/allowly/bindings-c\( \|$\)' \
  || fail "the c-sdk-run block in README.md no longer starts with: make -C /path/to/allowly/bindings-c"
tail -n +2 "$work/readme-run.txt" | sed -e "s|/path/to/allowly/target/release|$lib|g" -e "s|/path/to/allowly|$root|g" > "$work/readme-run.sh"
grep -q '^cc .* app\.c' "$work/readme-run.sh" && grep -q '\./app' "$work/readme-run.sh" \
  || fail "the c-sdk-run block in README.md does not compile app.c and run ./app"
# expect_readme_app <output>: the decisions the README's program prints.
expect_readme_app() {
  for line in "example.com: allow (authorization_granted_action_active), sending" \
              "partner.org: confirm (condition_requires_user_confirmation), asking the user" \
              "partner.org: allow (user_confirmed), sending"; do
    grep -qxF "$line" <<<"$1" || { echo "$1"; fail "the README's C program did not print: $line"; }
  done
}
dir=$(fresh) && cp "$readme_app" "$dir/app.c"
out=$(cd "$dir" && unset ALLOWLY_HOME && bash -eu "$work/readme-run.sh" 2>&1) || { echo "$out"; fail "the README's C build and run lines"; }
echo "$out"
expect_readme_app "$out"
[ -d "$dir/.allowly" ] || fail "the README's C program kept no workspace in ./.allowly"
ok "app.c from the README: compiled with -I/-L and run with LD_LIBRARY_PATH, as written"
cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$here/include" "$readme_app" || fail "app.c: warnings"
ok "app.c compiles with -Wall -Wextra -Werror -pedantic"
(cd "$dir" && rm -rf .allowly && LD_LIBRARY_PATH="$lib" "${valgrind_cmd[@]}" ./app >/dev/null) || fail "app.c under valgrind"
ok "app.c under valgrind"

step "make install and pkg-config"
make -s -C "$here" install TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" PREFIX="$work/prefix" >/dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$work/send_email_pc" "$here/examples/send_email.c" $(pkg-config --cflags --libs allowly)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/send_email_pc" "$(fresh)" "$policy" | grep -qF "user_confirmed" || fail "pkg-config build"
ok "installed under a prefix; built with \`pkg-config --cflags --libs allowly\` ($(pkg-config --modversion allowly))"
dir=$(fresh) && cp "$readme_app" "$dir/app.c"
# shellcheck disable=SC2046
(cd "$dir" && cc -std=c11 -o app app.c $(pkg-config --cflags --libs allowly)) || fail "app.c with pkg-config"
expect_readme_app "$(cd "$dir" && LD_LIBRARY_PATH="$work/prefix/lib" ./app)"
ok "app.c from the README built with \`pkg-config --cflags --libs allowly\` against the installed library"

step "remote: allowly serve (plain, ASan+UBSan, valgrind)"
server_out="$work/server.out"
"$lib/allowly" --home "$work/server-home" serve --listen 127.0.0.1:0 >"$server_out" 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 300); do
  if grep -q 'listening on' "$server_out" 2>/dev/null; then
    url=$(grep -o 'listening on http://[0-9.:]*' "$server_out" | head -1 | sed 's/listening on //')
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/server.log"; fail "allowly serve did not start"; }
setup_key=$(grep -o 'allowly\.setup\.[^ ]*' "$server_out" | head -1)
runtime_key=$(grep -o 'allowly\.runtime\.[^ ]*' "$server_out" | head -1)
workspace=$(grep -o '(workspace ws_[^,]*' "$server_out" | head -1 | sed 's/(workspace //')
[ -n "$setup_key" ] && [ -n "$runtime_key" ] && [ -n "$workspace" ] || { cat "$server_out"; fail "no keys or workspace printed"; }
ok "allowly serve at $url (workspace $workspace)"
"$build/plain/test_remote" "$url" "$setup_key" "$runtime_key" "$workspace" "$policy" || fail "test_remote (plain)"
"$build/asan/test_remote" "$url" "$setup_key" "$runtime_key" "$workspace" "$policy" || fail "test_remote (asan)"
"${valgrind_cmd[@]}" "$build/plain/test_remote" "$url" "$setup_key" "$runtime_key" "$workspace" "$policy" || fail "test_remote (valgrind)"
kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""

printf '\nC SDK: all tests passed\n'

if [ "${1:-}" = "--bench" ]; then
  "$root/scripts/c-bench.sh"
fi
