"""Throughput of the configured model on this host: images per second, seconds per image, peak GPU memory.

    WORKER_MODEL=stabilityai/sdxl-turbo python -m worker.benchmark            # 1024x1024, the model's steps
    python -m worker.benchmark --tiny --steps 2 --images 2                    # a tiny random pipeline, 64x64 (CPU)

The pipelines load as the worker loads them (worker/pipelines.py, WORKER_* settings); one warm-up
image is made first and not counted. Peak memory is torch.cuda.max_memory_allocated over the timed
images (what the worker's tensors took; the CUDA context adds a few hundred MB on top).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from worker import pipelines, tiny  # noqa: E402
from worker.config import ConfigError, WorkerConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=None,
                        help="width and height in pixels (default 1024; with --tiny 64: its VAE only halves the "
                             "size, so its attention grows far faster with size than a real model's)")
    parser.add_argument("--steps", type=int, default=None, help="inference steps (default: WORKER_STEPS, else 4)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: WORKER_GUIDANCE)")
    parser.add_argument("--images", type=int, default=5, help="timed images (default 5)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random-weight pipeline instead of WORKER_MODEL")
    args = parser.parse_args(argv)
    args.size = args.size or (64 if args.tiny else 1024)
    if args.size % 8 or not 64 <= args.size <= 4096 or args.images < 1:
        parser.error("--size must be a multiple of 8 from 64 to 4096, and --images at least 1")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            config = WorkerConfig(model=str(tiny.build(scratch))) if args.tiny else WorkerConfig.from_env()
        except ConfigError as exc:
            print(f"benchmark: {exc}", file=sys.stderr)
            return 2
        config = replace(config, max_side=max(config.max_side, args.size))
        return _run(config, args)


def _run(config: WorkerConfig, args: argparse.Namespace) -> int:
    import torch

    started = time.perf_counter()
    try:
        pipes = pipelines.load(config)
    except ConfigError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 2
    loaded = time.perf_counter() - started
    steps = args.steps or config.default_steps
    guidance = config.default_guidance if args.guidance is None else args.guidance
    cuda = pipes.device.startswith("cuda")

    def one(seed: int) -> None:
        pipes.generate(prompt="a portrait photo of a person", negative_prompt=None, width=args.size,
                       height=args.size, steps=steps, guidance=guidance, seed=seed)
        if cuda:
            torch.cuda.synchronize()

    one(0)  # warm-up: kernels, allocator, caches
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for i in range(args.images):
        one(i + 1)
    elapsed = time.perf_counter() - started
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a (no CUDA device)"
    name = "tiny random pipeline" if args.tiny else config.model
    device = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"model:           {name}")
    print(f"device:          {device}, {str(pipes.dtype).removeprefix('torch.')}")
    print(f"size, steps:     {args.size}x{args.size}, {steps} steps, guidance {guidance:g}")
    print(f"load:            {loaded:.1f} s")
    print(f"images:          {args.images} in {elapsed:.2f} s")
    print(f"images/s:        {args.images / elapsed:.3f}")
    print(f"s/image:         {elapsed / args.images:.3f}")
    print(f"peak GPU memory: {peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
