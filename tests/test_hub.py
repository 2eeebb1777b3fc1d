"""Checkpoints from the Hugging Face Hub (models/hub.py) and `python -m training.push`, against a
fake Hub on loopback that speaks the endpoints huggingface_hub 2.4 uses: HEAD/GET
/<repo>/resolve/<revision>/<file> (X-Repo-Commit, ETag, X-Error-Code), POST /api/repos/create,
/api/models/<repo>/preupload/<revision> and the NDJSON /api/models/<repo>/commit/<revision>.
Nothing leaves the machine; the real huggingface_hub client does all the talking."""
import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

from models.architectures import build_model
from models.checkpoint import save_checkpoint
from models.errors import ModelUnavailable

REPO = "someone/xai-lab-checkpoints"
LABELS = [f"digit-{i}" for i in range(10)]
RESOLVE = re.compile(r"^/(?:datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
REPO_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit)/(?P<rev>[^/]+)$")


class Evil:
    """Any class: a checkpoint that pickles it does not load with weights_only=True."""


class FakeHub(ThreadingHTTPServer):
    """repos: repo id -> {path in repo: bytes}. Namespace "denied" answers 401 to every API call."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple] = []                   # (method, path, headers)
        self.created: list[dict] = []                     # create_repo payloads

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def commit_of(self, repo: str) -> str:
        files = self.repos[repo]
        return hashlib.sha1(b"".join(p.encode() + files[p] for p in sorted(files))).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None, send_body: bool = True):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _json(self, status: int, obj, extra: dict | None = None):
        self._reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(extra or {})})

    def _resolve(self, send_body: bool):
        path = urlsplit(self.path).path
        self.server.requests.append((self.command, path, self.headers))
        m = RESOLVE.match(path)
        repo = m and m["repo"]
        if not m or repo not in self.server.repos:
            return self._reply(404, b"", {"X-Error-Code": "RepoNotFound"}, send_body)
        commit = self.server.commit_of(repo)
        data = self.server.repos[repo].get(unquote(m["file"]))
        if data is None:
            return self._reply(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, send_body)
        self._reply(200, data, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                                "Content-Type": "application/octet-stream"}, send_body)

    def do_HEAD(self):
        self._resolve(send_body=False)

    def do_GET(self):
        self._resolve(send_body=True)

    def do_POST(self):
        path = urlsplit(self.path).path
        self.server.requests.append(("POST", path, self.headers))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo = f"{payload['organization']}/{payload['name']}"
            if payload["organization"] == "denied":
                return self._json(401, {"error": "Invalid credentials in Authorization header"})
            self.server.created.append(payload)
            if repo in self.server.repos:
                return self._json(409, {"error": "You already created this model repo",
                                        "url": f"{self.server.url}/{repo}"})
            self.server.repos[repo] = {}
            return self._json(200, {"url": f"{self.server.url}/{repo}"})
        m = REPO_API.match(path)
        if not m or m["repo"] not in self.server.repos:
            return self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        repo = m["repo"]
        if m["op"] == "preupload":  # every file as a regular git blob: its bytes come in the commit
            files = json.loads(body)["files"]
            return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                value = item["value"]
                assert value["encoding"] == "base64"
                self.server.repos[repo][value["path"]] = base64.b64decode(value["content"])
        oid = self.server.commit_of(repo)
        self._json(200, {"commitUrl": f"{self.server.url}/{repo}/commit/{oid}", "commitOid": oid,
                         "pullRequestUrl": None})


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running fake Hub; huggingface_hub pointed at it with a fresh cache, and the registry
    pointed at an empty checkpoint folder, so every checkpoint is 'missing' locally."""
    import huggingface_hub.constants as hf_constants

    import models.factory
    import models.registry
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("XAI_LAB_HUB_REPO", REPO)
    monkeypatch.delenv("XAI_LAB_HUB_REVISION", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    (tmp_path / "checkpoints").mkdir()
    monkeypatch.setattr(models.registry, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    models.factory._cached.cache_clear()
    yield server
    models.factory._cached.cache_clear()
    server.shutdown()
    server.server_close()


def tiny_mnist_checkpoint(path: Path, **extra) -> Path:
    """A real mnist:cnn checkpoint (small fc layer) whose output is always 'digit-7'."""
    torch.manual_seed(0)
    model = build_model("mnist-net", fc_units=8)
    with torch.no_grad():
        model.fc2.weight.zero_()
        model.fc2.bias.copy_(torch.arange(10) == 7).mul_(10.0)
    spec = {"kind": "image", "size": 28, "mean": [0.1307] * 3, "std": [0.3081] * 3, "grayscale": True,
            "invert_light_background": True}
    return save_checkpoint(path, model, arch="mnist-net", arch_kwargs={"fc_units": 8}, labels=LABELS,
                           preprocessing=spec, metrics={"test_accuracy": 0.1}, seed=0, **extra)


@pytest.fixture
def digit(tmp_path) -> Path:
    arr = np.full((64, 64), 255, np.uint8)
    arr[12:52, 28:36] = 0  # a dark "1" on white
    path = tmp_path / "digit.png"
    Image.fromarray(arr).save(path)
    return path


def resolved(server: FakeHub) -> list[str]:
    return [path for method, path, _ in server.requests if "/resolve/" in path]


def test_missing_checkpoint_is_fetched_from_the_hub_and_served(hub, tmp_path, digit):
    from models import load_predictor
    from models.hub import resolve_checkpoint
    from models.registry import TASKS
    ckpt = tiny_mnist_checkpoint(tmp_path / "made" / "cnn.pt")
    hub.repos[REPO] = {"mnist/cnn.pt": ckpt.read_bytes(), "mnist/cnn.md": b"# mnist:cnn\n\ntiny test model\n"}

    p = load_predictor("mnist:cnn", device="cpu")
    assert p.labels == LABELS
    top = p.predict(digit, top_k=1)
    assert list(top) == ["digit-7"] and top["digit-7"] > 0.99
    assert p.explain(digit).shape == (28, 28)  # CAM works on the fetched model too

    local = TASKS["mnist"].checkpoint_path("cnn")
    assert not local.exists()  # fetched into huggingface_hub's cache, not into checkpoints/
    fetched = resolve_checkpoint(local)
    assert fetched.is_relative_to(tmp_path / "hf-cache") and fetched.read_bytes() == ckpt.read_bytes()
    assert fetched.with_suffix(".md").read_text().startswith("# mnist:cnn")  # the card lies beside it
    assert f"/{REPO}/resolve/main/mnist/cnn.pt" in resolved(hub)
    assert f"/{REPO}/resolve/main/mnist/cnn.md" in resolved(hub)


def test_cached_copy_is_served_when_the_hub_is_down(hub, tmp_path, digit):
    from models import load_predictor
    import models.factory
    hub.repos[REPO] = {"mnist/cnn.pt": tiny_mnist_checkpoint(tmp_path / "made" / "cnn.pt").read_bytes()}
    load_predictor("mnist:cnn", device="cpu")
    gets = [r for r in hub.requests if r[0] == "GET"]
    hub.shutdown()
    hub.server_close()  # connections now refused
    models.factory._cached.cache_clear()
    start = time.monotonic()
    assert list(load_predictor("mnist:cnn", device="cpu").predict(digit, top_k=1)) == ["digit-7"]
    assert time.monotonic() - start < 10  # no retry loop for the card, whose 404 the cache remembers
    assert [r for r in hub.requests if r[0] == "GET"] == gets  # downloaded once


def test_model_card_is_optional_and_revision_is_used(hub, monkeypatch, tmp_path, digit):
    from models import load_predictor
    monkeypatch.setenv("XAI_LAB_HUB_REVISION", "v1")
    hub.repos[REPO] = {"mnist/cnn.pt": tiny_mnist_checkpoint(tmp_path / "made" / "cnn.pt").read_bytes()}
    assert list(load_predictor("mnist:cnn", device="cpu").predict(digit, top_k=1)) == ["digit-7"]
    assert f"/{REPO}/resolve/v1/mnist/cnn.pt" in resolved(hub)
    assert f"/{REPO}/resolve/v1/mnist/cnn.md" in resolved(hub)  # asked for, 404, ignored


@pytest.mark.parametrize("repo_state", ["file missing", "repo missing"])
def test_not_on_the_hub_is_one_line_model_unavailable(hub, repo_state):
    from models import load_predictor
    if repo_state == "file missing":
        hub.repos[REPO] = {"esc50/cnn.pt": b"other model"}
    with pytest.raises(ModelUnavailable) as info:
        load_predictor("mnist:cnn", device="cpu")
    msg = str(info.value)
    assert "\n" not in msg and REPO in msg and "mnist/cnn.pt" in msg and "not found" in msg, msg


def test_pickled_checkpoint_from_the_hub_is_refused(hub, tmp_path):
    from models import load_predictor
    path = tiny_mnist_checkpoint(tmp_path / "made" / "cnn.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["payload"] = Evil()
    torch.save(ckpt, path)
    hub.repos[REPO] = {"mnist/cnn.pt": path.read_bytes()}
    with pytest.raises(ModelUnavailable, match="cannot be loaded safely"):
        load_predictor("mnist:cnn", device="cpu")


def test_no_repo_configured_gives_the_train_command_and_no_request(hub, monkeypatch):
    from models import load_predictor
    monkeypatch.delenv("XAI_LAB_HUB_REPO")
    with pytest.raises(ModelUnavailable) as info:
        load_predictor("mnist:cnn", device="cpu")
    msg = str(info.value)
    assert "python -m training.train --config training/configs/mnist.yaml" in msg
    assert "XAI_LAB_HUB_REPO" in msg and "\n" not in msg
    assert hub.requests == []


def test_local_checkpoint_wins_over_the_hub(hub, tmp_path, digit):
    from models import load_predictor
    from models.registry import TASKS
    tiny_mnist_checkpoint(TASKS["mnist"].checkpoint_path("cnn"))
    assert list(load_predictor("mnist:cnn", device="cpu").predict(digit, top_k=1)) == ["digit-7"]
    assert hub.requests == []


# --- python -m training.push

def push(*args: str) -> int:
    from training.push import main
    return main(list(args))


def test_push_uploads_checkpoint_and_card_then_the_app_serves_them(hub, monkeypatch, tmp_path, digit, capsys):
    from models import load_predictor
    ckpt = tiny_mnist_checkpoint(tmp_path / "mine" / "mnist" / "cnn.pt")
    ckpt.with_suffix(".md").write_text("# mnist:cnn\n")
    assert push("--checkpoint", str(ckpt), "--repo", "me/new-repo", "--token", "hf_test", "--private") == 0
    assert "mnist/cnn.pt" in capsys.readouterr().out
    assert hub.repos["me/new-repo"] == {"mnist/cnn.pt": ckpt.read_bytes(), "mnist/cnn.md": b"# mnist:cnn\n"}
    assert hub.created == [{"name": "new-repo", "organization": "me", "visibility": "private"}]
    posts = [(p, h) for m, p, h in hub.requests if m == "POST"]
    assert [p for p, _ in posts] == ["/api/repos/create", "/api/models/me/new-repo/preupload/main",
                                     "/api/models/me/new-repo/commit/main"]  # one commit for both files
    assert all(h.get("authorization") == "Bearer hf_test" for _, h in posts)

    # pushing again to the existing repo works (create_repo exist_ok), and the app serves the pushed files
    assert push("--checkpoint", str(ckpt), "--repo", "me/new-repo") == 0
    monkeypatch.setenv("XAI_LAB_HUB_REPO", "me/new-repo")
    assert list(load_predictor("mnist:cnn", device="cpu").predict(digit, top_k=1)) == ["digit-7"]


def test_push_without_a_card_uploads_the_checkpoint(hub, tmp_path):
    ckpt = tiny_mnist_checkpoint(tmp_path / "esc50" / "cnn.pt")
    assert push("--checkpoint", str(ckpt), "--repo", "me/r") == 0
    assert hub.repos["me/r"] == {"esc50/cnn.pt": ckpt.read_bytes()}


def _refused(capsys, *args) -> str:
    assert push(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_push_refuses_missing_big_pickled_and_foreign_files(hub, tmp_path, capsys):
    assert "not found" in _refused(capsys, "--checkpoint", str(tmp_path / "mnist" / "none.pt"), "--repo", "me/r")

    big = tiny_mnist_checkpoint(tmp_path / "big" / "mnist" / "cnn.pt", padding=torch.zeros(3_000_000))
    assert "limit is 10 MB" in _refused(capsys, "--checkpoint", str(big), "--repo", "me/r")

    pickled = tmp_path / "pickled" / "mnist" / "cnn.pt"
    pickled.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "arch": "mnist-net", "labels": LABELS, "payload": Evil()}, pickled)
    assert "cannot be loaded safely" in _refused(capsys, "--checkpoint", str(pickled), "--repo", "me/r")

    foreign = tmp_path / "foreign" / "mnist" / "cnn.pt"
    foreign.parent.mkdir(parents=True)
    torch.save(torch.zeros(3), foreign)
    assert "not a checkpoint" in _refused(capsys, "--checkpoint", str(foreign), "--repo", "me/r")

    assert hub.requests == [] and hub.repos == {}  # nothing was sent


def test_push_upload_failure_is_one_line(hub, tmp_path, capsys):
    ckpt = tiny_mnist_checkpoint(tmp_path / "mnist" / "cnn.pt")
    err = _refused(capsys, "--checkpoint", str(ckpt), "--repo", "denied/r", "--token", "hf_bad")
    assert "upload of" in err and "denied/r" in err and "401" in err
    err = _refused(capsys, "--checkpoint", str(ckpt), "--repo", "not a repo id!")
    assert "failed" in err
