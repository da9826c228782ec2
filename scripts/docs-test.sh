#!/usr/bin/env bash
# Runs the HTTP examples of docs/http-api.md against a real `allowly serve`, so the reference cannot
# drift from the server.
#
# Every ```sh block of docs/http-api.md (except one right after `<!-- docs-test: skip -->`) runs, in
# order, in one bash script that shares its variables ($ALLOWLY_URL, $SETUP_KEY, $RUNTIME_KEY,
# $WORKSPACE_ID and whatever an example captures), from a scratch directory holding a copy of
# examples/. A block that calls curl must call it exactly once and be followed by an ```http block:
# the documented answer. The answer that came back must match it:
#   - the status line's code;
#   - every documented header, with its value;
#   - a JSON body: the same members at every level (none missing, none extra), the same JSON types,
#     the same array lengths, and equal values (array items in the documented order, or in another
#     when all of them match that way), except that `…` in a documented string stands for
#     any text, a documented timestamp for any timestamp, and `message` members are only typed;
#   - a text body (metrics): every documented metric name;
#   - no body for a 204.
# A success example must use `curl -sS --fail-with-body`; an error example must not. Every route of
# the router (server/src/api.rs) must have answered some example with a 2xx, and every error code the
# server can answer with must be named in the document.
#
# In docs/policy-format.md, the blocks marked `<!-- docs-test: publish -->` are published (201), a
# `stored` block is what the server stores for the publish block before it, a `rejected` block gets
# the 422 documented in the next JSON block, and the rows of a `preview <policy> <action>` table get
# the decision and matched rule shown. Last, no link of docs/ or README.md may leave the repository
# or point to nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The examples run against the server started here, never against one named by the environment.
unset ALLOWLY_DATABASE_URL ALLOWLY_URL ALLOWLY_API_KEY ALLOWLY_HOME SETUP_KEY RUNTIME_KEY WORKSPACE_ID

fail() { echo "FAIL  $*" >&2; exit 1; }

missing=()
for tool in curl jq python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    fail "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
  fi
fi

cargo build --release --locked --quiet --bin allowly
allowly="$root/target/release/allowly"
doc="docs/http-api.md"
[ -f "$doc" ] || fail "$doc is missing"

started=$(date +%s)
work=$(mktemp -d /tmp/allowly-docs-test.XXXXXX)
server_pid=""
examples_pid=""
cleanup() {
  if [ -n "$examples_pid" ]; then kill -TERM "$examples_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh workspace: its first start prints the setup and runtime keys once.
"$allowly" --home "$work/home" serve --listen 127.0.0.1:0 --checkpoint-interval 0 \
  >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/serve.out" 2>/dev/null | head -1 | sed 's/listening on //' || true)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve.log" >&2; fail "allowly serve did not start"; }
setup_key=$(grep -o 'allowly\.setup\.[^ ]*' "$work/serve.out" | head -1 || true)
runtime_key=$(grep -o 'allowly\.runtime\.[^ ]*' "$work/serve.out" | head -1 || true)
[ -n "$setup_key" ] && [ -n "$runtime_key" ] || fail "the first start printed no keys"

mkdir -p "$work/run/responses" "$work/expected"
cp -r examples "$work/run/examples"

# The checker: extracts the examples into run.sh, and compares one answer with its documentation.
cat >"$work/doccheck.py" <<'PY'
import json, re, sys
from pathlib import Path

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = "<!-- docs-test: skip -->"


