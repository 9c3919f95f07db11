"""HR-TEM training data: config sections, samples, microscope parameters, abTEM simulation,
labels, shards.

Users and the training stage read shards with :func:`temflow.hrtem.shards.open_dataset`.
"""
