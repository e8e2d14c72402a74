#!/usr/bin/env python3
"""Builds test images for tests/native/cli-*.sh and tests/vm/66-cli-image.test.sh from Debian's
busybox-static (/bin/busybox): an OCI image layout (or an OCI archive / docker-archive tar) of
three layers, with a whiteout, an opaque directory, hardlinks, symlinks, modes, owners and an
xattr, and a config with Entrypoint, Cmd, Env, WorkingDir and User. Bad variants break one thing.

usage: mkimage.py OUT VARIANT [FORMAT] [USER]
  VARIANT: good | missing-blob | digest-mismatch | dotdot | absolute | symlink-out | truncated
  FORMAT:  layout (a directory, default) | oci-archive | docker-archive (tar files)
  OUTSIDE: the env var ZKRUN_TEST_OUTSIDE names the directory the hostile layers aim at.
"""
import gzip, hashlib, io, json, os, shutil, sys, tarfile

out, variant = sys.argv[1], sys.argv[2]
fmt = sys.argv[3] if len(sys.argv) > 3 else "layout"
user = sys.argv[4] if len(sys.argv) > 4 else "root"
outside = os.environ.get("ZKRUN_TEST_OUTSIDE", "/nonexistent-zkrun-outside")
busybox = open("/bin/busybox", "rb").read()
MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = kind, mode, uid, gid, MTIME, link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return ti, data


def layer(members, pax=None, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in members:
            if pax and ti.name in pax:
                ti.pax_headers = pax[ti.name]
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


D, F, L, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
entry = b"""#!/bin/sh
echo "entry: args=$* GREETING=$GREETING pwd=$(pwd) uid=$(busybox id -u):$(busybox id -g)"
echo "root: $(ls / | busybox tr '\\n' ' ')"
echo "opq: $(ls /opq | busybox tr '\\n' ' ')"
echo "motd: $(cat /etc/motd)"
if [ -n "$WRITE" ]; then echo "$WRITE" >>/persist; fi
[ -e /persist ] && echo "persist: $(busybox tr '\\n' ' ' </persist)"
exit "${1:-0}"
"""
base = [
    info("./", D, 0o755),
    info("bin/", D, 0o755),
    info("bin/busybox", F, 0o755, data=busybox),
    info("bin/sh", L, 0o777, link="busybox"),
    info("bin/ls", L, 0o777, link="/bin/busybox"),
    info("bin/cat", H, link="bin/busybox"),
    info("etc/", D, 0o755),
    info("etc/passwd", F, 0o644, data=b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"),
    info("etc/group", F, 0o644, data=b"root:x:0:\napp:x:1001:\nstaff:x:50:\n"),
    info("tmp/", D, 0o1777),
    info("home/app/", D, 0o750, 1000, 1001),
    info("home/app/owned", F, 0o600, 1000, 1001, b"mine\n"),
    info("old.txt", F, 0o644, data=b"lower\n"),
    info("gone/", D, 0o755),
    info("gone/inner", F, 0o644, data=b"x\n"),
    info("opq/", D, 0o755),
    info("opq/a", F, 0o644, data=b"a\n"),
    info("opq/b", F, 0o644, data=b"b\n"),
    info("xattr-file", F, 0o640, data=b"x\n"),
    info("proc/", D, 0o555),
    info("dev/", D, 0o755),
    info("sys/", D, 0o555),
]
layers = [
    layer(base, {"xattr-file": {"SCHILY.xattr.user.zkrun": "hello"}}),
    layer([
        info(".wh.old.txt", F),
        info(".wh.gone", F),
        info("opq/", D, 0o755),
        info("opq/c", F, 0o644, data=b"c\n"),
        info("opq/.wh..wh..opq", F),
        info("app/", D, 0o755),
        info("app/entry.sh", F, 0o755, data=entry),
        info("a-very-long-directory-name-" + "x" * 90 + "/file-with-a-long-name-" + "y" * 80, F, 0o644, data=b"long\n"),
    ]),
    # GNU format: a long name as an "L" member, a uid too large for octal as base-256.
    layer([info("work/", D, 0o700), info("etc/motd", F, 0o444, data=b"layer three\n"),
           info("gnu/" + "n" * 150, F, 0o644, 3000000, 3000000, b"gnu\n")], fmt=tarfile.GNU_FORMAT),
]
compress = [True, False, True]
if variant == "dotdot":
    layers.append(layer([info("../" * 40 + outside.lstrip("/") + "/dotdot-escape", F, data=b"escaped\n")]))
    compress.append(False)
elif variant == "absolute":
    layers.append(layer([info(outside + "/absolute-escape", F, data=b"escaped\n")]))
    compress.append(False)
elif variant == "dir-then-link":
    # A directory, then a symlink of the same name to an absolute host-looking path: the
    # directory's mode must not be applied through the link (to the host's directory).
    layers.append(layer([
        info("swap/", D, 0o700),
        info("swap/inner/", D, 0o700),
        info("swap", L, 0o777, link=outside),
    ]))
    compress.append(False)
elif variant == "symlink-out":
    layers.append(layer([
        info("esc", L, 0o777, link="../" * 40 + outside.lstrip("/")),
        info("esc/symlink-escape", F, data=b"escaped\n"),
    ]))
    compress.append(False)

config = {
    "architecture": "amd64", "os": "linux",
    "config": {
        "Entrypoint": ["/bin/sh", "/app/entry.sh"], "Cmd": ["3"],
        "Env": ["PATH=/bin", "GREETING=hello from the image"],
        "WorkingDir": "/work", "User": user,
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]},
}
blobs = {}


def add(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return d


layer_descs = []
for l, gz in zip(layers, compress):
    data = gzip.compress(l, mtime=0) if gz else l
    layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""),
                        "digest": "sha256:" + add(data), "size": len(data)})
cfg = json.dumps(config).encode()
cfg_d = add(cfg)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + cfg_d, "size": len(cfg)},
                       "layers": layer_descs}).encode()
man_d = add(manifest)
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                       "digest": "sha256:" + man_d, "size": len(manifest)}]}).encode()

if variant == "missing-blob":
    del blobs[layer_descs[1]["digest"][7:]]
elif variant == "digest-mismatch":
    d = layer_descs[1]["digest"][7:]
    b = bytearray(blobs[d]); b[600] ^= 0xff; blobs[d] = bytes(b)

files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
if fmt == "docker-archive":
    files = {"manifest.json": json.dumps([{"Config": "blobs/sha256/" + cfg_d, "RepoTags": ["zkrun-test:latest"],
                                           "Layers": [d["digest"].replace(":", "/").replace("sha256/", "blobs/sha256/")
                                                      for d in layer_descs]}]).encode()}
else:
    files["index.json"] = index
for d, data in blobs.items():
    files["blobs/sha256/" + d] = data

if fmt == "layout" and variant != "truncated":
    shutil.rmtree(out, ignore_errors=True)
    for name, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(out, name)) or out, exist_ok=True)
        open(os.path.join(out, name), "wb").write(data)
else:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = MTIME
            t.addfile(ti, io.BytesIO(data))
    data = buf.getvalue()
    if variant == "truncated":
        data = data[: len(data) // 2]
    open(out, "wb").write(data)
