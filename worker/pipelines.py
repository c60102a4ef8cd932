"""The diffusers pipelines, loaded once per worker process from local files only (never downloaded)."""
from __future__ import annotations

import inspect
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from worker.config import ConfigError, WorkerConfig

StepCallback = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass
class Pipelines:
    """The text-to-image pipeline and its image-to-image twin, on one device."""

    txt2img: Any
    img2img: Any
    device: str
    dtype: Any

    def generate(self, *, prompt: str, negative_prompt: str | None, width: int, height: int, steps: int,
                 guidance: float, seed: int, reference=None, strength: float = 1.0,
                 on_step: StepCallback | None = None):
        """One PIL image. With a reference, image-to-image at `strength`."""
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)  # the same seed gives the same image anywhere
        kwargs: dict[str, Any] = dict(prompt=prompt, num_inference_steps=steps, guidance_scale=guidance,
                                      generator=generator, width=width, height=height)
        if negative_prompt and _takes(self.txt2img, "negative_prompt"):  # FLUX.1-schnell takes none
            kwargs["negative_prompt"] = negative_prompt
        if on_step is not None:
            def callback(pipe, index, _timestep, tensors):
                on_step(index + 1, int(getattr(pipe, "num_timesteps", 0) or steps))
                return tensors
            kwargs["callback_on_step_end"] = callback
        if reference is None:
            return self.txt2img(**kwargs).images[0]
        return self.img2img(image=reference.resize((width, height)), strength=strength, **kwargs).images[0]


def _takes(pipe, argument: str) -> bool:
    return argument in inspect.signature(type(pipe).__call__).parameters


_lock = threading.Lock()
_loaded: Pipelines | None = None


def get(config: WorkerConfig) -> Pipelines:
    """The process's pipelines, loaded on first use; a failed load is retried by the next job."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load(config)
        return _loaded


def load(config: WorkerConfig) -> Pipelines:
    """Load from local files only: fp16 (bf16 for FLUX) on CUDA, float32 on CPU. A model that is not
    on this machine raises ConfigError naming the variable and the path or id."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only below is the rule
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    txt2img = _from_pretrained(AutoPipelineForText2Image, "WORKER_MODEL", config.model, config, device)
    dtype = txt2img.dtype
    if config.i2i_model:
        img2img = _from_pretrained(AutoPipelineForImage2Image, "WORKER_I2I_MODEL", config.i2i_model, config, device)
    else:
        img2img = AutoPipelineForImage2Image.from_pipe(txt2img)  # shares the weights: no second copy in memory
    for pipe in (txt2img, img2img):
        pipe.set_progress_bar_config(disable=True)
    return Pipelines(txt2img=txt2img, img2img=img2img, device=device, dtype=dtype)


def _dtype(config: WorkerConfig, device: str, model: str):
    import torch

    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if "flux" in model.lower() else torch.float16


def _from_pretrained(auto_class, variable: str, model: str, config: WorkerConfig, device: str):
    where = os.path.expanduser(model)
    looks_local = os.path.isabs(where) or where.startswith(".") or os.path.exists(where)
    if looks_local and not os.path.isdir(where):
        raise ConfigError(f"{variable}={model}: no such folder on this worker")
    try:
        with warnings.catch_warnings():  # newer diffusers call it `dtype`; `torch_dtype` works from 0.30 on
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = auto_class.from_pretrained(where if looks_local else model,
                                              torch_dtype=_dtype(config, device, model), local_files_only=True,
                                              **({"variant": config.variant} if config.variant else {}))
    except (OSError, ValueError, EnvironmentError) as exc:
        hint = ("the folder does not hold a diffusers pipeline (model_index.json and its components)" if looks_local
                else "it is not in the local Hugging Face cache; download it once beforehand "
                     f"(`hf download {model}`) or point {variable} at a local folder")
        raise ConfigError(f"{variable}={model}: the model is not available locally: {hint} "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return pipe.to(device)
