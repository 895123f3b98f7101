"""What a connection's row records about its client beyond the protocol:
``device_info`` (parsed from the User-Agent), ``compression_enabled``
(permessage-deflate), ``geo_location`` (a trusted proxy's header) and
``bandwidth_usage`` (bytes per minute in and out).

permessage-deflate (RFC 7692)
    daphne serves websockets with autobahn, which negotiates compression only when
    its ``perMessageCompressionAccept`` option answers the client's offers; daphne
    never sets it, so stock daphne refuses every offer. autobahn reads the option from
    the connection's protocol object when it completes the opening handshake, which
    daphne does when the application accepts (``serverAccept``), i.e. after our
    consumer's ``connect`` has run. So the consumer sets the option on its own
    connection's protocol just before accepting (``offer_compression``) and reads the
    outcome right after (``compression_negotiated``): no daphne subclass, no change to
    how daphne is started. Off with ``NP_WS_COMPRESSION=0``. Each compressed connection
    keeps a zlib compressor (window at most ``NP_WS_COMPRESSION_WINDOW_BITS``, memory
    level ``NP_WS_COMPRESSION_MEM_LEVEL``: a smaller window than the client's is always
    decodable) and sends its events through autobahn, which compresses them, instead of
    the shared ready frames of ``realtime.wire``.

Geo location
    Only from the header named by ``NP_WS_GEO_HEADER`` and only when the TCP peer (not
    a forwarded address) is one of ``NP_WS_TRUSTED_PROXIES``; off by default. The
    header is either a country code (``CF-IPCountry: DE``) or ``key=value`` pairs
    separated by ``;`` or ``,`` (``country=DE; region=BE; city=Berlin``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
from collections import OrderedDict
from typing import Any

from ua_parser import parse as parse_user_agent

from . import conf

# --- device_info ----------------------------------------------------------------------


def _version(*parts: str | None) -> str | None:
    present = [p for p in parts if p]
    return ".".join(present) if present else None


@functools.lru_cache(maxsize=2048)
def device_info(user_agent: str) -> dict[str, Any] | None:
    """The browser, OS and device of a User-Agent (ua-parser, uap-core's rules); None
    when the string names none of them. Cached: a fleet of clients shares few strings."""
    if not user_agent:
        return None
    result = parse_user_agent(user_agent[:1000])
    agent, os_, device = result.user_agent, result.os, result.device
    if agent is None and os_ is None and device is None:
        return None
    info: dict[str, Any] = {
        "browser": (
            {"family": agent.family, "version": _version(agent.major, agent.minor, agent.patch)}
            if agent is not None
            else None
        ),
        "os": (
            {"family": os_.family, "version": _version(os_.major, os_.minor, os_.patch)}
            if os_ is not None
            else None
        ),
        "device": (
            {"family": device.family, "brand": device.brand, "model": device.model}
            if device is not None
            else None
        ),
        "parser": "ua-parser",
    }
    info["is_bot"] = device is not None and device.family == "Spider"
    return info


# --- permessage-deflate ---------------------------------------------------------------


def _daphne_protocol(send: Any) -> Any:
    """The autobahn/daphne protocol object behind daphne's ASGI ``send``
    (``partial(server.handle_reply, protocol)``), or None under any other server."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne is a dependency
        return None
    protocol = getattr(send, "args", (None,))[0] if getattr(send, "args", None) else None
    return protocol if isinstance(protocol, WebSocketProtocol) else None


def _deflate_acceptor(max_message_size: int | None) -> Any:
    from autobahn.websocket.compress import (
        PerMessageDeflateOffer,
        PerMessageDeflateOfferAccept,
    )

    window_bits = conf.get("NP_WS_COMPRESSION_WINDOW_BITS")
    mem_level = conf.get("NP_WS_COMPRESSION_MEM_LEVEL")

    def accept(offers: list[Any]) -> Any:
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                # a smaller compression window than the client's is always decodable;
                # one larger than a window the client asked for is not
                bits = window_bits
                if offer.request_max_window_bits:
                    bits = min(bits, offer.request_max_window_bits)
                return PerMessageDeflateOfferAccept(
                    offer,
                    window_bits=bits,
                    mem_level=mem_level,
                    # a client's compressed frame may not inflate past daphne's limit
                    max_message_size=max_message_size,
                )
        return None

    return accept


def offer_compression(send: Any) -> bool:
    """Let this connection's handshake accept a permessage-deflate offer (call before
    ``accept``). False when not under daphne or turned off."""
    if not conf.get("NP_WS_COMPRESSION"):
        return False
    protocol = _daphne_protocol(send)
    if protocol is None:
        return False
    limit = getattr(protocol, "maxMessagePayloadSize", 0) or None
    protocol.perMessageCompressionAccept = _deflate_acceptor(limit)
    return True


def compression_negotiated(send: Any) -> bool:
    """Whether the accepted handshake agreed on per-message compression."""
    protocol = _daphne_protocol(send)
    return protocol is not None and getattr(protocol, "_perMessageCompress", None) is not None


def transport_peer(send: Any, scope: dict[str, Any]) -> str | None:
    """The address of the TCP peer itself (what a proxy check must use: daphne's
    ``--proxy-headers`` puts the forwarded address into the scope's ``client``)."""
    protocol = _daphne_protocol(send)
    if protocol is not None and getattr(protocol, "transport", None) is not None:
        peer = protocol.transport.getPeer()
        host = getattr(peer, "host", None)
        if host:
            return str(host)
    client = scope.get("client")
    return str(client[0]) if client else None


# --- geo_location ---------------------------------------------------------------------

GEO_KEYS = {
    "country": "country",
    "country_code": "country",
    "region": "region",
    "city": "city",
    "postal": "postal",
    "postal_code": "postal",
    "latitude": "latitude",
    "lat": "latitude",
    "longitude": "longitude",
    "lon": "longitude",
    "lng": "longitude",
    "timezone": "timezone",
    "continent": "continent",
}
_COUNTRY = re.compile(r"^[A-Za-z0-9]{2}$")


@functools.lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def trusted_proxy(peer: str | None) -> bool:
    proxies = conf.get("NP_WS_TRUSTED_PROXIES")
    if not peer or not proxies:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(proxies)))


