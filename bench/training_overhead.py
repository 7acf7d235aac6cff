"""What the platform costs a training run: the same Axolotl config trained twice on this
machine, once as a platform job and once with `axolotl train` run directly, compared in
seconds per step.

1. The platform (started here, on a temporary data folder) gets a GSM8K-train slice as a
   dataset and a LoRA SFT job on the bundled SmolLM2 with a fixed number of steps and no
   GSM8K evaluation (`benchmark: none`). The job's events (SSE) are followed to its end.
2. The job's Axolotl config (`GET /api/v1/jobs/{id}/config`) and the data files it trained
   on (the local provider's working folder) are copied to a temporary folder, the platform
   is stopped, and `python -m axolotl.cli.train config.yml` runs there from the axolotl
   engine, with the forgeline_events plugin on PYTHONPATH as the training node has it. It
   writes only to that folder: nothing of the job's is touched.

The direct run comes second because it needs the job's exact config and data, and because
by then the stack is stopped: the baseline is Axolotl alone on the machine, the way one
would run it without Forgeline. (Before anything, the axolotl engine is imported once, so
that neither run pays for reading it from disk cold.)

Step time. With `logging_steps: 1` the plugin prints one `progress` event per optimiser
step. The direct run's event is timed when its line is read from Axolotl's output; the
job's event by its Redis stream id (the millisecond the platform recorded it, after the
node bootstrap read the line and posted it to the gateway). An interval is the time
between two consecutive steps' events; those ending before step 3 are left out (step 1
includes the start, step 2 the first-step warm-up). Evaluation is kept out too:
`eval_steps` (and so `save_steps`) equals the number of steps, so the one held-out
evaluation and checkpoint come after the last step's event.

Other work. On a small machine shared with other work, wall-clock step times measure that
work more than the platform. So for every interval the benchmark also measures how many
CPUs were busy outside its own processes (the platform's whole process tree, or Axolotl's,
and itself; stolen time included), and waits before each run (up to --quiet-wait) for the
machine to calm down. Both runs see the same batches in the same order (same config, data
and seed), so step n costs the same work in both: seconds per step is the mean over the
steps that were quiet (other work under 0.25 CPUs) in both runs, and the ratio compares
like with like (`basis: paired`). With fewer than 5 such steps it falls back to the median
over all intervals of each run (`basis: all`, `undisturbed: false`).

Time to first step: from the job's creation request (or the direct process's start) to
step 1's event.

    .venv/bin/python -m bench.training_overhead [--rows 200] [--steps 30]

The last line is one JSON object: `overhead_ratio` (platform / direct seconds per step,
goal at most 1.10) and `time_to_first_step_s` among others.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.finetune_smollm2 import GSM8K, MODELS_DIR, stream_events, upload_dataset
from bench.rag_financebench import Api, log, platform
from services.common.bundled_model import ensure_hf_model
from services.common.engines import ENGINES, engine_env, engine_python
from tests.servers.platform import REPO

GOAL_OVERHEAD_RATIO = 1.10
EVENT_PREFIX = "FORGELINE_EVENT "  # what services/trainer/engine/forgeline_events.py prints
ENGINE_CODE = REPO / "services" / "trainer" / "engine"
FIRST_TIMED_STEP = 3  # intervals ending at this step and later count
QUIET_CPUS = 0.25  # other work up to this many CPUs leaves an interval quiet
MIN_QUIET_INTERVALS = 5  # steps quiet in both runs, to time steps on those only


# --- the machine's other work -----------------------------------------------------------------


class CpuMeter:
    """CPU time the machine spent outside the process trees of `roots` (other work, and
    time the hypervisor stole), lap by lap."""

    def __init__(self, *roots: int) -> None:
        self.roots = roots
        self.last: tuple[float, float, dict[int, float]] | None = None

    def _own(self) -> dict[int, float]:
        seconds: dict[int, float] = {}
        for root in self.roots:
            try:
                parent = psutil.Process(root)
                tree = [parent, *parent.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    t = process.cpu_times()  # children_*: its children that ended meanwhile
                    seconds[process.pid] = t.user + t.system + t.children_user + t.children_system
        return seconds

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()  # guest time is inside user already
        names = ("user", "nice", "system", "irq", "softirq", "steal")
        return float(sum(getattr(t, name, 0.0) for name in names))

    def lap(self) -> tuple[float, float] | None:
        """(CPU seconds others used, wall seconds) since the previous lap; None the first
        time, which only starts the count."""
        now = (time.monotonic(), self._busy(), self._own())
        last, self.last = self.last, now
        if last is None:
            return None
        ours = sum(v - last[2].get(pid, 0.0) for pid, v in now[2].items())
        return max(0.0, now[1] - last[1] - ours), now[0] - last[0]


def wait_quiet(meter: CpuMeter, limit: float) -> None:
    """Wait (up to `limit` seconds) until other work leaves the machine's CPUs alone."""
    deadline = time.monotonic() + limit
    meter.lap()
    while True:
        time.sleep(5)
        cpu, elapsed = meter.lap() or (0.0, 1.0)
        if cpu / elapsed < QUIET_CPUS:
            return
        if time.monotonic() > deadline:
            log(f"other work still uses {cpu / elapsed:.1f} CPUs; measuring anyway")
            return
        log(f"other work uses {cpu / elapsed:.1f} CPUs; waiting for a quieter machine")


