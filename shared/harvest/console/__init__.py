"""The Harvest Jobs console: a static page (built from console/ by `make console`) and its server."""
