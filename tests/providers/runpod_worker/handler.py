"""A small RunPod worker for the tests: answers with an image in the output shape its input asks for.

`input.shape` is comfyui, sdxl or a1111 (the three common image workers); a reference image in
`input.image` (data URI) is returned as the result, so a test can see it arrived; a prompt
containing `[fail]` raises, as a crashing worker does; `input.sleep` seconds make a long generation.
"""
import base64
import io
import time

import runpod
from PIL import Image


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 160)).save(out, "PNG")
    return out.getvalue()


def handler(job):
    inp = job["input"]
    time.sleep(float(inp.get("sleep", 0)))  # a long generation
    if "[fail]" in inp.get("prompt", ""):
        raise RuntimeError("worker ran out of VRAM")
    if isinstance(inp.get("image"), str) and inp["image"].startswith("data:"):
        data = base64.b64decode(inp["image"].split(",", 1)[1])
    else:
        data = _png(inp.get("width", 1024) // 16, inp.get("height", 1024) // 16)
    b64 = base64.b64encode(data).decode()
    shape = inp.get("shape", "sdxl")
    if shape == "comfyui":
        return {"images": [{"filename": "ComfyUI_00001_.png", "type": "base64", "data": b64}]}
    if shape == "a1111":
        return {"images": [b64], "parameters": {"seed": inp.get("seed")}, "info": "{}"}
    return {"images": [f"data:image/png;base64,{b64}"], "seed": inp.get("seed")}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
