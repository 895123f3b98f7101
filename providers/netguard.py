"""SSRF guard for URLs chosen by users (webhook targets, push endpoints).

A target host is resolved once, every address is checked, and the request is then
sent to the checked address (with the original Host header and TLS server name), so
a DNS answer that changes between the check and the connect (DNS rebinding) cannot
redirect us to an internal address.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from django.conf import settings

from providers import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ResolvedTarget:
    url: httpx.URL  # the URL with the host replaced by the checked IP
    ip: str
    host_header: str
    sni_hostname: str | None


def allowed_entries() -> list[str]:
    value = getattr(settings, "NP_WEBHOOK_ALLOWED_HOSTS", []) or []
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",")]
    return [item.strip().lower() for item in value if item and item.strip()]


def is_forbidden_ip(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_forbidden_ip(mapped)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _allowlisted(host: str, ip: IPAddress, entries: Iterable[str]) -> bool:
    for entry in entries:
        if entry == host:
            return True
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            continue
        if ip.version == network.version and ip in network:
            return True
    return False


def resolve(host: str, port: int) -> list[IPAddress]:
    """Addresses of ``host``; an IP literal is returned as is without any lookup."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise errors.permanent(
            f"webhook host {host} does not resolve: {exc}", errors.INVALID_RECIPIENT
        ) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def resolve_public(url: str) -> ResolvedTarget:
    """Check ``url`` and pin it to a permitted address, or raise INVALID_RECIPIENT."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise errors.permanent(f"invalid webhook URL {url!r}", errors.INVALID_RECIPIENT) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise errors.permanent(
            f"webhook URL must be http(s) with a host: {url!r}", errors.INVALID_RECIPIENT
        )
    host = parsed.host.lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    entries = allowed_entries()
    addresses = resolve(host, port)
    if not addresses:
        raise errors.permanent(f"webhook host {host} has no address", errors.INVALID_RECIPIENT)
    # Every address must pass: a name answering both a public and a private address
    # would otherwise be a coin toss between them.
    for ip in addresses:
        if is_forbidden_ip(ip) and not _allowlisted(host, ip, entries):
            raise errors.permanent(f"webhook target {ip} is private", errors.INVALID_RECIPIENT)
    ip = addresses[0]
    netloc_host = f"[{ip}]" if ip.version == 6 else str(ip)
    default_port = 443 if parsed.scheme == "https" else 80
    host_header = parsed.host if port == default_port else f"{parsed.host}:{port}"
    if ":" in parsed.host:  # an IPv6 literal in the Host header needs its brackets
        host_header = f"[{parsed.host}]" + ("" if port == default_port else f":{port}")
    return ResolvedTarget(
        url=parsed.copy_with(host=netloc_host.strip("[]")),
        ip=str(ip),
        host_header=host_header,
        sni_hostname=parsed.host if parsed.scheme == "https" else None,
    )


async def resolve_public_async(url: str) -> ResolvedTarget:
    """:func:`resolve_public` for the sender loop. A URL whose host is an IP literal needs no
    lookup, so its answer depends on nothing but the URL and the allowlist: it is computed
    once and cached (parsing URLs and addresses was a fifth of the sender loop's time). A
    host name is resolved in a thread for every send, as before: no DNS answer is reused,
    and a slow one does not stall every other send in flight."""
    try:
        return _resolve_literal(url, tuple(allowed_entries()))
    except _NotLiteralError:
        from providers import aio

        return await aio.to_thread(resolve_public, url)


class _NotLiteralError(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def _resolve_literal(url: str, entries: tuple[str, ...]) -> ResolvedTarget:
    """``resolve_public`` for an IP-literal URL (``entries`` is the allowlist it was checked
    against, part of the cache key); raises _NotLiteralError for a host name. A refusal is
    a ProviderError and, like any exception, is not cached."""
    try:
        host = httpx.URL(url).host
        ipaddress.ip_address(host.strip("[]"))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise _NotLiteralError from None
    return resolve_public(url)
