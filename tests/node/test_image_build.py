"""`make image` (hack/build-image.sh, hack/oci-image.py) and the Dockerfile describe the same image:
the same binary build, files, user, entrypoint, command, port and labels; and the image is in
each node's containerd under the chart's default name."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
import tarfile
from pathlib import Path

from nodelib import IMAGE, REPO, ctr, image_tar, node_env, run

DOCKERFILE = REPO / "Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def final_stage() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stage: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            if word.upper() == "FROM":
                stage = []
            stage.append((word.upper(), rest.strip()))
    return stage


def describe() -> dict:
    out = run(["python3", str(REPO / "hack" / "oci-image.py"), "describe", str(image_tar())]).stdout
    return json.loads(out)


def layer_file(path: str) -> bytes:
    with tarfile.open(image_tar()) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        manifest = json.loads(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]).read())
        for layer in manifest["layers"]:
            blob = tar.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])
            with tarfile.open(fileobj=blob) as lt:
                try:
                    f = lt.extractfile(path.lstrip("/"))
                except KeyError:
                    continue
                if f is not None:
                    return f.read()
    raise AssertionError(f"{path} is not in the image")


def test_config_is_the_dockerfiles():
    stage = dict(final_stage())
    image = describe()
    assert image["name"] == IMAGE
    cfg = image["config"]["config"]
    assert cfg["User"] == stage["USER"] == "nonroot:nonroot"
    assert cfg["Entrypoint"] == json.loads(stage["ENTRYPOINT"])
    assert cfg["Cmd"] == json.loads(stage["CMD"])
    assert set(cfg["ExposedPorts"]) == {f"{p}/tcp" for p in stage["EXPOSE"].split()}
    assert cfg["Labels"] == dict(re.findall(r'([\w.\-]+)="([^"]*)"', stage["LABEL"]))
    # distroless/static-debian12's own config: PATH, the CA bundle and nonroot's home.
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in cfg["Env"]
    assert cfg["WorkingDir"] == "/home/nonroot"
    assert image["config"]["os"] == "linux" and image["config"]["architecture"] == "amd64"


def test_files_are_the_binary_on_distroless_nonroot():
    files = {f["path"]: f for f in describe()["files"]}
    copy = dict(final_stage())["COPY"]
    dest = copy.split()[-1]
    assert copy == "--from=build /apigw-operator /apigw-operator"
    assert set(files) == {
        dest, "/etc", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ssl/certs",
        "/etc/ssl/certs/ca-certificates.crt", "/home", "/home/nonroot", "/root", "/tmp",
    }, sorted(files)
    assert files[dest]["mode"] == 0o755 and files[dest]["uid"] == 0
    assert files["/tmp"]["mode"] == 0o1777
    assert (files["/home/nonroot"]["uid"], files["/home/nonroot"]["gid"], files["/home/nonroot"]["mode"]) == (65532, 65532, 0o700)
    # USER nonroot:nonroot resolves to 65532:65532, the chart's runAsUser/runAsGroup.
    passwd = layer_file("/etc/passwd").decode()
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" in passwd.splitlines()
    assert "nonroot:x:65532:" in layer_file("/etc/group").decode().splitlines()
    assert layer_file("/etc/ssl/certs/ca-certificates.crt") == CA_BUNDLE.read_bytes(), "Debian's CA bundle"


def test_binary_is_the_dockerfiles_static_musl_release_build():
    binary = layer_file("/apigw-operator")
    assert binary[:4] == b"\x7fELF"
    # No PT_INTERP program header: statically linked, as the musl target builds it.
    phoff, = struct.unpack_from("<Q", binary, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", binary, 0x36)
    types = [struct.unpack_from("<I", binary, phoff + i * phentsize)[0] for i in range(phnum)]
    assert 3 not in types, "the binary has an ELF interpreter: not static"
    # The same cargo command as the Dockerfile's build stage.
    dockerfile = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    target = re.search(r"ARG TARGET=(\S+)", dockerfile).group(1)
    assert target == "x86_64-unknown-linux-musl"
    script = (REPO / "hack" / "build-image.sh").read_text()
    assert re.search(r"cargo build --release --locked --target \S+ --bin apigw-operator", dockerfile)
    assert 'cargo build --release --locked --target "$TARGET" --bin apigw-operator' in script
    assert f"TARGET={target}" in script
    # The binary answers --version with the crate's version.
    tmp = REPO / "target" / "image" / "apigw-operator.extracted"
    tmp.write_bytes(binary)
    tmp.chmod(0o755)
    out = subprocess.run([str(tmp), "--version"], capture_output=True, text=True, timeout=30)
    tmp.unlink()
    assert out.returncode == 0 and IMAGE.rsplit(":", 1)[1] in out.stdout, (out.stdout, out.stderr)


def test_image_is_in_every_nodes_containerd_under_the_charts_default_name():
    env = node_env()
    with tarfile.open(image_tar()) as tar:
        digest = json.loads(tar.extractfile("index.json").read())["manifests"][0]["digest"]
    for node in env["TESTENV_NODES"].split():
        lines = ctr(node, "images", "ls").splitlines()
        assert any(line.split()[0] == IMAGE and line.split()[2] == digest for line in lines[1:]), (node, lines)


def test_image_build_is_reproducible():
    """The same binary gives the same image digest (fixed mtimes, owners and order)."""
    tar = image_tar()
    with tarfile.open(tar) as t:
        index = json.loads(t.extractfile("index.json").read())
    binary = REPO / "target" / "image" / "apigw-operator.repro"
    binary.write_bytes(layer_file("/apigw-operator"))
    again = REPO / "target" / "image" / "again.oci.tar"
    try:
        run(["python3", str(REPO / "hack" / "oci-image.py"), "operator", "--binary", str(binary), "--dockerfile",
             str(DOCKERFILE), "--name", IMAGE, "--out", str(again)])
        with tarfile.open(again) as t:
            assert json.loads(t.extractfile("index.json").read()) == index
        assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(tar.read_bytes()).hexdigest()
    finally:
        binary.unlink(missing_ok=True)
        again.unlink(missing_ok=True)
