"""Shared pytest configuration for the course's tests."""


def pytest_configure(config):
    config.addinivalue_line("markers", "notebook: executes a notebook")
