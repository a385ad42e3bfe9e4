from tests.model_fixtures import tiny_data, tiny_model  # noqa: F401  (pytest fixtures)
