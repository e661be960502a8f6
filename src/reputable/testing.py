"""Public test helpers: a loopback `reputable serve` process and free ports (no outside traffic)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from reputable.config import DEFAULT_TOML


def free_port() -> int:
    """Return a port that is free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP+TCP port on 127.0.0.1")


def write_config(directory: Path, *, dns_port: int, extra: str = "", **dns: str) -> Path:
    """Write a reputable.toml in *directory* serving DNS on 127.0.0.1:*dns_port*."""
    text = DEFAULT_TOML.replace('listen = ["127.0.0.1:5300"]', f'listen = ["127.0.0.1:{dns_port}"]')
    for key, value in dns.items():
        text = text.replace("[dns]\n", f"[dns]\n{key} = {value}\n", 1)
    path = directory / "reputable.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def cli(
    config: Path, *args: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``reputable --config CONFIG ARGS...`` in a subprocess and return its result."""
    result = subprocess.run(
        [sys.executable, "-m", "reputable", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"reputable {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


class RunningServer:
    """`reputable serve` on loopback for the duration of a ``with`` block."""

    def __init__(
        self, config: Path, *, metrics_port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.metrics_port = metrics_port or free_port()
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = config.parent / "serve.log"

    def __enter__(self) -> RunningServer:
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reputable",
                "--config",
                str(self.config),
                "serve",
                "--metrics",
                f"127.0.0.1:{self.metrics_port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "serve_ready" in self.log_path.read_text():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"reputable serve did not start:\n{self.log_path.read_text()}")

    def log(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
