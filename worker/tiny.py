"""A tiny Stable Diffusion pipeline with random weights, made from small configs (no download): for the
tests and for the benchmark on a machine without the real model. Its images are noise."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

TOKENS = ("a", "an", "the", "portrait", "of", "photo", "person")


def _byte_chars() -> list[str]:
    """The 256 characters byte-level BPE (CLIP's tokenizer) maps bytes to."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tokenizer(folder: Path) -> None:
    """vocab.json and merges.txt of a small CLIP tokenizer: every byte, alone and word-final, and a few words."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = [*chars, *(c + "</w>" for c in chars)]
    merges = []
    for word in TOKENS:  # merge each word left to right: ((p o) r) ...
        left = word[0]
        for i, c in enumerate(word[1:], 1):
            right = c + ("</w>" if i == len(word) - 1 else "")
            merges.append(f"{left} {right}")
            left = left + right
            if left not in vocab:
                vocab.append(left)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(vocab))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")


def build(folder: str | Path) -> Path:
    """Save a tiny StableDiffusionPipeline (random weights, float32) to `folder`; returns it."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=4)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    with tempfile.TemporaryDirectory() as words:
        write_tokenizer(Path(words))
        tokenizer = CLIPTokenizer(f"{words}/vocab.json", f"{words}/merges.txt", model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=2, num_attention_heads=2,
                                                max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                                                eos_token_id=tokenizer.eos_token_id,
                                                pad_token_id=tokenizer.pad_token_id or 0))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder
