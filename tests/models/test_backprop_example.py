import math

import torch
from torch.nn import functional as F


def test_worked_backprop_example() -> None:
    """1-2-1 sigmoid net, x=1, y=1, trained with binary cross-entropy.

    Forward: hidden z1 = w1*x + b1 = (2+3, 3+2) = (5, 5); h = sigmoid(5) = 0.99331
    per unit; z2 = w2.h + b2 = (2+3)*0.99331 + 2 = 6.9665; y_hat = sigmoid(z2) = 0.99906.

    Loss: the numbers only fit BCE. -ln(0.99906) = 0.00094 matches, whereas
    (y - y_hat)^2 / 2 = 4.4e-7 does not. For sigmoid + BCE the gradient at the
    pre-activation is dL/dz2 = y_hat - y = -0.00094, and dL/dw2 = dL/dz2 * h =
    -0.00094 * 0.99331 = (-0.000936, -0.000936).
    """
    x = torch.tensor([1.0], dtype=torch.float64)
    w1 = torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True)
    b1 = torch.tensor([3.0, 2.0], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(1.0, dtype=torch.float64)

    h = torch.sigmoid(w1 * x + b1)
    z2 = (w2 * h).sum() + b2
    z2.retain_grad()
    y_hat = torch.sigmoid(z2)
    loss = F.binary_cross_entropy(y_hat, y)
    loss.backward()

    assert math.isclose(z2.item(), 6.9665, abs_tol=5e-5)
    assert math.isclose(y_hat.item(), 0.99906, abs_tol=5e-6)
    assert math.isclose(loss.item(), 0.00094, rel_tol=5e-3)
    assert math.isclose(z2.grad.item(), -0.00094, rel_tol=5e-3)
    assert w2.grad is not None
    torch.testing.assert_close(w2.grad, torch.tensor([-0.000936, -0.000936], dtype=torch.float64), atol=5e-7, rtol=0)
    # The halved squared error gives a loss 2000x smaller than the worked example.
    assert 0.5 * (y - y_hat).item() ** 2 < 1e-6
