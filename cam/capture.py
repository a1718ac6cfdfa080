"""Activation capture: the only place in the package that touches hooks.

``capture`` registers forward hooks for one call inside a ``with`` block and removes them on exit,
even when the block raised. It is safe on a model shared by many threads:

* a hook stores a tensor only when it fires in the thread (context) that registered it, so a
  concurrent call's forward pass can never overwrite this call's activations;
* nothing else about the model changes: no ``.backward()``, no parameter ``.grad``, no
  ``train()``/``eval()`` switch, no ``requires_grad`` flips on parameters.

Gradients are optional and cheap. With ``grad_from=path`` the forward runs without autograd up to
that layer; its output is detached and becomes a leaf that requires grad, and autograd records only
the rest of the network. ``torch.autograd.grad(score, captured[path])`` then gives dscore/dA exactly
(what happens before A does not change dA), at a fraction of the cost of a full graph.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from cam.errors import LayerError

# Which capture owns the current thread/context. A hook fires in the thread that runs the forward
# pass, so comparing this with the hook's owner tells "my forward" from "someone else's".
_OWNER: contextvars.ContextVar[object | None] = contextvars.ContextVar("cam_capture_owner", default=None)


@contextmanager
def capture(module: nn.Module, paths: Sequence[str], grad_from: str | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the submodules at ``paths`` during forward passes inside the block.

    Args:
        module: the network; it is not modified beyond temporary hooks.
        paths: module paths (``"conv_layers.5"``) whose outputs to keep, each ``(B, K, H, W)``.
        grad_from: one of ``paths``, or None. When set, the block runs with autograd off until that
            layer, whose output becomes a leaf tensor with ``requires_grad=True``; every later layer
            is recorded by autograd. When None, autograd is off for the whole block.

    Yields:
        A dict ``path -> tensor`` filled by the forward pass(es) run inside the block.
    """
    if grad_from is not None and grad_from not in paths:
        raise LayerError(f"grad_from={grad_from!r} must be one of the captured paths {list(paths)}.")
    owner = object()
    captured: dict[str, torch.Tensor] = {}

    def make_hook(path: str) -> Any:
        def hook(_mod: nn.Module, _inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
            if _OWNER.get() is not owner:
                return None  # another call's forward pass on the shared model: not ours
            if path == grad_from:
                # Cut the graph here: the gradient with respect to this output does not depend on
                # anything upstream, so autograd need only record what follows.
                output = output.detach().requires_grad_(True)
                torch.set_grad_enabled(True)  # thread-local; restored when the block exits
                captured[path] = output
                return output  # the forward pass continues from the leaf
            captured[path] = output
            return None

        return hook

    token = _OWNER.set(owner)
    grad_was_enabled = torch.is_grad_enabled()
    try:
        with ExitStack() as stack:
            for path in dict.fromkeys(paths):
                handle = module.get_submodule(path).register_forward_hook(make_hook(path))
                stack.callback(handle.remove)
            torch.set_grad_enabled(False)
            yield captured
    finally:
        torch.set_grad_enabled(grad_was_enabled)
        _OWNER.reset(token)


def hook_count(module: nn.Module) -> int:
    """Forward hooks, forward pre-hooks and backward hooks registered anywhere in ``module``."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())
