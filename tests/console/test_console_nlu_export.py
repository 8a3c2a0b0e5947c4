"""Labels staff give in the console export as NLU data that Rasa itself accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from console_support import ConsoleServer, csrf_of

from bot.console import transcript
from bot.settings import PROJECT_ROOT
from bot.storage import console as store


def label_first_user_message(console: ConsoleServer, conversation_id: str, **choice: str) -> None:
    session = console.login("clinician")
    url = f"{console.url}/conversations/{conversation_id}"
    stamp = next(line.stamp for line in transcript.lines(store.conversation_events(console.db, conversation_id))
                 if line.kind == "user")
    response = session.post(url + "/label", data={"csrf": csrf_of(session, url), "timestamp": stamp, **choice})
    assert "label saved" in response.text


def test_export_passes_rasa_data_validate_and_counts_corrections(console: ConsoleServer,
                                                                 tmp_path: Path) -> None:
    label_first_user_message(console, console.ids["xss"], intent="greet")
    label_first_user_message(console, console.ids["live"], intent="ask_sciatica")
    label_first_user_message(console, console.ids["red"], new_topic="bladder questions")
    improve = console.login("clinician").get(console.url + "/improve").text
    assert "nlu_fallback" in improve and "human_handoff" in improve and "bladder questions" in improve
    assert store.most_corrected(console.db)[0][1] == 1

    assert console.login("clinician").get(console.url + "/improve/export.yml").status_code == 403
    exported = console.login("admin").get(console.url + "/improve/export.yml")
    assert exported.headers["content-type"].startswith("application/yaml")
    data = yaml.safe_load(exported.text)
    assert data["version"] == "3.1"
    examples = {item["intent"]: item["examples"] for item in data["nlu"]}
    assert "can I talk to a real person about my MRI results" in examples["ask_sciatica"]
    assert "<script>window.__xss = 1</script>hello" in examples["greet"]

    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "data", project / "data")
    for name in ("domain.yml", "config.yml"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    (project / "data" / "nlu" / "corrections.yml").write_text(exported.text, encoding="utf-8")
    rasa = Path(sys.executable).parent / "rasa"
    result = subprocess.run([str(rasa), "data", "validate"], cwd=project,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
