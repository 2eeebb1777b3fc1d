"""Every training command on the tiny synthetic task (seconds), the metrics on a
hand-checked confusion matrix, a 2-process DDP run, and the MNIST loader on real records."""
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import pytest
import torch
import yaml

from conftest import ROOT, run_module
from training.baselines import baselines
from training.config import ConfigError, load_config
from training.loss_study import overfit_verdict
from training.metrics import confusion_matrix, per_class, summary

SYNTH = ROOT / "training" / "configs" / "synthetic.yaml"


@pytest.fixture()
def cfg_path(tmp_path):
    """synthetic.yaml writing into tmp_path (checkpoint, tables), so tests leave no files behind."""
    cfg = yaml.safe_load(SYNTH.read_text())
    cfg["output"] = str(tmp_path / "synthetic" / "cnn.pt")  # absolute: ROOT / abs == abs
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(module, *args, env=None, timeout=300):
    return run_module(module, *args, env=env, timeout=timeout)


def test_metrics_on_a_hand_checked_confusion_matrix():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    pc = per_class(cm)
    # class 0: P=2/2 R=2/3 F1=0.8; class 1: P=1/2 R=1/2 F1=0.5; class 2: P=1/2 R=1 F1=2/3
    assert np.allclose(pc["f1"], [0.8, 0.5, 2 / 3])
    s = summary(cm)
    assert s["accuracy"] == pytest.approx(4 / 6) and s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_baselines():
    train = np.array([0, 0, 0, 1, 2])
    test = np.array([0, 1, 2, 0])
    b = baselines(train, test, 3)
    assert b["majority"]["accuracy"] == 0.5  # always predicts class 0
    # uniform guessing: right 1 time in 3 on many balanced labels, whatever the training labels say
    many = np.arange(30000) % 3
    guess = baselines(train, many, 3)["uniform_random"]
    assert guess["accuracy"] == pytest.approx(1 / 3, abs=0.01) and guess["macro_f1"] == pytest.approx(1 / 3, abs=0.01)
    assert baselines(train, many, 3, seed=0) == baselines(train, many, 3, seed=0)  # seeded
    assert baselines(train, many, 3, seed=1)["uniform_random"] != guess


def test_lr_finder_flags_a_sweep_whose_loss_never_falls():
    from training.lr_finder import clear_descent
    assert clear_descent([2.3, 2.2, 1.5, 0.9, 3.0])
    assert not clear_descent([3.93, 3.92, 3.95, 3.90, 3.92, 4.1])  # a flat, noisy sweep


