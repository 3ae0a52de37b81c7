"""overmerge: three-way upgrade merge for overlay filesystems."""

__version__ = "0.1.0"
