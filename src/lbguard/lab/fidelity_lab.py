"""The fidelity lab runner: one product, every matrix row of it, compared with lbguard.

`FidelityLab` writes every given row into one product config (each row has its own
frontend port and pools), starts the product once on 127.0.0.1 with backends that name
themselves, replays each row's traffic and compares the servers that answered with
``lbguard.predict.predict`` over the same traffic, the config being parsed by lbguard
from the very file the product runs. Client addresses reach the product in
``X-Forwarded-For``, which HAProxy takes as the source (``http-request set-src``) and
nginx as the client address (realip module).
"""

from __future__ import annotations

import logging
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Self

from lbguard.lab.backends import Backends, RecordedRequest
from lbguard.lab.cleanup import LabResource
from lbguard.lab.errors import LabError
from lbguard.lab.fidelity_configs import (
    Addresses,
    distinct_ports,
    haproxy_config,
    haproxy_server_states,
    nginx_http_block,
)
from lbguard.lab.fidelity_matrix import SHARE_TOLERANCE, SIGMAS, Check, Row
from lbguard.lab.generator import RequestSpec, Result, TrafficGenerator
from lbguard.lab.products import HAProxyProcess, NginxProcess, ProductProcess, nginx_config
from lbguard.model import LoadBalancer, Product
from lbguard.parsers import load_config
from lbguard.predict import predict
from lbguard.predict.result import Prediction
from lbguard.traffic import TrafficProfile, from_columns

logger = logging.getLogger(__name__)

PRODUCTS = (Product.HAPROXY, Product.NGINX)
"""Products the lab runs, in run order."""

EXACT = 1e-9
"""Float slack for shares that must be equal."""

READY_TIMEOUT = 10.0
"""Seconds to wait until HAProxy reports every stopped or disabled server as such."""


@dataclass(frozen=True)
class ServerResult:
    """Predicted and observed share of one server, as fractions of the row's requests."""

    pool: str
    server: str
    predicted: float
    observed: float
    count: int
    allowed: float
    """Largest allowed difference between the two shares."""

    @property
    def within(self) -> bool:
        return abs(self.observed - self.predicted) <= self.allowed + EXACT


