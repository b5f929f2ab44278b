"""Data sets: MNIST (IDX files or the embedded 5,000 digits), the 2-D mixtures, sklearn digits."""

from ganforge.data.base import DataInfo, GanDataset, SampledDataset, TensorDataset

__all__ = ["DataInfo", "GanDataset", "SampledDataset", "TensorDataset"]
