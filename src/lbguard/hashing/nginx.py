"""nginx's hash-based peer selection over many keys at once, with numpy.

Every function mirrors one loop of nginx 1.22.1 (identical in 1.26.0):
``ngx_http_upstream_get_ip_hash_peer`` (ngx_http_upstream_ip_hash_module.c),
``ngx_http_upstream_get_hash_peer``, ``ngx_http_upstream_init_chash`` and
``ngx_http_upstream_get_chash_peer`` (ngx_http_upstream_hash_module.c). A peer is one
address of a ``server`` line; ``usable`` says which peers may take a request. A key that
finds no usable peer in ``MAX_TRIES`` attempts falls back to round robin, returned as -1.

Each placement exists twice: a plain reference over one key (``*_peer``, ``ketama_name``)
that follows the C loop, and a version over many keys (``*_peers``, ``ketama_names``)
that tests check against it. nginx's ``ngx_crc32_*`` functions (src/core/ngx_crc32.c) are
the standard reflected CRC-32, which ``zlib.crc32`` computes; ``map(zlib.crc32, keys)``
runs the loop over keys in C and hashes a million 30-byte keys in about 0.1 s.
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat

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
U8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]


def _walk(values: IntArray, weights: IntArray) -> IntArray:
    """Return the peer whose cumulative weight range holds ``value % total`` (the weight
    walk ``while (w >= peer->weight) { w -= peer->weight; peer = peer->next; }``)."""
    bounds = np.cumsum(weights)
    position = values % int(bounds[-1])
    return np.searchsorted(bounds, position, side="right").astype(np.int64)


def _walk_one(value: int, weights: Sequence[int]) -> int:
    remainder = value % sum(weights)
    peer = 0
    while remainder >= weights[peer]:
        remainder -= weights[peer]
        peer += 1
    return peer


# --------------------------------------------------------------------------------------
# Client addresses


def ip_hash_key(address: str) -> bytes:
    """Return the bytes ip_hash hashes for a client address in text form."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return PSEUDO_ADDRESS
    if parsed.version == 4:
        return parsed.packed[:IPV4_KEY_BYTES]
    return parsed.packed


@dataclass(frozen=True)
class ParsedAddresses:
    """Client addresses in text form, parsed as ``ipaddress.ip_address`` parses them.

    An input position in neither group is not an IP address.
    """

    ipv4_rows: IntArray
    """Input positions of the IPv4 addresses."""

    ipv4: U8Array
    """The four octets of each IPv4 address, one row per address."""

    ipv6_rows: IntArray
    """Input positions of the IPv6 addresses."""

    ipv6: U8Array
    """The sixteen bytes of each IPv6 address, one row per address."""


DOTTED_QUAD_MAX = len("255.255.255.255")


def _dotted_quads(column: npt.NDArray[np.object_]) -> tuple[IntArray, U8Array]:
    """Return the positions of the strings that ``ipaddress.IPv4Address`` accepts and their
    octets. Python 3.11 accepts exactly four dot-separated ASCII decimal octets of one
    to three digits, at most 255, without a leading zero."""
    lengths = np.fromiter(map(len, column.tolist()), dtype=np.int64, count=column.shape[0])
    rows = np.flatnonzero((lengths >= len("0.0.0.0")) & (lengths <= DOTTED_QUAD_MAX))
    width = lengths[rows]
    codes = column[rows].astype(f"U{DOTTED_QUAD_MAX}").view(np.uint32)
    codes = codes.reshape(rows.shape[0], DOTTED_QUAD_MAX)

    # Only digits and exactly three dots before the end; the padding after it is NUL.
    inside = np.arange(DOTTED_QUAD_MAX) < width[:, None]
    dots = codes == ord(".")
    digits = (codes >= ord("0")) & (codes <= ord("9"))
    shaped = np.all(digits | dots | ~inside, axis=1) & (dots.sum(axis=1) == 3)
    rows, width, codes = rows[shaped], width[shaped], codes[shaped]

    dot_columns = np.nonzero(codes == ord("."))[1].reshape(-1, 3)
    starts = np.column_stack([np.zeros(rows.shape[0], dtype=np.int64), dot_columns + 1])
    sizes = np.column_stack([dot_columns, width]) - starts
    line = np.arange(rows.shape[0])[:, None]
    last = DOTTED_QUAD_MAX - 1
    octets = np.zeros((rows.shape[0], 4), dtype=np.int64)
    for offset in range(3):
        digit = codes[line, np.minimum(starts + offset, last)].astype(np.int64) - ord("0")
        octets = np.where(offset < sizes, octets * 10 + digit, octets)
    leading_zero = (sizes > 1) & (codes[line, np.minimum(starts, last)] == ord("0"))
    valid = np.all((sizes >= 1) & (sizes <= 3) & ~leading_zero & (octets <= 255), axis=1)
    return rows[valid], octets[valid].astype(np.uint8)


