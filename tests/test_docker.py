"""The Docker build flow, built and run for real, with Docker and with podman.

No Docker engine runs on the machines this project is tested on, and registry images
cannot be pulled, so as root the test makes both engines: docker/setup-docker.sh installs
Debian's docker.io and starts dockerd (without a bridge), docker/setup-podman.sh installs
rootful podman. For each it builds the stand-in base (docker/build-base.sh) and the image
(docker/run.sh builds it when missing), runs a flow in the container through
docker/run.sh and checks that it gives what the same flow gives on the host: accumulator
widths and ranges, the RTL and its ROM contents byte for byte, the RTL simulation bit-exact,
the same accuracies. Images are kept between runs under tags keyed on the files they are
built from (a change rebuilds them), so a second run only runs the flows.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
FLOW = "flows/digits_mlp.toml"
# the default flow without synthesize and handoff (three yosys runs would triple its time),
# with the ECP5 place and route of the design itself: the bitstream must be the same bytes
STEPS = '["build_models","quantize","export","annotate","validate","lower","fold","rtl","simulate","place_route","report"]'
FPGA = "fpga.compare_widths=false"
BASE_REPO, IMAGE_REPO = "axe-deploy-base", "axe-deploy"
SETUP = {"docker": "setup-docker.sh", "podman": "setup-podman.sh"}

pytestmark = pytest.mark.slow


def _why_not_here():
    if not sys.platform.startswith("linux"):
        return "the podman route needs Linux"
    if os.geteuid() != 0:
        return "not root: the test installs the container engines and builds a root file system"
    if shutil.which("apt-get") is None:
        return "no apt-get: docker/setup-docker.sh and setup-podman.sh install the engines with apt-get"
    return None


def _content_tag(repo: str, files: list[Path], *extra: str) -> str:
    """repo:test-<hash of the files the image is built from>: a change gives a new tag."""
    digest = hashlib.sha256("\0".join(extra).encode())
    for f in files:
        digest.update(f.read_bytes())
    return f"{repo}:test-{digest.hexdigest()[:12]}"


def _run(cmd, log: Path, timeout: float, **kw) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n"
                    + "\n".join(log.read_text().splitlines()[-30:]))
    return proc


def _engine(engine: str, *args: str) -> subprocess.CompletedProcess:
    """The engine with the flags docker/run.sh gives it."""
    return subprocess.run(["bash", "-c", 'source "$0" && select_engine && "${engine[@]}" "$@"',
                           str(DOCKER / "engine.sh"), *args],
                          capture_output=True, text=True, env={**os.environ, "AXE_CONTAINER_ENGINE": engine})


def _has_image(engine: str, tag: str) -> bool:
    return _engine(engine, "image", "inspect", tag).returncode == 0


def _remove_stale_images(engine: str, keep: set[str]):
    """Images of earlier runs of this test (other hashes); nobody else makes these tags."""
    listed = _engine(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    for ref in listed:
        name = ref.removeprefix("localhost/")
        if name.startswith((f"{IMAGE_REPO}:test-", f"{BASE_REPO}:test-")) and name not in keep:
            _engine(engine, "rmi", name)


def _stop(pid: int):
    """SIGTERM, and wait until it has exited (a zombie has: nobody here reaps it)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
    """The flow on the host, started once and awaited by the tests: it needs no image, so
    it runs while they set up their engines."""
    if _why_not_here():
        yield None  # the tests skip
        return
    out = tmp_path_factory.mktemp("host")
    log = open(out / "host.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "axe_deploy.cli.main", "run", FLOW, "--out", str(out / "build"),
         "--set", f"flow.steps={STEPS}", "--set", FPGA],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})

    def finished() -> Path:
        assert proc.wait(timeout=900) == 0, (out / "host.log").read_text()[-3000:]
        return out / "build"
    yield finished
    proc.kill()
    proc.wait()
    log.close()


def _comparable(report: dict) -> dict:
    """What must not depend on where the flow ran (times and paths left out)."""
    layer_keys = ("name", "weight_datatype", "input_datatype", "accumulator_datatype",
                  "accumulator_range", "datatype_bound_bits", "exact_bits", "overflow_free",
                  "observed_range")
    sim = report["hardware"]["rtl_sim"]
    return {
        "accuracy": {k: v for k, v in report["metrics"].items() if k.endswith("accuracy")},
        # float32 forward passes: the last bits follow the CPU's kernels (MKL_CBWR, ...), the bound does not
        "within_atol": report["metrics"]["within_atol"],
        "layers": [{k: layer.get(k) for k in layer_keys} for layer in report["layers"]],
        "hardware_layers": report["hardware"]["layers"],
        "rtl_sim": {k: sim[k] for k in ("simulator", "vectors", "bit_exact_vectors", "overflows",
                                        "cycles_measured")},
    }


