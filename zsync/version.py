"""zsync's version: a leaf every layer may read (the user agent, the ledger's meta row)
without importing the package's face, which sits above them all."""

__version__ = "0.1.0"
