"""Every rule on its failing and false-positive fixtures, by exact (file, line, rule).

Each folder tests/data/rules/<RULE>/ contains ``bad`` and ``good`` configurations per
product the rule applies to (``.cfg`` for HAProxy, ``.conf`` for NGINX) and
``expectations.yaml``: for each fixture, the lines where the rule's findings start, and
optionally a traffic profile and an access log to check with.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbguard.checks import RULES, CheckContext, Rule
from lbguard.checks.runner import run_audit
from lbguard.lab.testing import require_binary
from lbguard.model import Product
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.traffic import load_profile

FIXTURES = Path(__file__).parent.parent / "data" / "rules"
EXTENSIONS = {Product.HAPROXY: "cfg", Product.NGINX: "conf"}


def expectations(rule_id: str) -> dict[str, Any]:
    path = FIXTURES / rule_id / "expectations.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


CASES = [
    pytest.param(rule, product, kind, id=f"{rule.id}-{product}-{kind}")
    for rule in RULES
    for product in rule.products
    for kind in ("bad", "good")
]


def audit_fixture(rule: Rule, name: str, entry: dict[str, Any]) -> set[tuple[str, int]]:
    """Return the (file, line) where each of the rule's findings starts."""
    folder = FIXTURES / rule.id
    config = folder / name
    lb = load_config([str(config)])
    profile = load_profile(folder / entry["traffic"]) if "traffic" in entry else None
    prediction = predict(lb, profile)

    observation = None
    if "logs" in entry:
        from lbguard.analysis.compare import observe_and_compare
        from lbguard.logs import load_logs

        load = load_logs([str(folder / entry["logs"])])
        observation = observe_and_compare(lb, load.con, load.table)

    context = CheckContext.build(lb, prediction, profile, observation=observation)
    result = run_audit(context)
    return {
        (finding.location.file, finding.location.line)
        for finding in result.findings
        if finding.rule_id == rule.id
    }


@pytest.mark.parametrize(("rule", "product", "kind"), CASES)
def test_rule_fixture(rule: Rule, product: Product, kind: str) -> None:
    name = f"{kind}.{EXTENSIONS[product]}"
    entry = expectations(rule.id)[name]
    config = str(FIXTURES / rule.id / name)
    expected = {(config, line) for line in entry["lines"]}

    assert audit_fixture(rule, name, entry) == expected
    if kind == "bad":
        assert expected, f"{rule.id}/{name} expects no finding"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rule_has_fixtures_for_each_product(rule: Rule) -> None:
    folder = FIXTURES / rule.id
    entries = expectations(rule.id)
    for product in rule.products:
        for kind in ("bad", "good"):
            name = f"{kind}.{EXTENSIONS[product]}"
            assert (folder / name).is_file(), f"{rule.id} lacks {name}"
            assert name in entries, f"{rule.id}/expectations.yaml lacks {name}"


def test_fixture_folders_name_registered_rules() -> None:
    ids = {rule.id for rule in RULES}
    folders = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    assert folders == ids


# The products themselves accept every fixture except those marked product_accepts: false,
# so the fixtures are configurations an operator could deploy.

PRODUCT_CASES = [
    pytest.param(rule_id, name, entry, id=f"{rule_id}-{name}")
    for rule_id in sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())
    for name, entry in expectations(rule_id).items()
]


def product_accepts(config: Path, tmp_path: Path) -> tuple[bool, str]:
    """Run the product's own configuration check on a fixture."""
    if config.suffix == ".cfg":
        command = [require_binary("haproxy"), "-c", "-q", "-f", str(config)]
    else:
        command = [
            require_binary("nginx"), "-t", "-q", "-p", str(tmp_path), "-c", str(config),
            "-g", f"pid {tmp_path / 'nginx.pid'}; error_log stderr;",
        ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path
    )
    return completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.lab
@pytest.mark.parametrize(("rule_id", "name", "entry"), PRODUCT_CASES)
def test_product_accepts_fixture(
    rule_id: str, name: str, entry: dict[str, Any], tmp_path: Path
) -> None:
    accepted, output = product_accepts(FIXTURES / rule_id / name, tmp_path)
    assert accepted is entry.get("product_accepts", True), output
