"""Atomic-column segmentation of HR-TEM focal series: data, training, evaluation.

:mod:`temflow.segmentation.data` turns HR-TEM shards into a torch Dataset of normalised
focal series and Gaussian target maps (with dihedral augmentation);
:mod:`temflow.segmentation.pipeline` trains MSD-net / U-net with the shared loop
(:mod:`temflow.training`) and evaluates them per image (:mod:`temflow.evaluation`).
"""
