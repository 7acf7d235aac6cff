"""What runs on the training machine: the same script on this machine (the `local` provider)
and on a cloud GPU node (started by its cloud-init / startup script once axolotl is
installed).

It imports nothing of Forgeline's and talks to the platform only through the job manifest:
presigned URLs to fetch the data and store the results, and a callback URL with a per-job
token for events. The callback's answer can ask the run to stop (the user cancelled).

    python node_bootstrap.py MANIFEST.json        # or --manifest-url URL

Steps: fetch data (and the last checkpoint, to resume) -> axolotl train (progress from the
forgeline_events plugin beside this file; after training, the same process evaluates base vs
tuned and merges the adapter, post_training.py) -> upload adapter and merged model -> report
`done`. Where the training process could not evaluate or merge (a quantized or sharded model),
this script does it, loading the model again. Exit status: 0 done, 1 failed, 3 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import post_training  # beside this file, on a node as here

EVENT_PREFIX = "FORGELINE_EVENT "
HERE = Path(__file__).resolve().parent
FLUSH_SECONDS = 1.0
LOG_TAIL = 200
# The platform takes at most 5000 events a call (services/gateway/training_schemas.py).
MAX_BATCH = 1000
# Kept while the platform does not answer; past this the oldest log lines go first.
MAX_PENDING = 20_000
# The last flush (done, cancelled, error: what the platform waits for) tries for minutes.
FINAL_ATTEMPTS = 30


class Cancelled(Exception):
    pass


def _open(request: str | urllib.request.Request, timeout: float) -> Any:
    """urlopen for the manifest's URLs, which must be http(s): never file: or others."""
    url = request if isinstance(request, str) else request.full_url
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"refusing a non-HTTP URL: {url[:40]}")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (checked above)


# --- talking to the platform ----------------------------------------------------------------


class Reporter:
    """Batches events to the callback URL; remembers whether the platform asked to stop."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.pending: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.cancel = threading.Event()
        self.last_flush = 0.0

    def event(self, type_: str, **data: Any) -> None:
        with self.lock:
            self.pending.append({"type": type_, "data": data, "time": time.time()})
        if type_ != "log" or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self, attempts: int = 5) -> bool:
        """Send what is pending, in batches the platform accepts. True when all went; if the
        platform does not answer, the events are kept for the next flush, not dropped."""
        self.last_flush = time.monotonic()
        while True:
            with self.lock:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            if not batch:
                return True
            if not self._send(batch, attempts):
                with self.lock:
                    self.pending = _bounded(batch + self.pending)
                    kept = len(self.pending)
                sys.stderr.write(
                    f"[bootstrap] the platform did not answer; {kept} events kept for later\n"
                )
                return False

    def _send(self, batch: list[dict[str, Any]], attempts: int) -> bool:
        body = json.dumps({"events": batch}).encode()
        for attempt in range(attempts):
            try:
                request = urllib.request.Request(  # noqa: S310 (_open checks it)
                    self.url,
                    data=body,
                    method="POST",
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Content-Type": "application/json",
                    },
                )
                with _open(request, timeout=30) as response:
                    answer = json.loads(response.read() or b"{}")
                if answer.get("cancel"):
                    self.cancel.set()
                return True
            except Exception as error:  # the platform restarting: retry
                sys.stderr.write(f"[bootstrap] callback failed ({error}); retrying\n")
                time.sleep(_backoff(attempt))
        return False


def _backoff(attempt: int) -> float:
    return float(min(2**attempt, 10))


def _bounded(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_PENDING events, dropping the oldest log lines (never states, progress,
    checkpoints or results, which the platform acts on)."""
    excess = len(pending) - MAX_PENDING
    if excess <= 0:
        return pending
    kept = []
    for event in pending:
        if excess > 0 and event["type"] == "log":
            excess -= 1
            continue
        kept.append(event)
    return kept


def download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with _open(url, timeout=300) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    partial.replace(target)


