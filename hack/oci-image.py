#!/usr/bin/env python3
"""Writes an OCI image layout tarball (what `ctr images import` loads) from local files, with no
registry and no container engine. Python's standard library only; the output is reproducible
(fixed mtimes, owners and order, an uncompressed layer).

    oci-image.py operator --binary BIN --dockerfile Dockerfile --name REF --out OUT.tar
        the operator's image: the Dockerfile's final stage (USER, ENTRYPOINT, CMD, EXPOSE, LABEL,
        the binary at the COPY destination) on what distroless/static-debian12:nonroot holds that
        the operator uses (see BASE_FILES);
    oci-image.py pause --binary BIN --name REF --out OUT.tar
        the node's pause (sandbox) image: one static program.
    oci-image.py describe OUT.tar
        prints the image's config and file list as JSON (tests/node/test_image_build.py reads it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

MTIME = 0
NONROOT = 65532
# distroless/static-debian12's PATH and CA bundle variable (its image config).
BASE_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
]
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# distroless/static-debian12's /etc/passwd and /etc/group (base/static in GoogleContainerTools/distroless).
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
NSSWITCH = "passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\nnetworks:       files\nprotocols:      files\nservices:       files\nethers:         files\nrpc:            files\n"


class Layer:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, gid, MTIME
        self.entries[info.name] = (info, None)

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.dir(parent)
        info = tarfile.TarInfo("/".join(parts))
        info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, MTIME
        self.entries[info.name] = (info, data)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(out: Path, name: str, layer: bytes, config: dict) -> None:
    config = dict(config)
    config["rootfs"] = {"type": "layers", "diff_ids": [digest(layer)]}
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(manifest_bytes),
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True, separators=(",", ":")).encode(),
    }
    for blob in (layer, config_bytes, manifest_bytes):
        files["blobs/sha256/" + digest(blob).split(":")[1]] = blob
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(files[path]), 0o644, MTIME
            tar.addfile(info, io.BytesIO(files[path]))
    tmp.replace(out)
    print(f"{out}: {name} {digest(manifest_bytes)}")


def dockerfile_final_stage(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            out = []
        out.append((word.upper(), rest.strip()))
    return out


def labels_of(rest: str) -> dict[str, str]:
    return {k: v for k, v in re.findall(r'([\w.\-]+)="([^"]*)"', rest)}


def operator(args: argparse.Namespace) -> None:
    stage = dockerfile_final_stage(Path(args.dockerfile))
    config: dict = {"architecture": "amd64", "os": "linux",
                    "config": {"Env": list(BASE_ENV), "WorkingDir": "/home/nonroot", "Labels": {}}}
    cfg = config["config"]
    layer = Layer()
    base_files(layer)
    binary_dest = None
    for word, rest in stage:
        if word == "FROM":
            if rest != "gcr.io/distroless/static-debian12:nonroot":
                sys.exit(f"the Dockerfile's final stage is FROM {rest}: this script only knows distroless/static-debian12:nonroot")
        elif word == "LABEL":
            cfg["Labels"].update(labels_of(rest))
        elif word == "COPY":
            m = re.fullmatch(r"--from=\S+ (\S+) (\S+)", rest)
            if not m:
                sys.exit(f"unexpected COPY in the final stage: {rest}")
            binary_dest = m.group(2)
        elif word == "USER":
            cfg["User"] = rest
        elif word == "EXPOSE":
            cfg["ExposedPorts"] = {(p if "/" in p else p + "/tcp"): {} for p in rest.split()}
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = json.loads(rest)
        elif word == "CMD":
            cfg["Cmd"] = json.loads(rest)
        else:
            sys.exit(f"unexpected {word} in the Dockerfile's final stage: teach hack/oci-image.py about it")
    if not binary_dest:
        sys.exit("the Dockerfile's final stage copies no binary")
    layer.file(binary_dest, Path(args.binary).read_bytes(), mode=0o755)
    write_layout(Path(args.out), args.name, layer.tar(), config)


def base_files(layer: Layer) -> None:
    """What distroless/static-debian12:nonroot provides that the operator uses."""
    layer.dir("etc")
    layer.file("etc/passwd", PASSWD.encode())
    layer.file("etc/group", GROUP.encode())
    layer.file("etc/nsswitch.conf", NSSWITCH.encode())
    layer.dir("etc/ssl")
    layer.dir("etc/ssl/certs")
    layer.file("etc/ssl/certs/ca-certificates.crt", CA_BUNDLE.read_bytes())
    layer.dir("home")
    layer.dir("home/nonroot", mode=0o700, uid=NONROOT, gid=NONROOT)
    layer.dir("root", mode=0o700)
    layer.dir("tmp", mode=0o1777)


def pause(args: argparse.Namespace) -> None:
    layer = Layer()
    layer.file("pause", Path(args.binary).read_bytes(), mode=0o755)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"}}
    write_layout(Path(args.out), args.name, layer.tar(), config)


def describe(args: argparse.Namespace) -> None:
    with tarfile.open(args.tar) as tar:
        def blob(d: str) -> bytes:
            f = tar.extractfile("blobs/sha256/" + d.split(":")[1])
            assert f is not None
            return f.read()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        (entry,) = index["manifests"]
        manifest = json.loads(blob(entry["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        files = []
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as lt:
                for m in lt.getmembers():
                    files.append({"path": "/" + m.name, "type": "dir" if m.isdir() else "file", "mode": m.mode,
                                  "uid": m.uid, "gid": m.gid, "size": m.size})
    json.dump({"name": entry["annotations"]["io.containerd.image.name"], "config": config, "files": files}, sys.stdout, indent=1)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("operator")
    p.add_argument("--binary", required=True)
    p.add_argument("--dockerfile", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("pause")
    p.add_argument("--binary", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("describe")
    p.add_argument("tar")
    args = parser.parse_args()
    {"operator": operator, "pause": pause, "describe": describe}[args.cmd](args)


if __name__ == "__main__":
    main()
