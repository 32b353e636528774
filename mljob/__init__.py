"""mljob: run GenePlexus jobs from job folders, locally or from an Azure Storage Queue."""

__version__ = "0.1.0"
