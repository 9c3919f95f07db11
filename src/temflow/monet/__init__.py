"""The trajectory application (MoNet): classify a track and regress its anomalous exponent.

Same shape as :mod:`temflow.segmentation`:

* :mod:`~temflow.monet.tasks`: the three tasks (``classify``, ``fbm_alpha``,
  ``ctrw_alpha``) as :class:`~temflow.monet.tasks.MonetTask` objects carrying model
  arguments, classes, loss, metric, targets and how to draw fresh tracks;
* :mod:`~temflow.monet.data`: network inputs from trajectory sets, augmentation, splits;
* :mod:`~temflow.monet.train`: training with the shared loop (:mod:`temflow.training`);
* :mod:`~temflow.monet.card`: loading a trained MoNet with its model-card checks;
* :mod:`~temflow.monet.evaluate`: predictions on held-out sets and the summary tables.
"""
