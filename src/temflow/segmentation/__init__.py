"""The column-segmentation application: atomic columns in HR-TEM focal series.

* :mod:`~temflow.segmentation.data`: HR-TEM shards as normalised focal series and
  Gaussian target maps (a torch Dataset), dihedral augmentation, hold-out splits;
* :mod:`~temflow.segmentation.train`: MSD-net / U-net training with the shared loop
  (:mod:`temflow.training`);
* :mod:`~temflow.segmentation.detect`: class maps -> peaks -> matches, and the peak
  threshold calibrated on held-out images;
* :mod:`~temflow.segmentation.card`: loading a trained network with its card checks;
* :mod:`~temflow.segmentation.evaluate`: per-image scores of a validation set.
"""

#: Per-image simulation parameters (evaluation-table columns), with the axis labels of
#: the F1-against-parameter figure: F1 is read against the conditions an image was
#: simulated under. ``defocus_mean_A`` is the mean of the focal series' defoci; all but
#: ``sampling_A`` are copied from the shards. Free of torch, so that the workflow can
#: pass it to its rules without importing the networks.
IMAGE_PARAMETERS: dict[str, str] = {
    "dose_e_per_A2": "dose (e/A$^2$)",
    "defocus_mean_A": "mean defocus of the focal series (A)",
    "defocus_scherzer_fraction": "Scherzer fraction f of the focus shift",
    "astigmatism_A": "astigmatism (A)",
    "Cs_um": "C$_s$ ($\\mu$m)",
    "C21_nm": "axial coma C$_{21}$ (nm)",
    "C23_nm": "three-fold astigmatism C$_{23}$ (nm)",
    "angular_spread_mrad": "illumination angular spread (mrad)",
    "focal_spread_A": "focal spread (A)",
    "semiangle_cutoff_mrad": "objective aperture semiangle (mrad)",
    "blur_sigma_A": "blur (A)",
    "sampling_A": "pixel size (A)",
    "contamination_total_thickness_A": "amorphous carbon, both sides (A)",
    "frame_shift_max_A": "largest frame shift (A)",
    "frame_rotation_max_deg": "largest frame rotation (deg)",
}