def _rtl_files(out: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted((out / "rtl").glob("*")) if f.suffix in (".v", ".hex")}


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_flow_in_the_container_matches_the_host(engine, host_run, tmp_path, request):
    # CI (AXE_DEPLOY_REQUIRE_TOOLS=1) must run it: there a reason to skip is a failure
    skip = pytest.fail if os.environ.get("AXE_DEPLOY_REQUIRE_TOOLS") == "1" else pytest.skip
    why = _why_not_here()
    if why:
        skip(why)
    times = {}
    test_start = start = time.monotonic()
    setup = subprocess.run(["bash", str(DOCKER / SETUP[engine])], capture_output=True, text=True)
    if setup.returncode == 2:
        skip(setup.stderr.strip())
    assert setup.returncode == 0, setup.stderr
    started = re.search(r"started dockerd .*\(pid (\d+)", setup.stdout)
    if started:  # a daemon this test started stops with it; its images stay in /var/lib/docker
        request.addfinalizer(lambda: _stop(int(started.group(1))))
    times["setup"] = time.monotonic() - start

    # the base differs by engine: under Docker it leaves out the local indexes it cannot mount
    base = _content_tag(BASE_REPO, [DOCKER / "build-base.sh", DOCKER / "engine.sh"], engine)
    image = _content_tag(IMAGE_REPO, [DOCKER / "Dockerfile", DOCKER / "install-system-tools.sh",
                                      REPO / "pyproject.toml"], base)
    _remove_stale_images(engine, {base, image})
    cached = _has_image(engine, image)
    if not cached and not _has_image(engine, base):
        start = time.monotonic()
        log = tmp_path / "base.log"
        _run(["nice", "-n", "10", "bash", str(DOCKER / "build-base.sh")], log, timeout=900,
             env={**os.environ, "AXE_BASE_TAG": base, "AXE_CONTAINER_ENGINE": engine})
        assert log.read_text().split()[-1] == base  # it prints its tag last
        times["base"] = time.monotonic() - start

    env = {**os.environ, "AXE_CONTAINER_ENGINE": engine, "AXE_DOCKER_TAG": image,
           "BASE_IMAGE": base, "AXE_BUILD_DIR": str(tmp_path / "container")}
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    # run.sh builds the image when it is missing: that is part of what is tested
    _run(["nice", "-n", "10", "bash", str(DOCKER / "run.sh"), FLOW, "--set", f"flow.steps={STEPS}", "--set", FPGA],
         tmp_path / "container.log", timeout=1800, env=env, stdin=subprocess.DEVNULL)
    times["image build + container flow" if not cached else "container flow"] = time.monotonic() - start

    # `docker/run.sh bash` is a shell in the image, with the tools and the mounted sources
    shell = subprocess.run(
        ["bash", str(DOCKER / "run.sh"), "bash"], env=env, capture_output=True, text=True, timeout=300,
        input="command -v verilator iverilog yosys\n"
              "python -c 'import axe_deploy; print(axe_deploy.__file__)'\n")
    assert shell.returncode == 0, shell.stderr
    lines = shell.stdout.split()
    assert [Path(p).name for p in lines[:3]] == ["verilator", "iverilog", "yosys"], shell.stdout
    assert lines[3] == "/workspace/axe-deploy/axe_deploy/__init__.py", shell.stdout

    host_out = host_run()
    container_out = tmp_path / "container" / Path(FLOW).stem
    host_report = json.loads((host_out / "report.json").read_text())
    container_report = json.loads((container_out / "report.json").read_text())
    ours = _comparable(container_report)
    assert ours == _comparable(host_report)
    sim = ours["rtl_sim"]
    assert sim["vectors"] == host_report["metrics"]["test_samples"] == sim["bit_exact_vectors"] > 0
    assert sim["overflows"] == 0
    rtl = _rtl_files(container_out)
    assert rtl and rtl == _rtl_files(host_out)
    placed = host_report["hardware"]["place_route"]
    assert host_report["checks"]["timing_met"]["passed"] == placed["timing_met"]
    assert placed["timing_met"] and min(placed["fmax_mhz"].values()) >= placed["target_mhz"] == 100.0
    assert placed["inferences_per_second"] > 0 and placed["utilisation"]["LUT4"]["used"] > 0
    bitstream = (container_out / "fpga" / "axe_top.bit").read_bytes()
    assert len(bitstream) > 0 and bitstream == (host_out / "fpga" / "axe_top.bit").read_bytes()
    assert container_report["hardware"]["place_route"]["utilisation"] == host_report["hardware"]["place_route"]["utilisation"]
    times["total"] = time.monotonic() - test_start
    print(f"{engine} test times (s):", {k: round(v) for k, v in times.items()})
