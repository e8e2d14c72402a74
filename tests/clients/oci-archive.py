#!/usr/bin/env python3
"""oci-archive.py ROOTFS OUT.tar REF CMD... — packs the directory ROOTFS as a one-layer OCI image
in an oci-archive (a tar of an OCI image layout) named REF, with CMD as its Cmd, for
`podman load`. Deterministic: owners root, mtimes 0, sorted entries; the same tree gives the
same bytes. Used by tests/vm/71-podman-krun (there is no registry in the test host)."""
import hashlib, io, json, os, sys, tarfile

def layer_tar(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if rel.startswith(".zkrun"):
                    continue
                info = t.gettarinfo(full, arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    return buf.getvalue()

def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data

def main():
    if len(sys.argv) < 4:
        sys.exit("usage: oci-archive.py ROOTFS OUT.tar REF CMD...")
    root, out, ref, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    layer = layer_tar(root)
    layer_digest, _ = blob(layer)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": cmd or ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }, sort_keys=True).encode()
    config_digest, _ = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest, _ = blob(manifest)
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}],
    }, sort_keys=True).encode()
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    for digest, data in ((layer_digest, layer), (config_digest, config), (manifest_digest, manifest)):
        files.append(("blobs/sha256/" + digest.split(":")[1], data))
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d); info.type = tarfile.DIRTYPE; info.mode = 0o755
            t.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)

main()
