"""rlhf_course: the machinery the course's notebooks import, one folder per part of the pipeline.

    world/     the generated world: stories and requests, the gold judge, the tokenizer, the verifier
    engine/    what every phase runs on: models and checkpoints, sampling, training steps, number formats,
               what the RL loops share (rl), data-parallel training under torchrun (distributed)
    phases/    one module per algorithm: pretrain, sft, reward, ppo, dpo, grpo, evaluation
    feedback/  human feedback: rankings, the preference store, the ranking widget, annotators, the classroom
    course/    the notebooks' plumbing: session, report, exercises, plots, dashboards, cached experiments

Data flows one way: world -> corpus -> base (01) -> sft (02) -> rankings -> reward model (03) -> ppo (04), judged in
evaluation (05); dpo (06) learns from the rankings without a reward model; grpo (07) from the reward model or a
verifier.
`config` holds every size, `outline` the list of notebooks, `paths` where runs are kept.
"""
