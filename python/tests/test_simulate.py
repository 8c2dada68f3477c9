"""The device runtime from Python: the same bits as the CLI's host simulation."""

import json

import numpy as np
import pytest

import tinyadapt as ta

STEPS = [0, 1, 5, 10]


def mse(dev, xs, ys):
    """The CLI's per-task error: float32 residuals, squared and summed in float64, in order."""
    s = 0.0
    for p, y in zip(dev.predict(xs)[:, 0], ys[:, 0]):
        d = float(np.float32(p - y))
        s += d * d
    return s / len(ys)


def mean_ci95_median(values):
    n = len(values)
    mean = 0.0
    for v in values:
        mean += v
    mean /= n
    var = 0.0
    for v in values:
        var += (v - mean) * (v - mean)
    var /= n - 1
    s = sorted(values)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return mean, 1.96 * (var / n) ** 0.5, median


def test_adaptation_equals_the_clis_host_simulation_bit_for_bit(cli, trained):
    tasks = 40
    table = json.loads(cli("eval", trained, "--tasks", tasks, "--json").stdout)
    blob = ta.Blob.read(trained)
    for row in table:
        k = row["k"]
        dev = ta.simulate(blob, capacity=k)
        per_step = {s: [] for s in STEPS}
        for task in ta.sinusoid_tasks(tasks, k=k):
            dev.clear()
            dev.reset()
            dev.push_many(task["support_x"], task["support_y"])
            done, stopped = 0, False
            for s in STEPS:
                if s > done and not stopped:
                    stopped = dev.adapt(s - done, unchecked=True).cause is not None
                    done = s
                per_step[s].append(mse(dev, task["test_x"], task["test_y"]))
        for cell in row["cells"]:
            mean, ci95, median = mean_ci95_median(per_step[cell["steps"]])
            assert (mean, ci95, median) == (cell["mean"], cell["ci95"], cell["median"]), (k, cell)


def test_the_device_keeps_working_after_refusing_bad_samples(trained):
    dev = ta.simulate(ta.Blob.read(trained))
    assert dev.status()["capacity"] == 10 and dev.ram > 2 * 1761 * 4
    with pytest.raises(ta.DeviceError, match="no samples"):
        dev.adapt()
    with pytest.raises(ta.DeviceError, match="NaN or infinite"):
        dev.push([np.nan], [0.0])
    with pytest.raises(ta.DeviceError, match="more than 64 from the training data"):
        dev.push([1e6], [0.0])
    for i in range(10):
        assert dev.push([i / 3], [np.sin(i / 3)]) == i + 1
    with pytest.raises(ta.DeviceError, match="full"):
        dev.push([0.0], [0.0])
    report = dev.adapt()
    assert report.steps == 1 and report.loss_after < report.loss_before
    with pytest.raises(ta.DeviceError, match="2 inner steps requested, w\\* was trained for 1"):
        dev.adapt(1)
    with pytest.raises(ta.DeviceError, match="regressor"):
        dev.classify([0.0])
    adapted = dev.params()
    assert not np.array_equal(adapted, ta.Blob.read(trained).theta0)
    dev.reset()
    assert np.array_equal(dev.params(), ta.Blob.read(trained).theta0)
    one = dev.predict([0.5])
    assert one.shape == (1,) and np.array_equal(dev.predict([[0.5], [0.5]])[0], one)


def test_load_serves_a_new_blob_as_an_update(trained):
    blob = ta.Blob.read(trained)
    dev = ta.simulate(blob)
    other = ta.Blob.make(blob.shape, blob.theta0 * 0.5, [0.02], steps=2, k=10)
    dev.load(other)
    assert dev.status()["generation"] == 2 and dev.status()["blob"] == other.signature
    assert np.array_equal(dev.params(), other.theta0)
    with pytest.raises(ta.DeviceError, match="not compiled|no simulation|capacity"):
        dev.load(ta.Blob.make([3, 4, 2], np.zeros(3 * 4 + 4 + 4 * 2 + 2), [0.1], steps=1, k=10))


def test_a_classifier_takes_labels_and_answers_with_its_scores():
    rng = np.random.default_rng(2)
    theta = (rng.normal(size=2 * 40 + 40 + 40 * 40 + 40 + 40 * 3 + 3) * 0.3).astype(np.float32)
    blob = ta.Blob.make([2, 40, 40, 3], theta, [0.5], steps=5, k=10, loss="cross-entropy")
    dev = ta.simulate(blob)
    centres = np.array([[-2, 0], [2, 0], [0, 2]], np.float32)
    labels = [i % 3 for i in range(9)]
    xs = centres[labels] + rng.normal(scale=0.3, size=(9, 2)).astype(np.float32)
    assert dev.push_many(xs, labels=labels) == 9
    with pytest.raises(ta.DeviceError, match="label outside the classes"):
        dev.push([0.0, 0.0], label=3)
    before = dev.adapt(0).loss_before
    report = dev.adapt()
    assert report.steps == 5 and report.loss_after < before
    for c in range(3):
        label, scores = dev.classify(centres[c])
        assert label == c and abs(float(scores.sum()) - 1) < 1e-5 and scores.shape == (3,)
    logits = dev.predict(centres[0])
    assert logits.shape == (3,) and int(np.argmax(logits)) == 0
