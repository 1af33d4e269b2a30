"""Our Hub-compatible test server, driven by the real huggingface_hub and datasets clients."""

from __future__ import annotations

import io
import os

import polars as pl
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    DatasetCard,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

CARD = """---
tags:
- subliminal-learning
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.parquet
---
# test
"""


def parquet(n: int) -> bytes:
    buf = io.BytesIO()
    pl.DataFrame({"prompt": [f"p{i}" for i in range(n)], "completion": ["1, 2"] * n}).write_parquet(
        buf
    )
    return buf.getvalue()


def test_private_repo_one_commit_tag_and_reads(hub):
    import datasets

    api = HfApi()
    assert api.whoami()["name"] == "alice"
    api.create_repo("alice/server-check", repo_type="dataset", private=True)
    before = len(api.list_repo_commits("alice/server-check", repo_type="dataset"))
    ops = [
        CommitOperationAdd("data/train.parquet", parquet(5)),
        CommitOperationAdd("README.md", CARD.encode()),
    ]
    info = api.create_commit(
        "alice/server-check", repo_type="dataset", operations=ops, commit_message="data and card"
    )
    commits = api.list_repo_commits("alice/server-check", repo_type="dataset")
    assert len(commits) == before + 1 and commits[0].commit_id == info.oid
    # parquet went through LFS, the card as a regular file
    assert any(path.endswith("/info/lfs/objects/batch") for _, path in hub.requests)
    tree = {
        f.path: f
        for f in api.list_repo_tree("alice/server-check", repo_type="dataset", recursive=True)
    }
    assert tree["data/train.parquet"].lfs is not None and tree["README.md"].lfs is None

    api.create_tag("alice/server-check", repo_type="dataset", tag="v1", revision=info.oid)
    ops = [CommitOperationAdd("data/train.parquet", parquet(7))]
    api.create_commit(
        "alice/server-check", repo_type="dataset", operations=ops, commit_message="more rows"
    )

    at_tag = datasets.load_dataset("alice/server-check", revision="v1")
    assert at_tag["train"].num_rows == 5
    folder = snapshot_download("alice/server-check", repo_type="dataset", revision="v1")
    assert pl.read_parquet(os.path.join(folder, "data/train.parquet")).height == 5
    latest = hf_hub_download("alice/server-check", "data/train.parquet", repo_type="dataset")
    assert pl.read_parquet(latest).height == 7
    card = DatasetCard.load("alice/server-check", repo_type="dataset")
    assert card.data.tags == ["subliminal-learning"]


def test_auth_answers_like_the_hub(hub):
    HfApi().create_repo("alice/auth-check", repo_type="dataset", private=True, exist_ok=True)
    ops = [CommitOperationAdd("x.txt", b"x")]
    with pytest.raises(HfHubHTTPError) as wrong:
        HfApi(token="hf_not_a_token").whoami()
    assert wrong.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as read_only:
        HfApi(token="hf_read_alice").create_commit(
            "alice/auth-check", repo_type="dataset", operations=ops, commit_message="no"
        )
    assert read_only.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token="hf_write_bob").repo_info("alice/auth-check", repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).repo_info("alice/auth-check", repo_type="dataset")
