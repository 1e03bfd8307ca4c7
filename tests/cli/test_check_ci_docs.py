"""The pre-commit hook and the CI examples in docs/ci.md work as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lbguard.cli.main import ExitCode, main

ROOT = Path(__file__).parent.parent.parent
HOOKS = ROOT / ".pre-commit-hooks.yaml"
CI_DOC = ROOT / "docs" / "ci.md"


def hook() -> dict[str, object]:
    [entry] = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize(
    "path",
    [
        "haproxy/haproxy.cfg",
        "nginx/conf.d/site.conf",
        "lbguard.toml",
        "pyproject.toml",
        "traffic.yaml",
        "profiles/traffic.yml",
    ],
)
def test_hook_runs_for_config_settings_and_traffic(path: str) -> None:
    # pre-commit matches `files` with Python's re.search.
    assert re.search(str(hook()["files"]), path) is not None


@pytest.mark.parametrize("path", ["README.md", "src/app.py", "other.toml"])
def test_hook_skips_unrelated_files(path: str) -> None:
    assert re.search(str(hook()["files"]), path) is None


def test_hook_passes_only_its_args(capsys: pytest.CaptureFixture[str]) -> None:
    entry = hook()
    assert entry["pass_filenames"] is False
    command = str(entry["entry"]).split()
    assert command[:2] == ["lbguard", "check"]
    config = ROOT / "examples" / "incident" / "haproxy-good.cfg"
    code = main([*command[1:], str(config), "--format", "json"])
    capsys.readouterr()
    assert code in (ExitCode.OK, ExitCode.FINDINGS)


def test_ci_doc_installs_from_repository() -> None:
    text = CI_DOC.read_text(encoding="utf-8")
    assert re.search(r"pip install lbguard\b", text) is None
    assert 'pip install "git+<your repository URL>@<commit>"' in text


def test_ci_doc_pins_a_commit() -> None:
    text = CI_DOC.read_text(encoding="utf-8")
    assert re.search(r"rev: v\d", text) is None
    assert "rev: <commit sha>" in text
