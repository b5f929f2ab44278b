"""Offline sample-quality metrics (fid, kid, prdc, is, modes) and the shipped MNIST extractor."""

from ganforge.metrics.base import EvalData, FeatureExtractor, Metric

__all__ = ["EvalData", "FeatureExtractor", "Metric"]
