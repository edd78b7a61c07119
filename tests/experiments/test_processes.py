"""map_in_processes: the jobs' results in their order, whatever the number of workers; the
first error stops every worker at once; no worker outlives its parent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vqkit.experiments._processes import map_in_processes

ROOT = Path(__file__).resolve().parents[2]


def _affine(scale, x, y):
    return scale * x + y, os.getpid()


def _fail_first_or_sleep(x):
    if x == 0:
        raise ValueError("job 0 failed")
    time.sleep(60)
    return x


def _touch_and_sleep(directory, x):
    Path(directory, str(os.getpid())).touch()
    time.sleep(60)
    return x


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_results_are_in_job_order_and_do_not_depend_on_the_workers():
    before = set(multiprocessing.active_children())
    jobs = [(x, 10 * x) for x in range(5)]
    expected = [3 * x + 10 * x for x in range(5)]
    one = map_in_processes(_affine, jobs, shared=(3,), workers=1)
    two = map_in_processes(_affine, jobs, shared=(3,), workers=2, order=[4, 2, 0, 1, 3])
    assert [r for r, _ in one] == [r for r, _ in two] == expected
    assert {pid for _, pid in one} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in two}  # ... and they ran elsewhere
    assert set(multiprocessing.active_children()) <= before


def test_the_first_error_terminates_every_worker_and_is_raised():
    before = set(multiprocessing.active_children())
    start = time.perf_counter()
    with pytest.raises(ValueError, match="job 0 failed"):
        map_in_processes(_fail_first_or_sleep, [(x,) for x in range(4)], workers=2)
    # The other jobs sleep 60 s each: only terminating them returns this early.
    assert time.perf_counter() - start < 30
    assert set(multiprocessing.active_children()) <= before


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    code = ("import sys; from tests.experiments.test_processes import _touch_and_sleep; "
            "from vqkit.experiments._processes import map_in_processes; "
            "map_in_processes(_touch_and_sleep, [(0,), (1,)], shared=(sys.argv[1],), "
            "workers=2)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            assert parent.poll() is None, "the parent ended early"
            time.sleep(0.2)
        workers = [int(p.name) for p in tmp_path.iterdir()]
        assert all(_running(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_running(pid) for pid in workers)
    finally:
        parent.kill()
        for pid in [int(p.name) for p in tmp_path.iterdir()]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        map_in_processes(_affine, [(1, 2)], shared=(1,), workers=0)
    with pytest.raises(ValueError, match="order must be a permutation"):
        map_in_processes(_affine, [(1, 2), (3, 4)], shared=(1,), order=[0, 0])
