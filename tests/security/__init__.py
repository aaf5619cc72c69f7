"""Security tests: attacks on the broker and property-based fuzzing of its parsers of untrusted input."""
