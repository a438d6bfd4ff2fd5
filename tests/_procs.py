"""Helpers for tests that start real ``durable-gen`` processes (``python -m durable_gen``).

Every wait here is bounded: a process that hangs fails the test with a message
(and is killed) instead of hanging the run.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.response import StreamingBody

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout importable (``tests.*`` too)."""
    env = dict(os.environ)
    env.pop("DURABLE_GEN_DB", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *sys.path])
    env.update(extra)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "durable_gen", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``durable-gen ARGS`` to its end (at most ``timeout`` seconds, else fail)."""
    try:
        return subprocess.run(
            cli(*args),
            env=env if env is not None else cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`durable-gen {' '.join(args)}` did not end in {timeout} s") from e


def spawn(
    args: Sequence[str], log_dir: Path, name: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running process; its stdout and stderr go to ``log_dir/name.{out,err}``
    (files, not pipes: a chatty process can never block on a full pipe)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / f"{name}.out", "wb") as out,
        open(log_dir / f"{name}.err", "wb") as err,
    ):
        return subprocess.Popen(
            list(args), env=env if env is not None else cli_env(), stdout=out, stderr=err
        )


def read_log(log_dir: Path, name: str, stream: str = "err") -> str:
    path = log_dir / f"{name}.{stream}"
    return path.read_text(errors="replace") if path.exists() else ""


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Send ``sig`` and wait for the exit status (killed and failed after ``timeout`` s)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        raise AssertionError(
            f"pid {proc.pid} did not exit within {timeout} s of signal {sig}"
        ) from None


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL (if still running) and reap: never leaves a zombie behind."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Wait until ``proc`` accepts connections on 127.0.0.1:``port`` (fail if it exits)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}) before listening")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")
        time.sleep(0.05)


#: boto3 clients the tests made, closed after each test (tests/conftest.py): a client
#: left open has its sockets closed by the garbage collector during some later test,
#: which then fails with an unraisable ResourceWarning that is not its own.
OPEN_CLIENTS: list[Any] = []


def _read_payload(parsed: dict[str, Any], **_: Any) -> None:
    body = parsed.get("Payload")
    if isinstance(body, StreamingBody):
        data = body.read()
        body.close()
        parsed["Payload"] = StreamingBody(io.BytesIO(data), len(data))


def read_payloads(client: Any) -> Any:
    """Make ``client`` read each Invoke response's body at once, so that a test that
    ignores the body does not hold the response's socket open until the garbage
    collector closes it during some later test (an unraisable ResourceWarning)."""
    client.meta.events.register("after-call.lambda.Invoke", _read_payload)
    return client


def keep(client: Any) -> Any:
    """Close ``client`` when the current test ends (and read its Invoke bodies)."""
    OPEN_CLIENTS.append(client)
    return read_payloads(client)


def close_clients() -> None:
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


def lambda_client(port: int, **config: Any) -> Any:
    """boto3's lambda client against ``durable-gen serve`` on 127.0.0.1:``port``.

    No retries unless ``config`` asks for them: a failed request is the server's.
    """
    config.setdefault("retries", {"max_attempts": 1})
    return keep(
        boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-west-2",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(**config),
        )
    )


def serve_args(db: Path, port: int, functions: dict[str, str]) -> list[str]:
    args = cli("serve", "--port", str(port), "--db", str(db))
    for name, target in functions.items():
        args += ["--function", f"{name}={target}"]
    return args
