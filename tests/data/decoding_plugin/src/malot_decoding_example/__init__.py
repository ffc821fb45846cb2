"""An example third-party decoding hook for malot's tests."""
