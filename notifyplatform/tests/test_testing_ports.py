"""The ports tests start their servers on: free, and outside the kernel's ephemeral range.

Before (tests and the launcher alike): port 0's pick, from the ephemeral range; between
the pick and the server's bind (seconds, for ``make run``'s launcher) an outgoing
connection of a parallel test could get it as its local port, and the server failed with
"address already in use"."""

from __future__ import annotations

import socket
from pathlib import Path

from notifyplatform.testing import free_port, two_free_ports


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _bind(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    return sock


def test_ports_are_free_and_below_the_ephemeral_range():
    low, _high = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(1024 < port < low for port in ports), ports
    assert len(set(ports)) > 40  # random picks: parallel tests rarely meet
    _bind(ports[0]).close()


def test_two_free_ports_are_consecutive_and_both_bindable():
    low, _high = _ephemeral_range()
    port = two_free_ports()
    assert port + 1 < low
    first, second = _bind(port), _bind(port + 1)
    first.close()
    second.close()


def test_the_launcher_picks_its_embedded_servers_ports_the_same_way():
    """`make run` and `make test` start embedded Redis (and the app when its port is taken)
    on a port picked before the server binds it: the same race as a test's server."""
    from notifyplatform.launcher.system import free_port as launcher_free_port

    low, _high = _ephemeral_range()
    ports = [launcher_free_port() for _ in range(50)]
    assert all(1024 < port < low for port in ports), ports
    assert len(set(ports)) > 40
    _bind(ports[0]).close()
