"""The Dockerfile and its build context. No Docker engine runs here, so the image is not built:
these tests check the Dockerfile's conventions and that the build context holds what
`cargo build` reads, and that every deployment manifest runs the image of Cargo.toml's version."""

from __future__ import annotations

import re
import subprocess
import tomllib

from shiplib import CHART, DEPLOY, REPO, docs, find, helm_template

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_a_static_build_on_distroless_nonroot():
    ins = instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) == 2, froms
    assert re.fullmatch(r"(docker\.io/library/)?rust:1(-\S+)? AS build", froms[0]), froms[0]
    assert froms[1] == "gcr.io/distroless/static-debian12:nonroot"
    final = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][1]:]
    assert ("USER", "nonroot:nonroot") in final or ("USER", "nonroot") in final
    assert ("ENTRYPOINT", '["/apigw-operator"]') in final
    assert ("CMD", '["run"]') in final
    assert ("COPY", "--from=build /apigw-operator /apigw-operator") in final
    build = " ".join(rest for w, rest in ins if w in ("RUN", "ARG"))
    assert "x86_64-unknown-linux-musl" in build and "musl-tools" in build
    assert re.search(r"cargo build --release --locked --target \S+ --bin apigw-operator", build), build


def test_chart_runs_the_images_nonroot_uid():
    """distroless's nonroot is 65532: runAsNonRoot can only be verified with a numeric user."""
    pod = find(docs(helm_template().stdout), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsGroup"] == 65532


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""
    def regex(pattern: str) -> re.Pattern:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        rx = regex(pattern.strip("/"))
        if any(rx.fullmatch(p) for p in prefixes):
            result = not negate
    return result


def test_build_context_holds_the_crate_and_nothing_else():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    manifest = tomllib.loads((REPO / "Cargo.toml").read_text())
    needed = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"]
    for section in ("lib", "bin", "test", "bench", "example"):
        entries = manifest.get(section, [])
        for entry in entries if isinstance(entries, list) else [entries]:
            if "path" in entry and section in ("lib", "bin", "bench"):
                needed.append(entry["path"])
    if (REPO / "build.rs").exists():
        needed.append("build.rs")
    tracked = subprocess.run(["git", "ls-files", "src"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for path in needed + tracked:
        assert not excluded(path, patterns), f"{path} is needed by `cargo build` but .dockerignore leaves it out"
    for path in ["target/debug/apigw-operator", ".git/HEAD", "charts/apigw-operator/Chart.yaml", "deploy/kustomization.yaml",
                 "tests/e2e/conftest.py", "hack/testenv-up.sh"]:
        assert excluded(path, patterns), f"{path} should stay out of the image's build context"


def test_every_manifest_runs_the_cargo_version():
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]
    image = f"ghcr.io/apigw-operator/apigw-operator:{version}"
    chart = find(docs(helm_template().stdout), "Deployment")
    deploy = find(docs((DEPLOY / "deployment.yaml").read_text()), "Deployment")
    for deployment in (chart, deploy):
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert f"apigw-operator:{version}" in DOCKERFILE.read_text()
    assert f'appVersion: "{version}"' in (CHART / "Chart.yaml").read_text()
