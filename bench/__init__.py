"""Benchmarks that run a throwaway engine and print one JSON result on stdout."""

__all__: list[str] = []
