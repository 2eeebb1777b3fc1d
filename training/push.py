"""python -m training.push --checkpoint checkpoints/<task>/<name>.pt --repo USER/REPO [--token T] [--private]

Upload a checkpoint and its model card (same stem, .md) to a Hugging Face Hub model repo as
<task>/<name>.pt and <task>/<name>.md, where the app finds them when XAI_LAB_HUB_REPO is set
(models/hub.py). The token defaults to HF_TOKEN or the one saved by `hf auth login`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from models.checkpoint import MAX_BYTES, load_checkpoint
from models.errors import ModelUnavailable, UserError, cli_main, one_line


class PushError(UserError):
    """What went wrong, in one line for the user."""


def check(path: Path) -> None:
    """Refuse what the app would refuse: a missing file, one over 10 MB, one that does not
    load with weights_only=True (pickled objects) or is not a checkpoint of this project."""
    if not path.is_file():
        raise PushError(f"checkpoint {path} not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise PushError(f"{path} is {size / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB "
                        "(save_checkpoint(..., half=True) stores fp16)")
    try:
        ckpt = load_checkpoint(path)
    except ModelUnavailable as exc:
        raise PushError(str(exc)) from None
    if not isinstance(ckpt, dict) or not {"state_dict", "arch", "labels"} <= ckpt.keys():
        raise PushError(f"{path} is not a checkpoint of this project (no state_dict, arch and labels)")


def push(checkpoint: str | Path, repo: str, token: str | None = None, private: bool = False) -> list[str]:
    """Check, then upload the checkpoint and its card in one commit; returns the paths in the repo."""
    from huggingface_hub import CommitOperationAdd, HfApi

    path = Path(checkpoint)
    check(path)
    files = [f for f in (path, path.with_suffix(".md")) if f.is_file()]
    task = path.parent.name
    ops = [CommitOperationAdd(path_in_repo=f"{task}/{f.name}", path_or_fileobj=str(f)) for f in files]
    # HF_ENDPOINT is read here, at call time: huggingface_hub reads it only once, at import.
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"), token=token)
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        # One commit for both files, so the card on the Hub always describes the weights beside it.
        api.create_commit(repo, ops, commit_message=f"Upload {task}/{path.name}")
    except Exception as exc:  # auth, network, bad repo id...: one line for the user
        raise PushError(f"upload of {path} to {repo} failed: {one_line(exc)}") from None
    return [op.path_in_repo for op in ops]


@cli_main()
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoints/<task>/<name>.pt")
    parser.add_argument("--repo", required=True, help="Hub model repo USER/REPO (created if missing)")
    parser.add_argument("--token", default=None, help="Hub token with write access (default: HF_TOKEN or login)")
    parser.add_argument("--private", action="store_true", help="create the repo private (if it does not exist)")
    args = parser.parse_args(argv)
    uploaded = push(args.checkpoint, args.repo, token=args.token, private=args.private)
    print(f"uploaded {', '.join(uploaded)} to {args.repo}; serve them with XAI_LAB_HUB_REPO={args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