def upload(form: dict[str, Any], source: Path) -> None:
    """POST `source` through a presigned form (services/trainer/result_uploads.py): the
    store itself refuses a file over the size the platform signed, or for another key."""
    size = source.stat().st_size
    if size > form["max_bytes"]:
        raise ValueError(
            f"{source.name} is {size} bytes, over the {form['max_bytes']} the platform accepts "
            "for it (TRAINER_RESULT_MAX_BYTES)."
        )
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in form["fields"].items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{source.name}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:  # streamed: an archive can be gigabytes
        yield head
        with source.open("rb") as file:
            while chunk := file.read(1 << 20):
                yield chunk
        yield tail

    request = urllib.request.Request(  # noqa: S310 (_open checks it)
        form["url"],
        data=body(),
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        },
    )
    with _open(request, timeout=3600):
        pass


def tar_folder(folder: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    # Still gzip, so that every reader (the deployer, `tar -xzf` on a node) is unchanged,
    # but stored, not deflated: on the bundled model's 538 MB merged folder level 1 took
    # 13.7 s to write and 7.2 s to read back for a 2x smaller file, level 0 2.1 s and 2.3 s.
    # Trained weights compress less than that dequantised base, and the bytes only travel
    # to the object store beside the node.
    with tarfile.open(target, "w:gz", compresslevel=0) as archive:
        for child in sorted(folder.iterdir()):
            if not child.name.startswith(skip):
                archive.add(child, arcname=child.name)
    return target


# --- training -------------------------------------------------------------------------------


def train(
    workdir: Path, manifest: dict[str, Any], reporter: Reporter, post: dict[str, Any]
) -> set[str]:
    """Runs `axolotl train`, forwarding its events; the kinds of event it sent. `post` is
    what the training process should do after training (post_training.py)."""
    env = dict(os.environ)
    spec = workdir / "post_training.json"
    spec.write_text(json.dumps(post))
    env[post_training.SPEC_ENV] = str(spec)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    env["WANDB_DIR"] = str(workdir / "wandb")
    # Only wandb's settings may come from the manifest (the user's own key, to log online).
    env.update({k: str(v) for k, v in manifest.get("env", {}).items() if k.startswith("WANDB_")})
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    (workdir / "wandb").mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "axolotl.cli.train", "config.yml"]
    log_tail: deque[str] = deque(maxlen=LOG_TAIL)
    seen: set[str] = set()
    process = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    uploads = manifest.get("uploads", {})
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            if reporter.cancel.is_set():
                raise Cancelled()
            # Progress bars write without newlines, so an event may follow one on a line.
            at = line.find(EVENT_PREFIX)
            if at >= 0:
                event = json.loads(line[at + len(EVENT_PREFIX) :])
                kind = event.pop("type")
                seen.add(kind)
                if kind == "checkpoint" and uploads.get("checkpoint"):
                    checkpoint = workdir / "output" / Path(event["path"]).name
                    archive = tar_folder(checkpoint, workdir / "checkpoint.tar.gz")
                    upload(uploads["checkpoint"], archive)
                    archive.unlink()
                reporter.event(kind, **event)
                continue
            # progress bars redraw with \r: keep only what a person would read
            line = line.rsplit("\r", 1)[-1].strip()
            if line:
                log_tail.append(line)
                reporter.event("log", line=line[:2000])
        code = process.wait()
    except Cancelled:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    if code != 0:
        raise RuntimeError("axolotl train failed:\n" + "\n".join(list(log_tail)[-25:]))
    return seen


def merge(workdir: Path) -> Path:
    argv = [
        sys.executable,
        "-m",
        "axolotl.cli.merge_lora",
        "config.yml",
        "--lora_model_dir=./output",
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("merging the adapter failed:\n" + result.stdout[-3000:])
    merged: Path = workdir / "output" / post_training.MERGED_FOLDER
    return merged


# --- evaluation and merge, when the training process could not do them ---------------------


def evaluate(workdir: Path, manifest: dict[str, Any], adapter: bool) -> dict[str, Any]:
    """The benchmark with the tuned model loaded again from disk (post_training.py scores the
    model in memory where it can)."""
    import torch
    from transformers import AutoModelForCausalLM

    output = str(workdir / "output")
    if adapter:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(manifest["base_model"], dtype=torch.float32)
        tuned = PeftModel.from_pretrained(base, output)
    else:
        tuned = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32)
    result: dict[str, Any] = post_training.score(
        tuned, manifest["base_model"], manifest["evaluation"]
    )
    return result


