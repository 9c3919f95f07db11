"""Networks. Each model stores its constructor arguments in ``hparams`` (a dict) so that
:func:`temflow.training.save_model` / ``load_model`` can rebuild it from its model card."""

from temflow.models.monet import MoNet
from temflow.models.msdnet import MSDNet, MSDNetReference
from temflow.models.unet import UNet

__all__ = ["MSDNet", "MSDNetReference", "MoNet", "UNet"]
