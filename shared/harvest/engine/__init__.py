"""The harvest engine: object layout and the plan (download tasks + output playlists) of a job."""
