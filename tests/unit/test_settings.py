"""load_settings: the shipped params file, every kind of bad params file, where the stores go."""

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from modelwatch.errors import ConfigError
from modelwatch.settings import (
    HOME_ENV,
    LEDGER_URL_ENV,
    TRACKING_URI_ENV,
    Paths,
    load_settings,
    redact_url,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "params.yaml"


@pytest.fixture(autouse=True)
def _no_home_env(monkeypatch):
    for name in (HOME_ENV, LEDGER_URL_ENV, TRACKING_URI_ENV):
        monkeypatch.delenv(name, raising=False)


def shipped() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def write_params(folder: Path, raw: dict, name: str = "params.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_shipped_params_load():
    loaded = load_settings(SHIPPED)
    s = loaded.settings
    assert (s.project.model_name, s.project.task, s.project.home) == (
        "bike-demand",
        "regression",
        ".modelwatch",
    )
    assert (s.data.id, s.data.target, s.data.timestamp) == ("instant", "cnt", "dteday")
    assert s.data.numeric == ["mnth", "hr", "weekday", "temp", "atemp", "hum", "windspeed"]
    assert (s.drift.p_value_threshold, s.promotion.metric, s.training.window_batches) == (
        0.05,
        "mae",
        6,
    )
    assert s.validation.rules["hr"].max == 23
    assert loaded.paths == Paths(ROOT, SHIPPED, ROOT / ".modelwatch")


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: file not found$"):
        load_settings(path)


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("project:\n  model_name: [bike\n  task: regression\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: not valid YAML: ") as info:
        load_settings(path)
    assert "\n" not in str(info.value)
    assert path.read_text().startswith("project:\n")  # the input is left alone


def test_top_level_list_is_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- project\n- data\n")
    with pytest.raises(
        ConfigError, match=f"^{re.escape(str(path))}: expected a mapping of sections, got list$"
    ):
        load_settings(path)


def _set(section: str, key: str, value):
    def change(raw: dict) -> None:
        raw[section][key] = value

    return change


def _drop(section: str, key: str):
    def change(raw: dict) -> None:
        del raw[section][key]

    return change


def _append(section: str, key: str, value):
    def change(raw: dict) -> None:
        raw[section][key] = [*raw[section][key], value]

    return change


@pytest.mark.parametrize(
    "change, expected",
    [
        pytest.param(
            _set("drift", "p_valu_threshold", 0.05),
            r"drift\.p_valu_threshold: unknown key \(got 0\.05\)",
            id="unknown-key",
        ),
        pytest.param(
            _set("drift", "p_value_threshold", 2),
            r"drift\.p_value_threshold: Input should be less than 1 \(got 2\)",
            id="out-of-range",
        ),
        pytest.param(
            _set("drift", "numeric_test", "anderson"),
            r"drift\.numeric_test: .*'ks'.*'wasserstein'.* \(got 'anderson'\)",
            id="not-a-choice",
        ),
        pytest.param(
            _set("training", "window_batches", "six"),
            r"training\.window_batches: .*integer.* \(got 'six'\)",
            id="wrong-type",
        ),
        pytest.param(
            _set("validation", "min_rows", True),
            r"validation\.min_rows: Input should be a valid integer \(got True\)",
            id="bool-for-int",
        ),
        pytest.param(
            _set("drift", "p_value_threshold", True),
            r"drift\.p_value_threshold: Input should be a valid number \(got True\)",
            id="bool-for-float",
        ),
        pytest.param(
            _set("demo", "add_row_id", 1),
            r"demo\.add_row_id: Input should be a valid boolean \(got 1\)",
            id="int-for-bool",
        ),
        pytest.param(
            _drop("data", "target"), r"data\.target: required key is missing", id="missing-key"
        ),
        pytest.param(
            _append("data", "categorical", "colour"),
            r"data\.categorical: .*\['colour'\].*data\.features.*",
            id="categorical-not-a-feature",
        ),
        pytest.param(
            _set("promotion", "metric", "f1"),
            r"promotion\.metric: 'f1' is not a regression metric "
            r"\(accepted: mae, mape, r2, rmse\)",
            id="metric-not-of-task",
        ),
    ],
)
def test_bad_params_name_file_key_and_value(tmp_path, change, expected):
    raw = shipped()
    change(raw)
    path = write_params(tmp_path, raw)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {expected}$"):
        load_settings(path)
    assert path.read_bytes() == before


def test_cross_field_errors_name_file_key_and_value_somewhere(tmp_path):
    """Looser than the format above: holds both today and once the xfail bug is fixed."""
    raw = shipped()
    raw["promotion"]["metric"] = "f1"
    path = write_params(tmp_path, raw)
    with pytest.raises(
        ConfigError,
        match=f"^{re.escape(str(path))}: .*promotion\\.metric: 'f1' is not a regression metric",
    ):
        load_settings(path)
    raw = shipped()
    raw["data"]["categorical"].append("colour")
    path = write_params(tmp_path, raw)
    with pytest.raises(
        ConfigError, match=f"^{re.escape(str(path))}: data.*\\['colour'\\].* not in data\\.features"
    ):
        load_settings(path)


def test_every_error_is_reported(tmp_path):
    raw = shipped()
    raw["drift"]["bogus"] = 1
    raw["retrain"]["cooldown_batches"] = -1
    path = write_params(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert sorted(str(info.value).splitlines()) == [
        f"{path}: drift.bogus: unknown key (got 1)",
        f"{path}: retrain.cooldown_batches: Input should be greater than or equal to 0 (got -1)",
    ]


def test_relative_home_resolves_against_params_dir_not_cwd(tmp_path, monkeypatch):
    raw = shipped()
    raw["project"]["home"] = "stores/here"
    params = write_params(tmp_path / "project", raw)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    paths = load_settings(params).paths
    assert paths.home == tmp_path / "project" / "stores" / "here"
    assert paths.project_root == tmp_path / "project"
    assert paths.resolve("data/x.csv") == tmp_path / "project" / "data" / "x.csv"
    assert paths.resolve("/abs/x.csv") == Path("/abs/x.csv")
    assert list(elsewhere.iterdir()) == []


def test_relative_params_path_resolves_against_cwd(tmp_path, monkeypatch):
    params = write_params(tmp_path / "project", shipped())
    monkeypatch.chdir(tmp_path)
    paths = load_settings("project/params.yaml").paths
    assert (paths.params_file, paths.home) == (params, tmp_path / "project" / ".modelwatch")


def test_home_env_overrides_project_home(tmp_path, monkeypatch):
    params = write_params(tmp_path / "project", shipped())
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "moved"))
    paths = load_settings(params).paths
    assert paths.home == tmp_path / "moved"
    assert paths.data_repo == tmp_path / "moved" / "datarepo"
    assert paths.quarantine == tmp_path / "moved" / "datarepo" / "data" / "quarantine"


def test_tracking_uri_is_absolute_sqlite(tmp_path, monkeypatch):
    """Reference: sqlalchemy.engine.make_url parses the database path back out of the URI."""
    raw = shipped()
    raw["project"]["home"] = "h"
    params = write_params(tmp_path / "project", raw)
    monkeypatch.chdir(tmp_path)
    paths = load_settings(params).paths
    db = tmp_path / "project" / "h" / "mlflow.db"
    assert paths.tracking_uri == f"sqlite:///{db}"
    url = make_url(paths.tracking_uri)
    assert (url.drivername, url.database) == ("sqlite", str(db))
    assert paths.artifact_root == tmp_path / "project" / "h" / "mlartifacts"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            {"timezone": "Mars/Olympus"},
            "schedule.timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
        ({"cron": "0 6 * *"}, "schedule.cron: '0 6 * *' needs five fields"),
    ],
)
def test_schedule_needs_a_real_time_zone_and_five_cron_fields(tmp_path, schedule, message):
    raw = shipped()
    raw["schedule"].update(schedule)
    params = write_params(tmp_path, raw)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(params)


