"""Encryption at rest for checkpoint payloads: AES-256-GCM with key rotation.

A :class:`PayloadCipher` encrypts payload text into a token
``enc1:<key id>:<base64(nonce || ciphertext || tag)>`` and back. Each token is
bound (as GCM associated data) to the execution and operation it belongs to and
to the field it fills, so a ciphertext copied into another operation or another
execution does not decrypt: it fails authentication like any tampering.

Keys live in a :class:`KeyRing`: one active key (new payloads) and any number of
retired keys (old payloads stay readable). Rotate by adding a new key as active
and keeping the old one retired; :meth:`KeyRing.from_env` reads
``DURABLE_GEN_KEYS="k2:<base64 key>,k1:<base64 key>"`` (first is active),
:meth:`KeyRing.from_file` a JSON file ``{"active": "k2", "keys": {"k1": "...",
"k2": "..."}}``. Keys are 32 random bytes (``KeyRing.generate_key()``).

:class:`EncryptedStore` wraps a local store (memory or SQLite) so every payload
written -- execution input, step and context results, callback payloads, invoke
inputs and results, wait-for-condition states, error messages and data -- is
encrypted before it reaches the store, and decrypted when read back. An error's
``ErrorType`` stays readable (histories stay legible and the ErrorObject stays
valid for the service); its message, data and stack trace are encrypted.

A wrong key, an unknown key id or a tampered token raises :class:`DecryptionError`
naming the execution and operation -- never garbage.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import (
    DurableGenError,
    ErrorObject,
    StoreError,
    ValidationError,
)
from .._core.log import (
    Operation,
    OperationType,
    OperationUpdate,
)

__all__ = ["DecryptionError", "EncryptedStore", "KeyRing", "PayloadCipher"]

PREFIX = "enc1:"
_NONCE = 12


class DecryptionError(DurableGenError):
    """A payload could not be decrypted: wrong or missing key, or it was tampered with."""


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the installation
        raise ValidationError(
            "encryption needs the 'cryptography' package: pip install 'durable-gen[crypto]'"
        ) from None
    return AESGCM(key)


@attrs.frozen
class KeyRing:
    """Keys by id; ``active`` encrypts, every key decrypts."""

    active: str
    keys: Mapping[str, bytes]

    def __attrs_post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValidationError(f"the active key id {self.active!r} is not in the key ring")
        for kid, key in self.keys.items():
            if not kid or ":" in kid or not kid.isprintable():
                raise ValidationError(f"key id {kid!r} must be printable and contain no ':'")
            if len(key) != 32:
                raise ValidationError(
                    f"key {kid!r} is {len(key)} bytes; AES-256-GCM needs 32 "
                    "(make one with KeyRing.generate_key())"
                )

    @staticmethod
    def generate_key() -> str:
        """A new random key, base64-encoded (for an environment variable or key file)."""
        return base64.b64encode(secrets.token_bytes(32)).decode()

    @classmethod
    def from_env(cls, var: str = "DURABLE_GEN_KEYS") -> KeyRing:
        """Keys from ``$var``: ``"id:base64key,id:base64key"``; the first is active."""
        text = os.environ.get(var, "").strip()
        if not text:
            raise ValidationError(
                f"${var} is not set; set it to 'k1:<base64 32-byte key>' "
                "(python -c 'from durable_gen import KeyRing; print(KeyRing.generate_key())')"
            )
        keys: dict[str, bytes] = {}
        active = None
        for part in text.split(","):
            kid, sep, b64 = part.strip().partition(":")
            if not sep:
                raise ValidationError(f"${var}: entry {part.strip()[:20]!r} is not 'id:base64key'")
            keys[kid] = _b64key(b64, f"${var} key {kid!r}")
            active = active or kid
        assert active is not None
        return cls(active, keys)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Keys from a JSON file ``{"active": id, "keys": {id: base64key, ...}}``."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                str(data["active"]),
                {str(k): _b64key(v, f"key file {path} key {k!r}") for k, v in data["keys"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValidationError(
                f"cannot read the key file {path}: {e}; expected "
                '{"active": "k1", "keys": {"k1": "<base64 32-byte key>"}}'
            ) from None


def _b64key(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{what} is not valid base64") from None


class PayloadCipher:
    """AES-256-GCM encryption of payload text, bound to where it is stored."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self._aead = {kid: _aesgcm(key) for kid, key in keyring.keys.items()}

    @staticmethod
    def is_encrypted(text: str | None) -> bool:
        return text is not None and text.startswith(PREFIX)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        kid = self.keyring.active
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead[kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}{kid}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        from cryptography.exceptions import InvalidTag

        if not token.startswith(PREFIX):
            raise DecryptionError(
                f"{context}: the payload is not encrypted; it was written without a key "
                "(or by another program)"
            )
        kid, sep, b64 = token[len(PREFIX) :].partition(":")
        aead = self._aead.get(kid)
        if not sep or aead is None:
            raise DecryptionError(
                f"{context}: the payload was encrypted with key {kid!r}, which is not in the "
                f"key ring (known: {', '.join(sorted(self._aead))}); add it as a retired key"
            )
        try:
            raw = base64.b64decode(b64, validate=True)
            plain = aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(
                f"{context}: the payload does not authenticate with key {kid!r}: the key is "
                "wrong, or the stored ciphertext was altered or moved from another operation"
            ) from None
        return bytes(plain).decode()


