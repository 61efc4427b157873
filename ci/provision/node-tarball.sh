# Sourced by el7.sh and alpine.sh (POSIX sh): install an unofficial-builds Node tarball into /opt/node.
# unofficial-builds.nodejs.org publishes, for every Node release, builds that the official site does not:
#   linux-x64-glibc-217  runs on glibc 2.17 (CentOS/RHEL 7; official Node 18+ needs glibc 2.28)
#   linux-x64-musl       runs on musl (Alpine)
# Both carry include/node (the headers node-gyp needs). Needs internet at provision time.
# NSPROBE_NODE_VERSION=v20.x.y pins a release; default: the newest v20 that has the wanted flavour.

install_node_tarball() {
  flavour="$1"   # glibc-217 | musl
  python="$2"    # a Python that can parse JSON (python3 or python2)
  base=https://unofficial-builds.nodejs.org/download/release
  if [ -x /opt/node/bin/node ] && /opt/node/bin/node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)'; then
    echo "node-tarball: /opt/node already has Node $(/opt/node/bin/node --version)"
    return 0
  fi
  version="${NSPROBE_NODE_VERSION:-}"
  if [ -z "$version" ]; then
    version=$(curl -fsSL --retry 3 "$base/index.json" | "$python" -c '
import json, sys
want = "linux-x64-" + sys.argv[1]
for r in json.load(sys.stdin):
    v = r["version"]
    major, minor = [int(x) for x in v.lstrip("v").split(".")[:2]]
    if major == 20 and minor >= 17 and want in r.get("files", []):
        print(v)
        break
' "$flavour")
  fi
  [ -n "$version" ] || { echo "node-tarball: no v20 release with linux-x64-$flavour found on $base" >&2; return 1; }
  file="node-$version-linux-x64-$flavour.tar.xz"
  echo "node-tarball: installing $file"
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 -o "$tmp/$file" "$base/$version/$file"
  curl -fsSL --retry 3 -o "$tmp/SHASUMS256.txt" "$base/$version/SHASUMS256.txt"
  (cd "$tmp" && grep " $file\$" SHASUMS256.txt | sha256sum -c -)
  rm -rf /opt/node && mkdir -p /opt/node
  tar -xJf "$tmp/$file" -C /opt/node --strip-components=1
  rm -rf "$tmp"
  /opt/node/bin/node --version
}
