"""Built-in generators and discriminators."""

from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.residual import ResidualDiscriminator, ResidualGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "ResidualDiscriminator",
           "ResidualGenerator"]
