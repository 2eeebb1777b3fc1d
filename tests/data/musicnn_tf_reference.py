"""How tests/data/musicnn_tf_reference.npz was made: the original musicnn (TensorFlow) on two fixed
inputs, the reference that tests/test_musicnn.py holds models/musicnn.py to. Not run by the tests
(TensorFlow is not a dependency). To remake it, in a separate environment:
    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras librosa
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python tests/data/musicnn_tf_reference.py
"""
from pathlib import Path

import numpy as np


def inputs() -> np.ndarray:
    """(2, 187 frames, 96 mels): uniform values, and log10p of a skewed power (as musicnn's features)."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 187, 96)).astype(np.float32) * 3.0
    x[1] = np.log10(1 + 10000 * rng.random((187, 96)) ** 4)
    return x


if __name__ == "__main__":
    import tensorflow as tf  # only here: tests/test_musicnn.py imports inputs() without TensorFlow
    from musicnn import models
    tf.compat.v1.disable_eager_execution()
    x = inputs()
    with tf.name_scope("model"):
        inp = tf.compat.v1.placeholder(tf.float32, [None, None, 96])
        is_train = tf.compat.v1.placeholder(tf.bool)
        out = models.define_model(inp, is_train, "MTT_musicnn", 50)
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(sess, str(Path(models.__file__).parent / "MTT_musicnn") + "/")
    logits, pen, mean_pool, max_pool = sess.run([out[0], out[8], out[6], out[7]], {inp: x, is_train: False})
    np.savez_compressed(Path(__file__).with_suffix(".npz"), logits=logits, penultimate=pen, mean_pool=mean_pool,
                        max_pool=max_pool)
