"""Shared test support: fakes, servers, data and fixtures used by several test modules.

Loaded as a pytest plugin (`-p tests.support.plugin` in pyproject.toml), so that no test
module imports another and conftest files hold nothing shared."""