@dataclass(frozen=True)
class RowResult:
    """The outcome of one matrix row."""

    row: Row
    sent: int
    servers: tuple[ServerResult, ...]
    keys: int
    """Distinct request shapes compared one by one (per-key rows only)."""

    problems: tuple[str, ...]
    """Every difference found, one sentence each; empty when the row passed."""

    method: str
    """Share methods lbguard reported for the row's pools (``exact``, ``expected``, ...)."""

    @property
    def passed(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------------------
# Traffic and prediction


def replay_sequence(row: Row) -> list[RequestSpec]:
    """Return every request of the row in a shuffled order seeded by the row id."""
    sequence = [spec for spec in row.traffic for _ in range(int(spec.weight))]
    random.Random(zlib.crc32(row.id.encode())).shuffle(sequence)
    return sequence


def traffic_profile(specs: Sequence[RequestSpec], frontend: str, port: int) -> TrafficProfile:
    """Return the profile of `specs` as the product receives them on `port`.

    Each spec is one row weighted by ``spec.weight``. The client address is the
    X-Forwarded-For value, which the lab configs make the product's client address."""
    names = sorted({name.lower() for spec in specs for name, _ in spec.headers})
    headers = {
        name: [next((v for k, v in spec.headers if k.lower() == name), "") for spec in specs]
        for name in names
    }
    return from_columns(
        weight=[spec.weight for spec in specs],
        frontend=[frontend] * len(specs),
        method=[spec.method for spec in specs],
        host=[spec.host or f"127.0.0.1:{port}" for spec in specs],
        path=[spec.path for spec in specs],
        query=[spec.query for spec in specs],
        client_ip=[spec.client_ip for spec in specs],
        headers=headers,
        description="fidelity lab traffic",
    )


# --------------------------------------------------------------------------------------
# The lab


class FidelityLab(LabResource):
    """One running product with every given row of the matrix, plus the backends."""

    def __init__(self, product: Product, rows: Sequence[Row], binary: str | None = None) -> None:
        if not rows:
            raise LabError(f"no {product} rows to run")
        if any(row.product is not product for row in rows):
            raise LabError(f"every row must be a {product} row")
        self.product = product
        self.rows = tuple(rows)
        self.binary = binary
        self.ports: dict[str, int] = {}
        self.backends = Backends(sorted({
            server.name for row in rows for pool in row.pools for server in pool.servers
            if not server.down
        }), record=True)
        self.process: ProductProcess | None = None
        self.lb: LoadBalancer | None = None
        self.endpoints: dict[str, dict[str, str]] = {}
        """Row id to ``127.0.0.1:<port>`` to the row's server name."""

    def start(self) -> Self:
        self.backends.start()
        try:
            self.ports = dict(zip((row.id for row in self.rows),
                                  distinct_ports(len(self.rows)), strict=True))
            addresses = self._addresses()
            if self.product is Product.HAPROXY:
                config = haproxy_config(self.rows, self.ports, addresses)
                self.process = HAProxyProcess(config, binary=self.binary)
            else:
                http = nginx_http_block(self.rows, self.ports, addresses)
                self.process = NginxProcess(nginx_config(http), binary=self.binary)
            self.process.start()
            self.lb = load_config([self.process.config_path], self.product)
            if self.product is Product.HAPROXY:
                self._wait_for_haproxy_states()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.backends.stop()

    def _addresses(self) -> Addresses:
        """Give every live server its backend's address and every stopped server the
        address of a backend that was started and stopped again (connections refused)."""
        addresses: Addresses = {}
        stopped: list[tuple[str, str]] = []
        for row in self.rows:
            for pool in row.pools:
                for server in pool.servers:
                    if server.down:
                        stopped.append((row.key, server.name))
                    else:
                        addresses[(row.key, server.name)] = self.backends.address(server.name)
        if stopped:
            names = [f"{key}.{name}" for key, name in stopped]
            with Backends(names) as gone:
                for (key, name), backend in zip(stopped, names, strict=True):
                    addresses[(key, name)] = gone.address(backend)
        for row in self.rows:
            self.endpoints[row.id] = {
                addresses[(row.key, server)]: server for server in row.server_names()
            }
        return addresses

    def _wait_for_haproxy_states(self) -> None:
        """Wait until HAProxy shows each stopped server DOWN and each disabled one MAINT."""
        assert self.process is not None
        expected: dict[tuple[str, str], str] = {}
        for row in self.rows:
            for pool in row.pools:
                for server in pool.servers:
                    key = (row.pool_name(pool.name), server.name)
                    if server.down:
                        expected[key] = "DOWN"
                    elif "disabled" in server.options.split():
                        expected[key] = "MAINT"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            states = haproxy_server_states(self.process.workdir / "admin.sock")
            waiting = {k: v for k, v in expected.items() if not states.get(k, "").startswith(v)}
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"HAProxy did not report the expected server states within "
                    f"{READY_TIMEOUT} s: {sorted(waiting.items())[:5]}",
                    hint="check the servers' check settings in the matrix",
                )
            time.sleep(0.05)

    # -- one row ------------------------------------------------------------------------

    def frontend_name(self, row: Row) -> str:
        assert self.lb is not None
        port = self.ports[row.id]
        names = [f.name for f in self.lb.frontends if any(b.port == port for b in f.binds)]
        if len(names) != 1:
            raise LabError(f"lbguard found {len(names)} frontends on port {port} for {row.id}")
        return names[0]

    def send(self, row: Row) -> list[Result]:
        """Replay the row's traffic once and return the results in sequence order."""
        sequence = replay_sequence(row)
        pending = iter(sequence)
        generator = TrafficGenerator(
            self.ports[row.id], lambda _rng: next(pending), requests=len(sequence),
            concurrency=row.concurrency, max_duration=120.0,
        )  # fmt: skip
        return generator.run()

    def run(self, row: Row) -> RowResult:
        """Replay `row` and compare the servers that answered with lbguard's prediction."""
        if row.warmup:
            self.send(row)
        self.backends.reset()
        results = self.send(row)
        received = self.backends.snapshot()
        recorded = list(self.backends.requests)

        predictor = self.predictor(row)
        prediction = predictor.predict(row.traffic)
        observed, problems = _observe(row, results, received)

        servers = []
        predicted = predictor.shares(prediction)
        sigmas = row_sigmas(sum(0.0 < share < 1.0 for share in predicted.values()))
        for key, share in predicted.items():
            allowed = _allowed(row.check, share, row.requests, sigmas)
            server = ServerResult(key[0], key[1], share, observed[key] / row.requests,
                                  observed[key], allowed)
            servers.append(server)
            if not server.within:
                problems.append(
                    f"{key[0]}/{key[1]}: observed {server.observed:.2%}, predicted "
                    f"{share:.2%}, allowed difference {allowed:.2%}"
                )

        keys = 0
        if row.check is Check.PER_KEY:
            keys = len(row.traffic)
            problems += _key_mismatches(predictor, recorded)
        pools = {row.pool_name(pool.name) for pool in row.pools}
        methods = sorted({str(p.method) for p in prediction.pools if p.pool in pools})
        return RowResult(row, len(results), tuple(servers), keys, tuple(problems),
                         ", ".join(methods))

    def predictor(self, row: Row) -> RowPredictor:
        """Return lbguard's predictor for the row: the parsed model cut down to the row's
        frontend and pools (so that a prediction spends no time on other rows), with each
        stopped server marked down."""
        assert self.lb is not None
        frontend = self.frontend_name(row)
        pools = {row.pool_name(pool.name) for pool in row.pools}
        model = replace(
            self.lb,
            frontends=tuple(f for f in self.lb.frontends if f.name == frontend),
            pools=tuple(p for p in self.lb.pools if p.name in pools),
        )
        down = {server.name for pool in row.pools for server in pool.servers if server.down}
        endpoints = self.endpoints[row.id]
        health = {
            f"{pool.name}/{server.name}": False
            for pool in model.pools for server in pool.servers
            if endpoints.get(server.endpoint) in down
        }
        return RowPredictor(row, model, frontend, self.ports[row.id], health, endpoints)


