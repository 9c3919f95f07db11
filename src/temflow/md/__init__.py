"""Molecular dynamics: structures, asap3 Langevin dynamics, vibration amplitudes."""
