"""Shared pieces of the continual tools: labelled arrays, the small MLP classifier, synthetic task streams."""