@dataclass(frozen=True)
class RowPredictor:
    """lbguard's prediction for the traffic of one row."""

    row: Row
    model: LoadBalancer
    frontend: str
    port: int
    health: dict[str, bool]
    endpoints: dict[str, str]
    """``127.0.0.1:<port>`` to the row's server name (nginx names servers by address)."""

    def predict(self, specs: Sequence[RequestSpec]) -> Prediction:
        return predict(self.model, traffic_profile(specs, self.frontend, self.port),
                       self.health)

    def shares(self, prediction: Prediction) -> dict[tuple[str, str], float]:
        """Return the predicted share of all the row's traffic per (pool, server)."""
        shares: dict[tuple[str, str], float] = {}
        for pool in self.row.pools:
            predicted = prediction.pool(self.row.pool_name(pool.name))
            if predicted is None:
                raise LabError(
                    f"lbguard found no pool {self.row.pool_name(pool.name)} in the config"
                )
            for server in predicted.servers:
                name = self.endpoints.get(server.endpoint, server.server)
                shares[(pool.name, name)] = server.share_of_total or 0.0
        return shares

    def server_for(self, spec: RequestSpec) -> tuple[str, str] | None:
        """Return the server that takes every request of shape `spec`, or None when
        lbguard spreads them over several servers."""
        for key, share in self.shares(self.predict([spec])).items():
            if share >= 1.0 - EXACT:
                return key
        return None


def _observe(
    row: Row, results: Sequence[Result], received: Counter[str]
) -> tuple[Counter[tuple[str, str]], list[str]]:
    """Count the answers per (pool, server) of the row and list every request that failed,
    reached a server outside the row, or that the backends counted differently."""
    problems: list[str] = []
    names = row.server_names()
    observed: Counter[tuple[str, str]] = Counter()
    for result in results:
        if result.status != 200 or result.server not in names:
            problems.append(
                f"request {result.request.target} got status {result.status} from "
                f"{result.server or 'no server'} {result.error}".rstrip()
            )
            continue
        observed[names[result.server]] += 1
    if len(results) != row.requests:
        problems.append(f"{len(results)} of {row.requests} requests completed")
    answered = {name: received[name] for name in names if received[name]}
    responses = {name: observed[names[name]] for name in names if observed[names[name]]}
    if answered != responses:
        problems.append(f"backends received {answered} but responses name {responses}")
    return observed, problems


