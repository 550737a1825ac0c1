"""What every phase runs on: building, saving and loading models (`models`); sampling answers (`generation`, a
plain sampler to read, and `fast_decoding`, a fixed-shape one that is fast, both drawing tokens with `sampling`)
and an answer's log-probs; the training step, optimiser and learning-rate schedule (`training`); number formats
(`precision`); what the RL loops share (`rl`); and what the preference-trained phases share
(`preference_batches`)."""
