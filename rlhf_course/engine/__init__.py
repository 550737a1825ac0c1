"""What every phase runs on: building, saving and loading models; sampling answers (a plain sampler to read and
a fixed-shape one that is fast); the training step, optimiser and learning-rate schedule; number formats."""
