#!/usr/bin/env bash
# Installs the system packages viva needs to build and test: cmake and a C++ compiler for
# whisper.cpp, libclang for its bindings, espeak-ng and sox to generate test speech, and
# python3-pip to fetch model wheels. Skips what is already there.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v c++ >/dev/null || need+=(g++)
# libclang-cpp (often present) is not libclang: look for libclang.so or libclang-N.so itself.
ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so' || need+=(libclang-dev)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
