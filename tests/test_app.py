"""The app in a subprocess, driven through gradio_client as a remote user would."""
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from conftest import REFUSED

ARGS = ("imagenet:effnet-lite0", "GradCAM", "(predicted class)", 0.5)


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server, verbose=False)


def test_explain_returns_labels_and_heatmap(client, coffee_path):
    labels, overlay_path, raw_path, info, download = client.predict(handle_file(str(coffee_path)), *ARGS,
                                                                    api_name="/explain")
    assert labels["label"] == "espresso" and len(labels["confidences"]) == 5
    over, raw = Image.open(overlay_path), Image.open(raw_path)
    assert over.size == raw.size == Image.open(coffee_path).size
    assert np.asarray(raw).std() > 10  # a real map, not a flat image
    assert "espresso" in info and "ms" in info
    assert Image.open(download).format == "PNG"


def test_target_class_and_other_backbone(client, cat_path):
    labels, *_, info, _ = client.predict(handle_file(str(cat_path)), "imagenet:effnet-lite1", "LayerCAM", "espresso",
                                         0.5, api_name="/explain")
    assert "class **espresso**" in info and "effnet-lite1" in info
    assert labels["label"] in {"tabby", "tiger cat", "Egyptian cat"}


def test_bad_inputs_get_a_message_and_the_server_keeps_serving(client, bad_images, coffee_path):
    for name, path in bad_images.items():
        if name in REFUSED:
            with pytest.raises(Exception) as err:
                client.predict(handle_file(str(path)), *ARGS, api_name="/explain")
            assert name in str(err.value), str(err.value)
        else:
            labels, *_ = client.predict(handle_file(str(path)), *ARGS, api_name="/explain")
            assert len(labels["confidences"]) == 5, name
    with pytest.raises(Exception, match="unknown class"):
        client.predict(handle_file(str(coffee_path)), ARGS[0], "GradCAM", "no such class", 0.5,
                       api_name="/explain")
    labels, *_ = client.predict(handle_file(str(coffee_path)), *ARGS, api_name="/explain")
    assert labels["label"] == "espresso"


def _seven(path):
    from PIL import ImageDraw
    im = Image.new("RGB", (200, 200), "white")
    draw = ImageDraw.Draw(im)
    draw.line([(50, 40), (150, 40)], fill="black", width=14)
    draw.line([(150, 40), (80, 170)], fill="black", width=14)
    im.save(path)
    return path


def test_mnist_classifier_and_training_tab(client, tmp_path):
    labels, cam = client.predict(None, handle_file(str(_seven(tmp_path / "seven.png"))), api_name="/classify_digit")
    assert labels["label"] == "7"
    assert Image.open(cam).size == (224, 224)
    metrics, curves, *_ = client.predict("mnist:cnn", api_name="/training_model")
    assert "mnist:cnn" in metrics and "Reproduce" in metrics and curves is not None
    with pytest.raises(Exception, match="Draw a digit"):
        client.predict(None, None, api_name="/classify_digit")


def _spoken(path, word="seven", voice="en-us"):
    import shutil
    import subprocess
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), word], check=True, capture_output=True)
    return path


def test_digits_tab_fuses_a_drawn_and_a_spoken_digit(client, tmp_path):
    from demos.digits import recognise
    seven_png, seven_wav = _seven(tmp_path / "seven.png"), _spoken(tmp_path / "seven.wav")
    seven, said = handle_file(str(seven_png)), handle_file(str(seven_wav))
    image, sound, fused, note = client.predict(None, seven, said, api_name="/recognise")
    assert image["label"] == "7" and fused["label"] == "7"
    assert {c["label"] for c in sound["confidences"]} <= {str(d) for d in range(10)}
    assert "Fused" in note
    # the page shows the fused distribution's top 3 (gr.Label(num_top_classes=3)): the same files
    # fused here, in this process, give a distribution over the 10 digits whose top 3 those are
    _, _, here, _ = recognise(None, str(seven_png), str(seven_wav))
    assert sorted(here) == [str(d) for d in range(10)] and sum(here.values()) == pytest.approx(1, abs=1e-4)
    top3 = sorted(here.items(), key=lambda kv: -kv[1])[:3]
    assert [c["label"] for c in fused["confidences"]] == [label for label, _ in top3]
    assert [c["confidence"] for c in fused["confidences"]] == pytest.approx([p for _, p in top3], abs=1e-5)
    only_image = client.predict(None, seven, None, api_name="/recognise")
    assert only_image[1] in (None, {})  # no sound, no sound prediction (gradio_client gives an empty Label as {})
    assert only_image[2]["label"] == "7" and "Only one" in only_image[3]
    with pytest.raises(Exception, match="Draw or upload"):
        client.predict(None, None, None, api_name="/recognise")
    with pytest.raises(Exception, match="empty|0 bytes"):  # a bad sound: one line, the tab keeps working
        empty = tmp_path / "empty.wav"
        empty.write_bytes(b"")
        client.predict(None, seven, handle_file(str(empty)), api_name="/recognise")
