"""GET /metrics: the Prometheus scrape, for the addresses METRICS_ALLOWED_IPS lets in.

Outside /api/v1 and the OpenAPI document: it is for the operator's monitoring, not for clients.
"""

import ipaddress
from collections.abc import Sequence

import anyio
from fastapi import APIRouter, Depends, Request, Response

from app.core.errors import PermissionDenied
from app.core.metrics import render_metrics

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """METRICS_ALLOWED_IPS as networks (an address is a network of one); ValueError names it."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"METRICS_ALLOWED_IPS: {entry!r} is neither an address nor a network"
            ) from None
    return networks


def is_allowed(host: str | None, networks: Sequence[Network]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False  # no address (a Unix socket): not one of those allowed
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def create_metrics_router(allowed: Sequence[str]) -> APIRouter:
    networks = parse_networks(allowed)

    async def require_allowed_address(request: Request) -> None:
        if not is_allowed(request.client.host if request.client else None, networks):
            raise PermissionDenied("Metrics are not available from this address.")

    router = APIRouter(include_in_schema=False)

    @router.get("/metrics", dependencies=[Depends(require_allowed_address)])
    async def metrics(request: Request) -> Response:
        body, media_type = await anyio.to_thread.run_sync(
            render_metrics, request.headers.get("accept", "")
        )
        return Response(body, media_type=media_type)

    return router
