"""synthqa: folder of policy PDFs → synthetic (question, chunk) retrieval dataset."""

__version__ = "0.1.0"