# --- step times -------------------------------------------------------------------------------


@dataclass
class Steps:
    """One run's progress events: when each step's event came, and the other work's CPU
    time since the previous one."""

    name: str
    meter: CpuMeter
    marks: list[tuple[int, float]] = field(default_factory=list)
    others: dict[int, tuple[float, float]] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)

    def progress(self, event: dict[str, Any], at: float) -> None:
        step, lap = int(event["step"]), self.meter.lap()
        self.marks.append((step, at))
        if lap is not None:
            self.others[step] = lap
        if event.get("tokens_per_second"):
            self.rates.append(float(event["tokens_per_second"]))

    def intervals(self) -> dict[int, tuple[float, bool]]:
        """Step -> (seconds per step, quiet) of the intervals ending at FIRST_TIMED_STEP or
        later; a missing step makes one interval of several steps."""
        timed = {}
        for (s1, t1), (s2, t2) in itertools.pairwise(self.marks):
            if s2 > s1 and s2 >= FIRST_TIMED_STEP:
                cpu, elapsed = self.others.get(s2, (1.0, 0.0))
                quiet = elapsed > 0.1 and cpu / elapsed < QUIET_CPUS
                timed[s2] = ((t2 - t1) / (s2 - s1), quiet)
        return timed

    def summary(self) -> dict[str, Any]:
        timed = self.intervals()
        log(
            f"{self.name}: seconds per step from step {FIRST_TIMED_STEP} "
            f"(* other work was busy): "
            + " ".join(f"{x:.2f}{'' if quiet else '*'}" for x, quiet in timed.values())
        )
        window = [v for step, v in self.others.items() if step >= FIRST_TIMED_STEP]
        every = [x for x, _ in timed.values()]
        return {
            "timed": timed,
            "all_median": round(statistics.median(every), 4) if every else None,
            "all_mean": round(statistics.mean(every), 4) if every else None,
            "intervals": len(every),
            "quiet_intervals": sum(quiet for _, quiet in timed.values()),
            "other_cpus": round(sum(c for c, _ in window) / sum(e for _, e in window), 2)
            if window
            else None,
            "tokens_per_second_p50": round(statistics.median(self.rates), 1)
            if self.rates
            else None,
        }


def compare(
    on_platform: dict[str, Any], alone: dict[str, Any]
) -> tuple[str, list[int], float | None, float | None]:
    """(basis, paired steps, platform and direct seconds per step) from two summaries."""
    # The steps quiet in both runs: the same batches, timed without other work.
    paired = sorted(
        step
        for step, (_, quiet) in on_platform["timed"].items()
        if quiet and alone["timed"].get(step, (0.0, False))[1]
    )
    if len(paired) >= MIN_QUIET_INTERVALS:
        platform_s = statistics.mean(on_platform["timed"][n][0] for n in paired)
        direct_s = statistics.mean(alone["timed"][n][0] for n in paired)
        return "paired", paired, round(platform_s, 4), round(direct_s, 4)
    return "all", paired, on_platform["all_median"], alone["all_median"]


def ratio(platform_value: float | None, direct_value: float | None) -> float | None:
    if platform_value is None or not direct_value:
        return None
    return round(platform_value / direct_value, 4)


