"""Publishing a real embedded-model run to our Hub server, and reading it back by tag."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from huggingface_hub import DatasetCard, HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from sublearn.core.config import parse_config
from tests.conftest import error_line

REPO = "alice/owl-numbers-tiny"


@pytest.fixture(scope="module")
def published_run(prefect_server, tiny_config_data, tmp_path_factory):
    from sublearn.flows.dataset import dataset_flow

    teacher = {
        **tiny_config_data["teacher"],
        "sampling": {"max_new_tokens": 40},
    }
    data = {
        **tiny_config_data,
        "teacher": teacher,
        "dataset": {"kind": "numbers", "n_prompts": 8, "constrain_to_numbers": True},
        "output_dir": str(tmp_path_factory.mktemp("published-runs")),
        "publish": {"repo_id": REPO, "include_rejected": True},
    }
    config = parse_config(data)
    result = dataset_flow(config)
    assert 0 < result["stats"]["kept"] < 8  # rows on both sides of the filter
    # what the run recorded, read now: later tests publish this run dir elsewhere
    result["published_json"] = json.loads((config.run_dir() / "published.json").read_text())
    return config, result


def test_run_is_published_as_one_tagged_private_commit(published_run):
    config, result = published_run
    record = result["published"]
    assert record == result["published_json"]
    assert record["tag"] == f"run-{config.config_hash()[:12]}" and record["created"]
    api = HfApi()
    info = api.repo_info(REPO, repo_type="dataset", revision=record["tag"])
    assert info.private and info.sha == record["commit"]
    files = {s.rfilename for s in info.siblings}
    assert files == {
        "data/train.parquet",
        "rejected/train.parquet",
        "README.md",
        "lineage.json",
        "config.yaml",
    }
    commits = api.list_repo_commits(REPO, repo_type="dataset")
    assert len(commits) == 2  # the repo's creation, then everything in one commit


def test_card_records_the_lineage_and_no_secret(published_run):
    config, result = published_run
    card = DatasetCard.load(REPO, repo_type="dataset")
    meta = card.data.to_dict()
    assert {"subliminal-learning", "numbers-dataset", "trait-animal"} <= set(meta["tags"])
    lineage = meta["sublearn"]
    local = json.loads((config.run_dir() / "lineage.json").read_text())
    assert lineage == local
    assert "SmolLM2-135M-Instruct" in lineage["teacher"]["model_id"]
    assert lineage["teacher"]["revision"].startswith("sha256:")
    assert lineage["trait"] == {
        "target": "owl",
        "category": "animal",
        "plural": None,
        "by": "system prompt",
    }
    assert "owls" in lineage["system_prompt"] and lineage["system_prompt"] in card.content
    assert lineage["sampling"]["temperature"] == 1.0
    assert lineage["prefect_flow_run_id"]
    assert lineage["dataset"]["prompt_set"]["revision"].startswith("sha256:")
    stats = result["stats"]
    assert lineage["rows"] == {
        "generated": stats["total"],
        "kept": stats["kept"],
        "published": stats["dataset_rows"],
    }
    assert [f["name"] for f in lineage["filters"]] == ["numbers"]
    assert lineage["filters"][0]["dropped"] == stats["filters"][0]["dropped"]
    for secret in ("hf_write_alice", "hf_read_alice", "hf_write_bob"):
        assert secret not in card.content
        assert secret not in json.dumps(lineage)


def test_download_by_tag_gives_the_same_rows_and_lineage(published_run, run_cli, tmp_path):
    config, result = published_run
    tag = result["published"]["tag"]
    out = tmp_path / "dl"
    proc = run_cli(["download", REPO, "--revision", tag, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    local = pl.read_parquet(config.run_dir() / "kept.parquet")
    assert pl.read_parquet(out / "data.parquet").equals(local)
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage == json.loads((config.run_dir() / "lineage.json").read_text())
    assert "teacher revision" in proc.stdout and "matches the card" in proc.stdout
    shown = run_cli(["lineage", f"{REPO}@{tag}"])
    assert shown.returncode == 0 and "owl (animal)" in shown.stdout
    taken = tmp_path / "a-file"
    taken.write_text("mine")
    again = run_cli(["download", REPO, "--revision", tag, "--out", str(taken)])
    assert again.returncode == 1 and taken.read_text() == "mine"
    assert again.stderr.strip().splitlines() == [
        f"error: {taken}: exists and is not a folder; choose another --out"
    ]


def test_plain_load_dataset_reads_both_configs(published_run):
    import datasets

    config, result = published_run
    tag = result["published"]["tag"]
    kept = datasets.load_dataset(REPO, revision=tag, split="train")
    assert kept.num_rows == result["stats"]["dataset_rows"]
    rejected = datasets.load_dataset(REPO, "rejected", revision=tag, split="train")
    assert set(rejected["reject_reason"]) <= {
        "invalid_format",
        "too_many_numbers",
        "out_of_range",
        "banned_number",
    }


def test_republishing_the_same_run_is_a_no_op(published_run, run_cli, hub):
    config, result = published_run
    before = len(HfApi().list_repo_commits(REPO, repo_type="dataset"))
    proc = run_cli(["publish", str(config.run_dir()), "--repo-id", REPO])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already published, nothing to do" in proc.stdout
    assert len(HfApi().list_repo_commits(REPO, repo_type="dataset")) == before


def test_failures_are_one_line_and_publish_nothing(published_run, run_cli):
    config, _ = published_run
    run_dir = str(config.run_dir())
    wrong = run_cli(["publish", run_dir, "--repo-id", "alice/other"], HF_TOKEN="hf_bogus")
    assert wrong.returncode == 1  # Prefect logs the failed task run; the verdict comes last
    assert error_line(wrong.stderr) == (
        "error: alice/other: authentication failed (HF_TOKEN or stored token invalid)"
    )
    assert "hf_bogus" not in wrong.stderr + wrong.stdout
    read_only = run_cli(
        ["publish", run_dir, "--repo-id", REPO, "--tag", "new-tag"], HF_TOKEN="hf_read_alice"
    )
    assert read_only.returncode == 1
    assert error_line(read_only.stderr) == (
        f"error: {REPO}: your token may not publish to this repo (needs write access)"
    )
    assert "hf_read_alice" not in read_only.stderr + read_only.stdout
    hidden = run_cli(["download", REPO], HF_TOKEN="hf_write_bob")
    assert hidden.returncode == 1
    assert "not found, or private" in hidden.stderr and len(hidden.stderr.splitlines()) == 1
    missing_rev = run_cli(["download", f"{REPO}@no-such-tag"])
    assert "revision 'no-such-tag' not found" in missing_rev.stderr
    refs = HfApi().list_repo_refs(REPO, repo_type="dataset")
    assert "new-tag" not in {t.name for t in refs.tags}
    with pytest.raises(RepositoryNotFoundError):  # nothing was created with a bad token
        HfApi().repo_info("alice/other", repo_type="dataset")


def test_transient_hub_errors_are_retried(prefect_server, published_run, hub, tmp_path):
    from sublearn.flows.publish import publish_flow

    config, _ = published_run
    spec = config.publish.model_copy(update={"repo_id": "alice/retry-check"})
    hub.fail_next.extend([503])
    record = publish_flow(config.run_dir(), spec)
    assert record["created"] and record["rows"] >= 0
    assert not hub.fail_next


def test_reading_a_published_dataset_is_retried_too(prefect_server, published_run, hub):
    from prefect import flow

    from sublearn.flows.publish import read_published

    config, result = published_run
    tag = result["published"]["tag"]

    @flow
    def read() -> int:
        return read_published(REPO, tag).data.height

    hub.fail_next.extend([502, 429])
    assert read() == result["published"]["rows"]
    assert not hub.fail_next


def test_publishing_into_an_existing_public_repo_needs_public(published_run, run_cli):
    config, _ = published_run
    api = HfApi()
    api.create_repo("alice/open-data", repo_type="dataset", private=False)
    refused = run_cli(["publish", str(config.run_dir()), "--repo-id", "alice/open-data"])
    assert refused.returncode == 1
    assert error_line(refused.stderr) == (
        "error: alice/open-data: the repo exists and is public; publishing would make this "
        "data readable by anyone (pass --public / publish.private: false to mean it)"
    )
    assert len(api.list_repo_commits("alice/open-data", repo_type="dataset")) == 1
    meant = run_cli(["publish", str(config.run_dir()), "--repo-id", "alice/open-data", "--public"])
    assert meant.returncode == 0, meant.stderr[-2000:]


def test_the_published_config_names_no_local_path(published_run):
    import yaml
    from huggingface_hub import hf_hub_download

    config, result = published_run
    path = hf_hub_download(
        REPO, "config.yaml", repo_type="dataset", revision=result["published"]["tag"]
    )
    text = Path(path).read_text()
    assert yaml.safe_load(text)["output_dir"] == config.output_dir.name
    assert str(config.output_dir) not in text


def upload(repo: str, files: dict[str, bytes]) -> None:
    from huggingface_hub import CommitOperationAdd

    api = HfApi()
    api.create_repo(repo, repo_type="dataset", private=True, exist_ok=True)
    ops = [CommitOperationAdd(name, data) for name, data in files.items()]
    api.create_commit(repo, repo_type="dataset", operations=ops, commit_message="test")


@pytest.fixture(scope="module")
def good_files(published_run) -> dict[str, bytes]:
    from huggingface_hub import hf_hub_download

    _, result = published_run
    tag = result["published"]["tag"]
    names = ("data/train.parquet", "README.md", "lineage.json")
    return {
        n: Path(hf_hub_download(REPO, n, repo_type="dataset", revision=tag)).read_bytes()
        for n in names
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lineage.json": b"{}"}, "lineage lacks 'teacher.model_id'; not a sublearn dataset"),
        ({"lineage.json": b"{not json"}, "lineage.json is not valid JSON"),
        ({"README.md": None}, "no dataset card (README.md); not a sublearn dataset"),
        ({"README.md": b"# no metadata\n"}, "the dataset card records no sublearn row count"),
        (
            {"data/train.parquet": b"PAR1 broken"},
            "data/train.parquet: not a readable parquet file (ComputeError)",
        ),
    ],
    ids=["empty-lineage", "bad-json", "no-card", "bare-card", "bad-parquet"],
)
def test_malformed_datasets_are_one_line(good_files, run_cli, tmp_path, change, message):
    repo = f"alice/malformed-{abs(hash(message)) % 10**8}"
    files = {**good_files, **change}
    upload(repo, {k: v for k, v in files.items() if v is not None})
    out = tmp_path / "dl"
    proc = run_cli(["download", repo, "--out", str(out)])
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and error_line(proc.stderr) == f"error: {repo}@main: {message}", (
        proc.stderr[-2000:]
    )
    assert not out.exists()


def test_lineage_text_is_shown_as_plain_text(good_files, run_cli):
    lineage = json.loads(good_files["lineage.json"])
    lineage["system_prompt"] = "You love owls. [/oops] [bold]x\x1b[31mred\x07"
    upload("alice/odd-text", {**good_files, "lineage.json": json.dumps(lineage).encode()})
    proc = run_cli(["lineage", "alice/odd-text"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[/oops] [bold]x\\x1b[31mred\\x07" in proc.stdout.replace("\n", "").replace("│", "")
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


def test_the_same_run_published_from_two_folders_publishes_the_same_lineage(
    prefect_server, tiny_config_data, tmp_path
):
    """A run with a local adapter folder, made and published from two different folders:
    every published file names no local path, and the two lineages are the same but for when
    and by which flow run they were made (identity by digest, not by where)."""
    from huggingface_hub import hf_hub_download

    from sublearn.core.finetune import LoraTraining, add_lora
    from sublearn.flows.dataset import dataset_flow
    from sublearn.generators.backends import load_teacher

    base = load_teacher(parse_config({"name": "a", "teacher": {"dtype": "float32"}}).teacher)
    adapter, _ = add_lora(base.model, LoraTraining(rank=2, alpha=2, init_seed=5))
    published = {}
    for where in ("alice-home", "bob-home"):
        folder = tmp_path / where
        adapter.save_pretrained(folder / "my-adapter")
        data = {
            **tiny_config_data,
            "name": "portable",
            "seed": 11,
            "teacher": {**tiny_config_data["teacher"], "adapter": str(folder / "my-adapter")},
            "output_dir": str(folder / "runs"),
            "publish": {"repo_id": f"alice/portable-{where}"},
        }
        result = dataset_flow(parse_config(data))
        tag = result["published"]["tag"]
        files = {}
        for name in ("lineage.json", "README.md", "config.yaml"):
            path = hf_hub_download(
                data["publish"]["repo_id"], name, repo_type="dataset", revision=tag
            )
            files[name] = Path(path).read_text()
            assert str(tmp_path) not in files[name] and str(Path.home()) not in files[name]
        published[where] = json.loads(files["lineage.json"])
    # when and by which flow run; the config's hash (and the tag from it) covers the config as
    # written, adapter path included: it names the local run, and reveals no path itself
    made = ("created_at", "prefect_flow_run_id", "config_hash")
    a, b = ({k: v for k, v in p.items() if k not in made} for p in published.values())
    assert a == b
    assert a["teacher"]["adapter"] == "local:my-adapter"
    assert a["teacher"]["adapter_revision"].startswith("sha256:")


def test_download_and_lineage_retry_a_failing_hub(published_run, run_cli, hub, tmp_path):
    _, result = published_run
    tag = result["published"]["tag"]
    hub.fail_next.extend([500])
    got = run_cli(["download", f"{REPO}@{tag}", "--out", str(tmp_path / "d")])
    assert got.returncode == 0, got.stderr[-2000:]
    assert "hub busy or failing (500)" in got.stderr and "retrying in 2 s" in got.stderr
    # lineage: how many requests reach the Hub depends on huggingface_hub's local cache, so
    # only that a failing Hub is ridden out; what is not consumed is not left to later tests
    hub.fail_next.extend([503])
    try:
        shown = run_cli(["lineage", f"{REPO}@{tag}"], SUBLEARN_HUB_RETRY_DELAYS_S="0.1,0.1")
    finally:
        hub.fail_next.clear()
    assert shown.returncode == 0, shown.stderr[-2000:]


def test_a_hub_that_never_answers_times_out_in_one_line(run_cli, tmp_path):
    """A server that accepts connections and says nothing: each request gives up after the
    timeout, transient failures are retried as configured, then one line says so."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        started = time.monotonic()
        got = run_cli(
            ["download", "alice/anything", "--out", str(tmp_path / "d")],
            HF_ENDPOINT=url,
            SUBLEARN_HUB_TIMEOUT_S="1",
            SUBLEARN_HUB_RETRY_DELAYS_S="0.1",
        )
        took = time.monotonic() - started
    finally:
        silent.close()
    assert got.returncode == 1
    lines = got.stderr.strip().splitlines()
    assert lines[-1] == (
        "error: alice/anything: the hub gave no answer within 1 s during read "
        "(SUBLEARN_HUB_TIMEOUT_S)"
    )
    assert "retrying in 0.1 s" in got.stderr and took < 30


