"""examples/lambda_order: the deployable handler runs on the emulator; its template is valid SAM."""

import json
from pathlib import Path

import pytest

from durable_gen._core.errors import AWS_SDK_EXCEPTIONS
from examples.lambda_order import app

TEMPLATE = Path(app.__file__).with_name("template.yaml")


@pytest.fixture
def handler(emulator):
    old = app.handler.client if app.handler._client is not None else None
    app.handler.client = emulator.client
    yield app.handler
    app.handler.client = old


def test_order_example_runs_on_the_emulator(emulator, handler):
    arn, ex = emulator.run(handler, {"sku": "B-42", "qty": 2})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {
        "hold": "hold-B-42-2",
        "payment": {"charged": 50},
        "tracking": "shipped:hold-B-42-2",
    }
    names = [e.get("Name") for e in emulator.history(arn) if e["EventType"].endswith("Started")]
    assert names[1:] == ["reservation", "check-stock", "reserve", "cooling-off", "charge", "ship"]


def test_order_example_refuses_too_large_an_order(emulator, handler):
    _, ex = emulator.run(handler, {"sku": "B-42", "qty": 11})
    assert ex["Status"] == "FAILED"
    assert ex["Error"]["ErrorType"] == f"{AWS_SDK_EXCEPTIONS}.ChildContextError"
    assert ex["Error"]["ErrorMessage"] == "only 10 of B-42 left"


def test_template_is_valid_sam_with_durable_config(monkeypatch):
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self):
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    template = yaml_parse(TEMPLATE.read_text())
    fn = template["Resources"]["OrderFunction"]["Properties"]
    assert fn["CodeUri"] == "build/"
    fn["CodeUri"] = "s3://bucket/key.zip"  # what `sam deploy` uploads it as
    out = transform(template, {}, NoManagedPolicies())
    resources = out["Resources"]
    function = resources["OrderFunction"]["Properties"]
    assert function["DurableConfig"] == {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 7}
    assert function["Handler"] == "app.handler"
    kinds = sorted(r["Type"] for r in resources.values())
    assert "AWS::Lambda::Alias" in kinds
    assert "AWS::Lambda::Version" in kinds
    role = resources["OrderFunctionRole"]["Properties"]
    assert (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicDurableExecutionRolePolicy"
        in role["ManagedPolicyArns"]
    )
    assert out["Outputs"]["OrderFunctionAlias"]["Value"] == {"Ref": "OrderFunctionAliaslive"}


ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = TEMPLATE.parent


def test_the_deployment_pins_cover_every_runtime_dependency_within_its_range():
    """The SAM build installs ``requirements.txt``: exact versions, one for each of
    durable_gen's runtime dependencies (a missing one would be left to whatever the
    Lambda runtime has), each inside the range setup.cfg declares."""
    import configparser

    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    declared = {
        Requirement(line).name: Requirement(line).specifier
        for line in cfg["options"]["install_requires"].split("\n")
        if line.strip()
    }
    pins = {}
    for raw in (EXAMPLE / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line!r} is not an exact pin"
            pins[req.name] = spec.version
    assert set(declared) <= set(pins), f"not pinned: {set(declared) - set(pins)}"
    for name, spec in declared.items():
        assert spec.contains(pins[name]), f"{name}=={pins[name]} is outside {spec}"
    assert "boto3" in pins  # the checkpoint API, whatever the runtime's boto3


def test_the_deploy_docs_build_from_the_pins_and_work_with_either_aws_cli():
    readme = (EXAMPLE / "README.md").read_text()
    assert "-r requirements.txt" in readme
    # an AWS CLI v2-only option would fail on v1 (and the reverse): fileb:// works on both
    assert "--cli-binary-format" not in readme.replace(
        "`--cli-binary-format raw-in-base64-out` on version 2", ""
    )
    assert "--payload fileb://event.json" in readme
    assert json.loads((EXAMPLE / "event.json").read_text()) == {"sku": "B-42", "qty": 2}
