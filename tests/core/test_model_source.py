"""Model and adapter identities recorded in the lineage: Hub commits and file hashes."""

from __future__ import annotations

import hashlib

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from sublearn.core.model_source import ModelSourceError, adapter_identity, hub_commit, resolve_model


def test_hub_revisions_resolve_to_exact_commits(hub):
    api = HfApi()
    api.create_repo("alice/tiny-model", private=True, exist_ok=True)
    ops = [CommitOperationAdd("config.json", b"{}")]
    first = api.create_commit("alice/tiny-model", operations=ops, commit_message="v1").oid
    api.create_tag("alice/tiny-model", tag="v1", revision=first)
    ops = [CommitOperationAdd("config.json", b'{"a": 1}')]
    second = api.create_commit("alice/tiny-model", operations=ops, commit_message="v2").oid
    assert hub_commit("alice/tiny-model", "v1") == first
    assert hub_commit("alice/tiny-model", None) == second
    source = resolve_model("alice/tiny-model", "v1")
    assert source.revision == first and source.load_kwargs() == {"revision": first}
    with pytest.raises(ModelSourceError, match="alice/no-such-model: cannot resolve revision"):
        hub_commit("alice/no-such-model", None)
    assert adapter_identity("alice/tiny-model", "v1")["adapter_revision"] == first


def test_local_adapter_is_identified_by_its_weights(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    identity = adapter_identity(str(tmp_path), None)
    assert identity["adapter_revision"] == "sha256:" + hashlib.sha256(b"weights").hexdigest()
    assert adapter_identity(None, None) == {"adapter": None, "adapter_revision": None}


def test_local_model_folder_is_identified_by_all_its_files(tmp_path):
    """Retraining into the same folder (same config.json, new weights) is a new model."""
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights v1")
    first = resolve_model(str(tmp_path)).sha256
    assert resolve_model(str(tmp_path)).sha256 == first
    (tmp_path / "model.safetensors").write_bytes(b"weights v2")
    assert resolve_model(str(tmp_path)).sha256 != first
    (tmp_path / "model.safetensors").write_bytes(b"weights v1")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert resolve_model(str(tmp_path)).sha256 != first
