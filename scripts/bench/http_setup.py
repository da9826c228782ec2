"""Helpers of scripts/bench.sh for the `allowly serve` figures (standard library only).

  http_setup.py authorizations BASE SETUP_KEY NAME COUNT OUT [BUDGET_MICROS]
      publishes policy NAME (one allowed action, `api.call`, no caps), creates COUNT authorizations
      from it through the API (with a budget limit when BUDGET_MICROS is given), writes their ids to
      OUT one a line, and checks the first once: it must be allowed, or the run would measure denials.
  http_setup.py denials BASE SETUP_KEY
      exits 1 (printing one) when any `api.call` check was denied: an unknown id or a spent budget is
      a signed `deny` with HTTP 200, which wrk does not count as an error.
  http_setup.py store-bytes DATABASE
      prints JSON: receipts, the bytes of the receipts table and its indexes (dbstat page sizes), and
      the whole file after a WAL checkpoint.
"""
from __future__ import annotations

import http.client
import json
import os
import sqlite3
import sys
import urllib.parse


class Client:
    """One kept-alive connection: creating 1,000 authorizations one connection each is slow."""

    def __init__(self, base: str, key: str):
        url = urllib.parse.urlsplit(base)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        self.key = key

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}

    def expect(self, status: int, method: str, path: str, body: dict | None = None) -> dict:
        got, answer = self.call(method, path, body)
        if got != status:
            raise SystemExit(f"{method} {path}: HTTP {got}: {json.dumps(answer)[:500]}")
        return answer


def open_policy(name: str) -> dict:
    return {
        "policy_id": name, "profile": "allowly.policy.v1", "agent_id": "bench_agent", "default_expiry_days": 30,
        "actions": [{"policy": {"profile": "allowly.basic.v1", "action": "api.call", "decision": "allow",
                                "target": None, "fields": {}, "rules": []},
                     "guards": {}, "executable_operations": []}],
    }


def authorizations(base: str, setup_key: str, name: str, count: int, out: str, budget: int | None) -> None:
    client = Client(base, setup_key)
    version = client.expect(201, "POST", "/v1/policies", open_policy(name))["policy_ref"]["policy_version"]
    ids = []
    for n in range(count):
        created = client.expect(201, "POST", "/v1/authorizations", {
            "user_id": f"bench_user_{n}", "policy_id": name, "policy_version": version,
            "budget_limit_micros": budget})
        ids.append(created["authorization_id"])
    with open(out, "w") as file:
        file.write("".join(f"{i}\n" for i in ids))
    check = {"authorization_id": ids[0], "actions": ["api.call"], "context": {"channel": "bench-setup"},
             "estimated_cost_micros": 1 if budget else None}
    decision = client.expect(200, "POST", "/v1/check", check)["results"]["api.call"]["decision"]
    if decision != "allow":
        raise SystemExit(f"the setup check was `{decision}`, not `allow`")


def denials(base: str, setup_key: str) -> None:
    page = Client(base, setup_key).expect(200, "GET", "/v1/receipts?action=api.call&decision=deny&limit=1")
    if page["items"]:
        print(json.dumps(page["items"][0])[:500])
        sys.exit(1)


def store_bytes(database: str) -> None:
    db = sqlite3.connect(database)
    # Folds the WAL into the main file, so the file size is the store's size.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    receipts = db.execute("SELECT count(*) FROM receipts").fetchone()[0]
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'receipts'")]
    try:
        table_and_indexes = sum(db.execute(
            f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ({','.join('?' * len(names))})",
            names).fetchone()[0:1])
    except sqlite3.OperationalError:  # a Python whose SQLite was built without dbstat
        table_and_indexes = None
    wal = database + "-wal"
    whole = os.path.getsize(database) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
    print(json.dumps({"receipts": receipts, "receipts_and_indexes_bytes": table_and_indexes, "file_bytes": whole,
                      "objects": names}))


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "authorizations":
        authorizations(args[0], args[1], args[2], int(args[3]), args[4], int(args[5]) if len(args) > 5 else None)
    elif command == "denials":
        denials(args[0], args[1])
    elif command == "store-bytes":
        store_bytes(args[0])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
