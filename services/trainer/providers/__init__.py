"""Compute providers: where a job's node bootstrap script runs (`local` here; `aws` and
`gcp` start a tagged GPU instance whose startup script runs the same script)."""
