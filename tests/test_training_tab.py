"""The Training tab's figures, as the page load draws them: its two load events (the model's
curves and LR finder, the MNIST loss study) run in two server threads at once."""
import io
import threading

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not (ROOT / "checkpoints" / "mnist" / "loss_study.json").is_file(),
                                reason="the MNIST checkpoint and its loss study are not in checkpoints/")


@pytest.fixture(autouse=True)
def close_figures():
    """models.training_plots makes its figures with pyplot, which keeps them until closed (Gradio closes them)."""
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def _figures(outputs) -> list:
    return [o for o in outputs if hasattr(o, "savefig")]


def test_log_axes_are_labelled_without_mathtext():
    """matplotlib's mathtext parser is not thread-safe; log ticks in plain text need none of it."""
    from demos.training import show_model, show_study
    figures = _figures(show_model("mnist:cnn")) + _figures(show_study())
    scales = [axis.get_scale() for fig in figures for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]
    assert scales.count("log") >= 3  # the LR finder's x axis, the two loss syntheses' y axes
    for fig in figures:
        fig.canvas.draw()
        labels = [t.get_text() for ax in fig.axes for minor in (False, True)
                  for t in ax.get_xticklabels(minor=minor) + ax.get_yticklabels(minor=minor)]
        assert not [text for text in labels if "$" in text], labels


def test_the_load_events_draw_at_once_without_error():
    """What every first page load did: both load events at once, each figure then saved as Gradio
    does (before the fix: "ParseFatalException: Unknown symbol: \\mathdefault", most rounds)."""
    from demos.training import show_model, show_study
    errors = []

    def load(event, *args):
        for _ in range(4):
            try:
                for fig in _figures(event(*args)):
                    fig.savefig(io.BytesIO(), format="png")
            except Exception as exc:  # noqa: BLE001 - collected, reported below
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
    threads = [threading.Thread(target=load, args=(show_model, "mnist:cnn")), threading.Thread(target=load,
                                                                                                args=(show_study,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
