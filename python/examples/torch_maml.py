"""From a MAML model trained in plain PyTorch to a device that adapts like it.

Meta-trains the MAML paper's sinusoid regressor (1-40-40-1 ReLU, K = 10, one inner SGD step
with α = 0.01) with torch, saves its state_dict with safetensors, turns it into a w* with
tinyadapt, and adapts on held-out tasks twice: in torch (the same inner step, by autograd)
and in the device runtime (tinyadapt.simulate, or a board with --on qemu-an386). The two
must agree to float32 rounding.

    pip install torch safetensors numpy tinyadapt
    python torch_maml.py --iterations 3000 [--on qemu-an386]
"""

import argparse
import time

import numpy as np
import torch
from safetensors.torch import save_file

import tinyadapt as ta

K, ALPHA, META_BATCH = 10, 0.01, 25


def sample_tasks(rng, n, k):
    """n sinusoid tasks (A in [0.1, 5], φ in [0, π], x in [-5, 5]): support and query."""
    amp = rng.uniform(0.1, 5.0, size=(n, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(n, 1, 1))
    x = rng.uniform(-5.0, 5.0, size=(n, 2 * k, 1))
    y = amp * np.sin(x - phase)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    return t(x[:, :k]), t(y[:, :k]), t(x[:, k:]), t(y[:, k:])


def adapted(model, params, x, y, steps=1):
    """θ after `steps` SGD steps on the MSE of (x, y), differentiable in θ."""
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(torch.func.functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = {n: p - ALPHA * g for (n, p), g in zip(params.items(), grads)}
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--tasks", type=int, default=100, help="held-out tasks to compare on")
    ap.add_argument("--on", help="also adapt on a device: qemu-an386, … or a serial port")
    ap.add_argument("--out", default="maml_sinusoid.safetensors")
    args = ap.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, 40), torch.nn.ReLU(),
        torch.nn.Linear(40, 40), torch.nn.ReLU(),
        torch.nn.Linear(40, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.time()
    for it in range(args.iterations):
        xs, ys, xq, yq = sample_tasks(rng, META_BATCH, K)
        opt.zero_grad()
        loss = 0.0
        for b in range(META_BATCH):
            fast = adapted(model, dict(model.named_parameters()), xs[b], ys[b])
            pred = torch.func.functional_call(model, fast, (xq[b],))
            loss = loss + torch.nn.functional.mse_loss(pred, yq[b]) / META_BATCH
        loss.backward()
        opt.step()
        if (it + 1) % 1000 == 0:
            print(f"meta-iteration {it + 1}: query loss {loss.item():.4f}")
    print(f"meta-trained {args.iterations} iterations in {time.time() - start:.0f} s")

    save_file(model.state_dict(), args.out)
    blob = ta.Blob.from_state_dict(args.out, steps=1, k=K, alpha=ALPHA)
    print(f"{args.out} -> {blob!r}, firmware {blob.firmware()}")

    devices = [ta.simulate(blob)]
    if args.on:
        devices.append(ta.connect(args.on, blob))
    errors = {d.name: [] for d in devices}
    errors["torch"], gap = [], 0.0
    for task in ta.sinusoid_tasks(args.tasks, k=K):
        x, y = torch.tensor(task["support_x"]), torch.tensor(task["support_y"])
        start_at = {n: p.detach().requires_grad_() for n, p in model.named_parameters()}
        fast = adapted(model, start_at, x, y)
        want = torch.func.functional_call(model, fast, (torch.tensor(task["test_x"]),))
        want = want.detach().numpy()
        errors["torch"].append(float(np.mean((want - task["test_y"]) ** 2)))
        for d in devices:
            d.clear()
            d.reset()
            d.push_many(task["support_x"], task["support_y"])
            d.adapt()
            got = d.predict(task["test_x"])
            errors[d.name].append(float(np.mean((got - task["test_y"]) ** 2)))
            gap = max(gap, float(np.max(np.abs(got - want))))
    print(f"{args.tasks} held-out tasks, K = {K}, one inner step: mean MSE after adaptation")
    for name, e in errors.items():
        print(f"  {name:>40}: {np.mean(e):.4f}")
    print(f"largest difference between a device's and torch's prediction: {gap:.2e}")
    if len(devices) > 1:
        sim, board = devices
        same = all(
            np.array_equal(a, b) for a, b in zip(errors[sim.name], errors[board.name])
        )
        print(f"{board.name} and the host simulation: {'bit-identical' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