def blocks(text):
    """(language, first line number, body, skipped) of every fenced block, in order."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            sys.exit(f"FAIL  unclosed code block at line {i + 1}")
        skipped = i > 0 and lines[i - 1].strip() == SKIP
        out.append((m.group(1), i + 1, "\n".join(lines[i + 1 : j]), skipped))
        i = j + 1
    return out


def extract(doc, work):
    """Writes run.sh (the examples, each followed by a check) and the expected answers."""
    found = blocks(Path(doc).read_text(encoding="utf-8"))
    script = [Path(work, "prelude.sh").read_text(encoding="utf-8")]
    runnable = 0
    for n, (lang, line, body, skipped) in enumerate(found):
        if lang != "sh" or skipped:
            continue
        runnable += 1
        where = f"{doc}:{line}"
        calls = len(re.findall(r"(?<![\w-])curl\s", body))
        for flag in ("-o", "--output", "-D", "--dump-header", "-w", "--write-out"):
            if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body):
                sys.exit(f"FAIL  {where}: examples may not use curl's {flag} (the checker uses it)")
        script.append(f"\n# ---- {where}\n__begin {json.dumps(where)}\n{body}\n")
        if calls == 0:
            continue
        if calls != 1:
            sys.exit(f"FAIL  {where}: an example calls curl exactly once ({calls} calls)")
        nxt = found[n + 1] if n + 1 < len(found) else None
        if nxt is None or nxt[0] != "http":
            sys.exit(f"FAIL  {where}: an example must be followed by an ```http block with its answer")
        expected = Path(work, "expected", f"{line}.http")
        expected.write_text(nxt[2], encoding="utf-8")
        status = documented(nxt[2], f"{doc}:{nxt[1]}")[0]
        fails = "--fail-with-body" in body
        if status < 400 and not fails:
            sys.exit(f"FAIL  {where}: a success example uses `curl -sS --fail-with-body`")
        if status >= 400 and fails:
            sys.exit(f"FAIL  {where}: an error example must not use --fail-with-body")
        script.append(f"__check {json.dumps(where)} {json.dumps(str(expected))} {nxt[1]}\n")
    if runnable == 0:
        sys.exit(f"FAIL  {doc} has no runnable example")
    Path(work, "run.sh").write_text("".join(script), encoding="utf-8")


def documented(text, where):
    """(status, {header: value}, body text) of an ```http block."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    m = re.match(r"HTTP/1\.1 (\d{3})( .*)?$", lines[0])
    if not m:
        sys.exit(f"FAIL  {where}: an answer starts with `HTTP/1.1 <status> <reason>`")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            sys.exit(f"FAIL  {where}: `{line}` is not a header")
        headers[name.strip().lower()] = value.strip()
    return int(m.group(1)), headers, body.strip()


def pattern_match(expected, actual):
    if "…" in expected:
        parts = [re.escape(p) for p in expected.split("…")]
        return re.fullmatch("(?s)" + ".*".join(parts), actual) is not None
    if TIMESTAMP.fullmatch(expected):
        return TIMESTAMP.fullmatch(actual) is not None
    return expected == actual


def kind(value):
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def compare(expected, actual, path, errors, key=None):
    if kind(expected) != kind(actual):
        errors.append(f"{path}: documented {kind(expected)} {json.dumps(expected)[:60]}, got {kind(actual)} {json.dumps(actual)[:60]}")
        return
    if isinstance(expected, dict):
        for name in expected:
            if name not in actual:
                errors.append(f"{path}.{name}: documented, missing from the answer")
        for name in actual:
            if name not in expected:
                errors.append(f"{path}.{name}: in the answer, not documented")
        for name in expected:
            if name in actual:
                compare(expected[name], actual[name], f"{path}.{name}", errors, name)
    elif isinstance(expected, list):
        if len(expected) != len(actual):
            errors.append(f"{path}: documented {len(expected)} items, got {len(actual)}")
        mismatched = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            compare(e, a, f"{path}[{i}]", mismatched)
        if mismatched and not same_items(expected, actual):
            errors.extend(mismatched)
    elif isinstance(expected, str):
        if key != "message" and not pattern_match(expected, actual):
            errors.append(f"{path}: documented {json.dumps(expected)}, got {json.dumps(actual)}")
    elif expected != actual:
        errors.append(f"{path}: documented {json.dumps(expected)}, got {json.dumps(actual)}")


def same_items(expected, actual):
    """Whether the items match in some order (items created in the same millisecond, such as the
    two first API keys, have ids whose order is random)."""
    unused = list(actual)
    for e in expected:
        match = next((a for a in unused if not compare_errors(e, a)), None)
        if match is None:
            return False
        unused.remove(match)
    return len(expected) == len(actual)


def compare_errors(expected, actual):
    errors = []
    compare(expected, actual, "", errors)
    return errors


def check(where, expected_file, answer_line, responses):
    doc_where = f"{where.split(':')[0]}:{answer_line}"
    count = int(Path(responses, "count").read_text())
    if count != 1:
        sys.exit(f"FAIL  {where}: the example made {count} requests, expected 1")
    status, headers, body = documented(Path(expected_file).read_text(encoding="utf-8"), doc_where)
    base = Path(responses, "1")
    got_status = int(Path(f"{base}.status").read_text().strip() or 0)
    got_body = Path(f"{base}.body").read_bytes().decode("utf-8") if Path(f"{base}.body").exists() else ""
    got_headers = {}
    for line in Path(f"{base}.headers").read_text(encoding="latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            got_headers[name.strip().lower()] = value.strip()
    errors = []
    if got_status != status:
        errors.append(f"status: documented {status}, got {got_status}")
    for name, value in headers.items():
        if name not in got_headers:
            errors.append(f"header {name}: documented, missing from the answer")
        elif not pattern_match(value, got_headers[name]):
            errors.append(f"header {name}: documented `{value}`, got `{got_headers[name]}`")
    if status == 204 or not body:
        if got_body.strip():
            errors.append("body: documented none, got one")
    elif body[0] in "{[":
        try:
            want = json.loads(body)
        except json.JSONDecodeError as err:
            sys.exit(f"FAIL  {doc_where}: the documented body is not JSON: {err}")
        try:
            got = json.loads(got_body)
        except json.JSONDecodeError:
            errors.append(f"body: not JSON: {got_body[:200]!r}")
        else:
            compare(want, got, "body", errors)
            if status >= 400 and not (isinstance(want, dict) and isinstance(want.get("error"), dict) and "code" in want["error"]):
                sys.exit(f"FAIL  {doc_where}: an error answer documents its `error.code`")
    else:
        names = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in got_body.splitlines() if line and not line.startswith("#")}
        for line in body.splitlines():
            if line and not line.startswith("#") and "…" not in line:
                name = re.split(r"[{ ]", line, maxsplit=1)[0]
                if name not in names:
                    errors.append(f"metric {name}: documented, missing from the answer")
    if errors:
        print(f"FAIL  {where}: the answer does not match its documentation ({doc_where})", file=sys.stderr)
        for error in errors:
            print(f"        {error}", file=sys.stderr)
        print(f"      the answer was: HTTP {got_status} {got_body[:2000]}", file=sys.stderr)
        sys.exit(1)


def routes(api_rs):
    """(method, path template) of every route of the router."""
    out = []
    for path, handlers in re.findall(r'\.route\(\s*"([^"]+)",\s*([^\n]*)', Path(api_rs).read_text(encoding="utf-8")):
        for method in re.findall(r"\b(get|post|delete|put|patch)\(", handlers):
            out.append((method.upper(), path))
    if not out:
        sys.exit(f"FAIL  no routes found in {api_rs}")
    return out


def coverage(api_rs, called_file):
    called = [line.split(" ", 2) for line in Path(called_file).read_text().splitlines() if line]
    missing = []
    for method, template in routes(api_rs):
        regex = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/?]+", re.escape(template)) + r"(\?.*)?$")
        if not any(m == method and s.startswith("2") and regex.match(path) for m, s, path in called):
            missing.append(f"{method} {template}")
    if missing:
        sys.exit("FAIL  routes of the server without an example in the docs: " + ", ".join(missing))


def codes(root, doc):
    """Every error code the server can answer with must be named in the document."""
    found = {"invalid_request", "store_unavailable", "signing_failed", "io_error"}
    for path in list(Path(root, "core/src").rglob("*.rs")) + list(Path(root, "server/src").rglob("*.rs")):
        if path.name == "remote.rs":
            continue  # the remote client's own codes (timeout, unreachable) never come from a server
        if "console" in path.relative_to(root).parts:
            continue  # the console answers pages: its refusals are shown, never sent as a code
        text = path.read_text(encoding="utf-8")
        text = text.split("#[cfg(test)]")[0]
        found.update(re.findall(r'Error::not_found\(\s*"([a-z_]+)"', text))
        found.update(re.findall(r'Error::conflict\(\s*"([a-z_]+)"', text))
        found.update(re.findall(r'Error::(?:NotFound|Conflict|Unauthorized)\s*\{\s*code:\s*"([a-z_]+)"', text))
        found.update(re.findall(r'ApiError::new\(\s*StatusCode::\w+,\s*"([a-z_]+)"', text))
        found.update(re.findall(r'ApiError::new\(\s*status,\s*"([a-z_]+)"', text))
    named = set(re.findall(r"`([a-z_]+)`", Path(doc).read_text(encoding="utf-8")))
    missing = sorted(found - named)
    if missing:
        sys.exit(f"FAIL  error codes the server can answer with that {doc} does not name: " + ", ".join(missing))


def request(url, key, path, body):
    """POSTs JSON; (status, parsed answer)."""
    import urllib.error, urllib.request
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def policies(doc, url, key):
    """The marked examples of the policy format: published, stored, rejected and previewed as shown.
    Every `publish` example is published first, in order; the others are then checked against them."""
    lines = Path(doc).read_text(encoding="utf-8").split("\n")
    fenced = {line: body for lang, line, body, _ in blocks("\n".join(lines)) if lang == "json"}
    markers = []
    for i, text in enumerate(lines):
        m = re.fullmatch(r"<!-- docs-test: (publish|stored|rejected|preview)(.*) -->", text.strip())
        if m:
            markers.append((i + 1, m.group(1), m.group(2).split()))
    if not markers:
        sys.exit(f"FAIL  {doc} has no marked example")

    def fail(line, message):
        sys.exit(f"FAIL  {doc}:{line}: {message}")

    def block_after(line):
        if line + 1 not in fenced:
            fail(line, "the marker must be right above a ```json block")
        try:
            return json.loads(fenced[line + 1])
        except json.JSONDecodeError as err:
            fail(line + 1, f"the example is not JSON: {err}")

    published, by_policy = {}, {}
    for line, marker, _ in markers:
        if marker == "publish":
            body = block_after(line)
            status, answer = request(url, key, "/v1/policies", body)
            if status != 201:
                fail(line + 1, f"publishing the example answered {status}: {json.dumps(answer)[:500]}")
            published[line] = by_policy[body["policy_id"]] = answer["definition"]
    for line, marker, args in markers:
        if marker == "stored":
            earlier = [n for n in published if n < line]
            if not earlier:
                fail(line, "a `stored` example follows a `publish` example")
            if block_after(line) != published[max(earlier)]:
                fail(line + 1, f"the server stores {json.dumps(published[max(earlier)])}")
        elif marker == "rejected":
            status, answer = request(url, key, "/v1/policies", block_after(line))
            following = sorted(n for n in fenced if n > line + 1)
            if not following:
                fail(line, "a ```json block with the error must follow")
            errors = []
            if status != 422:
                errors.append(f"status: documented 422, got {status}")
            compare(json.loads(fenced[following[0]]), answer, "body", errors)
            if errors:
                fail(following[0], "the error does not match its documentation:\n        " + "\n        ".join(errors)
                     + f"\n      the answer was: {json.dumps(answer)[:3000]}")
        elif marker == "preview":
            policy_id, action = args
            if policy_id not in by_policy:
                fail(line, f"`{policy_id}` is not published by a `publish` example")
            rows = []
            for row in lines[line:]:
                if not row.startswith("|"):
                    break
                rows.append(row)
            if len(rows) < 3:
                fail(line, "a `preview` marker is right above a table of contexts and decisions")
            for n, row in enumerate(rows[2:], start=line + 3):
                cells = [cell.strip().strip("`") for cell in row.strip().strip("|").split("|")]
                context, decision, rule = json.loads(cells[0]), cells[1], json.loads(cells[2])
                status, answer = request(url, key, "/v1/setup/policies/preview",
                                         {"definition": by_policy[policy_id], "action": action, "context": context})
                result = answer.get("policy_eval", {}).get("result", {}) if status == 200 else {}
                if status != 200 or (result.get("decision"), result.get("matched_rule_id")) != (decision, rule):
                    fail(n, f"the preview answered {status}: {json.dumps(answer)[:500]}")
    print(f"ok    {doc}: {len(markers)} marked examples")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "extract":
        extract(sys.argv[2], sys.argv[3])
    elif command == "check":
        check(*sys.argv[2:6])
    elif command == "coverage":
        coverage(sys.argv[2], sys.argv[3])
    elif command == "codes":
        codes(sys.argv[2], sys.argv[3])
    elif command == "policies":
        policies(sys.argv[2], sys.argv[3], sys.argv[4])
