"""Atomic-column segmentation of HR-TEM focal series: data, training, evaluation.

:mod:`temflow.segmentation.data` turns HR-TEM shards into a torch Dataset of normalised
focal series and Gaussian target maps (with dihedral augmentation);
:mod:`temflow.segmentation.pipeline` trains MSD-net / U-net with the shared loop
(:mod:`temflow.training`) and evaluates them per image (:mod:`temflow.evaluation`).
"""

#: Per-image simulation parameters copied from the shards into the evaluation table, so
#: that F1 can be read against the conditions an image was simulated under
#: (:func:`temflow.segmentation.pipeline.image_parameters`). ``defocus_mean_A`` is the
#: mean of the focal series' defoci. Defined here, free of torch, so that the workflow
#: can pass it to its evaluation rule without importing the networks.
IMAGE_PARAMETERS = (
    "dose_e_per_A2",
    "defocus_mean_A",
    "astigmatism_A",
    "Cs_A",
    "focal_spread_A",
    "semiangle_cutoff_mrad",
    "blur_sigma_A",
)
