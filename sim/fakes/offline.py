"""Run a module with no network beyond 127.0.0.1: `python -m sim.fakes.offline chatbot`.

A subprocess test of a process that must not reach an exchange runs it under this guard, so
a regression fails the test instead of touching the internet. Every name lookup or connection
outside loopback is refused (as a failed lookup or an unreachable network, which clients treat
as a network error) and reported on stderr with the line `offline: refused <host>`.
"""

from __future__ import annotations

import errno
import runpy
import socket
import sys

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
MARK = "offline: refused"


def _refuse(host: object) -> None:
    print(f"{MARK} {host}", file=sys.stderr, flush=True)


def install() -> None:
    lookup = socket.getaddrinfo
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_lookup(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            _refuse(name)
            raise socket.gaierror(socket.EAI_NONAME, f"{MARK} {name}")
        return lookup(host, *args, **kwargs)

    def allowed(sock: socket.socket, address) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        if address[0] in LOOPBACK:
            return True
        _refuse(address[0])
        return False

    def guarded_connect(sock, address):
        if not allowed(sock, address):
            raise OSError(errno.ENETUNREACH, f"{MARK} {address[0]}")
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        return connect_ex(sock, address) if allowed(sock, address) else errno.ENETUNREACH

    socket.getaddrinfo = guarded_lookup
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
