"""Downloads of the vision data sets, only when a user passes --download.

Both come as the official archive from a Hugging Face dataset repo (huggingface-hub, so a
token, a mirror via HF_ENDPOINT and the local cache all work as usual); the repo and the
file are the config's data.hf_repo / data.hf_file, so a user can point at any mirror.
"""
from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

TINY_IMAGENET = {"repo": None, "file": "tiny-imagenet-200.zip", "top": "tiny-imagenet-200"}
CUB = {"repo": None, "file": "CUB_200_2011.tgz", "top": "CUB_200_2011"}


def fetch_archive(repo: str | None, filename: str, what: str) -> Path:
    if not repo:
        raise FileNotFoundError(f"{what}: set data.hf_repo (a Hugging Face dataset repo holding {filename}) "
                                "to download it, or put the official layout under --data-dir")
    import os

    from huggingface_hub import hf_hub_download
    print(f"downloading {filename} from the Hugging Face dataset repo {repo}", file=sys.stderr)
    try:
        # HF_ENDPOINT is read here, at call time: huggingface_hub reads it only once, at import.
        return Path(hf_hub_download(repo, filename, repo_type="dataset", endpoint=os.environ.get("HF_ENDPOINT")))
    except Exception as exc:  # network, auth, missing file: one line for the user
        raise FileNotFoundError(f"{what}: could not download {filename} from {repo}: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def unpack(archive: Path, dest: Path, top: str) -> Path:
    """Extract the archive's `top` folder into dest/top (safely: no absolute or '..' members)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)  # zipfile drops '..' and absolute parts of member names
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")  # refuses links and paths outside tmp
        found = next((p for p in Path(tmp).rglob(top) if p.is_dir()), None)
        if found is None:
            raise FileNotFoundError(f"{archive.name} holds no {top}/ folder")
        target = dest / top
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(found), str(target))
    return target


def download_tiny_imagenet(folder: Path, repo: str | None = None, filename: str | None = None) -> Path:
    archive = fetch_archive(repo or TINY_IMAGENET["repo"], filename or TINY_IMAGENET["file"], "Tiny ImageNet")
    return unpack(archive, folder.parent, TINY_IMAGENET["top"])


def download_cub(root: Path, repo: str | None = None, filename: str | None = None) -> Path:
    archive = fetch_archive(repo or CUB["repo"], filename or CUB["file"], "CUB-200-2011")
    return unpack(archive, root, CUB["top"])
