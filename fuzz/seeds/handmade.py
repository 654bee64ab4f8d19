#!/usr/bin/env python3
"""Hand-made seeds for the cases real files rarely show: layer tars that try to escape their
root (symlink and hard-link tricks, `..`, absolute paths), whiteouts, devices, xattrs, long
names; API bodies as the docker CLI sends them; registry headers; references; logs.
Usage: handmade.py CORPUS_DIR"""
import gzip, io, json, os, sys, tarfile

C = sys.argv[1]


def put(target, name, data):
    os.makedirs(os.path.join(C, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(C, target, "seed-" + name), "wb") as f:
        f.write(data)


def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            data = b""
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = e[2].encode() if len(e) > 2 else b"x"
                ti.size, ti.mode = len(data), 0o644
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, e[2]
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, e[2]
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            if len(e) > 3:
                ti.pax_headers = e[3]
            if kind in ("file",) and len(e) > 4:
                ti.mode = e[4]
            t.addfile(ti, io.BytesIO(data) if data else None)
    return b.getvalue()


layers = {
    "escape-rel-symlink": [("sym", "x", "../outside"), ("file", "x/pwned")],
    "escape-abs-symlink": [("sym", "x", "/dev/shm/fz/outside"), ("file", "x/pwned")],
    "escape-dotdot": [("file", "../outside/pwned")],
    "escape-abs-path": [("file", "/dev/shm/fz/outside/pwned")],
    "escape-hardlink": [("sym", "x", "../outside"), ("hard", "h", "x/sentinel")],
    "escape-symlink-chain": [("dir", "a"), ("sym", "a/b", "../.."), ("sym", "c", "a/b/outside"), ("file", "c/pwned")],
    "escape-symlink-last": [("sym", "s", "../outside/sentinel"), ("file", "s", "overwrite")],
    "dir-over-symlink": [("sym", "d", "../outside"), ("dir", "d"), ("file", "d/f")],
    "whiteouts": [("dir", "a"), ("file", "a/f"), ("file", "a/.wh.f"), ("file", "a/.wh..wh..opq"), ("file", ".wh.a"), ("file", ".wh..wh.plnk")],
    "whiteout-escape": [("sym", "l", "../outside"), ("file", "l/.wh.sentinel"), ("file", "l/.wh..wh..opq")],
    "devices": [("chr", "dev/null"), ("fifo", "p"), ("chr", "p")],
    "xattrs": [("file", "f", "x", {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}),
               ("dir", "d", None, {"SCHILY.xattr.trusted.overlay.opaque": "y"})],
    "modes": [("file", "suid", "x", {}, 0o4755), ("file", "none", "x", {}, 0o000), ("dir", "d"), ("file", "d/x")],
    "hardlinks": [("file", "a", "content"), ("hard", "b", "a"), ("hard", "c", "nonexistent"), ("hard", "d", "")],
    "replace-kinds": [("dir", "x"), ("file", "x/y"), ("file", "x"), ("sym", "x", "y"), ("dir", "x")],
}
for name, es in layers.items():
    es = [e if len(e) != 4 or e[2] is not None else (e[0], e[1], "", e[3]) for e in es]
    t = tar(es)
    put("layer_unpack", name + ".tar", t)
put("layer_unpack", "longname-gnu.tar", tar([("file", "d/" + "n" * 200)], tarfile.GNU_FORMAT))
put("layer_unpack", "whiteouts.tar.gz", gzip.compress(tar(layers["whiteouts"]), mtime=0))

# archives whose members point outside
arch = tar([("file", "manifest.json", json.dumps([{"Config": "../../etc/passwd", "RepoTags": ["a:b"], "Layers": ["l/layer.tar"]}])),
            ("sym", "l", "/etc")])
put("docker_archive", "evil-paths.tar", arch)
put("oci_layout", "evil-symlink.tar", tar([("file", "oci-layout", '{"imageLayoutVersion":"1.0.0"}'), ("sym", "blobs", "."), ("file", "index.json", '{"schemaVersion":2,"manifests":[]}')]))

# registry
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "b" * 64, "size": 1, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.in-toto+json", "digest": "sha256:" + "c" * 64, "size": 1, "platform": {"architecture": "unknown", "os": "unknown"}}]}
put("registry_manifest", "index.json", json.dumps(idx))
put("registry_manifest", "schema1.json", '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}')
for i, h in enumerate([
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
    'Basic realm="Registry Realm"', 'bearer realm=http://127.0.0.1:5000/auth, service=reg',
    'Bearer realm="a\\"b",error="invalid_token"', 'Negotiate']):
    put("www_authenticate", f"{i}.txt", h)
for i, r in enumerate(["busybox", "busybox:latest", "library/busybox:1.36", "docker.io/library/busybox",
                       "localhost:5000/a/b:c", "[::1]:5000/x:y", "ghcr.io/o/r@sha256:" + "0" * 64,
                       "a.b.c/d_e__f-g:T.1@sha256:" + "f" * 64, "docker.io/s.ha4-1/busybox", "docker.io/a_b.io/li/box", "docker.io/" + "a25f" * 16, "UPPER", "sha256:" + "1" * 64, "index.docker.io/x"]):
    put("reference", f"{i}.txt", r)

# API bodies as the docker CLI sends them (docker run -it --rm -v ... -p ...)
create = {"Hostname": "", "Domainname": "", "User": "1000:1000", "AttachStdin": True, "AttachStdout": True,
          "AttachStderr": True, "Tty": True, "OpenStdin": True, "StdinOnce": True, "Env": ["A=b", "PATH=/x"],
          "Cmd": ["sh", "-c", "echo hi"], "Image": "busybox", "Volumes": {"/data": {}}, "WorkingDir": "/w",
          "Entrypoint": None, "OnBuild": None, "Labels": {"a": "b"}, "StopSignal": "SIGINT", "ExposedPorts": {"80/tcp": {}},
          "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
          "HostConfig": {"Binds": ["/tmp:/t:ro,rprivate", "vol:/v"], "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
                         "NetworkMode": "none", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                         "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "AutoRemove": True,
                         "VolumeDriver": "", "VolumesFrom": None, "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"],
                         "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": ["h:1.2.3.4"], "GroupAdd": ["audio"],
                         "IpcMode": "private", "PidMode": "", "Privileged": False, "ReadonlyRootfs": True,
                         "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"], "Tmpfs": {"/run": "rw,size=64m"},
                         "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Sysctls": {"net.ipv4.ip_forward": "1"},
                         "Memory": 1073741824, "MemorySwap": -1, "NanoCpus": 500000000, "CpusetCpus": "0-1",
                         "PidsLimit": 100, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                         "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"}],
                         "Mounts": [{"Type": "tmpfs", "Target": "/m", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}},
                                    {"Type": "bind", "Source": "/tmp", "Target": "/b", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}}],
                         "Init": True, "OomScoreAdj": 100, "BlkioWeight": 300},
          "NetworkingConfig": {"EndpointsConfig": {}}}