# --- the run --------------------------------------------------------------------------------


def run(manifest: dict[str, Any], workdir: Path) -> int:
    reporter = Reporter(manifest["callback_url"], manifest["token"])
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.yml").write_text(manifest["config_yaml"])
        if manifest.get("deepspeed_json"):
            (workdir / "deepspeed_zero3.json").write_text(manifest["deepspeed_json"])
        for name, url in manifest["downloads"].items():
            if url:
                download(url, workdir / name)
        checkpoint = workdir / "checkpoint.tar.gz"
        if checkpoint.exists():  # resume where a stopped run left off
            # Axolotl's auto_resume_from_checkpoints picks up output/checkpoint-<step>.
            target = workdir / "output" / manifest["checkpoint_name"]
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(checkpoint) as packed:
                packed.extractall(target, filter="data")
            checkpoint.unlink()
            reporter.event("log", line=f"resuming from {target.name}")
        # What an earlier attempt merged is not this run's: merged again after training.
        shutil.rmtree(workdir / "output" / post_training.MERGED_FOLDER, ignore_errors=True)
        reporter.event("state", state="training")
        adapter = bool(manifest.get("adapter", True))
        post = {"evaluation": manifest.get("evaluation"), "merge": adapter}
        seen = train(workdir, manifest, reporter, post)
        if reporter.cancel.is_set():
            raise Cancelled()
        if manifest.get("evaluation") and "evaluation" not in seen:
            reporter.event("state", state="evaluating")
            evaluation = evaluate(workdir, manifest, adapter)
            reporter.event("evaluation", **evaluation)
        reporter.event("state", state="uploading")
        uploads = manifest["uploads"]
        output = workdir / "output"
        sizes = {}
        if adapter:
            archive = tar_folder(
                output, workdir / "adapter.tar.gz", skip=("checkpoint-", "merged", "runs")
            )
            upload(uploads["adapter"], archive)
            sizes["adapter_bytes"] = archive.stat().st_size
            merged = output / post_training.MERGED_FOLDER
            if not merged.is_dir():  # the training process could not merge it
                merged = merge(workdir)
        else:
            merged = output
        archive = tar_folder(
            merged, workdir / "merged.tar.gz", skip=("checkpoint-", "runs", "merged")
        )
        upload(uploads["merged"], archive)
        sizes["merged_bytes"] = archive.stat().st_size
        runs = workdir / "wandb"
        if uploads.get("wandb") and runs.is_dir() and any(runs.iterdir()):
            # The offline wandb run, kept with the job: `wandb sync` uploads it any time.
            upload(uploads["wandb"], tar_folder(runs, workdir / "wandb.tar.gz"))
        reporter.event("artefacts", **sizes)
        reporter.event("done")
        reporter.flush(attempts=FINAL_ATTEMPTS)
        return 0
    except Cancelled:
        reporter.event("cancelled")
        reporter.flush(attempts=FINAL_ATTEMPTS)
        return 3
    except Exception as error:
        reporter.event("error", message=str(error)[-4000:])
        reporter.flush(attempts=FINAL_ATTEMPTS)
        return 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", nargs="?", help="the job manifest (JSON file)")
    parser.add_argument("--manifest-url", help="fetch the manifest from here instead")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.manifest_url:
        with _open(args.manifest_url, timeout=60) as response:
            manifest = json.loads(response.read())
    else:
        manifest = json.loads(Path(args.manifest).read_text())
    workdir = Path(args.workdir or manifest.get("workdir") or f"job-{manifest['job_id']}")
    return run(manifest, workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())
