"""HAProxy 2.6 balancing model: each server's share of the requests that reach a backend.

Sources, read at tag v2.6.0 and not copied: ``src/backend.c`` (``recount_servers``,
``update_backend_weight``, ``assign_server`` and the ``get_server_*`` key functions),
``src/lb_map.c``, ``src/lb_chash.c``, ``src/lb_fwrr.c``, ``src/lb_fas.c``,
``src/cfgparse.c`` (automatic server ids) and ``doc/configuration.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lbguard.hashing.haproxy import (
    BE_WEIGHT_SCALE,
    Ring,
    build_map,
    build_ring,
    full_hash_array,
    map_weights,
    ring_arc_shares,
    ring_lookup,
)
from lbguard.model import AdminState, Algorithm, HashMethod, Pool
from lbguard.predict.balancer import Health, PoolOutcome, PoolRequests
from lbguard.predict.haproxy_keys import (
    HashedKeys,
    KeyUnavailableError,
    expression_keys,
    hdr_keys,
    rdp_cookie_keys,
    source_keys,
    uri_keys,
    url_param_keys,
)
from lbguard.predict.result import ShareMethod
from lbguard.traffic import TrafficProfile

Shares = npt.NDArray[np.float64]


def server_ids(pool: Pool) -> list[int]:
    """Return each server's numeric id (``puid``) as HAProxy 2.6 assigns it.

    ``check_config_validity`` (src/cfgparse.c) walks servers in declaration order with a
    counter starting at 1 that advances after every server; a server without ``id`` takes
    the first id not yet used that is at least the counter.
    """
    used = {server.id for server in pool.servers if server.id is not None}
    ids: list[int] = []
    counter = 1
    for server in pool.servers:
        if server.id is not None:
            ids.append(server.id)
        else:
            while counter in used:
                counter += 1
            used.add(counter)
            ids.append(counter)
        counter += 1
    return ids


@dataclass(frozen=True)
class ServerGroup:
    """The servers HAProxy balances over in one health scenario."""

    usable: tuple[bool, ...]
    """``srv_willbe_usable``: weight above 0, not disabled or drained, not down."""

    active: tuple[int, ...]
    """Indices of usable non-backup servers."""

    backups: tuple[int, ...]
    """Indices of usable backup servers."""

    first_backup: int | None
    """``fbck``: the first usable backup, set only without ``option allbackups``."""

    @property
    def members(self) -> tuple[int, ...]:
        """Servers that receive load-balanced traffic."""
        if self.active:
            return self.active
        if self.first_backup is not None:
            return (self.first_backup,)
        return self.backups

    @property
    def single(self) -> bool:
        """``tot_used == 1``: HAProxy skips hashing and uses the only server."""
        return len(self.members) == 1


def server_group(pool: Pool, health: Health) -> ServerGroup:
    """Apply weights, admin states and health overrides as ``recount_servers`` does."""
    usable = tuple(
        server.weight > 0 and server.state is AdminState.ENABLED and health.get(server.name, True)
        for server in pool.servers
    )
    active = tuple(i for i, s in enumerate(pool.servers) if usable[i] and not s.backup)
    backups = tuple(i for i, s in enumerate(pool.servers) if usable[i] and s.backup)
    first_backup = backups[0] if backups and not pool.all_backups else None
    return ServerGroup(usable, active, backups, first_backup)


def _weight_shares(pool: Pool, members: Sequence[int]) -> Shares:
    shares = np.zeros(len(pool.servers), dtype=np.float64)
    total = sum(pool.servers[i].weight for i in members)
    for i in members:
        shares[i] = pool.servers[i].weight / total if total else 0.0
    return shares


@dataclass(frozen=True)
class _Placement:
    """The structure hashed keys are placed on: a server map (map-based) or a ring
    (consistent)."""

    slots: npt.NDArray[np.intp] | None
    ring: Ring | None
    fixed: int | None
    """The only server when HAProxy returns it without looking at the key."""

    def rr_shares(self, server_count: int) -> Shares:
        """Shares of round robin over the same structure (the fallback for missing keys):
        one pick per map slot, or one per ring node."""
        shares = np.zeros(server_count, dtype=np.float64)
        if self.fixed is not None:
            shares[self.fixed] = 1.0
            return shares
        if self.slots is not None:
            owners = self.slots
        else:
            assert self.ring is not None
            owners = self.ring.owners
        counts = np.bincount(owners, minlength=server_count).astype(np.float64)
        return counts / counts.sum() if counts.sum() else counts

    def uniform_shares(self, server_count: int) -> Shares:
        """Shares over uniformly spread 32-bit hashes."""
        if self.slots is not None or self.fixed is not None:
            # h mod W is uniform over the slots for uniformly spread h, up to a bias of
            # W / 2**32 from the last partial cycle.
            return self.rr_shares(server_count)
        assert self.ring is not None
        return ring_arc_shares(self.ring, server_count)

    def place(self, hashes: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp]:
        if self.fixed is not None:
            return np.full(hashes.shape[0], self.fixed, dtype=np.intp)
        if self.slots is not None:
            slots: npt.NDArray[np.intp] = self.slots[hashes % np.uint32(self.slots.shape[0])]
            return slots
        assert self.ring is not None
        return ring_lookup(self.ring, hashes)


def map_placement(pool: Pool, group: ServerGroup) -> _Placement:
    """Build the server map of ``lb_map.c`` for this scenario.

    Every usable server of the chosen class fills the map, but its size is the total
    weight HAProxy counts: with several usable backups and no ``option allbackups`` that
    is the first backup's weight alone, so a later backup of larger weight can still take
    a slot, as ``recalc_server_map`` does.
    """
    eweights = map_weights([server.weight for server in pool.servers])
    if group.active:
        candidates: Sequence[int] = group.active
        total = sum(eweights[i] for i in group.active)
    elif group.first_backup is not None:
        candidates = group.backups
        total = eweights[group.first_backup]
    else:
        candidates = group.backups
        total = sum(eweights[i] for i in group.backups)
    slots = np.array(build_map(candidates, eweights, total), dtype=np.intp)
    return _Placement(slots, None, None)


def chash_placement(pool: Pool, group: ServerGroup) -> _Placement:
    """Build the consistent-hash tree of ``lb_chash.c`` for this scenario: 16 nodes per
    weight unit, keyed by the server id; a lone first backup is used without the tree."""
    if not group.active and group.first_backup is not None:
        return _Placement(None, None, group.first_backup)
    nodes = [server.weight * BE_WEIGHT_SCALE for server in pool.servers]
    ring = build_ring(group.members, server_ids(pool), nodes)
    return _Placement(None, ring, None)


def _fair(pool: Pool, members: Sequence[int]) -> dict[str, float]:
    shares = _weight_shares(pool, members)
    return {server.name: float(shares[i]) for i, server in enumerate(pool.servers)}


def _outcome(
    pool: Pool,
    shares: Shares,
    method: ShareMethod,
    group: ServerGroup,
    notes: list[str],
) -> PoolOutcome:
    eligible = frozenset(pool.servers[i].name for i in group.members)
    return PoolOutcome(
        shares={server.name: float(shares[i]) for i, server in enumerate(pool.servers)},
        method=method,
        eligible=eligible,
        fair=_fair(pool, group.members),
        notes=tuple(notes),
    )


def balance(pool: Pool, requests: PoolRequests | None, health: Health) -> PoolOutcome:
    """Predict how an HAProxy 2.6 backend spreads its requests over its servers."""
    group = server_group(pool, health)
    notes: list[str] = []
    count = len(pool.servers)
    algorithm = pool.balance.algorithm

    if not group.members:
        notes.append("no server is usable: HAProxy answers 503 for this backend")
        return _outcome(pool, np.zeros(count), ShareMethod.EXACT, group, notes)
    if not group.active:
        which = "every usable backup server" if pool.all_backups else "the first usable backup"
        notes.append(f"no active server is usable, so {which} takes the traffic")

    if algorithm is Algorithm.ROUND_ROBIN:
        return _outcome(pool, _weight_shares(pool, group.members), ShareMethod.EXACT, group, notes)
    if algorithm is Algorithm.STATIC_RR:
        placement = map_placement(pool, group)
        return _outcome(pool, placement.rr_shares(count), ShareMethod.EXACT, group, notes)
    if algorithm is Algorithm.LEAST_CONN:
        notes.append(
            "leastconn depends on concurrency; assumed equal request cost and "
            "concurrency, which gives shares in proportion to weights"
        )
        return _outcome(
            pool, _weight_shares(pool, group.members), ShareMethod.LOAD_DEPENDENT, group, notes
        )
    if algorithm is Algorithm.FIRST:
        return _first(pool, group, notes)
    if algorithm is Algorithm.RANDOM:
        return _random(pool, group, notes)
    if algorithm.is_hash:
        return _hashed(pool, requests, group, notes)

    notes.append(f"balance {algorithm} is not an HAProxy algorithm; shares follow weights")
    return _outcome(pool, _weight_shares(pool, group.members), ShareMethod.UNKNOWN, group, notes)


def _first(pool: Pool, group: ServerGroup, notes: list[str]) -> PoolOutcome:
    ids = server_ids(pool)
    chosen = min(group.members, key=lambda i: ids[i])
    server = pool.servers[chosen]
    limit = f"up to its maxconn {server.maxconn}" if server.maxconn else "(it has no maxconn)"
    notes.append(
        f"balance first fills servers in id order; without a request rate the "
        f"first server {server.name} takes every request {limit}"
    )
    shares = np.zeros(len(pool.servers))
    shares[chosen] = 1.0
    return _outcome(pool, shares, ShareMethod.LOAD_DEPENDENT, group, notes)


def _random(pool: Pool, group: ServerGroup, notes: list[str]) -> PoolOutcome:
    draws = pool.balance.draws if pool.balance.draws is not None else 2
    placement = chash_placement(pool, group)
    shares = placement.uniform_shares(len(pool.servers))
    if draws == 1:
        notes.append(
            "random(1) picks a point on the consistent-hash ring, so each server's "
            "expected share is its arc of the ring, not exactly its weight"
        )
    else:
        # get_server_rnd (src/backend.c, HAProxy 2.6.0) keeps an earlier draw only when it
        # serves fewer requests per weight than the new one, so on a tie the last draw
        # wins: with equally loaded servers every draw count gives random(1)'s ring arcs.
        notes.append(
            f"random({draws}) keeps the less loaded of {draws} ring draws and the last "
            "draw on a tie; the expected share assumes equally loaded servers, which "
            "gives each server its arc of the ring. Under concurrency the less loaded "
            "draw wins more often and shares move toward the weights"
        )
    return _outcome(pool, shares, ShareMethod.EXPECTED, group, notes)


_KEY_FUNCTIONS = {
    Algorithm.SOURCE: lambda profile, balance: source_keys(profile),
    Algorithm.URI: uri_keys,
    Algorithm.URL_PARAM: url_param_keys,
    Algorithm.HDR: hdr_keys,
    Algorithm.RDP_COOKIE: rdp_cookie_keys,
    Algorithm.HASH: expression_keys,
}


def _hashed(
    pool: Pool, requests: PoolRequests | None, group: ServerGroup, notes: list[str]
) -> PoolOutcome:
    settings = pool.balance
    count = len(pool.servers)
    if settings.hash_method is HashMethod.CONSISTENT:
        placement = chash_placement(pool, group)
    else:
        placement = map_placement(pool, group)
    if settings.hash_balance_factor:
        notes.append(
            f"hash-balance-factor {settings.hash_balance_factor} moves requests off "
            "servers above that load; shares are given without it"
        )

    if group.single and settings.algorithm not in _LOOKS_UP_KEY_WHEN_SINGLE:
        # With one usable server HAProxy skips the key and looks up hash 0 (backend.c).
        shares = np.zeros(count)
        shares[int(placement.place(np.zeros(1, dtype=np.uint32))[0])] = 1.0
        return _outcome(pool, shares, ShareMethod.EXACT, group, notes)

    if requests is None or requests.total == 0:
        notes.append(
            "no traffic reaches this backend in the profile; shares are over uniformly spread keys"
        )
        return _outcome(pool, placement.uniform_shares(count), ShareMethod.EXPECTED, group, notes)

    key_function = _KEY_FUNCTIONS.get(settings.algorithm)
    try:
        if key_function is None:
            raise KeyUnavailableError(f"balance {settings.algorithm} is not modelled for HAProxy")
        keys = key_function(requests.profile, settings)
    except KeyUnavailableError as error:
        notes.append(f"{error.reason}; shares are over uniformly spread keys instead")
        return _outcome(pool, placement.uniform_shares(count), ShareMethod.UNKNOWN, group, notes)

    shares = _place_keys(
        placement, keys, requests, avalanche=settings.avalanche, count=count, notes=notes
    )
    if settings.algorithm is Algorithm.URL_PARAM and settings.check_post:
        post_missing = keys.missing & (requests.profile.method == "POST")
        if (requests.weight[post_missing] > 0).any():
            notes.append(
                "POST requests without the parameter in the query string are "
                "looked up in the body by check_post; the profile has no bodies, "
                "so they are counted as round robin"
            )
    return _outcome(pool, shares, ShareMethod.EXACT, group, notes)


def _place_keys(
    placement: _Placement,
    keys: HashedKeys,
    requests: PoolRequests,
    *,
    avalanche: bool,
    count: int,
    notes: list[str],
) -> Shares:
    """Sum request weights per server: hashed rows by placement, keyless rows by RR."""
    weight = requests.weight
    hashed = ~keys.missing & (weight > 0)
    hashes = keys.hashes[hashed]
    if avalanche:
        hashes = full_hash_array(hashes)
    servers = placement.place(hashes)
    totals: Shares = np.bincount(servers, weights=weight[hashed], minlength=count).astype(
        np.float64
    )

    keyless = float(weight[keys.missing].sum())
    if keyless > 0:
        share = keyless / requests.total
        notes.append(
            f"{share:.1%} of this backend's requests have no hash key and are "
            "balanced by round robin, as HAProxy falls back to"
        )
        totals = totals + keyless * placement.rr_shares(count)
    result: Shares = totals / requests.total
    return result


def hash_assignments(
    pool: Pool, profile: TrafficProfile, health: Health | None = None
) -> npt.NDArray[np.intp]:
    """Return the index of the server that each profile row goes to in a hash-based pool.

    Rows without a hash key get -1: HAProxy sends them by round robin. Raises
    `KeyUnavailableError` when the profile lacks the key's column, and ValueError for a
    pool whose algorithm does not hash.
    """
    settings = pool.balance
    key_function = _KEY_FUNCTIONS.get(settings.algorithm)
    if key_function is None:
        raise ValueError(f"balance {settings.algorithm} does not hash a key")
    group = server_group(pool, health or {})
    if not group.members:
        return np.full(len(profile), -1, dtype=np.intp)
    if settings.hash_method is HashMethod.CONSISTENT:
        placement = chash_placement(pool, group)
    else:
        placement = map_placement(pool, group)

    keys = key_function(profile, settings)
    hashes = keys.hashes
    missing = keys.missing
    if group.single and settings.algorithm not in _LOOKS_UP_KEY_WHEN_SINGLE:
        hashes = np.zeros_like(hashes)
        missing = np.zeros_like(missing)
    elif settings.avalanche:
        hashes = full_hash_array(hashes)
    servers = placement.place(hashes)
    result: npt.NDArray[np.intp] = np.where(missing, -1, servers)
    return result


_LOOKS_UP_KEY_WHEN_SINGLE = frozenset({Algorithm.URL_PARAM, Algorithm.RDP_COOKIE})
"""Algorithms whose key lookup in backend.c comes before the one-server shortcut, so a
missing key still means round robin."""