def test_classification_gets_thresholded_guard_metrics_unless_it_says_otherwise(tmp_path):
    """ROC AUC alone could promote a model whose answers at the serving threshold are worse."""
    raw = yaml.safe_load((ROOT / "params.bank.yaml").read_text())
    del raw["promotion"]["guard_metrics"]
    loaded = load_settings(write_params(tmp_path / "a", raw))
    assert loaded.settings.promotion.guard_metrics == {"accuracy": 0.02, "f1": 0.05}
    raw["promotion"]["guard_metrics"] = {}
    assert load_settings(write_params(tmp_path / "b", raw)).settings.promotion.guard_metrics == {}
    bike = shipped()
    del bike["promotion"]["guard_metrics"]
    assert load_settings(write_params(tmp_path / "c", bike)).settings.promotion.guard_metrics == {}


def test_secrets_come_from_the_environment_and_never_show_in_errors(tmp_path, monkeypatch):
    """${NAME} in any string is the environment variable NAME; unset, the error names the key
    and the variable; a bad value that came from the environment is shown as ${NAME}."""
    raw = shipped()
    raw["alerts"] = {"webhooks": [{"name": "ops", "url": "${MW_TEST_HOOK}"}]}
    path = write_params(tmp_path, raw)
    monkeypatch.delenv("MW_TEST_HOOK", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == (
        f"{path}: alerts.webhooks.0.url: environment variable MW_TEST_HOOK is not set"
    )
    monkeypatch.setenv("MW_TEST_HOOK", "https://hooks.example/T0/B0/tok3n")
    hook = load_settings(path).settings.alerts.webhooks[0]
    assert hook.url == "https://hooks.example/T0/B0/tok3n"
    monkeypatch.setenv("MW_TEST_HOOK", "nonsense://tok3n-in-a-bad-url")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "tok3n" not in str(err.value) and "${MW_TEST_HOOK}" in str(err.value)


def test_stores_are_embedded_sqlite_by_default():
    paths = load_settings(SHIPPED).paths
    assert paths.mode == "embedded"
    assert paths.tracking_uri == f"sqlite:///{ROOT / '.modelwatch' / 'mlflow.db'}"
    assert paths.ledger_url == f"sqlite:///{ROOT / '.modelwatch' / 'ledger.db'}"
    assert paths.experiment_artifact_root == ROOT / ".modelwatch" / "mlartifacts"


def test_stores_section_switches_to_server_mode_with_a_ledger_per_project(tmp_path):
    raw = shipped() | {
        "stores": {
            "tracking_uri": "http://mlflow.internal:5000",
            "ledger_url": "postgresql+psycopg://mw@db:5432/ledger_{project}",
        }
    }
    paths = load_settings(write_params(tmp_path, raw)).paths
    assert paths.mode == "server"
    assert paths.tracking_uri == "http://mlflow.internal:5000"
    assert paths.ledger_url == "postgresql+psycopg://mw@db:5432/ledger_bike_demand"
    assert paths.experiment_artifact_root is None  # the server's proxied artifact store


def test_environment_wins_over_the_stores_section(tmp_path, monkeypatch):
    raw = shipped() | {"stores": {"tracking_uri": "http://from-file:5000"}}
    monkeypatch.setenv(TRACKING_URI_ENV, "https://from-env:443")
    monkeypatch.setenv(LEDGER_URL_ENV, "postgresql+psycopg://u:pw@h/l_{project}")
    paths = load_settings(write_params(tmp_path, raw)).paths
    assert (paths.tracking_uri, paths.ledger_url) == (
        "https://from-env:443",
        "postgresql+psycopg://u:pw@h/l_bike_demand",
    )


def test_a_tracking_uri_that_is_not_an_http_server_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(TRACKING_URI_ENV, "sqlite:///elsewhere.db")
    with pytest.raises(ConfigError, match="MODELWATCH_TRACKING_URI: 'sqlite:///elsewhere.db' is"):
        load_settings(SHIPPED)
    raw = shipped() | {"stores": {"tracking_uri": "mlflow.internal:5000"}}
    with pytest.raises(ConfigError, match=r"stores.tracking_uri: String should match"):
        load_settings(write_params(tmp_path, raw))


def test_redact_url_hides_only_the_password():
    assert (
        redact_url("postgresql+psycopg://u:s3cret@h:5432/db")
        == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert redact_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact_url("postgresql://postgres@h/db") == "postgresql://postgres@h/db"
