"""PyTorch state_dicts, as the `safetensors` package writes them, to w* and onto a device."""

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import tinyadapt as ta

SHAPE = [(40, 1), (40, 40), (1, 40)]  # nn.Linear weights: outputs × inputs


def learn2learn_state_dict(seed=0, lrs=False):
    """What `safetensors.torch.save_file(MAML(model).state_dict(), …)` holds for a 1-40-40-1
    nn.Sequential; with `lrs`, MetaSGD's learning rates, one tensor per parameter."""
    rng = np.random.default_rng(seed)
    sd = {}
    for i, (o, n) in enumerate(SHAPE):
        sd[f"module.{2 * i}.weight"] = (rng.normal(size=(o, n)) / np.sqrt(n)).astype(np.float32)
        sd[f"module.{2 * i}.bias"] = (rng.normal(size=o) * 0.1).astype(np.float32)
    if lrs:
        for p, (name, t) in enumerate(list(sd.items())):
            sd[f"lrs.{p}"] = rng.uniform(0.001, 0.02, size=t.shape).astype(np.float32)
    return sd


def forward(layers, x):
    """nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) in float64."""
    h = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(layers):
        h = h @ w.astype(np.float64).T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


def test_import_computes_pytorchs_forward_pass(tmp_path):
    sd = learn2learn_state_dict()
    save_file(sd, tmp_path / "maml.safetensors")
    blob = ta.Blob.from_state_dict(tmp_path / "maml.safetensors", steps=1, k=10, alpha=0.01)
    layers = [(sd[f"module.{2 * i}.weight"], sd[f"module.{2 * i}.bias"]) for i in range(3)]
    x = np.linspace(-5, 5, 50, dtype=np.float32)[:, None]
    y = ta.simulate(blob).predict(x)
    assert np.allclose(y, forward(layers, x), rtol=1e-5, atol=1e-5)
    # And back: the blob's state_dict is the file's, value for value.
    back = blob.state_dict("learn2learn")
    assert back.keys() == sd.keys() and all(np.array_equal(back[k], sd[k]) for k in sd)


def test_the_cli_and_python_make_the_same_blob(cli, tmp_path):
    sd = learn2learn_state_dict(lrs=True)
    save_file(sd, tmp_path / "metasgd.safetensors")
    cli("import", tmp_path / "metasgd.safetensors", "--steps", 1, "--k", 5, "--out", tmp_path / "w.bin")
    from_cli = ta.Blob.read(tmp_path / "w.bin")
    from_file = ta.Blob.from_state_dict(tmp_path / "metasgd.safetensors", steps=1, k=5)
    from_dict = ta.Blob.from_state_dict(sd, steps=1, k=5)
    assert from_cli == from_file == from_dict
    assert from_cli.algorithm == "metasgd" and from_cli.alpha_kind == "per-parameter"
    # lrs.N is α laid out as parameter N: the blob's α, in PyTorch's layout, is the lrs.
    lr_layers = from_cli.layers(from_cli.alpha)
    for i, (w, b) in enumerate(lr_layers):
        assert np.array_equal(w, sd[f"lrs.{2 * i}"]) and np.array_equal(b, sd[f"lrs.{2 * i + 1}"])
    # The round trip through a file with the inner loop's settings gives the blob back.
    from_cli.save_state_dict(tmp_path / "again.safetensors", "learn2learn")
    assert ta.Blob.from_state_dict(tmp_path / "again.safetensors") == from_cli
    cli("state-dict", tmp_path / "w.bin", "--out", tmp_path / "cli.safetensors", "--layout", "learn2learn")
    assert load_file(tmp_path / "cli.safetensors").keys() == sd.keys()


