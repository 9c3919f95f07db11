"""temflow: physics-based training data and networks for transmission electron microscopy."""

from temflow.errors import TemflowError

__version__ = "0.1.0"
__all__ = ["TemflowError", "__version__"]
