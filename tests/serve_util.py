"""Starts `formiga serve` on a free loopback port for the serve tests (and bench/serve-load)."""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

# Loopback only: never let a proxy from the environment see test traffic.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
for _v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_v, None)

READY = re.compile(r"serving (\S+) at (http://[^ ]+/)")


class Server:
    """A running `formiga serve`; .url ends with '/'."""

    def __init__(self, binary, model, *args, env=None, timeout=120):
        cmd = [str(binary), "serve", *(["-m", str(model)] if model else []), "--port", "0", *map(str, args)]
        self.stderr_lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.time() + timeout
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = READY.search(line)
            if m:
                self.model_id, self.url = m.group(1), m.group(2)
                return
        self.proc.kill()
        raise RuntimeError(f"formiga serve did not become ready: {line!r}\n{''.join(self.stderr_lines)}")

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def port(self):
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def get(self, path, headers=None):
        req = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()

    def metrics(self):
        """The /metrics samples without labels as {name: value}; labelled ones keep their labels."""
        _, text = self.get("/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
