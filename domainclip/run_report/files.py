"""The files of a run folder that the report reads and the pipeline writes: one list of names, so the two agree."""

from pathlib import Path

RUN_INFO_FILE = "run_info.json"  # what the run was made from and on (pipeline/run_info.py)
TRAINING_LOG = Path("logs") / "metrics.jsonl"  # one JSON row per logged training step (engine)
RETRIEVAL_EXAMPLES_FILE = "retrieval_examples.json"  # in plots/: a few text -> image queries and what they found
PROMPTS_FILE = "zeroshot_prompts.json"  # in plots/: the zero-shot sentences as evaluated
PREVIEWS_DIR = "previews"  # in plots/: one small PNG per image the retrieval examples show
EXPLAINED_DIR = "explained"  # in plots/: what the model looked at (a domain's explain hook, e.g. WSI heatmaps)
REPORT_FILE = "report.html"


def preview_name(record_id: str) -> str:
    """A record's preview file name in ``plots/previews``: its id with path separators made safe."""
    return record_id.replace("/", "_").replace("\\", "_") + ".png"
