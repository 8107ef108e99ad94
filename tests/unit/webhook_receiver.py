"""A webhook receiver on 127.0.0.1 (http.server in a thread): records every POST and answers with planned statuses."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A planned answer that is no answer: the receiver reads the request, then keeps the connection silent.
SILENT = 0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    posts: list[Received] = field(default_factory=list)
    # Answers for the next POSTs, in order; then 200.
    answers: list[int] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def answer(self, *statuses: int) -> None:
        self.answers.extend(statuses)


@contextmanager
def running() -> Iterator[Receiver]:
    """A receiver on a free port for the block; its url ends in /hooks/cadence."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.posts.append(Received(self.path, dict(self.headers.items()), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            if status == SILENT:
                receiver.released.wait(10)  # until the block ends: the client's read times out first
                return
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:  # no request lines on stderr
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/cadence")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
