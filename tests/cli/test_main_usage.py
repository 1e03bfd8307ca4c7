"""Usage errors of the top-level parser and of each command."""

from __future__ import annotations

import pytest

from lbguard.cli.main import ExitCode, main


@pytest.mark.parametrize(
    "argv",
    [
        ["--bo\x1b[2Jgus", "check", "haproxy.cfg"],
        ["check", "haproxy.cfg", "--fo\x1b[2Jrmat"],
    ],
)
def test_usage_error_escapes_control_characters(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\\x1b[2J" in err
