"""Networks. Each model stores its constructor arguments in ``hparams`` (a dict) so that
:func:`temflow.training.save_model` / ``load_model`` can rebuild it from its model card."""

from temflow.models.monet import MoNet

__all__ = ["MoNet"]
