"""nginx's hash-based peer selection, vectorised over unique keys with numpy.

Every function mirrors one loop of nginx 1.22.1 (identical in 1.26.0):
``ngx_http_upstream_get_ip_hash_peer`` (ngx_http_upstream_ip_hash_module.c),
``ngx_http_upstream_get_hash_peer``, ``ngx_http_upstream_init_chash`` and
``ngx_http_upstream_get_chash_peer`` (ngx_http_upstream_hash_module.c). A peer is one
address of a ``server`` line; ``usable`` says which peers may take a request. A key that
finds no usable peer in ``MAX_TRIES`` attempts falls back to round robin, returned as -1.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_TRIES = 20
"""Attempts before nginx falls back to round robin (``hp->tries > 20``)."""

IP_HASH_SEED = 89
IP_HASH_MULTIPLIER = 113
IP_HASH_MODULUS = 6271
"""ip_hash arithmetic: ``h = 89``, then ``h = (h * 113 + byte) % 6271`` per key byte."""

IPV4_KEY_BYTES = 3
"""ip_hash uses the first three octets of an IPv4 address and all 16 bytes of IPv6."""

PSEUDO_ADDRESS = b"\x00\x00\x00"
"""ip_hash key of a client that has no IP address (a unix socket): three zero bytes."""

KETAMA_POINTS_PER_WEIGHT = 160
"""Consistent-hash points per unit of weight (``peers->total_weight * 160``)."""

FALLBACK = -1
"""Peer index meaning "round robin after MAX_TRIES failed attempts"."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _walk(values: IntArray, weights: IntArray) -> IntArray:
    """Return the peer whose cumulative weight range holds ``value % total`` (the weight
    walk ``while (w >= peer->weight) { w -= peer->weight; peer = peer->next; }``)."""
    bounds = np.cumsum(weights)
    position = values % int(bounds[-1])
    return np.searchsorted(bounds, position, side="right").astype(np.int64)


