"""The worker's settings and input checks, and a model that is not on this machine: each refused with a
message naming what to fix, before any work."""
from __future__ import annotations

import base64

import pytest

from worker.config import ConfigError, WorkerConfig
from worker.inputs import InputError, load_reference, parse_input
from tests.conftest import png_bytes

CONFIG = WorkerConfig(model="unused", max_side=1024, max_pixels=512 * 512, max_steps=50, max_reference_bytes=4096)


def test_settings_name_the_variable():
    with pytest.raises(ConfigError, match="WORKER_MODEL is not set"):
        WorkerConfig.from_env({})
    with pytest.raises(ConfigError, match="WORKER_DTYPE must be"):
        WorkerConfig.from_env({"WORKER_MODEL": "m", "WORKER_DTYPE": "float8"})
    with pytest.raises(ConfigError, match="WORKER_MAX_PIXELS must be a whole number"):
        WorkerConfig.from_env({"WORKER_MODEL": "m", "WORKER_MAX_PIXELS": "lots"})
    with pytest.raises(ConfigError, match="WORKER_STEPS must be at least 1"):
        WorkerConfig.from_env({"WORKER_MODEL": "m", "WORKER_STEPS": "0"})
    with pytest.raises(ConfigError, match="WORKER_STRENGTH must be at most 1"):
        WorkerConfig.from_env({"WORKER_MODEL": "m", "WORKER_STRENGTH": "1.5"})
    config = WorkerConfig.from_env({"WORKER_MODEL": " ./models/sdxl-turbo ", "WORKER_STEPS": "8",
                                    "WORKER_I2I_MODEL": ""})
    assert (config.model, config.default_steps, config.i2i_model) == ("./models/sdxl-turbo", 8, None)


@pytest.mark.parametrize("raw, message", [
    ({}, "prompt is required"),
    ({"prompt": "  "}, "prompt is required"),
    ({"prompt": "x" * 10_001}, "at most 10000"),
    ({"prompt": "p", "width": 1000 + 4}, "width must be a multiple of 8, not 1004"),
    ({"prompt": "p", "height": 2048}, "height must be between 64 and 1024, not 2048"),
    ({"prompt": "p", "width": 1024, "height": 1024}, "this worker makes at most 262,144"),
    ({"prompt": "p", "width": "512"}, "width must be an integer"),
    ({"prompt": "p", "steps": 51}, "steps must be between 1 and 50"),
    ({"prompt": "p", "guidance": True}, "guidance must be a number"),
    ({"prompt": "p", "strength": 0}, "strength must be between 0.01 and 1"),
    ({"prompt": "p", "seed": -5}, "seed must be between 0"),
    ({"prompt": "p", "image": 7}, "image must be a base64 string"),
    ({"prompt": "p", "image": "A" * 8000}, "larger than 4,096 bytes"),
    ({"prompt": "p", "image": "AAAA", "steps": 1, "strength": 0.5}, r"steps x strength must be at least 1 \(1 x 0.5\)"),
    ("a prompt", "must be a JSON object"),
])
def test_bad_inputs_are_refused_before_any_work(raw, message):
    if isinstance(raw, dict):
        raw = {"width": 64, "height": 64, **raw}  # the defaults (1024) are over this config's pixel limit
    with pytest.raises(InputError, match=message):
        parse_input(raw, CONFIG)


def test_good_input_and_references():
    job = parse_input({"prompt": "a knight", "width": 512, "height": 256, "seed": 3, "negative_prompt": ""}, CONFIG)
    assert (job.width, job.height, job.seed, job.negative_prompt, job.steps) == (512, 256, 3, None, CONFIG.default_steps)
    assert 0 <= parse_input({"prompt": "p", "seed": -1, "width": 64, "height": 64}, CONFIG).seed < 2**32  # -1: a random seed, reported back
    data = png_bytes((40, 30), (1, 2, 3))
    for value in (base64.b64encode(data).decode(), "data:image/png;base64," + base64.b64encode(data).decode()):
        assert load_reference(value, CONFIG).size == (40, 30)
    with pytest.raises(InputError, match="not valid base64"):
        load_reference("data:image/png;base64,***", CONFIG)
    with pytest.raises(InputError, match="cannot be read"):
        load_reference(base64.b64encode(data[:60]).decode(), CONFIG)  # truncated


@pytest.mark.slow
def test_a_model_that_is_not_on_this_machine(tmp_path, tiny_model):
    """Named by variable and path, never downloaded (local_files_only; the test suite has no network)."""
    from worker import handler, pipelines

    job = {"id": "j1", "input": {"prompt": "p", "width": 64, "height": 64}}
    missing = tmp_path / "no-such-model"
    out = handler.run(job, WorkerConfig(model=str(missing)))
    assert out == {"error": f"WORKER_MODEL={missing}: no such folder on this worker"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"WORKER_I2I_MODEL=.*empty: the model is not available locally: the folder"):
        pipelines.load(WorkerConfig(model=str(tiny_model), i2i_model=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match=r"WORKER_MODEL=character-studio-tests/no-such-model: the model is not "
                                          r"available locally: it is not in the local Hugging Face cache"):
        pipelines.load(WorkerConfig(model="character-studio-tests/no-such-model"))
    assert handler.run({"id": "j2", "input": {"width": 64}}, WorkerConfig(model=str(missing))) == \
        {"error": "prompt is required: a non-empty string"}  # the input is checked before the model is looked for