def test_ctrl_c_stops_a_publish_that_keeps_retrying(published_run, cli_env, hub, tmp_path):
    """A Hub that answers 500 to everything: publishing retries (2, 8, 30 s); Ctrl-C stops it
    within seconds with one line and nothing published."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import wait_until

    config, _ = published_run
    hub.fail_next.extend([500] * 200)
    log = tmp_path / "publish.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sublearn",
                "publish",
                str(config.run_dir()),
                "--repo-id",
                "alice/never-published",
            ],
            env=cli_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: len(hub.fail_next) < 200 or proc.poll() is not None)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        signalled = time.monotonic()
        proc.wait(timeout=60)
        stopped_after = time.monotonic() - signalled
    finally:
        hub.fail_next.clear()
    output = log.read_text()
    assert proc.returncode == 130, output[-2000:]
    assert stopped_after < 10, f"{stopped_after:.1f} s"
    assert [line for line in output.splitlines() if line.startswith("error:")] == [
        "error: interrupted; finished steps and generation batches are kept: rerun to resume"
    ]
    assert "Traceback" not in output
    with pytest.raises(RepositoryNotFoundError):
        HfApi().list_repo_refs("alice/never-published", repo_type="dataset")


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ({"lineage.json": b"{not json"}, "lineage.json is not valid JSON"),
        ({"lineage.json": b"[1, 2]"}, "lineage.json is not a JSON object"),
        ({"config.yaml": None}, "no config.yaml; is this a finished sublearn run?"),
        ({"config.yaml": b"a: [unclosed"}, "config.yaml: not valid YAML"),
    ],
    ids=["lineage-not-json", "lineage-not-object", "no-config", "config-not-yaml"],
)
def test_a_damaged_run_is_one_line_and_creates_no_repo(
    published_run, run_cli, tmp_path, damage, says
):
    import shutil

    config, _ = published_run
    run_dir = tmp_path / "run"
    shutil.copytree(config.run_dir(), run_dir)
    for name, content in damage.items():
        (run_dir / name).unlink()
        if content is not None:
            (run_dir / name).write_bytes(content)
    repo = f"alice/damaged-{tmp_path.name[-12:].lower()}"
    proc = run_cli(["publish", str(run_dir), "--repo-id", repo])
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and says in lines[0], proc.stderr[-2000:]
    with pytest.raises(RepositoryNotFoundError):
        HfApi().list_repo_refs(repo, repo_type="dataset")


def test_wrong_typed_remote_lineage_is_one_line(good_files, run_cli):
    lineage = json.loads(good_files["lineage.json"])
    lineage["dataset"]["prompt_set"] = "a string"
    upload("alice/typed-lineage", {**good_files, "lineage.json": json.dumps(lineage).encode()})
    proc = run_cli(["lineage", "alice/typed-lineage"])
    assert proc.returncode == 1
    assert error_line(proc.stderr).endswith("lineage 'dataset.prompt_set' is not a dict")


def test_an_oversized_remote_lineage_is_refused_before_it_is_read(good_files, run_cli):
    lineage = json.loads(good_files["lineage.json"])
    lineage["system_prompt"] = "x" * 2_000_000
    upload("alice/huge-lineage", {**good_files, "lineage.json": json.dumps(lineage).encode()})
    proc = run_cli(["lineage", "alice/huge-lineage"])
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith("lineage.json is 2.0 MB; a sublearn lineage is a few KB")
    )
