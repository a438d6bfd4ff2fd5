"""The durable-gen command: results on stdout, one-line errors, exit codes."""

import json

import pytest

from durable_gen._cli.main import main

WF = """
from durable_gen import Step

def double(x):
    return x * 2

def flow(event):
    return (yield Step(double, event["n"]))

def failing(event):
    yield Step(double, 1)
    raise ValueError("nope")

def plain(event):
    return 1
"""


@pytest.fixture(autouse=True)
def _own_database(tmp_path, monkeypatch):
    """Each test runs on its own SQLite database, not the user's default one."""
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "cli.db"))


@pytest.fixture
def wf_file(tmp_path):
    p = tmp_path / "wf.py"
    p.write_text(WF)
    return p


def test_run_prints_json_result(wf_file, capsys):
    assert main(["run", f"{wf_file}:flow", "--input", '{"n": 21}', "--virtual-time"]) == 0
    assert json.loads(capsys.readouterr().out) == 42


def test_input_file(wf_file, tmp_path, capsys):
    inp = tmp_path / "in.json"
    inp.write_text('{"n": 2}')
    assert main(["run", f"{wf_file}:flow", "--input-file", str(inp)]) == 0
    assert json.loads(capsys.readouterr().out) == 4


def test_failed_execution_exits_1_with_error_on_stderr(wf_file, capsys):
    assert main(["run", f"{wf_file}:failing", "--id", "f1"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        "durable-gen: execution f1 started\n"
        "durable-gen: execution f1 failed: ValueError: nope "
        "(durable-gen show f1 has the stack trace)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "nocolon"],
            "target 'nocolon' must look like package.module:function or path/to/file.py:function",
        ),
        (["run", "missing/file.py:flow"], "no such file: missing/file.py"),
        (
            ["run", "no_such_module_xyz:flow"],
            "cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        (["run", "{wf}:nothere"], "module '{wf}' has no attribute 'nothere'"),
        (
            ["run", "{wf}:plain"],
            "target '{wf}:plain' must be a generator function (a def whose "
            "body yields operations), got 'plain', which does not yield; "
            "add a yield, or run it as a Step",
        ),
        (
            ["run", "{wf}:flow", "--input", "{bad"],
            "--input is not valid JSON (Expecting "
            "property name enclosed in double quotes at "
            "position 1)",
        ),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(wf_file, capsys, args, message):
    args = [a.replace("{wf}", str(wf_file)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "durable-gen: " + message.replace("{wf}", str(wf_file)) + "\n"
