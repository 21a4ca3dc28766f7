"""The TMK site: the page where the doctor and the patient open their consultation link."""
