"""Semi-supervised baselines on this bundle's backbone: the mask pathway of ``DualPathwayDiffusionUNet``
fed a pure-noise mask at a random time step in training and at the fixed inference time step in
evaluation, exactly as our student, so that only the training method differs."""
