"""Networks. Each model stores its constructor arguments in ``hparams`` (a dict) so that
:func:`temflow.training.save_model` / ``load_model`` can rebuild it from its model card.

Segmentation networks declare the context their outputs need: ``receptive_radius_px``
(pixels of input on each side that one output pixel depends on) and ``tile_alignment_px``
(tile corners must lie on this grid for a tiled pass to equal a whole-image pass).
"""

from temflow.models.monet import MoNet
from temflow.models.msdnet import MSDNet, MSDNetReference
from temflow.models.unet import UNet

#: Workflow name -> segmentation network class.
SEGMENTATION_NETWORKS = {"msdnet": MSDNet, "unet": UNet}

__all__ = ["SEGMENTATION_NETWORKS", "MSDNet", "MSDNetReference", "MoNet", "UNet"]
