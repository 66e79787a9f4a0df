"""What one client may cost ``openwatch serve``, and the listening socket that caps connections.

The numbers are the contract the unit's LimitNOFILE/TasksMax/MemoryMax are sized from
(bench/http_server.py measures the cost per connection):

- request line + headers: at most ``MAX_HEADER_BYTES`` buffered per connection (h11 answers 431/400 past it);
- a body: at most ``MAX_BODY`` bytes, received within ``BODY_DEADLINE`` seconds (else 408 and close);
  a declared body over ``MAX_BODY`` but not over ``DRAIN_LIMIT`` is read and discarded (never kept)
  before the 413, so a client still sending it reads the answer instead of a reset; larger ones are
  answered at once and the connection closed;
- the TLS handshake, then each request's headers, must arrive within ``HEADER_DEADLINE`` seconds of the
  connection being opened or the previous response being sent; that same timer closes an idle keep-alive
  connection, so a client trickling bytes is cut off whatever its pace;
- at most ``server.max_connections`` connections; the next ones are closed at once, on accept.
"""

from __future__ import annotations

import contextlib
import socket
import threading

HEADER_DEADLINE = 10.0
BODY_DEADLINE = 10.0
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY = 64 * 1024
DRAIN_LIMIT = 1024 * 1024
TLS_READ_BUFFER = 32 * 1024  # asyncio's default, 256 KiB per connection, dominated the memory cost
DB_WORKERS_EXTRA = 4  # threads for blocking database work: the pool's size plus these (argon2 checks)


class CappedListener(socket.socket):
    """A listening socket whose ``accept`` closes, at once, any connection beyond ``cap`` open ones.

    asyncio accepts by calling the listening socket's ``accept``; each accepted socket counts itself
    down when the transport closes it. Closing (rather than a 503) costs no TLS handshake.
    """

    cap: int
    refused: int

    def set_cap(self, cap: int) -> None:
        self.cap = cap
        self.refused = 0
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open_connections(self) -> int:
        return self._open

    def accept(self) -> tuple[socket.socket, object]:
        while True:
            fd, addr = self._accept()  # type: ignore[attr-defined]  # socket.accept's own primitive
            with self._lock:
                full = self._open >= self.cap
                if not full:
                    self._open += 1
            if not full:
                conn = _Counted(self.family, self.type, self.proto, fileno=fd)
                conn.owner = self
                return conn, addr
            self.refused += 1
            with contextlib.suppress(OSError):
                socket.close(fd)

    def released(self) -> None:
        with self._lock:
            self._open -= 1


class _Counted(socket.socket):
    owner: CappedListener | None = None

    def close(self) -> None:
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.released()
        super().close()

    def detach(self) -> int:
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.released()
        return super().detach()
