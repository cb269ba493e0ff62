"""Escape attempts a reward program could make once it has real Python, and the observer
that sees from outside whether one got out (shared by the OS-layer tests)."""

import os
import signal
import socket
import time

# Attempts a program could make once it has real Python; {marker} is a file path in tmp_path,
# {port} a listening local socket, {pid} this test process.
ESCAPES = {
    "write-file": "open({marker!r}, 'w').write('pwned')",
    "create-file": "import os\nos.close(os.open({marker!r}, os.O_CREAT | os.O_RDONLY))",
    "shell": "import os\nif os.system('touch {marker}') != 0:\n    raise OSError('shell failed')",
    "subprocess": "import subprocess\nsubprocess.run(['touch', {marker!r}], check=True)",
    "fork": "import os\nif os.fork() == 0:\n    open({marker!r}, 'w')\n    os._exit(0)",
    "socket": "import socket\nc = socket.socket()\nc.connect((b'127.0.0.1', {port}))\n"
              "c.sendall(b'x')",
    "signal-parent": "import os, signal\nos.kill({pid}, signal.SIGUSR1)",
}


class Observer:
    """What an escape would leave behind, watched from outside the sandbox."""

    escapes = ESCAPES

    def __init__(self, tmp_path):
        self.marker = tmp_path / "escaped"
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.server.setblocking(False)
        self.signals = []
        self.previous = signal.signal(signal.SIGUSR1, lambda *_: self.signals.append(1))

    def fill(self, template: str) -> str:
        return template.format(marker=str(self.marker), port=self.server.getsockname()[1],
                               pid=os.getpid())

    def escaped(self) -> list[str]:
        time.sleep(0.2)  # a forked grandchild or a signal may land a moment later
        seen = []
        if self.marker.exists():
            seen.append("file")
        try:
            self.server.accept()[0].close()
            seen.append("socket")
        except BlockingIOError:
            pass
        if self.signals:
            seen.append("signal")
        return seen

    def close(self):
        self.server.close()
        signal.signal(signal.SIGUSR1, self.previous)
