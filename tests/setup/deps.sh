#!/usr/bin/env bash
# Installs every system dependency Vigil's build, tests and demo need on Debian 12 (run as root).
# Idempotent: skips what is already present.
set -euo pipefail

APT_PACKAGES=(
  pkg-config build-essential
  # GStreamer 1.22: decode (edge), RTSP server (camera simulator), x264 (fixture re-encode)
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  # cloud database (started locally by the scripts, never as a system service)
  postgresql-15 postgresql-client-15
  # MQTT: real clients for the broker/ACL tests, and Mosquitto as the benchmark peer
  mosquitto mosquitto-clients
  # real media fixtures: CCTV footage and a photo
  opencv-doc python3-skimage ffmpeg
  python3 python3-pip python3-yaml curl ca-certificates
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: a Rust toolchain (cargo, rustc >= 1.94) is required; install it with rustup" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
# A real S3-protocol server for the media tests (0.17 needs a newer rustc than ours).
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  cargo install s3s-fs@0.14.1 --locked --features binary
fi
# A real S3 client, independent of our code, to read back what the cloud stored.
if ! command -v aws >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/aws" ]; then
  python3 -m pip install --user --quiet --break-system-packages awscli
fi
