"""Blobs from Python: read what the CLI trained, make, write, and refuse as the CLI does."""

import numpy as np
import pytest

import tinyadapt as ta


def test_a_blob_meta_train_trained_reads_as_inspect_describes_it(cli, trained):
    blob = ta.Blob.read(trained)
    assert blob.shape == [1, 40, 40, 1]
    assert (blob.algorithm, blob.alpha_kind, blob.steps, blob.trained_k) == ("maml", "scalar", 1, 10)
    assert blob.loss == "mse" and blob.adapts == [0, 1, 2] and blob.head_start == "theta0"
    assert blob.theta0.dtype == np.float32 and blob.theta0.shape == (1761,)
    assert blob.alpha.tolist() == [np.float32(0.01)]
    assert blob.firmware() == "mlp-1-40-40-1-k10"
    assert len(blob) == trained.stat().st_size and blob.to_bytes() == trained.read_bytes()
    # The same report as the CLI's, after the CLI's own first line (the file name).
    shown = cli("inspect", trained).stdout.splitlines()
    assert blob.inspect().splitlines() == shown[1:]


def test_make_gives_the_blob_its_arrays_describe(tmp_path):
    rng = np.random.default_rng(1)
    theta = rng.normal(size=2 * 8 + 8 + 8 * 3 + 3).astype(np.float32)
    blob = ta.Blob.make([2, 8, 3], theta, [0.05], steps=3, k=5, loss="cross-entropy", seed=7)
    assert np.array_equal(blob.theta0, theta)
    assert (blob.shape, blob.steps, blob.trained_k, blob.seed) == ([2, 8, 3], 3, 5, 7)
    assert blob.loss == "cross-entropy" and blob.firmware() == "mlp-2-8-3-k5"
    blob.write(tmp_path / "w.bin")
    assert ta.Blob.read(tmp_path / "w.bin") == blob
    assert ta.Blob((tmp_path / "w.bin").read_bytes()) == blob


def test_layers_are_pytorchs_layout_of_theta0():
    # Layer 0 of a 2-3-… model: W (3 × 2) column-major in the blob, then b.
    theta = np.arange(2 * 3 + 3 + 3 * 1 + 1, dtype=np.float32)
    blob = ta.Blob.make([2, 3, 1], theta, [0.1], steps=1, k=1)
    (w0, b0), (w1, b1) = blob.layers()
    assert w0.tolist() == [[0, 3], [1, 4], [2, 5]] and b0.tolist() == [6, 7, 8]
    assert w1.shape == (1, 3) and b1.tolist() == [12]


def test_make_refuses_what_the_cli_refuses():
    theta = np.zeros(13, np.float32)
    with pytest.raises(ta.BlobError, match="θ0 has 12 values; the 1-4-1 model has 13 parameters"):
        ta.Blob.make([1, 4, 1], theta[:12], [0.1], steps=1, k=1)
    with pytest.raises(ta.BlobError, match="one α per parameter"):
        ta.Blob.make([1, 4, 1], theta, [0.1], steps=1, k=1, algorithm="metasgd")
    with pytest.raises(ta.BlobError, match=r"θ0\[3\] is NaN: every value must be finite"):
        bad = theta.copy()
        bad[3] = np.nan
        ta.Blob.make([1, 4, 1], bad, [0.1], steps=1, k=1)
    with pytest.raises(ta.BlobError, match="x_std\\[0\\] is 0: a scale must be positive"):
        ta.Blob.make([1, 4, 1], theta, [0.1], steps=1, k=1, x_mean=[0], x_std=[0])
    with pytest.raises(ta.BlobError, match="one or two hidden layers"):
        ta.Blob.make([1, 1], np.zeros(2), [0.1], steps=1, k=1)
    with pytest.raises(ta.BlobError, match="needs two outputs"):
        ta.Blob.make([1, 4, 1], theta, [0.1], steps=1, k=1, loss="cross-entropy")


def test_a_corrupt_blob_is_refused_with_the_clis_words(cli, trained, tmp_path):
    data = bytearray(trained.read_bytes())
    data[40] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    with pytest.raises(ta.BlobError) as e:
        ta.Blob(bytes(data))
    assert "w* CRC mismatch" in str(e.value)
    said = cli("inspect", tmp_path / "bad.bin", check=False).stderr
    assert str(e.value) in said
    with pytest.raises(ta.BlobError, match="bad.bin: w\\* CRC mismatch"):
        ta.Blob.read(tmp_path / "bad.bin")
    with pytest.raises(ta.BlobError, match="not a w\\* blob: bad magic"):
        ta.Blob(b"NOPE" + bytes(40))
