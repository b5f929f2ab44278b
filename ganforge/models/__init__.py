"""Built-in generators and discriminators."""

from ganforge.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["MLPDiscriminator", "MLPGenerator"]
