"""The first-run (bootstrap) and cache branches of the hack/ scripts, as on a fresh machine: an
empty XDG_CACHE_HOME, APIGW_TESTENV_CACHE and HOME, no musl target directory, and stub cargo,
rustup, go, apt-get, dpkg-query, musl-gcc (and file, id, python) that record their arguments and
create the files a real run would. Covers hack/build-image.sh (no, one and several older
musl-target-* directories, a warm second run, a failing cargo, musl-tools missing),
hack/build-testenv.sh (first run, second run, --node, no Go, a failing go build),
hack/ensure-promtool.sh, hack/emulator/setup-venv.sh and the node scripts' node_prepare
(hack/node-up.sh: packages, the pause program, the pause image).

Every script runs from a copy of the repository under tmp_path (hack/, Cargo.toml, Cargo.lock,
Dockerfile), so nothing is written to the real target/ or ~/.cache. PATH is the stub directory,
then the system's commands linked into one directory without the real cargo, rustup, go,
musl-gcc, apt-get, dpkg-query and ctr: a toolchain installed on this machine (or musl-tools,
which `make image` installs) can neither run nor hide a first-run branch. hack/oci-image.py runs
for real. Needs no test environment and installs nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# What the stubs stand for: never taken from the machine.
LEFT_OUT = {"cargo", "rustup", "rustc", "go", "gofmt", "musl-gcc", "apt-get", "dpkg-query", "ctr"}
REAL_PYTHON = shutil.which("python3", path=os.pathsep.join(SYSTEM_DIRS)) or sys.executable
TARGET = "x86_64-unknown-linux-musl"
VERSIONS = dict(
    line.split("=", 1) for line in (REPO / "hack" / "versions.env").read_text().splitlines()
    if "=" in line and not line.startswith("#"))
VERSION = re.search(r'^version = "(.*)"$', (REPO / "Cargo.toml").read_text(), re.M).group(1)
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-controller-manager")

# --- the stubs' bodies (after a header that appends "$*" to STUB_STATE/<name>.log) -------------

CARGO = r"""
if [ "$1" = build ]; then
    out="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release"
    mkdir -p "$out"; printf '\177ELF stub apigw-operator\n' >"$out/apigw-operator"; chmod +x "$out/apigw-operator"
fi
"""
CARGO_FAILS = "echo 'error: could not compile `apigw-operator` (bin \"apigw-operator\")' >&2; exit 101\n"
RUSTUP = r"""
case "$1 $2" in
"target list") cat "$STUB_STATE/rustup-targets" 2>/dev/null || true ;;
"target add") echo "$3" >>"$STUB_STATE/rustup-targets" ;;
esac
"""
FILE = 'echo "ELF 64-bit LSB pie executable, x86-64, static-pie linked, stripped"\n'
APT_GET = r"""
if [ "$1" = install ]; then
    for a in "$@"; do case "$a" in install | -*) ;; *) echo "$a" >>"$STUB_STATE/dpkg-installed" ;; esac; done
fi
"""
# What apt-get installed counts as installed; nothing else is.
DPKG_QUERY = r"""
pkg="${@: -1}"
if grep -qx -- "$pkg" "$STUB_STATE/dpkg-installed" 2>/dev/null; then printf 'install ok installed'
else echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; fi
"""
MUSL_GCC = r"""
out=; while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done
printf '\177ELF stub pause\n' >"$out"; chmod +x "$out"
"""
# go for hack/build-testenv.sh: `mod download -json` writes the module's go.mod into a module
# cache and names it, `list -m` answers, `build -o` makes an executable per package; `mod edit`,
# `get` and `mod tidy` are only recorded.
GO = r"""
case "$1" in
mod)
    if [ "$2" = download ]; then
        mod="${@: -1}"; gomod="$STUB_STATE/gomodcache/${mod%@*}/@v/${mod#*@}.mod"
        mkdir -p "${gomod%/*}"
        case "$mod" in
        k8s.io/kubernetes@*) printf 'module k8s.io/kubernetes\n\ngo 1.25.0\n\ngodebug default=go1.25\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/client-go => ./staging/src/k8s.io/client-go\n)\n\nreplace k8s.io/kms => ./staging/src/k8s.io/kms\n' >"$gomod" ;;
        go.etcd.io/etcd/server/v3@*) printf 'module go.etcd.io/etcd/server/v3\n\ngo 1.24\n\nreplace (\n\tgo.etcd.io/etcd/api/v3 => ../api\n\tgo.etcd.io/etcd/client/pkg/v3 => ../client/pkg\n)\n' >"$gomod" ;;
        *) echo "go: $mod: unknown to the stub" >&2; exit 1 ;;
        esac
        printf '{\n\t"Path": "%s",\n\t"Version": "%s",\n\t"GoMod": "%s",\n\t"Sum": "h1:stub="\n}\n' "${mod%@*}" "${mod#*@}" "$gomod"
    fi ;;
