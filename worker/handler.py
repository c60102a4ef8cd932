"""The RunPod handler: validate the input, generate with the configured pipelines, answer
`{"images": ["data:image/png;base64,..."], "seed": N}` (the shape the studio's RunPod provider reads).

Run it:
- on RunPod (worker/Dockerfile): `python -m worker.handler`, the SDK's serverless loop;
- on your own GPU: `python -m worker.handler --rp_serve_api --rp_api_host 0.0.0.0 --rp_api_port 8000`, the
  SDK's local API server (/run, /status, /runsync) plus GET /progress/{job_id} (see `serve`).

A bad input, or a model that is not on this machine, fails the job with `{"error": message}`.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import sys
import threading
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the worker never downloads weights at request time
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from worker import pipelines, progress  # noqa: E402
from worker.config import ConfigError, WorkerConfig  # noqa: E402
from worker.inputs import InputError, load_reference, parse_input  # noqa: E402

_gpu = threading.Lock()  # one generation at a time: a pipeline is not safe to call from two threads


def run(job: dict[str, Any], config: WorkerConfig | None = None) -> dict[str, Any]:
    """One job, synchronously: everything is checked (input, reference, model) before the first step."""
    try:
        config = config or WorkerConfig.from_env()
        request = parse_input(job.get("input"), config)
        reference = load_reference(request.reference, config) if request.reference else None
        pipes = pipelines.get(config)
    except (InputError, ConfigError) as exc:
        return {"error": str(exc)}
    with _gpu:
        progress.started(job["id"])
        image = pipes.generate(prompt=request.prompt, negative_prompt=request.negative_prompt, width=request.width,
                               height=request.height, steps=request.steps, guidance=request.guidance,
                               seed=request.seed, reference=reference, strength=request.strength,
                               on_step=lambda step, steps: progress.report(job, step, steps))
    out = io.BytesIO()
    image.save(out, "PNG")
    return {"images": [f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"], "seed": request.seed}


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The SDK's entry point. The work runs in a thread, so the local server's event loop keeps
    answering (/progress, other jobs' /run) while a job generates."""
    progress.queued(job["id"])
    try:
        return await asyncio.to_thread(run, job)
    finally:
        progress.done(job["id"])


def serve(host: str, port: int) -> None:
    """The SDK's local API server (its WorkerAPI app and uvicorn), with one route added: GET
    /progress/{job_id}. The local server runs a /run job inside the /status call that asks for it, so
    that call cannot report progress; /progress answers meanwhile in the shape of RunPod's /status
    (IN_QUEUE, or IN_PROGRESS with `output: {percent, step, steps}`); 404 for a job it does not hold."""
    from fastapi.responses import JSONResponse
    from runpod.serverless.modules.rp_fastapi import WorkerAPI, job_list

    api = WorkerAPI({"handler": handler})

    async def job_progress(job_id: str):
        found = progress.status(job_id)
        if found is None and job_list.get(job_id) is not None:  # taken by /run, its /status not begun
            found = {"id": job_id, "status": "IN_QUEUE"}
        if found is None:
            return JSONResponse({"id": job_id, "error": "Job ID not found"}, status_code=404)
        return found

    api.rp_app.add_api_route("/progress/{job_id}", job_progress, methods=["GET"])
    api.start_uvicorn(api_host=host, api_port=port)


def main(argv: list[str] | None = None) -> None:
    args, _ = _parser().parse_known_args(argv)
    try:
        config = WorkerConfig.from_env()
        pipelines.get(config)  # load at start: the first job does not wait for it
    except ConfigError as exc:  # keep serving: every job then fails with this message
        print(f"worker: {exc}", file=sys.stderr, flush=True)
    if args.rp_serve_api:
        serve(args.rp_api_host, args.rp_api_port)
    else:
        import runpod

        runpod.serverless.start({"handler": handler})


def _parser() -> argparse.ArgumentParser:
    """The SDK's own flags for its local API server (runpod.serverless.start reads the same)."""
    parser = argparse.ArgumentParser(prog="python -m worker.handler")
    parser.add_argument("--rp_serve_api", action="store_true")
    parser.add_argument("--rp_api_host", default="localhost")
    parser.add_argument("--rp_api_port", type=int, default=8000)
    return parser


if __name__ == "__main__":
    main()
