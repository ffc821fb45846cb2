"""The test suite's network guard: only loopback addresses (and local sockets) may be reached."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import _is_local


def test_guard_is_installed_for_every_test() -> None:
    assert socket.socket.connect.__name__ == "guarded_connect"
    assert socket.socket.connect_ex.__name__ == "guarded_connect_ex"


@pytest.mark.parametrize(
    ("address", "local"),
    [
        (("127.0.0.1", 80), True),
        (("127.8.9.10", 80), True),
        (("::1", 80, 0, 0), True),
        (("localhost", 80), True),
        ("/tmp/some.sock", True),
        (("192.0.2.1", 80), False),
        (("example.org", 443), False),
    ],
)
def test_only_loopback_counts_as_local(address: object, local: bool) -> None:
    assert _is_local(address) is local


def test_a_connection_elsewhere_is_refused_before_any_packet() -> None:
    with socket.socket() as sock, pytest.raises(RuntimeError, match="only loopback is allowed"):
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1: refused by the guard before the connect syscall