PY

# What every example runs after: the shared variables, and curl recording each answer for the checker.
cat >"$work/prelude.sh" <<PRELUDE
set -euo pipefail
export ALLOWLY_URL='$url' SETUP_KEY='$setup_key' RUNTIME_KEY='$runtime_key'
__work='$work'
PRELUDE
cat >>"$work/prelude.sh" <<'PRELUDE'
__responses="$__work/run/responses"
__where=""
echo 0 >"$__responses/count"
curl() {
  local n rc=0
  n=$(($(cat "$__responses/count") + 1))
  echo "$n" >"$__responses/count"
  : >"$__responses/$n.body"
  command curl -D "$__responses/$n.headers" -o "$__responses/$n.body" \
    -w '%{http_code}\n%{method} %{http_code} %{url_effective}\n' "$@" >"$__responses/$n.meta" || rc=$?
  head -1 "$__responses/$n.meta" >"$__responses/$n.status"
  sed -n 2p "$__responses/$n.meta" | sed "s#\(^[A-Z]* [0-9]* \)$ALLOWLY_URL#\1#" >>"$__work/called.txt"
  cat "$__responses/$n.body"
  return "$rc"
}
__begin() {
  __where=$1
  rm -f "$__responses"/[0-9]*
  echo 0 >"$__responses/count"
}
__check() {
  python3 "$__work/doccheck.py" check "$1" "$2" "$3" "$__responses"
  echo "ok    $1" >&3
}
# What the examples print goes to a log; the checks report on the original stdout.
exec 3>&1 >"$__work/examples.out"
trap 'rc=$?; [ $rc = 0 ] || echo "FAIL  $__where: the example exited with status $rc" >&2' EXIT
PRELUDE
touch "$work/called.txt"

