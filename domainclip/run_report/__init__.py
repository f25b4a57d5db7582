"""``report.html``: one self-contained page per run folder (images embedded, no network), for every domain.

Reads only the run folder (:mod:`~domainclip.run_report.contents`), so ``domainclip report RUN_DIR`` redraws it at
any time, also for a run that stopped before evaluation (then marked incomplete).
"""
