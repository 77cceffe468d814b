"""The torch target: the reference definition on the CPU or CUDA, and the electronic cost
model every target uses for the ops it computes electronically."""

from rsgn.backends.torch.target import TorchBackend, TorchOptions, TorchProgram

__all__ = ["TorchBackend", "TorchOptions", "TorchProgram"]