python3 "$work/doccheck.py" extract "$doc" "$work"
echo "==> the examples of $doc against allowly serve at $url"
# In the background, so that a signal stops the test at once (bash runs traps only between commands).
(cd "$work/run" && exec bash "$work/run.sh") &
examples_pid=$!
if ! wait "$examples_pid"; then
  echo "--- what the examples printed (tail)" >&2; tail -c 3000 "$work/examples.out" >&2; echo >&2
  echo "--- server log (tail)" >&2; tail -20 "$work/serve.log" >&2
  exit 1
fi
examples_pid=""
python3 "$work/doccheck.py" coverage server/src/api.rs "$work/called.txt"
echo "ok    every route of server/src/api.rs has an example"
python3 "$work/doccheck.py" codes "$root" "$doc"
echo "ok    every error code of the server is documented"

echo "==> the marked examples of docs/policy-format.md"
python3 "$work/doccheck.py" policies docs/policy-format.md "$url" "$setup_key"

# The docs stand alone: no link leaves the repository, and every link (and #anchor) resolves.
python3 - docs/*.md README.md <<'PY'
import re, sys
from pathlib import Path

root = Path.cwd().resolve()


def anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


for name in sys.argv[1:]:
    path = Path(name)
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web link
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path.resolve()
        if resolved != root and root not in resolved.parents:
            sys.exit(f"FAIL  {path}: the link `{target}` leaves the repository")
        if not resolved.exists():
            sys.exit(f"FAIL  {path}: the link `{target}` points to nothing")
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            sys.exit(f"FAIL  {path}: the link `{target}` names no heading of {resolved.name}")
PY
echo "ok    every link of docs/ and README.md stays in the repository and resolves"

echo "docs test: ok ($(($(date +%s) - started)) s)"