def _key_mismatches(predictor: RowPredictor, recorded: Sequence[RecordedRequest]) -> list[str]:
    """Compare, for every request shape, the server lbguard predicts with the servers that
    received it, each request being matched to its shape by the key fields the backend
    saw: the request target, X-Forwarded-For and the shape's own headers."""
    row = predictor.row
    names = row.server_names()
    shapes: dict[tuple[str, str], list[RequestSpec]] = {}
    for spec in row.traffic:
        shapes.setdefault((spec.target, spec.client_ip), []).append(spec)

    received: dict[RequestSpec, set[tuple[str, str]]] = {}
    problems = []
    for request in recorded:
        candidates = shapes.get((request.target, request.header("x-forwarded-for") or ""), [])
        matching = [
            spec for spec in candidates
            if all(request.header(name) == value for name, value in spec.headers)
        ]
        if len(matching) != 1:
            problems.append(f"{request.server} received {request.target}, which matches "
                            f"{len(matching)} request shapes of the row")
            continue
        received.setdefault(matching[0], set()).add(names[request.server])

    for spec in row.traffic:
        expected = predictor.server_for(spec)
        seen = received.get(spec, set())
        if expected is None or seen != {expected}:
            problems.append(
                f"key {_describe(spec)}: predicted {_pair(expected)}, received by "
                f"{', '.join(sorted(_pair(s) for s in seen)) or 'no server'}"
            )
    return problems


def _allowed(check: Check, share: float, total: int, sigmas: float) -> float:
    if check is Check.SHARES:
        return SHARE_TOLERANCE
    if check is Check.BINOMIAL:
        return binomial_bound(share, total, sigmas)
    return 0.0


def row_sigmas(servers: int, sigmas: float = SIGMAS) -> float:
    """Return the per-server bound, in standard deviations, that gives a row of `servers`
    random servers the false-failure probability of one `sigmas` test (0.27 % for 3).

    Each server is one two-sided test. The Šidák correction sets the per-server
    probability p so that 1 - (1 - p) ** servers equals the one-test probability: 3.40
    standard deviations for 4 servers. Servers with a predicted share of 0 or 1 are not
    counted, because their count is exact. The counts of one row are slightly negatively
    correlated, which makes the row's real false-failure probability a little lower.
    """
    if servers <= 1:
        return sigmas
    normal = NormalDist()
    one_test = 2.0 * (1.0 - normal.cdf(sigmas))
    per_server = 1.0 - (1.0 - one_test) ** (1.0 / servers)
    return normal.inv_cdf(1.0 - per_server / 2.0)


def binomial_bound(share: float, requests: int, sigmas: float = SIGMAS) -> float:
    """Return `sigmas` standard deviations of an observed share when each of `requests`
    requests goes to the server with probability `share`."""
    if requests <= 0:
        return 0.0
    return sigmas * math.sqrt(share * (1.0 - share) / requests)


def _pair(key: tuple[str, str] | None) -> str:
    return "no single server" if key is None else f"{key[0]}/{key[1]}"


def _describe(spec: RequestSpec) -> str:
    parts = [spec.target]
    if spec.client_ip:
        parts.append(f"client {spec.client_ip}")
    parts += [f"{name}: {value}" for name, value in spec.headers]
    if spec.host:
        parts.append(f"Host: {spec.host}")
    return " ".join(parts)


# --------------------------------------------------------------------------------------
# Report


def run_rows(rows: Sequence[Row], progress: Callable[[RowResult], None] | None = None
             ) -> list[RowResult]:
    """Run `rows`, one product process per product, and return the results in order."""
    results: dict[str, RowResult] = {}
    for product in PRODUCTS:
        chosen = [row for row in rows if row.product is product]
        if not chosen:
            continue
        with FidelityLab(product, chosen) as lab:
            for row in chosen:
                result = lab.run(row)
                results[row.id] = result
                if progress is not None:
                    progress(result)
    return [results[row.id] for row in rows]