def ip_hash_key(address: str) -> bytes:
    """Return the bytes ip_hash hashes for a client address in text form."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return PSEUDO_ADDRESS
    if parsed.version == 4:
        return parsed.packed[:IPV4_KEY_BYTES]
    return parsed.packed


def ip_hash_peers(
    keys: Sequence[bytes], weights: Sequence[int], usable: Sequence[bool]
) -> IntArray:
    """Return the peer index ip_hash picks for each key (FALLBACK for round robin)."""
    result = np.full(len(keys), FALLBACK, dtype=np.int64)
    for length in sorted({len(key) for key in keys}):
        rows = np.array([i for i, key in enumerate(keys) if len(key) == length], dtype=np.int64)
        if length == 0:
            continue
        packed = np.frombuffer(b"".join(keys[i] for i in rows), dtype=np.uint8)
        result[rows] = ip_hash_rows(packed.reshape(-1, length).astype(np.int64), weights, usable)
    return result


def ip_hash_rows(octets: IntArray, weights: Sequence[int], usable: Sequence[bool]) -> IntArray:
    weight_array = np.asarray(weights, dtype=np.int64)
    usable_array = np.asarray(usable, dtype=bool)
    count = octets.shape[0]
    hashes = np.full(count, IP_HASH_SEED, dtype=np.int64)
    chosen = np.full(count, FALLBACK, dtype=np.int64)
    pending = np.arange(count)
    # Each attempt re-applies the key bytes to the current hash, as nginx's loop does.
    for _ in range(MAX_TRIES + 1):
        if pending.size == 0:
            break
        for column in range(octets.shape[1]):
            hashes[pending] = (
                hashes[pending] * IP_HASH_MULTIPLIER + octets[pending, column]
            ) % IP_HASH_MODULUS
        peers = _walk(hashes[pending], weight_array)
        ok = usable_array[peers]
        chosen[pending[ok]] = peers[ok]
        pending = pending[~ok]
    return chosen


def memcached_hash_peers(
    keys: Sequence[bytes], weights: Sequence[int], usable: Sequence[bool]
) -> IntArray:
    """Return the peer ``hash $key`` (not consistent) picks for each key.

    Attempt ``n`` adds ``(crc32(str(n) + key) >> 16) & 0x7fff`` to the running hash, with
    the decimal prefix omitted on the first attempt (Cache::Memcached compatible).
    """
    weight_array = np.asarray(weights, dtype=np.int64)
    usable_array = np.asarray(usable, dtype=bool)
    count = len(keys)
    totals = np.zeros(count, dtype=np.int64)
    chosen = np.full(count, FALLBACK, dtype=np.int64)
    pending = np.array([i for i, key in enumerate(keys) if key], dtype=np.int64)
    for attempt in range(MAX_TRIES + 1):
        if pending.size == 0:
            break
        prefix = str(attempt).encode() if attempt else b""
        parts = np.fromiter(
            ((zlib.crc32(prefix + keys[i]) >> 16) & 0x7FFF for i in pending),
            dtype=np.int64,
            count=pending.size,
        )
        totals[pending] += parts
        peers = _walk(totals[pending], weight_array)
        ok = usable_array[peers]
        chosen[pending[ok]] = peers[ok]
        pending = pending[~ok]
    return chosen


def memcached_uniform_shares(
    weights: Sequence[int], usable: Sequence[bool]
) -> npt.NDArray[np.float64]:
    """Return each peer's expected share of uniformly random keys under ``hash $key``.

    The running hash only matters modulo the total weight, so the attempts form a
    Markov chain over ``total`` states; every attempt adds an independent uniform 15-bit
    value. The remainder is the round-robin fallback mass, returned as the last item.
    """
    weight_array = np.asarray(weights, dtype=np.int64)
    total = int(weight_array.sum())
    owner = _walk(np.arange(total, dtype=np.int64), weight_array)
    step = np.bincount(np.arange(0x8000) % total, minlength=total) / 0x8000
    usable_state = np.asarray(usable, dtype=bool)[owner]
    shares = np.zeros(len(weights) + 1)
    state = np.zeros(total)
    state[0] = 1.0
    step_spectrum = np.fft.rfft(step)
    for _ in range(MAX_TRIES + 1):
        # Circular convolution: the new residue is (old + part) % total.
        state = np.clip(np.fft.irfft(np.fft.rfft(state) * step_spectrum, n=total), 0.0, None)
        np.add.at(shares, owner[usable_state], state[usable_state])
        state = np.where(usable_state, 0.0, state)
    shares[-1] = state.sum()
    return shares


@dataclass(frozen=True)
class KetamaRing:
    """Sorted, de-duplicated consistent-hash points and the server name owning each."""

    points: npt.NDArray[np.uint32]
    owners: npt.NDArray[np.int64]
    """Index into ``names`` of the server name that owns each point."""

    names: tuple[str, ...]


def split_server_name(name: str) -> tuple[bytes, bytes]:
    """Split a ``server`` line's address text into the host and port hashed by chash.

    Trailing digits after the last ``:`` are the port; ``unix:`` paths have none.
    """
    if name[:5].lower() == "unix:":
        return name[5:].encode(), b""
    head, colon, tail = name.rpartition(":")
    if colon and tail.isdigit():
        return head.encode(), tail.encode()
    if colon and tail == "":
        return head.encode(), b""
    return name.encode(), b""


def ketama_ring(names: Sequence[str], weights: Sequence[int]) -> KetamaRing:
    """Build the ring of ``hash ... consistent`` from peers' server names and weights.

    Each peer contributes ``160 * weight`` points: ``crc32(host "\\0" port prev_hash)``
    where ``prev_hash`` is the previous point as 4 little-endian bytes, starting at 0.
    Peers that share a name (one host name with several addresses) give identical
    points, which the de-duplication keeps once.
    """
    distinct = tuple(dict.fromkeys(names))
    hashes: list[int] = []
    owners: list[int] = []
    for name, weight in zip(names, weights, strict=True):
        host, port = split_server_name(name)
        base = zlib.crc32(port, zlib.crc32(b"\0", zlib.crc32(host)))
        previous = 0
        owner = distinct.index(name)
        for _ in range(KETAMA_POINTS_PER_WEIGHT * weight):
            previous = zlib.crc32(previous.to_bytes(4, "little"), base)
            hashes.append(previous)
            owners.append(owner)
    point_array = np.asarray(hashes, dtype=np.uint32)
    owner_array = np.asarray(owners, dtype=np.int64)
    order = np.argsort(point_array, kind="stable")
    point_array = point_array[order]
    owner_array = owner_array[order]
    keep = np.ones(point_array.size, dtype=bool)
    keep[1:] = point_array[1:] != point_array[:-1]
    return KetamaRing(point_array[keep], owner_array[keep], distinct)


def ketama_names(
    ring: KetamaRing, key_hashes: npt.NDArray[np.uint32], name_usable: Sequence[bool]
) -> IntArray:
    """Return the index of the server name each key hash selects, FALLBACK for round robin.

    The first point at or after the key's hash wins, wrapping to the start; a point whose
    name has no usable peer passes the key to the next point, up to MAX_TRIES times.
    """
    usable = np.asarray(name_usable, dtype=bool)
    start = np.searchsorted(ring.points, key_hashes, side="left").astype(np.int64)
    chosen = np.full(key_hashes.size, FALLBACK, dtype=np.int64)
    pending = np.arange(key_hashes.size)
    for attempt in range(MAX_TRIES + 1):
        if pending.size == 0:
            break
        owner = ring.owners[(start[pending] + attempt) % ring.points.size]
        ok = usable[owner]
        chosen[pending[ok]] = owner[ok]
        pending = pending[~ok]
    return chosen


def ketama_uniform_shares(
    ring: KetamaRing, name_usable: Sequence[bool]
) -> npt.NDArray[np.float64]:
    """Return each name's share of uniformly random 32-bit key hashes, plus the fallback
    share as the last item."""
    points = ring.points.astype(np.float64)
    arcs = np.diff(np.concatenate(([points[-1] - 2.0**32], points))) / 2.0**32
    chosen = ketama_names(ring, ring.points, name_usable)
    shares = np.zeros(len(ring.names) + 1)
    picked = chosen >= 0
    np.add.at(shares, chosen[picked], arcs[picked])
    shares[-1] = arcs[~picked].sum()
    return shares


def crc32_keys(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    return np.fromiter((zlib.crc32(key) for key in keys), dtype=np.uint32, count=len(keys))
