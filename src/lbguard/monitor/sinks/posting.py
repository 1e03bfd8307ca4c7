"""Shared HTTP delivery for the webhook-style sinks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from lbguard.monitor.sinks.interface import PermanentSinkError, SinkError


def post_json(
    url: str,
    payload: Any,
    *,
    headers: Mapping[str, str],
    timeout: float,
) -> None:
    """POST ``payload`` as JSON.

    Raises SinkError on a transport error or a 5xx, 408 or 429 response, and
    PermanentSinkError on any other non-2xx response.
    """
    try:
        # trust_env=False: proxy variables must not redirect alerts to another host.
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.post(url, json=payload, headers=dict(headers))
    except httpx.HTTPError as error:
        raise SinkError(f"{type(error).__name__}: {error}") from error

    if response.is_success:
        return
    body = response.text[:200].replace("\n", " ")
    message = f"HTTP {response.status_code}: {body}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise SinkError(message)
    raise PermanentSinkError(message)
