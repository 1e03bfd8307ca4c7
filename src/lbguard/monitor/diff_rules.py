"""Semantic diff of a frontend's ordered routing rules and the ACLs they use.

Rules are matched by their written text first, then by condition, then by action at the
same position, because the first matching rule wins and a rule's identity is what it does.
Rules that kept their identity but not their relative order are reported as moved. No key
holds a source position: texts are compared with their ``file:line`` references replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lbguard.model import (
    NO_LOCATION,
    AllOf,
    AnyOf,
    Condition,
    Constant,
    Matcher,
    Named,
    Not,
    Rule,
    Unevaluated,
)
from lbguard.monitor.changes import Change, ChangeKind, Element, ModelComparer


def diff_rules(
    comparer: ModelComparer, frontend: str, old: Sequence[Rule], new: Sequence[Rule]
) -> list[Change]:
    """List the rules of one frontend that were added, removed, changed or moved."""
    # Old rule index to new rule index, for rules present on both sides.
    pairs: dict[int, int] = {}
    _pair_by(pairs, old, new, lambda rule: _rule_key(comparer, rule))
    text_pairs = dict(pairs)
    _pair_by(pairs, old, new, lambda rule: comparer.signature(rule.condition))
    _pair_in_place(comparer, pairs, old, new)

    changes: list[Change] = []
    paired_new = set(pairs.values())
    for index, rule in enumerate(old):
        if index not in pairs:
            changes.append(
                Change(
                    ChangeKind.REMOVED,
                    Element.RULE,
                    f"{frontend} rule {index + 1}",
                    before=rule.text,
                    old_location=rule.location,
                )
            )
    for index, rule in enumerate(new):
        if index not in paired_new:
            changes.append(
                Change(
                    ChangeKind.ADDED,
                    Element.RULE,
                    f"{frontend} rule {index + 1}",
                    after=rule.text,
                    new_location=rule.location,
                )
            )

    seen_acls: set[str] = set()
    for old_index, new_index in sorted(pairs.items(), key=lambda pair: pair[1]):
        before, after = old[old_index], new[new_index]
        subject = f"{frontend} rule {new_index + 1}"
        if old_index not in text_pairs:
            changes.append(
                Change(
                    ChangeKind.CHANGED,
                    Element.RULE,
                    subject,
                    "rule",
                    before.text,
                    after.text,
                    before.location,
                    after.location,
                )
            )
        elif not comparer.same(before.condition, after.condition):
            changes.extend(
                _diff_named(comparer, frontend, before.condition, after.condition, seen_acls)
            )
            if comparer.condition_shape(before.condition) != comparer.condition_shape(
                after.condition
            ):
                changes.append(
                    Change(
                        ChangeKind.CHANGED,
                        Element.RULE,
                        subject,
                        "condition",
                        condition_text(before.condition),
                        condition_text(after.condition),
                        before.location,
                        after.location,
                    )
                )

    for old_index in _moved(pairs):
        new_index = pairs[old_index]
        changes.append(
            Change(
                ChangeKind.REORDERED,
                Element.RULE,
                f"{frontend} rule {new_index + 1}",
                before=f"position {old_index + 1}",
                after=f"position {new_index + 1}",
                old_location=old[old_index].location,
                new_location=new[new_index].location,
                detail=new[new_index].text,
            )
        )
    return changes


def _rule_key(comparer: ModelComparer, rule: Rule) -> str:
    if rule.text:
        return " ".join(comparer.text(rule.text).split())
    return comparer.signature(rule)


def _pair_by(
    pairs: dict[int, int],
    old: Sequence[Rule],
    new: Sequence[Rule],
    key: Any,
) -> None:
    """Pair still unpaired rules with equal keys, in order of appearance."""
    paired_new = set(pairs.values())
    waiting: dict[str, list[int]] = {}
    for index, rule in enumerate(new):
        if index not in paired_new:
            waiting.setdefault(key(rule), []).append(index)
    for index, rule in enumerate(old):
        if index in pairs:
            continue
        candidates = waiting.get(key(rule))
        if candidates:
            pairs[index] = candidates.pop(0)


def _pair_in_place(
    comparer: ModelComparer, pairs: dict[int, int], old: Sequence[Rule], new: Sequence[Rule]
) -> None:
    """Pair still unpaired rules at the same position with the same action: a rule whose
    condition was edited in place."""
    paired_new = set(pairs.values())
    for index in range(min(len(old), len(new))):
        if index in pairs or index in paired_new:
            continue
        if comparer.same(old[index].action, new[index].action):
            pairs[index] = index


def _moved(pairs: Mapping[int, int]) -> list[int]:
    """Return the old indexes of paired rules outside the longest run kept in order."""
    ordered = sorted(pairs.items())
    targets = [new_index for _, new_index in ordered]

    # Longest increasing subsequence by patience sorting, keeping predecessors.
    tails: list[int] = []
    tail_positions: list[int] = []
    previous = [-1] * len(targets)
    for position, value in enumerate(targets):
        low, high = 0, len(tails)
        while low < high:
            middle = (low + high) // 2
            if tails[middle] < value:
                low = middle + 1
            else:
                high = middle
        if low > 0:
            previous[position] = tail_positions[low - 1]
        if low == len(tails):
            tails.append(value)
            tail_positions.append(position)
        else:
            tails[low] = value
            tail_positions[low] = position

    kept: set[int] = set()
    position = tail_positions[-1] if tail_positions else -1
    while position >= 0:
        kept.add(position)
        position = previous[position]
    return [ordered[position][0] for position in range(len(ordered)) if position not in kept]


def _diff_named(
    comparer: ModelComparer,
    frontend: str,
    old: Condition | None,
    new: Condition | None,
    seen: set[str],
) -> list[Change]:
    """Report named conditions (ACLs) whose definition differs, once per frontend."""
    old_named = dict(_named_conditions(old))
    new_named = dict(_named_conditions(new))
    changes: list[Change] = []
    for name, after in new_named.items():
        before = old_named.get(name)
        if before is None or name in seen:
            continue
        seen.add(name)
        if comparer.same(before.condition, after.condition):
            continue
        changes.append(
            Change(
                ChangeKind.CHANGED,
                Element.ACL,
                f"{frontend} acl {name}",
                "definition",
                condition_text(before.condition),
                condition_text(after.condition),
                before.locations[0] if before.locations else NO_LOCATION,
                after.locations[0] if after.locations else NO_LOCATION,
            )
        )
    return changes


def _named_conditions(condition: Condition | None) -> Iterable[tuple[str, Named]]:
    if isinstance(condition, Named):
        yield condition.name, condition
        yield from _named_conditions(condition.condition)
    elif isinstance(condition, AllOf | AnyOf):
        for term in condition.terms:
            yield from _named_conditions(term)
    elif isinstance(condition, Not):
        yield from _named_conditions(condition.term)


def condition_text(condition: Condition | None) -> str:
    """Render a condition tree as one line in HAProxy-like notation."""
    if condition is None:
        return "always"
    if isinstance(condition, Matcher):
        if condition.text:
            return condition.text
        fetch = f"{condition.fetch}({condition.arg})" if condition.arg else condition.fetch
        return f"{fetch} -m {condition.method} {' '.join(condition.patterns)}"
    if isinstance(condition, AllOf):
        return " ".join(_grouped(term) for term in condition.terms) or "TRUE"
    if isinstance(condition, AnyOf):
        return " || ".join(_grouped(term) for term in condition.terms) or "FALSE"
    if isinstance(condition, Not):
        return "!" + _grouped(condition.term)
    if isinstance(condition, Named):
        return condition.name
    if isinstance(condition, Constant):
        return "TRUE" if condition.value else "FALSE"
    assert isinstance(condition, Unevaluated)
    return condition.text


def _grouped(condition: Condition) -> str:
    text = condition_text(condition)
    if isinstance(condition, AllOf | AnyOf) and len(condition.terms) > 1:
        return "{ " + text + " }"
    return text
