"""Metadata recorded at start, and secrets that never leave the machine (DESIGN.md 5).

Real git repositories are made in tmp_path: a commit, a remote whose URL carries a
token, a dirty edit. The secrets test plants credentials everywhere a training script
can leak them, runs a real offline W&B run in a fresh interpreter, and then scans every
byte under the run's folder and W&B's folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wandb_helpers import run_script, wandb_log

import steadyrun
from steadyrun.log.metadata import get_metadata
from steadyrun.store.redact import REDACTED, redact_argv, redact_code, redact_text

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
GH_TOKEN = "ghp_" + "Q7rT2" * 8  # a GitHub token shape, planted in the remote URL
REMOTE = f"https://alice:{GH_TOKEN}@github.com/acme/trainer.git"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def make_repo(path: Path, *, dirty: str | None = None, remote: str | None = REMOTE) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("lr = 0.1\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    if remote:
        git(path, "remote", "add", "origin", remote)
    if dirty is not None:
        (path / "train.py").write_text(dirty)
    return path


# ---------------------------------------------------------------------- metadata
def test_metadata_records_git_host_command_and_saves_the_redacted_diff(
        new_run, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", dirty='lr = 0.2\napi_key = "planted-diff-secret"\n')
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "0.2", "--hf_token=hf_" + "x" * 30])
    run = new_run(metadata=True, config={"lr": 0.2})
    run.finish()

    data = steadyrun.open_run(run.id)
    meta = data.metadata
    assert data.config["lr"] == 0.2 and data.config["steadyrun"] == meta
    g = meta["git"]
    assert g["commit"] == git(repo, "rev-parse", "HEAD") and g["short"] == g["commit"][:7]
    assert g["branch"] == "main" and g["dirty"] is True and g["changed_files"] == 1
    assert g["remote"] == f"https://{REDACTED}@github.com/acme/trainer.git"
    assert g["diff_file"] == "files/git_diff.patch"
    assert [f["name"] for f in data.files] == ["git_diff.patch"]
    diff = (data.dir / "files" / "git_diff.patch").read_text()
    assert "+lr = 0.2" in diff and f'api_key = "{REDACTED}"' in diff
    assert "planted-diff-secret" not in diff
    assert meta["command"] == ["train.py", "--lr", "0.2", f"--hf_token={REDACTED}"]
    assert meta["host"] and meta["pid"] == os.getpid() and meta["world_size"] == 1
    versions = meta["versions"]
    assert versions["python"].count(".") == 2 and versions["steadyrun"] == steadyrun.__version__
    if "torch" in sys.modules:
        assert versions["torch"] == sys.modules["torch"].__version__


def test_clean_repo_and_no_repo(new_run, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "clean", remote=None)
    monkeypatch.chdir(repo)
    run = new_run(metadata=True)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.metadata["git"]["dirty"] is False and "remote" not in data.metadata["git"]
    assert data.files == []

    bare = tmp_path / "not-a-repo"
    bare.mkdir()
    monkeypatch.chdir(bare)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    run = new_run(metadata=True)
    run.finish()
    meta = steadyrun.open_run(run.id).metadata
    assert "git" not in meta and meta["host"] and "error" not in meta


def test_slurm_job_and_seeds_are_recorded_even_when_seeded_after_init(
        new_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k, v in {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[01-02]",
                 "SLURM_JOB_PARTITION": "a100"}.items():
        monkeypatch.setenv(k, v)
    run = new_run(metadata=True)
    seeds = steadyrun.set_seeds(99)
    run.finish()
    meta = steadyrun.open_run(run.id).metadata
    assert meta["slurm"] == {"job_id": "4242", "nodelist": "gpu[01-02]", "partition": "a100"}
    assert meta["seeds"] == seeds and seeds["torch"] == 99

    steadyrun.set_seeds(5)  # before init: part of the first record
    run = new_run(metadata=True)
    run.finish()
    assert steadyrun.open_run(run.id).metadata["seeds"]["python"] == 5


def test_metadata_switch_and_git_never_delays_init(new_run, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo", dirty="lr = 0.3\n")
    monkeypatch.chdir(repo)
    assert "steadyrun" not in steadyrun.open_run(new_run().id).config  # env default: off here
    run = new_run(metadata=False)
    run.finish()
    assert steadyrun.open_run(run.id).config == {}

    # A git that answers only once the test lets it: init must return without it (git
    # runs in the metadata thread), and finish must still record what it says.
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    gate, calls = tmp_path / "gate", tmp_path / "git-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(
        f'#!/bin/sh\necho x >> "{calls}"\n'
        f'while [ ! -e "{gate}" ]; do sleep 0.05; done\nexec "{real_git}" "$@"\n')
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run = new_run(metadata=True)  # would never return if init waited for git
    assert run._metadata.thread.is_alive()  # git is still held at the gate
    run.log({"x": 1.0})
    gate.touch()
    run.finish()
    assert calls.exists()  # the held git was the one metadata used
    meta = steadyrun.open_run(run.id).metadata
    assert meta["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert meta["git"]["dirty"] is True


def test_get_metadata_is_public_and_takes_a_folder(tmp_path):
    repo = make_repo(tmp_path / "repo", dirty="lr = 1\n")
    meta = get_metadata(cwd=repo)
    assert meta["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert meta["git"]["dirty"] is True and "diff_file" not in meta["git"]
    assert GH_TOKEN not in str(meta)


# ---------------------------------------------------------------------- redaction rules
def test_redaction_rules():
    assert redact_argv(["x.py", "--token", "abc", "--hf_token=def", "--api-key=ghi",
                        "--lr", "0.1", "--db", "postgres://u:pw@h/db"]) == [
        "x.py", "--token", REDACTED, f"--hf_token={REDACTED}", f"--api-key={REDACTED}",
        "--lr", "0.1", "--db", f"postgres://{REDACTED}@h/db"]
    assert redact_text(f"see {REMOTE}") == f"see https://{REDACTED}@github.com/acme/trainer.git"
    code = ('password = "p4ss-word"\nTOKEN=abcdef123\ntoken = tokenizer(x)\n'
            'max_tokens = 512\nKEY=${KEY}\n"secret": "json-secret",\n')
    assert redact_code(code) == (f'password = "{REDACTED}"\nTOKEN={REDACTED}\n'
                                 'token = tokenizer(x)\nmax_tokens = 512\nKEY=${KEY}\n'
                                 f'"secret": "{REDACTED}",\n')
    # a commit hash is not a secret: reproducibility needs it
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert redact_text(sha) == sha


def test_one_rule_for_free_text_short_flags_and_command_lines_in_a_config(new_run):
    """Table cells and summary strings were stored in clear while alert texts were
    redacted: the rules differed by path. Now one rule serves every free-text value."""
    assert redact_text("mysql -u root -p hunter2pw -P 3306") == \
        f"mysql -u root -p {REDACTED} -P 3306"
    assert redact_text("serve -p 8080 -o out.txt") == "serve -p 8080 -o out.txt"
    assert redact_text("x -k ab12cd34ef56gh78ij90") == f"x -k {REDACTED}"
    assert redact_argv(["sshpass", "-p", "s3cret", "ssh", "-p", "22", "host"]) == \
        ["sshpass", "-p", REDACTED, "ssh", "-p", "22", "host"]
    run = new_run(config={"args": ["train.py", "--token", "tok-123-abc", "--lr", "0.1"],
                          "cmd": "train.py --api_key cfgsecret1"},
                  notes="data at https://u:pw1@host/x")
    run.log_table("t", columns=["cmd", "url"], rows=[
        ["train.py --token=SECRETcell", "https://bob:SECRETurl@example.com/x"]])
    run.summary["cmd"] = "train.py --api_key SECRETsum"
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.config["args"] == ["train.py", "--token", REDACTED, "--lr", "0.1"]
    assert data.config["cmd"] == f"train.py --api_key {REDACTED}"
    assert data.manifest["notes"] == f"data at https://{REDACTED}@host/x"
    assert data.tables[0]["rows"] == [[f"train.py --token={REDACTED}",
                                       f"https://{REDACTED}@example.com/x"]]
    assert data.summary["cmd"] == f"train.py --api_key {REDACTED}"
    raw = b"".join(p.read_bytes() for p in (run.dir / "segments").glob("*.jsonl"))
    for secret in (b"SECRETcell", b"SECRETurl", b"SECRETsum", b"tok-123-abc", b"cfgsecret1"):
        assert secret not in raw


def test_values_of_secret_environment_variables_are_redacted_anywhere(new_run, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-looking-value-77")
    run = new_run(config={"endpoint": "https://x/?k=plain-looking-value-77", "note": "ok"})
    run.summary.update({"api_token": "s3cr3t-summary"})
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.config == {"endpoint": f"https://x/?k={REDACTED}", "note": "ok"}
    assert data.summary["api_token"] == REDACTED


# ---------------------------------------------------------------------- the scan
SECRETS = {
    "env": "a1b2c3d4e5" * 4,  # WANDB_API_KEY
    "config_key": "planted-config-api-key-111",
    "nested": "planted-db-password-222",
    "argv": "hf_" + "PlantedArgvToken333" * 2,
    "argv_space": "planted-space-secret-444",
    "remote": GH_TOKEN,
    "remote_user": "alice-planted-user",
    "diff": "planted-diff-password-555",
    "cell_flag": "PlantedCellFlag666",
    "cell_url": "PlantedCellUrl777",
    "summary_flag": "PlantedSummaryFlag888",
    "notes_short": "PlantedNotesPw999",
    "argv_in_config": "planted-config-argv-000",
    "file_name": "hf_" + "PlantedFileName" * 2,
}


def test_planted_secrets_appear_nowhere_under_the_run_or_wandb_folders(tmp_path):
    base = tmp_path / "job"
    make_repo(base, remote=f"https://{SECRETS['remote_user']}:{SECRETS['remote']}@github.com/a/b",
              dirty=f'lr = 0.1\ndb_password = "{SECRETS["diff"]}"\n')
    done = run_script(base, f"""
        import os, sys
        import torch
        import steadyrun
        config = {{"lr": 0.1, "marker_key_for_scan": 1, "api_key": {SECRETS['config_key']!r},
                   "db": {{"password": {SECRETS['nested']!r}, "host": "db.local"}},
                   "wandb_key_in_text": "key is " + os.environ["WANDB_API_KEY"]}}
        run = steadyrun.init(mode="offline", project="secrets", config=config, metadata=True,
                             notes="rerun with mysql -p {SECRETS['notes_short']} -P 3306")
        steadyrun.set_seeds(3)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(12):
            loss = model(torch.ones(4, 2)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            run.log_training_step(loss, step, batch_size=4, optimizer=opt, model=model)
        run.log_config_artifact()
        run.alert("argv", " ".join(sys.argv))
        run.config.update({{"args": sys.argv}})
        run.log_table("cmds", columns=["cmd", "url"], rows=[
            ["train.py --token={SECRETS['cell_flag']}",
             "https://bob:{SECRETS['cell_url']}@example.com/x"]])
        run.summary["cmd"] = "train.py --api_key {SECRETS['summary_flag']}"
        open("notes.txt", "w").write("notes")
        run.save("notes.txt", name="ckpt-{SECRETS['file_name']}.txt")
        print("RUN=" + run.id)
        run.finish()
    """, args=[f"--hf_token={SECRETS['argv']}", "--password", SECRETS["argv_space"], "--lr",
               "0.1"], env={"WANDB_API_KEY": SECRETS["env"], "STEADYRUN_METADATA": "1",
                            "WANDB_DIR": None})
    log = wandb_log(done.rdir)
    meta = log.config["steadyrun"]  # what W&B received
    assert meta["git"]["remote"] == f"https://{REDACTED}@github.com/a/b"
    assert meta["command"][-5:] == [f"--hf_token={REDACTED}", "--password", REDACTED,
                                    "--lr", "0.1"]
    assert log.config["api_key"] == REDACTED and log.config["db"]["password"] == REDACTED
    assert meta["seeds"]["python"] == 3
    assert log.config["args"][-4:] == ["--password", REDACTED, "--lr", "0.1"]
    assert log.summary["cmd"] == f"train.py --api_key {REDACTED}"
    assert log.run["notes"] == f"rerun with mysql -p {REDACTED} -P 3306"

    scanned = [done.rdir, base / "wandb-home", base / "script.stdout", base / "script.stderr"]
    files = [p for root in scanned for p in ([root] if root.is_file() else root.rglob("*"))
             if p.is_file()]
    assert any((done.rdir / "wandb").rglob("*.wandb")), "W&B wrote nothing: the scan is void"
    assert any(b"marker_key_for_scan" in p.read_bytes() for p in files
               if p.suffix == ".wandb"), "the config never reached W&B's log"
    leaks = [(name, str(p.relative_to(base))) for p in files for name, secret in SECRETS.items()
             if secret.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_untracked_code_is_saved_with_the_run_and_data_files_are_not(new_run, tmp_path,
                                                                     monkeypatch):
    repo = make_repo(tmp_path / "repo")  # clean: only untracked files differ from HEAD
    (repo / "new_train.py").write_text('lr = 0.5\nhf_token = "planted-untracked-secret"\n')
    (repo / "data.bin").write_bytes(b"\0\1\2" * 100)
    (repo / "big.txt").write_text("x" * (300 << 10))
    (repo / ".gitignore").write_text("ignored.py\n")
    (repo / "ignored.py").write_text("print('ignored')\n")
    monkeypatch.chdir(repo)
    run = new_run(metadata=True)
    run.finish()
    data = steadyrun.open_run(run.id)
    git_meta = data.metadata["git"]
    assert git_meta["dirty"] is False and git_meta["untracked_files"] == 4
    diff = (data.dir / git_meta["diff_file"]).read_text()
    assert "new file mode 100644\n--- /dev/null\n+++ b/new_train.py\n@@ -0,0 +1,2 @@\n" in diff
    assert "+lr = 0.5\n" in diff and f'+hf_token = "{REDACTED}"' in diff
    assert "planted-untracked-secret" not in diff
    assert "b/.gitignore" in diff
    for left_out in ("data.bin", "big.txt", "ignored.py"):
        assert f"b/{left_out}" not in diff


def test_untracked_patch_skips_run_logs_credential_files_and_works_from_a_subfolder(
        new_run, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    (repo / "exp").mkdir()
    (repo / "exp" / "train.py").write_text("print('train')\n")
    (repo / "exp" / "empty.py").write_text("")
    (repo / ".env").write_text("WANDB_API_KEY=planted-env-secret\n")
    (repo / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n")
    (repo / "notes.netrc.txt").write_text("machine h login u password planted-netrc\n")
    (repo / "key.txt").write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nplanted-pem\n-----END RSA PRIVATE KEY-----\n")
    monkeypatch.chdir(repo / "exp")  # git paths are relative to the repository's root
    monkeypatch.setenv("STEADYRUN_DIR", str(repo / "steadyrun"))  # run logs inside the repo
    first = new_run(metadata=True)
    first.log({"x": 1.0})
    first.finish()
    run = new_run(metadata=True)
    run.finish()
    data = steadyrun.open_run(run.id)
    diff = (data.dir / data.metadata["git"]["diff_file"]).read_text()
    assert "+++ b/exp/train.py\n@@ -0,0 +1,1 @@\n+print('train')\n" in diff
    assert "+++ b/exp/empty.py\ndiff" in diff or diff.endswith("+++ b/exp/empty.py\n")
    assert "b/steadyrun/runs/" not in diff  # the first run's logs are not code
    for planted in ("planted-env-secret", "planted-netrc", "planted-pem", "b/.env",
                    "b/id_ed25519"):
        assert planted not in diff, planted
