"""Ray executor for ``axe-deploy sweep --ray [ADDRESS]``: every (method, P, T, seed) point a task.

Without an address a local Ray runtime starts with ``workers`` CPUs (and whatever GPUs
torch sees) and stops at the end; with one the sweep joins that cluster (``ray start
--head`` on one machine, ``ray start --address=HEAD:6379`` on the others). The driver
stays what it is in-process: it trains or loads the float model of every seed once
into the zoo cache, then submits the points and writes sweep.json alone, one point at a
time as tasks finish. Workers build their bundles from the zoo cache
(``AXE_DEPLOY_CACHE``: inherited on the local runtime; on a cluster put it on shared
storage, or each machine trains a seed's float model once, at its first point): nothing is
re-trained per point, and only the flow table travels in the object store.

A point runs on one CPU, or on one CPU and one GPU when the flow asks for
``quant.device = "cuda"``; a failed task (an exception, a worker that died) is recorded as
a failed point and the others go on.
"""

from __future__ import annotations

from axe_deploy.flow.config import FlowConfig

import logging
import os
import socket
from collections.abc import Iterator

import torch

from axe_deploy.flow.sweep import check_request, failed_point, point_or_record, sweep

# a small object store: only flow tables and point records travel through it
OBJECT_STORE_BYTES = 100 * 1024 * 1024


def _ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'axe-deploy[ray]'") from None
    return ray


def unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at a Ray ``address`` (HOST:PORT, or ray://HOST:PORT), None when a
    TCP connection opens ("auto": Ray finds the cluster of this machine itself). Ray's own
    connect retries for minutes."""
    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return "not HOST:PORT"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__


def _warm_up() -> None:
    """Import what a point needs (seconds of torch and Brevitas), while the driver prepares."""
    import axe_deploy.zoo  # noqa: F401


def _point_task(cfg: FlowConfig, job: tuple) -> dict:
    """What a Ray worker runs: one point, with the thread count the CLI uses in-process."""
    torch.set_num_threads(int(os.environ.get("AXE_DEPLOY_THREADS", "1")))
    return point_or_record(cfg, *job)


class RayExecutor:
    """``with RayExecutor(address, workers) as run: sweep(..., executor=run)``; the runtime it
    started (none when it joined a cluster or Ray was already up) is shut down on exit."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"--workers {workers}: give at least 1")
        if address and workers is not None:
            raise ValueError("--workers sets the CPUs of a local Ray runtime; a cluster at --ray ADDRESS "
                             "has the CPUs its machines were started with")
        self.address, self.workers = address, workers
        self.started = False

    def __enter__(self) -> "RayExecutor":
        ray = _ray()
        if ray.is_initialized():
            return self
        common = dict(include_dashboard=False, log_to_driver=False)
        if self.address:
            why = unreachable(self.address)
            if why:
                raise ValueError(f"--ray {self.address}: no Ray cluster answers there ({why}); `ray start --head` "
                                 f"prints the address to use, or leave ADDRESS out for a local runtime")
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, **common)
            except (ConnectionError, RuntimeError, ValueError) as e:
                why = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ValueError(f"--ray {self.address}: cannot join a Ray cluster there ({why}); start one "
                                 f"with `ray start --head` and pass its address") from None
        else:
            # workers at the driver's priority: Ray's default of 15 nicer starves them next to
            # any other work on the machine, though they are this runtime's only purpose
            ray.init(num_cpus=self.workers or os.cpu_count(), object_store_memory=OBJECT_STORE_BYTES,
                     _system_config={"worker_niceness": 0}, logging_level=logging.ERROR, **common)
        self.started = True
        # one import per CPU while the driver loads the float models; nobody waits for them
        warm = ray.remote(_warm_up).options(num_cpus=1)
        self._warming = [warm.remote() for _ in range(int(ray.cluster_resources().get("CPU", 1)))]
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            _ray().shutdown()
            self.started = False

    def check_device(self, cfg: FlowConfig) -> None:
        """A flow that asks for CUDA needs a GPU somewhere in the cluster (not on the driver)."""
        if cfg.quant.device == "cuda" and _ray().cluster_resources().get("GPU", 0) < 1:
            raise ValueError('quant.device = "cuda" but the Ray cluster has no GPU; start its GPU machines '
                             'with `ray start` there, or use quant.device = "auto" or "cpu"')

    def __call__(self, cfg: FlowConfig, jobs: list[tuple]) -> Iterator[dict]:
        """Submit every job, yield each point as it finishes; cancels what is left when stopped."""
        ray = _ray()
        task = ray.remote(_point_task).options(num_cpus=1, num_gpus=int(cfg.quant.device == "cuda"),
                                               max_retries=1)
        cfg_ref = ray.put(cfg)
        pending = {task.remote(cfg_ref, job): job for job in jobs}
        try:
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                for ref in finished:
                    job = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as e:  # the worker died; point_or_record never raises
                        yield failed_point(job, f"{type(e).__name__}: {str(e).splitlines()[0]}")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def sweep_on_ray(cfg: FlowConfig, out, *, address: str | None = None, workers: int | None = None, progress: bool = True,
                 **asked) -> dict:
    """``axe_deploy.flow.sweep.sweep`` with its points as Ray tasks (see the module docstring)."""
    check_request(**asked)  # before a runtime starts
    with RayExecutor(address, workers) as run:
        run.check_device(cfg)
        return sweep(cfg, out, progress=progress, executor=run, device_check=False, **asked)