def _inet_pton6(text: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return b""


def _packed_address(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return b""


def parse_addresses(texts: Sequence[str] | npt.NDArray[np.object_]) -> ParsedAddresses:
    """Parse client addresses in text form without a Python call per IPv4 address.

    Dotted quads are parsed with numpy. The rest go through ``socket.inet_pton`` for
    IPv6, and what that rejects (scope ids such as ``fe80::1%eth0``, text that is no
    address) through ``ipaddress`` once per distinct text.
    """
    column = np.asarray(texts, dtype=object).reshape(-1)
    ipv4_rows, ipv4 = _dotted_quads(column)
    rest = np.ones(column.shape[0], dtype=bool)
    rest[ipv4_rows] = False
    others = np.flatnonzero(rest)
    other_texts: list[str] = column[others].tolist()

    # NOTE: glibc's inet_pton accepts only addresses that ipaddress parses to the same
    # bytes (checked by tests); another C library may differ.
    packed = list(map(_inet_pton6, other_texts))
    sizes = np.fromiter(map(len, packed), dtype=np.int64, count=len(packed))
    rejected = np.flatnonzero(sizes == 0).tolist()
    slow = {
        text: _packed_address(text) for text in dict.fromkeys(other_texts[i] for i in rejected)
    }
    for i in rejected:
        packed[i] = slow[other_texts[i]]
        sizes[i] = len(packed[i])

    def group(size: int) -> tuple[IntArray, U8Array]:
        picked = sizes == size
        data = b"".join(compress(packed, picked.tolist()))
        return others[picked], np.frombuffer(data, dtype=np.uint8).reshape(-1, size)

    late_rows, late_ipv4 = group(4)
    ipv6_rows, ipv6 = group(16)
    return ParsedAddresses(
        np.concatenate([ipv4_rows, late_rows]),
        np.concatenate([ipv4, late_ipv4]),
        ipv6_rows,
        ipv6,
    )


# --------------------------------------------------------------------------------------
# ip_hash


def ip_hash_peer(key: bytes, weights: Sequence[int], usable: Sequence[bool]) -> int:
    """Return the peer ip_hash picks for one key, FALLBACK for round robin (reference)."""
    if not key:
        return FALLBACK
    hashed = IP_HASH_SEED
    for _ in range(MAX_TRIES + 1):
        for byte in key:
            hashed = (hashed * IP_HASH_MULTIPLIER + byte) % IP_HASH_MODULUS
        peer = _walk_one(hashed, weights)
        if usable[peer]:
            return peer
    return FALLBACK


def ip_hash_peers(
    keys: Sequence[bytes], weights: Sequence[int], usable: Sequence[bool]
) -> IntArray:
    """Return the peer index ip_hash picks for each key (FALLBACK for round robin)."""
    key_list = list(keys)
    lengths = np.fromiter(map(len, key_list), dtype=np.int64, count=len(key_list))
    result = np.full(len(key_list), FALLBACK, dtype=np.int64)
    for length in np.unique(lengths[lengths > 0]).tolist():
        rows = np.flatnonzero(lengths == length)
        packed = np.frombuffer(b"".join(key_list[i] for i in rows.tolist()), dtype=np.uint8)
        result[rows] = ip_hash_rows(packed.reshape(-1, length).astype(np.int64), weights, usable)
    return result


def ip_hash_address_peers(
    addresses: Sequence[str] | npt.NDArray[np.object_],
    weights: Sequence[int],
    usable: Sequence[bool],
) -> IntArray:
    """Return the peer ip_hash picks for each client address in text form.

    Text that is no IP address hashes as `PSEUDO_ADDRESS`, as `ip_hash_key` does.
    """
    parsed = parse_addresses(addresses)
    pseudo = np.frombuffer(PSEUDO_ADDRESS, dtype=np.uint8).astype(np.int64)[None, :]
    result = np.full(len(addresses), ip_hash_rows(pseudo, weights, usable)[0], dtype=np.int64)
    result[parsed.ipv4_rows] = ip_hash_rows(parsed.ipv4[:, :IPV4_KEY_BYTES], weights, usable)
    result[parsed.ipv6_rows] = ip_hash_rows(parsed.ipv6, weights, usable)
    return result


def ip_hash_rows(
    octets: IntArray | U8Array, weights: Sequence[int], usable: Sequence[bool]
) -> IntArray:
    """Return the peer ip_hash picks for each row of key bytes (FALLBACK for round robin)."""
    weight_array = np.asarray(weights, dtype=np.int64)
    usable_array = np.asarray(usable, dtype=bool)
    count = octets.shape[0]
    chosen = np.full(count, FALLBACK, dtype=np.int64)
    pending = np.arange(count)
    # The hash stays below 6271, so h * 113 + byte fits in 32 bits.
    hashes = np.full(count, IP_HASH_SEED, dtype=np.int32)
    # One contiguous array per key byte, holding only the rows still pending.
    columns = np.ascontiguousarray(octets.T, dtype=np.int32)
    # Each attempt re-applies the key bytes to the current hash, as nginx's loop does.
    for _ in range(MAX_TRIES + 1):
        for column in columns:
            hashes *= IP_HASH_MULTIPLIER
            hashes += column
            hashes %= IP_HASH_MODULUS
        peers = _walk(hashes.astype(np.int64), weight_array)
        ok = usable_array[peers]
        chosen[pending[ok]] = peers[ok]
        if ok.all():
            break
        pending, hashes, columns = pending[~ok], hashes[~ok], columns[:, ~ok]
    return chosen


# --------------------------------------------------------------------------------------
# hash (not consistent)


def memcached_hash_peer(key: bytes, weights: Sequence[int], usable: Sequence[bool]) -> int:
    """Return the peer ``hash $key`` picks for one key, FALLBACK for round robin (reference).

    Attempt ``n`` adds ``(crc32(str(n) + key) >> 16) & 0x7fff`` to the running hash, with
    the decimal prefix omitted on the first attempt (Cache::Memcached compatible). An
    empty key goes to round robin.
    """
    if not key:
        return FALLBACK
    running = 0
    for attempt in range(MAX_TRIES + 1):
        prefix = str(attempt).encode() if attempt else b""
        running += (zlib.crc32(prefix + key) >> 16) & 0x7FFF
        peer = _walk_one(running, weights)
        if usable[peer]:
            return peer
    return FALLBACK


def memcached_hash_peers(
    keys: Sequence[bytes], weights: Sequence[int], usable: Sequence[bool]
) -> IntArray:
    """Return the peer ``hash $key`` (not consistent) picks for each key, as
    `memcached_hash_peer` does."""
    weight_array = np.asarray(weights, dtype=np.int64)
    usable_array = np.asarray(usable, dtype=bool)
    key_list = list(keys)
    lengths = np.fromiter(map(len, key_list), dtype=np.int64, count=len(key_list))
    chosen = np.full(len(key_list), FALLBACK, dtype=np.int64)
    pending = np.flatnonzero(lengths > 0)
    pending_keys = list(compress(key_list, (lengths > 0).tolist()))
    totals = np.zeros(pending.size, dtype=np.int64)
    for attempt in range(MAX_TRIES + 1):
        if pending.size == 0:
            break
        # crc32(prefix + key) continues the CRC of the prefix over the key.
        start = zlib.crc32(str(attempt).encode()) if attempt else 0
        crcs = np.fromiter(
            map(zlib.crc32, pending_keys, repeat(start)), dtype=np.int64, count=pending.size
        )
        totals += (crcs >> 16) & 0x7FFF
        peers = _walk(totals, weight_array)
        ok = usable_array[peers]
        chosen[pending[ok]] = peers[ok]
        if ok.all():
            break
        pending, totals = pending[~ok], totals[~ok]
        pending_keys = list(compress(pending_keys, (~ok).tolist()))
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


# --------------------------------------------------------------------------------------
# hash ... consistent


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


def ketama_name(ring: KetamaRing, key_hash: int, name_usable: Sequence[bool]) -> int:
    """Return the index of the server name one key hash selects, FALLBACK for round robin
    (reference for `ketama_names`)."""
    size = ring.points.size
    start = bisect_left(ring.points.tolist(), key_hash)
    for attempt in range(MAX_TRIES + 1):
        owner = int(ring.owners[(start + attempt) % size])
        if name_usable[owner]:
            return owner
    return FALLBACK


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
    """Return the CRC-32 of every key, as chash hashes a request's key."""
    return np.fromiter(map(zlib.crc32, keys), dtype=np.uint32, count=len(keys))
