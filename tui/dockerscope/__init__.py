"""dockerscope: explore Docker images, their inspect document and their layers by keyboard."""

__version__ = "0.1.0"
