"""Training engine shared by every stage and domain.

Import from the submodules (kept out of this file so that ``launch_local`` can be
used by the CLI without importing torch):

- :mod:`domainclip.engine.trainer` — :class:`~domainclip.engine.trainer.Trainer`, the one loop.
- :mod:`domainclip.engine.distributed` — process-group setup (torchrun env, gloo/NCCL).
- :mod:`domainclip.engine.launch` — ``launch_local`` re-runs a command under torchrun.
- :mod:`domainclip.engine.checkpoint` — atomic, resumable checkpoints.
- :mod:`domainclip.engine.optim` — AdamW parameter groups and the warmup + cosine schedule.
"""
