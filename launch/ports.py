"""Loopback ports for the tasks of a local cluster, and whether a task's ports are still free.

A chief's and each worker's tf.data server listen beside the task's gRPC
port, on port + `cluster.data_service_port_offset` (1 by default, all the
launcher supports), so a task owns one or two consecutive ports.
"""
from __future__ import annotations

import socket

DATA_SERVICE_PORTS = 1  # the tf.data servers' ports beside each task's (the default offset 1)


def ports_of(role: str, port: int) -> list[int]:
    """The ports a task listens on: its server's, for chief and workers its tf.data server's; the evaluator none."""
    if role == "evaluator":
        return []
    return [port + k for k in range(1 + (DATA_SERVICE_PORTS if role in ("chief", "worker") else 0))]


def free_port(also_free: int = DATA_SERVICE_PORTS) -> int:
    """A free loopback port p whose next `also_free` ports are free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + also_free < 65536 and all(is_free(port + k) for k in range(1, also_free + 1)):
            return port


def is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now: no other socket listens there.

    SO_REUSEADDR, as gRPC's servers set it: the connections a killed server
    leaves in TIME_WAIT on its port do not keep a restarted one from it.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
