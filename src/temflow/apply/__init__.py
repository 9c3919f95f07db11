"""Applying trained networks to users' own data (the ``temflow classify`` and
``temflow segment`` commands): readers, windowing/tiling, outputs."""
