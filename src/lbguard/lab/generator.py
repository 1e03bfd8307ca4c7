"""A bounded HTTP traffic generator for load balancers on 127.0.0.1.

The request sequence is drawn from a seeded RNG before the first request is sent, so the
same seed and mix always send the same requests; only their interleaving depends on
timing. A run stops by itself after `requests` requests or `max_duration` seconds,
whichever comes first, and each request is bounded by `timeout`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from lbguard.lab.errors import LabError

SERVER_HEADER = "X-Server"
"""Response header in which lab backends name themselves."""


@dataclass(frozen=True)
class RequestSpec:
    """One request shape of a traffic mix."""

    method: str = "GET"
    host: str = ""
    """Host header; empty sends ``127.0.0.1:<port>``."""

    path: str = "/"
    query: str = ""
    """Query string without the ``?``."""

    headers: tuple[tuple[str, str], ...] = ()
    client_ip: str = ""
    """Client address sent as ``X-Forwarded-For``; empty sends none."""

    weight: float = 1.0
    """Relative frequency in a mix."""

    label: str = ""
    """Free-form tag carried into the results (a region, a phase)."""

    @property
    def target(self) -> str:
        """Request target: path plus ``?query`` when there is one."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True)
class Result:
    """The outcome of one request."""

    index: int
    """Position in the drawn request sequence."""

    request: RequestSpec
    status: int
    """HTTP status; 0 when no response arrived (see `error`)."""

    server: str | None
    """Value of the ``X-Server`` response header, None when absent."""

    latency: float
    """Seconds from sending the request to the end of the response body."""

    started_at: float
    """Wall-clock send time, seconds since the epoch."""

    error: str = ""
    """Exception class and message when the request failed without a response."""


Sampler = Callable[[random.Random], RequestSpec]


class TrafficGenerator:
    """Replay a weighted request mix against ``127.0.0.1:<port>``.

    `concurrency` requests are in flight at most. With `rate` (requests per second) the
    requests are sent on a fixed schedule, so that a slow backend builds a queue in the
    load balancer instead of slowing the clients down; without it, each of the
    `concurrency` clients sends its next request as soon as the previous one completes.
    """

    def __init__(
        self,
        port: int,
        mix: Sequence[RequestSpec] | Sampler,
        *,
        requests: int,
        concurrency: int = 8,
        seed: int = 0,
        rate: float | None = None,
        max_duration: float = 60.0,
        timeout: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        if requests < 0 or concurrency < 1:
            raise LabError(f"invalid bounds: requests={requests}, concurrency={concurrency}")
        if rate is not None and rate <= 0:
            raise LabError(f"invalid rate {rate}: give requests per second > 0 or None")
        if host not in {"127.0.0.1", "::1", "localhost"}:
            raise LabError(f"target host {host!r} is not loopback", hint="use 127.0.0.1")
        if not callable(mix) and not mix:
            raise LabError("empty traffic mix", hint="give at least one RequestSpec")
        self.port = port
        self.mix = mix
        self.requests = requests
        self.concurrency = concurrency
        self.seed = seed
        self.rate = rate
        self.max_duration = max_duration
        self.timeout = timeout
        self.base_url = f"http://{host}:{port}"

    def draw(self) -> list[RequestSpec]:
        """Return the request sequence for this seed."""
        rng = random.Random(self.seed)
        if callable(self.mix):
            sampler = self.mix
            return [sampler(rng) for _ in range(self.requests)]
        weights = [spec.weight for spec in self.mix]
        return rng.choices(list(self.mix), weights=weights, k=self.requests)

    def run(self) -> list[Result]:
        """Send the requests and return one result per request sent, in sequence order."""
        return asyncio.run(self._run(self.draw()))

    async def _run(self, sequence: list[RequestSpec]) -> list[Result]:
        results: list[Result] = []
        next_index = 0
        start = time.monotonic()
        deadline = start + self.max_duration

        async def worker() -> None:
            nonlocal next_index
            # One client with one connection per worker: httpcore 1.0.9 matches queued
            # requests to pooled connections in time quadratic in their number, so a single
            # shared pool adds seconds of latency at a few hundred requests in flight.
            # trust_env=False keeps proxy variables from redirecting lab traffic, and
            # verify=False skips loading CA certificates that plain HTTP never uses.
            async with httpx.AsyncClient(
                base_url=self.base_url,
                limits=httpx.Limits(max_connections=1),
                timeout=self.timeout,
                trust_env=False,
                verify=False,
            ) as client:
                while next_index < len(sequence):
                    index = next_index
                    next_index += 1
                    if self.rate is not None:
                        delay = start + index / self.rate - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if time.monotonic() >= deadline:
                        return
                    results.append(await self._send(client, index, sequence[index]))

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        results.sort(key=lambda result: result.index)
        return results

    async def _send(self, client: httpx.AsyncClient, index: int, spec: RequestSpec) -> Result:
        headers = dict(spec.headers)
        if spec.host:
            headers["Host"] = spec.host
        if spec.client_ip:
            headers["X-Forwarded-For"] = spec.client_ip

        started_at = time.time()
        began = time.perf_counter()
        try:
            response = await client.request(spec.method, spec.target, headers=headers)
        except httpx.HTTPError as exc:
            return Result(
                index=index, request=spec, status=0, server=None,
                latency=time.perf_counter() - began, started_at=started_at,
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        return Result(
            index=index,
            request=spec,
            status=response.status_code,
            server=response.headers.get(SERVER_HEADER),
            latency=time.perf_counter() - began,
            started_at=started_at,
        )


def count_servers(results: Sequence[Result]) -> Counter[str]:
    """Count successful (2xx/3xx) responses per ``X-Server`` value."""
    return Counter(r.server for r in results if r.server is not None and 0 < r.status < 400)
