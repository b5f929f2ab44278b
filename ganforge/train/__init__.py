"""Training: the Trainer loop, its device seam, artifacts and run provenance."""
