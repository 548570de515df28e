"""The wheel, as a user gets it: built from this repository, installed into a fresh venv
outside it, it migrates an empty database and stores what its own publisher sent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from amc_learning.entrypoints.supervise import settings_env
from tests.integration.helpers import rows, stored_event_ids, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

PUBLISH = """
import json, amc_learning
from amc_learning.settings import Settings
from amc_learning.simulator.world import SimConfig, simulate
from amc_learning.streams.publisher import LearningPublisher
publisher = LearningPublisher.from_settings(Settings()).start()
events = [e for day in simulate(SimConfig(seed=5, symbols=12, days=6)) for e in day]
for event in events:
    assert publisher.publish(event)
assert publisher.flush(timeout=60), publisher.stats
publisher.close()
print(json.dumps({"sent": publisher.stats.sent, "package": amc_learning.__file__}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding the wheel (its dependencies are this
    environment's, through a .pth line: nothing is downloaded)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # what the Dockerfile copies; the build writes beside it
    shutil.copytree(REPO / "amc_learning", source / "amc_learning",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(root / "dist"), str(source)],
                   check=True, cwd=root, capture_output=True)
    (wheel,) = (root / "dist").glob("amc_learning-*.whl")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "--quiet", str(wheel)], check=True, cwd=root,
                   capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    return python.parent


def run(bin_dir: Path, *args: str, env: dict[str, str] | None = None,
        cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


def test_the_installed_wheel_has_one_namespace(installed: Path, tmp_path: Path):
    bare = run(installed, "python", "-c", "import schemas", cwd=tmp_path)
    assert bare.returncode != 0 and "No module named 'schemas'" in bare.stderr
    found = run(installed, "python", "-c", "import amc_learning.schemas, amc_learning.store;"
                " print(amc_learning.__file__)", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip().startswith(str(installed.parent)), found.stdout
    data_dir = run(installed, "python", "-c", "from amc_learning.settings import Settings;"
                   " print(Settings().data_dir)", cwd=tmp_path)
    assert data_dir.stdout.strip() == str(tmp_path / ".data")  # never inside site-packages


def test_the_installed_wheel_migrates_and_stores_what_it_publishes(
    installed: Path, settings, empty_database, tmp_path: Path
):
    url = empty_database("wheel")
    s = settings.with_overrides(database_url=url, data_dir=tmp_path / "data")
    env = settings_env(s)
    migrated = run(installed, "amc-learning", "migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    expected = {r[0] for r in rows(settings.database_url, TABLES)}
    assert {r[0] for r in rows(url, TABLES)} == expected and "learning_decisions" in expected

    persist = subprocess.Popen([str(installed / "amc-learning"), "consume", "persist"],
                               env={**os.environ, **env}, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        published = run(installed, "python", "-c", PUBLISH, env=env, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        said = json.loads(published.stdout.strip().splitlines()[-1])
        assert said["package"].startswith(str(installed.parent)), said
        wait_for(lambda: sum(stored_event_ids(url).values()) >= said["sent"],
                 f"{said['sent']} events stored")
    finally:
        persist.send_signal(signal.SIGTERM)
        out, _ = persist.communicate(timeout=60)
    assert persist.returncode == 0, out.decode(errors="replace")[-2000:]
    stored = stored_event_ids(url)
    assert sum(stored.values()) == len(stored) == said["sent"]  # each once

    # the report's template and stylesheet are package data too
    report = run(installed, "amc-learning", "report", "--out", str(tmp_path / "r.html"),
                 env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert "Learning intelligence report" in page and "--bg:#fff" in page  # the CSS inlined


TABLES = ("SELECT table_name FROM information_schema.tables"
          " WHERE table_schema = 'public' ORDER BY 1")