def test_one_meta_sgd_step_is_sgd_with_the_learned_rates():
    sd = learn2learn_state_dict(seed=3, lrs=True)
    blob = ta.Blob.from_state_dict(sd, steps=1, k=5)
    rng = np.random.default_rng(4)
    xs = rng.uniform(-5, 5, size=(5, 1)).astype(np.float32)
    ys = np.sin(xs).astype(np.float32)
    dev = ta.simulate(blob, capacity=5)
    dev.push_many(xs, ys)
    dev.adapt()
    adapted = blob.layers(dev.params())
    # Backpropagation of the mean squared error in float64, then θ − lr ⊙ ∇.
    w = [sd[f"module.{2 * i}.weight"].astype(np.float64) for i in range(3)]
    b = [sd[f"module.{2 * i}.bias"].astype(np.float64) for i in range(3)]
    acts, h = [xs.astype(np.float64)], xs.astype(np.float64)
    for i in range(3):
        h = h @ w[i].T + b[i]
        if i < 2:
            h = np.maximum(h, 0.0)
        acts.append(h)
    g = 2 * (acts[3] - ys) / len(ys)
    for i in reversed(range(3)):
        gw, gb = g.T @ acts[i], g.sum(0)
        want_w = w[i] - sd[f"lrs.{2 * i}"] * gw
        want_b = b[i] - sd[f"lrs.{2 * i + 1}"] * gb
        assert np.allclose(adapted[i][0], want_w, rtol=1e-4, atol=1e-6), i
        assert np.allclose(adapted[i][1], want_b, rtol=1e-4, atol=1e-6), i
        g = (g @ w[i]) * (acts[i] > 0)


def test_import_refuses_a_wrong_shape_naming_the_key(cli, tmp_path):
    sd = learn2learn_state_dict()
    sd["module.2.weight"] = np.zeros((40, 30), np.float32)
    save_file(sd, tmp_path / "bad.safetensors")
    with pytest.raises(ta.BlobError) as e:
        ta.Blob.from_state_dict(tmp_path / "bad.safetensors", steps=1, k=10, alpha=0.01)
    assert 'tensor "module.2.weight" has shape [40, 30]: expected [_, 40]' in str(e.value)
    said = cli("import", tmp_path / "bad.safetensors", "--steps", 1, "--k", 10, "--alpha", 0.01,
               "--out", tmp_path / "x.bin", check=False)
    assert said.returncode != 0 and str(e.value) in said.stderr
    with pytest.raises(ta.BlobError, match="give it with --alpha"):
        ta.Blob.from_state_dict(learn2learn_state_dict(), steps=1, k=10)


def test_an_imported_blob_adapts_in_the_firmware_as_in_the_simulation(tmp_path):
    save_file(learn2learn_state_dict(seed=5, lrs=True), tmp_path / "metasgd.safetensors")
    blob = ta.Blob.from_state_dict(tmp_path / "metasgd.safetensors", steps=2, k=10)
    tasks = ta.sinusoid_tasks(3, k=10, seed=11)
    with ta.connect("qemu-an386", blob) as board:
        sim = ta.simulate(blob)
        for dev in (board, sim):
            assert dev.status()["blob"] == blob.signature
        for task in tasks:
            answers = []
            for dev in (board, sim):
                dev.clear()
                dev.reset()
                dev.push_many(task["support_x"], task["support_y"])
                r = dev.adapt()
                answers.append((r.loss_before, r.loss_after, r.steps, r.cause,
                                dev.params().tobytes(), dev.predict(task["test_x"]).tobytes()))
            assert answers[0] == answers[1]
        assert board.instructions(board.adapt(0).ticks) is not None
        assert board.memory()["stack_peak"] > 0


def test_an_update_reaches_the_firmware_through_its_other_slot():
    first = ta.Blob.from_state_dict(learn2learn_state_dict(seed=6), steps=1, k=10, alpha=0.01)
    second = ta.Blob.from_state_dict(learn2learn_state_dict(seed=7), steps=3, k=10, alpha=0.02)
    with ta.connect("qemu-an386", first) as board:
        assert board.status()["slot"] == "A"
        board.load(second)
        s = board.status()
        assert (s["slot"], s["generation"], s["blob"]) == ("B", 2, second.signature)
        assert np.array_equal(board.params(), second.theta0)
        wrong = ta.Blob.make([1, 8, 1], np.zeros(25), [0.1], steps=1, k=10)
        with pytest.raises(ta.DeviceError, match="did not take the new w\\*"):
            board.load(wrong)
        assert board.status()["blob"] == second.signature  # still serving
