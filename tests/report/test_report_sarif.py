"""SARIF output validated against the official SARIF 2.1.0 JSON schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_support import INCIDENT, Render

from lbguard.checks import RULES

SCHEMA = Path(__file__).parent.parent / "data" / "sarif" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_incident_sarif_is_valid(
    render: Render, validator: jsonschema.protocols.Validator
) -> None:
    path = render(
        INCIDENT / "haproxy-bad.cfg", "sarif", "--traffic", str(INCIDENT / "traffic.yaml")
    )
    errors = [
        f"{list(error.path)}: {error.message}" for error in validator.iter_errors(load(path))
    ]
    assert errors == []


def test_incident_sarif_names_rule_and_lines(render: Render) -> None:
    path = render(
        INCIDENT / "haproxy-bad.cfg", "sarif", "--traffic", str(INCIDENT / "traffic.yaml")
    )
    run = load(path)["runs"][0]
    [result] = [item for item in run["results"] if item["ruleId"] == "LB103"]
    region = result["locations"][0]["physicalLocation"]["region"]
    related = [
        item["physicalLocation"]["region"]["startLine"] for item in result["relatedLocations"]
    ]

    assert result["level"] == "error"
    assert region["startLine"] == 40
    assert 35 in related
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "LB103"


def test_sarif_has_every_rule_descriptor(render: Render) -> None:
    path = render(INCIDENT / "haproxy-fixed.cfg", "sarif")
    descriptors = load(path)["runs"][0]["tool"]["driver"]["rules"]

    assert [item["id"] for item in descriptors] == [rule.id for rule in RULES]
    for descriptor, rule in zip(descriptors, RULES, strict=True):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["fullDescription"]["text"] == rule.rationale
        assert rule.fix_hint in descriptor["help"]["markdown"]
        assert descriptor["help"]["text"].startswith(f"{rule.id} {rule.name}")


def test_suppressed_finding_in_sarif(
    render: Render, tmp_path: Path, validator: jsonschema.protocols.Validator
) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\n\nfrontend fe\n    bind 127.0.0.1:18080\n"
        "    default_backend be\n\nbackend be\n"
        "    server a 10.0.0.1:80 check weight 10\n"
        "    server b 10.0.0.2:80 check weight 100  # lbguard: ignore LB202 reason: 10x CPUs\n",
        encoding="utf-8",
    )
    document = load(render(config, "sarif", "--select", "LB202"))
    [result] = document["runs"][0]["results"]

    assert [error.message for error in validator.iter_errors(document)] == []
    assert result["ruleId"] == "LB202"
    assert result["suppressions"][0]["kind"] == "inSource"
    assert result["suppressions"][0]["justification"] == "10x CPUs"


def test_hostile_names_stay_valid_sarif(
    render: Render, hostile_config: Path, validator: jsonschema.protocols.Validator
) -> None:
    document = load(render(hostile_config, "sarif"))
    messages = [item["message"]["text"] for item in document["runs"][0]["results"]]

    assert [error.message for error in validator.iter_errors(document)] == []
    assert any("<script>alert(1)</script>" in message for message in messages)