list)
    case "$3" in
    -json) printf '{\n\t"Path": "k8s.io/kubernetes",\n\t"Version": "v1.35.4",\n\t"Time": "2026-04-15T12:34:56Z"\n}\n' ;;
    -f) echo v0.35.0 ;;
    esac ;;
env) echo https://proxy.golang.org,direct ;;
build)
    shift; out=; pkgs=(); made=
    while [ $# -gt 0 ]; do
        case "$1" in -o | -ldflags | -tags) [ "$1" = -o ] && out="$2"; shift 2 ;; -*) shift ;; *) pkgs+=("$1"); shift ;; esac
    done
    case "$out" in */) for p in "${pkgs[@]}"; do made="$made $out${p##*/}"; done ;; *) made="$out" ;; esac
    for f in $made; do mkdir -p "${f%/*}"; printf '#!/bin/sh\necho stub\n' >"$f"; chmod +x "$f"; done ;;
esac
"""
GO_BUILD_FAILS = 'case "$1" in build) echo "compile: stub failure" >&2; exit 1 ;; esac\n'
# go for hack/ensure-promtool.sh: `go install` puts a promtool that answers --version into GOBIN.
GO_INSTALL = r"""
case "$1" in
install) mkdir -p "$GOBIN"; printf '#!/bin/sh\necho "promtool, version 3.16.0 (branch: stub)"\n' >"$GOBIN/promtool"; chmod +x "$GOBIN/promtool" ;;
env) echo https://proxy.golang.org,direct ;;
esac
"""
GO_INSTALL_FAILS = 'case "$1" in install) echo "go: github.com/prometheus/prometheus: connection refused" >&2; exit 1 ;; esac\n'
# The python in a new venv: pip installs nothing, the import check passes.
VENV_PYTHON = "exit 0\n"
PIP_FAILS = 'case "$2" in pip) echo "ERROR: No matching distribution found for moto" >&2; exit 1 ;; esac\n'
# node_prepare, as hack/testenv-up.sh runs it.
NODE_HARNESS = r"""
set -euo pipefail
. "$1/hack/errtrap.sh"
. "$1/hack/lib.sh"
testenv_load_versions
HACK_DIR="$1/hack" BIN_DIR="$(testenv_bin_dir)" STATE="$2"
. "$HACK_DIR/node-up.sh"
node_prepare
echo "$NODE_PAUSE_BIN"
"""


@pytest.fixture(scope="session")
def system_bin(tmp_path_factory) -> Path:
    """The system's commands (the first of a name in SYSTEM_DIRS) linked into one directory,
    without LEFT_OUT."""
    d = tmp_path_factory.mktemp("system-bin")
    for sys_dir in SYSTEM_DIRS:
        if os.path.isdir(sys_dir):
            for name in os.listdir(sys_dir):
                if name not in LEFT_OUT and not (d / name).is_symlink():
                    (d / name).symlink_to(os.path.join(sys_dir, name))
    return d


class Box:
    """A fresh machine under tmp_path: the repository copy, empty caches and HOME, the stubs."""

    def __init__(self, root: Path, system_bin: Path) -> None:
        self.root, self.system_bin = root, system_bin
        self.repo, self.bin, self.state = root / "repo", root / "bin", root / "stub-state"
        self.home, self.xdg, self.testenv_cache = root / "home", root / "xdg-cache", root / "testenv-cache"
        for d in (self.bin, self.state, self.home, self.xdg, self.testenv_cache):
            d.mkdir()
        shutil.copytree(REPO / "hack", self.repo / "hack", ignore=shutil.ignore_patterns("__pycache__"))
        for f in ("Cargo.toml", "Cargo.lock", "Dockerfile"):
            shutil.copy(REPO / f, self.repo / f)

    def stub(self, name: str, body: str, record: str = "", where: Path | None = None) -> Path:
        """Writes the stub `name` (into the stub bin directory unless `where`): it appends its
        arguments, then `record` (shell words, e.g. ` X=$X`), as one line to STUB_STATE/name.log,
        then runs `body` with STUB_STATE set."""
        path = (where or self.bin) / name
        path.write_text(f"#!{BASH}\nSTUB_STATE='{self.state}'\n"
                        f"printf '%s\\n' \"$*{record}\" >>\"$STUB_STATE/{name}.log\"\n{body}")
        path.chmod(0o755)
        return path

    def calls(self, name: str) -> list[str]:
        log = self.state / f"{name}.log"
        return log.read_text().splitlines() if log.exists() else []

    def run(self, script: Path | str, *args: str, **env: str) -> subprocess.CompletedProcess:
        full_env = {"PATH": f"{self.bin}:{self.system_bin}", "HOME": str(self.home), "XDG_CACHE_HOME": str(self.xdg),
                    "APIGW_TESTENV_CACHE": str(self.testenv_cache), "IMAGE_IMPORT": "0", **env}
        return subprocess.run([BASH, str(self.repo / script), *args], env=full_env, cwd=self.root,
                              capture_output=True, text=True, timeout=60)


@pytest.fixture
def box(tmp_path, system_bin) -> Box:
    b = Box(tmp_path, system_bin)
    for tool in LEFT_OUT:
        assert shutil.which(tool, path=f"{b.bin}:{system_bin}") is None, tool
    return b


def describe(box: Box, image: Path) -> dict:
    out = subprocess.run([sys.executable, str(box.repo / "hack/oci-image.py"), "describe", str(image)],
                         capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


# --- hack/build-image.sh ---------------------------------------------------------------------

def image_stubs(box: Box, cargo: str = CARGO, musl_gcc: bool = True) -> None:
    box.stub("cargo", cargo, record=" CARGO_TARGET_DIR=$CARGO_TARGET_DIR")
    box.stub("rustup", RUSTUP)
    box.stub("file", FILE)
    box.stub("apt-get", APT_GET)
    if musl_gcc:
        box.stub("musl-gcc", "")


def musl_cache(box: Box) -> Path:
    return box.xdg / "apigw-operator"


def new_target_dir(box: Box) -> Path:
    lock_hash = hashlib.sha256((box.repo / "Cargo.lock").read_bytes()).hexdigest()[:12]
    return musl_cache(box) / f"musl-target-{lock_hash}"


def cargo_call(target_dir: Path) -> str:
    return f"build --release --locked --target {TARGET} --bin apigw-operator CARGO_TARGET_DIR={target_dir}"


def old_target_dir(box: Box, name: str, mtime: int) -> Path:
    d = musl_cache(box) / f"musl-target-{name}"
    (d / TARGET / "release").mkdir(parents=True)
    (d / TARGET / "release" / "marker").write_text(name)
    os.utime(d, (mtime, mtime))
    return d


def test_build_image_first_run_without_any_musl_target_dir_builds_and_writes_the_image(box):
    # HEAD~1's script exited 2 here without a word (`ls -dt` of no match under pipefail).
    image_stubs(box)
    p = box.run("hack/build-image.sh")
    assert p.returncode == 0, p.stderr
    target_dir = new_target_dir(box)
    assert sorted(musl_cache(box).iterdir()) == [target_dir]
    assert box.calls("cargo") == [cargo_call(target_dir)]
    assert box.calls("rustup") == ["target list --installed", f"target add {TARGET}"]
    assert box.calls("apt-get") == []
    assert "seeding" not in p.stderr and "pruning" not in p.stderr and "ERROR" not in p.stderr
    out = f"target/image/apigw-operator-{VERSION}.oci.tar"
    assert p.stdout == out + "\n"
    image = describe(box, box.repo / out)
    assert image["name"] == f"ghcr.io/apigw-operator/apigw-operator:{VERSION}"
    binary = next(f for f in image["files"] if f["path"] == "/apigw-operator")
    assert binary["size"] == len(b"\177ELF stub apigw-operator\n") and binary["mode"] == 0o755
    assert image["config"]["config"]["Entrypoint"] == ["/apigw-operator"]


def test_build_image_seeds_the_new_target_dir_from_the_one_older_dir(box):
    image_stubs(box)
    old = old_target_dir(box, "0123456789ab", 1_000_000)
    p = box.run("hack/build-image.sh")
    assert p.returncode == 0, p.stderr
    target_dir = new_target_dir(box)
    assert f"seeding {target_dir} from {old}" in p.stderr
    assert (target_dir / TARGET / "release" / "marker").read_text() == "0123456789ab"
    assert sorted(musl_cache(box).iterdir()) == sorted([old, target_dir])  # two kept: nothing pruned
    assert "pruning" not in p.stderr
    assert box.calls("cargo") == [cargo_call(target_dir)]


def test_build_image_keeps_only_the_new_and_the_newest_older_target_dir(box):
    image_stubs(box)
    oldest = old_target_dir(box, "aaaaaaaaaaaa", 1_000_000)
    middle = old_target_dir(box, "bbbbbbbbbbbb", 2_000_000)
    newest = old_target_dir(box, "cccccccccccc", 3_000_000)
    p = box.run("hack/build-image.sh")
    assert p.returncode == 0, p.stderr
    target_dir = new_target_dir(box)
    assert sorted(musl_cache(box).iterdir()) == sorted([newest, target_dir])
    assert (target_dir / TARGET / "release" / "marker").read_text() == "cccccccccccc"
    assert f"pruning {oldest}" in p.stderr and f"pruning {middle}" in p.stderr


def test_build_image_second_run_reuses_its_target_dir(box):
    image_stubs(box)
    assert box.run("hack/build-image.sh").returncode == 0
    (new_target_dir(box) / "incremental-state").write_text("kept")
    p = box.run("hack/build-image.sh")
    assert p.returncode == 0, p.stderr
    assert "seeding" not in p.stderr and "pruning" not in p.stderr
    assert (new_target_dir(box) / "incremental-state").read_text() == "kept"
    assert box.calls("cargo") == [cargo_call(new_target_dir(box))] * 2  # cargo runs (incrementally) again
    assert box.calls("rustup") == ["target list --installed", f"target add {TARGET}", "target list --installed"]


def test_build_image_failing_cargo_names_the_line_and_the_command(box):
    image_stubs(box, cargo=CARGO_FAILS)
    p = box.run("hack/build-image.sh")
    assert p.returncode != 0
    script = box.repo / "hack" / "build-image.sh"
    line = next(i for i, text in enumerate(script.read_text().splitlines(), 1)
                if text.startswith('CARGO_TARGET_DIR="$target_dir" cargo build'))
    assert f"build-image.sh: ERROR: {script}:{line}: `" in p.stderr
    assert re.search(r"`[^`]*cargo build --release --locked --target [^`]*` exited 101", p.stderr), p.stderr
    assert "error: could not compile `apigw-operator`" in p.stderr
    assert p.stdout == "" and not (box.repo / "target" / "image").exists()


def test_build_image_installs_musl_tools_when_musl_gcc_is_missing(box):
    image_stubs(box, musl_gcc=False)
    box.stub("dpkg-query", DPKG_QUERY)
    box.stub("id", "echo 0\n")
    p = box.run("hack/build-image.sh")
    assert p.returncode == 0, p.stderr
    assert "installing musl-tools" in p.stderr
    assert box.calls("apt-get") == ["install -y -qq musl-tools"]
    assert box.calls("cargo") == [cargo_call(new_target_dir(box))]


# --- hack/build-testenv.sh -------------------------------------------------------------------

def bin_dir_of(box: Box) -> Path:
    return box.testenv_cache / f"{VERSIONS['KUBE_VERSION']}-{VERSIONS['ETCD_VERSION']}-{VERSIONS['HELM_VERSION']}" / "bin"


def test_build_testenv_first_run_builds_the_four_binaries_into_an_empty_cache(box):
    box.stub("go", GO)
    p = box.run("hack/build-testenv.sh")
    assert p.returncode == 0, p.stderr
    bin_dir = bin_dir_of(box)
    assert p.stdout == f"{bin_dir}\n"
    assert sorted(f.name for f in bin_dir.iterdir()) == ["etcd", "helm", "kube-apiserver", "kubectl"]
    assert all(os.access(f, os.X_OK) for f in bin_dir.iterdir())
    kube, etcd, helm = VERSIONS["KUBE_VERSION"], VERSIONS["ETCD_VERSION"], VERSIONS["HELM_VERSION"]
    calls = box.calls("go")
    for expected in (
            f"mod download -json go.etcd.io/etcd/server/v3@{etcd}",
            f"mod edit -replace go.etcd.io/etcd/api/v3=go.etcd.io/etcd/api/v3@{etcd}",
            f"mod edit -replace go.etcd.io/etcd/client/pkg/v3=go.etcd.io/etcd/client/pkg/v3@{etcd}",
            f"get go.etcd.io/etcd/server/v3@{etcd} go.etcd.io/etcd/api/v3@{etcd} go.etcd.io/etcd/client/pkg/v3@{etcd}",
            "mod tidy",
            f"get -tool helm.sh/helm/v3/cmd/helm@{helm}",
            "list -m -f {{.Version}} k8s.io/client-go",
            f"mod download -json k8s.io/kubernetes@{kube}",
            "mod edit -replace k8s.io/api=k8s.io/api@v0.35.4",
            "mod edit -replace k8s.io/client-go=k8s.io/client-go@v0.35.4",
            "mod edit -replace k8s.io/kms=k8s.io/kms@v0.35.4",
            f"get -tool k8s.io/kubernetes/cmd/kube-apiserver@{kube} k8s.io/kubernetes/cmd/kubectl@{kube}",
            f"list -m -json k8s.io/kubernetes@{kube}"):
        assert expected in calls, (expected, calls)
    builds = [c for c in calls if c.startswith("build ")]
    assert len(builds) == 3
    assert builds[0].endswith("-o out/etcd .")
    assert builds[1].endswith("-o out/helm helm.sh/helm/v3/cmd/helm") and "rules.k8sVersionMinor=35" in builds[1]
    assert builds[2].endswith("-o out/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl")
    assert "k8s.io/component-base/version.buildDate=2026-04-15T12:34:56Z" in builds[2]
    src = bin_dir.parent / "src"
    assert (src / "kube" / "go.mod").read_text().splitlines()[2:] == ["go 1.25", "godebug default=go1.25"]
    assert "go 1.24" in (src / "etcd" / "go.mod").read_text()


def test_build_testenv_second_run_calls_no_go(box):
    box.stub("go", GO)
    assert box.run("hack/build-testenv.sh").returncode == 0
    first = box.calls("go")
    p = box.run("hack/build-testenv.sh")
    assert p.returncode == 0, p.stderr
    assert "already built" in p.stderr and p.stdout == f"{bin_dir_of(box)}\n"
    assert box.calls("go") == first


def test_build_testenv_node_adds_the_node_binaries(box):
    box.stub("go", GO)
    assert box.run("hack/build-testenv.sh").returncode == 0
    before = len(box.calls("go"))
    p = box.run("hack/build-testenv.sh", "--node")
    assert p.returncode == 0, p.stderr
    bin_dir = bin_dir_of(box)
    assert sorted(f.name for f in bin_dir.iterdir()) == sorted(
        ["etcd", "helm", "kube-apiserver", "kubectl", *NODE_BINARIES])
    new = box.calls("go")[before:]
    assert not any("etcd" in c or "helm" in c for c in new), new  # only what is missing is built
    builds = [c for c in new if c.startswith("build ")]
    assert len(builds) == 1 and builds[0].endswith(
        "-o out/ " + " ".join(f"k8s.io/kubernetes/cmd/{b}" for b in NODE_BINARIES))
    assert (bin_dir.parent / "src" / "kube-node" / "go.mod").is_file()


def test_build_testenv_without_go_fails_naming_go(box):
    p = box.run("hack/build-testenv.sh")
    assert p.returncode == 1
    assert "Go is not installed or not on PATH" in p.stderr
    assert "etcd kube-apiserver kubectl helm" in p.stderr
    assert list(box.testenv_cache.iterdir()) == []


def test_build_testenv_failing_go_build_names_the_command(box):
    box.stub("go", GO_BUILD_FAILS + GO)
    p = box.run("hack/build-testenv.sh")
    assert p.returncode != 0
    assert re.search(r"command failed \(in [^)]*/src/etcd\): go build -trimpath .* -o out/etcd \.", p.stderr), p.stderr
    assert "compile: stub failure" in p.stderr
    assert not (bin_dir_of(box) / "etcd").exists() and p.stdout == ""


# --- hack/ensure-promtool.sh -----------------------------------------------------------------

def test_ensure_promtool_first_run_builds_then_reuses(box):
    box.stub("go", GO_INSTALL, record=" GOBIN=$GOBIN")
    p = box.run("hack/ensure-promtool.sh")
    assert p.returncode == 0, p.stderr
    dir_ = box.repo / "target" / "tools" / "promtool-v0.316.0"
    assert p.stdout == f"{dir_ / 'promtool'}\n"
    (call,) = box.calls("go")
    assert call.startswith("install -tags remove_all_sd -ldflags -s -w -X github.com/prometheus/common/version.Version=3.16.0 ")
    assert call.endswith(f" github.com/prometheus/prometheus/cmd/promtool@v0.316.0 GOBIN={dir_ / 'tmp'}")
    assert not (dir_ / "tmp").exists()
    assert "promtool, version 3.16.0" in p.stderr
    p = box.run("hack/ensure-promtool.sh")
    assert p.returncode == 0 and p.stdout == f"{dir_ / 'promtool'}\n" and p.stderr == ""
    assert len(box.calls("go")) == 1


def test_ensure_promtool_failing_go_install_leaves_no_tmp_dir(box):
    box.stub("go", GO_INSTALL_FAILS + GO_INSTALL)
    p = box.run("hack/ensure-promtool.sh")
    assert p.returncode == 1 and p.stdout == ""
    assert "ERROR: go install of promtool@v0.316.0 failed" in p.stderr
    assert "proxy.golang.org" in p.stderr and "connection refused" in p.stderr
    dir_ = box.repo / "target" / "tools" / "promtool-v0.316.0"
    assert not (dir_ / "tmp").exists() and not (dir_ / "promtool").exists()


# --- hack/emulator/setup-venv.sh -------------------------------------------------------------

def python_stubs(box: Box, venv_python: str = VENV_PYTHON) -> Path:
    """PYTHON for setup-venv.sh: `-c` runs in the real python3 (the version and venv checks are
    real); `-m venv DIR` makes DIR/bin/python the stub venv-python."""
    templates = box.root / "templates"
    templates.mkdir()
    template = box.stub("venv-python", venv_python, where=templates)
    return box.stub("python", f"""
