"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It implements the subset of the Hub API that the real ``huggingface_hub`` and ``datasets``
clients use to create repos, commit files (regular and LFS), tag, list and download, with
the Hub's auth answers: 401 for a wrong token, 403 for a read-only token writing, 404 for a
private repo seen by someone else. State lives in memory; ``fail_next`` injects transient
errors (429/5xx) to exercise retries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".png", ".pt", ".gguf", ".zip")
REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileEntry:
    size: int
    oid: str  # git blob sha of the content (or of the LFS pointer)
    blob: str  # key into the server's blob store
    lfs_sha256: str | None = None


@dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, FileEntry]
    title: str
    message: str
    date: str
    author: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    owner: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        revision = unquote(revision)
        for prefix, refs in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if revision.startswith(prefix):
                revision = revision[len(prefix) :]
                return self.commits.get(refs.get(revision, ""))
        oid = self.branches.get(revision) or self.tags.get(revision)
        if oid is None and len(revision) >= 7:
            oid = next((c for c in self.commits if c.startswith(revision)), None)
        return self.commits.get(oid or "")


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class HubState:
    tokens: dict[str, tuple[str, str]]  # token -> (user, "read" | "write")
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    fail_next: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubHandler(BaseHTTPRequestHandler):
    server_version = "sublearn-test-hub/1.0"
    protocol_version = "HTTP/1.1"
    state: HubState  # set on the subclass made by ``start_hub``

    def log_message(self, *args) -> None:
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _body(self) -> bytes:
        return self.raw_body

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def _error(self, err: HubError) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, json.dumps({"error": err.message}).encode(), headers)

    def _user(self) -> tuple[str | None, str | None]:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None, None
        token = auth[len("Bearer ") :]
        if token not in self.state.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.state.tokens[token]

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        user, role = self._user()
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user != repo.owner):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write:
            if user is None:
                raise HubError(401, "You must be authenticated to write")
            if role != "write" or user != repo.owner:
                raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return commit

    def _endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # -- dispatch -------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    ROUTES = [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("DELETE", r"/api/repos/delete", "delete_repo"),
        ("GET", r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)", "repo_info"),
        (
            "GET",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/revision/(?P<rev>.+)",
            "repo_info",
        ),
        (
            "GET",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<p>/.*)?",
            "tree",
        ),
        (
            "POST",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)",
            "paths_info",
        ),
        ("GET", r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/refs", "refs"),
        (
            "GET",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/commits/(?P<rev>[^/]+)",
            "commits",
        ),
        (
            "POST",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)",
            "preupload",
        ),
        (
            "POST",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)",
            "commit",
        ),
        (
            "POST",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)",
            "create_tag",
        ),
        (
            "DELETE",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)",
            "delete_tag",
        ),
        (
            "POST",
            r"/api/(?P<t>datasets|models|spaces)/(?P<r>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)",
            "create_branch",
        ),
        (
            "POST",
            r"/(?:(?P<t>datasets|spaces)/)?(?P<r>[^/]+/[^/]+)\.git/info/lfs/objects/batch",
            "lfs_batch",
        ),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        (
            "GET",
            r"/(?:(?P<t>datasets|spaces)/)?(?P<r>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<p>.+)",
            "resolve",
        ),
        (
            "HEAD",
            r"/(?:(?P<t>datasets|spaces)/)?(?P<r>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<p>.+)",
            "resolve",
        ),
    ]

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        # read the whole body first: an early error must not leave it on a kept-alive socket
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        state = self.state
        with state.lock:
            state.requests.append((self.command, url.path))
            injected = state.fail_next.pop(0) if state.fail_next else None
        if injected is not None:
            self._error(HubError(injected, "Injected transient failure"))
            return
        for method, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, url.path)
            if method == self.command and match:
                args = {k: v for k, v in match.groupdict().items()}
                if "t" in args:
                    args["t"] = REPO_TYPES.get(args["t"] or "models", "model")
                try:
                    with state.lock:
                        getattr(self, f"h_{name}")(**args)
                except HubError as err:
                    self._error(err)
                return
        self._error(HubError(404, f"Not found: {self.command} {url.path}"))

    # -- handlers -------------------------------------------------------------------------
    def h_whoami(self):
        user, role = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        access = {"displayName": "test-token", "role": role}
        self._json(
            {
                "type": "user",
                "name": user,
                "fullname": user,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": access},
            }
        )

    def h_validate_yaml(self):
        content = json.loads(self._body() or b"{}").get("content", "")
        try:
            _front_matter(content.encode())
        except Exception as err:  # any YAML error is the card's fault
            self._json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
            return
        self._json({"errors": [], "warnings": []})

    def h_create_repo(self):
        user, role = self._user()
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        if role != "write":
            raise HubError(403, "You don't have the rights to create a repo")
        body = json.loads(self._body() or b"{}")
        owner = body.get("organization") or user
        if owner != user:
            raise HubError(403, f"You don't have the rights to create a repo under {owner}")
        repo_id = f"{owner}/{body['name']}"
        repo_type = body.get("type") or "model"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self._endpoint()}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            self._json({"error": "You already created this repo", "url": url}, status=409)
            return
        private = body.get("visibility", "private" if body.get("private") else "public") != "public"
        repo = Repo(repo_id, repo_type, owner, private, now())
        self._new_commit(repo, "main", {}, "initial commit", "", user)
        self.state.repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id})

    def h_delete_repo(self):
        body = json.loads(self._body() or b"{}")
        repo_id = f"{body.get('organization') or self._user()[0]}/{body['name']}"
        repo = self._repo(body.get("type") or "model", repo_id, write=True)
        del self.state.repos[(repo.repo_type, repo_id)]
        self._json({})

    def _entry_json(self, path: str, entry: FileEntry) -> dict:
        out = {"type": "file", "path": path, "oid": entry.oid, "size": entry.size}
        if entry.lfs_sha256:
            out["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": 134}
        return out

    def h_repo_info(self, t, r, rev="main"):
        repo = self._repo(t, r)
        commit = self._commit(repo, rev)
        siblings = [
            {"rfilename": p, "size": e.size, "blobId": e.oid} for p, e in commit.files.items()
        ]
        card = commit.files.get("README.md")
        card_data = _front_matter(self.state.blobs[card.blob]) if card else {}
        info = {
            "_id": hashlib.md5(r.encode()).hexdigest()[:24],
            "id": r,
            "author": repo.owner,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": card_data.get("tags", []),
            "cardData": card_data,
            "siblings": siblings,
        }
        if t == "model":
            info["modelId"] = r
        self._json(info)

    def _listing(self, files: dict[str, FileEntry], base: str, recursive: bool) -> list[dict]:
        base = base.strip("/")
        prefix = f"{base}/" if base else ""
        out, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest:
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1 if recursive else 2):
                    folders.add(prefix + "/".join(parts[:depth]))
                if not recursive:
                    continue
            out.append(self._entry_json(path, files[path]))
        out += [
            {"type": "directory", "path": f, "oid": git_blob_sha(f.encode()), "size": 0}
            for f in sorted(folders)
        ]
        return out

    def h_tree(self, t, r, rev, p=None):
        commit = self._commit(self._repo(t, r), rev)
        base = unquote(p or "")
        if base.strip("/") and not any(f.startswith(base.strip("/") + "/") for f in commit.files):
            raise HubError(404, f"Entry not found: {base}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        self._json(self._listing(commit.files, base, recursive))

    def h_paths_info(self, t, r, rev):
        commit = self._commit(self._repo(t, r), rev)
        raw = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(raw).get("paths", [])
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        out = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                out.append(self._entry_json(path, commit.files[path]))
            elif any(f.startswith(f"{path}/") for f in commit.files):
                out.append(
                    {
                        "type": "directory",
                        "path": path,
                        "oid": git_blob_sha(path.encode()),
                        "size": 0,
                    }
                )
        self._json(out)

    def h_refs(self, t, r):
        repo = self._repo(t, r)

        def refs(kind, names):
            return [
                {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in names.items()
            ]

        self._json(
            {
                "branches": refs("heads", repo.branches),
                "tags": refs("tags", repo.tags),
                "converts": [],
            }
        )

    def h_commits(self, t, r, rev):
        repo = self._repo(t, r)
        commit, out = self._commit(repo, rev), []
        while commit is not None:
            out.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": commit.author}],
                    "date": commit.date,
                }
            )
            commit = repo.commits.get(commit.parent or "")
        self._json(out)

    def h_preupload(self, t, r, rev):
        repo = self._repo(t, r, write=True)
        commit = repo.resolve(rev)
        files = []
        for f in json.loads(self._body()).get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            binary = f["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or f["size"] > 10_000_000
            existing = commit.files.get(f["path"]) if commit else None
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if binary else "regular",
                    "shouldIgnore": False,
                    "oid": existing.oid if existing else None,
                }
            )
        self._json({"files": files, "commitOid": commit.oid if commit else None})

    def h_lfs_batch(self, t, r):
        self._repo(t or "model", r, write=True)
        body = json.loads(self._body())
        objects = []
        for obj in body.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.state.blobs:
                href = f"{self._endpoint()}/lfs-upload/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def h_lfs_put(self, oid):
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "LFS object does not match its oid")
        self.state.blobs[oid] = data
        self._send(200)

    def h_commit(self, t, r, rev):
        user, _ = self._user()
        repo = self._repo(t, r, write=True)
        branch = unquote(rev)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        parent = repo.commits[repo.branches[branch]]
        expected = header.get("parentCommit")
        if expected and expected != parent.oid:
            raise HubError(412, "A commit has happened since the parent commit")
        files = dict(parent.files)
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                data = base64.b64decode(value["content"])
                oid = git_blob_sha(data)
                self.state.blobs[oid] = data
                files[value["path"]] = FileEntry(len(data), oid, oid)
            elif key == "lfsFile":
                if value["oid"] not in self.state.blobs:
                    raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                pointer = (
                    f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}"
                    f"\nsize {value['size']}\n"
                ).encode()
                files[value["path"]] = FileEntry(
                    value["size"], git_blob_sha(pointer), value["oid"], value["oid"]
                )
            elif key in ("deletedFile", "deletedFolder"):
                gone = value["path"].rstrip("/")
                files = {
                    p: e for p, e in files.items() if p != gone and not p.startswith(f"{gone}/")
                }
        commit = self._new_commit(
            repo, branch, files, header.get("summary", ""), header.get("description", ""), user
        )
        prefix = "" if t == "model" else f"{t}s/"
        self._json(
            {
                "commitUrl": f"{self._endpoint()}/{prefix}{r}/commit/{commit.oid}",
                "commitOid": commit.oid,
                "success": True,
            }
        )

    def _new_commit(self, repo, branch, files, title, message, author) -> Commit:
        parent = repo.branches.get(branch)
        manifest = json.dumps(
            [
                parent,
                sorted((p, e.oid) for p, e in files.items()),
                title,
                len(repo.commits),
                time.time(),
            ]
        )
        commit = Commit(
            hashlib.sha1(manifest.encode()).hexdigest(),
            parent,
            files,
            title,
            message,
            now(),
            author,
        )
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def h_create_tag(self, t, r, rev):
        repo = self._repo(t, r, write=True)
        commit = self._commit(repo, rev)
        tag = json.loads(self._body() or b"{}")["tag"]
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.oid
        self._json({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": commit.oid})

    def h_delete_tag(self, t, r, rev):
        repo = self._repo(t, r, write=True)
        if repo.tags.pop(unquote(rev), None) is None:
            raise HubError(404, f"Tag {unquote(rev)} not found", "RevisionNotFound")
        self._json({})

    def h_create_branch(self, t, r, rev):
        repo = self._repo(t, r, write=True)
        body = json.loads(self._body() or b"{}")
        start = self._commit(repo, body.get("startingPoint") or "main")
        name = unquote(rev)
        if name in repo.branches:
            raise HubError(409, f"Branch {name} already exists")
        repo.branches[name] = start.oid
        self._json({})

    def h_resolve(self, t, r, rev, p):
        repo = self._repo(t or "model", r)
        commit = self._commit(repo, rev)
        path = unquote(p)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = self.state.blobs[entry.blob]
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{entry.oid}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if entry.lfs_sha256:
            headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        status, body = 200, data
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if match and data:
            start = int(match[1]) if match[1] else max(len(data) - int(match[2]), 0)
            end = int(match[2]) if match[1] and match[2] else len(data) - 1
            end = min(end, len(data) - 1)
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        self._send(status, body, headers)


def _front_matter(readme: bytes) -> dict:
    """The YAML block of a card, for ``cardData`` (parsed with PyYAML, as the Hub does)."""
    import yaml

    text = readme.decode("utf-8", "replace")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not match:
        return {}
    data = yaml.safe_load(match[1])
    return data if isinstance(data, dict) else {}


def start_hub(tokens: dict[str, tuple[str, str]]) -> tuple[ThreadingHTTPServer, HubState, str]:
    """Start the server on a free loopback port in a daemon thread; returns server, state, URL."""
    state = HubState(tokens=tokens)
    handler = type("BoundHubHandler", (HubHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, state, f"http://{host}:{port}"
