"""Orchestration of a recipe: data -> stage 1 (MAE) -> stage 2 (alignment) -> evaluation."""
