"""A proxy on 127.0.0.1 that answers S3's ``503 SlowDown`` instead of forwarding, as an overloaded
object store does; built on the integration suite's latency proxy."""

from __future__ import annotations

import socket
import threading

from ..integration._proxy import Proxy

_SLOWDOWN = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
             b"<Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>")
_RESPONSE = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
             b"Content-Length: " + str(len(_SLOWDOWN)).encode() + b"\r\n\r\n" + _SLOWDOWN)


class ThrottlingProxy(Proxy):
    """Forwards to ``target_port``, except that each request on a new connection answers ``503 SlowDown``
    while ``throttle_next`` > 0 (counted down per answer), or always while ``throttle_all`` is set."""

    def __init__(self, target_port: int) -> None:
        self.throttle_next = 0
        self.throttle_all = False
        self.throttled = 0
        self._count_lock = threading.Lock()
        super().__init__(target_port)

    def _take(self) -> bool:
        with self._count_lock:
            if self.throttle_all or self.throttle_next > 0:
                self.throttle_next = max(0, self.throttle_next - 1)
                self.throttled += 1
                return True
            return False

    def _serve(self, client: socket.socket) -> None:
        if not self._take():
            super()._serve(client)
            return
        try:
            client.settimeout(10)
            client.recv(1 << 16)  # the request's head (a GET or HEAD is one chunk)
            client.sendall(_RESPONSE)
        except OSError:
            pass
        finally:
            client.close()
