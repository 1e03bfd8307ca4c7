"""Indexes over the distinct sample values of one profile column, for string match methods.

Testing every matcher against every distinct value costs matchers × values predicate
calls: 25 million for 5,000 ``path_beg`` rules over 5,000 paths. The indexes here evaluate
one matcher in about O(patterns × log values + matches) instead:

- ``-m str``: a dict from sample to the values that produce it;
- ``-m beg``: the samples sorted, so that the samples starting with a pattern are one
  range found by bisection; ``-m end`` does the same over reversed samples;
- ``-m dir`` and ``-m dom``: a dict from each delimiter-separated token to its samples.
  A whole-word occurrence of a pattern starts with the pattern's first token as a whole
  token, so only those samples are tested with `match_word`.

Each index returns the same per-value result as `compile_matcher`'s test applied to every
sample of every value (``any`` over the samples a `Splitter` returns).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lbguard.model import MatchMethod
from lbguard.predict.matching import DIR_DELIMITERS, DOM_DELIMITERS, match_word
from lbguard.predict.samples import Splitter

Mask = npt.NDArray[np.bool_]

INDEXED_METHODS = frozenset(
    {MatchMethod.STR, MatchMethod.BEG, MatchMethod.END, MatchMethod.DIR, MatchMethod.DOM}
)
"""Match methods that `ValueIndex.match` evaluates."""

_MAX_CODE_POINT = 0x10FFFF


def prefix_successor(prefix: str) -> str | None:
    """Return the least string greater than every string that starts with *prefix*.

    Return None when there is none (an empty prefix, or one made only of U+10FFFF): every
    string from *prefix* on then starts with it, in code point order.
    """
    trimmed = prefix.rstrip(chr(_MAX_CODE_POINT))
    if not trimmed:
        return None
    return trimmed[:-1] + chr(ord(trimmed[-1]) + 1)


class _SortedSamples:
    """Samples in code point order, with the value each one came from."""

    def __init__(self, keys: list[str], owners: npt.NDArray[np.intp]) -> None:
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = [keys[i] for i in order]
        self.owners = owners[np.asarray(order, dtype=np.intp)]

    def starting_with(self, prefix: str) -> npt.NDArray[np.intp]:
        """Return the values of the samples that start with *prefix*."""
        low = bisect_left(self.keys, prefix)
        successor = prefix_successor(prefix)
        high = len(self.keys) if successor is None else bisect_left(self.keys, successor, low)
        return self.owners[low:high]


class ValueIndex:
    """The samples of a column's distinct values, indexed lazily per match method."""

    def __init__(self, values: Sequence[str], split: Splitter) -> None:
        samples: list[str] = []
        owners: list[int] = []
        for position, value in enumerate(values):
            for sample in split(value):
                samples.append(sample)
                owners.append(position)
        self.size = len(values)
        self._samples = samples
        self._owners = np.asarray(owners, dtype=np.intp)
        self._exact: dict[bool, dict[str, list[int]]] = {}
        self._sorted: dict[tuple[bool, bool], _SortedSamples] = {}
        self._tokens: dict[tuple[bool, frozenset[str]], dict[str, list[int]]] = {}

    def match(self, method: MatchMethod, patterns: Sequence[str], fold: bool) -> Mask:
        """Return, per distinct value, whether any of its samples matches any pattern.

        *patterns* are already lower-case when *fold* is set (``-i``), as
        `compile_matcher` folds them.
        """
        result = np.zeros(self.size, dtype=bool)
        if method is MatchMethod.STR:
            exact = self._exact_index(fold)
            for pattern in set(patterns):
                result[exact.get(pattern, [])] = True
        elif method in (MatchMethod.BEG, MatchMethod.END):
            reverse = method is MatchMethod.END
            ordered = self._sorted_index(fold, reverse)
            for pattern in set(patterns):
                result[ordered.starting_with(pattern[::-1] if reverse else pattern)] = True
        elif method in (MatchMethod.DIR, MatchMethod.DOM):
            delimiters = DIR_DELIMITERS if method is MatchMethod.DIR else DOM_DELIMITERS
            self._match_words(result, patterns, fold, delimiters)
        else:
            raise ValueError(f"match method {method} has no index")
        return result

    def _keys(self, fold: bool) -> list[str]:
        return [sample.lower() for sample in self._samples] if fold else self._samples

    def _exact_index(self, fold: bool) -> dict[str, list[int]]:
        if fold not in self._exact:
            exact: dict[str, list[int]] = {}
            for key, owner in zip(self._keys(fold), self._owners.tolist(), strict=True):
                exact.setdefault(key, []).append(owner)
            self._exact[fold] = exact
        return self._exact[fold]

    def _sorted_index(self, fold: bool, reverse: bool) -> _SortedSamples:
        if (fold, reverse) not in self._sorted:
            keys = self._keys(fold)
            if reverse:
                keys = [key[::-1] for key in keys]
            self._sorted[(fold, reverse)] = _SortedSamples(keys, self._owners)
        return self._sorted[(fold, reverse)]

    def _match_words(
        self, result: Mask, patterns: Sequence[str], fold: bool, delimiters: frozenset[str]
    ) -> None:
        keys = self._keys(fold)
        tokens = self._token_index(fold, delimiters)
        splitter = _token_splitter(delimiters)
        owners = self._owners
        for pattern in set(patterns):
            first = splitter.split(pattern.strip("".join(delimiters)), maxsplit=1)[0]
            for sample_index in tokens.get(first, []) if first else []:
                if match_word(keys[sample_index], pattern, delimiters):
                    result[owners[sample_index]] = True

    def _token_index(self, fold: bool, delimiters: frozenset[str]) -> dict[str, list[int]]:
        key = (fold, delimiters)
        if key not in self._tokens:
            splitter = _token_splitter(delimiters)
            index: dict[str, list[int]] = {}
            for sample_index, sample in enumerate(self._keys(fold)):
                for token in set(splitter.split(sample)):
                    index.setdefault(token, []).append(sample_index)
            self._tokens[key] = index
        return self._tokens[key]


def _token_splitter(delimiters: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + re.escape("".join(sorted(delimiters))) + "]")
