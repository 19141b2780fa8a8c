"""Live-to-VOD harvest jobs behind the StreamPackage (mdp 2020-05-27) harvest-job API."""

__version__ = "0.1.0"
