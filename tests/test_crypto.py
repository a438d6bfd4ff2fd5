"""Encryption at rest: everything the store keeps is ciphertext, and keys rotate."""

import base64
import json
import re

import attrs
import pytest

from durable_gen import (
    CreateCallback,
    ErrorObject,
    InMemoryEngine,
    MemoryStore,
    OperationType,
    RetryPolicy,
    Step,
    StepError,
    ValidationError,
    Wait,
)
from durable_gen._stores.encrypted import (
    DecryptionError,
    EncryptedStore,
    KeyRing,
    PayloadCipher,
)

SECRET = "card-4242-4242"


def ring(*kids, active=None):
    keys = {k: base64.b64decode(KeyRing.generate_key()) for k in kids}
    return KeyRing(active or kids[0], keys)


def charge(card):
    return {"charged": card}


def refuse(card):
    raise ValueError(f"declined {card}")


def flow(event):
    r = yield Step(charge, event["card"])
    try:
        yield Step(refuse, event["card"], retry=RetryPolicy.none())
    except StepError as e:
        r["error"] = e.error_message
    h = yield CreateCallback("confirm")
    r["confirmation"] = yield h
    yield Wait(seconds=5)
    return r


def run_encrypted(keyring):
    inner = MemoryStore()
    store = EncryptedStore(inner, PayloadCipher(keyring))
    engine = InMemoryEngine(store=store)
    r = engine.run(flow, {"card": SECRET})
    cb = next(o for o in store.load(r.execution_id).values() if o.type is OperationType.CALLBACK)
    store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload=f"ok {SECRET}")
    engine.clock.advance(1)
    return engine, inner, store, engine.resume(flow, r.execution_id)


def test_workflow_runs_and_nothing_is_stored_in_clear():
    _engine, inner, store, result = run_encrypted(ring("k1"))
    assert result.result == {
        "charged": SECRET,
        "error": f"declined {SECRET}",
        "confirmation": f"ok {SECRET}",
    }
    raw = inner._executions[result.execution_id]
    dump = json.dumps([op.to_dict() for op in raw.operations.values()]) + json.dumps(raw.events)
    dump += str(raw.result) + json.dumps([u.to_dict() for u in raw.updates])
    assert SECRET not in dump
    assert "enc1:k1:" in dump
    # the owner reads the history decrypted; error types stay readable at rest
    history = json.dumps(store.history(result.execution_id))
    assert SECRET in history
    assert '"ErrorType": "ValueError"' in json.dumps(raw.events)


def test_key_rotation_keeps_old_payloads_readable():
    k1 = ring("k1")
    inner = MemoryStore()
    engine = InMemoryEngine(store=EncryptedStore(inner, PayloadCipher(k1)))
    ex = engine.start(flow, {"card": SECRET})
    engine.invoke_once(flow, ex)  # records the first steps under k1
    rotated = KeyRing("k2", {**k1.keys, "k2": base64.b64decode(KeyRing.generate_key())})
    store2 = EncryptedStore(inner, PayloadCipher(rotated))
    engine2 = InMemoryEngine(store=store2, clock=engine.clock)
    cb = next(o for o in store2.load(ex).values() if o.type is OperationType.CALLBACK)
    store2.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload="yes")
    engine.clock.advance(5)
    assert engine2.resume(flow, ex).result["charged"] == SECRET
    kinds = {op.result.split(":")[1] for op in inner.load(ex).values() if op.result}
    assert kinds == {"k1", "k2"}  # old under k1, new under k2


def test_wrong_key_is_a_clear_error_not_garbage():
    _engine, inner, _, result = run_encrypted(ring("k1"))
    other = EncryptedStore(inner, PayloadCipher(ring("k1")))  # same id, different key
    with pytest.raises(
        DecryptionError, match=r"does not authenticate with key 'k1': the key is wrong"
    ):
        other.load(result.execution_id)
    unknown = EncryptedStore(inner, PayloadCipher(ring("k9")))
    with pytest.raises(
        DecryptionError,
        match=re.escape("was encrypted with key 'k1', which is not in the key ring (known: k9)"),
    ):
        unknown.load(result.execution_id)


def test_tampered_or_moved_ciphertext_is_refused():
    keyring = ring("k1")
    _engine, inner, store, result = run_encrypted(keyring)
    ops = inner._executions[result.execution_id].operations
    steps = [op for op in ops.values() if op.type is OperationType.STEP and op.result]
    a = steps[0]
    token = a.result
    flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    ops[a.id] = attrs.evolve(a, result=flipped)
    with pytest.raises(DecryptionError, match="altered or moved"):
        store.load(result.execution_id)
    # a valid ciphertext moved to another operation does not decrypt there either
    ops[a.id] = a
    cb = next(op for op in ops.values() if op.type is OperationType.CALLBACK)
    ops[cb.id] = attrs.evolve(cb, result=token)
    with pytest.raises(DecryptionError, match="altered or moved from another operation"):
        store.load(result.execution_id)


def test_errors_round_trip_with_type_in_clear():
    cipher = PayloadCipher(ring("k1"))
    store = EncryptedStore(MemoryStore(), cipher)
    err = ErrorObject(type="ValueError", message=SECRET, data="d", stack_trace=("f1", "f2"))
    sealed = store._seal_error("ex", "op", err)
    assert sealed.type == "ValueError"
    assert SECRET not in str(sealed)
    assert store._open_error("ex", "op", sealed) == err


def test_keyring_sources(tmp_path, monkeypatch):
    key = KeyRing.generate_key()
    monkeypatch.setenv("DURABLE_GEN_KEYS", f"new:{key},old:{key}")
    kr = KeyRing.from_env()
    assert kr.active == "new"
    assert set(kr.keys) == {"new", "old"}
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"active": "a", "keys": {"a": key}}))
    assert KeyRing.from_file(f).active == "a"
    monkeypatch.delenv("DURABLE_GEN_KEYS")
    with pytest.raises(ValidationError, match=r"^\$DURABLE_GEN_KEYS is not set"):
        KeyRing.from_env()
    with pytest.raises(ValidationError, match="is 3 bytes; AES-256-GCM needs 32"):
        KeyRing("a", {"a": b"abc"})
    f.write_text("{}")
    with pytest.raises(ValidationError, match="cannot read the key file"):
        KeyRing.from_file(f)