def warm_engine() -> None:
    """Import the axolotl engine's stack once (torch, transformers, peft, axolotl's trainer):
    both runs then read it from the page cache. A failure here only costs the warm-up."""
    started = time.perf_counter()
    warmed = subprocess.run(
        [str(engine_python("axolotl")), "-c", "import axolotl.cli.train, axolotl.train"],
        env=engine_env(ENGINES["axolotl"]),
        capture_output=True,
        check=False,
    )
    outcome = "done" if warmed.returncode == 0 else f"failed ({warmed.returncode})"
    log(f"warm-up import of the axolotl engine {outcome} in {time.perf_counter() - started:.1f}s")


# --- 1. the platform job ----------------------------------------------------------------------


def platform_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train as a platform job; copy its config and data to `workdir` before the stack stops."""
    slice_ = b"".join((GSM8K / "train.jsonl").read_bytes().splitlines(keepends=True)[: args.rows])
    models = ensure_hf_model(MODELS_DIR)  # converted once, shared with the tests
    with platform(None, TRAINER_MODELS_DIR=str(models.parent)) as running:
        api = Api(running.url)
        dataset = upload_dataset(api, "gsm8k-train.jsonl", slice_)
        if dataset["state"] != "ready":
            raise SystemExit(f"the dataset is {dataset['state']}: {dataset.get('failure_reason')}")
        body = {
            "name": "bench: training overhead",
            "dataset_id": dataset["id"],
            "preset": "quick",
            "hyperparameters": {
                "max_steps": args.steps,
                "sequence_len": args.sequence_len,
                "micro_batch_size": args.micro_batch_size,
                "gradient_accumulation_steps": 1,
                "learning_rate": 3e-4,
                # one held-out evaluation and one checkpoint, after the last timed step
                "eval_steps": args.steps,
            },
            "benchmark": "none",
            "benchmark_sample": 0,
        }
        steps = Steps("platform", CpuMeter(running.process.pid, os.getpid()))
        wait_quiet(steps.meter, args.quiet_wait)
        created_wall = time.time()
        reply = api.http.post("/api/v1/jobs", json=body, headers=api.headers)
        if reply.status_code != 201:
            raise SystemExit(f"creating the job: {reply.status_code} {reply.text[:500]}")
        job_id = reply.json()["id"]
        log(f"job {job_id} created")
        phases: dict[str, float] = {}
        for event_id, kind, payload in stream_events(api, job_id):
            # Redis stream ids are `<epoch ms>-<seq>`, written on this machine's clock.
            at = int(event_id.split("-", 1)[0]) / 1000 if event_id else time.time()
            if kind == "progress":
                steps.progress(payload, at)
            elif kind == "state":
                phases.setdefault(payload["state"], round(at - created_wall, 1))
        job = api.http.get(f"/api/v1/jobs/{job_id}", headers=api.headers).json()
        if job["state"] != "succeeded":
            raise SystemExit(
                f"the job {job['state']}: {job.get('failure_code')} {job.get('failure_reason')}"
            )
        config = api.http.get(f"/api/v1/jobs/{job_id}/config", headers=api.headers)
        config.raise_for_status()
        (workdir / "config.yml").write_text(config.text)
        # The local provider's working folder for the job (settings.jobs_dir / id / work).
        data = running.data_dir / "trainer" / "jobs" / job_id / "work" / "data"
        if not (data / "train.jsonl").exists():
            raise SystemExit(f"the job's data is not at {data}")
        shutil.copytree(data, workdir / "data")
    first = steps.marks[0][1] - created_wall if steps.marks else None
    return {
        "steps": steps,
        "rows": dataset["valid_rows"],
        "time_to_first_step_s": round(first, 1) if first is not None else None,
        "phases_s": phases,
    }


# --- 2. the direct run --------------------------------------------------------------------------


def _stop_tree(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(psutil.Error):
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        for child in tree:
            with contextlib.suppress(psutil.Error):
                child.kill()
    process.wait()


def direct_run(workdir: Path, quiet_wait: float) -> dict[str, Any]:
    """`axolotl train config.yml` in `workdir`, as the node bootstrap runs it, minus the
    platform: same interpreter, environment and plugin, its output read through a pipe."""
    env = engine_env(ENGINES["axolotl"])
    env["PYTHONPATH"] = str(ENGINE_CODE)  # the forgeline_events plugin the config names
    env["WANDB_DIR"] = str(workdir / "wandb")
    (workdir / "wandb").mkdir(exist_ok=True)
    argv = [str(engine_python("axolotl")), "-m", "axolotl.cli.train", "config.yml"]
    tail: deque[str] = deque(maxlen=40)
    wait_quiet(CpuMeter(os.getpid()), quiet_wait)
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        errors="replace",
    )
    assert process.stdout is not None
    steps = Steps("direct", CpuMeter(process.pid, os.getpid()))
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            # Progress bars write without newlines, so an event may follow one on a line.
            at = line.find(EVENT_PREFIX)
            if at < 0:
                if line.strip():
                    tail.append(line.strip())
                continue
            now = time.monotonic()
            event = json.loads(line[at + len(EVENT_PREFIX) :])
            if event.get("type") == "progress":
                steps.progress(event, now)
                log(f"direct: step {event['step']}/{event['max_steps']} loss {event.get('loss')}")
        code = process.wait()
    except BaseException:
        _stop_tree(process)
        raise
    total = time.monotonic() - started
    if code != 0:
        raise SystemExit("axolotl train failed:\n" + "\n".join(tail))
    log(f"direct run done in {total:.1f}s")
    first = steps.marks[0][1] - started if steps.marks else None
    return {
        "steps": steps,
        "time_to_first_step_s": round(first, 1) if first is not None else None,
        "total_s": round(total, 1),
    }


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # through the cleanup that stops the direct run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="GSM8K-train rows")
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per run")
    parser.add_argument("--sequence-len", type=int, default=256)
    parser.add_argument("--micro-batch-size", type=int, default=2)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300,
        help="seconds to wait, before each run, for other work to leave the CPUs",
    )
    args = parser.parse_args()
    if args.steps < FIRST_TIMED_STEP + 1:
        parser.error(f"--steps must be at least {FIRST_TIMED_STEP + 1}")

    warm_engine()
    with tempfile.TemporaryDirectory(prefix="fl-overhead-") as tmp:
        workdir = Path(tmp)
        log("platform job")
        job = platform_run(args, workdir)
        log("direct run (the platform is stopped)")
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            direct = direct_run(workdir, args.quiet_wait)
        finally:
            signal.signal(signal.SIGTERM, previous)

    on_platform, alone = job["steps"].summary(), direct["steps"].summary()
    basis, paired, platform_s, direct_s = compare(on_platform, alone)
    overhead = ratio(platform_s, direct_s)
    result = {
        "bench": "training_overhead",
        "steps": args.steps,
        "direct_s_per_step": direct_s,
        "platform_s_per_step": platform_s,
        "overhead_ratio": overhead,
        "time_to_first_step_s": job["time_to_first_step_s"],
        "direct_time_to_first_step_s": direct["time_to_first_step_s"],
        "goal_overhead_ratio": GOAL_OVERHEAD_RATIO,
        "met": overhead is not None and overhead <= GOAL_OVERHEAD_RATIO,
        # Seconds per step: mean over the steps quiet in both runs, or median over all.
        "basis": basis,
        "undisturbed": basis == "paired",
        "paired_steps": len(paired),
        "quiet_intervals": {
            "direct": alone["quiet_intervals"],
            "platform": on_platform["quiet_intervals"],
        },
        "timed_intervals": {"direct": alone["intervals"], "platform": on_platform["intervals"]},
        # CPUs other work kept busy while the steps were timed.
        "other_cpus_during_steps": {
            "direct": alone["other_cpus"],
            "platform": on_platform["other_cpus"],
        },
        "overhead_ratio_all_steps_median": ratio(on_platform["all_median"], alone["all_median"]),
        "overhead_ratio_all_steps_mean": ratio(on_platform["all_mean"], alone["all_mean"]),
        # The plugin's own rate, timed inside the training process.
        "direct_tokens_per_second_p50": alone["tokens_per_second_p50"],
        "platform_tokens_per_second_p50": on_platform["tokens_per_second_p50"],
        "platform_states_at_s": job["phases_s"],
        "direct_total_s": direct["total_s"],
        "rows": job["rows"],
        "sequence_len": args.sequence_len,
        "micro_batch_size": args.micro_batch_size,
        "gradient_accumulation_steps": 1,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