case "$1" in
-m) [ "$2" = venv ] && mkdir -p "$3/bin" && cp "{template}" "$3/bin/python" ;;
*) exec "{REAL_PYTHON}" "$@" ;;
esac
""")


def test_setup_venv_first_run_creates_the_venv_then_reuses_it(box):
    python = python_stubs(box)
    p = box.run("hack/emulator/setup-venv.sh", PYTHON=str(python))
    assert p.returncode == 0, p.stderr
    cache = box.xdg / "apigw-operator"
    (venv,) = [d for d in cache.iterdir() if d.is_dir()]
    assert re.fullmatch(rf"venv-moto-{re.escape(VERSIONS['MOTO_VERSION'])}-[0-9a-f]{{12}}", venv.name)
    assert p.stdout == f"{venv}/bin/python\n"
    assert (venv / ".complete").is_file()
    req = venv / "requirements.effective.txt"
    assert box.calls("venv-python") == [
        f"-m pip install --disable-pip-version-check --no-input -q -r {req}",
        "-c import moto, moto.server, flask, werkzeug, boto3, requests, pytest"]
    assert f"moto[server]=={VERSIONS['MOTO_VERSION']}" in req.read_text().splitlines()
    assert box.calls("python").count(f"-m venv {venv}") == 1
    p = box.run("hack/emulator/setup-venv.sh", PYTHON=str(python))
    assert p.returncode == 0 and p.stdout == f"{venv}/bin/python\n", p.stderr
    assert len(box.calls("venv-python")) == 2  # pip not called again
    assert box.calls("python").count(f"-m venv {venv}") == 1


def test_setup_venv_failing_pip_removes_the_half_made_venv(box):
    python = python_stubs(box, venv_python=PIP_FAILS)
    p = box.run("hack/emulator/setup-venv.sh", PYTHON=str(python))
    assert p.returncode == 1 and p.stdout == ""
    assert "setup-venv: ERROR: pip install of" in p.stderr and "No matching distribution" in p.stderr
    assert [d for d in (box.xdg / "apigw-operator").iterdir() if d.is_dir()] == []


# --- the node scripts: node_prepare (hack/node-up.sh) ----------------------------------------

def test_node_prepare_installs_the_packages_builds_pause_once_and_writes_its_image(box):
    for name, body in (("apt-get", APT_GET), ("dpkg-query", DPKG_QUERY), ("musl-gcc", MUSL_GCC), ("id", "echo 0\n")):
        box.stub(name, body)
    (box.repo / "hack" / "node" / "host-state.py").write_text(
        f"import sys\nwith open({str(box.state / 'host-state.log')!r}, 'a') as f:\n"
        "    f.write(' '.join(sys.argv[1:]) + '\\n')\n")
    bin_dir = bin_dir_of(box)
    bin_dir.mkdir(parents=True)
    for b in NODE_BINARIES:
        (bin_dir / b).write_text("#!/bin/sh\n")
        (bin_dir / b).chmod(0o755)
    harness, state = box.root / "node-harness.sh", box.root / "state"
    harness.write_text(NODE_HARNESS)
    state.mkdir()

    p = box.run(harness, str(box.repo), str(state))
    assert p.returncode == 0, p.stderr
    pause_hash = hashlib.sha256((box.repo / "hack" / "node" / "pause.c").read_bytes()).hexdigest()[:12]
    pause = bin_dir.parent / "node" / f"pause-{pause_hash}"
    assert p.stdout == f"{pause}\n"
    assert box.calls("apt-get") == ["install -y -qq containerd runc containernetworking-plugins musl-tools iptables"]
    assert box.calls("musl-gcc") == [f"-static -Os -s -o {pause}.tmp {box.repo}/hack/node/pause.c"]
    assert os.access(pause, os.X_OK) and not Path(f"{pause}.tmp").exists()
    assert box.calls("host-state") == [f"snapshot {state}"]
    image = describe(box, state / "pause.oci.tar")
    assert image["name"] == "localhost/apigw-testenv/pause:1"
    assert [f["path"] for f in image["files"]] == ["/pause"]

    (state / "pause.oci.tar").unlink()
    p = box.run(harness, str(box.repo), str(state))
    assert p.returncode == 0, p.stderr
    assert len(box.calls("musl-gcc")) == 1 and len(box.calls("apt-get")) == 1  # built and installed once
    assert (state / "pause.oci.tar").is_file()


# Files that are only ever sourced (by a script that has already sourced hack/errtrap.sh).
SOURCED_ONLY = {"hack/lib.sh", "hack/errtrap.sh", "hack/node-up.sh", "hack/node-down.sh"}


def test_every_script_reports_the_failing_line_and_command():
    """No silent exits: every script that runs on its own sources hack/errtrap.sh, and the trap
    names the file, the line, the command and its status."""
    scripts = sorted(p.relative_to(REPO).as_posix() for p in [*REPO.glob("hack/**/*.sh"), REPO / "fuzz" / "run.sh",
                                                              REPO / ".ci" / "run"])
    missing = [s for s in scripts if s not in SOURCED_ONLY and "errtrap.sh" not in (REPO / s).read_text()]
    assert not missing, f"scripts without the ERR trap: {missing}"
    probe = subprocess.run(["bash", "-c", f'. "{REPO}/hack/errtrap.sh"; f() {{ false; }}; f; echo unreachable'],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 1 and "unreachable" not in probe.stdout
    assert re.search(r"ERROR: .*:1: `false` exited 1", probe.stderr), probe.stderr
