"""The synchronous client against `allowly serve`, with a fail-open fallback for one action.

Run: python examples/remote_sync.py BASE_URL RUNTIME_KEY AUTHORIZATION_ID
"""

from __future__ import annotations

import sys

from allowly import AllowlyAPIError
from allowly.sync import Allowly


def main(base_url: str, runtime_key: str, authorization_id: str) -> int:
    with Allowly(
        runtime_key,
        base_url=base_url,
        check_timeout_ms=500,
        fallback_by_action={"web.search": "fail_open"},
    ) as allowly:
        try:
            check = allowly.check(
                authorization_id=authorization_id,
                scopes=["email.send", "web.search"],  # the seed's name for `actions`
                context={"recipient_domain": "example.com"},
            )
        except AllowlyAPIError as exc:
            print(f"refused: HTTP {exc.status} {exc.code}: {exc.message}")
            return 1
        for action, result in check.results.items():
            marker = " (local fallback, no receipt)" if result.is_fallback else ""
            print(f"{action}: {result.decision} {result.reason}{marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
