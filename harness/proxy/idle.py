"""What the server says to a connection that listens, between its rounds (a
notification of a channel it listens on, a notice), goes to the client as it
arrives, as it would on a direct connection.

One thread per gate, started when a connection first sends a LISTEN, waits on the
server sides of such connections while they are not in a round (epoll); a round
takes its connection out of the watch before it sends and puts it back when it is
done, so the thread never wakes for a round's answer. Connections that never
listened are not watched (nothing comes between their rounds but rare notices,
which reach the client with the next round's answer).
"""

from __future__ import annotations

import contextlib
import select
import threading

from racesim.proxy.link import Link


class IdleWatch:
    """The thread relaying what arrives for connections between rounds."""

    def __init__(self) -> None:
        self.poll = select.epoll()
        self.links: dict[int, Link] = {}
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name="racesim-proxy-idle", daemon=True)
        self.thread.start()

    def watch(self, link: Link) -> None:
        fd = link.up.fileno()
        if fd < 0:
            return
        self.links[fd] = link
        with contextlib.suppress(OSError, ValueError):
            self.poll.register(fd, select.EPOLLIN)

    def unwatch(self, link: Link) -> None:
        fd = link.up.fileno()
        if self.links.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self.poll.unregister(fd)

    def _loop(self) -> None:
        while not self.stopped:
            try:
                events = self.poll.poll(0.25)
            except (OSError, ValueError):
                return
            for fd, _ in events:
                link = self.links.get(fd)
                if link is not None:
                    link.relay_idle()

    def close(self) -> None:
        self.stopped = True
        self.thread.join(timeout=2)
        self.poll.close()
