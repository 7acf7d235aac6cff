"""GPU instances in the user's own cloud account (AWS EC2, Google Compute Engine), shared by
training and serving: launch with a startup script, tag with the job, watch, terminate."""
