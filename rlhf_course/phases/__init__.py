"""One module per algorithm of the course, in the order the notebooks teach them: pretrain (01), sft (02),
reward (03), ppo (04), evaluation (05), dpo (06), grpo (07). Each loss is a small pure function beside its loop.

A phase may use an earlier phase's pieces, as the notebooks build on each other (PPO and GRPO score answers with
the reward model's `reward_scores`, DPO tokenises as SFT does); never a later one's."""
