"""The settings table: read once from the environment, documented in the README."""
import pytest

from dataserver.settings import SETTINGS, Settings, settings_table_markdown
from tests.conftest import REPO


def test_readme_documents_every_setting():
    assert settings_table_markdown() in (REPO / "README.md").read_text()


def test_values_come_from_the_environment_with_types():
    settings = Settings.from_env({"XODA_PORT": "8123", "XODA_CACHE_SIZE_GB": "1.5",
                                  "XODA_EXECUTOR": "dask"})
    assert (settings.port, settings.cache_size_gb, settings.executor) == (8123, 1.5, "dask")
    assert settings.host == "127.0.0.1"  # default


def test_a_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="XODA_PORT"):
        Settings.from_env({"XODA_PORT": "eighty"})


def test_unknown_settings_are_refused_and_settings_are_immutable():
    with pytest.raises(KeyError, match="colour"):
        Settings({"colour": "blue"})
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1
    assert settings.replace(port=9).port == 9 and settings.port == 8000


def test_the_secret_is_never_shown():
    assert "hunter2" not in repr(Settings({"secret_key": "hunter2"}))


def test_derived_paths(tmp_path):
    settings = Settings({"data_dir": str(tmp_path)})
    assert settings.cache_path == tmp_path / "cache"
    assert settings.archive_path == tmp_path / "archive"
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)
