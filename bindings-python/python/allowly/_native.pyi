"""Type stubs of the native module (PyO3). Checked against the built module by tests/test_stubs.py."""

from typing import Any, final


__all__ = [
    "Engine",
    "decode_receipt",
    "load_keys_from_json",
    "verify_checkpoint",
    "verify_export",
    "verify_receipt",
    "verify_receipts",
    "KeySet",
    "__version__",
    "ENGINE_VERSION",
]

__version__: str
ENGINE_VERSION: str

@final
class Engine:
    @staticmethod
    def embedded(home: str) -> Engine: ...
    @staticmethod
    def in_memory() -> Engine: ...
    @staticmethod
    def remote(
        base_url: str,
        api_key: str,
        check_timeout_ms: int,
        request_timeout_ms: int,
        fallback_by_action: dict[str, str],
        workspace_id: str | None,
        allow_insecure_http: bool,
    ) -> Engine: ...
    @property
    def is_remote(self) -> bool: ...
    def check(
        self,
        authorization_id: str,
        actions: list[str],
        resource: str | None = None,
        session_id: str | None = None,
        estimated_cost_micros: int | None = None,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        client_timestamp: str | None = None,
    ) -> dict[str, Any]: ...
    def _bench_rust_check(
        self, authorization_id: str, actions: list[str], context: dict[str, Any] | None, calls: int
    ) -> list[float]: ...
    def create_policy(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def get_policy(self, policy_id: str) -> dict[str, Any]: ...
    def list_policies(self, limit: int, cursor: str | None = None) -> dict[str, Any]: ...
    def archive_policy(self, policy_id: str) -> None: ...
    def preview_policy(
        self, definition: dict[str, Any] | None, action: str, context: dict[str, Any] | None
    ) -> dict[str, Any]: ...
    def create_authorization(
        self,
        user_id: str,
        policy_id: str,
        policy_version: int | None = None,
        actions: list[str] | None = None,
        expires_at: str | None = None,
        budget_limit_micros: int | None = None,
        metadata: dict[str, Any] | None = None,
        replaces: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]: ...
    def revoke_authorization(
        self, authorization_id: str, revoked_by: str | None = None, notes: str | None = None
    ) -> dict[str, Any]: ...
    def list_authorizations(self, limit: int, cursor: str | None = None) -> dict[str, Any]: ...
    def get_authorization(self, authorization_id: str) -> dict[str, Any]: ...
    def resolve_confirmation(self, nonce: str, approved: bool, ttl_seconds: int | None = None) -> dict[str, Any]: ...
    def confirmation_status(self, confirmation_id: str) -> dict[str, Any]: ...
    def resolve_escalation(
        self, escalation_id: str, resolution: str, resolved_by: str, note: str | None = None
    ) -> dict[str, Any]: ...
    def escalation_status(self, escalation_id: str) -> dict[str, Any]: ...
    def settle_budget(
        self, check_receipt_id: str, actual_cost_micros: int, idempotency_key: str | None = None
    ) -> dict[str, Any]: ...
    def receipt(self, receipt_id: str) -> dict[str, Any]: ...
    def key_document(self) -> dict[str, Any]: ...
    def engine_version(self) -> str | None: ...
    def workspace_id(self) -> str | None: ...
    def readiness(self) -> bool: ...

@final
class KeySet:
    @property
    def workspace_id(self) -> str: ...
    @property
    def fingerprints(self) -> list[str]: ...
    @property
    def key_ids(self) -> list[str]: ...
    def __len__(self) -> int: ...

def load_keys_from_json(doc: Any) -> KeySet: ...
def decode_receipt(receipt: Any) -> dict[str, Any]: ...
def verify_receipt(
    receipt: Any,
    keys: KeySet,
    expected_workspace_id: str,
    trusted_key_fingerprints: list[str] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]: ...
def verify_receipts(
    receipts: Any,
    keys: KeySet,
    expected_workspace_id: str,
    trusted_key_fingerprints: list[str] | None = None,
    now_ms: int | None = None,
) -> list[Any]: ...
def verify_checkpoint(
    checkpoint: Any,
    receipts: Any,
    keys: KeySet,
    expected_workspace_id: str,
    previous_checkpoint: Any | None = None,
    trusted_key_fingerprints: list[str] | None = None,
    now_ms: int | None = None,
) -> None: ...
def verify_export(
    export_path: str,
    keys: KeySet,
    expected_workspace_id: str,
    checkpoint_evidence_path: str | None = None,
    trusted_key_fingerprints: list[str] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]: ...
