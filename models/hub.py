"""Checkpoints from the Hugging Face Hub, for a deployment (a Space) that does not carry them.

With XAI_LAB_HUB_REPO=user/repo (and optionally XAI_LAB_HUB_REVISION), a checkpoint missing
from checkpoints/<task>/<name>.pt is fetched from the repo's <task>/<name>.pt, with its model
card <task>/<name>.md when there is one, into huggingface_hub's own cache. Without the
variable nothing is downloaded. `python -m training.push` puts checkpoints there.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelUnavailable

REPO_ENV = "XAI_LAB_HUB_REPO"
REVISION_ENV = "XAI_LAB_HUB_REVISION"


def resolve_checkpoint(local: str | Path) -> Path:
    """`local` if it exists or no Hub repo is set (load_checkpoint then says how to train it),
    else the cached Hub copy of <task>/<name>.pt, where task is `local`'s folder name."""
    local = Path(local)
    repo = os.environ.get(REPO_ENV)
    if local.is_file() or not repo:
        return local
    from huggingface_hub import try_to_load_from_cache

    stem = f"{local.parent.name}/{local.stem}"
    path = download(repo, f"{stem}.pt")
    card = f"{stem}.md"
    # Only when the cache knows nothing of the card for this commit (neither the file nor a
    # recorded 404): a Hub that is down would otherwise cost ~20 s of retries per start.
    if try_to_load_from_cache(repo, card, revision=_revision()) is None:
        try:
            download(repo, card)  # lands beside the .pt in the cache snapshot
        except ModelUnavailable:
            pass  # the model card is optional
    return path


def _revision() -> str | None:
    return os.environ.get(REVISION_ENV) or None


def download(repo: str, filename: str) -> Path:
    """One file of the repo, downloaded once and then served from the cache; ModelUnavailable on failure."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (LocalEntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    revision = _revision()
    try:
        # HF_ENDPOINT is read here, at call time: huggingface_hub reads it only once, at import.
        return Path(hf_hub_download(repo, filename, revision=revision, endpoint=os.environ.get("HF_ENDPOINT")))
    except Exception as exc:  # 404, network, bad repo id...: all become one line for the user
        if isinstance(exc, (RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)):
            reason = "not found (check the repo id and revision, and that the file was pushed)"
        elif isinstance(exc, LocalEntryNotFoundError):
            reason = "the Hub cannot be reached and there is no cached copy"
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"{repo}@{revision}" if revision else repo
        raise ModelUnavailable(f"Cannot download {filename} from Hugging Face Hub repo {where}: {reason}") from None
