"""The recipe sections the satellite domain will own (light: pydantic only)."""

from __future__ import annotations

from pydantic import Field

from domainclip.config.schema import Strict


class SatellitePreprocessConfig(Strict):
    bands: list[str] | None = Field(
        None, description="bands to read, by name (file descriptions, else the layout's order); null: all of them"
    )
    size: tuple[int, int] = Field((64, 64), description="contract: output height, width in pixels")
    band_stats: dict[str, tuple[float, float]] | None = Field(
        None,
        description="per-band (mean, std) used to normalise; computed on the training split when null and saved "
        "with the model, so inference reuses them verbatim",
    )
