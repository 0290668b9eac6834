"""hack/ensure-packages.sh with a stub apt-get: nothing runs when every command is there, one
`apt-get update` and one `apt-get install` otherwise, a clear error when not root or without
apt-get. The stub installs a package by creating a command of the same name in a stub bin
directory; the commands asked for are made-up names, so the system's own are never in the way.
Needs no test environment and installs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "ensure-packages.sh"
BASH = shutil.which("bash") or "/bin/bash"

APT_STUB = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = install ]; then
    for arg in "$@"; do
        case "$arg" in -*|install) ;; *) printf '#!/bin/sh\\n' > "{bin}/$arg"; {chmod} +x "{bin}/$arg" ;; esac
    done
fi
"""


@pytest.fixture
def env(tmp_path):
    """A PATH with the stub apt-get, awk, id and dirname only, and the log of apt-get's calls."""
    stub_bin, tools = tmp_path / "bin", tmp_path / "tools"
    stub_bin.mkdir()
    tools.mkdir()
    for tool in ("awk", "id", "dirname"):
        (tools / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "apt.log"

    def make(apt: bool = True, uid: str = "0", spec: str = "zz-ep-a:zz-ep-a zz-ep-b:zz-ep-b") -> dict:
        if apt:
            (stub_bin / "apt-get").write_text(APT_STUB.format(log=log, bin=stub_bin, chmod=shutil.which("chmod")))
            (stub_bin / "apt-get").chmod(0o755)
        return {"PATH": f"{stub_bin}:{tools}", "ENSURE_PACKAGES_SPEC": spec, "ENSURE_PACKAGES_UID": uid,
                "HOME": str(tmp_path)}

    make.log = log
    make.bin = stub_bin
    return make


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def apt_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_installs_whatever_is_missing_with_one_update(env):
    e = env()
    (env.bin / "zz-ep-a").write_text("#!/bin/sh\n")
    (env.bin / "zz-ep-a").chmod(0o755)
    p = run(e)
    assert p.returncode == 0, p.stderr
    assert apt_calls(env.log) == ["update -qq", "install -y -qq --no-install-recommends zz-ep-b"]
    assert "installed zz-ep-b" in p.stderr


def test_nothing_runs_when_everything_is_there(env):
    e = env()
    assert run(e).returncode == 0
    first = apt_calls(env.log)
    assert first == ["update -qq", "install -y -qq --no-install-recommends zz-ep-a zz-ep-b"]
    p = run(e)  # idempotent: the second run finds both and calls nothing
    assert p.returncode == 0 and p.stderr == ""
    assert apt_calls(env.log) == first


def test_one_package_for_several_commands_is_installed_once(env):
    e = env(spec="zz-ep-x:zz-ep-pkg zz-ep-pkg:zz-ep-pkg")
    p = run(e, "zz-ep-pkg", "zz-ep-x")
    assert p.returncode == 1  # the stub makes zz-ep-pkg, not zz-ep-x: named as still missing
    assert apt_calls(env.log) == ["update -qq", "install -y -qq --no-install-recommends zz-ep-pkg"]
    assert "still missing after apt-get install: zz-ep-x" in p.stderr


def test_only_the_commands_asked_for(env):
    e = env()
    assert run(e, "zz-ep-b").returncode == 0
    assert apt_calls(env.log)[-1] == "install -y -qq --no-install-recommends zz-ep-b"
    p = run(e, "nosuch")
    assert p.returncode == 1 and "unknown command 'nosuch'" in p.stderr


def test_not_root_fails_naming_the_command(env):
    p = run(env(uid="1000"))
    assert p.returncode == 1
    assert "needs root" in p.stderr
    assert "apt-get install -y --no-install-recommends zz-ep-a zz-ep-b" in p.stderr
    assert apt_calls(env.log) == []


def test_not_root_is_fine_when_nothing_is_missing(env):
    e = env(uid="1000", spec="awk:gawk")
    p = run(e)
    assert p.returncode == 0 and p.stderr == ""
    assert apt_calls(env.log) == []


def test_without_apt_get_fails_naming_the_packages(env):
    p = run(env(apt=False))
    assert p.returncode == 1
    assert "no apt-get" in p.stderr and "zz-ep-a zz-ep-b" in p.stderr


def test_the_default_list_names_what_the_tests_use():
    text = SCRIPT.read_text()
    for pair in ("openssl:openssl", "curl:curl", "lua5.1:lua5.1", "python3:python3"):
        assert pair in text
    assert os.access(SCRIPT, os.X_OK)
