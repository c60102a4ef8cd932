"""Fixtures of the AI assist suite: loopback fakes of the chat services and studios pointed at them."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.studio import Studio
from tests.conftest import make_settings
from tests.fakes.chat import GeminiTextFake, OpenAIChatFake


@pytest.fixture
def chat_fake() -> Iterator[OpenAIChatFake]:
    fake = OpenAIChatFake()
    yield fake
    fake.close()


@pytest.fixture
def gemini_text_fake() -> Iterator[GeminiTextFake]:
    fake = GeminiTextFake()
    yield fake
    fake.close()


@pytest.fixture
def open_studio(tmp_path: Path, db_env: dict[str, str]) -> Iterator[Callable[..., Studio]]:
    """Open a studio with extra environment (a fake's secrets, assist settings); closed after the test."""
    opened: list[Studio] = []

    def make(env: dict[str, str] | None = None) -> Studio:
        studio = Studio.open(settings=make_settings(tmp_path / f"home{len(opened)}", {**db_env, **(env or {})}),
                             retry_base=0.01)
        opened.append(studio)
        return studio

    yield make
    for s in opened:
        s.close()


SPARSE = {"name": "Mia", "description": "A cheerful barista in a corner cafe.", "gender": "female"}