def test_overfit_verdict():
    falling = [1.0, 0.5, 0.3, 0.2, 0.1]
    assert overfit_verdict(falling, [1.0, 0.6, 0.5, 0.6, 0.8])["overfits"]
    assert not overfit_verdict(falling, [1.0, 0.6, 0.5, 0.45, 0.44])["overfits"]


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: x\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: arch is required"):
        load_config(bad)
    cfg = load_config(SYNTH, ["train.epochs=7", "optim.lr=0.5"])
    assert cfg["train"]["epochs"] == 7 and cfg["optim"]["lr"] == 0.5


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", r"unknown key train\.epoch \(known: .*epochs"),          # a typo: no silent default
    ("data.size_=3", r"unknown key data\.size_ "),
    ("audio.nmels=3", r"unknown key audio\.nmels "),
    ("optim.lr=fast", r"optim\.lr must be float, not 'fast'"),
    ("train.hflip=3", r"train\.hflip must be bool"),
    ("grid.model.width=[1]", r"unknown key grid\.model "),
    ("folds=[{train.epoch: 1}]", r"folds\[0\] names unknown key train\.epoch"),
])
def test_a_mistyped_key_or_value_is_one_line_naming_key_and_file(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(SYNTH, [override])
    assert str(info.value).startswith(f"{SYNTH}: ") and "\n" not in str(info.value)


def test_every_default_is_filled_in_once_at_load():
    """A key the file leaves out gets the schema's default, so code reads cfg["train"]["seed"]."""
    from training import schema
    from training.config import resolve
    raw, cfg = yaml.safe_load(SYNTH.read_text()), load_config(SYNTH)
    for name, cls in (("train", schema.Train), ("optim", schema.Optim), ("scheduler", schema.Scheduler)):
        assert set(cfg[name]) == {f.name for f in dataclasses.fields(cls)}
        for f in dataclasses.fields(cls):
            if f.name not in raw[name] and f.default is not dataclasses.MISSING:
                assert cfg[name][f.name] == f.default, (name, f.name)
            elif f.name in raw[name]:
                assert cfg[name][f.name] == raw[name][f.name], (name, f.name)
    assert cfg["train"]["seed"] == raw["train"]["seed"]  # synthetic.yaml sets its seed: kept as given
    assert cfg["name"] == raw.get("name", raw["arch"]) and cfg["grid"]["epochs"] == raw["grid"].get("epochs", schema.Grid.epochs)
    assert resolve(dict(cfg)) == cfg  # idempotent: entry points that take a dict resolve it again


def test_select_last_trains_without_a_validation_split():
    """The MNIST example's protocol: no validation split, the last epoch's weights are kept."""
    from training.model_setup import build
    from training.datasets import load_task_data
    from training.engine import fit
    cfg = load_config(SYNTH, ["data.val_size=0", "train.eval_train=false"])
    data = load_task_data(cfg, ROOT)
    assert len(data.val) == 0
    with pytest.raises(ValueError, match="train.select: last"):
        fit(cfg, build(cfg, data), data, torch.device("cpu"), log=lambda *_: None)
    cfg["train"]["select"] = "last"
    model = build(cfg, data)
    state, history, best = fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
    assert best["epoch"] == cfg["train"]["epochs"] == len(history)
    assert "val_loss" not in history[-1] and history[-1]["test_accuracy"] > 0.5
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # the final weights


def test_weight_average_follows_its_formula_and_is_what_fit_keeps():
    """train.ema: the kept (and evaluated) weights are the running average of every step's weights,
    not the last step's; integer buffers are copied; a bad decay is refused."""
    from training.model_setup import build
    from training.datasets import load_task_data
    from training.engine import fit
    from training.weights import WeightAverage
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, 0.5)
    expected = net[0].weight.detach().clone()
    for step in range(1, 4):
        with torch.no_grad():
            net[0].weight.add_(1.0)
            net[1].num_batches_tracked.add_(1)
        avg.update(net)
        d = min(0.5, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * net[0].weight.detach()
    assert torch.allclose(avg.model[0].weight, expected)
    assert not torch.allclose(avg.model[0].weight, net[0].weight)
    assert int(avg.model[1].num_batches_tracked) == 3
    with pytest.raises(ValueError, match="train.ema"):
        WeightAverage(net, 1.5)

    cfg = load_config(SYNTH, ["train.epochs=2", "train.eval_train=false", "train.eval_test=false",
                              "data.train_subset=256", "train.select=last", "train.ema=0.9"])
    data = load_task_data(cfg, ROOT)
    model = build(cfg, data)
    state, history, best = fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
    assert any(not torch.equal(state[k], v) for k, v in model.state_dict().items())  # not the last step's
    model.load_state_dict(state)
    from training.engine import evaluate
    again = evaluate(model, data.val, len(data.labels), torch.device("cpu"))
    assert again["accuracy"] == pytest.approx(history[-1]["val_accuracy"])  # the average was scored
    assert again["accuracy"] > 0.5


def test_wise_keeps_the_interpolation_between_the_start_and_the_trained_weights():
    """train.wise: what fit keeps (and scores) is (1 - a) * start + a * trained, integer buffers from
    the trained model; train.wise_report scores other values of a on the validation split."""
    from training.model_setup import build
    from training.datasets import load_task_data
    from training.engine import evaluate, fit, seed_everything
    from training.weights import interpolate
    start = {"w": torch.zeros(3), "n": torch.tensor(1)}
    end = {"w": torch.tensor([2.0, 4.0, -2.0]), "n": torch.tensor(7)}
    mixed = interpolate(start, end, 0.25)
    assert torch.allclose(mixed["w"], torch.tensor([0.5, 1.0, -0.5])) and int(mixed["n"]) == 7

    base = ["train.epochs=2", "train.eval_train=false", "train.eval_test=false", "data.train_subset=256",
            "train.select=last"]
    cfg = load_config(SYNTH, base)
    data = load_task_data(cfg, ROOT)
    seed_everything(0)  # the same initial weights for both runs
    plain, _, _ = fit(cfg, build(cfg, data), data, torch.device("cpu"), log=lambda *_: None)
    cfg = load_config(SYNTH, base + ["train.wise=0.5"])
    seed_everything(0)
    model = build(cfg, data)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    state, history, _ = fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
    weight = next(k for k, v in initial.items() if v.dtype.is_floating_point and v.dim() > 1)
    assert torch.allclose(state[weight], 0.5 * initial[weight] + 0.5 * plain[weight], atol=1e-6)
    assert not torch.allclose(state[weight], plain[weight])
    model.load_state_dict(state)
    again = evaluate(model, data.val, len(data.labels), torch.device("cpu"))["accuracy"]
    assert again == pytest.approx(history[-1]["val_accuracy"])  # the interpolation is what was scored
    cfg = load_config(SYNTH, base + ["train.wise_report=[0.5,1.0]"])
    _, history, _ = fit(cfg, build(cfg, data), data, torch.device("cpu"), log=lambda *_: None)
    assert history[-1]["wise_1"] == pytest.approx(history[-1]["val_accuracy"])
    assert "wise_0.5" in history[0] and "wise_0.5" in history[-1]
    with pytest.raises(ValueError, match="train.wise"):
        fit(load_config(SYNTH, base + ["train.wise=1.5"]), build(cfg, data), data, torch.device("cpu"))


def test_wise_after_the_fact_rebuilds_the_start_the_trainer_used(cfg_path, tmp_path):
    """training.wise on a finished run at alpha 0.5 gives the weights the trainer keeps with
    train.wise=0.5 (so it found the same start); alpha 1 gives back the run; a bad alpha exits 2."""
    from models.checkpoint import load_checkpoint
    quick = ["--set", "train.epochs=2", "--set", "data.train_subset=256", "--set", "train.eval_train=false"]
    run("training.train", "--config", cfg_path, *quick, "--set", f"output={tmp_path / 'end.pt'}")
    run("training.train", "--config", cfg_path, *quick, "--set", "train.wise=0.5", "--set",
        f"output={tmp_path / 'mixed.pt'}")
    for alpha, name in ((0.5, "half.pt"), (1.0, "same.pt")):
        log = run("training.wise", "--config", cfg_path, *quick, "--checkpoint", tmp_path / "end.pt", "--alpha", alpha,
                  "--output", tmp_path / name)
        assert "validation accuracy" in log
    end, mixed = load_checkpoint(tmp_path / "end.pt"), load_checkpoint(tmp_path / "mixed.pt")
    half, same = load_checkpoint(tmp_path / "half.pt"), load_checkpoint(tmp_path / "same.pt")
    floats = [k for k, v in end["state_dict"].items() if v.dtype.is_floating_point]
    assert all(torch.allclose(same["state_dict"][k], end["state_dict"][k]) for k in floats)
    assert all(torch.allclose(half["state_dict"][k], mixed["state_dict"][k], atol=1e-6) for k in floats)
    assert not all(torch.allclose(half["state_dict"][k], end["state_dict"][k]) for k in floats)
    assert half["metrics"]["val_accuracy"] == pytest.approx(mixed["metrics"]["val_accuracy"])
    bad = subprocess.run([sys.executable, "-m", "training.wise", "--config", str(cfg_path), "--checkpoint",
                          str(tmp_path / "end.pt"), "--alpha", "1.5", "--output", str(tmp_path / "x.pt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --alpha must be in (0, 1], got 1.5"


def test_a_soup_keeps_the_mean_of_runs_with_consecutive_seeds(cfg_path, tmp_path):
    """train.soup=2 trains the recipe with seeds 0 and 1 on the same data and keeps their mean weights
    (what fit gives for each seed, averaged); training.wise averages finished runs the same way; the
    history has both runs' epochs; a bad soup size exits 2 with one line; runs of two architectures
    do not average."""
    from models.checkpoint import load_checkpoint
    from training.model_setup import build
    from training.datasets import load_task_data
    from training.engine import fit, seed_everything
    from training.weights import average
    mean = average([{"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)},
                    {"w": torch.tensor([3.0, -1.0]), "n": torch.tensor(9)}])
    assert torch.equal(mean["w"], torch.tensor([2.0, 1.0])) and int(mean["n"]) == 4
    with pytest.raises(ValueError, match="not one architecture"):
        average([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])

    settings = ["train.epochs=2", "data.train_subset=256", "train.eval_train=false"]
    quick = [a for s in settings for a in ("--set", s)]
    log = run("training.train", "--config", cfg_path, *quick, "--set", "train.soup=2",
              "--set", f"output={tmp_path / 'soup.pt'}")
    assert "soup of 2 runs (seeds 0, 1): validation accuracy" in log
    logs = Path(re.search(r"TensorBoard logs: (\S+) \(run1 \.\. run2", log).group(1))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for member in ("run1", "run2"):  # each run of the soup draws its own curves
        curves = EventAccumulator(str(logs / member)).Reload()
        assert [e.step for e in curves.Scalars("val/accuracy")] == [1, 2], member
    cfg = load_config(cfg_path, settings)
    data = load_task_data(cfg, ROOT)
    runs = []
    for seed in (0, 1):  # the trainer's loop, by hand: each run from its own seed's initial weights
        member = {**cfg, "train": {**cfg["train"], "seed": seed}}
        seed_everything(seed)
        runs.append(fit(member, build(member, data), data, torch.device("cpu"), log=lambda *_: None)[0])
    soup = load_checkpoint(tmp_path / "soup.pt")
    floats = [k for k, v in runs[0].items() if v.dtype.is_floating_point]
    assert not all(torch.allclose(runs[0][k], runs[1][k]) for k in floats)  # the seeds made two runs
    for k in floats:
        assert torch.allclose(soup["state_dict"][k], (runs[0][k] + runs[1][k]) / 2, atol=1e-5), k
    assert [(h["run"], h["epoch"]) for h in soup["history"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for i, state in enumerate(runs):
        torch.save({**load_checkpoint(tmp_path / "soup.pt"), "state_dict": state}, tmp_path / f"run{i}.pt")
    run("training.wise", "--config", cfg_path, *quick, "--checkpoint", tmp_path / "run0.pt", tmp_path / "run1.pt",
        "--alpha", 1, "--output", tmp_path / "mean.pt")
    again = load_checkpoint(tmp_path / "mean.pt")
    assert all(torch.allclose(again["state_dict"][k], soup["state_dict"][k], atol=1e-5) for k in floats)
    assert again["metrics"]["val_accuracy"] == pytest.approx(soup["metrics"]["val_accuracy"])
    bad = subprocess.run([sys.executable, "-m", "training.train", "--config", str(cfg_path), "--set", "train.soup=0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: train.soup must be a whole number of runs >= 1, got 0"


def test_channels_last_training_keeps_the_model_and_its_outputs():
    """train.channels_last only changes the memory layout: the network trains, its weights load
    into a plain model, and both give the same outputs."""
    from training.model_setup import build
    from training.data_common import first_items
    from training.datasets import load_task_data
    from training.engine import fit
    cfg = load_config(SYNTH, ["train.epochs=1", "train.eval_train=false", "train.eval_test=false",
                              "data.train_subset=256", "train.channels_last=true"])
    data = load_task_data(cfg, ROOT)
    model = build(cfg, data)
    state, history, _ = fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
    conv = [k for k, v in state.items() if v.dim() == 4]
    assert conv and all(state[k].is_contiguous(memory_format=torch.channels_last) for k in conv)
    assert history[-1]["train_loss"] < math.log(4)
    plain = build(cfg, data)
    plain.load_state_dict(state)
    x, _ = first_items(data.test, 16)
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x), atol=1e-5)


def test_reproduce_command_leaves_out_where_a_trial_run_wrote(monkeypatch):
    from training.common import reproduce_command
    monkeypatch.setattr(sys, "argv", ["train.py", "--config", "c.yaml", "--set", "output=runs/x.pt", "--set",
                                      "train.epochs=12", "--set", "data.note=a b", "--set=output=runs/y.pt"])
    assert reproduce_command("training.train") == \
        "python -m training.train --config c.yaml --set train.epochs=12 --set 'data.note=a b'"


def test_train_writes_a_checkpoint_the_app_can_serve(cfg_path, tmp_path):
    out = run("training.train", "--config", cfg_path)
    assert "first batch: loss" in out and "-> ok" in out
    ckpt_path = tmp_path / "synthetic" / "cnn.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["metrics"]["complete"] and ckpt["metrics"]["test_accuracy"] > 0.9
    assert len(ckpt["history"]) == 2 and {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(ckpt["history"][0])
    assert abs(ckpt["sanity"]["initial_loss"] - math.log(4)) < 0.5 and ckpt["sanity"]["grad_norm"] > 0
    assert "training.train" in ckpt["reproduce"] and ckpt["seed"] == 0
    assert (tmp_path / "synthetic" / "cnn.md").read_text().count("| epoch |") == 1
    from models.checkpoint import model_from_checkpoint
    from models.image_frontend import ImageSpec
    model = model_from_checkpoint(ckpt)
    assert ImageSpec.from_dict(ckpt["preprocessing"]).grayscale
    test_split = __import__("training.datasets", fromlist=["x"]).load_task_data(load_config(cfg_path), ROOT).test
    x, y = next(iter(torch.utils.data.DataLoader(test_split, batch_size=64)))
    assert (model(x).argmax(1) == y).float().mean() > 0.9

    out = run("training.evaluate", "--config", cfg_path, "--checkpoint", ckpt_path)
    assert "test accuracy" in out
    assert (tmp_path / "synthetic" / "cnn_confusion.png").stat().st_size > 1000
    cm = np.loadtxt(tmp_path / "synthetic" / "cnn_confusion.csv", delimiter=",", skiprows=1)
    ckpt = torch.load(ckpt_path, weights_only=True)
    # the whole test split, once each; its diagonal is the accuracy evaluate printed and stored
    assert cm.shape == (4, 4) and cm.sum() == len(test_split)
    assert np.array_equal(cm, ckpt["confusion_matrix"].numpy())
    assert np.trace(cm) / cm.sum() == pytest.approx(ckpt["metrics"]["test_accuracy"])
    assert f"test accuracy {np.trace(cm) / cm.sum():.4f}" in out
    assert [r["support"] for r in ckpt["metrics"]["per_class"]] == cm.sum(1).astype(int).tolist()
    assert "majority" in ckpt["baselines"]


def test_overfit_small_reaches_near_zero_loss(cfg_path):
    out = run("training.train", "--config", cfg_path, "--overfit-small", 16)
    final = float(out.split("final loss ")[1].split()[0])
    assert final < 0.05


def test_lr_finder_grid_search_baselines(cfg_path, tmp_path):
    out = run("training.lr_finder", "--config", cfg_path)
    result = json.loads((tmp_path / "synthetic" / "cnn_lr_finder.json").read_text())
    assert result["window"][0] <= result["suggested_lr"] <= result["window"][1]
    assert len(result["lrs"]) >= 10 and "suggested lr" in out
    assert result["clear_descent"]  # the synthetic task learns within the sweep
    out = run("training.grid_search", "--config", cfg_path)
    table = (tmp_path / "synthetic" / "cnn_grid.csv").read_text().splitlines()
    assert len(table) == 1 + 4 and "best:" in out  # 2 lr x 2 fc_units
    out = run("training.baselines", "--config", cfg_path)
    assert "majority" in out and "uniform_random" in out


def test_two_process_ddp_smoke(cfg_path, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.Popen([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "training.train",
                             "--config", str(cfg_path), "--set", "train.epochs=1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    finally:  # never leave worker processes behind
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    assert proc.returncode == 0, err[-3000:]
    ckpt = torch.load(tmp_path / "synthetic" / "cnn.pt", weights_only=True)
    assert ckpt["train_device"] == "cpu x2" and ckpt["metrics"]["complete"]


def test_bad_config_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "training.train", "--config", str(tmp_path / "nope.yaml")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().startswith("error:") and len(out.stderr.strip().splitlines()) == 1


def test_mnist_loader_on_real_records(needs_data):
    from training.datasets import load_task_data
    root = needs_data("mnist").parent
    cfg = load_config(ROOT / "training" / "configs" / "mnist.yaml")
    data = load_task_data(cfg, root)
    # the PyTorch example's protocol: all 60000 training images, no validation split
    assert (len(data.train), len(data.val), len(data.test)) == (60000, 0, 10000)
    assert cfg["train"]["select"] == "last" and cfg["grid"]["val_size"] == 5000
    x, y = data.test.tensors
    assert x.shape == (10000, 1, 28, 28) and sorted(torch.unique(y).tolist()) == list(range(10))
    assert abs(float(data.train.tensors[0].mean())) < 0.05  # normalised with MNIST's mean/std
    swapped = load_task_data(load_config(ROOT / "training" / "configs" / "mnist.yaml", ["data.swap=true"]), root)
    assert len(swapped.test) == 60000 and len(swapped.train) == 10000


def test_promote_ships_a_trial_run_only_when_the_config_says_how_it_was_trained(cfg_path, tmp_path):
    trial = tmp_path / "trial.pt"
    run("training.train", "--config", cfg_path, "--set", "train.epochs=1", "--set", f"output={trial}")
    shipped = tmp_path / "synthetic" / "cnn.pt"
    out = subprocess.run([sys.executable, "-m", "training.promote", "--config", str(cfg_path), "--checkpoint",
                          str(trial)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "train.epochs (1 in the run, 2 in the config)" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not shipped.exists()
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["train"]["epochs"] = 1
    cfg_path.write_text(yaml.safe_dump(cfg))
    from training.promote import promote
    assert promote(cfg_path, trial) == shipped
    a, b = torch.load(trial, weights_only=True), torch.load(shipped, weights_only=True)
    assert b["reproduce"] == f"python -m training.train --config {cfg_path}" and "--set" in a["reproduce"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert b["metrics"] == a["metrics"] and (tmp_path / "synthetic" / "cnn.md").is_file()
    a["metrics"]["complete"] = False
    torch.save(a, trial)
    with pytest.raises(ConfigError, match="did not finish"):
        promote(cfg_path, trial)


def test_a_selection_run_without_a_test_split_never_tests_and_cannot_be_served(cfg_path, tmp_path):
    """Choosing on validation without looking at the test set (e.g. ESC-50 with
    --set 'data.test_folds=[]'): the run finishes, says it was not tested, stores no test figure
    (its card is written all the same), and promote refuses it with one line."""
    trial = tmp_path / "select.pt"
    log = run("training.train", "--config", cfg_path, "--set", "data.test_size=0", "--set", f"output={trial}")
    assert "no test split (not tested)" in log and "test accuracy" not in log
    ckpt = torch.load(trial, weights_only=True)
    m = ckpt["metrics"]
    assert m["complete"] and m["val_accuracy"] > 0.5 and m["test_accuracy"] is None and "confusion_matrix" not in ckpt
    assert all("test_accuracy" not in row for row in ckpt["history"])  # eval_test skipped, not crashed
    assert "val_accuracy" in trial.with_suffix(".md").read_text()
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["data"]["test_size"] = 0
    cfg_path.write_text(yaml.safe_dump(cfg))
    from training.promote import promote
    with pytest.raises(ConfigError, match="never tested"):
        promote(cfg_path, trial)


def test_the_same_config_and_seed_train_the_same_weights(tmp_path, cfg_path):
    """A config with its seed is one run: the initial weights are seeded too (they were not)."""
    weights = []
    for k in range(2):
        out = tmp_path / f"run{k}.pt"
        run("training.train", "--config", cfg_path, "--set", "train.epochs=1", "--set", f"output={out}")
        weights.append(torch.load(out, weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_frozen_modules_keep_their_weights_and_batchnorm_statistics():
    """train.freeze: the named submodules train neither their weights nor their BatchNorm
    statistics; the rest trains; a name the model lacks is a one-line config error. The
    first-batch check leaves a model as it found it."""
    from training.datasets import load_task_data
    from training.engine import fit, first_batch_check
    cfg = load_config(SYNTH, ["train.epochs=1", "train.eval_train=false", "train.eval_test=false",
                              "data.train_subset=256", "train.select=last", "optim.name=adamw", "optim.lr=0.01",
                              "train.freeze=[front]"])
    data = load_task_data(cfg, ROOT)
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("front", torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()))
    model.add_module("head", torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 4)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first_batch_check(model, data.train, 4, 32, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    state, history, _ = fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
    assert all(torch.equal(state[k], before[k]) for k in before if k.startswith("front."))  # running stats too
    assert not torch.equal(state["head.2.weight"], before["head.2.weight"])
    cfg["train"]["freeze"] = ["front", "body.frontend"]
    with pytest.raises(ConfigError, match=r"train.freeze names \['body.frontend'\]"):
        fit(cfg, model, data, torch.device("cpu"), log=lambda *_: None)
