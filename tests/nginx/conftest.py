"""Fixtures for the nginx tests: test data paths, a request router and the nginx binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbguard.lab.testing import require_binary
from lbguard.model import ActionKind, LoadBalancer, Rule
from lbguard.predict.routing import route
from lbguard.traffic import from_columns

DATA = Path(__file__).resolve().parent.parent / "data" / "nginx"
CORPUS = DATA / "corpus"
CASES = DATA / "cases"


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    return require_binary("nginx")


def label(rule: Rule | None) -> str:
    """Name what a rule does the way a lab nginx shows it: the ``return`` body, the
    redirect status, or ``proxy`` for a proxied request."""
    if rule is None:
        return "no rule"
    action = rule.action
    if action.kind is ActionKind.RETURN:
        return action.detail
    if action.kind is ActionKind.REDIRECT:
        return str(action.status)
    if action.kind is ActionKind.ROUTE:
        return "proxy"
    return action.kind.value


def chosen_rules(
    lb: LoadBalancer, frontend: str, hosts: list[str], paths: list[str]
) -> list[Rule | None]:
    """Route one request per (host, path) pair and return the rule that takes each."""
    chosen: list[Rule | None] = []
    target = lb.frontend(frontend)
    assert target is not None, f"no frontend {frontend}"
    for host, path in zip(hosts, paths, strict=True):
        profile = from_columns(frontend=[frontend], host=[host], path=[path], query=[""])
        result = route([target], profile)
        matched = [share.rule for share in result.rules if share.share]
        chosen.append(matched[0] if matched else None)
    return chosen