# operations whose outcome another party writes (see EncryptedStore's outside_plaintext)
_OUTCOME_FROM_OUTSIDE = (OperationType.CALLBACK, OperationType.CHAINED_INVOKE)


def keys_from_environment() -> KeyRing | None:
    """The key ring the command line uses: ``$DURABLE_GEN_KEYS``, else the JSON file
    named by ``$DURABLE_GEN_KEY_FILE``, else None (no encryption)."""
    if os.environ.get("DURABLE_GEN_KEYS", "").strip():
        return KeyRing.from_env()
    path = os.environ.get("DURABLE_GEN_KEY_FILE", "").strip()
    if path:
        return KeyRing.from_file(path)
    return None


def _ctx(execution_id: str, op_id: str, field: str) -> str:
    return f"durable_gen/{execution_id}/{op_id}/{field}"


class EncryptedStore:
    """A local store whose payloads are encrypted at rest with ``cipher``.

    Wraps any store with the engine's interface (MemoryStore, SqliteStore, the
    Lambda shim's checkpoint API); everything not about payloads is delegated
    unchanged.

    ``outside_plaintext``: on Lambda some payloads are written by others -- the
    execution's input (the caller), callback outcomes (whoever completes them),
    chained-invoke results (the invoked function) -- and arrive unencrypted. With
    it set, exactly those fields are accepted in plain text; every payload this
    workflow checkpoints must still decrypt and authenticate.
    """

    def __init__(
        self, inner: Any, cipher: PayloadCipher, *, outside_plaintext: bool = False
    ) -> None:
        self.inner = inner
        self.cipher = cipher
        self.outside_plaintext = outside_plaintext

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def clone(self) -> EncryptedStore:
        """The inner store's clone, sealed with the same cipher."""
        return EncryptedStore(
            self.inner.clone(), self.cipher, outside_plaintext=self.outside_plaintext
        )

    def log_sink(self, execution_id: str) -> None:
        """No log records are kept: the store would keep their text unencrypted."""
        return None

    def __enter__(self) -> EncryptedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    # -- encrypting on the way in ---------------------------------------------------

    def _seal(self, execution_id: str, op_id: str, text: str | None) -> str | None:
        if text is None:
            return None
        return self.cipher.encrypt(text, context=_ctx(execution_id, op_id, "payload"))

    def _seal_error(
        self, execution_id: str, op_id: str, err: ErrorObject | None
    ) -> ErrorObject | None:
        if err is None:
            return None
        secret = json.dumps(
            {"m": err.message, "d": err.data, "s": list(err.stack_trace or ()) or None}
        )
        return ErrorObject(
            type=err.type,
            message=self.cipher.encrypt(secret, context=_ctx(execution_id, op_id, "error")),
        )

    def create(self, execution_id: str, input_payload: str, now: int, *args: Any, **kw: Any) -> Any:
        sealed = self._seal(execution_id, execution_id, input_payload)

        def same_input(stored: str) -> bool:  # sealed twice, the tokens differ: compare texts
            return self._open(execution_id, execution_id, stored) == input_payload

        return self.inner.create(execution_id, sealed, now, *args, same_input=same_input, **kw)

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        sealed = [
            attrs.evolve(
                u,
                payload=self._seal(execution_id, u.id, u.payload),
                error=self._seal_error(execution_id, u.id, u.error),
            )
            for u in updates
        ]
        delta = self.inner.checkpoint(execution_id, sealed, now, durable=durable)
        return {k: self._open_op(execution_id, op) for k, op in delta.items()}

    def finish(
        self,
        execution_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        self.inner.finish(
            execution_id,
            status,
            now,
            result=self._seal(execution_id, execution_id, result),
            error=self._seal_error(execution_id, execution_id, error),
        )

    def complete_callback(
        self,
        callback_id: str,
        action: str,
        now: int,
        *,
        payload: str | None = None,
        error: ErrorObject | None = None,
        execution_id: str | None = None,
    ) -> str:
        owner = str(self.inner.callback_execution(callback_id))
        if execution_id is not None and owner != execution_id:
            raise StoreError(
                f"no callback with id {callback_id!r:.80} in execution {execution_id!r:.80}"
            )
        execution_id = owner
        op = next(
            (o for o in self.inner.load(execution_id).values() if o.callback_id == callback_id),
            None,
        )
        op_id = op.id if op is not None else callback_id
        return str(
            self.inner.complete_callback(
                callback_id,
                action,
                now,
                payload=self._seal(execution_id, op_id, payload),
                error=self._seal_error(execution_id, op_id, error),
            )
        )

    def complete_invoke(
        self,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        self.inner.complete_invoke(
            execution_id,
            op_id,
            status,
            now,
            result=self._seal(execution_id, op_id, result),
            error=self._seal_error(execution_id, op_id, error),
        )

    # -- decrypting on the way out --------------------------------------------------

    def fork(self, execution_id: str, new_id: str, at: str, now: int, **kw: Any) -> Any:
        """The inner store's fork, with each copied payload opened under the source's
        id and sealed again under the fork's (a payload is bound to its execution)."""

        def reseal(op: Operation) -> Operation:
            op = self._open_op(execution_id, op)
            return attrs.evolve(
                op,
                result=self._seal(new_id, op.id, op.result),
                error=self._seal_error(new_id, op.id, op.error),
                # the execution's input is sealed under its own id, as create() does
                input_payload=self._seal(
                    new_id,
                    new_id if op.type is OperationType.EXECUTION else op.id,
                    op.input_payload,
                ),
            )

        return self.inner.fork(execution_id, new_id, at, now, reseal=reseal, **kw)

    def _open(self, execution_id: str, op_id: str, text: str | None) -> str | None:
        if text is None or text == "":
            return text
        return self.cipher.decrypt(text, context=_ctx(execution_id, op_id, "payload"))

    def _open_error(
        self, execution_id: str, op_id: str, err: ErrorObject | None
    ) -> ErrorObject | None:
        if err is None or not self.cipher.is_encrypted(err.message):
            return err
        assert err.message is not None
        secret = json.loads(
            self.cipher.decrypt(err.message, context=_ctx(execution_id, op_id, "error"))
        )
        stack = secret.get("s")
        return ErrorObject(
            type=err.type,
            message=secret.get("m"),
            data=secret.get("d"),
            stack_trace=tuple(stack) if stack else None,
        )

    def _open_op(self, execution_id: str, op: Operation) -> Operation:
        if op.result is None and op.error is None and op.input_payload is None:
            return op
        result, input_payload = op.result, op.input_payload
        outside = self.outside_plaintext
        if not (
            outside and op.type in _OUTCOME_FROM_OUTSIDE and not self.cipher.is_encrypted(result)
        ):
            result = self._open(execution_id, op.id, result)
        if not (
            outside
            and op.type is OperationType.EXECUTION
            and not self.cipher.is_encrypted(input_payload)
        ):
            input_payload = self._open(execution_id, op.id, input_payload)
        return attrs.evolve(
            op,
            result=result,
            error=self._open_error(execution_id, op.id, op.error),
            input_payload=input_payload,
        )

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        return {
            k: self._open_op(execution_id, op) for k, op in self.inner.load(execution_id).items()
        }

    def running_invokes(self, execution_id: str) -> list[Operation]:
        return [self._open_op(execution_id, op) for op in self.inner.running_invokes(execution_id)]

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        status, result, error = self.inner.status(execution_id)
        return (
            status,
            self._open(execution_id, execution_id, result),
            self._open_error(execution_id, execution_id, error),
        )

    def info(self, execution_id: str) -> Any:
        """The execution's row (SQLite store) with input, result and error decrypted."""
        return self._open_info(self.inner.info(execution_id))

    def executions(self, *args: Any, **kw: Any) -> list[Any]:
        return [self._open_info(i) for i in self.inner.executions(*args, **kw)]

    def _open_info(self, info: Any) -> Any:
        eid = info.id
        return attrs.evolve(
            info,
            input=self._open(eid, eid, info.input),
            result=self._open(eid, eid, info.result),
            error=self._open_error(eid, eid, info.error),
        )

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """Events with their payloads decrypted (for the execution's owner)."""
        return [self._open_event(execution_id, e) for e in self.inner.history(execution_id)]

    def _open_event(self, execution_id: str, event: Any, op_id: str | None = None) -> Any:
        if isinstance(event, dict):
            op_id = str(event.get("Id", op_id or execution_id))
            out: dict[str, Any] = {}
            for k, v in event.items():
                if k == "Payload" and isinstance(v, str) and self.cipher.is_encrypted(v):
                    out[k] = self._open(execution_id, op_id, v)
                elif k == "Payload" and isinstance(v, dict):
                    out[k] = self._open_error_dict(execution_id, op_id, v)
                else:
                    out[k] = self._open_event(execution_id, v, op_id)
            return out
        if isinstance(event, list):
            return [self._open_event(execution_id, v, op_id) for v in event]
        return event

    def _open_error_dict(self, execution_id: str, op_id: str, d: dict[str, Any]) -> dict[str, Any]:
        if not self.cipher.is_encrypted(d.get("ErrorMessage")):
            return d
        err = self._open_error(execution_id, op_id, ErrorObject.from_dict(d))
        return err.to_dict() if err is not None else d
