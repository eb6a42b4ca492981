"""The Textual front end. It reads service models and never talks to Docker itself."""

from dockerscope.ui.app import DockerscopeApp, create_app

__all__ = ["DockerscopeApp", "create_app"]
