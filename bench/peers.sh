#!/usr/bin/env bash
# Create the peer virtualenvs that bench/run.py uses for its peer legs (f: FastMCP, g: ContextForge).
# Each peer pins its own mcp version, so each gets its own venv under bench/.peers/ (git-ignored).
#
#   bash bench/peers.sh              # both peers
#   bash bench/peers.sh fastmcp      # one of them: fastmcp | contextforge
#
# Installing needs PyPI; running the legs afterwards is loopback only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$here/.peers"
python="${PYTHON:-python3}"
# Latest FastMCP 4.x. ContextForge: 1.0.8 and later require Python >= 3.12; with 3.11 the newest is
# 1.0.7.post20260921 (pass PYTHON=python3.12 and CONTEXTFORGE=... to try a newer one).
fastmcp_spec="${FASTMCP:-fastmcp==4.2.3}"
contextforge_spec="${CONTEXTFORGE:-mcp-contextforge-gateway==1.0.7.post20260921}"

make_venv() {
    local name="$1" spec="$2"
    local venv="$peers/$name"
    echo "peers: $name ($spec) in $venv"
    # bench/run.py runs a peer leg only once the marker exists: a half-built venv is never used.
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q "$spec"
    "$venv/bin/python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" \
        "${spec%%[=<>]*}" >"$venv/bench-peer-ready"
    echo "peers: $name $(cat "$venv/bench-peer-ready") ready"
}

mkdir -p "$peers"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fastmcp contextforge)
for target in "${targets[@]}"; do
    case "$target" in
        fastmcp) make_venv fastmcp "$fastmcp_spec" ;;
        contextforge) make_venv contextforge "$contextforge_spec" ;;
        *) echo "peers: unknown peer '$target' (fastmcp | contextforge)" >&2; exit 2 ;;
    esac
done