def parse_geo(value: str) -> dict[str, Any] | None:
    """A geo header's value as ``{country, region, city, latitude, longitude, ...}``;
    None when it is empty or malformed (never trusted half-way)."""
    value = value.strip()
    if not value or len(value) > 500:
        return None
    if "=" not in value:
        return {"country": value.upper()} if _COUNTRY.match(value) else None
    geo: dict[str, Any] = {}
    for part in re.split(r"[;,]", value):
        if not part.strip():
            continue
        key, sep, item = part.partition("=")
        name = GEO_KEYS.get(key.strip().lower())
        item = item.strip().strip('"')
        if not sep or name is None or not item or len(item) > 100:
            continue
        if name in ("latitude", "longitude"):
            try:
                number = float(item)
            except ValueError:
                return None
            limit = 90 if name == "latitude" else 180
            if not -limit <= number <= limit:
                return None
            geo[name] = number
        elif name == "country":
            if not _COUNTRY.match(item):
                return None
            geo[name] = item.upper()
        else:
            geo[name] = item
    return geo or None


def geo_location(headers: dict[bytes, bytes], peer: str | None) -> dict[str, Any] | None:
    """The connection's location from ``NP_WS_GEO_HEADER``, only when ``peer`` is a
    trusted proxy."""
    header = conf.get("NP_WS_GEO_HEADER")
    if not header or not trusted_proxy(peer):
        return None
    raw = headers.get(header.lower().encode("latin-1"))
    if raw is None:
        return None
    geo = parse_geo(raw.decode("latin-1"))
    if geo is not None:
        geo["source"] = header
    return geo


# --- bandwidth_usage ------------------------------------------------------------------


class BandwidthMeter:
    """Bytes in and out per wall-clock minute for the last ``NP_WS_BANDWIDTH_MINUTES``
    minutes, kept in memory and written with the connection's counters (never per
    frame). The row's ``bandwidth_usage``::

        {"unit": "bytes/minute", "minutes": [{"minute": "2026-12-01T21:30Z",
          "in": 120, "out": 4500}, ...], "total_in": ..., "total_out": ...}
    """

    __slots__ = ("buckets", "keep", "total_in", "total_out", "changed")

    def __init__(self) -> None:
        self.buckets: OrderedDict[int, list[int]] = OrderedDict()
        self.keep: int = conf.get("NP_WS_BANDWIDTH_MINUTES")
        self.total_in = 0
        self.total_out = 0
        self.changed = False

    def _bucket(self) -> list[int]:
        minute = int(time.time() // 60)
        bucket = self.buckets.get(minute)
        if bucket is None:
            bucket = self.buckets[minute] = [0, 0]
            while len(self.buckets) > self.keep:
                self.buckets.popitem(last=False)
        return bucket

    def received(self, nbytes: int) -> None:
        self._bucket()[0] += nbytes
        self.total_in += nbytes
        self.changed = True

    def sent(self, nbytes: int) -> None:
        self._bucket()[1] += nbytes
        self.total_out += nbytes
        self.changed = True

    def take(self) -> dict[str, Any] | None:
        """The usage to write, or None when nothing changed since the last take."""
        if not self.changed:
            return None
        self.changed = False
        return {
            "unit": "bytes/minute",
            "minutes": [
                {
                    "minute": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(minute * 60)),
                    "in": counts[0],
                    "out": counts[1],
                }
                for minute, counts in self.buckets.items()
            ],
            "total_in": self.total_in,
            "total_out": self.total_out,
        }
