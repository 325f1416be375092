"""The acmeflow worker: hosts the workflows and activities on a task queue."""
