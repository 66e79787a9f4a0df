"""OpenWatch: compliance server and goose-compatible migration applier."""

# The one place a version is written (PEP 440). The release toolkit derives the RPM and DEB
# version strings from it (0.2.0rc1 -> 0.2.0~rc1).
__version__ = "0.2.0rc1"
