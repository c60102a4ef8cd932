"""The worker's settings, from its environment (documented in the README's "GPU worker" section)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from core.config import number
from core.errors import InvalidSetting as ConfigError  # a worker setting is missing or malformed: names the variable


@dataclass(frozen=True)
class WorkerConfig:
    model: str  # diffusers pipeline id (in the local Hugging Face cache) or a local folder: text-to-image
    i2i_model: str | None = None  # image-to-image pipeline; None: the text-to-image weights, shared (from_pipe)
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: str = "auto"  # auto: float16 on CUDA (bfloat16 for FLUX), float32 on CPU
    variant: str | None = None  # the weights' file variant to load, e.g. "fp16" (model.fp16.safetensors)
    default_steps: int = 4
    default_guidance: float = 0.0
    default_strength: float = 0.6
    max_side: int = 2048
    max_pixels: int = 2048 * 2048
    max_steps: int = 100
    max_reference_bytes: int = 10 * 1024 * 1024
    reference_timeout: float = 20.0  # seconds to download a reference given as an http(s) URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "WorkerConfig":
        env = os.environ if env is None else env
        model = (env.get("WORKER_MODEL") or "").strip()
        if not model:
            raise ConfigError("WORKER_MODEL is not set: name a diffusers pipeline (a Hugging Face id already in "
                              "the local cache, or a local folder) for text-to-image")
        device = env.get("WORKER_DEVICE", "auto").strip() or "auto"
        dtype = env.get("WORKER_DTYPE", "auto").strip() or "auto"
        if dtype not in ("auto", "float16", "bfloat16", "float32"):
            raise ConfigError(f"WORKER_DTYPE must be auto, float16, bfloat16 or float32, not {dtype!r}")
        return cls(
            model=model,
            i2i_model=(env.get("WORKER_I2I_MODEL") or "").strip() or None,
            device=device,
            dtype=dtype,
            variant=(env.get("WORKER_VARIANT") or "").strip() or None,
            default_steps=number(env, "WORKER_STEPS", cls.default_steps, int, 1, 1000),
            default_guidance=number(env, "WORKER_GUIDANCE", cls.default_guidance, float, 0.0, 50.0),
            default_strength=number(env, "WORKER_STRENGTH", cls.default_strength, float, 0.01, 1.0),
            max_side=number(env, "WORKER_MAX_SIDE", cls.max_side, int, 64, 8192),
            max_pixels=number(env, "WORKER_MAX_PIXELS", cls.max_pixels, int, 64 * 64, 8192 * 8192),
            max_steps=number(env, "WORKER_MAX_STEPS", cls.max_steps, int, 1, 1000),
            max_reference_bytes=number(env, "WORKER_MAX_REFERENCE_BYTES", cls.max_reference_bytes, int, 1024,
                                        1 << 30),
            reference_timeout=number(env, "WORKER_REFERENCE_TIMEOUT", cls.reference_timeout, float, 0.1, 600.0),
        )