put("api_container_create", "docker-run.json", json.dumps(create))
put("api_container_create", "minimal.json", '{"Image":"busybox"}')
put("api_container_create", "privileged.json", json.dumps({"Image": "x", "Cmd": ["true"], "HostConfig": {"Privileged": True, "NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host"}}))
put("api_container_create", "container-net.json", json.dumps({"Image": "x", "Entrypoint": ["/bin/sh"], "HostConfig": {"NetworkMode": "container:abc", "VolumesFrom": ["abc:ro"]}}))
put("api_container_create", "seccomp-profile.json", json.dumps({"Image": "x", "HostConfig": {"SecurityOpt": ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}']}}))
put("api_container_update", "docker-update.json", json.dumps({"Memory": 2097152, "MemorySwap": -1, "CpuShares": 1024, "CpuPeriod": 100000, "CpuQuota": 50000, "CpusetCpus": "0", "CpusetMems": "0", "PidsLimit": -1, "BlkioWeight": 500, "RestartPolicy": {"Name": "always"}, "NanoCpus": 0}))
put("api_container_update", "empty.json", "{}")
put("api_exec", "docker-exec.json", json.dumps({"User": "1000:1000", "Privileged": False, "Tty": True, "AttachStdin": True, "AttachStderr": True, "AttachStdout": True, "DetachKeys": "ctrl-p,ctrl-q", "Env": ["A=b", "TERM=vt100"], "WorkingDir": "/w", "Cmd": ["sh", "-c", "id"], "ConsoleSize": [24, 80]}))
put("api_exec", "root.json", json.dumps({"User": "root", "Privileged": True, "Cmd": ["true"]}))
for i, q in enumerate(['all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D&limit=10',
                       'filters={"label":{"a=b":true},"dangling":["true"]}&since=1700000000.5&until=2024-01-01T00:00:00Z',
                       'fromImage=busybox&tag=latest&platform=linux%2Famd64', 'a=1&b=false&c=&d=True&e=none&f', 't=x&t=y&name=%2Fweird+name%ZZ']):
    put("api_query", f"{i}.txt", q)
put("dockerfile", "heredoc", """# syntax=docker/dockerfile:1
# escape=\\
ARG BASE=busybox
FROM ${BASE}:latest AS base
ENV A=1 B="two words"
RUN --mount=type=cache,target=/c --network=none <<EOF
echo $A \\
  ${B:-x}
EOF
COPY --chown=1:1 --chmod=755 --from=base <<EOF /dest
content
EOF
HEALTHCHECK --interval=5s --timeout=3s CMD ["true"]
ONBUILD RUN echo on
FROM base
ARG B
ADD --checksum=sha256:0000 https://example.invalid/x /y
EXPOSE 80/tcp 53/udp
VOLUME ["/data"]
USER 1000:1000
WORKDIR /w
LABEL a=b "c d"=e
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-c"]
ENTRYPOINT ["/bin/sh"]
CMD echo ${A#1} ${P%.txt}
""")
put("dockerfile", "escape-backtick", "# escape=`\nFROM scratch\nRUN a `\n  b\nCOPY a b c/\n")
put("dockerignore", "typical", "# comment\nnode_modules\n**/*.log\n!important.log\n.git\n/build/**\n[a-c]?.txt\n!**/keep\n*\\*\n")
for i, l in enumerate([
    b'{"log":"hello\\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}\n{"log":"err\\n","stream":"stderr","time":"2024-01-02T03:04:06Z"}\n',
    b'{"log":"partial","stream":"stdout","time":"2024-01-02T03:04:05+02:00"}\n{"log":"\\u00e9\\ud83d\\ude00\\n","stream":"stdout","time":"1970-01-01T00:00:00Z"}\n{"log":"cut',
]):
    put("json_log", f"{i}.log", l)
put("seccomp", "oci.json", json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock",
    "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                 {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                 {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                 {"names": ["socket"], "action": "SCMP_ACT_NOTIFY", "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 9, "op": "SCMP_CMP_LT"}]},
                 {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}, {"names": ["kill"], "action": "SCMP_ACT_TRACE"}]}))
put("seccomp", "docker-small.json", json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                 {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                 {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                 {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}], "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                 {"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}}]}))
