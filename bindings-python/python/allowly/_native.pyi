"""Type stubs of the native module (PyO3). Checked against the built module by tests/test_stubs.py."""

from typing import Any, Literal, final, overload


__all__ = [
    "Engine",
    "ActionAnswer",
    "catalog",
    "before_fork",
    "after_fork_in_parent",
    "after_fork_in_child",
    "error_kind_of_status",
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
    @overload
    def call(self, op: str, args: str) -> str: ...
    @overload
    def call(self, op: str, args: dict[str, Any] | None) -> Any: ...
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
    ) -> tuple[str, str | None, str | None, str | None, str, list[tuple[str, ActionAnswer]]]: ...
    def _bench_rust_check(
        self, authorization_id: str, actions: list[str], context: dict[str, Any] | None, calls: int
    ) -> list[float]: ...
    def engine_version(self) -> str | None: ...
    def workspace_id(self) -> str | None: ...
    def readiness(self) -> bool: ...

def catalog() -> str: ...
def before_fork() -> None: ...
def after_fork_in_parent() -> None: ...
def after_fork_in_child() -> None: ...
def error_kind_of_status(status: int) -> str: ...

@final
class ActionAnswer:
    def __new__(cls, result: dict[str, Any]) -> ActionAnswer: ...
    def __reduce__(self) -> tuple[type[ActionAnswer], tuple[dict[str, Any]]]: ...
    @property
    def decision(self) -> Literal["allow", "deny", "confirm", "escalate"]: ...
    @property
    def reason(self) -> str: ...
    @property
    def is_fallback(self) -> bool: ...
    @property
    def fallback_mode(self) -> Literal["fail_open", "fail_closed"] | None: ...
    @property
    def receipt(self) -> dict[str, Any] | None: ...
    @property
    def budget(self) -> dict[str, Any] | None: ...
    @property
    def escalation(self) -> dict[str, Any] | None: ...
    @property
    def policy_eval(self) -> dict[str, Any] | None: ...
    @property
    def confirm_nonce(self) -> str | None: ...
    @property
    def confirm_expires_at(self) -> str | None: ...
    @property
    def confirm_prompt_hint(self) -> str | None: ...
    @property
    def confirmation_id(self) -> str | None: ...
    @property
    def escalation_id(self) -> str | None: ...
    @property
    def escalation_to(self) -> str | None: ...
    @property
    def escalation_expires_at(self) -> str | None: ...
    @property
    def superseded_by(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

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
